//! Codec configuration: H.264 (avcC, SPS) and AAC (AudioSpecificConfig, ADTS).
//!
//! Parsers here see network input: every malformed input is an `Err`, never a
//! panic, and no read goes past the end of a slice.

use bytes::Bytes;

/// Errors from parsing codec configuration or bitstream framing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("avcC: {0}")]
    AvcC(&'static str),
    #[error("SPS: {0}")]
    Sps(&'static str),
    #[error("AudioSpecificConfig: {0}")]
    Asc(&'static str),
    #[error("ADTS: {0}")]
    Adts(&'static str),
    #[error("NAL framing: {0}")]
    Nal(&'static str),
}

/// What the SPS says about the picture, for CODECS/RESOLUTION/FRAME-RATE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpsInfo {
    pub profile_idc: u8,
    /// The byte between profile_idc and level_idc (constraint_set flags).
    pub constraint_flags: u8,
    pub level_idc: u8,
    /// Display width and height in pixels, after frame cropping.
    pub width: u32,
    pub height: u32,
    /// Frame rate from VUI timing info as (time_scale, 2 * num_units_in_tick),
    /// i.e. frames per second = .0 / .1; `None` when the SPS has no timing.
    pub frame_rate: Option<(u32, u32)>,
}

/// H.264 decoder configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvcConfig {
    /// The AVCDecoderConfigurationRecord exactly as written into `avcC`.
    pub avcc: Bytes,
    /// SPS NAL units (with NAL header byte, without start code or length).
    pub sps: Vec<Bytes>,
    /// PPS NAL units (with NAL header byte, without start code or length).
    pub pps: Vec<Bytes>,
    /// Bytes in each NAL length prefix of samples (1, 2 or 4). Samples given
    /// to the packager always use 4; this records what the source used.
    pub nal_length_size: u8,
    /// Parsed from the first SPS.
    pub info: SpsInfo,
}

/// AAC decoder configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AacConfig {
    /// The AudioSpecificConfig bytes exactly as written into `esds`.
    pub asc: Bytes,
    /// Audio object type (2 = AAC LC).
    pub object_type: u8,
    /// Index into the ISO 14496-3 sampling frequency table (15 = explicit).
    pub sample_rate_index: u8,
    pub sample_rate: u32,
    /// Channel configuration (1 = mono, 2 = stereo, ...).
    pub channels: u8,
}

/// A parsed ADTS header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdtsHeader {
    pub object_type: u8,
    pub sample_rate_index: u8,
    pub channels: u8,
    /// Header length in bytes (7 without CRC, 9 with).
    pub header_len: usize,
    /// Whole frame length including the header.
    pub frame_len: usize,
}

/// AAC samples per frame (AAC LC).
pub const AAC_FRAME_SAMPLES: u32 = 1024;

/// The ISO 14496-3 sampling frequency table.
pub const AAC_SAMPLE_RATES: [u32; 13] =
    [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

impl AvcConfig {
    /// Parse an AVCDecoderConfigurationRecord (the FLV AVC sequence header
    /// body, or an `avcC` box payload).
    ///
    /// `avcc` keeps the exact input bytes (including any trailing
    /// high-profile extension, which is not interpreted). At least one SPS is
    /// required; the first one is parsed into `info`.
    pub fn from_avcc(avcc: &[u8]) -> Result<AvcConfig, CodecError> {
        let record = Bytes::copy_from_slice(avcc);
        let mut c = Cursor::new(&record);
        let truncated = CodecError::AvcC("truncated record");
        let version = c.u8().ok_or(CodecError::AvcC("empty record"))?;
        if version != 1 {
            return Err(CodecError::AvcC("unsupported configurationVersion"));
        }
        // AVCProfileIndication, profile_compatibility, AVCLevelIndication:
        // informative copies of SPS bytes; `info` is taken from the SPS.
        c.skip(3).ok_or(CodecError::AvcC("truncated record"))?;
        let nal_length_size = (c.u8().ok_or(CodecError::AvcC("truncated record"))? & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(CodecError::AvcC("invalid NAL length size 3"));
        }
        let num_sps = c.u8().ok_or(CodecError::AvcC("truncated record"))? & 0x1f;
        if num_sps == 0 {
            return Err(CodecError::AvcC("no SPS"));
        }
        let mut sps = Vec::with_capacity(usize::from(num_sps));
        for _ in 0..num_sps {
            let nal = c.u16_prefixed().ok_or(CodecError::AvcC("truncated SPS"))?;
            if nal_type(&nal) != NAL_SPS {
                return Err(CodecError::AvcC("SPS entry is not an SPS NAL unit"));
            }
            sps.push(nal);
        }
        let num_pps = c.u8().ok_or(truncated)?;
        let mut pps = Vec::with_capacity(usize::from(num_pps));
        for _ in 0..num_pps {
            let nal = c.u16_prefixed().ok_or(CodecError::AvcC("truncated PPS"))?;
            if nal_type(&nal) != NAL_PPS {
                return Err(CodecError::AvcC("PPS entry is not a PPS NAL unit"));
            }
            pps.push(nal);
        }
        // Anything after the PPS list (the high-profile chroma/bit depth
        // extension) is kept in `avcc` but not interpreted.
        let info = match sps.first() {
            Some(first) => parse_sps(first)?,
            None => return Err(CodecError::AvcC("no SPS")),
        };
        Ok(AvcConfig { avcc: record, sps, pps, nal_length_size, info })
    }

    /// Build a configuration (and its avcC record) from SPS and PPS NAL units
    /// found in an Annex B stream. The record is written deterministically
    /// from these NAL units alone.
    ///
    /// The record uses 4-byte NAL lengths; for profile_idc 100, 110, 122 and
    /// 144 it ends with the chroma format / bit depth extension (and zero
    /// SPS extensions). At least one SPS and one PPS are required.
    pub fn from_sps_pps(sps: &[Bytes], pps: &[Bytes]) -> Result<AvcConfig, CodecError> {
        let first = sps.first().ok_or(CodecError::AvcC("no SPS"))?;
        if pps.is_empty() {
            return Err(CodecError::AvcC("no PPS"));
        }
        let num_sps = u8::try_from(sps.len()).ok().filter(|n| *n <= 31).ok_or(CodecError::AvcC("more than 31 SPS"))?;
        let num_pps = u8::try_from(pps.len()).map_err(|_| CodecError::AvcC("more than 255 PPS"))?;
        for nal in sps {
            if nal_type(nal) != NAL_SPS {
                return Err(CodecError::AvcC("SPS entry is not an SPS NAL unit"));
            }
        }
        for nal in pps {
            if nal_type(nal) != NAL_PPS {
                return Err(CodecError::AvcC("PPS entry is not a PPS NAL unit"));
            }
        }
        let (info, ext) = parse_sps_full(first)?;

        let body: usize = sps.iter().chain(pps).map(|n| n.len() + 2).sum();
        let mut out = Vec::with_capacity(11 + body);
        out.extend_from_slice(&[
            1,
            info.profile_idc,
            info.constraint_flags,
            info.level_idc,
            0xff, // reserved '111111' + lengthSizeMinusOne = 3
            0xe0 | num_sps,
        ]);
        for nal in sps {
            put_u16_prefixed(&mut out, nal, "SPS longer than 65535 bytes")?;
        }
        out.push(num_pps);
        for nal in pps {
            put_u16_prefixed(&mut out, nal, "PPS longer than 65535 bytes")?;
        }
        if matches!(info.profile_idc, 100 | 110 | 122 | 144) {
            out.extend_from_slice(&[
                0xfc | ext.chroma_format_idc,
                0xf8 | ext.bit_depth_luma_minus8,
                0xf8 | ext.bit_depth_chroma_minus8,
                0, // numOfSequenceParameterSetExt
            ]);
        }
        Ok(AvcConfig { avcc: Bytes::from(out), sps: sps.to_vec(), pps: pps.to_vec(), nal_length_size: 4, info })
    }

    /// RFC 6381 codec string, e.g. `avc1.64001f`.
    pub fn codec_string(&self) -> String {
        format!("avc1.{:02x}{:02x}{:02x}", self.info.profile_idc, self.info.constraint_flags, self.info.level_idc)
    }
}

fn put_u16_prefixed(out: &mut Vec<u8>, nal: &[u8], too_long: &'static str) -> Result<(), CodecError> {
    if nal.is_empty() {
        return Err(CodecError::AvcC("empty parameter set"));
    }
    let len = u16::try_from(nal.len()).map_err(|_| CodecError::AvcC(too_long))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(nal);
    Ok(())
}

/// Byte cursor over a `Bytes`, handing out zero-copy slices. Every read
/// returns `None` instead of going past the end.
struct Cursor<'a> {
    buf: &'a Bytes,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(buf: &'a Bytes) -> Self {
        Cursor { buf, pos: 0 }
    }

    fn u8(&mut self) -> Option<u8> {
        let b = *self.buf.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len())?;
        self.pos = end;
        Some(())
    }

    fn take(&mut self, n: usize) -> Option<Bytes> {
        let start = self.pos;
        self.skip(n)?;
        Some(self.buf.slice(start..self.pos))
    }

    /// A 16-bit length followed by that many (at least one) bytes.
    fn u16_prefixed(&mut self) -> Option<Bytes> {
        let hi = self.u8()?;
        let lo = self.u8()?;
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len == 0 {
            return None;
        }
        self.take(len)
    }
}

/// MSB-first bit reader. Reading past the end is an error of the kind given
/// at construction, never a panic.
struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits.
    pos: usize,
    kind: fn(&'static str) -> CodecError,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8], kind: fn(&'static str) -> CodecError) -> Self {
        BitReader { data, pos: 0, kind }
    }

    fn flag(&mut self) -> Result<bool, CodecError> {
        let byte = self.data.get(self.pos / 8).ok_or((self.kind)("truncated"))?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// `n` bits (at most 32) as an unsigned integer.
    fn bits(&mut self, n: u32) -> Result<u32, CodecError> {
        debug_assert!(n <= 32);
        let mut v: u64 = 0;
        for _ in 0..n.min(32) {
            v = (v << 1) | u64::from(self.flag()?);
        }
        // At most 32 bits were shifted in.
        Ok(v as u32)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        // 8 bits always fit.
        Ok(self.bits(8)? as u8)
    }

    /// Unsigned exp-Golomb code, ue(v).
    fn ue(&mut self) -> Result<u32, CodecError> {
        let mut leading_zeros = 0u32;
        while !self.flag()? {
            leading_zeros += 1;
            if leading_zeros > 31 {
                return Err((self.kind)("exp-Golomb code longer than 32 bits"));
            }
        }
        let rest = self.bits(leading_zeros)?;
        // leading_zeros <= 31: (2^31 - 1) + (2^31 - 1) fits in u32.
        Ok(((1u32 << leading_zeros) - 1) + rest)
    }

    /// Signed exp-Golomb code, se(v).
    fn se(&mut self) -> Result<i64, CodecError> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }

    /// ue(v) that must not exceed `max`.
    fn ue_max(&mut self, max: u32, what: &'static str) -> Result<u32, CodecError> {
        let v = self.ue()?;
        if v > max {
            return Err((self.kind)(what));
        }
        Ok(v)
    }
}

/// SPS fields needed for the avcC high-profile extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SpsExtra {
    chroma_format_idc: u8,
    bit_depth_luma_minus8: u8,
    bit_depth_chroma_minus8: u8,
}

/// Remove emulation prevention bytes (the 03 in 00 00 03).
fn unescape_rbsp(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0usize;
    for &b in data {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    out
}

/// Parse an SPS NAL unit (including its 1-byte NAL header; emulation
/// prevention bytes are removed internally).
///
/// Everything up to and including `vui_parameters_present_flag` must be
/// present and valid. The VUI itself is read only as far as `timing_info`;
/// a VUI that ends early (some encoders truncate it) gives
/// `frame_rate: None` rather than an error, as decoders tolerate it too.
pub fn parse_sps(nal: &[u8]) -> Result<SpsInfo, CodecError> {
    parse_sps_full(nal).map(|(info, _)| info)
}

fn parse_sps_full(nal: &[u8]) -> Result<(SpsInfo, SpsExtra), CodecError> {
    let (&header, payload) = nal.split_first().ok_or(CodecError::Sps("empty NAL unit"))?;
    if header & 0x80 != 0 {
        return Err(CodecError::Sps("forbidden_zero_bit set"));
    }
    if header & 0x1f != NAL_SPS {
        return Err(CodecError::Sps("not an SPS NAL unit"));
    }
    let rbsp = unescape_rbsp(payload);
    let mut r = BitReader::new(&rbsp, CodecError::Sps);

    let profile_idc = r.u8()?;
    let constraint_flags = r.u8()?;
    let level_idc = r.u8()?;
    r.ue_max(31, "seq_parameter_set_id out of range")?;

    let mut extra = SpsExtra { chroma_format_idc: 1, bit_depth_luma_minus8: 0, bit_depth_chroma_minus8: 0 };
    let mut separate_colour_plane = false;
    if matches!(profile_idc, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135 | 144) {
        // The ue_max bounds make the narrowing casts below lossless.
        extra.chroma_format_idc = r.ue_max(3, "chroma_format_idc out of range")? as u8;
        if extra.chroma_format_idc == 3 {
            separate_colour_plane = r.flag()?;
        }
        extra.bit_depth_luma_minus8 = r.ue_max(6, "bit_depth_luma_minus8 out of range")? as u8;
        extra.bit_depth_chroma_minus8 = r.ue_max(6, "bit_depth_chroma_minus8 out of range")? as u8;
        r.flag()?; // qpprime_y_zero_transform_bypass_flag
        if r.flag()? {
            // seq_scaling_matrix_present_flag
            let lists = if extra.chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }

    r.ue_max(12, "log2_max_frame_num_minus4 out of range")?;
    match r.ue()? {
        0 => {
            r.ue_max(12, "log2_max_pic_order_cnt_lsb_minus4 out of range")?;
        }
        1 => {
            r.flag()?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue_max(255, "num_ref_frames_in_pic_order_cnt_cycle out of range")?;
            for _ in 0..cycle {
                r.se()?; // offset_for_ref_frame[i]
            }
        }
        2 => {}
        _ => return Err(CodecError::Sps("pic_order_cnt_type out of range")),
    }
    r.ue_max(16, "max_num_ref_frames out of range")?;
    r.flag()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.flag()?;
    if !frame_mbs_only {
        r.flag()?; // mb_adaptive_frame_field_flag
    }
    r.flag()?; // direct_8x8_inference_flag
    let (mut crop_left, mut crop_right, mut crop_top, mut crop_bottom) = (0u64, 0u64, 0u64, 0u64);
    if r.flag()? {
        crop_left = u64::from(r.ue()?);
        crop_right = u64::from(r.ue()?);
        crop_top = u64::from(r.ue()?);
        crop_bottom = u64::from(r.ue()?);
    }
    let vui_present = r.flag()?;

    let field_factor: u64 = if frame_mbs_only { 1 } else { 2 };
    let chroma_array_type = if separate_colour_plane { 0 } else { extra.chroma_format_idc };
    let (crop_unit_x, crop_unit_y) = match chroma_array_type {
        0 => (1, field_factor),
        1 => (2, 2 * field_factor),
        2 => (2, field_factor),
        _ => (1, field_factor),
    };
    let full_width = width_mbs * 16;
    let full_height = height_map_units * 16 * field_factor;
    let crop_x = (crop_left + crop_right) * crop_unit_x;
    let crop_y = (crop_top + crop_bottom) * crop_unit_y;
    if crop_x >= full_width || crop_y >= full_height {
        return Err(CodecError::Sps("frame cropping exceeds picture size"));
    }
    let width = u32::try_from(full_width - crop_x).map_err(|_| CodecError::Sps("picture width out of range"))?;
    let height = u32::try_from(full_height - crop_y).map_err(|_| CodecError::Sps("picture height out of range"))?;

    let frame_rate = if vui_present { read_vui_timing(&mut r).ok().flatten() } else { None };

    Ok((SpsInfo { profile_idc, constraint_flags, level_idc, width, height, frame_rate }, extra))
}

/// Skip one scaling_list() of `size` coefficients (7.3.2.1.1.1).
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), CodecError> {
    let mut last_scale: i64 = 8;
    let mut next_scale: i64 = 8;
    for _ in 0..size {
        if next_scale != 0 {
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(CodecError::Sps("delta_scale out of range"));
            }
            next_scale = (last_scale + delta + 256).rem_euclid(256);
        }
        if next_scale != 0 {
            last_scale = next_scale;
        }
    }
    Ok(())
}

/// Read vui_parameters() up to timing_info and return the frame rate.
fn read_vui_timing(r: &mut BitReader<'_>) -> Result<Option<(u32, u32)>, CodecError> {
    if r.flag()? {
        // aspect_ratio_info_present_flag
        if r.u8()? == 255 {
            // Extended_SAR: sar_width, sar_height
            r.bits(16)?;
            r.bits(16)?;
        }
    }
    if r.flag()? {
        // overscan_info_present_flag
        r.flag()?; // overscan_appropriate_flag
    }
    if r.flag()? {
        // video_signal_type_present_flag
        r.bits(3)?; // video_format
        r.flag()?; // video_full_range_flag
        if r.flag()? {
            // colour_description_present_flag
            r.u8()?; // colour_primaries
            r.u8()?; // transfer_characteristics
            r.u8()?; // matrix_coefficients
        }
    }
    if r.flag()? {
        // chroma_loc_info_present_flag
        r.ue()?;
        r.ue()?;
    }
    if !r.flag()? {
        // timing_info_present_flag
        return Ok(None);
    }
    let num_units_in_tick = r.bits(32)?;
    let time_scale = r.bits(32)?;
    if num_units_in_tick == 0 || time_scale == 0 {
        return Ok(None);
    }
    Ok(num_units_in_tick.checked_mul(2).map(|ticks_per_frame| (time_scale, ticks_per_frame)))
}

impl AacConfig {
    /// Parse an AudioSpecificConfig (the FLV AAC sequence header body).
    ///
    /// Reads the audio object type (with the 31 escape), the sampling
    /// frequency (index or explicit 24-bit rate) and the channel
    /// configuration; `asc` keeps the exact input bytes (SBR/PS extensions
    /// and sync extensions are kept but not interpreted, so for HE-AAC the
    /// core sample rate is reported).
    pub fn from_asc(asc: &[u8]) -> Result<AacConfig, CodecError> {
        let mut r = BitReader::new(asc, CodecError::Asc);
        let mut object_type = r.bits(5)?;
        if object_type == 31 {
            object_type = 32 + r.bits(6)?;
        }
        if object_type == 0 {
            return Err(CodecError::Asc("audio object type 0"));
        }
        let index = r.bits(4)?;
        let sample_rate = match index {
            15 => r.bits(24)?,
            _ => sample_rate_for_index(index).ok_or(CodecError::Asc("reserved sampling frequency index"))?,
        };
        if sample_rate == 0 {
            return Err(CodecError::Asc("sample rate 0"));
        }
        let channels = r.bits(4)?;
        Ok(AacConfig {
            asc: Bytes::copy_from_slice(asc),
            // object_type <= 95, index <= 15 and channels <= 15 fit in u8.
            object_type: object_type as u8,
            sample_rate_index: index as u8,
            sample_rate,
            channels: channels as u8,
        })
    }

    /// Build the configuration (and a 2-byte AudioSpecificConfig) that an
    /// ADTS header describes.
    pub fn from_adts(h: &AdtsHeader) -> Result<AacConfig, CodecError> {
        if h.object_type == 0 || h.object_type > 30 {
            return Err(CodecError::Adts("audio object type out of range"));
        }
        let sample_rate = sample_rate_for_index(u32::from(h.sample_rate_index))
            .ok_or(CodecError::Adts("reserved sampling frequency index"))?;
        if h.channels > 15 {
            return Err(CodecError::Adts("channel configuration out of range"));
        }
        let asc =
            (u16::from(h.object_type) << 11) | (u16::from(h.sample_rate_index) << 7) | (u16::from(h.channels) << 3);
        Ok(AacConfig {
            asc: Bytes::copy_from_slice(&asc.to_be_bytes()),
            object_type: h.object_type,
            sample_rate_index: h.sample_rate_index,
            sample_rate,
            channels: h.channels,
        })
    }

    /// RFC 6381 codec string, e.g. `mp4a.40.2`.
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }

    /// Write the 7-byte ADTS header (no CRC) for a raw frame of
    /// `payload_len` bytes.
    ///
    /// ADTS can only express object types 1..=4 (SBR/PS configurations are
    /// written as AAC LC, the implicit-signalling form), a table sample rate
    /// (an explicit rate equal to a table entry uses that entry's index),
    /// channel configurations up to 7 and frames up to 8191 bytes; values
    /// outside those ranges are clamped to the field width.
    pub fn adts_header(&self, payload_len: usize) -> [u8; 7] {
        let profile: u8 = match self.object_type {
            1..=4 => self.object_type - 1,
            _ => 1, // AAC LC (HE-AAC signalled implicitly)
        };
        let index = if self.sample_rate_index == 15 {
            AAC_SAMPLE_RATES.iter().position(|r| *r == self.sample_rate).map_or(15, |i| i as u8)
        // position < 13
        } else {
            self.sample_rate_index
        };
        let channels = self.channels.min(7);
        let frame_len = payload_len.saturating_add(7).min(0x1fff);
        // frame_len <= 0x1fff: every shifted part below fits its byte.
        [
            0xff,
            0xf1, // syncword low bits, MPEG-4, layer 0, protection_absent
            (profile << 6) | ((index & 0x0f) << 2) | (channels >> 2),
            ((channels & 0x03) << 6) | ((frame_len >> 11) as u8 & 0x03),
            (frame_len >> 3) as u8,
            (((frame_len & 0x07) as u8) << 5) | 0x1f, // buffer fullness 0x7ff (high 5 bits)
            0xfc,                                     // buffer fullness (low 6 bits), one raw data block
        ]
    }
}

fn sample_rate_for_index(index: u32) -> Option<u32> {
    AAC_SAMPLE_RATES.get(usize::try_from(index).ok()?).copied()
}

/// Parse the ADTS header at the start of `buf`.
///
/// Checks the syncword, layer, sampling frequency index and that the frame
/// is at least as long as its header. `frame_len` may exceed `buf.len()`;
/// the caller checks that the whole frame is present.
pub fn parse_adts(buf: &[u8]) -> Result<AdtsHeader, CodecError> {
    let h: &[u8; 7] = buf.get(..7).and_then(|s| s.try_into().ok()).ok_or(CodecError::Adts("truncated header"))?;
    // `h` is a `[u8; 7]`: the constant indexes below are in range.
    if h[0] != 0xff || h[1] & 0xf0 != 0xf0 {
        return Err(CodecError::Adts("missing syncword"));
    }
    if h[1] & 0x06 != 0 {
        return Err(CodecError::Adts("layer is not 0"));
    }
    let header_len = if h[1] & 0x01 == 1 { 7 } else { 9 };
    if buf.len() < header_len {
        return Err(CodecError::Adts("truncated header"));
    }
    let object_type = (h[2] >> 6) + 1;
    let sample_rate_index = (h[2] >> 2) & 0x0f;
    if usize::from(sample_rate_index) >= AAC_SAMPLE_RATES.len() {
        return Err(CodecError::Adts("reserved sampling frequency index"));
    }
    let channels = ((h[2] & 0x01) << 2) | (h[3] >> 6);
    let frame_len = (usize::from(h[3] & 0x03) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
    if frame_len < header_len {
        return Err(CodecError::Adts("frame length shorter than header"));
    }
    Ok(AdtsHeader { object_type, sample_rate_index, channels, header_len, frame_len })
}

/// Split a buffer of length-prefixed NAL units (prefix of `len_size` bytes)
/// into NAL unit slices.
///
/// `len_size` must be 1, 2 or 4. Zero-length NAL units are skipped; a
/// truncated prefix or NAL unit is an error. The slices share `buf`'s memory.
pub fn split_length_prefixed(buf: &Bytes, len_size: u8) -> Result<Vec<Bytes>, CodecError> {
    let size = match len_size {
        1 | 2 | 4 => usize::from(len_size),
        _ => return Err(CodecError::Nal("NAL length size must be 1, 2 or 4")),
    };
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < buf.len() {
        let prefix = buf.get(pos..pos + size).ok_or(CodecError::Nal("truncated NAL length prefix"))?;
        let len = prefix.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        let start = pos + size;
        let end = start
            .checked_add(len)
            .filter(|e| *e <= buf.len())
            .ok_or(CodecError::Nal("NAL unit length exceeds buffer"))?;
        if len > 0 {
            out.push(buf.slice(start..end));
        }
        pos = end;
    }
    Ok(out)
}

/// Split an Annex B byte stream (00 00 01 / 00 00 00 01 start codes) into
/// NAL unit slices (without start codes; trailing zero bytes trimmed).
///
/// Bytes before the first start code are not a NAL unit and are ignored;
/// empty NAL units are skipped. The slices share `buf`'s memory.
pub fn split_annex_b(buf: &Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut nal_start: Option<usize> = None;
    let mut from = 0usize;
    while let Some(sc) = find_start_code(buf, from) {
        if let Some(start) = nal_start {
            push_trimmed(buf, start, sc, &mut out);
        }
        nal_start = Some(sc + 3);
        from = sc + 3;
    }
    if let Some(start) = nal_start {
        push_trimmed(buf, start, buf.len(), &mut out);
    }
    out
}

/// Position of the next `00 00 01` at or after `from`.
fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        let rest = data.get(i.checked_add(2)?..)?;
        let one = rest.iter().position(|b| *b == 1)? + i + 2;
        // `one >= i + 2`, so both preceding bytes exist.
        if data.get(one - 2..one) == Some(&[0, 0][..]) {
            return Some(one - 2);
        }
        i = one - 1;
    }
}

fn push_trimmed(buf: &Bytes, start: usize, mut end: usize, out: &mut Vec<Bytes>) {
    while end > start && buf.get(end - 1) == Some(&0) {
        end -= 1;
    }
    if end > start {
        out.push(buf.slice(start..end));
    }
}

/// Write NAL units as 4-byte length-prefixed (the packager's sample format).
///
/// Empty NAL units are skipped (as are units of 4 GiB or more, which no
/// demuxer in this crate can produce).
pub fn to_length_prefixed(nals: &[Bytes]) -> Bytes {
    let total: usize = nals.iter().map(|n| n.len() + 4).sum();
    let mut out = Vec::with_capacity(total);
    for nal in nals {
        if let Ok(len) = u32::try_from(nal.len()) {
            if len > 0 {
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(nal);
            }
        }
    }
    Bytes::from(out)
}

/// H.264 NAL unit type of a NAL unit (low 5 bits of its first byte).
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

pub const NAL_IDR: u8 = 5;
pub const NAL_SEI: u8 = 6;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;
pub const NAL_AUD: u8 = 9;

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        assert_eq!(s.len() % 2, 0, "odd hex length");
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// x264, 1280x720 30 fps High (ffmpeg testsrc2).
    const SPS_720P: &str = "6764001facd9405005bb0110000003001000000303c0f1831960";
    const PPS_720P: &str = "68ebe3cb22c0";
    /// x264, 1920x1080 (1088 coded, cropped) at 30000/1001.
    const SPS_1080P_2997: &str = "67640028acd940780227e5c04400000fa40003a9803c60c658";

    /// Builds synthetic SPS NAL units bit by bit.
    #[derive(Default)]
    struct BitWriter {
        bits: Vec<bool>,
    }

    impl BitWriter {
        fn u(&mut self, n: u32, v: u64) -> &mut Self {
            for i in (0..n).rev() {
                self.bits.push((v >> i) & 1 == 1);
            }
            self
        }
        fn flag(&mut self, b: bool) -> &mut Self {
            self.u(1, u64::from(b))
        }
        fn ue(&mut self, v: u64) -> &mut Self {
            let x = v + 1;
            let len = 64 - x.leading_zeros();
            self.u(len - 1, 0).u(len, x)
        }
        fn se(&mut self, v: i64) -> &mut Self {
            let k = if v > 0 { 2 * v - 1 } else { -2 * v };
            self.ue(k as u64)
        }
        /// rbsp_trailing_bits, emulation prevention, NAL header 0x67.
        fn sps_nal(&self) -> Vec<u8> {
            let mut bits = self.bits.clone();
            bits.push(true);
            bits.resize(bits.len().div_ceil(8) * 8, false);
            let rbsp: Vec<u8> = bits.chunks(8).map(|c| c.iter().fold(0u8, |a, b| (a << 1) | u8::from(*b))).collect();
            let mut nal = vec![0x67];
            let mut zeros = 0;
            for b in rbsp {
                if zeros >= 2 && b <= 3 {
                    nal.push(3);
                    zeros = 0;
                }
                nal.push(b);
                zeros = if b == 0 { zeros + 1 } else { 0 };
            }
            nal
        }
    }

    /// profile/constraint/level + sps id for a synthetic SPS.
    fn sps_start(w: &mut BitWriter, profile: u8) {
        w.u(8, u64::from(profile)).u(8, 0).u(8, 30).ue(0);
    }

    /// Everything after pic_order_cnt for a synthetic SPS.
    fn sps_picture(w: &mut BitWriter, width_mbs: u64, height_units: u64, frame_mbs_only: bool, crop: Option<[u64; 4]>) {
        w.ue(4).flag(false).ue(width_mbs - 1).ue(height_units - 1);
        w.flag(frame_mbs_only);
        if !frame_mbs_only {
            w.flag(true);
        }
        w.flag(true);
        match crop {
            Some(c) => {
                w.flag(true).ue(c[0]).ue(c[1]).ue(c[2]).ue(c[3]);
            }
            None => {
                w.flag(false);
            }
        }
    }

    #[test]
    fn real_sps_table() {
        // (SPS, profile, constraints, level, width, height, frame rate)
        // Generated with ffmpeg/libx264 from testsrc2; sizes and rates
        // cross-checked with ffprobe.
        type Case = (&'static str, u8, u8, u8, u32, u32, Option<(u32, u32)>);
        let cases: &[Case] = &[
            (SPS_720P, 100, 0, 31, 1280, 720, Some((60, 2))),
            (SPS_1080P_2997, 100, 0, 40, 1920, 1080, Some((60000, 2002))),
            ("6764000dacd94141fb0110000003001000000303c0f1429960", 100, 0, 13, 320, 240, Some((60, 2))),
            // High 4:4:4 Predictive, 322x242 (crop unit 1x1)
            ("67f4000d919b282a10f1f1f808800000030080000019078a14cb", 244, 0, 13, 322, 242, Some((50, 2))),
            // High 4:2:2 10-bit, 324x240 at 24 fps (crop unit 2x1)
            ("677a000db6cd94151fe7f011000003000100000300300f142996", 122, 0, 13, 324, 240, Some((48, 2))),
            // Interlaced (frame_mbs_only_flag 0) 720x576
            ("6764001eacd940b424d8088000000300800000190f8a14cb", 100, 0, 30, 720, 576, Some((50, 2))),
            // Constrained Baseline, pic_order_cnt_type 2, 640x360 at 50 fps
            ("6742c01fd900a02ff97011000003000100000300640f183248", 66, 0xc0, 31, 640, 360, Some((100, 2))),
            // 352x288 at 25 fps
            ("6764000dacd9416096c044000003000400000300c83c50a658", 100, 0, 13, 352, 288, Some((50, 2))),
        ];
        for (sps, profile, flags, level, width, height, rate) in cases {
            let info = parse_sps(&hex(sps)).unwrap_or_else(|e| panic!("{sps}: {e}"));
            assert_eq!(
                info,
                SpsInfo {
                    profile_idc: *profile,
                    constraint_flags: *flags,
                    level_idc: *level,
                    width: *width,
                    height: *height,
                    frame_rate: *rate,
                },
                "{sps}"
            );
        }
    }

    #[test]
    fn synthetic_sps_table() {
        // poc type 1 with a cycle, 4:2:0, cropping 1920x1088 -> 1920x1080.
        let mut poc1 = BitWriter::default();
        sps_start(&mut poc1, 77);
        poc1.ue(0).ue(1).flag(false).se(-3).se(7).ue(3).se(1).se(-2).se(100);
        sps_picture(&mut poc1, 120, 68, true, Some([0, 0, 0, 4]));
        poc1.flag(false);

        // High profile with scaling matrices (one list uses next_scale == 0,
        // i.e. "use default", after the first coefficient).
        let mut scaling = BitWriter::default();
        sps_start(&mut scaling, 100);
        scaling.ue(1).ue(0).ue(0).flag(false).flag(true);
        for i in 0..8 {
            let present = i != 2;
            scaling.flag(present);
            if present {
                let size = if i < 6 { 16 } else { 64 };
                if i == 1 {
                    scaling.se(-8); // next_scale = 0: list ends
                } else {
                    for j in 0..size {
                        scaling.se(if j % 2 == 0 { 5 } else { -3 });
                    }
                }
            }
        }
        scaling.ue(0).ue(0).ue(2);
        sps_picture(&mut scaling, 40, 30, true, None);
        scaling.flag(false);

        // 4:2:2, interlaced: crop unit x 2, y 2.
        let mut c422 = BitWriter::default();
        sps_start(&mut c422, 122);
        c422.ue(2).ue(2).ue(2).flag(false).flag(false).ue(0).ue(2);
        sps_picture(&mut c422, 45, 18, false, Some([1, 2, 3, 4]));
        c422.flag(false);

        // 4:4:4 with separate colour planes: ChromaArrayType 0, crop unit 1x1.
        let mut sep = BitWriter::default();
        sps_start(&mut sep, 244);
        sep.ue(3).flag(true).ue(0).ue(0).flag(false).flag(false).ue(0).ue(2);
        sps_picture(&mut sep, 10, 10, true, Some([1, 2, 3, 4]));
        sep.flag(false);

        // 29.97 fps behind every optional VUI field (Extended_SAR, overscan,
        // video signal type with colour description, chroma location).
        let mut vui = BitWriter::default();
        sps_start(&mut vui, 100);
        vui.ue(1).ue(0).ue(0).flag(false).flag(false).ue(0).ue(2);
        sps_picture(&mut vui, 80, 45, true, None);
        vui.flag(true); // vui_parameters_present_flag
        vui.flag(true).u(8, 255).u(16, 4).u(16, 3);
        vui.flag(true).flag(true);
        vui.flag(true).u(3, 5).flag(true).flag(true).u(8, 1).u(8, 1).u(8, 1);
        vui.flag(true).ue(1).ue(1);
        vui.flag(true).u(32, 1001).u(32, 30000).flag(true);
        vui.flag(false).flag(false).flag(false).flag(false);

        // VUI without timing info.
        let mut no_timing = BitWriter::default();
        sps_start(&mut no_timing, 66);
        no_timing.ue(0).ue(2);
        sps_picture(&mut no_timing, 20, 15, true, None);
        no_timing.flag(true).flag(true).u(8, 1).flag(false).flag(false).flag(false);
        no_timing.flag(false);

        // time_scale 0 is "no frame rate".
        let mut zero_scale = BitWriter::default();
        sps_start(&mut zero_scale, 66);
        zero_scale.ue(0).ue(2);
        sps_picture(&mut zero_scale, 20, 15, true, None);
        zero_scale.flag(true).u(4, 0).flag(true).u(32, 1).u(32, 0);

        type Case<'a> = (&'static str, &'a BitWriter, u32, u32, Option<(u32, u32)>);
        let cases: Vec<Case> = vec![
            ("poc type 1", &poc1, 1920, 1080, None),
            ("scaling lists", &scaling, 640, 480, None),
            ("4:2:2 interlaced", &c422, 720 - 6, 576 - 14, None),
            ("separate colour planes", &sep, 160 - 3, 160 - 7, None),
            ("full VUI", &vui, 1280, 720, Some((30000, 2002))),
            ("VUI without timing", &no_timing, 320, 240, None),
            ("time_scale 0", &zero_scale, 320, 240, None),
        ];
        for (name, w, width, height, rate) in cases {
            let info = parse_sps(&w.sps_nal()).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!((info.width, info.height, info.frame_rate), (width, height, rate), "{name}");
        }
    }

    #[test]
    fn sps_errors() {
        let mut poc3 = BitWriter::default();
        sps_start(&mut poc3, 66);
        poc3.ue(0).ue(3);
        sps_picture(&mut poc3, 20, 15, true, None);

        let mut long_cycle = BitWriter::default();
        sps_start(&mut long_cycle, 66);
        long_cycle.ue(0).ue(1).flag(false).se(0).se(0).ue(256);

        let mut over_crop = BitWriter::default();
        sps_start(&mut over_crop, 66);
        over_crop.ue(0).ue(2);
        sps_picture(&mut over_crop, 2, 2, true, Some([8, 8, 0, 0]));
        over_crop.flag(false);

        let mut bad_chroma = BitWriter::default();
        sps_start(&mut bad_chroma, 100);
        bad_chroma.ue(4);

        let mut bad_delta_scale = BitWriter::default();
        sps_start(&mut bad_delta_scale, 100);
        bad_delta_scale.ue(1).ue(0).ue(0).flag(false).flag(true).flag(true).se(200);

        let mut long_golomb = BitWriter::default();
        sps_start(&mut long_golomb, 66);
        long_golomb.u(40, 0).u(8, 0xff);

        let cases: Vec<(&str, Vec<u8>, CodecError)> = vec![
            ("empty", vec![], CodecError::Sps("empty NAL unit")),
            ("PPS", hex(PPS_720P), CodecError::Sps("not an SPS NAL unit")),
            ("forbidden bit", vec![0xe7, 0x42], CodecError::Sps("forbidden_zero_bit set")),
            ("header only", vec![0x67], CodecError::Sps("truncated")),
            ("poc type 3", poc3.sps_nal(), CodecError::Sps("pic_order_cnt_type out of range")),
            (
                "poc cycle 256",
                long_cycle.sps_nal(),
                CodecError::Sps("num_ref_frames_in_pic_order_cnt_cycle out of range"),
            ),
            ("crop too large", over_crop.sps_nal(), CodecError::Sps("frame cropping exceeds picture size")),
            ("chroma_format_idc 4", bad_chroma.sps_nal(), CodecError::Sps("chroma_format_idc out of range")),
            ("delta_scale 200", bad_delta_scale.sps_nal(), CodecError::Sps("delta_scale out of range")),
            ("40 leading zeros", long_golomb.sps_nal(), CodecError::Sps("exp-Golomb code longer than 32 bits")),
        ];
        for (name, nal, err) in cases {
            assert_eq!(parse_sps(&nal), Err(err), "{name}");
        }
    }

    #[test]
    fn truncated_sps_never_panics() {
        for sps in [SPS_720P, SPS_1080P_2997] {
            let full = hex(sps);
            let want = parse_sps(&full).unwrap();
            // Cut anywhere before the VUI: an error. (Their
            // vui_parameters_present_flag is in byte 9 of the NAL unit.)
            for len in 0..10 {
                assert!(parse_sps(&full[..len]).is_err(), "{sps} cut at {len}");
            }
            // Cut inside the VUI: tolerated, frame rate unknown or intact.
            for len in 10..full.len() {
                if let Ok(info) = parse_sps(&full[..len]) {
                    assert_eq!((info.width, info.height), (want.width, want.height));
                }
            }
        }
        // Every byte value in every position of a short SPS: no panic.
        let base = hex(SPS_720P);
        for i in 1..base.len() {
            for v in 0..=255u8 {
                let mut m = base.clone();
                m[i] = v;
                let _ = parse_sps(&m);
                let _ = AvcConfig::from_sps_pps(&[Bytes::from(m)], &[Bytes::from(hex(PPS_720P))]);
            }
        }
    }

    #[test]
    fn avcc_from_sps_pps_matches_ffmpeg() {
        // The avcC ffmpeg writes into FLV for this SPS/PPS.
        let ffmpeg_avcc = hex(&format!("0164001fffe1001a{SPS_720P}0100 06{PPS_720P}fdf8f800"));
        let sps = Bytes::from(hex(SPS_720P));
        let pps = Bytes::from(hex(PPS_720P));
        let built = AvcConfig::from_sps_pps(std::slice::from_ref(&sps), std::slice::from_ref(&pps)).unwrap();
        assert_eq!(&built.avcc[..], &ffmpeg_avcc[..]);
        assert_eq!(built.nal_length_size, 4);
        assert_eq!(built.codec_string(), "avc1.64001f");

        let parsed = AvcConfig::from_avcc(&ffmpeg_avcc).unwrap();
        assert_eq!(parsed, built);
        assert_eq!(parsed.sps, vec![sps]);
        assert_eq!(parsed.pps, vec![pps]);
        assert_eq!(parsed.info.width, 1280);
    }

    #[test]
    fn avcc_baseline_has_no_extension() {
        let sps = Bytes::from(hex("6742c01fd900a02ff97011000003000100000300640f183248"));
        let pps = Bytes::from(hex("68cb83cb20"));
        let c = AvcConfig::from_sps_pps(std::slice::from_ref(&sps), std::slice::from_ref(&pps)).unwrap();
        let mut want = vec![1, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0, sps.len() as u8];
        want.extend_from_slice(&sps);
        want.extend_from_slice(&[1, 0, pps.len() as u8]);
        want.extend_from_slice(&pps);
        assert_eq!(&c.avcc[..], &want[..]);
        assert_eq!(c.codec_string(), "avc1.42c01f");
    }

    #[test]
    fn avcc_keeps_length_size_and_trailing_bytes() {
        let mut rec = hex(&format!("0164001ffce1001a{SPS_720P}0100 06{PPS_720P}"));
        let c = AvcConfig::from_avcc(&rec).unwrap();
        assert_eq!(c.nal_length_size, 1);
        rec[4] = 0xfd;
        rec.extend_from_slice(&[0xfd, 0xf8, 0xf8, 0x00, 0xaa]);
        let c = AvcConfig::from_avcc(&rec).unwrap();
        assert_eq!(c.nal_length_size, 2);
        assert_eq!(&c.avcc[..], &rec[..]);
    }

    #[test]
    fn avcc_errors() {
        let good = hex(&format!("0164001fffe1001a{SPS_720P}0100 06{PPS_720P}"));
        let mut v0 = good.clone();
        v0[0] = 0;
        let mut len3 = good.clone();
        len3[4] = 0xfe;
        let mut no_sps = good.clone();
        no_sps[5] = 0xe0;
        let pps_as_sps = hex(&format!("0164001fffe10006{PPS_720P}00"));
        let cases: Vec<(&str, Vec<u8>, CodecError)> = vec![
            ("empty", vec![], CodecError::AvcC("empty record")),
            ("version 0", v0, CodecError::AvcC("unsupported configurationVersion")),
            ("length size 3", len3, CodecError::AvcC("invalid NAL length size 3")),
            ("no SPS", no_sps, CodecError::AvcC("no SPS")),
            ("wrong NAL type", pps_as_sps, CodecError::AvcC("SPS entry is not an SPS NAL unit")),
            ("header only", good[..5].to_vec(), CodecError::AvcC("truncated record")),
            ("cut in SPS", good[..20].to_vec(), CodecError::AvcC("truncated SPS")),
            ("no PPS count", good[..34].to_vec(), CodecError::AvcC("truncated record")),
            ("cut in PPS", good[..38].to_vec(), CodecError::AvcC("truncated PPS")),
        ];
        for (name, rec, err) in cases {
            assert_eq!(AvcConfig::from_avcc(&rec), Err(err), "{name}");
        }
        for len in 0..good.len() {
            assert!(AvcConfig::from_avcc(&good[..len]).is_err(), "cut at {len}");
        }
        let sps = Bytes::from(hex(SPS_720P));
        let pps = Bytes::from(hex(PPS_720P));
        assert_eq!(AvcConfig::from_sps_pps(&[], std::slice::from_ref(&pps)), Err(CodecError::AvcC("no SPS")));
        assert_eq!(AvcConfig::from_sps_pps(std::slice::from_ref(&sps), &[]), Err(CodecError::AvcC("no PPS")));
        assert_eq!(
            AvcConfig::from_sps_pps(std::slice::from_ref(&pps), std::slice::from_ref(&sps)),
            Err(CodecError::AvcC("SPS entry is not an SPS NAL unit"))
        );
    }

    #[test]
    fn asc_table() {
        // (ASC, object type, index, rate, channels)
        let cases: &[(&str, u8, u8, u32, u8)] = &[
            ("1210", 2, 4, 44100, 2),
            ("1190", 2, 3, 48000, 2),
            // ffmpeg's native encoder: LC 44.1 kHz mono + sync extension.
            ("120856e500", 2, 4, 44100, 1),
            // HE-AAC explicit: SBR, 24 kHz core, stereo, then extension rate.
            ("2b098800", 5, 6, 24000, 1),
            // Explicit 24-bit rate (index 15): 0x00ac44 = 44100.
            ("1780562208", 2, 15, 44100, 1),
            // Escaped object type 31 -> 32 + 10 = 42 (USAC), 48 kHz stereo.
            ("f94640", 42, 3, 48000, 2),
        ];
        for (asc, ot, idx, rate, ch) in cases {
            let bytes = hex(asc);
            let c = AacConfig::from_asc(&bytes).unwrap_or_else(|e| panic!("{asc}: {e}"));
            assert_eq!(
                (c.object_type, c.sample_rate_index, c.sample_rate, c.channels),
                (*ot, *idx, *rate, *ch),
                "{asc}"
            );
            assert_eq!(&c.asc[..], &bytes[..]);
        }
        assert_eq!(AacConfig::from_asc(&hex("1210")).unwrap().codec_string(), "mp4a.40.2");
    }

    #[test]
    fn asc_errors() {
        let cases: &[(&str, CodecError)] = &[
            ("", CodecError::Asc("truncated")),
            ("12", CodecError::Asc("truncated")),
            ("0210", CodecError::Asc("audio object type 0")),
            // index 13 and 14 are reserved
            ("1690", CodecError::Asc("reserved sampling frequency index")),
            ("1710", CodecError::Asc("reserved sampling frequency index")),
            // explicit rate 0
            ("1780000008", CodecError::Asc("sample rate 0")),
            // explicit rate cut short
            ("178015", CodecError::Asc("truncated")),
        ];
        for (asc, err) in cases {
            assert_eq!(AacConfig::from_asc(&hex(asc)).map(|_| ()), Err(err.clone_err()), "{asc}");
        }
    }

    impl CodecError {
        fn clone_err(&self) -> CodecError {
            match self {
                CodecError::AvcC(s) => CodecError::AvcC(s),
                CodecError::Sps(s) => CodecError::Sps(s),
                CodecError::Asc(s) => CodecError::Asc(s),
                CodecError::Adts(s) => CodecError::Adts(s),
                CodecError::Nal(s) => CodecError::Nal(s),
            }
        }
    }

    #[test]
    fn adts_round_trip() {
        let cfg = AacConfig::from_asc(&hex("1190")).unwrap();
        // The first header of `ffmpeg -f lavfi -i sine=sample_rate=48000
        // -ac 2 -c:a aac -f adts` (a 295-byte frame).
        assert_eq!(cfg.adts_header(288), [0xff, 0xf1, 0x4c, 0x80, 0x24, 0xff, 0xfc]);
        let h = cfg.adts_header(371);
        assert_eq!(h, [0xff, 0xf1, 0x4c, 0x80, 0x2f, 0x5f, 0xfc]);
        let parsed = parse_adts(&h).unwrap();
        assert_eq!(
            parsed,
            AdtsHeader { object_type: 2, sample_rate_index: 3, channels: 2, header_len: 7, frame_len: 378 }
        );
        let back = AacConfig::from_adts(&parsed).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(&back.asc[..], &[0x11, 0x90]);

        // 7.1 (channel config 7) crosses the byte boundary.
        let c71 = AacConfig::from_asc(&[0x11, 0xb8]).unwrap();
        assert_eq!(c71.channels, 7);
        let p = parse_adts(&c71.adts_header(0)).unwrap();
        assert_eq!((p.channels, p.frame_len), (7, 7));

        // Explicit rate equal to a table entry maps back to its index.
        let explicit = AacConfig::from_asc(&hex("1780562208")).unwrap();
        let p = parse_adts(&explicit.adts_header(10)).unwrap();
        assert_eq!((p.sample_rate_index, p.channels, p.frame_len), (4, 1, 17));

        // Largest representable frame.
        let p = parse_adts(&cfg.adts_header(8184)).unwrap();
        assert_eq!(p.frame_len, 8191);
    }

    #[test]
    fn adts_errors_and_crc() {
        let mut crc = vec![0xff, 0xf0, 0x4c, 0x80, 0x2e, 0xff, 0xfc, 0x12, 0x34];
        assert_eq!(parse_adts(&crc).unwrap().header_len, 9);
        crc.truncate(8);
        assert_eq!(parse_adts(&crc), Err(CodecError::Adts("truncated header")));
        let cases: &[(&[u8], CodecError)] = &[
            (&[], CodecError::Adts("truncated header")),
            (&[0xff, 0xf1, 0x4c, 0x80, 0x2e, 0xff], CodecError::Adts("truncated header")),
            (&[0xff, 0xe1, 0x4c, 0x80, 0x2e, 0xff, 0xfc], CodecError::Adts("missing syncword")),
            (&[0xfe, 0xf1, 0x4c, 0x80, 0x2e, 0xff, 0xfc], CodecError::Adts("missing syncword")),
            // MP3 (layer 1) shares the syncword.
            (&[0xff, 0xfb, 0x4c, 0x80, 0x2e, 0xff, 0xfc], CodecError::Adts("layer is not 0")),
            (&[0xff, 0xf1, 0x74, 0x80, 0x2e, 0xff, 0xfc], CodecError::Adts("reserved sampling frequency index")),
            // frame length 6 < 7
            (&[0xff, 0xf1, 0x4c, 0x80, 0x00, 0xdf, 0xfc], CodecError::Adts("frame length shorter than header")),
        ];
        for (buf, err) in cases {
            assert_eq!(parse_adts(buf), Err(err.clone_err()), "{buf:02x?}");
        }
    }

    #[test]
    fn split_length_prefixed_table() {
        type Case = (&'static [u8], u8, Result<Vec<&'static [u8]>, CodecError>);
        let cases: &[Case] = &[
            (&[], 4, Ok(vec![])),
            (&[0, 0, 0, 2, 0x65, 1, 0, 0, 0, 1, 0x06], 4, Ok(vec![&[0x65, 1], &[0x06]])),
            (&[0, 2, 0x41, 9, 0, 0, 0, 1, 0x06], 2, Ok(vec![&[0x41, 9], &[0x06]])),
            (&[1, 0x09, 0, 2, 0x65, 0x88], 1, Ok(vec![&[0x09], &[0x65, 0x88]])),
            (&[0, 0, 0, 0, 0, 0, 0, 1, 0x06], 4, Ok(vec![&[0x06]])),
            (&[0, 0, 0, 3, 0x65, 1], 4, Err(CodecError::Nal("NAL unit length exceeds buffer"))),
            (&[0, 0, 0, 1, 0x65, 0, 0], 4, Err(CodecError::Nal("truncated NAL length prefix"))),
            (&[0, 1, 0x65], 3, Err(CodecError::Nal("NAL length size must be 1, 2 or 4"))),
            (&[0, 1, 0x65], 0, Err(CodecError::Nal("NAL length size must be 1, 2 or 4"))),
            (&[0xff, 0xff, 0xff, 0xff, 1], 4, Err(CodecError::Nal("NAL unit length exceeds buffer"))),
        ];
        for (buf, size, want) in cases {
            let got = split_length_prefixed(&Bytes::copy_from_slice(buf), *size);
            let got = got.map(|v| v.iter().map(|b| b.to_vec()).collect::<Vec<_>>());
            let want = match want {
                Ok(v) => Ok(v.iter().map(|b| b.to_vec()).collect::<Vec<_>>()),
                Err(e) => Err(e.clone_err()),
            };
            assert_eq!(got, want, "{buf:02x?} size {size}");
        }
    }

    #[test]
    fn split_annex_b_table() {
        let cases: &[(&[u8], Vec<&[u8]>)] = &[
            (&[], vec![]),
            (&[0x65, 0x88], vec![]),
            (&[0, 0, 1], vec![]),
            (&[0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x65, 0x88], vec![&[0x09, 0xf0], &[0x65, 0x88]]),
            (&[0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 0, 0, 1, 0x65], vec![&[0x67, 1], &[0x68, 2], &[0x65]]),
            // trailing zeros trimmed; empty NAL between start codes skipped
            (&[0, 0, 1, 0, 0, 1, 0x06, 5, 0, 0], vec![&[0x06, 5]]),
            // garbage before the first start code is ignored
            (&[0xaa, 0, 0, 1, 0x06], vec![&[0x06]]),
            // 00 00 03 (emulation prevention) is not a start code
            (&[0, 0, 1, 0x06, 0, 0, 3, 1, 0x80], vec![&[0x06, 0, 0, 3, 1, 0x80]]),
            (&[0, 0, 2, 0, 0, 1, 0x41, 0, 1], vec![&[0x41, 0, 1]]),
        ];
        for (buf, want) in cases {
            let got: Vec<Vec<u8>> = split_annex_b(&Bytes::copy_from_slice(buf)).iter().map(|b| b.to_vec()).collect();
            let want: Vec<Vec<u8>> = want.iter().map(|b| b.to_vec()).collect();
            assert_eq!(got, want, "{buf:02x?}");
        }
    }

    #[test]
    fn to_length_prefixed_round_trip() {
        let nals = vec![Bytes::from_static(&[0x09, 0xf0]), Bytes::new(), Bytes::from_static(&[0x65, 1, 2, 3])];
        let out = to_length_prefixed(&nals);
        assert_eq!(&out[..], &[0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 4, 0x65, 1, 2, 3]);
        let back = split_length_prefixed(&out, 4).unwrap();
        assert_eq!(back, vec![nals[0].clone(), nals[2].clone()]);
        assert_eq!(to_length_prefixed(&[]), Bytes::new());
    }
}
