//! The grid: where segments and parts are cut (contract §4).
//!
//! One track *drives* the cuts: the video track if the stream has one, else
//! the audio track. The other track *follows*: its segment and part
//! boundaries are the driver's, placed at its first sample at or after the
//! driver's boundary time.
//!
//! Segment rule, with segment duration `D`, grid phase `φ` and cell `k` =
//! `[kD + φ, (k+1)D + φ)`:
//! - The phase is where the stream's first keyframe falls within a segment
//!   duration (`t mod D`), so that an encoder whose keyframe interval divides
//!   `D` has a keyframe on every grid line whatever its timestamp offset. A
//!   packager that joins a stream is given the phase (and base) in a
//!   [`GridAnchor`] by its peer; without one it takes its own first keyframe.
//!   After a discontinuity the phase is taken again from the keyframe that
//!   starts the new segment.
//! - A segment is cut at the first keyframe at or after the next grid line
//!   `kD + φ`, if it arrives before `kD + φ + W` (the *tolerance*, see
//!   [`SegmentGrid::tolerance_ms`]).
//! - If no keyframe arrives in that window, the segment is cut anyway at the
//!   first sample at or after `kD + φ + W` (a *forced* cut, reported as an
//!   event): this keeps every EXTINF within TARGETDURATION and the numbering
//!   contiguous when an encoder's keyframe interval is longer than `D`.
//! - The media sequence number of the segment in cell `k` is `k + base`
//!   (`base` is 0 unless a timeline discontinuity or gap moved it), so
//!   numbers follow the timeline: `floor((t - φ) / D)`.
//! - A packager that did not see the stream start (see [`Start`]) starts at the
//!   first grid line after its first sample, so its first segment is a whole
//!   one and identical to the same segment of a packager that saw the start.
//!
//! Part rule, with part budget `B`: a part is cut before sample `s` when the
//! part would otherwise reach past `B`, predicting `s`'s duration from the
//! previous sample: `(dts(s) - part_start) + (dts(s) - dts(prev)) > B`.
//! The grid restarts at every segment start, and at a keyframe inside a
//! segment when the running part is already long enough to stand as a part
//! (at least 85 % of PART-TARGET plus one follower frame), so that players
//! can start at scene cuts (INDEPENDENT=YES).
//!
//! Every decision is a function of sample timestamps and keyframe flags in
//! decode order; the interleaving of tracks never matters, because a
//! follower sample is only placed once the driver has passed its time.

use std::collections::VecDeque;

use crate::media::{MediaTime, Sample, Timescale, TrackId};

/// Where a packager starts publishing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The packager sees the stream from its first sample: the first segment
    /// starts at the first keyframe (it may be shorter than `D`).
    StreamStart,
    /// The packager joins a stream already in progress (a restarted node):
    /// nothing is published before the first whole segment.
    Joined,
}

/// Grid parameters in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentGrid {
    pub segment_ms: u32,
    /// Part budget for the driving track; `None` for no parts (classic HLS).
    pub part_budget_ms: Option<u32>,
    /// A keyframe inside a segment starts a new (independent) part when the
    /// running part is at least this long, so that it is a valid part on
    /// its own. `None`: parts never cut at keyframes.
    pub keyframe_part_min_ms: Option<u32>,
}

impl SegmentGrid {
    /// EXT-X-TARGETDURATION: the segment duration plus 250 ms, rounded to
    /// the nearest second (at least 1). Since the HLS rule compares the
    /// *rounded* EXTINF with it, a segment may run at least 250 ms past `D`
    /// before breaking it, and 2.002 s segments (29.97 fps, 60-frame GOP)
    /// keep a target duration of 2.
    pub fn target_duration_s(&self) -> u32 {
        ((self.segment_ms + 750) / 1000).max(1)
    }

    /// How long after a grid line a keyframe may arrive and still start the
    /// segment. Half of the slack that EXTINF rounding leaves (a segment may
    /// last up to TARGETDURATION + 0.5 s), at most half a segment.
    pub fn tolerance_ms(&self) -> u32 {
        let slack = self.target_duration_s() * 1000 + 500 - self.segment_ms;
        (slack / 2).min(self.segment_ms / 2)
    }
}

/// Where a grid stands: the phase of its lines and the numbering base. Two
/// segmenters with the same anchor cut at the same samples and give them the
/// same numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct GridAnchor {
    /// Offset of the grid lines from multiples of `D`, in driving-track
    /// ticks, in `[0, D)`.
    pub phase: i64,
    /// msn = cell + base.
    pub msn_base: i64,
}

/// A sample with its duration, ready for a container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedSample {
    pub sample: Sample,
    pub duration: u32,
}

/// A new codec configuration of a track, pushed with its first sample
/// ([`Segmenter::push_with`]). Samples from that one on carry timestamps in
/// `timescale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaneConfig {
    /// Counts the track's configurations (0 for the one it started with).
    pub generation: u32,
    pub timescale: Timescale,
    pub default_duration: u32,
}

/// A finished run of one track's samples between two boundaries: a part (or,
/// without parts, a whole segment) of one track.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    pub track: TrackId,
    pub msn: u64,
    /// Part index within the segment (0 without parts).
    pub part: u32,
    /// First chunk of its segment.
    pub starts_segment: bool,
    /// Last chunk of its segment.
    pub ends_segment: bool,
    /// The segment begins after a timeline discontinuity or at a codec
    /// configuration change of the driving track.
    pub discontinuity: bool,
    /// The track configuration ([`LaneConfig::generation`]) of the samples.
    pub generation: u32,
    /// Timescale of `start`, `duration` and the samples' timestamps.
    pub timescale: Timescale,
    /// Timeline position of the boundary that opened the chunk, in this
    /// track's timescale (the first sample's DTS for non-empty chunks).
    pub start: i64,
    /// Duration in this track's ticks (sum of sample durations; for an empty
    /// follower chunk, the driver's boundary distance).
    pub duration: i64,
    pub samples: Vec<TimedSample>,
}

impl Chunk {
    pub fn independent(&self) -> bool {
        self.samples.first().is_some_and(|s| s.sample.keyframe)
    }
}

/// Something the grid noticed about the input. Not an error: the stream goes
/// on. The packager turns these into [`crate::Event`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GridNote {
    /// No keyframe within tolerance after a grid line: the segment was cut at
    /// a non-keyframe (`forced`), or at a late keyframe.
    LateKeyframe { msn: u64, dts: i64, forced: bool },
    /// Timestamps jumped by more than a segment without a discontinuity
    /// mark; numbering continues by one (the base moved).
    TimelineGap { msn: u64, dts: i64 },
    /// A sample whose DTS does not advance (without a discontinuity mark),
    /// or is negative: dropped.
    DroppedSample { track: TrackId, dts: i64, reason: &'static str },
    /// A follower boundary with no follower samples.
    EmptyFollowerChunk { track: TrackId, msn: u64, part: u32 },
}

#[derive(Clone, Debug)]
struct Boundary {
    /// Driver DTS of the first sample of the new chunk.
    time: MediaTime,
    msn: u64,
    part: u32,
    segment_start: bool,
    discontinuity: bool,
    /// The segment starts at a codec configuration change of the driver.
    config: bool,
}

#[derive(Debug)]
struct OpenChunk {
    msn: u64,
    part: u32,
    starts_segment: bool,
    discontinuity: bool,
    config_boundary: bool,
    generation: u32,
    start: i64,
    samples: Vec<Sample>,
}

#[derive(Debug)]
struct Lane {
    track: TrackId,
    timescale: Timescale,
    open: Option<OpenChunk>,
    last_dts: Option<i64>,
    last_duration: Option<u32>,
    default_duration: u32,
    /// Configuration generation of the samples being placed.
    generation: u32,
    /// Followers: samples waiting for the driver to pass their time, with
    /// the configuration change they start and their timescale.
    pending: VecDeque<(Sample, Option<LaneConfig>, Timescale)>,
    /// Followers: timescale of the newest pushed sample.
    push_timescale: Timescale,
    /// Followers: timescale of the samples being placed (differs from
    /// `timescale` while a change waits for a segment boundary).
    in_timescale: Timescale,
    /// Followers: a configuration change waiting for the next segment
    /// boundary; samples until then are dropped.
    deferred: Option<LaneConfig>,
    /// Followers: the next boundary (absolute index) to consume.
    next_boundary: u64,
}

impl Lane {
    fn new(track: TrackId, timescale: Timescale, default_duration: u32) -> Lane {
        Lane {
            track,
            timescale,
            open: None,
            last_dts: None,
            last_duration: None,
            default_duration,
            generation: 0,
            pending: VecDeque::new(),
            push_timescale: timescale,
            in_timescale: timescale,
            deferred: None,
            next_boundary: 0,
        }
    }

    /// Take a new configuration: timestamps kept are converted to its
    /// timescale.
    fn switch(&mut self, c: LaneConfig) {
        if c.timescale != self.timescale {
            self.last_dts = self.last_dts.map(|d| self.timescale.convert_floor(d, c.timescale));
            self.last_duration =
                self.last_duration.map(|d| self.timescale.convert_floor(i64::from(d), c.timescale).max(1) as u32);
        }
        self.timescale = c.timescale;
        self.in_timescale = c.timescale;
        self.default_duration = c.default_duration;
        self.generation = c.generation;
        self.deferred = None;
    }

    /// Close the open chunk. `next_dts` is the DTS of the first sample after
    /// it (None at the end of the stream or across a discontinuity).
    fn close(&mut self, next_dts: Option<i64>, ends_segment: bool, boundary_duration: i64) -> Option<Chunk> {
        let open = self.open.take()?;
        let n = open.samples.len();
        let mut timed = Vec::with_capacity(n);
        let mut duration: i64 = 0;
        for i in 0..n {
            let dts = open.samples[i].dts;
            let next = if i + 1 < n { Some(open.samples[i + 1].dts) } else { next_dts };
            let d = match next {
                Some(nd) if nd > dts && nd - dts <= u32::MAX as i64 => (nd - dts) as u32,
                _ => self.last_duration.unwrap_or(self.default_duration),
            };
            self.last_duration = Some(d);
            duration += i64::from(d);
            timed.push(TimedSample { sample: open.samples[i].clone(), duration: d });
        }
        if n == 0 {
            duration = boundary_duration;
        }
        Some(Chunk {
            track: self.track,
            msn: open.msn,
            part: open.part,
            starts_segment: open.starts_segment,
            ends_segment,
            discontinuity: open.discontinuity || open.config_boundary,
            generation: open.generation,
            timescale: self.timescale,
            start: open.start,
            duration,
            samples: timed,
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct SegState {
    msn: u64,
    cell: i64,
    part_start: i64,
    part: u32,
}

/// The cutter for one output (LL-HLS or classic HLS) of one stream.
#[derive(Debug)]
pub struct Segmenter {
    grid: SegmentGrid,
    start: Start,
    driver: Lane,
    followers: Vec<Lane>,
    /// Boundaries not yet consumed by every follower; `boundaries[0]` has
    /// absolute index `boundary_base`.
    boundaries: VecDeque<Boundary>,
    boundary_base: u64,
    seg: Option<SegState>,
    first_dts: Option<i64>,
    /// Grid phase in driver ticks; known from the anchor or the first
    /// keyframe.
    phase: Option<i64>,
    /// msn = cell + base.
    base: i64,
    /// Part budget in driver ticks.
    part_budget: Option<i64>,
    /// Minimum running part length for a keyframe part cut, driver ticks.
    keyframe_part_min: Option<i64>,
    tolerance: i64,
    finished: bool,
    /// Cap on follower samples waiting for the driver.
    max_pending: usize,
    /// The driver's new configuration waits for its first keyframe.
    driver_awaiting: Option<LaneConfig>,
}

/// Output of one step of the segmenter.
#[derive(Debug, Default)]
pub struct Step {
    pub chunks: Vec<Chunk>,
    pub notes: Vec<GridNote>,
}

impl Segmenter {
    /// `driver`: (track, timescale, default sample duration) of the track
    /// that drives cuts; `followers` likewise. `anchor` fixes the grid phase
    /// and numbering base (a peer's); without it the first keyframe sets the
    /// phase and the base is 0.
    pub fn new(
        grid: SegmentGrid,
        start: Start,
        driver: (TrackId, Timescale, u32),
        followers: &[(TrackId, Timescale, u32)],
        anchor: Option<GridAnchor>,
    ) -> Segmenter {
        let ts = driver.1;
        let part_budget = grid.part_budget_ms.map(|ms| Timescale::MILLIS.convert_floor(i64::from(ms), ts));
        let tolerance = Timescale::MILLIS.convert_ceil(i64::from(grid.tolerance_ms()), ts);
        let keyframe_part_min = grid.keyframe_part_min_ms.map(|ms| Timescale::MILLIS.convert_ceil(i64::from(ms), ts));
        Segmenter {
            grid,
            start,
            driver: Lane::new(driver.0, driver.1, driver.2),
            followers: followers.iter().map(|&(t, s, d)| Lane::new(t, s, d)).collect(),
            boundaries: VecDeque::new(),
            boundary_base: 0,
            seg: None,
            first_dts: None,
            phase: anchor.map(|a| a.phase),
            base: anchor.map_or(0, |a| a.msn_base),
            part_budget,
            keyframe_part_min,
            tolerance,
            finished: false,
            max_pending: 30 * 50,
            driver_awaiting: None,
        }
    }

    pub fn grid(&self) -> SegmentGrid {
        self.grid
    }

    pub fn driver_track(&self) -> TrackId {
        self.driver.track
    }

    /// The anchor in force (once the phase is known).
    pub fn anchor(&self) -> Option<GridAnchor> {
        self.phase.map(|phase| GridAnchor { phase, msn_base: self.base })
    }

    /// Grid cell of a driver timestamp.
    fn cell(&self, t: i64) -> i64 {
        self.cell0(t - self.phase.unwrap_or(0))
    }

    /// Driver timestamp of grid line `k`.
    fn line(&self, k: i64) -> i64 {
        self.line0(k) + self.phase.unwrap_or(0)
    }

    /// The phase that puts a grid line exactly at `t`.
    fn phase_of(&self, t: i64) -> i64 {
        t - self.line0(self.cell0(t))
    }

    /// Cell of `t` on the zero-phase grid.
    fn cell0(&self, t: i64) -> i64 {
        let num = i128::from(t) * 1000;
        let den = i128::from(self.grid.segment_ms) * i128::from(self.driver.timescale.get());
        num.div_euclid(den) as i64
    }

    /// Line `k` of the zero-phase grid (rounded up to a whole tick).
    fn line0(&self, k: i64) -> i64 {
        let num = i128::from(k) * i128::from(self.grid.segment_ms) * i128::from(self.driver.timescale.get());
        let d = 1000i128;
        (num.div_euclid(d) + i128::from(num.rem_euclid(d) != 0)) as i64
    }

    fn msn_of_cell(&self, cell: i64) -> u64 {
        (cell + self.base).max(0) as u64
    }

    /// Feed one sample (any track of this output).
    pub fn push(&mut self, sample: Sample) -> Step {
        self.push_with(sample, None)
    }

    /// Feed one sample that may start a new codec configuration of its
    /// track (`change`). A driver change cuts a segment at its first keyframe
    /// (non-keyframes of the new configuration before it are dropped): the
    /// segment is marked as a discontinuity and the grid takes its phase
    /// from that keyframe. A follower change takes effect at the segment
    /// boundary at or after it: in the first part of a segment the driver
    /// opened with a change, the follower's samples of the old configuration
    /// give way to the new one; otherwise the follower's samples of the new
    /// configuration are dropped until the next segment boundary.
    pub fn push_with(&mut self, sample: Sample, change: Option<LaneConfig>) -> Step {
        let mut step = Step::default();
        if self.finished {
            return step;
        }
        if sample.track == self.driver.track {
            self.push_driver(sample, change, &mut step);
            self.drain_to_driver(&mut step);
        } else if let Some(i) = self.followers.iter().position(|l| l.track == sample.track) {
            let lane = &mut self.followers[i];
            let ts = change.map_or(lane.push_timescale, |c| c.timescale);
            lane.push_timescale = ts;
            if lane.pending.len() >= self.max_pending {
                // The driver stopped advancing; keep memory bounded.
                if let Some((old, _, _)) = lane.pending.pop_front() {
                    step.notes.push(GridNote::DroppedSample {
                        track: old.track,
                        dts: old.dts,
                        reason: "follower too far ahead of the driving track",
                    });
                }
            }
            lane.pending.push_back((sample, change, ts));
            self.drain_to_driver(&mut step);
        }
        step
    }

    /// End of stream: close everything.
    pub fn finish(&mut self) -> Step {
        let mut step = Step::default();
        if self.finished {
            return step;
        }
        self.finished = true;
        if let Some(c) = self.driver.close(None, true, 0) {
            step.chunks.push(c);
        }
        self.drain_followers(None, &mut step);
        for lane in &mut self.followers {
            // Boundaries past the follower's last sample publish nothing.
            if lane.open.as_ref().is_some_and(|o| o.samples.is_empty()) {
                lane.open = None;
            }
            if let Some(c) = lane.close(None, true, 0) {
                step.chunks.push(c);
            }
        }
        self.seg = None;
        step
    }

    fn push_driver(&mut self, s: Sample, change: Option<LaneConfig>, step: &mut Step) {
        let change = change.or(self.driver_awaiting.take());
        let t = s.dts;
        if t < 0 {
            step.notes.push(GridNote::DroppedSample { track: s.track, dts: t, reason: "negative timestamp" });
            self.driver_awaiting = change;
            return;
        }
        let in_ts = change.map_or(self.driver.timescale, |c| c.timescale);
        let prev = self.driver.last_dts.map(|p| self.driver.timescale.convert_floor(p, in_ts));
        if let Some(p) = prev {
            if t <= p && !s.discontinuity {
                step.notes.push(GridNote::DroppedSample {
                    track: s.track,
                    dts: t,
                    reason: "decode timestamp does not advance",
                });
                self.driver_awaiting = change;
                return;
            }
        }
        if let Some(c) = change {
            if !s.keyframe {
                step.notes.push(GridNote::DroppedSample {
                    track: s.track,
                    dts: t,
                    reason: "before the first keyframe of a new codec configuration",
                });
                self.driver_awaiting = Some(c);
                return;
            }
            let old_ts = self.driver.timescale;
            if self.seg.is_none() && self.start == Start::Joined && self.phase.is_some() {
                if let Some(p) = self.driver.last_dts {
                    // A joining node that has not published yet: the peer
                    // cuts here too, numbering on from the segment of the
                    // previous sample.
                    let m = self.msn_of_cell(self.cell(p));
                    self.switch_driver(c);
                    self.phase = Some(self.phase_of(t));
                    let cell = self.cell(t);
                    let msn = m + 1;
                    self.base = msn as i64 - cell;
                    self.driver.last_dts = Some(t);
                    self.open_segment(msn, cell, t, s.discontinuity, true);
                    self.driver.open_push(s);
                    return;
                }
            }
            if self.seg.is_some() {
                let next_dts = (!s.discontinuity).then(|| c.timescale.convert_floor(t, old_ts));
                if let Some(ch) = self.driver.close(next_dts, true, 0) {
                    step.chunks.push(ch);
                }
            }
            self.switch_driver(c);
            if let Some(seg) = self.seg {
                // Cut here: the new configuration starts a segment, and the
                // grid follows its first keyframe (as after a discontinuity).
                self.phase = Some(self.phase_of(t));
                let cell = self.cell(t);
                let msn = seg.msn + 1;
                self.base = msn as i64 - cell;
                self.driver.last_dts = Some(t);
                self.open_segment(msn, cell, t, s.discontinuity, true);
                self.driver.open_push(s);
                return;
            }
        }
        let first = *self.first_dts.get_or_insert(t);
        self.driver.last_dts = Some(t);
        if self.phase.is_none() {
            if !s.keyframe {
                return; // Nothing can start before a keyframe fixes the grid.
            }
            self.phase = Some(self.phase_of(t));
        }
        if s.discontinuity && s.keyframe {
            // A new timeline: its grid follows its first keyframe.
            self.phase = Some(self.phase_of(t));
        }
        let cell = self.cell(t);

        let Some(seg) = self.seg else {
            // Not started yet.
            let start_here = match self.start {
                Start::StreamStart => s.keyframe,
                Start::Joined => {
                    let first_cell = self.cell(first);
                    if cell <= first_cell {
                        false
                    } else {
                        let line = self.line(cell);
                        let deadline = line + self.tolerance;
                        (s.keyframe && t < deadline) || (t >= deadline && prev.is_some_and(|p| p < deadline))
                    }
                }
            };
            if start_here {
                let msn = self.msn_of_cell(cell);
                if !s.keyframe {
                    step.notes.push(GridNote::LateKeyframe { msn, dts: t, forced: true });
                }
                self.open_segment(msn, cell, t, s.discontinuity, false);
                self.driver.open_push(s);
            }
            return;
        };

        // Segment cut?
        let next_line = self.line(seg.cell + 1);
        let cut = if s.discontinuity {
            Some((false, true))
        } else if t >= next_line {
            let deadline = next_line + self.tolerance;
            if s.keyframe && t < deadline {
                Some((false, false))
            } else if t >= deadline {
                let msn = seg.msn + 1;
                step.notes.push(GridNote::LateKeyframe { msn, dts: t, forced: !s.keyframe });
                Some((true, false))
            } else {
                None
            }
        } else {
            None
        };

        if let Some((_forced, disc)) = cut {
            let mut cell = cell;
            if !disc && cell != seg.cell + 1 && s.keyframe {
                // After a gap, the grid follows the keyframe that ends it.
                self.phase = Some(self.phase_of(t));
                cell = self.cell(t);
            }
            let msn = seg.msn + 1;
            if disc || cell != seg.cell + 1 {
                if !disc {
                    step.notes.push(GridNote::TimelineGap { msn, dts: t });
                }
                // Keep numbering contiguous: msn = cell + base.
                self.base = msn as i64 - cell;
            }
            let next_dts = if disc { None } else { Some(t) };
            if let Some(c) = self.driver.close(next_dts, true, 0) {
                step.chunks.push(c);
            }
            self.open_segment(msn, cell, t, disc, false);
            self.driver.open_push(s);
            return;
        }

        // Part cut?
        if let Some(budget) = self.part_budget {
            let into = t - seg.part_start;
            let predicted = prev.map_or(0, |p| t - p);
            let at_keyframe = s.keyframe && self.keyframe_part_min.is_some_and(|min| into >= min);
            if into > 0 && (into + predicted > budget || at_keyframe) {
                if let Some(c) = self.driver.close(Some(t), false, 0) {
                    step.chunks.push(c);
                }
                let part = seg.part + 1;
                self.seg = Some(SegState { part_start: t, part, ..seg });
                self.driver.open = Some(OpenChunk {
                    msn: seg.msn,
                    part,
                    starts_segment: false,
                    discontinuity: false,
                    config_boundary: false,
                    generation: self.driver.generation,
                    start: t,
                    samples: Vec::new(),
                });
                self.boundaries.push_back(Boundary {
                    time: MediaTime::new(t, self.driver.timescale),
                    msn: seg.msn,
                    part,
                    segment_start: false,
                    discontinuity: false,
                    config: false,
                });
            }
        }
        self.driver.open_push(s);
    }

    fn open_segment(&mut self, msn: u64, cell: i64, t: i64, discontinuity: bool, config: bool) {
        self.seg = Some(SegState { msn, cell, part_start: t, part: 0 });
        self.driver.open = Some(OpenChunk {
            msn,
            part: 0,
            starts_segment: true,
            discontinuity,
            config_boundary: config,
            generation: self.driver.generation,
            start: t,
            samples: Vec::new(),
        });
        self.boundaries.push_back(Boundary {
            time: MediaTime::new(t, self.driver.timescale),
            msn,
            part: 0,
            segment_start: true,
            discontinuity,
            config,
        });
    }

    /// The driver takes a new configuration: its timestamps and the grid's
    /// tick quantities move to the new timescale.
    fn switch_driver(&mut self, c: LaneConfig) {
        let old = self.driver.timescale;
        if c.timescale != old {
            self.first_dts = self.first_dts.map(|d| old.convert_floor(d, c.timescale));
            self.phase = self.phase.map(|p| old.convert_floor(p, c.timescale));
            self.part_budget =
                self.grid.part_budget_ms.map(|ms| Timescale::MILLIS.convert_floor(i64::from(ms), c.timescale));
            self.tolerance = Timescale::MILLIS.convert_ceil(i64::from(self.grid.tolerance_ms()), c.timescale);
            self.keyframe_part_min =
                self.grid.keyframe_part_min_ms.map(|ms| Timescale::MILLIS.convert_ceil(i64::from(ms), c.timescale));
            if let Some(seg) = &mut self.seg {
                seg.part_start = old.convert_floor(seg.part_start, c.timescale);
            }
        }
        self.driver.switch(c);
    }

    /// Place the follower samples the driver has passed. Before the driver's
    /// first sample nothing is placed: no boundary can be known yet.
    fn drain_to_driver(&mut self, step: &mut Step) {
        if let Some(d) = self.driver.last_dts {
            self.drain_followers(Some(MediaTime::new(d, self.driver.timescale)), step);
        }
    }

    /// Place follower samples whose time the driver has passed (all of them
    /// when `horizon` is None, at the end of the stream).
    fn drain_followers(&mut self, horizon: Option<MediaTime>, step: &mut Step) {
        for i in 0..self.followers.len() {
            while let Some((front, _, ts)) = self.followers[i].pending.front() {
                let at = MediaTime::new(front.dts, *ts);
                if let Some(h) = horizon {
                    if at.cmp_exact(h) == std::cmp::Ordering::Greater {
                        break;
                    }
                }
                // Checked non-empty just above.
                let Some((s, change, _)) = self.followers[i].pending.pop_front() else { break };
                self.place_follower(i, s, change, step);
            }
        }
        self.trim_boundaries();
    }

    fn place_follower(&mut self, i: usize, s: Sample, change: Option<LaneConfig>, step: &mut Step) {
        if let Some(c) = change {
            let lane = &mut self.followers[i];
            match &mut lane.open {
                None => lane.switch(c),
                Some(open) if open.config_boundary && open.starts_segment => {
                    // The first part of a segment the driver opened with a
                    // new configuration: the old configuration's samples in
                    // it give way.
                    for old in open.samples.drain(..) {
                        step.notes.push(GridNote::DroppedSample {
                            track: old.track,
                            dts: old.dts,
                            reason: "old codec configuration after the driving track's configuration change",
                        });
                    }
                    open.generation = c.generation;
                    lane.switch(c);
                }
                Some(_) => {
                    lane.deferred = Some(c);
                    lane.in_timescale = c.timescale;
                }
            }
        }
        let lane_ts = self.followers[i].in_timescale;
        if s.dts < 0 {
            step.notes.push(GridNote::DroppedSample { track: s.track, dts: s.dts, reason: "negative timestamp" });
            return;
        }
        let last = self.followers[i].last_dts.map(|p| self.followers[i].timescale.convert_floor(p, lane_ts));
        if let Some(p) = last {
            if s.dts <= p && !s.discontinuity {
                step.notes.push(GridNote::DroppedSample {
                    track: s.track,
                    dts: s.dts,
                    reason: "decode timestamp does not advance",
                });
                return;
            }
        }
        let at = MediaTime::new(s.dts, lane_ts);
        // Consume every boundary at or before this sample.
        loop {
            let idx = self.followers[i].next_boundary;
            let Some(b) = self.boundary(idx) else { break };
            if b.time.cmp_exact(at) == std::cmp::Ordering::Greater {
                break;
            }
            // The new chunk starts at this sample if no later boundary also
            // precedes it.
            let next_also_before =
                self.boundary(idx + 1).is_some_and(|nb| nb.time.cmp_exact(at) != std::cmp::Ordering::Greater);
            let next_dts = if b.discontinuity || next_also_before { None } else { Some(s.dts) };
            self.consume_boundary_with(i, next_dts, step);
        }
        let lane = &mut self.followers[i];
        if lane.deferred.is_some() {
            step.notes.push(GridNote::DroppedSample {
                track: s.track,
                dts: s.dts,
                reason: "new codec configuration before the next segment boundary",
            });
            return;
        }
        lane.last_dts = Some(s.dts);
        if lane.open.is_some() {
            lane.open_push(s);
        }
    }

    fn boundary(&self, idx: u64) -> Option<&Boundary> {
        let rel = idx.checked_sub(self.boundary_base)?;
        self.boundaries.get(rel as usize)
    }

    fn consume_boundary_with(&mut self, i: usize, next_dts: Option<i64>, step: &mut Step) {
        let idx = self.followers[i].next_boundary;
        let Some(b) = self.boundary(idx).cloned() else { return };
        let lane = &mut self.followers[i];
        let lane_ts = lane.timescale;
        let in_ts = lane.in_timescale;
        let b_start = b.time.timescale.convert_ceil(b.time.ticks, lane_ts);
        // A deferred configuration change takes effect at a segment start.
        let switch = lane.deferred.filter(|_| b.segment_start);
        let close_next = match switch {
            Some(_) => None,
            None => next_dts.map(|d| in_ts.convert_floor(d, lane_ts)),
        };
        if let Some(open) = &lane.open {
            let boundary_duration = b_start - open.start;
            let empty = open.samples.is_empty();
            if let Some(c) = lane.close(close_next, b.segment_start, boundary_duration) {
                if empty {
                    step.notes.push(GridNote::EmptyFollowerChunk { track: c.track, msn: c.msn, part: c.part });
                }
                step.chunks.push(c);
            }
        }
        if let Some(c) = switch {
            lane.switch(c);
        }
        let b_start = b.time.timescale.convert_ceil(b.time.ticks, lane.timescale);
        lane.open = Some(OpenChunk {
            msn: b.msn,
            part: b.part,
            starts_segment: b.segment_start,
            discontinuity: b.discontinuity,
            config_boundary: b.config,
            generation: lane.generation,
            start: next_dts.unwrap_or(b_start),
            samples: Vec::new(),
        });
        lane.next_boundary = idx + 1;
    }

    fn trim_boundaries(&mut self) {
        let min_next = self
            .followers
            .iter()
            .map(|l| l.next_boundary)
            .min()
            .unwrap_or(self.boundary_base + self.boundaries.len() as u64);
        while self.boundary_base < min_next && !self.boundaries.is_empty() {
            self.boundaries.pop_front();
            self.boundary_base += 1;
        }
    }
}

impl Lane {
    fn open_push(&mut self, s: Sample) {
        if let Some(open) = &mut self.open {
            if open.samples.is_empty() {
                open.start = s.dts;
            }
            open.samples.push(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    const V: TrackId = TrackId(1);
    const A: TrackId = TrackId(2);

    fn ts(hz: u32) -> Timescale {
        Timescale::new(hz).unwrap_or(Timescale::MPEG)
    }

    fn video(dts: i64, key: bool) -> Sample {
        Sample { track: V, dts, pts: dts, keyframe: key, data: Bytes::from_static(b"v"), discontinuity: false }
    }

    fn audio(dts: i64) -> Sample {
        Sample { track: A, dts, pts: dts, keyframe: true, data: Bytes::from_static(b"a"), discontinuity: false }
    }

    /// 30 fps video (3000 ticks/frame at 90 kHz) with a keyframe every `gop`
    /// frames, from frame `from` to `to`.
    fn frames(from: i64, to: i64, gop: i64, t0: i64) -> Vec<Sample> {
        (from..to).map(|i| video(t0 + i * 3000, i % gop == 0)).collect()
    }

    fn segmenter(seg: u32, part: Option<u32>, start: Start, with_audio: bool) -> Segmenter {
        segmenter_at(seg, part, start, with_audio, None)
    }

    fn segmenter_at(
        seg: u32,
        part: Option<u32>,
        start: Start,
        with_audio: bool,
        anchor: Option<GridAnchor>,
    ) -> Segmenter {
        let followers: Vec<(TrackId, Timescale, u32)> = if with_audio { vec![(A, ts(48_000), 1024)] } else { vec![] };
        Segmenter::new(
            SegmentGrid {
                segment_ms: seg,
                part_budget_ms: part,
                keyframe_part_min_ms: part.map(|p| p * 85 / 100 + 22),
            },
            start,
            (V, Timescale::MPEG, 3000),
            &followers,
            anchor,
        )
    }

    fn run(s: &mut Segmenter, input: Vec<Sample>) -> (Vec<Chunk>, Vec<GridNote>) {
        let mut chunks = Vec::new();
        let mut notes = Vec::new();
        for x in input {
            let st = s.push(x);
            chunks.extend(st.chunks);
            notes.extend(st.notes);
        }
        let st = s.finish();
        chunks.extend(st.chunks);
        notes.extend(st.notes);
        (chunks, notes)
    }

    /// (msn, first dts) of each segment of track `t`.
    fn segments(chunks: &[Chunk], t: TrackId) -> Vec<(u64, i64)> {
        chunks.iter().filter(|c| c.track == t && c.starts_segment).map(|c| (c.msn, c.start)).collect()
    }

    #[test]
    fn tolerance_and_target_duration() {
        let cases = [
            (2000, 2, 250),
            (6000, 6, 250),
            (1500, 2, 500),
            (500, 1, 250),
            (4000, 4, 250),
            (2500, 3, 500),
            (2002, 2, 249),
            (4004, 4, 248),
            (2249, 2, 125),
            (2250, 3, 625),
        ];
        for (seg, td, tol) in cases {
            let g = SegmentGrid { segment_ms: seg, part_budget_ms: None, keyframe_part_min_ms: None };
            assert_eq!((g.target_duration_s(), g.tolerance_ms()), (td, tol), "segment {seg} ms");
        }
    }

    #[test]
    fn segments_cut_on_keyframes_at_grid_lines_and_msn_is_the_cell() {
        // GOP 1 s, D = 2 s: cuts at 0, 2, 4, 6 s; msn 0..3.
        let mut s = segmenter(2000, None, Start::StreamStart, false);
        let (chunks, notes) = run(&mut s, frames(0, 240, 30, 0));
        assert_eq!(segments(&chunks, V), vec![(0, 0), (1, 180_000), (2, 360_000), (3, 540_000)]);
        assert!(notes.is_empty(), "{notes:?}");
        // A timeline that starts at 11 s with GOP 1 s: the grid's phase is
        // 1 s (11 mod 2), so lines fall on 11, 13 s: cells 5, 6.
        let mut s = segmenter(2000, None, Start::StreamStart, false);
        let (chunks, _) = run(&mut s, frames(0, 120, 30, 990_000));
        assert_eq!(segments(&chunks, V), vec![(5, 990_000), (6, 1_170_000)]);
        // With a given anchor (phase 0), keyframes at 10.5, 11.5, 12.5 s
        // start at 10.5 s (first keyframe), but none is within 250 ms of the
        // 12 s line: the cut is forced at the first frame at or after 12.25 s.
        let anchor = Some(GridAnchor { phase: 0, msn_base: 0 });
        let mut s = segmenter_at(2000, None, Start::StreamStart, false, anchor);
        let (chunks, notes) = run(&mut s, frames(0, 120, 30, 945_000));
        assert_eq!(segments(&chunks, V), vec![(5, 945_000), (6, 1_104_000), (7, 1_284_000)]);
        assert!(notes.iter().any(|n| matches!(n, GridNote::LateKeyframe { msn: 6, forced: true, .. })));
    }

    #[test]
    fn joined_packager_starts_at_the_first_whole_segment_with_the_same_cuts() {
        let all = frames(0, 300, 30, 0);
        let mut a = segmenter(2000, Some(500), Start::StreamStart, false);
        let (ca, _) = run(&mut a, all.clone());
        let anchor = a.anchor();
        assert_eq!(anchor, Some(GridAnchor { phase: 0, msn_base: 0 }));
        for join in [1usize, 29, 30, 31, 59, 60, 61, 100] {
            let mut b = segmenter_at(2000, Some(500), Start::Joined, false, anchor);
            let (cb, _) = run(&mut b, all[join..].to_vec());
            let first = cb.first().map(|c| c.start).unwrap_or(-1);
            let join_dts = all[join].dts;
            // Starts at the first grid line strictly after the join point.
            let line = (join_dts / 180_000 + 1) * 180_000;
            assert_eq!(first, line, "joined at frame {join}");
            // Every chunk b produced equals a's.
            for c in &cb {
                assert!(ca.contains(c), "joined at {join}: chunk {}.{} differs", c.msn, c.part);
            }
        }
    }

    #[test]
    fn grid_phase_follows_the_first_keyframe() {
        // An encoder whose timestamps start at 1.4 s (MPEG-TS from ffmpeg),
        // GOP 2 s, D = 2 s: every keyframe is on a line of the grid with
        // phase 1.4 s, so no cut is forced; numbers are floor((t - 1.4) / 2).
        let mut s = segmenter(2000, None, Start::StreamStart, false);
        let (chunks, notes) = run(&mut s, frames(0, 240, 60, 126_000));
        assert_eq!(segments(&chunks, V), vec![(0, 126_000), (1, 306_000), (2, 486_000), (3, 666_000)]);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(s.anchor(), Some(GridAnchor { phase: 126_000, msn_base: 0 }));
        // Timeline far from zero: numbering follows server time.
        let t0 = 1_795_240_801_400 * 90; // 2026-11-21T06:00:01.400Z in 90 kHz ticks
        let mut s = segmenter(2000, None, Start::StreamStart, false);
        let (chunks, _) = run(&mut s, frames(0, 120, 60, t0));
        assert_eq!(segments(&chunks, V), vec![(897_620_400, t0), (897_620_401, t0 + 180_000)]);
        // A joined packager without an anchor takes the phase from its own
        // first keyframe; with keyframe interval == D that is the peer's.
        let mut b = segmenter(2000, None, Start::Joined, false);
        let (cb, _) = run(&mut b, frames(0, 240, 60, 126_000)[75..].to_vec());
        assert_eq!(segments(&cb, V), vec![(2, 486_000), (3, 666_000)]);
    }

    #[test]
    fn long_keyframe_interval_forces_a_cut_within_tolerance_and_reports_it() {
        // GOP 3 s, D = 2 s: at 2 s no keyframe -> forced cut at the first
        // frame at or after 2.25 s (2.267 s); the keyframe at 3 s is inside
        // cell 1, so cell 2 is forced too (4.267 s); 6 s is on time.
        let mut s = segmenter(2000, None, Start::StreamStart, false);
        let (chunks, notes) = run(&mut s, frames(0, 270, 90, 0));
        let segs = segments(&chunks, V);
        assert_eq!(segs[..4], [(0, 0), (1, 204_000), (2, 384_000), (3, 540_000)]);
        assert!(notes.iter().any(|n| matches!(n, GridNote::LateKeyframe { msn: 1, forced: true, .. })));
        // Numbering stays contiguous and every segment stays within
        // TARGETDURATION + 0.5 s.
        let durations: Vec<i64> =
            chunks.iter().filter(|c| c.track == V && c.ends_segment).map(|c| c.duration).collect();
        assert!(durations.iter().all(|d| *d < 225_000), "{durations:?}");
        for w in segs.windows(2) {
            assert_eq!(w[1].0, w[0].0 + 1);
        }
    }

    #[test]
    fn parts_stay_within_budget_and_restart_at_segments() {
        let mut s = segmenter(2000, Some(500), Start::StreamStart, false);
        let (chunks, _) = run(&mut s, frames(0, 180, 30, 0));
        for c in &chunks {
            assert!(c.duration <= 45_000, "part {}.{} is {} ticks", c.msn, c.part, c.duration);
            if !c.ends_segment {
                assert!(c.duration * 100 >= 45_000 * 85, "part {}.{} too short", c.msn, c.part);
            }
        }
        let seg0: Vec<u32> = chunks.iter().filter(|c| c.msn == 0).map(|c| c.part).collect();
        assert_eq!(seg0, vec![0, 1, 2, 3]);
        assert!(chunks.iter().filter(|c| c.part == 0).all(|c| c.starts_segment && c.independent()));
    }

    #[test]
    fn audio_follows_video_boundaries_whatever_the_interleave() {
        // 48 kHz AAC (1024 samples/frame) beside 30 fps video.
        let v = frames(0, 180, 30, 0);
        let a: Vec<Sample> = (0..281).map(|i| audio(i * 1024)).collect();
        let mut reference: Option<Vec<Chunk>> = None;
        for audio_lead in [-40i64, 0, 25, 200] {
            // Interleave by dts, shifting audio by `audio_lead` positions.
            let mut all: Vec<(i64, Sample)> = v.iter().map(|s| (s.dts * 48_000 / 90_000 * 10, s.clone())).collect();
            all.extend(
                a.iter().enumerate().map(|(i, s)| ((s.dts - audio_lead * 1024) * 10 + (i as i64 % 3), s.clone())),
            );
            all.sort_by_key(|(k, _)| *k);
            let mut s = segmenter(2000, Some(500), Start::StreamStart, true);
            let (mut chunks, _) = run(&mut s, all.into_iter().map(|(_, x)| x).collect());
            chunks.sort_by_key(|c| (c.track, c.msn, c.part));
            match &reference {
                None => reference = Some(chunks),
                Some(r) => {
                    let brief = |c: &Chunk| (c.track, c.msn, c.part, c.start, c.duration, c.samples.len());
                    let x: Vec<_> = r.iter().map(brief).collect();
                    let y: Vec<_> = chunks.iter().map(brief).collect();
                    let first = x.iter().zip(&y).position(|(a, b)| a != b);
                    assert!(
                        x == y,
                        "audio lead {audio_lead}: first difference at {first:?}: {:?} vs {:?}",
                        first.map(|i| x[i]),
                        first.map(|i| y[i])
                    );
                    assert_eq!(r, &chunks, "audio lead {audio_lead}");
                }
            }
        }
        let chunks = reference.unwrap_or_default();
        // Same (msn, part) sequence on both tracks; audio starts at its
        // first frame at or after the video boundary.
        let pts = |t: TrackId| chunks.iter().filter(|c| c.track == t).map(|c| (c.msn, c.part)).collect::<Vec<_>>();
        assert_eq!(pts(V), pts(A));
        for c in chunks.iter().filter(|c| c.track == A) {
            let vb = chunks.iter().find(|x| x.track == V && x.msn == c.msn && x.part == c.part).map(|x| x.start);
            let vb48 = vb.map(|t| Timescale::MPEG.convert_ceil(t, ts(48_000))).unwrap_or(0);
            assert!(c.start >= vb48 && c.start < vb48 + 1024, "audio part {}.{} at {}", c.msn, c.part, c.start);
        }
    }

    #[test]
    fn discontinuity_starts_a_segment_and_keeps_numbering_contiguous() {
        let mut input = frames(0, 90, 30, 0);
        // The encoder restarts: timestamps jump back to 100 ms.
        let mut after = frames(0, 90, 30, 9000);
        after[0].discontinuity = true;
        input.extend(after);
        let mut s = segmenter(2000, None, Start::StreamStart, false);
        let (chunks, notes) = run(&mut s, input);
        let segs = segments(&chunks, V);
        assert_eq!(segs.iter().map(|s| s.0).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        let disc: Vec<bool> = chunks.iter().filter(|c| c.starts_segment).map(|c| c.discontinuity).collect();
        assert_eq!(disc, vec![false, false, true, false]);
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn bad_timestamps_are_dropped_and_reported() {
        let mut input = frames(0, 60, 30, 0);
        input.insert(10, video(3000, false)); // does not advance
        input.insert(0, video(-3000, true)); // negative
        let mut s = segmenter(2000, None, Start::StreamStart, false);
        let (chunks, notes) = run(&mut s, input);
        let n: usize = chunks.iter().map(|c| c.samples.len()).sum();
        assert_eq!(n, 60);
        assert_eq!(notes.iter().filter(|n| matches!(n, GridNote::DroppedSample { .. })).count(), 2);
    }
}
