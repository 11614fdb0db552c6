//! `lockstep verify`: follow one live stream on both nodes of a pair and
//! check that they serve byte-identical objects under identical URLs.
//!
//! Every cycle it fetches, from both nodes at once:
//!
//! - the LL-HLS master (`llhls.m3u8`) and the classic HLS master
//!   (`playlist.m3u8`);
//! - every LL-HLS media playlist non-blocking, then blocking at the next
//!   preload-hinted part (`_HLS_msn`/`_HLS_part`, the hint of the node that is
//!   further ahead, so the same URL goes to both) and the delta update at the
//!   same point (`_HLS_skip=YES`) when the playlist advertises CAN-SKIP-UNTIL;
//! - the classic media playlist (`ts.m3u8`);
//! - every init, part, segment and TS segment any of those playlists lists.
//!
//! An object that only one node serves (not published yet on the other, or
//! already retired) is retried until the end and then counted as missing on
//! that node, never as a difference. Two non-blocking playlists are compared
//! only when both nodes are at the same point (same EXT-X-PRELOAD-HINT, or for
//! classic HLS the same last segment); otherwise the pair is "not
//! comparable". Blocking and delta playlists are always comparable: the same
//! URL must give the same bytes whenever and wherever it is asked.
//!
//! Exit status: 0 when at least one object was compared and none differed, 1
//! when any object differed, 2 on a usage or connection error.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::Read;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

pub const USAGE: &str =
    "usage: lockstep verify --main URL --backup URL --stream APP/STREAM [--duration SECONDS] [--verbose]

  --main URL          base URL of the main node's HTTP port, e.g. http://10.0.0.1:3333
  --backup URL        base URL of the backup node's HTTP port
  --stream APP/STREAM the stream to follow, e.g. app/stream
  --duration SECONDS  how long to follow it (default 30)
  --verbose           print every comparison as it is made

Exit status: 0 no difference (and at least one object compared), 1 differences, 2 usage or connection error.";

/// Differences whose details are printed (all of them with --verbose, up to
/// [`MAX_KEPT`]).
const SHOWN: usize = 5;
/// Differences whose details are kept at all.
const MAX_KEPT: usize = 50;
/// The largest body read from a node.
const MAX_BODY: u64 = 256 << 20;
/// Timeout of a non-blocking request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Connection timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Context lines around each change in a playlist diff.
const DIFF_CONTEXT: usize = 3;
/// Above this many cells the line diff stops looking for a longest common
/// subsequence and shows the differing middle as removed then added.
const MAX_LCS_CELLS: usize = 4_000_000;

// ----------------------------------------------------------------- options ---

#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    pub main: String,
    pub backup: String,
    pub app: String,
    pub stream: String,
    pub duration: Duration,
    pub verbose: bool,
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

fn base_url(flag: &str, url: &str) -> Result<String, String> {
    let u = url.trim().trim_end_matches('/');
    let Some(rest) = u.strip_prefix("http://") else {
        return Err(format!("{flag} must be an http:// URL (got {url:?}; terminate TLS in front of the origin)"));
    };
    if rest.is_empty() || rest.contains(char::is_whitespace) || rest.contains(['?', '#']) {
        return Err(format!("{flag}: invalid URL {url:?}"));
    }
    Ok(u.to_string())
}

pub fn parse_args(args: &[String]) -> Result<Options, String> {
    let (mut main, mut backup, mut stream) = (None, None, None);
    let mut duration = Duration::from_secs(30);
    let mut verbose = false;
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        let mut value = || {
            i += 1;
            args.get(i).cloned().ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag {
            "--main" => main = Some(base_url(flag, &value()?)?),
            "--backup" => backup = Some(base_url(flag, &value()?)?),
            "--stream" => stream = Some(value()?),
            "--duration" => {
                let v = value()?;
                let s: f64 = v.trim().parse().map_err(|_| format!("--duration: not a number of seconds: {v:?}"))?;
                if !(s > 0.0 && s <= 86_400.0) {
                    return Err(format!("--duration: {v} is not between 0 and 86400 seconds"));
                }
                duration = Duration::from_secs_f64(s);
            }
            "--verbose" | "-v" => verbose = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
        i += 1;
    }
    let main = main.ok_or("--main is required")?;
    let backup = backup.ok_or("--backup is required")?;
    let stream = stream.ok_or("--stream is required")?;
    let (app, name) = stream.split_once('/').ok_or("--stream must be APP/STREAM")?;
    if !valid_name(app) || !valid_name(name) {
        return Err(format!("--stream {stream:?}: APP and STREAM are letters, digits, '.', '_' and '-'"));
    }
    Ok(Options { main, backup, app: app.to_string(), stream: name.to_string(), duration, verbose })
}

/// Entry point of `lockstep verify ARGS...`.
pub fn main(args: &[String]) -> ExitCode {
    let opts = match parse_args(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("lockstep verify: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut v = Verifier::new(opts);
    let code = v.run();
    ExitCode::from(code)
}

// ------------------------------------------------------------------- kinds ---

/// What an object is, for the summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    PlaylistBlocking,
    PlaylistDelta,
    PlaylistLive,
    Master,
    Init,
    Part,
    Segment,
    Ts,
}

pub const KINDS: [Kind; 8] = [
    Kind::PlaylistBlocking,
    Kind::PlaylistDelta,
    Kind::PlaylistLive,
    Kind::Master,
    Kind::Init,
    Kind::Part,
    Kind::Segment,
    Kind::Ts,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::PlaylistBlocking => "playlist-blocking",
            Kind::PlaylistDelta => "playlist-delta",
            Kind::PlaylistLive => "playlist-live",
            Kind::Master => "master",
            Kind::Init => "init",
            Kind::Part => "part",
            Kind::Segment => "segment",
            Kind::Ts => "ts",
        }
    }

    pub fn is_playlist(self) -> bool {
        matches!(self, Kind::PlaylistBlocking | Kind::PlaylistDelta | Kind::PlaylistLive | Kind::Master)
    }
}

/// The kind of a media object listed in a playlist, from its name (query
/// string ignored). None for anything that is not a media object.
pub fn media_kind(uri: &str) -> Option<Kind> {
    let path = uri.split(['?', '#']).next().unwrap_or(uri);
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.ends_with("_init.mp4") {
        Some(Kind::Init)
    } else if name.ends_with(".ts") {
        Some(Kind::Ts)
    } else if let Some(stem) = name.strip_suffix(".m4s") {
        let numbers = stem.rsplit_once('_').map_or(stem, |(_, n)| n);
        Some(if numbers.contains('.') { Kind::Part } else { Kind::Segment })
    } else {
        None
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Main,
    Backup,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Main => "main",
            Side::Backup => "backup",
        }
    }
}

// --------------------------------------------------------------- playlists ---

/// The value of attribute `URI="..."` in a tag line.
fn uri_attr(line: &str) -> Option<&str> {
    let rest = line.split_once("URI=\"")?.1;
    rest.split_once('"').map(|(u, _)| u)
}

/// A part name `{label}_{msn}.{part}.m4s` → (msn, part).
pub fn parse_part_uri(uri: &str) -> Option<(u64, u32)> {
    let path = uri.split(['?', '#']).next()?;
    let name = path.rsplit('/').next()?;
    let stem = name.strip_suffix(".m4s")?;
    let (_, numbers) = stem.rsplit_once('_')?;
    let (msn, part) = numbers.split_once('.')?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if !all_digits(msn) || !all_digits(part) {
        return None;
    }
    Some((msn.parse().ok()?, part.parse().ok()?))
}

/// The EXT-X-PRELOAD-HINT line of a playlist, if any.
pub fn preload_hint_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim_end).find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))
}

/// The point `(msn, part)` named by the playlist's EXT-X-PRELOAD-HINT of
/// TYPE=PART: where the next blocking request should wait.
pub fn preload_hint(text: &str) -> Option<(u64, u32)> {
    let line = preload_hint_line(text)?;
    let attrs = line.strip_prefix("#EXT-X-PRELOAD-HINT:")?;
    if !attrs.split(',').any(|a| a.trim() == "TYPE=PART") {
        return None;
    }
    parse_part_uri(uri_attr(line)?)
}

/// Where a non-blocking playlist stands: its preload-hint line, or else its
/// last URI line; and whether it has ended. Two playlists are comparable only
/// when they stand at the same point.
pub fn last_point(text: &str) -> (Option<String>, bool) {
    let ended = text.lines().any(|l| l.trim_end() == "#EXT-X-ENDLIST");
    if let Some(h) = preload_hint_line(text) {
        return (Some(h.to_string()), ended);
    }
    let last = text.lines().map(str::trim).rfind(|l| !l.is_empty() && !l.starts_with('#'));
    (last.map(str::to_string), ended)
}

/// Every media object URI a media playlist lists: EXT-X-MAP, EXT-X-PART and
/// segment lines (preload hints and rendition reports excluded).
pub fn listed_objects(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        let uri = if line.starts_with("#EXT-X-MAP:") || line.starts_with("#EXT-X-PART:") {
            uri_attr(line)
        } else if line.starts_with('#') {
            None
        } else {
            Some(line)
        };
        if let Some(u) = uri.filter(|u| media_kind(u).is_some()) {
            out.push(u.to_string());
        }
    }
    out
}

/// Media playlists named by a master playlist (variant lines and URI
/// attributes ending in `.m3u8`), in order, without duplicates.
pub fn media_playlists(master: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in master.lines().map(str::trim) {
        let uri = if line.starts_with('#') { uri_attr(line) } else { Some(line) };
        let Some(u) = uri.filter(|u| !u.is_empty()) else { continue };
        let path = u.split(['?', '#']).next().unwrap_or(u);
        if path.ends_with(".m3u8") && !out.iter().any(|o| o == u) {
            out.push(u.to_string());
        }
    }
    out
}

fn target_duration(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.trim().strip_prefix("#EXT-X-TARGETDURATION:")?.trim().parse().ok())
}

fn can_skip(text: &str) -> bool {
    text.lines().any(|l| l.starts_with("#EXT-X-SERVER-CONTROL:") && l.contains("CAN-SKIP-UNTIL="))
}

// -------------------------------------------------------------------- diff ---

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Equal,
    Delete,
    Insert,
}

/// The edit script turning `a` into `b`: a longest common subsequence of
/// lines (after trimming the common prefix and suffix), deletions before
/// insertions in each change.
fn diff_ops(a: &[&str], b: &[&str]) -> Vec<Op> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..].iter().rev().zip(b[prefix..].iter().rev()).take_while(|(x, y)| x == y).count();
    let (am, bm) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut ops = vec![Op::Equal; prefix];
    let (n, m) = (am.len(), bm.len());
    if n.saturating_mul(m) > MAX_LCS_CELLS {
        ops.resize(ops.len() + n, Op::Delete);
        ops.resize(ops.len() + m, Op::Insert);
    } else {
        // lcs[i][j]: length of an LCS of am[i..] and bm[j..].
        let w = m + 1;
        let mut lcs = vec![0u32; (n + 1) * w];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i * w + j] = if am[i] == bm[j] {
                    lcs[(i + 1) * w + j + 1] + 1
                } else {
                    lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && am[i] == bm[j] {
                ops.push(Op::Equal);
                i += 1;
                j += 1;
            } else if j == m || (i < n && lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) {
                ops.push(Op::Delete);
                i += 1;
            } else {
                ops.push(Op::Insert);
                j += 1;
            }
        }
    }
    ops.resize(ops.len() + suffix, Op::Equal);
    ops
}

/// A unified diff (`---`/`+++` header, `@@ -a,b +c,d @@` hunks with
/// `context` lines around each change) of two texts, by lines. Empty when
/// the texts have the same lines.
pub fn unified_diff(a: &str, b: &str, label_a: &str, label_b: &str, context: usize) -> String {
    let al: Vec<&str> = a.lines().collect();
    let bl: Vec<&str> = b.lines().collect();
    let ops = diff_ops(&al, &bl);
    // Position (line index in a, in b) before each op.
    let mut pos = Vec::with_capacity(ops.len() + 1);
    let (mut i, mut j) = (0usize, 0usize);
    for op in &ops {
        pos.push((i, j));
        match op {
            Op::Equal => {
                i += 1;
                j += 1;
            }
            Op::Delete => i += 1,
            Op::Insert => j += 1,
        }
    }
    pos.push((i, j));
    let changes: Vec<usize> = (0..ops.len()).filter(|&k| ops[k] != Op::Equal).collect();
    if changes.is_empty() {
        return String::new();
    }
    // Group changes whose gap is small enough to share context.
    let mut hunks: Vec<(usize, usize)> = Vec::new();
    for &k in &changes {
        match hunks.last_mut() {
            Some((_, end)) if k - *end <= 2 * context + 1 => *end = k,
            _ => hunks.push((k, k)),
        }
    }
    let mut out = format!("--- {label_a}\n+++ {label_b}\n");
    for (first, last) in hunks {
        let start = first.saturating_sub(context);
        let end = (last + 1 + context).min(ops.len());
        let (a0, b0) = pos[start];
        let (a1, b1) = pos[end];
        let range = |from: usize, len: usize| {
            let line = if len == 0 { from } else { from + 1 };
            if len == 1 {
                format!("{line}")
            } else {
                format!("{line},{len}")
            }
        };
        let _ = writeln!(out, "@@ -{} +{} @@", range(a0, a1 - a0), range(b0, b1 - b0));
        for k in start..end {
            let (ai, bj) = pos[k];
            let _ = match ops[k] {
                Op::Equal => writeln!(out, " {}", al[ai]),
                Op::Delete => writeln!(out, "-{}", al[ai]),
                Op::Insert => writeln!(out, "+{}", bl[bj]),
            };
        }
    }
    out
}

fn sha256_hex(b: &[u8]) -> String {
    let d = Sha256::digest(b);
    let mut s = String::with_capacity(64);
    for x in d {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// Sizes, first differing byte offset and SHA-256 of two different binary
/// objects.
pub fn binary_detail(main: &[u8], backup: &[u8]) -> String {
    let first = main.iter().zip(backup).position(|(x, y)| x != y).unwrap_or(main.len().min(backup.len()));
    let mut s = format!(
        "  main:   {} bytes, sha256 {}\n  backup: {} bytes, sha256 {}\n",
        main.len(),
        sha256_hex(main),
        backup.len(),
        sha256_hex(backup)
    );
    if first < main.len() && first < backup.len() {
        let _ = writeln!(
            s,
            "  first difference at byte offset {first} (0x{first:x}): main 0x{:02x}, backup 0x{:02x}",
            main[first], backup[first]
        );
    } else {
        let (longer, by) =
            if main.len() > backup.len() { ("main", main.len() - first) } else { ("backup", backup.len() - first) };
        let _ = writeln!(s, "  identical for {first} bytes; {longer} has {by} more bytes from offset {first}");
    }
    s
}

// ----------------------------------------------------------------- summary ---

/// Counts for one kind of object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub identical: u64,
    pub differing: u64,
    pub missing_main: u64,
    pub missing_backup: u64,
    pub not_comparable: u64,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.identical += o.identical;
        self.differing += o.differing;
        self.missing_main += o.missing_main;
        self.missing_backup += o.missing_backup;
        self.not_comparable += o.not_comparable;
    }
}

/// One object that differs between the nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    pub kind: Kind,
    /// The request path and query, the same on both nodes.
    pub path: String,
    /// A line diff for playlists; sizes, first differing offset and hashes
    /// for binary objects (of the first differing pair of this URL).
    pub detail: String,
    /// Further differing pairs of the same URL (a live playlist that keeps
    /// differing as it moves on).
    pub repeats: u64,
}

/// Everything counted while verifying.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub tallies: BTreeMap<Kind, Tally>,
    /// The first differences (at most [`MAX_KEPT`]).
    pub differences: Vec<Difference>,
    /// Requests that failed at the transport level (after one retry).
    pub errors_main: u64,
    pub errors_backup: u64,
    /// A node could not be reached at all.
    pub unreachable: Option<String>,
}

impl Summary {
    fn tally(&mut self, kind: Kind) -> &mut Tally {
        self.tallies.entry(kind).or_default()
    }

    /// Compare one object both nodes served; returns whether it is identical.
    pub fn compare(&mut self, kind: Kind, path: &str, main: &Body, backup: &Body) -> bool {
        let detail = if main.bytes == backup.bytes {
            match (&main.etag, &backup.etag) {
                (Some(x), Some(y)) if x != y => Some(format!(
                    "  bytes identical ({} bytes, sha256 {}) but the ETags differ: main {x}, backup {y}\n",
                    main.bytes.len(),
                    sha256_hex(&main.bytes)
                )),
                _ => None,
            }
        } else if kind.is_playlist() {
            let d = unified_diff(
                &String::from_utf8_lossy(&main.bytes),
                &String::from_utf8_lossy(&backup.bytes),
                &format!("main {path}"),
                &format!("backup {path}"),
                DIFF_CONTEXT,
            );
            Some(if d.is_empty() {
                // Same lines, different bytes (line endings, final newline).
                binary_detail(&main.bytes, &backup.bytes)
            } else {
                d
            })
        } else {
            Some(binary_detail(&main.bytes, &backup.bytes))
        };
        match detail {
            None => {
                self.tally(kind).identical += 1;
                true
            }
            Some(detail) => {
                self.tally(kind).differing += 1;
                if let Some(d) = self.differences.iter_mut().find(|d| d.kind == kind && d.path == path) {
                    d.repeats += 1;
                } else if self.differences.len() < MAX_KEPT {
                    self.differences.push(Difference { kind, path: path.to_string(), detail, repeats: 0 });
                }
                false
            }
        }
    }

    pub fn missing(&mut self, kind: Kind, side: Side) {
        let t = self.tally(kind);
        match side {
            Side::Main => t.missing_main += 1,
            Side::Backup => t.missing_backup += 1,
        }
    }

    pub fn not_comparable(&mut self, kind: Kind) {
        self.tally(kind).not_comparable += 1;
    }

    pub fn total(&self) -> Tally {
        let mut t = Tally::default();
        for v in self.tallies.values() {
            t.add(v);
        }
        t
    }

    /// 0: compared something, no difference; 1: differences; 2: nothing
    /// compared, or a node unreachable or failing requests.
    pub fn exit_code(&self) -> u8 {
        let t = self.total();
        if t.differing > 0 {
            1
        } else if self.unreachable.is_some() || self.errors_main > 0 || self.errors_backup > 0 || t.identical == 0 {
            2
        } else {
            0
        }
    }

    /// The report: a table per kind, totals, then the first `shown`
    /// differences in detail.
    pub fn render(&self, shown: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<18} {:>10} {:>10} {:>16} {:>18} {:>15}",
            "kind", "identical", "differing", "missing-on-main", "missing-on-backup", "not-comparable"
        );
        let row = |s: &mut String, name: &str, t: &Tally| {
            let _ = writeln!(
                s,
                "{:<18} {:>10} {:>10} {:>16} {:>18} {:>15}",
                name, t.identical, t.differing, t.missing_main, t.missing_backup, t.not_comparable
            );
        };
        for k in KINDS {
            row(&mut s, k.name(), &self.tallies.get(&k).copied().unwrap_or_default());
        }
        let t = self.total();
        row(&mut s, "total", &t);
        let _ = writeln!(
            s,
            "\n{} compared: {} identical, {} differing; {} missing on main, {} missing on backup, {} not comparable",
            t.identical + t.differing,
            t.identical,
            t.differing,
            t.missing_main,
            t.missing_backup,
            t.not_comparable
        );
        if self.errors_main + self.errors_backup > 0 {
            let _ = writeln!(s, "request errors: main {}, backup {}", self.errors_main, self.errors_backup);
        }
        if let Some(u) = &self.unreachable {
            let _ = writeln!(s, "unreachable: {u}");
        }
        if !self.differences.is_empty() {
            let n = shown.min(self.differences.len());
            let _ = writeln!(s, "\nfirst {n} of {} differences:", t.differing);
            for d in &self.differences[..n] {
                let _ = writeln!(s, "\n[{}] {}", d.kind.name(), d.path);
                if d.repeats > 0 {
                    let _ = writeln!(s, "  ({} more differing versions of this URL; the first is shown)", d.repeats);
                }
                s.push_str(&d.detail);
            }
        }
        let verdict = match self.exit_code() {
            0 => "OK: every object both nodes served is byte-identical".to_string(),
            1 => format!("FAIL: {} objects differ between main and backup", t.differing),
            _ if t.identical == 0 && self.unreachable.is_none() && self.errors_main + self.errors_backup == 0 => {
                "ERROR: nothing compared (is the stream live on both nodes?)".to_string()
            }
            _ => "ERROR: connection errors; the result is incomplete".to_string(),
        };
        let _ = writeln!(s, "\n{verdict}");
        s
    }
}

// -------------------------------------------------------------------- HTTP ---

/// A body a node served, and its ETag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Body {
    pub bytes: Vec<u8>,
    pub etag: Option<String>,
}

#[derive(Clone, Debug)]
enum Fetched {
    Ok(Body),
    /// An HTTP status other than 200: not served (404), not yet (400, 503).
    Missing(u16),
    /// Connection refused, timeout, malformed response...
    Error(String),
}

struct Client {
    agent: ureq::Agent,
}

impl Client {
    fn new() -> Client {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(CONNECT_TIMEOUT)
            .timeout_write(REQUEST_TIMEOUT)
            .redirects(0)
            .user_agent(concat!("lockstep-verify/", env!("CARGO_PKG_VERSION")))
            .build();
        Client { agent }
    }

    fn get_once(&self, url: &str, timeout: Duration) -> Fetched {
        let resp = match self.agent.get(url).timeout(timeout).call() {
            Ok(r) => r,
            Err(ureq::Error::Status(code, _)) => return Fetched::Missing(code),
            Err(ureq::Error::Transport(t)) => return Fetched::Error(t.to_string()),
        };
        let status = resp.status();
        if status != 200 {
            return Fetched::Missing(status);
        }
        let etag = resp.header("etag").map(str::to_string);
        let mut bytes = Vec::new();
        match resp.into_reader().take(MAX_BODY + 1).read_to_end(&mut bytes) {
            Ok(_) if bytes.len() as u64 > MAX_BODY => Fetched::Error(format!("body larger than {MAX_BODY} bytes")),
            Ok(_) => Fetched::Ok(Body { bytes, etag }),
            Err(e) => Fetched::Error(format!("reading the body: {e}")),
        }
    }

    /// GET with one retry after a transport error.
    fn get(&self, url: &str, timeout: Duration) -> Fetched {
        match self.get_once(url, timeout) {
            Fetched::Error(_) => {
                std::thread::sleep(Duration::from_millis(100));
                self.get_once(url, timeout)
            }
            r => r,
        }
    }
}

// ---------------------------------------------------------------- verifier ---

/// A media object seen listed but not yet obtained from both nodes.
struct Pending {
    kind: Kind,
    main: Option<Body>,
    backup: Option<Body>,
    last_try: Option<Instant>,
}

struct Verifier {
    opts: Options,
    client: Client,
    summary: Summary,
    /// Target duration seen in the media playlists (s).
    td: u64,
    /// Media objects compared (or given up) already.
    done: HashSet<String>,
    pending: BTreeMap<String, Pending>,
    /// Playlist outcomes counted already: (kind, path, main sha, backup sha)
    /// or a missing/not-comparable mark; the same unchanged pair is counted
    /// once.
    seen: HashSet<String>,
    /// Last transport error per node.
    last_error: [Option<String>; 2],
}

impl Verifier {
    fn new(opts: Options) -> Verifier {
        Verifier {
            opts,
            client: Client::new(),
            summary: Summary::default(),
            td: 6,
            done: HashSet::new(),
            pending: BTreeMap::new(),
            seen: HashSet::new(),
            last_error: [None, None],
        }
    }

    fn path(&self, rel: &str) -> String {
        format!("/{}/{}/{rel}", self.opts.app, self.opts.stream)
    }

    fn blocking_timeout(&self) -> Duration {
        Duration::from_secs(3 * self.td.clamp(1, 60) + 5)
    }

    /// Fetch `rel` from both nodes at once.
    fn fetch_pair(&mut self, rel: &str, timeout: Duration) -> (Fetched, Fetched) {
        let path = self.path(rel);
        let (m, b) = self.fetch_sides(&path, timeout, true, true);
        (m.unwrap_or(Fetched::Missing(0)), b.unwrap_or(Fetched::Missing(0)))
    }

    /// Fetch `path` from the nodes asked for, concurrently; transport errors
    /// are counted.
    fn fetch_sides(
        &mut self,
        path: &str,
        timeout: Duration,
        main: bool,
        backup: bool,
    ) -> (Option<Fetched>, Option<Fetched>) {
        let mu = format!("{}{path}", self.opts.main);
        let bu = format!("{}{path}", self.opts.backup);
        let client = &self.client;
        let (m, b) = std::thread::scope(|s| {
            let hb = backup.then(|| s.spawn(|| client.get(&bu, timeout)));
            let m = main.then(|| client.get(&mu, timeout));
            let b = hb.map(|h| h.join().unwrap_or_else(|_| Fetched::Error("request thread panicked".into())));
            (m, b)
        });
        for (side, f) in [(Side::Main, &m), (Side::Backup, &b)] {
            if let Some(Fetched::Error(e)) = f {
                let msg = format!("{} {path}: {e}", side.name());
                if self.opts.verbose {
                    eprintln!("error: {msg}");
                }
                match side {
                    Side::Main => self.summary.errors_main += 1,
                    Side::Backup => self.summary.errors_backup += 1,
                }
                self.last_error[side as usize] = Some(msg);
            }
        }
        (m, b)
    }

    fn note(&self, msg: impl FnOnce() -> String) {
        if self.opts.verbose {
            eprintln!("{}", msg());
        }
    }

    /// Record a playlist pair (once per distinct outcome). `comparable`
    /// decides whether two served bodies are compared or counted as not
    /// comparable.
    fn playlist_pair(&mut self, kind: Kind, rel: &str, m: &Fetched, b: &Fetched, comparable: bool) {
        let path = self.path(rel);
        match (m, b) {
            (Fetched::Ok(x), Fetched::Ok(y)) => {
                let key = format!("{}|{path}|{}|{}", kind.name(), sha256_hex(&x.bytes), sha256_hex(&y.bytes));
                if !self.seen.insert(key) {
                    return;
                }
                if !comparable {
                    self.summary.not_comparable(kind);
                    self.note(|| format!("not comparable  {:<17} {path} (nodes at different points)", kind.name()));
                    return;
                }
                let same = self.summary.compare(kind, &path, x, y);
                self.note(|| {
                    format!(
                        "{}  {:<17} {path} ({} bytes)",
                        if same { "identical " } else { "DIFFERENT " },
                        kind.name(),
                        x.bytes.len()
                    )
                });
            }
            (Fetched::Error(_), _) | (_, Fetched::Error(_)) => {}
            (Fetched::Missing(s), Fetched::Ok(_)) => self.playlist_missing(kind, &path, Side::Main, *s),
            (Fetched::Ok(_), Fetched::Missing(s)) => self.playlist_missing(kind, &path, Side::Backup, *s),
            (Fetched::Missing(_), Fetched::Missing(_)) => {}
        }
    }

    fn playlist_missing(&mut self, kind: Kind, path: &str, side: Side, status: u16) {
        if self.seen.insert(format!("{}|{path}|missing|{}", kind.name(), side.name())) {
            self.summary.missing(kind, side);
            self.note(|| format!("missing on {:<6} {:<17} {path} (HTTP {status})", side.name(), kind.name()));
        }
    }

    /// Remember the media objects a playlist lists.
    fn list(&mut self, m: &Fetched, b: &Fetched) {
        for f in [m, b] {
            let Fetched::Ok(body) = f else { continue };
            for uri in listed_objects(&String::from_utf8_lossy(&body.bytes)) {
                if uri.contains("://") || self.done.contains(&uri) || self.pending.contains_key(&uri) {
                    continue;
                }
                if let Some(kind) = media_kind(&uri) {
                    self.pending.insert(uri, Pending { kind, main: None, backup: None, last_try: None });
                }
            }
        }
    }

    /// Fetch what is still missing of the pending objects (each at most every
    /// 500 ms unless `force`), comparing those both nodes now served.
    fn fetch_pending(&mut self, force: bool) {
        let uris: Vec<String> = self.pending.keys().cloned().collect();
        for uri in uris {
            let Some(p) = self.pending.get(&uri) else { continue };
            if !force && p.last_try.is_some_and(|t| t.elapsed() < Duration::from_millis(500)) {
                continue;
            }
            let (need_m, need_b) = (p.main.is_none(), p.backup.is_none());
            let path = if uri.starts_with('/') { uri.clone() } else { self.path(&uri) };
            let (m, b) = self.fetch_sides(&path, REQUEST_TIMEOUT, need_m, need_b);
            let Some(p) = self.pending.get_mut(&uri) else { continue };
            p.last_try = Some(Instant::now());
            if let Some(Fetched::Ok(body)) = m {
                p.main = Some(body);
            }
            if let Some(Fetched::Ok(body)) = b {
                p.backup = Some(body);
            }
            if p.main.is_some() && p.backup.is_some() {
                let p = self.pending.remove(&uri).expect("pending entry");
                let (x, y) = (p.main.expect("main body"), p.backup.expect("backup body"));
                let same = self.summary.compare(p.kind, &path, &x, &y);
                self.note(|| {
                    format!(
                        "{}  {:<17} {path} ({} bytes)",
                        if same { "identical " } else { "DIFFERENT " },
                        p.kind.name(),
                        x.bytes.len()
                    )
                });
                self.done.insert(uri);
            }
        }
    }

    /// Whether both nodes are reachable; sets `unreachable` when not.
    fn reachable(&mut self, m: &Fetched, b: &Fetched) -> bool {
        let mut bad = Vec::new();
        if let Fetched::Error(e) = m {
            bad.push(format!("main ({}): {e}", self.opts.main));
        }
        if let Fetched::Error(e) = b {
            bad.push(format!("backup ({}): {e}", self.opts.backup));
        }
        if bad.is_empty() {
            return true;
        }
        self.summary.unreachable = Some(bad.join("; "));
        false
    }

    fn run(&mut self) -> u8 {
        let start = Instant::now();
        let deadline = start + self.opts.duration;
        println!(
            "lockstep verify: /{}/{}/ on main {} and backup {} for {:.1} s",
            self.opts.app,
            self.opts.stream,
            self.opts.main,
            self.opts.backup,
            self.opts.duration.as_secs_f64()
        );
        // Both nodes must answer at all (any HTTP status) from the start.
        let (m, b) = self.fetch_pair("llhls.m3u8", REQUEST_TIMEOUT);
        if !self.reachable(&m, &b) {
            eprintln!("lockstep verify: cannot connect to {}", self.summary.unreachable.as_deref().unwrap_or("a node"));
            return 2;
        }
        let mut cycles = 0u64;
        while Instant::now() < deadline {
            let worked = self.cycle();
            cycles += 1;
            if !worked {
                // Stream not live on either node yet: poll.
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        // Last chance for objects one node had not published yet.
        self.fetch_pending(true);
        let left: Vec<(String, Pending)> = std::mem::take(&mut self.pending).into_iter().collect();
        for (uri, p) in left {
            let path = if uri.starts_with('/') { uri.clone() } else { self.path(&uri) };
            match (&p.main, &p.backup) {
                (None, Some(_)) => {
                    self.summary.missing(p.kind, Side::Main);
                    self.note(|| format!("missing on main   {:<17} {path}", p.kind.name()));
                }
                (Some(_), None) => {
                    self.summary.missing(p.kind, Side::Backup);
                    self.note(|| format!("missing on backup {:<17} {path}", p.kind.name()));
                }
                // Listed, but retired on both before it could be fetched.
                _ => self.note(|| format!("gone on both      {:<17} {path}", p.kind.name())),
            }
        }
        if self.summary.errors_main + self.summary.errors_backup > 0 {
            let last: Vec<String> = self.last_error.iter().flatten().cloned().collect();
            self.summary.unreachable.get_or_insert_with(|| format!("last errors: {}", last.join("; ")));
        }
        println!("followed for {:.1} s, {cycles} cycles\n", start.elapsed().as_secs_f64());
        let shown = if self.opts.verbose { MAX_KEPT } else { SHOWN };
        print!("{}", self.summary.render(shown));
        self.summary.exit_code()
    }

    /// One pass over masters, playlists and objects. False when neither node
    /// serves the stream.
    fn cycle(&mut self) -> bool {
        let mut live = false;
        // LL-HLS.
        let (m, b) = self.fetch_pair("llhls.m3u8", REQUEST_TIMEOUT);
        self.playlist_pair(Kind::Master, "llhls.m3u8", &m, &b, true);
        let mut renditions = Vec::new();
        for f in [&m, &b] {
            if let Fetched::Ok(body) = f {
                live = true;
                for p in media_playlists(&String::from_utf8_lossy(&body.bytes)) {
                    if !renditions.contains(&p) {
                        renditions.push(p);
                    }
                }
            }
        }
        for r in renditions {
            self.rendition(&r);
        }
        // Classic HLS.
        let (m, b) = self.fetch_pair("playlist.m3u8", REQUEST_TIMEOUT);
        self.playlist_pair(Kind::Master, "playlist.m3u8", &m, &b, true);
        let mut media = Vec::new();
        for f in [&m, &b] {
            if let Fetched::Ok(body) = f {
                live = true;
                for p in media_playlists(&String::from_utf8_lossy(&body.bytes)) {
                    if !media.contains(&p) {
                        media.push(p);
                    }
                }
            }
        }
        for p in media {
            if p.contains("://") {
                continue;
            }
            let (m, b) = self.fetch_pair(&p, REQUEST_TIMEOUT);
            let comparable = same_point(&m, &b);
            self.playlist_pair(Kind::PlaylistLive, &p, &m, &b, comparable);
            self.list(&m, &b);
        }
        self.fetch_pending(false);
        live
    }

    /// One LL-HLS rendition: non-blocking, blocking at the next hint, delta
    /// at the same point.
    fn rendition(&mut self, rel: &str) {
        if rel.contains("://") || rel.contains('?') {
            return;
        }
        let (m, b) = self.fetch_pair(rel, REQUEST_TIMEOUT);
        let comparable = same_point(&m, &b);
        self.playlist_pair(Kind::PlaylistLive, rel, &m, &b, comparable);
        self.list(&m, &b);
        let mut hint = None;
        let mut skip = false;
        for f in [&m, &b] {
            if let Fetched::Ok(body) = f {
                let text = String::from_utf8_lossy(&body.bytes);
                if let Some(td) = target_duration(&text) {
                    self.td = td;
                }
                skip |= can_skip(&text);
                hint = hint.max(preload_hint(&text));
            }
        }
        let Some((msn, part)) = hint else { return };
        let timeout = self.blocking_timeout();
        let q = format!("{rel}?_HLS_msn={msn}&_HLS_part={part}");
        let (m, b) = self.fetch_pair(&q, timeout);
        self.playlist_pair(Kind::PlaylistBlocking, &q, &m, &b, true);
        self.list(&m, &b);
        if skip {
            let q = format!("{q}&_HLS_skip=YES");
            let (m, b) = self.fetch_pair(&q, timeout);
            self.playlist_pair(Kind::PlaylistDelta, &q, &m, &b, true);
            self.list(&m, &b);
        }
    }
}

/// Whether two non-blocking playlists stand at the same point.
fn same_point(m: &Fetched, b: &Fetched) -> bool {
    match (m, b) {
        (Fetched::Ok(x), Fetched::Ok(y)) => {
            last_point(&String::from_utf8_lossy(&x.bytes)) == last_point(&String::from_utf8_lossy(&y.bytes))
        }
        _ => false,
    }
}

// ------------------------------------------------------------------- tests ---

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options() {
        let o = parse_args(&args("--main http://a:3333/ --backup http://b:3334 --stream app/s_1 --duration 2.5 -v"))
            .unwrap();
        assert_eq!(o.main, "http://a:3333");
        assert_eq!(o.backup, "http://b:3334");
        assert_eq!((o.app.as_str(), o.stream.as_str()), ("app", "s_1"));
        assert_eq!(o.duration, Duration::from_millis(2500));
        assert!(o.verbose);
        let o = parse_args(&args("--main http://a --backup http://b --stream app/s")).unwrap();
        assert_eq!(o.duration, Duration::from_secs(30));
        for bad in [
            "--main http://a --backup http://b",
            "--main https://a --backup http://b --stream a/s",
            "--main http://a --backup http://b --stream nostream",
            "--main http://a --backup http://b --stream a/s/x",
            "--main http://a --backup http://b --stream a/s --duration 0",
            "--main http://a --backup http://b --stream a/s --duration x",
            "--main http://a --backup http://b --stream a/s --what",
            "--main",
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad}");
        }
    }

    const PLAYLIST: &str = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-PART-INF:PART-TARGET=0.500
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,PART-HOLD-BACK=1.500,HOLD-BACK=6.000
#EXT-X-MEDIA-SEQUENCE:897621882
#EXT-X-MAP:URI=\"video1_init.mp4\"
#EXT-X-PART:DURATION=0.46600,URI=\"video1_897621882.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.13400,URI=\"video1_897621882.1.m4s\"
#EXTINF:2.00000,
video1_897621882.m4s
#EXT-X-PART:DURATION=0.46600,URI=\"video1_897621883.0.m4s\",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"video1_897621883.1.m4s\"
#EXT-X-RENDITION-REPORT:URI=\"audio2.m3u8\",LAST-MSN=897621883,LAST-PART=0
";

    #[test]
    fn hints() {
        assert_eq!(preload_hint(PLAYLIST), Some((897621883, 1)));
        assert_eq!(preload_hint_line(PLAYLIST), Some("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"video1_897621883.1.m4s\""));
        assert_eq!(preload_hint("#EXTM3U\n#EXT-X-PRELOAD-HINT:TYPE=MAP,URI=\"video1_init.mp4\"\n"), None);
        assert_eq!(
            preload_hint("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"a/audio_2_7.12.m4s?session=x\",BYTERANGE-START=0\n"),
            Some((7, 12))
        );
        assert_eq!(preload_hint("#EXTM3U\n#EXT-X-ENDLIST\n"), None);
        assert_eq!(preload_hint("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"video1_x.1.m4s\"\n"), None);
        assert_eq!(preload_hint("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"video1_5.m4s\"\n"), None);
        assert_eq!(preload_hint("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"video1_5.1.m4s\n"), None);
        assert_eq!(parse_part_uri("video1_99999999999.3.m4s"), Some((99_999_999_999, 3)));
        assert_eq!(parse_part_uri("video1_1.-3.m4s"), None);
    }

    #[test]
    fn points_and_listings() {
        assert_eq!(last_point(PLAYLIST), (preload_hint_line(PLAYLIST).map(String::from), false));
        let ts = "#EXTM3U\n#EXTINF:2.00000,\nts_5.ts\n#EXTINF:2.00000,\nts_6.ts\n";
        assert_eq!(last_point(ts), (Some("ts_6.ts".into()), false));
        assert_eq!(last_point(&format!("{ts}#EXT-X-ENDLIST\n")), (Some("ts_6.ts".into()), true));
        assert_eq!(
            listed_objects(PLAYLIST),
            [
                "video1_init.mp4",
                "video1_897621882.0.m4s",
                "video1_897621882.1.m4s",
                "video1_897621882.m4s",
                "video1_897621883.0.m4s"
            ]
        );
        assert_eq!(listed_objects(ts), ["ts_5.ts", "ts_6.ts"]);
        let master = "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio2\",URI=\"audio2.m3u8\"\n\
                      #EXT-X-STREAM-INF:BANDWIDTH=1\nvideo1.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=1\nvideo1.m3u8\n";
        assert_eq!(media_playlists(master), ["audio2.m3u8", "video1.m3u8"]);
        assert_eq!(media_kind("video1_init.mp4"), Some(Kind::Init));
        assert_eq!(media_kind("video1_5.2.m4s"), Some(Kind::Part));
        assert_eq!(media_kind("video1_5.m4s"), Some(Kind::Segment));
        assert_eq!(media_kind("ts_5.ts?session=a.b"), Some(Kind::Ts));
        assert_eq!(media_kind("audio2.m3u8"), None);
        assert_eq!(target_duration(PLAYLIST), Some(2));
        assert!(can_skip(PLAYLIST));
    }

    #[test]
    fn diff_of_identical_texts_is_empty() {
        assert_eq!(unified_diff("a\nb\n", "a\nb\n", "x", "y", 3), "");
        assert_eq!(unified_diff("", "", "x", "y", 3), "");
    }

    #[test]
    fn diff_replacement_with_context() {
        let a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
        let b = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
        assert_eq!(
            unified_diff(a, b, "main", "backup", 2),
            "--- main\n+++ backup\n@@ -3,5 +3,5 @@\n 3\n 4\n-5\n+five\n 6\n 7\n"
        );
    }

    #[test]
    fn diff_insert_delete_and_separate_hunks() {
        let a: String = (1..=20).map(|i| format!("{i}\n")).collect();
        let edit = |f: &dyn Fn(&str) -> Vec<String>| a.lines().flat_map(f).map(|l| l + "\n").collect::<String>();
        let b = edit(&|l| match l {
            "3" => vec![],
            "17" => vec!["17".into(), "new".into()],
            _ => vec![l.to_string()],
        });
        let d = unified_diff(&a, &b, "a", "b", 1);
        assert_eq!(d, "--- a\n+++ b\n@@ -2,3 +2,2 @@\n 2\n-3\n 4\n@@ -17,2 +16,3 @@\n 17\n+new\n 18\n");
        // Changes close together share a hunk.
        let b = edit(&|l| match l {
            "3" => vec!["x".into()],
            "5" => vec!["y".into()],
            _ => vec![l.to_string()],
        });
        let d = unified_diff(&a, &b, "a", "b", 1);
        assert_eq!(d.matches("@@ -").count(), 1, "{d}");
        // Into and out of nothing.
        assert_eq!(unified_diff("", "a\n", "a", "b", 3), "--- a\n+++ b\n@@ -0,0 +1 @@\n+a\n");
        assert_eq!(unified_diff("a\nb\n", "", "a", "b", 3), "--- a\n+++ b\n@@ -1,2 +0,0 @@\n-a\n-b\n");
    }

    #[test]
    fn diff_is_minimal() {
        // An LCS keeps the common lines in the middle.
        let d = unified_diff("a\nb\nc\nd\n", "x\nb\nc\ny\n", "a", "b", 0);
        assert_eq!(d, "--- a\n+++ b\n@@ -1 +1 @@\n-a\n+x\n@@ -4 +4 @@\n-d\n+y\n");
        let ops = diff_ops(&["a", "b", "c", "a", "b", "b", "a"], &["c", "b", "a", "b", "a", "c"]);
        assert_eq!(ops.iter().filter(|o| **o == Op::Equal).count(), 4);
    }

    #[test]
    fn binary_details() {
        let d = binary_detail(b"abcdef", b"abXdef");
        assert!(d.contains("first difference at byte offset 2 (0x2): main 0x63, backup 0x58"), "{d}");
        assert!(d.contains(&format!("main:   6 bytes, sha256 {}", sha256_hex(b"abcdef"))), "{d}");
        assert!(d.contains("backup: 6 bytes"), "{d}");
        let d = binary_detail(b"abc", b"abcde");
        assert!(d.contains("identical for 3 bytes; backup has 2 more bytes from offset 3"), "{d}");
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    fn body(b: &[u8], etag: &str) -> Body {
        Body { bytes: b.to_vec(), etag: Some(etag.to_string()) }
    }

    #[test]
    fn summary_counts_and_exit_codes() {
        let mut s = Summary::default();
        assert_eq!(s.exit_code(), 2, "nothing compared");
        assert!(s.compare(Kind::Part, "/app/s/video1_1.0.m4s", &body(b"x", "\"1\""), &body(b"x", "\"1\"")));
        s.missing(Kind::Segment, Side::Backup);
        s.not_comparable(Kind::PlaylistLive);
        assert_eq!(s.exit_code(), 0);
        let r = s.render(5);
        assert!(
            r.contains(
                "1 compared: 1 identical, 0 differing; 0 missing on main, 1 missing on backup, 1 not comparable"
            ),
            "{r}"
        );
        assert!(
            r.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["part", "1", "0", "0", "0", "0"]),
            "{r}"
        );
        assert!(
            r.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["segment", "0", "0", "0", "1", "0"]),
            "{r}"
        );
        assert!(r.contains("OK:"), "{r}");

        assert!(!s.compare(
            Kind::PlaylistBlocking,
            "/app/s/v.m3u8?_HLS_msn=1",
            &body(b"A\nB\n", "\"1\""),
            &body(b"A\nC\n", "\"2\"")
        ));
        assert!(!s.compare(Kind::Ts, "/app/s/ts_1.ts", &body(b"\x47\x00", "\"3\""), &body(b"\x47\x01", "\"4\"")));
        assert!(!s.compare(Kind::Init, "/app/s/video1_init.mp4", &body(b"same", "\"5\""), &body(b"same", "\"6\"")));
        assert_eq!(s.exit_code(), 1);
        let t = s.total();
        assert_eq!((t.identical, t.differing, t.missing_main, t.missing_backup, t.not_comparable), (1, 3, 0, 1, 1));
        let r = s.render(2);
        assert!(r.contains("first 2 of 3 differences:"), "{r}");
        assert!(
            r.contains("[playlist-blocking] /app/s/v.m3u8?_HLS_msn=1\n--- main /app/s/v.m3u8?_HLS_msn=1\n+++ backup"),
            "{r}"
        );
        assert!(r.contains("-B\n+C\n"), "{r}");
        assert!(r.contains("[ts] /app/s/ts_1.ts\n"), "{r}");
        assert!(r.contains("first difference at byte offset 1"), "{r}");
        assert!(!r.contains("[init]"), "only the first 2 are shown: {r}");
        assert!(s.render(5).contains("but the ETags differ"), "identical bytes with different ETags differ");
        assert!(r.contains("FAIL: 3 objects differ"), "{r}");

        // A URL that keeps differing is shown once, with a count.
        let mut s = Summary::default();
        for v in [b"1", b"2", b"3"] {
            s.compare(Kind::PlaylistLive, "/app/s/ts.m3u8", &body(b"0", "a"), &body(v, "b"));
        }
        assert_eq!(s.total().differing, 3);
        assert_eq!(s.differences.len(), 1);
        let r = s.render(5);
        assert!(r.contains("first 1 of 3 differences:"), "{r}");
        assert!(r.contains("(2 more differing versions of this URL; the first is shown)"), "{r}");

        let mut s = Summary::default();
        s.compare(Kind::Master, "/m", &body(b"x", "e"), &body(b"x", "e"));
        s.errors_backup = 1;
        assert_eq!(s.exit_code(), 2, "connection errors");
    }
}
