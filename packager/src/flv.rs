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
