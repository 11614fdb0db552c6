//! HTTP delivery of LL-HLS and HLS (draft-pantos-hls-rfc8216bis, 6.2.5 and
//! Appendix B): `GET /{app}/{stream}/{object}`.
//!
//! - Media playlists of LL-HLS renditions (`video1.m3u8`) honour blocking
//!   reload (`_HLS_msn`, `_HLS_part`) and delta updates (`_HLS_skip`). The
//!   playlist served for a blocking request is the one rendered when that
//!   exact point was published, so the same URL gives the same bytes at any
//!   time, on any node.
//! - A request for the part named by EXT-X-PRELOAD-HINT is held until the
//!   part is complete; anything else absent is 404.
//! - Cache-Control per Appendix B, strong ETags (a hash of the bytes),
//!   If-None-Match, HEAD, byte ranges on media objects, gzip for playlists,
//!   CORS from `CrossDomains`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use lockstep_packager::Point;

use crate::config::{Application, Config};
use crate::ingest::valid_name;
use crate::session_key::{self, KeyError};
use crate::store::{Inner, Obj, Store, StreamKey, StreamState};

/// Blocking requests held at once on this node, at most.
pub const MAX_HELD: usize = 20_000;

#[derive(Clone)]
pub struct HttpState {
    pub store: Arc<Store>,
    pub config: Arc<Config>,
    pub held: Arc<AtomicUsize>,
    /// Session-key secrets of the applications with OriginMode false.
    secrets: Arc<HashMap<String, Arc<[u8]>>>,
}

impl HttpState {
    pub fn new(store: Arc<Store>, config: Arc<Config>) -> HttpState {
        let mut secrets = HashMap::new();
        for app in config.vhosts.iter().flat_map(|v| v.apps.iter()) {
            let Some(l) = app.llhls.as_ref().filter(|l| !l.origin_mode) else { continue };
            let secret: Vec<u8> = match &l.session_key_secret {
                Some(s) => s.as_bytes().to_vec(),
                None => random_bytes::<32>().to_vec(),
            };
            secrets.insert(app.name.clone(), Arc::from(secret));
        }
        HttpState { store, config, held: Arc::new(AtomicUsize::new(0)), secrets: Arc::new(secrets) }
    }

    /// A fresh viewer session key for `key` when its application has
    /// OriginMode false (None otherwise): what this node's own requests to
    /// the peer's delivery URLs must carry (the pair shares the secret).
    pub fn viewer_key(&self, key: &StreamKey) -> Option<String> {
        let secret = self.secrets.get(&key.app)?;
        Some(session_key::issue(secret, &key.to_string(), now_s(), random_bytes::<16>()))
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS random source; if it fails, a key from the clock is still
    // unguessable enough for per-viewer nonces, and secrets are configured.
    if getrandom::getrandom(&mut b).is_err() {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        for (i, x) in b.iter_mut().enumerate() {
            *x = (t >> ((i % 16) * 8)) as u8;
        }
    }
    b
}

fn now_s() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// OriginMode false: the session key a response's URIs must carry.
enum Session {
    /// OriginMode true: URLs carry nothing per viewer.
    Off,
    /// This viewer's key (issued now for a master playlist, or verified).
    Key(String),
}

pub fn router(state: HttpState) -> Router {
    Router::new().route("/{app}/{stream}/{name}", get(object).options(preflight)).fallback(fallback).with_state(state)
}

async fn fallback(method: Method) -> Response {
    if method == Method::GET || method == Method::HEAD {
        plain(StatusCode::NOT_FOUND, "max-age=1")
    } else {
        plain(StatusCode::METHOD_NOT_ALLOWED, "no-store")
    }
}

fn plain(status: StatusCode, cache: &'static str) -> Response {
    let mut r = status.into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    r
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("m4s") => "video/iso.segment",
        Some("mp4") => "video/mp4",
        Some("ts") => "video/mp2t",
        _ => "application/octet-stream",
    }
}

/// The blocking-reload directives of a playlist request.
#[derive(Debug, Default, PartialEq, Eq)]
struct Directives {
    msn: Option<u64>,
    part: Option<u32>,
    skip: bool,
}

fn parse_directives(query: Option<&str>) -> Result<Directives, &'static str> {
    let mut d = Directives::default();
    let Some(q) = query else { return Ok(d) };
    for kv in q.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "_HLS_msn" => d.msn = Some(v.parse().map_err(|_| "_HLS_msn must be a non-negative integer")?),
            "_HLS_part" => d.part = Some(v.parse().map_err(|_| "_HLS_part must be a non-negative integer")?),
            "_HLS_skip" => d.skip = matches!(v, "YES" | "v2"),
            _ => {}
        }
    }
    if d.part.is_some() && d.msn.is_none() {
        return Err("_HLS_part without _HLS_msn");
    }
    Ok(d)
}

/// `{label}_{msn}.{part}.m4s` → (label, msn, part).
fn parse_part_name(name: &str) -> Option<(&str, u64, u32)> {
    let stem = name.strip_suffix(".m4s")?;
    let (label, rest) = stem.rsplit_once('_')?;
    let (msn, part) = rest.split_once('.')?;
    Some((label, msn.parse().ok()?, part.parse().ok()?))
}

enum Waited<T> {
    Ready(T),
    TimedOut,
    Gone,
}

/// Wait until `f` finds what it needs in the stream's state, at most `limit`.
async fn wait_for<T>(st: &StreamState, limit: Duration, f: impl Fn(&Inner) -> Option<T>) -> Waited<T> {
    let mut rx = st.subscribe();
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match st.read(|i| if i.ended { Err(()) } else { Ok(f(i)) }) {
            Err(()) => return Waited::Gone,
            Ok(Some(v)) => return Waited::Ready(v),
            Ok(None) => {}
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Err(_) => return Waited::TimedOut,
            Ok(Err(_)) => return Waited::Gone,
            Ok(Ok(())) => {}
        }
    }
}

/// Counts a held request for as long as it lives.
struct Held(Arc<AtomicUsize>);

impl Held {
    fn take(counter: &Arc<AtomicUsize>) -> Option<Held> {
        let n = counter.fetch_add(1, Ordering::AcqRel);
        if n >= MAX_HELD {
            counter.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Held(counter.clone()))
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How a 200 response may be cached.
#[derive(Clone, Copy)]
enum Cache {
    /// A blocking playlist response: names a fixed point.
    Blocking,
    /// A playlist that changes.
    Live,
    /// A media object: never changes once published.
    Media,
    /// An init segment (same name for every session of a stream).
    Init,
    /// A playlist made for one viewer (OriginMode false).
    Private,
    /// A media object served to a viewer with a session key.
    PrivateMedia,
}

struct Reply {
    obj: Obj,
    name: String,
    cache: Cache,
}

async fn object(
    State(st): State<HttpState>,
    Path((app, stream, name)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> Response {
    if !valid_name(&app) || !valid_name(&stream) || !valid_name(&name) {
        return plain(StatusCode::BAD_REQUEST, "no-store");
    }
    let app_cfg = st.config.app(&app);
    let cors = cors_headers(app_cfg, &headers);
    let key = StreamKey { app, stream };
    let session = match st.secrets.get(&key.app) {
        None => Session::Off,
        Some(secret) if name == "llhls.m3u8" || name == "playlist.m3u8" => {
            Session::Key(session_key::issue(secret, &key.to_string(), now_s(), random_bytes::<16>()))
        }
        Some(secret) => {
            let k = session_key::from_query(query.as_deref());
            match session_key::verify(secret, &key.to_string(), k, now_s()) {
                Ok(()) => Session::Key(k.unwrap_or_default().to_string()),
                Err(KeyError::Missing) => return with_cors(plain(StatusCode::UNAUTHORIZED, "no-store"), &cors),
                Err(_) => return with_cors(plain(StatusCode::FORBIDDEN, "no-store"), &cors),
            }
        }
    };
    let Some(stream_state) = st.store.stream(&key) else {
        return with_cors(plain(StatusCode::NOT_FOUND, "max-age=1"), &cors);
    };
    if name.ends_with(".m3u8") && stream_state.read(|i| i.backfilling) {
        return with_cors(plain(StatusCode::NOT_FOUND, "max-age=1"), &cors);
    }
    let info = stream_state.read(|i| i.info.clone());
    let td = info.target_duration_s.max(1);
    let hold_limit = Duration::from_secs(3 * u64::from(td));

    let reply = if let Some(label) =
        name.strip_suffix(".m3u8").filter(|l| stream_state.read(|i| i.renditions.contains_key(*l)))
    {
        let d = match parse_directives(query.as_deref()) {
            Ok(d) => d,
            Err(_) => return with_cors(plain(StatusCode::BAD_REQUEST, "no-store"), &cors),
        };
        match llhls_playlist(&st, &stream_state, label, &d, info.part_target_ms, hold_limit).await {
            Ok(r) => Reply { obj: r.0, name: name.clone(), cache: r.1 },
            Err(status) => return with_cors(plain(status, cache_for_error(status)), &cors),
        }
    } else if let Some(obj) = stream_state.read(|i| i.objects.get(&name).cloned()) {
        let cache = if name.ends_with(".m3u8") {
            Cache::Live
        } else if name.ends_with("_init.mp4") {
            Cache::Init
        } else {
            Cache::Media
        };
        Reply { obj, name: name.clone(), cache }
    } else if let Some((label, msn, part)) = parse_part_name(&name) {
        // A preload-hinted part: hold until it is complete.
        let hinted = stream_state.read(|i| i.renditions.get(label).and_then(|r| r.hinted()));
        if hinted != Some(Point { msn, part }) {
            return with_cors(plain(StatusCode::NOT_FOUND, "max-age=1"), &cors);
        }
        let Some(_held) = Held::take(&st.held) else {
            return with_cors(plain(StatusCode::SERVICE_UNAVAILABLE, "no-store"), &cors);
        };
        match wait_for(&stream_state, hold_limit, |i| i.objects.get(&name).cloned()).await {
            Waited::Ready(obj) => Reply { obj, name: name.clone(), cache: Cache::Media },
            Waited::TimedOut => return with_cors(plain(StatusCode::SERVICE_UNAVAILABLE, "no-store"), &cors),
            Waited::Gone => return with_cors(plain(StatusCode::NOT_FOUND, "max-age=1"), &cors),
        }
    } else {
        return with_cors(plain(StatusCode::NOT_FOUND, "max-age=1"), &cors);
    };
    let window_s = app_cfg
        .and_then(|a| a.llhls.as_ref())
        .map_or(60, |l| u64::from(l.segment_count) * u64::from(l.segment_duration_ms).div_ceil(1000));
    let reply = match session {
        Session::Off => reply,
        Session::Key(k) if reply.name.ends_with(".m3u8") => {
            let text = String::from_utf8_lossy(&reply.obj.bytes);
            Reply {
                obj: Obj::new(Bytes::from(session_key::rewrite_playlist(&text, &k))),
                cache: Cache::Private,
                ..reply
            }
        }
        Session::Key(_) => Reply { cache: Cache::PrivateMedia, ..reply },
    };
    with_cors(respond(reply, &method, &headers, td, window_s), &cors)
}

fn cache_for_error(status: StatusCode) -> &'static str {
    if status == StatusCode::NOT_FOUND {
        "max-age=1"
    } else {
        "no-store"
    }
}

/// Serve an LL-HLS media playlist per the request's directives.
async fn llhls_playlist(
    st: &HttpState,
    s: &StreamState,
    label: &str,
    d: &Directives,
    part_target_ms: u32,
    hold_limit: Duration,
) -> Result<(Obj, Cache), StatusCode> {
    let pick = |pair: &(Obj, Option<Obj>)| {
        if d.skip {
            pair.1.clone().unwrap_or_else(|| pair.0.clone())
        } else {
            pair.0.clone()
        }
    };
    let Some(msn) = d.msn else {
        // Non-blocking: the newest playlist.
        return s
            .read(|i| {
                let r = i.renditions.get(label)?;
                r.playlists.get(&r.last?).map(pick)
            })
            .map(|o| (o, Cache::Live))
            .ok_or(StatusCode::NOT_FOUND);
    };
    // Advance limits (6.2.5.2): more than two segments ahead, or parts past
    // the Advance Part Limit, is a bad request at once.
    let advance_parts = if part_target_ms < 1000 { 3000 / part_target_ms.max(1) } else { 3 };
    let too_far = s.read(|i| {
        let last = i.renditions.get(label).and_then(|r| r.last);
        match last {
            None => msn > 2,
            Some(l) => msn > l.msn + 2 || (msn == l.msn && d.part.is_some_and(|p| p > l.part + advance_parts)),
        }
    });
    if too_far {
        return Err(StatusCode::BAD_REQUEST);
    }
    let Some(_held) = Held::take(&st.held) else { return Err(StatusCode::SERVICE_UNAVAILABLE) };
    let found = wait_for(s, hold_limit, |i| {
        let r = i.renditions.get(label)?;
        let point = match d.part {
            Some(p) => r.resolve_part(msn, p),
            None => r.resolve_segment(msn),
        };
        match point {
            Some(pt) => r.playlists.get(&pt).map(pick),
            // A point that has already left the retained history: the
            // newest playlist is at least as new as asked.
            None if r.playlists.keys().next().is_some_and(|first| first.msn > msn) => {
                r.playlists.get(&r.last?).map(pick)
            }
            None => None,
        }
    })
    .await;
    match found {
        Waited::Ready(o) => Ok((o, Cache::Blocking)),
        Waited::TimedOut => Err(StatusCode::SERVICE_UNAVAILABLE),
        Waited::Gone => Err(StatusCode::NOT_FOUND),
    }
}

/// Build the 200 / 206 / 304 / 416 response with caching headers.
fn respond(r: Reply, method: &Method, req: &HeaderMap, td: u32, window_s: u64) -> Response {
    let cache = match r.cache {
        Cache::Blocking => format!("public, max-age={}", 6 * td),
        Cache::Live => format!("public, max-age={}", (td / 2).max(1)),
        Cache::Media => "public, max-age=31536000, immutable".to_string(),
        Cache::Init => format!("public, max-age={window_s}"),
        Cache::Private => "private, no-store".to_string(),
        Cache::PrivateMedia => "private, max-age=31536000, immutable".to_string(),
    };
    let is_playlist = r.name.ends_with(".m3u8");
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(&r.name)));
    if let Ok(v) = HeaderValue::from_str(&cache) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if is_playlist {
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    } else {
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    let gzip = is_playlist && accepts_gzip(req);
    // The gzip coding is another representation: its own strong tag.
    let etag: std::borrow::Cow<'_, str> =
        if gzip { format!("{}-gz\"", r.obj.etag.trim_end_matches('"')).into() } else { (&*r.obj.etag).into() };
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    let inm = req.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    if inm.is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*")) {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    let mut body: Bytes = r.obj.bytes.clone();
    let mut status = StatusCode::OK;
    if gzip {
        if let Some(z) = gzip_bytes(&body) {
            body = z;
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
    } else if let (false, Some(range)) = (is_playlist, req.get(header::RANGE).and_then(|v| v.to_str().ok())) {
        match byte_range(range, body.len()) {
            RangeReq::Partial(start, end) => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{}", body.len())) {
                    h.insert(header::CONTENT_RANGE, v);
                }
                body = body.slice(start..=end);
                status = StatusCode::PARTIAL_CONTENT;
            }
            RangeReq::Unsatisfiable => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", body.len())) {
                    h.insert(header::CONTENT_RANGE, v);
                }
                return (StatusCode::RANGE_NOT_SATISFIABLE, h).into_response();
            }
            // Other units, malformed or multiple ranges: the whole object
            // (RFC 9110 14.2 lets a server ignore Range).
            RangeReq::Ignore => {}
        }
    }
    if *method == Method::HEAD {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        return (status, h).into_response();
    }
    (status, h, Body::from(body)).into_response()
}

/// Gzip with fixed settings (no name, mtime 0): the same bytes every time.
fn gzip_bytes(b: &[u8]) -> Option<Bytes> {
    use std::io::Write as _;
    let mut z = flate2::GzBuilder::new().mtime(0).write(Vec::with_capacity(b.len() / 3), flate2::Compression::new(6));
    z.write_all(b).ok()?;
    z.finish().ok().map(Bytes::from)
}

#[derive(Debug, PartialEq, Eq)]
enum RangeReq {
    /// Inclusive byte range.
    Partial(usize, usize),
    /// A valid single byte range outside the object.
    Unsatisfiable,
    /// Not a single valid byte range: serve the whole object.
    Ignore,
}

/// Interpret a Range header: one `bytes=` range is served, a valid one
/// outside the object is unsatisfiable, anything else is ignored.
fn byte_range(spec: &str, len: usize) -> RangeReq {
    let Some(r) = spec.trim().strip_prefix("bytes=") else { return RangeReq::Ignore };
    if r.contains(',') {
        return RangeReq::Ignore;
    }
    let Some((a, b)) = r.split_once('-') else { return RangeReq::Ignore };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return match b.parse::<usize>() {
            Ok(0) => RangeReq::Unsatisfiable,
            Ok(_) if len == 0 => RangeReq::Unsatisfiable,
            Ok(n) => RangeReq::Partial(len.saturating_sub(n), len - 1),
            Err(_) => RangeReq::Ignore,
        };
    }
    let Ok(start) = a.parse::<usize>() else { return RangeReq::Ignore };
    let end = if b.is_empty() {
        None
    } else {
        match b.parse::<usize>() {
            Ok(e) if e >= start => Some(e),
            _ => return RangeReq::Ignore,
        }
    };
    if start >= len {
        return RangeReq::Unsatisfiable;
    }
    RangeReq::Partial(start, end.map_or(len - 1, |e| e.min(len - 1)))
}

/// Whether the request accepts gzip (q-values honoured: `gzip;q=0` is a no).
fn accepts_gzip(req: &HeaderMap) -> bool {
    let Some(v) = req.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()) else { return false };
    v.split(',').any(|item| {
        let mut parts = item.split(';').map(str::trim);
        let coding = parts.next().unwrap_or_default();
        let q = parts.find_map(|p| p.strip_prefix("q=")).and_then(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && q > 0.0
    })
}

/// CORS response headers for a request, from the application's
/// `CrossDomains`: `*` allows every origin; otherwise a matching origin is
/// echoed with `Vary: Origin`.
fn cors_headers(app: Option<&Application>, req: &HeaderMap) -> HeaderMap {
    let mut h = HeaderMap::new();
    let Some(domains) = app.and_then(|a| a.llhls.as_ref()).map(|l| &l.cross_domains) else { return h };
    if domains.is_empty() {
        return h;
    }
    if domains.iter().any(|d| d == "*") {
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    } else {
        h.insert(header::VARY, HeaderValue::from_static("Origin"));
        let origin = req.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        if let Some(o) = origin.filter(|o| domains.iter().any(|d| origin_matches(d, o))) {
            if let Ok(v) = HeaderValue::from_str(o) {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            }
        }
    }
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("ETag, Content-Length, Content-Range"));
    h
}

/// `entry` is an origin (`https://player.example.com`), a host
/// (`player.example.com`), or a wildcard host (`*.example.com`).
fn origin_matches(entry: &str, origin: &str) -> bool {
    if entry == origin {
        return true;
    }
    let host = origin.split("://").nth(1).unwrap_or(origin);
    let host_no_port = host.split(':').next().unwrap_or(host);
    let entry_host = entry.split("://").nth(1).unwrap_or(entry);
    match entry_host.strip_prefix("*.") {
        Some(suffix) => host_no_port.ends_with(&format!(".{suffix}")),
        None => entry_host == host || entry_host == host_no_port,
    }
}

fn with_cors(mut r: Response, cors: &HeaderMap) -> Response {
    for (k, v) in cors {
        if k == header::VARY {
            r.headers_mut().append(k, v.clone());
        } else {
            r.headers_mut().insert(k, v.clone());
        }
    }
    r
}

async fn preflight(
    State(st): State<HttpState>,
    Path((app, _s, _n)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let cors = cors_headers(st.config.app(&app), &headers);
    let mut r = StatusCode::NO_CONTENT.into_response();
    if cors.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, HEAD, OPTIONS"));
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Range, If-None-Match, Accept-Encoding, Origin"),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    }
    with_cors(r, &cors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives() {
        let ok = |q: &str| parse_directives(Some(q));
        assert_eq!(ok("_HLS_msn=5&_HLS_part=2"), Ok(Directives { msn: Some(5), part: Some(2), skip: false }));
        assert_eq!(ok("_HLS_msn=5&_HLS_skip=YES"), Ok(Directives { msn: Some(5), part: None, skip: true }));
        assert_eq!(ok("_HLS_skip=v2"), Ok(Directives { msn: None, part: None, skip: true }));
        assert_eq!(ok("other=1"), Ok(Directives::default()));
        assert!(ok("_HLS_part=2").is_err());
        assert!(ok("_HLS_msn=-1").is_err());
        assert!(ok("_HLS_msn=x").is_err());
    }

    #[test]
    fn part_names() {
        assert_eq!(parse_part_name("video1_123.4.m4s"), Some(("video1", 123, 4)));
        assert_eq!(parse_part_name("video1_123.m4s"), None);
        assert_eq!(parse_part_name("a_b_7.0.m4s"), Some(("a_b", 7, 0)));
    }

    #[test]
    fn ranges() {
        use RangeReq::*;
        let cases = [
            ("bytes=0-9", 100, Partial(0, 9)),
            ("bytes=90-", 100, Partial(90, 99)),
            ("bytes=-10", 100, Partial(90, 99)),
            ("bytes=50-500", 100, Partial(50, 99)),
            ("bytes=100-", 100, Unsatisfiable),
            ("bytes=-0", 100, Unsatisfiable),
            ("bytes=5-2", 100, Ignore),
            ("bytes=0-1,3-4", 100, Ignore),
            ("items=0-1", 100, Ignore),
            ("bytes=abc", 100, Ignore),
        ];
        for (spec, len, want) in cases {
            assert_eq!(byte_range(spec, len), want, "{spec}");
        }
    }

    #[test]
    fn gzip_q_values() {
        let h = |v: &'static str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, HeaderValue::from_static(v));
            accepts_gzip(&m)
        };
        assert!(h("gzip"));
        assert!(h("br, gzip;q=0.5"));
        assert!(!h("gzip;q=0"));
        assert!(!h("identity"));
        assert!(h("*"));
    }

    #[test]
    fn origins() {
        assert!(origin_matches("https://a.example.com", "https://a.example.com"));
        assert!(origin_matches("a.example.com", "https://a.example.com"));
        assert!(origin_matches("*.example.com", "https://b.example.com:8443"));
        assert!(!origin_matches("*.example.com", "https://example.org"));
        assert!(!origin_matches("a.example.com", "https://b.example.com"));
    }

    #[test]
    fn gzip_is_deterministic() {
        let a = gzip_bytes(b"#EXTM3U\n#EXT-X-VERSION:9\n");
        assert_eq!(a, gzip_bytes(b"#EXTM3U\n#EXT-X-VERSION:9\n"));
        assert_eq!(a.as_ref().map(|z| &z[4..8]), Some(&[0u8, 0, 0, 0][..]), "mtime 0");
    }
}
