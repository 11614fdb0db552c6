//! RTMP provider: encoders (ffmpeg, OBS, ...) publish FLV-tagged H.264/AAC
//! to `rtmp://host:port/app/stream`; a query on the stream name
//! (`stream?key=...`) carries credentials, checked by [`super::auth`] and
//! never part of the stream name. Every connection is one task: the
//! handshake, the chunk stream, the NetConnection/NetStream commands
//! (connect, releaseStream, FCPublish, createStream, publish, FCUnpublish,
//! deleteStream), then the audio/video/data messages, which go through an
//! [`FlvDemuxer`] to the stream's [`Publisher`].
//!
//! rml_rtmp 0.8 does the handshake and the command workflow
//! ([`ServerSession`]), but never sees the peer's bytes directly: its chunk
//! deserializer panics on crafted input (unchecked subtractions on message
//! lengths and extended timestamps), mixes up interleaved chunk streams and
//! reserves whatever message length the peer announces; its AMF0 parser
//! recurses without a depth limit and its command parser indexes past short
//! commands. So this module reads the chunk stream itself ([`ChunkReader`],
//! bounded), checks every command's AMF0 before rml_rtmp parses it
//! ([`check_command`]), passes the session only the messages it needs, each
//! re-framed as a single type-0 chunk, and keeps media and data messages
//! (audio, video, `@setDataFrame`/`onMetaData`) away from it: they go
//! straight to the FLV demuxer, which takes the bitrate hints from the data
//! messages. Since the session does not see the media bytes, the connection
//! acknowledges them itself and, once publishing, answers pings.
//!
//! Limits (constants below): [`MAX_CONNECTIONS`] concurrent connections,
//! of which at most [`MAX_PENDING_PER_IP`] from one address before their
//! publish is accepted (more are accepted and closed at once, logged at most
//! once a second); handshake within [`HANDSHAKE_TIMEOUT`]; publish within
//! [`PUBLISH_TIMEOUT`] of the accept; a message whose first bytes arrived
//! completed within [`MESSAGE_TIMEOUT`] (slowloris);
//! reads of [`READ_BUFFER`] bytes; peer chunk size at most
//! [`MAX_CHUNK_SIZE`]; messages at most [`MAX_COMMAND_MESSAGE`] before the
//! publish is accepted and [`MAX_MESSAGE`] after it (also the bound on all
//! partially received messages together); at most [`MAX_CHUNK_STREAMS`]
//! chunk streams; AMF0 nesting at most [`MAX_AMF_DEPTH`]; writes done within
//! [`WRITE_TIMEOUT`]. So a connection buffers at most about
//! `MAX_CHUNK_SIZE + READ_BUFFER + MAX_MESSAGE` bytes of input, plus a few
//! transient copies of the one message being handled; before its publish
//! is accepted, about `MAX_CHUNK_SIZE + READ_BUFFER + MAX_COMMAND_MESSAGE`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use lockstep_packager::demux::DemuxEvent;
use lockstep_packager::flv::{FlvDemuxer, TAG_AUDIO, TAG_VIDEO};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{auth, Ended, Provider, PublishError, Publisher, Registry};
use crate::config::Config;
use crate::store::StreamKey;
use crate::throttle::Throttle;

/// Concurrent RTMP connections; more are accepted and closed at once.
pub const MAX_CONNECTIONS: usize = 1000;
/// Connections from one IP address that have not started publishing (in
/// the handshake or the commands before `publish`). Scanners and attackers
/// hold such connections open; encoders publish within milliseconds.
pub const MAX_PENDING_PER_IP: usize = 128;
/// Once some bytes of a message (or chunk) have arrived, the message must be
/// complete within this time: a client dribbling its bytes (slowloris) is
/// closed. A connection that sends nothing at all is governed by
/// `PacketSilenceTimeoutMs` instead.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// The handshake must be complete this long after the accept.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The publish must be accepted this long after the accept.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);
/// A write to the peer (command responses only) must complete within this.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes read from the socket at a time.
pub const READ_BUFFER: usize = 64 * 1024;
/// Largest chunk size a peer may announce (SetChunkSize); encoders use 4096.
pub const MAX_CHUNK_SIZE: usize = 1024 * 1024;
/// Largest message before a publish is accepted (commands only).
pub const MAX_COMMAND_MESSAGE: usize = 64 * 1024;
/// Largest message (a video frame) once publishing; also the bound on the
/// bytes of all partially received messages together.
pub const MAX_MESSAGE: usize = 8 * 1024 * 1024;
/// Distinct chunk stream ids per connection (encoders use 3 to 6).
pub const MAX_CHUNK_STREAMS: usize = 64;
/// Nesting of AMF0 objects and arrays in a command.
pub const MAX_AMF_DEPTH: u32 = 16;
/// `connect` commands per connection.
const MAX_CONNECTS: u32 = 4;
/// `createStream` commands per connection (each is a stream in rml_rtmp).
const MAX_CREATE_STREAMS: u32 = 16;
/// Demuxed events handed to the publisher at a time, at most.
const EVENT_BATCH: usize = 256;

/// RTMP message type ids.
mod msg_type {
    pub const SET_CHUNK_SIZE: u8 = 1;
    pub const ABORT: u8 = 2;
    pub const USER_CONTROL: u8 = 4;
    pub const WINDOW_ACK_SIZE: u8 = 5;
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const DATA_AMF3: u8 = 15;
    pub const COMMAND_AMF3: u8 = 17;
    pub const DATA_AMF0: u8 = 18;
    pub const COMMAND_AMF0: u8 = 20;
    pub const AGGREGATE: u8 = 22;
}

/// Accept RTMP publishers on `listener` until `shutdown`, then wait for the
/// connections to close (publishing ones close when their stream ends,
/// which shutdown does).
pub async fn serve(listener: TcpListener, registry: Arc<Registry>, shutdown: CancellationToken) {
    serve_limited(listener, registry, shutdown, MAX_CONNECTIONS).await;
}

async fn serve_limited(listener: TcpListener, registry: Arc<Registry>, shutdown: CancellationToken, limit: usize) {
    let permits = Arc::new(Semaphore::new(limit));
    let pending = Arc::new(Pending::default());
    let (over_total, over_ip) = (Throttle::new(Duration::from_secs(1)), Throttle::new(Duration::from_secs(1)));
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(r) = tasks.join_next(), if !tasks.is_empty() => reaped(r),
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => match permits.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let Some(slot) = pending.take(peer.ip()) else {
                            if let Some(due) = over_ip.note(std::time::Instant::now()) {
                                warn!(
                                    provider = "RTMP", peer = %peer, limit = MAX_PENDING_PER_IP, refused = due.count,
                                    total = due.total,
                                    "RTMP per-address limit of connections not yet publishing reached; \
                                     closed new connections from this address at once"
                                );
                            }
                            drop(socket);
                            continue;
                        };
                        let (registry, shutdown) = (registry.clone(), shutdown.clone());
                        tasks.spawn(async move {
                            connection(socket, peer, registry, shutdown, slot).await;
                            drop(permit);
                        });
                    }
                    Err(_) => {
                        if let Some(due) = over_total.note(std::time::Instant::now()) {
                            warn!(
                                provider = "RTMP", peer = %peer, limit, refused = due.count, total = due.total,
                                "RTMP connection limit reached; closed new connections at once"
                            );
                        }
                        drop(socket);
                    }
                },
                Err(e) => {
                    // Out of file descriptors and the like: back off a little.
                    warn!(provider = "RTMP", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    while let Some(r) = tasks.join_next().await {
        reaped(r);
    }
}

/// Connections not yet publishing, per IP address.
#[derive(Default)]
struct Pending {
    by_ip: std::sync::Mutex<HashMap<IpAddr, usize>>,
}

impl Pending {
    /// A slot for one more connection from `ip`, if under the limit.
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<PendingSlot> {
        let mut m = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= MAX_PENDING_PER_IP {
            return None;
        }
        *n += 1;
        Some(PendingSlot { pending: self.clone(), ip })
    }
}

/// Held by a connection until its publish is accepted or it closes.
struct PendingSlot {
    pending: Arc<Pending>,
    ip: IpAddr,
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let mut m = self.pending.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

fn reaped(r: Result<(), tokio::task::JoinError>) {
    if let Err(e) = r {
        if e.is_panic() {
            tracing::error!(provider = "RTMP", error = %e, "RTMP connection task panicked");
        }
    }
}

/// Timeouts (handshake, publish, slowloris) of connections that never published,
/// logged at most once a second (`closed`: how many since the last line).
static UNPUBLISHED_CLOSES: Throttle = Throttle::new(Duration::from_secs(1));

/// Why a connection closed.
#[derive(Debug)]
enum Close {
    /// The peer closed the socket.
    PeerClosed,
    Io(std::io::Error),
    Handshake(String),
    /// Malformed or out-of-limits input.
    Protocol(String),
    /// Valid RTMP we do not serve (playback).
    Unsupported(String),
    Timeout(&'static str),
    /// The stream was ended by the server (silence, bad stream, shutdown).
    Ended,
    Shutdown,
    /// The publisher unpublished (FCUnpublish, deleteStream, closeStream).
    Finished,
    /// Publish refused; already logged.
    Rejected,
    /// The media could not be demuxed; already logged.
    Dropped,
}

async fn connection(
    mut socket: TcpStream,
    peer: SocketAddr,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    slot: PendingSlot,
) {
    let _ = socket.set_nodelay(true);
    debug!(provider = "RTMP", peer = %peer, "connection accepted");
    let start = Instant::now();
    let mut conn = Conn::new(peer, registry);
    conn.pending = Some(slot);
    let close = run(&mut socket, &mut conn, start, &shutdown).await;
    // Whatever the reason, send what is pending (a rejection, say) first.
    if !conn.out.is_empty() {
        let out = std::mem::take(&mut conn.out);
        let _ = tokio::time::timeout(Duration::from_secs(1), socket.write_all(&out)).await;
    }
    if matches!(close, Close::Finished) {
        conn.flush_events().await.ok();
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.shutdown()).await;
    // Fields left out of the log lines when unknown.
    let stream = conn.publishing.as_ref().map(|p| tracing::field::display(&p.key));
    let app = conn.app.as_deref();
    match &close {
        Close::PeerClosed | Close::Finished | Close::Ended if stream.is_some() => {
            let reason = match &close {
                Close::PeerClosed => "the publisher closed the connection",
                Close::Finished => "the publisher unpublished",
                _ => "the stream was ended by the server",
            };
            info!(provider = "RTMP", peer = %peer, stream, reason, "RTMP publisher disconnected");
        }
        Close::Io(e) if stream.is_some() => {
            info!(provider = "RTMP", peer = %peer, stream, reason = %e, "RTMP publisher disconnected")
        }
        // Before a publish, a flood of these is idle connections of an attack
        // or a scan: one line a second.
        Close::Timeout(why) if stream.is_none() => {
            if let Some(due) = UNPUBLISHED_CLOSES.note(std::time::Instant::now()) {
                warn!(provider = "RTMP", peer = %peer, app, reason = why, closed = due.count, "RTMP connection closed")
            }
        }
        Close::Protocol(why) | Close::Handshake(why) | Close::Unsupported(why) => {
            warn!(provider = "RTMP", peer = %peer, stream, app, reason = %why, "RTMP connection closed")
        }
        Close::Timeout(why) => {
            warn!(provider = "RTMP", peer = %peer, stream, app, reason = why, "RTMP connection closed")
        }
        other => debug!(provider = "RTMP", peer = %peer, stream, app, reason = ?other, "RTMP connection closed"),
    }
    // Dropping `conn` drops the publisher, which ends its stream.
    let published = conn.publishing.is_some();
    drop(conn);
    drop(socket);
    if published {
        // A publisher's buffers can be large (frames of a fast encoder).
        crate::mem::release_freed();
    }
}

async fn write(socket: &mut TcpStream, bytes: &[u8]) -> Result<(), Close> {
    match tokio::time::timeout(WRITE_TIMEOUT, socket.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Close::Io(e)),
        Err(_) => Err(Close::Timeout("the peer does not read what we send")),
    }
}

async fn read(socket: &mut TcpStream, buf: &mut [u8]) -> Result<usize, Close> {
    match socket.read(buf).await {
        Ok(0) => Err(Close::PeerClosed),
        Ok(n) => Ok(n),
        Err(e) => Err(Close::Io(e)),
    }
}

async fn run(socket: &mut TcpStream, conn: &mut Conn, start: Instant, shutdown: &CancellationToken) -> Close {
    let mut buf = vec![0u8; READ_BUFFER];

    // Handshake.
    let mut handshake = Handshake::new(PeerType::Server);
    let handshake_deadline = start + HANDSHAKE_TIMEOUT;
    let mut received = 0usize;
    let leftover = loop {
        let n = tokio::select! {
            () = shutdown.cancelled() => return Close::Shutdown,
            () = tokio::time::sleep_until(handshake_deadline) => return Close::Timeout("no complete handshake within 10 s"),
            r = read(socket, &mut buf) => match r {
                Ok(n) => n,
                // Port probes connect and close without a byte: not worth a warning.
                Err(Close::PeerClosed) if received == 0 => return Close::PeerClosed,
                Err(Close::PeerClosed) => {
                    return Close::Handshake(format!("truncated handshake: the peer closed after {received} bytes"))
                }
                Err(e) => return e,
            },
        };
        received += n;
        let slice = buf.get(..n).unwrap_or_default();
        match handshake.process_bytes(slice) {
            Ok(HandshakeProcessResult::InProgress { response_bytes }) => {
                if let Err(e) = write(socket, &response_bytes).await {
                    return e;
                }
            }
            Ok(HandshakeProcessResult::Completed { response_bytes, remaining_bytes }) => {
                if let Err(e) = write(socket, &response_bytes).await {
                    return e;
                }
                break remaining_bytes;
            }
            Err(e) => return Close::Handshake(format!("invalid handshake: {e}")),
        }
    };
    debug!(provider = "RTMP", peer = %conn.peer, "handshake complete");

    if let Err(e) = conn.start_session() {
        return e;
    }
    if let Err(e) = input(socket, conn, &leftover).await {
        return e;
    }

    let publish_deadline = start + PUBLISH_TIMEOUT;
    // Since when bytes of an incomplete message (or chunk) are waiting with
    // no message completed.
    let mut incomplete_since: Option<Instant> = None;
    let mut completed = conn.reader.messages;
    loop {
        let ended = conn.publishing.as_ref().map(|p| p.publisher.ended());
        let publishing = ended.is_some();
        let progress = std::mem::replace(&mut completed, conn.reader.messages) != conn.reader.messages;
        incomplete_since = match (conn.reader.holds_incomplete(), incomplete_since) {
            (false, _) => None,
            (true, Some(since)) if !progress => Some(since),
            (true, _) => Some(Instant::now()),
        };
        let stalled = incomplete_since.map(|t| t + MESSAGE_TIMEOUT);
        let n = tokio::select! {
            () = shutdown.cancelled() => return Close::Shutdown,
            () = async { if let Some(t) = &ended { t.cancelled().await } }, if publishing => return Close::Ended,
            () = tokio::time::sleep_until(publish_deadline), if !publishing => {
                return Close::Timeout("no publish within 30 s of connecting");
            }
            () = async { if let Some(t) = stalled { tokio::time::sleep_until(t).await } }, if stalled.is_some() => {
                return Close::Timeout("an RTMP message not completed within 10 s of its first bytes (slowloris)");
            }
            r = read(socket, &mut buf) => match r {
                Ok(n) => n,
                Err(e) => return e,
            },
        };
        if let Err(e) = input(socket, conn, buf.get(..n).unwrap_or_default()).await {
            return e;
        }
    }
}

/// Process bytes read after the handshake: every complete message, with
/// responses written and media handed to the publisher as they come.
async fn input(socket: &mut TcpStream, conn: &mut Conn, data: &[u8]) -> Result<(), Close> {
    conn.received(data.len());
    conn.reader.push(data);
    loop {
        let more = conn.step()?;
        if !conn.out.is_empty() {
            let out = std::mem::take(&mut conn.out);
            write(socket, &out).await?;
        }
        if !more || conn.events.len() >= EVENT_BATCH {
            conn.flush_events().await?;
        }
        if !more {
            return Ok(());
        }
    }
}

struct Publishing {
    key: StreamKey,
    publisher: Publisher,
    demuxer: FlvDemuxer,
    /// The message stream the publish was accepted on: its audio and video
    /// messages are the stream's media.
    stream_id: u32,
}

/// Acknowledgements of received bytes (RTMP 5.4.3), sent by the connection
/// itself: audio and video messages go straight to the demuxer, so the
/// session never sees most of the bytes it would count.
#[derive(Debug, Default)]
struct Acks {
    /// The peer's Window Acknowledgement Size, once announced.
    window: Option<u32>,
    /// Bytes received after the handshake.
    received: u64,
    /// `received` when the last acknowledgement was sent.
    acked: u64,
}

/// The sans-IO state of one connection after the handshake.
struct Conn {
    peer: SocketAddr,
    registry: Arc<Registry>,
    reader: ChunkReader,
    /// This connection's place under [`MAX_PENDING_PER_IP`], until its
    /// publish is accepted.
    pending: Option<PendingSlot>,
    session: Option<ServerSession>,
    /// The application named by `connect` (resolved, see [`resolve_app`]).
    app: Option<String>,
    /// The `tcUrl` of the connect command.
    tc_url: Option<String>,
    publishing: Option<Publishing>,
    timestamps: Unwrapper,
    connects: u32,
    create_streams: u32,
    /// Bytes to send to the peer.
    out: Vec<u8>,
    /// Demuxed events not yet handed to the publisher.
    events: Vec<DemuxEvent>,
    acks: Acks,
    /// The message stream of the command being handled.
    command_stream: u32,
}

impl Conn {
    fn new(peer: SocketAddr, registry: Arc<Registry>) -> Conn {
        Conn {
            peer,
            registry,
            reader: ChunkReader::new(),
            pending: None,
            session: None,
            app: None,
            tc_url: None,
            publishing: None,
            timestamps: Unwrapper::default(),
            connects: 0,
            create_streams: 0,
            out: Vec::new(),
            events: Vec::new(),
            acks: Acks::default(),
            command_stream: 0,
        }
    }

    /// Count `n` bytes read from the peer, and queue an acknowledgement if
    /// a window's worth arrived since the last one. Only once publishing:
    /// until then the session writes control messages on chunk stream 2
    /// with headers compressed against its own previous ones, which a
    /// message of ours in between would corrupt; afterwards it writes none
    /// there (pings are answered here too).
    fn received(&mut self, n: usize) {
        self.acks.received = self.acks.received.wrapping_add(n as u64);
        let Some(window) = self.acks.window else { return };
        if self.publishing.is_some() && self.acks.received.wrapping_sub(self.acks.acked) >= u64::from(window) {
            self.acks.acked = self.acks.received;
            // The sequence number is the byte count so far, modulo 2^32.
            self.control(3, &(self.acks.received as u32).to_be_bytes());
        }
    }

    /// Queue a protocol control message (chunk stream 2, message stream 0)
    /// with a full chunk header.
    fn control(&mut self, type_id: u8, payload: &[u8]) {
        self.out.push(2);
        self.out.extend_from_slice(&[0, 0, 0]);
        self.out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        self.out.push(type_id);
        self.out.extend_from_slice(&[0, 0, 0, 0]);
        self.out.extend_from_slice(payload);
    }

    fn start_session(&mut self) -> Result<(), Close> {
        let (mut session, results) = ServerSession::new(ServerSessionConfig::new())
            .map_err(|e| Close::Protocol(format!("starting the RTMP session: {e}")))?;
        // The session's own deserializer gets one chunk per message.
        session
            .handle_input(&frame(msg_type::SET_CHUNK_SIZE, 0, 0, &0x00ff_ffffu32.to_be_bytes()))
            .map_err(|e| Close::Protocol(format!("starting the RTMP session: {e}")))?;
        self.session = Some(session);
        self.results(results)
    }

    /// Hand the queued events to the publisher.
    async fn flush_events(&mut self) -> Result<(), Close> {
        if self.events.is_empty() {
            return Ok(());
        }
        let events = std::mem::take(&mut self.events);
        match &self.publishing {
            Some(p) => p.publisher.send(events).await.map_err(|Ended| Close::Ended),
            None => Ok(()),
        }
    }

    /// Process the next complete message; `false` when more input is needed.
    fn step(&mut self) -> Result<bool, Close> {
        let limit = if self.publishing.is_some() { MAX_MESSAGE } else { MAX_COMMAND_MESSAGE };
        match self.reader.next_message(limit).map_err(Close::Protocol)? {
            None => Ok(false),
            Some(m) => {
                self.message(m)?;
                Ok(true)
            }
        }
    }

    fn message(&mut self, m: Message) -> Result<(), Close> {
        use msg_type::*;
        match m.type_id {
            // The chunk reader applied them.
            SET_CHUNK_SIZE | ABORT => Ok(()),
            // Ping request: answered with a ping response (the session answers it until the publish,
            // see `received`). Other events are of no use to a publish-only server.
            USER_CONTROL if m.payload.len() >= 6 && m.payload.get(..2) == Some(&[0u8, 6][..]) => {
                if self.publishing.is_some() {
                    let mut response = [0u8, 7, 0, 0, 0, 0];
                    response[2..].copy_from_slice(&m.payload[2..6]);
                    self.control(USER_CONTROL, &response);
                    Ok(())
                } else {
                    self.session_input(&m)
                }
            }
            WINDOW_ACK_SIZE => {
                // Acknowledged every `size` bytes (see `received`).
                let Some(b) = m.payload.get(..4) else { return Ok(()) };
                self.acks.window = Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]).clamp(4096, 1 << 30));
                Ok(())
            }
            // Media of the published stream, straight to the demuxer (RTMP message types 8 and 9 are FLV
            // tag types 8 and 9); media on any other message stream is ignored.
            AUDIO | VIDEO => match &self.publishing {
                Some(p) if p.stream_id == m.stream_id => self.demux(m.type_id, m.timestamp, m.payload),
                _ => Ok(()),
            },
            DATA_AMF0 | DATA_AMF3 if self.publishing.is_some() => self.demux(m.type_id, m.timestamp, m.payload),
            AGGREGATE if self.publishing.is_some() => {
                for sub in split_aggregate(&m).map_err(Close::Protocol)? {
                    if sub.type_id != AGGREGATE {
                        self.message(sub)?;
                    }
                }
                Ok(())
            }
            COMMAND_AMF0 | COMMAND_AMF3 => {
                let body = if m.type_id == COMMAND_AMF3 && m.payload.first() == Some(&0) {
                    m.payload.get(1..).unwrap_or_default()
                } else {
                    &m.payload[..]
                };
                let name = check_command(body).map_err(|e| Close::Protocol(format!("invalid AMF0 command: {e}")))?;
                debug!(provider = "RTMP", peer = %self.peer, command = %name, "command");
                match name.as_str() {
                    "connect" => {
                        // For a signed publish URL (see `auth`).
                        self.tc_url = auth::connect_tc_url(body);
                        self.connects += 1;
                        if self.connects > MAX_CONNECTS {
                            return Err(Close::Protocol(format!("more than {MAX_CONNECTS} connect commands")));
                        }
                    }
                    "createStream" => {
                        self.create_streams += 1;
                        if self.create_streams > MAX_CREATE_STREAMS {
                            return Err(Close::Protocol(format!(
                                "more than {MAX_CREATE_STREAMS} createStream commands"
                            )));
                        }
                    }
                    _ => {}
                }
                self.command_stream = m.stream_id;
                self.session_input(&m)
            }
            _ => Ok(()),
        }
    }

    fn session_input(&mut self, m: &Message) -> Result<(), Close> {
        let Some(session) = self.session.as_mut() else { return Ok(()) };
        let results = session
            .handle_input(&frame(m.type_id, m.timestamp, m.stream_id, &m.payload))
            .map_err(|e| Close::Protocol(e.to_string()))?;
        self.results(results)
    }

    fn results(&mut self, results: Vec<ServerSessionResult>) -> Result<(), Close> {
        for r in results {
            match r {
                ServerSessionResult::OutboundResponse(p) => self.out.extend_from_slice(&p.bytes),
                ServerSessionResult::RaisedEvent(e) => self.event(e)?,
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(())
    }

    fn request(&mut self, accept: bool, request_id: u32, code: &str, description: &str) -> Result<(), Close> {
        let Some(session) = self.session.as_mut() else { return Ok(()) };
        let results = if accept {
            session.accept_request(request_id)
        } else {
            session.reject_request(request_id, code, description)
        };
        let results = results.map_err(|e| Close::Protocol(e.to_string()))?;
        self.results(results)
    }

    fn event(&mut self, e: ServerSessionEvent) -> Result<(), Close> {
        match e {
            ServerSessionEvent::ConnectionRequested { request_id, app_name } => {
                let app = resolve_app(self.registry.config(), &app_name);
                debug!(provider = "RTMP", peer = %self.peer, app = %app, "connect");
                self.app = Some(app);
                self.request(true, request_id, "", "")
            }
            ServerSessionEvent::PublishStreamRequested { request_id, stream_key, .. } => {
                self.publish(request_id, &stream_key, self.command_stream)
            }
            ServerSessionEvent::VideoDataReceived { data, timestamp, .. } => {
                self.demux(TAG_VIDEO, timestamp.value, data)
            }
            ServerSessionEvent::AudioDataReceived { data, timestamp, .. } => {
                self.demux(TAG_AUDIO, timestamp.value, data)
            }
            ServerSessionEvent::PublishStreamFinished { .. } if self.publishing.is_some() => Err(Close::Finished),
            ServerSessionEvent::UnhandleableAmf0Command { command_name, .. }
                if command_name == "FCUnpublish" && self.publishing.is_some() =>
            {
                Err(Close::Finished)
            }
            ServerSessionEvent::PlayStreamRequested { request_id, stream_key, .. } => {
                let why = "playback over RTMP is not supported; play over LL-HLS or HLS";
                self.request(false, request_id, "NetStream.Play.Failed", why)?;
                Err(Close::Unsupported(format!("play {:?}: {why}", auth::redact(&stream_key))))
            }
            _ => Ok(()),
        }
    }

    fn publish(&mut self, request_id: u32, stream_key: &str, stream_id: u32) -> Result<(), Close> {
        let app = self.app.clone().unwrap_or_default();
        // A percent-encoded query (`name%3Fkey=...`) is no query, so such a
        // name is refused as invalid, but not shown: cut it off as the query.
        let stream = auth::redact(strip_query(stream_key));
        let stream = stream.as_str();
        let peer = self.peer;
        let result = match &self.publishing {
            Some(p) => Err(PublishError::AlreadyLive { key: p.key.clone(), provider: Provider::Rtmp, peer }),
            None => {
                // The query (publish key, signed policy) is checked, never kept.
                let url = auth::rtmp_url(self.tc_url.as_deref(), stream_key);
                self.registry.authorize(Provider::Rtmp, &app, stream, &url, peer).and_then(|grant| {
                    let publisher = self.registry.publish(&app, stream, Provider::Rtmp, peer)?;
                    auth::enforce(&grant, &publisher, Provider::Rtmp);
                    Ok(publisher)
                })
            }
        };
        match result {
            Ok(publisher) => {
                let key = publisher.key().clone();
                self.request(true, request_id, "", "")?;
                info!(provider = "RTMP", peer = %peer, stream = %key, "RTMP publisher started");
                self.publishing =
                    Some(Publishing { demuxer: FlvDemuxer::new(key.to_string()), key, publisher, stream_id });
                self.pending = None;
                Ok(())
            }
            Err(e) => {
                let code = match e {
                    PublishError::InvalidStreamName { .. }
                    | PublishError::AlreadyLive { .. }
                    | PublishError::Ending { .. } => "NetStream.Publish.BadName",
                    _ => "NetStream.Publish.Rejected",
                };
                let app = app.as_str();
                warn!(provider = "RTMP", peer = %peer, app, stream, reason = %e, "publish rejected");
                self.request(false, request_id, code, &e.to_string())?;
                Err(Close::Rejected)
            }
        }
    }

    /// Feed one FLV tag body to the demuxer, with its timestamp unwrapped.
    fn demux(&mut self, tag_type: u8, timestamp: u32, body: Bytes) -> Result<(), Close> {
        let Some(p) = self.publishing.as_mut() else { return Ok(()) };
        let kind = match tag_type {
            TAG_AUDIO => 0,
            TAG_VIDEO => 1,
            _ => 2,
        };
        let ts = self.timestamps.unwrap(kind, timestamp);
        // RTMP message types 8, 9, 18 and 15 are the demuxer's tag types.
        match p.demuxer.push(tag_type, ts, &body) {
            Ok(events) => {
                self.events.extend(events);
                Ok(())
            }
            Err(err) => {
                warn!(provider = "RTMP", peer = %self.peer, stream = %p.key, reason = %err, "publisher dropped");
                Err(Close::Dropped)
            }
        }
    }
}

/// `name?query` → `name`.
fn strip_query(s: &str) -> &str {
    s.split_once('?').map_or(s, |(a, _)| a)
}

/// The application a `connect` names: without `?query` or slashes around
/// it; `vhost/app` (ffmpeg puts every path element but the last into the
/// app) and OvenMediaEngine's `#vhost#app` become `app` when `vhost` is a
/// configured virtual host and `app` is not itself a configured app name.
fn resolve_app(config: &Config, raw: &str) -> String {
    let app = strip_query(raw).trim_matches('/');
    if config.app(app).is_some() {
        return app.to_string();
    }
    let split = app.strip_prefix('#').and_then(|r| r.split_once('#')).or_else(|| app.split_once('/'));
    if let Some((vhost, name)) = split {
        if config.vhosts.iter().any(|v| v.name == vhost) && config.app(name).is_some() {
            return name.to_string();
        }
    }
    app.to_string()
}

/// One message as a single type-0 chunk on chunk stream 3, for the
/// session's deserializer (whose chunk size is set to 0xffffff first, so
/// no message is split).
fn frame(type_id: u8, timestamp: u32, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 16);
    v.push(3);
    v.extend_from_slice(&timestamp.min(0x00ff_ffff).to_be_bytes()[1..]);
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX).min(0x00ff_ffff);
    v.extend_from_slice(&len.to_be_bytes()[1..]);
    v.push(type_id);
    v.extend_from_slice(&stream_id.to_le_bytes());
    if timestamp >= 0x00ff_ffff {
        v.extend_from_slice(&timestamp.to_be_bytes());
    }
    v.extend_from_slice(payload.get(..len as usize).unwrap_or(payload));
    v
}

// ------------------------------------------------------------ timestamps ---

/// Unwraps 32-bit RTMP timestamps into a monotonic i64 per media type: each
/// becomes the candidate (±2^32) nearest the type's previous value, or the
/// connection's latest value for a type's first message.
#[derive(Debug, Default)]
struct Unwrapper {
    last: [Option<i64>; 3],
    latest: Option<i64>,
}

impl Unwrapper {
    fn unwrap(&mut self, kind: usize, ts: u32) -> i64 {
        let reference = self.last.get(kind).copied().flatten().or(self.latest);
        let v = match reference {
            None => i64::from(ts),
            Some(r) => nearest(r, ts),
        };
        if let Some(l) = self.last.get_mut(kind) {
            *l = Some(v);
        }
        self.latest = Some(v);
        v
    }
}

/// The value ≡ `ts` (mod 2^32) nearest `reference`.
fn nearest(reference: i64, ts: u32) -> i64 {
    const M: i64 = 1 << 32;
    let base = reference.div_euclid(M).saturating_mul(M).saturating_add(i64::from(ts));
    [base.saturating_sub(M), base, base.saturating_add(M)]
        .into_iter()
        .min_by_key(|c| c.abs_diff(reference))
        .unwrap_or(base)
}

// --------------------------------------------------------------- chunks ---

/// One complete RTMP message.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Message {
    timestamp: u32,
    type_id: u8,
    stream_id: u32,
    payload: Bytes,
}

/// What a chunk stream remembers for header compression.
#[derive(Debug, Default)]
struct ChunkStream {
    /// Timestamp of the current (or last) message.
    timestamp: u32,
    /// The last timestamp field: absolute after a type 0 header, a delta
    /// after type 1/2; a type 3 header starting a message adds it again.
    ts_field: u32,
    /// The last type 0/1/2 header had an extended timestamp, so type 3
    /// chunks carry one too.
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The message being received, if incomplete.
    partial: Option<BytesMut>,
}

/// A bounded RTMP chunk stream reader. Buffers at most one chunk beyond the
/// last input; applies SetChunkSize and Abort itself.
struct ChunkReader {
    buf: BytesMut,
    chunk_size: usize,
    streams: HashMap<u32, ChunkStream>,
    /// Bytes held in partial messages, all chunk streams together.
    partial_bytes: usize,
    /// Messages completed so far.
    messages: u64,
}

/// A bounds-checked reader over a byte slice.
struct Rd<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Rd<'a> {
    fn new(b: &'a [u8]) -> Self {
        Rd { b, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    fn be(&mut self, n: usize) -> Option<u32> {
        Some(self.take(n)?.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
    }

    fn le32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

impl ChunkReader {
    fn new() -> ChunkReader {
        ChunkReader { buf: BytesMut::new(), chunk_size: 128, streams: HashMap::new(), partial_bytes: 0, messages: 0 }
    }

    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Whether bytes of an incomplete chunk or message are held.
    fn holds_incomplete(&self) -> bool {
        !self.buf.is_empty() || self.partial_bytes > 0
    }

    /// The next complete message (messages longer than `max_message` are
    /// an error); `Ok(None)` when more input is needed.
    fn next_message(&mut self, max_message: usize) -> Result<Option<Message>, String> {
        loop {
            match self.next_chunk(max_message)? {
                None => return Ok(None),
                Some(None) => {}
                Some(Some(m)) => {
                    self.messages += 1;
                    self.control(&m)?;
                    return Ok(Some(m));
                }
            }
        }
    }

    fn control(&mut self, m: &Message) -> Result<(), String> {
        let value = || m.payload.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        match m.type_id {
            msg_type::SET_CHUNK_SIZE => {
                let size = value().ok_or("truncated SetChunkSize message")?;
                if size == 0 || size as usize > MAX_CHUNK_SIZE {
                    return Err(format!("peer chunk size {size} is outside 1..={MAX_CHUNK_SIZE} bytes"));
                }
                self.chunk_size = size as usize;
            }
            msg_type::ABORT => {
                if let Some(s) = value().and_then(|csid| self.streams.get_mut(&csid)) {
                    if let Some(p) = s.partial.take() {
                        self.partial_bytes = self.partial_bytes.saturating_sub(p.len());
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Parse one chunk: `None` if incomplete (nothing consumed), `Some(None)`
    /// for a chunk that did not complete a message.
    fn next_chunk(&mut self, max_message: usize) -> Result<Option<Option<Message>>, String> {
        macro_rules! need {
            ($e:expr) => {
                match $e {
                    Some(v) => v,
                    None => return Ok(None),
                }
            };
        }
        let mut r = Rd::new(&self.buf);
        let b0 = need!(r.u8());
        let fmt = b0 >> 6;
        let csid = match b0 & 0x3f {
            0 => 64 + u32::from(need!(r.u8())),
            1 => 64 + need!(r.take(2)).iter().rev().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)),
            n => u32::from(n),
        };
        let prev = self.streams.get(&csid);
        if prev.is_none() {
            if fmt != 0 {
                return Err(format!("chunk stream {csid}: type {fmt} chunk header without a previous type 0 header"));
            }
            if self.streams.len() >= MAX_CHUNK_STREAMS {
                return Err(format!("more than {MAX_CHUNK_STREAMS} chunk streams"));
            }
        }
        let have = prev.and_then(|s| s.partial.as_ref()).map(BytesMut::len);
        let (mut timestamp, mut ts_field, mut extended, mut length, mut type_id, mut stream_id) = prev
            .map_or((0, 0, false, 0, 0, 0), |s| {
                (s.timestamp, s.ts_field, s.extended, s.length, s.type_id, s.stream_id)
            });
        let field = if fmt <= 2 { Some(need!(r.be(3))) } else { None };
        if fmt <= 1 {
            length = need!(r.be(3));
            type_id = need!(r.u8());
        }
        if fmt == 0 {
            stream_id = need!(r.le32());
        }
        if let Some(f) = field {
            extended = f == 0x00ff_ffff;
        }
        let ext = if extended { Some(need!(r.be(4))) } else { None };
        if let (Some(_), Some(p)) = (have, prev) {
            // Like ffmpeg, take a full header that repeats the message's
            // length and type as a continuation (rml_rtmp's serializer
            // writes those when told not to compress).
            if fmt != 3 && (length, type_id) != (p.length, p.type_id) {
                return Err(format!("chunk stream {csid}: type {fmt} chunk header in the middle of a message"));
            }
            stream_id = p.stream_id;
        } else {
            // A new message.
            if let Some(f) = ext.or(field) {
                ts_field = f;
            }
            timestamp = if fmt == 0 { ts_field } else { timestamp.wrapping_add(ts_field) };
            if length as usize > max_message {
                return Err(format!(
                    "message of {length} bytes (type {type_id}) is over the {max_message} byte limit{}",
                    if max_message < MAX_MESSAGE { " before publishing" } else { "" }
                ));
            }
        }
        let have = have.unwrap_or(0);
        let n = (length as usize).saturating_sub(have).min(self.chunk_size);
        let header_len = r.pos;
        if self.buf.len() < header_len.saturating_add(n) {
            return Ok(None);
        }
        let complete = have + n >= length as usize;
        // `have` bytes of this message are already counted in `partial_bytes`.
        if !complete && self.partial_bytes + n > max_message {
            return Err(format!("more than {max_message} bytes in incomplete messages"));
        }
        let _ = self.buf.split_to(header_len);
        let data = self.buf.split_to(n);
        let st = self.streams.entry(csid).or_default();
        st.timestamp = timestamp;
        st.ts_field = ts_field;
        st.extended = extended;
        st.length = length;
        st.type_id = type_id;
        st.stream_id = stream_id;
        let mut body = st.partial.take().unwrap_or_default();
        self.partial_bytes = self.partial_bytes.saturating_sub(body.len());
        body.extend_from_slice(&data);
        if complete {
            // A copy of exactly the message: the payload does not pin the read buffer.
            let payload = Bytes::copy_from_slice(&body);
            return Ok(Some(Some(Message { timestamp, type_id, stream_id, payload })));
        }
        self.partial_bytes += body.len();
        st.partial = Some(body);
        Ok(Some(None))
    }
}

/// The messages of an aggregate message (FLV tags: 11-byte header, body,
/// 4-byte back pointer); their timestamps are relative to the first one's,
/// which is the aggregate's own.
fn split_aggregate(m: &Message) -> Result<Vec<Message>, String> {
    let mut r = Rd::new(&m.payload);
    let mut out = Vec::new();
    let mut first: Option<u32> = None;
    while r.peek().is_some() {
        let bad = || "truncated aggregate message".to_string();
        let type_id = r.u8().ok_or_else(bad)?;
        let size = r.be(3).ok_or_else(bad)? as usize;
        let ts = r.be(3).ok_or_else(bad)? | (u32::from(r.u8().ok_or_else(bad)?) << 24);
        r.take(3).ok_or_else(bad)?;
        let start = r.pos;
        r.take(size).ok_or_else(bad)?;
        let payload = m.payload.slice(start..start + size);
        // The back pointer may be missing after the last tag.
        let _ = r.take(4);
        let base = *first.get_or_insert(ts);
        out.push(Message {
            timestamp: m.timestamp.wrapping_add(ts.wrapping_sub(base)),
            type_id: type_id & 0x1f,
            stream_id: m.stream_id,
            payload,
        });
    }
    Ok(out)
}

// ------------------------------------------------------------------ AMF ---

/// Check a command message body (AMF0) before rml_rtmp parses it: every
/// value well-formed as rml_amf0 reads it, nesting at most
/// [`MAX_AMF_DEPTH`], and at least name (string), transaction id (number)
/// and command object. Returns the command name. Public for the fuzz
/// targets (`fuzz/`).
pub fn check_command(body: &[u8]) -> Result<String, String> {
    let mut r = Rd::new(body);
    let mut name = None;
    let mut count = 0;
    // rml_amf0 reads values until the end or an object-end marker.
    while let Some(marker) = r.peek().filter(|m| *m != 0x09) {
        r.u8();
        match (count, marker) {
            (0, 0x02) => {
                let n = r.be(2).ok_or("truncated string")? as usize;
                let s = r.take(n).ok_or("truncated string")?;
                name = Some(String::from_utf8(s.to_vec()).map_err(|_| "command name is not UTF-8")?);
            }
            (0, _) => return Err("the command name is not a string".into()),
            (1, m) if m != 0x00 => return Err("the transaction id is not a number".into()),
            _ => skip_amf0(&mut r, marker, 1)?,
        }
        count += 1;
    }
    if count < 3 {
        return Err(format!("{count} values; a command has at least 3"));
    }
    name.ok_or_else(|| "no command name".into())
}

/// Skip one AMF0 value whose marker was read, at nesting `depth`.
fn skip_amf0(r: &mut Rd, marker: u8, depth: u32) -> Result<(), String> {
    if depth > MAX_AMF_DEPTH {
        return Err(format!("AMF0 nesting deeper than {MAX_AMF_DEPTH}"));
    }
    let truncated = || "truncated value".to_string();
    match marker {
        0x00 => r.take(8).map(drop).ok_or_else(truncated),
        0x01 => r.take(1).map(drop).ok_or_else(truncated),
        0x02 => {
            let n = r.be(2).ok_or_else(truncated)? as usize;
            r.take(n).map(drop).ok_or_else(truncated)
        }
        0x05 | 0x06 => Ok(()),
        0x03 => skip_properties(r, depth),
        0x08 => {
            r.take(4).ok_or_else(truncated)?;
            skip_properties(r, depth)
        }
        0x0a => {
            let count = r.be(4).ok_or_else(truncated)?;
            for _ in 0..count {
                match r.u8() {
                    // rml_amf0 ends the array early at the end or an object-end marker.
                    None | Some(0x09) => break,
                    Some(m) => skip_amf0(r, m, depth + 1)?,
                }
            }
            Ok(())
        }
        m => Err(format!("unsupported AMF0 type {m:#04x}")),
    }
}

fn skip_properties(r: &mut Rd, depth: u32) -> Result<(), String> {
    let truncated = || "truncated object".to_string();
    loop {
        let n = r.be(2).ok_or_else(truncated)? as usize;
        if n == 0 {
            return match r.u8() {
                Some(0x09) => Ok(()),
                _ => Err("object property without a name".into()),
            };
        }
        r.take(n).ok_or_else(truncated)?;
        match r.u8() {
            None | Some(0x09) => return Err(truncated()),
            Some(m) => skip_amf0(r, m, depth + 1)?,
        }
    }
}

// --------------------------------------------------------------- replay ---

/// Handle `input` as one connection's bytes, delivered in reads of
/// `read_size` bytes, without a socket: the handshake (unless `handshake`
/// is false: the input starts at the chunk stream), the chunk stream, the
/// commands, and the media handed to the publisher as [`input`] does.
/// Responses to the peer are discarded. `Err` carries why the connection
/// would close; `Ok` if it is still open at the end of the input. For the
/// fuzz targets (`fuzz/`) and the regression tests that replay their finds.
pub async fn replay(
    registry: Arc<Registry>,
    peer: SocketAddr,
    input: &[u8],
    read_size: usize,
    handshake: bool,
) -> Result<(), String> {
    async fn feed(conn: &mut Conn, data: &[u8]) -> Result<(), Close> {
        conn.reader.push(data);
        loop {
            let more = conn.step()?;
            conn.out.clear();
            if !more || conn.events.len() >= EVENT_BATCH {
                conn.flush_events().await?;
            }
            if !more {
                return Ok(());
            }
        }
    }
    let mut conn = Conn::new(peer, registry);
    let mut reads = input.chunks(read_size.max(1));
    let leftover = if handshake {
        let mut h = Handshake::new(PeerType::Server);
        loop {
            let Some(data) = reads.next() else { return Ok(()) };
            match h.process_bytes(data) {
                Ok(HandshakeProcessResult::InProgress { .. }) => {}
                Ok(HandshakeProcessResult::Completed { remaining_bytes, .. }) => break remaining_bytes,
                Err(e) => return Err(format!("{:?}", Close::Handshake(format!("invalid handshake: {e}")))),
            }
        }
    } else {
        Vec::new()
    };
    let mut r = conn.start_session();
    if r.is_ok() {
        r = feed(&mut conn, &leftover).await;
    }
    for data in reads {
        if r.is_err() {
            break;
        }
        r = feed(&mut conn, data).await;
    }
    if matches!(r, Err(Close::Finished)) {
        conn.flush_events().await.ok();
    }
    r.map_err(|close| format!("{close:?}"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap as Map;

    use rml_rtmp::chunk_io::ChunkSerializer;
    use rml_rtmp::messages::{MessagePayload, RtmpMessage};
    use rml_rtmp::rml_amf0::{self, Amf0Value};
    use rml_rtmp::time::RtmpTimestamp;

    use super::*;
    use crate::config::{Application, Bind, LlHlsSettings, ProviderSettings, VirtualHost};
    use crate::store::Store;
    use crate::timeline::WallClock;

    /// Deterministic xorshift.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    fn read_all(r: &mut ChunkReader, max: usize) -> Result<Vec<Message>, String> {
        let mut v = Vec::new();
        while let Some(m) = r.next_message(max)? {
            v.push(m);
        }
        Ok(v)
    }

    fn payload(type_id: u8, timestamp: u32, stream_id: u32, data: Vec<u8>) -> MessagePayload {
        MessagePayload {
            timestamp: RtmpTimestamp::new(timestamp),
            type_id,
            message_stream_id: stream_id,
            data: data.into(),
        }
    }

    #[test]
    fn chunk_reader_matches_rml_serializer() {
        // Compressed headers (types 1, 2, 3), continuation chunks, extended
        // timestamps, chunk size changes, fed in random pieces.
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut ser = ChunkSerializer::new();
        let mut wire = Vec::new();
        let mut want = Vec::new();
        let mut ts = 0xff_fff0u32 - 2000;
        for i in 0..400u32 {
            if i % 97 == 50 {
                let size = [128u32, 4096, 60_000, 77][(i as usize / 97) % 4];
                let p = ser.set_max_chunk_size(size, RtmpTimestamp::new(0)).unwrap();
                wire.extend_from_slice(&p.bytes);
                want.push(Message {
                    timestamp: 0,
                    type_id: 1,
                    stream_id: 0,
                    payload: Bytes::copy_from_slice(&size.to_be_bytes()),
                });
            }
            let type_id = [8u8, 9, 9, 18][(next(&mut rng) % 4) as usize];
            let len = match next(&mut rng) % 5 {
                0 => 1, // rml_rtmp's serializer writes nothing for an empty message
                1 => 20,
                2 => 200,
                _ => (next(&mut rng) % 70_000) as usize,
            };
            ts = ts.wrapping_add((next(&mut rng) % 40) as u32);
            let data: Vec<u8> = (0..len).map(|_| next(&mut rng) as u8).collect();
            let p = payload(type_id, ts, 1, data.clone());
            wire.extend_from_slice(&ser.serialize(&p, i % 13 == 0, false).unwrap().bytes);
            want.push(Message { timestamp: ts, type_id, stream_id: 1, payload: data.into() });
        }
        assert!(ts > 0xff_ffff, "the test crosses into extended timestamps");
        let mut r = ChunkReader::new();
        let mut got = Vec::new();
        let mut pos = 0;
        while pos < wire.len() {
            let n = ((next(&mut rng) % 3000) as usize + 1).min(wire.len() - pos);
            r.push(&wire[pos..pos + n]);
            pos += n;
            got.extend(read_all(&mut r, MAX_MESSAGE).unwrap());
            assert!(r.buf.len() <= MAX_CHUNK_SIZE + 3000 + 18);
        }
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                (g.timestamp, g.type_id, g.stream_id, g.payload.len()),
                (w.timestamp, w.type_id, w.stream_id, w.payload.len()),
                "message {i}"
            );
            assert_eq!(g, w, "message {i}");
        }
        assert_eq!(got.len(), want.len());
        assert_eq!(r.partial_bytes, 0);
    }

    /// A chunk: basic header for `csid` with format `fmt`, then `rest`.
    fn chunk(fmt: u8, csid: u32, rest: &[u8]) -> Vec<u8> {
        let mut v = match csid {
            2..=63 => vec![(fmt << 6) | csid as u8],
            64..=319 => vec![fmt << 6, (csid - 64) as u8],
            _ => vec![(fmt << 6) | 1, ((csid - 64) & 0xff) as u8, ((csid - 64) >> 8) as u8],
        };
        v.extend_from_slice(rest);
        v
    }

    fn type0(ts: u32, len: u32, type_id: u8, sid: u32) -> Vec<u8> {
        let mut v = ts.min(0xff_ffff).to_be_bytes()[1..].to_vec();
        v.extend_from_slice(&len.to_be_bytes()[1..]);
        v.push(type_id);
        v.extend_from_slice(&sid.to_le_bytes());
        if ts >= 0xff_ffff {
            v.extend_from_slice(&ts.to_be_bytes());
        }
        v
    }

    #[test]
    fn chunk_reader_interleaving_abort_and_csid_forms() {
        let mut r = ChunkReader::new();
        let mut wire = Vec::new();
        // Two 200-byte messages interleaved on chunk streams 4 and 300 (3-byte basic header form: 70000).
        let a: Vec<u8> = (0..200).map(|i| i as u8).collect();
        let b: Vec<u8> = (0..200).map(|i| (i * 3) as u8).collect();
        let mut h = type0(10, 200, 9, 1);
        h.extend_from_slice(&a[..128]);
        wire.extend(chunk(0, 4, &h));
        let mut h = type0(0x0100_0000, 200, 8, 1);
        h.extend_from_slice(&b[..128]);
        wire.extend(chunk(0, 70_000, &h));
        wire.extend(chunk(3, 4, &a[128..]));
        let mut h = 0x0100_0000u32.to_be_bytes().to_vec(); // extended timestamp repeated in type 3
        h.extend_from_slice(&b[128..]);
        wire.extend(chunk(3, 70_000, &h));
        // A type 3 header starting a new message on 4 reuses the last delta (the type 0 timestamp: 10).
        wire.extend(chunk(3, 4, &a[..128]));
        wire.extend(chunk(3, 4, &a[128..]));
        // A 2-byte form csid, and an abort of a partial message.
        let mut h = type0(5, 300, 9, 1);
        h.extend_from_slice(&[7; 128]);
        wire.extend(chunk(0, 100, &h));
        let mut h = type0(0, 4, 2, 0);
        h.extend_from_slice(&100u32.to_be_bytes());
        wire.extend(chunk(0, 2, &h));
        r.push(&wire);
        let got = read_all(&mut r, MAX_MESSAGE).unwrap();
        let ts: Vec<(u32, u8)> = got.iter().map(|m| (m.timestamp, m.type_id)).collect();
        assert_eq!(ts, vec![(10, 9), (0x0100_0000, 8), (20, 9), (0, 2)]);
        assert_eq!(got[0].payload, a);
        assert_eq!(got[1].payload, b);
        assert_eq!(got[2].payload, a);
        assert_eq!(r.partial_bytes, 0, "the abort dropped the partial message");
    }

    #[test]
    fn chunk_reader_limits() {
        let err = |wire: Vec<u8>, max: usize| {
            let mut r = ChunkReader::new();
            r.push(&wire);
            read_all(&mut r, max).unwrap_err()
        };
        // Chunk size above the limit, and zero.
        for size in [MAX_CHUNK_SIZE as u32 + 1, 0, 0x7fff_ffff, u32::MAX] {
            let mut h = type0(0, 4, 1, 0);
            h.extend_from_slice(&size.to_be_bytes());
            assert!(err(chunk(0, 2, &h), MAX_MESSAGE).contains("chunk size"));
        }
        // Message length over the limit (before and after publishing).
        let e = err(chunk(0, 3, &type0(0, 65_537, 20, 0)), MAX_COMMAND_MESSAGE);
        assert!(e.contains("65537 bytes") && e.contains("before publishing"), "{e}");
        assert!(err(chunk(0, 3, &type0(0, 0xff_ffff, 9, 1)), MAX_MESSAGE).contains("limit"));
        // Compressed header on an unknown chunk stream; new header mid-message.
        assert!(err(chunk(1, 5, &[0; 7]), MAX_MESSAGE).contains("without a previous type 0"));
        let mut w = chunk(0, 5, &type0(0, 300, 9, 1));
        w.extend_from_slice(&[0; 128]);
        w.extend(chunk(0, 5, &type0(0, 10, 9, 1)));
        assert!(err(w, MAX_MESSAGE).contains("middle of a message"));
        // ... unless it repeats the message's length and type (a continuation, as ffmpeg reads it).
        let mut r = ChunkReader::new();
        let mut w = chunk(0, 5, &type0(7, 130, 9, 1));
        w.extend_from_slice(&[1; 128]);
        w.extend(chunk(0, 5, &type0(99, 130, 9, 1)));
        w.extend_from_slice(&[2; 2]);
        r.push(&w);
        let m = read_all(&mut r, MAX_MESSAGE).unwrap();
        assert_eq!((m.len(), m[0].timestamp, m[0].payload.len()), (1, 7, 130));
        // Too many chunk streams.
        let mut w = Vec::new();
        for csid in 2..(MAX_CHUNK_STREAMS as u32 + 3) {
            w.extend(chunk(0, csid, &type0(0, 0, 9, 1)));
        }
        assert!(err(w, MAX_MESSAGE).contains("chunk streams"));
        // Partial messages together over the budget.
        let mut w = Vec::new();
        for csid in 3..20 {
            let mut h = type0(0, 60_000, 9, 1);
            h.extend_from_slice(&[0; 128]);
            w.extend(chunk(0, csid, &h));
        }
        let mut r = ChunkReader::new();
        r.chunk_size = 16_384;
        let mut w2 = Vec::new();
        for csid in 3..10 {
            let mut h = type0(0, 60_000, 9, 1);
            h.extend_from_slice(&[0; 16_384]);
            w2.extend(chunk(0, csid, &h));
        }
        r.push(&w2);
        assert!(read_all(&mut r, MAX_COMMAND_MESSAGE).unwrap_err().contains("incomplete messages"));
        // Incomplete input is not an error and consumes nothing.
        let mut r = ChunkReader::new();
        r.push(&w[..20]);
        assert_eq!(read_all(&mut r, MAX_MESSAGE), Ok(vec![]));
        assert_eq!(r.buf.len(), 20);
    }

    fn amf(values: Vec<Amf0Value>) -> Vec<u8> {
        rml_amf0::serialize(&values).unwrap()
    }

    fn connect_command(app: &str) -> Vec<u8> {
        let mut obj = Map::new();
        obj.insert("app".to_string(), Amf0Value::Utf8String(app.into()));
        obj.insert("tcUrl".to_string(), Amf0Value::Utf8String(format!("rtmp://127.0.0.1/{app}")));
        amf(vec![Amf0Value::Utf8String("connect".into()), Amf0Value::Number(1.0), Amf0Value::Object(obj)])
    }

    #[test]
    fn amf_checks() {
        assert_eq!(check_command(&connect_command("app")), Ok("connect".into()));
        let publish = amf(vec![
            Amf0Value::Utf8String("publish".into()),
            Amf0Value::Number(5.0),
            Amf0Value::Null,
            Amf0Value::Utf8String("stream".into()),
            Amf0Value::Utf8String("live".into()),
            Amf0Value::StrictArray(vec![Amf0Value::Boolean(true), Amf0Value::Undefined]),
        ]);
        assert_eq!(check_command(&publish), Ok("publish".into()));
        // Fewer than 3 values would make rml_rtmp's command parser panic.
        let short = amf(vec![Amf0Value::Utf8String("connect".into()), Amf0Value::Number(1.0)]);
        assert!(check_command(&short).unwrap_err().contains("2 values"));
        assert!(check_command(&[]).is_err());
        assert!(check_command(&amf(vec![Amf0Value::Number(1.0), Amf0Value::Number(1.0), Amf0Value::Null])).is_err());
        let s = Amf0Value::Utf8String("x".into());
        assert!(check_command(&amf(vec![s.clone(), s.clone(), Amf0Value::Null])).is_err());
        // Truncations of a valid command are errors or fewer values, never panics.
        let full = connect_command("app");
        for len in 0..full.len() {
            assert!(check_command(&full[..len]).is_err(), "prefix {len}");
        }
        // Deep nesting is refused (rml_amf0 would recurse once per level).
        let mut deep = amf(vec![Amf0Value::Utf8String("connect".into()), Amf0Value::Number(1.0)]);
        for _ in 0..100_000 {
            deep.extend_from_slice(&[0x03, 0x00, 0x01, b'a']);
        }
        assert!(check_command(&deep).unwrap_err().contains("nesting"));
        let mut deep = amf(vec![Amf0Value::Utf8String("connect".into()), Amf0Value::Number(1.0)]);
        for _ in 0..100_000 {
            deep.extend_from_slice(&[0x0a, 0, 0, 0, 1]);
        }
        assert!(check_command(&deep).unwrap_err().contains("nesting"));
        // Unsupported types (AMF3 switch, dates, long strings).
        let mut odd = amf(vec![Amf0Value::Utf8String("connect".into()), Amf0Value::Number(1.0)]);
        odd.push(0x11);
        assert!(check_command(&odd).unwrap_err().contains("unsupported"));
        // Random bytes after a valid prefix: whatever check_command accepts, rml_amf0 parses.
        let mut rng = 42u64;
        for _ in 0..20_000 {
            let mut b = full.clone();
            for _ in 0..1 + next(&mut rng) % 3 {
                let i = (next(&mut rng) as usize) % b.len();
                b[i] = next(&mut rng) as u8;
            }
            if check_command(&b).is_ok() {
                let mut c = std::io::Cursor::new(&b[..]);
                let _ = rml_amf0::deserialize(&mut c);
            }
        }
    }

    #[test]
    fn timestamp_unwrapping() {
        let mut u = Unwrapper::default();
        assert_eq!(u.unwrap(1, 0xffff_fff0), 0xffff_fff0);
        assert_eq!(u.unwrap(1, 0x10), 0x1_0000_0010, "forward across the wrap");
        assert_eq!(u.unwrap(1, 0xffff_fffe), 0xffff_fffe, "small step back across the wrap");
        // A new media type starts near the connection's latest value.
        assert_eq!(u.unwrap(0, 0x5), 0x1_0000_0005);
        assert_eq!(u.unwrap(0, 0x7fff_0000), 0x1_7fff_0000);
        // Two wraps later.
        let mut v = Unwrapper::default();
        let mut t = 0u32;
        let mut want = 0i64;
        for _ in 0..600 {
            t = t.wrapping_add(0x0100_0000 + 7);
            want += 0x0100_0000 + 7;
            assert_eq!(v.unwrap(2, t), want);
        }
        assert!(want > 1 << 33);
        // Backwards from the first value: negative.
        let mut w = Unwrapper::default();
        w.unwrap(0, 5);
        assert_eq!(w.unwrap(0, 0xffff_fff0), -16);
        assert_eq!(nearest(i64::MAX - 3, 0), i64::MAX, "saturates");
        let _ = nearest(i64::MIN, u32::MAX);
        let _ = nearest(i64::MAX, u32::MAX);
    }

    fn test_config() -> Config {
        let llhls = LlHlsSettings {
            origin_mode: true,
            session_key_secret: None,
            server_time_based_segment_numbering: true,
            chunk_duration_ms: 500,
            part_hold_back_ms: 1500,
            segment_duration_ms: 2000,
            segment_count: 10,
            cross_domains: vec![],
        };
        let app = |name: &str, rtmp: bool| Application {
            name: name.into(),
            rtmp: rtmp.then(ProviderSettings::default),
            srt: None,
            mpegts: None,
            llhls: Some(llhls.clone()),
            hls: None,
            publish_keys: Default::default(),
        };
        Config {
            name: "t".into(),
            ip: [127, 0, 0, 1].into(),
            bind: Bind { rtmp: None, srt: None, mpegts: vec![], llhls: None },
            vhosts: vec![VirtualHost {
                name: "default".into(),
                apps: vec![app("app", true), app("nortmp", false)],
                signed_policy: None,
            }],
            api: None,
            http: Default::default(),
            pair: None,
        }
    }

    #[test]
    fn names() {
        let c = test_config();
        assert_eq!(strip_query("s?key=1"), "s");
        assert_eq!(strip_query("s"), "s");
        for (raw, want) in [
            ("app", "app"),
            ("app/", "app"),
            ("app?token=x", "app"),
            ("default/app", "app"),
            ("#default#app", "app"),
            ("other/app", "other/app"),
            ("default/nope", "default/nope"),
            ("x", "x"),
        ] {
            assert_eq!(resolve_app(&c, raw), want, "{raw}");
        }
    }

    #[test]
    fn aggregate() {
        let mut body = Vec::new();
        for (t, ts, data) in [(9u8, 1000u32, &b"abc"[..]), (8, 1020, b"de"), (9, 1040, b"")] {
            body.push(t);
            body.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
            body.extend_from_slice(&ts.to_be_bytes()[1..]);
            body.push(0);
            body.extend_from_slice(&[0, 0, 0]);
            body.extend_from_slice(data);
            body.extend_from_slice(&(data.len() as u32 + 11).to_be_bytes());
        }
        let m = Message { timestamp: 50, type_id: 22, stream_id: 1, payload: body.clone().into() };
        let subs = split_aggregate(&m).unwrap();
        let got: Vec<(u8, u32, &[u8])> = subs.iter().map(|s| (s.type_id, s.timestamp, &s.payload[..])).collect();
        assert_eq!(got, vec![(9, 50, &b"abc"[..]), (8, 70, b"de"), (9, 90, b"")]);
        for len in 0..body.len() {
            let m = Message { payload: Bytes::copy_from_slice(&body[..len]), ..m.clone() };
            let _ = split_aggregate(&m);
        }
    }

    fn flv_tags() -> Vec<lockstep_packager::flv::FlvTag> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/golden/avc30_gop1/input.flv");
        let file = Bytes::from(std::fs::read(path).expect("golden input"));
        lockstep_packager::flv::read_flv_file(&file, "input").expect("golden FLV")
    }

    /// What a publisher sends after the handshake (ffmpeg's command
    /// sequence, pipelined), with chunk size 4096, then `tags`.
    fn publisher_bytes(app: &str, stream: &str, tags: &[lockstep_packager::flv::FlvTag]) -> Vec<u8> {
        let mut ser = ChunkSerializer::new();
        let mut w = ser.set_max_chunk_size(4096, RtmpTimestamp::new(0)).unwrap().bytes;
        let cmd = |name: &str, tx: f64, args: Vec<Amf0Value>| RtmpMessage::Amf0Command {
            command_name: name.into(),
            transaction_id: tx,
            command_object: Amf0Value::Null,
            additional_arguments: args,
        };
        let s = |v: &str| Amf0Value::Utf8String(v.into());
        let mut msgs = vec![(
            0,
            RtmpMessage::Unknown { type_id: 20, data: connect_command(app).into() }
                .into_message_payload(RtmpTimestamp::new(0), 0),
        )];
        for (sid, m) in [
            (0, cmd("releaseStream", 2.0, vec![s(stream)])),
            (0, cmd("FCPublish", 3.0, vec![s(stream)])),
            (0, cmd("createStream", 4.0, vec![])),
            (1, cmd("publish", 5.0, vec![s(stream), s("live")])),
        ] {
            msgs.push((sid, m.into_message_payload(RtmpTimestamp::new(0), sid)));
        }
        for (_, p) in msgs {
            w.extend(ser.serialize(&p.unwrap(), false, false).unwrap().bytes);
        }
        for t in tags {
            let p = payload(t.tag_type, t.timestamp_ms as u32, 1, t.data.to_vec());
            w.extend(ser.serialize(&p, false, false).unwrap().bytes);
        }
        w
    }

    fn unpublish_bytes(stream: &str) -> Vec<u8> {
        // A fresh serializer: type 0 headers only.
        let mut ser = ChunkSerializer::new();
        let m = RtmpMessage::Amf0Command {
            command_name: "FCUnpublish".into(),
            transaction_id: 6.0,
            command_object: Amf0Value::Null,
            additional_arguments: vec![Amf0Value::Utf8String(stream.into())],
        };
        ser.serialize(&m.into_message_payload(RtmpTimestamp::new(0), 0).unwrap(), true, false).unwrap().bytes
    }

    fn registry() -> (Arc<Registry>, CancellationToken) {
        let shutdown = CancellationToken::new();
        let r = Registry::new(Arc::new(test_config()), Arc::new(Store::new()), Arc::new(WallClock), shutdown.clone());
        (r, shutdown)
    }

    fn key(stream: &str) -> StreamKey {
        StreamKey { app: "app".into(), stream: stream.into() }
    }

    /// Drive a Conn without sockets; the result of the first error.
    fn feed(conn: &mut Conn, bytes: &[u8]) -> Result<(), Close> {
        conn.reader.push(bytes);
        while conn.step()? {}
        Ok(())
    }

    #[tokio::test]
    async fn conn_publishes_and_rejects() {
        let (reg, _shutdown) = registry();
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let tags = flv_tags();
        let mut a = Conn::new(peer, reg.clone());
        a.start_session().unwrap();
        feed(&mut a, &publisher_bytes("app", "s1?key=x", &tags[..10])).unwrap();
        assert_eq!(a.publishing.as_ref().map(|p| p.key.clone()), Some(key("s1")));
        assert_eq!(tags[0].tag_type, 18, "the input starts with onMetaData");
        let hints: Vec<Option<u32>> = a
            .events
            .iter()
            .filter_map(|e| match e {
                DemuxEvent::Track(t) => Some(t.bitrate_hint),
                DemuxEvent::Sample(_) => None,
            })
            .collect();
        assert_eq!(hints.len(), 2, "track events from the sequence headers");
        assert!(hints.iter().all(Option::is_some), "bitrate hints from onMetaData: {hints:?}");
        assert!(!a.out.is_empty(), "responses");
        assert_eq!(reg.live_streams(), vec![key("s1")]);

        // A second publisher of the same stream is rejected; the first stays.
        let mut b = Conn::new(peer, reg.clone());
        b.start_session().unwrap();
        b.out.clear();
        assert!(matches!(feed(&mut b, &publisher_bytes("app", "s1", &[])), Err(Close::Rejected)));
        let out = String::from_utf8_lossy(&b.out).into_owned();
        assert!(out.contains("_error") && out.contains("already live"), "{out}");
        assert!(b.publishing.is_none());
        assert_eq!(reg.live_streams(), vec![key("s1")]);

        for (app, stream) in [("nope", "s2"), ("nortmp", "s2"), ("app", "bad/name"), ("app", "")] {
            let mut c = Conn::new(peer, reg.clone());
            c.start_session().unwrap();
            assert!(matches!(feed(&mut c, &publisher_bytes(app, stream, &[])), Err(Close::Rejected)), "{app}/{stream}");
        }
        assert_eq!(reg.live_streams(), vec![key("s1")]);

        // FCUnpublish ends it.
        assert!(matches!(feed(&mut a, &unpublish_bytes("s1")), Ok(()) | Err(Close::Finished)));
    }

    /// Once publishing, the connection acknowledges every window of bytes
    /// and answers pings itself; everything it writes, the session's
    /// messages included, still parses as one valid chunk stream.
    #[tokio::test]
    async fn conn_acknowledges_and_answers_pings_while_publishing() {
        use rml_rtmp::chunk_io::ChunkDeserializer;
        let (reg, _shutdown) = registry();
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let tags = flv_tags();
        let mut c = Conn::new(peer, reg.clone());
        c.start_session().unwrap();
        let mut out = std::mem::take(&mut c.out);
        let mut sent = 0u64;
        let mut send = |c: &mut Conn, bytes: &[u8], out: &mut Vec<u8>| {
            c.received(bytes.len());
            sent += bytes.len() as u64;
            feed(c, bytes).unwrap();
            out.append(&mut c.out);
        };
        let mut ser = ChunkSerializer::new();
        let window = ser
            .serialize(
                &RtmpMessage::WindowAcknowledgement { size: 4096 }
                    .into_message_payload(RtmpTimestamp::new(0), 0)
                    .unwrap(),
                true,
                false,
            )
            .unwrap()
            .bytes;
        send(&mut c, &window, &mut out);
        let publish = publisher_bytes("app", "acks", &tags[..40]);
        assert!(publish.len() > 3 * 4096, "enough media for several windows");
        for piece in publish.chunks(1000) {
            send(&mut c, piece, &mut out);
        }
        assert!(c.publishing.is_some());
        let ping = [0x02, 0, 0, 0, 0, 0, 6, 4, 0, 0, 0, 0, 0, 6, 0x12, 0x34, 0x56, 0x78];
        send(&mut c, &ping, &mut out);
        let total = sent;

        let mut de = ChunkDeserializer::new();
        let (mut acks, mut pongs, mut input) = (Vec::new(), Vec::new(), &out[..]);
        while let Some(m) = de.get_next_message(input).unwrap() {
            input = &[];
            match m.to_rtmp_message().unwrap() {
                RtmpMessage::SetChunkSize { size } => de.set_max_chunk_size(size as usize).unwrap(),
                RtmpMessage::Acknowledgement { sequence_number } => acks.push(sequence_number),
                RtmpMessage::UserControl {
                    event_type: rml_rtmp::messages::UserControlEventType::PingResponse,
                    timestamp,
                    ..
                } => pongs.push(timestamp.map(|t| t.value)),
                _ => {}
            }
        }
        assert_eq!(pongs, vec![Some(0x1234_5678)]);
        assert!(acks.len() >= 3, "acknowledgements: {acks:?}");
        assert!(acks.windows(2).all(|w| w[1] - w[0] >= 4096), "one per window: {acks:?}");
        assert!(acks.iter().all(|&a| u64::from(a) <= total), "{acks:?} <= {total}");
        assert!(c.events.len() >= 30, "media reached the demuxer: {} events", c.events.len());
    }

    #[tokio::test]
    async fn conn_drops_unsupported_codecs() {
        let (reg, _shutdown) = registry();
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let vp6 = lockstep_packager::flv::FlvTag {
            tag_type: 9,
            timestamp_ms: 0,
            data: Bytes::from_static(&[0x14, 0, 0, 0, 0]),
        };
        let mut c = Conn::new(peer, reg.clone());
        c.start_session().unwrap();
        assert!(matches!(feed(&mut c, &publisher_bytes("app", "s", &[vp6])), Err(Close::Dropped)));
    }

    #[tokio::test]
    async fn conn_survives_mutated_input() {
        let (reg, _shutdown) = registry();
        let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let tags = flv_tags();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let base: Vec<Vec<u8>> = ["app", "x"].iter().map(|a| publisher_bytes(a, "fuzz", &tags[..6])).collect();
        for round in 0..3000u32 {
            let mut b = base[(round % 2) as usize].clone();
            let flips = 1 + next(&mut rng) % 6;
            for _ in 0..flips {
                let i = (next(&mut rng) as usize) % b.len();
                b[i] = next(&mut rng) as u8;
            }
            if round % 3 == 0 {
                let cut = (next(&mut rng) as usize) % b.len();
                b.truncate(cut);
            }
            let mut c = Conn::new(peer, reg.clone());
            c.start_session().unwrap();
            let _ = feed(&mut c, &b);
            // The publisher (if any) drops here, ending the stream.
        }
    }

    /// End to end over TCP: handshake, publish, media into the store; bad
    /// peers alongside.
    #[tokio::test]
    async fn serve_end_to_end() {
        let (reg, shutdown) = registry();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, reg.clone(), shutdown.clone()));

        async fn handshake(addr: SocketAddr) -> TcpStream {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let mut hs = Handshake::new(PeerType::Client);
            s.write_all(&hs.generate_outbound_p0_and_p1().unwrap()).await.unwrap();
            let mut buf = vec![0u8; 8192];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0, "server closed during the handshake");
                match hs.process_bytes(&buf[..n]).unwrap() {
                    HandshakeProcessResult::InProgress { response_bytes } => {
                        s.write_all(&response_bytes).await.unwrap()
                    }
                    HandshakeProcessResult::Completed { response_bytes, .. } => {
                        s.write_all(&response_bytes).await.unwrap();
                        return s;
                    }
                }
            }
        }
        /// Read until the server closes (Ok) or `limit` passes (Err).
        async fn closed(s: &mut TcpStream, limit: Duration) -> Result<(), ()> {
            let mut buf = vec![0u8; 8192];
            tokio::time::timeout(limit, async {
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            })
            .await
            .map_err(drop)
        }

        let tags = flv_tags();
        let mut a = handshake(addr).await;
        a.write_all(&publisher_bytes("app", "live", &tags)).await.unwrap();
        let store = reg.store().clone();
        let deadline = Instant::now() + Duration::from_secs(20);
        while store.get(&key("live"), "llhls.m3u8").is_none() {
            assert!(Instant::now() < deadline, "no playlist");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Random bytes, a truncated handshake, a huge chunk size, invalid AMF: closed, nothing else changes.
        let mut junk = TcpStream::connect(addr).await.unwrap();
        junk.write_all(&[0x17; 5000]).await.unwrap();
        assert!(closed(&mut junk, Duration::from_secs(5)).await.is_ok());
        let mut cut = TcpStream::connect(addr).await.unwrap();
        cut.write_all(&[3; 700]).await.unwrap();
        drop(cut);
        let mut big = handshake(addr).await;
        let mut h = type0(0, 4, 1, 0);
        h.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
        big.write_all(&chunk(0, 2, &h)).await.unwrap();
        assert!(closed(&mut big, Duration::from_secs(5)).await.is_ok());
        let mut bad_amf = handshake(addr).await;
        let mut h = type0(0, 12, 20, 0);
        h.extend_from_slice(&[2, 0, 7, b'c', b'o', b'n', b'n', b'e', b'c', b't', 0x0b, 0]);
        bad_amf.write_all(&chunk(0, 3, &h)).await.unwrap();
        assert!(closed(&mut bad_amf, Duration::from_secs(5)).await.is_ok());
        let mut second = handshake(addr).await;
        second.write_all(&publisher_bytes("app", "live", &tags[..5])).await.unwrap();
        assert!(closed(&mut second, Duration::from_secs(5)).await.is_ok());
        assert_eq!(reg.live_streams(), vec![key("live")]);

        // The publisher's end (FCUnpublish) ends the stream and closes the connection.
        a.write_all(&unpublish_bytes("live")).await.unwrap();
        assert!(closed(&mut a, Duration::from_secs(5)).await.is_ok());
        let deadline = Instant::now() + Duration::from_secs(5);
        while store.get(&key("live"), "llhls.m3u8").is_some() {
            assert!(Instant::now() < deadline, "stream still there");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        // Shutdown closes idle connections and stops the server.
        let mut idle = handshake(addr).await;
        shutdown.cancel();
        assert!(closed(&mut idle, Duration::from_secs(5)).await.is_ok());
        tokio::time::timeout(Duration::from_secs(5), server).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn connection_limit() {
        let (reg, shutdown) = registry();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve_limited(listener, reg.clone(), shutdown.clone(), 2));
        let mut a = TcpStream::connect(addr).await.unwrap();
        let mut b = TcpStream::connect(addr).await.unwrap();
        let mut c = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 16];
        let r = tokio::time::timeout(Duration::from_secs(5), c.read(&mut buf)).await.expect("closed at once");
        assert!(matches!(r, Ok(0) | Err(_)));
        // The first two are served (still open, waiting for their handshake).
        for s in [&mut a, &mut b] {
            assert!(tokio::time::timeout(Duration::from_millis(200), s.read(&mut buf)).await.is_err());
        }
        // A slot frees when a connection closes.
        drop(a);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut d = TcpStream::connect(addr).await.unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(300), d.read(&mut buf)).await.is_err());
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), server).await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn publish_timeout() {
        let (reg, shutdown) = registry();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, reg.clone(), shutdown.clone()));
        let start = Instant::now();
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut hs = Handshake::new(PeerType::Client);
        s.write_all(&hs.generate_outbound_p0_and_p1().unwrap()).await.unwrap();
        let mut buf = vec![0u8; 8192];
        loop {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0);
            if let HandshakeProcessResult::Completed { response_bytes, .. } = hs.process_bytes(&buf[..n]).unwrap() {
                s.write_all(&response_bytes).await.unwrap();
                break;
            }
        }
        // Connected, never publishes: closed after PUBLISH_TIMEOUT.
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let t = start.elapsed();
        assert!(t >= PUBLISH_TIMEOUT && t < PUBLISH_TIMEOUT + Duration::from_secs(1), "{t:?}");
        shutdown.cancel();
        server.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn connection_timeouts() {
        let (reg, shutdown) = registry();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, reg.clone(), shutdown.clone()));
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let start = Instant::now();
        let mut buf = [0u8; 16];
        assert_eq!(silent.read(&mut buf).await.unwrap_or(0), 0);
        assert!(start.elapsed() >= HANDSHAKE_TIMEOUT && start.elapsed() < HANDSHAKE_TIMEOUT + Duration::from_secs(1));
        shutdown.cancel();
        server.await.unwrap();
    }
}
