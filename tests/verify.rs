//! End-to-end tests of `lockstep verify`: two real `lockstep` nodes, fed by
//! one ffmpeg through the tee muxer (they must serve identical bytes), or by
//! two different encodes (they must not).

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use support::*;

/// The tests here each run two servers, ffmpeg and the verifier in real
/// time: one at a time, so that a 2-core machine keeps up.
static SERIAL: Mutex<()> = Mutex::new(());

fn node(tag: &str) -> Server {
    Server::start_with(tag, &[AppXml { timestamp_mode: "SystemClock".into(), ..AppXml::default() }])
}

fn wait_live(server: &Server) {
    wait_for("app/stream to be served", Duration::from_secs(30), || {
        assert!(server.log_text().lines().all(|l| !l.contains("panicked")), "{}", server.log_text());
        let (st, _) = server.get("/app/stream/video1.m3u8");
        (st == 200).then_some(())
    });
}

/// Run `lockstep verify` between the two nodes; (exit code, stdout, stderr).
fn verify(main: &Server, backup: &Server, seconds: u32, dir: &Path) -> (i32, String, String) {
    let out_path = dir.join("verify.out");
    let err_path = dir.join("verify.err");
    let out = std::fs::File::create(&out_path).expect("verify output file");
    let err = std::fs::File::create(&err_path).expect("verify error file");
    let mut p = Proc::spawn(
        "lockstep verify",
        Command::new(env!("CARGO_BIN_EXE_lockstep"))
            .arg("verify")
            .args(["--main", &format!("http://127.0.0.1:{}", main.ports.http)])
            .args(["--backup", &format!("http://127.0.0.1:{}", backup.ports.http)])
            .args(["--stream", "app/stream", "--duration", &seconds.to_string(), "--verbose"])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err),
    );
    let status =
        p.wait_timeout(Duration::from_secs(u64::from(seconds) + 60)).expect("lockstep verify finished in time");
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    (status.code().unwrap_or(-1), stdout, stderr)
}

/// The counts of one kind's row in the summary table: identical, differing,
/// missing on main, missing on backup, not comparable.
fn row(stdout: &str, kind: &str) -> [u64; 5] {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} row in:\n{stdout}"));
    let n: Vec<u64> = line.split_whitespace().skip(1).map(|x| x.parse().expect("a count")).collect();
    n.try_into().unwrap_or_else(|_| panic!("bad {kind} row: {line}"))
}

#[test]
fn nodes_fed_by_one_teed_encoder_serve_identical_bytes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir("verify-same");
    let input = standard_input(&dir, "flv", 20);
    let main = node("verify-main");
    let backup = node("verify-backup");
    let _ffmpeg = tee_push(&input, &main.rtmp_url("app", "stream"), &backup.rtmp_url("app", "stream"));
    wait_live(&main);
    wait_live(&backup);

    let (code, out, err) = verify(&main, &backup, 10, &dir);
    let context = || {
        format!(
            "exit {code}\n--- stdout:\n{out}\n--- stderr (verbose):\n{err}\n--- main log:\n{}\n--- backup log:\n{}",
            main.log_text(),
            backup.log_text()
        )
    };
    assert_eq!(code, 0, "verify found a problem between two nodes fed by one encoder:\n{}", context());
    assert!(out.contains(" 0 differing"), "{}", context());
    // Every kind of object was actually compared, not just skipped.
    for kind in ["playlist-blocking", "playlist-delta", "playlist-live", "master", "init", "part", "segment", "ts"] {
        let r = row(&out, kind);
        assert!(r[0] > 0, "no {kind} compared:\n{}", context());
        assert_eq!(r[1], 0, "{kind} differs:\n{}", context());
    }
    assert!(row(&out, "part")[0] >= 20, "too few parts compared in 10 s:\n{}", context());
}

#[test]
fn nodes_fed_by_different_encodes_differ() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = temp_dir("verify-different");
    let input = standard_input(&dir, "flv", 20);
    // Same layout and GOP, other picture and tone: same names, other bytes.
    let other = dir.join("other-20s.flv");
    make_input(
        &other,
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=880:sample_rate=48000",
            "-t",
            "20",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-g",
            "30",
            "-keyint_min",
            "30",
            "-sc_threshold",
            "0",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-f",
            "flv",
        ],
    );
    let main = node("verify-main-x");
    let backup = node("verify-backup-x");
    let _push_main = ffmpeg_push(&input, "flv", &main.rtmp_url("app", "stream"));
    let _push_backup = ffmpeg_push(&other, "flv", &backup.rtmp_url("app", "stream"));
    wait_live(&main);
    wait_live(&backup);

    let (code, out, err) = verify(&main, &backup, 5, &dir);
    let context = || format!("exit {code}\n--- stdout:\n{out}\n--- stderr:\n{err}");
    assert_eq!(code, 1, "different encodes must be reported as different:\n{}", context());
    assert!(!out.contains(" 0 differing"), "{}", context());
    assert!(row(&out, "part")[1] > 0, "no differing part:\n{}", context());
    assert!(out.contains("first difference at byte offset"), "{}", context());
    assert!(out.contains("sha256 "), "{}", context());
    assert!(out.contains("FAIL:"), "{}", context());
}

#[test]
fn usage_and_connection_errors_exit_2() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lockstep"))
            .arg("verify")
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("lockstep runs");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&["--main", "http://127.0.0.1:1"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("usage: lockstep verify"), "{err}");
    // Nothing listens on these ports.
    let (p1, p2) = (free_tcp_port(), free_tcp_port());
    let (code, err) = run(&[
        "--main",
        &format!("http://127.0.0.1:{p1}"),
        "--backup",
        &format!("http://127.0.0.1:{p2}"),
        "--stream",
        "app/stream",
        "--duration",
        "1",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot connect"), "{err}");
}
