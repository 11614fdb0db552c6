//! What the depacketizers (FLV tags, MPEG-TS) produce.

use crate::codec::CodecError;
use crate::media::{Sample, Track};

/// Output of a depacketizer, in input order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DemuxEvent {
    /// A track's codec configuration became known, or changed (new SPS/PPS,
    /// new AudioSpecificConfig). Always precedes that track's samples.
    Track(Track),
    /// One access unit, timestamps in the track's timescale.
    Sample(Sample),
}

/// Malformed input. Carries enough context to find the offending bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DemuxError {
    #[error("{stream}: FLV {what} at tag {tag} (timestamp {timestamp_ms} ms): {reason}")]
    Flv { stream: String, what: &'static str, tag: u64, timestamp_ms: i64, reason: String },
    #[error("{stream}: MPEG-TS at byte {offset} (PID {pid:#x}): {reason}")]
    Ts { stream: String, offset: u64, pid: u16, reason: String },
    #[error("{stream}: codec configuration: {source}")]
    Codec {
        stream: String,
        #[source]
        source: CodecError,
    },
}
