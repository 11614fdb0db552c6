//! CMAF / fragmented MP4 writing: one init segment per track and one
//! `moof`+`mdat` fragment per part.
//!
//! Boxes are written with [`write_box`]: reserve the size, write the body in a
//! closure, patch the size. The nesting of closures mirrors the box tree.
//! Every field is a function of the track description or the samples; all
//! creation and modification times are zero.

use crate::codec::{AacConfig, AvcConfig};
use crate::media::{CodecConfig, Track};

/// A sample ready to be written into a fragment.
#[derive(Clone, Copy, Debug)]
pub struct FragSample<'a> {
    pub duration: u32,
    /// PTS - DTS, in track ticks.
    pub composition_offset: i32,
    pub keyframe: bool,
    pub data: &'a [u8],
}

fn put_u16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_be_bytes());
}
fn put_u32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_be_bytes());
}
fn put_u64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_be_bytes());
}

/// Write a box: size placeholder, fourcc, body from `f`, then patch the size.
pub fn write_box(v: &mut Vec<u8>, fourcc: &[u8; 4], f: impl FnOnce(&mut Vec<u8>)) {
    let start = v.len();
    put_u32(v, 0);
    v.extend_from_slice(fourcc);
    f(v);
    let size = (v.len() - start) as u32;
    v[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Write a full box (version and 24-bit flags before the body).
pub fn write_full_box(v: &mut Vec<u8>, fourcc: &[u8; 4], version: u8, flags: u32, f: impl FnOnce(&mut Vec<u8>)) {
    write_box(v, fourcc, |v| {
        put_u32(v, (u32::from(version) << 24) | (flags & 0x00ff_ffff));
        f(v);
    });
}

const UNITY_MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

fn put_matrix(v: &mut Vec<u8>) {
    for m in UNITY_MATRIX {
        put_u32(v, m);
    }
}

/// The init segment (`ftyp` + `moov` with `mvex`) of one CMAF track.
pub fn init_segment(track: &Track) -> Vec<u8> {
    let mut v = Vec::with_capacity(1024);
    write_box(&mut v, b"ftyp", |v| {
        v.extend_from_slice(b"iso6");
        put_u32(v, 0);
        for brand in [b"iso6", b"cmfc", b"mp41"] {
            v.extend_from_slice(brand);
        }
    });
    write_box(&mut v, b"moov", |v| {
        write_full_box(v, b"mvhd", 0, 0, |v| {
            put_u32(v, 0); // creation_time
            put_u32(v, 0); // modification_time
            put_u32(v, 1000); // timescale
            put_u32(v, 0); // duration
            put_u32(v, 0x0001_0000); // rate 1.0
            put_u16(v, 0x0100); // volume 1.0
            v.extend_from_slice(&[0; 10]);
            put_matrix(v);
            v.extend_from_slice(&[0; 24]); // pre_defined
            put_u32(v, track.id.0.saturating_add(1)); // next_track_ID
        });
        write_trak(v, track);
        write_box(v, b"mvex", |v| {
            write_full_box(v, b"trex", 0, 0, |v| {
                put_u32(v, track.id.0);
                put_u32(v, 1); // default_sample_description_index
                put_u32(v, 0); // default_sample_duration
                put_u32(v, 0); // default_sample_size
                put_u32(v, 0); // default_sample_flags
            });
        });
    });
    v
}

fn write_trak(v: &mut Vec<u8>, track: &Track) {
    let (width, height) = match &track.codec {
        CodecConfig::H264(c) => (c.info.width, c.info.height),
        CodecConfig::Aac(_) => (0, 0),
    };
    let is_audio = matches!(track.codec, CodecConfig::Aac(_));
    write_box(v, b"trak", |v| {
        // flags: track_enabled | track_in_movie
        write_full_box(v, b"tkhd", 0, 0x3, |v| {
            put_u32(v, 0); // creation_time
            put_u32(v, 0); // modification_time
            put_u32(v, track.id.0);
            put_u32(v, 0); // reserved
            put_u32(v, 0); // duration
            v.extend_from_slice(&[0; 8]);
            put_u16(v, 0); // layer
            put_u16(v, 0); // alternate_group
            put_u16(v, if is_audio { 0x0100 } else { 0 }); // volume
            put_u16(v, 0);
            put_matrix(v);
            put_u32(v, width << 16);
            put_u32(v, height << 16);
        });
        write_box(v, b"mdia", |v| {
            write_full_box(v, b"mdhd", 0, 0, |v| {
                put_u32(v, 0);
                put_u32(v, 0);
                put_u32(v, track.timescale.get());
                put_u32(v, 0);
                put_u16(v, 0x55c4); // 'und'
                put_u16(v, 0);
            });
            write_full_box(v, b"hdlr", 0, 0, |v| {
                put_u32(v, 0);
                v.extend_from_slice(if is_audio { b"soun" } else { b"vide" });
                v.extend_from_slice(&[0; 12]);
                v.extend_from_slice(if is_audio { b"SoundHandler\0".as_slice() } else { b"VideoHandler\0".as_slice() });
            });
            write_box(v, b"minf", |v| {
                if is_audio {
                    write_full_box(v, b"smhd", 0, 0, |v| put_u32(v, 0));
                } else {
                    write_full_box(v, b"vmhd", 0, 1, |v| v.extend_from_slice(&[0; 8]));
                }
                write_box(v, b"dinf", |v| {
                    write_full_box(v, b"dref", 0, 0, |v| {
                        put_u32(v, 1);
                        write_full_box(v, b"url ", 0, 1, |_| {});
                    });
                });
                write_box(v, b"stbl", |v| {
                    write_full_box(v, b"stsd", 0, 0, |v| {
                        put_u32(v, 1);
                        match &track.codec {
                            CodecConfig::H264(c) => write_avc1(v, c),
                            CodecConfig::Aac(c) => write_mp4a(v, c, track),
                        }
                    });
                    write_full_box(v, b"stts", 0, 0, |v| put_u32(v, 0));
                    write_full_box(v, b"stsc", 0, 0, |v| put_u32(v, 0));
                    write_full_box(v, b"stsz", 0, 0, |v| {
                        put_u32(v, 0);
                        put_u32(v, 0);
                    });
                    write_full_box(v, b"stco", 0, 0, |v| put_u32(v, 0));
                });
            });
        });
    });
}

fn write_avc1(v: &mut Vec<u8>, c: &AvcConfig) {
    write_box(v, b"avc1", |v| {
        v.extend_from_slice(&[0; 6]);
        put_u16(v, 1); // data_reference_index
        v.extend_from_slice(&[0; 16]); // pre_defined, reserved
        put_u16(v, c.info.width.min(0xffff) as u16);
        put_u16(v, c.info.height.min(0xffff) as u16);
        put_u32(v, 0x0048_0000); // 72 dpi
        put_u32(v, 0x0048_0000);
        put_u32(v, 0);
        put_u16(v, 1); // frame_count
        v.extend_from_slice(&[0; 32]); // compressorname
        put_u16(v, 0x0018); // depth
        put_u16(v, 0xffff); // pre_defined = -1
        write_box(v, b"avcC", |v| v.extend_from_slice(&c.avcc));
    });
}

/// An MPEG-4 descriptor (ISO 14496-1 7.2.2.1): tag, expandable size, body.
fn write_descriptor(v: &mut Vec<u8>, tag: u8, body: &[u8]) {
    v.push(tag);
    let len = body.len() as u32;
    // Minimal expandable-size encoding, 7 bits per byte, high bit = more.
    let mut groups = Vec::with_capacity(4);
    let mut rest = len;
    loop {
        groups.push((rest & 0x7f) as u8);
        rest >>= 7;
        if rest == 0 {
            break;
        }
    }
    for (i, g) in groups.iter().rev().enumerate() {
        let more = i + 1 < groups.len();
        v.push(if more { g | 0x80 } else { *g });
    }
    v.extend_from_slice(body);
}

fn write_mp4a(v: &mut Vec<u8>, c: &AacConfig, track: &Track) {
    write_box(v, b"mp4a", |v| {
        v.extend_from_slice(&[0; 6]);
        put_u16(v, 1); // data_reference_index
        v.extend_from_slice(&[0; 8]);
        put_u16(v, u16::from(c.channels.max(1)));
        put_u16(v, 16); // samplesize
        put_u16(v, 0);
        put_u16(v, 0);
        let rate = if c.sample_rate <= 0xffff { c.sample_rate << 16 } else { 0 };
        put_u32(v, rate);
        write_full_box(v, b"esds", 0, 0, |v| {
            let mut dsi = Vec::new();
            write_descriptor(&mut dsi, 0x05, &c.asc);
            let mut dcd = Vec::new();
            dcd.push(0x40); // objectTypeIndication: MPEG-4 Audio
            dcd.push(0x15); // streamType audio (5) << 2 | reserved 1
            dcd.extend_from_slice(&[0, 0, 0]); // bufferSizeDB
            let bitrate = track.bitrate_hint.unwrap_or(0);
            dcd.extend_from_slice(&bitrate.to_be_bytes()); // maxBitrate
            dcd.extend_from_slice(&bitrate.to_be_bytes()); // avgBitrate
            dcd.extend_from_slice(&dsi);
            let mut es = Vec::new();
            es.extend_from_slice(&(track.id.0.min(0xffff) as u16).to_be_bytes()); // ES_ID
            es.push(0); // flags
            write_descriptor(&mut es, 0x04, &dcd);
            write_descriptor(&mut es, 0x06, &[0x02]); // SLConfig: predefined MP4
            write_descriptor(v, 0x03, &es);
        });
    });
}

/// `sample_flags` (ISO 14496-12 8.8.3.1) for sync and non-sync samples.
const FLAGS_SYNC: u32 = 0x0200_0000; // sample_depends_on = 2 (independent)
const FLAGS_NON_SYNC: u32 = 0x0101_0000; // depends_on = 1, is_non_sync_sample

/// One CMAF chunk: `moof` (mfhd, traf(tfhd, tfdt, trun)) followed by `mdat`.
///
/// `sequence` goes into `mfhd`; `base_decode_time` into `tfdt`. Both are
/// chosen by the caller from the timeline, never from a counter.
pub fn fragment(track: &Track, sequence: u32, base_decode_time: u64, samples: &[FragSample<'_>]) -> Vec<u8> {
    let is_video = matches!(track.codec, CodecConfig::H264(_));
    let payload: usize = samples.iter().map(|s| s.data.len()).sum();
    let mut v = Vec::with_capacity(payload + 64 + samples.len() * 16);
    let mut data_offset_at = 0usize;
    write_box(&mut v, b"moof", |v| {
        write_full_box(v, b"mfhd", 0, 0, |v| put_u32(v, sequence));
        write_box(v, b"traf", |v| {
            // default-base-is-moof
            write_full_box(v, b"tfhd", 0, 0x02_0000, |v| put_u32(v, track.id.0));
            write_full_box(v, b"tfdt", 1, 0, |v| put_u64(v, base_decode_time));
            // data-offset | duration | size (| flags | composition offset)
            let flags = if is_video { 0x0001 | 0x0100 | 0x0200 | 0x0400 | 0x0800 } else { 0x0001 | 0x0100 | 0x0200 };
            write_full_box(v, b"trun", u8::from(is_video), flags, |v| {
                put_u32(v, samples.len() as u32);
                data_offset_at = v.len();
                put_u32(v, 0); // data_offset, patched below
                for s in samples {
                    put_u32(v, s.duration);
                    put_u32(v, s.data.len() as u32);
                    if is_video {
                        put_u32(v, if s.keyframe { FLAGS_SYNC } else { FLAGS_NON_SYNC });
                        put_u32(v, s.composition_offset as u32);
                    }
                }
            });
        });
    });
    // The data offset counts from the start of moof to the first mdat byte.
    let data_offset = (v.len() + 8) as u32;
    v[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    put_u32(&mut v, (payload + 8) as u32);
    v.extend_from_slice(b"mdat");
    for s in samples {
        v.extend_from_slice(s.data);
    }
    v
}

// ------------------------------------------------------------- inspect ---

/// A readable box tree of an init segment, part or segment: one line per box
/// with its size and the fields that identify it on the timeline. Used by
/// golden snapshots and by `lockstep verify`; bounded and panic-free on any
/// input.
pub fn summarize(buf: &[u8]) -> Result<String, String> {
    let mut out = String::new();
    summarize_level(buf, 0, &mut out)?;
    Ok(out)
}

const CONTAINERS: &[&[u8; 4]] = &[b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf", b"dinf"];

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some((u64::from(be32(b, at)?) << 32) | u64::from(be32(b, at + 4)?))
}

fn summarize_level(buf: &[u8], depth: usize, out: &mut String) -> Result<(), String> {
    use std::fmt::Write as _;
    if depth > 8 {
        return Err("boxes nested too deeply".into());
    }
    let mut at = 0usize;
    while at < buf.len() {
        let size = be32(buf, at).ok_or_else(|| format!("truncated box header at {at}"))? as usize;
        let fourcc: [u8; 4] = buf
            .get(at + 4..at + 8)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| format!("truncated box header at {at}"))?;
        if size < 8 || at + size > buf.len() {
            return Err(format!("box {} at {at}: bad size {size}", String::from_utf8_lossy(&fourcc)));
        }
        let body = &buf[at + 8..at + size];
        let name = String::from_utf8_lossy(&fourcc).into_owned();
        let _ = write!(out, "{:indent$}{name} {size}", "", indent = depth * 2);
        match &fourcc {
            b"ftyp" => {
                let brand = |c: &[u8]| String::from_utf8_lossy(c).into_owned();
                let major = body.get(0..4).map(brand).unwrap_or_default();
                let minor = be32(body, 4).unwrap_or(0);
                let compat: Vec<String> = body.get(8..).unwrap_or_default().chunks(4).map(brand).collect();
                let _ = write!(out, " major={major} minor={minor} compatible={}", compat.join(","));
            }
            b"mvhd" | b"mdhd" => {
                let ts = if body.first() == Some(&1) { be32(body, 20) } else { be32(body, 12) };
                let _ = write!(out, " timescale={}", ts.unwrap_or(0));
            }
            b"tkhd" => {
                let id = if body.first() == Some(&1) { be32(body, 20) } else { be32(body, 12) };
                let _ = write!(out, " track_id={}", id.unwrap_or(0));
            }
            b"mfhd" => {
                let _ = write!(out, " sequence={}", be32(body, 4).unwrap_or(0));
            }
            b"tfdt" => {
                let t = if body.first() == Some(&1) { be64(body, 4) } else { be32(body, 4).map(u64::from) };
                let _ = write!(out, " base_media_decode_time={}", t.unwrap_or(0));
            }
            b"trun" => {
                let flags = be32(body, 0).unwrap_or(0) & 0xff_ffff;
                let count = be32(body, 4).unwrap_or(0);
                let mut off = 8 + if flags & 1 != 0 { 4 } else { 0 } + if flags & 4 != 0 { 4 } else { 0 };
                let per = [0x100, 0x200, 0x400, 0x800].iter().filter(|f| flags & **f != 0).count() * 4;
                let mut total = 0u64;
                let mut sync = 0u32;
                for _ in 0..count.min(100_000) {
                    if flags & 0x100 != 0 {
                        total += u64::from(be32(body, off).unwrap_or(0));
                    }
                    if flags & 0x400 != 0 {
                        let f = be32(
                            body,
                            off + if flags & 0x100 != 0 { 4 } else { 0 } + if flags & 0x200 != 0 { 4 } else { 0 },
                        );
                        if f.is_some_and(|f| f & 0x0001_0000 == 0) {
                            sync += 1;
                        }
                    }
                    off += per;
                }
                let _ = write!(out, " samples={count} duration={total}");
                if flags & 0x400 != 0 {
                    let _ = write!(out, " sync={sync}");
                }
            }
            b"stsd" => {
                // entry_count then sample entries: name the first one.
                if let Some(e) = body.get(12..16) {
                    let _ = write!(out, " entry={}", String::from_utf8_lossy(e));
                }
            }
            _ => {}
        }
        out.push('\n');
        if CONTAINERS.contains(&&fourcc) {
            summarize_level(body, depth + 1, out)?;
        }
        at += size;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_box_patches_size_and_nests() {
        let mut v = Vec::new();
        write_box(&mut v, b"moof", |v| write_full_box(v, b"mfhd", 0, 0, |v| put_u32(v, 7)));
        assert_eq!(v.len(), 8 + 16);
        assert_eq!(&v[0..8], &[0, 0, 0, 24, b'm', b'o', b'o', b'f']);
        assert_eq!(summarize(&v).as_deref(), Ok("moof 24\n  mfhd 16 sequence=7\n"));
    }

    #[test]
    fn descriptor_sizes_use_minimal_expandable_encoding() {
        let cases: &[(usize, &[u8])] =
            &[(0, &[0x03, 0x00]), (127, &[0x03, 0x7f]), (128, &[0x03, 0x81, 0x00]), (300, &[0x03, 0x82, 0x2c])];
        for (len, head) in cases {
            let mut v = Vec::new();
            write_descriptor(&mut v, 0x03, &vec![0u8; *len]);
            assert_eq!(&v[..head.len()], *head, "len {len}");
            assert_eq!(v.len(), head.len() + len);
        }
    }

    #[test]
    fn summarize_rejects_bad_sizes_without_panicking() {
        for bad in [&[0u8, 0, 0, 4, b'm', b'o', b'o', b'v'][..], &[0, 0, 0, 99, b'x', b'x', b'x', b'x'], &[0, 0, 1]] {
            assert!(summarize(bad).is_err());
        }
    }
}
