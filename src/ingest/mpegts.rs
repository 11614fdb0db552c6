//! MPEG-TS over UDP provider, and the MPEG-TS input handling it shares with
//! the SRT provider ([`TsFeed`]).
//!
//! Each bound UDP port feeds one stream, named by the `StreamMap` of the
//! application that lists the port (`Providers/MPEGTS/StreamMap/Stream`).
//! Like OvenMediaEngine's MPEGTS provider there is no connection: the first
//! datagram publishes the stream (its source address becomes the
//! publisher), and the stream ends when datagrams stop for
//! `PacketSilenceTimeoutMs` (the session watches that; when the application
//! sets none, this provider ends the stream after [`DEFAULT_UDP_SILENCE`]
//! without a datagram). A datagram arriving after that starts a new
//! session. While a stream is live, datagrams from any other source address
//! are ignored (logged once per session).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lockstep_packager::demux::{DemuxError, DemuxEvent};
use lockstep_packager::ts_demux::TsDemuxer;
use tokio::net::UdpSocket;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{Provider, PublishError, Publisher, Registry};
use crate::store::StreamKey;

/// Silence that ends a UDP stream when the application sets no
/// `PacketSilenceTimeoutMs` (UDP has no connection to close).
pub const DEFAULT_UDP_SILENCE: Duration = Duration::from_millis(3000);
/// Largest datagram read (bigger ones are truncated by the kernel).
const MAX_DATAGRAM: usize = 64 * 1024;
/// Demuxer warnings logged per session; later ones are only counted.
const MAX_LOGGED_WARNINGS: u32 = 10;
/// How long the last events of an ending session may wait for its queue.
pub(super) const FLUSH_LIMIT: Duration = Duration::from_millis(500);
/// A publish refusal is logged again after this long even if unchanged.
const REPEAT_REFUSAL_LOG: Duration = Duration::from_secs(10);

/// Whether a demuxer error means the input can never become a stream (it
/// ends the stream) rather than damage the demuxer recovers from.
pub(super) fn is_fatal(e: &DemuxError) -> bool {
    // The demuxer's wording for "the PMT lists no H.264 or AAC stream"
    // (tested below so that a change of wording is noticed).
    matches!(e, DemuxError::Ts { reason, .. } if reason.starts_with("PMT has no H.264"))
}

/// One publisher's MPEG-TS input: the demuxer plus the logging of its
/// errors (each with provider, peer and stream).
pub(super) struct TsFeed {
    demux: TsDemuxer,
    key: StreamKey,
    provider: Provider,
    peer: SocketAddr,
    warnings: u32,
}

impl TsFeed {
    pub(super) fn new(key: &StreamKey, provider: Provider, peer: SocketAddr) -> TsFeed {
        TsFeed { demux: TsDemuxer::new(key.to_string()), key: key.clone(), provider, peer, warnings: 0 }
    }

    /// Demux `data`. `Err(reason)` when the input cannot be a stream (see
    /// [`is_fatal`]); other demuxer errors are logged and demuxing goes on.
    pub(super) fn push(&mut self, data: &[u8]) -> Result<Vec<DemuxEvent>, String> {
        let first = self.demux.push(data);
        self.collect(first, false)
    }

    /// End of input: the events still held (the last access unit).
    pub(super) fn finish(&mut self) -> Vec<DemuxEvent> {
        let first = self.demux.finish();
        self.collect(first, true).unwrap_or_default()
    }

    /// The demuxer's contract: an `Err` loses no event, they come out of
    /// the next call, and two calls in a row never both fail. So after an
    /// `Err`, one more (empty) call returns the events.
    fn collect(&mut self, first: Result<Vec<DemuxEvent>, DemuxError>, at_end: bool) -> Result<Vec<DemuxEvent>, String> {
        let mut events = Vec::new();
        let mut fatal = None;
        let mut r = first;
        // At most a few rounds: Err is always followed by Ok.
        for _ in 0..4 {
            match r {
                Ok(ev) => {
                    events.extend(ev);
                    break;
                }
                Err(e) => {
                    if is_fatal(&e) {
                        fatal.get_or_insert_with(|| e.to_string());
                    } else {
                        self.warn(&e);
                    }
                    r = if at_end { self.demux.finish() } else { self.demux.push(&[]) };
                }
            }
        }
        match fatal {
            Some(reason) => Err(reason),
            None => Ok(events),
        }
    }

    fn warn(&mut self, e: &DemuxError) {
        self.warnings = self.warnings.saturating_add(1);
        if self.warnings <= MAX_LOGGED_WARNINGS {
            warn!(provider = %self.provider, peer = %self.peer, stream = %self.key, error = %e, "MPEG-TS input error; demuxing goes on");
        }
        if self.warnings == MAX_LOGGED_WARNINGS {
            warn!(provider = %self.provider, peer = %self.peer, stream = %self.key, "further MPEG-TS input errors of this session are only counted");
        }
    }

    /// Log what was discarded as damaged, if anything (at the end).
    pub(super) fn log_summary(&self) {
        let (dropped, skipped) = (self.demux.dropped(), self.demux.skipped_bytes());
        if dropped > 0 || skipped > 0 || self.warnings > MAX_LOGGED_WARNINGS {
            info!(provider = %self.provider, peer = %self.peer, stream = %self.key, dropped, skipped_bytes = skipped, errors = self.warnings, "MPEG-TS input damage during the session");
        }
    }
}

/// Receive MPEG-TS on each bound UDP socket (port → stream from the
/// application's StreamMap) until `shutdown`.
pub async fn serve(sockets: Vec<UdpSocket>, registry: Arc<Registry>, shutdown: CancellationToken) {
    let mut tasks = tokio::task::JoinSet::new();
    for socket in sockets {
        tasks.spawn(serve_port(socket, registry.clone(), shutdown.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

/// The stream a UDP port feeds: the first application whose MPEGTS
/// StreamMap lists the port.
fn stream_for_port(registry: &Registry, port: u16) -> Option<(StreamKey, Option<Duration>)> {
    registry.config().vhosts.iter().flat_map(|v| v.apps.iter()).find_map(|a| {
        let m = a.mpegts.as_ref()?;
        let s = m.streams.iter().find(|s| s.port == port)?;
        Some((StreamKey { app: a.name.clone(), stream: s.name.clone() }, m.common.packet_silence_timeout))
    })
}

/// A live session on one port.
struct Live {
    publisher: Publisher,
    source: SocketAddr,
    feed: TsFeed,
    last: Instant,
    /// Datagrams from other sources ignored during this session.
    ignored: u64,
}

enum PortState {
    Idle,
    Live(Box<Live>),
    /// The source sent something that cannot be a stream: ignore it until it
    /// pauses for the silence timeout.
    Refused {
        source: SocketAddr,
        last: Instant,
    },
}

struct Port {
    registry: Arc<Registry>,
    key: StreamKey,
    port: u16,
    /// Silence after which this provider ends the stream itself (`None`:
    /// the session's PacketSilenceTimeoutMs does).
    own_silence: Option<Duration>,
    /// How long a refused source must pause before it may publish again.
    refuse_for: Duration,
    state: PortState,
    /// The last publish refusal logged, and when.
    last_refusal: Option<(String, Instant)>,
}

async fn serve_port(socket: UdpSocket, registry: Arc<Registry>, shutdown: CancellationToken) {
    let port = match socket.local_addr() {
        Ok(a) => a.port(),
        Err(e) => {
            warn!(provider = "MPEGTS", error = %e, "UDP socket without a local address; not used");
            return;
        }
    };
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let Some((key, silence)) = stream_for_port(&registry, port) else {
        warn!(
            provider = "MPEGTS",
            port, "no application's MPEGTS StreamMap lists this UDP port; its datagrams are ignored"
        );
        let mut logged = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                r = socket.recv_from(&mut buf) => {
                    if let (Ok((_, peer)), false) = (r, logged) {
                        logged = true;
                        warn!(provider = "MPEGTS", port, %peer, "datagram on an unmapped UDP port ignored (logged once)");
                    }
                }
            }
        }
    };
    info!(provider = "MPEGTS", port, stream = %key, "UDP port feeds stream");
    let mut p = Port {
        registry,
        key,
        port,
        own_silence: if silence.is_none() { Some(DEFAULT_UDP_SILENCE) } else { None },
        refuse_for: silence.unwrap_or(DEFAULT_UDP_SILENCE),
        state: PortState::Idle,
        last_refusal: None,
    };
    let never = CancellationToken::new();
    let mut recv_errors = 0u32;
    loop {
        let (ended, deadline) = match &p.state {
            PortState::Idle => (never.clone(), None),
            PortState::Live(l) => (l.publisher.ended(), p.own_silence.map(|t| l.last + t)),
            PortState::Refused { last, .. } => (never.clone(), Some(*last + p.refuse_for)),
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = ended.cancelled() => p.end(None).await,
            () = sleep_until(deadline) => match &p.state {
                PortState::Live(_) => {
                    let ms = p.own_silence.unwrap_or_default().as_millis();
                    p.end(Some(format!("no datagram for {ms} ms (default silence timeout for UDP)"))).await;
                }
                _ => p.state = PortState::Idle,
            },
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, source)) => {
                    recv_errors = 0;
                    p.datagram(buf.get(..n).unwrap_or_default(), source).await;
                }
                Err(e) => {
                    // E.g. ICMP errors reported on the socket: not fatal.
                    recv_errors = recv_errors.saturating_add(1);
                    debug!(provider = "MPEGTS", port, error = %e, "UDP receive error");
                    if recv_errors > 3 {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            },
        }
    }
    p.end(None).await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Port {
    /// Drop the live publisher (ends the stream), logging `why` if given.
    async fn end(&mut self, why: Option<String>) {
        if let PortState::Live(mut l) = std::mem::replace(&mut self.state, PortState::Idle) {
            if let Some(why) = why {
                warn!(provider = "MPEGTS", peer = %l.source, stream = %self.key, reason = %why, "ending stream");
            }
            if !l.publisher.is_ended() {
                let events = l.feed.finish();
                let _ = tokio::time::timeout(FLUSH_LIMIT, l.publisher.send(events)).await;
            }
            l.feed.log_summary();
            if l.ignored > 0 {
                info!(provider = "MPEGTS", peer = %l.source, stream = %self.key, datagrams = l.ignored, "datagrams from other sources were ignored during the session");
            }
        }
    }

    async fn datagram(&mut self, data: &[u8], source: SocketAddr) {
        let now = Instant::now();
        match &mut self.state {
            PortState::Live(l) if l.source != source => {
                l.ignored += 1;
                if l.ignored == 1 {
                    warn!(provider = "MPEGTS", peer = %source, publisher = %l.source, stream = %self.key, port = self.port, "datagram from another source while the stream is live: ignored (logged once per session)");
                }
                return;
            }
            PortState::Live(_) => {}
            PortState::Refused { source: s, last } if *s == source => {
                *last = now;
                return;
            }
            PortState::Refused { .. } | PortState::Idle => {
                let Some(l) = self.publish(source, now) else { return };
                self.state = PortState::Live(Box::new(l));
            }
        }
        let PortState::Live(l) = &mut self.state else { return };
        l.last = now;
        match l.feed.push(data) {
            Ok(events) => {
                if l.publisher.send(events).await.is_err() {
                    self.end(None).await;
                }
            }
            Err(reason) => {
                warn!(provider = "MPEGTS", peer = %source, stream = %self.key, %reason, "not a usable stream: ending it; this source is ignored until it pauses");
                self.end(None).await;
                self.state = PortState::Refused { source, last: now };
            }
        }
    }

    fn publish(&mut self, source: SocketAddr, now: Instant) -> Option<Live> {
        match self.registry.publish(&self.key.app, &self.key.stream, Provider::Mpegts, source) {
            Ok(publisher) => {
                self.last_refusal = None;
                Some(Live {
                    feed: TsFeed::new(&self.key, Provider::Mpegts, source),
                    publisher,
                    source,
                    last: now,
                    ignored: 0,
                })
            }
            Err(e) => {
                let text = e.to_string();
                let repeat = self
                    .last_refusal
                    .as_ref()
                    .is_some_and(|(t, at)| *t == text && now.duration_since(*at) < REPEAT_REFUSAL_LOG);
                if !repeat {
                    if matches!(e, PublishError::Ending { .. } | PublishError::ShuttingDown) {
                        debug!(provider = "MPEGTS", peer = %source, stream = %self.key, reason = %text, "publish refused; datagrams dropped");
                    } else {
                        warn!(provider = "MPEGTS", peer = %source, stream = %self.key, reason = %text, "publish rejected; datagrams dropped");
                    }
                    self.last_refusal = Some((text, now));
                }
                None
            }
        }
    }
}

/// Feed `datagrams` to the UDP port that feeds `key`, each as if it came
/// from `source`, then end the session as a silence would: the UDP
/// provider's handling of its input without a socket. For the fuzz targets
/// (`fuzz/`) and the regression tests that replay their finds.
pub async fn replay<'a>(
    registry: Arc<Registry>,
    key: StreamKey,
    source: SocketAddr,
    datagrams: impl IntoIterator<Item = &'a [u8]>,
) {
    let mut p = Port {
        registry,
        key,
        port: 0,
        own_silence: Some(DEFAULT_UDP_SILENCE),
        refuse_for: DEFAULT_UDP_SILENCE,
        state: PortState::Idle,
        last_refusal: None,
    };
    for d in datagrams {
        p.datagram(d, source).await;
    }
    p.end(None).await;
}

/// Helpers for the providers' tests: a registry over a hand-made
/// configuration, MPEG-TS inputs.
#[cfg(test)]
pub(super) mod testing {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use crate::config::{
        Application, Bind, Config, LlHlsSettings, MpegtsSettings, MpegtsStream, ProviderSettings, SrtSettings,
        VirtualHost,
    };
    use crate::ingest::Registry;
    use crate::store::{Store, StreamKey};
    use crate::timeline::WallClock;

    /// An application with SRT and MPEGTS (`ts` = stream name and UDP port)
    /// and LL-HLS output.
    pub fn app(name: &str, ts: Option<(&str, u16)>, silence_ms: Option<u64>, passphrase: Option<&str>) -> Application {
        let common =
            ProviderSettings { packet_silence_timeout: silence_ms.map(Duration::from_millis), ..Default::default() };
        Application {
            name: name.into(),
            rtmp: None,
            srt: Some(SrtSettings { common: common.clone(), passphrase: passphrase.map(String::from) }),
            mpegts: Some(MpegtsSettings {
                common,
                streams: ts.map(|(n, port)| vec![MpegtsStream { name: n.into(), port }]).unwrap_or_default(),
            }),
            llhls: Some(LlHlsSettings {
                origin_mode: true,
                session_key_secret: None,
                server_time_based_segment_numbering: true,
                chunk_duration_ms: 500,
                part_hold_back_ms: 1500,
                segment_duration_ms: 2000,
                segment_count: 10,
                cross_domains: Vec::new(),
            }),
            hls: None,
            publish_keys: Default::default(),
        }
    }

    pub fn registry(apps: Vec<Application>) -> (Arc<Registry>, CancellationToken) {
        let config = Config {
            name: "test".into(),
            ip: Ipv4Addr::LOCALHOST.into(),
            bind: Bind { rtmp: None, srt: None, mpegts: Vec::new(), llhls: None },
            vhosts: vec![VirtualHost { name: "default".into(), apps, signed_policy: None }],
            api: None,
            http: Default::default(),
            pair: None,
        };
        let shutdown = CancellationToken::new();
        let r = Registry::new(Arc::new(config), Arc::new(Store::new()), Arc::new(WallClock), shutdown.clone());
        (r, shutdown)
    }

    /// Show the server's logs in a failing test's output.
    pub fn init_logs() {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
            .try_init();
    }

    pub fn key(app: &str, stream: &str) -> StreamKey {
        StreamKey { app: app.into(), stream: stream.into() }
    }

    pub fn is_live(r: &Registry, k: &StreamKey) -> bool {
        r.live_streams().contains(k)
    }

    /// The peer of the live publisher of `k`.
    pub fn publisher_peer(r: &Registry, k: &StreamKey) -> Option<SocketAddr> {
        let live = r.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(k).filter(|l| !l.ended.is_cancelled()).map(|l| l.peer)
    }

    /// Poll `f` every 10 ms for at most `limit`.
    pub async fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
        let start = tokio::time::Instant::now();
        while start.elapsed() < limit {
            if f() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        f()
    }

    /// A 16 s H.264 + AAC transport stream from the golden inputs.
    pub fn golden_ts() -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/avc2997_gop2/input.ts");
        std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A free UDP port on loopback.
    pub fn free_udp_port() -> u16 {
        std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).expect("free port")
    }

    fn crc32_mpeg(data: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in data {
            crc ^= u32::from(b) << 24;
            for _ in 0..8 {
                crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04c1_1db7 } else { crc << 1 };
            }
        }
        crc
    }

    fn section(table_id: u8, ext: u16, body: &[u8]) -> Vec<u8> {
        let len = 5 + body.len() + 4;
        let mut s = vec![table_id, 0xb0 | (len >> 8) as u8 & 0x0f, len as u8, (ext >> 8) as u8, ext as u8, 0xc1, 0, 0];
        s.extend_from_slice(body);
        let crc = crc32_mpeg(&s);
        s.extend_from_slice(&crc.to_be_bytes());
        s
    }

    fn packet(pid: u16, section: &[u8]) -> Vec<u8> {
        let mut p = vec![0xffu8; 188];
        p[..5].copy_from_slice(&[0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10, 0]);
        p[5..5 + section.len()].copy_from_slice(section);
        p
    }

    /// PAT + PMT whose only elementary stream has `stream_type`.
    pub fn psi_with_stream_type(stream_type: u8) -> Vec<u8> {
        let pat = section(0x00, 1, &[0x00, 0x01, 0xf0, 0x00]);
        let pmt = section(0x02, 1, &[0xe1, 0x00, 0xf0, 0x00, stream_type, 0xe1, 0x00, 0xf0, 0x00]);
        let mut ts = packet(0, &pat);
        ts.extend(packet(0x1000, &pmt));
        ts
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn a_pmt_without_h264_or_aac_is_fatal() {
        let k = key("app", "s");
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut feed = TsFeed::new(&k, Provider::Mpegts, peer);
        let err = feed.push(&psi_with_stream_type(0x24)).expect_err("HEVC only: fatal");
        assert!(err.contains("PMT has no H.264"), "{err}");
        let mut feed = TsFeed::new(&k, Provider::Mpegts, peer);
        assert_eq!(feed.push(&psi_with_stream_type(0x1b)), Ok(Vec::new()));
        // Damage is not fatal.
        let mut feed = TsFeed::new(&k, Provider::Mpegts, peer);
        let mut ts = golden_ts();
        for (i, b) in ts.iter_mut().enumerate().skip(1000) {
            if i % 97 == 0 {
                *b ^= 0x5a;
            }
        }
        let mut events = 0;
        for chunk in ts.chunks(1316) {
            events += feed.push(chunk).expect("damage is not fatal").len();
        }
        events += feed.finish().len();
        assert!(events > 100, "{events} events");
    }

    async fn start_udp(
        apps_for_port: impl FnOnce(u16) -> Vec<crate::config::Application>,
    ) -> (u16, Arc<Registry>, CancellationToken) {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = sock.local_addr().unwrap().port();
        init_logs();
        let (registry, shutdown) = registry(apps_for_port(port));
        tokio::spawn(serve(vec![sock], registry.clone(), shutdown.clone()));
        (port, registry, shutdown)
    }

    /// Send `ts` in 1316-byte datagrams, a little paced.
    async fn send_ts(from: &UdpSocket, port: u16, ts: &[u8]) {
        for (i, chunk) in ts.chunks(1316).enumerate() {
            from.send_to(chunk, ("127.0.0.1", port)).await.unwrap();
            if i % 8 == 7 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn udp_stream_starts_on_datagrams_and_ends_on_default_silence() {
        let (port, registry, shutdown) = start_udp(|p| vec![app("app", Some(("cam", p)), None, None)]).await;
        let k = key("app", "cam");
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let other = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        assert!(!is_live(&registry, &k));
        let ts = golden_ts();
        let (first, rest) = ts.split_at(ts.len() / 2);
        send_ts(&tx, port, first).await;
        assert!(wait_until(Duration::from_secs(5), || registry.store().count(&k) > 0).await, "segments stored");
        assert_eq!(publisher_peer(&registry, &k), Some(tx.local_addr().unwrap()));
        // Another source is ignored while the stream is live.
        send_ts(&other, port, &ts[..1316 * 20]).await;
        send_ts(&tx, port, rest).await;
        let sent = tokio::time::Instant::now();
        assert_eq!(publisher_peer(&registry, &k), Some(tx.local_addr().unwrap()));
        // No PacketSilenceTimeoutMs: the default 3 s for UDP.
        assert!(wait_until(Duration::from_secs(6), || !is_live(&registry, &k)).await, "ended on silence");
        let took = sent.elapsed();
        assert!(took >= Duration::from_millis(2500), "ended after {took:?}");
        assert_eq!(registry.store().count(&k), 0);
        // A later datagram starts a new session (from any source).
        send_ts(&other, port, first).await;
        assert!(wait_until(Duration::from_secs(5), || publisher_peer(&registry, &k).is_some()).await);
        assert_eq!(publisher_peer(&registry, &k), Some(other.local_addr().unwrap()));
        shutdown.cancel();
        registry.drain().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn udp_unusable_stream_is_refused_until_the_source_pauses() {
        let (port, registry, shutdown) = start_udp(|p| vec![app("app", Some(("cam", p)), Some(300), None)]).await;
        let k = key("app", "cam");
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let hevc = psi_with_stream_type(0x24);
        tx.send_to(&hevc, ("127.0.0.1", port)).await.unwrap();
        assert!(wait_until(Duration::from_secs(2), || registry.live.lock().unwrap().is_empty()).await);
        // Still sending: ignored, no new session.
        for _ in 0..10 {
            tx.send_to(&hevc, ("127.0.0.1", port)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!is_live(&registry, &k));
        }
        // After a pause of the silence timeout, a usable stream publishes.
        tokio::time::sleep(Duration::from_millis(400)).await;
        send_ts(&tx, port, &golden_ts()[..200 * 1316]).await;
        assert!(wait_until(Duration::from_secs(5), || registry.store().count(&k) > 0).await);
        shutdown.cancel();
        registry.drain().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn udp_garbage_and_unmapped_ports_do_not_hurt() {
        let unmapped = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let unmapped_port = unmapped.local_addr().unwrap().port();
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = sock.local_addr().unwrap().port();
        let (registry, shutdown) = registry(vec![app("app", Some(("cam", port)), Some(300), None)]);
        let task = tokio::spawn(serve(vec![sock, unmapped], registry.clone(), shutdown.clone()));
        let tx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut x = 0x1234_5678u32;
        for i in 0..300usize {
            let len = [0, 1, 187, 188, 1316, 9000, 65_000][i % 7];
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    if x & 7 == 0 {
                        0x47
                    } else {
                        x as u8
                    }
                })
                .collect();
            let _ = tx.send_to(&data, ("127.0.0.1", port)).await;
            let _ = tx.send_to(&data, ("127.0.0.1", unmapped_port)).await;
        }
        send_ts(&tx, port, &golden_ts()).await;
        assert!(wait_until(Duration::from_secs(5), || registry.store().count(&key("app", "cam")) > 0).await);
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), task).await.expect("serve returns on shutdown").unwrap();
        registry.drain().await;
    }
}
