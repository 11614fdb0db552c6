//! End-to-end proof of the HTTP delivery (src/http.rs) against the HLS
//! specification: the real `lockstep` binary, ffmpeg pushing a 1 s GOP over
//! RTMP in real time (`-re`), default 2 s segments and 0.5 s parts, and an
//! HLS checker written from draft-pantos-hls-rfc8216bis
//! (packager/tests/support/hls_check.rs).
//!
//! - `live_output_conforms_for_60s`: 60 s of live output read the way
//!   players read it (non-blocking polls, blocking reloads of the hinted part,
//!   delta updates); every playlist, delta, sequence of snapshots and set of
//!   renditions is checked, and every URI listed is fetched while listed.
//! - `blocking_reload_returns_at_publication`: a held playlist request and the
//!   held preload-hint request are released together, and only when the part
//!   is published.
//! - `blocking_request_limits`, `held_request_times_out_with_503`: 400 / 404 /
//!   503 answers.
//! - `http_semantics`, `cors_with_a_list_of_origins`: Cache-Control, ETag and
//!   304, HEAD, ranges, gzip, CORS, repeatable blocking responses.
//!
//! Not tested: that `_HLS_*` parameters are ignored once a playlist has
//! EXT-X-ENDLIST. A stream is removed from the store the moment it ends
//! (every URL answers 404), so no ENDLIST playlist is ever served.

mod support;

#[path = "../packager/tests/support/hls_check.rs"]
mod hls_check;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hls_check::{
    check_delta_update, check_master_playlist, check_media_playlist, check_playlist_sequence, check_renditions, render,
};
use support::*;

const BASE: &str = "/app/stream";

// ------------------------------------------------------------ helpers ---

/// The 80 s FLV input (320x240, 30 fps, GOP 30 frames = 1 s, AAC), made once
/// per test binary.
fn input() -> PathBuf {
    static ONCE: Mutex<()> = Mutex::new(());
    let _g = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("lockstep-e2e-delivery-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("input dir");
    standard_input(&dir, "flv", 80)
}

/// A server with `app/stream` being pushed over RTMP. The push is dropped
/// (killed) first.
struct Live {
    push: Proc,
    server: Server,
}

impl Live {
    fn start(tag: &str, app: AppXml) -> Live {
        let server = Server::start_with(tag, &[app]);
        Live::push_to(server)
    }

    fn push_to(server: Server) -> Live {
        let push = ffmpeg_push(&input(), "flv", &server.rtmp_url("app", "stream"));
        let live = Live { push, server };
        live.wait_playlist();
        live
    }

    fn port(&self) -> u16 {
        self.server.ports.http
    }

    /// The video playlist once it is served with a preload hint.
    fn wait_playlist(&self) -> String {
        wait_for("app/stream/video1.m3u8 with a preload hint", Duration::from_secs(20), || {
            let log = self.server.log_text();
            assert!(!log.contains("panicked"), "server panicked:\n{log}");
            let (st, text) = get(self.port(), &format!("{BASE}/video1.m3u8"));
            (st == 200 && hint(&text).is_some()).then_some(text)
        })
    }

    /// Until classic HLS is served too (its first TS segment is complete).
    fn wait_ts(&self) {
        wait_for("app/stream/ts.m3u8", Duration::from_secs(10), || {
            (get(self.port(), &format!("{BASE}/ts.m3u8")).0 == 200).then_some(())
        });
    }

    /// The video playlist as of a point published just now: a blocking
    /// request for the part hinted by the current playlist.
    fn fresh_point(&self) -> (Pt, String) {
        let pl = self.wait_playlist();
        let (_, h) = hint(&pl).expect("a preload hint");
        let (st, text) = blocking(self.port(), "video1", h, "");
        assert_eq!(st, 200, "blocking request for {h:?}");
        (h, text)
    }
}

fn get(port: u16, path: &str) -> (u16, String) {
    let (st, body) = http_get(port, path);
    (st, String::from_utf8_lossy(&body).into_owned())
}

/// `?_HLS_msn=M&_HLS_part=P` + `extra`.
fn blocking_query(p: Pt, extra: &str) -> String {
    format!("?_HLS_msn={}&_HLS_part={}{extra}", p.msn, p.part)
}

fn blocking(port: u16, label: &str, p: Pt, extra: &str) -> (u16, String) {
    get(port, &format!("{BASE}/{label}.m3u8{}", blocking_query(p, extra)))
}

/// An LL-HLS point: part `part` of segment `msn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pt {
    msn: u64,
    part: u32,
}

/// `video1_12.3.m4s` → (video1, 12.3).
fn parse_part_uri(uri: &str) -> Option<(&str, Pt)> {
    let (label, rest) = uri.strip_suffix(".m4s")?.rsplit_once('_')?;
    let (msn, part) = rest.split_once('.')?;
    Some((label, Pt { msn: msn.parse().ok()?, part: part.parse().ok()? }))
}

/// The value of attribute `name` in a tag line, quotes removed.
fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.split_once(':')?.1;
    let start = rest.find(&format!("{name}="))?;
    // Make sure it is a whole attribute name.
    if start > 0 && !rest[..start].ends_with(',') {
        return None;
    }
    let v = &rest[start + name.len() + 1..];
    match v.strip_prefix('"') {
        Some(q) => q.split('"').next(),
        None => v.split(',').next(),
    }
}

/// The preload hint: (URI, point).
fn hint(pl: &str) -> Option<(String, Pt)> {
    let line = pl.lines().find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))?;
    let uri = attr(line, "URI")?;
    Some((uri.to_string(), parse_part_uri(uri)?.1))
}

/// The last EXT-X-PART: (URI, point, DURATION).
fn last_part(pl: &str) -> Option<(String, Pt, f64)> {
    let line = pl.lines().rev().find(|l| l.starts_with("#EXT-X-PART:"))?;
    let uri = attr(line, "URI")?;
    Some((uri.to_string(), parse_part_uri(uri)?.1, attr(line, "DURATION")?.parse().ok()?))
}

fn target_duration(pl: &str) -> u32 {
    pl.lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("EXT-X-TARGETDURATION")
}

fn skipped_segments(pl: &str) -> u64 {
    pl.lines()
        .find(|l| l.starts_with("#EXT-X-SKIP:"))
        .and_then(|l| attr(l, "SKIPPED-SEGMENTS")?.parse().ok())
        .unwrap_or(0)
}

/// LAST-MSN / LAST-PART of the rendition report for `uri`.
fn rendition_report(pl: &str, uri: &str) -> Option<Pt> {
    let line =
        pl.lines().filter(|l| l.starts_with("#EXT-X-RENDITION-REPORT:")).find(|l| attr(l, "URI") == Some(uri))?;
    Some(Pt { msn: attr(line, "LAST-MSN")?.parse().ok()?, part: attr(line, "LAST-PART")?.parse().ok()? })
}

/// The last complete segment's URI.
fn last_segment(pl: &str) -> Option<&str> {
    pl.lines().rev().find(|l| !l.is_empty() && !l.starts_with('#'))
}

/// Media playlists named by a master playlist (variants and renditions).
fn media_of_master(master: &str) -> Vec<String> {
    let mut out: Vec<String> = master
        .lines()
        .filter(|l| l.starts_with("#EXT-X-MEDIA:"))
        .filter_map(|l| attr(l, "URI").map(String::from))
        .chain(master.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).map(String::from))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A first sanity check of an object's bytes by its name.
fn looks_right(uri: &str, body: &[u8]) -> bool {
    let tag = |t: &[u8]| body.len() > 8 && &body[4..8] == t;
    if uri.ends_with("_init.mp4") {
        tag(b"ftyp")
    } else if uri.ends_with(".m4s") {
        tag(b"moof")
    } else if uri.ends_with(".ts") {
        !body.is_empty() && body.chunks(188).all(|p| p.len() == 188 && p[0] == 0x47)
    } else {
        !body.is_empty()
    }
}

fn cache_control(h: &Headers) -> &str {
    header(h, "cache-control").unwrap_or("")
}

/// `max-age=N` of a Cache-Control value.
fn max_age(cc: &str) -> Option<u64> {
    cc.split(',').find_map(|d| d.trim().strip_prefix("max-age=")?.parse().ok())
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b).read_to_end(&mut out).expect("valid gzip");
    out
}

/// Failures collected from several threads, reported together.
#[derive(Default)]
struct Failures(Mutex<Vec<String>>);

impl Failures {
    fn add(&self, msg: String) {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if v.len() < 200 {
            v.push(msg);
        }
    }

    fn check(&self, what: &str, violations: Vec<hls_check::Violation>, text: &str) {
        if !violations.is_empty() {
            self.add(format!("{what}: {}\n--- playlist ---\n{text}", render(&violations)));
        }
    }

    fn assert_none(&self) {
        let v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        assert!(v.is_empty(), "{} failure(s):\n{}", v.len(), v.join("\n\n"));
    }
}

/// Fetches every URI a playlist lists that was not fetched before; each must
/// answer 200 with plausible bytes. Returns how many were fetched.
fn fetch_listed(port: u16, from: &str, pl: &str, fetched: &Mutex<BTreeSet<String>>, fails: &Failures) -> usize {
    let mut n = 0;
    for uri in playlist_uris(pl) {
        if !fetched.lock().unwrap_or_else(|e| e.into_inner()).insert(uri.clone()) {
            continue;
        }
        let (st, body) = http_get(port, &format!("{BASE}/{uri}"));
        n += 1;
        if st != 200 {
            fails.add(format!("{uri} listed in {from} but GET answered {st}"));
        } else if !looks_right(&uri, &body) {
            fails.add(format!("{uri} listed in {from}: unexpected bytes ({} bytes)", body.len()));
        }
    }
    n
}

// -------------------------------------------------------- conformance ---

#[derive(Default, Debug)]
struct FollowStats {
    blocking: usize,
    deltas: usize,
    deltas_skipping: usize,
    rendition_sets: usize,
    hints_fetched: usize,
    objects_fetched: usize,
    held_ms_total: u128,
    fulls: Vec<String>,
    deltas_text: Vec<String>,
}

/// Follows `label` as a low-latency client: a blocking request for the
/// hinted part, a delta update at the same point, and (with `other`) the
/// other rendition at the same point.
fn follow(
    port: u16,
    label: &str,
    other: Option<&str>,
    deadline: Instant,
    fetched: &Mutex<BTreeSet<String>>,
    fails: &Failures,
) -> FollowStats {
    let mut s = FollowStats::default();
    let (st, first) = get(port, &format!("{BASE}/{label}.m3u8"));
    assert_eq!(st, 200, "{label}.m3u8");
    let (mut hint_uri, mut h) = hint(&first).expect("a preload hint");
    while Instant::now() < deadline {
        let t = Instant::now();
        let (st, full) = blocking(port, label, h, "");
        if st != 200 {
            fails.add(format!("{label} blocking request for {h:?} answered {st}"));
            break;
        }
        s.held_ms_total += t.elapsed().as_millis();
        s.blocking += 1;
        let what = format!("{label}.m3u8{}", blocking_query(h, ""));
        fails.check(&what, check_media_playlist(&full), &full);
        // The playlist as of the hinted point: it ends with that part.
        match last_part(&full) {
            Some((uri, p, _)) if p == h && uri == hint_uri => {}
            got => fails.add(format!("{what}: last part {got:?}, want the hinted {hint_uri}")),
        }
        // The hinted part, complete now, is served.
        let (st, body) = http_get(port, &format!("{BASE}/{hint_uri}"));
        s.hints_fetched += 1;
        if st != 200 || !looks_right(&hint_uri, &body) {
            fails.add(format!("{what}: the completed preload hint {hint_uri} answered {st}"));
        }
        fetched.lock().unwrap_or_else(|e| e.into_inner()).insert(hint_uri.clone());

        let (st, delta) = blocking(port, label, h, "&_HLS_skip=YES");
        if st == 200 {
            s.deltas += 1;
            if skipped_segments(&delta) > 0 {
                s.deltas_skipping += 1;
            }
            let v = check_delta_update(&full, &delta);
            fails.check(&format!("{what}&_HLS_skip=YES"), v, &delta);
            s.deltas_text.push(delta);
        } else {
            fails.add(format!("{what}&_HLS_skip=YES answered {st}"));
        }

        if let Some(other) = other {
            let (st, o) = blocking(port, other, h, "");
            if st == 200 {
                s.rendition_sets += 1;
                let (a, b) = (format!("{label}.m3u8"), format!("{other}.m3u8"));
                fails.check(&format!("renditions at {h:?}"), check_renditions(&[(&a, &full), (&b, &o)]), &o);
                // Rendition reports name the same point (docs/packager.md).
                let ra = rendition_report(&full, &b);
                let rb = rendition_report(&o, &a);
                let lo = last_part(&o).map(|x| x.1);
                if ra != Some(h) || rb != Some(h) || lo != Some(h) {
                    fails.add(format!(
                        "renditions at {h:?}: {label} reports {other} at {ra:?}, {other} reports {label} at {rb:?}, \
                         {other} ends at {lo:?}"
                    ));
                }
            } else {
                fails.add(format!("{other}.m3u8{} answered {st}", blocking_query(h, "")));
            }
        }
        s.objects_fetched += fetch_listed(port, &what, &full, fetched, fails);
        match hint(&full) {
            Some(next) => (hint_uri, h) = next,
            None => {
                fails.add(format!("{what}: no preload hint"));
                break;
            }
        }
        s.fulls.push(full);
    }
    s
}

#[derive(Default, Debug)]
struct PollStats {
    master_fetches: usize,
    master_checks: usize,
    polls: usize,
    distinct: BTreeMap<String, usize>,
    objects_fetched: usize,
    snapshots: BTreeMap<String, Vec<String>>,
}

/// Polls both masters and every media playlist they name (non-blocking).
fn poll(port: u16, deadline: Instant, fetched: &Mutex<BTreeSet<String>>, fails: &Failures) -> PollStats {
    let mut s = PollStats::default();
    let mut masters: BTreeMap<&str, String> = BTreeMap::new();
    while Instant::now() < deadline {
        let mut media = Vec::new();
        for m in ["llhls.m3u8", "playlist.m3u8"] {
            let (st, text) = get(port, &format!("{BASE}/{m}"));
            s.master_fetches += 1;
            if st != 200 {
                fails.add(format!("{m} answered {st}"));
                continue;
            }
            if masters.get(m) != Some(&text) {
                s.master_checks += 1;
                fails.check(m, check_master_playlist(&text), &text);
                masters.insert(m, text.clone());
            }
            media.extend(media_of_master(&text));
        }
        for name in media {
            let (st, text) = get(port, &format!("{BASE}/{name}"));
            s.polls += 1;
            if st != 200 {
                fails.add(format!("{name} answered {st}"));
                continue;
            }
            let snaps = s.snapshots.entry(name.clone()).or_default();
            if snaps.last() == Some(&text) {
                continue;
            }
            *s.distinct.entry(name.clone()).or_default() += 1;
            fails.check(&name, check_media_playlist(&text), &text);
            s.objects_fetched += fetch_listed(port, &name, &text, fetched, fails);
            snaps.push(text);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    s
}

fn check_sequence(fails: &Failures, what: &str, snaps: &[String]) {
    let refs: Vec<&str> = snaps.iter().map(String::as_str).collect();
    let v = check_playlist_sequence(&refs);
    if !v.is_empty() {
        fails.add(format!("{what}: {} snapshots out of sequence:\n{}", snaps.len(), render(&v)));
    }
}

#[test]
fn live_output_conforms_for_60s() {
    let live = Live::start("delivery-conf", AppXml::default());
    let port = live.port();
    live.wait_ts();
    let (_, master) = get(port, &format!("{BASE}/llhls.m3u8"));
    let renditions = media_of_master(&master);
    assert_eq!(renditions, ["audio2.m3u8", "video1.m3u8"], "LL-HLS renditions:\n{master}");

    let fails = Failures::default();
    let fetched = Mutex::new(BTreeSet::new());
    let start = Instant::now();
    let deadline = start + Duration::from_secs(60);
    let (p, v, a) = std::thread::scope(|sc| {
        let p = sc.spawn(|| poll(port, deadline, &fetched, &fails));
        let v = sc.spawn(|| follow(port, "video1", Some("audio2"), deadline, &fetched, &fails));
        let a = sc.spawn(|| follow(port, "audio2", None, deadline, &fetched, &fails));
        (p.join().expect("poller"), v.join().expect("video follower"), a.join().expect("audio follower"))
    });
    let elapsed = start.elapsed();
    assert!(live.server.log_text().lines().all(|l| !l.contains("panicked")), "{}", live.server.log_text());

    for (name, snaps) in &p.snapshots {
        check_sequence(&fails, &format!("{name} (non-blocking)"), snaps);
    }
    for (label, f) in [("video1", &v), ("audio2", &a)] {
        check_sequence(&fails, &format!("{label} (blocking)"), &f.fulls);
        check_sequence(&fails, &format!("{label} (delta updates)"), &f.deltas_text);
    }
    let n_fetched = fetched.lock().unwrap_or_else(|e| e.into_inner()).len();
    println!(
        "conformance over {elapsed:.1?}: masters fetched {} (checked {}); non-blocking polls {} (distinct {:?}); \
         blocking video1 {} (mean hold {} ms) / audio2 {} (mean hold {} ms); delta updates {} (with EXT-X-SKIP \
         {}) / {} ({}); rendition sets {}; completed preload hints fetched {}; distinct URIs fetched {} (by \
         poller {}, followers {} + {})",
        p.master_fetches,
        p.master_checks,
        p.polls,
        p.distinct,
        v.blocking,
        v.held_ms_total / v.blocking.max(1) as u128,
        a.blocking,
        a.held_ms_total / a.blocking.max(1) as u128,
        v.deltas,
        v.deltas_skipping,
        a.deltas,
        a.deltas_skipping,
        v.rendition_sets,
        v.hints_fetched + a.hints_fetched,
        n_fetched,
        p.objects_fetched,
        v.objects_fetched,
        a.objects_fetched,
    );
    fails.assert_none();
    // 60 s of 2 s segments with 5 parts each: about 150 points per rendition.
    assert!(v.blocking >= 100 && a.blocking >= 100, "too few blocking reloads: {} / {}", v.blocking, a.blocking);
    assert!(v.deltas_skipping >= 50 && a.deltas_skipping >= 50, "too few delta updates that skip segments");
    assert!(v.rendition_sets >= 100, "too few rendition sets: {}", v.rendition_sets);
    assert!(p.distinct.get("ts.m3u8").copied().unwrap_or(0) >= 25, "too few TS playlists: {:?}", p.distinct);
    // 60 s: about 30 segments and 150 parts per rendition, 30 TS segments.
    assert!(n_fetched >= 350, "only {n_fetched} URIs fetched");
}

// ------------------------------------------------------------- timing ---

#[test]
fn blocking_reload_returns_at_publication() {
    let live = Live::start("delivery-timing", AppXml::default());
    let port = live.port();
    // Right after this returns, (msn, part) has just been published.
    let (_, mut cur) = live.fresh_point();
    let mut rows = Vec::new();
    for _ in 0..16 {
        let (hint_uri, h) = hint(&cur).expect("a preload hint");
        let issued = Instant::now();
        let ((pl, pl_done), (part, part_done)) = std::thread::scope(|sc| {
            let a = sc.spawn(|| {
                let r = blocking(port, "video1", h, "");
                (r, Instant::now())
            });
            let b = sc.spawn(|| {
                let r = http_get(port, &format!("{BASE}/{hint_uri}"));
                (r, Instant::now())
            });
            (a.join().expect("playlist request"), b.join().expect("part request"))
        });
        assert_eq!(pl.0, 200, "blocking request for {h:?}");
        assert_eq!(part.0, 200, "preload-hint request for {hint_uri}");
        let (uri, p, duration) = last_part(&pl.1).expect("a part");
        assert_eq!((uri.as_str(), p), (hint_uri.as_str(), h), "the blocking answer ends with the hinted part");
        let apart = if pl_done > part_done { pl_done - part_done } else { part_done - pl_done };
        let waited = pl_done - issued;
        rows.push((h, duration, waited, part_done - issued, apart));
        cur = pl.1;
    }
    for (h, d, w, wp, apart) in &rows {
        println!(
            "{}.{}: part {:.0} ms; playlist held {:.0} ms, part held {:.0} ms, {:.1} ms apart",
            h.msn,
            h.part,
            d * 1000.0,
            w.as_secs_f64() * 1000.0,
            wp.as_secs_f64() * 1000.0,
            apart.as_secs_f64() * 1000.0
        );
    }
    for (h, d, w, _, apart) in &rows {
        assert!(*apart <= Duration::from_millis(50), "{h:?}: playlist and part released {apart:?} apart");
        // Issued right after the previous part was published, the request
        // waits for the next one: about that part's duration (ffmpeg's -re
        // pacing and RTMP buffering move a publication by a few tens of ms).
        let min = Duration::from_secs_f64((d - 0.12).max(0.0));
        assert!(*w >= min, "{h:?}: a blocking request returned after {w:?}, before its {d} s part could be published");
        assert!(*w <= Duration::from_secs_f64(d + 0.5), "{h:?}: held {w:?} for a {d} s part");
    }
}

// ------------------------------------------------------------- errors ---

#[test]
fn blocking_request_limits() {
    let live = Live::start("delivery-limits", AppXml::default());
    let port = live.port();
    let status = |path: &str| -> (u16, Duration, Headers) {
        let t = Instant::now();
        let (st, h, _) = http_request(port, "GET", &format!("{BASE}/{path}"), &[]);
        (st, t.elapsed(), h)
    };
    let bad = |path: &str| {
        let (st, took, h) = status(path);
        assert_eq!(st, 400, "{path}");
        assert!(took < Duration::from_millis(500), "{path}: 400 after {took:?}, not at once");
        assert_eq!(cache_control(&h), "no-store", "{path}");
    };
    bad("video1.m3u8?_HLS_part=1");
    bad("video1.m3u8?_HLS_part=1&_HLS_skip=YES");
    bad("video1.m3u8?_HLS_msn=x");
    bad("video1.m3u8?_HLS_msn=-1");

    // A point published just now: the next segment boundary is at least a
    // part away, so "last" does not move under the requests below.
    let (p, pl) = live.fresh_point();
    let (_, last, _) = last_part(&pl).expect("a part");
    assert_eq!(last, p);
    // More than two segments ahead.
    bad(&format!("video1.m3u8?_HLS_msn={}", p.msn + 3));
    bad(&format!("video1.m3u8?_HLS_msn={}&_HLS_part=0", p.msn + 3));
    // Past the Advance Part Limit (3 / 0.5 s = 6 parts).
    bad(&format!("video1.m3u8?_HLS_msn={}&_HLS_part={}", p.msn, p.part + 7));
    bad(&format!("audio2.m3u8?_HLS_msn={}&_HLS_part={}", p.msn, p.part + 7));
    // At the limit: held until segment msn completes, then answered with the
    // playlist as of the next segment's first part (6.2.5.2).
    let (st, took, _) = status(&format!("video1.m3u8?_HLS_msn={}&_HLS_part={}", p.msn, p.part + 6));
    assert_eq!(st, 200, "part at the Advance Part Limit");
    assert!(took < Duration::from_secs(6), "held {took:?}");
    // _HLS_msn alone: the playlist in which that segment is complete.
    let (st, text) = get(port, &format!("{BASE}/video1.m3u8?_HLS_msn={}", p.msn + 1));
    assert_eq!(st, 200, "_HLS_msn={}", p.msn + 1);
    assert_eq!(last_segment(&text), Some(format!("video1_{}.m4s", p.msn + 1).as_str()), "{text}");
    assert_eq!(last_part(&text).map(|x| x.1.msn), Some(p.msn + 1), "{text}");

    // 404s, briefly cacheable.
    let (_, now) = hint(&live.wait_playlist()).expect("hint");
    for path in [
        "nothing.m3u8".to_string(),
        format!("video1_{}.0.m4s", now.msn + 5),
        format!("video1_{}.m4s", now.msn + 5),
        "video9.m3u8".to_string(),
    ] {
        let (st, took, h) = status(&path);
        assert_eq!(st, 404, "{path}");
        assert!(took < Duration::from_millis(500), "{path}: 404 after {took:?}");
        assert!(max_age(cache_control(&h)).is_some_and(|a| (1..=2).contains(&a)), "{path}: {h:?}");
    }
    let (st, h, _) = http_request(port, "GET", "/app/nostream/video1.m3u8?_HLS_msn=1&_HLS_part=0", &[]);
    assert_eq!(st, 404);
    assert!(max_age(cache_control(&h)).is_some_and(|a| (1..=2).contains(&a)), "{h:?}");
    let (st, _, _) = http_request(port, "GET", "/nothing", &[]);
    assert_eq!(st, 404);
    let (st, _, _) = http_request(port, "POST", &format!("{BASE}/video1.m3u8"), &[("Content-Length", "0")]);
    assert_eq!(st, 405, "POST");
}

/// Resumes a stopped process when dropped (also when the test fails).
struct Resume(u32);

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-CONT").arg(self.0.to_string()).status();
    }
}

#[test]
fn held_request_times_out_with_503() {
    // 1 s segments: TARGETDURATION 1, so a request is held at most 3 s. A
    // long silence timeout keeps the stream up while the encoder is stopped.
    let app = AppXml { segment: "1", silence_ms: 30_000, ..AppXml::default() };
    let live = Live::start("delivery-503", app);
    let port = live.port();
    let (_, pl) = live.fresh_point();
    assert_eq!(target_duration(&pl), 1, "{pl}");

    // Stop the encoder, let what it sent drain, and ask for the next part.
    let pid = live.push.pid();
    let st = Command::new("kill").arg("-STOP").arg(pid.to_string()).status().expect("kill -STOP");
    assert!(st.success());
    let resume = Resume(pid);
    std::thread::sleep(Duration::from_millis(500));
    let (_, pl) = get(port, &format!("{BASE}/video1.m3u8"));
    let (hint_uri, h) = hint(&pl).expect("a preload hint");
    let issued = Instant::now();
    let results: Vec<(String, u16, Headers, Duration)> = std::thread::scope(|sc| {
        let paths = [
            format!("video1.m3u8{}", blocking_query(h, "")),
            format!("video1.m3u8{}", blocking_query(h, "&_HLS_skip=YES")),
            format!("audio2.m3u8{}", blocking_query(h, "")),
            format!("video1.m3u8?_HLS_msn={}", h.msn),
            hint_uri.clone(),
        ];
        let handles: Vec<_> = paths
            .into_iter()
            .map(|path| {
                sc.spawn(move || {
                    let (st, hd, _) = http_request(port, "GET", &format!("{BASE}/{path}"), &[]);
                    (path, st, hd, issued.elapsed())
                })
            })
            .collect();
        handles.into_iter().map(|j| j.join().expect("request thread")).collect()
    });
    for (path, st, hd, took) in &results {
        println!("{path}: {st} after {took:.2?}");
        assert_eq!(*st, 503, "{path} while the encoder is stopped");
        assert!(
            *took >= Duration::from_millis(2900) && *took <= Duration::from_millis(4500),
            "{path}: 503 after {took:?}, want 3 × TARGETDURATION = 3 s"
        );
        assert_eq!(cache_control(hd), "no-store", "{path}");
    }

    // The encoder resumes: the same request is answered.
    drop(resume);
    let t = Instant::now();
    let (st, text) = blocking(port, "video1", h, "");
    assert_eq!(st, 200, "after SIGCONT");
    assert_eq!(last_part(&text).map(|x| x.1), Some(h));
    println!("after SIGCONT: 200 in {:.2?}", t.elapsed());
}

// --------------------------------------------------------------- HTTP ---

#[test]
fn http_semantics() {
    let mut live = Live::start("delivery-http", AppXml::default());
    let port = live.port();
    let req = |method: &str, path: &str, headers: &[(&str, &str)]| {
        http_request(port, method, &format!("{BASE}/{path}"), headers)
    };
    live.wait_ts();
    let (p, pl) = live.fresh_point();
    let td = target_duration(&pl);
    let blocking_path = format!("video1.m3u8{}", blocking_query(p, ""));
    let delta_path = format!("video1.m3u8{}", blocking_query(p, "&_HLS_skip=YES"));

    // ---- Cache-Control (Appendix B) and Content-Type.
    let (st, bh, body) = req("GET", &blocking_path, &[]);
    assert_eq!(st, 200);
    assert_eq!(body, pl.as_bytes(), "the same blocking URL, the same bytes");
    assert_eq!(cache_control(&bh), format!("public, max-age={}", 6 * td), "blocking playlist");
    assert_eq!(header(&bh, "content-type"), Some("application/vnd.apple.mpegurl"));
    assert!(header_values(&bh, "vary").iter().any(|v| v == "Accept-Encoding"), "{bh:?}");
    let etag = header(&bh, "etag").expect("an ETag").to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "a strong ETag: {etag}");
    let (st, dh, delta) = req("GET", &delta_path, &[]);
    assert_eq!(st, 200);
    assert_eq!(cache_control(&dh), format!("public, max-age={}", 6 * td), "blocking delta update");
    // (Early in a stream there is nothing to skip yet: the delta is the full playlist.)
    assert_eq!(delta == body, header(&dh, "etag") == Some(etag.as_str()), "ETags follow the bytes");
    for name in ["video1.m3u8", "audio2.m3u8", "llhls.m3u8", "playlist.m3u8", "ts.m3u8"] {
        let (st, h, _) = req("GET", name, &[]);
        assert_eq!(st, 200, "{name}");
        assert_eq!(cache_control(&h), format!("public, max-age={}", (td / 2).max(1)), "non-blocking {name}");
    }
    let text = String::from_utf8_lossy(&body).into_owned();
    let (part_uri, _, _) = last_part(&text).expect("a part");
    let seg_uri = last_segment(&text).expect("a segment").to_string();
    let (_, ts) = get(port, &format!("{BASE}/ts.m3u8"));
    let ts_uri = last_segment(&ts).expect("a TS segment").to_string();
    for (uri, ctype) in [(&part_uri, "video/iso.segment"), (&seg_uri, "video/iso.segment"), (&ts_uri, "video/mp2t")] {
        let (st, h, _) = req("GET", uri, &[]);
        assert_eq!(st, 200, "{uri}");
        assert_eq!(cache_control(&h), "public, max-age=31536000, immutable", "{uri}");
        assert_eq!(header(&h, "content-type"), Some(ctype), "{uri}");
        assert_eq!(header(&h, "accept-ranges"), Some("bytes"), "{uri}");
    }
    let (st, h, _) = req("GET", "video1_init.mp4", &[]);
    assert_eq!(st, 200);
    assert_eq!(cache_control(&h), "public, max-age=20", "init: the playlist window (10 × 2 s)");
    for path in ["missing.m4s".to_string(), format!("video1_{}.0.m4s", p.msn + 9)] {
        let (st, h, _) = req("GET", &path, &[]);
        assert_eq!(st, 404, "{path}");
        assert_eq!(cache_control(&h), "max-age=1", "404 is briefly cacheable: {path}");
    }

    // ---- ETag and If-None-Match.
    let (seg_st, sh, seg) = req("GET", &seg_uri, &[]);
    assert_eq!(seg_st, 200);
    let seg_etag = header(&sh, "etag").expect("segment ETag").to_string();
    for (path, tag) in [(&blocking_path, &etag), (&seg_uri, &seg_etag)] {
        let (st, h, b) = req("GET", path, &[("If-None-Match", tag)]);
        assert_eq!(st, 304, "{path} with its ETag");
        assert!(b.is_empty(), "304 has no body");
        assert_eq!(header(&h, "etag"), Some(tag.as_str()));
        assert!(!cache_control(&h).is_empty(), "304 carries Cache-Control");
        let (st, _, _) = req("GET", path, &[("If-None-Match", &format!("\"0\", {tag}"))]);
        assert_eq!(st, 304, "{path}: ETag in a list");
        let (st, _, _) = req("GET", path, &[("If-None-Match", "*")]);
        assert_eq!(st, 304, "{path}: *");
        let (st, _, b) = req("GET", path, &[("If-None-Match", "\"0123456789abcdef\"")]);
        assert_eq!(st, 200, "{path}: another ETag");
        assert!(!b.is_empty());
    }

    // ---- HEAD.
    for (path, full) in [(&blocking_path, &body), (&seg_uri, &seg)] {
        let (st, h, b) = req("HEAD", path, &[]);
        assert_eq!(st, 200, "HEAD {path}");
        assert!(b.is_empty(), "HEAD {path} has no body");
        assert_eq!(header(&h, "content-length"), Some(full.len().to_string().as_str()), "HEAD {path}");
        assert!(header(&h, "etag").is_some());
    }

    // ---- Ranges.
    let (_, _, tsb) = req("GET", &ts_uri, &[]);
    for (uri, full) in [(&seg_uri, &seg), (&ts_uri, &tsb)] {
        let len = full.len();
        assert!(len > 200, "{uri}: {len} bytes");
        for (spec, start, end) in [
            ("bytes=10-99".to_string(), 10, 99),
            ("bytes=-50".to_string(), len - 50, len - 1),
            ("bytes=100-".to_string(), 100, len - 1),
            (format!("bytes=0-{}", len + 1000), 0, len - 1),
        ] {
            let (st, h, b) = req("GET", uri, &[("Range", &spec)]);
            assert_eq!(st, 206, "{uri} {spec}");
            assert_eq!(header(&h, "content-range"), Some(format!("bytes {start}-{end}/{len}").as_str()), "{spec}");
            assert_eq!(b, &full[start..=end], "{uri} {spec}: bytes");
        }
        // An invalid range (first > last) is ignored: the whole object
        // (RFC 9110 14.1.1, 14.2).
        let (st, _, b) = req("GET", uri, &[("Range", "bytes=5-2")]);
        assert_eq!(st, 200, "{uri} bytes=5-2");
        assert_eq!(b, &full[..], "{uri} bytes=5-2: the whole object");
        let spec = format!("bytes={len}-");
        let (st, h, b) = req("GET", uri, &[("Range", &spec)]);
        assert_eq!(st, 416, "{uri} {spec}");
        assert_eq!(header(&h, "content-range"), Some(format!("bytes */{len}").as_str()), "{spec}");
        assert!(b.is_empty());
    }

    // ---- gzip.
    for path in [&blocking_path, &delta_path, &"llhls.m3u8".to_string()] {
        let (_, _, plain) = req("GET", path, &[]);
        let (st, h, z) = req("GET", path, &[("Accept-Encoding", "gzip, deflate")]);
        assert_eq!(st, 200);
        assert_eq!(header(&h, "content-encoding"), Some("gzip"), "{path}");
        assert!(header_values(&h, "vary").iter().any(|v| v == "Accept-Encoding"), "{path}: {h:?}");
        assert_eq!(gunzip(&z), plain, "{path}: gzip decompresses to the identical playlist");
        let (st, h, b) = req("GET", path, &[("Accept-Encoding", "identity")]);
        assert_eq!(st, 200);
        assert!(header(&h, "content-encoding").is_none());
        assert_eq!(b, plain);
    }
    let (_, h, _) = req("GET", &seg_uri, &[("Accept-Encoding", "gzip")]);
    assert!(header(&h, "content-encoding").is_none(), "media is never gzipped");

    // ---- CORS with CrossDomains `*`.
    for path in [&blocking_path, &seg_uri, &"missing.m4s".to_string()] {
        let (_, h, _) = req("GET", path, &[("Origin", "https://player.example.com")]);
        assert_eq!(header(&h, "access-control-allow-origin"), Some("*"), "{path}");
    }
    let (st, h, _) = req(
        "OPTIONS",
        &blocking_path,
        &[("Origin", "https://player.example.com"), ("Access-Control-Request-Method", "GET")],
    );
    assert_eq!(st, 204, "preflight");
    assert_eq!(header(&h, "access-control-allow-origin"), Some("*"));
    let methods = header_values(&h, "access-control-allow-methods");
    assert!(methods.iter().any(|m| m == "GET") && methods.iter().any(|m| m == "HEAD"), "{h:?}");

    // ---- The same blocking URL, seconds later: the same bytes and ETag.
    std::thread::sleep(Duration::from_secs(3));
    let (_, now) = get(port, &format!("{BASE}/video1.m3u8"));
    assert_ne!(now, text, "the stream moved on");
    let (st, h2, again) = req("GET", &blocking_path, &[]);
    assert_eq!(st, 200);
    assert_eq!(again, body, "{blocking_path} 3 s later");
    assert_eq!(header(&h2, "etag"), Some(etag.as_str()));
    let (_, dh2, delta2) = req("GET", &delta_path, &[]);
    assert_eq!(delta2, delta, "{delta_path} 3 s later");
    assert_eq!(header(&dh2, "etag"), header(&dh, "etag"));
    let (_, _, z1) = req("GET", &blocking_path, &[("Accept-Encoding", "gzip")]);
    let (_, _, z2) = req("GET", &blocking_path, &[("Accept-Encoding", "gzip")]);
    assert_eq!(z1, z2, "gzip is deterministic");

    // ---- When the stream ends it is removed: every URL answers 404 (so
    // `_HLS_*` on an ENDLIST playlist cannot be observed).
    live.push.terminate();
    wait_for("the ended stream to answer 404", Duration::from_secs(10), || {
        (req("GET", &blocking_path, &[]).0 == 404).then_some(())
    });
    let (st, h, _) = req("GET", "video1.m3u8", &[]);
    assert_eq!(st, 404);
    assert_eq!(cache_control(&h), "max-age=1");
}

#[test]
fn cors_with_a_list_of_origins() {
    let ports = Ports::free();
    let xml = server_xml(ports, &[AppXml::default()]);
    let list = "<CrossDomains><Url>https://player.example.com</Url><Url>*.example.org</Url></CrossDomains>";
    let custom = xml.replace("<CrossDomains><Url>*</Url></CrossDomains>", list);
    assert_ne!(custom, xml, "the test Server.xml has a CrossDomains element to replace");
    let live = Live::push_to(Server::start_xml("delivery-cors", ports, &custom));
    let port = live.port();
    let (p, _) = live.fresh_point();
    let paths = [format!("video1.m3u8{}", blocking_query(p, "")), "video1_init.mp4".into(), "missing.m4s".into()];
    for path in &paths {
        let get_with = |origin: Option<&str>| {
            let h: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
            http_request(port, "GET", &format!("{BASE}/{path}"), &h).1
        };
        for origin in ["https://player.example.com", "https://cdn.example.org", "http://a.b.example.org:8080"] {
            let h = get_with(Some(origin));
            assert_eq!(header(&h, "access-control-allow-origin"), Some(origin), "{path} from {origin}");
            assert!(header_values(&h, "vary").iter().any(|v| v == "Origin"), "{path}: Vary: Origin: {h:?}");
        }
        for origin in [Some("https://evil.example.net"), Some("https://example.org.evil.net"), None] {
            let h = get_with(origin);
            assert_eq!(header(&h, "access-control-allow-origin"), None, "{path} from {origin:?}");
            assert!(header_values(&h, "vary").iter().any(|v| v == "Origin"), "{path}: Vary: Origin: {h:?}");
        }
    }
    let (st, h, b) = http_get_headers(port, "OPTIONS", &paths[0], "https://player.example.com");
    assert_eq!(st, 204, "preflight");
    assert!(b.is_empty());
    assert_eq!(header(&h, "access-control-allow-origin"), Some("https://player.example.com"));
    let methods = header_values(&h, "access-control-allow-methods");
    assert!(methods.iter().any(|m| m == "GET"), "{h:?}");
    let (st, h, _) = http_get_headers(port, "OPTIONS", &paths[0], "https://evil.example.net");
    assert_eq!(st, 204, "preflight from another origin");
    assert_eq!(header(&h, "access-control-allow-origin"), None);
    assert_eq!(header(&h, "access-control-allow-methods"), None);
}

fn http_get_headers(port: u16, method: &str, path: &str, origin: &str) -> (u16, Headers, Vec<u8>) {
    http_request(
        port,
        method,
        &format!("{BASE}/{path}"),
        &[("Origin", origin), ("Access-Control-Request-Method", "GET")],
    )
}
