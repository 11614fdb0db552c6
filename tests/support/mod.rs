//! End-to-end test harness: start the real `lockstep` binary with a
//! Server.xml on free loopback ports, push with ffmpeg, fetch over HTTP,
//! compare decoded frames. Every wait is bounded; every process started is
//! killed by its PID when its guard drops (also when a test fails).
#![allow(dead_code)]

pub mod pair;
pub mod player;
pub mod rtmp_client;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A free TCP port on loopback (bound then released).
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free TCP port")
}

/// A free UDP port on loopback.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).expect("free UDP port")
}

/// A fresh temporary directory for one test.
pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let d = std::env::temp_dir().join(format!(
        "lockstep-e2e-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// Poll `f` every 20 ms until it returns Some, or panic after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A child process killed (by PID) and reaped when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command) -> Proc {
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        Proc { child, name: name.to_string() }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Wait for exit up to `limit`; kill it if it is still running then.
    pub fn wait_timeout(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        None
    }

    /// SIGTERM, then SIGKILL after 5 s.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
        self.wait_timeout(Duration::from_secs(5))
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.kill();
        }
    }
}

/// Ports of a test server.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub rtmp: u16,
    pub srt: u16,
    pub mpegts: u16,
    pub http: u16,
}

impl Ports {
    /// Four distinct free ports: every socket is held until all are chosen.
    pub fn free() -> Ports {
        let tcp = || TcpListener::bind("127.0.0.1:0").expect("free TCP port");
        let udp = || UdpSocket::bind("127.0.0.1:0").expect("free UDP port");
        let (t1, t2, u1, u2) = (tcp(), tcp(), udp(), udp());
        let tp = |l: &TcpListener| l.local_addr().map(|a| a.port()).expect("port");
        let up = |s: &UdpSocket| s.local_addr().map(|a| a.port()).expect("port");
        let ports = Ports { rtmp: tp(&t1), srt: up(&u1), mpegts: up(&u2), http: tp(&t2) };
        // A UDP port may equal a TCP one; listeners are per protocol, but the
        // configuration wants distinct numbers: retry in that rare case.
        // Ports handed out earlier in this test process are not reused (two
        // servers of one test pick their ports before either binds).
        static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        let all = [ports.rtmp, ports.srt, ports.mpegts, ports.http];
        if [ports.srt, ports.mpegts].iter().any(|p| *p == ports.rtmp || *p == ports.http)
            || all.iter().any(|p| given.contains(p))
        {
            drop(given);
            return Ports::free();
        }
        given.extend(all);
        ports
    }
}

/// Settings for the one application (`app`) of a test Server.xml.
#[derive(Clone, Debug)]
pub struct AppXml {
    pub name: String,
    pub timestamp_mode: String,
    pub silence_ms: u32,
    pub srt_passphrase: Option<String>,
    pub mpegts_stream: String,
    pub segment: &'static str,
    pub chunk: &'static str,
    pub part_hold_back: &'static str,
    pub segment_count: u32,
    /// `MaxBitrateKbps` of every provider (None: the server's default).
    pub max_bitrate_kbps: Option<u32>,
}

impl Default for AppXml {
    fn default() -> Self {
        AppXml {
            name: "app".into(),
            timestamp_mode: "ZeroBased".into(),
            silence_ms: 3000,
            srt_passphrase: None,
            mpegts_stream: "stream".into(),
            segment: "2",
            chunk: "0.5",
            part_hold_back: "1.5",
            segment_count: 10,
            max_bitrate_kbps: None,
        }
    }
}

/// A Server.xml for `ports` with the given applications.
pub fn server_xml(ports: Ports, apps: &[AppXml]) -> String {
    let mut a = String::new();
    for (i, app) in apps.iter().enumerate() {
        // One UDP port feeds one stream: only the first application maps it.
        let stream_map = if i == 0 {
            format!(
                "<StreamMap><Stream><Name>{}</Name><Port>{}</Port></Stream></StreamMap>",
                app.mpegts_stream, ports.mpegts
            )
        } else {
            String::new()
        };
        let pass = app.srt_passphrase.as_ref().map(|p| format!("<Passphrase>{p}</Passphrase>")).unwrap_or_default();
        let mut common = format!(
            "<TimestampMode>{}</TimestampMode><PacketSilenceTimeoutMs>{}</PacketSilenceTimeoutMs>",
            app.timestamp_mode, app.silence_ms
        );
        if let Some(kbps) = app.max_bitrate_kbps {
            common.push_str(&format!("<MaxBitrateKbps>{kbps}</MaxBitrateKbps>"));
        }
        a.push_str(&format!(
            r#"
        <Application>
          <Name>{name}</Name>
          <Providers>
            <RTMP>{common}</RTMP>
            <SRT>{common}{pass}</SRT>
            <MPEGTS>{common}{stream_map}</MPEGTS>
          </Providers>
          <Publishers>
            <LLHLS>
              <OriginMode>true</OriginMode>
              <ServerTimeBasedSegmentNumbering>true</ServerTimeBasedSegmentNumbering>
              <ChunkDuration>{chunk}</ChunkDuration>
              <PartHoldBack>{phb}</PartHoldBack>
              <SegmentDuration>{seg}</SegmentDuration>
              <SegmentCount>{count}</SegmentCount>
              <CrossDomains><Url>*</Url></CrossDomains>
            </LLHLS>
            <HLS>
              <SegmentDuration>{seg}</SegmentDuration>
              <SegmentCount>{count}</SegmentCount>
            </HLS>
          </Publishers>
        </Application>"#,
            name = app.name,
            chunk = app.chunk,
            phb = app.part_hold_back,
            seg = app.segment,
            count = app.segment_count,
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Server version="8">
  <Name>lockstep-test</Name>
  <IP>127.0.0.1</IP>
  <Bind>
    <Providers>
      <RTMP><Port>{rtmp}</Port></RTMP>
      <SRT><Port>{srt}</Port></SRT>
      <MPEGTS><Port>{mpegts}/udp</Port></MPEGTS>
    </Providers>
    <Publishers>
      <LLHLS><Port>{http}</Port></LLHLS>
    </Publishers>
  </Bind>
  <VirtualHosts>
    <VirtualHost>
      <Name>default</Name>
      <Applications>{a}
      </Applications>
    </VirtualHost>
  </VirtualHosts>
</Server>
"#,
        rtmp = ports.rtmp,
        srt = ports.srt,
        mpegts = ports.mpegts,
        http = ports.http,
    )
}

/// A running `lockstep` server.
pub struct Server {
    pub proc: Proc,
    pub ports: Ports,
    pub dir: PathBuf,
    pub log: PathBuf,
}

impl Server {
    /// Start with one default application `app`.
    pub fn start(tag: &str) -> Server {
        Server::start_with(tag, &[AppXml::default()])
    }

    pub fn start_with(tag: &str, apps: &[AppXml]) -> Server {
        let ports = Ports::free();
        Server::start_xml(tag, ports, &server_xml(ports, apps))
    }

    pub fn start_xml(tag: &str, ports: Ports, xml: &str) -> Server {
        let dir = temp_dir(tag);
        let conf = dir.join("Server.xml");
        std::fs::write(&conf, xml).expect("write config");
        let log = dir.join("lockstep.log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let proc = Proc::spawn(
            "lockstep",
            Command::new(env!("CARGO_BIN_EXE_lockstep"))
                .arg("--config")
                .arg(&conf)
                .env("RUST_LOG", "info")
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err),
        );
        let mut s = Server { proc, ports, dir, log };
        let http = ports.http;
        wait_for("the HTTP port to accept connections", Duration::from_secs(15), || {
            assert!(s.proc.running(), "lockstep exited early:\n{}", s.log_text());
            TcpStream::connect(("127.0.0.1", http)).ok()
        });
        s
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, limit: Duration) -> String {
        wait_for(&format!("log line containing {needle:?}"), limit, || {
            let t = self.log_text();
            t.lines().find(|l| l.contains(needle)).map(str::to_string)
        })
    }

    pub fn get(&self, path: &str) -> (u16, Vec<u8>) {
        http_get(self.ports.http, path)
    }

    pub fn rtmp_url(&self, app: &str, stream: &str) -> String {
        format!("rtmp://127.0.0.1:{}/{app}/{stream}", self.ports.rtmp)
    }
}

/// A minimal HTTP/1.1 GET on loopback: (status, body). Status 0 when the
/// connection fails.
pub fn http_get(port: u16, path: &str) -> (u16, Vec<u8>) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return (0, Vec::new()) };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return (0, Vec::new());
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { return (0, Vec::new()) };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut body = buf[end + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16).unwrap_or(0);
        if n == 0 || b.len() < i + 2 + n {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + n]);
        b = &b[(i + 4 + n).min(b.len())..];
    }
    out
}

// ----------------------------------------------------------------- media ---

/// Make a test input with ffmpeg (once per path).
pub fn make_input(path: &Path, args: &[&str]) {
    if path.exists() {
        return;
    }
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"]).args(args).arg(path);
    let mut p = Proc::spawn("ffmpeg (make input)", cmd.stdout(Stdio::null()).stderr(Stdio::inherit()));
    let st = p.wait_timeout(Duration::from_secs(120)).expect("ffmpeg finished making the input");
    assert!(st.success(), "ffmpeg failed making {}", path.display());
}

/// A 20 s 320x240 30 fps H.264 (GOP 1 s) + AAC test file in `dir`.
pub fn standard_input(dir: &Path, ext: &str, seconds: u32) -> PathBuf {
    let path = dir.join(format!("input-{seconds}s.{ext}"));
    let t = seconds.to_string();
    let fmt = if ext == "flv" { "flv" } else { "mpegts" };
    make_input(
        &path,
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            &t,
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
            fmt,
        ],
    );
    path
}

/// Start ffmpeg pushing `input` in real time (`-re -c copy`) to `url`.
pub fn ffmpeg_push(input: &Path, format: &str, url: &str) -> Proc {
    Proc::spawn(
        "ffmpeg (push)",
        Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-i"])
            .arg(input)
            .args(["-c", "copy", "-f", format, url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// One encoder to two nodes: ffmpeg's tee muxer (`onfail=ignore`) pushes
/// `input` in real time (`-re -c copy`) to the RTMP URLs `a` and `b`.
pub fn tee_push(input: &Path, a: &str, b: &str) -> Proc {
    Proc::spawn(
        "ffmpeg (tee push)",
        Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-i"])
            .arg(input)
            .args([
                "-c",
                "copy",
                "-map",
                "0",
                "-f",
                "tee",
                &format!("[f=flv:onfail=ignore]{a}|[f=flv:onfail=ignore]{b}"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// Per-frame MD5s of decoded stream `sel` ("v:0" or "a:0") of `file`, and
/// ffmpeg's error output.
pub fn framemd5(file: &Path, sel: &str) -> (Vec<String>, String) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-map", &format!("0:{sel}"), "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg runs");
    let hashes = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .filter(|h| !h.is_empty())
        .collect();
    (hashes, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Whether `needle` occurs as a contiguous run inside `hay`.
pub fn contains_run(hay: &[String], needle: &[String]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// URIs listed in a playlist (segments, parts, maps, preload hints excluded).
pub fn playlist_uris(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            out.push(line.to_string());
        } else if line.starts_with("#EXT-X-PART:") || line.starts_with("#EXT-X-MAP:") {
            if let Some(u) = line.split("URI=\"").nth(1).and_then(|r| r.split('"').next()) {
                out.push(u.to_string());
            }
        }
    }
    out
}

/// Everything fetched from one stream while it was live.
#[derive(Default)]
pub struct Capture {
    /// name → bytes, for every object listed in any playlist seen.
    pub objects: BTreeMap<String, Vec<u8>>,
    /// Every distinct playlist text seen, by name.
    pub playlists: BTreeMap<String, Vec<String>>,
}

impl Capture {
    /// Poll the stream's playlists and fetch every object they list, until
    /// `until` returns true or `limit` passes.
    pub fn follow(
        server: &Server,
        app: &str,
        stream: &str,
        limit: Duration,
        mut until: impl FnMut() -> bool,
    ) -> Capture {
        let mut c = Capture::default();
        let base = format!("/{app}/{stream}");
        let start = Instant::now();
        while start.elapsed() < limit {
            let done = until();
            for master in ["llhls.m3u8", "playlist.m3u8"] {
                let (st, body) = server.get(&format!("{base}/{master}"));
                if st != 200 {
                    continue;
                }
                let text = String::from_utf8_lossy(&body).into_owned();
                for media in playlist_uris(&text)
                    .into_iter()
                    .chain(text.lines().filter_map(|l| l.split("URI=\"").nth(1)?.split('"').next().map(String::from)))
                {
                    if !media.ends_with(".m3u8") {
                        continue;
                    }
                    let (st, body) = server.get(&format!("{base}/{media}"));
                    if st != 200 {
                        continue;
                    }
                    let text = String::from_utf8_lossy(&body).into_owned();
                    let seen = c.playlists.entry(media.clone()).or_default();
                    if seen.last() != Some(&text) {
                        seen.push(text.clone());
                    }
                    for uri in playlist_uris(&text) {
                        if c.objects.contains_key(&uri) {
                            continue;
                        }
                        let (st, body) = server.get(&format!("{base}/{uri}"));
                        if st == 200 {
                            c.objects.insert(uri, body);
                        }
                    }
                }
            }
            if done {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    /// Write init + every complete segment (by number) of rendition `label`
    /// to a file, for decoding. Complete segments only: when a stream ends,
    /// its unfinished segment's last parts are never published, and decoding
    /// stops cleanly only at a segment boundary.
    pub fn write_track(&self, label: &str, path: &Path) -> usize {
        let mut segs: Vec<(u64, &Vec<u8>)> = self
            .objects
            .iter()
            .filter_map(|(name, b)| {
                let msn = name.strip_prefix(&format!("{label}_"))?.strip_suffix(".m4s")?;
                Some((msn.parse().ok()?, b))
            })
            .collect();
        segs.sort_by_key(|s| s.0);
        let init = self.objects.get(&format!("{label}_init.mp4")).expect("init segment fetched");
        let mut all = init.clone();
        for s in &segs {
            all.extend_from_slice(s.1);
        }
        std::fs::write(path, all).expect("write track");
        segs.len()
    }

    /// Write every TS segment (by number) to a file.
    pub fn write_ts(&self, path: &Path) -> usize {
        let mut segs: Vec<(u64, &Vec<u8>)> = self
            .objects
            .iter()
            .filter_map(|(n, b)| Some((n.strip_prefix("ts_")?.strip_suffix(".ts")?.parse().ok()?, b)))
            .collect();
        segs.sort_by_key(|s| s.0);
        let mut all = Vec::new();
        for s in &segs {
            all.extend_from_slice(s.1);
        }
        std::fs::write(path, all).expect("write ts");
        segs.len()
    }
}

/// Check that the captured LL-HLS video track and TS segments decode without
/// errors to a contiguous run of `input`'s video frames (at least
/// `min_frames` of them).
pub fn assert_decodes_to_input(cap: &Capture, input: &Path, dir: &Path, min_frames: usize) {
    let (want, err) = framemd5(input, "v:0");
    assert!(err.is_empty(), "input decode errors: {err}");
    let v = dir.join("video1.mp4");
    let segments = cap.write_track("video1", &v);
    assert!(segments > 0, "no video segments captured");
    let (got, err) = framemd5(&v, "v:0");
    assert!(err.is_empty(), "LL-HLS video decode errors:\n{err}");
    assert!(got.len() >= min_frames, "only {} LL-HLS video frames (want >= {min_frames})", got.len());
    assert!(contains_run(&want, &got), "LL-HLS video frames are not the input's frames");
    let a = dir.join("audio2.mp4");
    if cap.objects.contains_key("audio2_init.mp4") {
        cap.write_track("audio2", &a);
        let (got, err) = framemd5(&a, "a:0");
        assert!(err.is_empty(), "LL-HLS audio decode errors:\n{err}");
        assert!(!got.is_empty(), "no audio frames decoded");
    }
    let ts = dir.join("all.ts");
    let n = cap.write_ts(&ts);
    assert!(n > 0, "no TS segments captured");
    let (got, err) = framemd5(&ts, "v:0");
    assert!(err.is_empty(), "TS video decode errors:\n{err}");
    assert!(got.len() >= min_frames / 2, "only {} TS video frames", got.len());
    assert!(contains_run(&want, &got), "TS video frames are not the input's frames");
}

// ------------------------------------------------------ HTTP with headers ---

/// Response headers: (lower-case name, value), in order (a name may repeat).
pub type Headers = Vec<(String, String)>;

/// A minimal HTTP/1.1 request on loopback with extra request headers:
/// (status, response headers, body). The body is de-chunked but never
/// decoded (a gzip body stays gzip). Status 0 when the connection fails.
pub fn http_request(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Headers, Vec<u8>) {
    let fail = || (0, Vec::new(), Vec::new());
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return fail() };
    let _ = s.set_read_timeout(Some(Duration::from_secs(15)));
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return fail();
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { return fail() };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|c| c.parse().ok()).unwrap_or(0);
    let hdrs: Headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    if header(&hdrs, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body);
    }
    (status, hdrs, body)
}

/// The first value of header `name` (any case).
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Every value of header `name`, comma-separated lists split.
pub fn header_values(headers: &Headers, name: &str) -> Vec<String> {
    headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_string()))
        .filter(|s| !s.is_empty())
        .collect()
}
