//! Prometheus metrics, kept in atomics and written by hand in the text
//! exposition format (version 0.0.4): `GET /metrics` on the API port and on
//! the LLHLS port, without authentication (as the HLS URLs themselves).
//!
//! One [`Metrics`] is created by the server and handed to whoever counts:
//! the registry (publish rejections, one [`StreamCounters`] per live stream),
//! the sessions (bytes in, packager events, why streams end) and the HTTP
//! layer ([`instrument`]: request durations by kind, response classes, bytes
//! out, viewers). Nothing here allocates per sample or per request on the
//! counting side; rendering a scrape allocates the text.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::HttpBody as _;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use lockstep_packager::Event;

use crate::ingest::PublishError;
use crate::store::StreamKey;

/// A client that fetched a playlist of a stream this recently is a viewer.
pub const VIEWER_WINDOW: Duration = Duration::from_secs(30);

/// Distinct viewer addresses remembered per stream, at most.
const MAX_VIEWERS_TRACKED: usize = 100_000;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the HTTP request duration histogram buckets.
/// Blocking playlist and preload-hint requests are held for up to three
/// target durations, hence the long tail.
const BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// What an HTTP request asked for (the `kind` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpKind {
    /// A media playlist with `_HLS_msn` (blocking reload).
    BlockingPlaylist,
    /// Any other playlist (master, media, HLS).
    Playlist,
    /// An LL-HLS part (`video1_12.3.m4s`).
    Part,
    /// A whole segment (`video1_12.m4s`, `ts_12.ts`).
    Segment,
    /// An init segment (`video1_init.mp4`).
    Init,
    Other,
}

impl HttpKind {
    const ALL: [HttpKind; 6] = [
        HttpKind::BlockingPlaylist,
        HttpKind::Playlist,
        HttpKind::Part,
        HttpKind::Segment,
        HttpKind::Init,
        HttpKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HttpKind::BlockingPlaylist => "blocking_playlist",
            HttpKind::Playlist => "playlist",
            HttpKind::Part => "part",
            HttpKind::Segment => "segment",
            HttpKind::Init => "init",
            HttpKind::Other => "other",
        }
    }

    /// Classify a request by its path and query.
    pub fn classify(path: &str, query: Option<&str>) -> HttpKind {
        let name = path.rsplit('/').next().unwrap_or(path);
        if name.ends_with(".m3u8") {
            let blocking = query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("_HLS_msn=")));
            return if blocking { HttpKind::BlockingPlaylist } else { HttpKind::Playlist };
        }
        if name.ends_with("_init.mp4") {
            return HttpKind::Init;
        }
        if name.ends_with(".ts") {
            return HttpKind::Segment;
        }
        if let Some(stem) = name.strip_suffix(".m4s") {
            // `{label}_{msn}.{part}` is a part, `{label}_{msn}` a segment.
            let numbers = stem.rsplit_once('_').map_or("", |(_, n)| n);
            return if numbers.contains('.') { HttpKind::Part } else { HttpKind::Segment };
        }
        HttpKind::Other
    }
}

/// Why a stream ended (the `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndKind {
    /// No packet for `PacketSilenceTimeoutMs`.
    Silence,
    /// The publisher went away.
    Disconnected,
    /// Ended through the API (`DELETE`).
    Deleted,
    /// The server shut down.
    Shutdown,
    /// The input could not be packaged.
    BadStream,
}

impl EndKind {
    const ALL: [EndKind; 5] =
        [EndKind::Silence, EndKind::Disconnected, EndKind::Deleted, EndKind::Shutdown, EndKind::BadStream];

    pub fn as_str(self) -> &'static str {
        match self {
            EndKind::Silence => "silence",
            EndKind::Disconnected => "disconnected",
            EndKind::Deleted => "deleted",
            EndKind::Shutdown => "shutdown",
            EndKind::BadStream => "bad_stream",
        }
    }
}

/// The `event` label values, in the order of the packager's [`Event`].
const EVENTS: [&str; 8] = [
    "KeyframeIntervalTooLong",
    "PartOverTarget",
    "SegmentOverTarget",
    "TimelineGap",
    "DroppedSample",
    "TsSegmentFailed",
    "EmptyPart",
    "ConfigurationChanged",
];

fn event_index(e: &Event) -> usize {
    match e {
        Event::KeyframeIntervalTooLong { .. } => 0,
        Event::PartOverTarget { .. } => 1,
        Event::SegmentOverTarget { .. } => 2,
        Event::TimelineGap { .. } => 3,
        Event::DroppedSample { .. } => 4,
        Event::TsSegmentFailed { .. } => 5,
        Event::EmptyPart { .. } => 6,
        Event::ConfigurationChanged { .. } => 7,
    }
}

/// The `reason` label values of publish rejections.
const REJECTIONS: [&str; 7] = [
    "unknown_app",
    "provider_disabled",
    "invalid_stream_name",
    "already_live",
    "ending",
    "shutting_down",
    "unauthorized",
];

fn rejection_index(e: &PublishError) -> usize {
    match e {
        PublishError::UnknownApp { .. } => 0,
        PublishError::ProviderDisabled { .. } => 1,
        PublishError::InvalidStreamName { .. } => 2,
        PublishError::AlreadyLive { .. } => 3,
        PublishError::Ending { .. } => 4,
        PublishError::ShuttingDown => 5,
        PublishError::Unauthorized { .. } => 6,
    }
}

/// A histogram with the fixed [`BUCKETS`].
struct Histogram {
    /// Per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram { buckets: std::array::from_fn(|_| AtomicU64::new(0)), sum_ns: AtomicU64::new(0) }
    }

    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = BUCKETS.iter().position(|&le| s <= le).unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

/// Counters of one live stream, shared by its session (bytes in), the HTTP
/// layer (bytes out, viewers) and the API.
pub struct StreamCounters {
    /// Media payload bytes received (the demuxed access units).
    pub bytes_in: AtomicU64,
    /// Response body bytes sent for the stream's URLs.
    pub bytes_out: AtomicU64,
    viewers: Mutex<Viewers>,
}

struct Viewers {
    last_seen: HashMap<IpAddr, Instant>,
    pruned: Option<Instant>,
}

impl StreamCounters {
    fn new() -> StreamCounters {
        StreamCounters {
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            viewers: Mutex::new(Viewers { last_seen: HashMap::new(), pruned: None }),
        }
    }

    /// `ip` fetched a playlist of the stream at `now`.
    pub fn saw_viewer(&self, ip: IpAddr, now: Instant) {
        let mut v = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = v.last_seen.get_mut(&ip) {
            *t = now;
            return;
        }
        if v.last_seen.len() >= MAX_VIEWERS_TRACKED {
            // Prune at most once a second; past the bound, new addresses
            // are not counted until old ones expire.
            if v.pruned.is_some_and(|p| now.saturating_duration_since(p) < Duration::from_secs(1)) {
                return;
            }
            v.pruned = Some(now);
            v.last_seen.retain(|_, t| now.saturating_duration_since(*t) < VIEWER_WINDOW);
            if v.last_seen.len() >= MAX_VIEWERS_TRACKED {
                return;
            }
        }
        v.last_seen.insert(ip, now);
    }

    /// Distinct addresses that fetched a playlist within [`VIEWER_WINDOW`]
    /// before `now`.
    pub fn viewers(&self, now: Instant) -> usize {
        let mut v = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        v.last_seen.retain(|_, t| now.saturating_duration_since(*t) < VIEWER_WINDOW);
        v.last_seen.len()
    }
}

/// The health monitor's latest measurements (src/health.rs), replaced as a
/// whole after each one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HealthGauges {
    /// (NTP server `HOST:PORT`, this node's clock offset to it in seconds),
    /// for the servers last measured.
    pub ntp_offset_s: Vec<(String, f64)>,
    /// The peer's clock minus this node's, seconds (pairs, once measured).
    pub peer_clock_offset_s: Option<f64>,
    /// Whether the peer answered the last measurement (pairs only).
    pub peer_reachable: Option<bool>,
    /// (`app/stream`, recent objects whose hash differs on the peer).
    pub objects_differing: Vec<(String, u64)>,
    pub healthy: bool,
}

/// Every metric of the process.
pub struct Metrics {
    /// Set by the health monitor; `None` when it does not run.
    health: RwLock<Option<HealthGauges>>,
    /// Live streams by `app/stream`.
    streams: RwLock<HashMap<String, Arc<StreamCounters>>>,
    /// Held-request counters of the HTTP listeners (summed).
    held: Mutex<Vec<Arc<AtomicUsize>>>,
    http_duration: [Histogram; HttpKind::ALL.len()],
    /// Responses by status class, 1xx to 5xx.
    responses: [AtomicU64; 5],
    silence_terminations: AtomicU64,
    ends: [AtomicU64; EndKind::ALL.len()],
    events: [AtomicU64; EVENTS.len()],
    rejections: [AtomicU64; REJECTIONS.len()],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn counters<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            health: RwLock::new(None),
            streams: RwLock::new(HashMap::new()),
            held: Mutex::new(Vec::new()),
            http_duration: std::array::from_fn(|_| Histogram::new()),
            responses: counters(),
            silence_terminations: AtomicU64::new(0),
            ends: counters(),
            events: counters(),
            rejections: counters(),
        }
    }

    /// A stream went live: its counters, fresh.
    pub fn open_stream(&self, key: &StreamKey) -> Arc<StreamCounters> {
        let c = Arc::new(StreamCounters::new());
        self.streams.write().unwrap_or_else(|e| e.into_inner()).insert(key.to_string(), c.clone());
        c
    }

    /// A stream is over: drop its series (if `counters` are still its
    /// current ones; a new session of the same stream has its own).
    pub fn close_stream(&self, key: &StreamKey, counters: &Arc<StreamCounters>) {
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        let name = key.to_string();
        if streams.get(&name).is_some_and(|c| Arc::ptr_eq(c, counters)) {
            streams.remove(&name);
        }
    }

    /// The counters of the live stream `app/stream`.
    pub fn stream(&self, app_stream: &str) -> Option<Arc<StreamCounters>> {
        self.streams.read().unwrap_or_else(|e| e.into_inner()).get(app_stream).cloned()
    }

    /// Report `held` (an HTTP listener's held-request count) as
    /// `lockstep_held_requests`.
    pub fn watch_held(&self, held: Arc<AtomicUsize>) {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).push(held);
    }

    pub fn observe_http(&self, kind: HttpKind, took: Duration, status: u16) {
        let i = HttpKind::ALL.iter().position(|k| *k == kind).unwrap_or(HttpKind::ALL.len() - 1);
        self.http_duration[i].observe(took);
        if let Some(c) = usize::from(status / 100).checked_sub(1).and_then(|c| self.responses.get(c)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn stream_ended(&self, why: EndKind) {
        let i = EndKind::ALL.iter().position(|k| *k == why).unwrap_or(0);
        self.ends[i].fetch_add(1, Ordering::Relaxed);
        if why == EndKind::Silence {
            self.silence_terminations.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn packager_event(&self, e: &Event) {
        self.events[event_index(e)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn publish_rejected(&self, e: &PublishError) {
        self.rejections[rejection_index(e)].fetch_add(1, Ordering::Relaxed);
    }

    /// The health monitor's latest measurements.
    pub fn set_health(&self, g: HealthGauges) {
        *self.health.write().unwrap_or_else(|e| e.into_inner()) = Some(g);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Exposition::default();
        let streams: Vec<(String, Arc<StreamCounters>)> = {
            let s = self.streams.read().unwrap_or_else(|e| e.into_inner());
            let mut v: Vec<_> = s.iter().map(|(k, c)| (k.clone(), c.clone())).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        out.header("lockstep_streams", "gauge", "Live streams.");
        out.sample("lockstep_streams", &[], streams.len() as u64);

        out.header(
            "lockstep_stream_bytes_in_total",
            "counter",
            "Media payload bytes received per live stream (demuxed access units).",
        );
        for (name, c) in &streams {
            out.sample("lockstep_stream_bytes_in_total", &[("stream", name)], c.bytes_in.load(Ordering::Relaxed));
        }
        out.header(
            "lockstep_stream_bytes_out_total",
            "counter",
            "HTTP response body bytes sent per live stream (playlists, parts, segments, init segments).",
        );
        for (name, c) in &streams {
            out.sample("lockstep_stream_bytes_out_total", &[("stream", name)], c.bytes_out.load(Ordering::Relaxed));
        }

        let held: usize =
            self.held.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|h| h.load(Ordering::Relaxed)).sum();
        out.header(
            "lockstep_held_requests",
            "gauge",
            "HTTP requests being held: blocking playlist reloads and preload-hinted parts waiting.",
        );
        out.sample("lockstep_held_requests", &[], held as u64);

        let name = "lockstep_http_request_duration_seconds";
        out.header(name, "histogram", "Time to answer an HTTP request, by what it asked for.");
        for (kind, h) in HttpKind::ALL.iter().zip(&self.http_duration) {
            let kind = kind.as_str();
            let mut cumulative = 0u64;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                out.sample(&format!("{name}_bucket"), &[("kind", kind), ("le", &fmt_float(*le))], cumulative);
            }
            cumulative += h.buckets[BUCKETS.len()].load(Ordering::Relaxed);
            out.sample(&format!("{name}_bucket"), &[("kind", kind), ("le", "+Inf")], cumulative);
            let sum = h.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
            out.sample_f64(&format!("{name}_sum"), &[("kind", kind)], sum);
            out.sample(&format!("{name}_count"), &[("kind", kind)], cumulative);
        }

        out.header("lockstep_http_responses_total", "counter", "HTTP responses by status class.");
        for (i, c) in self.responses.iter().enumerate() {
            let class = format!("{}xx", i + 1);
            out.sample("lockstep_http_responses_total", &[("code_class", &class)], c.load(Ordering::Relaxed));
        }

        out.header(
            "lockstep_silence_terminations_total",
            "counter",
            "Streams ended because no packet arrived for PacketSilenceTimeoutMs.",
        );
        out.sample("lockstep_silence_terminations_total", &[], self.silence_terminations.load(Ordering::Relaxed));

        out.header("lockstep_stream_ends_total", "counter", "Streams ended, by reason.");
        for (k, c) in EndKind::ALL.iter().zip(&self.ends) {
            out.sample("lockstep_stream_ends_total", &[("reason", k.as_str())], c.load(Ordering::Relaxed));
        }

        out.header("lockstep_packager_events_total", "counter", "Packager events (input problems), by event.");
        for (e, c) in EVENTS.iter().zip(&self.events) {
            out.sample("lockstep_packager_events_total", &[("event", e)], c.load(Ordering::Relaxed));
        }

        out.header(
            "lockstep_publish_rejections_total",
            "counter",
            "Publish requests refused by the registry, by reason.",
        );
        for (r, c) in REJECTIONS.iter().zip(&self.rejections) {
            out.sample("lockstep_publish_rejections_total", &[("reason", r)], c.load(Ordering::Relaxed));
        }
        if let Some(h) = self.health.read().unwrap_or_else(|e| e.into_inner()).clone() {
            render_health(&mut out, &h);
        }
        out.text
    }
}

/// The health monitor's gauges (a series only once measured).
fn render_health(out: &mut Exposition, h: &HealthGauges) {
    out.header("lockstep_healthy", "gauge", "1 when GET /health answers 200, 0 when it answers 503.");
    out.sample("lockstep_healthy", &[], u64::from(h.healthy));
    if !h.ntp_offset_s.is_empty() {
        let name = "lockstep_ntp_offset_seconds";
        out.header(name, "gauge", "This node's clock offset to each NTP server (server time minus ours).");
        for (server, v) in &h.ntp_offset_s {
            out.sample_f64(name, &[("server", server)], *v);
        }
    }
    if let Some(v) = h.peer_clock_offset_s {
        let name = "lockstep_peer_clock_offset_seconds";
        out.header(name, "gauge", "The peer's clock minus this node's, estimated over the peer link.");
        out.sample_f64(name, &[], v);
    }
    if let Some(v) = h.peer_reachable {
        out.header("lockstep_peer_reachable", "gauge", "1 when the peer answered the last clock measurement.");
        out.sample("lockstep_peer_reachable", &[], u64::from(v));
    }
    if !h.objects_differing.is_empty() {
        let name = "lockstep_pair_objects_differing";
        out.header(name, "gauge", "Recent media objects of a live stream whose hash differs on the peer.");
        for (stream, n) in &h.objects_differing {
            out.sample(name, &[("stream", stream)], *n);
        }
    }
}

/// A float as Prometheus writes it (`0.005`, `1`, `2.5`).
fn fmt_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        format!("{v}")
    }
}

/// Escape a label value: backslash, double quote and line feed.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Escape `# HELP` text: backslash and line feed.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The text being written.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn labels(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape_label(v));
            }
            self.text.push('}');
        }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: u64) {
        self.labels(name, labels);
        let _ = writeln!(self.text, " {v}");
    }

    fn sample_f64(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.labels(name, labels);
        let _ = writeln!(self.text, " {}", fmt_float(v));
    }
}

/// `GET /metrics`.
pub async fn handler(State(m): State<Arc<Metrics>>) -> Response {
    exposition(&m)
}

/// The exposition as an HTTP response.
pub fn exposition(m: &Metrics) -> Response {
    let mut r = m.render().into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `app/stream` of a delivery URL `/{app}/{stream}/{name}`.
fn stream_of_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    let (app_stream, name) = rest.rsplit_once('/')?;
    let (app, stream) = app_stream.split_once('/')?;
    (!app.is_empty() && !stream.is_empty() && !stream.contains('/') && !name.is_empty()).then_some(app_stream)
}

/// Middleware: time every request, count its status class, and for a
/// stream's URLs count the bytes sent and the viewer's address (a 2xx/304
/// playlist response). The peer address comes from [`ConnectInfo`] when the
/// listener provides it.
pub async fn track_http(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let path = req.uri().path();
    let kind = HttpKind::classify(path, req.uri().query());
    let playlist = path.ends_with(".m3u8");
    let counters = stream_of_path(path).and_then(|k| m.stream(k));
    let ip = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let resp = next.run(req).await;
    let status = resp.status();
    m.observe_http(kind, start.elapsed(), status.as_u16());
    if let Some(c) = counters {
        if let Some(n) = resp.body().size_hint().exact() {
            c.bytes_out.fetch_add(n, Ordering::Relaxed);
        }
        let served = status.is_success() || status == StatusCode::NOT_MODIFIED;
        if let (true, true, Some(ip)) = (playlist, served, ip) {
            c.saw_viewer(ip, Instant::now());
        }
    }
    resp
}

/// Add `GET /metrics` and the measuring middleware to `router`.
pub fn instrument(router: Router, metrics: Arc<Metrics>) -> Router {
    router
        .route("/metrics", get(handler).with_state(metrics.clone()))
        .layer(axum::middleware::from_fn_with_state(metrics, track_http))
}

/// The LL-HLS / HLS delivery router with metrics: the held-request gauge,
/// `GET /metrics`, and per-request measurements.
pub fn delivery_router(state: crate::http::HttpState, metrics: Arc<Metrics>) -> Router {
    metrics.watch_held(state.held.clone());
    instrument(crate::http::router(state), metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify() {
        let c = |p: &str, q: Option<&str>| HttpKind::classify(p, q).as_str();
        assert_eq!(c("/app/s/video1.m3u8", Some("_HLS_msn=5&_HLS_part=1")), "blocking_playlist");
        assert_eq!(c("/app/s/video1.m3u8", Some("_HLS_skip=YES")), "playlist");
        assert_eq!(c("/app/s/llhls.m3u8", None), "playlist");
        assert_eq!(c("/app/s/video1_12.3.m4s", None), "part");
        assert_eq!(c("/app/s/video1_12.m4s", None), "segment");
        assert_eq!(c("/app/s/ts_12.ts", None), "segment");
        assert_eq!(c("/app/s/video1_init.mp4", None), "init");
        assert_eq!(c("/metrics", None), "other");
        assert_eq!(c("/", None), "other");
    }

    #[test]
    fn stream_paths() {
        assert_eq!(stream_of_path("/app/s/llhls.m3u8"), Some("app/s"));
        assert_eq!(stream_of_path("/app/s/"), None);
        assert_eq!(stream_of_path("/metrics"), None);
        assert_eq!(stream_of_path("/a/b/c/d"), None);
        assert_eq!(stream_of_path("//s/x"), None);
    }

    #[test]
    fn label_escaping() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(escape_help("a\\b\nc"), "a\\\\b\\nc");
        let mut e = Exposition::default();
        e.sample("m", &[("stream", "a\"b"), ("k", "v")], 3);
        assert_eq!(e.text, "m{stream=\"a\\\"b\",k=\"v\"} 3\n");
    }

    /// Every sample line is `name{labels} value`, every name has HELP and
    /// TYPE before its samples, histograms are cumulative.
    #[test]
    fn exposition_format() {
        let m = Metrics::new();
        let key = StreamKey { app: "app".into(), stream: "s".into() };
        let c = m.open_stream(&key);
        c.bytes_in.fetch_add(1000, Ordering::Relaxed);
        m.observe_http(HttpKind::Part, Duration::from_millis(3), 200);
        m.observe_http(HttpKind::Part, Duration::from_secs(100), 404);
        m.stream_ended(EndKind::Silence);
        m.publish_rejected(&PublishError::ShuttingDown);
        let text = m.render();
        let mut typed: HashMap<String, String> = HashMap::new();
        let mut helped = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                helped.insert(rest.split(' ').next().unwrap_or_default().to_owned());
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split(' ');
                let (n, t) = (it.next().unwrap_or_default(), it.next().unwrap_or_default());
                typed.insert(n.to_owned(), t.to_owned());
                continue;
            }
            let (series, value) = line.rsplit_once(' ').unwrap_or_default();
            assert!(value.parse::<f64>().is_ok() || value == "+Inf", "bad value in {line:?}");
            let name = series.split('{').next().unwrap_or_default();
            assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "{line:?}");
            if series.contains('{') {
                assert!(series.ends_with('}'), "{line:?}");
            }
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|b| typed.get(*b).is_some_and(|t| t == "histogram")))
                .unwrap_or(name);
            assert!(typed.contains_key(base) && helped.contains(base), "no HELP/TYPE before {line:?}");
        }
        assert!(text.contains("lockstep_streams 1\n"), "{text}");
        assert!(text.contains("lockstep_stream_bytes_in_total{stream=\"app/s\"} 1000\n"), "{text}");
        assert!(text.contains("lockstep_http_request_duration_seconds_bucket{kind=\"part\",le=\"0.001\"} 0\n"));
        assert!(text.contains("lockstep_http_request_duration_seconds_bucket{kind=\"part\",le=\"0.005\"} 1\n"));
        assert!(text.contains("lockstep_http_request_duration_seconds_bucket{kind=\"part\",le=\"30\"} 1\n"));
        assert!(text.contains("lockstep_http_request_duration_seconds_bucket{kind=\"part\",le=\"+Inf\"} 2\n"));
        assert!(text.contains("lockstep_http_request_duration_seconds_count{kind=\"part\"} 2\n"));
        assert!(text.contains("lockstep_http_responses_total{code_class=\"4xx\"} 1\n"));
        assert!(text.contains("lockstep_http_responses_total{code_class=\"2xx\"} 1\n"));
        assert!(text.contains("lockstep_silence_terminations_total 1\n"));
        assert!(text.contains("lockstep_stream_ends_total{reason=\"silence\"} 1\n"));
        assert!(text.contains("lockstep_publish_rejections_total{reason=\"shutting_down\"} 1\n"));
        assert!(text.contains("lockstep_packager_events_total{event=\"KeyframeIntervalTooLong\"} 0\n"));

        m.close_stream(&key, &c);
        assert!(m.render().contains("lockstep_streams 0\n"));
    }

    #[test]
    fn a_new_session_keeps_its_counters() {
        let m = Metrics::new();
        let key = StreamKey { app: "app".into(), stream: "s".into() };
        let old = m.open_stream(&key);
        let new = m.open_stream(&key);
        m.close_stream(&key, &old);
        assert!(m.stream("app/s").is_some_and(|c| Arc::ptr_eq(&c, &new)));
        m.close_stream(&key, &new);
        assert!(m.stream("app/s").is_none());
    }

    async fn fetch(port: u16, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return (0, String::new()) };
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let mut buf = Vec::new();
        if s.write_all(req.as_bytes()).await.is_err() || s.read_to_end(&mut buf).await.is_err() {
            return (0, String::new());
        }
        let text = String::from_utf8_lossy(&buf).into_owned();
        let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map_or(String::new(), |(_, b)| b.to_owned());
        (status, body)
    }

    #[tokio::test]
    async fn middleware_counts_requests_bytes_and_viewers() {
        let m = Arc::new(Metrics::new());
        let c = m.open_stream(&StreamKey { app: "app".into(), stream: "s".into() });
        let router = Router::new()
            .route("/{app}/{stream}/{name}", get(|| async { "#EXTM3U\n" }))
            .fallback(|| async { StatusCode::NOT_FOUND });
        let app = instrument(router, m.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = l.local_addr().expect("local address").port();
        let server = tokio::spawn(async move { axum::serve(l, app).await });
        assert_eq!(fetch(port, "/app/s/llhls.m3u8").await.0, 200);
        assert_eq!(fetch(port, "/app/s/video1_3.1.m4s").await.0, 200);
        assert_eq!(fetch(port, "/nothing").await.0, 404);
        let (status, text) = fetch(port, "/metrics").await;
        server.abort();
        assert_eq!(status, 200);
        assert_eq!(c.bytes_out.load(Ordering::Relaxed), 16, "two 8-byte bodies");
        assert_eq!(c.viewers(Instant::now()), 1, "one address fetched a playlist");
        assert!(text.contains("lockstep_http_responses_total{code_class=\"4xx\"} 1\n"), "{text}");
        assert!(text.contains("lockstep_http_request_duration_seconds_count{kind=\"playlist\"} 1\n"), "{text}");
        assert!(text.contains("lockstep_http_request_duration_seconds_count{kind=\"part\"} 1\n"), "{text}");
        assert!(text.contains("lockstep_stream_bytes_out_total{stream=\"app/s\"} 16\n"), "{text}");
    }

    #[test]
    fn viewers_expire() {
        let c = StreamCounters::new();
        let t0 = Instant::now();
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        c.saw_viewer(a, t0);
        c.saw_viewer(a, t0);
        c.saw_viewer(b, t0 + Duration::from_secs(20));
        assert_eq!(c.viewers(t0 + Duration::from_secs(21)), 2);
        assert_eq!(c.viewers(t0 + Duration::from_secs(31)), 1);
        assert_eq!(c.viewers(t0 + Duration::from_secs(60)), 0);
    }
}
