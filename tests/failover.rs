//! CDN failover, end to end: a pair (main + backup, one encoder through
//! ffmpeg's tee muxer) behind a real nginx configured with
//! `conf/cdn/nginx.conf`; a player reads through the CDN (ffmpeg's HLS
//! demuxer recording, and hls.js in Chromium); the main is killed with
//! SIGKILL mid-play. The recording has no timestamp gap, the player reports
//! no error and keeps playing from the backup, and nginx's log shows the
//! backup answering.

mod support;

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::player::*;
use support::*;

const SECRET: &str = "pair-secret-for-failover-01";
const PLAY_SECONDS: u32 = 36;
const KILL_AFTER: Duration = Duration::from_secs(12);

fn pair_xml(me: Ports, peer: Ports, role: &str) -> String {
    server_xml(me, &[AppXml { timestamp_mode: "SystemClock".into(), ..AppXml::default() }]).replacen(
        "<VirtualHosts>",
        &format!(
            "<Pair><Role>{role}</Role><PeerUrl>http://127.0.0.1:{}</PeerUrl><Secret>{SECRET}</Secret></Pair>\n  <VirtualHosts>",
            peer.http
        ),
        1,
    )
}

/// nginx, stopped with SIGTERM (its master then stops the workers; SIGKILL
/// would leave them running).
struct Cdn(Proc);

impl Drop for Cdn {
    fn drop(&mut self) {
        self.0.terminate();
    }
}

/// nginx with the shipped CDN configuration, pointed at the pair.
fn start_cdn(dir: &Path, main_http: u16, backup_http: u16, port: u16) -> Cdn {
    let conf = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/cdn/nginx.conf"))
        .expect("conf/cdn/nginx.conf")
        .replace("127.0.0.1:3333", &format!("127.0.0.1:{main_http}"))
        .replace("127.0.0.1:3334", &format!("127.0.0.1:{backup_http}"))
        .replace("listen 8080", &format!("listen 127.0.0.1:{port}"));
    assert!(conf.contains(&format!("127.0.0.1:{main_http}")) && conf.contains(&format!("listen 127.0.0.1:{port}")));
    let prefix = dir.join("cdn");
    std::fs::create_dir_all(&prefix).expect("cdn dir");
    let path = prefix.join("nginx.conf");
    std::fs::write(&path, conf).expect("write nginx.conf");
    let p = Proc::spawn(
        "nginx",
        Command::new("nginx")
            .arg("-c")
            .arg(&path)
            .arg("-p")
            .arg(format!("{}/", prefix.display()))
            .arg("-e")
            .arg(prefix.join("error.log"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let cdn = Cdn(p);
    wait_for("nginx to listen", Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
    cdn
}

#[test]
fn cdn_fails_over_to_the_backup_when_the_main_dies() {
    let node = player_tools();
    let (mp, bp) = (Ports::free(), Ports::free());
    let mut main = Server::start_xml("failover-main", mp, &pair_xml(mp, bp, "main"));
    let backup = Server::start_xml("failover-backup", bp, &pair_xml(bp, mp, "backup"));
    let dir = backup.dir.clone();
    let input = standard_input(&dir, "flv", 90);
    let _encoder = tee_push(&input, &main.rtmp_url("app", "stream"), &backup.rtmp_url("app", "stream"));
    let cdn_port = free_tcp_port();
    let _cdn = start_cdn(&dir, mp.http, bp.http, cdn_port);
    for (s, what) in [(&main, "main"), (&backup, "backup")] {
        wait_for(&format!("{what}: two segments"), Duration::from_secs(20), || {
            let (st, b) = s.get("/app/stream/video1.m3u8");
            (st == 200 && String::from_utf8_lossy(&b).matches("#EXTINF").count() >= 2).then_some(())
        });
    }
    let url = |name: &str| format!("http://127.0.0.1:{cdn_port}/app/stream/{name}");

    // Players through the CDN.
    let rec_path = dir.join("through-cdn.ts");
    let mut rec = record(&url("llhls.m3u8"), &rec_path, PLAY_SECONDS);
    let mut rec_err = rec.child.stderr.take().expect("stderr");
    let rec_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = rec_err.read_to_string(&mut s);
        s
    });
    let hls_url = url("llhls.m3u8");
    let player = std::thread::spawn(move || play(&node, &hls_url, true, PLAY_SECONDS));

    // Kill the main mid-play.
    let t0 = Instant::now();
    std::thread::sleep(KILL_AFTER);
    main.proc.kill();
    let killed_at = t0.elapsed();

    let st = rec.wait_timeout(Duration::from_secs(u64::from(PLAY_SECONDS) + 60));
    let rec_err = rec_err.join().unwrap_or_default();
    let played = player.join().expect("player thread");

    // The CDN's log: after the kill, answers came from the backup.
    let log = std::fs::read_to_string(dir.join("cdn/access.log")).unwrap_or_default();
    let backup_addr = format!("127.0.0.1:{}", bp.http);
    let from_backup = log.lines().filter(|l| l.contains(&format!("upstream={backup_addr}"))).count();
    assert!(from_backup > 10, "nginx did not fail over to the backup ({from_backup} answers):\n{log}");

    // The ffmpeg recording: complete, no gap across the failover.
    assert!(st.is_some_and(|s| s.success()), "ffmpeg recording through the CDN: exit {st:?}\n{rec_err}");
    let duration: f64 =
        ffprobe(&["-show_entries", "format=duration", "-of", "csv=p=0"], &rec_path).trim().parse().expect("a duration");
    let (n, max, min, _, _) = dts_steps(&rec_path, "v");
    let frame = 1.0 / 30.0;
    println!(
        "failover at {killed_at:?}: recorded {duration:.2} s, {n} video packets, DTS steps {:.1}..{:.1} ms; \
         {from_backup} CDN answers from the backup; hls.js: {:?}",
        min * 1000.0,
        max * 1000.0,
        played.summary
    );
    assert!(duration >= f64::from(PLAY_SECONDS) - 6.0, "recorded only {duration} s\n{rec_err}");
    assert!(max <= 2.0 * frame + 0.001, "a {:.1} ms gap in the recording across the failover", max * 1000.0);
    assert!(min > 0.0, "video timestamps not increasing");

    // hls.js: no fatal error, kept playing after the kill.
    let detail = format!("exit {:?}\n{}\n{}", played.status, played.stderr, played.report);
    assert!(played.status.is_some_and(|s| s.success()), "hls.js: {detail}");
    assert_eq!(played.get("fatal").unwrap_or(0.0), 0.0, "hls.js fatal errors: {detail}");
    let advanced = played.num("advanced");
    assert!(advanced >= f64::from(PLAY_SECONDS) - 8.0, "hls.js played only {advanced} s across the failover: {detail}");
}

#[test]
fn cdn_serves_from_the_backup_when_only_the_mains_input_goes_silent() {
    let (mp, bp) = (Ports::free(), Ports::free());
    // PacketSilenceTimeoutMs 1500 (the harness's AppXml sets it per test).
    let xml = |me: Ports, peer: Ports, role: &str| {
        pair_xml(me, peer, role).replace(
            "<PacketSilenceTimeoutMs>3000</PacketSilenceTimeoutMs>",
            "<PacketSilenceTimeoutMs>1500</PacketSilenceTimeoutMs>",
        )
    };
    let main = Server::start_xml("silence-main", mp, &xml(mp, bp, "main"));
    let backup = Server::start_xml("silence-backup", bp, &xml(bp, mp, "backup"));
    let dir = backup.dir.clone();
    let input = standard_input(&dir, "flv", 90);
    // Separate encoder connections, so that only the main's goes silent.
    let feed = |url: String| {
        Proc::spawn(
            "ffmpeg (feed)",
            Command::new("ffmpeg")
                .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-i"])
                .arg(&input)
                .args(["-c", "copy", "-f", "flv", &url])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
    };
    let main_feed = feed(main.rtmp_url("app", "stream"));
    let _backup_feed = feed(backup.rtmp_url("app", "stream"));
    let cdn_port = free_tcp_port();
    let _cdn = start_cdn(&dir, mp.http, bp.http, cdn_port);
    for (s, what) in [(&main, "main"), (&backup, "backup")] {
        wait_for(&format!("{what}: live"), Duration::from_secs(20), || {
            (s.get("/app/stream/video1.m3u8").0 == 200).then_some(())
        });
    }
    let pid = main_feed.pid().to_string();
    let _ = Command::new("kill").args(["-STOP", &pid]).status();
    let stopped = Instant::now();
    // Through the CDN the stream never stops answering; within the silence
    // timeout (plus a poll) the answers come from the backup.
    // nginx logs every upstream it tried: `upstream=MAIN, BACKUP` on a
    // failover.
    let backup_addr = format!("127.0.0.1:{}", bp.http);
    let mut first_from_backup = None;
    while stopped.elapsed() < Duration::from_secs(6) {
        let (st, _) = http_get(cdn_port, "/app/stream/video1.m3u8");
        assert_eq!(st, 200, "the CDN answered {st} at {:?} after the main's input stopped", stopped.elapsed());
        let log = std::fs::read_to_string(dir.join("cdn/access.log")).unwrap_or_default();
        let from_backup = |l: &str| l.split("upstream=").nth(1).is_some_and(|u| u.contains(&backup_addr));
        if first_from_backup.is_none() && log.lines().rev().take(3).any(from_backup) {
            first_from_backup = Some(stopped.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    let at = first_from_backup.expect("the CDN never answered from the backup");
    // The origin answers 404 within the silence timeout (1.5 s); the CDN
    // then serves its cached copy of the playlist for at most its max-age
    // (TARGETDURATION / 2 = 1 s) before asking again and failing over.
    assert!(at < Duration::from_millis(1500 + 1000 + 1500), "the CDN switched to the backup only after {at:?}");
    println!("the CDN answered from the backup {at:?} after the main's input went silent");
}
