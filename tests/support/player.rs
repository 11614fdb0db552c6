//! Players for end-to-end tests: hls.js in Debian's Chromium (tests/player,
//! driven by playwright-core from `play.mjs`) and ffmpeg recording HLS.
#![allow(dead_code)]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Proc;

pub const CHROMIUM: &str = "/usr/bin/chromium";

pub fn on_path(exe: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(exe)).find(|p| p.is_file())
}

pub fn player_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("player")
}

/// Node.js and Chromium, or a failure saying how to get them.
pub fn player_tools() -> PathBuf {
    let node = on_path("node");
    let modules = ["hls.js/dist/hls.js", "playwright-core/package.json"]
        .iter()
        .all(|m| player_dir().join("node_modules").join(m).is_file());
    let mut missing = Vec::new();
    if node.is_none() {
        missing.push("node (Node.js >= 20, Debian package nodejs)".to_string());
    }
    if !Path::new(CHROMIUM).is_file() {
        missing.push(format!("{CHROMIUM} (Debian package chromium)"));
    }
    if !modules {
        missing.push("tests/player/node_modules (hls.js, playwright-core: `npm ci` in tests/player)".to_string());
    }
    assert!(
        missing.is_empty(),
        "the hls.js player test needs {}; scripts/test.sh installs them (run it once, or install them by hand)",
        missing.join(", ")
    );
    node.expect("node")
}

/// Kills a Chromium started by play.mjs (by the PID it reported, which is
/// also its process group's id) if it is still running when this is dropped:
/// play.mjs stops it itself, unless it was killed first.
pub struct ChromiumGuard(Arc<Mutex<Option<u32>>>);

impl Drop for ChromiumGuard {
    fn drop(&mut self) {
        let pid = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        let Some(pid) = pid else { return };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains("chromium") {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
    }
}

/// What play.mjs reported.
#[derive(Debug)]
pub struct Played {
    pub status: Option<std::process::ExitStatus>,
    pub report: String,
    pub stderr: String,
    pub summary: Vec<(String, String)>,
}

impl Played {
    pub fn get(&self, key: &str) -> Option<f64> {
        self.summary.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.parse().ok())
    }

    pub fn num(&self, key: &str) -> f64 {
        self.get(key).unwrap_or_else(|| panic!("play.mjs summary has no number {key}:\n{}", self.stderr))
    }
}

/// Runs play.mjs against `url` for PLAY_SECONDS.
pub fn play(node: &Path, url: &str, low_latency: bool, seconds: u32) -> Played {
    let mut cmd = Command::new(node);
    cmd.current_dir(player_dir())
        .arg("play.mjs")
        .args(["--url", url, "--seconds", &seconds.to_string(), "--chromium", CHROMIUM])
        .args(["--low-latency", if low_latency { "true" } else { "false" }])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut p = Proc::spawn("node play.mjs", &mut cmd);
    let pid = Arc::new(Mutex::new(None));
    let _guard = ChromiumGuard(pid.clone());
    let mut out = p.child.stdout.take().expect("stdout");
    let mut err = p.child.stderr.take().expect("stderr");
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let stderr = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = err.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&all);
            if let Some(n) = text.lines().find_map(|l| l.strip_prefix("chromium-pid ")?.trim().parse().ok()) {
                *pid.lock().unwrap_or_else(|e| e.into_inner()) = Some(n);
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    let status = p.wait_timeout(Duration::from_secs(u64::from(seconds) + 90));
    let report = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    let summary = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("summary "))
        .map(|l| l.split_whitespace().filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.into(), v.into())).collect())
        .unwrap_or_default();
    Played { status, report, stderr, summary }
}

/// ffmpeg records `seconds` of `url` (stream copy) into `out`.
pub fn record(url: &str, out: &Path, seconds: u32) -> Proc {
    let t = seconds.to_string();
    Proc::spawn(
        "ffmpeg (record)",
        Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", url, "-t", &t])
            .args(["-map", "0", "-c", "copy", "-f", "mpegts"])
            .arg(out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
}

pub fn ffprobe(args: &[&str], file: &Path) -> String {
    let out = Command::new("ffprobe").args(["-v", "error"]).args(args).arg(file).output().expect("ffprobe runs");
    assert!(out.status.success(), "ffprobe {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (packet count, largest DTS step, smallest DTS step, first DTS, last DTS)
/// of the first stream of `kind` ("v" or "a"), in seconds.
pub fn dts_steps(file: &Path, kind: &str) -> (usize, f64, f64, f64, f64) {
    let text =
        ffprobe(&["-select_streams", &format!("{kind}:0"), "-show_entries", "packet=dts_time", "-of", "csv=p=0"], file);
    let dts: Vec<f64> = text.lines().filter_map(|l| l.trim().trim_end_matches(',').parse().ok()).collect();
    let steps: Vec<f64> = dts.windows(2).map(|w| w[1] - w[0]).collect();
    let max = steps.iter().copied().fold(f64::MIN, f64::max);
    let min = steps.iter().copied().fold(f64::MAX, f64::min);
    (dts.len(), max, min, dts.first().copied().unwrap_or(0.0), dts.last().copied().unwrap_or(0.0))
}
