// Benchmarks read the clock to measure; the library itself never does.
#![allow(clippy::disallowed_methods)]
//! How many real-time streams one core can package.
//!
//! A synthetic 6 Mb/s, 30 fps H.264 stream (2 s GOP, keyframes 8x the size
//! of other frames) with 128 kb/s 48 kHz AAC is pushed through the packager
//! with LL-HLS (2 s segments, 0.5 s parts) and HLS (2 s segments) on. The
//! packager does not look inside slice data, so payload bytes are filler;
//! sizes, counts and timing are those of a real stream.
//!
//! Run: `cargo bench -p lockstep-packager --bench packager`
//! The "streams per core" figure is media seconds / CPU seconds; see
//! docs/benchmarks.md.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lockstep_packager::codec::{AacConfig, AvcConfig};
use lockstep_packager::{
    Anchor, CodecConfig, Config, HlsConfig, LlHlsConfig, Output, Packager, Sample, Start, StreamDescription, Timescale,
    Track, TrackId,
};

const SECONDS: i64 = 20;
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

pub fn stream() -> (StreamDescription, Vec<Sample>) {
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
    let (mut a, frames) = (0i64, 30 * SECONDS);
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

fn config() -> Config {
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

fn package(desc: &StreamDescription, samples: &[Sample]) -> usize {
    let mut p = Packager::new(desc.clone(), config()).expect("config");
    let mut bytes = 0usize;
    for s in samples {
        p.push(s.clone()).expect("push");
        while let Some(o) = p.poll_output() {
            if let Output::Object(obj) = o {
                bytes += obj.bytes.len();
            }
        }
    }
    p.finish();
    while p.poll_output().is_some() {}
    bytes
}

fn bench(c: &mut Criterion) {
    let (desc, samples) = stream();
    let media_bytes: usize = samples.iter().map(|s| s.data.len()).sum();
    let mut g = c.benchmark_group("packager");
    g.throughput(Throughput::Bytes(media_bytes as u64));
    g.sample_size(20);
    g.bench_function(format!("{SECONDS}s_6mbps_30fps_llhls_and_hls"), |b| b.iter(|| package(&desc, &samples)));
    g.finish();

    // Streams per core, printed for docs/benchmarks.md.
    let runs = 5;
    let start = std::time::Instant::now();
    for _ in 0..runs {
        std::hint::black_box(package(&desc, &samples));
    }
    let per_run = start.elapsed().as_secs_f64() / f64::from(runs);
    println!(
        "packager: {SECONDS} s of 6 Mb/s 30 fps media packaged (LL-HLS + HLS) in {:.2} ms => {:.0} real-time streams per core",
        per_run * 1000.0,
        SECONDS as f64 / per_run
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
