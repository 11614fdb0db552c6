//! A minimal RTMP publisher for tests that need what ffmpeg cannot do
//! (rewritten timestamps, huge frames, dribbled bytes): rml_rtmp's handshake
//! and chunk serializer, ffmpeg's command sequence, FLV tags as messages.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use lockstep_packager::flv::{read_flv_file, FlvTag};
use rml_rtmp::chunk_io::ChunkSerializer;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::messages::{MessagePayload, RtmpMessage};
use rml_rtmp::rml_amf0::Amf0Value;
use rml_rtmp::time::RtmpTimestamp;

/// The tags of an FLV file.
pub fn flv_tags(path: &Path) -> Vec<FlvTag> {
    let data = Bytes::from(std::fs::read(path).expect("read FLV"));
    read_flv_file(&data, "input").expect("parse FLV")
}

/// An RTMP publisher: handshake, then ffmpeg's command sequence pipelined
/// (connect, releaseStream, FCPublish, createStream, publish), then FLV
/// tags as audio/video/data messages on message stream 1.
pub struct RawPublisher {
    pub sock: TcpStream,
    pub ser: ChunkSerializer,
}

impl RawPublisher {
    /// Connect and complete the handshake only.
    pub fn handshake(port: u16) -> RawPublisher {
        let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect to RTMP");
        sock.set_read_timeout(Some(Duration::from_secs(10))).expect("set timeout");
        sock.set_write_timeout(Some(Duration::from_secs(10))).expect("set timeout");
        let mut hs = Handshake::new(PeerType::Client);
        sock.write_all(&hs.generate_outbound_p0_and_p1().expect("handshake")).expect("send handshake");
        let mut buf = vec![0u8; 8192];
        loop {
            let n = sock.read(&mut buf).expect("handshake response");
            assert!(n > 0, "the server closed during the handshake");
            match hs.process_bytes(&buf[..n]).expect("valid handshake") {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    sock.write_all(&response_bytes).expect("send handshake")
                }
                HandshakeProcessResult::Completed { response_bytes, .. } => {
                    sock.write_all(&response_bytes).expect("send handshake");
                    break;
                }
            }
        }
        RawPublisher { sock, ser: ChunkSerializer::new() }
    }

    /// Connect, handshake and send the commands up to `publish`.
    pub fn publish(port: u16, app: &str, stream: &str) -> RawPublisher {
        let mut p = RawPublisher::handshake(port);
        let packet = p.ser.set_max_chunk_size(4096, RtmpTimestamp::new(0)).expect("chunk size");
        p.sock.write_all(&packet.bytes).expect("send chunk size");
        let s = |v: &str| Amf0Value::Utf8String(v.into());
        let mut connect = std::collections::HashMap::new();
        connect.insert("app".to_string(), s(app));
        connect.insert("type".to_string(), s("nonprivate"));
        connect.insert("tcUrl".to_string(), s(&format!("rtmp://127.0.0.1:{port}/{app}")));
        p.command(0, "connect", 1.0, Amf0Value::Object(connect), vec![]);
        p.command(0, "releaseStream", 2.0, Amf0Value::Null, vec![s(stream)]);
        p.command(0, "FCPublish", 3.0, Amf0Value::Null, vec![s(stream)]);
        p.command(0, "createStream", 4.0, Amf0Value::Null, vec![]);
        p.command(1, "publish", 5.0, Amf0Value::Null, vec![s(stream), s("live")]);
        p
    }

    pub fn send(&mut self, payload: MessagePayload) -> std::io::Result<()> {
        let packet = self.ser.serialize(&payload, false, false).expect("serialize");
        self.sock.write_all(&packet.bytes)
    }

    pub fn command(&mut self, stream_id: u32, name: &str, tx: f64, object: Amf0Value, args: Vec<Amf0Value>) {
        let m = RtmpMessage::Amf0Command {
            command_name: name.into(),
            transaction_id: tx,
            command_object: object,
            additional_arguments: args,
        };
        let payload = m.into_message_payload(RtmpTimestamp::new(0), stream_id).expect("command payload");
        self.send(payload).expect("send command");
    }

    /// One FLV tag (its body, possibly replaced) with `timestamp`.
    pub fn tag(&mut self, tag_type: u8, data: Bytes, timestamp: u32) -> std::io::Result<()> {
        self.send(MessagePayload {
            timestamp: RtmpTimestamp::new(timestamp),
            type_id: tag_type,
            message_stream_id: 1,
            data,
        })
    }

    /// Whether the server closes the connection within `limit` (reading
    /// and discarding what it sends meanwhile).
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        closed_within(&mut self.sock, limit)
    }
}

/// Whether the peer closes `sock` within `limit` (reading and discarding
/// what it sends meanwhile).
pub fn closed_within(sock: &mut TcpStream, limit: Duration) -> bool {
    let start = Instant::now();
    let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = vec![0u8; 8192];
    while start.elapsed() < limit {
        match sock.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}
