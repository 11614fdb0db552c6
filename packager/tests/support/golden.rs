//! Golden inputs: load a case from `golden/<case>/`, feed a packager, collect
//! what it publishes, and check the output with ffmpeg.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use lockstep_packager::demux::DemuxEvent;
use lockstep_packager::flv::{read_flv_file, FlvDemuxer};
use lockstep_packager::ts_demux::TsDemuxer;
use lockstep_packager::{
    Anchor, Config, Event, HlsConfig, LlHlsConfig, ObjectKind, Output, Packager, Sample, Start, StreamDescription,
    Track,
};
use sha2::{Digest, Sha256};

pub const CASES: &[&str] = &[
    "avc30_gop1",
    "avc2997_gop2",
    "scenecut",
    "audio_only",
    "video_only",
    "far_timestamps",
    "config_change",
    "config_change_rate",
];

pub fn golden_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("golden").join(case)
}

pub fn input_path(case: &str) -> PathBuf {
    let d = golden_dir(case);
    for name in ["input.flv", "input.ts"] {
        if d.join(name).exists() {
            return d.join(name);
        }
    }
    panic!("no input in {}", d.display());
}

/// The packaging configuration of each case (see its NOTES.md).
pub fn case_config(case: &str) -> Config {
    let (seg, part, count) = match case {
        "avc2997_gop2" => (4000, 1000, 5),
        _ => (2000, 500, 10),
    };
    Config {
        llhls: Some(LlHlsConfig {
            segment_duration_ms: seg,
            part_duration_ms: part,
            part_hold_back_ms: 3 * part,
            segment_count: count,
        }),
        hls: Some(HlsConfig { segment_duration_ms: seg, segment_count: count }),
        start: Start::StreamStart,
        anchor: Anchor::default(),
    }
}

pub struct Input {
    pub desc: StreamDescription,
    pub samples: Vec<Sample>,
    /// Codec configuration changes: (index of the first sample after it in
    /// `samples`, the new configuration).
    pub changes: Vec<(usize, Track)>,
}

/// Demux a golden input into a stream description and its samples in input
/// order. `chunk` splits MPEG-TS input into pushes of that many bytes.
pub fn load_chunked(case: &str, chunk: usize) -> Input {
    let path = input_path(case);
    let bytes = Bytes::from(std::fs::read(&path).expect("read golden input"));
    let mut events = Vec::new();
    if path.extension().is_some_and(|e| e == "flv") {
        let tags = read_flv_file(&bytes, case).expect("FLV parses");
        let mut d = FlvDemuxer::new(case);
        for t in tags {
            events.extend(d.push(t.tag_type, t.timestamp_ms, &t.data).expect("FLV tag demuxes"));
        }
    } else {
        let mut d = TsDemuxer::new(case);
        for c in bytes.chunks(chunk.max(1)) {
            events.extend(d.push(c).expect("TS demuxes"));
        }
        events.extend(d.finish().expect("TS finishes"));
    }
    let mut tracks: Vec<Track> = Vec::new();
    let mut samples = Vec::new();
    let mut changes = Vec::new();
    for e in events {
        match e {
            DemuxEvent::Track(t) => match tracks.iter_mut().find(|o| o.id == t.id) {
                Some(old) if !samples.iter().any(|s: &Sample| s.track == t.id) => *old = t,
                Some(_) => changes.push((samples.len(), t)),
                None => tracks.push(t),
            },
            DemuxEvent::Sample(s) => samples.push(s),
        }
    }
    tracks.sort_by_key(|t| t.id);
    Input {
        desc: StreamDescription { name: format!("golden/{case}"), tracks, program_date_time_base_ms: 0 },
        samples,
        changes,
    }
}

pub fn load(case: &str) -> Input {
    load_chunked(case, 188 * 7)
}

/// Everything a packager published.
#[derive(Default)]
pub struct Collected {
    /// Every object ever published, latest version (playlists are replaced).
    pub objects: BTreeMap<String, Bytes>,
    /// Names in order of first publication.
    pub order: Vec<String>,
    pub kinds: BTreeMap<String, ObjectKind>,
    /// Every version of every media playlist, in order.
    pub playlist_versions: Vec<(String, String)>,
    pub retired: Vec<String>,
    pub events: Vec<Event>,
}

impl Collected {
    /// Names of media objects (not playlists) in publication order.
    pub fn media_names(&self) -> Vec<&String> {
        self.order.iter().filter(|n| self.kinds.get(*n).is_some_and(|k| k.is_immutable())).collect()
    }
}

pub struct Run {
    pub c: Collected,
    pub packager: Packager,
}

pub fn drain(p: &mut Packager, run: &mut Collected) {
    while let Some(o) = p.poll_output() {
        match o {
            Output::Object(obj) => {
                if !run.objects.contains_key(&obj.name) {
                    run.order.push(obj.name.clone());
                } else if obj.kind.is_immutable() {
                    assert_eq!(
                        run.objects[&obj.name], obj.bytes,
                        "immutable object {} republished with other bytes",
                        obj.name
                    );
                }
                if obj.kind == ObjectKind::MediaPlaylist {
                    run.playlist_versions
                        .push((obj.name.clone(), String::from_utf8(obj.bytes.to_vec()).expect("playlists are UTF-8")));
                }
                run.kinds.insert(obj.name.clone(), obj.kind);
                run.objects.insert(obj.name, obj.bytes);
            }
            Output::Retire(name) => run.retired.push(name),
            Output::Event(e) => run.events.push(e),
            Output::Published { .. } => {}
        }
    }
}

/// Feed `samples` (in the given order) to a new packager, polling after
/// every `batch` samples.
pub fn run_samples(desc: &StreamDescription, config: Config, samples: &[Sample], batch: usize) -> Run {
    run_with_changes(desc, config, samples, &[], batch)
}

/// [`run_samples`] with codec configuration changes pushed before the
/// samples at the given indexes.
pub fn run_with_changes(
    desc: &StreamDescription,
    config: Config,
    samples: &[Sample],
    changes: &[(usize, Track)],
    batch: usize,
) -> Run {
    let mut p = Packager::new(desc.clone(), config).expect("valid packager configuration");
    let mut parts = Collected::default();
    for (i, s) in samples.iter().enumerate() {
        for (_, t) in changes.iter().filter(|(at, _)| *at == i) {
            p.push_track(t.clone()).expect("configuration accepted");
        }
        p.push(s.clone()).expect("sample accepted");
        if (i + 1) % batch.max(1) == 0 {
            drain(&mut p, &mut parts);
        }
    }
    p.finish();
    drain(&mut p, &mut parts);
    Run { c: parts, packager: p }
}

pub fn run_case(case: &str) -> (Input, Run) {
    let input = load(case);
    let run = run_with_changes(&input.desc, case_config(case), &input.samples, &input.changes, 1);
    (input, run)
}

pub fn sha256_hex(b: &[u8]) -> String {
    let d = Sha256::digest(b);
    d.iter().map(|x| format!("{x:02x}")).collect()
}

// ------------------------------------------------------------- ffmpeg ---

pub fn require_ffmpeg() {
    for tool in ["ffmpeg", "ffprobe"] {
        let ok = Command::new(tool).arg("-version").stdout(Stdio::null()).stderr(Stdio::null()).status();
        assert!(
            ok.is_ok_and(|s| s.success()),
            "{tool} is required for the decode checks (scripts/test.sh installs it)"
        );
    }
}

/// Run a command with a time limit; returns (stdout, stderr). Kills the
/// child by PID on timeout.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> (String, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let start = std::time::Instant::now();
    loop {
        match child.try_wait().expect("wait") {
            Some(_) => break,
            None if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{cmd:?} did not finish within {limit:?}");
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let out = child.wait_with_output().expect("output");
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Per-frame MD5s of the decoded `stream` ("v" or "a") of `file`, and
/// ffmpeg's error output.
pub fn framemd5(file: &Path, stream: &str) -> (Vec<String>, String) {
    let (out, err) = run_bounded(
        Command::new("ffmpeg").args(["-nostdin", "-v", "error", "-i"]).arg(file).args([
            // Frames keep their own size across a resolution change.
            "-autoscale",
            "0",
            "-map",
            &format!("0:{stream}:0"),
            "-f",
            "framemd5",
            "-",
        ]),
        Duration::from_secs(120),
    );
    let hashes = out
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .filter(|h| !h.is_empty())
        .collect();
    (hashes, err)
}

/// Whether `needle` occurs as a contiguous run inside `hay`.
pub fn contains_run(hay: &[String], needle: &[String]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("lockstep-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
