//! Replays every input kept under `golden/fuzz-regressions/<target>/`
//! through the same code as the fuzz target `<target>` (fuzz/src/lib.rs,
//! compiled in here): each once made a target crash (a panic, an overflow,
//! a timeout or unbounded memory) and must now run through. Also runs each
//! target once on a few trivial inputs, so that the targets' code keeps
//! compiling and running with the server's.

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod fuzz;

use std::path::Path;
use std::time::{Duration, Instant};

type Target = fn(&[u8]);

fn targets() -> Vec<(&'static str, Target)> {
    use fuzz::targets::*;
    vec![
        ("rtmp", rtmp::run),
        ("amf", amf::run),
        ("flv", flv::run),
        ("codec", codec::run),
        ("ts_demux", ts_demux::run),
        ("mpegts_udp", mpegts_udp::run),
        ("srt", srt::run),
        ("config", config::run),
        ("http", http::run),
        ("peer", peer::run),
    ]
}

/// Longest a replay may take (libFuzzer's timeout in scripts/fuzz.sh is
/// 10 s; a debug build is slower).
const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn crash_inputs_run_through() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/fuzz-regressions");
    let mut replayed = 0;
    for (name, run) in targets() {
        let Ok(entries) = std::fs::read_dir(dir.join(name)) else { continue };
        let mut files: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for path in files.iter().filter(|p| p.extension().is_none_or(|e| e != "md")) {
            let data = std::fs::read(path).unwrap();
            let start = Instant::now();
            run(&data);
            let took = start.elapsed();
            assert!(took < LIMIT, "{} took {took:?}", path.display());
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} crash inputs");
}

#[test]
fn targets_run_on_trivial_inputs() {
    for (_, run) in targets() {
        for data in [&b""[..], b"\0", b"\x80\x03\x00\x00", &[0x47; 189][..]] {
            run(data);
        }
    }
}
