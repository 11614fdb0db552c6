//! The packager: samples in, named objects out.

use std::collections::{BTreeMap, VecDeque};

use bytes::{Bytes, BytesMut};

use crate::codec::AAC_FRAME_SAMPLES;
use crate::fmp4::{self, FragSample};
use crate::grid::{Chunk, GridAnchor, GridNote, LaneConfig, SegmentGrid, Segmenter, Start};
use crate::media::{CodecConfig, Sample, StreamDescription, Timescale, Track, TrackId, TrackKind};
use crate::playlist::{self, History, LlHlsParams, LlHlsView, PartEntry, Point, SegmentEntry};
use crate::ts_mux;

/// LL-HLS output settings (OvenMediaEngine's `Publishers/LLHLS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LlHlsConfig {
    /// SegmentDuration.
    pub segment_duration_ms: u32,
    /// ChunkDuration: the part target.
    pub part_duration_ms: u32,
    /// PartHoldBack: at least 3 x ChunkDuration.
    pub part_hold_back_ms: u32,
    /// SegmentCount: complete segments in the playlist window.
    pub segment_count: u32,
}

/// Classic HLS output settings (`Publishers/HLS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HlsConfig {
    pub segment_duration_ms: u32,
    pub segment_count: u32,
}

/// Where a stream's timeline stands: the grid phase and numbering base of
/// each output, and the discontinuity sequence. A fresh stream needs none
/// (the first keyframe fixes the phase, numbering follows the timeline); a
/// node that joins a live stream takes its peer's ([`Packager::anchor`]) so
/// that it cuts and numbers exactly as the peer does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Anchor {
    pub llhls: Option<GridAnchor>,
    pub hls: Option<GridAnchor>,
    /// EXT-X-DISCONTINUITY-SEQUENCE of the first segment.
    pub discontinuity_sequence: u64,
    /// The configuration version in force on each track (at most one video
    /// and one audio track), so that a joining node names its init segments
    /// as the peer does.
    pub configs: [Option<ConfigVersion>; 2],
}

/// A track's codec configuration version (0 for the stream's first, +1 at
/// each change) and the fingerprint of that configuration
/// ([`config_fingerprint`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigVersion {
    pub track: TrackId,
    pub version: u32,
    pub fingerprint: u32,
}

/// CRC-32/MPEG-2 of the codec configuration record as carried by the
/// source (the avcC body, the AudioSpecificConfig).
pub fn config_fingerprint(c: &CodecConfig) -> u32 {
    match c {
        CodecConfig::H264(a) => ts_mux::crc32_mpeg2(&a.avcc),
        CodecConfig::Aac(a) => ts_mux::crc32_mpeg2(&a.asc),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub llhls: Option<LlHlsConfig>,
    pub hls: Option<HlsConfig>,
    pub start: Start,
    pub anchor: Anchor,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            llhls: Some(LlHlsConfig {
                segment_duration_ms: 6000,
                part_duration_ms: 500,
                part_hold_back_ms: 1500,
                segment_count: 10,
            }),
            hls: Some(HlsConfig { segment_duration_ms: 6000, segment_count: 10 }),
            start: Start::StreamStart,
            anchor: Anchor::default(),
        }
    }
}

/// What an object is, for the store and the delivery layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ObjectKind {
    MasterPlaylist,
    /// A media playlist as of its newest point (replaced on every update).
    MediaPlaylist,
    Init {
        track: TrackId,
    },
    Part {
        track: TrackId,
        msn: u64,
        part: u32,
    },
    Segment {
        track: TrackId,
        msn: u64,
    },
    TsSegment {
        msn: u64,
    },
}

impl ObjectKind {
    /// Playlists change; media objects never do once published.
    pub fn is_immutable(&self) -> bool {
        !matches!(self, ObjectKind::MasterPlaylist | ObjectKind::MediaPlaylist)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Object {
    pub name: String,
    pub kind: ObjectKind,
    pub bytes: Bytes,
}

/// Something about the input that an operator should see. The stream goes
/// on; the server logs and counts these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// No keyframe within tolerance of a segment boundary (the encoder's
    /// keyframe interval is longer than SegmentDuration allows): the segment
    /// was cut at a non-keyframe (`forced`) or at a late keyframe.
    KeyframeIntervalTooLong {
        stream: String,
        format: Format,
        msn: u64,
        dts: i64,
        forced: bool,
    },
    /// A part longer than PART-TARGET (variable frame durations).
    PartOverTarget {
        stream: String,
        track: TrackId,
        msn: u64,
        part: u32,
        duration_ms: i64,
    },
    /// A segment whose EXTINF rounds above TARGETDURATION.
    SegmentOverTarget {
        stream: String,
        format: Format,
        msn: u64,
        duration_ms: i64,
    },
    /// Timestamps jumped forward by more than a segment without a marked
    /// discontinuity; numbering continues by one.
    TimelineGap {
        stream: String,
        format: Format,
        msn: u64,
        dts: i64,
    },
    DroppedSample {
        stream: String,
        track: TrackId,
        dts: i64,
        reason: &'static str,
    },
    /// A track's codec configuration changed: from its next sample (the
    /// next keyframe, for video) a new segment starts with a new init
    /// segment, after an EXT-X-DISCONTINUITY.
    ConfigurationChanged {
        stream: String,
        track: TrackId,
        /// The new configuration's version (names its init segment).
        version: u32,
        from: String,
        to: String,
    },
    /// The MPEG-TS writer rejected a segment's samples; the playlist keeps
    /// the entry (numbering stays contiguous) and the object is missing.
    TsSegmentFailed {
        stream: String,
        msn: u64,
        reason: String,
    },
    /// A part of one rendition has no media (the track had a gap).
    EmptyPart {
        stream: String,
        track: TrackId,
        msn: u64,
        part: u32,
    },
}

/// Which output format an event concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    LlHls,
    Hls,
}

/// One item from [`Packager::poll_output`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Publish (or replace, for playlists) an object.
    Object(Object),
    /// The object left the window: delete it.
    Retire(String),
    Event(Event),
    /// LL-HLS rendition `track` reached `point` (its part and playlist are
    /// published above); `segment_complete` when the part ended its segment.
    /// The delivery layer renders blocking playlists at these points.
    Published {
        track: TrackId,
        point: Point,
        segment_complete: bool,
    },
}

/// The playlist history of a packager's outputs ([`Packager::export_history`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportedHistory {
    /// Per LL-HLS rendition, oldest segment first.
    pub llhls: Vec<(TrackId, Vec<SegmentEntry>)>,
    /// Classic HLS segments, oldest first.
    pub hls: Vec<SegmentEntry>,
}

/// Put the complete `peer` entries that end right before segment `first` in
/// front of `h` (whose own history starts at `first`, or is still empty).
/// Returns how many were added.
fn prepend(h: &mut History, peer: &[SegmentEntry], first: u64) -> usize {
    if h.entries.front().is_some_and(|e| e.msn != first) {
        return 0;
    }
    let older: Vec<&SegmentEntry> = peer.iter().filter(|e| e.msn < first && e.complete).collect();
    // Only a run that is contiguous up to our first segment.
    let mut run = Vec::new();
    let mut want = first;
    for e in older.iter().rev() {
        if e.msn + 1 != want {
            break;
        }
        run.push((*e).clone());
        want = e.msn;
    }
    let n = run.len();
    for e in run {
        h.entries.push_front(e);
    }
    n
}

/// Misuse of the API or configuration the packager cannot work with.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PackagerError {
    #[error("{stream}: no track {track} in the stream description (sample dts {dts})")]
    UnknownTrack { stream: String, track: TrackId, dts: i64 },
    #[error("{stream}: {reason}")]
    Description { stream: String, reason: String },
    #[error("{stream}: invalid configuration: {reason}")]
    Config { stream: String, reason: String },
    #[error("{stream}: finished; no more samples")]
    Finished { stream: String },
}

// ---------------------------------------------------------------------------

struct Rendition {
    /// The configuration of the segment in progress.
    track: Track,
    /// Its generation (index into the track's configurations).
    generation: u32,
    label: String,
    history: History,
    /// Part bytes of the segment in progress, to build the full segment.
    current: Vec<Bytes>,
    /// Published part names per msn, for retirement.
    part_names: BTreeMap<u64, Vec<String>>,
}

struct LlHls {
    cfg: LlHlsConfig,
    params: LlHlsParams,
    segmenter: Segmenter,
    renditions: Vec<Rendition>,
    started: bool,
    disc_seq: u64,
    /// Newest complete msn per track, for retirement.
    parts_keep_segments: u64,
}

impl LlHls {
    /// The media playlist of rendition `ri` as of `at`.
    fn render(&self, ri: usize, at: Point, skip: bool, ended: bool, pdt_base_ms: i64) -> Option<String> {
        let r = self.renditions.get(ri)?;
        let others: Vec<&str> =
            self.renditions.iter().filter(|o| o.track.id != r.track.id).map(|o| o.label.as_str()).collect();
        let view =
            LlHlsView { track: &r.track, history: &r.history, params: &self.params, pdt_base_ms, reports: &others };
        playlist::render_llhls_media(&view, at, skip, ended)
    }
}

struct TsPending {
    chunks: BTreeMap<TrackId, Chunk>,
}

struct Hls {
    cfg: HlsConfig,
    segmenter: Segmenter,
    history: History,
    pending: BTreeMap<u64, TsPending>,
    started: bool,
    disc_seq: u64,
    driver: TrackId,
    /// Configuration generation of each track in the last muxed segment.
    generations: BTreeMap<TrackId, u32>,
}

/// The codec configurations a track went through.
struct TrackConfigs {
    id: TrackId,
    /// Generation -> configuration, the newest few.
    configs: BTreeMap<u32, Track>,
    /// Newest generation pushed with a sample.
    generation: u32,
    /// Version of generation 0 (non-zero for a node that joined after a
    /// change).
    version_base: u32,
    /// A new configuration waiting for the track's next sample.
    pending: Option<Track>,
}

/// Configurations kept per track for segments still in progress.
const CONFIGS_KEPT: usize = 8;

/// A short description of a configuration for logs.
fn describe(c: &CodecConfig) -> String {
    match c {
        CodecConfig::H264(a) => format!("{} {}x{}", a.codec_string(), a.info.width, a.info.height),
        CodecConfig::Aac(a) => format!("{} {} Hz {} ch", a.codec_string(), a.sample_rate, a.channels),
    }
}

/// The deterministic packager for one stream. See the crate documentation
/// for the run loop.
pub struct Packager {
    desc: StreamDescription,
    ll: Option<LlHls>,
    hls: Option<Hls>,
    configs: Vec<TrackConfigs>,
    out: VecDeque<Output>,
    finished: bool,
}

fn default_duration(t: &Track) -> u32 {
    match &t.codec {
        CodecConfig::H264(c) => match c.info.frame_rate {
            Some((num, den)) if num > 0 => {
                Timescale::new(num).map_or(3000, |ts| ts.convert_floor(i64::from(den), t.timescale) as u32)
            }
            _ => t.timescale.get() / 30,
        },
        CodecConfig::Aac(_) => Timescale::new(match &t.codec {
            CodecConfig::Aac(c) => c.sample_rate,
            CodecConfig::H264(_) => 0,
        })
        .map_or(AAC_FRAME_SAMPLES, |sr| sr.convert_floor(i64::from(AAC_FRAME_SAMPLES), t.timescale) as u32),
    }
    .max(1)
}

/// The largest AAC frame duration among `tracks`, in milliseconds (rounded up).
fn audio_frame_ms(tracks: &[&Track]) -> u32 {
    tracks
        .iter()
        .filter_map(|t| match &t.codec {
            CodecConfig::Aac(c) if c.sample_rate > 0 => Some((AAC_FRAME_SAMPLES * 1000).div_ceil(c.sample_rate)),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// The `mfhd` sequence number of a part: a function of its position on the
/// timeline (wrapping), never a counter.
pub fn fragment_sequence(msn: u64, part: u32) -> u32 {
    (msn.wrapping_mul(1024).wrapping_add(u64::from(part)).wrapping_add(1)) as u32
}

impl Packager {
    pub fn new(desc: StreamDescription, config: Config) -> Result<Packager, PackagerError> {
        let stream = desc.name.clone();
        let derr = |reason: &str| PackagerError::Description { stream: stream.clone(), reason: reason.into() };
        let cerr = |reason: String| PackagerError::Config { stream: stream.clone(), reason };
        let videos: Vec<&Track> = desc.tracks.iter().filter(|t| t.kind() == TrackKind::Video).collect();
        let audios: Vec<&Track> = desc.tracks.iter().filter(|t| t.kind() == TrackKind::Audio).collect();
        if videos.len() > 1 || audios.len() > 1 {
            return Err(derr("at most one video and one audio track are supported"));
        }
        let mut ids: Vec<TrackId> = desc.tracks.iter().map(|t| t.id).collect();
        ids.sort();
        ids.dedup();
        if ids.len() != desc.tracks.len() {
            return Err(derr("track ids must be unique"));
        }
        let (driver, followers): (&Track, Vec<&Track>) = match (videos.first(), audios.first()) {
            (Some(v), a) => (*v, a.map(|t| vec![*t]).unwrap_or_default()),
            (None, Some(a)) => (*a, vec![]),
            (None, None) => return Err(derr("a stream needs at least one track")),
        };
        let lane = |t: &Track| (t.id, t.timescale, default_duration(t));
        let follower_lanes: Vec<_> = followers.iter().map(|t| lane(t)).collect();

        let ll = match &config.llhls {
            None => None,
            Some(c) => {
                if c.segment_duration_ms < 500 || c.segment_duration_ms > 60_000 {
                    return Err(cerr(format!("SegmentDuration {} ms: allowed 500..=60000", c.segment_duration_ms)));
                }
                if c.part_duration_ms < 100 || c.part_duration_ms > c.segment_duration_ms {
                    return Err(cerr(format!(
                        "ChunkDuration {} ms: allowed 100 ms ..= SegmentDuration",
                        c.part_duration_ms
                    )));
                }
                if c.part_hold_back_ms < 3 * c.part_duration_ms {
                    return Err(cerr(format!(
                        "PartHoldBack {} ms must be at least 3 x ChunkDuration ({} ms)",
                        c.part_hold_back_ms,
                        3 * c.part_duration_ms
                    )));
                }
                if c.segment_count < 3 {
                    return Err(cerr(format!("SegmentCount {}: at least 3", c.segment_count)));
                }
                // The driving track's parts leave room for one follower frame,
                // so that the follower's parts stay within PART-TARGET too.
                let budget = c.part_duration_ms.saturating_sub(audio_frame_ms(&followers)).max(1);
                let follower_ms = audio_frame_ms(&followers);
                let grid = SegmentGrid {
                    segment_ms: c.segment_duration_ms,
                    part_budget_ms: Some(budget),
                    keyframe_part_min_ms: Some((c.part_duration_ms * 85).div_ceil(100) + follower_ms),
                };
                let td = grid.target_duration_s();
                let window_ms = u64::from(c.segment_count) * u64::from(c.segment_duration_ms);
                let skip_ms = 6 * 1000 * td;
                let params = LlHlsParams {
                    target_duration_s: td,
                    part_target_ms: c.part_duration_ms,
                    part_hold_back_ms: c.part_hold_back_ms,
                    segment_count: c.segment_count,
                    can_skip_until_ms: (window_ms > u64::from(skip_ms)).then_some(skip_ms),
                };
                let mut tracks: Vec<&Track> = vec![driver];
                tracks.extend(followers.iter().copied());
                let renditions = tracks
                    .iter()
                    .map(|t| Rendition {
                        track: (*t).clone(),
                        generation: 0,
                        label: t.label(),
                        history: History::new(),
                        current: Vec::new(),
                        part_names: BTreeMap::new(),
                    })
                    .collect();
                let retention_ms = u64::from(playlist::PART_RETENTION_TARGET_DURATIONS * td * 1000);
                Some(LlHls {
                    cfg: c.clone(),
                    params,
                    segmenter: Segmenter::new(grid, config.start, lane(driver), &follower_lanes, config.anchor.llhls),
                    renditions,
                    started: false,
                    disc_seq: config.anchor.discontinuity_sequence,
                    parts_keep_segments: retention_ms.div_ceil(u64::from(c.segment_duration_ms)) + 2,
                })
            }
        };
        let hls = match &config.hls {
            None => None,
            Some(c) => {
                if c.segment_duration_ms < 500 || c.segment_duration_ms > 60_000 {
                    return Err(cerr(format!("HLS SegmentDuration {} ms: allowed 500..=60000", c.segment_duration_ms)));
                }
                if c.segment_count < 3 {
                    return Err(cerr(format!("HLS SegmentCount {}: at least 3", c.segment_count)));
                }
                let grid =
                    SegmentGrid { segment_ms: c.segment_duration_ms, part_budget_ms: None, keyframe_part_min_ms: None };
                Some(Hls {
                    cfg: c.clone(),
                    segmenter: Segmenter::new(grid, config.start, lane(driver), &follower_lanes, config.anchor.llhls),
                    history: History::new(),
                    pending: BTreeMap::new(),
                    started: false,
                    disc_seq: config.anchor.discontinuity_sequence,
                    driver: driver.id,
                    generations: BTreeMap::new(),
                })
            }
        };
        if ll.is_none() && hls.is_none() {
            return Err(cerr("neither LL-HLS nor HLS output is enabled".into()));
        }
        let configs = desc
            .tracks
            .iter()
            .map(|t| {
                let fp = config_fingerprint(&t.codec);
                let version_base = match config.anchor.configs.iter().flatten().find(|c| c.track == t.id) {
                    Some(c) if c.fingerprint == fp => c.version,
                    Some(c) => c.version + 1,
                    None => 0,
                };
                TrackConfigs {
                    id: t.id,
                    configs: BTreeMap::from([(0, t.clone())]),
                    generation: 0,
                    version_base,
                    pending: None,
                }
            })
            .collect();
        Ok(Packager { desc, ll, hls, configs, out: VecDeque::new(), finished: false })
    }

    /// A new codec configuration for a track of the stream (a new AVC
    /// sequence header, a new AudioSpecificConfig). It takes effect at the
    /// track's next sample: a new segment with a new init segment and an
    /// EXT-X-DISCONTINUITY (see [`grid::Segmenter::push_with`] for where
    /// exactly). Returns whether the configuration differs from the one in
    /// force; an unchanged one is ignored.
    ///
    /// [`grid::Segmenter::push_with`]: crate::grid::Segmenter::push_with
    pub fn push_track(&mut self, track: Track) -> Result<bool, PackagerError> {
        let stream = self.desc.name.clone();
        let Some(tc) = self.configs.iter_mut().find(|c| c.id == track.id) else {
            return Err(PackagerError::UnknownTrack { stream, track: track.id, dts: 0 });
        };
        let current = tc.pending.as_ref().or(tc.configs.get(&tc.generation));
        if let Some(cur) = current {
            if cur.kind() != track.kind() {
                return Err(PackagerError::Description {
                    stream,
                    reason: format!(
                        "track {} changed from {} to {}",
                        track.id,
                        cur.kind().as_str(),
                        track.kind().as_str()
                    ),
                });
            }
            if cur.codec == track.codec && cur.timescale == track.timescale {
                return Ok(false);
            }
        }
        let from = current.map(|c| describe(&c.codec)).unwrap_or_default();
        let version = tc.version_base + tc.generation + 1;
        self.out.push_back(Output::Event(Event::ConfigurationChanged {
            stream,
            track: track.id,
            version,
            from,
            to: describe(&track.codec),
        }));
        tc.pending = Some(track);
        Ok(true)
    }

    /// The configuration of generation `g` of `track`.
    fn config(&self, track: TrackId, g: u32) -> Option<&Track> {
        self.configs.iter().find(|c| c.id == track)?.configs.get(&g)
    }

    /// Version (init segment name) of generation `g` of `track`.
    fn version(&self, track: TrackId, g: u32) -> u32 {
        self.configs.iter().find(|c| c.id == track).map_or(0, |c| c.version_base) + g
    }

    /// The anchor in force: give it to a node that joins this stream. The
    /// grid parts are `None` until the first keyframe.
    pub fn anchor(&self) -> Anchor {
        Anchor {
            llhls: self.ll.as_ref().and_then(|l| l.segmenter.anchor()),
            hls: self.hls.as_ref().and_then(|h| h.segmenter.anchor()),
            discontinuity_sequence: self
                .ll
                .as_ref()
                .map(|l| l.disc_seq)
                .or(self.hls.as_ref().map(|h| h.disc_seq))
                .unwrap_or(0),
            configs: {
                let mut v = [None; 2];
                for (slot, c) in v.iter_mut().zip(&self.configs) {
                    let cfg = c.pending.as_ref().or(c.configs.get(&c.generation));
                    *slot = cfg.map(|t| ConfigVersion {
                        track: c.id,
                        version: c.version_base + c.generation + u32::from(c.pending.is_some()),
                        fingerprint: config_fingerprint(&t.codec),
                    });
                }
                v
            },
        }
    }

    pub fn description(&self) -> &StreamDescription {
        &self.desc
    }

    /// Feed one sample. Samples of one track must come in decode order;
    /// the interleaving of tracks does not affect the output.
    pub fn push(&mut self, sample: Sample) -> Result<(), PackagerError> {
        if self.finished {
            return Err(PackagerError::Finished { stream: self.desc.name.clone() });
        }
        if self.desc.track(sample.track).is_none() {
            return Err(PackagerError::UnknownTrack {
                stream: self.desc.name.clone(),
                track: sample.track,
                dts: sample.dts,
            });
        }
        let mut change = None;
        if let Some(tc) = self.configs.iter_mut().find(|c| c.id == sample.track) {
            if let Some(t) = tc.pending.take() {
                tc.generation += 1;
                change = Some(LaneConfig {
                    generation: tc.generation,
                    timescale: t.timescale,
                    default_duration: default_duration(&t),
                });
                tc.configs.insert(tc.generation, t);
                while tc.configs.len() > CONFIGS_KEPT {
                    tc.configs.pop_first();
                }
            }
        }
        if let Some(ll) = &mut self.ll {
            let step = ll.segmenter.push_with(sample.clone(), change);
            self.handle_ll(step.chunks, step.notes);
        }
        if let Some(hls) = &mut self.hls {
            let step = hls.segmenter.push_with(sample, change);
            self.handle_hls(step.chunks, step.notes, false);
        }
        Ok(())
    }

    /// End of stream: flush the last parts and segments and mark the
    /// playlists ended (EXT-X-ENDLIST).
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if let Some(ll) = &mut self.ll {
            let step = ll.segmenter.finish();
            self.handle_ll(step.chunks, step.notes);
            self.publish_ll_playlists_final();
        }
        if let Some(hls) = &mut self.hls {
            let step = hls.segmenter.finish();
            self.handle_hls(step.chunks, step.notes, true);
        }
    }

    /// Whether [`Packager::finish`] was called.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Next output, in the order produced.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The newest published point of an LL-HLS rendition.
    pub fn last_point(&self, track: TrackId) -> Option<Point> {
        let ll = self.ll.as_ref()?;
        ll.renditions.iter().find(|r| r.track.id == track)?.history.last_point()
    }

    /// The URL label of each LL-HLS rendition, driver first.
    pub fn renditions(&self) -> Vec<(TrackId, String)> {
        self.ll
            .as_ref()
            .map(|ll| ll.renditions.iter().map(|r| (r.track.id, r.label.clone())).collect())
            .unwrap_or_default()
    }

    /// The LL-HLS media playlist of `track` as it was right after part `at`
    /// was published: the same bytes on every node, whenever asked. `None`
    /// if `at` is not published yet or has left the retained history.
    /// `skip` renders the delta update (EXT-X-SKIP) if CAN-SKIP-UNTIL is on.
    pub fn render_llhls_playlist(&self, track: TrackId, at: Point, skip: bool) -> Option<String> {
        let ll = self.ll.as_ref()?;
        let ri = ll.renditions.iter().position(|r| r.track.id == track)?;
        let ended = self.finished && ll.renditions[ri].history.last_point() == Some(at);
        ll.render(ri, at, skip, ended, self.desc.program_date_time_base_ms)
    }

    /// The retained playlist history of every output, for a peer that
    /// joins this stream late (backfill).
    pub fn export_history(&self) -> ExportedHistory {
        ExportedHistory {
            llhls: self
                .ll
                .as_ref()
                .map(|ll| {
                    ll.renditions.iter().map(|r| (r.track.id, r.history.entries.iter().cloned().collect())).collect()
                })
                .unwrap_or_default(),
            hls: self.hls.as_ref().map(|h| h.history.entries.iter().cloned().collect()).unwrap_or_default(),
        }
    }

    /// The first retained segment of the driving LL-HLS rendition and of the
    /// classic HLS output (None while an output has published no segment).
    pub fn first_segments(&self) -> (Option<u64>, Option<u64>) {
        let ll = self.ll.as_ref().and_then(|ll| ll.renditions.first()?.history.entries.front().map(|e| e.msn));
        let hls = self.hls.as_ref().and_then(|h| h.history.entries.front().map(|e| e.msn));
        (ll, hls)
    }

    /// Whether the classic HLS output is off or has published a segment.
    pub fn hls_started(&self) -> bool {
        self.hls.as_ref().is_none_or(|h| !h.history.entries.is_empty())
    }

    /// Take a peer's history of the segments before this packager's own
    /// first segment (a node that joined late backfills its window), so that
    /// its playlists equal the peer's. Entries at or after this packager's
    /// own first segment are ignored (it made those itself); the imported
    /// ones must end right before it. Returns how many segments were taken.
    /// Call it before the first own segment completes a window, typically
    /// right after the first own part is published.
    ///
    /// When classic HLS segments are taken and the classic media playlist
    /// was already published, it is published again (an
    /// [`Output::Object`]): it lists the imported segments only from then
    /// on. LL-HLS playlists are rendered on request
    /// ([`Packager::render_llhls_playlist`]) and need no such output.
    pub fn import_history(&mut self, peer: &ExportedHistory) -> usize {
        let mut taken = 0;
        if let Some(ll) = &mut self.ll {
            // Every rendition starts at the driving rendition's first segment
            // (a follower may not have published its first part yet).
            let first = ll.renditions.first().and_then(|r| r.history.entries.front()).map(|e| e.msn);
            for r in &mut ll.renditions {
                let Some((_, entries)) = peer.llhls.iter().find(|(t, _)| *t == r.track.id) else { continue };
                let Some(first) = first.or(r.history.entries.front().map(|e| e.msn)) else { continue };
                let n = prepend(&mut r.history, entries, first);
                // Imported parts are retired like own ones.
                for e in r.history.entries.iter().take(n) {
                    let names = (0..e.parts.len() as u32)
                        .filter(|k| !e.parts[*k as usize].gap)
                        .map(|k| playlist::part_name(&r.label, e.msn, k))
                        .collect();
                    r.part_names.insert(e.msn, names);
                }
                taken = taken.max(n);
            }
        }
        let mut hls_taken = 0;
        if let Some(h) = &mut self.hls {
            if let Some(first) = h.history.entries.front().map(|e| e.msn) {
                hls_taken = prepend(&mut h.history, &peer.hls, first);
            }
        }
        if hls_taken > 0 {
            if let Some(text) = self.render_hls_playlist() {
                self.out.push_back(Output::Object(Object {
                    name: playlist::HLS_MEDIA.into(),
                    kind: ObjectKind::MediaPlaylist,
                    bytes: Bytes::from(text),
                }));
            }
        }
        taken.max(hls_taken)
    }

    /// The classic HLS media playlist of the live window as it is now (what
    /// the last TS segment's publication carried, or would carry after an
    /// [`Packager::import_history`]).
    fn render_hls_playlist(&self) -> Option<String> {
        let hls = self.hls.as_ref()?;
        let td =
            SegmentGrid { segment_ms: hls.cfg.segment_duration_ms, part_budget_ms: None, keyframe_part_min_ms: None }
                .target_duration_s();
        playlist::render_hls_media(&hls.history, td, hls.cfg.segment_count, self.desc.program_date_time_base_ms, false)
    }

    /// Static LL-HLS playlist parameters (for the delivery layer's limits).
    pub fn llhls_params(&self) -> Option<&LlHlsParams> {
        self.ll.as_ref().map(|l| &l.params)
    }

    // ------------------------------------------------------------ LL-HLS ---

    fn event_from_note(&self, note: GridNote, format: Format) -> Event {
        let stream = self.desc.name.clone();
        match note {
            GridNote::LateKeyframe { msn, dts, forced } => {
                Event::KeyframeIntervalTooLong { stream, format, msn, dts, forced }
            }
            GridNote::TimelineGap { msn, dts } => Event::TimelineGap { stream, format, msn, dts },
            GridNote::DroppedSample { track, dts, reason } => Event::DroppedSample { stream, track, dts, reason },
            GridNote::EmptyFollowerChunk { track, msn, part } => Event::EmptyPart { stream, track, msn, part },
        }
    }

    fn handle_ll(&mut self, chunks: Vec<Chunk>, notes: Vec<GridNote>) {
        for n in notes {
            let e = self.event_from_note(n, Format::LlHls);
            self.out.push_back(Output::Event(e));
        }
        for c in chunks {
            self.ll_chunk(c);
        }
    }

    fn ll_start(&mut self) {
        let Some(ll) = &mut self.ll else { return };
        if ll.started {
            return;
        }
        ll.started = true;
        self.out.push_back(Output::Object(Object {
            name: playlist::LLHLS_MASTER.into(),
            kind: ObjectKind::MasterPlaylist,
            bytes: Bytes::from(playlist::render_llhls_master(&self.desc)),
        }));
        for r in &ll.renditions {
            let base = self.configs.iter().find(|c| c.id == r.track.id).map_or(0, |c| c.version_base);
            self.out.push_back(Output::Object(Object {
                name: playlist::init_name_version(&r.label, base),
                kind: ObjectKind::Init { track: r.track.id },
                bytes: Bytes::from(fmp4::init_segment(&r.track)),
            }));
        }
    }

    /// A rendition reaches a chunk of another configuration: publish its init
    /// segment and the master playlist as of the new configuration.
    fn ll_switch(&mut self, track: TrackId, generation: u32) {
        let Some(cfg) = self.config(track, generation).cloned() else { return };
        let version = self.version(track, generation);
        let Some(ll) = &mut self.ll else { return };
        let Some(r) = ll.renditions.iter_mut().find(|r| r.track.id == track) else { return };
        r.track = cfg;
        r.generation = generation;
        self.out.push_back(Output::Object(Object {
            name: playlist::init_name_version(&r.label, version),
            kind: ObjectKind::Init { track },
            bytes: Bytes::from(fmp4::init_segment(&r.track)),
        }));
        let desc = StreamDescription {
            tracks: self
                .desc
                .tracks
                .iter()
                .map(|t| {
                    ll.renditions.iter().find(|r| r.track.id == t.id).map_or_else(|| t.clone(), |r| r.track.clone())
                })
                .collect(),
            ..self.desc.clone()
        };
        self.out.push_back(Output::Object(Object {
            name: playlist::LLHLS_MASTER.into(),
            kind: ObjectKind::MasterPlaylist,
            bytes: Bytes::from(playlist::render_llhls_master(&desc)),
        }));
    }

    fn ll_chunk(&mut self, c: Chunk) {
        self.ll_start();
        let switch = self
            .ll
            .as_ref()
            .and_then(|ll| ll.renditions.iter().find(|r| r.track.id == c.track))
            .is_some_and(|r| r.generation != c.generation);
        if switch {
            self.ll_switch(c.track, c.generation);
        }
        let init_version = self.version(c.track, c.generation);
        let stream = self.desc.name.clone();
        let pdt_base = self.desc.program_date_time_base_ms;
        let Some(ll) = &mut self.ll else { return };
        let Some(ri) = ll.renditions.iter().position(|r| r.track.id == c.track) else { return };
        if c.starts_segment && c.discontinuity && ri == 0 {
            ll.disc_seq += 1;
        }
        let disc_seq = ll.disc_seq;
        let part_target_ms = ll.params.part_target_ms;
        let td = ll.params.target_duration_s;
        let r = &mut ll.renditions[ri];
        let ts = c.timescale;

        // The part object.
        let gap = c.samples.is_empty();
        if !gap {
            let frag: Vec<FragSample<'_>> = c
                .samples
                .iter()
                .map(|s| FragSample {
                    duration: s.duration,
                    composition_offset: (s.sample.pts - s.sample.dts).clamp(i64::from(i32::MIN), i64::from(i32::MAX))
                        as i32,
                    keyframe: s.sample.keyframe,
                    data: &s.sample.data,
                })
                .collect();
            let base = c.samples.first().map_or(0, |s| s.sample.dts.max(0) as u64);
            let bytes = Bytes::from(fmp4::fragment(&r.track, fragment_sequence(c.msn, c.part), base, &frag));
            let name = playlist::part_name(&r.label, c.msn, c.part);
            r.part_names.entry(c.msn).or_default().push(name.clone());
            r.current.push(bytes.clone());
            self.out.push_back(Output::Object(Object {
                name,
                kind: ObjectKind::Part { track: c.track, msn: c.msn, part: c.part },
                bytes,
            }));
        }
        let duration_ms = ts.convert_ceil(c.duration, Timescale::MILLIS);
        if duration_ms > i64::from(part_target_ms) && !c.ends_segment {
            self.out.push_back(Output::Event(Event::PartOverTarget {
                stream: stream.clone(),
                track: c.track,
                msn: c.msn,
                part: c.part,
                duration_ms,
            }));
        }

        // History.
        if c.starts_segment || r.history.entries.back().is_none_or(|e| e.msn != c.msn) {
            r.history.entries.push_back(SegmentEntry {
                msn: c.msn,
                start: c.start,
                duration: 0,
                discontinuity: c.discontinuity,
                parts: Vec::new(),
                complete: false,
                discontinuity_sequence: disc_seq,
                init_version,
                timescale: ts,
            });
        }
        // The entry was pushed just above if there was none.
        let Some(e) = r.history.entries.back_mut() else { return };
        e.parts.push(PartEntry { duration: c.duration, independent: c.independent(), gap });
        e.duration += c.duration;
        if gap {
            self.out.push_back(Output::Event(Event::EmptyPart {
                stream: stream.clone(),
                track: c.track,
                msn: c.msn,
                part: c.part,
            }));
        }

        let mut retire = Vec::new();
        if c.ends_segment {
            e.complete = true;
            let seg_duration_ms = ts.convert_ceil(e.duration, Timescale::MILLIS);
            let msn = e.msn;
            if seg_duration_ms * 2 >= (2 * i64::from(td) + 1) * 1000 {
                self.out.push_back(Output::Event(Event::SegmentOverTarget {
                    stream: stream.clone(),
                    format: Format::LlHls,
                    msn,
                    duration_ms: seg_duration_ms,
                }));
            }
            let mut seg = BytesMut::with_capacity(r.current.iter().map(|b| b.len()).sum());
            for b in r.current.drain(..) {
                seg.extend_from_slice(&b);
            }
            if !seg.is_empty() {
                self.out.push_back(Output::Object(Object {
                    name: playlist::segment_name(&r.label, msn),
                    kind: ObjectKind::Segment { track: c.track, msn },
                    bytes: seg.freeze(),
                }));
            }
            // Retire: segment objects stay one window beyond the playlist
            // (HLS 6.2.2: available for the segment's duration plus the
            // playlist's); parts stay one retention span beyond theirs.
            let keep_segments = 2 * u64::from(ll.cfg.segment_count) + 1;
            let keep_parts = 2 * ll.parts_keep_segments;
            let keep_history = keep_segments;
            while let Some(front) = r.history.entries.front() {
                if msn >= front.msn + keep_history {
                    let old = front.msn;
                    r.history.entries.pop_front();
                    retire.push(playlist::segment_name(&r.label, old));
                } else {
                    break;
                }
            }
            let old_parts: Vec<u64> = r.part_names.range(..msn.saturating_sub(keep_parts)).map(|(k, _)| *k).collect();
            for k in old_parts {
                if let Some(names) = r.part_names.remove(&k) {
                    retire.extend(names);
                }
            }
        }

        // The current media playlist.
        let at = Point { msn: c.msn, part: c.part };
        if let Some(text) = ll.render(ri, at, false, false, pdt_base) {
            self.out.push_back(Output::Object(Object {
                name: playlist::media_playlist_name(&ll.renditions[ri].label),
                kind: ObjectKind::MediaPlaylist,
                bytes: Bytes::from(text),
            }));
        }
        self.out.push_back(Output::Published { track: c.track, point: at, segment_complete: c.ends_segment });
        for name in retire {
            self.out.push_back(Output::Retire(name));
        }
    }

    fn publish_ll_playlists_final(&mut self) {
        let pdt_base = self.desc.program_date_time_base_ms;
        let Some(ll) = &self.ll else { return };
        for (ri, r) in ll.renditions.iter().enumerate() {
            let Some(at) = r.history.last_point() else { continue };
            if let Some(text) = ll.render(ri, at, false, true, pdt_base) {
                self.out.push_back(Output::Object(Object {
                    name: playlist::media_playlist_name(&r.label),
                    kind: ObjectKind::MediaPlaylist,
                    bytes: Bytes::from(text),
                }));
            }
        }
    }

    // --------------------------------------------------------------- HLS ---

    fn handle_hls(&mut self, chunks: Vec<Chunk>, notes: Vec<GridNote>, finishing: bool) {
        for n in notes {
            let e = self.event_from_note(n, Format::Hls);
            self.out.push_back(Output::Event(e));
        }
        let ntracks = self.ll_track_count();
        let Some(hls) = &mut self.hls else { return };
        for c in chunks {
            hls.pending.entry(c.msn).or_insert_with(|| TsPending { chunks: BTreeMap::new() }).chunks.insert(c.track, c);
        }
        // Mux every segment whose chunks are all in, in msn order. A segment
        // whose follower lags far behind (or at the end) is muxed with what
        // it has.
        while let Some((msn, p)) = self.next_ready_ts(ntracks, finishing) {
            self.mux_ts(msn, p, finishing);
        }
        if finishing {
            let ended = self.hls.as_ref().map(|h| (h.history.clone(), h.cfg.clone()));
            if let Some((history, cfg)) = ended {
                let td = SegmentGrid {
                    segment_ms: cfg.segment_duration_ms,
                    part_budget_ms: None,
                    keyframe_part_min_ms: None,
                }
                .target_duration_s();
                if let Some(text) = playlist::render_hls_media(
                    &history,
                    td,
                    cfg.segment_count,
                    self.desc.program_date_time_base_ms,
                    true,
                ) {
                    self.out.push_back(Output::Object(Object {
                        name: playlist::HLS_MEDIA.into(),
                        kind: ObjectKind::MediaPlaylist,
                        bytes: Bytes::from(text),
                    }));
                }
            }
        }
    }

    fn next_ready_ts(&mut self, ntracks: usize, finishing: bool) -> Option<(u64, TsPending)> {
        let hls = self.hls.as_mut()?;
        let (&msn, p) = hls.pending.iter().next()?;
        let newest = hls.pending.keys().next_back().copied().unwrap_or(msn);
        let ready = p.chunks.len() >= ntracks || finishing || newest >= msn + 3;
        if !ready || (!p.chunks.contains_key(&hls.driver) && !finishing) {
            return None;
        }
        let p = hls.pending.remove(&msn)?;
        Some((msn, p))
    }

    fn ll_track_count(&self) -> usize {
        self.desc.tracks.len().min(2)
    }

    fn mux_ts(&mut self, msn: u64, p: TsPending, finishing: bool) {
        let stream = self.desc.name.clone();
        let pdt_base = self.desc.program_date_time_base_ms;
        // Each track in the configuration of its samples in this segment
        // (or the one of its last segment, if it has none here).
        let owned: Vec<Track> = self
            .desc
            .tracks
            .iter()
            .map(|t| {
                let g = p
                    .chunks
                    .get(&t.id)
                    .map(|c| c.generation)
                    .or_else(|| self.hls.as_ref().and_then(|h| h.generations.get(&t.id).copied()));
                g.and_then(|g| self.config(t.id, g)).cloned().unwrap_or_else(|| t.clone())
            })
            .collect();
        let tracks: Vec<&Track> = owned.iter().collect();
        let Some(hls) = &mut self.hls else { return };
        let Some(driver_chunk) = p.chunks.get(&hls.driver) else { return };
        // A change of any track's configuration is a discontinuity here:
        // the TS segment holds every track, so this is known in time.
        let changed = p.chunks.values().any(|c| hls.generations.get(&c.track).is_some_and(|g| *g != c.generation));
        for c in p.chunks.values() {
            hls.generations.insert(c.track, c.generation);
        }
        if !hls.started || changed {
            hls.started = true;
            let desc = StreamDescription { tracks: owned.clone(), ..self.desc.clone() };
            self.out.push_back(Output::Object(Object {
                name: playlist::HLS_MASTER.into(),
                kind: ObjectKind::MasterPlaylist,
                bytes: Bytes::from(playlist::render_hls_master(&desc)),
            }));
        }
        let discontinuity = driver_chunk.discontinuity || changed;
        if discontinuity {
            hls.disc_seq += 1;
        }
        let samples: Vec<&Sample> = p.chunks.values().flat_map(|c| c.samples.iter().map(|s| &s.sample)).collect();
        match ts_mux::mux_segment(&tracks, &samples) {
            Ok(bytes) => {
                self.out.push_back(Output::Object(Object {
                    name: playlist::ts_segment_name(msn),
                    kind: ObjectKind::TsSegment { msn },
                    bytes,
                }));
            }
            Err(e) => {
                // A sample the TS writer cannot carry: drop the segment's
                // media but keep the numbering (the playlist entry stays,
                // fetching it gives 404).
                self.out.push_back(Output::Event(Event::TsSegmentFailed {
                    stream: stream.clone(),
                    msn,
                    reason: e.to_string(),
                }));
            }
        }
        let ts = driver_chunk.timescale;
        let td =
            SegmentGrid { segment_ms: hls.cfg.segment_duration_ms, part_budget_ms: None, keyframe_part_min_ms: None }
                .target_duration_s();
        let duration_ms = ts.convert_ceil(driver_chunk.duration, Timescale::MILLIS);
        if duration_ms * 2 >= (2 * i64::from(td) + 1) * 1000 {
            self.out.push_back(Output::Event(Event::SegmentOverTarget {
                stream,
                format: Format::Hls,
                msn,
                duration_ms,
            }));
        }
        hls.history.entries.push_back(SegmentEntry {
            msn,
            start: driver_chunk.start,
            duration: driver_chunk.duration,
            discontinuity,
            parts: Vec::new(),
            complete: true,
            discontinuity_sequence: hls.disc_seq,
            init_version: 0,
            timescale: ts,
        });
        let keep = 2 * u64::from(hls.cfg.segment_count) + 1;
        while let Some(front) = hls.history.entries.front() {
            if msn >= front.msn + keep {
                let old = front.msn;
                hls.history.entries.pop_front();
                self.out.push_back(Output::Retire(playlist::ts_segment_name(old)));
            } else {
                break;
            }
        }
        if !finishing {
            if let Some(text) = playlist::render_hls_media(&hls.history, td, hls.cfg.segment_count, pdt_base, false) {
                self.out.push_back(Output::Object(Object {
                    name: playlist::HLS_MEDIA.into(),
                    kind: ObjectKind::MediaPlaylist,
                    bytes: Bytes::from(text),
                }));
            }
        }
    }
}
