//! MPEG-TS segment writer for classic HLS.
//!
//! [`mux_segment`] turns the samples of one HLS segment into a complete,
//! self-contained transport stream: PAT and PMT first, then one PES per
//! access unit, interleaved by decode time. The output is a pure function of
//! the arguments; two servers given the same tracks and samples write the
//! same bytes.
//!
//! Fixed layout (product requirements, relied upon by players, golden tests
//! and the redundant-pair byte comparison):
//!
//! | what                  | value                                         |
//! |-----------------------|-----------------------------------------------|
//! | transport_stream_id   | 1                                             |
//! | program_number        | 1                                             |
//! | PMT PID               | `0x1000`                                      |
//! | H.264 PID             | `0x100`, stream_type `0x1B`, stream_id `0xE0` |
//! | AAC (ADTS) PID        | `0x101`, stream_type `0x0F`, stream_id `0xC0` |
//! | PCR PID               | video PID if there is video, else audio PID   |
//! | continuity counters   | start at 0 on every PID in every segment      |
//!
//! Timestamp rules:
//! - PTS/DTS are the sample timestamps converted to 90 kHz with
//!   [`Timescale::convert_floor`], written modulo 2^33.
//! - Video PES carry PTS and DTS; the DTS field is omitted exactly when it
//!   equals the PTS (after the modulo), as ISO/IEC 13818-1 requires. Audio
//!   PES carry PTS only.
//! - The first TS packet of every PES on the PCR PID carries a PCR whose base
//!   is that PES's DTS (extension 0).

use bytes::Bytes;

use crate::codec::{self, AacConfig, AvcConfig, CodecError, NAL_AUD, NAL_PPS, NAL_SPS};
use crate::media::{CodecConfig, Sample, Timescale, Track, TrackId, TrackKind};

/// Size of one transport stream packet.
pub const TS_PACKET_SIZE: usize = 188;
/// PID of the Program Association Table.
pub const PID_PAT: u16 = 0x0000;
/// PID of the Program Map Table.
pub const PID_PMT: u16 = 0x1000;
/// PID of the H.264 elementary stream.
pub const PID_VIDEO: u16 = 0x0100;
/// PID of the AAC (ADTS) elementary stream.
pub const PID_AUDIO: u16 = 0x0101;
/// `transport_stream_id` written in the PAT.
pub const TRANSPORT_STREAM_ID: u16 = 1;
/// `program_number` of the single program.
pub const PROGRAM_NUMBER: u16 = 1;
/// PMT `stream_type` for H.264 video.
pub const STREAM_TYPE_H264: u8 = 0x1B;
/// PMT `stream_type` for AAC in ADTS framing.
pub const STREAM_TYPE_AAC_ADTS: u8 = 0x0F;
/// PES `stream_id` of the video stream.
pub const STREAM_ID_VIDEO: u8 = 0xE0;
/// PES `stream_id` of the audio stream.
pub const STREAM_ID_AUDIO: u8 = 0xC0;

/// Payload bytes after the 4-byte TS header.
const TS_PAYLOAD_SIZE: usize = TS_PACKET_SIZE - 4;
/// Timestamps in PES headers and PCR bases are 33-bit.
const TIMESTAMP_MODULUS: i64 = 1 << 33;
/// Access unit delimiter NAL unit (primary_pic_type 7: any slice type) with
/// its 4-byte start code.
const AUD: [u8; 6] = [0x00, 0x00, 0x00, 0x01, 0x09, 0xF0];
const START_CODE: [u8; 4] = [0x00, 0x00, 0x00, 0x01];
/// Largest raw AAC frame that fits the 13-bit ADTS `frame_length` together
/// with the 7-byte header.
const MAX_AAC_FRAME: usize = 0x1FFF - 7;
/// Upper bound of the up-front output allocation (64 MiB).
const MAX_PREALLOCATION: usize = 64 << 20;

/// Why a segment could not be written. Track errors name the track; sample
/// errors name the sample's track and its DTS in that track's timescale.
/// When several samples are bad, the error is about the first one in
/// interleaved (output) order, except that unknown tracks are reported first.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TsMuxError {
    /// `tracks` was empty.
    #[error("MPEG-TS segment without tracks")]
    NoTracks,
    /// Two entries of `tracks` share a track id.
    #[error("track {track}: listed twice")]
    DuplicateTrackId { track: TrackId },
    /// More than one track of a kind (one H.264 and one AAC track at most).
    #[error("track {track}: a second {} track (at most one H.264 and one AAC track)", kind.as_str())]
    TooManyTracks { track: TrackId, kind: TrackKind },
    /// A sample refers to a track that is not in `tracks`.
    #[error("sample at dts {dts} refers to track {track}, which is not in the segment's tracks")]
    UnknownTrack { track: TrackId, dts: i64 },
    /// A sample has no data.
    #[error("track {track}: empty sample at dts {dts}")]
    EmptySample { track: TrackId, dts: i64 },
    /// An H.264 sample is not a sequence of 4-byte length-prefixed NAL units.
    #[error("track {track}: malformed H.264 sample at dts {dts}: {source}")]
    MalformedNal {
        track: TrackId,
        dts: i64,
        #[source]
        source: CodecError,
    },
    /// An AAC frame does not fit an ADTS frame (13-bit frame length).
    #[error("track {track}: AAC frame at dts {dts} is {len} bytes, more than ADTS allows ({max})", max = MAX_AAC_FRAME)]
    AacFrameTooLarge { track: TrackId, dts: i64, len: usize },
}

/// Write one complete MPEG-TS segment.
///
/// `tracks` holds at most one H.264 and one AAC track (any order; the PMT
/// always lists video first). `samples` are all samples of the segment, for
/// any of those tracks, each track's samples in decode order. Samples are
/// interleaved by DTS in 90 kHz; on equal DTS video goes first, then input
/// order decides (stable sort).
///
/// The result starts with a PAT and a PMT, every PID's continuity counter
/// starts at 0, and every PES ends on a packet boundary. With tracks but no
/// samples the segment is just the PAT and PMT.
///
/// Never panics; malformed input is a [`TsMuxError`].
pub fn mux_segment(tracks: &[&Track], samples: &[&Sample]) -> Result<Bytes, TsMuxError> {
    let program = Program::new(tracks)?;

    // Resolve every sample to its stream and decode time before writing a
    // single byte.
    let mut order: Vec<(i64, StreamSlot, &Sample)> = Vec::with_capacity(samples.len());
    for &sample in samples {
        let (slot, track) =
            program.lookup(sample.track).ok_or(TsMuxError::UnknownTrack { track: sample.track, dts: sample.dts })?;
        let dts90 = track.timescale.convert_floor(sample.dts, Timescale::MPEG);
        order.push((dts90, slot, sample));
    }
    // `sort_by_key` is stable: equal keys keep input order.
    order.sort_by_key(|&(dts90, slot, _)| (dts90, slot));

    // Payload plus PES/AUD/SPS/PPS overhead plus about 4/184 TS overhead.
    // Only a capacity hint: saturating, and capped so that no input can ask
    // for an absurd allocation up front (the buffer still grows as needed).
    let estimate = samples
        .iter()
        .fold(2 * TS_PACKET_SIZE, |acc, s| {
            acc.saturating_add(s.data.len().saturating_add(128).saturating_mul(188) / 184)
        })
        .min(MAX_PREALLOCATION);
    let mut w = TsWriter::with_capacity(estimate);
    w.write_section(PID_PAT, &pat_section());
    w.write_section(PID_PMT, &pmt_section(program.video.is_some(), program.audio.is_some()));

    // Each PES is written into the packets straight from its pieces (PES
    // header, AUD, start codes, the sample's NAL units or ADTS header and
    // frame): the sample data is copied once, into the segment.
    let mut head = Vec::with_capacity(32);
    let (mut video_started, mut audio_started) = (false, false);
    for (dts90, slot, sample) in order {
        head.clear();
        let nals: Vec<Bytes>;
        let adts: [u8; 7];
        let mut pieces: Vec<&[u8]> = match slot {
            StreamSlot::Video => {
                // `lookup` only returns `Video` when there is a video track;
                // the error arm is unreachable but keeps this panic-free.
                let (track, avc) =
                    program.video.ok_or(TsMuxError::UnknownTrack { track: sample.track, dts: sample.dts })?;
                let pts90 = track.timescale.convert_floor(sample.pts, Timescale::MPEG);
                nals = video_nals(track, sample)?;
                write_video_pes_header(&mut head, pts90, dts90);
                video_pes_pieces(avc, sample, &nals)
            }
            StreamSlot::Audio => {
                let (track, aac) =
                    program.audio.ok_or(TsMuxError::UnknownTrack { track: sample.track, dts: sample.dts })?;
                let pts90 = track.timescale.convert_floor(sample.pts, Timescale::MPEG);
                adts = write_audio_pes_header(&mut head, track, aac, sample, pts90)?;
                vec![&adts[..], &sample.data[..]]
            }
        };
        pieces.insert(0, &head);
        let pid = slot.pid();
        let is_pcr_pid = pid == program.pcr_pid();
        let first_on_pid = match slot {
            StreamSlot::Video => !std::mem::replace(&mut video_started, true),
            StreamSlot::Audio => !std::mem::replace(&mut audio_started, true),
        };
        let af = FirstPacketFields {
            discontinuity: first_on_pid,
            pcr_base: is_pcr_pid.then(|| wrap33(dts90)),
            random_access: match slot {
                StreamSlot::Video => sample.keyframe,
                StreamSlot::Audio => is_pcr_pid,
            },
        };
        w.write_pes(pid, &pieces, af);
    }
    Ok(w.finish())
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, initial value 0xFFFFFFFF, no
/// reflection, no final XOR), as used by PSI sections.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    data.iter().fold(0xFFFF_FFFF_u32, |crc, &b| {
        // The index is `u8`-sized, so it is always inside the 256-entry table.
        (crc << 8) ^ CRC32_MPEG2_TABLE[usize::from(((crc >> 24) as u8) ^ b)]
    })
}

const CRC32_MPEG2_TABLE: [u32; 256] = crc32_mpeg2_table();

const fn crc32_mpeg2_table() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 0x8000_0000 != 0 { (c << 1) ^ 0x04C1_1DB7 } else { c << 1 };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// Which elementary stream a sample goes to. The derived order is the
/// tie-break of the interleave: video before audio.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum StreamSlot {
    Video,
    Audio,
}

impl StreamSlot {
    fn pid(self) -> u16 {
        match self {
            StreamSlot::Video => PID_VIDEO,
            StreamSlot::Audio => PID_AUDIO,
        }
    }
}

/// The (at most) two tracks of the program, validated.
struct Program<'a> {
    video: Option<(&'a Track, &'a AvcConfig)>,
    audio: Option<(&'a Track, &'a AacConfig)>,
}

impl<'a> Program<'a> {
    fn new(tracks: &[&'a Track]) -> Result<Program<'a>, TsMuxError> {
        if tracks.is_empty() {
            return Err(TsMuxError::NoTracks);
        }
        let mut program = Program { video: None, audio: None };
        for (i, &track) in tracks.iter().enumerate() {
            if tracks.iter().take(i).any(|t| t.id == track.id) {
                return Err(TsMuxError::DuplicateTrackId { track: track.id });
            }
            let too_many = TsMuxError::TooManyTracks { track: track.id, kind: track.kind() };
            // Exhaustive on purpose: a new codec must decide how (and
            // whether) it is carried in MPEG-TS.
            match &track.codec {
                CodecConfig::H264(avc) => {
                    if program.video.replace((track, avc)).is_some() {
                        return Err(too_many);
                    }
                }
                CodecConfig::Aac(aac) => {
                    if program.audio.replace((track, aac)).is_some() {
                        return Err(too_many);
                    }
                }
            }
        }
        Ok(program)
    }

    fn lookup(&self, id: TrackId) -> Option<(StreamSlot, &'a Track)> {
        match (self.video, self.audio) {
            (Some((t, _)), _) if t.id == id => Some((StreamSlot::Video, t)),
            (_, Some((t, _))) if t.id == id => Some((StreamSlot::Audio, t)),
            _ => None,
        }
    }

    fn pcr_pid(&self) -> u16 {
        if self.video.is_some() {
            PID_VIDEO
        } else {
            PID_AUDIO
        }
    }
}

/// A timestamp in 90 kHz reduced modulo 2^33 (always non-negative).
fn wrap33(ts90: i64) -> u64 {
    // rem_euclid with a positive modulus is in 0..2^33, so the cast is exact.
    ts90.rem_euclid(TIMESTAMP_MODULUS) as u64
}

/// Video PES: header with PTS (and DTS unless equal), then the access unit
/// in Annex B: AUD, SPS/PPS on keyframes, then the sample's NAL units minus
/// any AUD/SPS/PPS it carried itself.
/// The NAL units of a video sample (AVC length-prefixed, 4-byte lengths).
fn video_nals(track: &Track, sample: &Sample) -> Result<Vec<Bytes>, TsMuxError> {
    if sample.data.is_empty() {
        return Err(TsMuxError::EmptySample { track: track.id, dts: sample.dts });
    }
    codec::split_length_prefixed(&sample.data, 4).map_err(|source| TsMuxError::MalformedNal {
        track: track.id,
        dts: sample.dts,
        source,
    })
}

/// The PES header of a video access unit.
fn write_video_pes_header(out: &mut Vec<u8>, pts90: i64, dts90: i64) {
    let pts = wrap33(pts90);
    let dts = wrap33(dts90);
    // PES_packet_length 0: unbounded, allowed for video in TS.
    write_pes_header(out, STREAM_ID_VIDEO, 0, pts, (dts != pts).then_some(dts));
}

/// The rest of a video PES after its header: AUD, SPS and PPS before a
/// keyframe, then the sample's NAL units (without its own AUD, SPS, PPS),
/// each behind a start code.
fn video_pes_pieces<'a>(avc: &'a AvcConfig, sample: &Sample, nals: &'a [Bytes]) -> Vec<&'a [u8]> {
    // Room for the PES header in front (see `mux_segment`).
    let mut pieces: Vec<&[u8]> = Vec::with_capacity(3 + 2 * nals.len() + 4);
    pieces.push(&AUD);
    if sample.keyframe {
        for nal in avc.sps.iter().chain(avc.pps.iter()) {
            if !nal.is_empty() {
                pieces.push(&START_CODE);
                pieces.push(nal);
            }
        }
    }
    for nal in nals {
        if nal.is_empty() || matches!(codec::nal_type(nal), NAL_AUD | NAL_SPS | NAL_PPS) {
            continue;
        }
        pieces.push(&START_CODE);
        pieces.push(nal);
    }
    pieces
}

/// Audio PES: header with PTS and a PES_packet_length, then ADTS header and
/// raw AAC frame.
/// Writes the PES header and returns the ADTS header; the frame follows.
fn write_audio_pes_header(
    out: &mut Vec<u8>,
    track: &Track,
    aac: &AacConfig,
    sample: &Sample,
    pts90: i64,
) -> Result<[u8; 7], TsMuxError> {
    let frame = &sample.data;
    if frame.is_empty() {
        return Err(TsMuxError::EmptySample { track: track.id, dts: sample.dts });
    }
    if frame.len() > MAX_AAC_FRAME {
        return Err(TsMuxError::AacFrameTooLarge { track: track.id, dts: sample.dts, len: frame.len() });
    }
    let adts = aac.adts_header(frame.len());
    // After PES_packet_length: 3 flag/length bytes + 5 PTS bytes, then data.
    // At most 8 + 7 + 8184 bytes, so it fits the 16-bit field.
    let pes_len = 3 + 5 + adts.len() + frame.len();
    let pes_len = u16::try_from(pes_len).unwrap_or(0);
    write_pes_header(out, STREAM_ID_AUDIO, pes_len, wrap33(pts90), None);
    Ok(adts)
}

/// PES header up to the end of PES_header_data. `pts`/`dts` are 33-bit.
/// data_alignment_indicator is set: every PES starts with an access unit
/// (AUD for video, ADTS syncword for audio).
fn write_pes_header(out: &mut Vec<u8>, stream_id: u8, pes_len: u16, pts: u64, dts: Option<u64>) {
    out.extend_from_slice(&[0x00, 0x00, 0x01, stream_id]);
    out.extend_from_slice(&pes_len.to_be_bytes());
    // '10', scrambling 00, priority 0, data_alignment_indicator 1,
    // copyright 0, original 0.
    out.push(0x84);
    match dts {
        Some(dts) => {
            out.push(0xC0); // PTS_DTS_flags '11'
            out.push(10);
            write_timestamp(out, 0b0011, pts);
            write_timestamp(out, 0b0001, dts);
        }
        None => {
            out.push(0x80); // PTS_DTS_flags '10'
            out.push(5);
            write_timestamp(out, 0b0010, pts);
        }
    }
}

/// The 5-byte PTS/DTS encoding with marker bits.
fn write_timestamp(out: &mut Vec<u8>, prefix: u8, ts: u64) {
    out.extend_from_slice(&[
        (prefix << 4) | (((ts >> 29) & 0x0E) as u8) | 1,
        (ts >> 22) as u8,
        (((ts >> 14) & 0xFE) as u8) | 1,
        (ts >> 7) as u8,
        (((ts << 1) & 0xFE) as u8) | 1,
    ]);
}

/// Program Association Table section (with CRC): program 1 → PMT PID.
fn pat_section() -> Vec<u8> {
    let mut s = Vec::with_capacity(16);
    s.push(0x00); // table_id
                  // section_syntax_indicator 1, '0', reserved '11', section_length 13.
    s.extend_from_slice(&[0xB0, 13]);
    s.extend_from_slice(&TRANSPORT_STREAM_ID.to_be_bytes());
    s.extend_from_slice(&[0xC1, 0x00, 0x00]); // version 0, current, section 0/0
    s.extend_from_slice(&PROGRAM_NUMBER.to_be_bytes());
    s.extend_from_slice(&(0xE000 | PID_PMT).to_be_bytes());
    push_crc(&mut s);
    s
}

/// Program Map Table section (with CRC). Video is listed before audio.
fn pmt_section(video: bool, audio: bool) -> Vec<u8> {
    let pcr_pid = if video { PID_VIDEO } else { PID_AUDIO };
    let streams = [(video, STREAM_TYPE_H264, PID_VIDEO), (audio, STREAM_TYPE_AAC_ADTS, PID_AUDIO)];
    let mut body = Vec::with_capacity(32);
    body.extend_from_slice(&PROGRAM_NUMBER.to_be_bytes());
    body.extend_from_slice(&[0xC1, 0x00, 0x00]); // version 0, current, section 0/0
    body.extend_from_slice(&(0xE000 | pcr_pid).to_be_bytes());
    body.extend_from_slice(&[0xF0, 0x00]); // program_info_length 0
    for (present, stream_type, pid) in streams {
        if present {
            body.push(stream_type);
            body.extend_from_slice(&(0xE000 | pid).to_be_bytes());
            body.extend_from_slice(&[0xF0, 0x00]); // ES_info_length 0
        }
    }
    // section_length counts the body and the CRC; at most 9 + 10 + 4 here.
    let section_length = (body.len() + 4) as u16;
    let mut s = Vec::with_capacity(body.len() + 7);
    s.push(0x02); // table_id
    s.extend_from_slice(&(0xB000 | section_length).to_be_bytes());
    s.extend_from_slice(&body);
    push_crc(&mut s);
    s
}

fn push_crc(section: &mut Vec<u8>) {
    let crc = crc32_mpeg2(section);
    section.extend_from_slice(&crc.to_be_bytes());
}

/// Adaptation-field content of the first packet of a PES.
#[derive(Clone, Copy, Debug)]
struct FirstPacketFields {
    /// 33-bit PCR base, extension 0.
    pcr_base: Option<u64>,
    random_access: bool,
    /// discontinuity_indicator: set on the first packet of each elementary
    /// PID in a segment, whose continuity counter restarts at 0, so that a
    /// demuxer reading segments back to back does not take the reset for
    /// packet loss.
    discontinuity: bool,
}

/// Packetises sections and PES into 188-byte packets; continuity counters
/// start at 0 per PID.
struct TsWriter {
    out: Vec<u8>,
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    cc_audio: u8,
}

impl TsWriter {
    fn with_capacity(capacity: usize) -> TsWriter {
        TsWriter { out: Vec::with_capacity(capacity), cc_pat: 0, cc_pmt: 0, cc_video: 0, cc_audio: 0 }
    }

    fn finish(self) -> Bytes {
        Bytes::from(self.out)
    }

    /// The next continuity counter for `pid` (post-incremented mod 16).
    fn next_cc(&mut self, pid: u16) -> u8 {
        let cc = match pid {
            PID_PAT => &mut self.cc_pat,
            PID_PMT => &mut self.cc_pmt,
            PID_VIDEO => &mut self.cc_video,
            _ => &mut self.cc_audio,
        };
        let current = *cc;
        *cc = (current + 1) & 0x0F;
        current
    }

    /// A PSI section in one packet: pointer_field 0, section, 0xFF fill.
    /// Our sections are at most 31 bytes, far below the 183 available.
    fn write_section(&mut self, pid: u16, section: &[u8]) {
        let cc = self.next_cc(pid);
        let start = self.out.len();
        self.write_header(pid, true, false, cc);
        self.out.push(0x00); // pointer_field
        self.out.extend_from_slice(section);
        self.out.resize(start + TS_PACKET_SIZE, 0xFF);
    }

    fn write_header(&mut self, pid: u16, pusi: bool, adaptation: bool, cc: u8) {
        let afc: u8 = if adaptation { 0b11 } else { 0b01 };
        self.out.extend_from_slice(&[
            0x47,
            (u8::from(pusi) << 6) | ((pid >> 8) as u8 & 0x1F),
            pid as u8,
            (afc << 4) | (cc & 0x0F),
        ]);
    }

    /// Split one PES over packets. The first packet has payload_unit_start
    /// and, if asked, an adaptation field with PCR / random_access_indicator.
    /// The last packet is padded with adaptation-field stuffing so the PES
    /// ends exactly at a packet boundary.
    fn write_pes(&mut self, pid: u16, pes: &[&[u8]], first: FirstPacketFields) {
        let mut remaining: usize = pes.iter().map(|p| p.len()).sum();
        let mut pieces = pes.iter().copied().filter(|p| !p.is_empty());
        let mut current: &[u8] = pieces.next().unwrap_or_default();
        let mut is_first = true;
        while remaining > 0 {
            let (pcr_base, random_access, discontinuity) = if is_first {
                (first.pcr_base, first.random_access, first.discontinuity)
            } else {
                (None, false, false)
            };
            // Adaptation field bytes this packet needs regardless of payload
            // size: length byte + flags byte (+ 6 PCR bytes).
            let mandatory = if pcr_base.is_some() {
                8
            } else if random_access || discontinuity {
                2
            } else {
                0
            };
            let capacity = TS_PAYLOAD_SIZE - mandatory;
            let (payload_len, af_len) =
                if remaining >= capacity { (capacity, mandatory) } else { (remaining, TS_PAYLOAD_SIZE - remaining) };
            let cc = self.next_cc(pid);
            let start = self.out.len();
            self.write_header(pid, is_first, af_len > 0, cc);
            if af_len > 0 {
                // adaptation_field_length excludes its own byte; af_len <= 183.
                self.out.push((af_len - 1) as u8);
                if af_len > 1 {
                    let mut flags = 0u8;
                    if discontinuity {
                        flags |= 0x80;
                    }
                    if random_access {
                        flags |= 0x40;
                    }
                    if pcr_base.is_some() {
                        flags |= 0x10;
                    }
                    self.out.push(flags);
                    if let Some(base) = pcr_base {
                        self.out.extend_from_slice(&[
                            (base >> 25) as u8,
                            (base >> 17) as u8,
                            (base >> 9) as u8,
                            (base >> 1) as u8,
                            // Last base bit, 6 reserved '1' bits, extension 0.
                            (((base & 1) as u8) << 7) | 0x7E,
                            0x00,
                        ]);
                    }
                    self.out.resize(start + 4 + af_len, 0xFF);
                }
            }
            // payload_len <= remaining in both branches above: the pieces
            // hold enough bytes.
            let mut need = payload_len;
            while need > 0 {
                if current.is_empty() {
                    match pieces.next() {
                        Some(p) => current = p,
                        None => break,
                    }
                }
                let n = need.min(current.len());
                let (payload, tail) = current.split_at(n);
                self.out.extend_from_slice(payload);
                current = tail;
                need -= n;
            }
            debug_assert_eq!(self.out.len() - start, TS_PACKET_SIZE);
            remaining -= payload_len;
            is_first = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::SpsInfo;
    use crate::ts_inspect::summarize_ts;

    // ffmpeg 5.1 (`-f mpegts`, default PIDs) writes these PSI packets; the
    // rest of each packet is 0xFF.
    const FFMPEG_PAT: &[u8] = &[
        0x47, 0x40, 0x00, 0x10, 0x00, 0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00, 0x00, 0x01, 0xF0, 0x00, 0x2A,
        0xB1, 0x04, 0xB2,
    ];
    const FFMPEG_PMT_AV: &[u8] = &[
        0x47, 0x50, 0x00, 0x10, 0x00, 0x02, 0xB0, 0x17, 0x00, 0x01, 0xC1, 0x00, 0x00, 0xE1, 0x00, 0xF0, 0x00, 0x1B,
        0xE1, 0x00, 0xF0, 0x00, 0x0F, 0xE1, 0x01, 0xF0, 0x00, 0x2F, 0x44, 0xB9, 0x9B,
    ];
    const FFMPEG_PMT_VIDEO: &[u8] = &[
        0x47, 0x50, 0x00, 0x10, 0x00, 0x02, 0xB0, 0x12, 0x00, 0x01, 0xC1, 0x00, 0x00, 0xE1, 0x00, 0xF0, 0x00, 0x1B,
        0xE1, 0x00, 0xF0, 0x00, 0x15, 0xBD, 0x4D, 0x56,
    ];
    // `-streamid 0:0x101`, audio only: PCR_PID is the audio PID.
    const FFMPEG_PMT_AUDIO: &[u8] = &[
        0x47, 0x50, 0x00, 0x10, 0x00, 0x02, 0xB0, 0x12, 0x00, 0x01, 0xC1, 0x00, 0x00, 0xE1, 0x01, 0xF0, 0x00, 0x0F,
        0xE1, 0x01, 0xF0, 0x00, 0xEC, 0xE2, 0xB0, 0x94,
    ];

    const SPS: &[u8] = &[0x67, 0x64, 0x00, 0x1F, 0xAC, 0xD9];
    const PPS: &[u8] = &[0x68, 0xEB, 0xE3, 0xCB];
    const IDR: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x33];
    const SLICE: &[u8] = &[0x41, 0x9A, 0x21, 0x6C];
    const SEI: &[u8] = &[0x06, 0x05, 0x01, 0xAA, 0x80];
    const IN_BAND_AUD: &[u8] = &[0x09, 0x10];

    fn padded(prefix: &[u8]) -> Vec<u8> {
        let mut p = prefix.to_vec();
        p.resize(TS_PACKET_SIZE, 0xFF);
        p
    }

    fn video_track(id: u32, timescale: u32) -> Track {
        Track {
            id: TrackId(id),
            timescale: Timescale::new(timescale).unwrap_or(Timescale::MPEG),
            codec: CodecConfig::H264(AvcConfig {
                avcc: Bytes::new(),
                sps: vec![Bytes::from_static(SPS)],
                pps: vec![Bytes::from_static(PPS)],
                nal_length_size: 4,
                info: SpsInfo {
                    profile_idc: 100,
                    constraint_flags: 0,
                    level_idc: 31,
                    width: 320,
                    height: 240,
                    frame_rate: Some((60, 2)),
                },
            }),
            bitrate_hint: None,
        }
    }

    fn audio_track(id: u32) -> Track {
        Track {
            id: TrackId(id),
            timescale: Timescale::new(48_000).unwrap_or(Timescale::MPEG),
            codec: CodecConfig::Aac(AacConfig {
                asc: Bytes::from_static(&[0x11, 0x90]),
                object_type: 2,
                sample_rate_index: 3,
                sample_rate: 48_000,
                channels: 2,
            }),
            bitrate_hint: None,
        }
    }

    /// 4-byte length-prefixed NAL units.
    fn lp(nals: &[&[u8]]) -> Bytes {
        let mut out = Vec::new();
        for nal in nals {
            out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            out.extend_from_slice(nal);
        }
        Bytes::from(out)
    }

    fn sample(track: u32, dts: i64, pts: i64, keyframe: bool, data: Bytes) -> Sample {
        Sample { track: TrackId(track), dts, pts, keyframe, data, discontinuity: false }
    }

    fn video(dts: i64, pts: i64, keyframe: bool) -> Sample {
        let data = if keyframe { lp(&[SEI, IDR]) } else { lp(&[SLICE]) };
        sample(1, dts, pts, keyframe, data)
    }

    fn audio(dts: i64, len: usize) -> Sample {
        sample(2, dts, dts, true, Bytes::from(vec![0x21; len]))
    }

    /// A parsed TS packet, for assertions.
    #[derive(Debug)]
    struct Pkt {
        pid: u16,
        pusi: bool,
        cc: u8,
        /// Adaptation field without its length byte (`None` if absent).
        af: Option<Vec<u8>>,
        payload: Vec<u8>,
    }

    fn packets(ts: &[u8]) -> Vec<Pkt> {
        assert_eq!(ts.len() % TS_PACKET_SIZE, 0);
        ts.chunks(TS_PACKET_SIZE)
            .map(|p| {
                assert_eq!(p[0], 0x47);
                let afc = (p[3] >> 4) & 3;
                let (af, start) = if afc & 2 != 0 {
                    let len = usize::from(p[4]);
                    (Some(p[5..5 + len].to_vec()), 5 + len)
                } else {
                    (None, 4)
                };
                let payload = if afc & 1 != 0 { p[start..].to_vec() } else { Vec::new() };
                Pkt {
                    pid: (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]),
                    pusi: p[1] & 0x40 != 0,
                    cc: p[3] & 0x0F,
                    af,
                    payload,
                }
            })
            .collect()
    }

    /// The PES of `pid`, reassembled, with the adaptation field of each
    /// one's first packet.
    fn pes_units(ts: &[u8], pid: u16) -> Vec<(Option<Vec<u8>>, Vec<u8>)> {
        let mut units: Vec<(Option<Vec<u8>>, Vec<u8>)> = Vec::new();
        for p in packets(ts).into_iter().filter(|p| p.pid == pid) {
            if p.pusi {
                units.push((p.af, p.payload));
            } else {
                units.last_mut().expect("PES continues").1.extend(p.payload);
            }
        }
        units
    }

    fn pcr_base(af: &[u8]) -> Option<u64> {
        if af.first()? & 0x10 == 0 {
            return None;
        }
        let b: Vec<u64> = af[1..7].iter().map(|&b| u64::from(b)).collect();
        assert_eq!(b[4] & 0x7E, 0x7E, "reserved bits");
        assert_eq!(b[4] & 1, 0, "extension 0");
        assert_eq!(b[5], 0, "extension 0");
        Some(b[0] << 25 | b[1] << 17 | b[2] << 9 | b[3] << 1 | b[4] >> 7)
    }

    fn timestamp(b: &[u8]) -> u64 {
        let b: Vec<u64> = b.iter().map(|&b| u64::from(b)).collect();
        assert_eq!(b[0] & 1, 1);
        assert_eq!(b[2] & 1, 1);
        assert_eq!(b[4] & 1, 1);
        (b[0] >> 1 & 7) << 30 | b[1] << 22 | (b[2] >> 1) << 15 | b[3] << 7 | b[4] >> 1
    }

    /// (PTS, DTS if present, payload after the PES header).
    fn pes_fields(pes: &[u8]) -> (u64, Option<u64>, &[u8]) {
        assert_eq!(&pes[..3], &[0, 0, 1]);
        let header_len = usize::from(pes[8]);
        let body = &pes[9 + header_len..];
        match pes[7] {
            0x80 => {
                assert_eq!(header_len, 5);
                assert_eq!(pes[9] >> 4, 0b0010);
                (timestamp(&pes[9..14]), None, body)
            }
            0xC0 => {
                assert_eq!(header_len, 10);
                assert_eq!(pes[9] >> 4, 0b0011);
                assert_eq!(pes[14] >> 4, 0b0001);
                (timestamp(&pes[9..14]), Some(timestamp(&pes[14..19])), body)
            }
            other => panic!("PTS_DTS flags {other:#x}"),
        }
    }

    #[test]
    fn crc32_mpeg2_known_values() {
        let cases: &[(&[u8], u32)] = &[
            (b"", 0xFFFF_FFFF),
            (b"123456789", 0x0376_E6E7), // CRC-32/MPEG-2 check value
            (&FFMPEG_PAT[5..17], 0x2AB1_04B2),
            (&FFMPEG_PMT_AV[5..27], 0x2F44_B99B),
        ];
        for &(data, crc) in cases {
            assert_eq!(crc32_mpeg2(data), crc, "{data:02x?}");
        }
        // A section followed by its CRC checks to zero.
        assert_eq!(crc32_mpeg2(&FFMPEG_PAT[5..21]), 0);
    }

    #[test]
    fn psi_packets_match_ffmpeg() {
        let v = video_track(1, 90_000);
        let a = audio_track(2);
        let cases: &[(&[&Track], &[u8])] = &[
            (&[&v, &a], FFMPEG_PMT_AV),
            (&[&a, &v], FFMPEG_PMT_AV),
            (&[&v], FFMPEG_PMT_VIDEO),
            (&[&a], FFMPEG_PMT_AUDIO),
        ];
        for &(tracks, pmt) in cases {
            let ts = mux_segment(tracks, &[]).unwrap();
            assert_eq!(ts.len(), 2 * TS_PACKET_SIZE);
            assert_eq!(&ts[..TS_PACKET_SIZE], &padded(FFMPEG_PAT)[..]);
            assert_eq!(&ts[TS_PACKET_SIZE..], &padded(pmt)[..]);
        }
    }

    #[test]
    fn pes_timestamp_encoding() {
        let cases: &[(u8, u64, [u8; 5])] = &[
            (0b0010, 0, [0x21, 0x00, 0x01, 0x00, 0x01]),
            (0b0010, 126_000, [0x21, 0x00, 0x07, 0xD8, 0x61]), // ffmpeg, 1.4 s
            (0b0011, (1 << 33) - 1, [0x3F, 0xFF, 0xFF, 0xFF, 0xFF]),
            (0b0001, 1 << 32, [0x19, 0x00, 0x01, 0x00, 0x01]),
        ];
        for &(prefix, ts, bytes) in cases {
            let mut out = Vec::new();
            write_timestamp(&mut out, prefix, ts);
            assert_eq!(out, bytes, "{ts}");
            assert_eq!(timestamp(&out), ts);
        }
    }

    #[test]
    fn wrap33_is_modulo() {
        let cases = [
            (0, 0),
            (1, 1),
            ((1 << 33) - 1, (1 << 33) - 1),
            (1 << 33, 0),
            ((1 << 33) + 5, 5),
            (-1, (1 << 33) - 1),
            (i64::MIN, 0),
        ];
        for (input, want) in cases {
            assert_eq!(wrap33(input), want, "{input}");
        }
    }

    /// Packetise a PES of each length and check: whole packets, PUSI only on
    /// the first, CC from 0, stuffing only in the last packet's adaptation
    /// field, and the payload reassembles to the PES.
    #[test]
    fn pes_packetisation_and_stuffing() {
        // (PES length, first-packet fields, expected packet count)
        let none = FirstPacketFields { pcr_base: None, random_access: false, discontinuity: false };
        let rai = FirstPacketFields { pcr_base: None, random_access: true, discontinuity: false };
        let pcr = FirstPacketFields { pcr_base: Some(123_456), random_access: true, discontinuity: false };
        let cases = [
            (1, none, 1),
            (182, none, 1), // adaptation field: length byte + flags byte
            (183, none, 1), // adaptation field: length byte only (length 0)
            (184, none, 1), // no adaptation field at all
            (185, none, 2),
            (368, none, 2),
            (369, none, 3),
            (182, rai, 1),
            (183, rai, 2),
            (176, pcr, 1),
            (177, pcr, 2),
            (176 + 184, pcr, 2),
            (16 * 184 + 1, none, 17), // CC wraps
        ];
        for (len, first, count) in cases {
            let pes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut w = TsWriter::with_capacity(0);
            w.write_pes(PID_AUDIO, &[&pes], first);
            let ts = w.finish();
            // The same PES in pieces (some empty) gives the same packets.
            let pieces: Vec<&[u8]> = std::iter::once(&[][..]).chain(pes.chunks(7)).chain([&[][..]]).collect();
            let mut w = TsWriter::with_capacity(0);
            w.write_pes(PID_AUDIO, &pieces, first);
            assert_eq!(w.finish(), ts, "len {len} in pieces");
            let pkts = packets(&ts);
            assert_eq!(pkts.len(), count, "len {len}");
            let mut reassembled = Vec::new();
            for (i, p) in pkts.iter().enumerate() {
                assert_eq!(p.pid, PID_AUDIO);
                assert_eq!(p.pusi, i == 0, "len {len} packet {i}");
                assert_eq!(usize::from(p.cc), i % 16);
                assert!(!p.payload.is_empty());
                let last = i + 1 == count;
                let want_flags = if i == 0 {
                    u8::from(first.random_access) << 6 | u8::from(first.pcr_base.is_some()) << 4
                } else {
                    0
                };
                match p.af.as_deref() {
                    None => assert_eq!(want_flags, 0, "len {len} packet {i}"),
                    // adaptation_field_length 0: one byte of stuffing.
                    Some([]) => assert!(last && want_flags == 0, "len {len} packet {i}"),
                    Some([flags, rest @ ..]) => {
                        assert_eq!(*flags, want_flags, "len {len} packet {i}");
                        let stuffing = if flags & 0x10 != 0 {
                            assert_eq!(pcr_base(p.af.as_deref().unwrap()), first.pcr_base);
                            &rest[6..]
                        } else {
                            rest
                        };
                        assert!(stuffing.iter().all(|&b| b == 0xFF));
                        assert!(last || stuffing.is_empty(), "stuffing only at the end");
                    }
                }
                reassembled.extend_from_slice(&p.payload);
            }
            assert_eq!(reassembled, pes, "len {len}");
        }
    }

    #[test]
    fn segment_layout_pcr_and_random_access() {
        let v = video_track(1, 90_000);
        let a = audio_track(2);
        let samples = [
            video(9000, 12000, true),
            audio(4800, 300),
            video(12000, 18000, false),
            audio(5824, 300),
            video(15000, 15000, false),
            audio(6848, 300),
        ];
        let refs: Vec<&Sample> = samples.iter().collect();
        let ts = mux_segment(&[&v, &a], &refs).unwrap();
        assert_eq!(ts.len() % TS_PACKET_SIZE, 0);

        let summary = summarize_ts(&ts).unwrap();
        assert!(summary.starts_with_pat_pmt(), "{summary}");
        assert!(summary.cc_continuous_from_zero(), "{summary}");
        assert_eq!(summary.malformed_packets, 0);

        // PUSI packets carry a PCR (= DTS) on the video PID only.
        for p in packets(&ts) {
            let has_pcr = p.af.as_deref().and_then(pcr_base).is_some();
            assert_eq!(has_pcr, p.pid == PID_VIDEO && p.pusi, "{p:?}");
        }
        let video_units = pes_units(&ts, PID_VIDEO);
        let want = [(9000, 12000, true), (12000, 18000, false), (15000, 15000, false)];
        assert_eq!(video_units.len(), want.len());
        for (i, ((af, pes), (dts, pts, key))) in video_units.iter().zip(want).enumerate() {
            let af = af.as_deref().expect("adaptation field for PCR");
            assert_eq!(af[0] & 0x80 != 0, i == 0, "discontinuity_indicator on the first video PES only");
            assert_eq!(pcr_base(af), Some(dts));
            assert_eq!(af[0] & 0x40 != 0, key, "random_access_indicator");
            assert_eq!(&pes[3..6], &[0xE0, 0, 0], "stream_id, length 0");
            assert_eq!(pes[6], 0x84, "data_alignment_indicator");
            let (p, d, _) = pes_fields(pes);
            assert_eq!(p, pts);
            assert_eq!(d, (dts != pts).then_some(dts), "DTS only when != PTS");
        }
        let audio_units = pes_units(&ts, PID_AUDIO);
        assert_eq!(audio_units.len(), 3);
        for (i, ((af, pes), dts48)) in audio_units.iter().zip([4800u64, 5824, 6848]).enumerate() {
            // Only the segment's first audio PES has an adaptation field:
            // the discontinuity_indicator for the counter reset.
            match af.as_deref() {
                Some(af) => assert!(i == 0 && af[0] == 0x80, "audio PES {i}: {af:?}"),
                None => assert!(i > 0, "first audio PES needs the discontinuity_indicator"),
            }
            assert_eq!(pes[3], 0xC0);
            let declared = usize::from(u16::from_be_bytes([pes[4], pes[5]]));
            // The reassembled unit is exactly the PES: no trailing bytes.
            assert_eq!(declared + 6, pes.len());
            let (pts, dts, body) = pes_fields(pes);
            assert_eq!(pts, dts48 * 90_000 / 48_000);
            assert_eq!(dts, None);
            // ADTS header: syncword, no CRC, frame length = header + frame.
            assert_eq!(&body[..2], &[0xFF, 0xF1]);
            let frame_len = (usize::from(body[3] & 3) << 11) | (usize::from(body[4]) << 3) | usize::from(body[5] >> 5);
            assert_eq!(frame_len, 7 + 300);
            assert_eq!(body.len(), frame_len);
            assert!(body[7..].iter().all(|&b| b == 0x21));
        }
    }

    #[test]
    fn audio_only_pcr_and_random_access_on_audio() {
        let a = audio_track(2);
        let samples = [audio(0, 200), audio(1024, 500), audio(2048, 10)];
        let refs: Vec<&Sample> = samples.iter().collect();
        let ts = mux_segment(&[&a], &refs).unwrap();
        let units = pes_units(&ts, PID_AUDIO);
        assert_eq!(units.len(), 3);
        for ((af, _), dts48) in units.iter().zip([0u64, 1024, 2048]) {
            let af = af.as_deref().expect("PCR adaptation field");
            assert_eq!(af[0] & 0x50, 0x50, "PCR and random_access flags");
            assert_eq!(pcr_base(af), Some(dts48 * 90_000 / 48_000));
        }
        let summary = summarize_ts(&ts).unwrap();
        assert_eq!(summary.pcr_pid, Some(PID_AUDIO));
        assert_eq!(summary.random_access_packets, 3);
    }

    #[test]
    fn video_payload_is_annex_b_with_parameter_sets_on_keyframes() {
        let v = video_track(1, 90_000);
        let mut with_in_band = Vec::new();
        for nal in [IN_BAND_AUD, SPS, PPS, SEI, IDR] {
            with_in_band.push(nal);
        }
        let cases: &[(Sample, &[&[u8]])] = &[
            (video(0, 0, true), &[SPS, PPS, SEI, IDR]),
            (video(0, 0, false), &[SLICE]),
            (sample(1, 0, 0, true, lp(&with_in_band)), &[SPS, PPS, SEI, IDR]),
            (sample(1, 0, 0, false, lp(&[IN_BAND_AUD, SPS, PPS, SLICE])), &[SLICE]),
            // Empty NAL units are dropped rather than written as bare start
            // codes.
            (sample(1, 0, 0, false, lp(&[&[], SLICE])), &[SLICE]),
        ];
        for (s, nals) in cases {
            let ts = mux_segment(&[&v], &[s]).unwrap();
            let units = pes_units(&ts, PID_VIDEO);
            assert_eq!(units.len(), 1);
            let (_, _, body) = pes_fields(&units[0].1);
            let mut want = AUD.to_vec();
            for nal in *nals {
                want.extend_from_slice(&START_CODE);
                want.extend_from_slice(nal);
            }
            assert_eq!(body, &want[..], "{s:?}");
        }
    }

    #[test]
    fn interleave_by_dts_video_first_then_input_order() {
        // Video at 1 kHz, audio at 48 kHz: DTS compared in 90 kHz.
        let v = video_track(1, 1_000);
        let a = audio_track(2);
        let samples = [
            audio(48_000, 11),          // 90000
            audio(48_000 + 1024, 12),   // 91920
            video(1_000, 1_000, true),  // 90000: before the audio at 90000
            video(1_021, 1_021, false), // 91890
            video(1_022, 1_022, false), // 91980
            audio(47_000, 13),          // 88125
            audio(47_000, 14),          // 88125 again: input order
        ];
        let refs: Vec<&Sample> = samples.iter().collect();
        let ts = mux_segment(&[&v, &a], &refs).unwrap();
        let order: Vec<(u16, u64)> = packets(&ts)
            .into_iter()
            .filter(|p| p.pusi && p.pid != PID_PAT && p.pid != PID_PMT)
            .map(|p| {
                let (pts, dts, _) = pes_fields(&p.payload);
                (p.pid, dts.unwrap_or(pts))
            })
            .collect();
        assert_eq!(
            order,
            [
                (PID_AUDIO, 88_125),
                (PID_AUDIO, 88_125),
                (PID_VIDEO, 90_000),
                (PID_AUDIO, 90_000),
                (PID_VIDEO, 91_890),
                (PID_AUDIO, 91_920),
                (PID_VIDEO, 91_980),
            ]
        );
        // The two audio frames at equal DTS keep their input order.
        let audio_units = pes_units(&ts, PID_AUDIO);
        assert_eq!(audio_units[0].1.len(), 14 + 7 + 13);
        assert_eq!(audio_units[1].1.len(), 14 + 7 + 14);
    }

    #[test]
    fn timestamps_wrap_modulo_2_pow_33() {
        let v = video_track(1, 90_000);
        let cases = [
            ((1 << 33) + 10, (1 << 33) + 3010, 10, 3010),
            (-3000, 0, (1 << 33) - 3000, 0),
            // Equal after wrapping: DTS omitted.
            ((1 << 33) + 7, (1 << 33) + 7, 7, 7),
        ];
        for (dts, pts, want_dts, want_pts) in cases {
            let s = video(dts, pts, true);
            let ts = mux_segment(&[&v], &[&s]).unwrap();
            let units = pes_units(&ts, PID_VIDEO);
            let (af, pes) = &units[0];
            assert_eq!(pcr_base(af.as_deref().unwrap()), Some(want_dts));
            let (p, d, _) = pes_fields(pes);
            assert_eq!(p, want_pts);
            assert_eq!(d.unwrap_or(p), want_dts);
        }
    }

    #[test]
    fn deterministic_and_independent_of_track_order() {
        let v = video_track(1, 90_000);
        let a = audio_track(2);
        let mut samples = Vec::new();
        for i in 0..30i64 {
            samples.push(video(i * 3000, i * 3000 + 6000, i % 10 == 0));
        }
        for i in 0..45i64 {
            samples.push(audio(i * 1024, 200 + (i as usize * 37) % 400));
        }
        let refs: Vec<&Sample> = samples.iter().collect();
        let first = mux_segment(&[&v, &a], &refs).unwrap();
        let second = mux_segment(&[&v, &a], &refs).unwrap();
        let swapped = mux_segment(&[&a, &v], &refs).unwrap();
        assert_eq!(first, second);
        assert_eq!(first, swapped);
        let summary = summarize_ts(&first).unwrap();
        assert!(summary.cc_continuous_from_zero());
        assert_eq!(summary.pids[&PID_VIDEO].pes, 30);
        assert_eq!(summary.pids[&PID_AUDIO].pes, 45);
        assert_eq!(summary.pids[&PID_VIDEO].random_access, 3);
        assert_eq!(summary.pids[&PID_AUDIO].pes_length_mismatches, 0);
    }

    #[test]
    fn errors_carry_context() {
        let v = video_track(1, 90_000);
        let v2 = video_track(3, 90_000);
        let a = audio_track(2);
        let a_same_id = audio_track(1);
        let huge = audio(1024, MAX_AAC_FRAME + 1);
        let fits = audio(1024, MAX_AAC_FRAME);
        let ok = video(0, 0, true);
        let stranger = sample(9, 42, 42, true, lp(&[IDR]));
        let truncated = sample(1, 77, 77, true, Bytes::from_static(&[0, 0, 0, 9, 0x65, 0x88]));
        let short_prefix = sample(1, 78, 78, true, Bytes::from_static(&[0, 0, 1]));
        let empty_video = sample(1, 79, 79, true, Bytes::new());
        let empty_audio = sample(2, 80, 80, true, Bytes::new());

        assert_eq!(mux_segment(&[], &[]), Err(TsMuxError::NoTracks));
        assert_eq!(mux_segment(&[&v, &a_same_id], &[]), Err(TsMuxError::DuplicateTrackId { track: TrackId(1) }));
        assert_eq!(
            mux_segment(&[&v, &a, &v2], &[]),
            Err(TsMuxError::TooManyTracks { track: TrackId(3), kind: TrackKind::Video })
        );
        assert_eq!(
            mux_segment(&[&v, &a], &[&ok, &stranger]),
            Err(TsMuxError::UnknownTrack { track: TrackId(9), dts: 42 })
        );
        assert_eq!(
            mux_segment(&[&v, &a], &[&ok, &huge]),
            Err(TsMuxError::AacFrameTooLarge { track: TrackId(2), dts: 1024, len: MAX_AAC_FRAME + 1 })
        );
        assert!(mux_segment(&[&v, &a], &[&ok, &fits]).is_ok());
        for (s, dts) in [(&empty_video, 79), (&empty_audio, 80)] {
            assert_eq!(mux_segment(&[&v, &a], &[s]), Err(TsMuxError::EmptySample { track: s.track, dts }));
        }
        for (s, dts) in [(&truncated, 77), (&short_prefix, 78)] {
            match mux_segment(&[&v, &a], &[&ok, s]) {
                Err(TsMuxError::MalformedNal { track, dts: d, .. }) => {
                    assert_eq!((track, d), (TrackId(1), dts));
                }
                other => panic!("{other:?}"),
            }
        }
        let msg = TsMuxError::UnknownTrack { track: TrackId(9), dts: 42 }.to_string();
        assert!(msg.contains("track 9") && msg.contains("42"), "{msg}");
    }

    #[test]
    fn never_panics_on_odd_samples() {
        let v = video_track(1, 90_000);
        let a = audio_track(2);
        // Deterministic pseudo-random bytes.
        let mut x: u32 = 0x1234_5678;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for round in 0..300 {
            let len = (next() % 64) as usize;
            let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let track = 1 + (round % 2) as u32;
            let dts = i64::from(next() as i32) * 1_000_003;
            let s = sample(track, dts, dts.wrapping_add(i64::from(next() % 9000)), round % 3 == 0, Bytes::from(data));
            let _ = mux_segment(&[&v, &a], &[&s]);
        }
        let extreme = [video(i64::MAX, i64::MIN, true), video(i64::MIN, i64::MAX, false)];
        let refs: Vec<&Sample> = extreme.iter().collect();
        assert!(mux_segment(&[&v, &a], &refs).is_ok());
    }
}
