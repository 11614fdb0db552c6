//! The synthetic input shared by the benchmarks: a 6 Mb/s, 30 fps H.264
//! stream (2 s GOP, keyframes 8x the size of other frames) with 128 kb/s
//! 48 kHz AAC, and the LL-HLS + HLS configuration of docs/benchmarks.md.
//! The packager does not look inside slice data, so payload bytes are
//! filler; sizes, counts and timing are those of a real stream.

#![allow(dead_code)]

use bytes::Bytes;
use lockstep_packager::codec::{AacConfig, AvcConfig};
use lockstep_packager::{
    Anchor, CodecConfig, Config, HlsConfig, LlHlsConfig, Sample, Start, StreamDescription, Timescale, Track, TrackId,
};

/// Seconds of media in [`stream`].
pub const SECONDS: i64 = 20;
const SPS: &str = "6764001facd9405005bb0110000003001000000303c0f1831960";
const PPS: &str = "68ebe3cb22c0";

fn hex(s: &str) -> Bytes {
    Bytes::from((0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0)).collect::<Vec<_>>())
}

fn nal(kind: u8, len: usize) -> Bytes {
    let mut v = Vec::with_capacity(len + 4);
    v.extend_from_slice(&(len as u32).to_be_bytes());
    v.push(0x60 | kind);
    v.resize(len + 4, 0xab);
    Bytes::from(v)
}

/// `seconds` of the synthetic stream.
pub fn stream_of(seconds: i64) -> (StreamDescription, Vec<Sample>) {
    let avc = AvcConfig::from_sps_pps(&[hex(SPS)], &[hex(PPS)]).expect("valid SPS/PPS");
    let asc = AacConfig::from_asc(&[0x11, 0x90]).expect("valid ASC");
    let desc = StreamDescription {
        name: "bench/stream".into(),
        tracks: vec![
            Track {
                id: TrackId(1),
                timescale: Timescale::MPEG,
                codec: CodecConfig::H264(avc),
                bitrate_hint: Some(6_000_000),
            },
            Track {
                id: TrackId(2),
                timescale: Timescale::new(48_000).expect("nonzero"),
                codec: CodecConfig::Aac(asc),
                bitrate_hint: Some(128_000),
            },
        ],
        program_date_time_base_ms: 0,
    };
    // 6 Mb/s at 30 fps = 25 000 bytes/frame; a 60-frame GOP with an I-frame
    // 8x the size of a P-frame: P = 1500000/67 bytes.
    let p_size = 6_000_000 / 8 * 2 / 67;
    let key = nal(5, p_size * 8);
    let other = nal(1, p_size);
    let aac = Bytes::from(vec![0x21u8; 128_000 / 8 * 1024 / 48_000]);
    let mut samples = Vec::new();
    let (mut a, frames) = (0i64, 30 * seconds);
    for f in 0..frames {
        let dts = f * 3000;
        samples.push(Sample {
            track: TrackId(1),
            dts,
            pts: dts + 6000,
            keyframe: f % 60 == 0,
            data: if f % 60 == 0 { key.clone() } else { other.clone() },
            discontinuity: false,
        });
        while a * 1024 * 90_000 / 48_000 <= dts {
            samples.push(Sample {
                track: TrackId(2),
                dts: a * 1024,
                pts: a * 1024,
                keyframe: true,
                data: aac.clone(),
                discontinuity: false,
            });
            a += 1;
        }
    }
    (desc, samples)
}

pub fn config() -> Config {
    Config {
        llhls: Some(LlHlsConfig {
            segment_duration_ms: 2000,
            part_duration_ms: 500,
            part_hold_back_ms: 1500,
            segment_count: 10,
        }),
        hls: Some(HlsConfig { segment_duration_ms: 2000, segment_count: 10 }),
        start: Start::StreamStart,
        anchor: Anchor::default(),
    }
}

/// [`SECONDS`] of the synthetic stream.
pub fn stream() -> (StreamDescription, Vec<Sample>) {
    stream_of(SECONDS)
}
