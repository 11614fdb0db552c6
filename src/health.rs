//! `GET /health`: whether this node is fit to serve, for load balancers and
//! CDN probes (no authentication), on the LLHLS port and the API port.
//!
//! Nothing is measured per request: a background monitor measures
//! - the clock offset to every configured NTP server (`Pair/NtpServers`),
//!   every [`NTP_INTERVAL`], with an SNTP client (rsntp);
//! - the clock offset to the peer over the signed peer link
//!   ([`PeerClient::time`]: offset = peer_now − (t0 + t1) / 2, the sample of
//!   smallest round trip out of [`PEER_SAMPLES`]), every [`PEER_INTERVAL`];
//! - for every live stream, whether the newest [`OBJECTS_CHECKED`] media
//!   objects listed in its newest playlists have the same hash (ETag) on the
//!   peer (HEAD requests to the peer's delivery URLs), and the stream's
//!   lockstep failures found at backfill, every [`STREAMS_INTERVAL`].
//!
//! The answer is 200 when healthy, 503 otherwise, with `reasons` in words:
//! an NTP offset or the peer clock offset beyond `MaxClockOffsetMs`, objects
//! that differ from the peer's, or lockstep failures. An unreachable peer or
//! NTP server is reported but is not unhealthy (the surviving node of a pair
//! must stay in service). A single node (no `Server/Pair`) is always healthy.
//!
//! Offsets are "their clock minus ours": a node whose clock is 2 s fast
//! reports an NTP offset of −2 000 000 µs.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt as _;
use lockstep_packager::playlist::HLS_MEDIA;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::{PairRole, PairSettings};
use crate::http::HttpState;
use crate::ingest::Registry;
use crate::metrics::{HealthGauges, Metrics};
use crate::peer::{PeerClient, PeerError};
use crate::store::{Inner, Store, StreamKey, StreamState};

/// How often the NTP servers are asked.
pub const NTP_INTERVAL: Duration = Duration::from_secs(10);
/// How often the peer's clock is measured.
pub const PEER_INTERVAL: Duration = Duration::from_secs(5);
/// How often the streams' objects are compared with the peer's.
pub const STREAMS_INTERVAL: Duration = Duration::from_secs(5);
/// Media objects compared per stream (the newest, spread over its playlists).
pub const OBJECTS_CHECKED: usize = 16;
/// Peer clock samples per measurement (the smallest round trip is kept).
pub const PEER_SAMPLES: usize = 3;
/// How long an NTP server (and its name lookup) may take to answer.
const NTP_TIMEOUT: Duration = Duration::from_secs(2);
/// HEAD requests to the peer under way at once, per stream.
const HEAD_CONCURRENCY: usize = 4;
/// Names of differing objects listed in a reason, at most.
const NAMES_IN_REASON: usize = 3;

/// One NTP server's last measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NtpStatus {
    /// `HOST:PORT` as configured.
    pub server: String,
    /// The server's clock minus this node's, microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset_us: Option<i64>,
    /// Round trip of the request, microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round_trip_us: Option<i64>,
    /// Why there is no offset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The peer's last clock measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeerStatus {
    /// The peer's `HOST:PORT`.
    pub addr: String,
    /// The peer answered (any HTTP answer).
    pub reachable: bool,
    /// The peer's clock minus this node's, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_offset_ms: Option<f64>,
    /// Round trip of the sample used, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round_trip_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One live stream compared with the peer.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StreamStatus {
    /// `app/stream`.
    pub stream: String,
    /// Objects asked about (the newest of this node's playlists).
    pub checked: usize,
    /// Same hash on the peer.
    pub identical: usize,
    /// Objects the peer has with another hash.
    pub differing: Vec<String>,
    /// The peer answered 404 (not published there yet, or not live there).
    pub missing_on_peer: usize,
    /// No usable answer (peer unreachable, other status, no ETag).
    pub unanswered: usize,
    /// Objects found to differ from the peer's at backfill (`lockstep_failures`).
    pub lockstep_failures: u64,
    /// No differing object and no lockstep failure.
    pub in_lockstep: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The body of `GET /health`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub healthy: bool,
    pub reasons: Vec<String>,
    /// `main`, `backup` or `single`.
    pub role: &'static str,
    pub version: &'static str,
    /// `Pair/MaxClockOffsetMs` (pairs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_clock_offset_ms: Option<u32>,
    pub ntp: Vec<NtpStatus>,
    /// Pairs only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<PeerStatus>,
    pub streams: Vec<StreamStatus>,
}

#[derive(Default)]
struct Measured {
    ntp: Vec<NtpStatus>,
    /// None until the first peer measurement.
    peer: Option<PeerStatus>,
    streams: Vec<StreamStatus>,
}

/// The health monitor: measurements, the report, the metrics.
pub struct Health {
    pair: Option<PairSettings>,
    metrics: Arc<Metrics>,
    measured: Mutex<Measured>,
}

impl Health {
    /// For `Config::pair` (None: a single node).
    pub fn new(pair: Option<PairSettings>, metrics: Arc<Metrics>) -> Arc<Health> {
        let ntp = pair.as_ref().map_or(&[][..], |p| &p.ntp_servers[..]);
        let ntp = ntp
            .iter()
            .map(|s| NtpStatus {
                server: s.clone(),
                offset_us: None,
                round_trip_us: None,
                error: Some("not measured yet".into()),
            })
            .collect();
        let h = Arc::new(Health { pair, metrics, measured: Mutex::new(Measured { ntp, ..Measured::default() }) });
        h.publish();
        h
    }

    /// The report as of the latest measurements.
    pub fn report(&self) -> Report {
        let m = self.measured.lock().unwrap_or_else(|e| e.into_inner());
        let peer = self.pair.as_ref().map(|p| {
            m.peer.clone().unwrap_or_else(|| PeerStatus {
                addr: p.peer_url.trim_start_matches("http://").to_string(),
                reachable: false,
                clock_offset_ms: None,
                round_trip_ms: None,
                error: Some("not measured yet".into()),
            })
        });
        let limit = self.pair.as_ref().map(|p| p.max_clock_offset_ms);
        let reasons = match limit {
            Some(limit) => reasons(limit, self.pair.as_ref().map(|p| p.role), &m.ntp, m.peer.as_ref(), &m.streams),
            None => Vec::new(),
        };
        Report {
            healthy: reasons.is_empty(),
            reasons,
            role: match self.pair.as_ref().map(|p| p.role) {
                Some(PairRole::Main) => "main",
                Some(PairRole::Backup) => "backup",
                None => "single",
            },
            version: env!("CARGO_PKG_VERSION"),
            max_clock_offset_ms: limit,
            ntp: m.ntp.clone(),
            peer,
            streams: m.streams.clone(),
        }
    }

    /// Update the metrics from the latest measurements.
    fn publish(&self) {
        let r = self.report();
        let measured_peer = self.measured.lock().unwrap_or_else(|e| e.into_inner()).peer.is_some();
        let peer = r.peer.as_ref().filter(|_| measured_peer);
        self.metrics.set_health(HealthGauges {
            ntp_offset_s: r.ntp.iter().filter_map(|n| Some((n.server.clone(), n.offset_us? as f64 / 1e6))).collect(),
            peer_clock_offset_s: peer.and_then(|p| p.clock_offset_ms).map(|ms| ms / 1e3),
            peer_reachable: peer.map(|p| p.reachable),
            objects_differing: r.streams.iter().map(|s| (s.stream.clone(), s.differing.len() as u64)).collect(),
            healthy: r.healthy,
        });
    }

    /// Measure until `shutdown` (returns at once for a single node).
    /// `http` issues the viewer session keys that requests for the peer's
    /// objects carry when an application has OriginMode false.
    pub async fn run(
        self: Arc<Self>,
        registry: Arc<Registry>,
        store: Arc<Store>,
        http: HttpState,
        shutdown: CancellationToken,
    ) {
        let Some(pair) = self.pair.clone() else { return };
        let client = PeerClient::new(&pair.peer_url, &pair.secret);
        let ntp = async {
            if !pair.ntp_servers.is_empty() {
                every(NTP_INTERVAL, &shutdown, || async {
                    let ntp = futures::future::join_all(pair.ntp_servers.iter().map(|s| measure_ntp(s))).await;
                    self.measured.lock().unwrap_or_else(|e| e.into_inner()).ntp = ntp;
                    self.publish();
                })
                .await;
            }
        };
        let peer = every(PEER_INTERVAL, &shutdown, || async {
            let peer = measure_peer(&client).await;
            self.measured.lock().unwrap_or_else(|e| e.into_inner()).peer = Some(peer);
            self.publish();
        });
        let streams = every(STREAMS_INTERVAL, &shutdown, || async {
            // A peer found unreachable is not asked about objects (each
            // request would wait for its timeout).
            let peer_down = {
                let m = self.measured.lock().unwrap_or_else(|e| e.into_inner());
                m.peer.as_ref().is_some_and(|p| !p.reachable)
            };
            let mut streams = Vec::new();
            for key in registry.live_streams() {
                if let Some(st) = store.stream(&key) {
                    streams.push(check_stream(&client, &key, &st, http.viewer_key(&key), peer_down).await);
                }
            }
            self.measured.lock().unwrap_or_else(|e| e.into_inner()).streams = streams;
            self.publish();
        });
        tokio::join!(ntp, peer, streams);
    }
}

/// Run `f` now and then every `period` (measured from the start of the
/// previous run, or its end when it took longer) until `shutdown`.
async fn every<F, Fut>(period: Duration, shutdown: &CancellationToken, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = f() => {}
        }
    }
}

/// Why this node is unhealthy (empty: healthy).
/// Why this node is unhealthy. Only ever one node of a pair takes the blame,
/// so a CDN always keeps a healthy origin: a node is blamed for its own NTP
/// offset; without a usable NTP measurement the clock offset to the peer
/// counts against the backup only (the main's clock is the reference); and
/// a lockstep break makes the backup unhealthy, not the main, which keeps
/// serving the timeline the backup was meant to follow.
fn reasons(
    limit_ms: u32,
    role: Option<PairRole>,
    ntp: &[NtpStatus],
    peer: Option<&PeerStatus>,
    streams: &[StreamStatus],
) -> Vec<String> {
    let mut out = Vec::new();
    let limit = f64::from(limit_ms);
    let backup = role == Some(PairRole::Backup);
    let ntp_measured = ntp.iter().any(|n| n.offset_us.is_some());
    for n in ntp {
        if let Some(us) = n.offset_us {
            let ms = us as f64 / 1e3;
            if ms.abs() > limit {
                out.push(format!("clock offset to NTP {} is {ms:.1} ms (limit {limit_ms} ms)", n.server));
            }
        }
    }
    if let Some((p, ms)) = peer.and_then(|p| Some((p, p.clock_offset_ms?))).filter(|_| backup && !ntp_measured) {
        if ms.abs() > limit {
            out.push(format!("clock offset to the peer {} is {ms:.1} ms (limit {limit_ms} ms)", p.addr));
        }
    }
    for s in streams.iter().filter(|_| backup) {
        if !s.differing.is_empty() {
            let mut names = s.differing.iter().take(NAMES_IN_REASON).cloned().collect::<Vec<_>>().join(", ");
            if s.differing.len() > NAMES_IN_REASON {
                names.push_str(", ...");
            }
            out.push(format!(
                "lockstep broken on {}: {} of {} recent objects differ from the peer's ({names})",
                s.stream,
                s.differing.len(),
                s.checked
            ));
        }
        if s.lockstep_failures > 0 {
            out.push(format!(
                "lockstep broken on {}: {} lockstep failures (objects that differed from the peer's at backfill)",
                s.stream, s.lockstep_failures
            ));
        }
    }
    out
}

/// Ask one NTP server (`HOST:PORT`).
async fn measure_ntp(server: &str) -> NtpStatus {
    let (offset_us, round_trip_us, error) = match ntp_offset(server).await {
        Ok((o, r)) => (Some(o), Some(r), None),
        Err(e) => (None, None, Some(e)),
    };
    NtpStatus { server: server.to_string(), offset_us, round_trip_us, error }
}

/// (offset, round trip) in microseconds.
async fn ntp_offset(server: &str) -> Result<(i64, i64), String> {
    let addr = match tokio::time::timeout(NTP_TIMEOUT, tokio::net::lookup_host(server)).await {
        Ok(Ok(mut addrs)) => addrs.next().ok_or_else(|| format!("{server} resolves to no address"))?,
        Ok(Err(e)) => return Err(format!("cannot resolve {server}: {e}")),
        Err(_) => return Err(format!("resolving {server} timed out")),
    };
    let any = if addr.is_ipv6() { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
    let config = rsntp::Config::default().bind_address(SocketAddr::new(any, 0)).timeout(NTP_TIMEOUT);
    let r = rsntp::AsyncSntpClient::with_config(config).synchronize(addr).await.map_err(|e| e.to_string())?;
    let us = |s: f64| if s.is_finite() { (s * 1e6).round() as i64 } else { i64::MAX };
    Ok((us(r.clock_offset().as_secs_f64()), us(r.round_trip_delay().as_secs_f64())))
}

/// The peer's clock offset: the sample of smallest round trip.
async fn measure_peer(client: &PeerClient) -> PeerStatus {
    let mut best: Option<(i64, f64)> = None;
    let mut reachable = false;
    let mut error = None;
    for _ in 0..PEER_SAMPLES {
        match client.time().await {
            Ok((peer_now, t0, t1)) => {
                reachable = true;
                let rtt = t1.saturating_sub(t0);
                let offset = peer_now as f64 - (t0 as f64 + t1 as f64) / 2.0;
                if !matches!(best, Some((b, _)) if b <= rtt) {
                    best = Some((rtt, offset));
                }
            }
            Err(e) => {
                reachable |= !matches!(e, PeerError::Unreachable { .. });
                error = Some(e.to_string());
                break;
            }
        }
    }
    PeerStatus {
        addr: client.addr().to_string(),
        reachable,
        clock_offset_ms: best.map(|b| b.1),
        round_trip_ms: best.map(|b| b.0),
        error: if best.is_some() { None } else { error },
    }
}

/// Media object names listed in a playlist (segments, parts, TS segments),
/// in playlist order; playlists, init segments and hints excluded.
fn media_uris(playlist: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(playlist);
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        let uri = if line.starts_with("#EXT-X-PART:") {
            line.split("URI=\"").nth(1).and_then(|r| r.split('"').next())
        } else if !line.is_empty() && !line.starts_with('#') {
            Some(line)
        } else {
            None
        };
        let Some(uri) = uri.map(|u| u.split('?').next().unwrap_or(u)) else { continue };
        if !uri.is_empty() && !uri.contains('/') && !uri.ends_with(".m3u8") && !uri.ends_with(".mp4") {
            out.push(uri.to_string());
        }
    }
    out
}

/// The newest `n` media objects of a stream with their ETags: taken in turn
/// from the end of each newest media playlist (LL-HLS renditions by label,
/// then the TS playlist), so every playlist is represented.
fn recent_objects(i: &Inner, n: usize) -> Vec<(String, Arc<str>)> {
    let mut labels: Vec<&String> = i.renditions.keys().collect();
    labels.sort();
    let mut lists: Vec<Vec<String>> = labels
        .iter()
        .filter_map(|l| {
            let r = i.renditions.get(*l)?;
            r.last.and_then(|p| r.playlists.get(&p)).map(|(full, _)| media_uris(&full.bytes))
        })
        .collect();
    if let Some(ts) = i.objects.get(HLS_MEDIA) {
        lists.push(media_uris(&ts.bytes));
    }
    let mut out: Vec<(String, Arc<str>)> = Vec::new();
    loop {
        let mut any = false;
        for l in &mut lists {
            if out.len() >= n {
                return out;
            }
            while let Some(name) = l.pop() {
                if let Some(o) = i.objects.get(&name) {
                    if !out.iter().any(|(x, _)| *x == name) {
                        out.push((name, o.etag.clone()));
                        any = true;
                        break;
                    }
                }
            }
        }
        if !any {
            return out;
        }
    }
}

/// Compare a stream's newest objects with the peer's (HEAD, ETag); only
/// its lockstep failures when `peer_down`. `session` is the viewer key the
/// requests carry (OriginMode false).
async fn check_stream(
    client: &PeerClient,
    key: &StreamKey,
    st: &StreamState,
    session: Option<String>,
    peer_down: bool,
) -> StreamStatus {
    let (mut objects, lockstep_failures) = st.read(|i| (recent_objects(i, OBJECTS_CHECKED), i.peer.lockstep_failures));
    let mut s = StreamStatus { stream: key.to_string(), lockstep_failures, ..StreamStatus::default() };
    if peer_down {
        objects.clear();
        s.error = Some(format!("peer {} unreachable: objects not compared", client.addr()));
    }
    s.checked = objects.len();
    let query = session.map(|k| format!("?{}={k}", crate::session_key::PARAM)).unwrap_or_default();
    let query = &query;
    let answers: Vec<_> = futures::stream::iter(objects)
        .map(|(name, ours)| async move {
            let theirs = client.head_etag(&format!("/{}/{}/{name}{query}", key.app, key.stream)).await;
            (name, ours, theirs)
        })
        .buffer_unordered(HEAD_CONCURRENCY)
        .collect()
        .await;
    for (name, ours, theirs) in answers {
        match theirs {
            Ok((200, Some(etag))) if etag == *ours => s.identical += 1,
            Ok((200, Some(_))) => s.differing.push(name),
            Ok((404, _)) => s.missing_on_peer += 1,
            Ok((status, _)) => {
                s.unanswered += 1;
                s.error = Some(format!("the peer answered {status} for {name}"));
            }
            Err(e) => {
                s.unanswered += 1;
                s.error = Some(e.to_string());
            }
        }
    }
    s.differing.sort();
    s.in_lockstep = s.differing.is_empty() && s.lockstep_failures == 0;
    s
}

/// `GET /health` (and HEAD).
async fn handler(State(h): State<Arc<Health>>) -> Response {
    let r = h.report();
    let status = if r.healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::to_vec(&r).unwrap_or_default();
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// The `/health` route, to merge into the LLHLS and API routers (no
/// authentication).
pub fn router(h: Arc<Health>) -> Router {
    Router::new().route("/health", get(handler)).with_state(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Obj, Rendition};
    use bytes::Bytes;
    use lockstep_packager::Point;

    fn ntp(server: &str, offset_us: i64) -> NtpStatus {
        NtpStatus { server: server.into(), offset_us: Some(offset_us), round_trip_us: Some(100), error: None }
    }

    fn peer(offset_ms: Option<f64>) -> PeerStatus {
        PeerStatus {
            addr: "127.0.0.1:8080".into(),
            reachable: offset_ms.is_some(),
            clock_offset_ms: offset_ms,
            round_trip_ms: offset_ms.map(|_| 1),
            error: None,
        }
    }

    #[test]
    fn reasons_name_what_is_wrong_and_blame_one_node() {
        let (main, backup) = (Some(PairRole::Main), Some(PairRole::Backup));
        let within = [ntp("a:123", -49_999), ntp("b:123", 50_000)];
        assert!(reasons(50, backup, &within, Some(&peer(Some(-50.0))), &[]).is_empty());
        // A node's own NTP offset always counts; with NTP measured, the peer
        // offset does not (the peer blames itself).
        let r = reasons(50, main, &[ntp("127.0.0.1:123", 812_345)], Some(&peer(Some(-2000.4))), &[]);
        assert_eq!(r, ["clock offset to NTP 127.0.0.1:123 is 812.3 ms (limit 50 ms)"]);
        // Without NTP, the peer offset counts against the backup only.
        let r = reasons(50, backup, &[], Some(&peer(Some(-2000.4))), &[]);
        assert_eq!(r, ["clock offset to the peer 127.0.0.1:8080 is -2000.4 ms (limit 50 ms)"]);
        assert!(reasons(50, main, &[], Some(&peer(Some(2000.4))), &[]).is_empty());
        // Unreachable servers and peers are reported, not unhealthy.
        let down = NtpStatus { server: "x:123".into(), offset_us: None, round_trip_us: None, error: Some("t".into()) };
        assert!(reasons(50, backup, &[down], Some(&peer(None)), &[]).is_empty());
        let s = StreamStatus {
            stream: "app/s".into(),
            checked: 16,
            differing: vec!["a.m4s".into(), "b.m4s".into(), "c.m4s".into(), "d.m4s".into()],
            lockstep_failures: 2,
            ..StreamStatus::default()
        };
        // A lockstep break makes the backup unhealthy, not the main.
        assert!(reasons(50, main, &[], None, std::slice::from_ref(&s)).is_empty());
        let r = reasons(50, backup, &[], None, &[s]);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(
            r[0],
            "lockstep broken on app/s: 4 of 16 recent objects differ from the peer's (a.m4s, b.m4s, c.m4s, ...)"
        );
        assert!(r[1].contains("2 lockstep failures"), "{r:?}");
    }

    #[test]
    fn playlist_uris() {
        let pl = b"#EXTM3U\n#EXT-X-MAP:URI=\"video1_init.mp4\"\n#EXTINF:2.0,\nvideo1_4.m4s\n\
            #EXT-X-PART:DURATION=0.5,URI=\"video1_5.0.m4s\",INDEPENDENT=YES\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"video1_5.1.m4s\"\n\
            #EXT-X-RENDITION-REPORT:URI=\"audio2.m3u8\"\nts_3.ts?session=abc\n";
        assert_eq!(media_uris(pl), ["video1_4.m4s", "video1_5.0.m4s", "ts_3.ts"]);
        assert!(media_uris(&[0xff, 0xfe, b'\n']).iter().all(|u| !u.is_empty()));
    }

    #[test]
    fn newest_objects_from_every_playlist() {
        let mut i = Inner::default();
        let mut video = Rendition::default();
        let mut text = String::from("#EXTM3U\n");
        for k in 0..10 {
            let name = format!("video1_{k}.m4s");
            text.push_str(&format!("#EXTINF:2.0,\n{name}\n"));
            i.objects.insert(name.clone(), Obj::new(Bytes::from(name)));
        }
        let point = Point { msn: 9, part: 0 };
        video.last = Some(point);
        video.playlists.insert(point, (Obj::new(Bytes::from(text)), None));
        i.renditions.insert("video1".into(), video);
        let ts = "#EXTM3U\n#EXTINF:2.0,\nts_8.ts\n#EXTINF:2.0,\nts_9.ts\n#EXTINF:2.0,\nts_10.ts\n";
        i.objects.insert(HLS_MEDIA.into(), Obj::new(Bytes::from(ts)));
        for n in ["ts_8.ts", "ts_9.ts"] {
            i.objects.insert(n.into(), Obj::new(Bytes::from(n)));
        }
        let got: Vec<String> = recent_objects(&i, 5).into_iter().map(|(n, _)| n).collect();
        // ts_10.ts is listed but not held: skipped.
        assert_eq!(got, ["video1_9.m4s", "ts_9.ts", "video1_8.m4s", "ts_8.ts", "video1_7.m4s"]);
        let all = recent_objects(&i, 100);
        assert_eq!(all.len(), 12);
        assert_eq!(*all[0].1, *Obj::new(Bytes::from("video1_9.m4s")).etag);
    }

    fn pair_settings(limit: u32) -> PairSettings {
        PairSettings {
            role: PairRole::Backup,
            peer_url: "http://127.0.0.1:1".into(),
            secret: "0123456789abcdef".into(),
            ntp_servers: vec!["127.0.0.1:123".into()],
            max_clock_offset_ms: limit,
        }
    }

    #[test]
    fn report_and_metrics() {
        let metrics = Arc::new(Metrics::new());
        let h = Health::new(Some(pair_settings(50)), metrics.clone());
        let r = h.report();
        assert!(r.healthy, "nothing measured yet: healthy");
        assert_eq!(r.role, "backup");
        assert_eq!(r.ntp[0].error.as_deref(), Some("not measured yet"));
        assert!(metrics.render().contains("lockstep_healthy 1\n"));
        assert!(!metrics.render().contains("lockstep_peer_reachable"), "not measured yet");

        {
            let mut m = h.measured.lock().unwrap_or_else(|e| e.into_inner());
            m.ntp = vec![ntp("127.0.0.1:123", -2_000_123)];
            m.peer = Some(peer(Some(-1999.5)));
            m.streams = vec![StreamStatus { stream: "app/s".into(), checked: 16, ..StreamStatus::default() }];
        }
        h.publish();
        let r = h.report();
        assert!(!r.healthy);
        // The own NTP offset; the peer offset is not blamed when NTP is measured.
        assert_eq!(r.reasons.len(), 1, "{:?}", r.reasons);
        let json = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(json["ntp"][0]["offset_us"], -2_000_123);
        assert_eq!(json["peer"]["clock_offset_ms"], -1999.5);
        assert_eq!(json["streams"][0]["stream"], "app/s");
        let text = metrics.render();
        for line in [
            "lockstep_healthy 0\n",
            "lockstep_ntp_offset_seconds{server=\"127.0.0.1:123\"} -2.000123\n",
            "lockstep_peer_clock_offset_seconds -1.9995\n",
            "lockstep_peer_reachable 1\n",
            "lockstep_pair_objects_differing{stream=\"app/s\"} 0\n",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
    }

    #[test]
    fn a_single_node_is_healthy() {
        let metrics = Arc::new(Metrics::new());
        let r = Health::new(None, metrics.clone()).report();
        assert!(r.healthy && r.reasons.is_empty() && r.ntp.is_empty() && r.peer.is_none());
        assert_eq!(r.role, "single");
        assert!(metrics.render().contains("lockstep_healthy 1\n"));
    }

    #[tokio::test]
    async fn unreachable_peer_and_ntp_are_reported() {
        // A port nothing listens on (bound, then released).
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_or(1, |a| a.port());
        let p = measure_peer(&PeerClient::new(&format!("http://127.0.0.1:{port}"), "0123456789abcdef")).await;
        assert!(!p.reachable && p.clock_offset_ms.is_none() && p.error.is_some(), "{p:?}");
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map_or(1, |a| a.port());
        let n = measure_ntp(&format!("127.0.0.1:{udp}")).await;
        assert!(n.offset_us.is_none() && n.error.is_some(), "{n:?}");
        let n = measure_ntp("no-such-host.invalid:123").await;
        assert!(n.error.is_some(), "{n:?}");
    }
}
