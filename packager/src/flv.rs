//! FLV tag depacketizer: turns FLV tags (from an `.flv` file, or the
//! identical payloads of RTMP audio/video/data messages) into tracks and
//! samples.
//!
//! Only H.264 video (codec id 7) and AAC audio (sound format 10) are
//! accepted. Video becomes track 1 at 90 kHz, audio track 2 at its sample
//! rate. Every malformed input is an `Err`, never a panic.

use bytes::Bytes;

use crate::codec::{
    nal_type, split_length_prefixed, to_length_prefixed, AacConfig, AvcConfig, NAL_AUD, NAL_IDR, NAL_PPS, NAL_SPS,
};
use crate::demux::{DemuxError, DemuxEvent};
use crate::media::{CodecConfig, Sample, Timescale, Track, TrackId};

/// FLV tag type of audio tags (and RTMP audio messages).
pub const TAG_AUDIO: u8 = 8;
/// FLV tag type of video tags (and RTMP video messages).
pub const TAG_VIDEO: u8 = 9;
/// FLV tag type of script data tags (and RTMP AMF0 data messages).
pub const TAG_SCRIPT: u8 = 18;
/// RTMP AMF3 data message type; its body is a 0x00 marker followed by AMF0.
pub const TAG_SCRIPT_AMF3: u8 = 15;

/// Track id of the video track an `FlvDemuxer` produces.
pub const VIDEO_TRACK: TrackId = TrackId(1);
/// Track id of the audio track an `FlvDemuxer` produces.
pub const AUDIO_TRACK: TrackId = TrackId(2);

/// One tag of an FLV file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlvTag {
    /// 8 audio, 9 video, 18 script data (others are passed through).
    pub tag_type: u8,
    /// The 32-bit tag timestamp (24 bits + 8 extended bits), unsigned.
    pub timestamp_ms: i64,
    /// The tag body (shares the file buffer's memory).
    pub data: Bytes,
}

const FLV_HEADER_LEN: usize = 9;
const TAG_HEADER_LEN: usize = 11;

/// Split an FLV file into its tags.
///
/// Checks the `FLV` signature and version 1, honours the header's data
/// offset, and reads `PreviousTagSize`, tag header and body for each tag
/// (`PreviousTagSize` values are not checked against the tag sizes). The
/// final `PreviousTagSize` may be missing. Encrypted (filtered) tags are
/// rejected. Errors carry `what: "header"` for the file header and `"tag"`
/// for tag framing, with the 1-based index of the offending tag.
pub fn read_flv_file(buf: &Bytes, stream: &str) -> Result<Vec<FlvTag>, DemuxError> {
    let err = |tag: u64, timestamp_ms: i64, what: &'static str, reason: &str| DemuxError::Flv {
        stream: stream.to_string(),
        what,
        tag,
        timestamp_ms,
        reason: reason.to_string(),
    };
    let header =
        buf.get(..FLV_HEADER_LEN).ok_or_else(|| err(0, 0, "header", "file shorter than the 9-byte FLV header"))?;
    if header.get(..3) != Some(&b"FLV"[..]) {
        return Err(err(0, 0, "header", "missing FLV signature"));
    }
    if header.get(3) != Some(&1) {
        return Err(err(0, 0, "header", "unsupported FLV version"));
    }
    let data_offset = be_usize(header.get(5..9).unwrap_or_default());
    if data_offset < FLV_HEADER_LEN || data_offset > buf.len() {
        return Err(err(0, 0, "header", "data offset out of range"));
    }

    let mut tags = Vec::new();
    // PreviousTagSize0 follows the header.
    let mut pos = data_offset;
    if buf.len() - pos < 4 {
        if pos == buf.len() {
            return Ok(tags);
        }
        return Err(err(0, 0, "header", "truncated PreviousTagSize0"));
    }
    pos += 4;
    let mut index = 0u64;
    while pos < buf.len() {
        index += 1;
        let h = buf.get(pos..pos + TAG_HEADER_LEN).ok_or_else(|| err(index, 0, "tag", "truncated tag header"))?;
        // h has exactly TAG_HEADER_LEN bytes: indexes below are in range.
        let type_byte = h[0];
        let size = be_usize(&h[1..4]);
        let ts = (u32::from(h[7]) << 24) | (be_usize(&h[4..7]) as u32);
        let timestamp_ms = i64::from(ts);
        if type_byte & 0x20 != 0 {
            return Err(err(index, timestamp_ms, "tag", "encrypted (filtered) tags are not supported"));
        }
        let start = pos + TAG_HEADER_LEN;
        let end = start
            .checked_add(size)
            .filter(|e| *e <= buf.len())
            .ok_or_else(|| err(index, timestamp_ms, "tag", "truncated tag body"))?;
        tags.push(FlvTag { tag_type: type_byte & 0x1f, timestamp_ms, data: buf.slice(start..end) });
        pos = end;
        match buf.len() - pos {
            0 => break, // final PreviousTagSize missing: tolerated
            1..=3 => {
                return Err(err(index, timestamp_ms, "tag", "truncated PreviousTagSize"));
            }
            _ => pos += 4,
        }
    }
    Ok(tags)
}

/// Big-endian unsigned integer of up to 8 bytes.
fn be_usize(b: &[u8]) -> usize {
    b.iter().fold(0usize, |acc, x| (acc << 8) | usize::from(*x))
}

/// Current H.264 state of an `FlvDemuxer`.
#[derive(Clone, Debug)]
struct VideoState {
    /// The configuration last announced in a Track event.
    config: AvcConfig,
    /// NAL length size of the source's samples (from the last sequence
    /// header; in-band parameter set changes do not alter it).
    nal_length_size: u8,
}

/// Depacketizer for FLV tag bodies (or RTMP message payloads) of one stream.
///
/// Feed every tag in order with [`FlvDemuxer::push`]. Track events are
/// emitted when a sequence header (or an in-band SPS/PPS) changes the
/// configuration; samples that arrive before their track's configuration
/// are dropped.
#[derive(Clone, Debug)]
pub struct FlvDemuxer {
    stream: String,
    /// Number of tags pushed so far (the current tag's 1-based index).
    tags: u64,
    video: Option<VideoState>,
    audio: Option<AacConfig>,
    video_bitrate: Option<u32>,
    audio_bitrate: Option<u32>,
}

impl FlvDemuxer {
    /// A demuxer for the stream named `stream` (used in errors only).
    pub fn new(stream: impl Into<String>) -> Self {
        FlvDemuxer {
            stream: stream.into(),
            tags: 0,
            video: None,
            audio: None,
            video_bitrate: None,
            audio_bitrate: None,
        }
    }

    /// Depacketize one tag: `tag_type` 8 (audio), 9 (video), 18 (AMF0 script
    /// data) or 15 (AMF3 data message); other types are ignored.
    ///
    /// Video: AVC sequence headers become `Track` events (track 1, 90 kHz)
    /// when they differ from the current configuration; NALU packets become
    /// samples with 4-byte NAL lengths, without AUD/SPS/PPS (an in-band
    /// SPS/PPS that differs from the configuration first yields a new
    /// `Track`), `dts = timestamp * 90`, `pts = (timestamp + cts) * 90`.
    /// Audio: AAC sequence headers become `Track` events (track 2, timescale
    /// = sample rate); raw frames become samples at
    /// `floor(timestamp * rate / 1000)`. Script data `onMetaData` sets the
    /// bitrate hints of later Track events; unparseable metadata is ignored.
    /// Empty sequence headers (ffmpeg writes one when its encoder has no
    /// global header) are ignored rather than rejected.
    pub fn push(&mut self, tag_type: u8, timestamp_ms: i64, body: &Bytes) -> Result<Vec<DemuxEvent>, DemuxError> {
        self.tags += 1;
        match tag_type {
            TAG_VIDEO => self.push_video(timestamp_ms, body),
            TAG_AUDIO => self.push_audio(timestamp_ms, body),
            TAG_SCRIPT => {
                self.push_metadata(body);
                Ok(Vec::new())
            }
            TAG_SCRIPT_AMF3 => {
                if body.first() == Some(&0) {
                    self.push_metadata(&body.slice(1..));
                }
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        }
    }

    /// The current video configuration, if a sequence header was seen.
    pub fn video_config(&self) -> Option<&AvcConfig> {
        self.video.as_ref().map(|v| &v.config)
    }

    /// The current audio configuration, if a sequence header was seen.
    pub fn audio_config(&self) -> Option<&AacConfig> {
        self.audio.as_ref()
    }

    fn error(&self, what: &'static str, timestamp_ms: i64, reason: impl Into<String>) -> DemuxError {
        DemuxError::Flv { stream: self.stream.clone(), what, tag: self.tags, timestamp_ms, reason: reason.into() }
    }

    fn video_track(&self, config: AvcConfig) -> DemuxEvent {
        DemuxEvent::Track(Track {
            id: VIDEO_TRACK,
            timescale: Timescale::MPEG,
            codec: CodecConfig::H264(config),
            bitrate_hint: self.video_bitrate,
        })
    }

    fn push_video(&mut self, ts: i64, body: &Bytes) -> Result<Vec<DemuxEvent>, DemuxError> {
        const WHAT: &str = "video tag";
        let Some(&b0) = body.first() else {
            return Err(self.error(WHAT, ts, "empty video tag"));
        };
        if b0 & 0x80 != 0 {
            // Enhanced RTMP ExVideoTagHeader: a FourCC names the codec.
            let fourcc =
                body.get(1..5).map_or_else(|| "truncated".to_string(), |f| String::from_utf8_lossy(f).into_owned());
            return Err(self.error(
                WHAT,
                ts,
                format!("unsupported enhanced RTMP video codec '{fourcc}'; only AVC/H.264 (codec id 7) is supported"),
            ));
        }
        let frame_type = b0 >> 4;
        let codec_id = b0 & 0x0f;
        if codec_id != 7 {
            return Err(self.error(
                WHAT,
                ts,
                format!(
                    "unsupported video codec {} (codec id {codec_id}); only AVC/H.264 (7) is supported",
                    video_codec_name(codec_id)
                ),
            ));
        }
        if frame_type == 5 {
            // Video info/command frame: no AVC packet.
            return Ok(Vec::new());
        }
        let Some(h) = body.get(1..5) else {
            return Err(self.error(WHAT, ts, "truncated AVC video tag header"));
        };
        // h has 4 bytes: AVCPacketType, then a signed 24-bit CompositionTime.
        let packet_type = h[0];
        let cts = i64::from(i32::from_be_bytes([h[1], h[2], h[3], 0]) >> 8);
        let payload = body.slice(5..);
        match packet_type {
            0 if payload.is_empty() => {
                // ffmpeg's FLV muxer writes an empty sequence header when the
                // encoder has no global header: no configuration yet.
                Ok(Vec::new())
            }
            0 => {
                let config = AvcConfig::from_avcc(&payload)
                    .map_err(|e| self.error(WHAT, ts, format!("AVC sequence header: {e}")))?;
                let changed = !matches!(&self.video, Some(v) if v.config == config);
                self.video = Some(VideoState { nal_length_size: config.nal_length_size, config: config.clone() });
                Ok(if changed { vec![self.video_track(config)] } else { Vec::new() })
            }
            1 => self.push_nalus(ts, cts, frame_type, &payload),
            2 => Ok(Vec::new()), // end of sequence
            n => Err(self.error(WHAT, ts, format!("unknown AVCPacketType {n}"))),
        }
    }

    fn push_nalus(
        &mut self,
        ts: i64,
        cts: i64,
        frame_type: u8,
        payload: &Bytes,
    ) -> Result<Vec<DemuxEvent>, DemuxError> {
        const WHAT: &str = "video tag";
        let Some(state) = &self.video else {
            return Ok(Vec::new()); // no sequence header yet
        };
        let nals =
            split_length_prefixed(payload, state.nal_length_size).map_err(|e| self.error(WHAT, ts, e.to_string()))?;
        let mut kept = Vec::with_capacity(nals.len());
        let mut sps = Vec::new();
        let mut pps = Vec::new();
        let mut idr = false;
        for nal in nals {
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

        let mut events = Vec::new();
        if !sps.is_empty() || !pps.is_empty() {
            let current = &state.config;
            let known = sps.iter().all(|s| current.sps.contains(s)) && pps.iter().all(|p| current.pps.contains(p));
            if !known {
                let new_sps = if sps.is_empty() { current.sps.clone() } else { sps };
                let new_pps = if pps.is_empty() { current.pps.clone() } else { pps };
                let config = AvcConfig::from_sps_pps(&new_sps, &new_pps)
                    .map_err(|e| self.error(WHAT, ts, format!("in-band parameter sets: {e}")))?;
                events.push(self.video_track(config.clone()));
                if let Some(v) = self.video.as_mut() {
                    v.config = config;
                }
            }
        }

        if kept.is_empty() {
            return Ok(events);
        }
        let (Some(dts), Some(pts)) = (ts.checked_mul(90), ts.checked_add(cts).and_then(|p| p.checked_mul(90))) else {
            return Err(self.error(WHAT, ts, "timestamp out of range"));
        };
        events.push(DemuxEvent::Sample(Sample {
            track: VIDEO_TRACK,
            dts,
            pts,
            keyframe: frame_type == 1 || idr,
            data: to_length_prefixed(&kept),
            discontinuity: false,
        }));
        Ok(events)
    }

    fn push_audio(&mut self, ts: i64, body: &Bytes) -> Result<Vec<DemuxEvent>, DemuxError> {
        const WHAT: &str = "audio tag";
        let Some(&b0) = body.first() else {
            return Err(self.error(WHAT, ts, "empty audio tag"));
        };
        let format = b0 >> 4;
        if format != 10 {
            let name = if format == 9 {
                let fourcc =
                    body.get(1..5).map_or_else(|| "truncated".to_string(), |f| String::from_utf8_lossy(f).into_owned());
                format!("enhanced RTMP '{fourcc}'")
            } else {
                sound_format_name(format).to_string()
            };
            return Err(self.error(
                WHAT,
                ts,
                format!("unsupported audio format {name} (sound format {format}); only AAC (10) is supported"),
            ));
        }
        let Some(&packet_type) = body.get(1) else {
            return Err(self.error(WHAT, ts, "truncated AAC audio tag header"));
        };
        let payload = body.slice(2..);
        match packet_type {
            0 if payload.is_empty() => Ok(Vec::new()), // no configuration yet
            0 => {
                let config = AacConfig::from_asc(&payload)
                    .map_err(|e| self.error(WHAT, ts, format!("AAC sequence header: {e}")))?;
                let timescale =
                    Timescale::new(config.sample_rate).ok_or_else(|| self.error(WHAT, ts, "sample rate 0"))?;
                if self.audio.as_ref() == Some(&config) {
                    return Ok(Vec::new());
                }
                self.audio = Some(config.clone());
                Ok(vec![DemuxEvent::Track(Track {
                    id: AUDIO_TRACK,
                    timescale,
                    codec: CodecConfig::Aac(config),
                    bitrate_hint: self.audio_bitrate,
                })])
            }
            1 => {
                let Some(config) = &self.audio else {
                    return Ok(Vec::new()); // no sequence header yet
                };
                if payload.is_empty() {
                    return Ok(Vec::new());
                }
                let Some(timescale) = Timescale::new(config.sample_rate) else {
                    return Err(self.error(WHAT, ts, "sample rate 0"));
                };
                if ts.checked_mul(i64::from(config.sample_rate)).is_none() {
                    return Err(self.error(WHAT, ts, "timestamp out of range"));
                }
                let t = Timescale::MILLIS.convert_floor(ts, timescale);
                Ok(vec![DemuxEvent::Sample(Sample {
                    track: AUDIO_TRACK,
                    dts: t,
                    pts: t,
                    keyframe: true,
                    data: payload,
                    discontinuity: false,
                })])
            }
            n => Err(self.error(WHAT, ts, format!("unknown AACPacketType {n}"))),
        }
    }

    fn push_metadata(&mut self, body: &[u8]) {
        if let Some(rates) = parse_metadata(body) {
            if let Some(v) = rates.video {
                self.video_bitrate = v;
            }
            if let Some(a) = rates.audio {
                self.audio_bitrate = a;
            }
        }
    }
}

fn video_codec_name(id: u8) -> &'static str {
    match id {
        1 => "JPEG",
        2 => "Sorenson H.263",
        3 => "Screen video",
        4 => "On2 VP6",
        5 => "On2 VP6 with alpha",
        6 => "Screen video v2",
        7 => "AVC",
        12 => "HEVC (non-standard)",
        _ => "unknown",
    }
}

fn sound_format_name(format: u8) -> &'static str {
    match format {
        0 => "Linear PCM (platform endian)",
        1 => "ADPCM",
        2 => "MP3",
        3 => "Linear PCM (little endian)",
        4 => "Nellymoser 16 kHz mono",
        5 => "Nellymoser 8 kHz mono",
        6 => "Nellymoser",
        7 => "G.711 A-law",
        8 => "G.711 mu-law",
        10 => "AAC",
        11 => "Speex",
        14 => "MP3 8 kHz",
        15 => "device-specific",
        _ => "reserved",
    }
}

/// Bitrates found in `onMetaData`: outer `None` = key absent; inner `None` =
/// present but not a positive number.
#[derive(Debug, Default, PartialEq)]
struct MetadataRates {
    video: Option<Option<u32>>,
    audio: Option<Option<u32>>,
}

/// Nesting limit for AMF0 objects and arrays.
const AMF_MAX_DEPTH: u32 = 16;

/// Parse an `onMetaData` (optionally preceded by `@setDataFrame`) script
/// body. `None` for anything else or for malformed AMF0.
fn parse_metadata(body: &[u8]) -> Option<MetadataRates> {
    let mut r = Amf { buf: body, pos: 0 };
    let mut name = r.string_value()?;
    if name == b"@setDataFrame" {
        name = r.string_value()?;
    }
    if name != b"onMetaData" {
        return None;
    }
    match r.u8()? {
        // ECMA array: approximate count, then properties up to the end marker.
        8 => {
            r.take(4)?;
        }
        3 => {}
        _ => return None,
    }
    let mut rates = MetadataRates::default();
    while let Some(key) = r.property_key()? {
        match (key, r.peek()?) {
            (b"videodatarate", 0) => {
                r.u8()?;
                rates.video = Some(kbps_to_bps(r.f64()?));
            }
            (b"audiodatarate", 0) => {
                r.u8()?;
                rates.audio = Some(kbps_to_bps(r.f64()?));
            }
            _ => r.skip_value(1)?,
        }
    }
    Some(rates)
}

/// kbit/s (an AMF0 number) to bit/s; `None` unless positive and in range.
fn kbps_to_bps(kbps: f64) -> Option<u32> {
    let bps = (kbps * 1000.0).round();
    (bps.is_finite() && bps >= 1.0 && bps <= f64::from(u32::MAX)).then_some(bps as u32)
}

/// Minimal bounded AMF0 reader: every read checks the remaining length.
struct Amf<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Amf<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn u16(&mut self) -> Option<usize> {
        self.take(2).map(be_usize)
    }

    fn u32(&mut self) -> Option<usize> {
        self.take(4).map(be_usize)
    }

    fn f64(&mut self) -> Option<f64> {
        let b: [u8; 8] = self.take(8)?.try_into().ok()?;
        Some(f64::from_be_bytes(b))
    }

    /// A string value (type marker 2).
    fn string_value(&mut self) -> Option<&'a [u8]> {
        if self.u8()? != 2 {
            return None;
        }
        let n = self.u16()?;
        self.take(n)
    }

    /// The next property name of an object, `None` at the end marker
    /// (00 00 09) or at the end of the input (tolerated: some encoders omit
    /// the end marker of the top-level array).
    fn property_key(&mut self) -> Option<Option<&'a [u8]>> {
        if self.pos == self.buf.len() {
            return Some(None);
        }
        let n = self.u16()?;
        if n == 0 && self.peek() == Some(9) {
            self.pos += 1;
            return Some(None);
        }
        self.take(n).map(Some)
    }

    /// Skip one value (type marker included).
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        if depth > AMF_MAX_DEPTH {
            return None;
        }
        match self.u8()? {
            0 => self.take(8).map(drop), // number
            1 => self.take(1).map(drop), // boolean
            2 => {
                let n = self.u16()?; // string
                self.take(n).map(drop)
            }
            3 => self.skip_properties(depth), // object
            5 | 6 => Some(()),                // null, undefined
            7 => self.take(2).map(drop),      // reference
            8 => {
                self.take(4)?; // ECMA array count
                self.skip_properties(depth)
            }
            10 => {
                // strict array: each value is at least one byte, so the
                // count is bounded by the input length.
                let n = self.u32()?;
                for _ in 0..n {
                    self.skip_value(depth + 1)?;
                }
                Some(())
            }
            11 => self.take(10).map(drop), // date: number + time zone
            12 | 15 => {
                let n = self.u32()?; // long string, XML document
                self.take(n).map(drop)
            }
            16 => {
                let n = self.u16()?; // typed object: class name, properties
                self.take(n)?;
                self.skip_properties(depth)
            }
            _ => None, // movieclip, unsupported, recordset, AMF3 switch...
        }
    }

    fn skip_properties(&mut self, depth: u32) -> Option<()> {
        while self.property_key()?.is_some() {
            self.skip_value(depth + 1)?;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// x264 1280x720 High SPS/PPS and the avcC ffmpeg's FLV muxer writes.
    const SPS: &str = "6764001facd9405005bb0110000003001000000303c0f1831960";
    const PPS: &str = "68ebe3cb22c0";
    /// x264 320x240 High SPS (a different configuration).
    const SPS_320: &str = "6764000dacd94141fb0110000003001000000303c0f1429960";

    fn avcc(len_size: u8) -> Vec<u8> {
        let mut v = hex(&format!("0164001fffe1001a{SPS}010006{PPS}fdf8f800"));
        v[4] = 0xfc | (len_size - 1);
        v
    }

    fn video_tag(frame_type: u8, packet_type: u8, cts: i32, payload: &[u8]) -> Bytes {
        let c = cts.to_be_bytes();
        let mut v = vec![(frame_type << 4) | 7, packet_type, c[1], c[2], c[3]];
        v.extend_from_slice(payload);
        Bytes::from(v)
    }

    fn nalus(len_size: usize, nals: &[&[u8]]) -> Vec<u8> {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&n.len().to_be_bytes()[8 - len_size..]);
            v.extend_from_slice(n);
        }
        v
    }

    fn audio_tag(packet_type: u8, payload: &[u8]) -> Bytes {
        let mut v = vec![0xaf, packet_type];
        v.extend_from_slice(payload);
        Bytes::from(v)
    }

    fn amf_string(v: &mut Vec<u8>, s: &str) {
        v.push(2);
        v.extend_from_slice(&(s.len() as u16).to_be_bytes());
        v.extend_from_slice(s.as_bytes());
    }

    fn amf_key(v: &mut Vec<u8>, k: &str) {
        v.extend_from_slice(&(k.len() as u16).to_be_bytes());
        v.extend_from_slice(k.as_bytes());
    }

    fn amf_number(v: &mut Vec<u8>, n: f64) {
        v.push(0);
        v.extend_from_slice(&n.to_be_bytes());
    }

    /// An ffmpeg-like onMetaData with extra value types before the rates.
    fn metadata(set_data_frame: bool, video_kbps: f64, audio_kbps: f64) -> Bytes {
        let mut v = Vec::new();
        if set_data_frame {
            amf_string(&mut v, "@setDataFrame");
        }
        amf_string(&mut v, "onMetaData");
        v.extend_from_slice(&[8, 0, 0, 0, 9]);
        amf_key(&mut v, "duration");
        amf_number(&mut v, 2.0);
        amf_key(&mut v, "encoder");
        amf_string(&mut v, "Lavf59.27.100");
        amf_key(&mut v, "stereo");
        v.extend_from_slice(&[1, 1]);
        amf_key(&mut v, "nested");
        v.push(3);
        amf_key(&mut v, "videodatarate"); // nested: must not count
        amf_number(&mut v, 1.0);
        amf_key(&mut v, "list");
        v.extend_from_slice(&[10, 0, 0, 0, 2]);
        amf_number(&mut v, 1.0);
        v.push(5);
        v.extend_from_slice(&[0, 0, 9]);
        amf_key(&mut v, "date");
        v.push(11);
        v.extend_from_slice(&[0; 10]);
        amf_key(&mut v, "videodatarate");
        amf_number(&mut v, video_kbps);
        amf_key(&mut v, "audiodatarate");
        amf_number(&mut v, audio_kbps);
        amf_key(&mut v, "undef");
        v.push(6);
        v.extend_from_slice(&[0, 0, 9]);
        Bytes::from(v)
    }

    fn track(ev: &DemuxEvent) -> &Track {
        match ev {
            DemuxEvent::Track(t) => t,
            other => panic!("expected a Track event, got {other:?}"),
        }
    }

    fn sample(ev: &DemuxEvent) -> &Sample {
        match ev {
            DemuxEvent::Sample(s) => s,
            other => panic!("expected a Sample event, got {other:?}"),
        }
    }

    const AUD: &[u8] = &[0x09, 0xf0];
    const SEI: &[u8] = &[0x06, 0x05, 0x01, 0xaa, 0x80];
    const IDR: &[u8] = &[0x65, 0x88, 0x84, 0x00];
    const NON_IDR: &[u8] = &[0x41, 0x9a, 0x21];

    #[test]
    fn basic_flow() {
        let mut d = FlvDemuxer::new("live/test");
        assert_eq!(d.push(18, 0, &metadata(false, 2500.0, 128.0)), Ok(vec![]));

        let ev = d.push(9, 0, &video_tag(1, 0, 0, &avcc(4))).unwrap();
        assert_eq!(ev.len(), 1);
        let t = track(&ev[0]);
        assert_eq!(t.id, TrackId(1));
        assert_eq!(t.timescale, Timescale::MPEG);
        assert_eq!(t.bitrate_hint, Some(2_500_000));
        assert_eq!(t.codec, CodecConfig::H264(AvcConfig::from_avcc(&avcc(4)).unwrap()));

        let ev = d.push(8, 0, &audio_tag(0, &[0x12, 0x10])).unwrap();
        let t = track(&ev[0]);
        assert_eq!(t.id, TrackId(2));
        assert_eq!(t.timescale.get(), 44100);
        assert_eq!(t.bitrate_hint, Some(128_000));
        assert!(matches!(&t.codec, CodecConfig::Aac(c) if c.channels == 2));

        let body = nalus(4, &[AUD, SEI, IDR]);
        let ev = d.push(9, 1000, &video_tag(1, 1, 67, &body)).unwrap();
        assert_eq!(ev.len(), 1);
        let s = sample(&ev[0]);
        assert_eq!((s.track, s.dts, s.pts, s.keyframe, s.discontinuity), (TrackId(1), 90_000, 96_030, true, false));
        assert_eq!(&s.data[..], &nalus(4, &[SEI, IDR])[..]);

        let ev = d.push(8, 23, &audio_tag(1, &[0x21, 0x1b, 0x80])).unwrap();
        let s = sample(&ev[0]);
        assert_eq!((s.track, s.dts, s.pts, s.keyframe), (TrackId(2), 1014, 1014, true));
        assert_eq!(&s.data[..], &[0x21, 0x1b, 0x80]);

        // Empty sequence headers neither fail nor replace the configuration.
        assert_eq!(d.push(9, 2000, &video_tag(1, 0, 0, &[])), Ok(vec![]));
        assert_eq!(d.push(8, 2000, &audio_tag(0, &[])), Ok(vec![]));
        assert!(d.video_config().is_some() && d.audio_config().is_some());

        // End of sequence and unknown tag types are ignored.
        assert_eq!(d.push(9, 2000, &video_tag(1, 2, 0, &[])), Ok(vec![]));
        assert_eq!(d.push(7, 2000, &Bytes::from_static(&[1, 2, 3])), Ok(vec![]));
    }

    #[test]
    fn sequence_headers_only_on_change() {
        let mut d = FlvDemuxer::new("s");
        assert_eq!(d.push(9, 0, &video_tag(1, 0, 0, &avcc(4))).unwrap().len(), 1);
        assert_eq!(d.push(9, 0, &video_tag(1, 0, 0, &avcc(4))), Ok(vec![]));
        let ev = d.push(9, 0, &video_tag(1, 0, 0, &avcc(2))).unwrap();
        assert!(matches!(&track(&ev[0]).codec, CodecConfig::H264(c) if c.nal_length_size == 2));

        assert_eq!(d.push(8, 0, &audio_tag(0, &[0x12, 0x10])).unwrap().len(), 1);
        assert_eq!(d.push(8, 0, &audio_tag(0, &[0x12, 0x10])), Ok(vec![]));
        let ev = d.push(8, 0, &audio_tag(0, &[0x11, 0x90])).unwrap();
        assert_eq!(track(&ev[0]).timescale.get(), 48000);
    }

    #[test]
    fn samples_before_config_are_dropped() {
        let mut d = FlvDemuxer::new("s");
        let body = nalus(4, &[IDR]);
        assert_eq!(d.push(9, 0, &video_tag(1, 1, 0, &body)), Ok(vec![]));
        assert_eq!(d.push(8, 0, &audio_tag(1, &[1, 2])), Ok(vec![]));
        // Even garbage NAL framing is not looked at before the config.
        assert_eq!(d.push(9, 0, &video_tag(1, 1, 0, &[0, 0, 9])), Ok(vec![]));
    }

    #[test]
    fn empty_after_stripping_gives_no_sample() {
        let mut d = FlvDemuxer::new("s");
        d.push(9, 0, &video_tag(1, 0, 0, &avcc(4))).unwrap();
        d.push(8, 0, &audio_tag(0, &[0x12, 0x10])).unwrap();
        assert_eq!(d.push(9, 40, &video_tag(2, 1, 0, &nalus(4, &[AUD]))), Ok(vec![]));
        assert_eq!(d.push(9, 40, &video_tag(2, 1, 0, &[])), Ok(vec![]));
        assert_eq!(d.push(8, 40, &audio_tag(1, &[])), Ok(vec![]));
        // In-band parameter sets equal to the configuration: nothing.
        let sps = hex(SPS);
        let pps = hex(PPS);
        assert_eq!(d.push(9, 40, &video_tag(1, 1, 0, &nalus(4, &[AUD, &sps, &pps]))), Ok(vec![]));
    }

    #[test]
    fn in_band_parameter_set_change() {
        let mut d = FlvDemuxer::new("s");
        d.push(9, 0, &video_tag(1, 0, 0, &avcc(2))).unwrap();
        let sps = hex(SPS);
        let pps = hex(PPS);
        let sps2 = hex(SPS_320);
        // Same SPS/PPS in-band: just the sample, without them.
        let ev = d.push(9, 0, &video_tag(1, 1, 0, &nalus(2, &[&sps, &pps, IDR]))).unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(&sample(&ev[0]).data[..], &nalus(4, &[IDR])[..]);

        // A new SPS in-band: Track (built from SPS/PPS) first, then the sample.
        let ev = d.push(9, 40, &video_tag(1, 1, 0, &nalus(2, &[AUD, &sps2, &pps, IDR]))).unwrap();
        assert_eq!(ev.len(), 2);
        let want = AvcConfig::from_sps_pps(&[Bytes::from(sps2.clone())], &[Bytes::from(pps)]).unwrap();
        assert_eq!(track(&ev[0]).codec, CodecConfig::H264(want.clone()));
        assert_eq!(want.info.width, 320);
        assert_eq!(&sample(&ev[1]).data[..], &nalus(4, &[IDR])[..]);
        assert_eq!(d.video_config(), Some(&want));

        // The source still uses 2-byte lengths although the new config says 4.
        let ev = d.push(9, 80, &video_tag(2, 1, 0, &nalus(2, &[NON_IDR]))).unwrap();
        let s = sample(&ev[0]);
        assert!(!s.keyframe);
        assert_eq!(&s.data[..], &nalus(4, &[NON_IDR])[..]);

        // Repeating the new SPS is not a change.
        let ev = d.push(9, 120, &video_tag(1, 1, 0, &nalus(2, &[&sps2, IDR]))).unwrap();
        assert_eq!(ev.len(), 1);

        // A bad in-band SPS is an error.
        let e = d.push(9, 160, &video_tag(1, 1, 0, &nalus(2, &[&[0x67, 0x64], IDR]))).unwrap_err();
        assert!(e.to_string().contains("in-band parameter sets"), "{e}");
    }

    #[test]
    fn timestamps_and_keyframes() {
        let mut d = FlvDemuxer::new("s");
        d.push(9, 0, &video_tag(1, 0, 0, &avcc(1))).unwrap();
        // Negative composition offset (-1 ms) and an IDR in a frame-type-2 tag.
        let ev = d.push(9, 100, &video_tag(2, 1, -1, &nalus(1, &[IDR]))).unwrap();
        let s = sample(&ev[0]);
        assert_eq!((s.dts, s.pts, s.keyframe), (9000, 8910, true));
        // Largest positive offset.
        let ev = d.push(9, 100, &video_tag(2, 1, 0x7f_ffff, &nalus(1, &[NON_IDR]))).unwrap();
        let s = sample(&ev[0]);
        assert_eq!((s.pts, s.keyframe), ((100 + 0x7f_ffff) * 90, false));

        d.push(8, 0, &audio_tag(0, &[0x11, 0x90])).unwrap();
        for (ms, want) in [(0i64, 0i64), (1, 48), (21, 1008), (-1, -48), (1001, 48048)] {
            let ev = d.push(8, ms, &audio_tag(1, &[0x21])).unwrap();
            assert_eq!(sample(&ev[0]).dts, want, "{ms} ms");
        }
        // 22.05 kHz: floor(1 * 22050 / 1000) = 22.
        d.push(8, 0, &audio_tag(0, &[0x13, 0x90])).unwrap();
        let ev = d.push(8, 1, &audio_tag(1, &[0x21])).unwrap();
        assert_eq!(sample(&ev[0]).dts, 22);

        let e = d.push(9, i64::MAX / 2, &video_tag(1, 1, 0, &nalus(1, &[IDR]))).unwrap_err();
        assert!(e.to_string().contains("timestamp out of range"), "{e}");
    }

    #[test]
    fn errors() {
        // (tag type, body, what, reason fragment)
        let cases: Vec<(u8, Bytes, &str, &str)> = vec![
            (9, Bytes::new(), "video tag", "empty video tag"),
            (9, Bytes::from_static(&[0x12, 0, 0, 0, 0]), "video tag", "Sorenson H.263 (codec id 2)"),
            (9, Bytes::from_static(&[0x1c, 0, 0, 0, 0]), "video tag", "HEVC (non-standard) (codec id 12)"),
            (9, Bytes::from_static(&[0x90, b'h', b'v', b'c', b'1']), "video tag", "'hvc1'"),
            (9, Bytes::from_static(&[0x17, 0, 0]), "video tag", "truncated AVC video tag header"),
            (9, video_tag(1, 0, 0, &[1, 0x64]), "video tag", "AVC sequence header: avcC: truncated record"),
            (9, video_tag(1, 0, 0, &[0]), "video tag", "unsupported configurationVersion"),
            (9, video_tag(1, 3, 0, &[]), "video tag", "unknown AVCPacketType 3"),
            (8, Bytes::new(), "audio tag", "empty audio tag"),
            (8, Bytes::from_static(&[0x2f, 0xff]), "audio tag", "MP3 (sound format 2)"),
            (8, Bytes::from_static(&[0x9f, b'O', b'p', b'u', b's']), "audio tag", "'Opus'"),
            (8, Bytes::from_static(&[0xaf]), "audio tag", "truncated AAC audio tag header"),
            (8, audio_tag(0, &[0x12]), "audio tag", "AAC sequence header: AudioSpecificConfig: truncated"),
            (8, audio_tag(0, &[0x16, 0x90]), "audio tag", "reserved sampling frequency index"),
            (8, audio_tag(2, &[]), "audio tag", "unknown AACPacketType 2"),
        ];
        for (i, (tag_type, body, what, reason)) in cases.into_iter().enumerate() {
            let mut d = FlvDemuxer::new("app/s");
            d.push(18, 0, &Bytes::new()).unwrap();
            let e = d.push(tag_type, 1234, &body).unwrap_err();
            match &e {
                DemuxError::Flv { stream, what: w, tag, timestamp_ms, reason: r } => {
                    assert_eq!((stream.as_str(), *w, *tag, *timestamp_ms), ("app/s", what, 2, 1234), "case {i}");
                    assert!(r.contains(reason), "case {i}: {r}");
                }
                other => panic!("case {i}: {other:?}"),
            }
        }
    }

    #[test]
    fn truncated_nal_length() {
        let mut d = FlvDemuxer::new("s");
        d.push(9, 0, &video_tag(1, 0, 0, &avcc(4))).unwrap();
        for body in [&[0u8, 0, 1][..], &[0, 0, 0, 5, 0x65, 0x88][..]] {
            let e = d.push(9, 40, &video_tag(1, 1, 0, body)).unwrap_err();
            assert!(e.to_string().contains("NAL"), "{e}");
        }
        // The demuxer carries on afterwards.
        assert_eq!(d.push(9, 80, &video_tag(1, 1, 0, &nalus(4, &[IDR]))).unwrap().len(), 1);
    }

    #[test]
    fn metadata_variants() {
        let video_hint = |d: &mut FlvDemuxer| {
            let ev = d.push(9, 0, &video_tag(1, 0, 0, &avcc(4))).unwrap();
            let hint = track(&ev[0]).bitrate_hint;
            d.video = None;
            hint
        };
        let mut d = FlvDemuxer::new("s");
        assert_eq!(video_hint(&mut d), None);
        d.push(18, 0, &metadata(true, 1234.5, 96.0)).unwrap();
        assert_eq!(video_hint(&mut d), Some(1_234_500));
        assert_eq!(d.audio_bitrate, Some(96_000));
        // Unparseable metadata leaves the hints alone and is not an error.
        for junk in [&b"\x02\x00\x0aonMetaData\x08\x00"[..], &[0xff; 10][..], &[][..]] {
            assert_eq!(d.push(18, 0, &Bytes::copy_from_slice(junk)), Ok(vec![]));
        }
        assert_eq!(video_hint(&mut d), Some(1_234_500));
        // Zero means unknown.
        d.push(18, 0, &metadata(false, 0.0, 0.0)).unwrap();
        assert_eq!(video_hint(&mut d), None);
        assert_eq!(d.audio_bitrate, None);
        // RTMP AMF3 data message: 0x00 marker then AMF0.
        let mut amf3 = vec![0];
        amf3.extend_from_slice(&metadata(true, 800.0, 64.0));
        d.push(15, 0, &Bytes::from(amf3)).unwrap();
        assert_eq!(video_hint(&mut d), Some(800_000));
        // Object (type 3) instead of ECMA array, without end marker.
        let mut obj = Vec::new();
        amf_string(&mut obj, "onMetaData");
        obj.push(3);
        amf_key(&mut obj, "videodatarate");
        amf_number(&mut obj, 3000.0);
        d.push(18, 0, &Bytes::from(obj)).unwrap();
        assert_eq!(video_hint(&mut d), Some(3_000_000));
        // Not onMetaData.
        let mut other = Vec::new();
        amf_string(&mut other, "onCuePoint");
        other.push(3);
        amf_key(&mut other, "videodatarate");
        amf_number(&mut other, 1.0);
        d.push(18, 0, &Bytes::from(other)).unwrap();
        assert_eq!(video_hint(&mut d), Some(3_000_000));
        // Deep nesting is refused, not recursed into without bound.
        let mut deep = Vec::new();
        amf_string(&mut deep, "onMetaData");
        deep.push(3);
        for _ in 0..10_000 {
            amf_key(&mut deep, "a");
            deep.push(3);
        }
        assert_eq!(parse_metadata(&deep), None);
        assert_eq!(kbps_to_bps(f64::NAN), None);
        assert_eq!(kbps_to_bps(-5.0), None);
        assert_eq!(kbps_to_bps(1e12), None);
    }

    fn flv_file(tags: &[(u8, u32, &[u8])]) -> Vec<u8> {
        let mut v = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        for (t, ts, body) in tags {
            let n = body.len() as u32;
            v.push(*t);
            v.extend_from_slice(&n.to_be_bytes()[1..]);
            v.extend_from_slice(&ts.to_be_bytes()[1..]);
            v.push((ts >> 24) as u8);
            v.extend_from_slice(&[0, 0, 0]);
            v.extend_from_slice(body);
            v.extend_from_slice(&(n + 11).to_be_bytes());
        }
        v
    }

    #[test]
    fn read_file() {
        let vseq = video_tag(1, 0, 0, &avcc(4));
        let meta = metadata(false, 1.0, 1.0);
        let file = flv_file(&[(18, 0, &meta), (9, 0, &vseq), (8, 0x0123_4567, &[0xaf, 1, 5])]);
        let tags = read_flv_file(&Bytes::from(file.clone()), "s").unwrap();
        assert_eq!(
            tags,
            vec![
                FlvTag { tag_type: 18, timestamp_ms: 0, data: meta.clone() },
                FlvTag { tag_type: 9, timestamp_ms: 0, data: vseq.clone() },
                FlvTag { tag_type: 8, timestamp_ms: 0x0123_4567, data: Bytes::from_static(&[0xaf, 1, 5]) },
            ]
        );
        // Extended timestamp byte is the high byte (unsigned 32 bits).
        let file2 = flv_file(&[(8, 0xff00_0001, &[0xaf, 1, 5])]);
        assert_eq!(read_flv_file(&Bytes::from(file2), "s").unwrap()[0].timestamp_ms, 0xff00_0001);
        // Missing final PreviousTagSize is fine; a header-only file has no tags.
        let cut = Bytes::from(file[..file.len() - 4].to_vec());
        assert_eq!(read_flv_file(&cut, "s").unwrap().len(), 3);
        assert_eq!(read_flv_file(&Bytes::from(file[..13].to_vec()), "s"), Ok(vec![]));
        assert_eq!(read_flv_file(&Bytes::from(file[..9].to_vec()), "s"), Ok(vec![]));

        let err = |b: &[u8]| match read_flv_file(&Bytes::copy_from_slice(b), "s") {
            Err(DemuxError::Flv { what, tag, reason, .. }) => (what, tag, reason),
            other => panic!("{other:?}"),
        };
        assert_eq!(err(&file[..5]).2, "file shorter than the 9-byte FLV header");
        assert_eq!(err(b"FLX\x01\x05\0\0\0\x09").2, "missing FLV signature");
        assert_eq!(err(b"FLV\x02\x05\0\0\0\x09").2, "unsupported FLV version");
        assert_eq!(err(b"FLV\x01\x05\0\0\0\x08").2, "data offset out of range");
        assert_eq!(err(b"FLV\x01\x05\0\0\0\x10").2, "data offset out of range");
        assert_eq!(err(&file[..11]).2, "truncated PreviousTagSize0");
        assert_eq!(err(&file[..20]), ("tag", 1, "truncated tag header".to_string()));
        assert_eq!(err(&file[..30]), ("tag", 1, "truncated tag body".to_string()));
        assert_eq!(err(&file[..file.len() - 2]), ("tag", 3, "truncated PreviousTagSize".to_string()));
        let mut enc = file.clone();
        enc[13] |= 0x20;
        assert_eq!(err(&enc).2, "encrypted (filtered) tags are not supported");
    }

    /// Deterministic xorshift for mutation tests.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn mutated_input_never_panics() {
        let sps = hex(SPS);
        let pps = hex(PPS);
        let vseq = video_tag(1, 0, 0, &avcc(4));
        let key = video_tag(1, 1, 40, &nalus(4, &[AUD, &sps, &pps, SEI, IDR]));
        let delta = video_tag(2, 1, 0, &nalus(4, &[NON_IDR]));
        let aseq = audio_tag(0, &[0x12, 0x10]);
        let araw = audio_tag(1, &[0x21, 0x1b]);
        let meta = metadata(true, 1000.0, 128.0);
        let file =
            flv_file(&[(18, 0, &meta), (9, 0, &vseq), (8, 0, &aseq), (9, 0, &key), (8, 23, &araw), (9, 33, &delta)]);
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..3000 {
            let mut f = file.clone();
            let flips = 1 + next(&mut rng) % 4;
            for _ in 0..flips {
                let i = (next(&mut rng) as usize) % f.len();
                f[i] = next(&mut rng) as u8;
            }
            if round % 3 == 0 {
                let cut = (next(&mut rng) as usize) % f.len();
                f.truncate(cut);
            }
            let Ok(tags) = read_flv_file(&Bytes::from(f), "s") else { continue };
            let mut d = FlvDemuxer::new("s");
            for t in &tags {
                let _ = d.push(t.tag_type, t.timestamp_ms, &t.data);
            }
        }
        // Every prefix of every tag body, pushed after valid configs.
        for body in [&vseq, &key, &delta, &aseq, &araw, &meta] {
            for len in 0..=body.len() {
                let mut d = FlvDemuxer::new("s");
                d.push(9, 0, &vseq).unwrap();
                d.push(8, 0, &aseq).unwrap();
                for t in [8, 9, 18] {
                    let _ = d.push(t, 0, &body.slice(..len));
                }
            }
        }
    }
}
