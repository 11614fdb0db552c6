//! One live stream: demuxed events in, timeline, packager, store.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use lockstep_packager::demux::DemuxEvent;
use lockstep_packager::{
    Anchor, Config as PackagerConfig, HlsConfig, LlHlsConfig, Output, Packager, Point, Sample, Start,
    StreamDescription, Track, TrackId, TrackKind,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::agree::{Agreement, Decision};
use super::limits::Guards;
use super::{Provider, Registry};
use crate::config::PairRole;
use crate::config::{Application, ProviderSettings, TimestampMode};
use crate::metrics::{EndKind, Metrics, StreamCounters};
use crate::peer::{fingerprint, now_ms, AnchorDto, HistoryDto, PeerClient, PeerError, PeerStream};
use crate::store::{Obj, Store, StreamInfo, StreamKey, StreamState};
use crate::timeline::{Clock, Timeline};
use lockstep_packager::{playlist, ExportedHistory, Timescale};

pub(super) struct SessionContext {
    pub key: StreamKey,
    pub session: u64,
    pub provider: Provider,
    pub peer: SocketAddr,
    pub settings: ProviderSettings,
    pub app: Application,
    pub store: Arc<Store>,
    pub clock: Arc<dyn Clock>,
    pub ended: CancellationToken,
    pub registry: Weak<Registry>,
    pub summary: Arc<StreamSummary>,
    pub metrics: Arc<Metrics>,
    /// The peer link and this node's role, for pairs.
    pub pair: Option<(PeerClient, PairRole)>,
    /// `KeyframeIntervalTooLong` comes with every segment of an encoder
    /// whose GOP does not fit the grid (twice: LL-HLS and HLS): logged at
    /// most once per [`REPEATED_WARNING_EVERY`], with the count.
    pub keyframe_warnings: crate::throttle::Throttle,
}

/// The least time between two log lines of a repeated per-stream warning.
pub const REPEATED_WARNING_EVERY: Duration = Duration::from_secs(10);

/// A silence timer that fires this much later than due means the process
/// was not running (a stall of the host, a debugger): the packets that
/// arrived meanwhile are still in the sockets.
const STALL: Duration = Duration::from_millis(250);

/// After a stall, how long the providers get to deliver what arrived during
/// it before the stream counts as silent.
const STALL_GRACE: Duration = Duration::from_secs(1);

/// What the API shows about a live stream. The registry's live entry holds
/// it; the session fills it in: the tracks when packaging starts, per-track
/// byte totals about once a second (for the measured bitrate). Bytes in and
/// out, and viewers, are in [`StreamCounters`] (atomics).
pub struct StreamSummary {
    pub provider: Provider,
    pub peer: SocketAddr,
    pub timestamp_mode: TimestampMode,
    /// When the publisher was accepted.
    pub created: SystemTime,
    pub started: Instant,
    pub counters: Arc<StreamCounters>,
    /// Ended through the API (not by shutdown).
    deleted: AtomicBool,
    detail: Mutex<Detail>,
}

#[derive(Default)]
struct Detail {
    /// The packaged tracks (empty until packaging starts).
    tracks: Vec<Track>,
    /// Per-track payload byte totals, sampled about once a second, oldest
    /// first, at most [`RATE_HISTORY`] entries.
    history: VecDeque<(Instant, Vec<(TrackId, u64)>)>,
}

/// Byte-total samples kept for the bitrate (about that many seconds).
const RATE_HISTORY: usize = 6;
/// How often the session samples its byte totals.
const RATE_SAMPLE: Duration = Duration::from_secs(1);

impl StreamSummary {
    pub fn new(
        provider: Provider,
        peer: SocketAddr,
        timestamp_mode: TimestampMode,
        counters: Arc<StreamCounters>,
    ) -> StreamSummary {
        let now = Instant::now();
        let mut detail = Detail::default();
        detail.history.push_back((now, Vec::new()));
        StreamSummary {
            provider,
            peer,
            timestamp_mode,
            created: SystemTime::now(),
            started: now,
            counters,
            deleted: AtomicBool::new(false),
            detail: Mutex::new(detail),
        }
    }

    pub fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Relaxed);
    }

    /// The packaged tracks (empty until packaging starts).
    pub fn tracks(&self) -> Vec<Track> {
        self.detail.lock().unwrap_or_else(|e| e.into_inner()).tracks.clone()
    }

    fn set_tracks(&self, tracks: Vec<Track>) {
        self.detail.lock().unwrap_or_else(|e| e.into_inner()).tracks = tracks;
    }

    /// Record the per-track byte totals as of `now` (reuses the oldest
    /// sample's buffer once the history is full).
    fn sample_bytes(&self, now: Instant, totals: &[(TrackId, u64)]) {
        let mut d = self.detail.lock().unwrap_or_else(|e| e.into_inner());
        let mut buf =
            if d.history.len() >= RATE_HISTORY { d.history.pop_front().map(|h| h.1) } else { None }.unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(totals);
        d.history.push_back((now, buf));
    }

    /// Measured bitrate of each track in bits/s over the last few seconds
    /// (0 when nothing arrived lately).
    pub fn bitrates(&self, now: Instant) -> Vec<(TrackId, u64)> {
        let d = self.detail.lock().unwrap_or_else(|e| e.into_inner());
        let (Some((t0, first)), Some((t1, last))) = (d.history.front(), d.history.back()) else {
            return Vec::new();
        };
        let span = t1.saturating_duration_since(*t0).as_secs_f64();
        let stale = now.saturating_duration_since(*t1) > 3 * RATE_SAMPLE;
        last.iter()
            .map(|(id, bytes)| {
                let before = first.iter().find(|(t, _)| t == id).map_or(0, |(_, b)| *b);
                let rate = if stale || span < 0.5 { 0.0 } else { bytes.saturating_sub(before) as f64 * 8.0 / span };
                (*id, rate as u64)
            })
            .collect()
    }
}

/// Samples buffered before the packager starts, at most.
const MAX_PENDING: usize = 4000;
/// The packager starts once both a video and an audio track are configured,
/// or once this much media (by timestamps) has arrived on one track: the
/// decision depends on the media only, so every node makes the same one.
const START_SPAN_MS: i64 = 1000;

#[derive(Debug)]
enum EndReason {
    Silence(u128),
    Disconnected,
    Ended,
    Bad(String),
}

impl std::fmt::Display for EndReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndReason::Silence(ms) => write!(f, "no packet for {ms} ms (PacketSilenceTimeoutMs)"),
            EndReason::Disconnected => f.write_str("publisher disconnected"),
            EndReason::Ended => f.write_str("ended by the server"),
            EndReason::Bad(why) => write!(f, "bad stream: {why}"),
        }
    }
}

pub(super) async fn run(ctx: SessionContext, mut rx: mpsc::Receiver<Vec<DemuxEvent>>) {
    info!(stream = %ctx.key, provider = %ctx.provider, peer = %ctx.peer, mode = ?ctx.settings.timestamp_mode, "stream started");
    let mut state = State::new(&ctx);
    let reason = loop {
        let next = async {
            let Some(t) = ctx.settings.packet_silence_timeout else { return Ok(rx.recv().await) };
            let due = tokio::time::Instant::now() + t;
            match tokio::time::timeout_at(due, rx.recv()).await {
                Ok(got) => Ok(got),
                // Fired late: the whole process stood still past the
                // deadline, so silence is not shown yet. Let the providers
                // read what their sockets hold.
                Err(_) if due.elapsed() > STALL => {
                    warn!(stream = %ctx.key, late_ms = due.elapsed().as_millis() as u64, "the server stalled; checking for input before ending the stream for silence");
                    tokio::time::timeout(STALL_GRACE, rx.recv()).await.map_err(|_| t.as_millis())
                }
                Err(_) => Err(t.as_millis()),
            }
        };
        let got = tokio::select! {
            // An end requested by the server (DELETE, shutdown) wins over the
            // disconnect it causes.
            biased;
            () = ctx.ended.cancelled() => break EndReason::Ended,
            r = next => r,
            ev = state.peer_event() => {
                match ev {
                    PeerEvent::Agreement(answer) => {
                        if let Err(why) = state.on_agreement_answer(&ctx, answer) {
                            break EndReason::Bad(why);
                        }
                    }
                    PeerEvent::Backfill(answer) => state.on_backfill(&ctx, answer),
                }
                continue;
            }
        };
        match got {
            Err(ms) => break EndReason::Silence(ms),
            Ok(None) if ctx.ended.is_cancelled() => break EndReason::Ended,
            Ok(None) => break EndReason::Disconnected,
            Ok(Some(events)) => {
                if let Err(why) = state.handle(&ctx, events) {
                    break EndReason::Bad(why);
                }
            }
        }
    };
    ctx.ended.cancel();
    ctx.metrics.stream_ended(match &reason {
        EndReason::Silence(_) => EndKind::Silence,
        EndReason::Disconnected => EndKind::Disconnected,
        EndReason::Ended if ctx.summary.deleted.load(Ordering::Relaxed) => EndKind::Deleted,
        EndReason::Ended => EndKind::Shutdown,
        EndReason::Bad(_) => EndKind::BadStream,
    });
    if let Some(p) = &mut state.packager {
        p.finish();
    }
    ctx.store.remove_stream(&ctx.key);
    if let Some(r) = ctx.registry.upgrade() {
        r.finished(&ctx.key, ctx.session);
    }
    match &reason {
        EndReason::Bad(_) | EndReason::Silence(_) => {
            warn!(stream = %ctx.key, provider = %ctx.provider, peer = %ctx.peer, reason = %reason, "stream ended")
        }
        _ => info!(stream = %ctx.key, provider = %ctx.provider, peer = %ctx.peer, reason = %reason, "stream ended"),
    }
    // The stream's buffers (samples, objects, queued input) are freed now;
    // hand the memory back to the system rather than leaving it in the
    // allocator's arenas.
    drop(state);
    drop(rx);
    crate::mem::release_freed();
}

struct State {
    tracks: Vec<Track>,
    pending: Vec<Sample>,
    timeline: Timeline,
    packager: Option<Packager>,
    /// The stream's published state (once packaging started).
    published: Option<Arc<StreamState>>,
    keep_segments: u64,
    /// Track ids already warned about (sample for an unannounced track).
    warned: BTreeSet<u32>,
    /// Payload bytes received per track, and when they were last sampled
    /// into the summary.
    track_bytes: Vec<(TrackId, u64)>,
    sampled: Instant,
    /// Pair: the timeline agreement while it is in progress.
    agreement: Option<Agreement>,
    /// Pair: the timeline came from the peer; the packager joins with this
    /// anchor.
    joined: Option<Anchor>,
    /// Pair: backfill from the peer after the first publication.
    backfill: Backfill,
    /// Pair: recent driving-track keyframes (fingerprint, timeline DTS at
    /// 90 kHz) for the peer link.
    keyframes: VecDeque<(String, i64)>,
    started_ms: i64,
    /// The publisher's limits (bitrate, stuck timestamps).
    guards: Guards,
}

enum PeerEvent {
    Agreement(Result<Option<PeerStream>, PeerError>),
    Backfill(Result<Option<PeerStream>, PeerError>),
}

enum Backfill {
    /// Not a pair, or our own timeline.
    No,
    /// Adopted: fetch the peer's history once something is published.
    Due,
    Fetching(tokio::task::JoinHandle<Result<Option<PeerStream>, PeerError>>),
    Done,
}

/// Keyframe fingerprints kept for the peer link.
const KEYFRAMES_KEPT: usize = 64;

fn packager_config(app: &Application, joined: Option<Anchor>) -> PackagerConfig {
    PackagerConfig {
        llhls: app.llhls.as_ref().map(|l| LlHlsConfig {
            segment_duration_ms: l.segment_duration_ms,
            part_duration_ms: l.chunk_duration_ms,
            part_hold_back_ms: l.part_hold_back_ms,
            segment_count: l.segment_count,
        }),
        hls: app
            .hls
            .as_ref()
            .map(|h| HlsConfig { segment_duration_ms: h.segment_duration_ms, segment_count: h.segment_count }),
        start: if joined.is_some() { Start::Joined } else { Start::StreamStart },
        anchor: joined.unwrap_or_default(),
    }
}

impl State {
    fn new(ctx: &SessionContext) -> State {
        let max_jump_ms = ctx.settings.max_timestamp_jump.as_millis().min(i64::MAX as u128) as i64;
        State {
            tracks: Vec::new(),
            pending: Vec::new(),
            timeline: Timeline::new(ctx.settings.timestamp_mode, max_jump_ms, ctx.clock.clone()),
            packager: None,
            published: None,
            keep_segments: ctx.app.llhls.as_ref().map_or(10, |l| u64::from(l.segment_count)) + HISTORY_EXTRA_SEGMENTS,
            warned: BTreeSet::new(),
            track_bytes: Vec::new(),
            sampled: Instant::now(),
            guards: Guards::new(ctx.settings.max_bitrate_kbps, Instant::now()),
            agreement: ctx
                .pair
                .as_ref()
                .map(|(client, role)| Agreement::start(client.clone(), *role, ctx.key.clone(), now_ms())),
            joined: None,
            backfill: Backfill::No,
            keyframes: VecDeque::new(),
            started_ms: now_ms(),
        }
    }

    /// The next answer from the peer link (never, when none is pending).
    async fn peer_event(&mut self) -> PeerEvent {
        let (agreement, backfill) = (&mut self.agreement, &mut self.backfill);
        let agreement = async {
            match agreement {
                Some(a) if !a.is_done() => a.wait().await,
                _ => std::future::pending().await,
            }
        };
        let backfill = async {
            match backfill {
                Backfill::Fetching(h) => match h.await {
                    Ok(r) => r,
                    Err(e) => Err(PeerError::Unreachable { addr: String::new(), why: e.to_string() }),
                },
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            r = agreement => PeerEvent::Agreement(r),
            r = backfill => PeerEvent::Backfill(r),
        }
    }

    fn on_agreement_answer(
        &mut self,
        ctx: &SessionContext,
        answer: Result<Option<PeerStream>, PeerError>,
    ) -> Result<(), String> {
        let Some(a) = &mut self.agreement else { return Ok(()) };
        let decision = if a.matching() { a.on_refetch(answer) } else { a.on_answer(answer) };
        match decision {
            Some(d) => self.settle(ctx, d),
            None => Ok(()),
        }
    }

    /// The timeline is settled: map and package what was held.
    fn settle(&mut self, ctx: &SessionContext, d: Decision) -> Result<(), String> {
        let Some(mut a) = self.agreement.take() else { return Ok(()) };
        let held = a.take_held();
        if let Decision::Adopt { offset_90k, anchor, .. } = d {
            let max_jump_ms = ctx.settings.max_timestamp_jump.as_millis().min(i64::MAX as u128) as i64;
            self.timeline =
                Timeline::with_offset(ctx.settings.timestamp_mode, max_jump_ms, ctx.clock.clone(), offset_90k);
            self.joined = Some(anchor.unwrap_or_default());
            self.backfill = Backfill::Due;
        }
        for (ts, s, _) in held {
            self.process(ctx, ts, s)?;
        }
        Ok(())
    }

    /// Take the peer's history of the segments before our first, re-render
    /// our playlists with it, and fetch the missing objects from the peer.
    fn on_backfill(&mut self, ctx: &SessionContext, answer: Result<Option<PeerStream>, PeerError>) {
        self.backfill = Backfill::Done;
        let (Some((client, _)), Some(p), Some(st)) = (&ctx.pair, &mut self.packager, &self.published) else { return };
        let peer = match answer {
            Ok(Some(peer)) => peer,
            Ok(None) => {
                st.update(|i| i.backfilling = false);
                return warn!(stream = %ctx.key, "backfill: the peer no longer has this stream");
            }
            Err(e) => {
                st.update(|i| i.backfilling = false);
                return warn!(stream = %ctx.key, reason = %e, "backfill: peer unreachable");
            }
        };
        // Our own first segments, before the peer's older ones go in front.
        let (own_ll, own_hls) = p.first_segments();
        let history = ExportedHistory::from(&peer.history);
        let n = p.import_history(&history);
        let mine = p.export_history();
        let labels = p.renditions();
        let can_skip = p.llhls_params().is_some_and(|x| x.can_skip_until_ms.is_some());
        // Playlists as of every imported point (blocking requests may name
        // them), objects to fetch, and our own first segment to check.
        let mut points = Vec::new();
        let mut fetch = Vec::new();
        let mut check = Vec::new();
        for (track, entries) in &mine.llhls {
            let Some((_, label)) = labels.iter().find(|(t, _)| t == track) else { continue };
            for e in entries {
                let names: Vec<String> = std::iter::once(playlist::segment_name(label, e.msn))
                    .chain(
                        (0..e.parts.len() as u32)
                            .filter(|k| !e.parts[*k as usize].gap)
                            .map(|k| playlist::part_name(label, e.msn, k)),
                    )
                    .collect();
                if own_ll.is_some_and(|first| e.msn < first) {
                    // The init segment these segments name: of an older
                    // configuration than ours when the codec configuration
                    // changed before we joined.
                    let init = playlist::init_name_version(label, e.init_version);
                    if !fetch.contains(&init) {
                        fetch.push(init);
                    }
                    fetch.extend(names);
                    for k in 0..e.parts.len() as u32 {
                        let pt = Point { msn: e.msn, part: k };
                        let full = p.render_llhls_playlist(*track, pt, false).map(|t| Obj::new(Bytes::from(t)));
                        let delta = if can_skip {
                            p.render_llhls_playlist(*track, pt, true).map(|t| Obj::new(Bytes::from(t)))
                        } else {
                            None
                        };
                        if let Some(full) = full {
                            let last = (k as usize + 1 == e.parts.len() && e.complete).then_some(e.msn);
                            points.push((label.clone(), pt, full, delta, last));
                        }
                    }
                } else if own_ll == Some(e.msn) && e.complete {
                    check.extend(names);
                }
            }
        }
        for e in &mine.hls {
            if own_hls.is_some_and(|first| e.msn < first) {
                fetch.push(playlist::ts_segment_name(e.msn));
            }
        }
        st.update(|i| {
            for (label, pt, full, delta, last) in points {
                let r = i.renditions.entry(label).or_default();
                r.playlists.insert(pt, (full, delta));
                if let Some(msn) = last {
                    r.last_part_of.insert(msn, pt.part);
                }
            }
        });
        rerender(p, st);
        // The classic HLS media playlist, published again by the import with
        // the imported segments (it is an object, not rendered per point).
        drain(ctx, p, st, self.keep_segments);
        info!(stream = %ctx.key, peer = client.addr(), segments = n, "backfilled the playlist window from the peer");
        let (client, key, st) = (client.clone(), ctx.key.clone(), st.clone());
        tokio::spawn(async move {
            let mut got = 0usize;
            for name in &fetch {
                if st.read(|i| i.objects.contains_key(name)) {
                    continue;
                }
                if let Ok((200, body)) = client.get(&format!("/{}/{}/{name}", key.app, key.stream)).await {
                    st.update(|i| i.objects.insert(name.clone(), Obj::new(Bytes::from(body))));
                    got += 1;
                }
            }
            let mut differ = 0usize;
            for name in &check {
                let Some(ours) = st.read(|i| i.objects.get(name).map(|o| o.bytes.clone())) else { continue };
                if let Ok((200, theirs)) = client.get(&format!("/{}/{}/{name}", key.app, key.stream)).await {
                    if theirs != ours.as_ref() {
                        differ += 1;
                        warn!(stream = %key, object = %name, "lockstep failure: this node's object differs from the peer's");
                    }
                }
            }
            st.update(|i| {
                i.peer.lockstep_failures += differ as u64;
                i.backfilling = false;
            });
            info!(stream = %key, fetched = got, of = fetch.len(), checked = check.len(), differ, "backfill done; serving playlists");
        });
    }

    fn handle(&mut self, ctx: &SessionContext, events: Vec<DemuxEvent>) -> Result<(), String> {
        for ev in events {
            match ev {
                DemuxEvent::Track(t) => self.track(ctx, t)?,
                DemuxEvent::Sample(s) => self.sample(ctx, s)?,
            }
        }
        let now = Instant::now();
        if now.saturating_duration_since(self.sampled) >= RATE_SAMPLE {
            self.sampled = now;
            ctx.summary.sample_bytes(now, &self.track_bytes);
        }
        Ok(())
    }

    fn track(&mut self, ctx: &SessionContext, t: Track) -> Result<(), String> {
        match self.tracks.iter_mut().find(|o| o.id == t.id) {
            Some(old) if *old == t => Ok(()),
            Some(old) if self.packager.is_none() => {
                *old = t;
                Ok(())
            }
            Some(old) => {
                // The stream carries on: the packager starts a new segment
                // with a new init segment at the track's next sample.
                let from = describe(old);
                let to = describe(&t);
                *old = t.clone();
                if let Some(p) = &mut self.packager {
                    if p.push_track(t).map_err(|e| e.to_string())? {
                        info!(stream = %ctx.key, track = %old.id, from = %from, to = %to, "codec configuration changed; new init segment and discontinuity");
                        ctx.summary.set_tracks(self.tracks.clone());
                    }
                }
                Ok(())
            }
            None if self.packager.is_none() => {
                self.tracks.push(t);
                Ok(())
            }
            None => {
                if self.warned.insert(t.id.0) {
                    warn!(track = %t.id, "a {} track appeared after the stream started; it is ignored", t.kind().as_str());
                }
                Ok(())
            }
        }
    }

    fn sample(&mut self, ctx: &SessionContext, s: Sample) -> Result<(), String> {
        let n = s.data.len() as u64;
        ctx.summary.counters.bytes_in.fetch_add(n, Ordering::Relaxed);
        self.guards.sample(s.track, s.dts, n)?;
        let Some(track) = self.tracks.iter().find(|t| t.id == s.track) else {
            return Ok(()); // The demuxers announce a track before its samples.
        };
        match self.track_bytes.iter_mut().find(|(id, _)| *id == s.track) {
            Some((_, total)) => *total += n,
            None => self.track_bytes.push((s.track, n)),
        }
        let ts = track.timescale;
        if let Some(a) = &mut self.agreement {
            let video_known = self.tracks.iter().any(|t| t.kind() == TrackKind::Video);
            let driver = track.kind() == TrackKind::Video || !video_known;
            if let Some(d) = a.push(ts, s, driver) {
                self.settle(ctx, d)?;
            }
            return Ok(());
        }
        self.process(ctx, ts, s)
    }

    /// Map one encoder sample onto the timeline and package it.
    fn process(&mut self, ctx: &SessionContext, ts: Timescale, s: Sample) -> Result<(), String> {
        let fingerprint = (ctx.pair.is_some() && s.keyframe && self.is_driver(s.track)).then(|| fingerprint(&s.data));
        let (jumps, src_dts) = (self.timeline.discontinuities(), s.dts);
        let mapped = self.timeline.map(ts, s);
        if self.timeline.discontinuities() > jumps {
            let total = self.timeline.discontinuities();
            self.guards.discontinuity(&ctx.key, mapped.track, src_dts, mapped.dts, total);
        }
        if let Some(f) = fingerprint {
            self.keyframes.push_back((f, ts.convert_floor(mapped.dts, Timescale::MPEG)));
            while self.keyframes.len() > KEYFRAMES_KEPT {
                self.keyframes.pop_front();
            }
        }
        match &mut self.packager {
            Some(p) => {
                if p.description().track(mapped.track).is_some() {
                    p.push(mapped).map_err(|e| e.to_string())?;
                    if let Some(st) = &self.published {
                        let (published, segment) = drain(ctx, p, st, self.keep_segments);
                        self.after_drain(ctx, published, segment);
                    }
                }
            }
            None => {
                self.pending.push(mapped);
                if self.ready_to_start() {
                    self.start(ctx)?;
                }
            }
        }
        Ok(())
    }

    /// Whether `track` drives the grid (video if the stream has video).
    fn is_driver(&self, track: TrackId) -> bool {
        let video = self.tracks.iter().find(|t| t.kind() == TrackKind::Video).map(|t| t.id);
        match video {
            Some(v) => v == track,
            None => self.tracks.iter().any(|t| t.id == track),
        }
    }

    /// Pair bookkeeping after the packager published something: the peer
    /// link's view of this stream, and the backfill once due.
    fn after_drain(&mut self, ctx: &SessionContext, published: bool, segment: bool) {
        let (Some((client, _)), Some(p), Some(st)) = (&ctx.pair, &self.packager, &self.published) else { return };
        if segment || st.read(|i| i.peer.started_ms == 0) {
            let peer = PeerStream {
                adopted: self.joined.is_some(),
                started_ms: self.started_ms,
                offset_90k: self.timeline.offset_90k(),
                anchor: Some(AnchorDto::from(p.anchor())),
                keyframes: self.keyframes.iter().cloned().collect(),
                history: HistoryDto::from(&p.export_history()),
                lockstep_failures: 0,
            };
            st.update(|i| {
                let failures = i.peer.lockstep_failures;
                i.peer = PeerStream { lockstep_failures: failures, ..peer };
            });
        }
        if published && matches!(self.backfill, Backfill::Due) && p.hls_started() {
            let (c, app, stream) = (client.clone(), ctx.key.app.clone(), ctx.key.stream.clone());
            self.backfill = Backfill::Fetching(tokio::spawn(async move { c.stream_state(&app, &stream).await }));
        }
    }

    fn ready_to_start(&self) -> bool {
        let has = |k: TrackKind| self.tracks.iter().any(|t| t.kind() == k);
        if has(TrackKind::Video) && has(TrackKind::Audio) || self.pending.len() >= MAX_PENDING {
            return true;
        }
        self.tracks.iter().any(|t| {
            let mut dts = self.pending.iter().filter(|s| s.track == t.id).map(|s| s.dts);
            match (dts.next(), dts.last()) {
                (Some(a), Some(b)) => {
                    t.timescale.convert_floor(b - a, lockstep_packager::Timescale::MILLIS) >= START_SPAN_MS
                }
                _ => false,
            }
        })
    }

    fn start(&mut self, ctx: &SessionContext) -> Result<(), String> {
        let mut tracks = self.tracks.clone();
        tracks.sort_by_key(|t| t.id);
        let desc = StreamDescription { name: ctx.key.to_string(), tracks, program_date_time_base_ms: 0 };
        let kinds: Vec<&str> = desc.tracks.iter().map(|t| t.kind().as_str()).collect();
        let mut p = Packager::new(desc, packager_config(&ctx.app, self.joined)).map_err(|e| e.to_string())?;
        info!(stream = %ctx.key, tracks = ?kinds, "packaging started");
        ctx.summary.set_tracks(p.description().tracks.clone());
        let st = ctx.store.open(&ctx.key);
        let info = p
            .llhls_params()
            .map(|x| StreamInfo { target_duration_s: x.target_duration_s, part_target_ms: x.part_target_ms });
        let backfilling = self.joined.is_some();
        st.update(|i| {
            i.info = info.unwrap_or_default();
            i.backfilling = backfilling;
        });
        for s in std::mem::take(&mut self.pending) {
            p.push(s).map_err(|e| e.to_string())?;
        }
        let (published, segment) = drain(ctx, &mut p, &st, self.keep_segments);
        self.packager = Some(p);
        self.published = Some(st);
        self.after_drain(ctx, published, segment);
        Ok(())
    }
}

/// A track's codec configuration for logs: codec string, size or rate.
fn describe(t: &Track) -> String {
    match &t.codec {
        lockstep_packager::CodecConfig::H264(c) => format!("{} {}x{}", c.codec_string(), c.info.width, c.info.height),
        lockstep_packager::CodecConfig::Aac(c) => {
            format!("{} {} Hz {} ch", c.codec_string(), c.sample_rate, c.channels)
        }
    }
}

/// Segments of playlist history kept per rendition beyond the window, for
/// blocking requests that name a recent point.
const HISTORY_EXTRA_SEGMENTS: u64 = 4;

/// Apply the packager's output to the stream's state in the store: objects,
/// retirements, and the playlists as of every newly published point.
/// Returns (anything published, a segment completed).
fn drain(ctx: &SessionContext, p: &mut Packager, state: &StreamState, keep_segments: u64) -> (bool, bool) {
    let mut outs = Vec::new();
    while let Some(o) = p.poll_output() {
        outs.push(o);
    }
    if outs.is_empty() {
        return (false, false);
    }
    let labels = p.renditions();
    let can_skip = p.llhls_params().is_some_and(|x| x.can_skip_until_ms.is_some());
    // Hash before taking the lock, and free what leaves the store only after
    // the update: a segment close hashes and retires megabytes, and doing
    // either under the write lock delays the wake-up of held requests.
    let outs: Vec<Result<(String, Obj), Output>> = outs
        .into_iter()
        .map(|o| match o {
            Output::Object(o) => Ok((o.name, Obj::new(o.bytes))),
            other => Err(other),
        })
        .collect();
    // Render outside the lock. The packager publishes a rendition's media
    // playlist as of each point right before the point itself: that is the
    // full playlist as of the point (unless the packager has finished, when
    // the last point's playlist also ends the stream), so it is shared
    // rather than rendered and hashed again.
    let finished = p.is_finished();
    let mut current: Vec<(&str, &Obj)> = Vec::new();
    let mut points = Vec::new();
    for o in &outs {
        match o {
            Ok((name, obj)) => {
                if let Some(c) = current.iter_mut().find(|(n, _)| *n == name) {
                    c.1 = obj;
                } else {
                    current.push((name, obj));
                }
            }
            Err(Output::Published { track, point, segment_complete }) => {
                let Some((_, label)) = labels.iter().find(|(t, _)| t == track) else { continue };
                let name = playlist::media_playlist_name(label);
                let published = current.iter().find(|(n, _)| *n == name).map(|(_, o)| (*o).clone());
                let full = match published {
                    Some(obj) if !finished => Some(obj),
                    _ => p.render_llhls_playlist(*track, *point, false).map(|t| Obj::new(Bytes::from(t))),
                };
                let delta = if can_skip {
                    p.render_llhls_playlist(*track, *point, true).map(|t| Obj::new(Bytes::from(t)))
                } else {
                    None
                };
                if let Some(full) = full {
                    points.push((label.clone(), *point, *segment_complete, full, delta));
                }
            }
            Err(_) => {}
        }
    }
    let result = (!points.is_empty(), points.iter().any(|p| p.2));
    let mut freed: Vec<Obj> = Vec::new();
    let mut old_playlists = Vec::new();
    state.update(|inner| {
        for o in outs {
            match o {
                Ok((name, obj)) => {
                    freed.extend(inner.objects.insert(name, obj));
                }
                Err(Output::Retire(name)) => {
                    freed.extend(inner.objects.remove(&name));
                }
                Err(Output::Object(_)) => {}
                Err(Output::Event(e)) => {
                    ctx.metrics.packager_event(&e);
                    match e {
                        lockstep_packager::Event::DroppedSample { .. } => {
                            debug!(stream = %ctx.key, event = ?e, "packager")
                        }
                        lockstep_packager::Event::KeyframeIntervalTooLong { .. } => {
                            if let Some(due) = ctx.keyframe_warnings.note(std::time::Instant::now()) {
                                warn!(stream = %ctx.key, event = ?e, count = due.count, total = due.total, "packager")
                            }
                        }
                        _ => warn!(stream = %ctx.key, event = ?e, "packager"),
                    }
                }
                Err(Output::Published { .. }) => {}
            }
        }
        for (label, point, complete, full, delta) in points {
            let r = inner.renditions.entry(label).or_default();
            r.playlists.insert(point, (full, delta));
            if complete {
                r.last_part_of.insert(point.msn, point.part);
            }
            r.last = Some(r.last.map_or(point, |l| l.max(point)));
            let oldest = point.msn.saturating_sub(keep_segments);
            let kept = r.playlists.split_off(&Point { msn: oldest, part: 0 });
            old_playlists.push(std::mem::replace(&mut r.playlists, kept));
            r.last_part_of = r.last_part_of.split_off(&oldest);
        }
    });
    drop(freed);
    drop(old_playlists);
    result
}

/// Render every retained point's playlists again (after a backfill changed
/// the history before them).
fn rerender(p: &Packager, state: &StreamState) {
    let can_skip = p.llhls_params().is_some_and(|x| x.can_skip_until_ms.is_some());
    let labels = p.renditions();
    let points: Vec<(String, TrackId, Vec<Point>)> = state.read(|i| {
        labels
            .iter()
            .filter_map(|(t, l)| Some((l.clone(), *t, i.renditions.get(l)?.playlists.keys().copied().collect())))
            .collect()
    });
    let mut fresh = Vec::new();
    for (label, track, pts) in points {
        for pt in pts {
            let full = p.render_llhls_playlist(track, pt, false).map(|t| Obj::new(Bytes::from(t)));
            let delta = if can_skip {
                p.render_llhls_playlist(track, pt, true).map(|t| Obj::new(Bytes::from(t)))
            } else {
                None
            };
            if let Some(full) = full {
                fresh.push((label.clone(), pt, full, delta));
            }
        }
    }
    state.update(|i| {
        for (label, pt, full, delta) in fresh {
            if let Some(r) = i.renditions.get_mut(&label) {
                r.playlists.insert(pt, (full, delta));
            }
        }
    });
}
