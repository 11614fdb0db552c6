//! Limits on what one publisher may send, whatever the provider: a maximum
//! bitrate (`MaxBitrateKbps`) and timestamps that keep advancing. Both are
//! checked in the stream's session on the demuxed samples, with the
//! session's arrival clock; a breach ends the stream with a reason naming
//! the limit (the session logs it with the stream's name).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lockstep_packager::TrackId;

use tracing::info;

use crate::config::BITRATE_BURST;
use crate::store::StreamKey;
use crate::throttle::Throttle;

/// A token bucket over sample payload bytes: refilled at the maximum
/// bitrate, holding at most [`BITRATE_BURST`] of it.
#[derive(Debug)]
pub struct BitrateGuard {
    /// Bytes per second; `None`: no limit.
    rate: Option<u64>,
    /// Bytes that may still arrive now.
    tokens: f64,
    at: Instant,
    kbps: u64,
}

impl BitrateGuard {
    pub fn new(max_kbps: Option<u64>, now: Instant) -> BitrateGuard {
        let rate = max_kbps.map(|k| k.saturating_mul(1000) / 8);
        let tokens = rate.map_or(0.0, |r| r as f64 * BITRATE_BURST.as_secs_f64());
        BitrateGuard { rate, tokens, at: now, kbps: max_kbps.unwrap_or(0) }
    }

    /// `bytes` of media arrived at `now`; `Err` once the publisher is over
    /// the limit.
    pub fn admit(&mut self, bytes: u64, now: Instant) -> Result<(), String> {
        let Some(rate) = self.rate else { return Ok(()) };
        let cap = rate as f64 * BITRATE_BURST.as_secs_f64();
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens = (self.tokens + elapsed * rate as f64).min(cap) - bytes as f64;
        if self.tokens < 0.0 {
            return Err(format!(
                "the publisher sends media faster than MaxBitrateKbps ({} kb/s, averaged over {} s)",
                self.kbps,
                BITRATE_BURST.as_secs()
            ));
        }
        Ok(())
    }
}

/// A track whose encoder timestamps stay put for this long (of arrival
/// time) while its samples keep coming ends the stream: the packager drops
/// samples whose DTS does not advance, so the stream would freeze for good.
pub const STUCK_TIMESTAMPS: Duration = Duration::from_secs(5);
/// ... and for at least this many samples (a slow audio-only trickle is not
/// stuck).
pub const STUCK_MIN_SAMPLES: u64 = 30;

#[derive(Debug)]
struct Run {
    dts: i64,
    since: Instant,
    samples: u64,
}

/// Watches each track for timestamps that stop advancing.
#[derive(Debug, Default)]
pub struct StuckGuard {
    runs: BTreeMap<TrackId, Run>,
}

impl StuckGuard {
    /// A sample of `track` with source DTS `dts` (any timescale, compared
    /// within the track only) arrived at `now`.
    pub fn check(&mut self, track: TrackId, dts: i64, now: Instant) -> Result<(), String> {
        match self.runs.get_mut(&track) {
            // Not after the previous sample: the run goes on (a step back
            // followed by advancing timestamps ends it at once).
            Some(r) if dts <= r.dts => {
                if r.samples == 0 {
                    r.since = now;
                }
                r.samples += 1;
                r.dts = dts;
                let stuck = now.saturating_duration_since(r.since);
                if stuck >= STUCK_TIMESTAMPS && r.samples >= STUCK_MIN_SAMPLES {
                    return Err(format!(
                        "the encoder timestamps of track {track} have not advanced for {} ms ({} samples, \
                         none after the previous one; DTS {})",
                        stuck.as_millis(),
                        r.samples,
                        r.dts
                    ));
                }
            }
            _ => {
                self.runs.insert(track, Run { dts, since: now, samples: 0 });
            }
        }
        Ok(())
    }
}

/// The limits of one stream's publisher, and the throttle of its
/// discontinuity log line.
#[derive(Debug)]
pub struct Guards {
    bitrate: BitrateGuard,
    stuck: StuckGuard,
    discontinuities: Throttle,
}

impl Guards {
    pub fn new(max_kbps: Option<u64>, now: Instant) -> Guards {
        Guards {
            bitrate: BitrateGuard::new(max_kbps, now),
            stuck: StuckGuard::default(),
            discontinuities: Throttle::new(Duration::from_secs(1)),
        }
    }

    /// A sample of `track` (source DTS `dts`, `bytes` of payload) arrived.
    pub fn sample(&mut self, track: TrackId, dts: i64, bytes: u64) -> Result<(), String> {
        let now = Instant::now();
        self.bitrate.admit(bytes, now)?;
        self.stuck.check(track, dts, now)
    }

    /// The timeline re-anchored `track` at a timestamp jump: log it (at
    /// most once a second per stream).
    pub fn discontinuity(&self, key: &StreamKey, track: TrackId, src_dts: i64, out_dts: i64, total: u64) {
        if let Some(due) = self.discontinuities.note(Instant::now()) {
            info!(
                stream = %key,
                track = %track,
                source_dts = src_dts,
                timeline_dts = out_dts,
                jumps = due.count,
                total,
                "encoder timestamps jumped (MaxTimestampJumpMs or backwards): discontinuity, the stream continues"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn bitrate_allows_bursts_and_the_rate_but_not_more() {
        let t0 = Instant::now();
        // 8000 kb/s = 1 MB/s; the bucket holds 4 MB.
        let mut g = BitrateGuard::new(Some(8000), t0);
        assert!(g.admit(3_900_000, t0).is_ok(), "a burst within the bucket");
        // Then exactly the rate for 10 s.
        for i in 1..=100u32 {
            assert!(g.admit(100_000, t0 + 100 * i * MS).is_ok(), "at the rate, step {i}");
        }
        // Twice the rate runs the bucket dry within a second.
        let mut over = None;
        for i in 1..=100u32 {
            if g.admit(200_000, t0 + 10_000 * MS + 100 * i * MS).is_err() {
                over = Some(i);
                break;
            }
        }
        assert!(matches!(over, Some(1..=2)), "{over:?}");
        let mut none = BitrateGuard::new(None, t0);
        assert!(none.admit(u64::MAX / 2, t0).is_ok());
    }

    #[test]
    fn stuck_timestamps_need_both_time_and_samples() {
        let t0 = Instant::now();
        let v = TrackId(1);
        let mut g = StuckGuard::default();
        // Advancing: never stuck.
        for i in 0..1000i64 {
            assert!(g.check(v, i * 3000, t0 + Duration::from_millis(i as u64 * 33)).is_ok());
        }
        // Constant on one track: stuck after 5 s and 30 samples.
        let t1 = t0 + Duration::from_secs(40);
        let mut failed = None;
        for i in 0..200u64 {
            let now = t1 + Duration::from_millis(i * 33);
            if let Err(e) = g.check(v, 5, now) {
                failed = Some((i, e));
                break;
            }
        }
        let (i, e) = failed.expect("stuck");
        assert!((150..=153).contains(&i), "{i}");
        assert!(e.contains("track 1"), "{e}");
        // A step back, then advancing again from there: not stuck.
        let mut g = StuckGuard::default();
        for i in 0..400i64 {
            let dts = if i < 100 { 1_000_000 + i * 3000 } else { i * 3000 };
            assert!(g.check(v, dts, t0 + Duration::from_millis(i as u64 * 33)).is_ok(), "{i}");
        }
        // Few samples over a long time: not stuck.
        let mut g = StuckGuard::default();
        for i in 0..20u64 {
            assert!(g.check(v, 0, t0 + Duration::from_secs(i)).is_ok());
        }
    }
}
