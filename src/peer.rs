//! The peer link: how the two nodes of a pair talk (contract §3, §4).
//!
//! Plain HTTP on the peer's LLHLS port, under `/_lockstep/peer/`, every
//! request signed with the shared secret: header `X-Lockstep-Peer:
//! {unix_ms}.{hex HMAC-SHA256(secret, "{unix_ms}|{path}")}`, accepted within
//! 30 s of the receiver's clock. Objects themselves are fetched through the
//! ordinary delivery URLs.
//!
//! `GET /_lockstep/peer/{app}/{stream}/state` returns a stream's timeline
//! state ([`PeerStream`]): whether it is live, its timeline offset and grid
//! anchor, fingerprints of recent keyframes (hash of the sample's bytes →
//! timeline DTS), and its playlist history (for backfill).

use std::time::Duration;

use hmac::{Hmac, Mac};
use lockstep_packager::playlist::{PartEntry, SegmentEntry};
use lockstep_packager::{Anchor, ConfigVersion, ExportedHistory, GridAnchor, Timescale, TrackId};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const HEADER: &str = "x-lockstep-peer";
const MAX_SKEW_MS: i64 = 30_000;
/// Largest peer response read.
const MAX_BODY: usize = 64 << 20;
/// Largest response head read by [`PeerClient::head_etag`].
const MAX_HEAD: usize = 64 << 10;

fn mac(secret: &[u8], ts: i64, path: &str) -> Option<Hmac<Sha256>> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    m.update(ts.to_string().as_bytes());
    m.update(b"|");
    m.update(path.as_bytes());
    Some(m)
}

/// The header value authenticating a request for `path` at `now_ms`.
pub fn sign(secret: &[u8], path: &str, now_ms: i64) -> String {
    let tag = mac(secret, now_ms, path).map(|m| m.finalize().into_bytes().to_vec()).unwrap_or_default();
    format!("{now_ms}.{}", tag.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Check a request's header (constant-time MAC comparison).
pub fn verify(secret: &[u8], path: &str, header: Option<&str>, now_ms: i64) -> bool {
    let Some((ts, tag)) = header.and_then(|h| h.split_once('.')) else { return false };
    let Ok(ts) = ts.parse::<i64>() else { return false };
    if (now_ms - ts).abs() > MAX_SKEW_MS || tag.len() != 64 {
        return false;
    }
    let Some(bytes) =
        (0..64).step_by(2).map(|i| u8::from_str_radix(tag.get(i..i + 2)?, 16).ok()).collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    mac(secret, ts, path).is_some_and(|m| m.verify_slice(&bytes).is_ok())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A peer link client.
#[derive(Clone)]
pub struct PeerClient {
    /// `HOST:PORT`.
    addr: String,
    secret: std::sync::Arc<[u8]>,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("peer {addr} unreachable: {why}")]
    Unreachable { addr: String, why: String },
    #[error("peer {addr} answered {status} for {path}")]
    Status { addr: String, path: String, status: u16 },
    #[error("peer {addr}: bad response for {path}: {why}")]
    Bad { addr: String, path: String, why: String },
}

impl PeerClient {
    /// `peer_url` is `http://HOST:PORT` (validated by the configuration).
    pub fn new(peer_url: &str, secret: &str) -> PeerClient {
        let addr = peer_url.trim_start_matches("http://").trim_end_matches('/').to_string();
        PeerClient { addr, secret: std::sync::Arc::from(secret.as_bytes()), timeout: Duration::from_secs(2) }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// GET `path` (signed); (status, body).
    pub async fn get(&self, path: &str) -> Result<(u16, Vec<u8>), PeerError> {
        let unreachable = |why: String| PeerError::Unreachable { addr: self.addr.clone(), why };
        let work = async {
            let mut s = TcpStream::connect(&self.addr).await.map_err(|e| unreachable(e.to_string()))?;
            let auth = sign(&self.secret, path.split('?').next().unwrap_or(path), now_ms());
            let req =
                format!("GET {path} HTTP/1.1\r\nHost: {}\r\n{HEADER}: {auth}\r\nConnection: close\r\n\r\n", self.addr);
            s.write_all(req.as_bytes()).await.map_err(|e| unreachable(e.to_string()))?;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 16384];
            loop {
                let n = s.read(&mut chunk).await.map_err(|e| unreachable(e.to_string()))?;
                if n == 0 {
                    break;
                }
                if buf.len() + n > MAX_BODY {
                    return Err(PeerError::Bad { addr: self.addr.clone(), path: path.into(), why: "too large".into() });
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            parse_response(&buf).ok_or_else(|| PeerError::Bad {
                addr: self.addr.clone(),
                path: path.into(),
                why: "not an HTTP response".into(),
            })
        };
        tokio::time::timeout(self.timeout, work).await.map_err(|_| unreachable("timed out".into()))?
    }

    /// GET a stream's state. `Ok(None)` when the peer does not have it live.
    pub async fn stream_state(&self, app: &str, stream: &str) -> Result<Option<PeerStream>, PeerError> {
        let path = format!("/_lockstep/peer/{app}/{stream}/state");
        let (status, body) = self.get(&path).await?;
        match status {
            200 => serde_json::from_slice(&body).map(Some).map_err(|e| PeerError::Bad {
                addr: self.addr.clone(),
                path,
                why: e.to_string(),
            }),
            404 => Ok(None),
            s => Err(PeerError::Status { addr: self.addr.clone(), path, status: s }),
        }
    }

    /// HEAD `path` (an ordinary delivery URL, not signed): (status, its
    /// `ETag` if any). Reads the response head only.
    pub async fn head_etag(&self, path: &str) -> Result<(u16, Option<String>), PeerError> {
        let unreachable = |why: String| PeerError::Unreachable { addr: self.addr.clone(), why };
        let work = async {
            let mut s = TcpStream::connect(&self.addr).await.map_err(|e| unreachable(e.to_string()))?;
            let req = format!("HEAD {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr);
            s.write_all(req.as_bytes()).await.map_err(|e| unreachable(e.to_string()))?;
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_HEAD {
                let n = s.read(&mut chunk).await.map_err(|e| unreachable(e.to_string()))?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            parse_head(&buf).ok_or_else(|| PeerError::Bad {
                addr: self.addr.clone(),
                path: path.into(),
                why: "not an HTTP response head".into(),
            })
        };
        tokio::time::timeout(self.timeout, work).await.map_err(|_| unreachable("timed out".into()))?
    }

    /// The peer's wall clock: (its time, our round trip) in ms.
    pub async fn time(&self) -> Result<(i64, i64, i64), PeerError> {
        let t0 = now_ms();
        let (status, body) = self.get("/_lockstep/peer/time").await?;
        let t1 = now_ms();
        if status != 200 {
            return Err(PeerError::Status { addr: self.addr.clone(), path: "/_lockstep/peer/time".into(), status });
        }
        let t: PeerTime = serde_json::from_slice(&body).map_err(|e| PeerError::Bad {
            addr: self.addr.clone(),
            path: "/_lockstep/peer/time".into(),
            why: e.to_string(),
        })?;
        Ok((t.now_ms, t0, t1))
    }
}

/// (status, `ETag`) of an HTTP/1.1 response head. Public for the fuzz
/// targets (`fuzz/`).
pub fn parse_head(buf: &[u8]) -> Option<(u16, Option<String>)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let etag = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("etag"))
        .map(|(_, v)| v.trim().to_string());
    Some((status, etag))
}

/// (status, body) of a complete HTTP/1.1 response (Content-Length, chunked,
/// or read to close). Public for the fuzz targets (`fuzz/`).
pub fn parse_response(buf: &[u8]) -> Option<(u16, Vec<u8>)> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let body = &buf[end + 4..];
    let chunked =
        head.lines().any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    if !chunked {
        return Some((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut b = body;
    loop {
        let i = b.windows(2).position(|w| w == b"\r\n")?;
        let n = usize::from_str_radix(std::str::from_utf8(&b[..i]).ok()?.trim(), 16).ok()?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(b.get(i + 2..i + 2 + n)?);
        b = b.get(i + 4 + n..)?;
    }
    Some((status, out))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PeerTime {
    pub now_ms: i64,
}

/// A stream's timeline state, as the peer link carries it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeerStream {
    /// The stream's timeline came from this node's peer.
    pub adopted: bool,
    /// Wall-clock ms when this node's session began.
    pub started_ms: i64,
    /// The timeline offset in force (90 kHz ticks); None until the first
    /// sample.
    pub offset_90k: Option<i64>,
    /// The packager's anchor; None until packaging starts.
    pub anchor: Option<AnchorDto>,
    /// Recent keyframes of the driving track: (hash of the sample bytes as
    /// hex, timeline DTS in 90 kHz ticks), oldest first.
    pub keyframes: Vec<(String, i64)>,
    /// The retained playlist history (for backfill).
    pub history: HistoryDto,
    /// This node's objects found to differ from its peer's (backfill check).
    #[serde(default)]
    pub lockstep_failures: u64,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AnchorDto {
    pub llhls: Option<(i64, i64)>,
    pub hls: Option<(i64, i64)>,
    pub discontinuity_sequence: u64,
    /// (track, configuration version, fingerprint) per track.
    #[serde(default)]
    pub configs: [Option<(u32, u32, u32)>; 2],
}

impl From<Anchor> for AnchorDto {
    fn from(a: Anchor) -> AnchorDto {
        AnchorDto {
            llhls: a.llhls.map(|g| (g.phase, g.msn_base)),
            hls: a.hls.map(|g| (g.phase, g.msn_base)),
            discontinuity_sequence: a.discontinuity_sequence,
            configs: a.configs.map(|c| c.map(|c| (c.track.0, c.version, c.fingerprint))),
        }
    }
}

impl From<AnchorDto> for Anchor {
    fn from(a: AnchorDto) -> Anchor {
        let g = |x: Option<(i64, i64)>| x.map(|(phase, msn_base)| GridAnchor { phase, msn_base });
        Anchor {
            llhls: g(a.llhls),
            hls: g(a.hls),
            discontinuity_sequence: a.discontinuity_sequence,
            configs: a.configs.map(|c| {
                c.map(|(track, version, fingerprint)| ConfigVersion { track: TrackId(track), version, fingerprint })
            }),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SegmentDto {
    pub msn: u64,
    pub start: i64,
    pub duration: i64,
    pub discontinuity: bool,
    /// (duration, independent, gap)
    pub parts: Vec<(i64, bool, bool)>,
    pub complete: bool,
    pub discontinuity_sequence: u64,
    /// Configuration version (names the EXT-X-MAP).
    #[serde(default)]
    pub init_version: u32,
    /// Timescale of the durations (0: 90 kHz).
    #[serde(default)]
    pub timescale: u32,
}

impl From<&SegmentEntry> for SegmentDto {
    fn from(e: &SegmentEntry) -> SegmentDto {
        SegmentDto {
            msn: e.msn,
            start: e.start,
            duration: e.duration,
            discontinuity: e.discontinuity,
            parts: e.parts.iter().map(|p| (p.duration, p.independent, p.gap)).collect(),
            complete: e.complete,
            discontinuity_sequence: e.discontinuity_sequence,
            init_version: e.init_version,
            timescale: e.timescale.get(),
        }
    }
}

impl From<&SegmentDto> for SegmentEntry {
    fn from(d: &SegmentDto) -> SegmentEntry {
        SegmentEntry {
            msn: d.msn,
            start: d.start,
            duration: d.duration,
            discontinuity: d.discontinuity,
            parts: d
                .parts
                .iter()
                .map(|&(duration, independent, gap)| PartEntry { duration, independent, gap })
                .collect(),
            complete: d.complete,
            discontinuity_sequence: d.discontinuity_sequence,
            init_version: d.init_version,
            timescale: Timescale::new(d.timescale).unwrap_or(Timescale::MPEG),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct HistoryDto {
    pub llhls: Vec<(u32, Vec<SegmentDto>)>,
    pub hls: Vec<SegmentDto>,
}

impl From<&ExportedHistory> for HistoryDto {
    fn from(h: &ExportedHistory) -> HistoryDto {
        HistoryDto {
            llhls: h.llhls.iter().map(|(t, es)| (t.0, es.iter().map(SegmentDto::from).collect())).collect(),
            hls: h.hls.iter().map(SegmentDto::from).collect(),
        }
    }
}

impl From<&HistoryDto> for ExportedHistory {
    fn from(h: &HistoryDto) -> ExportedHistory {
        ExportedHistory {
            llhls: h.llhls.iter().map(|(t, es)| (TrackId(*t), es.iter().map(SegmentEntry::from).collect())).collect(),
            hls: h.hls.iter().map(SegmentEntry::from).collect(),
        }
    }
}

/// The serving side of the link, merged into the LLHLS router when a pair
/// is configured.
pub fn routes(store: std::sync::Arc<crate::store::Store>, secret: &str) -> axum::Router {
    use axum::extract::{Path, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;

    #[derive(Clone)]
    struct St {
        store: std::sync::Arc<crate::store::Store>,
        secret: std::sync::Arc<[u8]>,
    }
    fn json<T: Serialize>(v: &T) -> Response {
        match serde_json::to_vec(v) {
            Ok(body) => ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    }
    fn authorized(st: &St, path: &str, h: &HeaderMap) -> bool {
        verify(&st.secret, path, h.get(HEADER).and_then(|v| v.to_str().ok()), now_ms())
    }
    async fn time(State(st): State<St>, h: HeaderMap) -> Response {
        if !authorized(&st, "/_lockstep/peer/time", &h) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        json(&PeerTime { now_ms: now_ms() })
    }
    async fn state(State(st): State<St>, Path((app, stream)): Path<(String, String)>, h: HeaderMap) -> Response {
        if !authorized(&st, &format!("/_lockstep/peer/{app}/{stream}/state"), &h) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let key = crate::store::StreamKey { app, stream };
        let peer =
            st.store.stream(&key).and_then(|s| s.read(|i| (!i.ended && i.peer.started_ms > 0).then(|| i.peer.clone())));
        match peer {
            Some(p) => json(&p),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }
    axum::Router::new()
        .route("/_lockstep/peer/time", get(time))
        .route("/_lockstep/peer/{app}/{stream}/state", get(state))
        .with_state(St { store, secret: std::sync::Arc::from(secret.as_bytes()) })
}

/// The fingerprint of a keyframe: a hash of its bytes.
pub fn fingerprint(data: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        let h = sign(b"0123456789abcdef", "/_lockstep/peer/time", 1_000_000);
        assert!(verify(b"0123456789abcdef", "/_lockstep/peer/time", Some(&h), 1_000_500));
        assert!(!verify(b"0123456789abcdef", "/_lockstep/peer/other", Some(&h), 1_000_500));
        assert!(!verify(b"another secret!!", "/_lockstep/peer/time", Some(&h), 1_000_500));
        assert!(!verify(b"0123456789abcdef", "/_lockstep/peer/time", Some(&h), 1_000_000 + 31_000));
        for bad in [None, Some(""), Some("x.y"), Some("1.00"), Some("1000000.zz")] {
            assert!(!verify(b"0123456789abcdef", "/_lockstep/peer/time", bad, 1_000_000));
        }
    }

    #[test]
    fn responses() {
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"), Some((200, b"hi".to_vec())));
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n1\r\n!\r\n0\r\n\r\n"),
            Some((200, b"hi!".to_vec()))
        );
        assert_eq!(parse_response(b"garbage"), None);
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\nETag: \"00ab\"\r\n\r\n"),
            Some((200, Some("\"00ab\"".to_string())))
        );
        assert_eq!(parse_head(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"), Some((404, None)));
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\netag: \"x\""), None);
    }

    #[test]
    fn history_round_trips() {
        let e = SegmentEntry {
            msn: 7,
            start: 90_000,
            duration: 180_000,
            discontinuity: true,
            parts: vec![PartEntry { duration: 45_000, independent: true, gap: false }],
            complete: true,
            discontinuity_sequence: 2,
            init_version: 3,
            timescale: Timescale::new(44_100).unwrap_or(Timescale::MPEG),
        };
        let h = ExportedHistory { llhls: vec![(TrackId(1), vec![e.clone()])], hls: vec![e] };
        let dto = HistoryDto::from(&h);
        let json = serde_json::to_string(&dto).unwrap_or_default();
        let back: HistoryDto = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(ExportedHistory::from(&back), h);
    }
}
