//! lsbench: the load and latency tool behind scripts/bench/{held,latency,scale,serve}.sh.
//!
//! It publishes N real-time streams over RTMP itself (the FLV file's tags, paced by their
//! timestamps, looped), so it knows the instant each video frame's last byte was handed to
//! the RTMP socket. Per stream a *prober* holds, at every point, a blocking playlist request
//! (`?_HLS_msn=M&_HLS_part=P` for the hinted part) and a request for the preload-hinted part
//! itself, on two keep-alive connections. The part that comes back says (tfdt + sample
//! durations) where it ends on the timeline, which is the DTS of the frame that completed
//! it (the first frame of the next part; the packager cannot close a part before it sees
//! that frame). So for every part:
//!
//!   ingest-to-available = arrival of the response − send time of the completing frame.
//!
//! With `--held-per-stream K`, K more connections per stream each chain blocking playlist
//! requests for the hinted part, as players do; their wake-up latency is measured against
//! the same completing-frame send time, and against the first response for that point.
//!
//! Subcommands:
//!   run      publish + probe (+ held requests); prints tables
//!   publish  publish only (optionally pausing: the connection stays open, no more media)
//!   hold     hold blocking playlist requests on streams published by others, for soak
//!            tests (src/hold.rs)

mod hold;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

type Res<T> = Result<T, String>;

// ------------------------------------------------------------------ args ---

#[derive(Clone, Debug)]
struct Args {
    cmd: String,
    rtmp: String,
    http: String,
    app: String,
    prefix: String,
    streams: usize,
    file: String,
    warmup: f64,
    duration: f64,
    held_per_stream: usize,
    server_pid: Option<u32>,
    pause_after: Option<f64>,
    rendition: String,
    quiet: bool,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        cmd: String::new(),
        rtmp: "127.0.0.1:19350".into(),
        http: "127.0.0.1:13333".into(),
        app: "app".into(),
        prefix: "s".into(),
        streams: 1,
        file: "/tmp/lockstep-bench/test.flv".into(),
        warmup: 25.0,
        duration: 30.0,
        held_per_stream: 0,
        server_pid: None,
        pause_after: None,
        rendition: "video1".into(),
        quiet: false,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    a.cmd = v.first().cloned().ok_or("usage: lsbench run|publish|hold [--options]")?;
    let mut i = 1;
    while i < v.len() {
        let k = v[i].as_str();
        if k == "--quiet" {
            a.quiet = true;
            i += 1;
            continue;
        }
        let val = v.get(i + 1).ok_or(format!("{k} needs a value"))?.clone();
        let num = |s: &str| s.parse::<f64>().map_err(|e| format!("{k}: {e}"));
        match k {
            "--rtmp" => a.rtmp = val,
            "--http" => a.http = val,
            "--app" => a.app = val,
            "--prefix" => a.prefix = val,
            "--streams" => a.streams = num(&val)? as usize,
            "--file" => a.file = val,
            "--warmup" => a.warmup = num(&val)?,
            "--duration" => a.duration = num(&val)?,
            "--held-per-stream" => a.held_per_stream = num(&val)? as usize,
            "--server-pid" => a.server_pid = Some(num(&val)? as u32),
            "--pause-after" => a.pause_after = Some(num(&val)?),
            "--rendition" => a.rendition = val,
            _ => return Err(format!("unknown option {k}")),
        }
        i += 2;
    }
    Ok(a)
}

const HOLD_USAGE: &str = "usage: lsbench hold --targets HOST:PORT[,HOST:PORT...] --streams N --held N \
[--prefix s] [--app app] [--duration S] [--report S] [--timeout S] [--rendition video1]";

fn parse_hold_args() -> Res<hold::HoldArgs> {
    let mut a = hold::HoldArgs {
        targets: Vec::new(),
        app: "app".into(),
        prefix: "s".into(),
        streams: 0,
        held: 0,
        duration: 60.0,
        report: 10.0,
        timeout: 30.0,
        rendition: "video1".into(),
    };
    let v: Vec<String> = std::env::args().skip(2).collect();
    let mut i = 0;
    while i < v.len() {
        let k = v[i].as_str();
        let val = v.get(i + 1).ok_or(format!("{k} needs a value\n{HOLD_USAGE}"))?.clone();
        let num = |s: &str| s.parse::<f64>().map_err(|e| format!("{k}: {e}"));
        match k {
            "--targets" => a.targets = val.split(',').filter(|t| !t.is_empty()).map(String::from).collect(),
            "--app" => a.app = val,
            "--prefix" => a.prefix = val,
            "--streams" => a.streams = num(&val)? as usize,
            "--held" => a.held = num(&val)? as usize,
            "--duration" => a.duration = num(&val)?,
            "--report" => a.report = num(&val)?,
            "--timeout" => a.timeout = num(&val)?,
            "--rendition" => a.rendition = val,
            _ => return Err(format!("unknown option {k}\n{HOLD_USAGE}")),
        }
        i += 2;
    }
    Ok(a)
}

// ------------------------------------------------------------------- FLV ---

struct Tag {
    video: bool,
    ts: u32,
    data: Bytes,
}

struct Media {
    headers: Vec<Tag>,
    tags: Vec<Tag>,
    /// Loop period (ms): a whole number of seconds, so keyframes stay on the grid.
    period: u32,
}

fn load_flv(path: &str) -> Res<Media> {
    let b = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    if b.len() < 13 || &b[..3] != b"FLV" {
        return Err(format!("{path}: not an FLV file"));
    }
    let mut pos = u32::from_be_bytes([b[5], b[6], b[7], b[8]]) as usize + 4;
    let (mut headers, mut tags) = (Vec::new(), Vec::new());
    let (mut have_vh, mut have_ah) = (false, false);
    while pos + 11 <= b.len() {
        let ty = b[pos];
        let size = u32::from_be_bytes([0, b[pos + 1], b[pos + 2], b[pos + 3]]) as usize;
        let ts = u32::from_be_bytes([b[pos + 7], b[pos + 4], b[pos + 5], b[pos + 6]]);
        let start = pos + 11;
        if start + size > b.len() {
            break;
        }
        let data = Bytes::copy_from_slice(&b[start..start + size]);
        pos = start + size + 4;
        if data.len() < 2 {
            continue;
        }
        match ty {
            9 => {
                if data[0] & 0x0f == 7 && data[1] == 0 {
                    if !have_vh {
                        headers.push(Tag { video: true, ts: 0, data });
                        have_vh = true;
                    }
                } else {
                    tags.push(Tag { video: true, ts, data });
                }
            }
            8 => {
                if data[0] >> 4 == 10 && data[1] == 0 {
                    if !have_ah {
                        headers.push(Tag { video: false, ts: 0, data });
                        have_ah = true;
                    }
                } else {
                    tags.push(Tag { video: false, ts, data });
                }
            }
            _ => {}
        }
    }
    let min = tags.iter().map(|t| t.ts).min().ok_or("no media tags")?;
    for t in &mut tags {
        t.ts -= min;
    }
    let vts: Vec<u32> = tags.iter().filter(|t| t.video).map(|t| t.ts).collect();
    let mut deltas: Vec<u32> = vts.windows(2).map(|w| w[1].saturating_sub(w[0])).collect();
    deltas.sort_unstable();
    let d = deltas.get(deltas.len() / 2).copied().unwrap_or(33);
    let max_v = vts.iter().copied().max().unwrap_or(0);
    let period = (((max_v + d) as f64 / 1000.0).round() as u32).max(1) * 1000;
    tags.retain(|t| t.ts < period);
    tags.sort_by_key(|t| t.ts);
    Ok(Media { headers, tags, period })
}

// --------------------------------------------------------------- fMP4 -----

/// Where a CMAF part ends on its track's timeline: tfdt + the sum of its sample durations.
fn part_end(b: &[u8]) -> Option<u64> {
    fn boxes(b: &[u8]) -> Vec<(&[u8; 4], &[u8])> {
        let mut out = Vec::new();
        let mut p = 0;
        while p + 8 <= b.len() {
            let size = u32::from_be_bytes([b[p], b[p + 1], b[p + 2], b[p + 3]]) as usize;
            let ty: &[u8; 4] = b[p + 4..p + 8].try_into().unwrap();
            let (hdr, size) = if size == 1 && p + 16 <= b.len() {
                (16, u64::from_be_bytes(b[p + 8..p + 16].try_into().unwrap()) as usize)
            } else if size == 0 {
                (8, b.len() - p)
            } else {
                (8, size)
            };
            if size < hdr || p + size > b.len() {
                break;
            }
            out.push((ty, &b[p + hdr..p + size]));
            p += size;
        }
        out
    }
    let be32 = |b: &[u8], at: usize| -> Option<u32> { Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?)) };
    let mut end = None;
    for (ty, moof) in boxes(b) {
        if ty != b"moof" {
            continue;
        }
        for (ty, traf) in boxes(moof) {
            if ty != b"traf" {
                continue;
            }
            let (mut default_dur, mut base, mut total) = (0u32, None, 0u64);
            for (ty, body) in boxes(traf) {
                match ty {
                    b"tfhd" => {
                        let flags = be32(body, 0)? & 0xff_ffff;
                        let mut at = 8;
                        if flags & 0x01 != 0 {
                            at += 8;
                        }
                        if flags & 0x02 != 0 {
                            at += 4;
                        }
                        if flags & 0x08 != 0 {
                            default_dur = be32(body, at)?;
                        }
                    }
                    b"tfdt" => {
                        base = Some(if body[0] == 1 {
                            u64::from_be_bytes(body.get(4..12)?.try_into().ok()?)
                        } else {
                            u64::from(be32(body, 4)?)
                        });
                    }
                    b"trun" => {
                        let flags = be32(body, 0)? & 0xff_ffff;
                        let count = be32(body, 4)? as usize;
                        let mut at = 8;
                        if flags & 0x01 != 0 {
                            at += 4;
                        }
                        if flags & 0x04 != 0 {
                            at += 4;
                        }
                        let per = [0x100, 0x200, 0x400, 0x800].iter().filter(|f| flags & **f != 0).count() * 4;
                        for i in 0..count {
                            total += u64::from(if flags & 0x100 != 0 { be32(body, at + i * per)? } else { default_dur });
                        }
                    }
                    _ => {}
                }
            }
            let e = base? + total;
            end = Some(end.map_or(e, |x: u64| x.max(e)));
        }
    }
    end
}

// --------------------------------------------------------------- shared ----

type Point = (u64, u32);

#[derive(Default)]
struct StreamShared {
    /// Video tag timestamp (ms, on the published timeline) → when its last byte was written.
    sends: Mutex<HashMap<u32, Instant>>,
    /// Point → completing-frame send time (from the prober's part).
    completing: Mutex<HashMap<Point, Instant>>,
    /// Prober samples in the window: (point, request sent, part arrival, playlist arrival, part end ms,
    /// the part closes its segment).
    probe: Mutex<Vec<(Point, Instant, Option<Instant>, Option<Instant>, Option<u64>, bool)>>,
    /// Held samples in the window: (point, request sent, response head arrival).
    held: Mutex<Vec<(Point, Instant, Instant)>>,
    max_lag_us: AtomicU64,
    unmatched: AtomicU64,
    published_ok: AtomicBool,
}

struct Global {
    args: Args,
    streams: Vec<Arc<StreamShared>>,
    window_start: Mutex<Option<Instant>>,
    window_end: Mutex<Option<Instant>>,
    outstanding: AtomicUsize,
    connected: AtomicUsize,
    errors: Mutex<HashMap<String, u64>>,
}

impl Global {
    fn in_window(&self, t: Instant) -> bool {
        let s = *self.window_start.lock().unwrap();
        let e = *self.window_end.lock().unwrap();
        matches!((s, e), (Some(s), Some(e)) if t >= s && t < e)
    }
    fn error(&self, what: String) {
        *self.errors.lock().unwrap().entry(what).or_default() += 1;
    }
}

// ------------------------------------------------------------------ RTMP ---

async fn write_results(s: &mut TcpStream, rs: Vec<ClientSessionResult>, events: &mut Vec<ClientSessionEvent>) -> Res<()> {
    for r in rs {
        match r {
            ClientSessionResult::OutboundResponse(p) => s.write_all(&p.bytes).await.map_err(|e| e.to_string())?,
            ClientSessionResult::RaisedEvent(e) => events.push(e),
            _ => {}
        }
    }
    Ok(())
}

async fn wait_event(
    s: &mut TcpStream,
    session: &mut ClientSession,
    buf: &mut [u8],
    f: impl Fn(&ClientSessionEvent) -> bool,
) -> Res<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = tokio::time::timeout_at(deadline.into(), s.read(buf))
            .await
            .map_err(|_| "RTMP: no answer within 10 s".to_string())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("RTMP: server closed the connection".into());
        }
        let rs = session.handle_input(&buf[..n]).map_err(|e| format!("{e:?}"))?;
        let mut events = Vec::new();
        write_results(s, rs, &mut events).await?;
        for e in &events {
            if let ClientSessionEvent::ConnectionRequestRejected { description } = e {
                return Err(format!("connect rejected: {description}"));
            }
        }
        if events.iter().any(&f) {
            return Ok(());
        }
    }
}

async fn publish(g: Arc<Global>, media: Arc<Media>, idx: usize, stop: Instant) -> Res<()> {
    let a = &g.args;
    let sh = g.streams[idx].clone();
    let name = format!("{}{}", a.prefix, idx);
    let mut s = TcpStream::connect(&a.rtmp).await.map_err(|e| format!("RTMP connect {}: {e}", a.rtmp))?;
    s.set_nodelay(true).ok();
    let mut hs = Handshake::new(PeerType::Client);
    let p0 = hs.generate_outbound_p0_and_p1().map_err(|e| format!("{e:?}"))?;
    s.write_all(&p0).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 65536];
    let leftover = loop {
        let n = s.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("RTMP: closed during handshake".into());
        }
        match hs.process_bytes(&buf[..n]).map_err(|e| format!("{e:?}"))? {
            HandshakeProcessResult::InProgress { response_bytes } => {
                s.write_all(&response_bytes).await.map_err(|e| e.to_string())?
            }
            HandshakeProcessResult::Completed { response_bytes, remaining_bytes } => {
                s.write_all(&response_bytes).await.map_err(|e| e.to_string())?;
                break remaining_bytes;
            }
        }
    };
    let (mut session, rs) = ClientSession::new(ClientSessionConfig::new()).map_err(|e| format!("{e:?}"))?;
    let mut ev = Vec::new();
    write_results(&mut s, rs, &mut ev).await?;
    if !leftover.is_empty() {
        let rs = session.handle_input(&leftover).map_err(|e| format!("{e:?}"))?;
        write_results(&mut s, rs, &mut ev).await?;
    }
    let r = session.request_connection(a.app.clone()).map_err(|e| format!("{e:?}"))?;
    write_results(&mut s, vec![r], &mut ev).await?;
    wait_event(&mut s, &mut session, &mut buf, |e| matches!(e, ClientSessionEvent::ConnectionRequestAccepted)).await?;
    let r = session.request_publishing(name.clone(), PublishRequestType::Live).map_err(|e| format!("{e:?}"))?;
    write_results(&mut s, vec![r], &mut ev).await?;
    wait_event(&mut s, &mut session, &mut buf, |e| matches!(e, ClientSessionEvent::PublishRequestAccepted)).await?;
    sh.published_ok.store(true, Ordering::Relaxed);
    let (mut rd, mut wr) = s.into_split();
    // Discard whatever the server sends from now on (acknowledgements, pings).
    tokio::spawn(async move {
        let mut b = vec![0u8; 8192];
        while let Ok(n) = rd.read(&mut b).await {
            if n == 0 {
                break;
            }
        }
    });
    let packet = |session: &mut ClientSession, t: &Tag, ts: u32| -> Res<Vec<u8>> {
        let r = if t.video {
            session.publish_video_data(t.data.clone(), RtmpTimestamp::new(ts), false)
        } else {
            session.publish_audio_data(t.data.clone(), RtmpTimestamp::new(ts), false)
        };
        match r.map_err(|e| format!("{e:?}"))? {
            ClientSessionResult::OutboundResponse(p) => Ok(p.bytes),
            _ => Ok(Vec::new()),
        }
    };
    for h in &media.headers {
        let b = packet(&mut session, h, 0)?;
        wr.write_all(&b).await.map_err(|e| e.to_string())?;
    }
    let t0 = Instant::now() + Duration::from_millis(20);
    let pause = a.pause_after.map(|p| t0 + Duration::from_secs_f64(p));
    let mut lp = 0u32;
    'outer: loop {
        for t in &media.tags {
            let ts = lp * media.period + t.ts;
            let due = t0 + Duration::from_millis(u64::from(ts));
            if due >= stop || pause.is_some_and(|p| due >= p) {
                break 'outer;
            }
            let now = Instant::now();
            if due > now {
                tokio::time::sleep_until(due.into()).await;
            } else {
                let lag = (now - due).as_micros() as u64;
                sh.max_lag_us.fetch_max(lag, Ordering::Relaxed);
            }
            let b = packet(&mut session, t, ts)?;
            wr.write_all(&b).await.map_err(|e| e.to_string())?;
            if t.video {
                let at = Instant::now();
                sh.sends.lock().unwrap().insert(ts, at);
            }
        }
        lp += 1;
    }
    if pause.is_some() {
        // Keep the connection (and so the stream) open without media until the end.
        tokio::time::sleep_until(stop.into()).await;
    }
    drop(wr);
    Ok(())
}

// ------------------------------------------------------------------ HTTP ---

struct Http {
    s: TcpStream,
    buf: Vec<u8>,
    host: String,
}

struct Resp {
    status: u16,
    body: Vec<u8>,
    /// When the response head had arrived.
    head_at: Instant,
}

impl Http {
    async fn connect(addr: &str) -> Res<Http> {
        let s = TcpStream::connect(addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
        s.set_nodelay(true).ok();
        Ok(Http { s, buf: Vec::with_capacity(4096), host: addr.to_string() })
    }

    async fn get(&mut self, path: &str) -> Res<Resp> {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host);
        self.s.write_all(req.as_bytes()).await.map_err(|e| format!("write: {e}"))?;
        self.buf.clear();
        let mut chunk = [0u8; 16384];
        let (head_end, head_at) = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break (p + 4, Instant::now());
            }
            let n = self.s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("closed".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(|_| "bad head")?;
        let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).ok_or("bad status")?;
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while self.buf.len() < head_end + len {
            let n = self.s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("closed in body".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let body = self.buf[head_end..head_end + len].to_vec();
        Ok(Resp { status, body, head_at })
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// The part EXT-X-PRELOAD-HINT names: (msn, part).
fn parse_hint(pl: &[u8]) -> Option<Point> {
    let t = std::str::from_utf8(pl).ok()?;
    let line = t.lines().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))?;
    let uri = line.split("URI=\"").nth(1)?.split('"').next()?;
    let stem = uri.split('?').next()?.strip_suffix(".m4s")?;
    let (_, rest) = stem.rsplit_once('_')?;
    let (m, p) = rest.split_once('.')?;
    Some((m.parse().ok()?, p.parse().ok()?))
}

async fn current_hint(g: &Global, c: &mut Http, base: &str, stop: Instant) -> Option<Point> {
    while Instant::now() < stop {
        match c.get(&format!("{base}{}.m3u8", g.args.rendition)).await {
            Ok(r) if r.status == 200 => {
                if let Some(h) = parse_hint(&r.body) {
                    return Some(h);
                }
            }
            Ok(_) => {}
            Err(e) => {
                g.error(format!("playlist: {e}"));
                return None;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

async fn prober(g: Arc<Global>, idx: usize, stop: Instant) {
    let sh = g.streams[idx].clone();
    let base = format!("/{}/{}{}/", g.args.app, g.args.prefix, idx);
    let rend = g.args.rendition.clone();
    let (Ok(mut a), Ok(mut b)) = (Http::connect(&g.args.http).await, Http::connect(&g.args.http).await) else {
        g.error("prober connect".into());
        return;
    };
    let Some(mut hint) = current_hint(&g, &mut a, &base, stop).await else { return };
    while Instant::now() < stop {
        let pl = format!("{base}{rend}.m3u8?_HLS_msn={}&_HLS_part={}", hint.0, hint.1);
        let part = format!("{base}{rend}_{}.{}.m4s", hint.0, hint.1);
        let sent = Instant::now();
        let (ra, rb) = tokio::join!(a.get(&pl), b.get(&part));
        let (ra, rb) = match (ra, rb) {
            (Ok(x), Ok(y)) => (x, y),
            (x, y) => {
                g.error(format!("prober: {:?} {:?}", x.err(), y.err()));
                return;
            }
        };
        let mut end_ms = None;
        if rb.status == 200 {
            if let Some(end) = part_end(&rb.body) {
                // Video timescale 90 kHz; audio 48 kHz.
                let ms = if rend.starts_with("video") { end / 90 } else { end * 1000 / 48000 };
                end_ms = Some(ms);
                let send = sh.sends.lock().unwrap().get(&(ms as u32)).copied();
                match send {
                    Some(t) => {
                        sh.completing.lock().unwrap().insert(hint, t);
                    }
                    None => {
                        sh.unmatched.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        } else {
            g.error(format!("hinted part {}", rb.status));
        }
        let next = if ra.status == 200 { parse_hint(&ra.body) } else { None };
        if g.in_window(sent) {
            sh.probe.lock().unwrap().push((
                hint,
                sent,
                (rb.status == 200).then_some(rb.head_at),
                (ra.status == 200).then_some(ra.head_at),
                end_ms,
                next.is_some_and(|n| n.0 != hint.0),
            ));
        }
        if ra.status != 200 {
            g.error(format!("blocking playlist {}", ra.status));
        }
        hint = match next {
            Some(h) => h,
            None => match current_hint(&g, &mut a, &base, stop).await {
                Some(h) => h,
                None => return,
            },
        };
    }
}

async fn held(g: Arc<Global>, idx: usize, stop: Instant, sem: Arc<Semaphore>) {
    let sh = g.streams[idx].clone();
    let base = format!("/{}/{}{}/", g.args.app, g.args.prefix, idx);
    let rend = g.args.rendition.clone();
    let permit = sem.acquire_owned().await;
    let mut c = match Http::connect(&g.args.http).await {
        Ok(c) => c,
        Err(e) => {
            g.error(format!("held connect: {e}"));
            return;
        }
    };
    let Some(mut hint) = current_hint(&g, &mut c, &base, stop).await else { return };
    drop(permit);
    g.connected.fetch_add(1, Ordering::Relaxed);
    while Instant::now() < stop {
        let path = format!("{base}{rend}.m3u8?_HLS_msn={}&_HLS_part={}", hint.0, hint.1);
        let sent = Instant::now();
        g.outstanding.fetch_add(1, Ordering::Relaxed);
        let r = c.get(&path).await;
        g.outstanding.fetch_sub(1, Ordering::Relaxed);
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                g.error(format!("held: {e}"));
                return;
            }
        };
        if r.status != 200 {
            g.error(format!("held status {}", r.status));
        } else if g.in_window(sent) {
            sh.held.lock().unwrap().push((hint, sent, r.head_at));
        }
        hint = match (r.status == 200).then(|| parse_hint(&r.body)).flatten() {
            Some(h) => h,
            None => match current_hint(&g, &mut c, &base, stop).await {
                Some(h) => h,
                None => return,
            },
        };
    }
}

// ----------------------------------------------------------------- stats ---

fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(") ")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}

fn row(name: &str, v: &mut [f64]) {
    if v.is_empty() {
        println!("| {name:<58} | {:>7} | {:>8} | {:>8} | {:>8} |", 0, "-", "-", "-");
        return;
    }
    let (p50, p99) = (pct(v, 50.0), pct(v, 99.0));
    let max = v.iter().cloned().fold(f64::MIN, f64::max);
    println!("| {name:<58} | {:>7} | {:>8.3} | {:>8.3} | {:>8.3} |", v.len(), p50, p99, max);
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ------------------------------------------------------------------ main ---

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().nth(1).as_deref() == Some("hold") {
        let code = match parse_hold_args().map(hold::run) {
            Ok(f) => match f.await {
                Ok(true) => 0,
                Ok(false) => 1,
                Err(e) => {
                    eprintln!("lsbench: {e}");
                    2
                }
            },
            Err(e) => {
                eprintln!("lsbench: {e}");
                2
            }
        };
        std::process::exit(code);
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("lsbench: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args).await {
        eprintln!("lsbench: {e}");
        std::process::exit(1);
    }
    std::process::exit(0);
}

async fn run(args: Args) -> Res<()> {
    let media = Arc::new(load_flv(&args.file)?);
    let n = args.streams;
    let g = Arc::new(Global {
        streams: (0..n).map(|_| Arc::new(StreamShared::default())).collect(),
        args: args.clone(),
        window_start: Mutex::new(None),
        window_end: Mutex::new(None),
        outstanding: AtomicUsize::new(0),
        connected: AtomicUsize::new(0),
        errors: Mutex::new(HashMap::new()),
    });
    let t_start = Instant::now();
    let total_s = args.warmup + args.duration + 60.0;
    let stop = t_start + Duration::from_secs_f64(total_s);
    let log = |m: String| {
        if !args.quiet {
            eprintln!("[lsbench {:6.1}s] {m}", t_start.elapsed().as_secs_f64());
        }
    };
    // Publishers, started up to 50 ms apart (the whole ramp within 5 s) so that streams'
    // parts are spread in time.
    let stagger = Duration::from_millis(50).min(Duration::from_secs(5) / n.max(1) as u32);
    let mut pubs = Vec::new();
    for i in 0..n {
        let (g2, m2) = (g.clone(), media.clone());
        let pub_stop = if args.cmd == "publish" { t_start + Duration::from_secs_f64(args.duration) } else { stop };
        pubs.push(tokio::spawn(async move {
            if let Err(e) = publish(g2.clone(), m2, i, pub_stop).await {
                g2.error(format!("publish: {e}"));
                eprintln!("lsbench: stream {i}: {e}");
            }
        }));
        tokio::time::sleep(stagger).await;
    }
    if args.cmd == "publish" {
        log(format!("publishing {n} streams for {:.0} s", args.duration));
        for p in pubs {
            let _ = p.await;
        }
        let lag = g.streams.iter().map(|s| s.max_lag_us.load(Ordering::Relaxed)).max().unwrap_or(0);
        println!("published {n} streams; publisher max lag {:.1} ms", lag as f64 / 1000.0);
        return Ok(());
    }
    if args.cmd != "run" {
        return Err(format!("unknown command {}", args.cmd));
    }
    // RSS sampler.
    let samples: Arc<Mutex<Vec<(Instant, u64, usize)>>> = Arc::default();
    if let Some(pid) = args.server_pid {
        let (s2, g2) = (samples.clone(), g.clone());
        tokio::spawn(async move {
            loop {
                if let Some(r) = rss_kb(pid) {
                    s2.lock().unwrap().push((Instant::now(), r, g2.outstanding.load(Ordering::Relaxed)));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    for i in 0..n {
        tokio::spawn(prober(g.clone(), i, stop));
    }
    let warm_end = t_start + Duration::from_secs_f64(args.warmup);
    tokio::time::sleep_until(warm_end.into()).await;
    let idle: Vec<u64> = samples
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.0 + Duration::from_secs(3) >= warm_end)
        .map(|s| s.1)
        .collect();
    let total_held = n * args.held_per_stream;
    if total_held > 0 {
        log(format!("opening {total_held} held-request connections"));
        let sem = Arc::new(Semaphore::new(200));
        for k in 0..total_held {
            tokio::spawn(held(g.clone(), k % n, stop, sem.clone()));
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while g.connected.load(Ordering::Relaxed) < total_held && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        log(format!("{} connected", g.connected.load(Ordering::Relaxed)));
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let ws = Instant::now();
    let we = ws + Duration::from_secs_f64(args.duration);
    *g.window_start.lock().unwrap() = Some(ws);
    *g.window_end.lock().unwrap() = Some(we);
    log(format!("measuring for {:.0} s", args.duration));
    let cpu0 = args.server_pid.and_then(cpu_ticks);
    let me = std::process::id();
    let self0 = cpu_ticks(me);
    tokio::time::sleep_until(we.into()).await;
    let cpu1 = args.server_pid.and_then(cpu_ticks);
    let self1 = cpu_ticks(me);
    let tool_cpu = match (self0, self1) {
        (Some(a), Some(b)) => (b - a) as f64 / 100.0 / args.duration * 100.0,
        _ => f64::NAN,
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // ---- results
    let mut part_lat = Vec::new();
    let (mut part_lat_seg, mut part_lat_mid) = (Vec::new(), Vec::new());
    let mut pl_lat = Vec::new();
    let mut held_lat = Vec::new();
    let mut spread = Vec::new();
    let (mut late_probe, mut late_held, mut unknown) = (0u64, 0u64, 0u64);
    let mut rates = Vec::new();
    let mut per_stream_p99 = Vec::new();
    let mut lags = Vec::new();
    for sh in &g.streams {
        let completing = sh.completing.lock().unwrap().clone();
        let probe = sh.probe.lock().unwrap().clone();
        let heldv = sh.held.lock().unwrap().clone();
        // First arrival of each point, over every response for it.
        let mut first: HashMap<Point, Instant> = HashMap::new();
        for (p, _, a, b, _, _) in &probe {
            for t in [a, b].into_iter().flatten() {
                first.entry(*p).and_modify(|x| *x = (*x).min(*t)).or_insert(*t);
            }
        }
        for (p, _, t) in &heldv {
            first.entry(*p).and_modify(|x| *x = (*x).min(*t)).or_insert(*t);
        }
        let mut mine = Vec::new();
        for (p, sent, a, b, _, closes) in &probe {
            let Some(c) = completing.get(p) else {
                unknown += 1;
                continue;
            };
            if sent > c {
                late_probe += 1;
                continue;
            }
            if let Some(a) = a {
                part_lat.push(ms(*a - *c));
                mine.push(ms(*a - *c));
                if *closes {
                    part_lat_seg.push(ms(*a - *c));
                } else {
                    part_lat_mid.push(ms(*a - *c));
                }
            }
            if let Some(b) = b {
                pl_lat.push(ms(*b - *c));
            }
        }
        for (p, sent, t) in &heldv {
            let Some(c) = completing.get(p) else {
                unknown += 1;
                continue;
            };
            if sent > c {
                late_held += 1;
                continue;
            }
            held_lat.push(ms(t.saturating_duration_since(*c)));
            if let Some(f) = first.get(p) {
                spread.push(ms(*t - *f));
            }
        }
        // Real-time check: media time covered by the parts seen in the window vs wall time.
        let ends: Vec<(Instant, u64)> = probe.iter().filter_map(|(_, _, a, _, e, _)| Some(((*a)?, (*e)?))).collect();
        if let (Some(f), Some(l)) = (ends.first(), ends.last()) {
            let wall = (l.0 - f.0).as_secs_f64();
            if wall > 0.0 {
                rates.push((l.1 as f64 - f.1 as f64) / 1000.0 / wall);
            }
        } else {
            rates.push(0.0);
        }
        per_stream_p99.push(pct(&mut mine, 99.0));
        lags.push(sh.max_lag_us.load(Ordering::Relaxed) as f64 / 1000.0);
    }
    println!();
    println!(
        "lsbench: {n} streams, {} held-request connections, window {:.0} s (after {:.0} s warm-up)",
        total_held, args.duration, args.warmup
    );
    println!();
    println!("| {:<58} | {:>7} | {:>8} | {:>8} | {:>8} |", "latency (ms)", "n", "p50", "p99", "max");
    println!("|{}|{}|{}|{}|{}|", "-".repeat(60), "-".repeat(9), "-".repeat(10), "-".repeat(10), "-".repeat(10));
    row("ingest→available: hinted-part response (completing frame sent → head)", &mut part_lat);
    row("  of which parts inside a segment", &mut part_lat_mid);
    row("  of which last parts (their frame also closes segment + TS segment)", &mut part_lat_seg);
    row("ingest→available: blocking playlist response (same origin)", &mut pl_lat);
    if total_held > 0 {
        row("held blocking playlist: completing frame sent → head", &mut held_lat);
        row("held blocking playlist: first response of the point → head", &mut spread);
    }
    println!();
    let unmatched: u64 = g.streams.iter().map(|s| s.unmatched.load(Ordering::Relaxed)).sum();
    println!("answered at once (request sent after the point was complete, excluded): prober {late_probe}, held {late_held}");
    println!("points without a completing frame (part end matched no sent frame): {unmatched}; samples without one: {unknown}");
    let mut r2 = rates.clone();
    println!(
        "media seconds per wall second, per stream: min {:.4}, median {:.4}",
        rates.iter().cloned().fold(f64::MAX, f64::min),
        pct(&mut r2, 50.0)
    );
    let mut p99s: Vec<f64> = per_stream_p99.iter().cloned().filter(|x| !x.is_nan()).collect();
    println!(
        "per-stream ingest→available p99: worst {:.3} ms, median {:.3} ms",
        p99s.iter().cloned().fold(f64::MIN, f64::max),
        pct(&mut p99s, 50.0)
    );
    println!("publisher max lag behind real time: {:.1} ms", lags.iter().cloned().fold(0.0, f64::max));
    println!("lsbench's own CPU in the window (publishers, probers, held clients): {tool_cpu:.0} % of one core");
    let errs = g.errors.lock().unwrap().clone();
    println!("errors: {}", if errs.is_empty() { "none".to_string() } else { format!("{errs:?}") });
    if args.server_pid.is_some() {
        let s = samples.lock().unwrap().clone();
        let mut idle_v: Vec<f64> = idle.iter().map(|x| *x as f64).collect();
        let mut held_v: Vec<f64> = s
            .iter()
            .filter(|x| x.0 >= ws && x.0 < we && total_held > 0 && x.2 as f64 >= 0.95 * total_held as f64)
            .map(|x| x.1 as f64)
            .collect();
        let mut out_v: Vec<f64> = s.iter().filter(|x| x.0 >= ws && x.0 < we).map(|x| x.2 as f64).collect();
        let idle_kb = pct(&mut idle_v, 50.0);
        println!("server RSS idle (streams only, last 3 s of warm-up, median): {:.1} MiB", idle_kb / 1024.0);
        if total_held > 0 {
            let held_kb = pct(&mut held_v, 50.0);
            println!(
                "server RSS with ≥95 % of {total_held} requests held (median of {} samples): {:.1} MiB",
                held_v.len(),
                held_kb / 1024.0
            );
            println!("held requests outstanding in the window: median {:.0}", pct(&mut out_v, 50.0));
            println!(
                "memory per held request: ({:.1} − {:.1}) MiB / {total_held} = {:.2} KiB",
                held_kb / 1024.0,
                idle_kb / 1024.0,
                (held_kb - idle_kb) / total_held as f64
            );
        }
    }
    if let (Some(a), Some(b)) = (cpu0, cpu1) {
        // CLK_TCK is 100 on Linux.
        let cpu_s = (b - a) as f64 / 100.0;
        let responses: usize = g.streams.iter().map(|s| s.held.lock().unwrap().len() + 2 * s.probe.lock().unwrap().len()).sum();
        println!(
            "server CPU in the window: {:.2} s ({:.0} % of one core); responses {} ({:.0}/s); {:.1} µs of server CPU per response (ingest included)",
            cpu_s,
            cpu_s / args.duration * 100.0,
            responses,
            responses as f64 / args.duration,
            cpu_s * 1e6 / responses.max(1) as f64
        );
    }
    // Machine-readable summary line for the scripts.
    println!(
        "SUMMARY streams={n} held={total_held} part_p50={:.3} part_p99={:.3} held_p50={:.3} held_p99={:.3} spread_p99={:.3} rate_min={:.4} lag_max={:.1} worst_stream_p99={:.3} errors={} tool_cpu={:.0}",
        pct(&mut part_lat, 50.0),
        pct(&mut part_lat, 99.0),
        pct(&mut held_lat, 50.0),
        pct(&mut held_lat, 99.0),
        pct(&mut spread, 99.0),
        rates.iter().cloned().fold(f64::MAX, f64::min),
        lags.iter().cloned().fold(0.0, f64::max),
        per_stream_p99.iter().cloned().filter(|x| !x.is_nan()).fold(f64::MIN, f64::max),
        errs.values().sum::<u64>(),
        tool_cpu
    );
    Ok(())
}
