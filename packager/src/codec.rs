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
pub const AAC_SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

impl AvcConfig {
    /// Parse an AVCDecoderConfigurationRecord (the FLV AVC sequence header
    /// body, or an `avcC` box payload).
    pub fn from_avcc(avcc: &[u8]) -> Result<AvcConfig, CodecError> {
        let _ = avcc;
        todo!()
    }

    /// Build a configuration (and its avcC record) from SPS and PPS NAL units
    /// found in an Annex B stream. The record is written deterministically
    /// from these NAL units alone.
    pub fn from_sps_pps(sps: &[Bytes], pps: &[Bytes]) -> Result<AvcConfig, CodecError> {
        let _ = (sps, pps);
        todo!()
    }

    /// RFC 6381 codec string, e.g. `avc1.64001f`.
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.info.profile_idc, self.info.constraint_flags, self.info.level_idc
        )
    }
}

/// Parse an SPS NAL unit (including its 1-byte NAL header; emulation
/// prevention bytes are removed internally).
pub fn parse_sps(nal: &[u8]) -> Result<SpsInfo, CodecError> {
    let _ = nal;
    todo!()
}

impl AacConfig {
    /// Parse an AudioSpecificConfig (the FLV AAC sequence header body).
    pub fn from_asc(asc: &[u8]) -> Result<AacConfig, CodecError> {
        let _ = asc;
        todo!()
    }

    /// Build the configuration (and a 2-byte AudioSpecificConfig) that an
    /// ADTS header describes.
    pub fn from_adts(h: &AdtsHeader) -> Result<AacConfig, CodecError> {
        let _ = h;
        todo!()
    }

    /// RFC 6381 codec string, e.g. `mp4a.40.2`.
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }

    /// Write the 7-byte ADTS header (no CRC) for a raw frame of
    /// `payload_len` bytes.
    pub fn adts_header(&self, payload_len: usize) -> [u8; 7] {
        let _ = payload_len;
        todo!()
    }
}

/// Parse the ADTS header at the start of `buf`.
pub fn parse_adts(buf: &[u8]) -> Result<AdtsHeader, CodecError> {
    let _ = buf;
    todo!()
}

/// Split a buffer of length-prefixed NAL units (prefix of `len_size` bytes)
/// into NAL unit slices.
pub fn split_length_prefixed(buf: &Bytes, len_size: u8) -> Result<Vec<Bytes>, CodecError> {
    let _ = (buf, len_size);
    todo!()
}

/// Split an Annex B byte stream (00 00 01 / 00 00 00 01 start codes) into
/// NAL unit slices (without start codes; trailing zero bytes trimmed).
pub fn split_annex_b(buf: &Bytes) -> Vec<Bytes> {
    let _ = buf;
    todo!()
}

/// Write NAL units as 4-byte length-prefixed (the packager's sample format).
pub fn to_length_prefixed(nals: &[Bytes]) -> Bytes {
    let _ = nals;
    todo!()
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
