//! Self-test of the HLS checker in `support/hls_check.rs`: for every rule, a
//! small hand-written playlist that passes and one that breaks it.

#[path = "support/hls_check.rs"]
mod hls_check;

use hls_check::rules::*;
use hls_check::{
    assert_conforms, check_delta_update, check_master_playlist, check_media_playlist, check_playlist_sequence,
    check_renditions, render, Violation,
};
use std::fmt::Write as _;

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

fn has(v: &[Violation], rule: &str) -> bool {
    v.iter().any(|x| x.rule == rule)
}

#[track_caller]
fn fires(v: &[Violation], rule: &str) {
    assert!(has(v, rule), "expected [{rule}], got:\n{}", render(v));
}

#[track_caller]
fn silent(v: &[Violation], rule: &str) {
    assert!(!has(v, rule), "did not expect [{rule}]:\n{}", render(v));
}

#[track_caller]
fn clean(v: &[Violation]) {
    assert_conforms("fixture", v);
}

/// Replaces the one occurrence of `from`, which must be there.
#[track_caller]
fn edit(base: &str, from: &str, to: &str) -> String {
    assert!(base.contains(from), "fixture lacks {from:?}:\n{base}");
    base.replacen(from, to, 1)
}

fn media(text: &str) -> Vec<Violation> {
    check_media_playlist(text)
}

fn master(text: &str) -> Vec<Violation> {
    check_master_playlist(text)
}

/// 2024-05-01T12:00:00.000Z plus `secs`.
fn pdt(secs: u64) -> String {
    let (h, m, s) = (12 + secs / 3600, secs / 60 % 60, secs % 60);
    format!("2024-05-01T{h:02}:{m:02}:{s:02}.000Z")
}

/// A live LL-HLS (fMP4) Media Playlist: Target Duration 4, PART-TARGET 1,
/// segments `first..first+count` of 4 s with four 1 s parts on the last
/// `parts_on` of them, `trailing` parts of the Parent Segment in progress,
/// a preload hint and a rendition report. `skip > 0` makes it the Delta
/// Update that skips that many segments.
#[derive(Clone, Copy)]
struct Ll {
    first: u64,
    count: u64,
    trailing: u64,
    skip: u64,
    version: u32,
    parts_on: u64,
}

impl Ll {
    fn new(first: u64, count: u64, trailing: u64) -> Self {
        Ll { first, count, trailing, skip: 0, version: 6, parts_on: 2 }
    }

    fn skip(self, skip: u64) -> Self {
        Ll { skip, version: 9, ..self }
    }

    fn part(msn: u64, k: u64) -> String {
        let independent = if k == 0 { ",INDEPENDENT=YES" } else { "" };
        format!("#EXT-X-PART:DURATION=1.00000,URI=\"part{msn}.{k}.m4s\"{independent}\n")
    }

    fn text(&self) -> String {
        let mut s = String::new();
        s += "#EXTM3U\n";
        writeln!(s, "#EXT-X-VERSION:{}", self.version).unwrap();
        s += "#EXT-X-TARGETDURATION:4\n";
        s += "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=24.0,HOLD-BACK=12.0,PART-HOLD-BACK=3.0\n";
        s += "#EXT-X-PART-INF:PART-TARGET=1.0\n";
        writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", self.first).unwrap();
        s += "#EXT-X-MAP:URI=\"init.mp4\"\n";
        if self.skip > 0 {
            writeln!(s, "#EXT-X-SKIP:SKIPPED-SEGMENTS={}", self.skip).unwrap();
        }
        for msn in self.first + self.skip..self.first + self.count {
            writeln!(s, "#EXT-X-PROGRAM-DATE-TIME:{}", pdt((msn - 100) * 4)).unwrap();
            if msn - self.first >= self.count - self.parts_on {
                for k in 0..4 {
                    s += &Self::part(msn, k);
                }
            }
            s += "#EXTINF:4.00000,\n";
            writeln!(s, "seg{msn}.m4s").unwrap();
        }
        let t = self.first + self.count;
        if self.trailing > 0 {
            writeln!(s, "#EXT-X-PROGRAM-DATE-TIME:{}", pdt((t - 100) * 4)).unwrap();
            for k in 0..self.trailing {
                s += &Self::part(t, k);
            }
        }
        writeln!(s, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part{t}.{}.m4s\"", self.trailing).unwrap();
        let (msn, part) = if self.trailing > 0 { (t, self.trailing - 1) } else { (t - 1, 3) };
        writeln!(s, "#EXT-X-RENDITION-REPORT:URI=\"../audio/index.m3u8\",LAST-MSN={msn},LAST-PART={part}").unwrap();
        s
    }
}

/// The standard LL fixture: segments 100..=109, parts on 108 and 109, two
/// parts of 110 in progress.
fn ll() -> String {
    Ll::new(100, 10, 2).text()
}

/// `ll()` with the parts and EXTINF of segment 109 replaced: each entry is
/// the attribute-list of one part without its URI.
fn ll_109(parts: &[&str], extinf: &str) -> String {
    let base = ll();
    let from = base.find("#EXT-X-PART:DURATION=1.00000,URI=\"part109.0.m4s\"").unwrap();
    let to = base.find("seg109.m4s\n").unwrap();
    let mut mid = String::new();
    for (k, p) in parts.iter().enumerate() {
        writeln!(mid, "#EXT-X-PART:{p},URI=\"part109.{k}.m4s\"").unwrap();
    }
    writeln!(mid, "#EXTINF:{extinf},").unwrap();
    format!("{}{}{}", &base[..from], mid, &base[to..])
}

/// A classic HLS (MPEG-TS) live playlist with a discontinuity and
/// EXT-X-PROGRAM-DATE-TIME on some segments.
const TS: &str = "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:7
#EXT-X-DISCONTINUITY-SEQUENCE:2
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z
#EXTINF:6.00000,
seg7.ts
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:06.000Z
#EXTINF:5.50000,
seg8.ts
#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T13:00:00.000+00:00
#EXTINF:6.00000,
seg9.ts
#EXTINF:6.00000,
seg10.ts
#EXT-X-PROGRAM-DATE-TIME:2024-05-01T13:00:12.000Z
#EXTINF:6.00000,
seg11.ts
";

const MASTER: &str = r#"#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=2500000,AVERAGE-BANDWIDTH=2000000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO="aud"
video/720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS="avc1.4d401e,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=29.970,AUDIO="aud"
video/360p/index.m3u8
"#;

// ---------------------------------------------------------------------------
// the fixtures conform
// ---------------------------------------------------------------------------

#[test]
fn fixtures_conform() {
    clean(&media(&ll()));
    clean(&media(TS));
    clean(&master(MASTER));
    for t in 0..=4 {
        clean(&media(&Ll::new(100, 10, t).text()));
    }
    clean(&media(&Ll::new(100, 10, 2).skip(4).text()));
}

#[test]
fn spec_example_9_11_low_latency_playlist_conforms() {
    // Section 9.11, with the elided header filled in.
    let text = r#"#EXTM3U
#EXT-X-VERSION:6
#EXT-X-TARGETDURATION:4
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=6.00012
#EXT-X-PART-INF:PART-TARGET=2.00004
#EXT-X-MEDIA-SEQUENCE:266
#EXT-X-PROGRAM-DATE-TIME:2019-02-14T02:13:28.106Z
#EXT-X-MAP:URI="init.mp4"
#EXTINF:4.00008,
fileSequence266.mp4
#EXTINF:4.00008,
fileSequence267.mp4
#EXTINF:4.00008,
fileSequence268.mp4
#EXTINF:4.00008,
fileSequence269.mp4
#EXTINF:4.00008,
fileSequence270.mp4
#EXT-X-PART:DURATION=2.00004,INDEPENDENT=YES,URI="filePart271.0.mp4"
#EXT-X-PART:DURATION=2.00004,URI="filePart271.1.mp4"
#EXTINF:4.00008,
fileSequence271.mp4
#EXT-X-PART:DURATION=2.00004,INDEPENDENT=YES,URI="filePart272.0.mp4"
#EXT-X-PART:DURATION=0.50001,URI="filePart272.1.mp4"
#EXTINF:2.50005,
fileSequence272.mp4
#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:2019-02-14T02:14:00.106Z
#EXT-X-PART:DURATION=2.00004,INDEPENDENT=YES,URI="midRoll273.0.mp4"
#EXT-X-PART:DURATION=2.00004,URI="midRoll273.1.mp4"
#EXTINF:4.00008,
midRoll273.mp4
#EXT-X-PART:DURATION=2.00004,INDEPENDENT=YES,URI="midRoll274.0.mp4"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="midRoll274.1.mp4"
#EXT-X-RENDITION-REPORT:URI="/1M/LL-HLS.m3u8",LAST-MSN=274,LAST-PART=1
"#;
    clean(&media(text));
}

// ---------------------------------------------------------------------------
// 4.1, 4.2: lines and attribute lists
// ---------------------------------------------------------------------------

#[test]
fn extm3u_first_line() {
    silent(&media(&ll()), EXTM3U);
    fires(&media(&ll().replacen("#EXTM3U\n", "", 1)), EXTM3U);
    fires(&media(&format!("\n{}", ll())), EXTM3U);
    fires(&master(&MASTER.replacen("#EXTM3U\n", "", 1)), EXTM3U);
}

#[test]
fn byte_order_mark() {
    silent(&media(TS), BOM);
    fires(&media(&format!("\u{feff}{TS}")), BOM);
}

#[test]
fn control_characters_and_line_ends() {
    clean(&media(&TS.replace('\n', "\r\n")));
    fires(&media(&edit(TS, "seg8.ts", "seg\u{7}8.ts")), CONTROL_CHARS);
    fires(&media(&edit(TS, "seg8.ts\n", "seg8.ts\r\r\n")), CONTROL_CHARS);
}

#[test]
fn whitespace() {
    silent(&media(&edit(TS, "#EXTINF:5.50000,", "#EXTINF:5.50000,a title ")), WHITESPACE);
    fires(&media(&edit(TS, "seg8.ts\n", "seg8.ts \n")), WHITESPACE);
    fires(&media(&edit(TS, "#EXT-X-TARGETDURATION", " #EXT-X-TARGETDURATION")), WHITESPACE);
}

#[test]
fn attribute_list_syntax() {
    let base = ll();
    silent(&media(&base), ATTR_LIST);
    let part = "#EXT-X-PART:DURATION=1.00000,URI=\"part110.1.m4s\"";
    for bad in [
        "#EXT-X-PART:DURATION=1.00000,,URI=\"part110.1.m4s\"",
        "#EXT-X-PART:duration=1.00000,URI=\"part110.1.m4s\"",
        "#EXT-X-PART:DURATION=1.00000,URI=\"part110.1.m4s",
        "#EXT-X-PART:DURATION=1.00000, URI=\"part110.1.m4s\"",
        "#EXT-X-PART:DURATION=1.00000,URI=\"part110.1.m4s\",",
        "#EXT-X-PART:DURATION,URI=\"part110.1.m4s\"",
    ] {
        fires(&media(&edit(&base, part, bad)), ATTR_LIST);
    }
}

#[test]
fn attribute_names_unique() {
    silent(&media(&ll()), ATTR_DUP);
    let v = media(&edit(
        &ll(),
        "#EXT-X-PART:DURATION=1.00000,URI=\"part110.1.m4s\"",
        "#EXT-X-PART:DURATION=1.00000,DURATION=1.00000,URI=\"part110.1.m4s\"",
    ));
    fires(&v, ATTR_DUP);
}

#[test]
fn tags_without_values() {
    silent(&media(TS), TAG_SYNTAX);
    fires(&media(&format!("{TS}#EXT-X-ENDLIST:YES\n")), TAG_SYNTAX);
    fires(&media(&edit(TS, "#EXT-X-DISCONTINUITY\n", "#EXT-X-DISCONTINUITY:1\n")), TAG_SYNTAX);
}

#[test]
fn unrecognized_tags() {
    silent(&media(&ll()), UNKNOWN_TAG);
    let v = media(&edit(&ll(), "#EXT-X-PART-INF:", "#EXT-X-PART-INFO:"));
    fires(&v, UNKNOWN_TAG);
    fires(&v, PART_INF);
    // Comments are not tags.
    silent(&media(&edit(TS, "seg8.ts\n", "seg8.ts\n# a comment\n")), UNKNOWN_TAG);
    fires(&master(&format!("{MASTER}#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"x\"\n")), UNKNOWN_TAG);
}

// ---------------------------------------------------------------------------
// 4.4.1.2, 8: versions
// ---------------------------------------------------------------------------

#[test]
fn version_at_most_once() {
    silent(&media(TS), VERSION_ONCE);
    fires(&media(&edit(TS, "#EXT-X-VERSION:3\n", "#EXT-X-VERSION:3\n#EXT-X-VERSION:3\n")), VERSION_ONCE);
    fires(&media(&edit(TS, "#EXT-X-VERSION:3", "#EXT-X-VERSION:three")), VERSION_FORMAT);
}

#[test]
fn version_present_even_when_1_would_do() {
    let v1 = "#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\na.ts\n";
    let v = media(v1);
    fires(&v, VERSION_PRESENT);
    silent(&v, VERSION_COMPAT);
    clean(&media(&v1.replace("#EXTM3U\n", "#EXTM3U\n#EXT-X-VERSION:1\n")));
}

#[test]
fn version_compatible_with_features() {
    // Floating-point EXTINF needs 3.
    fires(&media(&edit(TS, "#EXT-X-VERSION:3", "#EXT-X-VERSION:2")), VERSION_COMPAT);
    fires(&media(&TS.replace("#EXT-X-VERSION:3\n", "")), VERSION_COMPAT);
    // EXT-X-MAP without EXT-X-I-FRAMES-ONLY needs 6.
    silent(&media(&ll()), VERSION_COMPAT);
    fires(&media(&edit(&ll(), "#EXT-X-VERSION:6", "#EXT-X-VERSION:5")), VERSION_COMPAT);
    // EXT-X-SKIP needs 9.
    let delta = Ll { version: 8, ..Ll::new(100, 10, 2).skip(4) };
    fires(&media(&delta.text()), VERSION_COMPAT);
    // EXT-X-BYTERANGE needs 4.
    let br = edit(TS, "#EXTINF:5.50000,\nseg8.ts", "#EXTINF:5.50000,\n#EXT-X-BYTERANGE:1000@0\nseg8.ts");
    fires(&media(&br), VERSION_COMPAT);
    silent(&media(&edit(&br, "#EXT-X-VERSION:3", "#EXT-X-VERSION:4")), VERSION_COMPAT);
    // INSTREAM-ID="SERVICEn" needs 7 in a Multivariant Playlist.
    let cc = edit(
        MASTER,
        "#EXT-X-STREAM-INF",
        "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC\",INSTREAM-ID=\"SERVICE1\"\n#EXT-X-STREAM-INF",
    );
    fires(&master(&cc), VERSION_COMPAT);
    silent(&master(&edit(&cc, "#EXT-X-VERSION:6", "#EXT-X-VERSION:7")), VERSION_COMPAT);
}

#[test]
fn removed_attributes() {
    silent(&master(MASTER), VERSION_REMOVED);
    let v = master(&edit(MASTER, "BANDWIDTH=800000,", "PROGRAM-ID=1,BANDWIDTH=800000,"));
    fires(&v, VERSION_REMOVED);
}

// ---------------------------------------------------------------------------
// 4.4.2
// ---------------------------------------------------------------------------

#[test]
fn media_or_multivariant_tags_once() {
    silent(&master(MASTER), ONCE_4_4_2);
    let v = master(&edit(
        MASTER,
        "#EXT-X-INDEPENDENT-SEGMENTS\n",
        "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-INDEPENDENT-SEGMENTS\n",
    ));
    fires(&v, ONCE_4_4_2);
}

#[test]
fn start_tag() {
    let ok = edit(TS, "#EXT-X-MEDIA-SEQUENCE", "#EXT-X-START:TIME-OFFSET=-18.5,PRECISE=YES\n#EXT-X-MEDIA-SEQUENCE");
    silent(&media(&ok), START);
    fires(&media(&edit(&ok, "TIME-OFFSET=-18.5,", "")), START);
    fires(&media(&edit(&ok, "PRECISE=YES", "PRECISE=MAYBE")), START);
}

#[test]
fn define_tag() {
    let ok = edit(TS, "#EXT-X-VERSION:3", "#EXT-X-VERSION:8\n#EXT-X-DEFINE:NAME=\"v\",VALUE=\"1\"");
    clean(&media(&ok));
    fires(&media(&edit(&ok, "VALUE=\"1\"", "IMPORT=\"w\"")), DEFINE);
    fires(&media(&edit(&ok, "#EXT-X-VERSION:8", "#EXT-X-VERSION:7")), VERSION_COMPAT);
}

#[test]
fn media_and_multivariant_tags_not_mixed() {
    silent(&media(TS), MIXED);
    silent(&master(MASTER), MIXED);
    fires(&media(&format!("{TS}#EXT-X-STREAM-INF:BANDWIDTH=1\nx.m3u8\n")), MIXED);
    fires(&master(&format!("{MASTER}#EXT-X-TARGETDURATION:6\n")), MIXED);
    fires(&master(&edit(MASTER, "#EXT-X-STREAM-INF", "#EXTINF:6,\n#EXT-X-STREAM-INF")), MIXED);
}

// ---------------------------------------------------------------------------
// 4.4.3: Media Playlist tags
// ---------------------------------------------------------------------------

#[test]
fn media_playlist_tags_once() {
    silent(&media(TS), MEDIA_TAG_ONCE);
    let v = media(&edit(TS, "#EXT-X-TARGETDURATION:6\n", "#EXT-X-TARGETDURATION:6\n#EXT-X-TARGETDURATION:6\n"));
    fires(&v, MEDIA_TAG_ONCE);
}

#[test]
fn target_duration_present_and_integer() {
    silent(&media(TS), TARGETDURATION);
    fires(&media(&TS.replace("#EXT-X-TARGETDURATION:6\n", "")), TARGETDURATION);
    fires(&media(&edit(TS, "#EXT-X-TARGETDURATION:6", "#EXT-X-TARGETDURATION:0")), TARGETDURATION);
    fires(&media(&edit(TS, "#EXT-X-TARGETDURATION:6", "#EXT-X-TARGETDURATION:6.0")), TARGETDURATION);
}

#[test]
fn extinf_rounded_le_target_duration() {
    // 6.49 rounds to 6: fine; 6.5 rounds to 7: not.
    silent(&media(&edit(TS, "#EXTINF:5.50000,", "#EXTINF:6.49000,")), EXTINF_LE_TARGET);
    fires(&media(&edit(TS, "#EXTINF:5.50000,", "#EXTINF:6.50000,")), EXTINF_LE_TARGET);
}

#[test]
fn media_sequence_before_first_segment() {
    silent(&media(TS), MEDIA_SEQUENCE);
    let moved = TS.replace("#EXT-X-MEDIA-SEQUENCE:7\n", "").replace("seg7.ts\n", "seg7.ts\n#EXT-X-MEDIA-SEQUENCE:7\n");
    fires(&media(&moved), MEDIA_SEQUENCE);
    fires(&media(&edit(TS, "#EXT-X-MEDIA-SEQUENCE:7", "#EXT-X-MEDIA-SEQUENCE:-7")), MEDIA_SEQUENCE);
}

#[test]
fn discontinuity_sequence_placement() {
    silent(&media(TS), DISC_SEQUENCE);
    let late = TS
        .replace("#EXT-X-DISCONTINUITY-SEQUENCE:2\n", "")
        .replace("seg8.ts\n", "seg8.ts\n#EXT-X-DISCONTINUITY-SEQUENCE:2\n");
    fires(&media(&late), DISC_SEQUENCE);
}

#[test]
fn playlist_type_values() {
    silent(
        &media(&edit(TS, "#EXT-X-MEDIA-SEQUENCE", "#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MEDIA-SEQUENCE")),
        PLAYLIST_TYPE,
    );
    fires(
        &media(&edit(TS, "#EXT-X-MEDIA-SEQUENCE", "#EXT-X-PLAYLIST-TYPE:LIVE\n#EXT-X-MEDIA-SEQUENCE")),
        PLAYLIST_TYPE,
    );
}

#[test]
fn part_inf_required_with_parts() {
    silent(&media(&ll()), PART_INF);
    fires(&media(&edit(&ll(), "#EXT-X-PART-INF:PART-TARGET=1.0\n", "")), PART_INF);
    fires(&media(&edit(&ll(), "PART-TARGET=1.0", "PART-TARGET=\"1.0\"")), PART_INF);
}

#[test]
fn server_control_attribute_types() {
    silent(&media(&ll()), SC_ATTRS);
    fires(&media(&edit(&ll(), "CAN-BLOCK-RELOAD=YES", "CAN-BLOCK-RELOAD=NO")), SC_ATTRS);
    fires(&media(&edit(&ll(), "HOLD-BACK=12.0", "HOLD-BACK=12s")), SC_ATTRS);
}

#[test]
fn can_skip_until_at_least_six_target_durations() {
    silent(&media(&ll()), SC_SKIP_UNTIL);
    fires(&media(&edit(&ll(), "CAN-SKIP-UNTIL=24.0", "CAN-SKIP-UNTIL=23.9")), SC_SKIP_UNTIL);
}

#[test]
fn can_skip_dateranges_needs_can_skip_until() {
    silent(
        &media(&edit(&ll(), "CAN-SKIP-UNTIL=24.0", "CAN-SKIP-UNTIL=24.0,CAN-SKIP-DATERANGES=YES")),
        SC_SKIP_DATERANGES,
    );
    fires(&media(&edit(&ll(), "CAN-SKIP-UNTIL=24.0", "CAN-SKIP-DATERANGES=YES")), SC_SKIP_DATERANGES);
}

#[test]
fn hold_back_at_least_three_target_durations() {
    silent(&media(&ll()), SC_HOLD_BACK);
    fires(&media(&edit(&ll(), "HOLD-BACK=12.0", "HOLD-BACK=11.9")), SC_HOLD_BACK);
}

#[test]
fn part_hold_back_required() {
    silent(&media(&ll()), SC_PHB_REQUIRED);
    fires(&media(&edit(&ll(), ",PART-HOLD-BACK=3.0", "")), SC_PHB_REQUIRED);
    let no_sc = edit(
        &ll(),
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=24.0,HOLD-BACK=12.0,PART-HOLD-BACK=3.0\n",
        "",
    );
    fires(&media(&no_sc), SC_PHB_REQUIRED);
}

#[test]
fn part_hold_back_two_and_three_part_targets() {
    let v = media(&edit(&ll(), "PART-HOLD-BACK=3.0", "PART-HOLD-BACK=2.5"));
    silent(&v, SC_PHB_2X);
    fires(&v, SC_PHB_3X);
    let v = media(&edit(&ll(), "PART-HOLD-BACK=3.0", "PART-HOLD-BACK=1.9"));
    fires(&v, SC_PHB_2X);
    fires(&v, SC_PHB_3X);
    silent(&media(&ll()), SC_PHB_3X);
}

// ---------------------------------------------------------------------------
// 4.4.4: Media Segment tags
// ---------------------------------------------------------------------------

#[test]
fn extinf_format() {
    silent(&media(&edit(TS, "#EXTINF:5.50000,", "#EXTINF:5.50000,Title")), EXTINF_FORMAT);
    fires(&media(&edit(TS, "#EXTINF:5.50000,", "#EXTINF:5.50000")), EXTINF_FORMAT);
    fires(&media(&edit(TS, "#EXTINF:5.50000,", "#EXTINF:5.5s,")), EXTINF_FORMAT);
}

#[test]
fn extinf_required_for_each_segment() {
    silent(&media(TS), EXTINF_REQUIRED);
    fires(&media(&edit(TS, "#EXTINF:5.50000,\n", "")), EXTINF_REQUIRED);
}

#[test]
fn every_segment_has_a_uri() {
    silent(&media(TS), SEGMENT_URI);
    fires(&media(&format!("{TS}#EXTINF:6.00000,\n")), SEGMENT_URI);
    fires(&media(&edit(TS, "seg8.ts\n", "")), SEGMENT_URI);
}

#[test]
fn byterange() {
    let ok = edit(
        TS,
        "#EXTINF:6.00000,\nseg10.ts\n#EXT-X-PROGRAM-DATE-TIME:2024-05-01T13:00:12.000Z\n#EXTINF:6.00000,\nseg11.ts",
        "#EXTINF:6.00000,\n#EXT-X-BYTERANGE:1000@0\nall.ts\n#EXT-X-PROGRAM-DATE-TIME:2024-05-01T13:00:12.000Z\n#EXTINF:6.00000,\n#EXT-X-BYTERANGE:2000\nall.ts",
    )
    .replace("#EXT-X-VERSION:3", "#EXT-X-VERSION:4");
    clean(&media(&ok));
    fires(&media(&edit(&ok, "#EXT-X-BYTERANGE:1000@0", "#EXT-X-BYTERANGE:1000@")), BYTERANGE);
    // No offset: the previous segment must be a sub-range of the same resource.
    fires(&media(&edit(&ok, "#EXT-X-BYTERANGE:1000@0\nall.ts", "other.ts")), BYTERANGE);
}

#[test]
fn key_attributes() {
    let ok = edit(
        TS,
        "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z",
        "#EXT-X-KEY:METHOD=AES-128,URI=\"k.bin\",IV=0x00000000000000000000000000000001\n#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z",
    );
    clean(&media(&ok));
    fires(&media(&edit(&ok, ",URI=\"k.bin\"", "")), KEY);
    fires(&media(&edit(&ok, "IV=0x00000000000000000000000000000001", "IV=0x01")), KEY);
    fires(
        &media(&edit(
            &ok,
            "METHOD=AES-128,URI=\"k.bin\",IV=0x00000000000000000000000000000001",
            "METHOD=NONE,URI=\"k.bin\"",
        )),
        KEY,
    );
    fires(&media(&edit(&ok, "METHOD=AES-128", "METHOD=ROT13")), KEY);
    silent(
        &media(&edit(&ok, "METHOD=AES-128,URI=\"k.bin\",IV=0x00000000000000000000000000000001", "METHOD=NONE")),
        KEY,
    );
}

#[test]
fn map_attributes() {
    silent(&media(&ll()), MAP);
    fires(&media(&edit(&ll(), "#EXT-X-MAP:URI=\"init.mp4\"", "#EXT-X-MAP:BYTERANGE=\"700@0\"")), MAP);
    fires(&media(&edit(&ll(), "#EXT-X-MAP:URI=\"init.mp4\"", "#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"700\"")), MAP);
    silent(&media(&edit(&ll(), "#EXT-X-MAP:URI=\"init.mp4\"", "#EXT-X-MAP:URI=\"init.mp4\",BYTERANGE=\"700@0\"")), MAP);
}

#[test]
fn program_date_time_format() {
    silent(&media(TS), PDT_FORMAT);
    let pdt0 = "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z";
    for bad in [
        "2024-05-01 12:00:00.000Z",
        "2024-05-01T12:00:00Z",
        "2024-05-01T12:00:00.000",
        "2024-13-01T12:00:00.000Z",
        "yesterday",
    ] {
        let v = media(&edit(TS, pdt0, &format!("#EXT-X-PROGRAM-DATE-TIME:{bad}")));
        fires(&v, PDT_FORMAT);
    }
    let shifted = edit(TS, pdt0, "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T14:00:00.000+02:00");
    clean(&media(&shifted));
}

#[test]
fn program_date_time_consistent_with_extinf() {
    // seg10 has no PDT: seg11's is extrapolated across two segments.
    silent(&media(TS), PDT_CONSISTENT);
    let off = edit(TS, "2024-05-01T12:00:06.000Z", "2024-05-01T12:00:06.500Z");
    fires(&media(&off), PDT_CONSISTENT);
    let off = edit(TS, "2024-05-01T13:00:12.000Z", "2024-05-01T13:00:12.002Z");
    fires(&media(&off), PDT_CONSISTENT);
    // Within a millisecond is fine; a discontinuity resets the timeline.
    silent(&media(&edit(TS, "2024-05-01T12:00:06.000Z", "2024-05-01T12:00:06.0009Z")), PDT_CONSISTENT);
    silent(&media(&ll()), PDT_CONSISTENT);
    fires(&media(&edit(&ll(), &pdt(32), &pdt(33))), PDT_CONSISTENT);
}

#[test]
fn program_date_time_on_discontinuities() {
    silent(&media(TS), PDT_ON_DISCONTINUITY);
    let v = media(&edit(TS, "#EXT-X-PROGRAM-DATE-TIME:2024-05-01T13:00:00.000+00:00\n", ""));
    fires(&v, PDT_ON_DISCONTINUITY);
}

#[test]
fn bitrate() {
    let ok = edit(TS, "#EXTINF:5.50000,", "#EXT-X-BITRATE:2500\n#EXTINF:5.50000,");
    silent(&media(&ok), BITRATE);
    fires(&media(&edit(&ok, "2500", "2500.5")), BITRATE);
}

// ---------------------------------------------------------------------------
// 4.4.4.9 EXT-X-PART, 3.2, 6.2.2
// ---------------------------------------------------------------------------

const PART_110_1: &str = "#EXT-X-PART:DURATION=1.00000,URI=\"part110.1.m4s\"";

#[test]
fn part_attributes() {
    silent(&media(&ll()), PART_ATTRS);
    fires(&media(&edit(&ll(), PART_110_1, "#EXT-X-PART:URI=\"part110.1.m4s\"")), PART_ATTRS);
    fires(&media(&edit(&ll(), PART_110_1, "#EXT-X-PART:DURATION=1.00000,URI=part110.1.m4s")), PART_ATTRS);
    fires(
        &media(&edit(&ll(), PART_110_1, "#EXT-X-PART:DURATION=1.00000,URI=\"part110.1.m4s\",INDEPENDENT=NO")),
        PART_ATTRS,
    );
    fires(
        &media(&edit(&ll(), PART_110_1, "#EXT-X-PART:DURATION=1.00000,URI=\"part110.1.m4s\",BYTERANGE=\"x@0\"")),
        PART_ATTRS,
    );
}

#[test]
fn parent_segment_tags_before_its_first_part() {
    silent(&media(&ll()), PART_TAGS_FIRST);
    // The PDT of the Parent Segment in progress written after its first part.
    let pdt110 = format!("#EXT-X-PROGRAM-DATE-TIME:{}\n", pdt(40));
    let late = edit(&ll(), &pdt110, "").replacen(
        "#EXT-X-PART:DURATION=1.00000,URI=\"part110.0.m4s\",INDEPENDENT=YES\n",
        &format!("#EXT-X-PART:DURATION=1.00000,URI=\"part110.0.m4s\",INDEPENDENT=YES\n{pdt110}"),
        1,
    );
    fires(&media(&late), PART_TAGS_FIRST);
    let disc = edit(&ll(), PART_110_1, &format!("#EXT-X-DISCONTINUITY\n{PART_110_1}"));
    fires(&media(&disc), PART_TAGS_FIRST);
}

#[test]
fn part_duration_at_most_part_target() {
    silent(&media(&ll()), PART_MAX);
    let v = media(&ll_109(
        &["DURATION=1.00000,INDEPENDENT=YES", "DURATION=1.00100", "DURATION=1.00000", "DURATION=0.99900"],
        "4.00000",
    ));
    fires(&v, PART_MAX);
    // INDEPENDENT and final parts get no exemption from the maximum.
    let v = media(&ll_109(
        &["DURATION=1.20000,INDEPENDENT=YES", "DURATION=1.00000", "DURATION=1.00000", "DURATION=0.80000"],
        "4.00000",
    ));
    fires(&v, PART_MAX);
}

#[test]
fn part_duration_at_least_85_percent() {
    // A short middle part.
    let v = media(&ll_109(
        &[
            "DURATION=1.00000,INDEPENDENT=YES",
            "DURATION=0.80000",
            "DURATION=1.00000",
            "DURATION=1.00000",
            "DURATION=0.20000",
        ],
        "4.00000",
    ));
    fires(&v, PART_MIN);
    // Exactly 85% is enough.
    clean(&media(&ll_109(
        &[
            "DURATION=1.00000,INDEPENDENT=YES",
            "DURATION=0.85000",
            "DURATION=1.00000",
            "DURATION=1.00000",
            "DURATION=0.15000",
        ],
        "4.00000",
    )));
    // Exempt: INDEPENDENT=YES, the final part of the Parent Segment.
    clean(&media(&ll_109(
        &[
            "DURATION=1.00000,INDEPENDENT=YES",
            "DURATION=1.00000",
            "DURATION=0.50000,INDEPENDENT=YES",
            "DURATION=1.00000",
            "DURATION=0.50000",
        ],
        "4.00000",
    )));
    // Exempt: GAP=YES, and the part right before a GAP=YES part.
    clean(&media(&ll_109(
        &[
            "DURATION=1.00000,INDEPENDENT=YES",
            "DURATION=0.50000",
            "DURATION=0.50000,GAP=YES",
            "DURATION=1.00000",
            "DURATION=1.00000",
        ],
        "4.00000",
    )));
    // The last listed part of the segment in progress may be its final one...
    let last = edit(&ll(), PART_110_1, "#EXT-X-PART:DURATION=0.30000,URI=\"part110.1.m4s\"");
    silent(&media(&last), PART_MIN);
    // ...but not one followed by another part.
    let mid = edit(&Ll::new(100, 10, 3).text(), PART_110_1, "#EXT-X-PART:DURATION=0.30000,URI=\"part110.1.m4s\"");
    fires(&media(&mid), PART_MIN);
}

#[test]
fn parts_add_up_to_their_segment() {
    silent(&media(&ll()), PART_SUM);
    fires(
        &media(&ll_109(
            &["DURATION=1.00000,INDEPENDENT=YES", "DURATION=1.00000", "DURATION=1.00000", "DURATION=1.00000"],
            "4.10000",
        )),
        PART_SUM,
    );
    // Half a millisecond of rounding is fine.
    silent(
        &media(&ll_109(
            &["DURATION=1.00000,INDEPENDENT=YES", "DURATION=1.00000", "DURATION=1.00000", "DURATION=1.00050"],
            "4.00000",
        )),
        PART_SUM,
    );
    // The oldest segment listing parts may have lost its first ones already.
    let trimmed = ll().replacen(
        "#EXT-X-PART:DURATION=1.00000,URI=\"part108.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=1.00000,URI=\"part108.1.m4s\"\n",
        "",
        1,
    );
    assert_ne!(trimmed, ll());
    clean(&media(&trimmed));
}

#[test]
fn parts_not_kept_beyond_three_target_durations() {
    // Parts on 107 too: 107.0 ends 13 s before the end of the Playlist.
    let v = media(&Ll { parts_on: 3, ..Ll::new(100, 10, 2) }.text());
    fires(&v, PARTS_TOO_OLD);
    // Its last two parts end 11 s and 10 s before the end: still fine.
    let two = Ll {
        parts_on: 3,
        ..Ll::new(100, 10, 2)
    }
    .text()
    .replacen(
        "#EXT-X-PART:DURATION=1.00000,URI=\"part107.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=1.00000,URI=\"part107.1.m4s\"\n",
        "",
        1,
    );
    clean(&media(&two));
}

#[test]
fn parts_removed_in_order() {
    silent(&media(&ll()), PARTS_ORDER);
    let hole = Ll {
        parts_on: 3,
        ..Ll::new(100, 10, 2)
    }
    .text()
    .replacen(
        "#EXT-X-PART:DURATION=1.00000,URI=\"part107.0.m4s\",INDEPENDENT=YES\n#EXT-X-PART:DURATION=1.00000,URI=\"part107.1.m4s\"\n",
        "",
        1,
    );
    let mut hole108 = hole.clone();
    for k in 0..4 {
        hole108 = edit(&hole108, &Ll::part(108, k), "");
    }
    fires(&media(&hole108), PARTS_ORDER);
}

#[test]
fn i_frame_playlists_without_parts() {
    silent(&media(&ll()), PART_IFRAMES);
    fires(&media(&edit(&ll(), "#EXT-X-MAP", "#EXT-X-I-FRAMES-ONLY\n#EXT-X-MAP")), PART_IFRAMES);
}

#[test]
fn every_parent_segment_has_an_independent_part() {
    silent(&media(&ll()), LL_INDEPENDENT);
    let v = media(&edit(&ll(), "URI=\"part109.0.m4s\",INDEPENDENT=YES", "URI=\"part109.0.m4s\""));
    fires(&v, LL_INDEPENDENT);
}

// ---------------------------------------------------------------------------
// 4.4.5: Media Metadata tags
// ---------------------------------------------------------------------------

#[test]
fn daterange() {
    let ok = edit(
        TS,
        "seg8.ts\n",
        "seg8.ts\n#EXT-X-DATERANGE:ID=\"ad1\",START-DATE=\"2024-05-01T12:00:11.500Z\",PLANNED-DURATION=30.0\n",
    );
    clean(&media(&ok));
    fires(&media(&edit(&ok, "ID=\"ad1\",", "")), DATERANGE);
    fires(&media(&edit(&ok, "START-DATE=\"2024-05-01T12:00:11.500Z\",", "")), DATERANGE);
    // A later tag with the same ID may omit START-DATE.
    silent(&media(&format!("{ok}#EXT-X-DATERANGE:ID=\"ad1\",DURATION=29.5\n")), DATERANGE);
    let no_pdt: String =
        ok.lines().filter(|l| !l.starts_with("#EXT-X-PROGRAM-DATE-TIME")).map(|l| format!("{l}\n")).collect();
    fires(&media(&no_pdt), DATERANGE);
}

#[test]
fn skip_tag() {
    let delta = Ll::new(100, 10, 2).skip(4).text();
    clean(&media(&delta));
    fires(&media(&edit(&delta, "SKIPPED-SEGMENTS=4", "SKIPPED=4")), SKIP_ATTRS);
    fires(
        &media(&edit(
            &delta,
            "#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n",
            "#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n",
        )),
        SKIP_ATTRS,
    );
    let late = delta.replacen("#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n", "", 1).replacen(
        "seg104.m4s\n",
        "seg104.m4s\n#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n",
        1,
    );
    fires(&media(&late), SKIP_POSITION);
    fires(&media(&edit(&delta, "CAN-SKIP-UNTIL=24.0,", "")), SKIP_ALLOWED);
    fires(&media(&format!("{}#EXT-X-ENDLIST\n", delta)), SKIP_ALLOWED);
}

#[test]
fn preload_hint_attributes() {
    silent(&media(&ll()), HINT_ATTRS);
    fires(&media(&edit(&ll(), "TYPE=PART,URI=\"part110.2.m4s\"", "TYPE=SEGMENT,URI=\"part110.2.m4s\"")), HINT_ATTRS);
    fires(&media(&edit(&ll(), "TYPE=PART,URI=\"part110.2.m4s\"", "TYPE=PART")), HINT_ATTRS);
    fires(&media(&edit(&ll(), "URI=\"part110.2.m4s\"", "URI=\"part110.2.m4s\",BYTERANGE-START=-1")), HINT_ATTRS);
    silent(&media(&edit(&ll(), "URI=\"part110.2.m4s\"", "URI=\"part110.2.m4s\",BYTERANGE-START=0")), HINT_ATTRS);
}

#[test]
fn preload_hint_not_with_endlist() {
    // A finished LL playlist: no trailing parts, no hint.
    let done = Ll::new(100, 10, 0).text();
    let done = edit(&done, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part110.0.m4s\"\n", "") + "#EXT-X-ENDLIST\n";
    clean(&media(&done));
    fires(&media(&format!("{}#EXT-X-ENDLIST\n", Ll::new(100, 10, 0).text())), HINT_ENDLIST);
}

#[test]
fn preload_hint_one_per_type() {
    let map_hint = format!("{}#EXT-X-PRELOAD-HINT:TYPE=MAP,URI=\"init2.mp4\"\n", ll());
    silent(&media(&map_hint), HINT_ONE_PER_TYPE);
    let two = format!("{}#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part110.3.m4s\"\n", ll());
    fires(&media(&two), HINT_ONE_PER_TYPE);
}

#[test]
fn preload_hint_after_the_last_part() {
    silent(&media(&ll()), HINT_POSITION);
    let early = edit(&ll(), "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part110.2.m4s\"\n", "").replacen(
        PART_110_1,
        &format!("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part110.2.m4s\"\n{PART_110_1}"),
        1,
    );
    fires(&media(&early), HINT_POSITION);
}

#[test]
fn preload_hint_names_the_next_part() {
    silent(&media(&ll()), HINT_NEXT);
    fires(&media(&edit(&ll(), "TYPE=PART,URI=\"part110.2.m4s\"", "TYPE=PART,URI=\"part110.1.m4s\"")), HINT_NEXT);
}

#[test]
fn low_latency_profile_hint_and_date_time() {
    silent(&media(&ll()), LL_PRELOAD_HINT);
    fires(&media(&edit(&ll(), "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part110.2.m4s\"\n", "")), LL_PRELOAD_HINT);
    silent(&media(&ll()), LL_PDT);
    let no_pdt: String =
        ll().lines().filter(|l| !l.starts_with("#EXT-X-PROGRAM-DATE-TIME")).map(|l| format!("{l}\n")).collect();
    fires(&media(&no_pdt), LL_PDT);
}

#[test]
fn rendition_report() {
    silent(&media(&ll()), RR_URI);
    silent(&media(&edit(&ll(), "URI=\"../audio/index.m3u8\"", "URI=\"/1M/LL-HLS.m3u8\"")), RR_URI);
    fires(&media(&edit(&ll(), "URI=\"../audio/index.m3u8\"", "URI=\"https://cdn.example/audio/index.m3u8\"")), RR_URI);
    fires(&media(&edit(&ll(), "URI=\"../audio/index.m3u8\",", "")), RR_URI);
    fires(&media(&edit(&ll(), "LAST-MSN=110,", "")), RR_LAST_MSN);
    fires(&media(&edit(&ll(), ",LAST-PART=1", "")), RR_LAST_PART);
    // A playlist without parts need not report LAST-PART.
    let ts = format!("{TS}#EXT-X-RENDITION-REPORT:URI=\"../b/index.m3u8\",LAST-MSN=11\n");
    clean(&media(&ts));
}

// ---------------------------------------------------------------------------
// m3u8-rs reads what we write
// ---------------------------------------------------------------------------

#[test]
fn m3u8_rs_reads_the_whole_playlist() {
    silent(&media(&ll()), M3U8_RS);
    silent(&media(TS), M3U8_RS);
    silent(&master(MASTER), M3U8_RS);
    // Legal (4.4.4.1: the title is the rest of the line), but m3u8-rs reads
    // the text after the second comma as a URI line.
    let v = media(&edit(TS, "#EXTINF:5.50000,", "#EXTINF:5.50000,live, now"));
    fires(&v, M3U8_RS);
    // A PDT without a zone is only a SHOULD for us, a parse failure for m3u8-rs.
    let v = media(&edit(TS, "2024-05-01T12:00:06.000Z", "2024-05-01T12:00:06.000"));
    fires(&v, M3U8_RS);
    // A STREAM-INF m3u8-rs cannot read disappears from its result.
    let v = master(&edit(MASTER, "BANDWIDTH=800000,", ""));
    fires(&v, M3U8_RS);
}

// ---------------------------------------------------------------------------
// 4.4.6: Multivariant Playlist
// ---------------------------------------------------------------------------

#[test]
fn multivariant_has_multivariant_tags() {
    silent(&master(MASTER), MV_HAS_TAG);
    fires(&master("#EXTM3U\n#EXT-X-VERSION:6\n"), MV_HAS_TAG);
}

#[test]
fn stream_inf_bandwidth() {
    fires(&master(&edit(MASTER, "BANDWIDTH=800000,", "")), SI_BANDWIDTH);
    fires(&master(&edit(MASTER, "BANDWIDTH=800000,", "BANDWIDTH=800k,")), SI_BANDWIDTH);
    silent(&master(MASTER), SI_AVERAGE);
    fires(&master(&edit(MASTER, "AVERAGE-BANDWIDTH=2000000", "AVERAGE-BANDWIDTH=2600000")), SI_AVERAGE);
    fires(&master(&edit(MASTER, "AVERAGE-BANDWIDTH=2000000", "AVERAGE-BANDWIDTH=\"2000000\"")), SI_AVERAGE);
}

#[test]
fn stream_inf_codecs() {
    silent(&master(MASTER), SI_CODECS);
    fires(&master(&edit(MASTER, "CODECS=\"avc1.4d401e,mp4a.40.2\",", "")), SI_CODECS);
}

#[test]
fn stream_inf_resolution() {
    silent(&master(MASTER), SI_RESOLUTION);
    fires(&master(&edit(MASTER, "RESOLUTION=640x360", "RESOLUTION=640X360")), SI_RESOLUTION);
    fires(&master(&edit(MASTER, "RESOLUTION=640x360", "RESOLUTION=\"640x360\"")), SI_RESOLUTION);
}

#[test]
fn stream_inf_frame_rate() {
    silent(&master(&edit(MASTER, "FRAME-RATE=29.970", "FRAME-RATE=30")), SI_FRAME_RATE);
    fires(&master(&edit(MASTER, "FRAME-RATE=29.970", "FRAME-RATE=29.97003")), SI_FRAME_RATE);
    fires(&master(&edit(MASTER, "FRAME-RATE=29.970", "FRAME-RATE=-30")), SI_FRAME_RATE);
}

#[test]
fn stream_inf_followed_by_uri() {
    silent(&master(MASTER), SI_URI);
    fires(&master(&edit(MASTER, "video/720p/index.m3u8\n", "")), SI_URI);
    fires(&master(&MASTER.replace("video/360p/index.m3u8\n", "")), SI_URI);
    fires(&master(&format!("{MASTER}extra.m3u8\n")), SI_URI);
}

#[test]
fn stream_inf_groups_exist() {
    silent(&master(MASTER), SI_GROUP_REF);
    fires(&master(&edit(MASTER, "AUDIO=\"aud\"", "AUDIO=\"audio\"")), SI_GROUP_REF);
    fires(&master(&edit(MASTER, "AUDIO=\"aud\"", "AUDIO=\"aud\",SUBTITLES=\"subs\"")), SI_GROUP_REF);
    // A group of another TYPE does not count.
    fires(&master(&edit(MASTER, "AUDIO=\"aud\"", "VIDEO=\"aud\"")), SI_GROUP_REF);
}

#[test]
fn closed_captions_none_everywhere_or_nowhere() {
    let all = MASTER.replace("AUDIO=\"aud\"", "AUDIO=\"aud\",CLOSED-CAPTIONS=NONE");
    clean(&master(&all));
    fires(&master(&edit(MASTER, "AUDIO=\"aud\"", "AUDIO=\"aud\",CLOSED-CAPTIONS=NONE")), SI_CC_NONE);
}

#[test]
fn stream_inf_enumerations() {
    silent(&master(&edit(MASTER, "AUDIO=\"aud\"", "AUDIO=\"aud\",HDCP-LEVEL=NONE,VIDEO-RANGE=SDR")), SI_ENUMS);
    fires(&master(&edit(MASTER, "AUDIO=\"aud\"", "AUDIO=\"aud\",HDCP-LEVEL=TYPE-2")), SI_ENUMS);
    fires(&master(&edit(MASTER, "AUDIO=\"aud\"", "AUDIO=\"aud\",VIDEO-RANGE=HDR")), SI_ENUMS);
    // SCORE on some variants only.
    fires(&master(&edit(MASTER, "AUDIO=\"aud\"", "AUDIO=\"aud\",SCORE=2.0")), SI_ENUMS);
}

#[test]
fn i_frame_stream_inf() {
    let ok = format!("{MASTER}#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,CODECS=\"avc1.4d401e\",URI=\"iframes.m3u8\"\n");
    clean(&master(&ok));
    fires(&master(&edit(&ok, ",URI=\"iframes.m3u8\"", "")), IFRAME_SI);
    fires(&master(&edit(&ok, "BANDWIDTH=90000,", "")), IFRAME_SI);
}

#[test]
fn media_type_group_and_name() {
    silent(&master(MASTER), MEDIA_ATTRS);
    fires(&master(&edit(MASTER, "NAME=\"English\",", "")), MEDIA_ATTRS);
    fires(&master(&edit(MASTER, "TYPE=AUDIO", "TYPE=SOUND")), MEDIA_ATTRS);
    fires(&master(&edit(MASTER, "GROUP-ID=\"aud\",", "")), MEDIA_ATTRS);
}

#[test]
fn media_uri_by_type() {
    let subs = "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\",LANGUAGE=\"en\",URI=\"subs/en.m3u8\"\n";
    let ok = edit(MASTER, "#EXT-X-STREAM-INF", &format!("{subs}#EXT-X-STREAM-INF"));
    silent(&master(&ok), MEDIA_URI);
    fires(&master(&edit(&ok, ",URI=\"subs/en.m3u8\"", "")), MEDIA_URI);
    let cc = edit(
        MASTER,
        "#EXT-X-STREAM-INF",
        "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC\",INSTREAM-ID=\"CC1\",URI=\"cc.m3u8\"\n#EXT-X-STREAM-INF",
    );
    fires(&master(&cc), MEDIA_URI);
}

#[test]
fn media_instream_id_for_closed_captions() {
    let cc = edit(
        MASTER,
        "#EXT-X-STREAM-INF",
        "#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID=\"cc\",NAME=\"CC\",INSTREAM-ID=\"CC1\"\n#EXT-X-STREAM-INF",
    );
    silent(&master(&cc), MEDIA_INSTREAM);
    fires(&master(&edit(&cc, "INSTREAM-ID=\"CC1\"", "INSTREAM-ID=\"CC5\"")), MEDIA_INSTREAM);
    fires(&master(&edit(&cc, ",INSTREAM-ID=\"CC1\"", "")), MEDIA_INSTREAM);
}

#[test]
fn media_flags() {
    silent(&master(MASTER), MEDIA_FLAGS);
    fires(&master(&edit(MASTER, "AUTOSELECT=YES", "AUTOSELECT=NO")), MEDIA_FLAGS);
    fires(&master(&edit(MASTER, "DEFAULT=YES", "DEFAULT=TRUE")), MEDIA_FLAGS);
    fires(&master(&edit(MASTER, "AUTOSELECT=YES", "AUTOSELECT=YES,FORCED=NO")), MEDIA_FLAGS);
}

#[test]
fn media_audio_only_attributes() {
    silent(&master(MASTER), MEDIA_AUDIO_ONLY);
    let video = edit(
        MASTER,
        "#EXT-X-STREAM-INF",
        "#EXT-X-MEDIA:TYPE=VIDEO,GROUP-ID=\"v\",NAME=\"Main\",CHANNELS=\"2\",URI=\"v.m3u8\"\n#EXT-X-STREAM-INF",
    );
    fires(&master(&video), MEDIA_AUDIO_ONLY);
}

#[test]
fn media_groups() {
    let second = "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aud\",NAME=\"Deutsch\",LANGUAGE=\"de\",DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/de.m3u8\"\n";
    let ok = edit(MASTER, "#EXT-X-STREAM-INF", &format!("{second}#EXT-X-STREAM-INF"));
    clean(&master(&ok));
    fires(&master(&edit(&ok, "NAME=\"Deutsch\"", "NAME=\"English\"")), MEDIA_GROUP);
    fires(&master(&edit(&ok, "DEFAULT=NO", "DEFAULT=YES")), MEDIA_GROUP);
}

#[test]
fn session_tags() {
    let ok = format!("{MASTER}#EXT-X-SESSION-DATA:DATA-ID=\"com.example.title\",VALUE=\"Live\"\n");
    clean(&master(&ok));
    fires(&master(&edit(&ok, "VALUE=\"Live\"", "VALUE=\"Live\",URI=\"t.json\"")), SESSION);
    fires(&master(&format!("{ok}#EXT-X-SESSION-DATA:DATA-ID=\"com.example.title\",VALUE=\"Again\"\n")), SESSION);
}

// ---------------------------------------------------------------------------
// 6.2.5.1 Playlist Delta Updates
// ---------------------------------------------------------------------------

#[test]
fn delta_update_matches_full_playlist() {
    let full = ll();
    // CAN-SKIP-UNTIL=24 of 40 s: 3 to 5 segments are beyond the boundary,
    // depending on whether a segment's start or end is measured.
    for n in 3..=5 {
        clean(&check_delta_update(&full, &Ll::new(100, 10, 2).skip(n).text()));
    }
}

#[test]
fn delta_update_skip_count() {
    let full = ll();
    fires(&check_delta_update(&full, &Ll::new(100, 10, 2).skip(2).text()), DELTA_SKIP_COUNT);
    fires(&check_delta_update(&full, &Ll::new(100, 10, 2).skip(6).text()), DELTA_SKIP_COUNT);
    fires(&check_delta_update(&full, &Ll::new(100, 10, 2).skip(11).text()), DELTA_SKIP_COUNT);
}

#[test]
fn delta_update_content() {
    let full = ll();
    let delta = Ll::new(100, 10, 2).skip(4).text();
    fires(&check_delta_update(&full, &edit(&delta, "seg106.m4s", "seg106b.m4s")), DELTA_SAME);
    fires(
        &check_delta_update(
            &full,
            &edit(
                &delta,
                "#EXT-X-RENDITION-REPORT",
                "#EXT-X-RENDITION-REPORT:URI=\"x.m3u8\",LAST-MSN=1,LAST-PART=0\n#EXT-X-RENDITION-REPORT",
            ),
        ),
        DELTA_SAME,
    );
    fires(&check_delta_update(&full, &edit(&delta, "HOLD-BACK=12.0,", "HOLD-BACK=13.0,")), DELTA_SAME);
    // The delta is checked as a playlist too: EXT-X-SKIP needs version 9.
    let v8 = Ll { version: 8, ..Ll::new(100, 10, 2).skip(4) };
    let v = check_delta_update(&full, &v8.text());
    fires(&v, VERSION_COMPAT);
    assert!(v.iter().any(|x| x.detail.starts_with("delta: ")), "{}", render(&v));
}

#[test]
fn delta_update_keeps_tags_of_skipped_segments_that_are_not_segment_tags() {
    let dr = "#EXT-X-DATERANGE:ID=\"ad1\",START-DATE=\"2024-05-01T12:00:05.000Z\"\n";
    let full = edit(&ll(), "seg100.m4s\n", &format!("seg100.m4s\n{dr}"));
    let delta = Ll::new(100, 10, 2).skip(4).text();
    let kept = edit(&delta, "#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n", &format!("#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n{dr}"));
    clean(&check_delta_update(&full, &kept));
    fires(&check_delta_update(&full, &delta), DELTA_SAME);
    // _HLS_skip=v2 may drop them.
    let v2 = edit(&delta, "SKIPPED-SEGMENTS=4", "SKIPPED-SEGMENTS=4,RECENTLY-REMOVED-DATERANGES=\"\"")
        .replace("#EXT-X-VERSION:9", "#EXT-X-VERSION:10");
    let full_v2 = edit(&full, "CAN-SKIP-UNTIL=24.0", "CAN-SKIP-UNTIL=24.0,CAN-SKIP-DATERANGES=YES");
    let v2 = edit(&v2, "CAN-SKIP-UNTIL=24.0", "CAN-SKIP-UNTIL=24.0,CAN-SKIP-DATERANGES=YES");
    clean(&check_delta_update(&full_v2, &v2));
}

#[test]
fn delta_update_when_nothing_is_beyond_the_skip_boundary() {
    // 5 segments, 20 s < CAN-SKIP-UNTIL=24: nothing to skip.
    let full = Ll::new(100, 5, 2).text();
    clean(&media(&full));
    clean(&check_delta_update(&full, &full));
    let zero = edit(&Ll::new(100, 5, 2).skip(0).text(), "init.mp4\"\n", "init.mp4\"\n#EXT-X-SKIP:SKIPPED-SEGMENTS=0\n");
    clean(&check_delta_update(&full, &zero));
    fires(&check_delta_update(&full, &edit(&full, "seg103.m4s", "seg103b.m4s")), DELTA_SAME);
    fires(&check_delta_update(&full, &Ll::new(100, 5, 2).skip(1).text()), DELTA_SKIP_COUNT);
}

#[test]
fn delta_update_required_or_ignored() {
    let full = ll();
    fires(&check_delta_update(&full, &full), DELTA_REQUIRED);
    // Without CAN-SKIP-UNTIL the server ignores _HLS_skip.
    let no_skip = edit(&full, "CAN-SKIP-UNTIL=24.0,", "");
    clean(&check_delta_update(&no_skip, &no_skip));
    let delta = edit(&Ll::new(100, 10, 2).skip(4).text(), "CAN-SKIP-UNTIL=24.0,", "");
    fires(&check_delta_update(&no_skip, &delta), DELTA_IGNORED);
}

// ---------------------------------------------------------------------------
// 6.2.4, B.1: the Renditions of one presentation
// ---------------------------------------------------------------------------

fn renditions() -> (String, String) {
    let video = ll();
    let audio = edit(&ll(), "URI=\"../audio/index.m3u8\"", "URI=\"../video/index.m3u8\"");
    (video, audio)
}

#[test]
fn renditions_consistent() {
    let (video, audio) = renditions();
    clean(&check_renditions(&[("video/index.m3u8", &video), ("audio/index.m3u8", &audio)]));
    let td = edit(&audio, "#EXT-X-TARGETDURATION:4", "#EXT-X-TARGETDURATION:5");
    fires(&check_renditions(&[("video/index.m3u8", &video), ("audio/index.m3u8", &td)]), REN_TARGET);
    let sc = edit(&audio, "PART-HOLD-BACK=3.0", "PART-HOLD-BACK=3.5");
    fires(&check_renditions(&[("video/index.m3u8", &video), ("audio/index.m3u8", &sc)]), REN_SERVER_CONTROL);
    let no_pdt: String =
        audio.lines().filter(|l| !l.starts_with("#EXT-X-PROGRAM-DATE-TIME")).map(|l| format!("{l}\n")).collect();
    fires(&check_renditions(&[("video/index.m3u8", &video), ("audio/index.m3u8", &no_pdt)]), REN_PDT);
    let typed = TS.replace("#EXT-X-MEDIA-SEQUENCE", "#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MEDIA-SEQUENCE");
    fires(&check_renditions(&[("a.m3u8", TS), ("b.m3u8", &typed)]), REN_PLAYLIST_TYPE);
}

#[test]
fn renditions_report_each_other() {
    let (video, audio) = renditions();
    // audio reports itself instead of video.
    fires(&check_renditions(&[("video/index.m3u8", &video), ("audio/index.m3u8", &video)]), REN_REPORTS);
    // Absolute-path references resolve too; a third rendition must be reported.
    let abs = edit(&audio, "URI=\"../video/index.m3u8\"", "URI=\"/video/index.m3u8\"");
    clean(&check_renditions(&[("video/index.m3u8", &video), ("audio/index.m3u8", &abs)]));
    let v = check_renditions(&[("video/index.m3u8", &video), ("audio/index.m3u8", &audio), ("sub/index.m3u8", &audio)]);
    fires(&v, REN_REPORTS);
}

// ---------------------------------------------------------------------------
// 6.2.1, 6.2.2: successive snapshots
// ---------------------------------------------------------------------------

fn seq(snapshots: &[String]) -> Vec<Violation> {
    let refs: Vec<&str> = snapshots.iter().map(String::as_str).collect();
    check_playlist_sequence(&refs)
}

#[test]
fn live_sequence_conforms() {
    let snaps = [
        Ll::new(100, 10, 1).text(),
        Ll::new(100, 10, 2).text(),
        Ll::new(100, 10, 3).text(),
        Ll::new(100, 11, 0).text(),
        Ll::new(101, 11, 1).text(),
        Ll::new(102, 11, 4).text(),
        Ll::new(103, 12, 0).text(),
    ];
    for s in &snaps {
        clean(&media(s));
    }
    clean(&seq(&snaps));
}

#[test]
fn sequence_target_duration_fixed() {
    let a = ll();
    let b = edit(&a, "#EXT-X-TARGETDURATION:4", "#EXT-X-TARGETDURATION:5");
    fires(&seq(&[a, b]), SEQ_TARGET);
}

#[test]
fn sequence_media_sequence_never_decreases() {
    fires(&seq(&[Ll::new(101, 10, 0).text(), Ll::new(100, 11, 0).text()]), SEQ_MSN);
}

#[test]
fn sequence_discontinuity_sequence() {
    let b = edit(TS, "#EXT-X-DISCONTINUITY-SEQUENCE:2", "#EXT-X-DISCONTINUITY-SEQUENCE:1");
    fires(&seq(&[TS.to_string(), b]), SEQ_DSN_TAG);
    // Incremented without removing a discontinuity: every segment's number moves.
    let b = edit(TS, "#EXT-X-DISCONTINUITY-SEQUENCE:2", "#EXT-X-DISCONTINUITY-SEQUENCE:3");
    let v = seq(&[TS.to_string(), b]);
    fires(&v, SEQ_DSN);
    silent(&v, SEQ_DSN_TAG);
    // Removing segments before the discontinuity keeps its tag (it applies
    // to seg9) and the sequence number.
    let removed = TS
        .replace("#EXT-X-MEDIA-SEQUENCE:7", "#EXT-X-MEDIA-SEQUENCE:9")
        .replace("#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z\n#EXTINF:6.00000,\nseg7.ts\n", "")
        .replace("#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:06.000Z\n#EXTINF:5.50000,\nseg8.ts\n", "")
        + "#EXTINF:6.00000,\nseg12.ts\n";
    clean(&media(&removed));
    clean(&seq(&[TS.to_string(), removed.clone()]));
    // Dropping the tag with the segment before it changes seg9.
    let dropped = removed.replace("#EXT-X-DISCONTINUITY\n", "");
    fires(&seq(&[TS.to_string(), dropped]), SEQ_SEGMENT);
    // Removing seg9 with its discontinuity increments the sequence number...
    let removed9 = removed
        .replace("#EXT-X-MEDIA-SEQUENCE:9", "#EXT-X-MEDIA-SEQUENCE:10")
        .replace("#EXT-X-DISCONTINUITY-SEQUENCE:2", "#EXT-X-DISCONTINUITY-SEQUENCE:3")
        .replace(
            "#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2024-05-01T13:00:00.000+00:00\n#EXTINF:6.00000,\nseg9.ts\n",
            "",
        )
        + "#EXTINF:6.00000,\nseg13.ts\n";
    clean(&media(&removed9));
    clean(&seq(&[TS.to_string(), removed.clone(), removed9.clone()]));
    // ...and forgetting the increment changes seg10's number.
    let forgot = removed9.replace("#EXT-X-DISCONTINUITY-SEQUENCE:3", "#EXT-X-DISCONTINUITY-SEQUENCE:2");
    fires(&seq(&[removed, forgot]), SEQ_DSN);
}

#[test]
fn sequence_segments_never_change() {
    let a = ll();
    fires(&seq(&[a.clone(), edit(&a, "seg105.m4s", "seg105x.m4s")]), SEQ_SEGMENT);
    let b = edit(&a, "#EXTINF:4.00000,\nseg105.m4s", "#EXTINF:4.00100,\nseg105.m4s");
    fires(&seq(&[a.clone(), b]), SEQ_SEGMENT);
    fires(&seq(&[a.clone(), edit(&a, &pdt(20), &pdt(21))]), SEQ_SEGMENT);
}

#[test]
fn sequence_segments_removed_from_the_start_only() {
    // Segment 110 was complete, then it is back to parts.
    fires(&seq(&[Ll::new(100, 11, 0).text(), Ll::new(100, 10, 3).text()]), SEQ_REMOVE_ORDER);
    // A segment removed from the middle shows up as a changed segment.
    let a = ll();
    let b = edit(&a, &format!("#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:4.00000,\nseg103.m4s\n", pdt(12)), "");
    fires(&seq(&[a, b]), SEQ_SEGMENT);
}

#[test]
fn sequence_removal_needs_media_sequence_tags() {
    let a = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\na.ts\n#EXTINF:6.0,\nb.ts\n#EXTINF:6.0,\nc.ts\n#EXTINF:6.0,\nd.ts\n";
    let b = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXTINF:6.0,\nb.ts\n#EXTINF:6.0,\nc.ts\n#EXTINF:6.0,\nd.ts\n#EXTINF:6.0,\ne.ts\n";
    fires(&check_playlist_sequence(&[a, b]), SEQ_REMOVE_TAGS);
    let b_ok = b.replace("#EXT-X-TARGETDURATION:6\n", "#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:1\n");
    clean(&check_playlist_sequence(&[a, &b_ok]));
    // With a discontinuity, EXT-X-DISCONTINUITY-SEQUENCE is needed as well.
    let a_d = a.replace("#EXTINF:6.0,\nc.ts", "#EXT-X-DISCONTINUITY\n#EXTINF:6.0,\nc.ts");
    let b_d = b_ok.replace("#EXTINF:6.0,\nc.ts", "#EXT-X-DISCONTINUITY\n#EXTINF:6.0,\nc.ts");
    fires(&check_playlist_sequence(&[&a_d, &b_d]), SEQ_REMOVE_TAGS);
    let b_d_ok = b_d.replace("#EXT-X-MEDIA-SEQUENCE:1\n", "#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-DISCONTINUITY-SEQUENCE:0\n");
    clean(&check_playlist_sequence(&[&a_d, &b_d_ok]));
}

#[test]
fn sequence_live_playlists_have_no_playlist_type() {
    let a = edit(TS, "#EXT-X-MEDIA-SEQUENCE:7", "#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MEDIA-SEQUENCE:7");
    let grown = format!("{a}#EXTINF:6.00000,\nseg12.ts\n");
    clean(&seq(&[a.clone(), grown]));
    let b = a
        .replace("#EXT-X-MEDIA-SEQUENCE:7", "#EXT-X-MEDIA-SEQUENCE:8")
        .replace("#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.000Z\n#EXTINF:6.00000,\nseg7.ts\n", "");
    fires(&seq(&[a, b]), SEQ_LIVE_TYPE);
}

#[test]
fn sequence_removal_keeps_three_target_durations() {
    let a = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:6.0,\na.ts\n#EXTINF:6.0,\nb.ts\n#EXTINF:6.0,\nc.ts\n";
    let b = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:6\n#EXT-X-MEDIA-SEQUENCE:1\n#EXTINF:6.0,\nb.ts\n#EXTINF:6.0,\nc.ts\n";
    fires(&check_playlist_sequence(&[a, b]), SEQ_MIN_DURATION);
    let b_ok = format!("{b}#EXTINF:6.0,\nd.ts\n");
    clean(&check_playlist_sequence(&[a, &b_ok]));
}

#[test]
fn sequence_parts_never_change() {
    let a = Ll::new(100, 10, 2).text();
    let b = edit(&Ll::new(100, 10, 3).text(), PART_110_1, "#EXT-X-PART:DURATION=0.99000,URI=\"part110.1.m4s\"");
    fires(&seq(&[a, b]), SEQ_PARTS);
    // When the Parent Segment completes, its parts are the ones published.
    let a = Ll::new(100, 10, 3).text();
    let b = edit(&Ll::new(100, 11, 0).text(), PART_110_1, "#EXT-X-PART:DURATION=1.00000,URI=\"part110.1b.m4s\"");
    fires(&seq(&[a, b]), SEQ_PARTS);
}

#[test]
fn sequence_no_parts_added_to_complete_segments() {
    let a = Ll::new(100, 11, 0).text();
    let b = edit(
        &a,
        "#EXTINF:4.00000,\nseg110.m4s",
        "#EXT-X-PART:DURATION=0.10000,URI=\"part110.4.m4s\"\n#EXTINF:4.00000,\nseg110.m4s",
    );
    fires(&seq(&[a.clone(), b]), SEQ_PARTS_ADDED);
    // Nor to a segment that was listed without parts.
    let b = Ll { parts_on: 3, ..Ll::new(100, 11, 0) }.text();
    fires(&seq(&[a, b]), SEQ_PARTS_ADDED);
}

#[test]
fn sequence_parts_removed_in_order() {
    let a = ll();
    // 109 loses its parts while 108 keeps them.
    let mut b = a.clone();
    for k in 0..4 {
        b = edit(&b, &Ll::part(109, k), "");
    }
    fires(&seq(&[a.clone(), b]), SEQ_PARTS_ORDER);
    // 108 loses its last part.
    let b = edit(&a, &Ll::part(108, 3), "");
    fires(&seq(&[a.clone(), b]), SEQ_PARTS_ORDER);
    // 108 loses its first part: in order.
    let b = edit(&a, &Ll::part(108, 0), "");
    clean(&seq(&[a, b]));
}

#[test]
fn sequence_endlist_is_final() {
    let done = format!("{TS}#EXT-X-ENDLIST\n");
    clean(&seq(&[TS.to_string(), done.clone(), done.clone()]));
    fires(&seq(&[done.clone(), TS.to_string()]), SEQ_ENDLIST);
    let more = format!("{TS}#EXTINF:6.00000,\nseg12.ts\n#EXT-X-ENDLIST\n");
    fires(&seq(&[done, more]), SEQ_ENDLIST);
}

#[test]
fn sequence_vod_never_changes() {
    let vod = format!(
        "{}#EXT-X-ENDLIST\n",
        edit(TS, "#EXT-X-MEDIA-SEQUENCE", "#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-MEDIA-SEQUENCE")
    );
    clean(&seq(&[vod.clone(), vod.clone()]));
    fires(&seq(&[vod.clone(), vod.replace("seg11.ts", "seg11b.ts")]), SEQ_TYPE);
    fires(&seq(&[vod.clone(), vod.replace("#EXT-X-PLAYLIST-TYPE:VOD\n", "")]), SEQ_TYPE);
}

// ---------------------------------------------------------------------------
// the rule list is complete
// ---------------------------------------------------------------------------

#[test]
fn rule_strings_cite_a_section_or_say_lockstep() {
    for v in media(&format!("\u{feff}#EXTM3X\n{}", &ll()[8..])) {
        let first = v.rule.split(' ').next().unwrap();
        assert!(
            first.starts_with(|c: char| c.is_ascii_digit() || c == 'B') || first == "lockstep:" || first == "m3u8-rs:",
            "{v}"
        );
    }
}
