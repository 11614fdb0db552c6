//! Real players against the real server, fed by ffmpeg over RTMP in real
//! time:
//!
//! - hls.js (tests/player: hls.js in Debian's Chromium, driven by
//!   playwright-core from `play.mjs`) plays the LL-HLS URL (`lowLatencyMode`)
//!   and the classic HLS URL for 30 s each: the playhead advances, no fatal
//!   error, and with LL-HLS the playhead stays within PART-HOLD-BACK + 1 s of
//!   live, measured both by hls.js (`hls.latency`) and by the playhead's
//!   PROGRAM-DATE-TIME against the wall clock (TimestampMode SystemClock makes
//!   PROGRAM-DATE-TIME wall-clock time).
//! - ffmpeg's HLS demuxer records 30 s of each URL; the recordings' video
//!   timestamps have no gap longer than two frames.
//!
//! Chromium, Node.js and the npm packages are installed by scripts/test.sh;
//! without them the hls.js test fails (it does not skip).

mod support;

use std::io::Read as _;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use support::player::*;
use support::*;

const PLAY_SECONDS: u32 = 30;
/// PART-HOLD-BACK of the test server (AppXml's default), seconds.
const PART_HOLD_BACK: f64 = 1.5;
/// PART-TARGET of the test server (AppXml's default ChunkDuration), seconds.
const PART_TARGET: f64 = 0.5;

/// The 90 s FLV input (1 s GOP), made once per test binary.
fn input() -> PathBuf {
    static ONCE: Mutex<()> = Mutex::new(());
    let _g = ONCE.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("lockstep-e2e-players-inputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("input dir");
    standard_input(&dir, "flv", 90)
}

/// A server (SystemClock timeline) with `app/stream` pushed in real time.
struct Live {
    _push: Proc,
    server: Server,
}

impl Live {
    fn start(tag: &str) -> Live {
        let app = AppXml { timestamp_mode: "SystemClock".into(), ..AppXml::default() };
        assert_eq!(app.part_hold_back.parse::<f64>().ok(), Some(PART_HOLD_BACK));
        assert_eq!(app.chunk.parse::<f64>().ok(), Some(PART_TARGET));
        let server = Server::start_with(tag, &[app]);
        let push = ffmpeg_push(&input(), "flv", &server.rtmp_url("app", "stream"));
        let live = Live { _push: push, server };
        let port = live.server.ports.http;
        // Both outputs have a few segments, so players start normally.
        wait_for("LL-HLS and HLS playlists with 2 segments", Duration::from_secs(20), || {
            let segs = |name: &str| {
                let (st, b) = http_get(port, &format!("/app/stream/{name}"));
                if st == 200 {
                    String::from_utf8_lossy(&b).lines().filter(|l| l.starts_with("#EXTINF")).count()
                } else {
                    0
                }
            };
            (segs("video1.m3u8") >= 2 && segs("ts.m3u8") >= 2).then_some(())
        });
        live
    }

    fn url(&self, name: &str) -> String {
        format!("http://127.0.0.1:{}/app/stream/{name}", self.server.ports.http)
    }
}

// -------------------------------------------------------------- hls.js ---

fn describe(what: &str, p: &Played) -> String {
    format!("{what}: exit {:?}\n--- stderr ---\n{}\n--- report ---\n{}", p.status, p.stderr, p.report)
}

#[test]
fn hlsjs_plays_llhls_and_hls() {
    let node = player_tools();
    let live = Live::start("players-hlsjs");
    let (ll_url, hls_url) = (live.url("llhls.m3u8"), live.url("playlist.m3u8"));
    // Both players at once: 30 s in all, and the server serves two clients.
    let (ll, hls) = std::thread::scope(|sc| {
        let a = sc.spawn(|| play(&node, &ll_url, true, PLAY_SECONDS));
        let b = sc.spawn(|| play(&node, &hls_url, false, PLAY_SECONDS));
        (a.join().expect("LL-HLS player"), b.join().expect("HLS player"))
    });
    for (what, p) in [("LL-HLS", &ll), ("HLS", &hls)] {
        println!("hls.js {what}: {}", p.summary.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "));
    }
    for (what, p) in [("LL-HLS", &ll), ("HLS", &hls)] {
        let d = describe(what, p);
        assert!(p.status.is_some_and(|s| s.success()), "hls.js {d}");
        assert_eq!(p.num("fatal"), 0.0, "fatal hls.js errors: {d}");
        assert_eq!(p.num("media_error"), 0.0, "media element error: {d}");
        assert!(
            p.num("advanced") >= 25.0,
            "currentTime advanced only {} s in {PLAY_SECONDS} s: {d}",
            p.num("advanced")
        );
    }
    let d = describe("LL-HLS", &ll);
    // hls.js used the low-latency machinery.
    assert!(ll.num("blocking") >= 20.0, "too few blocking playlist reloads: {d}");
    assert!(ll.num("parts") >= 20.0, "too few parts loaded: {d}");
    assert_eq!(ll.num("target_latency"), PART_HOLD_BACK, "hls.js takes PART-HOLD-BACK as its target: {d}");
    let limit = PART_HOLD_BACK + 1.0;
    let latency = ll.num("latency");
    assert!(latency <= limit, "hls.js latency {latency} s > PART-HOLD-BACK + 1 s: {d}");
    // Against the wall clock the playhead is also behind by the age of the
    // live edge (the newest part ended up to a part ago) and the ingest's own
    // delay, which is where the SystemClock timeline is anchored.
    let behind = ll.num("pdt_latency");
    let wall_limit = limit + PART_TARGET;
    assert!(behind <= wall_limit, "the playhead's PROGRAM-DATE-TIME is {behind} s behind the wall clock: {d}");
    // Classic HLS starts three segments back (HOLD-BACK); it should stay put.
    let d = describe("HLS", &hls);
    assert!(hls.num("pdt_latency") <= 12.0, "HLS playhead too far behind live: {d}");
}

// -------------------------------------------------------------- ffmpeg ---

#[test]
fn ffmpeg_records_llhls_and_hls() {
    let live = Live::start("players-ffmpeg");
    let dir = &live.server.dir;
    let seconds = PLAY_SECONDS;
    let jobs = [
        ("LL-HLS", live.url("llhls.m3u8"), dir.join("llhls.ts")),
        ("HLS", live.url("playlist.m3u8"), dir.join("hls.ts")),
    ];
    let mut procs: Vec<Proc> = jobs.iter().map(|(_, url, out)| record(url, out, seconds)).collect();
    let mut errs = Vec::new();
    for p in &mut procs {
        let mut err = p.child.stderr.take().expect("stderr");
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let st = p.wait_timeout(Duration::from_secs(u64::from(seconds) + 60));
        errs.push((st, reader.join().unwrap_or_default()));
    }
    let frame = 1.0 / 30.0;
    for ((what, url, out), (st, err)) in jobs.iter().zip(&errs) {
        assert!(st.is_some_and(|s| s.success()), "ffmpeg recording {url}: exit {st:?}\n{err}");
        let duration: f64 =
            ffprobe(&["-show_entries", "format=duration", "-of", "csv=p=0"], out).trim().parse().expect("a duration");
        let (n, max, min, first, last) = dts_steps(out, "v");
        let (an, amax, _, _, _) = dts_steps(out, "a");
        println!(
            "ffmpeg {what}: {duration:.2} s; video {n} packets, DTS {first:.3}..{last:.3}, steps {:.1}..{:.1} ms; \
             audio {an} packets, largest step {:.1} ms; ffmpeg errors: {:?}",
            min * 1000.0,
            max * 1000.0,
            amax * 1000.0,
            err.trim()
        );
        assert!(duration >= 25.0, "{what}: recorded {duration} s");
        assert!(n as f64 >= 25.0 / frame, "{what}: only {n} video packets");
        assert!(max <= 2.0 * frame + 0.001, "{what}: a {:.1} ms gap between video packets", max * 1000.0);
        assert!(min > 0.0, "{what}: video DTS not increasing ({min})");
        assert!(an > 0, "{what}: no audio recorded");
    }
}
