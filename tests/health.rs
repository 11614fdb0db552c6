//! `GET /health` end to end: real `lockstep` nodes, chronyd as an NTP server
//! on loopback (it never touches the system clock: `-x`), libfaketime to run
//! a node with a skewed wall clock, real ffmpeg encoders. Every process is
//! killed by its PID when its guard drops.
//!
//! Needs chrony and libfaketime (scripts/test.sh installs them).

mod support;

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::pair::*;
use support::*;

const SECRET: &str = "pair-secret-for-tests-0123";
const TOKEN: &str = "admin:s3cret";

// ----------------------------------------------------------------- chrony ---

/// chronyd serving time on a free UDP port of 127.0.0.1.
struct Chrony {
    proc: Proc,
    port: u16,
    log: PathBuf,
}

impl Chrony {
    fn start(tag: &str) -> Chrony {
        let dir = temp_dir(tag);
        let port = free_udp_port();
        let conf = dir.join("chrony.conf");
        let text = format!(
            "port {port}\nbindaddress 127.0.0.1\nlocal stratum 8\nallow 127.0.0.1\ncmdport 0\n\
             pidfile {}\ndriftfile {}\n",
            dir.join("chronyd.pid").display(),
            dir.join("chrony.drift").display()
        );
        std::fs::write(&conf, text).expect("write chrony.conf");
        let log = dir.join("chronyd.log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let chronyd = if Path::new("/usr/sbin/chronyd").exists() { "/usr/sbin/chronyd" } else { "chronyd" };
        // -d: foreground (our child, killed by PID); -x: never set the
        // system clock; -u: stay the current user (root: no privilege drop,
        // so the temporary files stay writable).
        let user =
            Command::new("id").arg("-un").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
        let user = user.ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "root".into());
        let proc = Proc::spawn(
            "chronyd",
            Command::new(chronyd)
                .args(["-d", "-x", "-u", &user, "-f"])
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err),
        );
        let mut c = Chrony { proc, port, log };
        wait_for("chronyd to answer SNTP requests", Duration::from_secs(15), || {
            assert!(c.proc.running(), "chronyd exited early:\n{}", c.log_text());
            sntp_stratum(port).filter(|s| (1..16).contains(s))
        });
        c
    }

    fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// One SNTP request to 127.0.0.1:`port`: the server's stratum.
fn sntp_stratum(port: u16) -> Option<u8> {
    let s = UdpSocket::bind("127.0.0.1:0").ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    let mut req = [0u8; 48];
    req[0] = 0x23; // LI 0, version 4, mode 3 (client)
    s.send_to(&req, ("127.0.0.1", port)).ok()?;
    let mut buf = [0u8; 128];
    let n = s.recv(&mut buf).ok()?;
    (n >= 48 && buf[0] & 7 == 4).then_some(buf[1])
}

// ------------------------------------------------------------ libfaketime ---

/// Debian's libfaketime (`/usr/lib/<multiarch>/faketime/libfaketime.so.1`),
/// or `$LOCKSTEP_LIBFAKETIME`.
fn libfaketime() -> PathBuf {
    if let Some(p) = std::env::var_os("LOCKSTEP_LIBFAKETIME") {
        return PathBuf::from(p);
    }
    let found = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .chain([PathBuf::from("/usr/lib/faketime/libfaketime.so.1")])
        .find(|p| p.exists());
    found.expect("libfaketime.so.1 not found: install Debian's libfaketime (scripts/test.sh does)")
}

// ------------------------------------------------------------------ nodes ---

struct Node {
    role: &'static str,
    peer_http: u16,
    mode: &'static str,
    ntp: Vec<String>,
    max_clock_offset_ms: u32,
    api: Option<u16>,
    /// libfaketime's `FAKETIME` (e.g. `+2s`, `+0.030`): this node's wall
    /// clock is that far off.
    faketime: Option<&'static str>,
    /// OriginMode false with this `SessionKeySecret`.
    session_secret: Option<&'static str>,
}

impl Default for Node {
    fn default() -> Self {
        Node {
            role: "main",
            peer_http: 1,
            mode: "SystemClock",
            ntp: Vec::new(),
            max_clock_offset_ms: 50,
            api: None,
            faketime: None,
            session_secret: None,
        }
    }
}

fn node_xml(ports: Ports, n: &Node) -> String {
    let app = AppXml { timestamp_mode: n.mode.into(), silence_ms: 1500, ..AppXml::default() };
    let ntp: String = n.ntp.iter().map(|s| format!("<Server>{s}</Server>")).collect();
    let mut managers = String::new();
    let mut xml = server_xml(ports, &[app]);
    if let Some(secret) = n.session_secret {
        xml = xml.replace(
            "<OriginMode>true</OriginMode>",
            &format!("<OriginMode>false</OriginMode><SessionKeySecret>{secret}</SessionKeySecret>"),
        );
    }
    if let Some(api) = n.api {
        xml = xml.replacen("<Bind>", &format!("<Bind>\n    <Managers><API><Port>{api}</Port></API></Managers>"), 1);
        managers = format!("<Managers><API><AccessToken>{TOKEN}</AccessToken></API></Managers>\n  ");
    }
    let pair = format!(
        "<Pair><Role>{}</Role><PeerUrl>http://127.0.0.1:{}</PeerUrl><Secret>{SECRET}</Secret>\
         <MaxClockOffsetMs>{}</MaxClockOffsetMs><NtpServers>{ntp}</NtpServers></Pair>\n  ",
        n.role, n.peer_http, n.max_clock_offset_ms
    );
    xml.replacen("<VirtualHosts>", &format!("{managers}{pair}<VirtualHosts>"), 1)
}

/// Start `lockstep` with `xml` (under libfaketime when `faketime` is set).
fn start_node(tag: &str, ports: Ports, xml: &str, faketime: Option<&str>) -> Server {
    let dir = temp_dir(tag);
    let conf = dir.join("Server.xml");
    std::fs::write(&conf, xml).expect("write config");
    let log = dir.join("lockstep.log");
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lockstep"));
    cmd.arg("--config").arg(&conf).env("RUST_LOG", "info").env("NO_COLOR", "1");
    if let Some(offset) = faketime {
        // Only the wall clock moves: tokio's timers use CLOCK_MONOTONIC.
        cmd.env("LD_PRELOAD", libfaketime()).env("FAKETIME", offset).env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    }
    let proc = Proc::spawn("lockstep", cmd.stdin(Stdio::null()).stdout(out).stderr(err));
    let mut s = Server { proc, ports, dir, log };
    let http = ports.http;
    wait_for("the HTTP port to accept connections", Duration::from_secs(15), || {
        assert!(s.proc.running(), "lockstep exited early:\n{}", s.log_text());
        std::net::TcpStream::connect(("127.0.0.1", http)).ok()
    });
    s
}

fn start(tag: &str, ports: Ports, n: &Node) -> Server {
    start_node(tag, ports, &node_xml(ports, n), n.faketime)
}

/// `GET /health` on `port`: (status, JSON; Null if not JSON).
fn health(port: u16) -> (u16, Value) {
    let (status, body) = http_get(port, "/health");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Poll `/health` on `port` (every 200 ms, up to `limit`) until `f` accepts it.
fn wait_health(what: &str, port: u16, limit: Duration, f: impl Fn(u16, &Value) -> bool) -> (u16, Value) {
    let start = Instant::now();
    loop {
        let (st, v) = health(port);
        if f(st, &v) {
            return (st, v);
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}; last /health: {st} {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn reasons(v: &Value) -> Vec<String> {
    v["reasons"].as_array().map(|a| a.iter().filter_map(|r| r.as_str().map(String::from)).collect()).unwrap_or_default()
}

// ------------------------------------------------------------------ tests ---

#[test]
fn a_single_node_is_always_healthy() {
    let s = Server::start("health-single");
    let (st, v) = health(s.ports.http);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["role"], "single");
    assert_eq!(v["healthy"], true);
    assert!(v["version"].as_str().is_some_and(|x| !x.is_empty()), "{v}");
    assert_eq!(reasons(&v).len(), 0);
    let (_, metrics) = s.get("/metrics");
    assert!(String::from_utf8_lossy(&metrics).contains("lockstep_healthy 1\n"));
}

#[test]
fn ntp_offset_is_measured_in_microseconds() {
    let chrony = Chrony::start("health-chrony");
    let ports = Ports::free();
    let api = free_tcp_port();
    // A pair node whose peer is not running: unreachable, still healthy.
    let node = Node { ntp: vec![chrony.server()], api: Some(api), ..Node::default() };
    let s = start("health-ntp", ports, &node);
    let (st, v) = wait_health("an NTP offset", ports.http, Duration::from_secs(20), |_, v| {
        v["ntp"][0]["offset_us"].is_i64() && v["peer"]["error"].as_str() != Some("not measured yet")
    });
    let offset = v["ntp"][0]["offset_us"].as_i64().unwrap_or(i64::MAX);
    let rtt = v["ntp"][0]["round_trip_us"].as_i64().unwrap_or(-1);
    println!("NTP {}: offset {offset} us, round trip {rtt} us", chrony.server());
    assert_eq!(v["ntp"][0]["server"], chrony.server().as_str());
    assert!(offset.abs() < 25_000, "same host: |offset| {offset} us should be well under 50 ms: {v}");
    assert!((0..100_000).contains(&rtt), "round trip {rtt} us: {v}");
    assert_eq!(st, 200, "{v}\n{}", s.log_text());
    assert_eq!(v["healthy"], true);
    assert_eq!(v["role"], "main");
    assert_eq!(v["max_clock_offset_ms"], 50);
    assert_eq!(v["peer"]["reachable"], false, "no peer runs: {v}");

    // The API port answers too, without credentials.
    wait_for("the API port", Duration::from_secs(10), || std::net::TcpStream::connect(("127.0.0.1", api)).ok());
    let (st, v) = health(api);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["role"], "main");

    let (_, metrics) = s.get("/metrics");
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(metrics.contains(&format!("lockstep_ntp_offset_seconds{{server=\"{}\"}} ", chrony.server())), "{metrics}");
    assert!(metrics.contains("lockstep_healthy 1\n"), "{metrics}");
    assert!(metrics.contains("lockstep_peer_reachable 0\n"), "{metrics}");
    assert!(chrony.log_text().contains("Disabled control of system clock"), "{}", chrony.log_text());
}

#[test]
fn a_skewed_clock_is_unhealthy() {
    let chrony = Chrony::start("health-chrony-skew");
    let (mp, bp) = (Ports::free(), Ports::free());
    let ntp = vec![chrony.server()];
    let main = start("health-skew-main", mp, &Node { peer_http: bp.http, ntp: ntp.clone(), ..Node::default() });
    let backup = start(
        "health-skew-backup",
        bp,
        &Node { role: "backup", peer_http: mp.http, ntp, faketime: Some("+2s"), ..Node::default() },
    );
    let measured = |_: u16, v: &Value| v["ntp"][0]["offset_us"].is_i64() && v["peer"]["clock_offset_ms"].is_f64();
    let (st, v) = wait_health("the backup's NTP and peer offsets", bp.http, Duration::from_secs(20), measured);
    println!("backup: {st} {v}");
    assert_eq!(st, 503, "{v}\n{}", backup.log_text());
    assert_eq!(v["healthy"], false);
    let ntp_us = v["ntp"][0]["offset_us"].as_i64().unwrap_or(0);
    assert!((ntp_us + 2_000_000).abs() < 100_000, "the NTP server is 2 s behind the backup: {ntp_us} us");
    let peer_ms = v["peer"]["clock_offset_ms"].as_f64().unwrap_or(0.0);
    assert!((peer_ms + 2000.0).abs() < 100.0, "the main is 2 s behind the backup: {peer_ms} ms");
    let r = reasons(&v);
    let ntp_reason = format!("clock offset to NTP {} is -", chrony.server());
    assert!(r.iter().any(|x| x.starts_with(&ntp_reason) && x.ends_with("ms (limit 50 ms)")), "{r:?}");
    // With its own NTP measured, the peer offset is reported but not blamed.
    assert_eq!(r.len(), 1, "{r:?}");
    let (_, metrics) = backup.get("/metrics");
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(metrics.contains("lockstep_healthy 0\n"), "{metrics}");
    assert!(metrics.contains("lockstep_peer_reachable 1\n"), "{metrics}");
    assert!(metrics.contains("lockstep_peer_clock_offset_seconds -"), "{metrics}");

    // The main's own clock is right (NTP), but its peer's is 2 s ahead.
    let (st, v) = wait_health("the main's peer offset", mp.http, Duration::from_secs(20), measured);
    println!("main: {st} {v}");
    let ntp_us = v["ntp"][0]["offset_us"].as_i64().unwrap_or(i64::MAX);
    assert!(ntp_us.abs() < 25_000, "{v}");
    let peer_ms = v["peer"]["clock_offset_ms"].as_f64().unwrap_or(0.0);
    assert!((peer_ms - 2000.0).abs() < 100.0, "the backup is 2 s ahead: {peer_ms} ms");
    // Only the node whose clock is wrong is unhealthy: the CDN keeps the
    // main.
    assert_eq!(st, 200, "{v}\n{}", main.log_text());
    assert!(reasons(&v).is_empty(), "{v}");
}

#[test]
fn system_clock_nodes_30_ms_apart_stay_in_lockstep() {
    let (mp, bp) = (Ports::free(), Ports::free());
    let main = start("health-30ms-main", mp, &Node { peer_http: bp.http, max_clock_offset_ms: 100, ..Node::default() });
    let backup = start(
        "health-30ms-backup",
        bp,
        &Node {
            role: "backup",
            peer_http: mp.http,
            max_clock_offset_ms: 100,
            faketime: Some("+0.030"),
            ..Node::default()
        },
    );
    let input = standard_input(&main.dir, "flv", 40);
    let _enc = tee_push(&input, &main.rtmp_url("app", "stream"), &backup.rtmp_url("app", "stream"));
    wait_live(&main, "main live");
    wait_live(&backup, "backup live");
    std::thread::sleep(Duration::from_secs(10));
    assert_same_window_identical(&main, &backup, "clocks 30 ms apart", 40);

    // The backup sees the main's clock 30 ms behind its own; both stay
    // healthy (limit 100 ms) and find the stream's recent objects identical.
    let in_lockstep = |st: u16, v: &Value| {
        st == 200
            && v["peer"]["clock_offset_ms"].is_f64()
            && v["streams"][0]["stream"] == "app/stream"
            && v["streams"][0]["identical"].as_u64().unwrap_or(0) > 0
    };
    let (_, v) = wait_health("the backup's stream check", bp.http, Duration::from_secs(15), in_lockstep);
    println!("backup: {v}");
    let peer_ms = v["peer"]["clock_offset_ms"].as_f64().unwrap_or(0.0);
    assert!((peer_ms + 30.0).abs() < 10.0, "peer clock offset {peer_ms} ms, want about -30: {v}");
    let s = &v["streams"][0];
    assert_eq!(s["differing"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(s["lockstep_failures"], 0, "{v}");
    assert_eq!(s["in_lockstep"], true, "{v}");
    assert_eq!(reasons(&v).len(), 0, "{v}");
    let (_, v) = wait_health("the main's stream check", mp.http, Duration::from_secs(15), in_lockstep);
    println!("main: {v}");
    let peer_ms = v["peer"]["clock_offset_ms"].as_f64().unwrap_or(0.0);
    assert!((peer_ms - 30.0).abs() < 10.0, "peer clock offset {peer_ms} ms, want about +30: {v}");
    assert_eq!(v["streams"][0]["differing"].as_array().map(Vec::len), Some(0), "{v}");
    let (_, metrics) = backup.get("/metrics");
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(metrics.contains("lockstep_pair_objects_differing{stream=\"app/stream\"} 0\n"), "{metrics}");
    assert!(metrics.contains("lockstep_healthy 1\n"), "{metrics}");
}

#[test]
fn objects_that_differ_from_the_peer_are_unhealthy() {
    // Two different encoders: the nodes cannot agree on a timeline, so the
    // same object names carry different bytes (a broken pair).
    let (mp, bp) = (Ports::free(), Ports::free());
    let main = start("health-differ-main", mp, &Node { peer_http: bp.http, ..Node::default() });
    let backup = start("health-differ-backup", bp, &Node { role: "backup", peer_http: mp.http, ..Node::default() });
    let a = standard_input(&main.dir, "flv", 30);
    let b = backup.dir.join("other-30s.flv");
    let args = "-f lavfi -i testsrc=size=320x240:rate=30 -f lavfi -i sine=frequency=880:sample_rate=48000 -t 30 \
                -c:v libx264 -preset veryfast -pix_fmt yuv420p -g 30 -keyint_min 30 -sc_threshold 0 \
                -c:a aac -b:a 64k -f flv";
    make_input(&b, &args.split_whitespace().collect::<Vec<_>>());
    let _ea = ffmpeg_push(&a, "flv", &main.rtmp_url("app", "stream"));
    let _eb = ffmpeg_push(&b, "flv", &backup.rtmp_url("app", "stream"));
    wait_live(&main, "main live");
    wait_live(&backup, "backup live");
    let broken =
        |st: u16, v: &Value| st == 503 && v["streams"][0]["differing"].as_array().is_some_and(|d| !d.is_empty());
    let (_, v) = wait_health("the backup to find differing objects", bp.http, Duration::from_secs(20), broken);
    println!("backup: {v}");
    let r = reasons(&v);
    assert!(r.iter().any(|x| x.starts_with("lockstep broken on app/stream: ")), "{r:?}");
    assert_eq!(v["streams"][0]["in_lockstep"], false);
    let (_, metrics) = backup.get("/metrics");
    let metrics = String::from_utf8_lossy(&metrics);
    let line = metrics.lines().find(|l| l.starts_with("lockstep_pair_objects_differing{stream=\"app/stream\"} "));
    assert!(line.is_some_and(|l| !l.ends_with(" 0")), "{metrics}");
    assert!(metrics.contains("lockstep_healthy 0\n"), "{metrics}");
}

#[test]
fn session_keyed_objects_are_compared_with_the_peer() {
    // OriginMode false: every delivery URL needs a viewer key, so the
    // health check's requests to the peer carry one (the pair shares the
    // secret) and the objects are compared, not refused.
    const KEYS: &str = "session-secret-shared-by-the-pair";
    let (mp, bp) = (Ports::free(), Ports::free());
    let main =
        start("health-keys-main", mp, &Node { peer_http: bp.http, session_secret: Some(KEYS), ..Node::default() });
    let backup = start(
        "health-keys-backup",
        bp,
        &Node { role: "backup", peer_http: mp.http, session_secret: Some(KEYS), ..Node::default() },
    );
    let input = standard_input(&main.dir, "flv", 30);
    let _enc = tee_push(&input, &main.rtmp_url("app", "stream"), &backup.rtmp_url("app", "stream"));
    assert_eq!(main.get("/app/stream/video1.m3u8").0, 401, "delivery URLs need a key");
    for (who, port) in [("main", mp.http), ("backup", bp.http)] {
        let compared = |st: u16, v: &Value| {
            st == 200 && v["streams"][0]["stream"] == "app/stream" && v["streams"][0]["identical"].as_u64() > Some(0)
        };
        let (_, v) = wait_health(&format!("the {who}'s stream check"), port, Duration::from_secs(30), compared);
        println!("{who}: {v}");
        let s = &v["streams"][0];
        assert_eq!(s["unanswered"], 0, "{v}");
        assert_eq!(s["differing"].as_array().map(Vec::len), Some(0), "{v}");
        assert_eq!(s["in_lockstep"], true, "{v}");
    }
}

// ----------------------------------------------------------- comparison ---

/// Wait until both nodes list the same media sequence, then compare; at
/// least `min` objects compared, none differing.
fn assert_same_window_identical(main: &Server, backup: &Server, scenario: &str, min: usize) {
    let seq = |s: &Server| {
        let pl = text(&s.get("/app/stream/video1.m3u8").1);
        pl.lines().find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:").map(str::to_string))
    };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(15) && (seq(main).is_none() || seq(main) != seq(backup)) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(seq(main), seq(backup), "{scenario}: the two nodes' windows start at the same segment");
    assert_identical(main, backup, None, scenario, min);
}
