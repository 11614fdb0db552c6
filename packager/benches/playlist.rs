//! LL-HLS and HLS playlist rendering, the per-point cost of publishing.
//!
//! Every published part makes the server render the rendition's playlist as
//! of that point twice (full and delta update, stored for blocking requests)
//! and the packager render the current one; every HLS segment renders the
//! classic playlist. The input is 30 s of the synthetic stream of
//! `common` (2 s segments, 0.5 s parts, 10 segments per playlist), so the
//! window is full.
//!
//! Run: `cargo bench -p lockstep-packager --bench playlist`

mod common;

use std::collections::VecDeque;

use common::{config, stream_of};
use criterion::{criterion_group, criterion_main, Criterion};
use lockstep_packager::playlist::{render_hls_media, History};
use lockstep_packager::{Packager, Point, TrackId};

fn packaged(seconds: i64) -> Packager {
    let (desc, samples) = stream_of(seconds);
    let mut p = Packager::new(desc, config()).expect("config");
    for s in samples {
        p.push(s).expect("push");
        while p.poll_output().is_some() {}
    }
    p
}

fn bench(c: &mut Criterion) {
    let p = packaged(30);
    let video = TrackId(1);
    let last = p.last_point(video).expect("a published point");
    // A point a few segments back, still in the retained history: what a
    // blocking request for an older point is answered with.
    let older = Point { msn: last.msn - 3, part: 1 };
    let full = p.render_llhls_playlist(video, last, false).expect("full playlist");
    let delta = p.render_llhls_playlist(video, last, true).expect("delta playlist");
    assert!(p.render_llhls_playlist(video, older, false).is_some(), "older point retained");
    assert!(delta.len() < full.len(), "delta update is shorter than the full playlist");

    let hls = History { entries: VecDeque::from(p.export_history().hls) };

    let mut g = c.benchmark_group("playlist");
    g.bench_function("llhls_full", |b| b.iter(|| p.render_llhls_playlist(video, last, false)));
    g.bench_function("llhls_delta", |b| b.iter(|| p.render_llhls_playlist(video, last, true)));
    g.bench_function("llhls_as_of_older_point", |b| b.iter(|| p.render_llhls_playlist(video, older, false)));
    g.bench_function("hls_media", |b| b.iter(|| render_hls_media(&hls, 2, 10, 0, false)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
