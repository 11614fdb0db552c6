//! MPEG-TS muxing of one classic HLS segment: 2 s of the synthetic 6 Mb/s
//! H.264 + 128 kb/s AAC stream of `common` (60 video frames, 94 AAC
//! frames, ~1.5 MB) into 188-byte packets.
//!
//! Run: `cargo bench -p lockstep-packager --bench ts_mux`

mod common;

use common::stream_of;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lockstep_packager::ts_mux::mux_segment;
use lockstep_packager::{Sample, Track};

fn bench(c: &mut Criterion) {
    let (desc, samples) = stream_of(2);
    let tracks: Vec<&Track> = desc.tracks.iter().collect();
    let samples: Vec<&Sample> = samples.iter().collect();
    let media_bytes: usize = samples.iter().map(|s| s.data.len()).sum();
    let ts = mux_segment(&tracks, &samples).expect("mux");
    assert_eq!(ts.len() % 188, 0, "whole TS packets");

    let mut g = c.benchmark_group("ts_mux");
    g.throughput(Throughput::Bytes(media_bytes as u64));
    g.sample_size(30);
    g.bench_function("segment_2s_6mbps", |b| b.iter(|| mux_segment(&tracks, &samples)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
