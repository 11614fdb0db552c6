//! `lsbench hold`: keep N LL-HLS blocking playlist requests held for as long as asked, for
//! soak tests (scripts/soak.sh). It publishes nothing: the streams must already be live.
//!
//! Each connection follows one stream on one target (targets and streams are assigned round
//! robin), and forever re-issues the blocking request for the part the last playlist hinted
//! (`?_HLS_msn=M&_HLS_part=P`), as an LL-HLS player does. Every answer is checked:
//!
//! - status 200 (anything else is an error, by status and target);
//! - within `--timeout` seconds (the origin holds at most 3 x TARGETDURATION);
//! - the playlist lists the part that was asked for (a blocking request must not be answered
//!   before its part exists) and hints a later part.
//!
//! A connection error, a timeout or a malformed answer closes the connection; the client
//! reconnects after a second. An answer with `Connection: close` (nginx sends one after
//! `keepalive_requests` answers on a connection) is not an error: the client reconnects at once
//! and goes on with the hinted part. Every `--report` seconds a `STAT` line goes to stdout, and at
//! the end a `HOLD` summary line; the exit status is 1 when any error was counted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

type Res<T> = Result<T, String>;

pub struct HoldArgs {
    pub targets: Vec<String>,
    pub app: String,
    pub prefix: String,
    pub streams: usize,
    pub held: usize,
    pub duration: f64,
    pub report: f64,
    pub timeout: f64,
    pub rendition: String,
}

#[derive(Default)]
struct Stats {
    connected: AtomicUsize,
    outstanding: AtomicUsize,
    responses: AtomicU64,
    /// Reconnections the server asked for (`Connection: close`).
    reconnects: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    fn error(&self, target: &str, what: &str) {
        *self.errors.lock().unwrap().entry(format!("{target} {what}")).or_default() += 1;
    }
    fn error_total(&self) -> u64 {
        self.errors.lock().unwrap().values().sum()
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
    host: String,
}

struct Answer {
    status: u16,
    body: Vec<u8>,
    /// The server closes the connection after this answer (`Connection: close`, as nginx
    /// sends after `keepalive_requests` answers): not an error, the client reconnects.
    close: bool,
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

impl Conn {
    async fn connect(addr: &str) -> Res<Conn> {
        let s = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .map_err(|_| "connect timeout".to_string())?
            .map_err(|e| format!("connect: {}", e.kind()))?;
        s.set_nodelay(true).ok();
        Ok(Conn { s, buf: Vec::with_capacity(4096), host: addr.to_string() })
    }

    async fn fill(&mut self) -> Res<()> {
        let mut chunk = [0u8; 16384];
        let n = self.s.read(&mut chunk).await.map_err(|e| format!("read: {}", e.kind()))?;
        if n == 0 {
            return Err("closed by peer".into());
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// GET `path`; the body is de-chunked. Nothing is left over in the buffer afterwards
    /// (one request at a time per connection).
    async fn get(&mut self, path: &str) -> Res<Answer> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host);
        self.s.write_all(req.as_bytes()).await.map_err(|e| format!("write: {}", e.kind()))?;
        self.buf.clear();
        let head_end = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p + 4;
            }
            if self.buf.len() > 65536 {
                return Err("response head too large".into());
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(|_| "bad head".to_string())?.to_string();
        let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).ok_or("bad status line")?;
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        let body = if let Some(len) = header("content-length") {
            let len: usize = len.parse().map_err(|_| "bad content-length".to_string())?;
            while self.buf.len() < head_end + len {
                self.fill().await?;
            }
            if self.buf.len() != head_end + len {
                return Err("bytes after the body".into());
            }
            self.buf[head_end..].to_vec()
        } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            let mut out = Vec::new();
            let mut pos = head_end;
            loop {
                let line_end = loop {
                    if let Some(p) = find(&self.buf[pos..], b"\r\n") {
                        break pos + p;
                    }
                    self.fill().await?;
                };
                let size_text = std::str::from_utf8(&self.buf[pos..line_end]).map_err(|_| "bad chunk size")?;
                let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| "bad chunk size".to_string())?;
                let data = line_end + 2;
                while self.buf.len() < data + size + 2 {
                    self.fill().await?;
                }
                if size == 0 {
                    // No trailers expected: the last chunk is followed by an empty line.
                    break;
                }
                out.extend_from_slice(&self.buf[data..data + size]);
                pos = data + size + 2;
            }
            out
        } else if status == 304 || status == 204 {
            Vec::new()
        } else {
            return Err("response without a length".into());
        };
        let close = header("connection").is_some_and(|v| v.to_ascii_lowercase().contains("close"));
        Ok(Answer { status, body, close })
    }
}

type Point = (u64, u32);

fn hint(pl: &str) -> Option<Point> {
    let line = pl.lines().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))?;
    part_point(line.split("URI=\"").nth(1)?.split('"').next()?)
}

/// `video1_123.4.m4s` → (123, 4).
fn part_point(uri: &str) -> Option<Point> {
    let stem = uri.split('?').next()?.strip_suffix(".m4s")?;
    let (_, rest) = stem.rsplit_once('_')?;
    let (m, p) = rest.split_once('.')?;
    Some((m.parse().ok()?, p.parse().ok()?))
}

/// Whether the playlist lists part `p` (as an EXT-X-PART).
fn lists_part(pl: &str, p: Point) -> bool {
    pl.lines()
        .filter(|l| l.starts_with("#EXT-X-PART:"))
        .filter_map(|l| l.split("URI=\"").nth(1)?.split('"').next())
        .any(|u| part_point(u) == Some(p))
}

async fn client(a: Arc<HoldArgs>, st: Arc<Stats>, k: usize, stop: Instant, ramp: Arc<Semaphore>) {
    let target = a.targets[k % a.targets.len()].clone();
    let stream = (k / a.targets.len()) % a.streams;
    let base = format!("/{}/{}{}/{}", a.app, a.prefix, stream, a.rendition);
    let timeout = Duration::from_secs_f64(a.timeout);
    let mut permit = Some(ramp.acquire_owned().await);
    let mut ever = false;
    // The next part to ask for, kept across a reconnection the server asked for.
    let mut resume: Option<Point> = None;
    'conn: while Instant::now() < stop {
        if ever && resume.is_none() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let resume_at = resume.take();
        let mut c = match Conn::connect(&target).await {
            Ok(c) => c,
            Err(e) => {
                st.error(&target, &e);
                ever = true;
                continue;
            }
        };
        // Where the live edge is: the non-blocking playlist's hint.
        let mut next = if let Some(p) = resume_at {
            p
        } else {
            loop {
                if Instant::now() >= stop {
                    return;
                }
                match tokio::time::timeout(timeout, c.get(&format!("{base}.m3u8"))).await {
                    Ok(Ok(r)) if r.status == 200 => {
                        if let Some(h) = hint(&String::from_utf8_lossy(&r.body)) {
                            if r.close {
                                st.reconnects.fetch_add(1, Ordering::Relaxed);
                                resume = Some(h);
                                ever = true;
                                continue 'conn;
                            }
                            break h;
                        }
                        st.error(&target, "playlist without a preload hint");
                    }
                    Ok(Ok(r)) => st.error(&target, &format!("playlist status {}", r.status)),
                    Ok(Err(e)) => {
                        st.error(&target, &format!("playlist {e}"));
                        ever = true;
                        continue 'conn;
                    }
                    Err(_) => {
                        st.error(&target, "playlist timeout");
                        ever = true;
                        continue 'conn;
                    }
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        };
        if permit.take().is_some() {
            // Connected for the first time.
            st.connected.fetch_add(1, Ordering::Relaxed);
        }
        ever = true;
        while Instant::now() < stop {
            let path = format!("{base}.m3u8?_HLS_msn={}&_HLS_part={}", next.0, next.1);
            st.outstanding.fetch_add(1, Ordering::Relaxed);
            let r = tokio::time::timeout(timeout, c.get(&path)).await;
            st.outstanding.fetch_sub(1, Ordering::Relaxed);
            let r = match r {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    st.error(&target, &format!("held {e}"));
                    continue 'conn;
                }
                Err(_) => {
                    st.error(&target, "held timeout");
                    continue 'conn;
                }
            };
            st.responses.fetch_add(1, Ordering::Relaxed);
            if r.status != 200 {
                st.error(&target, &format!("held status {}", r.status));
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue 'conn;
            }
            let text = String::from_utf8_lossy(&r.body);
            if !lists_part(&text, next) {
                st.error(&target, "held answer lacks the requested part");
            }
            match hint(&text) {
                Some(h) if h > next => next = h,
                _ => {
                    st.error(&target, "held answer hints no later part");
                    continue 'conn;
                }
            }
            if r.close {
                st.reconnects.fetch_add(1, Ordering::Relaxed);
                resume = Some(next);
                continue 'conn;
            }
        }
    }
}

pub async fn run(a: HoldArgs) -> Res<bool> {
    if a.targets.is_empty() || a.streams == 0 {
        return Err("hold: --targets and --streams are required".into());
    }
    let a = Arc::new(a);
    let st = Arc::new(Stats::default());
    let t0 = Instant::now();
    let stop = t0 + Duration::from_secs_f64(a.duration);
    // At most 200 connections being set up at once.
    let ramp = Arc::new(Semaphore::new(200));
    let tasks: Vec<_> =
        (0..a.held).map(|k| tokio::spawn(client(a.clone(), st.clone(), k, stop, ramp.clone()))).collect();
    let report = Duration::from_secs_f64(a.report.max(1.0));
    let mut last_responses = 0;
    let mut tick = t0 + report;
    while tick < stop {
        tokio::time::sleep_until(tick.into()).await;
        let responses = st.responses.load(Ordering::Relaxed);
        println!(
            "STAT t={:.0} connected={} outstanding={} responses={} rate={:.0}/s errors={}",
            t0.elapsed().as_secs_f64(),
            st.connected.load(Ordering::Relaxed),
            st.outstanding.load(Ordering::Relaxed),
            responses,
            (responses - last_responses) as f64 / report.as_secs_f64(),
            st.error_total()
        );
        last_responses = responses;
        tick += report;
    }
    for t in tasks {
        let _ = t.await;
    }
    let errors = st.errors.lock().unwrap().clone();
    let total: u64 = errors.values().sum();
    for (what, n) in &errors {
        println!("ERROR {n} x {what}");
    }
    println!(
        "HOLD held={} connected={} responses={} reconnects={} errors={} seconds={:.0}",
        a.held,
        st.connected.load(Ordering::Relaxed),
        st.responses.load(Ordering::Relaxed),
        st.reconnects.load(Ordering::Relaxed),
        total,
        t0.elapsed().as_secs_f64()
    );
    Ok(total == 0 && st.connected.load(Ordering::Relaxed) == a.held)
}
