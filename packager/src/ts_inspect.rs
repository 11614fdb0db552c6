//! A stable, human-readable summary of an MPEG-TS buffer, for golden
//! snapshot tests and the `verify` command.
//!
//! [`summarize_ts`] reads any bytes: every read is bounds-checked, work is
//! linear in the input, and malformed input yields an `Err` or a summary that
//! counts the problem, never a panic.

use std::collections::BTreeMap;
use std::fmt;

use crate::ts_mux::{crc32_mpeg2, TS_PACKET_SIZE};

const SYNC_BYTE: u8 = 0x47;
const PID_PAT: u16 = 0x0000;
const PID_NULL: u16 = 0x1FFF;

/// A Program Clock Reference: 33-bit base (90 kHz) and 9-bit extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pcr {
    /// 33-bit base, 90 kHz.
    pub base: u64,
    /// 9-bit extension, 27 MHz (0..300).
    pub extension: u16,
}

impl fmt::Display for Pcr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.base, self.extension)
    }
}

/// What one PID carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PidSummary {
    /// `stream_type` from the PMT, if the PMT listed this PID.
    pub stream_type: Option<u8>,
    /// Packets on this PID.
    pub packets: usize,
    /// Continuity counter of the first packet.
    pub first_cc: u8,
    /// Continuity counter of the last packet.
    pub last_cc: u8,
    /// Every packet with payload incremented the counter by one (mod 16) and
    /// every packet without payload repeated it. Always true for null packets.
    pub cc_continuous: bool,
    /// Packets with payload_unit_start_indicator.
    pub unit_starts: usize,
    /// Unit starts whose payload begins with a PES start code.
    pub pes: usize,
    /// PES headers that carry an explicit DTS.
    pub pes_with_dts: usize,
    /// PES with a non-zero PES_packet_length whose payload bytes did not add
    /// up to that length.
    pub pes_length_mismatches: usize,
    /// PTS of the first PES that has one (90 kHz, 33-bit).
    pub first_pts: Option<u64>,
    /// PTS of the last PES that has one.
    pub last_pts: Option<u64>,
    /// Decode time of the first PES: its DTS field, or its PTS where there
    /// is no DTS.
    pub first_dts: Option<u64>,
    /// Decode time of the last PES, like `first_dts`.
    pub last_dts: Option<u64>,
    /// Packets carrying a PCR.
    pub pcr_count: usize,
    /// First PCR on this PID.
    pub first_pcr: Option<Pcr>,
    /// Last PCR on this PID.
    pub last_pcr: Option<Pcr>,
    /// Packets with random_access_indicator set.
    pub random_access: usize,
}

/// Summary of a transport stream; see [`summarize_ts`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsSummary {
    /// 188-byte packets in the buffer.
    pub packets: usize,
    /// PMT PID announced by the first PAT (first non-zero program).
    pub pmt_pid: Option<u16>,
    /// PCR_PID of the first PMT.
    pub pcr_pid: Option<u16>,
    /// Packet 0 is a PAT and packet 1 the PMT it points to, both single
    /// sections with valid CRCs.
    pub pat_pmt_first: bool,
    /// Packets with random_access_indicator set, over all PIDs.
    pub random_access_packets: usize,
    /// Packets whose adaptation field length does not fit the packet.
    pub malformed_packets: usize,
    /// Per-PID details, by PID.
    pub pids: BTreeMap<u16, PidSummary>,
}

impl TsSummary {
    /// True if the first two packets are a valid PAT and its PMT.
    pub fn starts_with_pat_pmt(&self) -> bool {
        self.pat_pmt_first
    }

    /// True if every PID (other than null packets) starts at continuity
    /// counter 0 and never skips. False for an empty stream.
    pub fn cc_continuous_from_zero(&self) -> bool {
        !self.pids.is_empty()
            && self.pids.iter().all(|(&pid, s)| pid == PID_NULL || (s.first_cc == 0 && s.cc_continuous))
    }
}

/// Per-PID parser state that is not part of the summary.
#[derive(Default)]
struct PesTracker {
    /// Declared PES_packet_length (non-zero) and payload bytes seen so far of
    /// the PES in progress.
    open: Option<(usize, usize)>,
}

impl PesTracker {
    fn close(&mut self, summary: &mut PidSummary) {
        if let Some((declared, seen)) = self.open.take() {
            if seen != declared + 6 {
                summary.pes_length_mismatches += 1;
            }
        }
    }
}

/// Summarise `buf`, which must be a whole number of 188-byte packets each
/// starting with the sync byte 0x47. An empty buffer is an empty summary.
pub fn summarize_ts(buf: &[u8]) -> Result<TsSummary, String> {
    if !buf.chunks_exact(TS_PACKET_SIZE).remainder().is_empty() {
        return Err(format!("length {} is not a multiple of {TS_PACKET_SIZE}", buf.len()));
    }
    let mut summary = TsSummary {
        packets: 0,
        pmt_pid: None,
        pcr_pid: None,
        pat_pmt_first: false,
        random_access_packets: 0,
        malformed_packets: 0,
        pids: BTreeMap::new(),
    };
    let mut trackers: BTreeMap<u16, PesTracker> = BTreeMap::new();
    let mut stream_types: Option<Vec<(u16, u8)>> = None;
    let mut first_pat_ok = false;
    let mut second_pmt_ok = false;

    for (index, chunk) in buf.chunks_exact(TS_PACKET_SIZE).enumerate() {
        let Ok(p) = <&[u8; TS_PACKET_SIZE]>::try_from(chunk) else {
            // chunks_exact only yields chunks of exactly this size.
            continue;
        };
        if p[0] != SYNC_BYTE {
            return Err(format!(
                "packet {index} (byte {}): sync byte {:#04x}, expected 0x47",
                index * TS_PACKET_SIZE,
                p[0]
            ));
        }
        summary.packets += 1;
        let pusi = p[1] & 0x40 != 0;
        let pid = (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
        let afc = (p[3] >> 4) & 0x03;
        let cc = p[3] & 0x0F;
        let has_payload = afc & 0x01 != 0;

        // Adaptation field.
        let mut payload_start = 4;
        let mut malformed = false;
        let mut random_access = false;
        let mut pcr = None;
        if afc & 0x02 != 0 {
            let af_len = usize::from(p[4]);
            let max = if has_payload { 182 } else { 183 };
            if af_len > max {
                malformed = true;
            } else {
                payload_start = 5 + af_len;
                if af_len >= 1 {
                    let flags = p[5];
                    random_access = flags & 0x40 != 0;
                    if flags & 0x10 != 0 {
                        if af_len >= 7 {
                            pcr = Some(read_pcr(&p[6..12]));
                        } else {
                            malformed = true;
                        }
                    }
                }
            }
        }
        let payload: &[u8] = if has_payload && !malformed { p.get(payload_start..).unwrap_or(&[]) } else { &[] };

        let s = summary.pids.entry(pid).or_insert_with(|| PidSummary {
            stream_type: None,
            packets: 0,
            first_cc: cc,
            last_cc: cc,
            cc_continuous: true,
            unit_starts: 0,
            pes: 0,
            pes_with_dts: 0,
            pes_length_mismatches: 0,
            first_pts: None,
            last_pts: None,
            first_dts: None,
            last_dts: None,
            pcr_count: 0,
            first_pcr: None,
            last_pcr: None,
            random_access: 0,
        });
        if s.packets > 0 && pid != PID_NULL {
            let expected = if has_payload { (s.last_cc + 1) & 0x0F } else { s.last_cc };
            if cc != expected {
                s.cc_continuous = false;
            }
        }
        s.packets += 1;
        s.last_cc = cc;
        if malformed {
            summary.malformed_packets += 1;
        }
        if random_access {
            s.random_access += 1;
            summary.random_access_packets += 1;
        }
        if let Some(pcr) = pcr {
            s.pcr_count += 1;
            s.first_pcr.get_or_insert(pcr);
            s.last_pcr = Some(pcr);
        }

        let tracker = trackers.entry(pid).or_default();
        if pusi && has_payload {
            s.unit_starts += 1;
            tracker.close(s);
            if let Some(h) = parse_pes_header(payload) {
                s.pes += 1;
                if h.has_dts {
                    s.pes_with_dts += 1;
                }
                if let Some(pts) = h.pts {
                    s.first_pts.get_or_insert(pts);
                    s.last_pts = Some(pts);
                }
                if let Some(dts) = h.dts {
                    s.first_dts.get_or_insert(dts);
                    s.last_dts = Some(dts);
                }
                if h.packet_length != 0 {
                    tracker.open = Some((h.packet_length, payload.len()));
                }
            }
        } else if let Some((_, seen)) = tracker.open.as_mut() {
            *seen += payload.len();
        }

        // PSI: remember the first PAT and PMT.
        if pusi && pid == PID_PAT {
            let pat = parse_pat(payload);
            if index == 0 {
                first_pat_ok = pat.is_some();
            }
            if summary.pmt_pid.is_none() {
                summary.pmt_pid = pat;
            }
        } else if pusi && summary.pmt_pid == Some(pid) {
            let pmt = parse_pmt(payload);
            if index == 1 {
                second_pmt_ok = pmt.is_some();
            }
            if stream_types.is_none() {
                if let Some((pcr_pid, streams)) = pmt {
                    summary.pcr_pid = Some(pcr_pid);
                    stream_types = Some(streams);
                }
            }
        }
    }

    for (pid, tracker) in &mut trackers {
        if let Some(s) = summary.pids.get_mut(pid) {
            tracker.close(s);
        }
    }
    for &(pid, stream_type) in stream_types.iter().flatten() {
        if let Some(s) = summary.pids.get_mut(&pid) {
            s.stream_type.get_or_insert(stream_type);
        }
    }
    summary.pat_pmt_first = first_pat_ok && second_pmt_ok;
    Ok(summary)
}

fn read_pcr(b: &[u8]) -> Pcr {
    let byte = |i: usize| u64::from(b.get(i).copied().unwrap_or(0));
    let base = (byte(0) << 25) | (byte(1) << 17) | (byte(2) << 9) | (byte(3) << 1) | (byte(4) >> 7);
    let extension = ((byte(4) as u16 & 0x01) << 8) | byte(5) as u16;
    Pcr { base, extension }
}

struct PesHeader {
    packet_length: usize,
    pts: Option<u64>,
    /// The DTS field, or the PTS if there is none.
    dts: Option<u64>,
    has_dts: bool,
}

/// Parse a PES header from the start of a unit's first payload. `None`
/// unless the payload starts with a packet_start_code_prefix.
fn parse_pes_header(payload: &[u8]) -> Option<PesHeader> {
    if payload.get(0..3)? != [0x00, 0x00, 0x01] {
        return None;
    }
    let stream_id = *payload.get(3)?;
    let packet_length = usize::from(u16::from_be_bytes([*payload.get(4)?, *payload.get(5)?]));
    let mut h = PesHeader { packet_length, pts: None, dts: None, has_dts: false };
    // Stream ids without the optional PES header: program_stream_map,
    // padding, private_stream_2, ECM, EMM, DSMCC, H.222.1 type E, directory.
    if matches!(stream_id, 0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF) {
        return Some(h);
    }
    let flags = *payload.get(7)?;
    if flags & 0x80 != 0 {
        h.pts = payload.get(9..14).map(read_timestamp);
        h.dts = h.pts;
    }
    if flags & 0xC0 == 0xC0 {
        if let Some(dts) = payload.get(14..19).map(read_timestamp) {
            h.dts = Some(dts);
            h.has_dts = true;
        }
    }
    Some(h)
}

/// The 33-bit value of a 5-byte PTS/DTS field (marker bits ignored).
fn read_timestamp(b: &[u8]) -> u64 {
    let byte = |i: usize| u64::from(b.get(i).copied().unwrap_or(0));
    ((byte(0) >> 1) & 0x07) << 30 | byte(1) << 22 | (byte(2) >> 1) << 15 | byte(3) << 7 | byte(4) >> 1
}

/// The PSI section that starts in a unit's first payload (after the
/// pointer_field), if it has the syntax indicator, fits the payload, and its
/// CRC is right. Returns (table_id, section without CRC).
fn psi_section(payload: &[u8]) -> Option<(u8, &[u8])> {
    let pointer = usize::from(*payload.first()?);
    let section = payload.get(1 + pointer..)?;
    let table_id = *section.first()?;
    let b1 = *section.get(1)?;
    if b1 & 0x80 == 0 {
        return None;
    }
    let section_length = usize::from(u16::from_be_bytes([b1 & 0x0F, *section.get(2)?]));
    if section_length < 9 {
        return None;
    }
    let whole = section.get(..3 + section_length)?;
    // The CRC over a section including its own CRC field is zero.
    if crc32_mpeg2(whole) != 0 {
        return None;
    }
    // section_length >= 9, so `whole` is at least 12 bytes long.
    Some((table_id, whole.get(..whole.len() - 4)?))
}

/// PMT PID of the first non-zero program of a PAT.
fn parse_pat(payload: &[u8]) -> Option<u16> {
    let (table_id, section) = psi_section(payload)?;
    if table_id != 0x00 {
        return None;
    }
    section.get(8..)?.chunks_exact(4).find_map(|entry| match *entry {
        [p_hi, p_lo, pid_hi, pid_lo] if u16::from_be_bytes([p_hi, p_lo]) != 0 => {
            Some(u16::from_be_bytes([pid_hi & 0x1F, pid_lo]))
        }
        _ => None,
    })
}

/// PCR_PID and (PID, stream_type) pairs of a PMT.
fn parse_pmt(payload: &[u8]) -> Option<(u16, Vec<(u16, u8)>)> {
    let (table_id, section) = psi_section(payload)?;
    if table_id != 0x02 {
        return None;
    }
    let pcr_pid = u16::from_be_bytes([*section.get(8)? & 0x1F, *section.get(9)?]);
    let program_info_length = usize::from(u16::from_be_bytes([*section.get(10)? & 0x0F, *section.get(11)?]));
    let mut rest = section.get(12 + program_info_length..)?;
    let mut streams = Vec::new();
    while let [stream_type, pid_hi, pid_lo, len_hi, len_lo, tail @ ..] = rest {
        let pid = u16::from_be_bytes([pid_hi & 0x1F, *pid_lo]);
        let es_info_length = usize::from(u16::from_be_bytes([len_hi & 0x0F, *len_lo]));
        streams.push((pid, *stream_type));
        rest = tail.get(es_info_length..)?;
    }
    Some((pcr_pid, streams))
}

fn fmt_range<T: fmt::Display>(first: &Option<T>, last: &Option<T>) -> String {
    match (first, last) {
        (Some(a), Some(b)) => format!("{a}..{b}"),
        _ => "-".to_string(),
    }
}

impl fmt::Display for TsSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pid_opt = |p: Option<u16>| p.map_or_else(|| "-".to_string(), |p| format!("{p:#06x}"));
        writeln!(f, "packets: {}", self.packets)?;
        writeln!(f, "starts with PAT, PMT: {}", self.pat_pmt_first)?;
        writeln!(f, "PMT PID: {}", pid_opt(self.pmt_pid))?;
        writeln!(f, "PCR PID: {}", pid_opt(self.pcr_pid))?;
        writeln!(f, "random access packets: {}", self.random_access_packets)?;
        writeln!(f, "malformed packets: {}", self.malformed_packets)?;
        for (&pid, s) in &self.pids {
            let label = match (pid, s.stream_type) {
                (PID_PAT, _) => "PAT".to_string(),
                (PID_NULL, _) => "null".to_string(),
                (_, Some(0x1B)) => "H.264".to_string(),
                (_, Some(0x0F)) => "AAC ADTS".to_string(),
                (_, Some(t)) => format!("stream_type {t:#04x}"),
                _ if Some(pid) == self.pmt_pid => "PMT".to_string(),
                _ => "unlisted".to_string(),
            };
            writeln!(f, "pid {pid:#06x} ({label})")?;
            writeln!(f, "  packets: {}", s.packets)?;
            writeln!(
                f,
                "  cc: {}..{} {}",
                s.first_cc,
                s.last_cc,
                if s.cc_continuous { "continuous" } else { "DISCONTINUOUS" }
            )?;
            writeln!(f, "  unit starts: {}", s.unit_starts)?;
            if s.pes > 0 {
                writeln!(
                    f,
                    "  pes: {} (with dts: {}, length mismatches: {})",
                    s.pes, s.pes_with_dts, s.pes_length_mismatches
                )?;
                writeln!(f, "  pts: {}", fmt_range(&s.first_pts, &s.last_pts))?;
                writeln!(f, "  dts: {}", fmt_range(&s.first_dts, &s.last_dts))?;
            }
            if s.pcr_count > 0 {
                writeln!(f, "  pcr: {} ({})", s.pcr_count, fmt_range(&s.first_pcr, &s.last_pcr))?;
            }
            if s.random_access > 0 {
                writeln!(f, "  random access: {}", s.random_access)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{AacConfig, AvcConfig, SpsInfo};
    use crate::media::{CodecConfig, Sample, Timescale, Track, TrackId};
    use crate::ts_mux::{mux_segment, PID_VIDEO};
    use bytes::Bytes;

    fn tracks() -> (Track, Track) {
        let video = Track {
            id: TrackId(1),
            timescale: Timescale::MPEG,
            codec: CodecConfig::H264(AvcConfig {
                avcc: Bytes::new(),
                sps: vec![Bytes::from_static(&[0x67, 0x42, 0x00, 0x1E])],
                pps: vec![Bytes::from_static(&[0x68, 0xCE])],
                nal_length_size: 4,
                info: SpsInfo {
                    profile_idc: 66,
                    constraint_flags: 0,
                    level_idc: 30,
                    width: 16,
                    height: 16,
                    frame_rate: None,
                },
            }),
            bitrate_hint: None,
        };
        let audio = Track {
            id: TrackId(2),
            timescale: Timescale::new(48_000).unwrap_or(Timescale::MPEG),
            codec: CodecConfig::Aac(AacConfig {
                asc: Bytes::from_static(&[0x11, 0x90]),
                object_type: 2,
                sample_rate_index: 3,
                sample_rate: 48_000,
                channels: 2,
            }),
            bitrate_hint: None,
        };
        (video, audio)
    }

    /// A small A/V segment: 4 video frames (300 B, keyframe first, one
    /// B-frame-like PTS offset) and 6 audio frames (250 B).
    fn segment() -> Vec<u8> {
        let (v, a) = tracks();
        let mut samples = Vec::new();
        for i in 0..4i64 {
            // 300-byte NAL unit behind its 4-byte length prefix.
            let mut data = vec![0, 0, 0x01, 0x2C, if i == 0 { 0x65 } else { 0x41 }];
            data.resize(4 + 300, 0xAB);
            samples.push(Sample {
                track: TrackId(1),
                dts: 900_000 + i * 3000,
                pts: 900_000 + i * 3000 + if i == 1 { 6000 } else { 0 },
                keyframe: i == 0,
                data: Bytes::from(data),
                discontinuity: false,
            });
        }
        for i in 0..6i64 {
            samples.push(Sample {
                track: TrackId(2),
                dts: 480_000 + i * 1024,
                pts: 480_000 + i * 1024,
                keyframe: true,
                data: Bytes::from(vec![0x21; 250]),
                discontinuity: false,
            });
        }
        let refs: Vec<&Sample> = samples.iter().collect();
        mux_segment(&[&v, &a], &refs).unwrap().to_vec()
    }

    /// One hand-made packet: header, optional adaptation field bytes
    /// (including the length byte), payload, 0xFF fill.
    fn packet(pid: u16, pusi: bool, afc: u8, cc: u8, af: &[u8], payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x47, u8::from(pusi) << 6 | (pid >> 8) as u8, pid as u8, afc << 4 | cc];
        p.extend_from_slice(af);
        p.extend_from_slice(payload);
        p.resize(TS_PACKET_SIZE, 0xFF);
        p
    }

    #[test]
    fn golden_summary_of_a_muxed_segment() {
        let ts = segment();
        let summary = summarize_ts(&ts).unwrap();
        assert!(summary.starts_with_pat_pmt());
        assert!(summary.cc_continuous_from_zero());
        let want = "\
packets: 22
starts with PAT, PMT: true
PMT PID: 0x1000
PCR PID: 0x0100
random access packets: 1
malformed packets: 0
pid 0x0000 (PAT)
  packets: 1
  cc: 0..0 continuous
  unit starts: 1
pid 0x0100 (H.264)
  packets: 8
  cc: 0..7 continuous
  unit starts: 4
  pes: 4 (with dts: 1, length mismatches: 0)
  pts: 900000..909000
  dts: 900000..909000
  pcr: 4 (900000:0..909000:0)
  random access: 1
pid 0x0101 (AAC ADTS)
  packets: 12
  cc: 0..11 continuous
  unit starts: 6
  pes: 6 (with dts: 0, length mismatches: 0)
  pts: 900000..909600
  dts: 900000..909600
pid 0x1000 (PMT)
  packets: 1
  cc: 0..0 continuous
  unit starts: 1
";
        assert_eq!(summary.to_string(), want);
    }

    #[test]
    fn rejects_bad_framing() {
        let ts = segment();
        let cases: &[(Vec<u8>, &str)] = &[
            (ts[..ts.len() - 1].to_vec(), "not a multiple of 188"),
            (vec![0x47; 187], "not a multiple of 188"),
            (
                {
                    let mut t = ts.clone();
                    t[2 * TS_PACKET_SIZE] = 0x46;
                    t
                },
                "packet 2 (byte 376): sync byte 0x46",
            ),
        ];
        for (buf, want) in cases {
            let err = summarize_ts(buf).unwrap_err();
            assert!(err.contains(want), "{err}");
        }
    }

    #[test]
    fn empty_input_is_an_empty_summary() {
        let s = summarize_ts(&[]).unwrap();
        assert_eq!(s.packets, 0);
        assert!(!s.starts_with_pat_pmt());
        assert!(!s.cc_continuous_from_zero());
    }

    #[test]
    fn detects_cc_and_psi_problems() {
        let ts = segment();
        let set_cc = |t: &mut Vec<u8>, packet: usize, cc: u8| {
            let b = &mut t[packet * TS_PACKET_SIZE + 3];
            *b = (*b & 0xF0) | cc;
        };
        // (mutation, starts_with_pat_pmt, cc_continuous_from_zero)
        type Mutation = Box<dyn Fn(&mut Vec<u8>)>;
        let cases: Vec<(&str, Mutation, bool, bool)> = vec![
            ("untouched", Box::new(|_| {}), true, true),
            ("PAT CRC", Box::new(|t| t[20] ^= 1), false, true),
            ("PMT CRC", Box::new(|t| t[TS_PACKET_SIZE + 30] ^= 1), false, true),
            (
                "PMT first",
                Box::new(|t| {
                    let (a, b) = t.split_at_mut(TS_PACKET_SIZE);
                    a.swap_with_slice(&mut b[..TS_PACKET_SIZE]);
                }),
                false,
                true,
            ),
            ("PAT cc 1", Box::new(move |t| set_cc(t, 0, 1)), true, false),
            (
                "video cc gap",
                Box::new(move |t| {
                    let n = t.len() / TS_PACKET_SIZE;
                    let last_video = (0..n).rev().find(|&i| t[i * TS_PACKET_SIZE + 2] == PID_VIDEO as u8).unwrap_or(0);
                    set_cc(t, last_video, 15)
                }),
                true,
                false,
            ),
        ];
        for (name, mutate, pat_pmt, cc) in cases {
            let mut t = ts.clone();
            mutate(&mut t);
            let s = summarize_ts(&t).unwrap();
            assert_eq!(s.starts_with_pat_pmt(), pat_pmt, "{name}\n{s}");
            assert_eq!(s.cc_continuous_from_zero(), cc, "{name}\n{s}");
        }
    }

    #[test]
    fn packet_level_details() {
        let pes_short = [0x00, 0x00, 0x01, 0xC0, 0x00, 0x20, 0x84, 0x80, 0x05];
        let cases: &[(&str, Vec<Vec<u8>>, &str)] = &[
            (
                "adaptation-only packet repeats the counter",
                vec![
                    packet(0x100, false, 0b01, 0, &[], &[]),
                    packet(0x100, false, 0b10, 0, &[183, 0x00], &[]),
                    packet(0x100, false, 0b01, 1, &[], &[]),
                ],
                "cc: 0..1 continuous",
            ),
            (
                "counter wraps",
                vec![packet(0x100, false, 0b01, 15, &[], &[]), packet(0x100, false, 0b01, 0, &[], &[])],
                "cc: 15..0 continuous",
            ),
            ("oversized adaptation field", vec![packet(0x100, false, 0b11, 0, &[183], &[])], "malformed packets: 1"),
            (
                "PCR flag without room for a PCR",
                vec![packet(0x100, false, 0b11, 0, &[3, 0x10, 0, 0], &[1])],
                "malformed packets: 1",
            ),
            (
                "PCR with extension",
                vec![packet(0x100, false, 0b11, 0, &[7, 0x50, 0x00, 0x00, 0x00, 0x01, 0xFF, 0x2A], &[1])],
                "pcr: 1 (3:298..3:298)",
            ),
            (
                "declared PES length that the packets do not match",
                vec![packet(0x101, true, 0b01, 0, &[], &pes_short)],
                "length mismatches: 1",
            ),
            (
                "PES header cut short: start counted, no timestamps",
                vec![packet(0x101, true, 0b11, 0, &[180, 0x00], &[0x00, 0x00, 0x01, 0xC0])],
                "unit starts: 1\n",
            ),
            (
                "null packets are exempt from counter checks",
                vec![packet(0x1FFF, false, 0b01, 3, &[], &[]), packet(0x1FFF, false, 0b01, 9, &[], &[])],
                "pid 0x1fff (null)\n  packets: 2\n  cc: 3..9 continuous",
            ),
        ];
        for (name, pkts, want) in cases {
            let buf = pkts.concat();
            let s = summarize_ts(&buf).unwrap().to_string();
            assert!(s.contains(want), "{name}: want {want:?} in\n{s}");
        }
    }

    /// Stand-in for the fuzzer: random and mutated input never panics.
    #[test]
    fn never_panics() {
        let ts = segment();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // Every byte of the PSI packets and the first PES packets, set to a
        // few interesting values.
        for pos in 0..4 * TS_PACKET_SIZE {
            for v in [0x00, 0x01, 0x0F, 0x10, 0x47, 0x7F, 0x80, 0xB7, 0xFF] {
                let mut t = ts.clone();
                t[pos] = v;
                let _ = summarize_ts(&t);
            }
        }
        // Random mutations keeping the sync bytes.
        for _ in 0..2000 {
            let mut t = ts.clone();
            for _ in 0..1 + next() % 16 {
                let pos = (next() as usize) % t.len();
                let offset_in_packet = pos % TS_PACKET_SIZE;
                if offset_in_packet != 0 {
                    t[pos] = next() as u8;
                }
            }
            let _ = summarize_ts(&t);
        }
        // Random packets.
        for _ in 0..200 {
            let mut t: Vec<u8> = (0..4 * TS_PACKET_SIZE).map(|_| next() as u8).collect();
            for p in t.chunks_mut(TS_PACKET_SIZE) {
                p[0] = 0x47;
            }
            let _ = summarize_ts(&t);
        }
    }
}
