//! The FLV and MPEG-TS depacketizers on real files written by ffmpeg
//! (libx264 + native AAC encoder). Skipped, with a message, when `ffmpeg` is
//! not installed.
//!
//! The encode is deterministic, so the two demuxers must agree on every
//! access unit.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use lockstep_packager::codec::{split_length_prefixed, AvcConfig};
use lockstep_packager::demux::DemuxEvent;
use lockstep_packager::flv::{read_flv_file, FlvDemuxer};
use lockstep_packager::ts_demux::TsDemuxer;
use lockstep_packager::{CodecConfig, Sample, Track, TrackId};

const FRAMES: usize = 60;
const GOP: usize = 30;

fn have_ffmpeg() -> bool {
    Command::new("ffmpeg").arg("-version").output().is_ok_and(|o| o.status.success())
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("lockstep-demux-real-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// 2 s of 320x240 at 30 fps (GOP 30) and a 48 kHz sine, as FLV and TS.
///
/// Two runs of the same deterministic encode. (Not one run through ffmpeg's
/// `tee` muxer: there the encoder has no global header, and the FLV muxer
/// then writes an empty AVC sequence header and Annex B video tags.)
fn encode(dir: &Path) -> (Bytes, Bytes) {
    let run = |name: &str| {
        let path = dir.join(name);
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-nostdin"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", "2", "-c:v", "libx264", "-g", "30", "-c:a", "aac"])
            .arg(&path)
            .output()
            .expect("run ffmpeg");
        assert!(out.status.success(), "ffmpeg failed: {}", String::from_utf8_lossy(&out.stderr));
        Bytes::from(std::fs::read(&path).expect("read ffmpeg output"))
    };
    (run("in.flv"), run("in.ts"))
}

fn demux_flv(file: &Bytes) -> Vec<DemuxEvent> {
    let tags = read_flv_file(file, "test/flv").expect("FLV framing");
    let mut d = FlvDemuxer::new("test/flv");
    let mut events = Vec::new();
    for t in &tags {
        events.extend(d.push(t.tag_type, t.timestamp_ms, &t.data).expect("FLV tag"));
    }
    events
}

fn demux_ts(file: &[u8], chunk: usize) -> (Vec<DemuxEvent>, u64, u64) {
    let mut d = TsDemuxer::new("test/ts");
    let mut events = Vec::new();
    for c in file.chunks(chunk) {
        events.extend(d.push(c).expect("TS chunk"));
    }
    events.extend(d.finish().expect("TS finish"));
    (events, d.dropped(), d.skipped_bytes())
}

fn tracks(events: &[DemuxEvent]) -> Vec<&Track> {
    events
        .iter()
        .filter_map(|e| match e {
            DemuxEvent::Track(t) => Some(t),
            DemuxEvent::Sample(_) => None,
        })
        .collect()
}

fn samples(events: &[DemuxEvent], track: TrackId) -> Vec<&Sample> {
    events
        .iter()
        .filter_map(|e| match e {
            DemuxEvent::Sample(s) if s.track == track => Some(s),
            _ => None,
        })
        .collect()
}

fn video_config(events: &[DemuxEvent]) -> &AvcConfig {
    let configs: Vec<&AvcConfig> = tracks(events)
        .into_iter()
        .filter_map(|t| match &t.codec {
            CodecConfig::H264(c) => Some(c),
            CodecConfig::Aac(_) => None,
        })
        .collect();
    assert_eq!(configs.len(), 1, "exactly one video Track event");
    configs[0]
}

/// Checks shared by both containers.
fn check_common(name: &str, events: &[DemuxEvent]) {
    // Track events precede their samples.
    for id in [TrackId(1), TrackId(2)] {
        let first_track = events.iter().position(|e| matches!(e, DemuxEvent::Track(t) if t.id == id));
        let first_sample = events.iter().position(|e| matches!(e, DemuxEvent::Sample(s) if s.track == id));
        assert!(first_track.is_some() && first_track < first_sample, "{name}: track {id} before its samples");
    }

    let avc = video_config(events);
    assert_eq!((avc.info.width, avc.info.height), (320, 240), "{name}");
    let (num, den) = avc.info.frame_rate.expect("VUI timing");
    assert_eq!(num, 30 * den, "{name}: 30 fps, got {num}/{den}");
    let codec = avc.codec_string();
    assert!(codec.starts_with("avc1.6400") && codec.len() == 11, "{name}: High profile codec string, got {codec}");
    assert_eq!(avc.sps.len(), 1);
    assert_eq!(avc.pps.len(), 1);

    let audio: Vec<&Track> = tracks(events).into_iter().filter(|t| t.id == TrackId(2)).collect();
    assert_eq!(audio.len(), 1, "{name}: one audio Track event");
    assert_eq!(audio[0].timescale.get(), 48_000);
    match &audio[0].codec {
        CodecConfig::Aac(c) => {
            assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 48_000, 1), "{name}");
            assert_eq!(c.codec_string(), "mp4a.40.2");
        }
        other => panic!("{name}: audio codec {other:?}"),
    }

    let video = samples(events, TrackId(1));
    assert_eq!(video.len(), FRAMES, "{name}: video samples");
    let keyframes: Vec<usize> = video.iter().enumerate().filter(|(_, s)| s.keyframe).map(|(i, _)| i).collect();
    assert_eq!(keyframes, (0..FRAMES).step_by(GOP).collect::<Vec<_>>(), "{name}: keyframes");
    for (i, s) in video.iter().enumerate() {
        assert!(s.pts >= s.dts, "{name}: frame {i} pts before dts");
        assert!(!s.discontinuity);
        let nals = split_length_prefixed(&s.data, 4).expect("4-byte NAL lengths");
        assert!(!nals.is_empty());
        for nal in nals {
            let t = nal[0] & 0x1f;
            assert!(!matches!(t, 7..=9), "{name}: frame {i} still has NAL type {t}");
        }
    }
    for w in video.windows(2) {
        assert!(w[1].dts > w[0].dts, "{name}: video dts increases");
    }

    let audio_samples = samples(events, TrackId(2));
    // 2 s at 48 kHz is 93.75 frames of 1024, plus encoder priming.
    assert!((90..=97).contains(&audio_samples.len()), "{name}: {} audio samples", audio_samples.len());
    for w in audio_samples.windows(2) {
        assert!(w[1].dts >= w[0].dts, "{name}: audio dts never decreases");
    }
    assert!(audio_samples.iter().all(|s| s.keyframe && !s.data.is_empty() && s.dts == s.pts));
}

#[test]
fn ffmpeg_flv_and_ts() {
    if !have_ffmpeg() {
        eprintln!("SKIPPED demux_real: ffmpeg is not installed (CI has it)");
        return;
    }
    let dir = TempDir::new("flv-ts");
    let (flv, ts) = encode(&dir.0);

    let flv_events = demux_flv(&flv);
    check_common("flv", &flv_events);

    let (ts_events, dropped, skipped) = demux_ts(&ts, ts.len());
    assert_eq!((dropped, skipped), (0, 0), "clean TS: nothing dropped or skipped");
    check_common("ts", &ts_events);

    // Chunking never changes the output.
    for chunk in [1, 7, 188, 1000, 65_536] {
        let (events, _, _) = demux_ts(&ts, chunk);
        assert!(events == ts_events, "TS chunk size {chunk} changes the events");
    }

    // Same encode: same access units, same keyframes, same configuration.
    let fv = samples(&flv_events, TrackId(1));
    let tv = samples(&ts_events, TrackId(1));
    for (i, (f, t)) in fv.iter().zip(&tv).enumerate() {
        assert_eq!(f.data, t.data, "video access unit {i} differs between FLV and TS");
        assert_eq!(f.keyframe, t.keyframe);
    }
    assert_eq!(video_config(&flv_events).sps, video_config(&ts_events).sps);
    assert_eq!(video_config(&flv_events).pps, video_config(&ts_events).pps);
    let fa = samples(&flv_events, TrackId(2));
    let ta = samples(&ts_events, TrackId(2));
    assert_eq!(fa.len(), ta.len(), "audio frame count");
    for (i, (f, t)) in fa.iter().zip(&ta).enumerate() {
        assert_eq!(f.data, t.data, "audio frame {i} differs between FLV and TS");
    }

    // TS timestamps are exact: 3000 ticks per frame in decode order, audio
    // 1024 ticks per frame within a PES.
    for w in tv.windows(2) {
        assert_eq!(w[1].dts - w[0].dts, 3000);
    }
    // FLV timestamps are whole milliseconds: 33 or 34 ms per frame.
    for w in fv.windows(2) {
        assert!(matches!(w[1].dts - w[0].dts, 2970 | 3060), "FLV frame step {}", w[1].dts - w[0].dts);
    }

    damaged_inputs(&flv, &ts);
}

/// Deterministic xorshift.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Damaged copies of the real files: no panics, and for TS the events do
/// not depend on chunking even when packets are broken.
fn damaged_inputs(flv: &Bytes, ts: &Bytes) {
    let mut rng = 0x853c_49e6_748f_ea9bu64;
    for round in 0..40 {
        let mut t = ts.to_vec();
        for _ in 0..1 + next(&mut rng) % 20 {
            let i = (next(&mut rng) as usize) % t.len();
            match next(&mut rng) % 4 {
                0 => {
                    t.drain(i..(i + 1 + (next(&mut rng) as usize) % 300).min(t.len()));
                }
                1 => t.insert(i, next(&mut rng) as u8),
                _ => t[i] = next(&mut rng) as u8,
            }
        }
        let ok_events = |chunk: usize| {
            let mut d = TsDemuxer::new("test/ts");
            let mut events = Vec::new();
            for c in t.chunks(chunk) {
                events.extend(d.push(c).unwrap_or_default());
            }
            for _ in 0..2 {
                events.extend(d.finish().unwrap_or_default());
            }
            (events, d.dropped(), d.skipped_bytes())
        };
        let whole = ok_events(t.len());
        let chunk = 1 + (next(&mut rng) as usize) % 5000;
        assert!(whole == ok_events(chunk), "round {round}: chunk size {chunk} changes the events");

        let mut f = flv.to_vec();
        for _ in 0..1 + next(&mut rng) % 20 {
            let i = (next(&mut rng) as usize) % f.len();
            f[i] = next(&mut rng) as u8;
        }
        if let Ok(tags) = read_flv_file(&Bytes::from(f), "test/flv") {
            let mut d = FlvDemuxer::new("test/flv");
            for tag in &tags {
                let _ = d.push(tag.tag_type, tag.timestamp_ms, &tag.data);
            }
        }
    }
}
