//! The server timeline (contract §3): encoder timestamps in, server timestamps
//! out, according to the provider's TimestampMode.
//!
//! One offset applies to every track of a stream, so audio/video sync is
//! kept. The offset is held in 90 kHz ticks and converted to each track's
//! timescale by flooring. The wall clock enters only through [`Clock`], and
//! only in SystemClock mode (and when SystemClock re-anchors after a
//! discontinuity).

use std::collections::BTreeMap;
use std::sync::Arc;

use lockstep_packager::{Sample, Timescale, TrackId};

use crate::config::TimestampMode;

/// The source of wall-clock time. Injected so tests control it.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch (UTC).
    fn now_utc_ms(&self) -> i64;
}

/// The operating system's clock.
pub struct WallClock;

impl Clock for WallClock {
    fn now_utc_ms(&self) -> i64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
    }
}

/// SystemClock offsets are rounded down to a multiple of this, so that two
/// nodes whose first packets arrive a few milliseconds apart usually land on
/// the same timeline (the pair's timeline agreement removes the rest).
pub const SYSTEM_CLOCK_QUANTUM_MS: i64 = 1000;

/// A backwards step of more than this (per track) is a discontinuity; a
/// smaller one is jitter, passed through (the packager drops samples whose
/// DTS does not advance).
pub const BACKWARD_JUMP_MS: i64 = 500;

#[derive(Debug, Default)]
struct TrackState {
    timescale: Option<Timescale>,
    last_src: Option<i64>,
    last_out: Option<i64>,
    last_delta: Option<i64>,
    /// The next sample of this track starts after a discontinuity.
    pending_discontinuity: bool,
}

/// Maps one stream's encoder timestamps to the server timeline.
pub struct Timeline {
    mode: TimestampMode,
    max_jump_ms: i64,
    clock: Arc<dyn Clock>,
    /// Added to every source timestamp, in 90 kHz ticks.
    offset: Option<i64>,
    tracks: BTreeMap<TrackId, TrackState>,
    discontinuities: u64,
}

impl Timeline {
    pub fn new(mode: TimestampMode, max_jump_ms: i64, clock: Arc<dyn Clock>) -> Timeline {
        Timeline { mode, max_jump_ms, clock, offset: None, tracks: BTreeMap::new(), discontinuities: 0 }
    }

    /// A timeline whose offset is already settled (adopted from the peer).
    pub fn with_offset(mode: TimestampMode, max_jump_ms: i64, clock: Arc<dyn Clock>, offset_90k: i64) -> Timeline {
        let mut t = Timeline::new(mode, max_jump_ms, clock);
        t.offset = Some(offset_90k);
        t
    }

    /// The offset in force, 90 kHz ticks (None before the first sample).
    pub fn offset_90k(&self) -> Option<i64> {
        self.offset
    }

    /// Discontinuities seen so far.
    pub fn discontinuities(&self) -> u64 {
        self.discontinuities
    }

    fn initial_offset(&self, src_90k: i64) -> i64 {
        match self.mode {
            TimestampMode::Original => 0,
            TimestampMode::ZeroBased => -src_90k,
            TimestampMode::SystemClock => self.system_offset(src_90k),
        }
    }

    fn system_offset(&self, src_90k: i64) -> i64 {
        let now_ms = self.clock.now_utc_ms();
        let src_ms = src_90k.div_euclid(90);
        let raw = now_ms - src_ms;
        raw.div_euclid(SYSTEM_CLOCK_QUANTUM_MS) * SYSTEM_CLOCK_QUANTUM_MS * 90
    }

    /// Map one sample (timestamps in its track's timescale on the encoder's
    /// timeline) onto the server timeline.
    pub fn map(&mut self, timescale: Timescale, mut s: Sample) -> Sample {
        let src_90k = timescale.convert_floor(s.dts, Timescale::MPEG);
        let offset = match self.offset {
            Some(o) => o,
            None => {
                let o = self.initial_offset(src_90k);
                self.offset = Some(o);
                o
            }
        };
        let st = self.tracks.entry(s.track).or_default();
        st.timescale = Some(timescale);
        let jump_ticks = |ms: i64| Timescale::MILLIS.convert_floor(ms, timescale);
        let broke = match st.last_src {
            Some(prev) => s.dts < prev - jump_ticks(BACKWARD_JUMP_MS) || s.dts > prev + jump_ticks(self.max_jump_ms),
            None => false,
        };
        let mut offset = offset;
        if broke {
            offset = self.reanchor(s.track, timescale, s.dts);
        }
        let st = self.tracks.entry(s.track).or_default();
        let off = Timescale::MPEG.convert_floor(offset, timescale);
        let dts = s.dts + off;
        let pts = s.pts + off;
        if let (Some(prev_src), false) = (st.last_src, broke) {
            if s.dts > prev_src {
                st.last_delta = Some(s.dts - prev_src);
            }
        }
        st.last_src = Some(s.dts);
        st.last_out = Some(dts);
        if st.pending_discontinuity || broke {
            s.discontinuity = true;
            st.pending_discontinuity = false;
        }
        s.dts = dts;
        s.pts = pts;
        s
    }

    /// A jump on `track` at source DTS `src`: choose a new offset, mark every
    /// other track's next sample as a discontinuity too.
    fn reanchor(&mut self, track: TrackId, timescale: Timescale, src: i64) -> i64 {
        self.discontinuities += 1;
        let st = self.tracks.entry(track).or_default();
        // Continue right after the last output sample of this track.
        let delta = st.last_delta.unwrap_or_else(|| i64::from(timescale.get()) / 30);
        let cont = st.last_out.map(|o| o + delta);
        let src_90k = timescale.convert_floor(src, Timescale::MPEG);
        let continue_offset = cont.map(|c| timescale.convert_ceil(c, Timescale::MPEG) - src_90k);
        let offset = match self.mode {
            // Original keeps the encoder's timestamps: the jump stays, marked.
            TimestampMode::Original => self.offset.unwrap_or(0),
            TimestampMode::ZeroBased => continue_offset.unwrap_or(-src_90k),
            TimestampMode::SystemClock => {
                let wall = self.system_offset(src_90k);
                // Never go back in time on the server timeline.
                match continue_offset {
                    Some(c) if c > wall => c,
                    _ => wall,
                }
            }
        };
        self.offset = Some(offset);
        for (id, other) in self.tracks.iter_mut() {
            if *id != track {
                other.pending_discontinuity = true;
                // The other track's own history no longer applies.
                other.last_src = None;
            }
        }
        offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use std::sync::atomic::{AtomicI64, Ordering};

    struct TestClock(AtomicI64);
    impl Clock for TestClock {
        fn now_utc_ms(&self) -> i64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn v(dts_ms: i64) -> Sample {
        Sample {
            track: TrackId(1),
            dts: dts_ms * 90,
            pts: dts_ms * 90,
            keyframe: true,
            data: Bytes::from_static(b"x"),
            discontinuity: false,
        }
    }

    fn a(dts_ms: i64) -> Sample {
        Sample { track: TrackId(2), dts: dts_ms * 48, pts: dts_ms * 48, ..v(0) }
    }

    const ST_V: Timescale = Timescale::MPEG;
    fn st_a() -> Timescale {
        Timescale::new(48_000).unwrap_or(Timescale::MPEG)
    }

    fn timeline(mode: TimestampMode, now_ms: i64) -> (Timeline, Arc<TestClock>) {
        let clock = Arc::new(TestClock(AtomicI64::new(now_ms)));
        (Timeline::new(mode, 10_000, clock.clone()), clock)
    }

    #[test]
    fn modes_map_the_first_sample_as_promised() {
        // (mode, first source ms, clock ms, expected first output ms)
        let cases = [
            (TimestampMode::ZeroBased, 5_000, 0, 0),
            (TimestampMode::Original, 5_000, 0, 5_000),
            (TimestampMode::SystemClock, 5_000, 1_795_240_800_400, 1_795_240_800_000),
            (TimestampMode::SystemClock, 0, 1_795_240_800_999, 1_795_240_800_000),
        ];
        for (mode, src, now, want) in cases {
            let (mut t, _) = timeline(mode, now);
            let out = t.map(ST_V, v(src));
            assert_eq!(out.dts, want * 90, "{mode:?}");
            assert!(!out.discontinuity);
            // Later samples keep their spacing; audio shares the offset.
            assert_eq!(t.map(ST_V, v(src + 40)).dts, (want + 40) * 90);
            assert_eq!(t.map(st_a(), a(src + 20)).dts, (want + 20) * 48);
        }
    }

    #[test]
    fn two_nodes_a_few_ms_apart_agree_in_system_clock_mode() {
        let (mut x, _) = timeline(TimestampMode::SystemClock, 1_795_240_800_100);
        let (mut y, _) = timeline(TimestampMode::SystemClock, 1_795_240_800_130);
        assert_eq!(x.map(ST_V, v(0)).dts, y.map(ST_V, v(0)).dts);
    }

    #[test]
    fn jumps_become_discontinuities_and_never_go_backwards() {
        for mode in [TimestampMode::ZeroBased, TimestampMode::SystemClock, TimestampMode::Original] {
            let (mut t, clock) = timeline(mode, 1_000_000);
            let mut last = i64::MIN;
            for ms in (0..1000).step_by(40) {
                let out = t.map(ST_V, v(ms));
                assert!(out.dts > last);
                last = out.dts;
            }
            let audio = t.map(st_a(), a(990));
            assert!(!audio.discontinuity);
            // The encoder restarts from zero.
            clock.0.store(1_001_000, Ordering::SeqCst);
            let out = t.map(ST_V, v(0));
            assert!(out.discontinuity, "{mode:?}: backwards jump");
            if mode != TimestampMode::Original {
                assert!(out.dts > last, "{mode:?}: continues forward");
            }
            // The other track's next sample is marked too.
            assert!(t.map(st_a(), a(10)).discontinuity, "{mode:?}");
            assert!(!t.map(st_a(), a(30)).discontinuity, "{mode:?}");
            // A jump hours ahead.
            let before = t.map(ST_V, v(40)).dts;
            let out = t.map(ST_V, v(3_600_000));
            assert!(out.discontinuity, "{mode:?}: forward jump");
            if mode == TimestampMode::ZeroBased {
                assert_eq!(out.dts, before + 40 * 90, "continues one frame later");
            }
            // Small backwards jitter is not a discontinuity.
            let out = t.map(ST_V, v(3_600_000 - 10));
            assert!(!out.discontinuity, "{mode:?}: jitter");
            assert_eq!(t.discontinuities(), 2);
        }
    }
}
