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

mod common;

use common::{config, stream, SECONDS};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use lockstep_packager::{Output, Packager, Sample, StreamDescription};

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
