//! The REST API, on `Server/Bind/Managers/API/Port`, with OvenMediaEngine's
//! paths and response envelope (`{"statusCode":200,"message":"OK",
//! "response":...}`; errors carry no `response`):
//!
//! - `GET /v1/vhosts`: virtual host names.
//! - `GET /v1/vhosts/{vhost}`, `GET /v1/vhosts/{vhost}/apps/{app}`: the name.
//! - `GET /v1/vhosts/{vhost}/apps`: application names.
//! - `GET /v1/vhosts/{vhost}/apps/{app}/streams`: live stream names.
//! - `GET /v1/vhosts/{vhost}/apps/{app}/streams/{stream}`: the stream: OME's
//!   `name`, `input` (`sourceType`, `from`, `createdTime`, `tracks`) and
//!   `outputs`, plus Lockstep's `provider`, `peer`, `timestampMode`,
//!   `uptimeMs`, `totalBytesIn`, `totalBytesOut`, `viewers` and `llhls` (the
//!   newest msn/part of each LL-HLS rendition).
//! - `DELETE` of a stream ends it: the publisher is disconnected and every
//!   URL of the stream answers 404 by the time the response is sent.
//! - `GET /metrics`: Prometheus metrics, without authentication.
//!
//! Every `/v1` request needs `Authorization: Basic base64(AccessToken)`
//! (`Server/Managers/API/AccessToken`, compared in constant time); without
//! it, or with another, the answer is 401 with
//! `WWW-Authenticate: Basic realm="lockstep"`. Unknown resources are 404,
//! other methods 405, both JSON.
//!
//! Viewers of a stream: distinct client IP addresses that received an
//! LL-HLS or HLS playlist (any `.m3u8`) of the stream in the last 30 s, as
//! seen by this node (behind a CDN, that is the CDN's fetching nodes).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use lockstep_packager::{CodecConfig, Track};
use serde_json::{json, Value};

use crate::config::{Config, VirtualHost};
use crate::ingest::{Provider, Registry, StreamSummary};
use crate::metrics::{self, Metrics};
use crate::store::{Store, StreamKey};

/// How long a `DELETE` waits for the stream's session to finish.
const END_WAIT: Duration = Duration::from_secs(3);

#[derive(Clone)]
pub struct ApiState {
    config: Arc<Config>,
    registry: Arc<Registry>,
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    /// The AccessToken: the credentials before base64.
    token: Arc<[u8]>,
}

impl ApiState {
    pub fn new(
        config: Arc<Config>,
        registry: Arc<Registry>,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        access_token: &str,
    ) -> ApiState {
        ApiState { config, registry, store, metrics, token: Arc::from(access_token.as_bytes()) }
    }
}

pub fn router(state: ApiState) -> Router {
    let metrics = state.metrics.clone();
    Router::new()
        .route("/v1/vhosts", get(vhosts))
        .route("/v1/vhosts/{vhost}", get(vhost))
        .route("/v1/vhosts/{vhost}/apps", get(apps))
        .route("/v1/vhosts/{vhost}/apps/{app}", get(app))
        .route("/v1/vhosts/{vhost}/apps/{app}/streams", get(streams))
        .route("/v1/vhosts/{vhost}/apps/{app}/streams/{stream}", get(stream).delete(end_stream))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), authenticate))
        .with_state(state)
        // Added after the layer: not authenticated.
        .route("/metrics", get(metrics::handler).with_state(metrics))
}

// ------------------------------------------------------------- responses ---

fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = (status, bytes).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn ok(response: Value) -> Response {
    json_response(StatusCode::OK, &json!({ "statusCode": 200, "message": "OK", "response": response }))
}

/// An error as OME writes it: `{"statusCode":404,"message":"... (404)"}`.
fn error(status: StatusCode, message: &str) -> Response {
    let code = status.as_u16();
    json_response(status, &json!({ "statusCode": code, "message": format!("{message} ({code})") }))
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Could not find the resource")
}

async fn method_not_allowed() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

fn bad_path(e: &PathRejection) -> Response {
    error(StatusCode::BAD_REQUEST, &format!("Invalid path: {e}"))
}

// ------------------------------------------------------------------ auth ---

async fn authenticate(State(st): State<ApiState>, req: Request, next: Next) -> Response {
    let auth = req.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes());
    let message = match auth {
        None => "[HTTP] Authorization header is required to call API",
        Some(h) if basic_matches(h, &st.token) => return next.run(req).await,
        Some(_) => "[HTTP] Invalid credentials",
    };
    let mut r = error(StatusCode::UNAUTHORIZED, message);
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"lockstep\""));
    r
}

/// Whether the `Authorization` header value is `Basic base64(token)`.
fn basic_matches(header: &[u8], token: &[u8]) -> bool {
    let header = header.trim_ascii();
    let Some(space) = header.iter().position(|b| *b == b' ') else { return false };
    let (scheme, credentials) = header.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"Basic") {
        return false;
    }
    base64_decode(credentials.trim_ascii()).is_some_and(|given| constant_time_eq(&given, token))
}

/// Standard base64 (RFC 4648 section 4), padding optional. `None` on any
/// other character.
fn base64_decode(s: &[u8]) -> Option<Vec<u8>> {
    let unpadded = s.strip_suffix(b"==").or_else(|| s.strip_suffix(b"=")).unwrap_or(s);
    if unpadded.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(unpadded.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &c in unpadded {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Compare `given` with `expected` in constant time: their SHA-256 digests
/// are compared with `subtle`, so neither the content nor the length of the
/// token leaks through timing.
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    bool::from(Sha256::digest(given).ct_eq(&Sha256::digest(expected)))
}

// ------------------------------------------------------------- resources ---

/// The virtual host `name`; Err: the 404 message.
fn find_vhost<'a>(config: &'a Config, name: &str) -> Result<&'a VirtualHost, String> {
    config.vhosts.iter().find(|v| v.name == name).ok_or_else(|| format!("Could not find the virtual host: [{name}]"))
}

/// Whether virtual host `vhost` has the application `app`; Err: the 404
/// message.
fn find_app(config: &Config, vhost: &str, app: &str) -> Result<(), String> {
    let v = find_vhost(config, vhost)?;
    if v.apps.iter().any(|a| a.name == app) {
        Ok(())
    } else {
        Err(format!("Could not find the application: [{vhost}/{app}]"))
    }
}

fn not_found_because(message: &str) -> Response {
    error(StatusCode::NOT_FOUND, message)
}

fn stream_not_found(vhost: &str, app: &str, stream: &str) -> Response {
    error(StatusCode::NOT_FOUND, &format!("Could not find the stream: [{vhost}/{app}/{stream}]"))
}

async fn vhosts(State(st): State<ApiState>) -> Response {
    ok(json!(st.config.vhosts.iter().map(|v| v.name.as_str()).collect::<Vec<_>>()))
}

async fn vhost(State(st): State<ApiState>, path: Result<Path<String>, PathRejection>) -> Response {
    let Path(vhost) = match path {
        Ok(p) => p,
        Err(e) => return bad_path(&e),
    };
    match find_vhost(&st.config, &vhost) {
        Ok(v) => ok(json!({ "name": v.name })),
        Err(m) => not_found_because(&m),
    }
}

async fn apps(State(st): State<ApiState>, path: Result<Path<String>, PathRejection>) -> Response {
    let Path(vhost) = match path {
        Ok(p) => p,
        Err(e) => return bad_path(&e),
    };
    match find_vhost(&st.config, &vhost) {
        Ok(v) => ok(json!(v.apps.iter().map(|a| a.name.as_str()).collect::<Vec<_>>())),
        Err(m) => not_found_because(&m),
    }
}

async fn app(State(st): State<ApiState>, path: Result<Path<(String, String)>, PathRejection>) -> Response {
    let Path((vhost, app)) = match path {
        Ok(p) => p,
        Err(e) => return bad_path(&e),
    };
    match find_app(&st.config, &vhost, &app) {
        Ok(()) => ok(json!({ "name": app, "type": "live" })),
        Err(m) => not_found_because(&m),
    }
}

async fn streams(State(st): State<ApiState>, path: Result<Path<(String, String)>, PathRejection>) -> Response {
    let Path((vhost, app)) = match path {
        Ok(p) => p,
        Err(e) => return bad_path(&e),
    };
    if let Err(m) = find_app(&st.config, &vhost, &app) {
        return not_found_because(&m);
    }
    let names: Vec<String> =
        st.registry.live_streams().into_iter().filter(|k| k.app == app).map(|k| k.stream).collect();
    ok(json!(names))
}

type StreamPath = Result<Path<(String, String, String)>, PathRejection>;

async fn stream(State(st): State<ApiState>, path: StreamPath) -> Response {
    let Path((vhost, app, stream)) = match path {
        Ok(p) => p,
        Err(e) => return bad_path(&e),
    };
    if let Err(m) = find_app(&st.config, &vhost, &app) {
        return not_found_because(&m);
    }
    let key = StreamKey { app, stream };
    let Some(summary) = st.registry.summary(&key) else {
        return stream_not_found(&vhost, &key.app, &key.stream);
    };
    ok(stream_json(&st, &key, &summary))
}

async fn end_stream(State(st): State<ApiState>, path: StreamPath) -> Response {
    let Path((vhost, app, stream)) = match path {
        Ok(p) => p,
        Err(e) => return bad_path(&e),
    };
    if let Err(m) = find_app(&st.config, &vhost, &app) {
        return not_found_because(&m);
    }
    let key = StreamKey { app, stream };
    if !st.registry.end(&key) {
        return stream_not_found(&vhost, &key.app, &key.stream);
    }
    // 404 at once; the session removes the stream too when it stops, and
    // the publisher is disconnected.
    st.store.remove_stream(&key);
    let deadline = Instant::now() + END_WAIT;
    while st.registry.has_session(&key) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if !st.registry.has_session(&key) {
        // Whatever a session still starting may have opened meanwhile.
        st.store.remove_stream(&key);
    }
    json_response(StatusCode::OK, &json!({ "statusCode": 200, "message": "OK" }))
}

// --------------------------------------------------------- stream detail ---

fn source_type(p: Provider) -> (&'static str, &'static str) {
    match p {
        Provider::Rtmp => ("Rtmp", "tcp"),
        Provider::Srt => ("Srt", "srt"),
        Provider::Mpegts => ("Mpegts", "udp"),
    }
}

/// One track as OME shows it (`bitrate` is a string in OME), with the
/// RFC 6381 codec string and Lockstep's rendition name.
fn track_json(t: &Track, bitrate: u64) -> Value {
    let timebase = json!({ "num": 1, "den": t.timescale.get() });
    match &t.codec {
        CodecConfig::H264(c) => {
            let framerate = c.info.frame_rate.filter(|(_, d)| *d > 0).map(|(n, d)| f64::from(n) / f64::from(d));
            json!({
                "id": t.id.0,
                "name": t.label(),
                "type": "Video",
                "video": {
                    "codec": "H264",
                    "codecString": c.codec_string(),
                    "width": c.info.width,
                    "height": c.info.height,
                    "framerate": framerate,
                    "bitrate": bitrate.to_string(),
                    "bitrateConf": t.bitrate_hint.map(|b| b.to_string()),
                    "bypass": true,
                    "timebase": timebase,
                },
            })
        }
        CodecConfig::Aac(c) => json!({
            "id": t.id.0,
            "name": t.label(),
            "type": "Audio",
            "audio": {
                "codec": "AAC",
                "codecString": c.codec_string(),
                "samplerate": c.sample_rate,
                "channel": c.channels,
                "bitrate": bitrate.to_string(),
                "bitrateConf": t.bitrate_hint.map(|b| b.to_string()),
                "bypass": true,
                "timebase": timebase,
            },
        }),
    }
}

fn stream_json(st: &ApiState, key: &StreamKey, s: &StreamSummary) -> Value {
    let now = Instant::now();
    let rates = s.bitrates(now);
    let tracks: Vec<Value> =
        s.tracks().iter().map(|t| track_json(t, rates.iter().find(|(id, _)| *id == t.id).map_or(0, |r| r.1))).collect();
    let renditions: BTreeMap<String, Value> = st
        .store
        .stream(key)
        .map(|state| {
            state.read(|i| {
                i.renditions
                    .iter()
                    .map(|(label, r)| {
                        let (msn, part) = r.last.map_or((None, None), |p| (Some(p.msn), Some(p.part)));
                        (label.clone(), json!({ "msn": msn, "part": part }))
                    })
                    .collect()
            })
        })
        .unwrap_or_default();
    let counters = &s.counters;
    let (source, scheme) = source_type(s.provider);
    json!({
        "name": key.stream,
        "input": {
            "sourceType": source,
            "from": format!("{scheme}://{}", s.peer),
            "createdTime": rfc3339(s.created),
            "tracks": tracks,
        },
        "outputs": [{ "name": key.stream, "tracks": tracks }],
        "provider": s.provider.to_string(),
        "peer": s.peer.to_string(),
        "timestampMode": format!("{:?}", s.timestamp_mode),
        "uptimeMs": u64::try_from(now.saturating_duration_since(s.started).as_millis()).unwrap_or(u64::MAX),
        "totalBytesIn": counters.bytes_in.load(std::sync::atomic::Ordering::Relaxed),
        "totalBytesOut": counters.bytes_out.load(std::sync::atomic::Ordering::Relaxed),
        "viewers": counters.viewers(now),
        "llhls": renditions,
    })
}

/// UTC time as RFC 3339 with milliseconds: `2021-01-11T03:45:21.879Z`.
fn rfc3339(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let s = ms_of_day / 1000;
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z", s / 3600, s / 60 % 60, s % 60, ms_of_day % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(data: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "abcd", "user:password", "ome-access-token", "\u{e9}\u{1f600}"] {
            assert_eq!(base64_decode(b64(s.as_bytes()).as_bytes()).as_deref(), Some(s.as_bytes()), "{s}");
        }
        assert_eq!(b64(b"user:password"), "dXNlcjpwYXNzd29yZA==");
        assert_eq!(base64_decode(b"dXNlcjpwYXNzd29yZA").as_deref(), Some(&b"user:password"[..]));
        for bad in [&b"dXNl cjpw"[..], b"dXNlc", b"****", b"dXNlcjpwYXNzd29yZA===", b"d=Nl"] {
            assert_eq!(base64_decode(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn basic_auth() {
        let token = b"user:password";
        assert!(basic_matches(b"Basic dXNlcjpwYXNzd29yZA==", token));
        assert!(basic_matches(b"basic   dXNlcjpwYXNzd29yZA==  ", token));
        assert!(basic_matches(b"BASIC dXNlcjpwYXNzd29yZA", token));
        assert!(!basic_matches(b"Bearer dXNlcjpwYXNzd29yZA==", token));
        assert!(!basic_matches(b"Basic", token));
        assert!(!basic_matches(b"Basic ", token));
        assert!(!basic_matches(b"Basic dXNlcjpwYXNzd29yZQ==", token), "user:passwore");
        assert!(!basic_matches(b"Basic dXNlcjpwYXNzd29y", token), "a prefix");
        assert!(!basic_matches(b"Basic dXNlcjpwYXNzd29yZGE=", token), "longer");
        assert!(!basic_matches(b"Basic !!!!", token));
        assert!(!basic_matches("Basic \u{e9}".as_bytes(), token));
        assert!(basic_matches(format!("Basic {}", b64(b"single-token")).as_bytes(), b"single-token"));
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abc\0", b"abc"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_610_304_321_879);
        assert_eq!(rfc3339(t), "2021-01-10T18:45:21.879Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
