//! MPEG-TS demuxer: turns a transport stream (any chunking) into tracks and
//! samples.
//!
//! The first program of the PAT is followed; of its PMT, the first H.264
//! stream (`stream_type` 0x1B) becomes track 1 at 90 kHz and the first AAC
//! ADTS stream (0x0F) track 2 at its sample rate. Everything else is ignored.
//!
//! Damage is expected on broadcast-style inputs and is not an error:
//! packets with `transport_error_indicator`, continuity counter gaps, bad
//! adaptation fields, PSI sections with a bad CRC and malformed PES or ADTS
//! data make the demuxer discard the affected PES (or section) and carry on;
//! [`TsDemuxer::dropped`] counts them and [`TsDemuxer::skipped_bytes`]
//! counts bytes skipped to regain sync. `Err` is reserved for conditions an
//! operator should see in a log: a PMT without a usable stream, scrambled
//! packets, or SPS/PPS the codec parser rejects. Each is reported once per
//! distinct cause.
//!
//! The output does not depend on how the input is chunked: the events of
//! all `Ok` results, in order, are the same whether the stream is pushed in
//! one piece or one byte at a time.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use crate::codec::{
    nal_type, parse_adts, split_annex_b, to_length_prefixed, AacConfig, AvcConfig, AAC_FRAME_SAMPLES, NAL_AUD, NAL_IDR,
    NAL_PPS, NAL_SPS,
};
use crate::demux::{DemuxError, DemuxEvent};
use crate::media::{CodecConfig, Sample, Timescale, Track, TrackId};

/// Track id of the video track a `TsDemuxer` produces.
pub const VIDEO_TRACK: TrackId = TrackId(1);
/// Track id of the audio track a `TsDemuxer` produces.
pub const AUDIO_TRACK: TrackId = TrackId(2);

const PACKET_LEN: usize = 188;
const SYNC_BYTE: u8 = 0x47;
const PID_PAT: u16 = 0;
const PID_NULL: u16 = 0x1fff;
const STREAM_TYPE_H264: u8 = 0x1b;
const STREAM_TYPE_AAC_ADTS: u8 = 0x0f;
/// Longest PSI section (PAT/PMT): 3 header bytes + section_length <= 1021.
const MAX_SECTION_LEN: usize = 1024;
/// A PES (or access unit) growing past this is discarded as damaged.
const MAX_PES_LEN: usize = 32 << 20;
/// Errors waiting to be returned beyond this are discarded.
const MAX_QUEUED_ERRORS: usize = 16;
/// 2^33: the PTS/DTS wrap.
const TS_WRAP: i64 = 1 << 33;

/// A PSI section being reassembled from TS packets.
#[derive(Debug, Default)]
struct SectionAssembler {
    buf: Vec<u8>,
    active: bool,
}

impl SectionAssembler {
    fn reset(&mut self) -> bool {
        let was = self.active && !self.buf.is_empty();
        self.buf.clear();
        self.active = false;
        was
    }

    /// Feed one packet payload; returns the complete sections and how many
    /// sections were discarded as malformed.
    fn push(&mut self, pusi: bool, payload: &[u8]) -> (Vec<Vec<u8>>, u64) {
        let mut sections = Vec::new();
        let mut bad = 0;
        if pusi {
            let Some((&pointer, rest)) = payload.split_first() else {
                bad += u64::from(self.reset());
                return (sections, bad);
            };
            let pointer = usize::from(pointer);
            let Some((tail, head)) = (pointer <= rest.len()).then(|| rest.split_at(pointer)) else {
                bad += u64::from(self.reset());
                return (sections, bad);
            };
            if self.active {
                self.buf.extend_from_slice(tail);
                bad += self.extract(&mut sections);
                if self.active && !self.buf.is_empty() {
                    // The previous section did not end where the new one starts.
                    bad += 1;
                }
            }
            self.buf.clear();
            self.buf.extend_from_slice(head);
            self.active = true;
        } else if self.active {
            self.buf.extend_from_slice(payload);
        } else {
            return (sections, bad);
        }
        bad += self.extract(&mut sections);
        (sections, bad)
    }

    fn extract(&mut self, sections: &mut Vec<Vec<u8>>) -> u64 {
        loop {
            match self.buf.first() {
                None => {
                    // A section ended with the payload: the next one can only
                    // start in a packet with payload_unit_start_indicator.
                    self.active = false;
                    return 0;
                }
                Some(0xff) => {
                    self.reset(); // stuffing
                    return 0;
                }
                Some(_) => {}
            }
            // `b` has the 2 bytes of `get(1..3)`.
            let Some(len) = self.buf.get(1..3).map(|b| (usize::from(b[0] & 0x0f) << 8) | usize::from(b[1])) else {
                return 0;
            };
            let total = 3 + len;
            if total > MAX_SECTION_LEN {
                self.reset();
                return 1;
            }
            if self.buf.len() < total {
                return 0;
            }
            sections.push(self.buf.drain(..total).collect());
        }
    }
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, no reflection, init all ones). A
/// section including its CRC field sums to zero.
fn crc32_mpeg(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04c1_1db7 } else { crc << 1 };
        }
    }
    crc
}

/// Checks a long-form PSI section (table id, syntax indicator, CRC,
/// current_next_indicator) and returns the bytes between the 8-byte header
/// and the CRC; `Ok(None)` for a "next" (not yet current) section.
fn section_body(section: &[u8], table_id: u8) -> Result<Option<&[u8]>, ()> {
    if section.len() < 12 || section.first() != Some(&table_id) || crc32_mpeg(section) != 0 {
        return Err(());
    }
    // len >= 12: the indexes below are in range.
    if section[1] & 0x80 == 0 {
        return Err(());
    }
    if section[5] & 0x01 == 0 {
        return Ok(None);
    }
    Ok(section.get(8..section.len() - 4))
}

/// A PES packet being reassembled on one PID.
#[derive(Debug)]
struct PesAssembler {
    pid: u16,
    buf: Vec<u8>,
    /// Stream offset of the packet that started this PES.
    offset: u64,
    active: bool,
    /// Video: this PES has no PTS and continues the pending access unit.
    continuation: bool,
}

impl PesAssembler {
    fn new(pid: u16) -> Self {
        PesAssembler { pid, buf: Vec::new(), offset: 0, active: false, continuation: false }
    }

    /// Total length from PES_packet_length, if it is not 0 (unbounded).
    fn declared_len(&self) -> Option<usize> {
        let b = self.buf.get(4..6)?; // 2 bytes
        let len = (usize::from(b[0]) << 8) | usize::from(b[1]);
        (len != 0).then_some(6 + len)
    }
}

/// The parts of a PES header the demuxer uses.
#[derive(Debug, PartialEq, Eq)]
struct PesHeader {
    pts: Option<i64>,
    dts: Option<i64>,
    payload_start: usize,
}

fn read_timestamp(b: &[u8]) -> Option<i64> {
    let b: &[u8; 5] = b.get(..5)?.try_into().ok()?;
    Some(
        (i64::from((b[0] >> 1) & 0x07) << 30)
            | (i64::from(b[1]) << 22)
            | (i64::from(b[2] >> 1) << 15)
            | (i64::from(b[3]) << 7)
            | i64::from(b[4] >> 1),
    )
}

fn parse_pes_header(buf: &[u8]) -> Result<PesHeader, &'static str> {
    let h = buf.get(..9).ok_or("truncated PES header")?;
    if h.get(..3) != Some(&[0, 0, 1][..]) {
        return Err("missing PES start code");
    }
    // h has 9 bytes: the indexes below are in range.
    if matches!(h[3], 0xbc | 0xbe | 0xbf | 0xf0 | 0xf1 | 0xf2 | 0xf8 | 0xff) {
        return Err("PES stream_id without timestamps");
    }
    if h[6] & 0xc0 != 0x80 {
        return Err("bad PES header marker bits");
    }
    let flags = h[7] >> 6;
    let header_len = usize::from(h[8]);
    let payload_start = 9 + header_len;
    if buf.len() < payload_start {
        return Err("truncated PES header");
    }
    let fields = buf.get(9..payload_start).unwrap_or_default();
    let (pts, dts) = match flags {
        0 => (None, None),
        2 => (Some(read_timestamp(fields).ok_or("PES header too short for PTS")?), None),
        3 => {
            let pts = read_timestamp(fields).ok_or("PES header too short for PTS")?;
            let dts = fields.get(5..).and_then(read_timestamp).ok_or("PES header too short for DTS")?;
            (Some(pts), Some(dts))
        }
        _ => return Err("forbidden PTS_DTS_flags value 1"),
    };
    Ok(PesHeader { pts, dts, payload_start })
}

/// Does the PES starting in this packet payload carry a PTS? (`true` when
/// the header is not readable from this payload alone: treat it as a new
/// access unit.)
fn starts_with_pts(payload: &[u8]) -> bool {
    match payload.get(..8) {
        Some(h) if h.get(..3) == Some(&[0, 0, 1][..]) => h.get(7).is_some_and(|f| f >> 6 >= 2),
        _ => true,
    }
}

/// The 33-bit timestamp `raw` unwrapped to the candidate nearest `reference`.
fn unwrap_timestamp(raw: i64, reference: Option<i64>) -> i64 {
    match reference {
        None => raw,
        Some(r) => {
            let wrap = i128::from(TS_WRAP);
            let mut diff = (i128::from(raw) - i128::from(r)).rem_euclid(wrap);
            if diff >= wrap / 2 {
                diff -= wrap;
            }
            // |diff| <= 2^32.
            r.saturating_add(diff as i64)
        }
    }
}

/// A video access unit waiting for its end (the next PES with a PTS).
#[derive(Debug)]
struct AccessUnit {
    dts: i64,
    pts: i64,
    data: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Video,
    Audio,
}

/// MPEG-TS demuxer for one stream. See the module documentation.
#[derive(Debug)]
pub struct TsDemuxer {
    stream: String,
    /// Input not yet consumed; starts at stream offset `buf_offset`.
    buf: Vec<u8>,
    buf_offset: u64,
    in_sync: bool,
    skipped_bytes: u64,
    dropped: u64,
    /// Last continuity counter per PID of interest.
    cc: BTreeMap<u16, u8>,
    pat: SectionAssembler,
    last_pat: Vec<u8>,
    pmt_pid: Option<u16>,
    pmt: SectionAssembler,
    last_pmt: Vec<u8>,
    video: Option<PesAssembler>,
    audio: Option<PesAssembler>,
    /// Parameter sets seen in the stream (the current configuration's, or
    /// newer ones the codec parser rejected).
    sps: Vec<Bytes>,
    pps: Vec<Bytes>,
    avc: Option<AvcConfig>,
    rejected_params: Option<(Vec<Bytes>, Vec<Bytes>)>,
    au: Option<AccessUnit>,
    video_last_dts: Option<i64>,
    aac: Option<AacConfig>,
    audio_last_pts: Option<i64>,
    /// Timestamp of the next AAC frame, for PES without PTS.
    audio_next: Option<i64>,
    scrambled_reported: BTreeSet<u16>,
    out: Vec<DemuxEvent>,
    errors: VecDeque<DemuxError>,
    last_call_failed: bool,
}

impl TsDemuxer {
    /// A demuxer for the stream named `stream` (used in errors only).
    pub fn new(stream: impl Into<String>) -> Self {
        TsDemuxer {
            stream: stream.into(),
            buf: Vec::new(),
            buf_offset: 0,
            in_sync: true,
            skipped_bytes: 0,
            dropped: 0,
            cc: BTreeMap::new(),
            pat: SectionAssembler::default(),
            last_pat: Vec::new(),
            pmt_pid: None,
            pmt: SectionAssembler::default(),
            last_pmt: Vec::new(),
            video: None,
            audio: None,
            sps: Vec::new(),
            pps: Vec::new(),
            avc: None,
            rejected_params: None,
            au: None,
            video_last_dts: None,
            aac: None,
            audio_last_pts: None,
            audio_next: None,
            scrambled_reported: BTreeSet::new(),
            out: Vec::new(),
            errors: VecDeque::new(),
            last_call_failed: false,
        }
    }

    /// Feed the next bytes of the transport stream (any chunking).
    ///
    /// Returns the events completed so far. An `Err` never loses events:
    /// those decoded in a call that returns `Err` come out of the next call,
    /// and two calls in a row never both return `Err`. Keep calling after an
    /// `Err`.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<DemuxEvent>, DemuxError> {
        self.buf.extend_from_slice(data);
        self.consume(false);
        self.output()
    }

    /// End of input: flush the last PES of each stream (and the last video
    /// access unit). Trailing bytes that do not form a whole packet are
    /// counted in [`TsDemuxer::skipped_bytes`]. If this returns `Err`, call
    /// it again to get the remaining events.
    pub fn finish(&mut self) -> Result<Vec<DemuxEvent>, DemuxError> {
        self.consume(true);
        if let Some(mut pes) = self.video.take() {
            self.complete_pes(Kind::Video, &mut pes);
            self.video = Some(pes);
        }
        self.flush_au();
        if let Some(mut pes) = self.audio.take() {
            self.complete_pes(Kind::Audio, &mut pes);
            self.audio = Some(pes);
        }
        self.output()
    }

    /// PES packets, access units and PSI sections discarded as damaged so
    /// far (continuity errors, transport errors, bad headers or CRCs,
    /// malformed ADTS, ...).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Bytes skipped while looking for packet sync (and partial packets at
    /// the end of the input).
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped_bytes
    }

    /// PIDs of the H.264 and AAC streams selected from the PMT, if known.
    pub fn stream_pids(&self) -> (Option<u16>, Option<u16>) {
        (self.video.as_ref().map(|p| p.pid), self.audio.as_ref().map(|p| p.pid))
    }

    fn output(&mut self) -> Result<Vec<DemuxEvent>, DemuxError> {
        if !self.last_call_failed {
            if let Some(e) = self.errors.pop_front() {
                self.last_call_failed = true;
                return Err(e);
            }
        }
        self.last_call_failed = false;
        Ok(std::mem::take(&mut self.out))
    }

    fn report(&mut self, offset: u64, pid: u16, reason: String) {
        if self.errors.len() < MAX_QUEUED_ERRORS {
            self.errors.push_back(DemuxError::Ts { stream: self.stream.clone(), offset, pid, reason });
        }
    }

    /// Process every whole packet in `buf`, regaining sync where needed.
    fn consume(&mut self, at_end: bool) {
        let mut pos = 0usize;
        loop {
            let rest = self.buf.get(pos..).unwrap_or_default();
            if self.in_sync {
                let Some(packet) = rest.get(..PACKET_LEN) else { break };
                if packet.first() == Some(&SYNC_BYTE) {
                    let mut p = [0u8; PACKET_LEN];
                    p.copy_from_slice(packet);
                    let offset = self.buf_offset + pos as u64;
                    pos += PACKET_LEN;
                    self.packet(&p, offset);
                    continue;
                }
                self.in_sync = false;
            }
            // Lost sync: the next 0x47 followed by another one a packet later.
            let mut candidate = None;
            let mut keep_from = self.buf.len();
            for (i, &b) in rest.iter().enumerate() {
                if b != SYNC_BYTE {
                    continue;
                }
                match rest.get(i + PACKET_LEN) {
                    Some(&SYNC_BYTE) => {
                        candidate = Some(pos + i);
                        break;
                    }
                    Some(_) => {}
                    None if at_end && rest.len() - i == PACKET_LEN => {
                        // The last packet of the input: nothing to confirm with.
                        candidate = Some(pos + i);
                        break;
                    }
                    None => {
                        // Cannot confirm yet: keep it for the next push.
                        keep_from = pos + i;
                        break;
                    }
                }
            }
            match candidate {
                Some(c) => {
                    self.skipped_bytes += (c - pos) as u64;
                    pos = c;
                    self.in_sync = true;
                }
                None => {
                    self.skipped_bytes += (keep_from - pos) as u64;
                    pos = keep_from;
                    break;
                }
            }
        }
        if at_end {
            self.skipped_bytes += (self.buf.len() - pos) as u64;
            pos = self.buf.len();
        }
        self.buf.drain(..pos);
        self.buf_offset += pos as u64;
    }

    fn is_tracked(&self, pid: u16) -> bool {
        pid == PID_PAT
            || Some(pid) == self.pmt_pid
            || self.video.as_ref().is_some_and(|p| p.pid == pid)
            || self.audio.as_ref().is_some_and(|p| p.pid == pid)
    }

    fn packet(&mut self, p: &[u8; PACKET_LEN], offset: u64) {
        // `p` is a `[u8; 188]`: the constant indexes below are in range.
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        if pid == PID_NULL || !self.is_tracked(pid) {
            return;
        }
        let transport_error = p[1] & 0x80 != 0;
        let pusi = p[1] & 0x40 != 0;
        let scrambling = p[3] >> 6;
        let afc = (p[3] >> 4) & 0x03;
        let cc = p[3] & 0x0f;
        if transport_error || afc == 0 {
            self.damage(pid);
            return;
        }
        let has_payload = afc & 0x01 != 0;
        let mut start = 4;
        let mut discontinuity = false;
        if afc & 0x02 != 0 {
            let af_len = usize::from(p[4]);
            let max = if has_payload { 182 } else { 183 };
            if af_len > max {
                self.damage(pid);
                return;
            }
            discontinuity = af_len > 0 && p[5] & 0x80 != 0;
            start = 5 + af_len;
        }
        if !has_payload {
            return;
        }
        match self.cc.insert(pid, cc) {
            Some(last) if cc == last && !discontinuity => return, // duplicate packet
            Some(last) if cc != (last + 1) & 0x0f && !discontinuity => self.damage(pid),
            _ => {}
        }
        if scrambling != 0 {
            if pusi {
                // The PES before this one is complete; this one is unusable.
                self.end_pes(pid);
            } else {
                self.damage(pid);
            }
            if self.scrambled_reported.insert(pid) {
                self.report(offset, pid, "scrambled (encrypted) packets cannot be demuxed".to_string());
            }
            return;
        }
        // start <= 5 + 182 < 188.
        let payload = &p[start..];
        if pid == PID_PAT {
            let (sections, bad) = self.pat.push(pusi, payload);
            self.dropped += bad;
            for s in sections {
                self.pat_section(&s, offset);
            }
        } else if Some(pid) == self.pmt_pid {
            let (sections, bad) = self.pmt.push(pusi, payload);
            self.dropped += bad;
            for s in sections {
                self.pmt_section(&s, offset, pid);
            }
        } else if self.video.as_ref().is_some_and(|v| v.pid == pid) {
            self.pes_packet(Kind::Video, pusi, payload, offset);
        } else if self.audio.as_ref().is_some_and(|a| a.pid == pid) {
            self.pes_packet(Kind::Audio, pusi, payload, offset);
        }
    }

    /// A packet of `pid` was lost or is unusable: discard what it belonged to.
    fn damage(&mut self, pid: u16) {
        if pid == PID_PAT {
            self.dropped += u64::from(self.pat.reset());
        } else if Some(pid) == self.pmt_pid {
            self.dropped += u64::from(self.pmt.reset());
        } else if let Some(v) = self.video.as_mut().filter(|v| v.pid == pid) {
            if v.active {
                v.active = false;
                v.buf.clear();
                self.dropped += 1;
                if v.continuation && self.au.take().is_some() {
                    self.dropped += 1;
                }
            }
        } else if let Some(a) = self.audio.as_mut().filter(|a| a.pid == pid) {
            if a.active {
                a.active = false;
                a.buf.clear();
                self.dropped += 1;
            }
        }
    }

    /// A PES of `pid` ended (at a packet that cannot be used): complete it
    /// and, for video, the pending access unit.
    fn end_pes(&mut self, pid: u16) {
        for kind in [Kind::Video, Kind::Audio] {
            let slot = match kind {
                Kind::Video => &mut self.video,
                Kind::Audio => &mut self.audio,
            };
            if let Some(mut pes) = slot.take_if(|p| p.pid == pid) {
                self.complete_pes(kind, &mut pes);
                if kind == Kind::Video {
                    self.flush_au();
                }
                match kind {
                    Kind::Video => self.video = Some(pes),
                    Kind::Audio => self.audio = Some(pes),
                }
                return;
            }
        }
    }

    fn pat_section(&mut self, section: &[u8], offset: u64) {
        if section == self.last_pat.as_slice() {
            return;
        }
        let body = match section_body(section, 0x00) {
            Ok(Some(body)) => body,
            Ok(None) => return,
            Err(()) => {
                self.dropped += 1;
                return;
            }
        };
        self.last_pat = section.to_vec();
        // Entries of exactly 4 bytes.
        let pmt_pid = body.chunks_exact(4).find_map(|e| {
            let program = (u16::from(e[0]) << 8) | u16::from(e[1]);
            (program != 0).then_some((u16::from(e[2] & 0x1f) << 8) | u16::from(e[3]))
        });
        if pmt_pid.is_none() {
            self.report(offset, PID_PAT, "PAT lists no program".to_string());
        }
        if pmt_pid != self.pmt_pid {
            if let Some(old) = self.pmt_pid {
                self.cc.remove(&old);
            }
            self.pmt_pid = pmt_pid;
            self.pmt.reset();
            self.last_pmt.clear();
        }
    }

    fn pmt_section(&mut self, section: &[u8], offset: u64, pid: u16) {
        if section == self.last_pmt.as_slice() {
            return;
        }
        let body = match section_body(section, 0x02) {
            Ok(Some(body)) => body,
            Ok(None) => return,
            Err(()) => {
                self.dropped += 1;
                return;
            }
        };
        self.last_pmt = section.to_vec();
        // `b` has the 2 bytes of `get(2..4)`; `e` below the 5 of `get(..5)`.
        let Some(info_len) = body.get(2..4).map(|b| (usize::from(b[0] & 0x0f) << 8) | usize::from(b[1])) else {
            self.report(offset, pid, "PMT too short".to_string());
            return;
        };
        let mut es = body.get(4 + info_len..).unwrap_or_default();
        let mut video = None;
        let mut audio = None;
        let mut types = Vec::new();
        while !es.is_empty() {
            let Some(e) = es.get(..5) else {
                self.report(offset, pid, "PMT elementary stream loop is truncated".to_string());
                return;
            };
            let stream_type = e[0];
            let es_pid = (u16::from(e[1] & 0x1f) << 8) | u16::from(e[2]);
            let es_info_len = (usize::from(e[3] & 0x0f) << 8) | usize::from(e[4]);
            types.push(stream_type);
            match stream_type {
                STREAM_TYPE_H264 if video.is_none() => video = Some(es_pid),
                STREAM_TYPE_AAC_ADTS if audio.is_none() => audio = Some(es_pid),
                _ => {}
            }
            es = es.get(5 + es_info_len..).unwrap_or_default();
        }
        if video.is_none() && audio.is_none() {
            let list: Vec<String> = types.iter().map(|t| format!("{t:#04x}")).collect();
            self.report(
                offset,
                pid,
                format!("PMT has no H.264 (0x1b) or AAC ADTS (0x0f) stream; stream types: [{}]", list.join(", ")),
            );
        }
        if self.video.as_ref().map(|p| p.pid) != video {
            if let Some(old) = self.video.take() {
                self.cc.remove(&old.pid);
                if old.active {
                    self.dropped += 1;
                }
            }
            self.flush_au();
            self.video = video.map(PesAssembler::new);
        }
        if self.audio.as_ref().map(|p| p.pid) != audio {
            if let Some(old) = self.audio.take() {
                self.cc.remove(&old.pid);
                if old.active {
                    self.dropped += 1;
                }
            }
            self.audio = audio.map(PesAssembler::new);
        }
    }

    fn pes_packet(&mut self, kind: Kind, pusi: bool, payload: &[u8], offset: u64) {
        let slot = match kind {
            Kind::Video => &mut self.video,
            Kind::Audio => &mut self.audio,
        };
        let Some(mut pes) = slot.take() else { return };
        if pusi {
            if pes.active {
                self.complete_pes(kind, &mut pes);
            }
            pes.active = true;
            pes.offset = offset;
            pes.buf.clear();
            pes.buf.extend_from_slice(payload);
            pes.continuation = false;
            if kind == Kind::Video {
                if starts_with_pts(payload) {
                    self.flush_au();
                } else {
                    pes.continuation = self.au.is_some();
                }
            }
        } else if pes.active {
            pes.buf.extend_from_slice(payload);
        }
        if pes.active {
            if pes.buf.len() > MAX_PES_LEN {
                pes.active = false;
                pes.buf.clear();
                self.dropped += 1;
            } else if pes.declared_len().is_some_and(|n| pes.buf.len() >= n) {
                self.complete_pes(kind, &mut pes);
            }
        }
        match kind {
            Kind::Video => self.video = Some(pes),
            Kind::Audio => self.audio = Some(pes),
        }
    }

    /// The PES in `pes` has ended: hand its payload on (or drop it).
    fn complete_pes(&mut self, kind: Kind, pes: &mut PesAssembler) {
        if !pes.active {
            return;
        }
        pes.active = false;
        let declared = pes.declared_len();
        let mut buf = std::mem::take(&mut pes.buf);
        if let Some(n) = declared {
            if buf.len() < n {
                self.dropped += 1; // ended before its declared length
                self.drop_continued_au(kind, pes);
                return;
            }
            buf.truncate(n);
        }
        let header = match parse_pes_header(&buf) {
            Ok(h) => h,
            Err(_) => {
                self.dropped += 1;
                self.drop_continued_au(kind, pes);
                return;
            }
        };
        let payload = buf.split_off(header.payload_start.min(buf.len()));
        match kind {
            Kind::Video => self.video_pes(header, payload),
            Kind::Audio => self.audio_pes(header, Bytes::from(payload), pes.offset, pes.pid),
        }
    }

    fn drop_continued_au(&mut self, kind: Kind, pes: &PesAssembler) {
        if kind == Kind::Video && pes.continuation && self.au.take().is_some() {
            self.dropped += 1;
        }
    }

    fn video_pes(&mut self, header: PesHeader, payload: Vec<u8>) {
        let Some(pts_raw) = header.pts else {
            // No PTS: the rest of the pending access unit.
            match self.au.as_mut() {
                Some(au) if au.data.len() + payload.len() <= MAX_PES_LEN => au.data.extend_from_slice(&payload),
                Some(_) => {
                    self.au = None;
                    self.dropped += 1;
                }
                None => self.dropped += 1,
            }
            return;
        };
        self.flush_au();
        let dts = unwrap_timestamp(header.dts.unwrap_or(pts_raw), self.video_last_dts);
        let pts = unwrap_timestamp(pts_raw, Some(dts));
        self.video_last_dts = Some(dts);
        self.au = Some(AccessUnit { dts, pts, data: payload });
    }

    /// Emit the pending video access unit (if any).
    fn flush_au(&mut self) {
        let Some(au) = self.au.take() else { return };
        let data = Bytes::from(au.data);
        let mut kept = Vec::new();
        let mut sps = Vec::new();
        let mut pps = Vec::new();
        let mut idr = false;
        for nal in split_annex_b(&data) {
            match nal_type(&nal) {
                NAL_AUD => {}
                NAL_SPS => sps.push(nal),
                NAL_PPS => pps.push(nal),
                t => {
                    idr |= t == NAL_IDR;
                    kept.push(nal);
                }
            }
        }
        if !sps.is_empty() || !pps.is_empty() {
            let known = sps.iter().all(|s| self.sps.contains(s)) && pps.iter().all(|p| self.pps.contains(p));
            if !known {
                if !sps.is_empty() {
                    self.sps = sps;
                }
                if !pps.is_empty() {
                    self.pps = pps;
                }
            }
        }
        let configured = self.avc.as_ref().is_some_and(|c| c.sps == self.sps && c.pps == self.pps);
        if !configured && !self.sps.is_empty() && !self.pps.is_empty() {
            let params = (self.sps.clone(), self.pps.clone());
            if self.rejected_params.as_ref() != Some(&params) {
                match AvcConfig::from_sps_pps(&params.0, &params.1) {
                    Ok(config) => {
                        self.rejected_params = None;
                        self.avc = Some(config.clone());
                        self.out.push(DemuxEvent::Track(Track {
                            id: VIDEO_TRACK,
                            timescale: Timescale::MPEG,
                            codec: CodecConfig::H264(config),
                            bitrate_hint: None,
                        }));
                    }
                    Err(source) => {
                        self.rejected_params = Some(params);
                        if self.errors.len() < MAX_QUEUED_ERRORS {
                            self.errors.push_back(DemuxError::Codec { stream: self.stream.clone(), source });
                        }
                    }
                }
            }
        }
        // Samples need the configuration their parameter sets describe.
        let configured = self.avc.as_ref().is_some_and(|c| c.sps == self.sps && c.pps == self.pps);
        if !configured || kept.is_empty() {
            return;
        }
        self.out.push(DemuxEvent::Sample(Sample {
            track: VIDEO_TRACK,
            dts: au.dts,
            pts: au.pts,
            keyframe: idr,
            data: to_length_prefixed(&kept),
            discontinuity: false,
        }));
    }

    fn audio_pes(&mut self, header: PesHeader, payload: Bytes, offset: u64, pid: u16) {
        let pts = header.pts.map(|raw| {
            let pts = unwrap_timestamp(raw, self.audio_last_pts);
            self.audio_last_pts = Some(pts);
            pts
        });
        let mut pos = 0usize;
        let mut k: i64 = 0;
        while pos < payload.len() {
            let rest = payload.get(pos..).unwrap_or_default();
            let h = match parse_adts(rest) {
                Ok(h) if h.frame_len <= rest.len() => h,
                Ok(_) | Err(_) => {
                    // Malformed or cut-off ADTS: drop the rest of this PES.
                    self.dropped += 1;
                    return;
                }
            };
            let config = match AacConfig::from_adts(&h) {
                Ok(c) => c,
                Err(e) => {
                    self.dropped += 1;
                    let reason = format!("unusable ADTS header: {e}");
                    self.report(offset, pid, reason);
                    return;
                }
            };
            let Some(timescale) = Timescale::new(config.sample_rate) else {
                self.dropped += 1;
                return;
            };
            if self.aac.as_ref() != Some(&config) {
                self.aac = Some(config.clone());
                self.audio_next = None;
                self.out.push(DemuxEvent::Track(Track {
                    id: AUDIO_TRACK,
                    timescale,
                    codec: CodecConfig::Aac(config),
                    bitrate_hint: None,
                }));
            }
            let t = match pts {
                Some(pts) => Timescale::MPEG.convert_floor(pts, timescale) + k * i64::from(AAC_FRAME_SAMPLES),
                None => match self.audio_next {
                    Some(t) => t,
                    None => {
                        self.dropped += 1; // no timestamp to go by
                        return;
                    }
                },
            };
            self.audio_next = Some(t + i64::from(AAC_FRAME_SAMPLES));
            if h.frame_len > h.header_len {
                self.out.push(DemuxEvent::Sample(Sample {
                    track: AUDIO_TRACK,
                    dts: t,
                    pts: t,
                    keyframe: true,
                    data: payload.slice(pos + h.header_len..pos + h.frame_len),
                    discontinuity: false,
                }));
            }
            pos += h.frame_len;
            k += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    const SPS: &str = "6764001facd9405005bb0110000003001000000303c0f1831960";
    const PPS: &str = "68ebe3cb22c0";
    const SPS_320: &str = "6764000dacd94141fb0110000003001000000303c0f1429960";
    const AUD: &[u8] = &[0x09, 0xf0];
    const SEI: &[u8] = &[0x06, 0x05, 0x01, 0xaa, 0x80];
    const NON_IDR: &[u8] = &[0x41, 0x9a, 0x21, 0x00, 0x03];
    const PMT_PID: u16 = 0x1000;
    const VPID: u16 = 0x100;
    const APID: u16 = 0x101;

    /// A large IDR slice so that the PES spans several packets.
    fn idr() -> Vec<u8> {
        let mut v = vec![0x65, 0x88];
        v.extend((0..500u32).map(|i| (i % 251) as u8 | 0x10));
        v
    }

    fn ts_packet(pid: u16, pusi: bool, cc: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() <= 184);
        let mut p = vec![0x47, (if pusi { 0x40 } else { 0 }) | (pid >> 8) as u8, pid as u8];
        if payload.len() == 184 {
            p.push(0x10 | cc);
        } else {
            p.push(0x30 | cc);
            let af_len = 183 - payload.len();
            p.push(af_len as u8);
            if af_len > 0 {
                p.push(0);
                p.extend(std::iter::repeat_n(0xff, af_len - 1));
            }
        }
        p.extend_from_slice(payload);
        assert_eq!(p.len(), 188);
        p
    }

    fn section(table_id: u8, id: u16, body: &[u8]) -> Vec<u8> {
        let len = 5 + body.len() + 4;
        let mut s = vec![table_id, 0xb0 | (len >> 8) as u8, len as u8, (id >> 8) as u8, id as u8, 0xc1, 0, 0];
        s.extend_from_slice(body);
        let crc = crc32_mpeg(&s);
        s.extend_from_slice(&crc.to_be_bytes());
        s
    }

    fn pat(pmt_pid: u16) -> Vec<u8> {
        section(0, 1, &[0, 1, 0xe0 | (pmt_pid >> 8) as u8, pmt_pid as u8])
    }

    fn pmt(streams: &[(u8, u16)]) -> Vec<u8> {
        let mut body = vec![0xe1, 0x00, 0xf0, 0x00];
        for (t, pid) in streams {
            body.extend_from_slice(&[*t, 0xe0 | (pid >> 8) as u8, *pid as u8, 0xf0, 0x00]);
        }
        section(2, 1, &body)
    }

    fn ts_field(prefix: u8, t: i64) -> [u8; 5] {
        let t = (t as u64) & ((1 << 33) - 1);
        [
            (prefix << 4) | ((t >> 29) & 0x0e) as u8 | 1,
            (t >> 22) as u8,
            ((t >> 14) & 0xfe) as u8 | 1,
            (t >> 7) as u8,
            ((t << 1) & 0xfe) as u8 | 1,
        ]
    }

    fn pes(stream_id: u8, pts: Option<i64>, dts: Option<i64>, payload: &[u8], bounded: bool) -> Vec<u8> {
        let mut fields = Vec::new();
        let mut flags = 0;
        if let Some(p) = pts {
            flags = if dts.is_some() { 0xc0 } else { 0x80 };
            fields.extend_from_slice(&ts_field(if dts.is_some() { 3 } else { 2 }, p));
        }
        if let Some(d) = dts {
            fields.extend_from_slice(&ts_field(1, d));
        }
        let len = if bounded { 3 + fields.len() + payload.len() } else { 0 };
        let mut v = vec![0, 0, 1, stream_id, (len >> 8) as u8, len as u8, 0x80, flags, fields.len() as u8];
        v.extend_from_slice(&fields);
        v.extend_from_slice(payload);
        v
    }

    fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&[0, 0, 0, 1]);
            v.extend_from_slice(n);
        }
        v
    }

    fn aac48() -> AacConfig {
        AacConfig::from_asc(&[0x11, 0x90]).unwrap()
    }

    fn adts(frames: &[&[u8]]) -> Vec<u8> {
        let c = aac48();
        let mut v = Vec::new();
        for f in frames {
            v.extend_from_slice(&c.adts_header(f.len()));
            v.extend_from_slice(f);
        }
        v
    }

    /// Writes a transport stream with per-PID continuity counters.
    #[derive(Default)]
    struct Mux {
        cc: BTreeMap<u16, u8>,
        out: Vec<u8>,
    }

    impl Mux {
        fn next_cc(&mut self, pid: u16) -> u8 {
            let cc = self.cc.entry(pid).or_insert(0);
            let v = *cc;
            *cc = (*cc + 1) & 0x0f;
            v
        }

        fn psi(&mut self, pid: u16, section: &[u8]) {
            let mut payload = vec![0];
            payload.extend_from_slice(section);
            payload.resize(184, 0xff);
            let cc = self.next_cc(pid);
            self.out.extend(ts_packet(pid, true, cc, &payload));
        }

        fn tables(&mut self) {
            self.psi(0, &pat(PMT_PID));
            self.psi(PMT_PID, &pmt(&[(0x06, 0x102), (0x1b, VPID), (0x0f, APID), (0x1b, 0x103)]));
        }

        fn pes(&mut self, pid: u16, pes: &[u8]) {
            for (i, chunk) in pes.chunks(184).enumerate() {
                let cc = self.next_cc(pid);
                self.out.extend(ts_packet(pid, i == 0, cc, chunk));
            }
        }

        fn video(&mut self, pts: i64, dts: Option<i64>, nals: &[&[u8]]) {
            let p = pes(0xe0, Some(pts), dts, &annex_b(nals), false);
            self.pes(VPID, &p);
        }

        fn audio(&mut self, pts: i64, frames: &[&[u8]]) {
            let p = pes(0xc0, Some(pts), None, &adts(frames), true);
            self.pes(APID, &p);
        }
    }

    fn run(data: &[u8], chunk: usize) -> (Vec<DemuxEvent>, Vec<DemuxError>, u64, u64) {
        let mut d = TsDemuxer::new("s");
        let mut events = Vec::new();
        let mut errors = Vec::new();
        let mut collect = |r: Result<Vec<DemuxEvent>, DemuxError>| match r {
            Ok(ev) => events.extend(ev),
            Err(e) => errors.push(e),
        };
        for c in data.chunks(chunk.max(1)) {
            collect(d.push(c));
        }
        collect(d.finish());
        collect(d.finish());
        (events, errors, d.dropped(), d.skipped_bytes())
    }

    fn vsample(dts: i64, pts: i64, keyframe: bool, nals: &[&[u8]]) -> DemuxEvent {
        let nals: Vec<Bytes> = nals.iter().map(|n| Bytes::copy_from_slice(n)).collect();
        DemuxEvent::Sample(Sample {
            track: VIDEO_TRACK,
            dts,
            pts,
            keyframe,
            data: to_length_prefixed(&nals),
            discontinuity: false,
        })
    }

    fn asample(t: i64, data: &[u8]) -> DemuxEvent {
        DemuxEvent::Sample(Sample {
            track: AUDIO_TRACK,
            dts: t,
            pts: t,
            keyframe: true,
            data: Bytes::copy_from_slice(data),
            discontinuity: false,
        })
    }

    fn video_track(sps: &str) -> DemuxEvent {
        let config = AvcConfig::from_sps_pps(&[Bytes::from(hex(sps))], &[Bytes::from(hex(PPS))]).unwrap();
        DemuxEvent::Track(Track {
            id: VIDEO_TRACK,
            timescale: Timescale::MPEG,
            codec: CodecConfig::H264(config),
            bitrate_hint: None,
        })
    }

    fn audio_track() -> DemuxEvent {
        DemuxEvent::Track(Track {
            id: AUDIO_TRACK,
            timescale: Timescale::new(48_000).unwrap(),
            codec: CodecConfig::Aac(aac48()),
            bitrate_hint: None,
        })
    }

    /// Tables, a keyframe, a delta frame and two audio PES (two frames each).
    fn sample_stream() -> (Vec<u8>, Vec<DemuxEvent>) {
        let (sps, pps, idr) = (hex(SPS), hex(PPS), idr());
        let mut m = Mux::default();
        m.tables();
        m.video(133_500, Some(126_000), &[AUD, &sps, &pps, SEI, &idr]);
        m.audio(126_000, &[b"frame0", b"frame1"]);
        m.video(129_000, None, &[AUD, NON_IDR]);
        m.audio(129_840, &[b"frame2", &[]]);
        m.tables();
        m.video(132_000, Some(130_500), &[AUD, NON_IDR, NON_IDR]);
        // 126000 * 48000 / 90000 = 67200; 129840 -> 69248.
        let want = vec![
            audio_track(),
            asample(67_200, b"frame0"),
            asample(68_224, b"frame1"),
            video_track(SPS),
            vsample(126_000, 133_500, true, &[SEI, &idr]),
            asample(69_248, b"frame2"),
            vsample(129_000, 129_000, false, &[NON_IDR]),
            vsample(130_500, 132_000, false, &[NON_IDR, NON_IDR]),
        ];
        (m.out, want)
    }

    #[test]
    fn crc_matches_known_pat() {
        // ffmpeg's PAT: CRC 2a b1 04 b2.
        let s = hex("00b00d0001c100000001f000");
        assert_eq!(crc32_mpeg(&s), 0x2ab1_04b2);
        assert_eq!(pat(0x1000), hex("00b00d0001c100000001f0002ab104b2"));
    }

    #[test]
    fn demuxes_pat_pmt_and_pes() {
        let (ts, want) = sample_stream();
        let (events, errors, dropped, skipped) = run(&ts, ts.len());
        assert_eq!(errors, vec![]);
        assert_eq!((dropped, skipped), (0, 0));
        assert_eq!(events, want);

        let mut d = TsDemuxer::new("s");
        let early = d.push(&ts).unwrap();
        // The last access unit waits for its end (next PES start or finish).
        assert_eq!(early, want[..want.len() - 1]);
        assert_eq!(d.finish().unwrap(), want[want.len() - 1..]);
        assert_eq!(d.stream_pids(), (Some(VPID), Some(APID)));
    }

    #[test]
    fn chunking_does_not_matter() {
        let (mut ts, want) = sample_stream();
        // Leading garbage and a partial packet at the end.
        let mut input = vec![0x12, 0x47, 0x00, 0x47];
        input.append(&mut ts);
        input.extend_from_slice(&[0x47, 1, 2]);
        for chunk in [1, 2, 3, 100, 187, 188, 189, 1000, input.len()] {
            let (events, errors, dropped, skipped) = run(&input, chunk);
            assert_eq!(events, want, "chunk {chunk}");
            assert_eq!((errors.len(), dropped, skipped), (0, 0, 7), "chunk {chunk}");
        }
    }

    #[test]
    fn resyncs_after_garbage_between_packets() {
        let (ts, want) = sample_stream();
        let mut input = Vec::new();
        for (i, p) in ts.chunks(188).enumerate() {
            input.extend_from_slice(p);
            if i % 3 == 1 {
                // Includes a fake sync byte not followed by one 188 bytes on.
                input.extend_from_slice(&[0x00, 0x47, 0xaa]);
            }
        }
        let gaps = ts.len() / 188 / 3 + usize::from(ts.len() / 188 % 3 > 1);
        for chunk in [1, 50, input.len()] {
            let (events, _, dropped, skipped) = run(&input, chunk);
            assert_eq!(events, want, "chunk {chunk}");
            assert_eq!((dropped, skipped), (0, 3 * gaps as u64), "chunk {chunk}");
        }
    }

    #[test]
    fn damaged_packets_drop_only_their_pes() {
        let (ts, want) = sample_stream();
        let packets: Vec<Vec<u8>> = ts.chunks(188).map(<[u8]>::to_vec).collect();
        // Packet 3 is the second packet of the keyframe PES (PID 0x100).
        assert_eq!(packets[3][1..3], [0x01, 0x00]);
        assert_eq!(packets[3][1] & 0x40, 0);
        let audio_only: Vec<DemuxEvent> = want
            .iter()
            .filter(|e| match e {
                DemuxEvent::Sample(s) => s.track == AUDIO_TRACK,
                DemuxEvent::Track(t) => t.id == AUDIO_TRACK,
            })
            .cloned()
            .collect();

        // Lost packet (continuity gap): the keyframe AU goes; the rest stays,
        // but delta frames are dropped too (no SPS/PPS yet).
        let mut lost = packets.clone();
        lost.remove(3);
        let (events, errors, dropped, _) = run(&lost.concat(), 188);
        assert_eq!(errors, vec![]);
        assert_eq!(dropped, 1);
        assert_eq!(events, audio_only);

        // transport_error_indicator: same.
        let mut tei = packets.clone();
        tei[3][1] |= 0x80;
        let (events, _, dropped, _) = run(&tei.concat(), 188);
        assert_eq!((events, dropped), (audio_only.clone(), 1));

        // Bad adaptation_field_length: same.
        let mut bad_af = packets.clone();
        bad_af[3][3] = 0x30 | (bad_af[3][3] & 0x0f);
        bad_af[3][4] = 184;
        let (events, _, dropped, _) = run(&bad_af.concat(), 188);
        assert_eq!((events, dropped), (audio_only.clone(), 1));

        // A duplicated packet (same CC) is ignored.
        let mut dup = packets.clone();
        dup.insert(4, dup[3].clone());
        let (events, _, dropped, _) = run(&dup.concat(), 188);
        assert_eq!((events, dropped), (want.clone(), 0));

        // A lost packet in the middle of the second keyframe-less AU only
        // costs that AU.
        let (sps, pps, idr) = (hex(SPS), hex(PPS), idr());
        let big = vec![0x41; 400];
        let mut m = Mux::default();
        m.tables();
        m.video(3000, None, &[&sps, &pps, &idr]);
        m.video(6000, None, &[&big]);
        m.video(9000, None, &[NON_IDR]);
        let mut packets: Vec<Vec<u8>> = m.out.chunks(188).map(<[u8]>::to_vec).collect();
        let second_start = packets
            .iter()
            .position(|p| p[1] & 0x40 != 0 && p[1] & 0x1f == 1 && p[4..].windows(3).any(|w| w == [0x41, 0x41, 0x41]))
            .unwrap();
        packets.remove(second_start + 1);
        let (events, _, dropped, _) = run(&packets.concat(), 188);
        assert_eq!(dropped, 1);
        assert_eq!(
            events,
            vec![video_track(SPS), vsample(3000, 3000, true, &[&idr]), vsample(9000, 9000, false, &[NON_IDR])]
        );
    }

    #[test]
    fn bad_sections_are_dropped() {
        let (ts, want) = sample_stream();
        let mut packets: Vec<Vec<u8>> = ts.chunks(188).map(<[u8]>::to_vec).collect();
        // Corrupt the first PMT's CRC: nothing until the second PMT.
        packets[1][20] ^= 0xff;
        // The delta frame after the second PMT has no SPS/PPS to go with.
        let (events, errors, dropped, _) = run(&packets.concat(), 188);
        assert_eq!(errors, vec![]);
        assert_eq!(dropped, 1);
        assert_eq!(events, vec![]);

        // A corrupt repetition of the PMT changes nothing.
        let mut packets: Vec<Vec<u8>> = ts.chunks(188).map(<[u8]>::to_vec).collect();
        let second_pmt = packets.iter().rposition(|p| p[1] & 0x1f == 0x10 && p[2] == 0).unwrap();
        assert_ne!(second_pmt, 1);
        packets[second_pmt][30] ^= 0x01;
        let (events, errors, dropped, _) = run(&packets.concat(), 188);
        assert_eq!((events, errors, dropped), (want, vec![], 1));
    }

    #[test]
    fn timestamps_unwrap_across_33_bits() {
        let (sps, pps, idr) = (hex(SPS), hex(PPS), idr());
        let wrap = 1i64 << 33;
        let mut m = Mux::default();
        m.tables();
        m.video(wrap - 3000, None, &[&sps, &pps, &idr]);
        m.audio(wrap - 1920, &[b"a"]);
        m.video(wrap, None, &[NON_IDR]); // written as 0
        m.audio(0, &[b"b"]);
        m.video(wrap + 3000, Some(wrap - 6000), &[NON_IDR]); // pts wrapped, dts not
        m.video(2 * wrap + 1, None, &[NON_IDR]); // a forward jump of ~2^33: nearest is +1 -> 0 + 1
        let (events, errors, dropped, _) = run(&m.out, 188);
        assert_eq!((errors.len(), dropped), (0, 0));
        let video: Vec<(i64, i64)> = events
            .iter()
            .filter_map(|e| match e {
                DemuxEvent::Sample(s) if s.track == VIDEO_TRACK => Some((s.dts, s.pts)),
                _ => None,
            })
            .collect();
        assert_eq!(
            video,
            vec![(wrap - 3000, wrap - 3000), (wrap, wrap), (wrap - 6000, wrap + 3000), (wrap + 1, wrap + 1)]
        );
        let audio: Vec<i64> = events
            .iter()
            .filter_map(|e| match e {
                DemuxEvent::Sample(s) if s.track == AUDIO_TRACK => Some(s.dts),
                _ => None,
            })
            .collect();
        let at = |t: i64| Timescale::MPEG.convert_floor(t, Timescale::new(48_000).unwrap());
        assert_eq!(audio, vec![at(wrap - 1920), at(wrap)]);

        assert_eq!(unwrap_timestamp(5, None), 5);
        assert_eq!(unwrap_timestamp(5, Some(wrap - 5)), wrap + 5);
        assert_eq!(unwrap_timestamp(wrap - 5, Some(5)), -5);
        assert_eq!(unwrap_timestamp(100, Some(3 * wrap + 90)), 3 * wrap + 100);
    }

    #[test]
    fn pes_without_pts_continues() {
        let (sps, pps, idr) = (hex(SPS), hex(PPS), idr());
        let mut m = Mux::default();
        m.tables();
        // An access unit split over two PES, the second without PTS.
        m.video(3000, None, &[AUD, &sps, &pps]);
        m.pes(VPID, &pes(0xe0, None, None, &annex_b(&[&idr]), false));
        m.video(6000, None, &[NON_IDR]);
        // Audio: a PES without PTS continues from the previous frame.
        m.audio(90_000, &[b"a"]);
        m.pes(APID, &pes(0xc0, None, None, &adts(&[b"b", b"c"]), true));
        let (events, errors, dropped, _) = run(&m.out, 188);
        assert_eq!((errors.len(), dropped), (0, 0));
        assert_eq!(
            events,
            vec![
                video_track(SPS),
                vsample(3000, 3000, true, &[&idr]),
                audio_track(),
                asample(48_000, b"a"),
                asample(49_024, b"b"),
                asample(50_048, b"c"),
                vsample(6000, 6000, false, &[NON_IDR]),
            ]
        );
    }

    #[test]
    fn parameter_set_changes_and_rejections() {
        let (sps, sps2, pps, idr) = (hex(SPS), hex(SPS_320), hex(PPS), idr());
        let bad_sps: &[u8] = &[0x67, 0x64, 0x00];
        let mut m = Mux::default();
        m.tables();
        m.video(0, None, &[NON_IDR]); // before any SPS/PPS: dropped
        m.video(3000, None, &[&sps, &pps, &idr]);
        m.video(6000, None, &[&sps, &pps, &idr]); // same: no Track
        m.video(9000, None, &[&sps2, &idr]); // new SPS, old PPS
        m.video(12000, None, &[bad_sps, &idr]); // rejected: error, sample dropped
        m.video(15000, None, &[NON_IDR]); // still no usable config
        m.video(18000, None, &[bad_sps, &idr]); // same rejection: no second error
        m.video(21000, None, &[&sps, &idr]);
        let (events, errors, _, _) = run(&m.out, 188);
        assert_eq!(
            events,
            vec![
                video_track(SPS),
                vsample(3000, 3000, true, &[&idr]),
                vsample(6000, 6000, true, &[&idr]),
                video_track(SPS_320),
                vsample(9000, 9000, true, &[&idr]),
                video_track(SPS),
                vsample(21000, 21000, true, &[&idr]),
            ]
        );
        assert_eq!(errors.len(), 1);
        assert!(matches!(&errors[0], DemuxError::Codec { .. }), "{:?}", errors[0]);
    }

    #[test]
    fn unsupported_pmt_and_scrambling_are_reported_once() {
        let mut m = Mux::default();
        m.psi(0, &pat(PMT_PID));
        m.psi(PMT_PID, &pmt(&[(0x24, 0x100), (0x03, 0x101)]));
        m.psi(0, &pat(PMT_PID));
        m.psi(PMT_PID, &pmt(&[(0x24, 0x100), (0x03, 0x101)]));
        let (events, errors, _, _) = run(&m.out, 188);
        assert_eq!(events, vec![]);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("stream types: [0x24, 0x03]"), "{}", errors[0]);

        // Scrambled video packets; errors never swallow events.
        let (ts, want) = sample_stream();
        let mut packets: Vec<Vec<u8>> = ts.chunks(188).map(<[u8]>::to_vec).collect();
        let n = packets.len();
        for p in packets.iter_mut().skip(n - 4).filter(|p| p[1] & 0x1f == 0x01 && p[2] == 0x00) {
            p[3] |= 0x80;
        }
        let (events, errors, _, _) = run(&packets.concat(), 188);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("scrambled"));
        assert_eq!(events, want[..want.len() - 1]);

        // Err and events in the same push: the events come with the next call.
        let mut d = TsDemuxer::new("s");
        assert!(d.push(&packets.concat()).is_err());
        assert_eq!(d.push(&[]).unwrap(), want[..want.len() - 1]);
    }

    #[test]
    fn malformed_pes_and_adts() {
        let (sps, pps, idr) = (hex(SPS), hex(PPS), idr());
        let mut m = Mux::default();
        m.tables();
        m.video(3000, None, &[&sps, &pps, &idr]);
        // Not a PES start code.
        m.pes(VPID, &[0, 0, 2, 0xe0, 0, 0, 0x80, 0, 0]);
        // Audio PES whose second ADTS frame is cut short.
        let mut cut = adts(&[b"ok", b"truncated"]);
        cut.truncate(cut.len() - 3);
        m.pes(APID, &pes(0xc0, Some(9000), None, &cut, true));
        // Audio PES shorter than its declared length (ended by the next).
        let mut short = pes(0xc0, Some(18000), None, &adts(&[b"x"]), true);
        short[5] += 10;
        m.pes(APID, &short);
        m.audio(27000, &[b"good"]);
        let (events, errors, dropped, _) = run(&m.out, 188);
        assert_eq!(errors, vec![]);
        assert_eq!(dropped, 3);
        assert_eq!(
            events,
            vec![
                video_track(SPS),
                vsample(3000, 3000, true, &[&idr]),
                audio_track(),
                asample(4800, b"ok"),
                asample(14400, b"good"),
            ]
        );
        assert_eq!(parse_pes_header(&[0, 0, 1, 0xe0, 0, 0, 0x80, 0x40, 0]), Err("forbidden PTS_DTS_flags value 1"));
        assert_eq!(
            parse_pes_header(&[0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 2, 0x21, 0]),
            Err("PES header too short for PTS")
        );
        assert_eq!(parse_pes_header(&[0, 0, 1, 0xbe, 0, 0, 0xff, 0xff, 0xff]), Err("PES stream_id without timestamps"));
        assert_eq!(parse_pes_header(&[0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 5, 1]), Err("truncated PES header"));
    }

    /// Deterministic xorshift for mutation tests.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn mutated_streams_never_panic_and_ignore_chunking() {
        let (ts, _) = sample_stream();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..400 {
            let mut input = ts.clone();
            for _ in 0..1 + next(&mut rng) % 6 {
                let i = (next(&mut rng) as usize) % input.len();
                match next(&mut rng) % 3 {
                    0 => input[i] = next(&mut rng) as u8,
                    1 => {
                        input.remove(i);
                    }
                    _ => input.insert(i, next(&mut rng) as u8),
                }
            }
            let whole = run(&input, input.len());
            let chunk = 1 + (next(&mut rng) as usize) % 300;
            let chunked = run(&input, chunk);
            assert_eq!(whole.0, chunked.0, "chunk {chunk}");
            assert_eq!((whole.2, whole.3), (chunked.2, chunked.3), "chunk {chunk}");
            assert_eq!(whole.1.len(), chunked.1.len(), "chunk {chunk}");
        }
    }
}
