// Tests bound their waits with the clock; the library itself never reads it.
#![allow(clippy::disallowed_methods)]

//! The pair property (contract §1, §6): two packagers fed the same samples
//! produce byte-identical objects for everything both produce, whatever
//! their start point, batch sizes or track interleaving.

#[path = "support/golden.rs"]
mod golden;

use golden::*;
use lockstep_packager::{Config, Packager, Point, Sample, Start, StreamDescription, Track, TrackKind};

/// A node that joins at sample `k`: the stream description in force there
/// (configuration changes before `k` applied) and the changes after it,
/// indexed from `k`.
fn join_view(input: &Input, k: usize) -> (StreamDescription, Vec<(usize, Track)>) {
    let mut desc = input.desc.clone();
    let mut later = Vec::new();
    for (at, t) in &input.changes {
        if *at <= k && !input.samples[*at..k].iter().any(|s| s.track == t.id) {
            // Changes whose first sample is at or after k are later ones.
            later.push((*at - (*at).min(k), t.clone()));
        } else if *at < k {
            if let Some(old) = desc.tracks.iter_mut().find(|o| o.id == t.id) {
                *old = t.clone();
            }
        } else {
            later.push((*at - k, t.clone()));
        }
    }
    (desc, later)
}

/// The changes of `input` placed in a reordering `samples` of its samples:
/// each before the same sample of its track as in the input.
fn remap_changes(input: &Input, samples: &[Sample]) -> Vec<(usize, Track)> {
    input
        .changes
        .iter()
        .filter_map(|(at, t)| {
            let first = input.samples[*at..].iter().find(|s| s.track == t.id)?;
            let pos = samples.iter().position(|s| s.track == first.track && s.dts == first.dts)?;
            Some((pos, t.clone()))
        })
        .collect()
}

/// The peer's anchor as of sample `k` (what the timeline agreement hands a
/// node that joins there).
fn anchor_at(input: &Input, config: &Config, k: usize) -> lockstep_packager::Anchor {
    let changes: Vec<(usize, Track)> = input.changes.iter().filter(|(at, _)| *at < k).cloned().collect();
    run_with_changes(&input.desc, config.clone(), &input.samples[..k], &changes, 1).packager.anchor()
}

/// A short window so that a joined packager's playlists cover a full window
/// within the golden inputs' length.
fn pair_config(case: &str) -> Config {
    let mut c = case_config(case);
    if let Some(ll) = &mut c.llhls {
        ll.segment_duration_ms = 2000;
        ll.part_duration_ms = 500;
        ll.part_hold_back_ms = 1500;
        ll.segment_count = 3;
    }
    if let Some(h) = &mut c.hls {
        h.segment_duration_ms = 2000;
        h.segment_count = 3;
    }
    c
}

/// Every media object `b` published is in `a` with the same bytes; returns
/// how many were compared.
fn assert_subset(case: &str, what: &str, a: &Collected, b: &Collected) -> usize {
    let mut n = 0;
    for name in b.media_names() {
        let Some(theirs) = a.objects.get(name) else {
            panic!("{case}: {what}: {name} published only by the second packager");
        };
        assert!(theirs == &b.objects[name], "{case}: {what}: {name} differs");
        n += 1;
    }
    n
}

/// Playlists rendered as of every point both packagers can render with a
/// full window are identical; returns how many were compared.
fn assert_same_playlists(case: &str, what: &str, a: &Run, b: &Run, window: u64) -> usize {
    let mut n = 0;
    for (track, _) in b.packager.renditions() {
        let Some(last) = b.packager.last_point(track) else { continue };
        let first =
            b.c.media_names()
                .iter()
                .filter_map(|name| match b.c.kinds[*name] {
                    lockstep_packager::ObjectKind::Segment { track: t, msn } if t == track => Some(msn),
                    _ => None,
                })
                .min();
        let Some(first) = first else { continue };
        for msn in first + window..=last.msn {
            for part in 0..16 {
                let at = Point { msn, part };
                for skip in [false, true] {
                    let (Some(x), Some(y)) = (
                        a.packager.render_llhls_playlist(track, at, skip),
                        b.packager.render_llhls_playlist(track, at, skip),
                    ) else {
                        continue;
                    };
                    assert_eq!(x, y, "{case}: {what}: playlist of track {track} as of {msn}.{part} (skip={skip})");
                    n += 1;
                }
            }
        }
    }
    n
}

fn joined_at(case: &str, fraction_percent: usize, batch: usize) {
    let input = load(case);
    let config = pair_config(case);
    let a = run_with_changes(&input.desc, config.clone(), &input.samples, &input.changes, 1);
    let k = input.samples.len() * fraction_percent / 100;
    // The joining node adopts its peer's timeline anchor (grid phase,
    // numbering base, configuration versions) as of the join, as the pair's
    // timeline agreement provides.
    let anchor = anchor_at(&input, &config, k);
    assert!(anchor.llhls.is_some() && anchor.hls.is_some());
    let (desc, changes) = join_view(&input, k);
    let b = run_with_changes(
        &desc,
        Config { start: Start::Joined, anchor, ..config },
        &input.samples[k..],
        &changes,
        batch,
    );
    let what = format!("joined at sample {k} ({fraction_percent}%), batch {batch}");
    let n = assert_subset(case, &what, &a.c, &b.c);
    assert!(n >= 6, "{case}: {what}: only {n} objects compared");
    let p = assert_same_playlists(case, &what, &a, &b, 3);
    // The golden inputs are long enough for a full 3-segment window after
    // joining at 15%.
    if fraction_percent <= 15 {
        assert!(p > 0, "{case}: {what}: no playlist compared");
    }
    // Nothing before the first whole segment: the joined packager's first
    // segment is later than the one its first sample belongs to.
    let first_msn = |c: &Collected| {
        c.media_names()
            .iter()
            .filter_map(|n| match c.kinds[*n] {
                lockstep_packager::ObjectKind::Segment { msn, .. } => Some(msn),
                _ => None,
            })
            .min()
    };
    let joined_first = first_msn(&b.c).expect("joined packager published segments");
    let containing =
        a.c.media_names()
            .iter()
            .filter_map(|n| match a.c.kinds[*n] {
                lockstep_packager::ObjectKind::Part { track, msn, .. } if track == input.samples[k].track => {
                    let part = &a.c.objects[*n];
                    let tfdt = lockstep_packager::fmp4::summarize(part).ok()?;
                    let base: i64 =
                        tfdt.split("base_media_decode_time=").nth(1)?.split_whitespace().next()?.parse().ok()?;
                    (base <= input.samples[k].dts).then_some(msn)
                }
                _ => None,
            })
            .max()
            .expect("the joined-at sample is in some segment");
    assert!(joined_first > containing, "{case}: {what}: first segment {joined_first}, joined inside {containing}");
}

/// Move every sample of `kind` `shift` positions later (or earlier for a
/// negative shift) in the interleave, keeping each track's own order.
fn reinterleave(
    samples: &[Sample],
    desc: &lockstep_packager::StreamDescription,
    kind: TrackKind,
    shift: isize,
) -> Vec<Sample> {
    let is_kind = |s: &Sample| desc.track(s.track).is_some_and(|t| t.kind() == kind);
    let mut keyed: Vec<(isize, usize, Sample)> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| (if is_kind(s) { i as isize + shift } else { i as isize }, i, s.clone()))
        .collect();
    keyed.sort_by_key(|(k, i, _)| (*k, *i));
    let out: Vec<Sample> = keyed.into_iter().map(|(_, _, s)| s).collect();
    // Per-track order is preserved.
    for t in &desc.tracks {
        let x: Vec<i64> = samples.iter().filter(|s| s.track == t.id).map(|s| s.dts).collect();
        let y: Vec<i64> = out.iter().filter(|s| s.track == t.id).map(|s| s.dts).collect();
        assert_eq!(x, y);
    }
    out
}

fn interleave_independent(case: &str) {
    let input = load(case);
    let config = pair_config(case);
    let a = run_with_changes(&input.desc, config.clone(), &input.samples, &input.changes, 1);
    for (kind, shift, batch) in [(TrackKind::Audio, 60, 1), (TrackKind::Video, 45, 13), (TrackKind::Audio, -40, 64)] {
        let samples = reinterleave(&input.samples, &input.desc, kind, shift);
        let changes = remap_changes(&input, &samples);
        assert_eq!(changes.len(), input.changes.len());
        let b = run_with_changes(&input.desc, config.clone(), &samples, &changes, batch);
        let what = format!("{kind:?} shifted by {shift}, batch {batch}");
        let n = assert_subset(case, &what, &a.c, &b.c);
        let m = assert_subset(case, &what, &b.c, &a.c);
        assert_eq!(n, m, "{case}: {what}: both publish the same set of objects");
        assert!(assert_same_playlists(case, &what, &a, &b, 0) > 0);
        // The final playlists, too.
        for (name, text) in a.c.playlist_versions.iter().rev().take(3) {
            let theirs = b.c.objects.get(name).map(|x| String::from_utf8_lossy(x).into_owned());
            if a.c.objects[name] == text.as_bytes() {
                assert_eq!(theirs.as_deref(), Some(text.as_str()), "{case}: {what}: final {name}");
            }
        }
    }
}

/// A node that joins late, takes its peer's anchor, and backfills the
/// peer's history when it publishes its first part: from then on every
/// playlist it renders equals the peer's, at every point.
fn joined_with_backfill(case: &str) {
    for percent in [40, 60] {
        joined_with_backfill_at(case, percent);
    }
}

fn joined_with_backfill_at(case: &str, percent: usize) {
    let input = load(case);
    let config = pair_config(case);
    let k = input.samples.len() * percent / 100;
    let mut a = Packager::new(input.desc.clone(), config.clone()).expect("config");
    let mut ca = Collected::default();
    let change_at = |i: usize| input.changes.iter().filter(move |(at, _)| *at == i).map(|(_, t)| t.clone());
    for (i, s) in input.samples[..k].iter().enumerate() {
        for t in change_at(i) {
            a.push_track(t).expect("configuration");
        }
        a.push(s.clone()).expect("push");
    }
    drain(&mut a, &mut ca);
    let (desc, _) = join_view(&input, k);
    let mut b = Packager::new(desc, Config { start: Start::Joined, anchor: a.anchor(), ..config }).expect("config");
    let mut cb = Collected::default();
    let mut imported = None;
    for (i, s) in input.samples.iter().enumerate().skip(k) {
        for t in change_at(i) {
            a.push_track(t.clone()).expect("configuration");
            b.push_track(t).expect("configuration");
        }
        a.push(s.clone()).expect("push");
        b.push(s.clone()).expect("push");
        drain(&mut a, &mut ca);
        // Backfill as soon as the joined node has published anything.
        if imported.is_none() {
            let before = cb.order.len();
            drain(&mut b, &mut cb);
            if cb.order.len() > before {
                imported = Some(b.import_history(&a.export_history()));
            }
        } else {
            drain(&mut b, &mut cb);
        }
    }
    let imported = imported.expect("the joined packager published");
    assert!(imported >= 3, "{case}: backfilled {imported} segments");
    let mut compared = 0;
    for (track, _) in b.renditions() {
        let (Some(last), Some(first)) = (b.last_point(track), cb.media_names().first().copied()) else { continue };
        let _ = first;
        for msn in last.msn.saturating_sub(6)..=last.msn {
            for part in 0..16 {
                let at = Point { msn, part };
                for skip in [false, true] {
                    if let (Some(x), Some(y)) =
                        (a.render_llhls_playlist(track, at, skip), b.render_llhls_playlist(track, at, skip))
                    {
                        assert_eq!(x, y, "{case}: track {track} as of {msn}.{part} skip={skip}");
                        compared += 1;
                    }
                }
            }
        }
    }
    assert!(compared > 20, "{case}: only {compared} playlists compared");
    assert_subset(case, "backfill", &ca, &cb);
}

/// As a server node does it: the joined node backfills once its first
/// classic HLS segment is out (its `ts.m3u8` already published without the
/// peer's older segments). The import publishes `ts.m3u8` again, and from
/// then on it equals the peer's every time both have published one.
fn joined_with_backfill_after_first_ts_segment(case: &str) {
    let input = load(case);
    let config = pair_config(case);
    if config.hls.is_none() {
        return;
    }
    let k = input.samples.len() * 40 / 100;
    let mut a = Packager::new(input.desc.clone(), config.clone()).expect("config");
    let mut ca = Collected::default();
    for s in &input.samples[..k] {
        a.push(s.clone()).expect("push");
    }
    drain(&mut a, &mut ca);
    let mut b = Packager::new(input.desc.clone(), Config { start: Start::Joined, anchor: a.anchor(), ..config })
        .expect("config");
    let mut cb = Collected::default();
    let (mut imported, mut compared) = (None, 0);
    for s in &input.samples[k..] {
        a.push(s.clone()).expect("push");
        b.push(s.clone()).expect("push");
        let (va, vb) = (ca.playlist_versions.len(), cb.playlist_versions.len());
        drain(&mut a, &mut ca);
        drain(&mut b, &mut cb);
        if imported.is_none() && b.hls_started() {
            assert!(cb.objects.contains_key("ts.m3u8"), "{case}: ts.m3u8 published with the first TS segment");
            imported = Some(b.import_history(&a.export_history()));
            drain(&mut b, &mut cb);
            assert_eq!(cb.objects.get("ts.m3u8"), ca.objects.get("ts.m3u8"), "{case}: ts.m3u8 right after the import");
            compared += 1;
        } else if imported.is_some() {
            let new_ts = |c: &Collected, from: usize| c.playlist_versions[from..].iter().any(|(n, _)| n == "ts.m3u8");
            if new_ts(&ca, va) && new_ts(&cb, vb) {
                assert_eq!(cb.objects.get("ts.m3u8"), ca.objects.get("ts.m3u8"), "{case}: ts.m3u8 after the import");
                compared += 1;
            }
        }
    }
    let imported = imported.expect("the joined packager published a TS segment");
    assert!(imported >= 1, "{case}: backfilled {imported} segments");
    assert!(compared >= 1, "{case}: ts.m3u8 never compared");
}

macro_rules! pair_cases {
    ($($case:ident),*) => {
        mod joined {
            use super::*;
            $(
                #[test]
                fn $case() {
                    joined_at(stringify!($case), 15, 7);
                    joined_at(stringify!($case), 30, 3);
                    joined_at(stringify!($case), 55, 1);
                }
            )*
        }
        mod backfill {
            use super::*;
            $(
                #[test]
                fn $case() {
                    joined_with_backfill(stringify!($case));
                    joined_with_backfill_after_first_ts_segment(stringify!($case));
                }
            )*
        }
        mod interleave {
            use super::*;
            $(
                #[test]
                fn $case() {
                    interleave_independent(stringify!($case));
                }
            )*
        }
    };
}

pair_cases!(
    avc30_gop1,
    avc2997_gop2,
    scenecut,
    audio_only,
    video_only,
    far_timestamps,
    config_change,
    config_change_rate
);

/// The MPEG-TS demuxer gives the same samples however the bytes are split.
#[test]
fn ts_chunking_does_not_change_samples() {
    for case in ["avc2997_gop2", "audio_only", "far_timestamps"] {
        let reference = load_chunked(case, 188 * 7);
        for chunk in [1usize, 100, 188, 4093] {
            let other = load_chunked(case, chunk);
            assert_eq!(reference.desc, other.desc, "{case}: chunk {chunk}");
            assert!(reference.samples == other.samples, "{case}: chunk {chunk}: samples differ");
        }
    }
}
