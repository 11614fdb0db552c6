//! Server lifecycle, end to end: configuration checks, shutdown on SIGTERM,
//! and a republished stream's numbering.

mod support;

use std::process::Command;
use std::time::Duration;

use support::*;

fn media_sequence(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:")?.trim().parse().ok())
}

/// The highest segment number listed in a media playlist.
fn last_msn(text: &str) -> Option<u64> {
    let first = media_sequence(text)?;
    let n = text.lines().filter(|l| l.starts_with("#EXTINF:")).count() as u64;
    n.checked_sub(1).map(|k| first + k)
}

#[test]
fn default_config_is_valid_and_errors_name_the_xml_path() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_lockstep"))
        .args(["--check-config", "--config"])
        .arg(format!("{root}/conf/Server.xml"))
        .output()
        .expect("runs");
    assert!(out.status.success(), "conf/Server.xml: {}", String::from_utf8_lossy(&out.stderr));

    let dir = temp_dir("check-config");
    let bad = server_xml(Ports::free(), &[AppXml { timestamp_mode: "Sometimes".into(), ..AppXml::default() }]);
    std::fs::write(dir.join("bad.xml"), bad).expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_lockstep"))
        .args(["--check-config", "--config"])
        .arg(dir.join("bad.xml"))
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("TimestampMode") && err.contains("Application"), "error names the XML path: {err}");
    assert!(err.contains("ZeroBased"), "error says what is allowed: {err}");
}

#[test]
fn sigterm_ends_streams_and_exits_cleanly() {
    let mut server = Server::start("sigterm");
    let dir = server.dir.clone();
    let input = standard_input(&dir, "flv", 20);
    let _push = ffmpeg_push(&input, "flv", &server.rtmp_url("app", "stream"));
    wait_for("the stream's playlist", Duration::from_secs(15), || {
        (server.get("/app/stream/video1.m3u8").0 == 200).then_some(())
    });
    let status = server.proc.terminate().expect("lockstep exits within 5 s of SIGTERM");
    assert!(status.success(), "exit status {status:?}\n{}", server.log_text());
    let log = server.log_text();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("stream ended") && log.contains("app/stream"), "{log}");
}

#[test]
fn republished_stream_numbers_keep_going_forward_in_system_clock_mode() {
    let server =
        Server::start_with("republish", &[AppXml { timestamp_mode: "SystemClock".into(), ..AppXml::default() }]);
    let input = standard_input(&server.dir, "flv", 20);
    let url = server.rtmp_url("app", "stream");

    let mut first = ffmpeg_push(&input, "flv", &url);
    let before = wait_for("three segments of the first session", Duration::from_secs(20), || {
        let (st, body) = server.get("/app/stream/video1.m3u8");
        let text = String::from_utf8_lossy(&body).into_owned();
        (st == 200 && text.matches("#EXTINF:").count() >= 3).then_some(text)
    });
    let first_last = last_msn(&before).expect("numbers");
    // SystemClock numbering is server time: around now / 2 s.
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    assert!(first_last.abs_diff(now_s / 2) < 30, "msn {first_last} is not server time ({now_s} s / 2)");
    first.kill();
    wait_for("the ended stream to answer 404", Duration::from_secs(10), || {
        (server.get("/app/stream/video1.m3u8").0 == 404).then_some(())
    });

    let _second = ffmpeg_push(&input, "flv", &url);
    let after = wait_for("the second session's playlist", Duration::from_secs(20), || {
        let (st, body) = server.get("/app/stream/video1.m3u8");
        (st == 200 && body.windows(7).any(|w| w == b"#EXTINF")).then(|| String::from_utf8_lossy(&body).into_owned())
    });
    let second_first = media_sequence(&after).expect("numbers");
    assert!(second_first > first_last, "second session starts at {second_first}, first ended at {first_last}");
}
