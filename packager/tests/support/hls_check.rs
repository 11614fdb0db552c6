//! An independent conformance checker for HLS playlists.
//!
//! Written from the text of draft-pantos-hls-rfc8216bis (revision -22,
//! "HTTP Live Streaming 2nd Edition"), not from the packager: every rule cites
//! the section it comes from. Rules whose `rule` string starts with
//! `lockstep:` are project policy that is stricter than the specification
//! (or fills a gap in it); everything else is the specification's own MUST or
//! SHOULD.
//!
//! Include it from an integration test with
//!
//! ```ignore
//! #[path = "support/hls_check.rs"]
//! mod hls_check;
//! ```
//!
//! Entry points: [`check_media_playlist`], [`check_master_playlist`],
//! [`check_delta_update`] (a `_HLS_skip` answer against the full playlist),
//! [`check_playlist_sequence`] (successive snapshots of one live playlist) and
//! [`check_renditions`] (all Media Playlists of a presentation at one moment).
//! The rule strings are in [`rules`]; SHOULD-level rules say SHOULD.
//!
//! It depends only on `std` and `m3u8-rs`: the tags are read by a small line
//! parser of its own (m3u8-rs drops the low-latency tags), and every playlist
//! is also handed to `m3u8_rs::parse_playlist_res`, whose result is compared
//! with ours, so we know a common parser reads what we wrote.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// 1-based line number in the playlist text, 0 for the playlist as a whole.
    pub line: usize,
    /// The rule, starting with the section of the specification it comes from.
    pub rule: &'static str,
    /// What was found.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: [{}] {}", self.line, self.rule, self.detail)
    }
}

/// One violation per line, for assertion messages.
pub fn render(violations: &[Violation]) -> String {
    violations.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("\n")
}

/// Panics with every violation listed if there are any.
pub fn assert_conforms(what: &str, violations: &[Violation]) {
    assert!(violations.is_empty(), "{what}: {} HLS violation(s):\n{}", violations.len(), render(violations));
}

/// The rule strings, so that tests can name them without retyping them.
pub mod rules {
    // ---- common to every playlist -----------------------------------------
    pub const M3U8_RS: &str = "m3u8-rs: parse_playlist_res reads the whole playlist";
    pub const EXTM3U: &str = "4.4.1.1 EXTM3U is the first line";
    pub const BOM: &str = "4.1 no Byte Order Mark";
    pub const CONTROL_CHARS: &str = "4.1 no control characters other than CR LF line ends";
    pub const WHITESPACE: &str = "4.1 no whitespace except where specified";
    pub const ATTR_LIST: &str = "4.2 attribute-list syntax";
    pub const ATTR_DUP: &str = "4.2 an AttributeName appears at most once per attribute-list";
    pub const TAG_SYNTAX: &str = "4.4 tag syntax";
    pub const UNKNOWN_TAG: &str = "lockstep: no unrecognized #EXT tags";
    pub const VERSION_ONCE: &str = "4.4.1.2 at most one EXT-X-VERSION";
    pub const VERSION_FORMAT: &str = "4.4.1.2 EXT-X-VERSION:<n>";
    pub const VERSION_PRESENT: &str = "lockstep: EXT-X-VERSION present";
    pub const VERSION_COMPAT: &str = "8 EXT-X-VERSION compatible with the features used";
    pub const VERSION_REMOVED: &str = "8 no tags or attributes removed in the declared version";
    pub const ONCE_4_4_2: &str = "4.4.2 EXT-X-INDEPENDENT-SEGMENTS and EXT-X-START at most once";
    pub const MIXED: &str = "4.4.3/4.4.4/4.4.6 Media and Multivariant Playlist tags not mixed";
    pub const START: &str = "4.4.2.2 EXT-X-START TIME-OFFSET and PRECISE";
    pub const DEFINE: &str = "4.4.2.3 EXT-X-DEFINE has exactly one of NAME, IMPORT, QUERYPARAM";

    // ---- Media Playlist ------------------------------------------------------
    pub const MEDIA_TAG_ONCE: &str = "4.4.3 at most one Media Playlist tag of each type";
    pub const TARGETDURATION: &str = "4.4.3.1 EXT-X-TARGETDURATION present, decimal-integer >= 1";
    pub const EXTINF_LE_TARGET: &str = "4.4.3.1 EXTINF rounded to the nearest integer <= Target Duration";
    pub const MEDIA_SEQUENCE: &str = "4.4.3.2 EXT-X-MEDIA-SEQUENCE decimal-integer before the first Media Segment";
    pub const DISC_SEQUENCE: &str =
        "4.4.3.3 EXT-X-DISCONTINUITY-SEQUENCE before the first Media Segment and any EXT-X-DISCONTINUITY";
    pub const PLAYLIST_TYPE: &str = "4.4.3.5 EXT-X-PLAYLIST-TYPE is EVENT or VOD";
    pub const PART_INF: &str = "4.4.3.7 EXT-X-PART-INF:PART-TARGET present when EXT-X-PART is used";
    pub const SC_ATTRS: &str = "4.4.3.8 EXT-X-SERVER-CONTROL attribute types";
    pub const SC_SKIP_UNTIL: &str = "4.4.3.8 CAN-SKIP-UNTIL >= 6 x Target Duration";
    pub const SC_SKIP_DATERANGES: &str = "4.4.3.8 CAN-SKIP-DATERANGES requires CAN-SKIP-UNTIL";
    pub const SC_HOLD_BACK: &str = "4.4.3.8 HOLD-BACK >= 3 x Target Duration";
    pub const SC_PHB_REQUIRED: &str = "4.4.3.8 PART-HOLD-BACK present when EXT-X-PART-INF or EXT-X-PART is";
    pub const SC_PHB_2X: &str = "4.4.3.8 PART-HOLD-BACK >= 2 x PART-TARGET";
    pub const SC_PHB_3X: &str = "lockstep: PART-HOLD-BACK >= 3 x PART-TARGET";
    pub const EXTINF_FORMAT: &str = "4.4.4.1 EXTINF:<duration>,[<title>]";
    pub const EXTINF_REQUIRED: &str = "4.4.4.1 EXTINF present for each Media Segment";
    pub const SEGMENT_URI: &str = "4.4.4 every Media Segment ends with its URI line";
    pub const BYTERANGE: &str = "4.4.4.2 EXT-X-BYTERANGE:<n>[@<o>]";
    pub const KEY: &str = "4.4.4.4 EXT-X-KEY attributes";
    pub const MAP: &str = "4.4.4.5 EXT-X-MAP URI and BYTERANGE <n>@<o>";
    pub const PDT_FORMAT: &str =
        "4.4.4.6 EXT-X-PROGRAM-DATE-TIME is ISO 8601 (MUST) with milliseconds and a time zone (SHOULD)";
    pub const PDT_CONSISTENT: &str =
        "6.2.1 EXT-X-PROGRAM-DATE-TIME advances by the EXTINF durations (lockstep: within 1 ms)";
    pub const PDT_ON_DISCONTINUITY: &str =
        "6.2.1 EXT-X-PROGRAM-DATE-TIME SHOULD be on every segment with EXT-X-DISCONTINUITY";
    pub const BITRATE: &str = "4.4.4.8 EXT-X-BITRATE:<decimal-integer>";
    pub const PART_ATTRS: &str = "4.4.4.9 EXT-X-PART URI and DURATION (and INDEPENDENT, BYTERANGE, GAP types)";
    pub const PART_TAGS_FIRST: &str =
        "4.4.4.9 DISCONTINUITY, KEY, MAP, PROGRAM-DATE-TIME before the first EXT-X-PART of their Parent Segment";
    pub const PART_MAX: &str = "4.4.4.9 PART DURATION <= PART-TARGET";
    pub const PART_MIN: &str = "4.4.4.9 PART DURATION >= 85% of PART-TARGET (unless INDEPENDENT, GAP, before a GAP, or last of its Parent Segment)";
    pub const PART_IFRAMES: &str = "4.4.4.9 EXT-X-I-FRAMES-ONLY Playlists SHOULD NOT use Partial Segments";
    pub const PART_SUM: &str = "3.2 the Partial Segments of a Parent Segment add up to its EXTINF (within 1 ms)";
    pub const PARTS_TOO_OLD: &str =
        "6.2.2 EXT-X-PART SHOULD be removed once more than 3 Target Durations from the end of the Playlist";
    pub const PARTS_ORDER: &str = "6.2.2 EXT-X-PART tags removed in Playlist order";
    pub const DATERANGE: &str = "4.4.5.1 EXT-X-DATERANGE ID, START-DATE, and a PROGRAM-DATE-TIME in the Playlist";
    pub const SKIP_ATTRS: &str = "4.4.5.2 EXT-X-SKIP:SKIPPED-SEGMENTS, at most once";
    pub const SKIP_POSITION: &str = "4.4.5.2 EXT-X-SKIP before the first Media Segment";
    pub const SKIP_ALLOWED: &str = "6.2.5.1 EXT-X-SKIP only with CAN-SKIP-UNTIL and without EXT-X-ENDLIST";
    pub const HINT_ATTRS: &str = "4.4.5.3 EXT-X-PRELOAD-HINT TYPE=PART|MAP and URI";
    pub const HINT_ENDLIST: &str = "4.4.5.3 no EXT-X-PRELOAD-HINT with EXT-X-ENDLIST";
    pub const HINT_ONE_PER_TYPE: &str = "6.2.6 SHOULD NOT have two EXT-X-PRELOAD-HINT of one TYPE";
    pub const HINT_POSITION: &str = "lockstep: EXT-X-PRELOAD-HINT after the last EXT-X-PART and segment";
    pub const HINT_NEXT: &str = "4.4.5.3 a TYPE=PART hint names a Partial Segment not yet in the Playlist";
    pub const LL_PRELOAD_HINT: &str = "B.1 a live Playlist with EXT-X-PART has an EXT-X-PRELOAD-HINT TYPE=PART";
    pub const LL_PDT: &str = "B.1 a low-latency Playlist has EXT-X-PROGRAM-DATE-TIME";
    pub const LL_INDEPENDENT: &str =
        "4.4.4.9/B.1 parts with an independent frame SHOULD say INDEPENDENT=YES; every Parent Segment has one";
    pub const RR_URI: &str = "4.4.5.4 EXT-X-RENDITION-REPORT URI present and relative";
    pub const RR_LAST_MSN: &str = "4.4.5.4 EXT-X-RENDITION-REPORT LAST-MSN (lockstep: never omitted)";
    pub const RR_LAST_PART: &str =
        "4.4.5.4 EXT-X-RENDITION-REPORT LAST-PART when parts are in use (lockstep: never omitted)";

    // ---- Multivariant Playlist ----------------------------------------------
    pub const MV_HAS_TAG: &str = "4.1 a Multivariant Playlist contains Multivariant Playlist tags";
    pub const SI_BANDWIDTH: &str = "4.4.6.2 EXT-X-STREAM-INF BANDWIDTH decimal-integer";
    pub const SI_AVERAGE: &str = "4.4.6.2 AVERAGE-BANDWIDTH decimal-integer (lockstep: <= BANDWIDTH)";
    pub const SI_CODECS: &str = "4.4.6.2 EXT-X-STREAM-INF SHOULD have CODECS";
    pub const SI_RESOLUTION: &str = "4.4.6.2 RESOLUTION is a decimal-resolution WxH";
    pub const SI_FRAME_RATE: &str = "4.4.6.2 FRAME-RATE decimal-floating-point rounded to 3 decimal places";
    pub const SI_URI: &str = "4.4.6.2 EXT-X-STREAM-INF followed by its URI line";
    pub const SI_GROUP_REF: &str =
        "4.4.6.2 AUDIO/VIDEO/SUBTITLES/CLOSED-CAPTIONS name an EXT-X-MEDIA group of that TYPE";
    pub const SI_CC_NONE: &str = "4.4.6.2 CLOSED-CAPTIONS=NONE on every EXT-X-STREAM-INF or none";
    pub const SI_ENUMS: &str = "4.4.6.2 HDCP-LEVEL, VIDEO-RANGE and SCORE values";
    pub const IFRAME_SI: &str = "4.4.6.3 EXT-X-I-FRAME-STREAM-INF BANDWIDTH and URI";
    pub const MEDIA_ATTRS: &str = "4.4.6.1 EXT-X-MEDIA TYPE, GROUP-ID and NAME";
    pub const MEDIA_URI: &str = "4.4.6.1 EXT-X-MEDIA URI required for SUBTITLES, absent for CLOSED-CAPTIONS";
    pub const MEDIA_INSTREAM: &str = "4.4.6.1 INSTREAM-ID CC1-CC4/SERVICE1-63 for CLOSED-CAPTIONS";
    pub const MEDIA_FLAGS: &str =
        "4.4.6.1 DEFAULT/AUTOSELECT/FORCED are YES|NO, AUTOSELECT=YES with DEFAULT=YES, FORCED only for SUBTITLES";
    pub const MEDIA_AUDIO_ONLY: &str = "4.4.6.1 CHANNELS, BIT-DEPTH, SAMPLE-RATE only for TYPE=AUDIO";
    pub const MEDIA_GROUP: &str = "4.4.6.1.1 distinct NAMEs and at most one DEFAULT=YES per group";
    pub const SESSION: &str = "4.4.6.4/4.4.6.5/4.4.6.6 EXT-X-SESSION-DATA, -SESSION-KEY, -CONTENT-STEERING attributes";

    // ---- Playlist Delta Updates --------------------------------------------
    pub const DELTA_REQUIRED: &str = "6.2.5.1 _HLS_skip is answered with a Playlist Delta Update";
    pub const DELTA_IGNORED: &str = "6.2.5.1 _HLS_skip is ignored without CAN-SKIP-UNTIL or with EXT-X-ENDLIST";
    pub const DELTA_SKIP_COUNT: &str = "6.2.5.1 SKIPPED-SEGMENTS covers exactly the segments beyond the Skip Boundary";
    pub const DELTA_SAME: &str =
        "6.2.5.1 the Delta Update is the full Playlist with the skipped segments replaced by EXT-X-SKIP";

    // ---- the Renditions of one presentation ------------------------------------
    pub const REN_TARGET: &str = "6.2.4 every Rendition has the same Target Duration";
    pub const REN_SERVER_CONTROL: &str = "6.2.4 every Rendition has the same EXT-X-SERVER-CONTROL";
    pub const REN_PDT: &str = "6.2.4 EXT-X-PROGRAM-DATE-TIME in every Rendition or in none";
    pub const REN_PLAYLIST_TYPE: &str = "6.2.4 the same EXT-X-PLAYLIST-TYPE in every Rendition";
    pub const REN_REPORTS: &str =
        "B.1 a low-latency Media Playlist has an EXT-X-RENDITION-REPORT for every other Rendition";

    // ---- successive snapshots ------------------------------------------------
    pub const SEQ_TARGET: &str = "6.2.1 EXT-X-TARGETDURATION never changes";
    pub const SEQ_MSN: &str = "6.2.2 EXT-X-MEDIA-SEQUENCE never decreases";
    pub const SEQ_DSN_TAG: &str = "6.2.2 EXT-X-DISCONTINUITY-SEQUENCE never decreases";
    pub const SEQ_DSN: &str = "6.2.2 a segment's Discontinuity Sequence Number never changes";
    pub const SEQ_SEGMENT: &str = "6.2.1 a published Media Segment never changes (URI, EXTINF, its tags)";
    pub const SEQ_REMOVE_ORDER: &str = "6.2.1/6.2.2 Media Segments are removed only from the start of the Playlist";
    pub const SEQ_REMOVE_TAGS: &str =
        "6.2.2 removing segments requires EXT-X-MEDIA-SEQUENCE (and EXT-X-DISCONTINUITY-SEQUENCE with discontinuities)";
    pub const SEQ_LIVE_TYPE: &str = "6.2.2 a Live Playlist (segments removed) has no EXT-X-PLAYLIST-TYPE";
    pub const SEQ_MIN_DURATION: &str = "6.2.2 segment removal leaves at least 3 Target Durations";
    pub const SEQ_PARTS: &str = "6.2.1 a published Partial Segment never changes";
    pub const SEQ_PARTS_ADDED: &str = "3.2 no Partial Segments are added to a completed Parent Segment";
    pub const SEQ_PARTS_ORDER: &str = "6.2.2 EXT-X-PART tags removed in Playlist order, never re-added";
    pub const SEQ_ENDLIST: &str = "4.4.3.4 nothing is added after EXT-X-ENDLIST, which stays";
    pub const SEQ_TYPE: &str = "6.2.1 VOD Playlists never change, EVENT Playlists only grow";
}

use rules::*;

/// Tolerance for comparisons the specification states exactly (`<=`, `>=`):
/// the values are decimal text, so allow for float representation only.
const EPS: f64 = 1e-6;
/// Tolerance for sums of printed durations (parts vs. segment, PDT vs. EXTINF).
const MS: f64 = 0.001 + 1e-9;

// =============================================================================
// Lines and attribute lists (4.1, 4.2)
// =============================================================================

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Blank,
    Comment,
    Tag,
    Uri,
}

#[derive(Clone, Debug)]
struct Line {
    no: usize,
    text: String,
    kind: Kind,
    /// Tag name without the '#', e.g. `EXT-X-PART`.
    name: String,
    /// Everything after the first ':' of a tag line.
    value: Option<String>,
}

impl Line {
    fn is_tag(&self, name: &str) -> bool {
        self.kind == Kind::Tag && self.name == name
    }
}

#[derive(Default)]
struct Ctx {
    out: Vec<Violation>,
}

impl Ctx {
    fn v(&mut self, line: usize, rule: &'static str, detail: impl Into<String>) {
        self.out.push(Violation { line, rule, detail: detail.into() });
    }
}

fn split_lines(text: &str, ctx: &mut Ctx) -> Vec<Line> {
    let mut text = text;
    if let Some(rest) = text.strip_prefix('\u{feff}') {
        ctx.v(1, BOM, "the playlist starts with U+FEFF");
        text = rest;
    }
    let mut pieces: Vec<&str> = text.split('\n').collect();
    if pieces.last() == Some(&"") {
        pieces.pop();
    }
    let mut lines = Vec::with_capacity(pieces.len());
    for (i, piece) in pieces.into_iter().enumerate() {
        let no = i + 1;
        let piece = piece.strip_suffix('\r').unwrap_or(piece);
        // RECENTLY-REMOVED-DATERANGES is a tab-delimited list (4.4.5.2), the one
        // place the specification itself puts a control character in a line.
        let tab_ok = piece.starts_with("#EXT-X-SKIP:");
        if let Some(c) = piece.chars().find(|&c| {
            let u = c as u32;
            (u < 0x20 || (0x7f..=0x9f).contains(&u)) && !(tab_ok && c == '\t')
        }) {
            ctx.v(no, CONTROL_CHARS, format!("control character U+{:04X}", c as u32));
        }
        let lead = piece.starts_with([' ', '\t']);
        let trail = piece.ends_with([' ', '\t']) && !piece.starts_with("#EXTINF:");
        if lead || trail {
            ctx.v(no, WHITESPACE, format!("leading or trailing whitespace in {piece:?}"));
        }
        let trimmed = piece.trim_matches([' ', '\t']);
        let (kind, name, value) = if trimmed.is_empty() {
            (Kind::Blank, String::new(), None)
        } else if let Some(tag) = trimmed.strip_prefix('#').filter(|t| t.starts_with("EXT")) {
            match tag.split_once(':') {
                Some((n, v)) => (Kind::Tag, n.to_string(), Some(v.to_string())),
                None => (Kind::Tag, tag.to_string(), None),
            }
        } else if trimmed.starts_with('#') {
            (Kind::Comment, String::new(), None)
        } else {
            (Kind::Uri, String::new(), None)
        };
        lines.push(Line { no, text: trimmed.to_string(), kind, name, value });
    }
    lines
}

fn check_first_line(lines: &[Line], ctx: &mut Ctx) {
    match lines.first() {
        Some(l) if l.text == "#EXTM3U" => {}
        Some(l) => ctx.v(1, EXTM3U, format!("first line is {:?}", l.text)),
        None => ctx.v(0, EXTM3U, "the playlist is empty"),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Val {
    Quoted(String),
    Plain(String),
}

impl Val {
    fn text(&self) -> &str {
        match self {
            Val::Quoted(s) | Val::Plain(s) => s,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Attrs(Vec<(String, Val)>);

impl Attrs {
    fn get(&self, name: &str) -> Option<&Val> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
    fn plain(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Val::Plain(s)) => Some(s),
            _ => None,
        }
    }
    fn quoted(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Val::Quoted(s)) => Some(s),
            _ => None,
        }
    }
    fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }
}

/// Parses an attribute-list (4.2). Returns the attributes and the names that
/// appear more than once, or a description of the syntax error.
fn parse_attrs(s: &str) -> Result<(Attrs, Vec<String>), String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out: Vec<(String, Val)> = Vec::new();
    let mut dups = Vec::new();
    if s.is_empty() {
        return Err("empty attribute-list".into());
    }
    loop {
        let start = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let name = &s[start..i];
        if name.is_empty() {
            return Err(format!("empty AttributeName at column {}", start + 1));
        }
        if !name.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'-') {
            return Err(format!("AttributeName {name:?} is not [A-Z0-9-]+"));
        }
        if i >= b.len() || b[i] != b'=' {
            return Err(format!("no '=' after AttributeName {name}"));
        }
        i += 1;
        let val = if i < b.len() && b[i] == b'"' {
            let from = i + 1;
            let close = match s[from..].find('"') {
                Some(off) => from + off,
                None => return Err(format!("unterminated quoted-string for {name}")),
            };
            i = close + 1;
            Val::Quoted(s[from..close].to_string())
        } else {
            let from = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            let v = &s[from..i];
            if v.is_empty() {
                return Err(format!("empty AttributeValue for {name}"));
            }
            if v.contains('"') || v.contains(char::is_whitespace) {
                return Err(format!("malformed unquoted AttributeValue {v:?} for {name}"));
            }
            Val::Plain(v.to_string())
        };
        if out.iter().any(|(n, _)| n == name) {
            dups.push(name.to_string());
        } else {
            out.push((name.to_string(), val));
        }
        if i == b.len() {
            break;
        }
        if b[i] != b',' {
            return Err(format!("expected ',' after the value of {name}"));
        }
        i += 1;
        if i == b.len() {
            return Err("trailing ','".into());
        }
    }
    Ok((Attrs(out), dups))
}

/// The attribute-list of a tag line, with syntax violations reported.
fn attrs_of(ctx: &mut Ctx, line: &Line) -> Attrs {
    let Some(value) = line.value.as_deref() else {
        ctx.v(line.no, ATTR_LIST, format!("#{} needs an attribute-list", line.name));
        return Attrs::default();
    };
    match parse_attrs(value) {
        Ok((attrs, dups)) => {
            for d in dups {
                ctx.v(line.no, ATTR_DUP, format!("#{}: {d} repeated", line.name));
            }
            attrs
        }
        Err(e) => {
            ctx.v(line.no, ATTR_LIST, format!("#{}: {e}", line.name));
            Attrs::default()
        }
    }
}

fn parse_decimal_integer(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_decimal_float(s: &str) -> Option<f64> {
    if s.is_empty()
        || !s.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        || s.bytes().filter(|&c| c == b'.').count() > 1
        || !s.bytes().any(|c| c.is_ascii_digit())
    {
        return None;
    }
    s.parse().ok()
}

fn parse_signed_float(s: &str) -> Option<f64> {
    match s.strip_prefix('-') {
        Some(rest) => parse_decimal_float(rest).map(|v| -v),
        None => parse_decimal_float(s),
    }
}

fn parse_resolution(s: &str) -> Option<(u64, u64)> {
    let (w, h) = s.split_once('x')?;
    Some((parse_decimal_integer(w)?, parse_decimal_integer(h)?))
}

/// `<n>[@<o>]` (4.4.4.2).
fn parse_byterange(s: &str) -> Option<(u64, Option<u64>)> {
    match s.split_once('@') {
        Some((n, o)) => Some((parse_decimal_integer(n)?, Some(parse_decimal_integer(o)?))),
        None => Some((parse_decimal_integer(s)?, None)),
    }
}

fn is_hex_sequence(s: &str) -> bool {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"));
    matches!(digits, Some(d) if !d.is_empty() && d.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// Typed attribute access: reports a missing REQUIRED attribute or a value of
/// the wrong type under `rule`.
struct Typed<'a> {
    ctx: &'a mut Ctx,
    line: &'a Line,
    attrs: &'a Attrs,
    rule: &'static str,
}

impl Typed<'_> {
    fn missing(&mut self, name: &str, required: bool) {
        if required {
            self.ctx.v(self.line.no, self.rule, format!("#{}: {name} is REQUIRED", self.line.name));
        }
    }
    fn bad(&mut self, name: &str, what: &str, v: &Val) {
        let shown = match v {
            Val::Quoted(s) => format!("\"{s}\""),
            Val::Plain(s) => s.clone(),
        };
        self.ctx.v(self.line.no, self.rule, format!("#{}: {name}={shown} is not a {what}", self.line.name));
    }
    fn quoted(&mut self, name: &str, required: bool) -> Option<String> {
        match self.attrs.get(name) {
            None => {
                self.missing(name, required);
                None
            }
            Some(Val::Quoted(s)) if s.is_empty() => {
                self.ctx.v(self.line.no, self.rule, format!("#{}: {name} is an empty quoted-string", self.line.name));
                None
            }
            Some(Val::Quoted(s)) => Some(s.clone()),
            Some(v) => {
                let v = v.clone();
                self.bad(name, "quoted-string", &v);
                None
            }
        }
    }
    fn float(&mut self, name: &str, required: bool) -> Option<f64> {
        match self.attrs.get(name) {
            None => {
                self.missing(name, required);
                None
            }
            Some(Val::Plain(s)) if parse_decimal_float(s).is_some() => parse_decimal_float(s),
            Some(v) => {
                let v = v.clone();
                self.bad(name, "decimal-floating-point", &v);
                None
            }
        }
    }
    fn int(&mut self, name: &str, required: bool) -> Option<u64> {
        match self.attrs.get(name) {
            None => {
                self.missing(name, required);
                None
            }
            Some(Val::Plain(s)) if parse_decimal_integer(s).is_some() => parse_decimal_integer(s),
            Some(v) => {
                let v = v.clone();
                self.bad(name, "decimal-integer", &v);
                None
            }
        }
    }
    fn enumerated(&mut self, name: &str, required: bool, allowed: &[&str]) -> Option<String> {
        match self.attrs.get(name) {
            None => {
                self.missing(name, required);
                None
            }
            Some(Val::Plain(s)) if allowed.contains(&s.as_str()) => Some(s.clone()),
            Some(v) => {
                let v = v.clone();
                self.bad(name, &format!("enumerated-string in {allowed:?}"), &v);
                None
            }
        }
    }
}

fn typed<'a>(ctx: &'a mut Ctx, line: &'a Line, attrs: &'a Attrs, rule: &'static str) -> Typed<'a> {
    Typed { ctx, line, attrs, rule }
}

fn no_value(ctx: &mut Ctx, line: &Line) {
    if line.value.is_some() {
        ctx.v(line.no, TAG_SYNTAX, format!("#{} takes no value", line.name));
    }
}

// =============================================================================
// EXT-X-PROGRAM-DATE-TIME (4.4.4.6)
// =============================================================================

#[derive(Clone, Copy, Debug)]
struct DateTime {
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    nanos: i128,
    has_millis: bool,
    has_zone: bool,
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DDThh:mm:ss[.f+][Z|(+|-)hh[[:]mm]]`.
fn parse_date_time(s: &str) -> Option<DateTime> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let mdays = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&mo) || d < 1 || d > mdays[(mo - 1) as usize] || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let mut i = 19;
    let mut frac_nanos: i128 = 0;
    let mut has_millis = false;
    if i < b.len() && b[i] == b'.' {
        let from = i + 1;
        i = from;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let digits = &s[from..i];
        if digits.is_empty() {
            return None;
        }
        has_millis = digits.len() >= 3;
        let mut padded: String = digits.chars().take(9).collect();
        while padded.len() < 9 {
            padded.push('0');
        }
        frac_nanos = padded.parse().ok()?;
    }
    let rest = &s[i..];
    let (offset_secs, has_zone): (i64, bool) = if rest.is_empty() {
        (0, false)
    } else if rest == "Z" {
        (0, true)
    } else {
        let sign = match rest.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let z = &rest[1..];
        let (zh, zm) = match z.len() {
            2 => (z, "00"),
            4 => (&z[..2], &z[2..]),
            5 if z.as_bytes()[2] == b':' => (&z[..2], &z[3..]),
            _ => return None,
        };
        let zh: i64 = parse_decimal_integer(zh)? as i64;
        let zm: i64 = parse_decimal_integer(zm)? as i64;
        if zh > 23 || zm > 59 {
            return None;
        }
        (sign * (zh * 3600 + zm * 60), true)
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Some(DateTime { nanos: secs as i128 * 1_000_000_000 + frac_nanos, has_millis, has_zone })
}

fn check_date_time(ctx: &mut Ctx, no: usize, rule: &'static str, what: &str, s: &str) -> Option<i128> {
    match parse_date_time(s) {
        None => {
            ctx.v(no, rule, format!("{what} {s:?} is not an ISO 8601 date-time"));
            None
        }
        Some(dt) => {
            if !dt.has_millis || !dt.has_zone {
                ctx.v(no, rule, format!("{what} {s:?} SHOULD have a time zone and at least millisecond fractions"));
            }
            Some(dt.nanos)
        }
    }
}

// =============================================================================
// The Media Playlist model
// =============================================================================

#[derive(Clone, Debug, Default, PartialEq)]
struct Part {
    line: usize,
    /// The attribute-list text, for exact comparison across snapshots.
    text: String,
    uri: String,
    byterange: Option<String>,
    duration: Option<f64>,
    independent: bool,
    gap: bool,
}

impl Part {
    fn key(&self) -> (&str, Option<&str>) {
        (&self.uri, self.byterange.as_deref())
    }
}

#[derive(Clone, Debug, Default)]
struct Segment {
    /// The line of its first Media Segment tag (or of its URI).
    first_line: usize,
    uri_line: usize,
    uri: String,
    extinf_line: Option<usize>,
    extinf: Option<String>,
    duration: Option<f64>,
    /// EXTINF, BYTERANGE, DISCONTINUITY, PROGRAM-DATE-TIME, GAP and BITRATE
    /// lines applied to this segment, in order.
    own_tags: Vec<String>,
    byterange: Option<(usize, String)>,
    discontinuity: Option<usize>,
    pdt: Option<(usize, Option<i128>)>,
    gap: bool,
    parts: Vec<Part>,
    /// The EXT-X-MAP and EXT-X-KEY lines in effect.
    map: Option<String>,
    keys: BTreeMap<String, String>,
    /// Discontinuity tags from the start of the playlist up to this segment.
    disc_before: u64,
    msn: u64,
    dsn: u64,
}

#[derive(Clone, Debug)]
struct Hint {
    line: usize,
    typ: Option<String>,
    uri: Option<String>,
    byterange: bool,
}

#[derive(Clone, Debug, Default)]
struct Media {
    lines: Vec<Line>,
    version: Option<(usize, u64)>,
    target: Option<(usize, u64)>,
    media_sequence: Option<(usize, u64)>,
    disc_sequence: Option<(usize, u64)>,
    part_inf: Option<usize>,
    part_target: Option<f64>,
    server_control: Option<(usize, Attrs)>,
    /// (line, SKIPPED-SEGMENTS, has RECENTLY-REMOVED-DATERANGES)
    skip: Option<(usize, u64, bool)>,
    endlist: Option<usize>,
    playlist_type: Option<(usize, String)>,
    iframes_only: Option<usize>,
    segments: Vec<Segment>,
    /// Tags and parts after the last URI line: the Parent Segment in progress.
    trailing: Segment,
    hints: Vec<Hint>,
    reports: Vec<(usize, Attrs)>,
    dateranges: Vec<usize>,
    first_segment_line: Option<usize>,
    /// First line that can only belong to one segment (not MAP, KEY, BITRATE).
    first_defining_line: Option<usize>,
    has_pdt: bool,
    has_map: bool,
    allow_cache: Option<usize>,
    /// (minimum version, why, line)
    needs: Vec<(u64, String, usize)>,
}

impl Media {
    fn need(&mut self, version: u64, why: &str, line: usize) {
        if !self.needs.iter().any(|(v, w, _)| *v == version && w == why) {
            self.needs.push((version, why.to_string(), line));
        }
    }
    fn base_msn(&self) -> u64 {
        self.media_sequence.map_or(0, |(_, v)| v) + self.skip.map_or(0, |(_, n, _)| n)
    }
    fn all_parts(&self) -> impl Iterator<Item = &Part> {
        self.segments.iter().flat_map(|s| s.parts.iter()).chain(self.trailing.parts.iter())
    }
    fn server_control_float(&self, name: &str) -> Option<f64> {
        self.server_control.as_ref().and_then(|(_, a)| a.plain(name)).and_then(parse_decimal_float)
    }
    fn td(&self) -> Option<u64> {
        self.target.map(|(_, t)| t)
    }
    /// Parent Segment MSN -> its parts, with whether the parent is complete.
    fn parts_by_msn(&self) -> BTreeMap<u64, (bool, &[Part])> {
        let mut out = BTreeMap::new();
        for s in &self.segments {
            out.insert(s.msn, (true, s.parts.as_slice()));
        }
        if !self.trailing.parts.is_empty() {
            out.insert(self.trailing.msn, (false, self.trailing.parts.as_slice()));
        }
        out
    }
}

const MEDIA_PLAYLIST_TAGS: &[&str] = &[
    "EXT-X-TARGETDURATION",
    "EXT-X-MEDIA-SEQUENCE",
    "EXT-X-DISCONTINUITY-SEQUENCE",
    "EXT-X-ENDLIST",
    "EXT-X-PLAYLIST-TYPE",
    "EXT-X-I-FRAMES-ONLY",
    "EXT-X-PART-INF",
    "EXT-X-SERVER-CONTROL",
];
const MEDIA_SEGMENT_TAGS: &[&str] = &[
    "EXTINF",
    "EXT-X-BYTERANGE",
    "EXT-X-DISCONTINUITY",
    "EXT-X-KEY",
    "EXT-X-MAP",
    "EXT-X-PROGRAM-DATE-TIME",
    "EXT-X-GAP",
    "EXT-X-BITRATE",
    "EXT-X-PART",
];
const MEDIA_METADATA_TAGS: &[&str] = &["EXT-X-DATERANGE", "EXT-X-SKIP", "EXT-X-PRELOAD-HINT", "EXT-X-RENDITION-REPORT"];
const MULTIVARIANT_TAGS: &[&str] = &[
    "EXT-X-MEDIA",
    "EXT-X-STREAM-INF",
    "EXT-X-I-FRAME-STREAM-INF",
    "EXT-X-SESSION-DATA",
    "EXT-X-SESSION-KEY",
    "EXT-X-CONTENT-STEERING",
];

/// Checks shared by both kinds of playlist for a tag: repetition, variable
/// substitution and REQ- attributes. Returns false if the tag was repeated.
fn once_rule(name: &str) -> Option<&'static str> {
    match name {
        "EXT-X-VERSION" => Some(VERSION_ONCE),
        "EXT-X-INDEPENDENT-SEGMENTS" | "EXT-X-START" => Some(ONCE_4_4_2),
        "EXT-X-SKIP" => Some(SKIP_ATTRS),
        "EXT-X-CONTENT-STEERING" => Some(SESSION),
        n if MEDIA_PLAYLIST_TAGS.contains(&n) => Some(MEDIA_TAG_ONCE),
        _ => None,
    }
}

fn check_start(ctx: &mut Ctx, line: &Line) {
    let a = attrs_of(ctx, line);
    let mut t = typed(ctx, line, &a, START);
    match t.attrs.plain("TIME-OFFSET") {
        Some(v) if parse_signed_float(v).is_some() => {}
        Some(v) => {
            let v = v.to_string();
            t.ctx.v(line.no, START, format!("TIME-OFFSET={v} is not a signed-decimal-floating-point"));
        }
        None => t.missing("TIME-OFFSET", true),
    }
    t.enumerated("PRECISE", false, &["YES", "NO"]);
}

/// Returns the minimum version EXT-X-DEFINE needs.
fn check_define(ctx: &mut Ctx, line: &Line, multivariant: bool) -> u64 {
    let a = attrs_of(ctx, line);
    let kinds: Vec<&str> = ["NAME", "IMPORT", "QUERYPARAM"].into_iter().filter(|k| a.has(k)).collect();
    if kinds.len() != 1 {
        ctx.v(line.no, DEFINE, format!("has {kinds:?}"));
    }
    if a.has("NAME") && !a.has("VALUE") {
        ctx.v(line.no, DEFINE, "NAME without VALUE");
    }
    if multivariant && a.has("IMPORT") {
        ctx.v(line.no, DEFINE, "IMPORT is not allowed in a Multivariant Playlist");
    }
    if a.has("QUERYPARAM") {
        11
    } else {
        8
    }
}

struct MediaParser {
    m: Media,
    ctx: Ctx,
    pending: Segment,
    cur_map: Option<String>,
    cur_keys: BTreeMap<String, String>,
    disc_count: u64,
    seen: BTreeMap<String, usize>,
    daterange_ids: BTreeSet<String>,
}

impl MediaParser {
    fn segment_line(&mut self, no: usize, defining: bool) {
        self.m.first_segment_line.get_or_insert(no);
        if defining {
            self.m.first_defining_line.get_or_insert(no);
        }
        if self.pending.first_line == 0 {
            self.pending.first_line = no;
        }
    }

    fn before_parts(&mut self, line: &Line) {
        if let Some(p) = self.pending.parts.first() {
            let first = p.line;
            self.ctx.v(
                line.no,
                PART_TAGS_FIRST,
                format!("#{} after the EXT-X-PART on line {first} of the same Parent Segment", line.name),
            );
        }
    }

    fn uri(&mut self, line: &Line) {
        self.segment_line(line.no, true);
        if line.text.contains("{$") {
            self.m.need(8, "variable substitution", line.no);
        }
        if self.pending.extinf.is_none() {
            self.ctx.v(line.no, EXTINF_REQUIRED, format!("URI line {:?} has no EXTINF", line.text));
        }
        let mut seg = std::mem::take(&mut self.pending);
        seg.uri = line.text.clone();
        seg.uri_line = line.no;
        seg.map = self.cur_map.clone();
        seg.keys = self.cur_keys.clone();
        seg.disc_before = self.disc_count;
        if let Some((bl, br)) = &seg.byterange {
            if matches!(parse_byterange(br), Some((_, None))) {
                let ok = matches!(self.m.segments.last(),
                    Some(prev) if prev.byterange.is_some() && prev.uri == seg.uri);
                if !ok {
                    self.ctx.v(
                        *bl,
                        BYTERANGE,
                        "no offset, but the previous Media Segment is not a sub-range of the same resource",
                    );
                }
            }
        }
        self.m.segments.push(seg);
    }

    fn tag(&mut self, line: &Line) {
        let name = line.name.as_str();
        if let Some(rule) = once_rule(name) {
            if let Some(&first) = self.seen.get(name) {
                self.ctx.v(line.no, rule, format!("#{name} repeated (first on line {first})"));
            }
        }
        self.seen.entry(name.to_string()).or_insert(line.no);
        if line.value.as_deref().is_some_and(|v| v.contains("{$")) {
            self.m.need(8, "variable substitution", line.no);
        }
        if MULTIVARIANT_TAGS.contains(&name) {
            self.ctx.v(line.no, MIXED, format!("Multivariant Playlist tag #{name} in a Media Playlist"));
            return;
        }
        let value = line.value.clone();
        match name {
            "EXTM3U" => {
                no_value(&mut self.ctx, line);
                if line.no != 1 {
                    self.ctx.v(line.no, EXTM3U, "#EXTM3U repeated");
                }
            }
            "EXT-X-VERSION" => match value.as_deref().and_then(parse_decimal_integer) {
                Some(v) => {
                    if self.m.version.is_none() {
                        self.m.version = Some((line.no, v));
                    }
                }
                None => self.ctx.v(line.no, VERSION_FORMAT, format!("{:?}", line.text)),
            },
            "EXT-X-TARGETDURATION" => match value.as_deref().and_then(parse_decimal_integer) {
                Some(v) if v >= 1 => {
                    if self.m.target.is_none() {
                        self.m.target = Some((line.no, v));
                    }
                }
                _ => self.ctx.v(line.no, TARGETDURATION, format!("{:?}", line.text)),
            },
            "EXT-X-MEDIA-SEQUENCE" => {
                match value.as_deref().and_then(parse_decimal_integer) {
                    Some(v) => {
                        if self.m.media_sequence.is_none() {
                            self.m.media_sequence = Some((line.no, v));
                        }
                    }
                    None => self.ctx.v(line.no, MEDIA_SEQUENCE, format!("{:?}", line.text)),
                }
                if let Some(first) = self.m.first_segment_line {
                    self.ctx.v(line.no, MEDIA_SEQUENCE, format!("after the first Media Segment (line {first})"));
                }
            }
            "EXT-X-DISCONTINUITY-SEQUENCE" => {
                match value.as_deref().and_then(parse_decimal_integer) {
                    Some(v) => {
                        if self.m.disc_sequence.is_none() {
                            self.m.disc_sequence = Some((line.no, v));
                        }
                    }
                    None => self.ctx.v(line.no, DISC_SEQUENCE, format!("{:?}", line.text)),
                }
                if let Some(first) = self.m.first_segment_line {
                    self.ctx.v(line.no, DISC_SEQUENCE, format!("after the first Media Segment (line {first})"));
                } else if self.disc_count > 0 {
                    self.ctx.v(line.no, DISC_SEQUENCE, "after an EXT-X-DISCONTINUITY");
                }
            }
            "EXT-X-ENDLIST" => {
                no_value(&mut self.ctx, line);
                self.m.endlist.get_or_insert(line.no);
            }
            "EXT-X-PLAYLIST-TYPE" => match value.as_deref() {
                Some(t @ ("EVENT" | "VOD")) => {
                    self.m.playlist_type.get_or_insert((line.no, t.to_string()));
                }
                _ => self.ctx.v(line.no, PLAYLIST_TYPE, format!("{:?}", line.text)),
            },
            "EXT-X-I-FRAMES-ONLY" => {
                no_value(&mut self.ctx, line);
                self.m.iframes_only.get_or_insert(line.no);
                self.m.need(4, "EXT-X-I-FRAMES-ONLY", line.no);
            }
            "EXT-X-PART-INF" => {
                let a = attrs_of(&mut self.ctx, line);
                let pt = typed(&mut self.ctx, line, &a, PART_INF).float("PART-TARGET", true);
                if self.m.part_inf.is_none() {
                    self.m.part_inf = Some(line.no);
                    self.m.part_target = pt;
                }
                self.req_attrs(&a, line.no);
            }
            "EXT-X-SERVER-CONTROL" => {
                let a = attrs_of(&mut self.ctx, line);
                {
                    let mut t = typed(&mut self.ctx, line, &a, SC_ATTRS);
                    t.float("CAN-SKIP-UNTIL", false);
                    t.enumerated("CAN-SKIP-DATERANGES", false, &["YES"]);
                    t.float("HOLD-BACK", false);
                    t.float("PART-HOLD-BACK", false);
                    t.enumerated("CAN-BLOCK-RELOAD", false, &["YES"]);
                }
                self.req_attrs(&a, line.no);
                if self.m.server_control.is_none() {
                    self.m.server_control = Some((line.no, a));
                }
            }
            "EXTINF" => {
                self.segment_line(line.no, true);
                if let Some(prev) = self.pending.extinf_line {
                    self.ctx.v(
                        prev,
                        SEGMENT_URI,
                        format!("EXTINF on line {prev} is followed by another EXTINF, not a URI line"),
                    );
                }
                let v = value.unwrap_or_default();
                let duration = match v.split_once(',') {
                    None => {
                        self.ctx.v(line.no, EXTINF_FORMAT, format!("no ',' in {:?}", line.text));
                        None
                    }
                    Some((d, _title)) => {
                        let parsed = parse_decimal_float(d);
                        if parsed.is_none() {
                            self.ctx.v(line.no, EXTINF_FORMAT, format!("duration {d:?} is not a decimal number"));
                        } else if d.contains('.') {
                            self.m.need(3, "floating-point EXTINF durations", line.no);
                        }
                        parsed
                    }
                };
                self.pending.extinf_line = Some(line.no);
                self.pending.extinf = Some(v);
                self.pending.duration = duration;
                self.pending.own_tags.push(line.text.clone());
            }
            "EXT-X-BYTERANGE" => {
                self.segment_line(line.no, true);
                self.m.need(4, "EXT-X-BYTERANGE", line.no);
                let v = value.unwrap_or_default();
                if parse_byterange(&v).is_none() {
                    self.ctx.v(line.no, BYTERANGE, format!("{:?}", line.text));
                }
                self.pending.byterange = Some((line.no, v));
                self.pending.own_tags.push(line.text.clone());
            }
            "EXT-X-DISCONTINUITY" => {
                no_value(&mut self.ctx, line);
                self.segment_line(line.no, true);
                self.before_parts(line);
                self.disc_count += 1;
                self.pending.discontinuity = Some(line.no);
                self.pending.own_tags.push(line.text.clone());
            }
            "EXT-X-KEY" => {
                self.segment_line(line.no, false);
                self.before_parts(line);
                let a = attrs_of(&mut self.ctx, line);
                self.check_key(line, &a, false);
                let method = a.plain("METHOD").unwrap_or("");
                if method == "NONE" {
                    self.cur_keys.clear();
                } else {
                    let format = a.quoted("KEYFORMAT").unwrap_or("identity").to_string();
                    self.cur_keys.insert(format, line.text.clone());
                }
            }
            "EXT-X-MAP" => {
                self.segment_line(line.no, false);
                self.before_parts(line);
                self.m.has_map = true;
                let a = attrs_of(&mut self.ctx, line);
                let mut t = typed(&mut self.ctx, line, &a, MAP);
                t.quoted("URI", true);
                if let Some(br) = t.quoted("BYTERANGE", false) {
                    if !matches!(parse_byterange(&br), Some((_, Some(_)))) {
                        self.ctx.v(line.no, MAP, format!("BYTERANGE {br:?} is not <n>@<o>"));
                    }
                }
                self.req_attrs(&a, line.no);
                self.cur_map = Some(line.text.clone());
            }
            "EXT-X-PROGRAM-DATE-TIME" => {
                self.segment_line(line.no, true);
                self.before_parts(line);
                let v = value.unwrap_or_default();
                let nanos = check_date_time(&mut self.ctx, line.no, PDT_FORMAT, "date-time", &v);
                self.pending.pdt = Some((line.no, nanos));
                self.pending.own_tags.push(line.text.clone());
                self.m.has_pdt = true;
            }
            "EXT-X-GAP" => {
                no_value(&mut self.ctx, line);
                self.segment_line(line.no, true);
                self.pending.gap = true;
                self.pending.own_tags.push(line.text.clone());
            }
            "EXT-X-BITRATE" => {
                self.segment_line(line.no, false);
                if value.as_deref().and_then(parse_decimal_integer).is_none() {
                    self.ctx.v(line.no, BITRATE, format!("{:?}", line.text));
                }
            }
            "EXT-X-PART" => {
                self.segment_line(line.no, true);
                let a = attrs_of(&mut self.ctx, line);
                let mut t = typed(&mut self.ctx, line, &a, PART_ATTRS);
                let uri = t.quoted("URI", true).unwrap_or_default();
                let duration = t.float("DURATION", true);
                let independent = t.enumerated("INDEPENDENT", false, &["YES"]).is_some();
                let gap = t.enumerated("GAP", false, &["YES"]).is_some();
                let byterange = t.quoted("BYTERANGE", false);
                if let Some(br) = &byterange {
                    if parse_byterange(br).is_none() {
                        self.ctx.v(line.no, PART_ATTRS, format!("BYTERANGE {br:?} is not <n>[@<o>]"));
                    }
                }
                self.req_attrs(&a, line.no);
                self.pending.parts.push(Part {
                    line: line.no,
                    text: value.unwrap_or_default(),
                    uri,
                    byterange,
                    duration,
                    independent,
                    gap,
                });
            }
            "EXT-X-DATERANGE" => {
                self.m.dateranges.push(line.no);
                let a = attrs_of(&mut self.ctx, line);
                let mut t = typed(&mut self.ctx, line, &a, DATERANGE);
                let id = t.quoted("ID", true);
                let seen_before = id.as_ref().is_some_and(|i| self.daterange_ids.contains(i));
                let start = t.quoted("START-DATE", !seen_before);
                if let Some(s) = start {
                    check_date_time(&mut self.ctx, line.no, DATERANGE, "START-DATE", &s);
                    if let Some(i) = id {
                        self.daterange_ids.insert(i);
                    }
                }
                if let Some(e) = a.quoted("END-DATE") {
                    check_date_time(&mut self.ctx, line.no, DATERANGE, "END-DATE", e);
                }
                self.req_attrs(&a, line.no);
            }
            "EXT-X-SKIP" => {
                let a = attrs_of(&mut self.ctx, line);
                let n = typed(&mut self.ctx, line, &a, SKIP_ATTRS).int("SKIPPED-SEGMENTS", true);
                let v2 = match a.get("RECENTLY-REMOVED-DATERANGES") {
                    None => false,
                    Some(Val::Quoted(_)) => true,
                    Some(_) => {
                        self.ctx.v(line.no, SKIP_ATTRS, "RECENTLY-REMOVED-DATERANGES is not a quoted-string");
                        true
                    }
                };
                self.m.need(9, "EXT-X-SKIP", line.no);
                if v2 {
                    self.m.need(10, "EXT-X-SKIP replacing EXT-X-DATERANGE tags", line.no);
                }
                if let Some(first) = self.m.first_defining_line {
                    self.ctx.v(line.no, SKIP_POSITION, format!("after the Media Segment line {first}"));
                }
                self.req_attrs(&a, line.no);
                if self.m.skip.is_none() {
                    self.m.skip = Some((line.no, n.unwrap_or(0), v2));
                }
            }
            "EXT-X-PRELOAD-HINT" => {
                let a = attrs_of(&mut self.ctx, line);
                let mut t = typed(&mut self.ctx, line, &a, HINT_ATTRS);
                let typ = t.enumerated("TYPE", true, &["PART", "MAP"]);
                let uri = t.quoted("URI", true);
                t.int("BYTERANGE-START", false);
                t.int("BYTERANGE-LENGTH", false);
                self.req_attrs(&a, line.no);
                self.m.hints.push(Hint {
                    line: line.no,
                    typ,
                    uri,
                    byterange: a.has("BYTERANGE-START") || a.has("BYTERANGE-LENGTH"),
                });
            }
            "EXT-X-RENDITION-REPORT" => {
                let a = attrs_of(&mut self.ctx, line);
                self.req_attrs(&a, line.no);
                self.m.reports.push((line.no, a));
            }
            "EXT-X-INDEPENDENT-SEGMENTS" => no_value(&mut self.ctx, line),
            "EXT-X-START" => check_start(&mut self.ctx, line),
            "EXT-X-DEFINE" => {
                let v = check_define(&mut self.ctx, line, false);
                self.m.need(8, "variable substitution (EXT-X-DEFINE)", line.no);
                if v >= 11 {
                    self.m.need(11, "EXT-X-DEFINE with QUERYPARAM", line.no);
                }
            }
            "EXT-X-ALLOW-CACHE" => {
                self.m.allow_cache.get_or_insert(line.no);
            }
            _ => self.ctx.v(line.no, UNKNOWN_TAG, format!("#{name}")),
        }
    }

    fn req_attrs(&mut self, a: &Attrs, no: usize) {
        if a.names().any(|n| n.starts_with("REQ-")) {
            self.m.need(12, "an attribute whose name starts with REQ-", no);
        }
    }

    fn check_key(&mut self, line: &Line, a: &Attrs, session: bool) {
        let methods: &[&str] = if session {
            &["AES-128", "SAMPLE-AES", "SAMPLE-AES-CTR", "AES-256-GCM"]
        } else {
            &["NONE", "AES-128", "SAMPLE-AES", "SAMPLE-AES-CTR", "AES-256-GCM"]
        };
        let mut t = typed(&mut self.ctx, line, a, KEY);
        let method = t.enumerated("METHOD", true, methods).unwrap_or_default();
        if method == "NONE" {
            let others: Vec<&str> = a.names().filter(|n| *n != "METHOD").collect();
            if !others.is_empty() {
                self.ctx.v(line.no, KEY, format!("METHOD=NONE with other attributes {others:?}"));
            }
            return;
        }
        let mut t = typed(&mut self.ctx, line, a, KEY);
        t.quoted("URI", true);
        match a.get("IV") {
            None => {}
            Some(v) => {
                if !matches!(v, Val::Plain(s) if is_hex_sequence(s) && s.len() == 34) {
                    self.ctx.v(line.no, KEY, format!("IV {:?} is not a 128-bit hexadecimal-sequence", v.text()));
                }
                if method == "AES-256-GCM" || method == "SAMPLE-AES-CTR" {
                    self.ctx.v(line.no, KEY, format!("IV is not allowed with METHOD={method}"));
                }
                self.m.need(2, "the IV attribute of EXT-X-KEY", line.no);
            }
        }
        if method == "SAMPLE-AES" {
            self.m.need(5, "EXT-X-KEY METHOD=SAMPLE-AES", line.no);
        }
        if a.has("KEYFORMAT") || a.has("KEYFORMATVERSIONS") {
            self.m.need(5, "KEYFORMAT/KEYFORMATVERSIONS", line.no);
        }
    }

    fn finish(mut self) -> (Media, Vec<Violation>) {
        let p = std::mem::take(&mut self.pending);
        if let Some(l) = p.extinf_line {
            self.ctx.v(l, SEGMENT_URI, "EXTINF is not followed by a URI line");
        }
        if let Some((l, _)) = &p.byterange {
            self.ctx.v(*l, SEGMENT_URI, "EXT-X-BYTERANGE is not followed by a URI line");
        }
        let base = self.m.base_msn();
        let ds = self.m.disc_sequence.map_or(0, |(_, v)| v);
        for (i, s) in self.m.segments.iter_mut().enumerate() {
            s.msn = base + i as u64;
            s.dsn = ds + s.disc_before;
        }
        self.m.trailing = p;
        self.m.trailing.msn = base + self.m.segments.len() as u64;
        self.m.trailing.dsn = ds + self.disc_count;
        (self.m, self.ctx.out)
    }
}

/// Reads a Media Playlist into the model, reporting tag-level violations.
fn parse_media(text: &str) -> (Media, Vec<Violation>) {
    let mut ctx = Ctx::default();
    let lines = split_lines(text, &mut ctx);
    check_first_line(&lines, &mut ctx);
    let mut p = MediaParser {
        m: Media::default(),
        ctx,
        pending: Segment::default(),
        cur_map: None,
        cur_keys: BTreeMap::new(),
        disc_count: 0,
        seen: BTreeMap::new(),
        daterange_ids: BTreeSet::new(),
    };
    for line in &lines {
        match line.kind {
            Kind::Blank | Kind::Comment => {}
            Kind::Uri => p.uri(line),
            Kind::Tag => p.tag(line),
        }
    }
    p.m.lines = lines;
    p.finish()
}

// =============================================================================
// check_media_playlist
// =============================================================================

/// Every rule this checker knows for one Media Playlist.
pub fn check_media_playlist(text: &str) -> Vec<Violation> {
    let (m, out) = parse_media(text);
    let mut ctx = Ctx { out };
    let mut needs = m.needs.clone();
    if m.has_map {
        let (v, why) = if m.iframes_only.is_some() {
            (5, "EXT-X-MAP in an I-frame Playlist")
        } else {
            (6, "EXT-X-MAP in a Playlist without EXT-X-I-FRAMES-ONLY")
        };
        let line = m.lines.iter().find(|l| l.is_tag("EXT-X-MAP")).map_or(0, |l| l.no);
        needs.push((v, why.to_string(), line));
    }
    version_rules(&mut ctx, &needs, m.version);
    if let (Some(l), Some((_, v))) = (m.allow_cache, m.version) {
        if v >= 7 {
            ctx.v(l, VERSION_REMOVED, "EXT-X-ALLOW-CACHE was removed in protocol version 7");
        }
    }
    duration_rules(&m, &mut ctx);
    server_control_rules(&m, &mut ctx);
    part_rules(&m, &mut ctx);
    metadata_rules(&m, &mut ctx);
    pdt_rules(&m, &mut ctx);
    m3u8_rs_media(text, &m, &mut ctx);
    ctx.out.sort_by_key(|v| v.line);
    ctx.out
}

/// 8: the declared version covers every feature.
fn version_rules(ctx: &mut Ctx, needs: &[(u64, String, usize)], version: Option<(usize, u64)>) {
    let required = needs.iter().map(|(v, _, _)| *v).max().unwrap_or(1);
    match version {
        None => {
            if required > 1 {
                for (v, why, line) in needs {
                    ctx.v(*line, VERSION_COMPAT, format!("no EXT-X-VERSION, but {why} needs version {v}"));
                }
            } else {
                ctx.v(0, VERSION_PRESENT, "no EXT-X-VERSION tag");
            }
        }
        Some((vl, declared)) => {
            for (v, why, line) in needs {
                if *v > declared {
                    ctx.v(
                        *line,
                        VERSION_COMPAT,
                        format!("{why} needs EXT-X-VERSION >= {v}, line {vl} declares {declared}"),
                    );
                }
            }
        }
    }
}

fn duration_rules(m: &Media, ctx: &mut Ctx) {
    let Some(td) = m.td() else {
        ctx.v(0, TARGETDURATION, "no EXT-X-TARGETDURATION");
        return;
    };
    for s in &m.segments {
        if let (Some(d), Some(l)) = (s.duration, s.extinf_line) {
            if d.round() > td as f64 {
                ctx.v(l, EXTINF_LE_TARGET, format!("EXTINF {d} rounds to {} > EXT-X-TARGETDURATION {td}", d.round()));
            }
        }
    }
}

fn server_control_rules(m: &Media, ctx: &mut Ctx) {
    let any_parts = m.all_parts().next().is_some();
    let sc_line = m.server_control.as_ref().map_or(0, |(l, _)| *l);
    let phb = m.server_control_float("PART-HOLD-BACK");
    let phb_present = m.server_control.as_ref().is_some_and(|(_, a)| a.has("PART-HOLD-BACK"));
    if (m.part_inf.is_some() || any_parts) && !phb_present {
        let line = if sc_line > 0 { sc_line } else { m.part_inf.unwrap_or(0) };
        ctx.v(line, SC_PHB_REQUIRED, "no EXT-X-SERVER-CONTROL PART-HOLD-BACK");
    }
    if let (Some(phb), Some(pt)) = (phb, m.part_target) {
        if phb + EPS < 2.0 * pt {
            ctx.v(sc_line, SC_PHB_2X, format!("PART-HOLD-BACK {phb} < 2 x PART-TARGET {pt}"));
        }
        if phb + EPS < 3.0 * pt {
            ctx.v(sc_line, SC_PHB_3X, format!("PART-HOLD-BACK {phb} < 3 x PART-TARGET {pt}"));
        }
    }
    let Some((line, a)) = &m.server_control else {
        return;
    };
    if a.has("CAN-SKIP-DATERANGES") && !a.has("CAN-SKIP-UNTIL") {
        ctx.v(*line, SC_SKIP_DATERANGES, "CAN-SKIP-DATERANGES without CAN-SKIP-UNTIL");
    }
    let Some(td) = m.td() else { return };
    let td = td as f64;
    if let Some(v) = m.server_control_float("CAN-SKIP-UNTIL") {
        if v + EPS < 6.0 * td {
            ctx.v(*line, SC_SKIP_UNTIL, format!("CAN-SKIP-UNTIL {v} < 6 x {td}"));
        }
    }
    if let Some(v) = m.server_control_float("HOLD-BACK") {
        if v + EPS < 3.0 * td {
            ctx.v(*line, SC_HOLD_BACK, format!("HOLD-BACK {v} < 3 x {td}"));
        }
    }
}

fn part_rules(m: &Media, ctx: &mut Ctx) {
    let first_part = m.all_parts().next().map(|p| p.line);
    let Some(first_part_line) = first_part else {
        return;
    };
    if m.part_target.is_none() && m.part_inf.is_none() {
        ctx.v(first_part_line, PART_INF, "EXT-X-PART without EXT-X-PART-INF");
    }
    if let Some(l) = m.iframes_only {
        ctx.v(l, PART_IFRAMES, "EXT-X-I-FRAMES-ONLY Playlist with EXT-X-PART tags");
    }

    // Per-part duration bounds.
    if let Some(pt) = m.part_target {
        let groups = m
            .segments
            .iter()
            .map(|s| (s.parts.as_slice(), true))
            .chain(std::iter::once((m.trailing.parts.as_slice(), false)));
        let all: Vec<&Part> = m.all_parts().collect();
        let mut idx = 0;
        for (parts, complete) in groups {
            for (i, p) in parts.iter().enumerate() {
                let next_gap = all.get(idx + 1).is_some_and(|n| n.gap);
                idx += 1;
                let Some(d) = p.duration else { continue };
                if d > pt + EPS {
                    ctx.v(p.line, PART_MAX, format!("DURATION {d} > PART-TARGET {pt}"));
                }
                // The last listed part of the Parent Segment in progress may
                // turn out to be its final one: it is checked once the
                // parent is complete (check_playlist_sequence sees that).
                let last = i + 1 == parts.len();
                let exempt = p.independent || p.gap || next_gap || last;
                if !exempt && d + EPS < 0.85 * pt {
                    let why = if complete { "" } else { " (not the last part listed)" };
                    ctx.v(p.line, PART_MIN, format!("DURATION {d} < 0.85 x PART-TARGET {pt}{why}"));
                }
            }
        }
    }

    // Parts add up to their Parent Segment; removal in order.
    let first_with_parts = m.segments.iter().position(|s| !s.parts.is_empty());
    if let Some(fw) = first_with_parts {
        for (i, s) in m.segments.iter().enumerate().skip(fw) {
            if s.parts.is_empty() {
                ctx.v(
                    s.first_line,
                    PARTS_ORDER,
                    format!(
                        "segment {} has no EXT-X-PART but the earlier segment {} still has",
                        s.msn, m.segments[fw].msn
                    ),
                );
                continue;
            }
            let sum: Option<f64> = s.parts.iter().map(|p| p.duration).sum();
            let (Some(sum), Some(d)) = (sum, s.duration) else { continue };
            let line = s.extinf_line.unwrap_or(s.uri_line);
            if i == fw {
                // Its first parts may already have been removed (6.2.2).
                if sum > d + MS {
                    ctx.v(line, PART_SUM, format!("parts add up to {sum:.6} > EXTINF {d}"));
                }
            } else if (sum - d).abs() > MS {
                ctx.v(line, PART_SUM, format!("parts add up to {sum:.6}, EXTINF is {d}"));
            }
            if i != fw && !s.parts.iter().any(|p| p.independent) {
                ctx.v(s.parts[0].line, LL_INDEPENDENT, format!("no part of segment {} has INDEPENDENT=YES", s.msn));
            }
        }
    }

    // 6.2.2: parts more than three Target Durations from the end. The
    // distance is measured from the end of the part, which is how the
    // example in 9.11 reads (its oldest listed part ends 10.5 s = 2.6 Target
    // Durations from the end, the part before it would end 12.5 s from it).
    if let Some(td) = m.td() {
        let limit = 3.0 * td as f64;
        let durations: Option<Vec<f64>> = m.segments.iter().map(|s| s.duration).collect();
        let trailing: Option<f64> = m.trailing.parts.iter().map(|p| p.duration).sum();
        if let (Some(durations), Some(trailing)) = (durations, trailing) {
            let end: f64 = durations.iter().sum::<f64>() + trailing;
            let mut start = 0.0;
            for (s, d) in m.segments.iter().zip(&durations) {
                let seg_end = start + d;
                start = seg_end;
                let mut after = 0.0;
                let mut oldest_bad = None;
                for p in s.parts.iter().rev() {
                    let part_end = seg_end - after;
                    after += p.duration.unwrap_or(0.0);
                    if end - part_end > limit + MS {
                        oldest_bad = Some((p.line, end - part_end));
                    }
                }
                if let Some((line, dist)) = oldest_bad {
                    ctx.v(
                        line,
                        PARTS_TOO_OLD,
                        format!(
                            "segment {} lists a part ending {dist:.3} s before the end of the Playlist (> 3 x {td})",
                            s.msn
                        ),
                    );
                }
            }
        }
    }

    // B.1, Low-Latency Server Configuration Profile.
    if m.endlist.is_none() {
        if !m.hints.iter().any(|h| h.typ.as_deref() == Some("PART")) {
            ctx.v(0, LL_PRELOAD_HINT, "EXT-X-PART without an EXT-X-PRELOAD-HINT:TYPE=PART");
        }
        if !m.has_pdt {
            ctx.v(0, LL_PDT, "EXT-X-PART without any EXT-X-PROGRAM-DATE-TIME");
        }
    }
}

fn metadata_rules(m: &Media, ctx: &mut Ctx) {
    if let Some((line, _, _)) = m.skip {
        if m.server_control_float("CAN-SKIP-UNTIL").is_none() {
            ctx.v(line, SKIP_ALLOWED, "EXT-X-SKIP without EXT-X-SERVER-CONTROL:CAN-SKIP-UNTIL");
        }
        if m.endlist.is_some() {
            ctx.v(line, SKIP_ALLOWED, "EXT-X-SKIP in a Playlist with EXT-X-ENDLIST");
        }
    }

    // EXT-X-PRELOAD-HINT
    let last_media_line = m.segments.last().map(|s| s.uri_line).into_iter().chain(m.all_parts().map(|p| p.line)).max();
    let mut per_type: BTreeMap<&str, usize> = BTreeMap::new();
    for h in &m.hints {
        if let Some(l) = m.endlist {
            ctx.v(h.line, HINT_ENDLIST, format!("EXT-X-ENDLIST on line {l}"));
        }
        if let Some(t) = h.typ.as_deref() {
            if let Some(first) = per_type.insert(t, h.line) {
                ctx.v(h.line, HINT_ONE_PER_TYPE, format!("second TYPE={t} hint (first on line {first})"));
            }
        }
        if let Some(last) = last_media_line {
            if h.line < last {
                ctx.v(h.line, HINT_POSITION, format!("followed by a segment or part on line {last}"));
            }
        }
        if h.typ.as_deref() == Some("PART") && !h.byterange {
            if let Some(uri) = &h.uri {
                if let Some(p) = m.all_parts().find(|p| &p.uri == uri && p.byterange.is_none()) {
                    ctx.v(h.line, HINT_NEXT, format!("{uri:?} is already the EXT-X-PART on line {}", p.line));
                }
            }
        }
    }

    // EXT-X-RENDITION-REPORT
    let any_parts = m.all_parts().next().is_some();
    for (line, a) in &m.reports {
        let fake = Line {
            no: *line,
            text: String::new(),
            kind: Kind::Tag,
            name: "EXT-X-RENDITION-REPORT".into(),
            value: None,
        };
        let uri = typed(ctx, &fake, a, RR_URI).quoted("URI", true);
        if let Some(uri) = uri {
            if has_scheme(&uri) {
                ctx.v(*line, RR_URI, format!("{uri:?} is not relative to the Media Playlist"));
            }
        }
        typed(ctx, &fake, a, RR_LAST_MSN).int("LAST-MSN", true);
        typed(ctx, &fake, a, RR_LAST_PART).int("LAST-PART", any_parts);
    }

    if !m.dateranges.is_empty() && !m.has_pdt {
        ctx.v(m.dateranges[0], DATERANGE, "EXT-X-DATERANGE without any EXT-X-PROGRAM-DATE-TIME");
    }
}

fn has_scheme(uri: &str) -> bool {
    match uri.split_once(':') {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        }
        None => false,
    }
}

fn pdt_rules(m: &Media, ctx: &mut Ctx) {
    if !m.has_pdt {
        return;
    }
    // anchor: (date-time in ns, seconds of media since that date-time)
    let mut anchor: Option<(i128, f64, usize)> = None;
    for s in &m.segments {
        if s.discontinuity.is_some() {
            anchor = None;
            if s.pdt.is_none() {
                ctx.v(
                    s.first_line,
                    PDT_ON_DISCONTINUITY,
                    format!("segment {} has EXT-X-DISCONTINUITY but no EXT-X-PROGRAM-DATE-TIME", s.msn),
                );
            }
        }
        if let Some((line, Some(ns))) = s.pdt {
            if let Some((a_ns, elapsed, a_line)) = anchor {
                let expected = a_ns + (elapsed * 1e9).round() as i128;
                let diff_ms = (ns - expected) as f64 / 1e6;
                if diff_ms.abs() > 1.0 + 1e-6 {
                    ctx.v(
                        line,
                        PDT_CONSISTENT,
                        format!(
                            "{diff_ms:+.3} ms from the EXT-X-PROGRAM-DATE-TIME on line {a_line} plus {elapsed:.5} s of EXTINF"
                        ),
                    );
                }
            }
            anchor = Some((ns, 0.0, line));
        } else if s.pdt.is_some() {
            anchor = None;
        }
        match (s.duration, anchor.as_mut()) {
            (Some(d), Some(a)) => a.1 += d,
            (None, _) => anchor = None,
            _ => {}
        }
    }
}

/// m3u8-rs stops at the first line it cannot read without failing, so its
/// result is compared with ours.
fn m3u8_rs_media(text: &str, m: &Media, ctx: &mut Ctx) {
    let parsed = match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Err(e) => {
            let mut s = format!("{e:?}");
            s.truncate(200);
            ctx.v(0, M3U8_RS, format!("failed: {s}"));
            return;
        }
        Ok(m3u8_rs::Playlist::MasterPlaylist(_)) => {
            ctx.v(0, M3U8_RS, "read it as a Multivariant Playlist");
            return;
        }
        Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p,
    };
    if parsed.segments.len() != m.segments.len() {
        let at = parsed.segments.len();
        let line = m.segments.get(at).map_or(0, |s| s.first_line);
        ctx.v(
            line,
            M3U8_RS,
            format!("read {} segments, the playlist has {} (it stops near line {line})", at, m.segments.len()),
        );
    }
    for (ours, theirs) in m.segments.iter().zip(&parsed.segments) {
        if ours.uri != theirs.uri {
            ctx.v(ours.uri_line, M3U8_RS, format!("read URI {:?}, expected {:?}", theirs.uri, ours.uri));
            break;
        }
        if let Some(d) = ours.duration {
            if (f64::from(theirs.duration) - d).abs() > 1e-3 {
                ctx.v(ours.uri_line, M3U8_RS, format!("read EXTINF {}, expected {d}", theirs.duration));
            }
        }
        if ours.pdt.is_some() != theirs.program_date_time.is_some() {
            let line = ours.pdt.map_or(ours.first_line, |(l, _)| l);
            ctx.v(line, M3U8_RS, "did not read the EXT-X-PROGRAM-DATE-TIME");
        }
    }
    if let Some(td) = m.td() {
        if parsed.target_duration != td {
            ctx.v(0, M3U8_RS, format!("read EXT-X-TARGETDURATION {}", parsed.target_duration));
        }
    }
    if parsed.media_sequence != m.media_sequence.map_or(0, |(_, v)| v) {
        ctx.v(0, M3U8_RS, format!("read EXT-X-MEDIA-SEQUENCE {}", parsed.media_sequence));
    }
    if parsed.discontinuity_sequence != m.disc_sequence.map_or(0, |(_, v)| v) {
        ctx.v(0, M3U8_RS, format!("read EXT-X-DISCONTINUITY-SEQUENCE {}", parsed.discontinuity_sequence));
    }
    if parsed.end_list != m.endlist.is_some() {
        ctx.v(0, M3U8_RS, "read EXT-X-ENDLIST differently");
    }
}

// =============================================================================
// check_master_playlist
// =============================================================================

/// (line, NAME, DEFAULT=YES) of an EXT-X-MEDIA in a Rendition Group.
type GroupMember = (usize, String, bool);

struct Variant {
    line: usize,
    attrs: Attrs,
    uri: Option<String>,
}

/// Every rule this checker knows for one Multivariant ("master") Playlist.
pub fn check_master_playlist(text: &str) -> Vec<Violation> {
    let mut ctx = Ctx::default();
    let lines = split_lines(text, &mut ctx);
    check_first_line(&lines, &mut ctx);
    let mut needs: Vec<(u64, String, usize)> = Vec::new();
    let mut need = |v: u64, why: &str, line: usize| {
        if !needs.iter().any(|(n, w, _)| *n == v && w == why) {
            needs.push((v, why.to_string(), line));
        }
    };
    let mut version = None;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut variants: Vec<Variant> = Vec::new();
    let mut iframes: Vec<(usize, Attrs)> = Vec::new();
    let mut medias: Vec<(usize, Attrs)> = Vec::new();
    let mut session_data: BTreeSet<(String, String)> = BTreeSet::new();
    let mut expecting_uri: Option<usize> = None;
    let mut any_mv_tag = false;
    let mut program_id: Option<usize> = None;

    for line in &lines {
        if line.kind == Kind::Blank || line.kind == Kind::Comment {
            continue;
        }
        if line.text.contains("{$") {
            need(8, "variable substitution", line.no);
        }
        if line.kind == Kind::Uri {
            match expecting_uri.take() {
                Some(_) => {
                    if let Some(v) = variants.last_mut() {
                        v.uri = Some(line.text.clone());
                    }
                }
                None => ctx.v(line.no, SI_URI, format!("URI line {:?} without EXT-X-STREAM-INF", line.text)),
            }
            continue;
        }
        if let Some(l) = expecting_uri.take() {
            ctx.v(l, SI_URI, format!("followed by #{} instead of a URI line", line.name));
        }
        let name = line.name.as_str();
        if let Some(rule) = once_rule(name) {
            if let Some(&first) = seen.get(name) {
                ctx.v(line.no, rule, format!("#{name} repeated (first on line {first})"));
            }
        }
        seen.entry(name.to_string()).or_insert(line.no);
        if MEDIA_PLAYLIST_TAGS.contains(&name) || MEDIA_SEGMENT_TAGS.contains(&name) {
            ctx.v(line.no, MIXED, format!("Media Playlist tag #{name} in a Multivariant Playlist"));
            continue;
        }
        if MULTIVARIANT_TAGS.contains(&name) {
            any_mv_tag = true;
        }
        let attr_tag = matches!(
            name,
            "EXT-X-STREAM-INF"
                | "EXT-X-I-FRAME-STREAM-INF"
                | "EXT-X-MEDIA"
                | "EXT-X-SESSION-DATA"
                | "EXT-X-SESSION-KEY"
                | "EXT-X-CONTENT-STEERING"
        );
        let attrs = if attr_tag { attrs_of(&mut ctx, line) } else { Attrs::default() };
        if attrs.names().any(|n| n.starts_with("REQ-")) {
            need(12, "an attribute whose name starts with REQ-", line.no);
        }
        if attrs.has("PROGRAM-ID") && program_id.is_none() {
            program_id = Some(line.no);
        }
        match name {
            "EXTM3U" => {
                no_value(&mut ctx, line);
                if line.no != 1 {
                    ctx.v(line.no, EXTM3U, "#EXTM3U repeated");
                }
            }
            "EXT-X-VERSION" => match line.value.as_deref().and_then(parse_decimal_integer) {
                Some(v) => {
                    version.get_or_insert((line.no, v));
                }
                None => ctx.v(line.no, VERSION_FORMAT, format!("{:?}", line.text)),
            },
            "EXT-X-INDEPENDENT-SEGMENTS" => no_value(&mut ctx, line),
            "EXT-X-START" => check_start(&mut ctx, line),
            "EXT-X-DEFINE" => {
                let v = check_define(&mut ctx, line, true);
                need(8, "variable substitution (EXT-X-DEFINE)", line.no);
                if v >= 11 {
                    need(11, "EXT-X-DEFINE with QUERYPARAM", line.no);
                }
            }
            "EXT-X-STREAM-INF" => {
                expecting_uri = Some(line.no);
                variants.push(Variant { line: line.no, attrs, uri: None });
            }
            "EXT-X-I-FRAME-STREAM-INF" => iframes.push((line.no, attrs)),
            "EXT-X-MEDIA" => {
                if let Some(id) = attrs.quoted("INSTREAM-ID") {
                    if id.starts_with("SERVICE") {
                        need(7, "INSTREAM-ID SERVICE values", line.no);
                    }
                    if attrs.plain("TYPE") != Some("CLOSED-CAPTIONS") {
                        need(13, "INSTREAM-ID on an EXT-X-MEDIA that is not CLOSED-CAPTIONS", line.no);
                    }
                }
                medias.push((line.no, attrs));
            }
            "EXT-X-SESSION-DATA" => {
                let mut t = typed(&mut ctx, line, &attrs, SESSION);
                let id = t.quoted("DATA-ID", true).unwrap_or_default();
                t.enumerated("FORMAT", false, &["JSON", "RAW"]);
                if attrs.has("VALUE") == attrs.has("URI") {
                    ctx.v(line.no, SESSION, "EXT-X-SESSION-DATA needs exactly one of VALUE and URI");
                }
                let lang = attrs.quoted("LANGUAGE").unwrap_or("").to_string();
                if !session_data.insert((id.clone(), lang)) {
                    ctx.v(line.no, SESSION, format!("DATA-ID {id:?} repeated with the same LANGUAGE"));
                }
            }
            "EXT-X-SESSION-KEY" => {
                let mut t = typed(&mut ctx, line, &attrs, SESSION);
                t.enumerated("METHOD", true, &["AES-128", "SAMPLE-AES", "SAMPLE-AES-CTR", "AES-256-GCM"]);
                t.quoted("URI", true);
            }
            "EXT-X-CONTENT-STEERING" => {
                typed(&mut ctx, line, &attrs, SESSION).quoted("SERVER-URI", true);
            }
            n if MEDIA_METADATA_TAGS.contains(&n) => {
                ctx.v(line.no, UNKNOWN_TAG, format!("#{n} does not belong in a Multivariant Playlist"));
            }
            "EXT-X-ALLOW-CACHE" => {}
            _ => ctx.v(line.no, UNKNOWN_TAG, format!("#{name}")),
        }
    }
    if let Some(l) = expecting_uri {
        ctx.v(l, SI_URI, "EXT-X-STREAM-INF at the end of the playlist without a URI line");
    }
    if !any_mv_tag {
        ctx.v(0, MV_HAS_TAG, "no EXT-X-STREAM-INF, EXT-X-MEDIA or other Multivariant Playlist tag");
    }
    version_rules(&mut ctx, &needs, version);
    if let (Some(l), Some((_, v))) = (program_id, version) {
        if v >= 6 {
            ctx.v(l, VERSION_REMOVED, "PROGRAM-ID was removed in protocol version 6");
        }
    }

    // EXT-X-MEDIA and groups.
    let mut groups: BTreeMap<(String, String), Vec<GroupMember>> = BTreeMap::new();
    for (no, a) in &medias {
        let fake = fake_line(*no, "EXT-X-MEDIA");
        let mut t = typed(&mut ctx, &fake, a, MEDIA_ATTRS);
        let typ = t.enumerated("TYPE", true, &["AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS"]);
        let group = t.quoted("GROUP-ID", true);
        let name = t.quoted("NAME", true);
        let mut f = typed(&mut ctx, &fake, a, MEDIA_FLAGS);
        let default = f.enumerated("DEFAULT", false, &["YES", "NO"]);
        let autoselect = f.enumerated("AUTOSELECT", false, &["YES", "NO"]);
        f.enumerated("FORCED", false, &["YES", "NO"]);
        if default.as_deref() == Some("YES") && autoselect.as_deref() == Some("NO") {
            ctx.v(*no, MEDIA_FLAGS, "DEFAULT=YES with AUTOSELECT=NO");
        }
        let typ = typ.unwrap_or_default();
        if a.has("FORCED") && typ != "SUBTITLES" {
            ctx.v(*no, MEDIA_FLAGS, format!("FORCED on TYPE={typ}"));
        }
        for attr in ["CHANNELS", "BIT-DEPTH", "SAMPLE-RATE"] {
            if a.has(attr) && typ != "AUDIO" {
                ctx.v(*no, MEDIA_AUDIO_ONLY, format!("{attr} on TYPE={typ}"));
            }
        }
        let mut u = typed(&mut ctx, &fake, a, MEDIA_URI);
        match typ.as_str() {
            "SUBTITLES" => {
                u.quoted("URI", true);
            }
            "CLOSED-CAPTIONS" if a.has("URI") => {
                ctx.v(*no, MEDIA_URI, "URI on TYPE=CLOSED-CAPTIONS");
            }
            "CLOSED-CAPTIONS" => {}
            _ => {
                u.quoted("URI", false);
            }
        }
        if typ == "CLOSED-CAPTIONS" {
            let id = typed(&mut ctx, &fake, a, MEDIA_INSTREAM).quoted("INSTREAM-ID", true);
            if let Some(id) = id {
                let ok = matches!(id.as_str(), "CC1" | "CC2" | "CC3" | "CC4")
                    || id
                        .strip_prefix("SERVICE")
                        .and_then(parse_decimal_integer)
                        .is_some_and(|n| (1..=63).contains(&n));
                if !ok {
                    ctx.v(*no, MEDIA_INSTREAM, format!("INSTREAM-ID {id:?}"));
                }
            }
        }
        if let (Some(g), Some(n)) = (group, name) {
            groups.entry((typ, g)).or_default().push((*no, n, default.as_deref() == Some("YES")));
        }
    }
    for ((typ, g), members) in &groups {
        let mut names = BTreeSet::new();
        for (no, n, _) in members {
            if !names.insert(n) {
                ctx.v(*no, MEDIA_GROUP, format!("NAME {n:?} repeated in {typ} group {g:?}"));
            }
        }
        let defaults: Vec<usize> = members.iter().filter(|m| m.2).map(|m| m.0).collect();
        if defaults.len() > 1 {
            ctx.v(defaults[1], MEDIA_GROUP, format!("second DEFAULT=YES in {typ} group {g:?}"));
        }
    }
    let has_group = |typ: &str, g: &str| groups.contains_key(&(typ.to_string(), g.to_string()));

    // EXT-X-STREAM-INF
    let cc_none: Vec<bool> = variants.iter().map(|v| v.attrs.plain("CLOSED-CAPTIONS") == Some("NONE")).collect();
    if cc_none.iter().any(|&b| b) && !cc_none.iter().all(|&b| b) {
        let l = variants.iter().zip(&cc_none).find(|(_, b)| !**b).map_or(0, |(v, _)| v.line);
        ctx.v(l, SI_CC_NONE, "CLOSED-CAPTIONS=NONE on some EXT-X-STREAM-INF but not this one");
    }
    let scores = variants.iter().filter(|v| v.attrs.has("SCORE")).count();
    if scores > 0 && scores < variants.len() {
        let l = variants.iter().find(|v| !v.attrs.has("SCORE")).map_or(0, |v| v.line);
        ctx.v(l, SI_ENUMS, "SCORE on some Variant Streams but not this one");
    }
    for v in &variants {
        let fake = fake_line(v.line, "EXT-X-STREAM-INF");
        let a = &v.attrs;
        let bw = typed(&mut ctx, &fake, a, SI_BANDWIDTH).int("BANDWIDTH", true);
        let avg = typed(&mut ctx, &fake, a, SI_AVERAGE).int("AVERAGE-BANDWIDTH", false);
        if let (Some(bw), Some(avg)) = (bw, avg) {
            if avg > bw {
                ctx.v(v.line, SI_AVERAGE, format!("AVERAGE-BANDWIDTH {avg} > BANDWIDTH {bw}"));
            }
        }
        typed(&mut ctx, &fake, a, SI_CODECS).quoted("CODECS", true);
        variant_common(&mut ctx, &fake, a);
        match a.get("FRAME-RATE") {
            None => {}
            Some(Val::Plain(s)) if parse_decimal_float(s).is_some() => {
                let decimals = s.split_once('.').map_or(0, |(_, f)| f.len());
                if decimals > 3 {
                    ctx.v(v.line, SI_FRAME_RATE, format!("FRAME-RATE {s} has {decimals} decimals"));
                }
            }
            Some(other) => ctx.v(v.line, SI_FRAME_RATE, format!("FRAME-RATE {:?}", other.text())),
        }
        for (attr, typ) in [("AUDIO", "AUDIO"), ("VIDEO", "VIDEO"), ("SUBTITLES", "SUBTITLES")] {
            match a.get(attr) {
                None => {}
                Some(Val::Quoted(g)) if !has_group(typ, g) => {
                    ctx.v(v.line, SI_GROUP_REF, format!("{attr}={g:?} names no EXT-X-MEDIA TYPE={typ} group"));
                }
                Some(Val::Quoted(_)) => {}
                Some(Val::Plain(p)) => ctx.v(v.line, SI_GROUP_REF, format!("{attr}={p} is not a quoted-string")),
            }
        }
        match a.get("CLOSED-CAPTIONS") {
            Some(Val::Quoted(g)) if !has_group("CLOSED-CAPTIONS", g) => ctx.v(
                v.line,
                SI_GROUP_REF,
                format!("CLOSED-CAPTIONS={g:?} names no EXT-X-MEDIA TYPE=CLOSED-CAPTIONS group"),
            ),
            Some(Val::Plain(p)) if p != "NONE" => {
                ctx.v(v.line, SI_GROUP_REF, format!("CLOSED-CAPTIONS={p} is neither NONE nor a quoted-string"))
            }
            _ => {}
        }
    }
    for (no, a) in &iframes {
        let fake = fake_line(*no, "EXT-X-I-FRAME-STREAM-INF");
        let mut t = typed(&mut ctx, &fake, a, IFRAME_SI);
        t.int("BANDWIDTH", true);
        t.quoted("URI", true);
        typed(&mut ctx, &fake, a, SI_AVERAGE).int("AVERAGE-BANDWIDTH", false);
        variant_common(&mut ctx, &fake, a);
        if let Some(Val::Quoted(g)) = a.get("VIDEO") {
            if !has_group("VIDEO", g) {
                ctx.v(*no, SI_GROUP_REF, format!("VIDEO={g:?} names no EXT-X-MEDIA TYPE=VIDEO group"));
            }
        }
    }

    m3u8_rs_master(text, &variants, iframes.len(), medias.len(), &mut ctx);
    ctx.out.sort_by_key(|v| v.line);
    ctx.out
}

fn fake_line(no: usize, name: &str) -> Line {
    Line { no, text: String::new(), kind: Kind::Tag, name: name.to_string(), value: None }
}

/// Attributes shared by EXT-X-STREAM-INF and EXT-X-I-FRAME-STREAM-INF.
fn variant_common(ctx: &mut Ctx, line: &Line, a: &Attrs) {
    match a.get("RESOLUTION") {
        None => {}
        Some(Val::Plain(s)) if parse_resolution(s).is_some() => {}
        Some(other) => ctx.v(line.no, SI_RESOLUTION, format!("RESOLUTION {:?}", other.text())),
    }
    let mut t = typed(ctx, line, a, SI_ENUMS);
    t.enumerated("HDCP-LEVEL", false, &["TYPE-0", "TYPE-1", "NONE"]);
    t.enumerated("VIDEO-RANGE", false, &["SDR", "HLG", "PQ"]);
    if let Some(s) = t.float("SCORE", false) {
        if s <= 0.0 {
            ctx.v(line.no, SI_ENUMS, "SCORE must be positive");
        }
    }
}

fn m3u8_rs_master(text: &str, variants: &[Variant], iframes: usize, medias: usize, ctx: &mut Ctx) {
    let parsed = match m3u8_rs::parse_playlist_res(text.as_bytes()) {
        Err(e) => {
            let mut s = format!("{e:?}");
            s.truncate(200);
            ctx.v(0, M3U8_RS, format!("failed: {s}"));
            return;
        }
        Ok(m3u8_rs::Playlist::MediaPlaylist(_)) => {
            ctx.v(0, M3U8_RS, "read it as a Media Playlist");
            return;
        }
        Ok(m3u8_rs::Playlist::MasterPlaylist(p)) => p,
    };
    let streams: Vec<_> = parsed.variants.iter().filter(|v| !v.is_i_frame).collect();
    let parsed_iframes = parsed.variants.len() - streams.len();
    if streams.len() != variants.len() {
        ctx.v(0, M3U8_RS, format!("read {} EXT-X-STREAM-INF, the playlist has {}", streams.len(), variants.len()));
    }
    for (ours, theirs) in variants.iter().zip(&streams) {
        if ours.uri.as_deref() != Some(theirs.uri.as_str()) {
            ctx.v(ours.line, M3U8_RS, format!("read URI {:?}, expected {:?}", theirs.uri, ours.uri));
        }
    }
    if parsed_iframes != iframes {
        ctx.v(0, M3U8_RS, format!("read {parsed_iframes} EXT-X-I-FRAME-STREAM-INF, the playlist has {iframes}"));
    }
    if parsed.alternatives.len() != medias {
        ctx.v(0, M3U8_RS, format!("read {} EXT-X-MEDIA, the playlist has {medias}", parsed.alternatives.len()));
    }
}

// =============================================================================
// check_delta_update
// =============================================================================

/// Checks a Playlist Delta Update (the answer to `_HLS_skip=YES` or `v2`)
/// against the full Playlist served at the same moment (6.2.5.1, 4.4.5.2):
/// the delta must be a conforming Media Playlist in its own right, and equal
/// to `full` with the segments beyond the Skip Boundary replaced by one
/// `EXT-X-SKIP:SKIPPED-SEGMENTS=n`.
///
/// Tolerated differences: the EXT-X-VERSION value (the delta needs >= 9, the
/// full playlist may declare less); the EXT-X-MAP / EXT-X-KEY lines of the
/// skipped segments may be kept next to EXT-X-SKIP; with
/// RECENTLY-REMOVED-DATERANGES (`_HLS_skip=v2`) EXT-X-DATERANGE tags may be
/// dropped.
pub fn check_delta_update(full: &str, delta: &str) -> Vec<Violation> {
    let mut out: Vec<Violation> = check_media_playlist(delta)
        .into_iter()
        .map(|mut v| {
            v.detail = format!("delta: {}", v.detail);
            v
        })
        .collect();
    let mut ctx = Ctx::default();
    let (f, _) = parse_media(full);
    let (d, _) = parse_media(delta);
    let fl = content_lines(&f.lines);
    let dl = content_lines(&d.lines);

    if let Some((l, _, _)) = f.skip {
        ctx.v(l, DELTA_SAME, "the full Playlist itself contains EXT-X-SKIP");
    }
    let boundary = f.server_control_float("CAN-SKIP-UNTIL");
    if f.endlist.is_some() || boundary.is_none() {
        if fl.iter().map(|l| &l.text).ne(dl.iter().map(|l| &l.text)) {
            ctx.v(
                0,
                DELTA_IGNORED,
                "the full Playlist has EXT-X-ENDLIST or no CAN-SKIP-UNTIL, so _HLS_skip must return it unchanged",
            );
        }
        out.extend(ctx.out);
        return out;
    }
    // Which segments are "further from the end of the last Media Segment than
    // the Skip Boundary"? Measured from a segment's end that is the fewest,
    // from its start the most; anything in between is accepted.
    let boundary = boundary.unwrap_or(0.0);
    let durations: Option<Vec<f64>> = f.segments.iter().map(|s| s.duration).collect();
    let range = durations.map(|durations| {
        let end: f64 = durations.iter().sum();
        let (mut start, mut n_min, mut n_max) = (0.0, 0, 0);
        for d in &durations {
            if end - (start + d) > boundary + MS {
                n_min += 1;
            }
            if end - start > boundary - MS {
                n_max += 1;
            }
            start += d;
        }
        (n_min, n_max)
    });
    let Some((skip_line, n, v2)) = d.skip else {
        if range.is_some_and(|(n_min, _)| n_min == 0) {
            // Nothing need lie beyond the Skip Boundary (by the reading that
            // skips the fewest): nothing to replace, and the full Playlist
            // is the answer.
            let same =
                |x: &&Line, y: &&Line| x.text == y.text || (x.is_tag("EXT-X-VERSION") && y.is_tag("EXT-X-VERSION"));
            if fl.len() != dl.len() || !fl.iter().zip(&dl).all(|(x, y)| same(x, y)) {
                ctx.v(
                    0,
                    DELTA_SAME,
                    "no segment is beyond the Skip Boundary, but the answer differs from the full Playlist",
                );
            }
        } else {
            ctx.v(0, DELTA_REQUIRED, "the Delta Update has no EXT-X-SKIP");
        }
        out.extend(ctx.out);
        return out;
    };
    let n_usize = n as usize;
    if n_usize > f.segments.len() {
        ctx.v(
            skip_line,
            DELTA_SKIP_COUNT,
            format!("SKIPPED-SEGMENTS={n} but the full Playlist has {} segments", f.segments.len()),
        );
        out.extend(ctx.out);
        return out;
    }
    if let Some((n_min, n_max)) = range {
        if n_usize < n_min || n_usize > n_max {
            let want = if n_min == n_max { format!("{n_min}") } else { format!("{n_min}..={n_max}") };
            ctx.v(
                skip_line,
                DELTA_SKIP_COUNT,
                format!("SKIPPED-SEGMENTS={n}, the Skip Boundary {boundary} s gives {want}"),
            );
        }
    }

    // Line structure: delta = full[..a] ++ X ++ full[b..].
    let a = f.first_segment_line.and_then(|l| fl.iter().position(|x| x.no >= l)).unwrap_or(fl.len());
    let b = if n_usize == 0 {
        a
    } else {
        let last_uri = f.segments[n_usize - 1].uri_line;
        fl.iter().position(|x| x.no > last_uri).unwrap_or(fl.len())
    };
    let skipped = &fl[a..b];
    let mut optional: Vec<&str> = Vec::new();
    if let Some(m) = skipped.iter().rev().find(|l| l.is_tag("EXT-X-MAP")) {
        optional.push(&m.text);
    }
    let mut key_formats = BTreeSet::new();
    for k in skipped.iter().rev().filter(|l| l.is_tag("EXT-X-KEY")) {
        let format = k
            .value
            .as_deref()
            .and_then(|v| parse_attrs(v).ok())
            .and_then(|(a, _)| a.quoted("KEYFORMAT").map(str::to_string))
            .unwrap_or_else(|| "identity".into());
        if key_formats.insert(format) {
            optional.push(&k.text);
        }
    }
    let required: Vec<&str> = if v2 {
        Vec::new()
    } else {
        skipped.iter().filter(|l| l.is_tag("EXT-X-DATERANGE")).map(|l| l.text.as_str()).collect()
    };
    // The EXT-X-SKIP line itself is placed by the SKIP_POSITION rule; compare
    // everything else.
    let droppable = |l: &Line| (v2 && l.is_tag("EXT-X-DATERANGE")) || l.is_tag("EXT-X-SKIP");
    let fl_kept: Vec<&Line> = fl.iter().copied().filter(|l| !droppable(l)).collect();
    let dl_kept: Vec<&Line> = dl.iter().copied().filter(|l| !droppable(l)).collect();
    let index_of = |i: usize| {
        let no = fl.get(i).map_or(usize::MAX, |x| x.no);
        fl_kept.iter().position(|l| l.no >= no).unwrap_or(fl_kept.len())
    };
    let (a, b) = (index_of(a), index_of(b));
    let suffix = &fl_kept[b..];
    let same = |x: &Line, y: &Line| x.text == y.text || (x.is_tag("EXT-X-VERSION") && y.is_tag("EXT-X-VERSION"));

    if dl_kept.len() < a + suffix.len() {
        ctx.v(
            0,
            DELTA_SAME,
            format!(
                "the Delta Update has {} lines besides EXT-X-SKIP, fewer than the {} kept from the full Playlist",
                dl_kept.len(),
                a + suffix.len()
            ),
        );
        out.extend(ctx.out);
        return out;
    }
    if let Some(i) = (0..a).find(|&i| !same(fl_kept[i], dl_kept[i])) {
        ctx.v(
            dl_kept[i].no,
            DELTA_SAME,
            format!("expected {:?} (full line {}), found {:?}", fl_kept[i].text, fl_kept[i].no, dl_kept[i].text),
        );
    }
    let tail_start = dl_kept.len() - suffix.len();
    if let Some(j) = (0..suffix.len()).find(|&j| !same(suffix[j], dl_kept[tail_start + j])) {
        ctx.v(
            dl_kept[tail_start + j].no,
            DELTA_SAME,
            format!(
                "expected {:?} (full line {}), found {:?}",
                suffix[j].text,
                suffix[j].no,
                dl_kept[tail_start + j].text
            ),
        );
    }
    let middle = &dl_kept[a..tail_start];
    let mut found_required = Vec::new();
    for l in middle {
        if required.contains(&l.text.as_str()) {
            found_required.push(l.text.as_str());
        } else if !optional.contains(&l.text.as_str()) {
            ctx.v(
                l.no,
                DELTA_SAME,
                format!(
                    "{:?} is neither in the full Playlist here nor a tag of the skipped segments that may stay",
                    l.text
                ),
            );
        }
    }
    for r in &required {
        if !found_required.contains(r) {
            ctx.v(
                skip_line,
                DELTA_SAME,
                format!("the skipped segments' {r:?} was not kept (only segments are skipped)"),
            );
        }
    }
    out.extend(ctx.out);
    out
}

fn content_lines(lines: &[Line]) -> Vec<&Line> {
    lines.iter().filter(|l| l.kind == Kind::Tag || l.kind == Kind::Uri).collect()
}

// =============================================================================
// check_playlist_sequence
// =============================================================================

/// Checks successive snapshots of one live Media Playlist, oldest first
/// (6.2.1, 6.2.2): the Media Sequence Number only moves forward, a segment
/// keeps its URI, EXTINF and tags once published and is removed only from the
/// start, Discontinuity Sequence Numbers stay consistent, the parts of a
/// Parent Segment never change and are removed in order, and so on.
///
/// The snapshots should be full playlists; for a Delta Update only the
/// segments it lists are compared. Rules about a single playlist are not
/// repeated here: run [`check_media_playlist`] on each snapshot as well.
pub fn check_playlist_sequence(snapshots: &[&str]) -> Vec<Violation> {
    let mut ctx = Ctx::default();
    let models: Vec<Media> = snapshots.iter().map(|s| parse_media(s).0).collect();
    for k in 1..models.len() {
        let (p, n) = (&models[k - 1], &models[k]);
        let tag = format!("snapshot {} -> {}", k - 1, k);
        sequence_pair(&mut ctx, &tag, p, n, snapshots[k - 1] != snapshots[k]);
    }
    ctx.out
}

fn sequence_pair(ctx: &mut Ctx, tag: &str, p: &Media, n: &Media, changed: bool) {
    let line_of = |o: Option<(usize, u64)>| o.map_or(0, |(l, _)| l);
    let p_type = p.playlist_type.as_ref().map(|(_, t)| t.as_str());
    let n_type = n.playlist_type.as_ref().map(|(_, t)| t.as_str());
    if p_type == Some("VOD") && changed {
        ctx.v(0, SEQ_TYPE, format!("{tag}: an EXT-X-PLAYLIST-TYPE:VOD Playlist changed"));
    }
    if p_type != n_type {
        let line = n.playlist_type.as_ref().map_or(0, |(l, _)| *l);
        ctx.v(line, SEQ_TYPE, format!("{tag}: EXT-X-PLAYLIST-TYPE {p_type:?} -> {n_type:?}"));
    }
    if p.td() != n.td() {
        ctx.v(line_of(n.target), SEQ_TARGET, format!("{tag}: {:?} -> {:?}", p.td(), n.td()));
    }
    let p_ms = p.media_sequence.map_or(0, |(_, v)| v);
    let n_ms = n.media_sequence.map_or(0, |(_, v)| v);
    if n_ms < p_ms {
        ctx.v(line_of(n.media_sequence), SEQ_MSN, format!("{tag}: {p_ms} -> {n_ms}"));
    }
    let p_ds = p.disc_sequence.map_or(0, |(_, v)| v);
    let n_ds = n.disc_sequence.map_or(0, |(_, v)| v);
    if n_ds < p_ds {
        ctx.v(line_of(n.disc_sequence), SEQ_DSN_TAG, format!("{tag}: {p_ds} -> {n_ds}"));
    }

    // Segments removed from the start. Without EXT-X-MEDIA-SEQUENCE both
    // snapshots number from 0, so look at the URIs as well.
    let shifted = n.media_sequence.is_none()
        && n.skip.is_none()
        && n.segments.first().is_some_and(|f| p.segments.iter().skip(1).any(|s| s.uri == f.uri));
    if n_ms > p_ms || shifted {
        if n.media_sequence.is_none() {
            ctx.v(0, SEQ_REMOVE_TAGS, format!("{tag}: segments removed without EXT-X-MEDIA-SEQUENCE"));
        }
        let discontinuities = p.segments.iter().chain(&n.segments).any(|s| s.discontinuity.is_some());
        if discontinuities && n.disc_sequence.is_none() {
            ctx.v(
                0,
                SEQ_REMOVE_TAGS,
                format!("{tag}: segments with EXT-X-DISCONTINUITY removed without EXT-X-DISCONTINUITY-SEQUENCE"),
            );
        }
        if let Some((l, t)) = &n.playlist_type {
            ctx.v(*l, SEQ_LIVE_TYPE, format!("{tag}: segments removed from an EXT-X-PLAYLIST-TYPE:{t} Playlist"));
        }
        if n.endlist.is_none() && n.skip.is_none() {
            let total: Option<f64> = n.segments.iter().map(|s| s.duration).sum();
            if let (Some(total), Some(td)) = (total, n.td()) {
                if total + EPS < 3.0 * td as f64 {
                    ctx.v(0, SEQ_MIN_DURATION, format!("{tag}: {total:.3} s left after removing segments, < 3 x {td}"));
                }
            }
        }
    }

    // Published segments unchanged; nothing disappears from the end.
    let n_by_msn: BTreeMap<u64, &Segment> = n.segments.iter().map(|s| (s.msn, s)).collect();
    let n_first_listed = n.base_msn();
    for ps in &p.segments {
        if ps.msn < n_ms {
            continue; // removed
        }
        let Some(ns) = n_by_msn.get(&ps.msn) else {
            if ps.msn >= n_first_listed {
                ctx.v(0, SEQ_REMOVE_ORDER, format!("{tag}: segment {} ({:?}) disappeared", ps.msn, ps.uri));
            }
            continue;
        };
        if ps.uri != ns.uri || ps.own_tags != ns.own_tags {
            ctx.v(
                ns.uri_line,
                SEQ_SEGMENT,
                format!(
                    "{tag}: segment {} was {:?} {:?}, now {:?} {:?}",
                    ps.msn, ps.own_tags, ps.uri, ns.own_tags, ns.uri
                ),
            );
        }
        if let (Some(a), Some(b)) = (&ps.map, &ns.map) {
            if a != b {
                ctx.v(ns.uri_line, SEQ_SEGMENT, format!("{tag}: segment {} EXT-X-MAP {a:?} -> {b:?}", ps.msn));
            }
        }
        if !ps.keys.is_empty() && !ns.keys.is_empty() && ps.keys != ns.keys {
            ctx.v(ns.uri_line, SEQ_SEGMENT, format!("{tag}: segment {} EXT-X-KEY changed", ps.msn));
        }
        if p.skip.is_none() && n.skip.is_none() && ps.dsn != ns.dsn {
            ctx.v(
                ns.uri_line,
                SEQ_DSN,
                format!("{tag}: segment {} Discontinuity Sequence Number {} -> {}", ps.msn, ps.dsn, ns.dsn),
            );
        }
    }

    // ENDLIST.
    if p.endlist.is_some() {
        if n.endlist.is_none() {
            ctx.v(0, SEQ_ENDLIST, format!("{tag}: EXT-X-ENDLIST removed"));
        }
        let p_last = p.segments.last().map(|s| s.msn);
        if let Some(s) = n.segments.iter().find(|s| !matches!(p_last, Some(l) if s.msn <= l)) {
            ctx.v(s.uri_line, SEQ_ENDLIST, format!("{tag}: segment {} added after EXT-X-ENDLIST", s.msn));
        }
        if let Some(part) = n.trailing.parts.first() {
            ctx.v(part.line, SEQ_ENDLIST, format!("{tag}: EXT-X-PART added after EXT-X-ENDLIST"));
        }
    }

    // Parts.
    let p_parts = p.parts_by_msn();
    let p_complete: BTreeSet<u64> = p.segments.iter().map(|s| s.msn).collect();
    let n_parts = n.parts_by_msn();
    for (msn, (_, nparts)) in &n_parts {
        if nparts.is_empty() {
            continue;
        }
        let was_complete = p_complete.contains(msn);
        let pparts: &[Part] = match p_parts.get(msn) {
            Some((_, ps)) => ps,
            None => &[],
        };
        if pparts.is_empty() {
            if was_complete {
                ctx.v(
                    nparts[0].line,
                    SEQ_PARTS_ADDED,
                    format!("{tag}: segment {msn} was complete without parts, now lists EXT-X-PART tags"),
                );
            }
            continue;
        }
        let Some(i) = pparts.iter().position(|pp| pp.key() == nparts[0].key()) else {
            ctx.v(
                nparts[0].line,
                SEQ_PARTS_ORDER,
                format!("{tag}: segment {msn}'s first listed part {:?} was not among its parts before", nparts[0].uri),
            );
            continue;
        };
        for (j, np) in nparts.iter().enumerate() {
            match pparts.get(i + j) {
                Some(pp) if pp.text == np.text => {}
                Some(pp) => {
                    ctx.v(np.line, SEQ_PARTS, format!("{tag}: segment {msn} part {:?} became {:?}", pp.text, np.text));
                }
                None if was_complete => {
                    ctx.v(
                        np.line,
                        SEQ_PARTS_ADDED,
                        format!("{tag}: part {:?} added to the completed segment {msn}", np.uri),
                    );
                }
                None => {}
            }
        }
        if nparts.len() < pparts.len() - i {
            ctx.v(
                nparts.last().map_or(0, |x| x.line),
                SEQ_PARTS_ORDER,
                format!("{tag}: segment {msn} lost parts from its end ({:?} is gone)", pparts[i + nparts.len()].uri),
            );
        }
    }
    // Parts of an earlier segment may only go once every older part has gone.
    let mut oldest_kept: Option<u64> = None;
    for (msn, (_, parts)) in &n_parts {
        if !parts.is_empty() {
            oldest_kept = Some(*msn);
            break;
        }
    }
    if let Some(oldest) = oldest_kept {
        for (msn, (_, pparts)) in &p_parts {
            if *msn > oldest && !pparts.is_empty() && n_by_msn.contains_key(msn) {
                let still = n_parts.get(msn).is_some_and(|(_, x)| !x.is_empty());
                if !still {
                    ctx.v(
                        0,
                        SEQ_PARTS_ORDER,
                        format!("{tag}: parts of segment {msn} removed while segment {oldest} keeps its parts"),
                    );
                }
            }
        }
    }
}

// =============================================================================
// check_renditions
// =============================================================================

/// Checks the Media Playlists of all the Renditions of one presentation,
/// taken at the same moment (6.2.4, and B.1 for rendition reports). Each
/// entry is (URI of the Media Playlist relative to the Multivariant Playlist,
/// its text). Rules about a single playlist are not repeated here.
pub fn check_renditions(playlists: &[(&str, &str)]) -> Vec<Violation> {
    let mut ctx = Ctx::default();
    let models: Vec<(&str, Media)> = playlists.iter().map(|(n, t)| (*n, parse_media(t).0)).collect();
    // I-frame (and SUBTITLES) VOD playlists may have their own Target Duration.
    let exempt = |m: &Media| m.iframes_only.is_some() && m.playlist_type.as_ref().is_some_and(|(_, t)| t == "VOD");
    let Some((first_name, first)) = models.first() else {
        return ctx.out;
    };
    let sc = |m: &Media| -> Option<BTreeMap<String, String>> {
        m.server_control.as_ref().map(|(_, a)| a.0.iter().map(|(k, v)| (k.clone(), v.text().to_string())).collect())
    };
    let first_sc = sc(first);
    for (name, m) in models.iter().skip(1) {
        if !exempt(m) && !exempt(first) && m.td() != first.td() {
            let line = m.target.map_or(0, |(l, _)| l);
            ctx.v(line, REN_TARGET, format!("{name}: {:?}, {first_name}: {:?}", m.td(), first.td()));
        }
        if sc(m) != first_sc {
            let line = m.server_control.as_ref().map_or(0, |(l, _)| *l);
            ctx.v(line, REN_SERVER_CONTROL, format!("{name}: {:?}, {first_name}: {:?}", sc(m), first_sc));
        }
        if m.has_pdt != first.has_pdt {
            ctx.v(0, REN_PDT, format!("{name}: {}, {first_name}: {}", m.has_pdt, first.has_pdt));
        }
        let (a, b) = (&m.playlist_type, &first.playlist_type);
        if a.as_ref().map(|x| &x.1) != b.as_ref().map(|x| &x.1) {
            ctx.v(0, REN_PLAYLIST_TYPE, format!("{name}: {a:?}, {first_name}: {b:?}"));
        }
    }
    for (name, m) in &models {
        let low_latency = m.all_parts().next().is_some() && m.endlist.is_none();
        if !low_latency {
            continue;
        }
        let reported: BTreeSet<String> =
            m.reports.iter().filter_map(|(_, a)| a.quoted("URI")).map(|uri| resolve(name, uri)).collect();
        for (other, om) in &models {
            if other != name && om.iframes_only.is_none() && !reported.contains(&resolve("", other)) {
                ctx.v(0, REN_REPORTS, format!("{name} has no EXT-X-RENDITION-REPORT for {other}"));
            }
        }
    }
    ctx.out
}

/// Resolves a relative reference against the path of `base` (both relative
/// to the Multivariant Playlist), normalizing "." and "..". An absolute path
/// is returned without its leading '/'.
fn resolve(base: &str, uri: &str) -> String {
    let uri = uri.split(['?', '#']).next().unwrap_or("");
    let mut parts: Vec<&str> = Vec::new();
    let joined;
    let path = if let Some(abs) = uri.strip_prefix('/') {
        abs
    } else {
        let dir = base.rfind('/').map_or("", |i| &base[..=i]);
        joined = format!("{dir}{uri}");
        &joined
    };
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}
