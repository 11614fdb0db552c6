//! Playlist text and object names.
//!
//! Playlists are written by hand, line by line, from integer durations with
//! fixed formatting rules (see [`fmt_ticks`], [`fmt_ms`], [`fmt_pdt`]), so two
//! nodes with the same media write the same bytes.

use std::collections::VecDeque;
use std::fmt::Write as _;

use crate::media::{CodecConfig, StreamDescription, Timescale, Track, TrackKind};

// ---------------------------------------------------------------- names ---

/// LL-HLS master playlist.
pub const LLHLS_MASTER: &str = "llhls.m3u8";
/// Classic HLS master playlist.
pub const HLS_MASTER: &str = "playlist.m3u8";
/// Classic HLS media playlist (audio and video muxed in TS).
pub const HLS_MEDIA: &str = "ts.m3u8";

pub fn media_playlist_name(label: &str) -> String {
    format!("{label}.m3u8")
}
pub fn init_name(label: &str) -> String {
    format!("{label}_init.mp4")
}
/// The init segment of configuration version `version` of a track: version
/// 0 (the stream's first configuration) is `{label}_init.mp4`, version `n`
/// `{label}_v{n}_init.mp4`.
pub fn init_name_version(label: &str, version: u32) -> String {
    if version == 0 {
        init_name(label)
    } else {
        format!("{label}_v{version}_init.mp4")
    }
}
pub fn segment_name(label: &str, msn: u64) -> String {
    format!("{label}_{msn}.m4s")
}
pub fn part_name(label: &str, msn: u64, part: u32) -> String {
    format!("{label}_{msn}.{part}.m4s")
}
pub fn ts_segment_name(msn: u64) -> String {
    format!("ts_{msn}.ts")
}

// ----------------------------------------------------------- formatting ---

/// Seconds with 5 decimals from ticks, rounded half up. No floating point.
pub fn fmt_ticks(ticks: i64, timescale: Timescale) -> String {
    let mut s = String::with_capacity(12);
    push_ticks(&mut s, ticks, timescale);
    s
}

/// [`fmt_ticks`], appended to `s`.
fn push_ticks(s: &mut String, ticks: i64, timescale: Timescale) {
    let ts = i128::from(timescale.get());
    let v = i128::from(ticks.max(0)) * 100_000;
    let q = (2 * v + ts) / (2 * ts);
    // Below 2^63 seconds (ticks is an i64): the fast path covers every
    // realistic duration, the slow one keeps the function total.
    match u64::try_from(q / 100_000) {
        Ok(whole) => push_u64(s, whole),
        Err(_) => {
            let _ = write!(s, "{}", q / 100_000);
        }
    }
    s.push('.');
    push_padded(s, (q % 100_000) as u64, 5);
}

/// Decimal digits of `n`, appended to `s` (what `write!(s, "{n}")` gives,
/// without the formatting machinery: playlists print thousands of numbers).
fn push_u64(s: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &b in &buf[i..] {
        s.push(char::from(b));
    }
}

/// `n` with at least `width` digits, zero-padded (`{n:0width$}`).
fn push_padded(s: &mut String, n: u64, width: usize) {
    let mut buf = [b'0'; 20];
    let mut i = buf.len();
    let mut m = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (m % 10) as u8;
        m /= 10;
        if m == 0 {
            break;
        }
    }
    let start = i.min(buf.len().saturating_sub(width));
    for &b in &buf[start..] {
        s.push(char::from(b));
    }
}

/// Seconds with 3 decimals from milliseconds.
pub fn fmt_ms(ms: u32) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// `YYYY-MM-DDThh:mm:ss.sssZ` from milliseconds since the Unix epoch.
pub fn fmt_pdt(epoch_ms: i64) -> String {
    let mut s = String::with_capacity(24);
    push_pdt(&mut s, epoch_ms);
    s
}

/// [`fmt_pdt`], appended to `s`.
fn push_pdt(s: &mut String, epoch_ms: i64) {
    let days = epoch_ms.div_euclid(86_400_000);
    let ms_of_day = epoch_ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
    let (min, rest) = (rest / 60_000, rest % 60_000);
    let (sec, ms) = (rest / 1000, rest % 1000);
    match u64::try_from(y) {
        Ok(y) => push_padded(s, y, 4),
        // Years before 0: the formatter's sign and padding.
        Err(_) => {
            let _ = write!(s, "{y:04}");
        }
    }
    s.push('-');
    push_padded(s, u64::from(m), 2);
    s.push('-');
    push_padded(s, u64::from(d), 2);
    s.push('T');
    // All of these are non-negative (rem_euclid, then divisions).
    push_padded(s, h as u64, 2);
    s.push(':');
    push_padded(s, min as u64, 2);
    s.push(':');
    push_padded(s, sec as u64, 2);
    s.push('.');
    push_padded(s, ms as u64, 3);
    s.push('Z');
}

/// [`part_name`], appended to `s`.
fn push_part_name(s: &mut String, label: &str, msn: u64, part: u32) {
    s.push_str(label);
    s.push('_');
    push_u64(s, msn);
    s.push('.');
    push_u64(s, u64::from(part));
    s.push_str(".m4s");
}

/// Proleptic Gregorian date from days since 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

// ------------------------------------------------------------- model ---

/// A position in a stream: part `part` of segment `msn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Point {
    pub msn: u64,
    pub part: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartEntry {
    pub duration: i64,
    pub independent: bool,
    /// No media for this part in this rendition (EXT-X-PART GAP=YES).
    pub gap: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentEntry {
    pub msn: u64,
    /// Timeline position of the first sample, rendition ticks.
    pub start: i64,
    /// Sum of the parts so far (the EXTINF once complete).
    pub duration: i64,
    pub discontinuity: bool,
    pub parts: Vec<PartEntry>,
    pub complete: bool,
    /// Discontinuity sequence number of this segment.
    pub discontinuity_sequence: u64,
    /// Configuration version of the segment's track (its EXT-X-MAP is
    /// [`init_name_version`]); 0 in classic HLS.
    pub init_version: u32,
    /// Timescale of `start`, `duration` and the parts' durations.
    pub timescale: Timescale,
}

/// The history of one rendition's segments, enough to render its playlist as
/// of any recent point.
#[derive(Clone, Debug)]
pub struct History {
    pub entries: VecDeque<SegmentEntry>,
}

impl History {
    pub fn new() -> History {
        History { entries: VecDeque::new() }
    }

    /// The newest point (last part published).
    pub fn last_point(&self) -> Option<Point> {
        let e = self.entries.back()?;
        let n = e.parts.len().checked_sub(1)?;
        Some(Point { msn: e.msn, part: n as u32 })
    }

    fn find(&self, msn: u64) -> Option<usize> {
        let first = self.entries.front()?.msn;
        let i = msn.checked_sub(first)? as usize;
        (self.entries.get(i)?.msn == msn).then_some(i)
    }

    /// Whether the point is published.
    pub fn contains(&self, p: Point) -> bool {
        self.find(p.msn).is_some_and(|i| (p.part as usize) < self.entries[i].parts.len())
    }
}

impl Default for History {
    fn default() -> Self {
        History::new()
    }
}

/// Static parameters of an LL-HLS media playlist.
#[derive(Clone, Debug)]
pub struct LlHlsParams {
    pub target_duration_s: u32,
    pub part_target_ms: u32,
    pub part_hold_back_ms: u32,
    pub segment_count: u32,
    /// CAN-SKIP-UNTIL, when delta updates are offered.
    pub can_skip_until_ms: Option<u32>,
}

/// A part of a complete segment is listed while it ends less than this many
/// target durations before the end of the playlist (HLS 6.2.2 asks servers to
/// remove EXT-X-PART tags older than three target durations).
pub const PART_RETENTION_TARGET_DURATIONS: u32 = 3;

/// The segments shown in a playlist as of `at`: (complete segments in the
/// window, the segment in progress with its parts up to `at`).
struct Window<'a> {
    complete: Vec<&'a SegmentEntry>,
    /// The segment in progress and how many of its parts are shown.
    partial: Option<(&'a SegmentEntry, usize)>,
}

fn window_as_of(h: &History, at: Point, segment_count: u32) -> Option<Window<'_>> {
    let i = h.find(at.msn)?;
    let cur = &h.entries[i];
    let nparts = at.part as usize + 1;
    if nparts > cur.parts.len() {
        return None;
    }
    let cur_complete = cur.complete && nparts == cur.parts.len();
    let last_complete = if cur_complete { i + 1 } else { i };
    let first = last_complete.saturating_sub(segment_count as usize);
    let complete: Vec<&SegmentEntry> = h.entries.range(first..last_complete).collect();
    let partial = (!cur_complete).then_some((cur, nparts));
    Some(Window { complete, partial })
}

/// The next part after `at` (for EXT-X-PRELOAD-HINT).
fn next_point(h: &History, at: Point) -> Point {
    let complete =
        h.find(at.msn).is_some_and(|i| h.entries[i].complete && at.part as usize + 1 == h.entries[i].parts.len());
    if complete {
        Point { msn: at.msn + 1, part: 0 }
    } else {
        Point { msn: at.msn, part: at.part + 1 }
    }
}

/// What an LL-HLS media playlist is rendered from.
#[derive(Clone, Copy)]
pub struct LlHlsView<'a> {
    pub track: &'a Track,
    pub history: &'a History,
    pub params: &'a LlHlsParams,
    pub pdt_base_ms: i64,
    /// Labels of the other renditions (EXT-X-RENDITION-REPORT).
    pub reports: &'a [&'a str],
}

/// Render an LL-HLS media playlist for `track` as of point `at`.
///
/// `reports` are the other renditions (label) for EXT-X-RENDITION-REPORT; all
/// renditions share segment and part boundaries, so each is reported at `at`.
/// `skip` renders the delta update (EXT-X-SKIP). `ended` appends
/// EXT-X-ENDLIST (only meaningful at the last point).
pub fn render_llhls_media(v: &LlHlsView<'_>, at: Point, skip: bool, ended: bool) -> Option<String> {
    let LlHlsView { track, history: h, params: p, pdt_base_ms, reports } = *v;
    let Window { complete, partial } = window_as_of(h, at, p.segment_count)?;
    let label = track.label();
    // Durations are summed in the track's current timescale for the window
    // rules (each entry keeps its own for printing).
    let ts = track.timescale;
    let in_ts = |e: &SegmentEntry, d: i64| e.timescale.convert_floor(d, ts);
    let first = complete.first().copied().or(partial.map(|(e, _)| e))?;

    // Parts shown: all of the segment in progress, and each part of a
    // complete segment that ends less than PART_RETENTION_TARGET_DURATIONS
    // before the end of the playlist. `first_part[k]` is the first part of
    // complete segment k still listed (== parts.len() for none).
    let retention = i64::from(PART_RETENTION_TARGET_DURATIONS * p.target_duration_s) * i64::from(ts.get());
    let partial_len: i64 = partial.map_or(0, |(e, n)| e.parts[..n].iter().map(|x| in_ts(e, x.duration)).sum());
    let mut first_part: Vec<usize> = complete.iter().map(|e| e.parts.len()).collect();
    let mut age = partial_len; // distance from the end of the playlist to the end of the current part
    'segments: for (k, e) in complete.iter().enumerate().rev() {
        for (j, part) in e.parts.iter().enumerate().rev() {
            if age >= retention {
                break 'segments;
            }
            first_part[k] = j;
            age += in_ts(e, part.duration);
        }
    }

    // Delta update: skip leading segments while what remains still covers
    // CAN-SKIP-UNTIL.
    let mut skipped = 0usize;
    if skip {
        if let Some(until_ms) = p.can_skip_until_ms {
            let until = Timescale::MILLIS.convert_ceil(i64::from(until_ms), ts);
            let mut remaining: i64 = complete.iter().map(|e| in_ts(e, e.duration)).sum::<i64>() + partial_len;
            for e in &complete {
                if remaining - in_ts(e, e.duration) < until {
                    break;
                }
                remaining -= in_ts(e, e.duration);
                skipped += 1;
            }
        }
    }

    let mut s = String::with_capacity(2048);
    s.push_str("#EXTM3U\n");
    let _ = writeln!(s, "#EXT-X-VERSION:{}", if p.can_skip_until_ms.is_some() { 9 } else { 6 });
    let _ = writeln!(s, "#EXT-X-TARGETDURATION:{}", p.target_duration_s);
    let _ = writeln!(s, "#EXT-X-PART-INF:PART-TARGET={}", fmt_ms(p.part_target_ms));
    let mut control = String::from("CAN-BLOCK-RELOAD=YES");
    if let Some(u) = p.can_skip_until_ms {
        let _ = write!(control, ",CAN-SKIP-UNTIL={}", fmt_ms(u));
    }
    let _ = write!(
        control,
        ",PART-HOLD-BACK={},HOLD-BACK={}",
        fmt_ms(p.part_hold_back_ms),
        fmt_ms(3 * 1000 * p.target_duration_s)
    );
    let _ = writeln!(s, "#EXT-X-SERVER-CONTROL:{control}");
    let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", first.msn);
    let _ = writeln!(s, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", first.discontinuity_sequence);
    if skipped > 0 {
        let _ = writeln!(s, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
    }

    // EXT-X-MAP before the first segment shown and wherever the
    // configuration version changes.
    let mut map: Option<u32> = None;
    let mut write_head = |s: &mut String, e: &SegmentEntry, first_shown: bool| {
        if e.discontinuity && !first_shown {
            s.push_str("#EXT-X-DISCONTINUITY\n");
        }
        if map != Some(e.init_version) {
            let _ = writeln!(s, "#EXT-X-MAP:URI=\"{}\"", init_name_version(&label, e.init_version));
            map = Some(e.init_version);
        }
        let pdt = pdt_base_ms + e.timescale.convert_floor(e.start, Timescale::MILLIS);
        s.push_str("#EXT-X-PROGRAM-DATE-TIME:");
        push_pdt(s, pdt);
        s.push('\n');
    };
    let write_parts = |s: &mut String, e: &SegmentEntry, from: usize, n: usize| {
        for (k, part) in e.parts.iter().enumerate().take(n).skip(from) {
            s.push_str("#EXT-X-PART:DURATION=");
            push_ticks(s, part.duration, e.timescale);
            s.push_str(",URI=\"");
            push_part_name(s, &label, e.msn, k as u32);
            s.push('"');
            if part.independent {
                s.push_str(",INDEPENDENT=YES");
            }
            if part.gap {
                s.push_str(",GAP=YES");
            }
            s.push('\n');
        }
    };

    for (k, e) in complete.iter().enumerate().skip(skipped) {
        write_head(&mut s, e, k == 0);
        write_parts(&mut s, e, first_part[k], e.parts.len());
        s.push_str("#EXTINF:");
        push_ticks(&mut s, e.duration, e.timescale);
        s.push_str(",\n");
        if e.parts.iter().all(|x| x.gap) {
            s.push_str("#EXT-X-GAP\n");
        }
        // segment_name: `{label}_{msn}.m4s`.
        s.push_str(&label);
        s.push('_');
        push_u64(&mut s, e.msn);
        s.push_str(".m4s\n");
    }
    if let Some((e, n)) = partial {
        write_head(&mut s, e, complete.is_empty());
        write_parts(&mut s, e, 0, n);
    }
    if ended {
        s.push_str("#EXT-X-ENDLIST\n");
    } else {
        let next = next_point(h, at);
        let _ = writeln!(s, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"", part_name(&label, next.msn, next.part));
    }
    // An ended playlist has nothing more to report.
    for other in reports.iter().filter(|_| !ended) {
        let _ = writeln!(
            s,
            "#EXT-X-RENDITION-REPORT:URI=\"{}\",LAST-MSN={},LAST-PART={}",
            media_playlist_name(other),
            at.msn,
            at.part
        );
    }
    Some(s)
}

/// Render the classic HLS media playlist: the last `segment_count` complete
/// segments of `h`.
pub fn render_hls_media(
    h: &History,
    target_duration_s: u32,
    segment_count: u32,
    pdt_base_ms: i64,
    ended: bool,
) -> Option<String> {
    let done: Vec<&SegmentEntry> = h.entries.iter().filter(|e| e.complete).collect();
    let first_idx = done.len().saturating_sub(segment_count as usize);
    let shown = &done[first_idx..];
    let first = shown.first()?;
    let mut s = String::with_capacity(1024);
    s.push_str("#EXTM3U\n#EXT-X-VERSION:3\n");
    let _ = writeln!(s, "#EXT-X-TARGETDURATION:{target_duration_s}");
    let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", first.msn);
    let _ = writeln!(s, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", first.discontinuity_sequence);
    for (k, e) in shown.iter().enumerate() {
        if e.discontinuity && k > 0 {
            s.push_str("#EXT-X-DISCONTINUITY\n");
        }
        let pdt = pdt_base_ms + e.timescale.convert_floor(e.start, Timescale::MILLIS);
        s.push_str("#EXT-X-PROGRAM-DATE-TIME:");
        push_pdt(&mut s, pdt);
        s.push_str("\n#EXTINF:");
        push_ticks(&mut s, e.duration, e.timescale);
        // ts_segment_name: `ts_{msn}.ts`.
        s.push_str(",\nts_");
        push_u64(&mut s, e.msn);
        s.push_str(".ts\n");
    }
    if ended {
        s.push_str("#EXT-X-ENDLIST\n");
    }
    Some(s)
}

// ------------------------------------------------------------ masters ---

/// Nominal bandwidth of a track in bits/s: the announced bitrate, or a fixed
/// estimate from the codec configuration (0.1 bit per pixel at the SPS
/// frame rate, 30 fps if it has none; 128 kbit/s for audio).
pub fn track_bandwidth(t: &Track) -> u64 {
    if let Some(b) = t.bitrate_hint {
        return u64::from(b);
    }
    match &t.codec {
        CodecConfig::H264(c) => {
            let (num, den) = c.info.frame_rate.unwrap_or((30, 1));
            let px = u64::from(c.info.width) * u64::from(c.info.height);
            (px * u64::from(num) / u64::from(den.max(1)) / 10).max(100_000)
        }
        CodecConfig::Aac(_) => 128_000,
    }
}

/// FRAME-RATE with 3 decimals, from the SPS timing info.
fn fmt_frame_rate(num: u32, den: u32) -> String {
    let milli = (u64::from(num) * 2000 + u64::from(den)) / (2 * u64::from(den.max(1)));
    format!("{}.{:03}", milli / 1000, milli % 1000)
}

fn stream_inf(desc: &StreamDescription, audio_group: Option<&str>) -> String {
    let bandwidth: u64 = desc.tracks.iter().map(track_bandwidth).sum();
    let codecs: Vec<String> = desc
        .tracks
        .iter()
        .map(|t| match &t.codec {
            CodecConfig::H264(c) => c.codec_string(),
            CodecConfig::Aac(c) => c.codec_string(),
        })
        .collect();
    let mut s = format!("#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},CODECS=\"{}\"", codecs.join(","));
    if let Some(CodecConfig::H264(c)) = desc.tracks.iter().map(|t| &t.codec).find(|c| matches!(c, CodecConfig::H264(_)))
    {
        let _ = write!(s, ",RESOLUTION={}x{}", c.info.width, c.info.height);
        if let Some((num, den)) = c.info.frame_rate {
            let _ = write!(s, ",FRAME-RATE={}", fmt_frame_rate(num, den));
        }
    }
    if let Some(g) = audio_group {
        let _ = write!(s, ",AUDIO=\"{g}\"");
    }
    s
}

/// The LL-HLS master playlist: a video variant with an audio rendition
/// group, or a single audio-only / video-only variant.
pub fn render_llhls_master(desc: &StreamDescription) -> String {
    let video = desc.tracks.iter().find(|t| t.kind() == TrackKind::Video);
    let audio = desc.tracks.iter().find(|t| t.kind() == TrackKind::Audio);
    let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:6\n");
    match (video, audio) {
        (Some(v), Some(a)) => {
            let channels = match &a.codec {
                CodecConfig::Aac(c) => c.channels,
                CodecConfig::H264(_) => 0,
            };
            let _ = writeln!(
                s,
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"{}\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"{channels}\",URI=\"{}\"",
                a.label(),
                media_playlist_name(&a.label())
            );
            let _ = writeln!(s, "{}", stream_inf(desc, Some("audio")));
            let _ = writeln!(s, "{}", media_playlist_name(&v.label()));
        }
        (Some(t), None) | (None, Some(t)) => {
            let _ = writeln!(s, "{}", stream_inf(desc, None));
            let _ = writeln!(s, "{}", media_playlist_name(&t.label()));
        }
        (None, None) => {}
    }
    s
}

/// The classic HLS master playlist: one variant, the muxed TS playlist.
pub fn render_hls_master(desc: &StreamDescription) -> String {
    format!("#EXTM3U\n#EXT-X-VERSION:3\n{}\n{HLS_MEDIA}\n", stream_inf(desc, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_format_rounds_half_up_without_floats() {
        let ts90 = Timescale::MPEG;
        let cases: &[(i64, Timescale, &str)] = &[
            (180_180, ts90, "2.00200"),
            (90_000, ts90, "1.00000"),
            (1, ts90, "0.00001"),
            (0, ts90, "0.00000"),
            (1024, Timescale::new(48_000).unwrap_or(ts90), "0.02133"),
            (45_045, ts90, "0.50050"),
        ];
        for (t, s, want) in cases {
            assert_eq!(fmt_ticks(*t, *s), *want, "{t} @ {s}");
        }
    }

    #[test]
    fn pdt_format() {
        let cases: &[(i64, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z"),
            (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_795_240_550_999, "2026-11-21T05:55:50.999Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
        ];
        for (ms, want) in cases {
            assert_eq!(fmt_pdt(*ms), *want);
        }
    }

    /// The hand-written number formatting prints what `format!` prints.
    #[test]
    fn digits_match_the_formatter() {
        let mut values: Vec<u64> = (0..2000).collect();
        let mut x = 1u64;
        while let Some(y) = x.checked_mul(7) {
            values.extend([y - 1, y, y + 1]);
            x = y;
        }
        values.push(u64::MAX);
        for n in values {
            let mut s = String::new();
            push_u64(&mut s, n);
            assert_eq!(s, n.to_string());
            for width in [2, 3, 4, 5] {
                let mut s = String::new();
                push_padded(&mut s, n, width);
                assert_eq!(s, format!("{n:0width$}"));
            }
        }
        let reference_ticks = |ticks: i64, timescale: Timescale| {
            let ts = i128::from(timescale.get());
            let q = (2 * i128::from(ticks.max(0)) * 100_000 + ts) / (2 * ts);
            format!("{}.{:05}", q / 100_000, q % 100_000)
        };
        let reference_pdt = |epoch_ms: i64| {
            let (y, m, d) = civil_from_days(epoch_ms.div_euclid(86_400_000));
            let ms_of_day = epoch_ms.rem_euclid(86_400_000);
            let (h, rest) = (ms_of_day / 3_600_000, ms_of_day % 3_600_000);
            let (min, rest) = (rest / 60_000, rest % 60_000);
            format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{:02}.{:03}Z", rest / 1000, rest % 1000)
        };
        let scales = [Timescale::MPEG, Timescale::MILLIS, Timescale::new(48_000).unwrap_or(Timescale::MPEG)];
        for t in [i64::MIN, -1, 0, 1, 44_999, 45_000, 180_180, 1 << 40, i64::MAX] {
            for ts in scales {
                assert_eq!(fmt_ticks(t, ts), reference_ticks(t, ts), "{t} @ {ts}");
            }
        }
        for ms in [i64::MIN / 2, -62_135_596_800_001, -1, 0, 1_795_240_550_999, 253_402_300_800_000, i64::MAX / 2] {
            assert_eq!(fmt_pdt(ms), reference_pdt(ms), "{ms}");
        }
    }

    #[test]
    fn frame_rate_format() {
        assert_eq!(fmt_frame_rate(60_000, 2002), "29.970");
        assert_eq!(fmt_frame_rate(60, 2), "30.000");
        assert_eq!(fmt_frame_rate(50, 2), "25.000");
    }
}
