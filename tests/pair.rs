//! The redundant pair, end to end: two real nodes, real ffmpeg encoders.
//! After each scenario an independent byte comparison fetches every object
//! and blocking playlist both nodes serve: zero may differ.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::pair::*;
use support::*;

const SECRET: &str = "pair-secret-for-tests-0123";

struct Pair {
    main: Server,
    backup: Option<Server>,
    main_ports: Ports,
    backup_ports: Ports,
    mode: &'static str,
}

impl Pair {
    /// A main, and a backup now or (`start_backup` false) later.
    fn new(tag: &str, mode: &'static str, start_backup: bool) -> Pair {
        let (mp, bp) = (Ports::free(), Ports::free());
        let main = Server::start_xml(&format!("{tag}-main"), mp, &pair_xml(mp, bp, "main", mode, SECRET));
        let mut p = Pair { main, backup: None, main_ports: mp, backup_ports: bp, mode };
        if start_backup {
            p.start_backup(tag);
        }
        p
    }

    fn start_backup(&mut self, tag: &str) {
        self.backup = Some(Server::start_xml(
            &format!("{tag}-backup"),
            self.backup_ports,
            &pair_xml(self.backup_ports, self.main_ports, "backup", self.mode, SECRET),
        ));
    }

    fn backup(&self) -> &Server {
        self.backup.as_ref().expect("the backup is running")
    }
}

fn input(dir: &std::path::Path) -> std::path::PathBuf {
    standard_input(dir, "flv", 90)
}

/// An encoder feed: `input` from `offset_s` seconds in, in real time.
fn feed(input: &std::path::Path, offset_s: u64, url: &str) -> Proc {
    Proc::spawn(
        "ffmpeg (feed)",
        Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-ss", &offset_s.to_string(), "-i"])
            .arg(input)
            .args(["-c", "copy", "-f", "flv", url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// Compare what both nodes serve; at least `min` objects compared, none
/// differing. (Non-blocking playlists are not compared: two nodes fed in
/// real time are at slightly different points at any instant; blocking
/// playlists name fixed points.)
fn assert_pair_identical(p: &Pair, scenario: &str, min: usize) {
    assert_identical(&p.main, p.backup(), None, scenario, min);
}

#[test]
fn both_start_together() {
    let p = Pair::new("pair-together", "SystemClock", true);
    let input = input(&p.main.dir);
    let _enc = tee_push(&input, &p.main.rtmp_url("app", "stream"), &p.backup().rtmp_url("app", "stream"));
    wait_live(&p.main, "main live");
    wait_live(p.backup(), "backup live");
    std::thread::sleep(Duration::from_secs(8));
    assert_pair_identical(&p, "together", 40);
}

#[test]
fn backup_starts_late_then_restarts_in_zero_based_mode() {
    // ZeroBased is the hard case: only the agreement keeps the numbers.
    let mut p = Pair::new("pair-late", "ZeroBased", false);
    let input = input(&p.main.dir);
    let started = Instant::now();
    let _a = feed(&input, 0, &p.main.rtmp_url("app", "stream"));
    wait_live(&p.main, "main live");
    std::thread::sleep(Duration::from_secs(15));
    p.start_backup("pair-late");
    let _b = feed(&input, started.elapsed().as_secs(), &p.backup().rtmp_url("app", "stream"));
    wait_live(p.backup(), "backup live");
    std::thread::sleep(Duration::from_secs(6));
    assert_pair_identical(&p, "backup 15 s late", 40);
    assert!(p.backup().log_text().contains("adopted the peer's timeline"), "{}", p.backup().log_text());

    // kill -9 the backup and bring it back mid-stream.
    if let Some(b) = &mut p.backup {
        b.proc.kill();
    }
    drop(_b);
    std::thread::sleep(Duration::from_secs(2));
    p.start_backup("pair-late-restart");
    let _b2 = feed(&input, started.elapsed().as_secs(), &p.backup().rtmp_url("app", "stream"));
    wait_live(p.backup(), "restarted backup live");
    std::thread::sleep(Duration::from_secs(6));
    assert_pair_identical(&p, "backup restarted", 40);
}

#[test]
fn main_encoder_reconnects_while_backup_continues_and_main_silence_leaves_backup() {
    let p = Pair::new("pair-reconnect", "SystemClock", true);
    let input = input(&p.main.dir);
    let started = Instant::now();
    let mut a = feed(&input, 0, &p.main.rtmp_url("app", "stream"));
    let _b = feed(&input, 0, &p.backup().rtmp_url("app", "stream"));
    wait_live(&p.main, "main live");
    wait_live(p.backup(), "backup live");
    std::thread::sleep(Duration::from_secs(8));
    // The main's encoder connection drops and comes back 3 s later.
    a.kill();
    wait_for("main's stream to end", Duration::from_secs(10), || {
        (p.main.get("/app/stream/video1.m3u8").0 == 404).then_some(())
    });
    assert_eq!(p.backup().get("/app/stream/video1.m3u8").0, 200, "the backup carries on");
    std::thread::sleep(Duration::from_secs(3));
    let mut a2 = feed(&input, started.elapsed().as_secs(), &p.main.rtmp_url("app", "stream"));
    wait_live(&p.main, "main live again");
    std::thread::sleep(Duration::from_secs(6));
    assert_pair_identical(&p, "main reconnected", 40);
    assert!(p.main.log_text().contains("adopted the peer's timeline"), "{}", p.main.log_text());

    // Only the main's input goes silent (SIGSTOP keeps the socket open):
    // within PacketSilenceTimeoutMs its URLs are 404, the backup serves.
    let pid = a2.pid().to_string();
    let _ = Command::new("kill").args(["-STOP", &pid]).status();
    let t0 = Instant::now();
    wait_for("main's URLs to answer 404 after silence", Duration::from_secs(5), || {
        (p.main.get("/app/stream/video1.m3u8").0 == 404).then_some(())
    });
    assert!(t0.elapsed() < Duration::from_millis(1500 + 700), "404 after {:?}", t0.elapsed());
    assert_eq!(p.backup().get("/app/stream/video1.m3u8").0, 200);
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    a2.kill();
}
