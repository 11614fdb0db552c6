//! Real-decoder check of the MPEG-TS writer: mux 2 s of x264 video (with
//! B-frames, two IDRs) and AAC audio produced by ffmpeg into one segment,
//! then let ffprobe/ffmpeg parse and decode it.
//!
//! Skipped (with a message) when ffmpeg or ffprobe is not installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::Bytes;
use lockstep_packager::codec::{self, AacConfig, AvcConfig, NAL_AUD, NAL_IDR, NAL_PPS, NAL_SPS};
use lockstep_packager::ts_inspect::summarize_ts;
use lockstep_packager::ts_mux::{mux_segment, PID_AUDIO, PID_VIDEO};
use lockstep_packager::{CodecConfig, Sample, Timescale, Track, TrackId};

const FRAMES: usize = 60;
/// Timeline offset so that the first B-frame DTS (negative in the MP4) stays
/// positive: 10 s.
const OFFSET_S: i64 = 10;

struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

fn run(program: &str, args: &[&str]) -> Run {
    match Command::new(program).args(args).output() {
        Ok(out) => Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        Err(e) => Run { ok: false, stdout: String::new(), stderr: e.to_string() },
    }
}

fn run_ok(program: &str, args: &[&str]) -> String {
    let r = run(program, args);
    assert!(r.ok, "{program} {args:?} failed:\n{}", r.stderr);
    r.stdout
}

fn tools_available() -> bool {
    ["ffmpeg", "ffprobe"].iter().all(|tool| run(tool, &["-version"]).ok)
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// H.264 access units from an Annex B stream whose access units start with
/// an AUD. NAL units before the first AUD (x264's SEI) belong to the first
/// access unit. Returns (access units as NAL lists, first SPS, first PPS).
fn access_units(annex_b: &Bytes) -> (Vec<Vec<Bytes>>, Bytes, Bytes) {
    let mut units: Vec<Vec<Bytes>> = Vec::new();
    let mut current: Vec<Bytes> = Vec::new();
    let (mut sps, mut pps) = (None, None);
    for nal in codec::split_annex_b(annex_b) {
        let t = codec::nal_type(&nal);
        let has_vcl = current.iter().any(|n| (1..=5).contains(&codec::nal_type(n)));
        if t == NAL_AUD && has_vcl {
            units.push(std::mem::take(&mut current));
        }
        if t == NAL_SPS {
            sps.get_or_insert_with(|| nal.clone());
        }
        if t == NAL_PPS {
            pps.get_or_insert_with(|| nal.clone());
        }
        current.push(nal);
    }
    if !current.is_empty() {
        units.push(current);
    }
    (units, sps.expect("stream has an SPS"), pps.expect("stream has a PPS"))
}

/// (pts, dts, keyframe) per video packet in decode order, in 90 kHz.
fn video_timestamps(mp4: &Path) -> Vec<(i64, i64, bool)> {
    run_ok(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts,dts,flags",
            "-of",
            "csv=p=0",
            path_str(mp4),
        ],
    )
    .lines()
    .filter(|l| !l.trim().is_empty())
    .map(|l| {
        let f: Vec<&str> = l.trim().split(',').collect();
        let pts = f[0].parse().expect("pts");
        let dts = f[1].parse().expect("dts");
        (pts, dts, f[2].contains('K'))
    })
    .collect()
}

/// Raw AAC frames (ADTS headers removed) and the configuration of the first.
fn aac_frames(adts: &[u8]) -> (AacConfig, Vec<Bytes>) {
    let mut frames = Vec::new();
    let mut config = None;
    let mut rest = adts;
    while !rest.is_empty() {
        let h = codec::parse_adts(rest).expect("ADTS header");
        if config.is_none() {
            config = Some(AacConfig::from_adts(&h).expect("AAC config"));
        }
        frames.push(Bytes::copy_from_slice(&rest[h.header_len..h.frame_len]));
        rest = &rest[h.frame_len..];
    }
    (config.expect("at least one AAC frame"), frames)
}

/// MD5 of each decoded video frame, in output order.
fn frame_hashes(media: &Path) -> Vec<String> {
    run_ok("ffmpeg", &["-v", "error", "-i", path_str(media), "-map", "0:v:0", "-f", "framemd5", "-"])
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_string()))
        .collect()
}

#[test]
fn two_second_av_segment_decodes_with_ffmpeg() {
    if !tools_available() {
        eprintln!("SKIPPED ts_mux_real: ffmpeg/ffprobe not found in PATH");
        return;
    }
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("ts_mux_real_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mp4 = dir.join("video.mp4");
    let h264 = dir.join("video.h264");
    let aac = dir.join("audio.aac");
    let seg = dir.join("seg.ts");

    // 60 frames, IDR every 30, B-frames, AUD before every access unit; MP4
    // at 90 kHz only to learn each access unit's PTS/DTS.
    run_ok(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x240:rate=30",
            "-frames:v",
            "60",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            "-bf",
            "2",
            "-x264-params",
            "aud=1:keyint=30:min-keyint=30:scenecut=0",
            "-video_track_timescale",
            "90000",
            path_str(&mp4),
        ],
    );
    run_ok(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-i",
            path_str(&mp4),
            "-c:v",
            "copy",
            "-bsf:v",
            "h264_mp4toannexb",
            "-f",
            "h264",
            path_str(&h264),
        ],
    );
    run_ok(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "2",
            "-c:a",
            "aac",
            "-ac",
            "2",
            "-f",
            "adts",
            path_str(&aac),
        ],
    );

    let annex_b = Bytes::from(std::fs::read(&h264).expect("read h264"));
    let (units, sps, pps) = access_units(&annex_b);
    let times = video_timestamps(&mp4);
    assert_eq!(units.len(), FRAMES, "access units");
    assert_eq!(times.len(), FRAMES, "ffprobe packets");
    let avc = AvcConfig::from_sps_pps(&[sps], &[pps]).expect("AvcConfig");
    let (aac_config, aac_raw) = aac_frames(&std::fs::read(&aac).expect("read aac"));

    let video = Track { id: TrackId(1), timescale: Timescale::MPEG, codec: CodecConfig::H264(avc), bitrate_hint: None };
    let audio_rate = aac_config.sample_rate;
    let audio = Track {
        id: TrackId(2),
        timescale: Timescale::new(audio_rate).expect("sample rate"),
        codec: CodecConfig::Aac(aac_config),
        bitrate_hint: None,
    };

    let mut samples = Vec::new();
    for (nals, &(pts, dts, key)) in units.iter().zip(&times) {
        let is_idr = nals.iter().any(|n| codec::nal_type(n) == NAL_IDR);
        assert_eq!(is_idr, key, "IDR access units are the keyframes");
        samples.push(Sample {
            track: TrackId(1),
            dts: dts + OFFSET_S * 90_000,
            pts: pts + OFFSET_S * 90_000,
            keyframe: key,
            // In-band AUD/SPS/PPS stay in the samples: the muxer must drop
            // them and write its own.
            data: codec::to_length_prefixed(nals),
            discontinuity: false,
        });
    }
    let audio_base = OFFSET_S * i64::from(audio_rate);
    let audio_frames =
        aac_raw.into_iter().enumerate().take_while(|(i, _)| (*i as i64) * 1024 < 2 * i64::from(audio_rate));
    let mut audio_count = 0;
    for (i, frame) in audio_frames {
        let t = audio_base + i as i64 * 1024;
        samples.push(Sample { track: TrackId(2), dts: t, pts: t, keyframe: true, data: frame, discontinuity: false });
        audio_count += 1;
    }
    // Track order as given: all video, then all audio; the muxer interleaves.
    let refs: Vec<&Sample> = samples.iter().collect();
    let ts = mux_segment(&[&video, &audio], &refs).expect("mux");
    assert_eq!(ts, mux_segment(&[&audio, &video], &refs).expect("mux"), "deterministic");
    std::fs::write(&seg, &ts).expect("write segment");

    let summary = summarize_ts(&ts).expect("summary");
    assert!(summary.starts_with_pat_pmt(), "{summary}");
    assert!(summary.cc_continuous_from_zero(), "{summary}");
    assert_eq!(summary.malformed_packets, 0, "{summary}");
    let v = &summary.pids[&PID_VIDEO];
    let a = &summary.pids[&PID_AUDIO];
    assert_eq!(v.pes, FRAMES, "{summary}");
    assert_eq!(v.pcr_count, FRAMES, "{summary}");
    assert_eq!(v.random_access, 2, "{summary}");
    assert!(v.pes_with_dts > 0, "B-frames carry a DTS\n{summary}");
    assert_eq!(a.pes, audio_count, "{summary}");
    assert_eq!(a.pes_length_mismatches, 0, "{summary}");

    // ffprobe parses everything without complaint.
    let probe = run("ffprobe", &["-v", "error", "-show_streams", "-show_packets", path_str(&seg)]);
    assert!(probe.ok && probe.stderr.trim().is_empty(), "{}", probe.stderr);
    assert!(probe.stdout.contains("codec_name=h264"));
    assert!(probe.stdout.contains("codec_name=aac"));

    // ffmpeg decodes both streams without errors.
    let decode = run("ffmpeg", &["-v", "error", "-i", path_str(&seg), "-f", "null", "-"]);
    assert!(decode.ok && decode.stderr.trim().is_empty(), "{}", decode.stderr);

    // All 60 pictures decode, and they are the pictures x264 encoded.
    let frames = run_ok(
        "ffprobe",
        &[
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            path_str(&seg),
        ],
    );
    // MPEG-TS input lists the stream once more under its program.
    let counts: Vec<&str> = frames.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!counts.is_empty(), "{frames}");
    assert!(counts.iter().all(|c| c.trim() == FRAMES.to_string()), "{frames}");
    let want = frame_hashes(&mp4);
    assert_eq!(want.len(), FRAMES);
    assert_eq!(frame_hashes(&seg), want);

    std::fs::remove_dir_all(&dir).ok();
}
