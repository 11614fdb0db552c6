//! What the fuzz targets share: a server configuration, a runtime, a
//! registry per input, and the packaging pipeline the demuxers feed.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use lockstep::config::Config;
use lockstep::ingest::Registry;
use lockstep::metrics::Metrics;
use lockstep::store::Store;
use lockstep::timeline::WallClock;
use lockstep_packager::demux::DemuxEvent;
use lockstep_packager::{
    Config as PackagerConfig, Output, Packager, Sample, StreamDescription, Track, TrackId, TrackKind,
};
use tokio_util::sync::CancellationToken;

/// The server configuration of the targets: application `app` takes RTMP,
/// SRT and MPEG-TS (UDP port 4000 feeds `app/stream`) and publishes LL-HLS
/// and HLS with two-second segments; application `keyed` serves with
/// OriginMode false (viewer session keys).
pub const SERVER_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Server version="8">
    <Name>fuzz</Name>
    <IP>*</IP>
    <Bind>
        <Providers>
            <RTMP><Port>1935</Port></RTMP>
            <SRT><Port>9999</Port></SRT>
            <MPEGTS><Port>4000/udp</Port></MPEGTS>
        </Providers>
        <Publishers><LLHLS><Port>3333</Port></LLHLS></Publishers>
    </Bind>
    <VirtualHosts>
        <VirtualHost>
            <Name>default</Name>
            <Applications>
                <Application>
                    <Name>app</Name>
                    <Providers>
                        <RTMP><PacketSilenceTimeoutMs>3000</PacketSilenceTimeoutMs></RTMP>
                        <SRT/>
                        <MPEGTS>
                            <StreamMap><Stream><Name>stream</Name><Port>4000</Port></Stream></StreamMap>
                        </MPEGTS>
                    </Providers>
                    <Publishers>
                        <LLHLS>
                            <ChunkDuration>0.5</ChunkDuration>
                            <PartHoldBack>1.5</PartHoldBack>
                            <SegmentDuration>2</SegmentDuration>
                            <SegmentCount>5</SegmentCount>
                            <CrossDomains><Url>*.example.com</Url><Url>http://player.test:8080</Url></CrossDomains>
                        </LLHLS>
                        <HLS><SegmentDuration>2</SegmentDuration><SegmentCount>5</SegmentCount></HLS>
                    </Publishers>
                </Application>
                <Application>
                    <Name>keyed</Name>
                    <Providers><RTMP/></Providers>
                    <Publishers>
                        <LLHLS>
                            <OriginMode>false</OriginMode>
                            <SessionKeySecret>fuzz-secret-0123456789</SessionKeySecret>
                            <SegmentDuration>2</SegmentDuration>
                        </LLHLS>
                    </Publishers>
                </Application>
            </Applications>
        </VirtualHost>
    </VirtualHosts>
</Server>
"#;

/// [`SERVER_XML`], parsed once.
pub fn config() -> Arc<Config> {
    static CONFIG: OnceLock<Arc<Config>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let (c, _warnings) =
                lockstep::config::parse_str(SERVER_XML, &|_| None).expect("the fuzz configuration is valid");
            Arc::new(c)
        })
        .clone()
}

/// A single-threaded runtime for the targets that run server code.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime"))
}

/// With `FUZZ_LOG` set (an env filter such as `lockstep=debug`), the
/// server's log lines go to stderr: to see what an input does when run by
/// hand (`fuzz/target/<host>/release/rtmp INPUT`).
pub fn logs() {
    static LOGS: OnceLock<()> = OnceLock::new();
    LOGS.get_or_init(|| {
        if let Ok(filter) = std::env::var("FUZZ_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_writer(std::io::stderr)
                .try_init();
        }
    });
}

/// The publisher's address in every target.
pub fn peer() -> SocketAddr {
    SocketAddr::from(([192, 0, 2, 1], 50000))
}

/// Run `f` against a fresh registry (its own store), then wait for its
/// stream sessions to finish, so that everything the input started has
/// run to its end.
pub fn with_registry<F, Fut>(f: F)
where
    F: FnOnce(Arc<Registry>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    logs();
    runtime().block_on(async {
        let shutdown = CancellationToken::new();
        let registry = Registry::with_metrics(
            config(),
            Arc::new(Store::new()),
            Arc::new(WallClock),
            shutdown.clone(),
            Arc::new(Metrics::new()),
        );
        f(registry.clone()).await;
        // The input's publishers are gone by now: their sessions take the
        // queued events, package them and end (disconnected). Bounded, in
        // case one does not end; then the shutdown ends it.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), registry.drain()).await;
        shutdown.cancel();
        registry.drain().await;
    });
}

/// Most samples one input may push through the packager (keeps an
/// execution short).
pub const MAX_SAMPLES: usize = 3000;

/// The packaging pipeline for demuxed events, as the ingest session runs it
/// minus the timeline: tracks known before the first sample describe the
/// stream, then every sample is pushed and every output drained; each
/// published point's playlists are rendered. Errors are fine; panics are
/// findings. Returns the number of objects produced.
pub fn package(events: Vec<DemuxEvent>, config: PackagerConfig) -> usize {
    let mut tracks: Vec<Track> = Vec::new();
    let mut packager: Option<Packager> = None;
    let mut objects = 0;
    let mut samples = 0;
    for e in events {
        match e {
            DemuxEvent::Track(t) => {
                if packager.is_none() {
                    tracks.retain(|o| o.id != t.id);
                    tracks.push(t);
                }
            }
            DemuxEvent::Sample(s) => {
                samples += 1;
                if samples > MAX_SAMPLES {
                    break;
                }
                if packager.is_none() {
                    let Some(p) = start(&tracks, config.clone()) else { return objects };
                    packager = Some(p);
                }
                let Some(p) = packager.as_mut() else { return objects };
                push(p, s, &mut objects);
            }
        }
    }
    if let Some(p) = packager.as_mut() {
        p.finish();
        objects += drain(p);
    }
    objects
}

/// A packager for `tracks` (at most one video and one audio, as the
/// session keeps them).
pub fn start(tracks: &[Track], config: PackagerConfig) -> Option<Packager> {
    let mut tracks: Vec<Track> = tracks.to_vec();
    tracks.sort_by_key(|t| t.id);
    for kind in [TrackKind::Video, TrackKind::Audio] {
        let mut seen = false;
        tracks.retain(|t| t.kind() != kind || !std::mem::replace(&mut seen, true));
    }
    let desc = StreamDescription { name: "fuzz/stream".into(), tracks, program_date_time_base_ms: 0 };
    Packager::new(desc, config).ok()
}

/// Push one sample (if its track is packaged) and drain the outputs.
pub fn push(p: &mut Packager, s: Sample, objects: &mut usize) {
    if p.description().track(s.track).is_some() {
        let _ = p.push(s);
        *objects += drain(p);
    }
}

/// Drain the outputs, rendering each published point's playlists (full
/// and delta) as the delivery layer does.
pub fn drain(p: &mut Packager) -> usize {
    let mut n = 0;
    let mut points: Vec<(TrackId, lockstep_packager::Point)> = Vec::new();
    while let Some(o) = p.poll_output() {
        match o {
            Output::Object(_) => n += 1,
            Output::Published { track, point, .. } => points.push((track, point)),
            Output::Retire(_) | Output::Event(_) => {}
        }
    }
    for (track, point) in points {
        let _ = p.render_llhls_playlist(track, point, false);
        let _ = p.render_llhls_playlist(track, point, true);
    }
    n
}

/// The packager configuration of the pipeline targets: LL-HLS and HLS,
/// short segments so that small inputs reach several of them.
pub fn packager_config() -> PackagerConfig {
    PackagerConfig {
        llhls: Some(lockstep_packager::LlHlsConfig {
            segment_duration_ms: 1000,
            part_duration_ms: 200,
            part_hold_back_ms: 600,
            segment_count: 4,
        }),
        hls: Some(lockstep_packager::HlsConfig { segment_duration_ms: 1000, segment_count: 4 }),
        ..PackagerConfig::default()
    }
}

/// Demuxed events of a golden input (the first `max_samples` samples).
pub fn golden_events(flv: &[u8], max_samples: usize) -> Vec<DemuxEvent> {
    let buf = bytes::Bytes::copy_from_slice(flv);
    let tags = lockstep_packager::flv::read_flv_file(&buf, "golden").expect("a valid golden FLV");
    let mut d = lockstep_packager::flv::FlvDemuxer::new("golden");
    let mut events = Vec::new();
    let mut samples = 0;
    for t in tags {
        for e in d.push(t.tag_type, t.timestamp_ms, &t.data).expect("a valid golden FLV") {
            if matches!(e, DemuxEvent::Sample(_)) {
                samples += 1;
                if samples > max_samples {
                    return events;
                }
            }
            events.push(e);
        }
    }
    events
}

/// The golden input with video and audio (tests/ and golden/ use it too).
pub const GOLDEN_FLV: &[u8] = include_bytes!("../../golden/avc30_gop1/input.flv");

/// A store holding live streams `app/live` and `keyed/live`, each the
/// first five seconds of [`GOLDEN_FLV`] packaged as the ingest session
/// stores them: objects under their names, and each rendition's playlists
/// (full and delta) at every published point, so that blocking requests
/// find both published and future points.
pub fn live_store() -> Arc<Store> {
    use lockstep::store::{Obj, StreamInfo, StreamKey};
    let store = Arc::new(Store::new());
    let config = config();
    for app in ["app", "keyed"] {
        let a = config.app(app).expect("the fuzz configuration has the app");
        let l = a.llhls.as_ref().expect("LL-HLS is configured");
        let pc = PackagerConfig {
            llhls: Some(lockstep_packager::LlHlsConfig {
                segment_duration_ms: l.segment_duration_ms,
                part_duration_ms: l.chunk_duration_ms,
                part_hold_back_ms: l.part_hold_back_ms,
                segment_count: l.segment_count,
            }),
            hls: a.hls.as_ref().map(|h| lockstep_packager::HlsConfig {
                segment_duration_ms: h.segment_duration_ms,
                segment_count: h.segment_count,
            }),
            ..PackagerConfig::default()
        };
        let events = golden_events(GOLDEN_FLV, 5 * 30 + 5 * 44);
        let mut tracks = Vec::new();
        let mut samples = Vec::new();
        for e in events {
            match e {
                DemuxEvent::Track(t) => tracks.push(t),
                DemuxEvent::Sample(s) => samples.push(s),
            }
        }
        let mut p = start(&tracks, pc).expect("the golden stream packages");
        let st = store.open(&StreamKey { app: app.into(), stream: "live".into() });
        if let Some(x) = p.llhls_params() {
            let info = StreamInfo { target_duration_s: x.target_duration_s, part_target_ms: x.part_target_ms };
            st.update(|i| i.info = info);
        }
        for s in samples {
            let _ = p.push(s);
            let labels = p.renditions();
            while let Some(o) = p.poll_output() {
                match o {
                    Output::Object(o) => {
                        st.update(|i| i.objects.insert(o.name, Obj::new(o.bytes)));
                    }
                    Output::Retire(name) => {
                        st.update(|i| i.objects.remove(&name));
                    }
                    Output::Published { track, point, segment_complete } => {
                        let Some((_, label)) = labels.iter().find(|(t, _)| *t == track) else { continue };
                        let full = p.render_llhls_playlist(track, point, false).map(|t| Obj::new(t.into()));
                        let delta = p.render_llhls_playlist(track, point, true).map(|t| Obj::new(t.into()));
                        let Some(full) = full else { continue };
                        st.update(|i| {
                            let r = i.renditions.entry(label.clone()).or_default();
                            r.playlists.insert(point, (full, delta));
                            if segment_complete {
                                r.last_part_of.insert(point.msn, point.part);
                            }
                            r.last = Some(r.last.map_or(point, |l| l.max(point)));
                        });
                    }
                    Output::Event(_) => {}
                }
            }
        }
    }
    store
}

/// The fuzz targets' bodies (fuzz/fuzz_targets/ calls them; the
/// regression test tests/fuzz_regressions.rs replays crash inputs through them).
pub mod targets {
    /// The `rtmp` target.
    pub mod rtmp {
        use super::super::{peer, with_registry};
        use lockstep::ingest::rtmp;

        /// RTMP ingest: one connection's bytes through the handshake, the bounded
        /// chunk reader, the command checks, rml_rtmp's session, the FLV demuxer
        /// and on through the publisher into a real stream session (timeline,
        /// packager, store).
        ///
        /// Input: a mode byte, then the connection's bytes. Mode bit 7 set: no
        /// handshake, the bytes start at the chunk stream. Bits 0-6: the size of
        /// the reads the bytes arrive in (0: one read of everything).
        pub fn run(data: &[u8]) {
            let Some((&mode, input)) = data.split_first() else { return };
            let handshake = mode & 0x80 == 0;
            let read_size = match usize::from(mode & 0x7f) {
                0 => usize::MAX,
                n => n * 97,
            };
            with_registry(|registry| async move {
                let _ = rtmp::replay(registry, peer(), input, read_size, handshake).await;
            });
        }
    }

    /// The `amf` target.
    pub mod amf {
        use bytes::Bytes;
        use lockstep::ingest::rtmp::check_command;
        use lockstep_packager::flv::{FlvDemuxer, TAG_SCRIPT, TAG_SCRIPT_AMF3};
        use rml_rtmp::rml_amf0;

        /// AMF: RTMP command bodies (AMF0, checked by the RTMP provider before
        /// rml_amf0 parses them, which must then not fail in a way that panics) and
        /// FLV script data (`@setDataFrame`/`onMetaData`, AMF0 and AMF3) as the FLV
        /// demuxer reads it.
        pub fn run(data: &[u8]) {
            if check_command(data).is_ok() {
                // What rml_rtmp's session does with a command that passed.
                let _ = rml_amf0::deserialize(&mut std::io::Cursor::new(data));
            }
            let body = Bytes::copy_from_slice(data);
            let mut d = FlvDemuxer::new("fuzz");
            let _ = d.push(TAG_SCRIPT, 0, &body);
            let _ = d.push(TAG_SCRIPT_AMF3, 0, &body);
        }
    }

    /// The `flv` target.
    pub mod flv {
        use super::super::{package, packager_config};
        use bytes::Bytes;
        use lockstep_packager::flv::{read_flv_file, FlvDemuxer};

        /// FLV files: the container reader, the tag demuxer (AVC/AAC sequence
        /// headers, so also avcC, SPS and AudioSpecificConfig parsing; NAL
        /// conversion; script data), then the demuxed samples through the packager
        /// (fMP4 and MPEG-TS muxers, playlists).
        pub fn run(data: &[u8]) {
            let buf = Bytes::copy_from_slice(data);
            let Ok(tags) = read_flv_file(&buf, "fuzz") else { return };
            let mut d = FlvDemuxer::new("fuzz");
            let mut events = Vec::new();
            for t in tags {
                match d.push(t.tag_type, t.timestamp_ms, &t.data) {
                    Ok(e) => events.extend(e),
                    // The RTMP provider drops the publisher at the first error.
                    Err(_) => break,
                }
            }
            let _ = d.video_config();
            let _ = d.audio_config();
            package(events, packager_config());
        }
    }

    /// The `codec` target.
    pub mod codec {
        use bytes::Bytes;
        use lockstep_packager::codec::{
            nal_type, parse_adts, parse_sps, split_annex_b, split_length_prefixed, to_length_prefixed, AacConfig,
            AvcConfig, NAL_PPS, NAL_SPS,
        };

        /// Codec configuration and framing: avcC, SPS, SPS+PPS sets, Annex B and
        /// length-prefixed NAL splitting, AudioSpecificConfig and ADTS headers.
        /// Checks, besides no panics: Annex B NAL units survive a round trip
        /// through the length-prefixed form; an ADTS header written for a parsed
        /// AudioSpecificConfig parses back to the same configuration.
        pub fn run(data: &[u8]) {
            let buf = Bytes::copy_from_slice(data);

            if let Ok(c) = AvcConfig::from_avcc(data) {
                let _ = c.codec_string();
            }
            let _ = parse_sps(data);

            let nals = split_annex_b(&buf);
            let sps: Vec<Bytes> = nals.iter().filter(|n| nal_type(n) == NAL_SPS).cloned().collect();
            let pps: Vec<Bytes> = nals.iter().filter(|n| nal_type(n) == NAL_PPS).cloned().collect();
            if let Ok(c) = AvcConfig::from_sps_pps(&sps, &pps) {
                let _ = c.codec_string();
            }
            if !nals.is_empty() && nals.iter().all(|n| !n.is_empty()) {
                let lp = to_length_prefixed(&nals);
                assert_eq!(split_length_prefixed(&lp, 4).ok(), Some(nals.clone()), "length-prefixed round trip");
            }
            for len_size in 1..=4 {
                let _ = split_length_prefixed(&buf, len_size);
            }

            if let Ok(c) = AacConfig::from_asc(data) {
                let _ = c.codec_string();
                let header = c.adts_header(data.len());
                if let Ok(h) = parse_adts(&header) {
                    let _ = AacConfig::from_adts(&h);
                }
            }
            if let Ok(h) = parse_adts(data) {
                if let Ok(c) = AacConfig::from_adts(&h) {
                    let _ = c.codec_string();
                }
            }
        }
    }

    /// The `ts_demux` target.
    pub mod ts_demux {
        use super::super::{package, packager_config};
        use lockstep_packager::ts_demux::TsDemuxer;
        use lockstep_packager::ts_inspect::summarize_ts;

        /// MPEG-TS: packets, PAT/PMT sections, PES reassembly, H.264 access units
        /// and ADTS frames (so SPS/PPS and ADTS parsing), in reads of a chosen
        /// size; the TS inspector; then the samples through the packager.
        ///
        /// Input: a mode byte (the read size: 1 + mode * 47 bytes; 0: everything
        /// at once), then the stream. Checks the demuxer's contract that an error
        /// is followed by a successful call (the ingest relies on it).
        pub fn run(data: &[u8]) {
            let Some((&mode, input)) = data.split_first() else { return };
            let read = if mode == 0 { usize::MAX } else { 1 + usize::from(mode) * 47 };
            let mut d = TsDemuxer::new("fuzz");
            let mut events = Vec::new();
            for chunk in input.chunks(read.min(input.len().max(1))) {
                match d.push(chunk) {
                    Ok(e) => events.extend(e),
                    Err(_) => match d.push(&[]) {
                        Ok(e) => events.extend(e),
                        Err(e) => panic!("two errors in a row: {e}"),
                    },
                }
            }
            match d.finish() {
                Ok(e) => events.extend(e),
                Err(_) => match d.finish() {
                    Ok(e) => events.extend(e),
                    Err(e) => panic!("two errors in a row at the end: {e}"),
                },
            }
            let _ = (d.dropped(), d.skipped_bytes(), d.stream_pids());
            if let Ok(s) = summarize_ts(input) {
                let _ = s.to_string();
            }
            package(events, packager_config());
        }
    }

    /// The `mpegts_udp` target.
    pub mod mpegts_udp {
        use super::super::{peer, with_registry};
        use lockstep::ingest::mpegts;
        use lockstep::store::StreamKey;

        /// MPEG-TS over UDP ingest: datagrams into the UDP provider's port
        /// handling (publish, the TS feed and its error policy) and on through a
        /// real stream session (timeline, packager, store).
        ///
        /// Input: a mode byte (datagram size: 188 * (1 + mode % 8) bytes, the
        /// usual 1316 for 6), then the stream.
        pub fn run(data: &[u8]) {
            let Some((&mode, input)) = data.split_first() else { return };
            let size = 188 * (1 + usize::from(mode % 8));
            with_registry(|registry| async move {
                let key = StreamKey { app: "app".into(), stream: "stream".into() };
                mpegts::replay(registry, key, peer(), input.chunks(size)).await;
            });
        }
    }

    /// The `srt` target.
    pub mod srt {
        use lockstep::ingest::srt::{inspect, parse_stream_id, Verdict};

        /// SRT: the stream id a caller sends (`#!::r=app/stream,m=publish` and the
        /// plain `app/stream` forms, percent-decoding) and the relay's guard over
        /// raw datagrams: whatever the guard passes must parse in srt-protocol
        /// without a panic.
        pub fn run(data: &[u8]) {
            let _ = parse_stream_id(&String::from_utf8_lossy(data));
            if !matches!(inspect(data), Verdict::Drop(_)) {
                let _ = srt_protocol::packet::Packet::parse(&mut &data[..], false);
                let _ = srt_protocol::packet::Packet::parse(&mut &data[..], true);
            }
        }
    }

    /// The `config` target.
    pub mod config {

        /// Server.xml: XML scanning, `${env:...}` substitution, deserialization and
        /// validation into the configuration types.
        pub fn run(data: &[u8]) {
            let Ok(xml) = std::str::from_utf8(data) else { return };
            let env = |name: &str| match name {
                "LOCKSTEP_RTMP_PORT" => Some("1935".to_string()),
                "EMPTY" => Some(String::new()),
                _ => None,
            };
            if let Ok((config, warnings)) = lockstep::config::parse_str(xml, &env) {
                for w in &warnings {
                    let _ = w.to_string();
                }
                let _ = config.app("app");
            }
        }
    }

    /// The `http` target.
    pub mod http {
        use std::sync::OnceLock;

        use super::super::{config, live_store};
        use axum::body::Body;
        use axum::http::{HeaderValue, Method, Request};
        use lockstep::http::{router, HttpState};
        use tower::ServiceExt;

        fn runtime() -> &'static tokio::runtime::Runtime {
            static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
            RT.get_or_init(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .start_paused(true)
                    .build()
                    .expect("a runtime")
            })
        }

        fn state() -> HttpState {
            static STATE: OnceLock<HttpState> = OnceLock::new();
            STATE.get_or_init(|| HttpState::new(live_store(), config())).clone()
        }

        /// LL-HLS delivery: request paths (`/{app}/{stream}/{name}`, name and part
        /// name parsing), the `_HLS_msn`/`_HLS_part`/`_HLS_skip` directives and
        /// blocking reloads, session keys (`?session=` on an OriginMode false
        /// application), Range, Accept-Encoding (gzip q-values) and Origin (CORS)
        /// headers, against a store holding two live streams. Time is paused and
        /// advances when the server waits, so held requests end at once.
        ///
        /// Input: lines (`\n`): the request target (path and query), Range,
        /// Accept-Encoding, Origin, and the method (GET, HEAD, OPTIONS or POST by
        /// the first byte).
        pub fn run(data: &[u8]) {
            let mut lines = data.split(|b| *b == b'\n');
            let target = lines.next().unwrap_or_default();
            let headers: Vec<&[u8]> = lines.by_ref().take(3).collect();
            let method = match lines.next().and_then(|l| l.first()) {
                Some(b'H') => Method::HEAD,
                Some(b'O') => Method::OPTIONS,
                Some(b'P') => Method::POST,
                _ => Method::GET,
            };
            let Ok(target) = std::str::from_utf8(target) else { return };
            let mut req = Request::builder().method(method).uri(target);
            for (name, value) in ["range", "accept-encoding", "origin"].iter().zip(&headers) {
                if let Ok(v) = HeaderValue::from_bytes(value) {
                    req = req.header(*name, v);
                }
            }
            let Ok(req) = req.body(Body::empty()) else { return };
            let st = state();
            let held = st.held.clone();
            runtime().block_on(async move {
                let response = router(st).oneshot(req).await.expect("the router is infallible");
                let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
            });
            assert_eq!(held.load(std::sync::atomic::Ordering::SeqCst), 0, "a held request was not released");
        }
    }

    /// The `peer` target.
    pub mod peer {
        use std::sync::OnceLock;

        use super::super::{drain, golden_events, packager_config, push, start, GOLDEN_FLV};
        use lockstep::peer::{parse_head, parse_response, PeerStream, PeerTime};
        use lockstep_packager::demux::DemuxEvent;
        use lockstep_packager::{Anchor, ExportedHistory, Sample, Start, Track};

        fn golden() -> &'static (Vec<Track>, Vec<Sample>) {
            static G: OnceLock<(Vec<Track>, Vec<Sample>)> = OnceLock::new();
            G.get_or_init(|| {
                let mut tracks = Vec::new();
                let mut samples = Vec::new();
                for e in golden_events(GOLDEN_FLV, 3 * 30 + 3 * 44) {
                    match e {
                        DemuxEvent::Track(t) => tracks.push(t),
                        DemuxEvent::Sample(s) => samples.push(s),
                    }
                }
                (tracks, samples)
            })
        }

        /// Peer link: HTTP responses from the peer (head, Content-Length or
        /// chunked body), the JSON stream state (PeerStream: anchor, keyframes,
        /// playlist history), and what a joining node does with it: a packager
        /// joined on the peer's anchor, fed the golden stream, imports the peer's
        /// history and renders its playlists at every point.
        pub fn run(data: &[u8]) {
            let _ = parse_head(data);
            let body = match parse_response(data) {
                Some((_, body)) => body,
                None => data.to_vec(),
            };
            let _ = serde_json::from_slice::<PeerTime>(&body);
            let Ok(peer) = serde_json::from_slice::<PeerStream>(&body) else { return };
            let (tracks, samples) = golden();
            let joined = peer.anchor.map(Anchor::from);
            let mut config = packager_config();
            if let Some(a) = joined {
                config.start = Start::Joined;
                config.anchor = a;
            }
            let Some(mut p) = start(tracks, config) else { return };
            let mut objects = 0;
            for s in samples {
                push(&mut p, s.clone(), &mut objects);
            }
            let _ = p.import_history(&ExportedHistory::from(&peer.history));
            let mine = p.export_history();
            for (track, entries) in &mine.llhls {
                for e in entries.iter().take(64) {
                    for k in 0..(e.parts.len() as u32).min(64) {
                        let pt = lockstep_packager::Point { msn: e.msn, part: k };
                        let _ = p.render_llhls_playlist(*track, pt, false);
                        let _ = p.render_llhls_playlist(*track, pt, true);
                    }
                }
            }
            let _ = p.first_segments();
            for s in samples.iter().take(30) {
                let mut s = s.clone();
                s.dts += 90_000 * 3;
                s.pts += 90_000 * 3;
                push(&mut p, s, &mut objects);
            }
            p.finish();
            drain(&mut p);
        }
    }
}
