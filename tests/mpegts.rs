//! MPEG-TS over UDP provider, end to end: the real `lockstep` binary fed by
//! ffmpeg or by a paced Rust UDP sender; the outputs fetched over HTTP and
//! decoded.

mod support;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::*;

/// A test input of `seconds` (H.264 + AAC, MPEG-TS), made once per process.
fn input(seconds: u32) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("lockstep-e2e-mpegts-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("input dir");
    standard_input(&dir, "ts", seconds)
}

/// A Server.xml with two applications; the second one's MPEG-TS stream gets
/// its own UDP port (a port feeds one stream).
fn two_apps_xml(ports: Ports, first: AppXml, second: AppXml, second_port: u16) -> String {
    let second_stream = second.mpegts_stream.clone();
    let xml = server_xml(ports, &[first, second]);
    let split = xml.rfind("<Application>").expect("second application");
    let (head, tail) = xml.split_at(split);
    let p = ports.mpegts;
    // The harness maps the MPEG-TS port only in the first application; map
    // the second port in the second one.
    head.replace(&format!("<Port>{p}/udp</Port>"), &format!("<Port>{p},{second_port}/udp</Port>"))
        + &tail.replacen(
            "</MPEGTS>",
            &format!("<StreamMap><Stream><Name>{second_stream}</Name><Port>{second_port}</Port></Stream></StreamMap></MPEGTS>"),
            1,
        )
}

/// Whether `got` is a contiguous run of `want` once at most `tail` frames are
/// dropped from its end. A capture that ends mid-stream lacks the last
/// access units in decode order; with B-frames, those are frames just
/// before the last ones in presentation order.
fn run_up_to_tail(want: &[String], got: &[String], tail: usize) -> bool {
    (0..=tail.min(got.len().saturating_sub(1))).any(|k| contains_run(want, &got[..got.len() - k]))
}

/// The LL-HLS video track and the TS segments decode without errors to a
/// contiguous run of the input's video frames (up to a few frames at the
/// end, see [`run_up_to_tail`]); the audio track decodes.
fn assert_outputs_decode(cap: &Capture, input: &Path, dir: &Path, min_frames: usize) {
    const TAIL: usize = 8;
    let (want, err) = framemd5(input, "v:0");
    assert!(err.is_empty(), "input decode errors: {err}");
    let v = dir.join("video1.mp4");
    assert!(cap.write_track("video1", &v) > 0, "no video parts captured");
    let (got, err) = framemd5(&v, "v:0");
    assert!(err.is_empty(), "LL-HLS video decode errors:\n{err}");
    assert!(got.len() >= min_frames, "only {} LL-HLS video frames (want >= {min_frames})", got.len());
    assert!(run_up_to_tail(&want, &got, TAIL), "LL-HLS video frames are not a run of the input's frames");
    if cap.objects.contains_key("audio2_init.mp4") {
        let a = dir.join("audio2.mp4");
        cap.write_track("audio2", &a);
        let (got, err) = framemd5(&a, "a:0");
        assert!(err.is_empty(), "LL-HLS audio decode errors:\n{err}");
        assert!(!got.is_empty(), "no audio frames decoded");
    }
    let ts = dir.join("all.ts");
    assert!(cap.write_ts(&ts) > 0, "no TS segments captured");
    let (got, err) = framemd5(&ts, "v:0");
    assert!(err.is_empty(), "TS video decode errors:\n{err}");
    assert!(got.len() >= min_frames / 2, "only {} TS video frames", got.len());
    assert!(run_up_to_tail(&want, &got, TAIL), "TS video frames are not a run of the input's frames");
}

#[test]
fn udp_push_outputs_decode_to_the_input() {
    let server = Server::start("udp-push");
    let input = input(20);
    let url = format!("udp://127.0.0.1:{}?pkt_size=1316", server.ports.mpegts);
    let mut push = ffmpeg_push(&input, "mpegts", &url);
    let cap = Capture::follow(&server, "app", "stream", Duration::from_secs(60), || !push.running());
    let status = push.wait_timeout(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "ffmpeg push failed: {status:?}");
    assert_outputs_decode(&cap, &input, &server.dir, 450);
    let log = server.log_text();
    assert!(log.contains("stream started") && log.contains("provider=MPEGTS"), "{log}");
}

/// `ts` with random bytes flipped in about `per_mille`/1000 of its packets
/// (deterministic); returns the damaged copy and how many packets.
fn corrupt(ts: &[u8], per_mille: u32) -> (Vec<u8>, usize) {
    let mut out = ts.to_vec();
    let mut x = 0x9e37_79b9u32;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let mut damaged = 0;
    for packet in out.chunks_mut(188) {
        if next() % 1000 >= per_mille {
            continue;
        }
        damaged += 1;
        for _ in 0..1 + next() % 3 {
            let i = next() as usize % packet.len();
            packet[i] ^= 1 << (next() % 8);
        }
    }
    (out, damaged)
}

/// Send `ts` to `port` in 1316-byte datagrams, evenly spread over `span`.
fn send_paced(ts: &[u8], port: u16, span: Duration) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("sender socket");
    let chunks: Vec<&[u8]> = ts.chunks(1316).collect();
    let step = span / chunks.len().max(1) as u32;
    let start = Instant::now();
    for (i, c) in chunks.iter().enumerate() {
        let due = start + step * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let _ = sock.send_to(c, ("127.0.0.1", port));
    }
}

#[test]
fn corrupted_packets_do_not_hurt_the_server_or_another_stream() {
    let ports = Ports::free();
    let clean_port = free_udp_port();
    let xml = two_apps_xml(
        ports,
        AppXml { mpegts_stream: "damaged".into(), ..AppXml::default() },
        AppXml { name: "other".into(), mpegts_stream: "clean".into(), ..AppXml::default() },
        clean_port,
    );
    let server = Server::start_xml("udp-corrupt", ports, &xml);
    let input = input(12);
    let ts = std::fs::read(&input).expect("input");
    let (damaged, n) = corrupt(&ts, 10);
    assert!(n > ts.len() / 188 / 200, "{n} packets damaged");
    let mut push = ffmpeg_push(&input, "mpegts", &format!("udp://127.0.0.1:{clean_port}?pkt_size=1316"));
    let (bad, good) = std::thread::scope(|s| {
        let sender = s.spawn(|| send_paced(&damaged, ports.mpegts, Duration::from_secs(12)));
        let bad = s.spawn(|| {
            Capture::follow(&server, "app", "damaged", Duration::from_secs(40), move || sender.is_finished())
        });
        let good = Capture::follow(&server, "other", "clean", Duration::from_secs(40), || !push.running());
        (bad.join().expect("capture"), good)
    });
    assert!(push.wait_timeout(Duration::from_secs(10)).is_some_and(|s| s.success()), "the clean push failed");
    let mut server = server;
    assert!(server.proc.running(), "the server died:\n{}", server.log_text());
    // The clean stream is untouched.
    assert_outputs_decode(&good, &input, &server.dir, 250);
    // The damaged one kept producing segments and parts that mostly decode.
    let segments = bad.objects.keys().filter(|k| k.starts_with("ts_")).count();
    let parts = bad.objects.keys().filter(|k| k.starts_with("video1_") && k.ends_with(".m4s")).count();
    assert!(segments >= 4 && parts >= 16, "damaged stream: {segments} TS segments, {parts} parts");
    let v = server.dir.join("damaged-video1.mp4");
    bad.write_track("video1", &v);
    let (frames, _errors) = framemd5(&v, "v:0");
    assert!(frames.len() >= 200, "only {} frames decoded from the damaged stream", frames.len());
    let log = server.log_text();
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn udp_stream_ends_on_silence_and_restarts() {
    let server = Server::start_with("udp-silence", &[AppXml { silence_ms: 1000, ..AppXml::default() }]);
    let ts = std::fs::read(input(8)).expect("input");
    let half = &ts[..ts.len() / 2];
    send_paced(half, server.ports.mpegts, Duration::from_secs(2));
    let sent = Instant::now();
    wait_for("the stream's playlist", Duration::from_secs(5), || {
        (server.get("/app/stream/llhls.m3u8").0 == 200).then_some(())
    });
    let gone = wait_for("the stream to end", Duration::from_secs(5), || {
        (server.get("/app/stream/llhls.m3u8").0 == 404).then(|| sent.elapsed())
    });
    assert!(
        gone >= Duration::from_millis(700) && gone <= Duration::from_millis(1500),
        "ended {gone:?} after the last datagram"
    );
    // A later datagram starts a new session.
    send_paced(half, server.ports.mpegts, Duration::from_secs(2));
    wait_for("the stream again", Duration::from_secs(5), || {
        (server.get("/app/stream/llhls.m3u8").0 == 200).then_some(())
    });
    let log = server.log_text();
    assert_eq!(log.matches("stream started").count(), 2, "{log}");
}
