//! A codec configuration change mid-stream, end to end: a redundant pair of
//! real nodes fed over RTMP by ffmpeg (`-re -c copy`) from an FLV whose second
//! half has another resolution, its new AVC sequence header arriving
//! mid-stream as from a reconfigured encoder.
//!
//! - Both nodes fed by one encoder (ffmpeg's tee): the stream carries on past
//!   the change on both, the playlists carry `EXT-X-DISCONTINUITY` and the new
//!   `EXT-X-MAP`, the masters the new RESOLUTION, both nodes serve identical
//!   bytes, and ffmpeg plays through the change (frames of both sizes, the
//!   input's frames, no decode error).
//! - A backup that starts after the change names both init segments as the
//!   main does and serves the same bytes.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::pair::*;
use support::*;

const SECRET: &str = "pair-secret-for-codec-change";
const LOG_CHANGE: &str = "codec configuration changed; new init segment and discontinuity";
/// The first piece (first configuration), seconds.
const FIRST_S: u64 = 4;
/// The second piece (new configuration), seconds.
const SECOND_S: u64 = 16;
const FIRST_SIZE: (u32, u32) = (320, 240);
const SECOND_SIZE: (u32, u32) = (640, 360);

// ----------------------------------------------------------------- input ---

struct Input {
    /// The first piece alone (320x240).
    first: PathBuf,
    /// The second piece alone (640x360).
    second: PathBuf,
    /// Both pieces joined tag by tag: the second's sequence headers
    /// mid-stream.
    joined: PathBuf,
}

/// One piece: 30 fps testsrc2, GOP 1 s, B-frames, AAC 48 kHz stereo (the
/// same AudioSpecificConfig in both pieces), as golden/make-inputs.sh.
fn piece(path: &Path, size: (u32, u32), seconds: u64) {
    let src = format!("testsrc2=size={}x{}:rate=30", size.0, size.1);
    let t = seconds.to_string();
    #[rustfmt::skip]
    make_input(path, &[
        "-f", "lavfi", "-i", &src, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", &t,
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p", "-b:v", "300k",
        "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-bf", "2",
        "-c:a", "aac", "-b:a", "64k", "-ar", "48000", "-ac", "2", "-f", "flv",
    ]);
}

/// FLV files concatenated tag by tag (golden/flvcat.py): each later file's
/// tags, sequence headers included, follow the previous file's, timestamps
/// shifted to start one frame (33 ms) after its last tag; onMetaData once.
fn flvcat(out: &Path, inputs: &[&Path]) {
    let mut res = Vec::new();
    let mut offset = 0u32;
    for (n, path) in inputs.iter().enumerate() {
        let d = std::fs::read(path).expect("read FLV piece");
        if n == 0 {
            res.extend_from_slice(&d[..13]);
        }
        let be = |b: &[u8]| b.iter().fold(0u32, |a, x| a << 8 | u32::from(*x));
        let mut i = be(&d[5..9]) as usize + 4;
        let mut last = 0u32;
        while i + 11 <= d.len() {
            let size = be(&d[i + 1..i + 4]) as usize;
            let end = (i + 11 + size + 4).min(d.len());
            let mut tag = d[i..end].to_vec();
            i = end;
            if tag[0] == 18 && n > 0 {
                continue;
            }
            let t = (be(&tag[4..7]) | u32::from(tag[7]) << 24) + offset;
            last = last.max(t);
            tag[4..7].copy_from_slice(&t.to_be_bytes()[1..]);
            tag[7] = (t >> 24) as u8;
            res.extend_from_slice(&tag);
        }
        offset = last + 33;
    }
    std::fs::write(out, res).expect("write joined FLV");
}

/// The inputs, made once per test binary.
fn input() -> Input {
    static ONCE: Mutex<()> = Mutex::new(());
    let _g = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("lockstep-e2e-codec-change-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("input dir");
    let i = Input { first: dir.join("first.flv"), second: dir.join("second.flv"), joined: dir.join("joined.flv") };
    piece(&i.first, FIRST_SIZE, FIRST_S);
    piece(&i.second, SECOND_SIZE, SECOND_S);
    if !i.joined.exists() {
        flvcat(&i.joined, &[&i.first, &i.second]);
    }
    i
}

// ------------------------------------------------------------------ pair ---

fn start_node(tag: &str, me: Ports, peer: Ports, role: &str, mode: &str) -> Server {
    Server::start_xml(&format!("{tag}-{role}"), me, &pair_xml(me, peer, role, mode, SECRET))
}

/// ffmpeg pushing `input` from `offset_s` seconds in, in real time.
fn feed(input: &Path, offset_s: u64, url: &str) -> Proc {
    Proc::spawn(
        "ffmpeg (feed)",
        Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-ss", &offset_s.to_string(), "-i"])
            .arg(input)
            .args(["-map", "0", "-c", "copy", "-f", "flv", url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// A media playlist's segments with the init segment (EXT-X-MAP) each is
/// decoded with, and whether a discontinuity precedes it: (uri, map, disc).
fn segments(playlist: &str) -> Vec<(String, String, bool)> {
    let (mut map, mut disc, mut out) = (String::new(), false, Vec::new());
    for l in playlist.lines() {
        if let Some(r) = l.strip_prefix("#EXT-X-MAP:URI=\"") {
            map = r.split('"').next().unwrap_or_default().to_string();
        } else if l == "#EXT-X-DISCONTINUITY" {
            disc = true;
        } else if !l.is_empty() && !l.starts_with('#') {
            out.push((l.to_string(), map.clone(), disc));
            disc = false;
        }
    }
    out
}

/// The segment number in a segment URI (`video1_12.m4s`, `ts_12.ts`).
fn msn_of(uri: &str) -> Option<u64> {
    uri.rsplit_once('_')?.1.split('.').next()?.parse().ok()
}

/// The first segment after a discontinuity in a media playlist, with its
/// init segment.
fn change_segment(playlist: &str) -> Option<(u64, String)> {
    segments(playlist).into_iter().find(|s| s.2).and_then(|(uri, map, _)| Some((msn_of(&uri)?, map)))
}

/// The stream's change point: the video playlist shows the first segment of
/// the new configuration as complete, then `after` more segments.
fn wait_change_published(s: &Server, after: usize, what: &str) -> (u64, String) {
    wait_for(what, Duration::from_secs(30), || {
        let pl = get_text(s, "video1.m3u8")?;
        let (msn, map) = change_segment(&pl)?;
        (segments(&pl).iter().filter(|x| msn_of(&x.0).is_some_and(|m| m >= msn)).count() > after).then_some((msn, map))
    })
}

// ---------------------------------------------------------------- frames ---

/// Decoded video frames of `file`: (width, height) of each, and the decoder's
/// error output.
fn frame_sizes(file: &Path) -> (Vec<(u32, u32)>, String) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "frame=width,height", "-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe runs");
    let sizes = text(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (w, h) = l.trim().trim_end_matches(',').split_once(',')?;
            Some((w.parse().ok()?, h.parse().ok()?))
        })
        .collect();
    (sizes, text(&out.stderr))
}

/// Runs of equal frame sizes: [(size, count)].
fn runs(sizes: &[(u32, u32)]) -> Vec<((u32, u32), usize)> {
    let mut out: Vec<((u32, u32), usize)> = Vec::new();
    for s in sizes {
        match out.last_mut() {
            Some((last, n)) if last == s => *n += 1,
            _ => out.push((*s, 1)),
        }
    }
    out
}

/// Write the captured segments of `label` decoded with init segment `map`
/// (per the playlists seen) after `map`, in order, to `path`: (segments,
/// first msn, last msn).
fn write_version(cap: &Capture, label: &str, map: &str, path: &Path) -> (usize, u64, u64) {
    let mut msns: Vec<u64> = cap
        .playlists
        .get(&format!("{label}.m3u8"))
        .into_iter()
        .flatten()
        .flat_map(|pl| segments(pl))
        .filter(|s| s.1 == map)
        .filter_map(|s| msn_of(&s.0))
        .filter(|m| cap.objects.contains_key(&format!("{label}_{m}.m4s")))
        .collect();
    msns.sort_unstable();
    msns.dedup();
    let mut all = cap.objects.get(map).unwrap_or_else(|| panic!("{map} fetched")).clone();
    for m in &msns {
        all.extend_from_slice(&cap.objects[&format!("{label}_{m}.m4s")]);
    }
    std::fs::write(path, all).expect("write track");
    (msns.len(), msns.first().copied().unwrap_or(0), msns.last().copied().unwrap_or(0))
}

// ----------------------------------------------------------------- tests ---

#[test]
fn pair_carries_a_resolution_change_and_players_play_through_it() {
    let t0 = Instant::now();
    let input = input();
    let (mp, bp) = (Ports::free(), Ports::free());
    let main = start_node("codec-change-together", mp, bp, "main", "SystemClock");
    let backup = start_node("codec-change-together", bp, mp, "backup", "SystemClock");
    let _enc = tee_push(&input.joined, &main.rtmp_url("app", "stream"), &backup.rtmp_url("app", "stream"));
    wait_live(&main, "main live");
    wait_live(&backup, "backup live");

    // The masters describe the first configuration, then the new one.
    let res = |(w, h): (u32, u32)| format!("RESOLUTION={w}x{h}");
    for s in [&main, &backup] {
        for m in ["llhls.m3u8", "playlist.m3u8"] {
            wait_for(&format!("{m} with the first resolution"), Duration::from_secs(10), || {
                get_text(s, m).filter(|t| t.contains(&res(FIRST_SIZE)))
            });
        }
    }

    // ffmpeg as a classic HLS player from the start of the window, until
    // the stream ends (EXT-X-ENDLIST); stream copy keeps the SPS/PPS of
    // each TS segment.
    wait_for("a TS segment", Duration::from_secs(15), || {
        get_text(&main, "ts.m3u8").filter(|t| t.contains("#EXTINF")).map(|_| ())
    });
    let recording = main.dir.join("hls-player.ts");
    let mut player = Proc::spawn(
        "ffmpeg (HLS player)",
        Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-live_start_index", "0", "-i"])
            .arg(format!("http://127.0.0.1:{}/app/stream/playlist.m3u8", main.ports.http))
            .args(["-map", "0", "-c", "copy", "-f", "mpegts"])
            .arg(&recording)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );

    // Both nodes follow the whole stream (every playlist version and object)
    // while the main thread compares them at blocking points.
    let ended = |s: &Server| get_text(s, "video1.m3u8").is_none_or(|t| t.contains("#EXT-X-ENDLIST"));
    let limit = Duration::from_secs(45);
    let (cap_main, cap_backup, change, cmp) = std::thread::scope(|sc| {
        let a = sc.spawn(|| Capture::follow(&main, "app", "stream", limit, || ended(&main)));
        let b = sc.spawn(|| Capture::follow(&backup, "app", "stream", limit, || ended(&backup)));
        for s in [&main, &backup] {
            s.wait_log(LOG_CHANGE, Duration::from_secs(20));
        }
        let change = wait_change_published(&main, 2, "two segments after the change on the main");
        wait_change_published(&backup, 2, "two segments after the change on the backup");
        let cmp = assert_identical(&main, &backup, Some(change.0.saturating_sub(2)), "around the change", 60);
        (a.join().expect("main capture"), b.join().expect("backup capture"), change, cmp)
    });
    println!(
        "change at segment {} ({}); {} identical, blocking points compared: {}",
        change.0,
        change.1,
        cmp.identical,
        cmp.points.len()
    );
    assert_eq!(change.1, "video1_v1_init.mp4", "the new configuration's init segment");
    assert!(
        cmp.points.iter().any(|p| p.starts_with(&format!("video1 {}.", change.0 - 1)))
            && cmp.points.iter().any(|p| p.starts_with(&format!("video1 {}.", change.0 + 1))),
        "blocking points on both sides of the change compared: {:?}",
        cmp.points
    );

    // The stream carried on past the change: one stream, not ended there.
    // The stream has ended (its URLs answer 404): the player has read all
    // there was. It gives up on its own after a few failed reloads; stop it
    // (SIGTERM: ffmpeg closes its output) if it has not yet.
    let stop = Instant::now();
    while player.running() && stop.elapsed() < Duration::from_secs(12) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let exited_alone = !player.running();
    player.terminate();
    println!("HLS player exited on its own: {exited_alone}");
    for (s, role) in [(&main, "main"), (&backup, "backup")] {
        let log = s.log_text();
        let changes = log.lines().filter(|l| l.contains(LOG_CHANGE)).collect::<Vec<_>>();
        assert_eq!(changes.len(), 1, "{role}: one configuration change (video):\n{log}");
        let (from, to) = (format!("{}x{}", FIRST_SIZE.0, FIRST_SIZE.1), format!("{}x{}", SECOND_SIZE.0, SECOND_SIZE.1));
        assert!(
            changes[0].contains("track=1") && changes[0].contains(&from) && changes[0].contains(&to),
            "{role}: the video track changed {from} -> {to}: {}",
            changes[0]
        );
        for once in ["stream started", "packaging started"] {
            assert_eq!(log.matches(once).count(), 1, "{role}: {once:?} once:\n{log}");
        }
    }
    for (cap, role) in [(&cap_main, "main"), (&cap_backup, "backup")] {
        let video = cap.playlists.get("video1.m3u8").expect("video playlists seen");
        let last = video.last().expect("a video playlist");
        // The stream ran on to the input's end: the last playlist seen
        // before it ended (and went 404) has nearly all of the second piece.
        let segs = segments(last);
        let before = segs.iter().filter(|s| s.1 == "video1_init.mp4").count();
        let after = segs.iter().filter(|s| s.1 == "video1_v1_init.mp4").count();
        assert!(
            before >= 1 && after as u64 >= SECOND_S / 2 - 2,
            "{role}: {before} segments before, {after} after the change:\n{last}"
        );
        assert_eq!(segs.iter().filter(|s| s.2).count(), 1, "{role}: one discontinuity:\n{last}");
        assert_eq!(change_segment(last), Some(change.clone()), "{role}: the change segment:\n{last}");
        assert!(last.contains("#EXT-X-MAP:URI=\"video1_v1_init.mp4\""), "{role}:\n{last}");
        for other in ["audio2.m3u8", "ts.m3u8"] {
            let pl = cap.playlists.get(other).and_then(|v| v.last()).expect("playlist seen");
            assert_eq!(change_segment(pl).map(|c| c.0), Some(change.0), "{role}: {other} discontinuity:\n{pl}");
        }
        for init in ["video1_init.mp4", "video1_v1_init.mp4", "audio2_init.mp4"] {
            assert!(cap.objects.contains_key(init), "{role}: {init} served");
        }
        assert!(!cap.objects.contains_key("audio2_v1_init.mp4"), "{role}: the audio configuration did not change");
    }
    // Every object both nodes served is byte-identical, and each served the
    // same segments.
    let mut same = 0;
    for (name, bytes) in &cap_main.objects {
        if let Some(other) = cap_backup.objects.get(name) {
            assert!(bytes == other, "{name} differs between the nodes");
            same += 1;
        }
    }
    // Whole segments and init segments (parts have two dots).
    let whole = |c: &Capture| c.objects.keys().filter(|k| k.matches('.').count() == 1).cloned().collect::<Vec<_>>();
    assert_eq!(whole(&cap_main), whole(&cap_backup), "the same segments and init segments");
    println!("{same} objects fetched from both nodes over the whole stream, all identical");
    for (m, role) in [(&main, "main"), (&backup, "backup")] {
        for master in ["llhls.m3u8", "playlist.m3u8"] {
            if let Some(t) = get_text(m, master) {
                assert!(
                    t.contains(&res(SECOND_SIZE)) && !t.contains(&res(FIRST_SIZE)),
                    "{role}: {master} after the change:\n{t}"
                );
            }
        }
    }

    // LL-HLS, per configuration: init + its segments decode without errors
    // to the input's frames at their sizes: all of the first piece, then the
    // second piece from its start.
    let dir = &main.dir;
    let (want_first, err) = framemd5(&input.first, "v:0");
    assert!(err.is_empty(), "{err}");
    let (want_second, err) = framemd5(&input.second, "v:0");
    assert!(err.is_empty(), "{err}");
    for (map, size, want) in
        [("video1_init.mp4", FIRST_SIZE, &want_first), ("video1_v1_init.mp4", SECOND_SIZE, &want_second)]
    {
        let file = dir.join(map.replace("_init.mp4", ".mp4"));
        let (n, first, last) = write_version(&cap_main, "video1", map, &file);
        let (sizes, err) = frame_sizes(&file);
        assert!(err.is_empty(), "{map}: decode errors:\n{err}");
        assert_eq!(runs(&sizes), vec![(size, sizes.len())], "{map}: frame sizes");
        let (got, err) = framemd5(&file, "v:0");
        assert!(err.is_empty(), "{map}: decode errors:\n{err}");
        println!("LL-HLS {map}: segments {first}..={last} ({n}), {} frames of {}x{}", got.len(), size.0, size.1);
        assert!(got.len() >= 30 * FIRST_S as usize - 1, "{map}: only {} frames", got.len());
        assert!(want.starts_with(&got), "{map}: the frames are not the piece's frames from its start");
    }
    assert_eq!(framemd5(&dir.join("video1.mp4"), "v:0").0, want_first, "every frame before the change");
    let audio = dir.join("audio2.mp4");
    cap_main.write_track("audio2", &audio);
    let (got, err) = framemd5(&audio, "a:0");
    assert!(err.is_empty(), "LL-HLS audio decode errors:\n{err}");
    assert!(got.len() as u64 >= (FIRST_S + SECOND_S - 3) * 46, "only {} audio frames", got.len());

    // Classic HLS: the captured TS segments and the ffmpeg player's
    // recording decode through the change.
    let ts = dir.join("all.ts");
    cap_main.write_ts(&ts);
    for (file, what) in [(&ts, "TS segments"), (&recording, "ffmpeg HLS player")] {
        let (sizes, err) = frame_sizes(file);
        let r = runs(&sizes);
        println!("{what}: frame sizes {r:?}");
        assert!(err.is_empty(), "{what}: decode errors:\n{err}");
        assert_eq!(r.len(), 2, "{what}: frames of the first size, then of the second: {r:?}");
        assert_eq!(r[0].0, FIRST_SIZE, "{what}: {r:?}");
        assert_eq!(r[1].0, SECOND_SIZE, "{what}: {r:?}");
        assert_eq!(r[0].1, want_first.len(), "{what}: every frame before the change: {r:?}");
        assert!(r[1].1 >= 30 * (SECOND_S as usize - 3), "{what}: frames after the change: {r:?}");
    }
    for f in [&ts, &recording, &audio, &dir.join("video1.mp4"), &dir.join("video1_v1.mp4")] {
        let _ = std::fs::remove_file(f);
    }
    println!("wall time {:?}", t0.elapsed());
}

#[test]
fn backup_joining_after_the_change_names_and_serves_the_same_objects() {
    let t0 = Instant::now();
    let input = input();
    let (mp, bp) = (Ports::free(), Ports::free());
    let main = start_node("codec-change-late", mp, bp, "main", "ZeroBased");
    let started = Instant::now();
    let _a = feed(&input.joined, 0, &main.rtmp_url("app", "stream"));
    wait_live(&main, "main live");
    main.wait_log(LOG_CHANGE, Duration::from_secs(20));
    let change = wait_change_published(&main, 1, "a segment after the change on the main");
    assert_eq!(change.1, "video1_v1_init.mp4");

    // The backup's encoder starts later, in the new configuration: the
    // second piece from the main's current position in it.
    let backup = start_node("codec-change-late", bp, mp, "backup", "ZeroBased");
    let offset = started.elapsed().as_secs().saturating_sub(FIRST_S);
    let _b = feed(&input.second, offset, &backup.rtmp_url("app", "stream"));
    wait_live(&backup, "backup live");
    backup.wait_log("backfill done", Duration::from_secs(10));
    let pl = get_text(&backup, "video1.m3u8").expect("backup video playlist");
    wait_for("two segments of the backup's own", Duration::from_secs(15), || {
        let pl = get_text(&backup, "video1.m3u8")?;
        let last = segments(&pl).last().and_then(|s| msn_of(&s.0))?;
        (last >= change.0 + 3).then_some(last)
    });
    let c = assert_identical(&main, &backup, Some(change.0.saturating_sub(1)), "backup joined after the change", 60);
    println!(
        "backup joined at +{offset} s into the new configuration; change at segment {}; {} identical, {} blocking points",
        change.0,
        c.identical,
        c.points.len()
    );

    let log = backup.log_text();
    assert!(log.contains("adopted the peer's timeline"), "{log}");
    assert!(!log.contains(LOG_CHANGE), "the backup saw only the new configuration:\n{log}");
    assert!(!log.contains("lockstep failure"), "{log}");
    let pl_now = get_text(&backup, "video1.m3u8").expect("backup video playlist");
    for pl in [&pl, &pl_now] {
        // The backfilled window reaches back before the change: both maps.
        assert_eq!(change_segment(pl), Some(change.clone()), "backup's change segment:\n{pl}");
        assert!(pl.contains("#EXT-X-MAP:URI=\"video1_init.mp4\""), "backup lists the first init segment:\n{pl}");
    }
    for name in ["video1_init.mp4", "video1_v1_init.mp4", "audio2_init.mp4"] {
        let (sa, ba) = main.get(&format!("/app/stream/{name}"));
        let (sb, bb) = backup.get(&format!("/app/stream/{name}"));
        assert_eq!((sa, sb), (200, 200), "{name}");
        assert!(ba == bb, "{name} differs");
    }
    for master in ["llhls.m3u8", "playlist.m3u8"] {
        let (a, b) = (get_text(&main, master), get_text(&backup, master));
        assert_eq!(a, b, "{master}");
        assert!(b.is_some_and(|t| t.contains(&format!("RESOLUTION={}x{}", SECOND_SIZE.0, SECOND_SIZE.1))));
    }
    println!("wall time {:?}", t0.elapsed());
}
