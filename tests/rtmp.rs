//! End-to-end tests of the RTMP provider: the real `lockstep` binary, ffmpeg
//! and a minimal RTMP publisher written here (rml_rtmp's handshake and chunk
//! serializer) for what ffmpeg cannot do (stop sending on an open socket,
//! timestamps near the 32-bit wrap, malformed input).

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::rtmp_client::{closed_within, flv_tags, RawPublisher};
use support::*;

// ------------------------------------------------------------ helpers ---

/// A Server.xml with several applications; only the first maps the
/// MPEG-TS port (a port may be mapped once).
fn multi_app_xml(ports: Ports, apps: &[AppXml]) -> String {
    let mut seen = false;
    server_xml(ports, apps)
        .lines()
        .filter(|l| {
            if !l.contains("<StreamMap>") {
                return true;
            }
            let keep = !seen;
            seen = true;
            keep
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn app(name: &str, mode: &str) -> AppXml {
    AppXml { name: name.into(), timestamp_mode: mode.into(), ..AppXml::default() }
}

/// ffmpeg pushing `input` in real time with extra input options.
fn ffmpeg_push_with(input: &Path, input_opts: &[&str], url: &str) -> Proc {
    Proc::spawn(
        "ffmpeg (push)",
        Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-re"])
            .args(input_opts)
            .arg("-i")
            .arg(input)
            .args(["-c", "copy", "-f", "flv", url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

fn get_text(server: &Server, path: &str) -> Option<String> {
    let (st, body) = server.get(path);
    (st == 200).then(|| String::from_utf8_lossy(&body).into_owned())
}

/// The LL-HLS video playlist of `app/stream`, once it is served.
fn video_playlist(server: &Server, app: &str, stream: &str) -> Option<String> {
    get_text(server, &format!("/{app}/{stream}/video1.m3u8"))
}

fn wait_live(server: &Server, app: &str, stream: &str, limit: Duration) -> String {
    wait_for(&format!("{app}/{stream} to be served"), limit, || {
        assert!(server.log_text().lines().all(|l| !l.contains("panicked")), "{}", server.log_text());
        video_playlist(server, app, stream)
    })
}

/// Wait until the video playlist of `app/stream` differs from `before`.
fn wait_advance(server: &Server, app: &str, stream: &str, before: &str, what: &str) -> String {
    wait_for(&format!("{app}/{stream} to keep advancing after {what}"), Duration::from_secs(6), || {
        video_playlist(server, app, stream).filter(|p| p != before)
    })
}

fn wall_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// `YYYY-MM-DDThh:mm:ss.sssZ` → milliseconds since the epoch.
fn parse_pdt(s: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| -> i64 { s[r].parse().expect("PDT field") };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // H. Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400_000 + n(11..13) * 3_600_000 + n(14..16) * 60_000 + n(17..19) * 1000 + n(20..23)
}

/// The first segment of a media playlist: (PDT in ms, URI).
fn first_segment(playlist: &str) -> (i64, String) {
    let pdt = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))
        .map(parse_pdt)
        .expect("a PROGRAM-DATE-TIME");
    let uri = playlist.lines().find(|l| !l.is_empty() && !l.starts_with('#')).expect("a segment").to_string();
    (pdt, uri)
}

/// Segments listed (full segments, not parts).
fn segment_count(playlist: &str) -> usize {
    playlist.lines().filter(|l| l.starts_with("#EXTINF:")).count()
}

/// baseMediaDecodeTime of the first `tfdt` box in an fMP4 fragment.
fn tfdt(fragment: &[u8]) -> u64 {
    let i = fragment.windows(4).position(|w| w == b"tfdt").expect("a tfdt box") + 4;
    let version = fragment[i];
    let v = &fragment[i + 4..];
    if version == 1 {
        u64::from_be_bytes(v[..8].try_into().unwrap())
    } else {
        u64::from(u32::from_be_bytes(v[..4].try_into().unwrap()))
    }
}

/// The 20 s input, once for every test of this file.
fn shared_input() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lockstep-e2e-rtmp-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("input dir");
    static ONCE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    standard_input(&dir, "flv", 20)
}

/// Init + the parts of every segment but the last of rendition `label`, in
/// order: what a player had of the complete segments when the stream ended.
/// (The stream's objects go when it ends, so its last part is never served;
/// cut anywhere inside a mini-GOP, its decode order would leave B-frame
/// holes in the presentation order. Segments start at keyframes.)
fn write_complete_segments(cap: &Capture, label: &str, path: &Path) -> usize {
    let mut parts: Vec<(u64, u32, &Vec<u8>)> = cap
        .objects
        .iter()
        .filter_map(|(name, b)| {
            let rest = name.strip_prefix(&format!("{label}_"))?.strip_suffix(".m4s")?;
            let (msn, part) = rest.split_once('.')?;
            Some((msn.parse().ok()?, part.parse().ok()?, b))
        })
        .collect();
    parts.sort_by_key(|p| (p.0, p.1));
    let last = parts.last().map_or(0, |p| p.0);
    let mut all = cap.objects.get(&format!("{label}_init.mp4")).expect("init segment fetched").clone();
    let mut n = 0;
    for p in parts.iter().filter(|p| p.0 < last) {
        all.extend_from_slice(p.2);
        n += 1;
    }
    std::fs::write(path, all).expect("write track");
    n
}

/// Like `assert_decodes_to_input`, over the complete segments only.
fn assert_complete_segments_decode_to_input(cap: &Capture, input: &Path, dir: &Path, min_frames: usize) {
    let (want, err) = framemd5(input, "v:0");
    assert!(err.is_empty(), "input decode errors: {err}");
    let v = dir.join("video1-complete.mp4");
    assert!(write_complete_segments(cap, "video1", &v) > 0, "no video parts captured");
    let (got, err) = framemd5(&v, "v:0");
    assert!(err.is_empty(), "LL-HLS video decode errors:\n{err}");
    assert!(got.len() >= min_frames, "only {} LL-HLS video frames (want >= {min_frames})", got.len());
    assert!(contains_run(&want, &got), "LL-HLS video frames are not a contiguous run of the input's frames");
    let a = dir.join("audio2-complete.mp4");
    assert!(write_complete_segments(cap, "audio2", &a) > 0, "no audio parts captured");
    let (got, err) = framemd5(&a, "a:0");
    assert!(err.is_empty(), "LL-HLS audio decode errors:\n{err}");
    // At least 90 % of the video's duration (1024-sample AAC frames at 48 kHz, video at 30 fps).
    assert!(got.len() * 1024 * 10 >= min_frames * 1600 * 9, "only {} audio frames", got.len());
    let ts = dir.join("all.ts");
    assert!(cap.write_ts(&ts) > 0, "no TS segments captured");
    let (got, err) = framemd5(&ts, "v:0");
    assert!(err.is_empty(), "TS video decode errors:\n{err}");
    assert!(got.len() >= min_frames, "only {} TS video frames", got.len());
    assert!(contains_run(&want, &got), "TS video frames are not a contiguous run of the input's frames");
}

// ----------------------------------------------- a minimal publisher ---

/// A chunk with a type 0 header on chunk stream `csid` (< 64) carrying a
/// whole message (shorter than 128 bytes).
fn raw_message(csid: u8, type_id: u8, stream_id: u32, body: &[u8]) -> Vec<u8> {
    let mut v = vec![csid, 0, 0, 0];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    v.push(type_id);
    v.extend_from_slice(&stream_id.to_le_bytes());
    v.extend_from_slice(body);
    v
}

// -------------------------------------------------------------- tests ---

/// ffmpeg publishes a 20 s H.264/AAC file over RTMP; the LL-HLS and HLS
/// output decodes to exactly the input's frames.
#[test]
fn ffmpeg_push_is_packaged_frame_exact() {
    let input = shared_input();
    let server = Server::start("rtmp-push");
    let mut push = ffmpeg_push(&input, "flv", &server.rtmp_url("app", "stream"));
    let mut master = None;
    let cap = Capture::follow(&server, "app", "stream", Duration::from_secs(60), || {
        if master.is_none() {
            master = get_text(&server, "/app/stream/llhls.m3u8");
        }
        !push.running()
    });
    let status = push.wait_timeout(Duration::from_secs(10)).expect("ffmpeg finished");
    assert!(status.success(), "ffmpeg failed:\n{}", server.log_text());
    let master = master.expect("the LL-HLS master playlist was served while publishing");
    assert!(master.contains("video1.m3u8") && master.contains("audio2.m3u8"), "{master}");
    for media in ["video1.m3u8", "audio2.m3u8"] {
        assert!(cap.playlists.get(media).is_some_and(|v| v.len() > 10), "{media} was served and advanced");
    }
    // 20 s at 30 fps; all but the last 2 s segment, from the first keyframe.
    assert_complete_segments_decode_to_input(&cap, &input, &server.dir, 510);
    // The publisher unpublished: the stream is gone.
    wait_for("the stream to end", Duration::from_secs(5), || {
        (server.get("/app/stream/llhls.m3u8").0 == 404).then_some(())
    });
    let log = server.log_text();
    assert!(log.contains("RTMP publisher started"), "{log}");
    assert!(log.contains("the publisher unpublished"), "{log}");
    assert!(!log.contains("WARN"), "no warnings for a clean publish:\n{log}");
}

/// Bad input of every kind is refused with a clear log line, while another
/// stream published by ffmpeg keeps advancing and the server stays up.
#[test]
fn bad_input_leaves_other_streams_alone() {
    let input = shared_input();
    let server = Server::start("rtmp-bad");
    let port = server.ports.rtmp;
    // Looped: live until the end of the test (the guard kills it).
    let _good = ffmpeg_push_with(&input, &["-stream_loop", "-1"], &server.rtmp_url("app", "good"));
    let mut before = wait_live(&server, "app", "good", Duration::from_secs(15));

    // 1. Random bytes (not an RTMP version byte): closed at once.
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut random: Vec<u8> = (0..65_536)
        .map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng as u8
        })
        .collect();
    random[0] = 0x47;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = s.write_all(&random);
    assert!(closed_within(&mut s, Duration::from_secs(3)), "random bytes: connection closed");
    server.wait_log("invalid handshake", Duration::from_secs(3));
    // The same after a valid version byte: the handshake passes (rml_rtmp
    // accepts any packet 1 and 2), the chunk stream does not.
    random[0] = 3;
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = s.write_all(&random);
    drop(s);
    before = wait_advance(&server, "app", "good", &before, "random bytes");

    // 2. A truncated handshake.
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(&[3u8; 1000]).unwrap();
    drop(s);
    server.wait_log("truncated handshake", Duration::from_secs(3));
    before = wait_advance(&server, "app", "good", &before, "a truncated handshake");

    // 3. An oversized chunk size.
    let mut p = RawPublisher::handshake(port);
    p.sock.write_all(&raw_message(2, 1, 0, &0x7fff_ffffu32.to_be_bytes())).unwrap();
    assert!(p.closed_within(Duration::from_secs(3)), "huge chunk size: connection closed");
    server.wait_log("peer chunk size 2147483647", Duration::from_secs(3));
    // And a message length over the limit before publishing.
    let mut p = RawPublisher::handshake(port);
    let mut h = vec![3, 0, 0, 0, 0xff, 0xff, 0xff, 20, 0, 0, 0, 0];
    h.extend_from_slice(&[0; 100]);
    p.sock.write_all(&h).unwrap();
    assert!(p.closed_within(Duration::from_secs(3)), "huge message: connection closed");
    server.wait_log("byte limit before publishing", Duration::from_secs(3));
    before = wait_advance(&server, "app", "good", &before, "an oversized chunk size");

    // 4. Invalid AMF in a command: a date (unsupported), then too few values, then deep nesting.
    for (i, body) in [
        &b"\x02\x00\x07connect\x00\x3f\xf0\x00\x00\x00\x00\x00\x00\x0b\x00"[..],
        &b"\x02\x00\x07connect\x00\x3f\xf0\x00\x00\x00\x00\x00\x00"[..],
        &b"\x02\x00\x07connect\x00\x3f\xf0\x00\x00\x00\x00\x00\x00\x0a\x00\x00\x00\x01\x0a\x00\x00\x00\x01\x0a\x00\x00\x00\x01\x0a\x00\x00\x00\x01\x0a\x00\x00\x00\x01\x0a\x00\x00\x00\x01\x0a\x00\x00\x00\x01\x0a\x00\x00\x00\x01\x0a\x00\x00\x00\x01\x0a\x00\x00\x00\x01\x0a\x00\x00\x00\x01\x0a\x00\x00\x00\x01\x0a\x00\x00\x00\x01\x0a\x00\x00\x00\x01\x0a\x00\x00\x00\x01\x0a\x00\x00\x00\x01\x0a\x00\x00\x00\x01"[..],
    ]
    .into_iter()
    .enumerate()
    {
        let mut p = RawPublisher::handshake(port);
        p.sock.write_all(&raw_message(3, 20, 0, body)).unwrap();
        assert!(p.closed_within(Duration::from_secs(3)), "invalid AMF {i}: connection closed");
    }
    server.wait_log("invalid AMF0 command: unsupported AMF0 type 0x0b", Duration::from_secs(3));
    server.wait_log("invalid AMF0 command: 2 values", Duration::from_secs(3));
    server.wait_log("invalid AMF0 command: AMF0 nesting deeper than 16", Duration::from_secs(3));
    before = wait_advance(&server, "app", "good", &before, "invalid AMF");

    // 5. A publish to an unknown application: refused, ffmpeg fails, the log names the app.
    let mut unknown = ffmpeg_push(&input, "flv", &server.rtmp_url("nosuchapp", "s"));
    let st = unknown.wait_timeout(Duration::from_secs(10)).expect("ffmpeg gave up");
    assert!(!st.success());
    let line = server.wait_log("publish rejected", Duration::from_secs(3));
    assert!(line.contains("nosuchapp") && line.contains("unknown application"), "{line}");
    before = wait_advance(&server, "app", "good", &before, "an unknown app");

    // 6. An unsupported codec (Sorenson H.263).
    let flv1 = server.dir.join("flv1.flv");
    make_input(&flv1, &["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "4", "-c:v", "flv1", "-f", "flv"]);
    let mut bad_codec = ffmpeg_push(&flv1, "flv", &server.rtmp_url("app", "h263"));
    bad_codec.wait_timeout(Duration::from_secs(10)).expect("ffmpeg gave up");
    let line = server.wait_log("publisher dropped", Duration::from_secs(3));
    assert!(line.contains("app/h263") && line.contains("unsupported video codec Sorenson H.263"), "{line}");
    assert_eq!(server.get("/app/h263/llhls.m3u8").0, 404);
    before = wait_advance(&server, "app", "good", &before, "an unsupported codec");

    // 7. A second publisher for the live stream: refused; the first keeps going.
    let mut second = ffmpeg_push(&input, "flv", &server.rtmp_url("app", "good"));
    let st = second.wait_timeout(Duration::from_secs(10)).expect("ffmpeg gave up");
    assert!(!st.success());
    let line = server.wait_log("is already live", Duration::from_secs(3));
    assert!(line.contains("publish rejected") && line.contains("the first publisher keeps it"), "{line}");
    // And one from the raw publisher, which sends media after its refused publish.
    let mut p = RawPublisher::publish(port, "app", "good");
    let tags = flv_tags(&input);
    for t in tags.iter().take(50) {
        if p.tag(t.tag_type, t.data.clone(), t.timestamp_ms as u32).is_err() {
            break;
        }
    }
    assert!(p.closed_within(Duration::from_secs(3)), "second publisher: connection closed");
    let _ = wait_advance(&server, "app", "good", &before, "a second publisher");

    let mut server = server;
    assert!(server.proc.running(), "the server is up:\n{}", server.log_text());
    let log = server.log_text();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.lines().any(|l| l.contains("stream ended") && l.contains("app/good")), "good never ended:\n{log}");
}

/// A publisher that stops sending but keeps its socket open: every URL of
/// the stream answers 404 within PacketSilenceTimeoutMs + 200 ms of its
/// last packet, and the server closes the connection.
#[test]
fn silent_publisher_is_dropped() {
    let input = shared_input();
    let silence_ms = 1000u64;
    let server = Server::start_with("rtmp-silence", &[AppXml { silence_ms: silence_ms as u32, ..AppXml::default() }]);
    let tags = flv_tags(&input);
    let mut p = RawPublisher::publish(server.ports.rtmp, "app", "quiet");
    // About 3.5 s of media, paced in real time.
    let start = Instant::now();
    let mut last_packet = Instant::now();
    for t in tags.iter().filter(|t| t.timestamp_ms < 3500) {
        let due = start + Duration::from_millis(t.timestamp_ms.max(0) as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        p.tag(t.tag_type, t.data.clone(), t.timestamp_ms as u32).expect("send media");
        last_packet = Instant::now();
    }
    let playlist = wait_live(&server, "app", "quiet", Duration::from_secs(3));
    let part = playlist_uris(&playlist).into_iter().find(|u| u.ends_with(".m4s")).expect("a part");
    let urls: Vec<String> = ["llhls.m3u8", "video1.m3u8", "audio2.m3u8", "video1_init.mp4", "playlist.m3u8", &part]
        .iter()
        .map(|n| format!("/app/quiet/{n}"))
        .collect();
    for u in &urls {
        // Some may already be gone if this ran late; none may outlive the timeout.
        let st = server.get(u).0;
        assert!(st == 200 || last_packet.elapsed() > Duration::from_millis(silence_ms), "{u}: {st}");
    }
    // Nothing sent from here on; the socket stays open.
    wait_for("the stream to end", Duration::from_millis(silence_ms + 2000), || {
        (server.get("/app/quiet/llhls.m3u8").0 == 404).then_some(())
    });
    let gone_after = last_packet.elapsed();
    eprintln!("silence: every URL 404 {gone_after:?} after the last packet");
    assert!(
        gone_after <= Duration::from_millis(silence_ms + 200),
        "404 after {gone_after:?}, more than {silence_ms} + 200 ms after the last packet"
    );
    for u in &urls {
        assert_eq!(server.get(u).0, 404, "{u}");
    }
    assert!(p.closed_within(Duration::from_secs(2)), "the server closed the silent publisher's connection");
    server.wait_log("no packet for 1000 ms", Duration::from_secs(2));
}

/// A server that stands still (SIGSTOP) for longer than
/// PacketSilenceTimeoutMs does not end a stream whose encoder kept sending:
/// the packets wait in the socket, and the late silence timer gives the
/// reader the chance to deliver them.
#[test]
fn a_stalled_server_keeps_streams_whose_encoder_kept_sending() {
    let input = shared_input();
    let server = Server::start_with("rtmp-stall", &[AppXml { silence_ms: 1000, ..AppXml::default() }]);
    let _enc = ffmpeg_push(&input, "flv", &server.rtmp_url("app", "busy"));
    let before = wait_live(&server, "app", "busy", Duration::from_secs(15));
    let pid = server.proc.pid().to_string();
    let signal = |sig: &str| {
        let ok = Command::new("kill").args([sig, &pid]).status().is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    };
    signal("-STOP");
    std::thread::sleep(Duration::from_millis(2500));
    signal("-CONT");
    server.wait_log("the server stalled", Duration::from_secs(5));
    wait_advance(&server, "app", "busy", &before, "the stream to go on after the stall");
    std::thread::sleep(Duration::from_secs(2));
    let log = server.log_text();
    assert!(!log.contains("stream ended"), "the stream was ended:\n{log}");
    assert_eq!(server.get("/app/busy/llhls.m3u8").0, 200);
}

/// TimestampMode for RTMP: ZeroBased starts at 0, Original keeps the
/// encoder's timestamps (7 s here), SystemClock maps onto the wall clock;
/// and timestamps crossing the 32-bit wrap continue without a break.
#[test]
fn timestamp_modes() {
    let input = shared_input();
    let offset = {
        // The input shifted to start at 7 s.
        let dir = std::env::temp_dir().join(format!("lockstep-e2e-rtmp-inputs-{}", std::process::id()));
        let path = dir.join("offset7.flv");
        make_input(
            &path,
            &["-i", input.to_str().unwrap(), "-c", "copy", "-t", "12", "-output_ts_offset", "7", "-f", "flv"],
        );
        path
    };
    let ports = Ports::free();
    // The wrap stream is sent in a burst, then stays open and silent.
    let wrap_app = AppXml { silence_ms: 0, ..app("wrap", "ZeroBased") };
    let apps = [app("zero", "ZeroBased"), app("orig", "Original"), app("sys", "SystemClock"), wrap_app];
    let server = Server::start_xml("rtmp-modes", ports, &multi_app_xml(ports, &apps));

    let t0 = wall_ms();
    let _zero = ffmpeg_push(&input, "flv", &server.rtmp_url("zero", "s"));
    let _orig = ffmpeg_push_with(&offset, &["-copyts"], &server.rtmp_url("orig", "s"));
    let _sys = ffmpeg_push(&input, "flv", &server.rtmp_url("sys", "s"));
    // Timestamps from 2 s before the 32-bit wrap, sent as fast as possible.
    let tags = flv_tags(&input);
    let mut wrap = RawPublisher::publish(ports.rtmp, "wrap", "s");
    let base = u32::MAX - 1999;
    for t in tags.iter().filter(|t| t.timestamp_ms < 10_000) {
        wrap.tag(t.tag_type, t.data.clone(), base.wrapping_add(t.timestamp_ms as u32)).expect("send media");
    }

    // Two complete segments in every stream; when each was first served.
    let mut first = std::collections::BTreeMap::new();
    let mut served = std::collections::BTreeMap::new();
    wait_for("two segments in every stream", Duration::from_secs(20), || {
        for name in ["wrap", "zero", "orig", "sys"] {
            if first.contains_key(name) {
                continue;
            }
            let Some(pl) = video_playlist(&server, name, "s") else { continue };
            served.entry(name).or_insert_with(wall_ms);
            if segment_count(&pl) < 2 {
                continue;
            }
            let (pdt, uri) = first_segment(&pl);
            let (st, body) = server.get(&format!("/{name}/s/{uri}"));
            assert_eq!(st, 200, "{name}: {uri}");
            first.insert(name, (pdt, tfdt(&body), pl));
        }
        (first.len() == 4).then_some(())
    });
    let t1 = served["sys"];

    let (pdt, tfdt_90k, _) = &first["zero"];
    assert!((0..1000).contains(pdt), "ZeroBased: first PDT {pdt} ms");
    assert!(*tfdt_90k < 90_000, "ZeroBased: first tfdt {tfdt_90k}");

    let (pdt, tfdt_90k, _) = &first["orig"];
    assert!((6_500..8_000).contains(pdt), "Original: first PDT {pdt} ms, want about 7 s");
    assert!((6_500 * 90..8_000 * 90).contains(tfdt_90k), "Original: first tfdt {tfdt_90k}");

    let (pdt, tfdt_90k, _) = &first["sys"];
    assert!(
        (t0 - 1000..=t1 + 100).contains(pdt),
        "SystemClock: first PDT {pdt} ms, pushed between {t0} and {t1} (wall clock, ms)"
    );
    assert!(tfdt_90k.abs_diff(*pdt as u64 * 90) < 90, "SystemClock: tfdt {tfdt_90k} matches the PDT {pdt}");

    let (pdt, tfdt_90k, _) = &first["wrap"];
    assert!((0..1000).contains(pdt), "wrap: first PDT {pdt} ms");
    assert!(*tfdt_90k < 90_000, "wrap: first tfdt {tfdt_90k}");
    // All 10 s arrived as one continuous timeline across the wrap.
    let pl = wait_for("the wrapped stream to reach 8 s", Duration::from_secs(10), || {
        let p = video_playlist(&server, "wrap", "s")?;
        let total: f64 = p
            .lines()
            .filter_map(|l| l.strip_prefix("#EXTINF:"))
            .filter_map(|d| d.trim_end_matches(',').split(',').next()?.parse::<f64>().ok())
            .sum();
        (total >= 8.0).then_some(p)
    });
    assert!(!pl.contains("#EXT-X-DISCONTINUITY\n"), "no discontinuity at the wrap:\n{pl}");
    let log = server.log_text();
    assert!(!log.contains("discontinuit"), "{log}");
}
