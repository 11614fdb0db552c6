//! Hostile clients, end to end: the real `lockstep` binary on loopback, and
//! clients that misbehave on purpose (slowloris on HTTP and RTMP, thousands
//! of idle connections, broken timestamps, a 100 Mb/s flood, two publishers
//! racing for a name, SRT through a lossy relay, malicious HTTP requests).
//!
//! Every case checks that the offender is limited or dropped with a clear
//! log line, that a bystander stream pushed by ffmpeg keeps producing parts
//! on time while a viewer's playlist reloads keep succeeding, that the
//! server is alive afterwards, and that its RSS comes back to within
//! [`RSS_TOLERANCE_KB`] of the baseline. docs/robustness.md lists the cases.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use support::rtmp_client::{flv_tags, RawPublisher};
use support::*;

/// RSS after an attack may exceed the baseline by this much (KiB): the
/// allocator keeps some freed memory, and the bystander's playlist window
/// is still filling.
const RSS_TOLERANCE_KB: u64 = 32 * 1024;

/// `MaxBitrateKbps` of the test application.
const MAX_KBPS: u32 = 20_000;

/// Part duration of the test configuration (`ChunkDuration` 0.5 s).
const PART_S: f64 = 0.5;

fn golden() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/avc30_gop1/input.flv")
}

/// The bystander's 60 s input, made once per process.
fn long_input() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("lockstep-e2e-hostile-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("input dir");
    standard_input(&dir, "flv", 60)
}

fn ts_input() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("lockstep-e2e-hostile-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("input dir");
    standard_input(&dir, "ts", 20)
}

/// Raise this process's open-file soft limit to the hard limit.
fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    lim.rlim_cur
}

/// VmRSS of `pid` in KiB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

fn count_lines(server: &Server, needle: &str) -> usize {
    server.log_text().lines().filter(|l| l.contains(needle)).count()
}

fn has_line(server: &Server, parts: &[&str]) -> bool {
    server.log_text().lines().any(|l| parts.iter().all(|p| l.contains(p)))
}

fn wait_line(server: &Server, parts: &[&str], limit: Duration) -> String {
    wait_for(&format!("a log line with {parts:?}"), limit, || {
        server.log_text().lines().find(|l| parts.iter().all(|p| l.contains(p))).map(str::to_string)
    })
}

/// The path of the first media playlist of `app/stream`'s LL-HLS master.
fn media_playlist(port: u16, app: &str, stream: &str) -> Option<String> {
    let (st, body) = http_get(port, &format!("/{app}/{stream}/llhls.m3u8"));
    if st != 200 {
        return None;
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let uri = text
        .lines()
        .filter_map(|l| if l.starts_with('#') { l.split("URI=\"").nth(1)?.split('"').next() } else { Some(l) })
        .find(|u| u.ends_with(".m3u8") && u.contains("video"))?
        .to_string();
    Some(format!("/{app}/{stream}/{uri}"))
}

/// The last part URI of a media playlist.
fn last_part(text: &str) -> Option<String> {
    text.lines()
        .rfind(|l| l.starts_with("#EXT-X-PART:"))
        .and_then(|l| l.split("URI=\"").nth(1)?.split('"').next().map(str::to_string))
}

/// A viewer reloading one stream's media playlist every 250 ms.
struct Viewer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<ViewerLog>>,
}

#[derive(Debug, Default)]
struct ViewerLog {
    reloads: usize,
    failures: Vec<String>,
    /// When each new last part first appeared.
    parts: Vec<(Instant, String)>,
    discontinuity_seen: bool,
}

impl Viewer {
    /// Start once the stream is live (within 20 s).
    fn start(server: &Server, app: &str, stream: &str) -> Viewer {
        let port = server.ports.http;
        let path = wait_for(&format!("{app}/{stream} live"), Duration::from_secs(20), || {
            assert!(
                server.log_text().lines().all(|l| !l.contains("panicked")),
                "server panicked:\n{}",
                server.log_text()
            );
            let p = media_playlist(port, app, stream)?;
            (http_get(port, &p).0 == 200).then_some(p)
        });
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut log = ViewerLog::default();
            while !s.load(Ordering::Relaxed) {
                let (st, body) = http_get(port, &path);
                log.reloads += 1;
                if st != 200 {
                    log.failures.push(format!("{path}: status {st}"));
                } else {
                    let text = String::from_utf8_lossy(&body);
                    log.discontinuity_seen |= text.lines().any(|l| l == "#EXT-X-DISCONTINUITY");
                    if let Some(p) = last_part(&text) {
                        if log.parts.last().map(|x| &x.1) != Some(&p) {
                            log.parts.push((Instant::now(), p));
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            log
        });
        Viewer { stop, handle: Some(handle) }
    }

    fn finish(mut self) -> ViewerLog {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().map(|h| h.join().expect("viewer thread")).unwrap_or_default()
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl ViewerLog {
    /// New parts kept appearing from `from` to the end: no gap over 3 s
    /// (parts are 0.5 s), and at least 60 % of real time's worth of parts.
    fn assert_on_time(&self, what: &str, from: Instant) {
        assert!(self.failures.is_empty(), "{what}: playlist reloads failed: {:?}", self.failures);
        let Some(end) = self.parts.last().map(|p| p.0) else { panic!("{what}: no parts seen") };
        let mut prev = from;
        let mut max_gap = Duration::ZERO;
        let mut n = 0;
        for (t, _) in self.parts.iter().filter(|p| p.0 >= from) {
            max_gap = max_gap.max(t.saturating_duration_since(prev));
            prev = *t;
            n += 1;
        }
        let span = end.saturating_duration_since(from).as_secs_f64();
        eprintln!("{what}: {} reloads, {n} new parts in {span:.1} s, largest gap {max_gap:?}", self.reloads);
        assert!(span >= 3.0, "{what}: parts stopped {span:.1} s after the start of the check");
        assert!(max_gap <= Duration::from_secs(3), "{what}: {max_gap:?} without a new part");
        assert!(n as f64 >= 0.6 * span / PART_S, "{what}: only {n} new parts in {span:.1} s");
    }
}

/// The stream every case must leave alone: ffmpeg pushing the 60 s input
/// to `app/bystander`, with a viewer.
struct Bystander {
    push: Proc,
    viewer: Viewer,
    since: Instant,
}

impl Bystander {
    fn start(server: &Server) -> Bystander {
        let push = ffmpeg_push(&long_input(), "flv", &server.rtmp_url("app", "bystander"));
        let viewer = Viewer::start(server, "app", "bystander");
        Bystander { push, viewer, since: Instant::now() }
    }

    /// Stop watching; assert the stream kept going throughout.
    fn check(mut self, server: &Server) {
        assert!(self.push.running(), "the bystander's ffmpeg stopped:\n{}", server.log_text());
        let log = self.viewer.finish();
        log.assert_on_time("bystander", self.since);
        assert!(!has_line(server, &["app/bystander", "stream ended"]), "bystander ended:\n{}", server.log_text());
        self.push.kill();
    }
}

/// Server start, bystander, baseline RSS; the case runs; then the common
/// checks (bystander on time, server alive, no panic, RSS back).
fn with_server(tag: &str, case: impl FnOnce(&Server)) {
    let tolerance_kb = RSS_TOLERANCE_KB;
    raise_nofile();
    // `slow` never ends a stream for silence: a dribbling publisher meets
    // the RTMP message deadline first.
    let slow = AppXml { name: "slow".into(), silence_ms: 0, ..AppXml::default() };
    // A lower MaxBitrateKbps than the default (50 000): a flood must exceed
    // it even when a loaded machine slows the server's reading (TCP then
    // paces the publisher to what the server reads).
    let app = AppXml { max_bitrate_kbps: Some(MAX_KBPS), ..AppXml::default() };
    let server = Server::start_with(tag, &[app, slow]);
    let pid = server.proc.pid();
    let by = Bystander::start(&server);
    std::thread::sleep(Duration::from_secs(2));
    let before = rss_kb(pid);
    case(&server);
    // Let the server settle after the offender is gone.
    std::thread::sleep(Duration::from_secs(2));
    let after = rss_kb(pid);
    let mut s = server;
    assert!(s.proc.running(), "the server exited:\n{}", s.log_text());
    let (st, _) = s.get("/app/bystander/llhls.m3u8");
    assert_eq!(st, 200, "the server answers after the attack");
    by.check(&s);
    let log = s.log_text();
    assert!(!log.contains("panicked"), "panic in the log:\n{log}");
    eprintln!("{tag}: server RSS {before} KiB before, {after} KiB after (tolerance {tolerance_kb} KiB)");
    assert!(after <= before + tolerance_kb, "{tag}: RSS {before} KiB -> {after} KiB");
    s.proc.terminate();
}

// ------------------------------------------------------------- slowloris ---

/// Send `bytes` one at a time, `every` apart, until the peer closes or all
/// are sent; returns when the peer closed (None if it never did).
fn dribble(sock: &mut TcpStream, bytes: &[u8], every: Duration, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let _ = sock.set_read_timeout(Some(every));
    let mut buf = [0u8; 4096];
    let mut i = 0;
    while start.elapsed() < limit {
        if i < bytes.len() && sock.write_all(&bytes[i..=i]).is_err() {
            return Some(start.elapsed());
        }
        i += 1;
        match sock.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

#[test]
fn slowloris_http_is_closed_at_the_header_deadline() {
    with_server("hostile-slow-http", |server| {
        let port = server.ports.http;
        let head = b"GET /app/bystander/llhls.m3u8 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        let clients: Vec<_> = (0..40)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                    dribble(&mut s, head, Duration::from_millis(300), Duration::from_secs(20))
                })
            })
            .collect();
        let closed: Vec<Option<Duration>> = clients.into_iter().map(|c| c.join().expect("client")).collect();
        eprintln!("HTTP slowloris closed after {:?}", closed.iter().flatten().max());
        for c in &closed {
            let c = c.expect("a dribbling HTTP client is closed");
            // HeaderReadTimeoutMs is 10 s by default.
            assert!(c >= Duration::from_secs(9) && c <= Duration::from_secs(15), "closed after {c:?}");
        }
        let line =
            wait_line(server, &["HTTP request heads not received within HeaderReadTimeoutMs"], Duration::from_secs(5));
        assert!(line.contains("WARN"), "{line}");
        // Logged at most once a second, not once per connection.
        assert!(count_lines(server, "HTTP request heads not received") < 10, "{}", server.log_text());
    });
}

#[test]
fn slowloris_rtmp_handshake_and_message_are_closed() {
    with_server("hostile-slow-rtmp", |server| {
        let port = server.ports.rtmp;
        // 20 clients dribble the handshake (C0 C1: 1537 bytes) a byte per 200 ms.
        let c0c1: Vec<u8> = std::iter::once(3u8).chain((0..1536).map(|i| i as u8)).collect();
        let shakers: Vec<_> = (0..20)
            .map(|_| {
                let c0c1 = c0c1.clone();
                std::thread::spawn(move || {
                    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                    dribble(&mut s, &c0c1, Duration::from_millis(200), Duration::from_secs(20))
                })
            })
            .collect();
        // A publisher that publishes, then dribbles a video message.
        let dripper = std::thread::spawn(move || {
            let mut p = RawPublisher::publish(port, "slow", "drip");
            std::thread::sleep(Duration::from_millis(500));
            // Type 0 header on chunk stream 6: a 50 000-byte video message.
            let mut msg = vec![6u8, 0, 0, 0];
            msg.extend_from_slice(&50_000u32.to_be_bytes()[1..]);
            msg.push(9);
            msg.extend_from_slice(&1u32.to_le_bytes());
            msg.extend_from_slice(&[0x17u8; 2000]);
            // Drain the command responses first.
            let _ = p.sock.set_read_timeout(Some(Duration::from_millis(200)));
            let mut buf = [0u8; 8192];
            let _ = p.sock.read(&mut buf);
            dribble(&mut p.sock, &msg, Duration::from_millis(200), Duration::from_secs(20))
        });
        for s in shakers {
            let c = s.join().expect("client").expect("a dribbled handshake is closed");
            assert!(c >= Duration::from_secs(9) && c <= Duration::from_secs(14), "handshake closed after {c:?}");
        }
        let c = dripper.join().expect("dripper").expect("a dribbled message is closed");
        assert!(c >= Duration::from_secs(9) && c <= Duration::from_secs(14), "message dribbler closed after {c:?}");
        let line =
            wait_line(server, &["RTMP connection closed", "no complete handshake within 10 s"], Duration::from_secs(3));
        assert!(line.contains("WARN"), "{line}");
        let line = wait_line(server, &["RTMP connection closed", "slowloris", "slow/drip"], Duration::from_secs(3));
        assert!(line.contains("WARN"), "{line}");
        wait_line(server, &["slow/drip", "stream ended"], Duration::from_secs(3));
    });
}

// ---------------------------------------------------- idle connections ---

/// A TCP connection to `port` from the loopback address `source`.
fn connect_from(source: [u8; 4], port: u16) -> Option<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
    s.bind(&SocketAddr::from((source, 0)).into()).ok()?;
    s.connect_timeout(&SocketAddr::from(([127, 0, 0, 1], port)).into(), Duration::from_secs(3)).ok()?;
    Some(s.into())
}

#[test]
fn five_thousand_idle_rtmp_connections() {
    let limit = raise_nofile();
    assert!(limit >= 6000, "the open file limit ({limit}) is too low for 5000 connections");
    with_server("hostile-idle", |server| {
        let port = server.ports.rtmp;
        let pid = server.proc.pid();
        // The attacker: 5000 connections from 127.0.0.2 that never send a byte.
        let start = Instant::now();
        let socks: Vec<TcpStream> = std::thread::scope(|sc| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    sc.spawn(move || (0..1250).filter_map(|_| connect_from([127, 0, 0, 2], port)).collect::<Vec<_>>())
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().expect("connect worker")).collect()
        });
        eprintln!("{} of 5000 connections established in {:?}", socks.len(), start.elapsed());
        assert!(socks.len() >= 4500, "only {} connections", socks.len());
        std::thread::sleep(Duration::from_secs(1));
        // The server holds at most MAX_PENDING_PER_IP (128) of them; the rest were closed at once.
        let open = socks
            .iter()
            .filter(|s| {
                let _ = s.set_nonblocking(true);
                let mut b = [0u8; 1];
                matches!((&**s).read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            })
            .count();
        let fds = open_fds(pid);
        eprintln!("server holds {open} attacker connections; {fds} open descriptors");
        assert!(open <= 128, "{open} attacker connections held open");
        assert!(fds < 400, "server has {fds} descriptors open");
        let line = wait_line(server, &["RTMP per-address limit", "127.0.0.2"], Duration::from_secs(3));
        assert!(line.contains("WARN"), "{line}");
        let lines = count_lines(server, "RTMP per-address limit");
        let most = start.elapsed().as_secs() as usize + 2;
        assert!(lines <= most, "{lines} refusal lines: they are logged once a second");
        // A new publisher from another address publishes meanwhile.
        let mut newcomer = ffmpeg_push(&golden(), "flv", &server.rtmp_url("app", "newcomer"));
        let v = Viewer::start(server, "app", "newcomer");
        std::thread::sleep(Duration::from_secs(3));
        v.finish();
        newcomer.kill();
        drop(socks);
    });
}

// ---------------------------------------------------------- timestamps ---

/// Publish the golden input's tags (looped) in real time to `app/stream`,
/// each tag's timestamp passed through `rewrite(continuous ms)`, video tags
/// grown by `pad` bytes (a filler NAL unit), until `limit` or a write fails.
/// Returns the publisher (still connected if the server did not drop it).
fn paced_publish(
    port: u16,
    stream: &str,
    limit: Duration,
    pad: usize,
    rewrite: impl Fn(u32) -> u32,
) -> (RawPublisher, Option<Duration>) {
    let tags = flv_tags(&golden());
    let span = tags.iter().map(|t| t.timestamp_ms as u32).max().unwrap_or(0) + 33;
    let mut p = RawPublisher::publish(port, "app", stream);
    let filler: Bytes = if pad > 0 {
        let mut f = (pad as u32).to_be_bytes().to_vec();
        f.push(12); // NAL unit type 12: filler data
        f.resize(f.len() + pad - 2, 0xff);
        f.push(0x80);
        Bytes::from(f)
    } else {
        Bytes::new()
    };
    let start = Instant::now();
    for lap in 0u32.. {
        for t in &tags {
            if t.tag_type == 18 && lap > 0 {
                continue;
            }
            let ts = lap * span + t.timestamp_ms as u32;
            let due = start + Duration::from_millis(u64::from(ts));
            if due > start + limit {
                return (p, None);
            }
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            // Coded frames only (AVCPacketType 1), not the sequence header.
            let data = if pad > 0 && t.tag_type == 9 && t.data.get(1) == Some(&1) {
                let mut d = t.data.to_vec();
                d.extend_from_slice(&filler);
                Bytes::from(d)
            } else {
                t.data.clone()
            };
            if p.tag(t.tag_type, data, rewrite(ts)).is_err() {
                return (p, Some(start.elapsed()));
            }
        }
    }
    (p, None)
}

#[test]
fn broken_timestamps_backwards_hours_ahead_and_frozen() {
    with_server("hostile-ts", |server| {
        let port = server.ports.rtmp;
        let back = std::thread::spawn(move || {
            // At 4 s the encoder's clock steps back 3 s, then runs on.
            paced_publish(port, "back", Duration::from_secs(14), 0, |t| if t < 4000 { t } else { t - 3000 })
        });
        let ahead = std::thread::spawn(move || {
            // At 4 s the timestamps jump 3 hours ahead.
            paced_publish(port, "ahead", Duration::from_secs(14), 0, |t| if t < 4000 { t } else { t + 3 * 3_600_000 })
        });
        let frozen = std::thread::spawn(move || {
            // From 3 s on every timestamp is the same.
            paced_publish(port, "frozen", Duration::from_secs(16), 0, |t| t.min(3000))
        });
        let vb = Viewer::start(server, "app", "back");
        let va = Viewer::start(server, "app", "ahead");
        let t0 = Instant::now();
        let (mut pb, eb) = back.join().expect("back");
        let (mut pa, ea) = ahead.join().expect("ahead");
        let (mut pf, ef) = frozen.join().expect("frozen");
        let (lb, la) = (vb.finish(), va.finish());
        // Backwards and hours ahead: a discontinuity, the stream continues.
        for (name, e, log) in [("back", eb, &lb), ("ahead", ea, &la)] {
            assert!(e.is_none(), "app/{name} was dropped:\n{}", server.log_text());
            let line =
                wait_line(server, &[&format!("app/{name}"), "encoder timestamps jumped"], Duration::from_secs(2));
            assert!(line.contains("the stream continues"), "{line}");
            assert!(log.discontinuity_seen, "app/{name}: no EXT-X-DISCONTINUITY in the playlist");
            log.assert_on_time(&format!("app/{name}"), t0);
            assert!(!has_line(server, &[&format!("app/{name}"), "stream ended"]), "{}", server.log_text());
        }
        // Frozen: dropped about 5 s after the timestamps stopped.
        let line = wait_line(server, &["app/frozen", "stream ended", "have not advanced"], Duration::from_secs(2));
        assert!(line.contains("WARN"), "{line}");
        assert!(ef.is_some() || pf.closed_within(Duration::from_secs(2)), "the frozen publisher is disconnected");
        for p in [&mut pb, &mut pa] {
            let _ = p.sock.shutdown(std::net::Shutdown::Both);
        }
    });
}

// ---------------------------------------------------------------- flood ---

#[test]
fn a_100_mbps_publisher_is_dropped_at_max_bitrate() {
    with_server("hostile-flood", |server| {
        let port = server.ports.rtmp;
        // 30 fps of ~416 KB frames: 100 Mb/s, five times MAX_KBPS.
        let start = Instant::now();
        let (_p, dropped) = paced_publish(port, "flood", Duration::from_secs(20), 416_000, |t| t);
        let dropped = dropped.expect("the flooding publisher is disconnected");
        eprintln!("flooding publisher disconnected after {dropped:?}");
        assert!(start.elapsed() < Duration::from_secs(20));
        let line =
            wait_line(server, &["app/flood", "stream ended", "faster than MaxBitrateKbps"], Duration::from_secs(2));
        assert!(line.contains("WARN") && line.contains(&format!("{MAX_KBPS} kb/s")), "{line}");
    });
}

// ----------------------------------------------------------------- race ---

#[test]
fn two_publishers_racing_for_one_name() {
    with_server("hostile-race", |server| {
        let url = server.rtmp_url("app", "race");
        let input = golden();
        let mut a = ffmpeg_push(&input, "flv", &url);
        let mut b = ffmpeg_push(&input, "flv", &url);
        let cap = Capture::follow(server, "app", "race", Duration::from_secs(30), || !a.running() || !b.running());
        // The loser fails quickly; the winner runs to the end of the input.
        let (loser, winner) = if a.running() { (&mut b, &mut a) } else { (&mut a, &mut b) };
        let st = loser.wait_timeout(Duration::from_secs(1));
        assert!(st.is_some_and(|s| !s.success()), "the losing ffmpeg failed: {st:?}");
        let cap2 = Capture::follow(server, "app", "race", Duration::from_secs(30), || !winner.running());
        let st = winner.wait_timeout(Duration::from_secs(10));
        assert!(st.is_some_and(|s| s.success()), "the winning ffmpeg succeeded: {st:?}");
        let mut all = cap;
        all.objects.extend(cap2.objects);
        assert_eq!(count_lines(server, "RTMP publisher started"), 2, "bystander + one winner:\n{}", server.log_text());
        let line = wait_line(server, &["publish rejected", "race", "already live"], Duration::from_secs(2));
        assert!(line.contains("WARN"), "{line}");
        assert_decodes_to_input(&all, &input, &server.dir, 240);
    });
}

// ------------------------------------------------------------ lossy SRT ---

/// A UDP relay from `listen` to `target` dropping `loss` of the datagrams in
/// each direction (seeded xorshift). Returns (forwarded, dropped) counts.
fn lossy_relay(listen: UdpSocket, target: SocketAddr, loss: f64, stop: Arc<AtomicBool>) -> JoinHandle<(u64, u64)> {
    std::thread::spawn(move || {
        let up = UdpSocket::bind("127.0.0.1:0").expect("relay socket");
        up.connect(target).expect("relay connect");
        listen.set_read_timeout(Some(Duration::from_millis(5))).expect("timeout");
        up.set_read_timeout(Some(Duration::from_millis(5))).expect("timeout");
        let (fwd, dropped) = (AtomicU64::new(0), AtomicU64::new(0));
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut keep = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % 10_000) as f64 >= loss * 10_000.0
        };
        let mut client: Option<SocketAddr> = None;
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            while let Ok((n, from)) = listen.recv_from(&mut buf) {
                client = Some(from);
                if keep() {
                    let _ = up.send(&buf[..n]);
                    fwd.fetch_add(1, Ordering::Relaxed);
                } else {
                    dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            while let Ok(n) = up.recv(&mut buf) {
                if let Some(c) = client {
                    if keep() {
                        let _ = listen.send_to(&buf[..n], c);
                        fwd.fetch_add(1, Ordering::Relaxed);
                    } else {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        (fwd.into_inner(), dropped.into_inner())
    })
}

#[test]
fn srt_through_ten_percent_loss_keeps_being_packaged() {
    with_server("hostile-srt-loss", |server| {
        let relay = UdpSocket::bind("127.0.0.1:0").expect("relay port");
        let relay_port = relay.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let r = lossy_relay(relay, SocketAddr::from(([127, 0, 0, 1], server.ports.srt)), 0.10, stop.clone());
        // 500 ms of SRT latency leaves time for retransmissions.
        let url = format!("srt://127.0.0.1:{relay_port}?streamid=app/lossy&latency=500000");
        let mut push = ffmpeg_push(&ts_input(), "mpegts", &url);
        let v = Viewer::start(server, "app", "lossy");
        let t0 = Instant::now();
        push.wait_timeout(Duration::from_secs(40));
        let log = v.finish();
        stop.store(true, Ordering::Relaxed);
        let (fwd, dropped) = r.join().expect("relay");
        let ratio = dropped as f64 / (fwd + dropped).max(1) as f64;
        eprintln!("relay: {fwd} forwarded, {dropped} dropped ({:.1} %)", ratio * 100.0);
        assert!((0.07..=0.13).contains(&ratio), "loss ratio {ratio}");
        wait_line(server, &["SRT publisher connected"], Duration::from_secs(2));
        log.assert_on_time("app/lossy", t0);
        assert!(
            log.parts.last().is_some_and(|p| p.0.saturating_duration_since(t0) >= Duration::from_secs(12)),
            "the lossy stream kept going: {:?}",
            log.parts.last()
        );
    });
}

// ----------------------------------------------------------------- HTTP ---

/// One raw request; (status, body). Status 0 if the server closed without
/// a response.
fn raw_request(port: u16, request: &[u8]) -> (u16, Vec<u8>) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return (0, Vec::new()) };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = s.write_all(request);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { return (0, buf) };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, buf[end + 4..].to_vec())
}

#[test]
fn hostile_http_requests_get_a_clean_4xx() {
    with_server("hostile-http", |server| {
        let port = server.ports.http;
        let get = |target: &[u8]| {
            let mut r = b"GET ".to_vec();
            r.extend_from_slice(target);
            r.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            r
        };
        let mut cases: Vec<(String, Vec<u8>)> = [
            "/../../../../etc/passwd",
            "/app/bystander/../../../../etc/passwd",
            "/app/../bystander/llhls.m3u8/../../../etc/passwd",
            "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
            "/app/bystander/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
            "/app/bystander/..%2f..%2f..%2fetc%2fpasswd",
            "/app/bystander/%252e%252e%252fetc%252fpasswd",
            "/app/bystander/..%5c..%5c..%5cetc%5cpasswd",
            "/etc/passwd",
            "//etc/passwd",
            "/app//etc/passwd",
            "/app/bystander/%00",
            "/app/bystander/%ff%fe.m3u8",
            "/app/bystander/video1_%c0%af.m4s",
            "http://127.0.0.1/etc/passwd",
            "file:///etc/passwd",
            "/proc/self/environ",
        ]
        .iter()
        .map(|t| (t.to_string(), get(t.as_bytes())))
        .collect();
        // Raw invalid UTF-8 and control bytes in the path.
        cases.push(("raw 0xff 0xfe".into(), get(b"/app/bystander/\xff\xfe.m3u8")));
        cases.push(("raw overlong".into(), get(b"/app/\xc0\xae\xc0\xae/\xc0\xae\xc0\xae/etc/passwd")));
        cases.push(("backslashes".into(), get(b"/..\\..\\..\\etc\\passwd")));
        // Huge headers: one 20 KiB header, 300 small ones, and 1 MiB.
        let big = |n: usize| {
            let mut r = b"GET /app/bystander/llhls.m3u8 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ".to_vec();
            r.resize(r.len() + n, b'a');
            r.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
            r
        };
        cases.push(("20 KiB header".into(), big(20 * 1024)));
        cases.push(("1 MiB header".into(), big(1 << 20)));
        let mut many = b"GET /app/bystander/llhls.m3u8 HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec();
        for i in 0..300 {
            many.extend_from_slice(format!("X-H{i}: {}\r\n", "b".repeat(60)).as_bytes());
        }
        many.extend_from_slice(b"Connection: close\r\n\r\n");
        cases.push(("300 headers".into(), many));
        for (what, req) in &cases {
            let (st, body) = raw_request(port, req);
            let text = String::from_utf8_lossy(&body);
            eprintln!("{what}: {st}");
            assert!((400..500).contains(&st), "{what}: status {st}, want a 4xx");
            assert!(!text.contains("root:") && !text.contains("PATH="), "{what}: served a file: {text}");
        }
        // And a good request still works.
        assert_eq!(raw_request(port, &get(b"/app/bystander/llhls.m3u8")).0, 200);
    });
}
