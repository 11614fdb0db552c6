//! SRT provider, end to end: the real `lockstep` binary, ffmpeg (libsrt) or
//! an srt-tokio caller publishing, the LL-HLS and HLS outputs fetched over
//! HTTP and decoded.

mod support;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use srt_tokio::SrtSocket;
use support::*;

/// A test input of `seconds` (H.264 + AAC, MPEG-TS), made once per process.
fn input(seconds: u32) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("lockstep-e2e-srt-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("input dir");
    standard_input(&dir, "ts", seconds)
}

/// A Server.xml with two applications; the second one's MPEG-TS stream gets
/// its own UDP port (a port feeds one stream).
fn two_apps_xml(ports: Ports, first: AppXml, second: AppXml, second_port: u16) -> String {
    let xml = server_xml(ports, &[first, second]);
    let split = xml.rfind("<Application>").expect("second application");
    let (head, tail) = xml.split_at(split);
    let p = ports.mpegts;
    head.replace(&format!("<Port>{p}/udp</Port>"), &format!("<Port>{p},{second_port}/udp</Port>"))
        + &tail.replace(&format!("<Port>{p}</Port>"), &format!("<Port>{second_port}</Port>"))
}

/// Whether `got` is a contiguous run of `want` once at most `tail` frames are
/// dropped from its end. A capture that ends mid-stream (the stream's
/// objects are removed when it ends) lacks the last access units in decode
/// order; with B-frames, those are frames just before the last ones in
/// presentation order.
fn run_up_to_tail(want: &[String], got: &[String], tail: usize) -> bool {
    (0..=tail.min(got.len().saturating_sub(1))).any(|k| contains_run(want, &got[..got.len() - k]))
}

/// [`assert_decodes_to_input`], allowing for the end of the capture: the
/// LL-HLS video track and the TS segments decode without errors to a
/// contiguous run of the input's video frames, up to a few frames at the
/// end (see [`run_up_to_tail`]).
fn assert_outputs_decode(cap: &Capture, input: &std::path::Path, dir: &std::path::Path, min_frames: usize) {
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

fn srt_url(server: &Server, query: &str) -> String {
    format!("srt://127.0.0.1:{}?{query}", server.ports.srt)
}

/// Push `input` to `url`, follow the stream while it is pushed, check the
/// push succeeded and the outputs decode to the input's frames.
fn push_and_check(server: &Server, input: &std::path::Path, url: &str, stream: &str, min_frames: usize) {
    let mut push = ffmpeg_push(input, "mpegts", url);
    let cap = Capture::follow(server, "app", stream, Duration::from_secs(60), || !push.running());
    let status = push.wait_timeout(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "ffmpeg push to {url} failed: {status:?}\n{}", server.log_text());
    assert_outputs_decode(&cap, input, &server.dir, min_frames);
}

/// Push `input` to `url`, expecting the server to refuse the connection:
/// ffmpeg fails within 15 s.
fn push_refused(input: &std::path::Path, url: &str) {
    let mut push = ffmpeg_push(input, "mpegts", url);
    let status = push.wait_timeout(Duration::from_secs(15));
    assert!(status.is_some_and(|s| !s.success()), "push to {url} was not refused: {status:?}");
}

#[test]
fn access_control_streamid_publishes_and_outputs_decode_to_the_input() {
    let server = Server::start("srt-acl");
    let input = input(20);
    // No shell: the stream id goes as is ('#', '!', ':' and ',' included).
    let url = srt_url(&server, "streamid=#!::r=app/stream,m=publish");
    push_and_check(&server, &input, &url, "stream", 450);
    assert!(server.log_text().contains("SRT publisher connected"), "{}", server.log_text());
}

#[test]
fn plain_and_url_streamids_publish() {
    let server = Server::start("srt-plain");
    let input = input(8);
    push_and_check(&server, &input, &srt_url(&server, "streamid=app/plain"), "plain", 150);
    // OvenMediaEngine's form, percent-encoded.
    let ome = format!("streamid=srt%3A%2F%2F127.0.0.1%3A{}%2Fapp%2Fome", server.ports.srt);
    push_and_check(&server, &input, &srt_url(&server, &ome), "ome", 150);
}

#[test]
fn passphrase_is_enforced_per_application() {
    let secret = "lockstep-secret-1";
    let ports = Ports::free();
    let xml = two_apps_xml(
        ports,
        AppXml { srt_passphrase: Some(secret.into()), ..AppXml::default() },
        AppXml { name: "open".into(), ..AppXml::default() },
        free_udp_port(),
    );
    let server = Server::start_xml("srt-pass", ports, &xml);
    let input = input(8);
    // Wrong and missing passphrases: refused, logged, no stream.
    push_refused(&input, &srt_url(&server, "streamid=app/stream&passphrase=wrong-secret-99&pbkeylen=16"));
    let line = server.wait_log("publish rejected", Duration::from_secs(5));
    assert!(line.contains("wrong or missing passphrase") && line.contains("app/stream"), "{line}");
    push_refused(&input, &srt_url(&server, "streamid=app/stream"));
    assert_eq!(server.get("/app/stream/llhls.m3u8").0, 404);
    assert_eq!(server.get("/app/stream/playlist.m3u8").0, 404);
    // An application without a passphrase refuses an encrypting caller,
    // also one that announces no key length (no pbkeylen: srt-protocol
    // panics if such a caller is accepted).
    push_refused(&input, &srt_url(&server, &format!("streamid=open/x&passphrase={secret}&pbkeylen=16")));
    push_refused(&input, &srt_url(&server, &format!("streamid=open/x&passphrase={secret}")));
    let log = server.log_text();
    assert_eq!(log.matches("the caller encrypts").count(), 2, "{log}");
    assert!(!log.contains("stopped unexpectedly"), "{log}");
    // The right passphrase publishes; the output decodes.
    let url = srt_url(&server, &format!("streamid=app/stream&passphrase={secret}&pbkeylen=16"));
    push_and_check(&server, &input, &url, "stream", 150);
}

#[test]
fn bogus_streamids_are_refused_and_a_live_stream_is_untouched() {
    let server = Server::start("srt-bogus");
    let input = input(12);
    let mut live = ffmpeg_push(&input, "mpegts", &srt_url(&server, "streamid=app/live"));
    wait_for("the live stream's playlist", Duration::from_secs(15), || {
        (server.get("/app/live/llhls.m3u8").0 == 200).then_some(())
    });
    let bogus = [
        "streamid=nothing",
        "streamid=app/bad%20name",
        "streamid=app/a/b",
        "streamid=#!::r=app/live2,m=request",
        "streamid=#!::m=publish",
        "streamid=nope/stream",
        "streamid=app/live", // already live: the first publisher keeps it
        "",
    ];
    let cap = std::thread::scope(|s| {
        let refusals = s.spawn(|| {
            for q in bogus {
                push_refused(&input, &srt_url(&server, q));
            }
        });
        let cap = Capture::follow(&server, "app", "live", Duration::from_secs(40), || !live.running());
        refusals.join().expect("every bogus stream id refused");
        cap
    });
    assert!(live.wait_timeout(Duration::from_secs(10)).is_some_and(|s| s.success()), "the live push failed");
    let log = server.log_text();
    let rejected: Vec<&str> = log.lines().filter(|l| l.contains("publish rejected")).collect();
    assert_eq!(rejected.len(), bogus.len(), "one log line per refusal:\n{log}");
    for needle in
        ["\"nothing\"", "is not app/stream", "m=request", "no resource", "unknown application", "already live"]
    {
        assert!(rejected.iter().any(|l| l.contains(needle)), "no refusal mentions {needle}:\n{log}");
    }
    assert!(rejected.iter().all(|l| l.contains("provider=\"SRT\"") && l.contains("peer=")), "{log}");
    assert_outputs_decode(&cap, &input, &server.dir, 250);
}

/// All URLs of a stream: its playlists and every object they list.
fn stream_urls(server: &Server, base: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for master in ["llhls.m3u8", "playlist.m3u8"] {
        let path = format!("{base}/{master}");
        let (st, body) = server.get(&path);
        if st != 200 {
            continue;
        }
        urls.push(path);
        let text = String::from_utf8_lossy(&body).into_owned();
        let media: Vec<String> = playlist_uris(&text)
            .into_iter()
            .chain(text.lines().filter_map(|l| l.split("URI=\"").nth(1)?.split('"').next().map(String::from)))
            .filter(|u| u.ends_with(".m3u8"))
            .collect();
        for m in media {
            let path = format!("{base}/{m}");
            let (st, body) = server.get(&path);
            if st != 200 {
                continue;
            }
            urls.push(path);
            for u in playlist_uris(&String::from_utf8_lossy(&body)) {
                urls.push(format!("{base}/{u}"));
            }
        }
    }
    urls.sort();
    urls.dedup();
    urls
}

#[test]
fn a_silent_connection_ends_the_stream_within_the_silence_timeout() {
    let silence = Duration::from_millis(1000);
    let server = Server::start_with("srt-silence", &[AppXml { silence_ms: 1000, ..AppXml::default() }]);
    let ts = std::fs::read(input(8)).expect("input");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let addr = format!("127.0.0.1:{}", server.ports.srt);
    let mut socket = rt
        .block_on(async {
            let call = SrtSocket::builder().latency(Duration::from_millis(20)).call(addr.as_str(), Some("app/silent"));
            tokio::time::timeout(Duration::from_secs(5), call).await
        })
        .expect("connected in time")
        .expect("connected");
    // About 5 s of media, paced; then silence with the connection open.
    let sent = rt.block_on(async {
        for (i, chunk) in ts[..ts.len() * 5 / 8].chunks(1316).enumerate() {
            socket.send((std::time::Instant::now(), Bytes::copy_from_slice(chunk))).await.expect("send");
            if i % 2 == 1 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        Instant::now()
    });
    let urls = wait_for("the stream's outputs", Duration::from_secs(5), || {
        let u = stream_urls(&server, "/app/silent");
        (u.iter().any(|u| u.ends_with(".m4s")) && u.iter().any(|u| u.ends_with(".ts"))).then_some(u)
    });
    let fetched = sent.elapsed();
    assert!(fetched < silence / 2, "listing the outputs took {fetched:?}");
    // Still there well before the timeout...
    std::thread::sleep((silence * 6 / 10).saturating_sub(sent.elapsed()));
    let early: Vec<&String> = urls.iter().filter(|u| server.get(u).0 != 200).collect();
    assert!(early.is_empty(), "gone before the silence timeout: {early:?}");
    // ...and every URL 404 within the timeout + 200 ms.
    let gone = wait_for("every URL of the stream to 404", Duration::from_secs(5), || {
        urls.iter().all(|u| server.get(u).0 == 404).then(|| sent.elapsed())
    });
    // The server gets the last packet one SRT latency after it was sent
    // (TSBPD); the stream must be gone PacketSilenceTimeoutMs + 200 ms
    // after that.
    let latency = socket.settings().send_tsbpd_latency;
    eprintln!("every URL 404 {gone:?} after the last packet was sent (SRT latency {latency:?})");
    assert!(
        gone <= latency + silence + Duration::from_millis(200),
        "URLs 404 only {gone:?} after the last packet was sent (SRT latency {latency:?})"
    );
    // The server dropped the connection.
    let closed = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), async { while socket.next().await.is_some() {} }).await
    });
    assert!(closed.is_ok(), "the server did not close the silent connection");
    let log = server.log_text();
    assert!(log.contains("PacketSilenceTimeoutMs") && log.contains("SRT connection closed"), "{log}");
}
