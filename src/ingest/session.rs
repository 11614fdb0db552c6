//! One live stream: demuxed events in, timeline, packager, store.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use lockstep_packager::demux::DemuxEvent;
use lockstep_packager::{
    Anchor, Config as PackagerConfig, HlsConfig, LlHlsConfig, Output, Packager, Point, Sample, Start,
    StreamDescription, Track, TrackKind,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{Provider, Registry};
use crate::config::{Application, ProviderSettings};
use crate::store::{Obj, Store, StreamInfo, StreamKey, StreamState};
use crate::timeline::{Clock, Timeline};

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
            match ctx.settings.packet_silence_timeout {
                Some(t) => tokio::time::timeout(t, rx.recv()).await.map_err(|_| t.as_millis()),
                None => Ok(rx.recv().await),
            }
        };
        let got = tokio::select! {
            r = next => r,
            () = ctx.ended.cancelled() => break EndReason::Ended,
        };
        match got {
            Err(ms) => break EndReason::Silence(ms),
            Ok(None) => break EndReason::Disconnected,
            Ok(Some(events)) => {
                if let Err(why) = state.handle(&ctx, events) {
                    break EndReason::Bad(why);
                }
            }
        }
    };
    ctx.ended.cancel();
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
}

fn packager_config(app: &Application) -> PackagerConfig {
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
        start: Start::StreamStart,
        anchor: Anchor::default(),
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
        }
    }

    fn handle(&mut self, ctx: &SessionContext, events: Vec<DemuxEvent>) -> Result<(), String> {
        for ev in events {
            match ev {
                DemuxEvent::Track(t) => self.track(t)?,
                DemuxEvent::Sample(s) => self.sample(ctx, s)?,
            }
        }
        Ok(())
    }

    fn track(&mut self, t: Track) -> Result<(), String> {
        match self.tracks.iter_mut().find(|o| o.id == t.id) {
            Some(old) if *old == t => Ok(()),
            Some(old) if self.packager.is_none() => {
                *old = t;
                Ok(())
            }
            Some(_) => {
                Err(format!("the codec configuration of track {} changed mid-stream; publish it as a new stream", t.id))
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
        let Some(track) = self.tracks.iter().find(|t| t.id == s.track) else {
            return Ok(()); // The demuxers announce a track before its samples.
        };
        let mapped = self.timeline.map(track.timescale, s);
        match &mut self.packager {
            Some(p) => {
                if p.description().track(mapped.track).is_some() {
                    p.push(mapped).map_err(|e| e.to_string())?;
                    if let Some(st) = &self.published {
                        drain(ctx, p, st, self.keep_segments);
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
        let mut p = Packager::new(desc, packager_config(&ctx.app)).map_err(|e| e.to_string())?;
        info!(stream = %ctx.key, tracks = ?kinds, "packaging started");
        let st = ctx.store.open(&ctx.key);
        let info = p
            .llhls_params()
            .map(|x| StreamInfo { target_duration_s: x.target_duration_s, part_target_ms: x.part_target_ms });
        st.update(|i| i.info = info.unwrap_or_default());
        for s in std::mem::take(&mut self.pending) {
            p.push(s).map_err(|e| e.to_string())?;
        }
        drain(ctx, &mut p, &st, self.keep_segments);
        self.packager = Some(p);
        self.published = Some(st);
        Ok(())
    }
}

/// Segments of playlist history kept per rendition beyond the window, for
/// blocking requests that name a recent point.
const HISTORY_EXTRA_SEGMENTS: u64 = 4;

/// Apply the packager's output to the stream's state in the store: objects,
/// retirements, and the playlists as of every newly published point.
fn drain(ctx: &SessionContext, p: &mut Packager, state: &StreamState, keep_segments: u64) {
    let mut outs = Vec::new();
    while let Some(o) = p.poll_output() {
        outs.push(o);
    }
    if outs.is_empty() {
        return;
    }
    let labels = p.renditions();
    let can_skip = p.llhls_params().is_some_and(|x| x.can_skip_until_ms.is_some());
    // Render outside the lock.
    let mut points = Vec::new();
    for o in &outs {
        if let Output::Published { track, point, segment_complete } = o {
            let Some((_, label)) = labels.iter().find(|(t, _)| t == track) else { continue };
            let full = p.render_llhls_playlist(*track, *point, false).map(|t| Obj::new(Bytes::from(t)));
            let delta = if can_skip {
                p.render_llhls_playlist(*track, *point, true).map(|t| Obj::new(Bytes::from(t)))
            } else {
                None
            };
            if let Some(full) = full {
                points.push((label.clone(), *point, *segment_complete, full, delta));
            }
        }
    }
    state.update(|inner| {
        for o in outs {
            match o {
                Output::Object(o) => {
                    inner.objects.insert(o.name, Obj::new(o.bytes));
                }
                Output::Retire(name) => {
                    inner.objects.remove(&name);
                }
                Output::Event(e) => match e {
                    lockstep_packager::Event::DroppedSample { .. } => debug!(stream = %ctx.key, event = ?e, "packager"),
                    _ => warn!(stream = %ctx.key, event = ?e, "packager"),
                },
                Output::Published { .. } => {}
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
            r.playlists = r.playlists.split_off(&Point { msn: oldest, part: 0 });
            r.last_part_of = r.last_part_of.split_off(&oldest);
        }
    });
}
