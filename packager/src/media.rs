//! Media vocabulary shared by every part of the packager: timescales, tracks,
//! codec configurations and samples.
//!
//! Time is always an integer number of ticks next to its timescale. Nothing
//! here (or anywhere in this crate) converts a timestamp to floating point on
//! the way to output bytes.

use std::fmt;
use std::num::NonZeroU32;

use bytes::Bytes;

use crate::codec::{AacConfig, AvcConfig};

/// Ticks per second of a clock. 90 kHz for video, the sample rate for audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timescale(NonZeroU32);

impl Timescale {
    /// The MPEG-TS / H.264 system clock.
    pub const MPEG: Timescale = Timescale(match NonZeroU32::new(90_000) {
        Some(v) => v,
        None => unreachable!(),
    });
    /// Milliseconds (RTMP/FLV timestamps, configuration durations).
    pub const MILLIS: Timescale = Timescale(match NonZeroU32::new(1_000) {
        Some(v) => v,
        None => unreachable!(),
    });

    /// A timescale of `hz` ticks per second; `None` for zero.
    pub const fn new(hz: u32) -> Option<Timescale> {
        match NonZeroU32::new(hz) {
            Some(v) => Some(Timescale(v)),
            None => None,
        }
    }

    pub const fn get(self) -> u32 {
        self.0.get()
    }

    /// Convert `ticks` in `self` to `to`, rounding toward negative infinity.
    /// Exact whenever the result is representable; never uses floating point.
    pub fn convert_floor(self, ticks: i64, to: Timescale) -> i64 {
        let num = ticks as i128 * to.get() as i128;
        num.div_euclid(self.get() as i128) as i64
    }

    /// Convert `ticks` in `self` to `to`, rounding toward positive infinity.
    pub fn convert_ceil(self, ticks: i64, to: Timescale) -> i64 {
        let num = ticks as i128 * to.get() as i128;
        let d = self.get() as i128;
        (num.div_euclid(d) + i128::from(num.rem_euclid(d) != 0)) as i64
    }
}

impl fmt::Display for Timescale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}Hz", self.0)
    }
}

/// A point on a track's timeline: ticks in that track's timescale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MediaTime {
    pub ticks: i64,
    pub timescale: Timescale,
}

impl MediaTime {
    pub const fn new(ticks: i64, timescale: Timescale) -> MediaTime {
        MediaTime { ticks, timescale }
    }

    /// Exact comparison across timescales (cross multiplication in i128).
    pub fn cmp_exact(self, other: MediaTime) -> std::cmp::Ordering {
        let a = self.ticks as i128 * other.timescale.get() as i128;
        let b = other.ticks as i128 * self.timescale.get() as i128;
        a.cmp(&b)
    }

    /// Whole milliseconds, rounded toward negative infinity.
    pub fn as_millis_floor(self) -> i64 {
        self.timescale.convert_floor(self.ticks, Timescale::MILLIS)
    }
}

impl fmt::Display for MediaTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ticks, self.timescale.get())
    }
}

/// Identifies a track within a stream. Appears in URLs and in the CMAF
/// `tkhd`/`tfhd` track id, so it must be chosen deterministically by the
/// caller (ingest uses 1 for the first video track and 2 for the first audio
/// track).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrackId(pub u32);

impl fmt::Display for TrackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TrackKind {
    Video,
    Audio,
}

impl TrackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TrackKind::Video => "video",
            TrackKind::Audio => "audio",
        }
    }
}

/// Codec configuration of a track, as carried by the container that brought
/// it (avcC from FLV/MP4, SPS/PPS gathered from Annex B; AudioSpecificConfig).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecConfig {
    H264(AvcConfig),
    Aac(AacConfig),
}

impl CodecConfig {
    pub fn kind(&self) -> TrackKind {
        match self {
            CodecConfig::H264(_) => TrackKind::Video,
            CodecConfig::Aac(_) => TrackKind::Audio,
        }
    }
}

/// One media track of a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    pub id: TrackId,
    /// Timescale of this track's sample timestamps (and of its CMAF `mdhd`).
    pub timescale: Timescale,
    pub codec: CodecConfig,
    /// Nominal bitrate in bits/s if the source announced one (FLV onMetaData
    /// `videodatarate`/`audiodatarate`, configuration). Used for BANDWIDTH.
    pub bitrate_hint: Option<u32>,
}

impl Track {
    pub fn kind(&self) -> TrackKind {
        self.codec.kind()
    }

    /// The name used for this track in URLs, e.g. `video1`, `audio2`.
    pub fn label(&self) -> String {
        format!("{}{}", self.kind().as_str(), self.id.0)
    }
}

/// Everything the packager needs to know about a stream before its first
/// sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamDescription {
    /// `app/stream`, used only in error and event context.
    pub name: String,
    /// At most one video and one audio track are packaged; the video track
    /// (if any) drives segment cuts.
    pub tracks: Vec<Track>,
    /// UTC milliseconds since the Unix epoch at timeline zero. 0 when the
    /// timeline already is epoch-based (SystemClock mode).
    /// EXT-X-PROGRAM-DATE-TIME of a segment = this + its start time.
    pub program_date_time_base_ms: i64,
}

impl StreamDescription {
    pub fn track(&self, id: TrackId) -> Option<&Track> {
        self.tracks.iter().find(|t| t.id == id)
    }
}

/// One access unit on the server timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub track: TrackId,
    /// Decode timestamp, ticks in the track's timescale.
    pub dts: i64,
    /// Presentation timestamp, ticks in the track's timescale.
    pub pts: i64,
    /// Sync sample: an IDR access unit for H.264; every AAC frame is one.
    pub keyframe: bool,
    /// H.264: NAL units, each prefixed by a 4-byte big-endian length.
    /// AAC: one raw access unit (no ADTS header).
    pub data: Bytes,
    /// The ingest timeline broke before this sample (a backwards jump or a
    /// forward jump past the configured bound). The packager starts a new
    /// segment here, tagged EXT-X-DISCONTINUITY.
    pub discontinuity: bool,
}
