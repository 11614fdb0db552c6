// Tests bound their waits with the clock; the library itself never reads it.
#![allow(clippy::disallowed_methods)]

//! Golden tests: every golden input is packaged, and
//! - every playlist and a listing of every object (name, size, SHA-256, box
//!   or packet summary) is compared with the insta snapshots in
//!   `golden/<case>/snapshots/`;
//! - every playlist version the packager published passes the HLS checker;
//! - every LL-HLS track (init + parts, and init + segments) and the classic
//!   HLS TS segments decode with ffmpeg without errors, to the input's frames.

#[path = "support/golden.rs"]
mod golden;
#[path = "support/hls_check.rs"]
mod hls_check;

use std::fmt::Write as _;
use std::path::Path;

use golden::*;
use lockstep_packager::playlist::{self, Point};
use lockstep_packager::{fmp4, Event, Format, ObjectKind, TrackKind};

fn part_line(bytes: &[u8]) -> String {
    let tree = fmp4::summarize(bytes).unwrap_or_else(|e| format!("UNPARSEABLE: {e}"));
    tree.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("mfhd") || l.starts_with("tfdt") || l.starts_with("trun"))
        .collect::<Vec<_>>()
        .join(" | ")
}

fn listing(run: &Run) -> String {
    let c = &run.c;
    let mut s = String::new();
    for name in c.media_names() {
        let b = &c.objects[name];
        let hash = &sha256_hex(b)[..16];
        let _ = write!(s, "{name} size={} sha256={hash}", b.len());
        match c.kinds[name] {
            ObjectKind::Init { .. } => {
                s.push('\n');
                for l in fmp4::summarize(b).unwrap_or_else(|e| format!("UNPARSEABLE: {e}")).lines() {
                    let _ = writeln!(s, "    {l}");
                }
            }
            ObjectKind::Part { .. } => {
                let _ = writeln!(s, " {}", part_line(b));
            }
            ObjectKind::Segment { .. } => {
                let moofs = fmp4::summarize(b).map(|t| t.lines().filter(|l| l.starts_with("moof")).count());
                let _ = writeln!(s, " chunks={}", moofs.unwrap_or(0));
            }
            ObjectKind::TsSegment { .. } => {
                s.push('\n');
                let summary = lockstep_packager::ts_inspect::summarize_ts(b)
                    .map(|x| x.to_string())
                    .unwrap_or_else(|e| format!("UNPARSEABLE: {e}"));
                for l in summary.lines() {
                    let _ = writeln!(s, "    {l}");
                }
            }
            _ => s.push('\n'),
        }
    }
    let _ = writeln!(s, "retired: {}", c.retired.join(" "));
    s
}

fn playlists(run: &Run) -> String {
    let c = &run.c;
    let p = &run.packager;
    let mut s = String::new();
    for name in [playlist::LLHLS_MASTER, playlist::HLS_MASTER] {
        if let Some(b) = c.objects.get(name) {
            let _ = writeln!(s, "===== {name}\n{}", String::from_utf8_lossy(b));
        }
    }
    for (track, label) in p.renditions() {
        let name = playlist::media_playlist_name(&label);
        let _ = writeln!(s, "===== {name} (final)\n{}", String::from_utf8_lossy(&c.objects[&name]));
        // As of an early point and as a delta update at the end.
        if let Some(last) = p.last_point(track) {
            let early = Point { msn: last.msn.saturating_sub(2), part: 1 };
            if let Some(text) = p.render_llhls_playlist(track, early, false) {
                let _ = writeln!(s, "===== {name} as of {}.{}\n{text}", early.msn, early.part);
            }
            if let Some(text) = p.render_llhls_playlist(track, last, true) {
                let _ = writeln!(s, "===== {name} delta (_HLS_skip=YES) as of {}.{}\n{text}", last.msn, last.part);
            }
        }
    }
    if let Some(b) = c.objects.get(playlist::HLS_MEDIA) {
        let _ = writeln!(s, "===== {} (final)\n{}", playlist::HLS_MEDIA, String::from_utf8_lossy(b));
    }
    s
}

fn events(run: &Run) -> String {
    let mut s = String::new();
    for e in &run.c.events {
        let _ = writeln!(s, "{e:?}");
    }
    if s.is_empty() {
        s.push_str("(none)\n");
    }
    s
}

fn check_playlists(case: &str, run: &Run) {
    let c = &run.c;
    // Segments the packager had to cut at a non-keyframe (the encoder's
    // keyframe interval broke the grid) and reported as such may lack an
    // INDEPENDENT part: that SHOULD is waived for them, and only for them.
    let forced: std::collections::BTreeSet<u64> = c
        .events
        .iter()
        .filter_map(|e| match e {
            Event::KeyframeIntervalTooLong { msn, format: Format::LlHls, .. } => Some(*msn),
            _ => None,
        })
        .collect();
    let reported = |v: &hls_check::Violation| {
        v.rule == hls_check::rules::LL_INDEPENDENT && forced.iter().any(|m| v.detail.contains(&format!("segment {m} ")))
    };
    let mut waived = 0;
    let mut problems = Vec::new();
    for (name, text) in &c.playlist_versions {
        for v in hls_check::check_media_playlist(text) {
            if reported(&v) {
                waived += 1;
                continue;
            }
            problems.push(format!("{name}: line {}: [{}] {}\n{text}", v.line, v.rule, v.detail));
        }
    }
    if forced.is_empty() {
        assert_eq!(waived, 0);
    }
    for name in [playlist::LLHLS_MASTER, playlist::HLS_MASTER] {
        let text = String::from_utf8_lossy(&c.objects[name]).into_owned();
        for v in hls_check::check_master_playlist(&text) {
            problems.push(format!("{name}: line {}: [{}] {}", v.line, v.rule, v.detail));
        }
    }
    // Successive versions of each playlist are consistent.
    let mut by_name: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (name, text) in &c.playlist_versions {
        by_name.entry(name).or_default().push(text);
    }
    for (name, versions) in &by_name {
        for v in hls_check::check_playlist_sequence(versions) {
            problems.push(format!("{name} (sequence): [{}] {}", v.rule, v.detail));
        }
    }
    // Delta updates equal the full playlist minus the skipped segments, at
    // every point of the last few segments.
    let p = &run.packager;
    for (track, label) in p.renditions() {
        let Some(last) = p.last_point(track) else { continue };
        for msn in last.msn.saturating_sub(3)..=last.msn {
            for part in 0..8 {
                let at = Point { msn, part };
                let (Some(full), Some(delta)) =
                    (p.render_llhls_playlist(track, at, false), p.render_llhls_playlist(track, at, true))
                else {
                    continue;
                };
                for v in hls_check::check_delta_update(&full, &delta).into_iter().filter(|v| !reported(v)) {
                    problems.push(format!("{label} delta as of {msn}.{part}: [{}] {}", v.rule, v.detail));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{case}: HLS checker found problems:\n{}", problems.join("\n"));
    assert!(c.playlist_versions.len() > 10, "{case}: too few playlist versions to be meaningful");
}

fn write_concat(dir: &Path, file: &str, parts: &[&[u8]]) -> std::path::PathBuf {
    let path = dir.join(file);
    let mut all = Vec::new();
    for p in parts {
        all.extend_from_slice(p);
    }
    std::fs::write(&path, all).expect("write");
    path
}

/// Decoded frames of the output equal the input's.
fn check_decode(case: &str, input: &Input, run: &Run) {
    require_ffmpeg();
    let dir = temp_dir(&format!("golden-{case}"));
    let c = &run.c;
    let src = input_path(case);
    let has = |k: TrackKind| input.desc.tracks.iter().any(|t| t.kind() == k);
    let (in_v, err) = if has(TrackKind::Video) { framemd5(&src, "v") } else { (vec![], String::new()) };
    assert!(err.is_empty(), "{case}: input decode errors: {err}");
    let (in_a, err) = if has(TrackKind::Audio) { framemd5(&src, "a") } else { (vec![], String::new()) };
    assert!(err.is_empty(), "{case}: input decode errors: {err}");

    let compare_frames = |what: &str, stream: &str, out: &[String], err: &str| {
        assert!(err.is_empty(), "{case}: {what}: ffmpeg reported errors:\n{err}");
        if stream == "v" {
            assert_eq!(out.len(), in_v.len(), "{case}: {what}: video frame count");
            assert!(out == in_v, "{case}: {what}: decoded video frames differ from the input's");
        } else {
            // AAC frames overlap: the first decoded frame of a cut stream
            // can differ; everything after it must match the input.
            assert!(
                out.len() + 2 >= in_a.len() * 9 / 10,
                "{case}: {what}: only {} of {} audio frames",
                out.len(),
                in_a.len()
            );
            assert!(
                contains_run(&in_a, &out[1.min(out.len())..]),
                "{case}: {what}: decoded audio differs from the input's"
            );
        }
    };
    let compare = |what: &str, stream: &str, file: &Path| {
        let (out, err) = framemd5(file, stream);
        compare_frames(what, stream, &out, &err);
    };

    // Each configuration version decodes from its own init segment: the
    // output is cut into ranges of one version (a discontinuity each) and
    // the ranges' frames, one after the other, must be the input's.
    let history = run.packager.export_history();
    for (track, label) in run.packager.renditions() {
        let kind = input.desc.track(track).map(|t| t.kind()).expect("track");
        let stream = if kind == TrackKind::Video { "v" } else { "a" };
        let versions: std::collections::BTreeMap<u64, u32> = history
            .llhls
            .iter()
            .find(|(t, _)| *t == track)
            .map(|(_, es)| es.iter().map(|e| (e.msn, e.init_version)).collect())
            .unwrap_or_default();
        // The track's configuration of each version (0: the description's).
        let mut configs = vec![input.desc.track(track).expect("track").clone()];
        configs.extend(input.changes.iter().filter(|(_, t)| t.id == track).map(|(_, t)| t.clone()));
        let mut parts: Vec<(u64, u32, &[u8])> = Vec::new();
        let mut segs: Vec<(u64, &[u8])> = Vec::new();
        for name in c.media_names() {
            match c.kinds[name] {
                ObjectKind::Part { track: t, msn, part } if t == track => parts.push((msn, part, &c.objects[name])),
                ObjectKind::Segment { track: t, msn } if t == track => segs.push((msn, &c.objects[name])),
                _ => {}
            }
        }
        parts.sort_by_key(|p| (p.0, p.1));
        segs.sort_by_key(|s| s.0);
        for (what, objs) in
            [("init+parts", parts.iter().map(|p| (p.0, p.2)).collect::<Vec<_>>()), ("init+segments", segs.clone())]
        {
            let mut ranges: Vec<(u32, Vec<&[u8]>)> = Vec::new();
            for (msn, b) in objs {
                let v = *versions.get(&msn).expect("every published segment is in the history");
                match ranges.last_mut() {
                    Some((last, bs)) if *last == v => bs.push(b),
                    _ => ranges.push((v, vec![b])),
                }
            }
            if kind == TrackKind::Audio && ranges.len() > 1 {
                // Audio across a configuration change: each range decodes
                // cleanly and, where its sample rate is the input's first
                // (ffmpeg resamples the input's later ranges to it), matches.
                let mut total = 0;
                for (k, (v, bs)) in ranges.iter().enumerate() {
                    let init = &c.objects[&playlist::init_name_version(&label, *v)];
                    let mut all: Vec<&[u8]> = vec![init];
                    all.extend(bs);
                    let file = write_concat(&dir, &format!("{label}-{what}-{k}.mp4"), &all);
                    let (out, err) = framemd5(&file, stream);
                    assert!(err.is_empty(), "{case}: {what} range {k}: ffmpeg reported errors:\n{err}");
                    total += out.len();
                    let rate = |t: &lockstep_packager::Track| t.timescale;
                    if configs.get(*v as usize).map(rate) == configs.first().map(rate) {
                        assert!(
                            contains_run(&in_a, &out[1.min(out.len())..]),
                            "{case}: {what} range {k}: decoded audio differs from the input's"
                        );
                    }
                }
                assert!(total + 2 * ranges.len() >= in_a.len() * 9 / 10, "{case}: {what}: {total} audio frames");
                continue;
            }
            let mut out = Vec::new();
            let mut errs = String::new();
            for (k, (v, bs)) in ranges.iter().enumerate() {
                let init = &c.objects[&playlist::init_name_version(&label, *v)];
                let mut all: Vec<&[u8]> = vec![init];
                all.extend(bs);
                let file = write_concat(&dir, &format!("{label}-{what}-{k}.mp4"), &all);
                let (o, e) = framemd5(&file, stream);
                out.extend(o);
                errs.push_str(&e);
            }
            compare_frames(what, stream, &out, &errs);
        }
    }

    let mut ts: Vec<(u64, &[u8])> = c
        .media_names()
        .into_iter()
        .filter_map(|n| match c.kinds[n] {
            ObjectKind::TsSegment { msn } => Some((msn, &c.objects[n][..])),
            _ => None,
        })
        .collect();
    ts.sort_by_key(|t| t.0);
    let tsfile = write_concat(&dir, "all.ts", &ts.iter().map(|t| t.1).collect::<Vec<_>>());
    for (k, stream) in [(TrackKind::Video, "v"), (TrackKind::Audio, "a")] {
        if has(k) {
            compare("TS segments", stream, &tsfile);
        }
    }
    // Each TS segment is self-contained: PAT/PMT first, counters from 0.
    for (msn, b) in &ts {
        let sum = lockstep_packager::ts_inspect::summarize_ts(b).expect("TS parses");
        assert!(sum.starts_with_pat_pmt(), "{case}: ts_{msn}.ts does not start with PAT, PMT");
        assert!(sum.cc_continuous_from_zero(), "{case}: ts_{msn}.ts continuity counters");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn golden_case(case: &str) {
    let (input, run) = run_case(case);
    assert!(!input.samples.is_empty(), "{case}: no samples demuxed");
    let snapshots = golden_dir(case).join("snapshots");
    insta::with_settings!({ snapshot_path => snapshots, prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!("objects", listing(&run));
        insta::assert_snapshot!("playlists", playlists(&run));
        insta::assert_snapshot!("events", events(&run));
    });
    check_playlists(case, &run);
    check_decode(case, &input, &run);
}

#[test]
fn avc30_gop1() {
    golden_case("avc30_gop1");
}

#[test]
fn avc2997_gop2() {
    golden_case("avc2997_gop2");
}

#[test]
fn scenecut() {
    golden_case("scenecut");
}

#[test]
fn audio_only() {
    golden_case("audio_only");
}

#[test]
fn video_only() {
    golden_case("video_only");
}

#[test]
fn far_timestamps() {
    golden_case("far_timestamps");
}

#[test]
fn config_change() {
    golden_case("config_change");
}

#[test]
fn config_change_rate() {
    golden_case("config_change_rate");
}
