//! SRT provider: SRT callers publish MPEG-TS (listener mode, `srt-tokio`).
//!
//! The stream id names the stream, in any of these forms:
//! - `#!::r=app/stream,m=publish`: SRT access control syntax; keys in any
//!   order, unknown keys ignored, `m` absent means publish, `m=request`
//!   (playback) is refused;
//! - `app/stream`;
//! - `srt://host:port/app/stream`, as OvenMediaEngine accepts it, usually
//!   percent-encoded (`srt%3A%2F%2Fhost%3A9999%2Fapp%2Fstream`).
//!
//! Every stream id is percent-decoded first. A query after the stream name
//! (`app/stream?key=...`, `#!::r=app/stream?key=...,m=publish`) carries
//! credentials: it is checked by [`super::auth`] and removed before the
//! stream id is parsed or logged. A connection request is checked before it
//! is accepted (stream id, application, SRT enabled, publish key and signed
//! policy, stream not live, connection limit) and refused with an SRT reject
//! reason and one log line; the handshake then applies the application's
//! `Providers/SRT/Passphrase` (the key is chosen per request, after the
//! stream id is known), and the stream is published once the caller is
//! connected. The payload is MPEG-TS ([`TsFeed`]).
//!
//! srt-protocol 0.4 panics on some handshakes (an encrypting caller
//! accepted without a key, handshake extensions it does not implement, an
//! empty stream id block, ...), and a panic stops srt-tokio's listener task
//! and every connection on it. So the provider owns the public UDP socket
//! and relays each caller through its own loopback socket to srt-tokio's
//! listener on an internal port ([`relay`]), dropping what [`inspect`]
//! finds srt-protocol would panic on, and noting which callers send keying
//! material (libsrt without `pbkeylen` announces no key length). Should the
//! listener stop anyway, it is started again.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use srt_tokio::access::{AcceptParameters, RejectReason, ServerRejectReason};
use srt_tokio::options::{ByteCount, KeySize, SocketOptions};
use srt_tokio::{ConnectionRequest, SrtIncoming, SrtListener, SrtSocket};
use tokio::net::UdpSocket;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::mpegts::{TsFeed, FLUSH_LIMIT};
use super::{auth, valid_name, Provider, PublishError, Publisher, Registry};
use crate::store::StreamKey;

/// Connections (including handshakes being accepted) at once; requests
/// beyond are refused (`Overload`).
pub const MAX_CONNECTIONS: usize = 200;
/// Longest stream id (the SRT limit).
pub const MAX_STREAM_ID: usize = 512;
/// A handshake must complete within this once the request is accepted.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(5);
/// A stream that is still ending may be published again within this.
const ENDING_WAIT: Duration = Duration::from_secs(3);
/// Wait before starting the listener again after it stopped unexpectedly.
const REBIND_DELAY: Duration = Duration::from_secs(1);
/// A caller's tunnel closes after this long without a datagram from it.
const TUNNEL_IDLE: Duration = Duration::from_secs(10);
/// Largest datagram relayed from callers.
const MAX_DATAGRAM: usize = 64 * 1024;
/// Largest datagram relayed from the listener (srt-tokio sends packets of
/// at most 1500 bytes).
const TUNNEL_DATAGRAM: usize = 4096;
/// Socket buffer sizes asked for the public socket (the kernel may cap them).
const UDP_BUFFER: u64 = 4 << 20;

/// The stream a stream id names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub app: String,
    pub stream: String,
}

/// Why a stream id was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StreamIdError {
    #[error("no stream id, or one srt-tokio could not read (over 512 bytes, not UTF-8): use app/stream or #!::r=app/stream,m=publish")]
    Missing,
    #[error("empty stream id: use app/stream or #!::r=app/stream,m=publish")]
    Empty,
    #[error("stream id is {0} bytes long (at most 512)")]
    TooLong(usize),
    #[error("stream id has bad percent-encoding")]
    BadEncoding,
    #[error("m=request: playback is not served over SRT (publish with m=publish)")]
    Request,
    #[error("unsupported mode m={0}: only m=publish is accepted")]
    Mode(String),
    #[error("access control entry {0:?} has no '='")]
    NoValue(String),
    #[error("access control key {0:?} appears twice")]
    Duplicate(String),
    #[error("no resource: use #!::r=app/stream,m=publish")]
    NoResource,
    #[error("{0:?} is not app/stream")]
    NotAppStream(String),
    #[error("invalid name in {0:?}: application and stream names use letters, digits, '.', '_' and '-'")]
    BadName(String),
}

impl StreamIdError {
    fn reject_reason(&self) -> RejectReason {
        match self {
            StreamIdError::Request | StreamIdError::Mode(_) => RejectReason::Server(ServerRejectReason::BadMode),
            _ => RejectReason::Server(ServerRejectReason::BadRequest),
        }
    }
}

/// Parse a stream id (see the module documentation).
pub fn parse_stream_id(raw: &str) -> Result<Target, StreamIdError> {
    if raw.is_empty() {
        return Err(StreamIdError::Empty);
    }
    if raw.len() > MAX_STREAM_ID {
        return Err(StreamIdError::TooLong(raw.len()));
    }
    let decoded = percent_decode(raw)?;
    if let Some(acl) = decoded.strip_prefix("#!::") {
        return parse_access_control(acl);
    }
    let scheme = "srt://";
    if decoded.get(..scheme.len()).is_some_and(|s| s.eq_ignore_ascii_case(scheme)) {
        let rest = &decoded[scheme.len()..];
        // host[:port]/app/stream[?query]
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let Some((_host, path)) = rest.split_once('/') else {
            return Err(StreamIdError::NotAppStream(decoded.clone()));
        };
        return app_stream(path);
    }
    app_stream(&decoded)
}

/// `#!::` already stripped: `key=value` entries separated by commas.
fn parse_access_control(acl: &str) -> Result<Target, StreamIdError> {
    let mut resource = None;
    let mut mode = None;
    for entry in acl.split(',') {
        if entry.is_empty() {
            continue;
        }
        let Some((key, value)) = entry.split_once('=') else {
            return Err(StreamIdError::NoValue(entry.to_string()));
        };
        let slot = match key {
            "r" => &mut resource,
            "m" => &mut mode,
            _ => continue, // u, s, h, t and unknown keys
        };
        if slot.replace(value).is_some() {
            return Err(StreamIdError::Duplicate(key.to_string()));
        }
    }
    match mode {
        None => {}
        Some(m) if m.eq_ignore_ascii_case("publish") => {}
        Some(m) if m.eq_ignore_ascii_case("request") => return Err(StreamIdError::Request),
        Some(m) => return Err(StreamIdError::Mode(m.to_string())),
    }
    app_stream(resource.ok_or(StreamIdError::NoResource)?)
}

/// `app/stream`, both valid names.
fn app_stream(path: &str) -> Result<Target, StreamIdError> {
    let mut parts = path.split('/');
    let (Some(app), Some(stream), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(StreamIdError::NotAppStream(path.to_string()));
    };
    if app.is_empty() || stream.is_empty() {
        return Err(StreamIdError::NotAppStream(path.to_string()));
    }
    if !valid_name(app) || !valid_name(stream) {
        return Err(StreamIdError::BadName(path.to_string()));
    }
    Ok(Target { app: app.to_string(), stream: stream.to_string() })
}

/// `%XX` → byte; the result must be UTF-8.
pub(super) fn percent_decode(s: &str) -> Result<String, StreamIdError> {
    if !s.contains('%') {
        return Ok(s.to_string());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or(StreamIdError::BadEncoding)?;
            let hex = std::str::from_utf8(hex).map_err(|_| StreamIdError::BadEncoding)?;
            if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                return Err(StreamIdError::BadEncoding);
            }
            out.push(u8::from_str_radix(hex, 16).map_err(|_| StreamIdError::BadEncoding)?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| StreamIdError::BadEncoding)
}

/// Accept SRT publishers on `addr` until `shutdown`.
pub async fn serve(addr: SocketAddr, registry: Arc<Registry>, shutdown: CancellationToken) -> std::io::Result<()> {
    serve_with(addr, registry, shutdown, MAX_CONNECTIONS).await
}

/// [`serve`] with at most `max_connections` connections at once.
///
/// srt-tokio's listener does not own `addr`: a [`relay`] does, and passes
/// each caller's packets through its own loopback socket to a listener on
/// an internal port, after [`inspect`] has dropped the packets srt-protocol
/// would panic on (a panic there stops the listener task, and with it every
/// SRT connection).
async fn serve_with(
    addr: SocketAddr,
    registry: Arc<Registry>,
    shutdown: CancellationToken,
    max_connections: usize,
) -> std::io::Result<()> {
    let public = Arc::new(bind_public(addr).await?);
    let limit = Arc::new(Semaphore::new(max_connections));
    let callers: Callers = Arc::default();
    let max_tunnels = max_connections.saturating_mul(2).saturating_add(64);
    let mut conns = JoinSet::new();
    loop {
        let (mut listener, mut incoming, internal) = match bind_internal().await {
            Ok(l) => l,
            Err(e) => {
                error!(provider = "SRT", %addr, error = %e, "binding the internal SRT listener failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(REBIND_DELAY) => continue,
                }
            }
        };
        // Not a child of `shutdown`: at shutdown the connections close
        // (through the relay) before the relay stops.
        let generation = CancellationToken::new();
        let relay = tokio::spawn(relay(public.clone(), internal, callers.clone(), generation.clone(), max_tunnels));
        let stopped = loop {
            tokio::select! {
                () = shutdown.cancelled() => break true,
                request = incoming.incoming().next() => match request {
                    Some(request) => on_request(request, &registry, &callers, &limit, &mut conns, &shutdown).await,
                    None => break false,
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        };
        if stopped {
            while conns.join_next().await.is_some() {}
            // `close` unwraps the listener task's result: keep a panic there
            // out of this task.
            let _ =
                tokio::time::timeout(Duration::from_secs(1), tokio::spawn(async move { listener.close().await })).await;
            generation.cancel();
            let _ = relay.await;
            break;
        }
        generation.cancel();
        let _ = relay.await;
        // srt-tokio's listener task ended on its own: it panicked on
        // something [`inspect`] lets through. Its connections end with it;
        // start a new one.
        error!(provider = "SRT", %addr, "the SRT listener stopped unexpectedly; starting it again");
        drop(listener);
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(REBIND_DELAY) => {}
        }
    }
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// The public SRT socket (larger buffers than the default, like srt-tokio's
/// own sockets).
async fn bind_public(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let mut options = SocketOptions::default();
    options.connect.local = addr;
    options.connect.udp_recv_buffer_size = ByteCount(UDP_BUFFER);
    options.connect.udp_send_buffer_size = ByteCount(UDP_BUFFER);
    srt_tokio::bind_socket(&options).await
}

/// srt-tokio's listener on a loopback port only the relay talks to.
async fn bind_internal() -> std::io::Result<(SrtListener, SrtIncoming, SocketAddr)> {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let internal = socket.local_addr()?;
    let (listener, incoming) = SrtListener::builder().socket(socket).bind(internal).await?;
    Ok((listener, incoming, internal))
}

/// What the relay knows of a caller, by the tunnel address srt-tokio sees
/// as the caller's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Caller {
    /// The caller's real address.
    peer: SocketAddr,
    /// Its conclusion handshake carries keying material (a passphrase is
    /// set), whatever key length it announces.
    encrypts: bool,
}

type Callers = Arc<Mutex<HashMap<SocketAddr, Caller>>>;

/// How [`inspect`] judges a datagram from a caller.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Pass it on (srt-protocol handles it or rejects it without panicking).
    Pass,
    /// A handshake induction: the only packet that opens a tunnel.
    Induction,
    /// A conclusion handshake; `encrypts` when it carries keying material.
    Conclusion { encrypts: bool },
    /// srt-protocol 0.4 would panic on it (or it has no use here): drop it.
    Drop(&'static str),
}

fn be_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Judge a datagram from a caller before srt-protocol parses it, mirroring
/// its parser where it panics (srt-protocol 0.4.4): a v5 handshake
/// extension other than HS, KM or a non-empty stream id (`unimplemented!`,
/// or a read past the end of an empty stream id), a KM response in a
/// caller's handshake (`unimplemented!` in the listener), and SRT control
/// packets other than key material (empty stream id, group, congestion and
/// filter bodies). Public for the fuzz targets (`fuzz/`).
pub fn inspect(p: &[u8]) -> Verdict {
    const HEADER: usize = 16;
    const HANDSHAKE: usize = 48;
    let Some(word0) = be_u16(p, 0) else { return Verdict::Pass };
    if p.len() < HEADER || word0 & 0x8000 == 0 {
        return Verdict::Pass; // too short for srt-protocol (an error, no panic), or data
    }
    let control_type = word0 & 0x7fff;
    let subtype = be_u16(p, 2).unwrap_or_default();
    match control_type {
        0x7fff if matches!(subtype, 3 | 4) => return Verdict::Pass,
        0x7fff => return Verdict::Drop("SRT control packet other than key material"),
        0 => {}
        _ => return Verdict::Pass,
    }
    let cif = p.get(HEADER..).unwrap_or_default();
    if cif.len() < HANDSHAKE {
        return Verdict::Pass; // a parse error
    }
    let shake_type = be_i32(cif, 20).unwrap_or_default();
    if shake_type == 1 {
        return Verdict::Induction; // (version 4 from HSv5 callers) extensions are not parsed
    }
    if be_i32(cif, 0) != Some(5) {
        return Verdict::Pass; // HSv4: refused without a panic
    }
    let mut rest = cif.get(HANDSHAKE..).unwrap_or_default();
    let mut encrypts = false;
    // As srt-protocol: blocks while more than 4 bytes remain. It goes on
    // after the bytes its block parser consumed, not after the announced
    // size: the rest of a longer block is read as further blocks.
    while rest.len() > 4 {
        let kind = be_u16(rest, 0).unwrap_or_default();
        let size = usize::from(be_u16(rest, 2).unwrap_or_default()) * 4;
        let Some(body) = rest.get(4..4 + size) else {
            return Verdict::Pass; // truncated: a parse error
        };
        let consumed = match kind {
            // The HSREQ/HSRSP parser reads three words.
            1 | 2 => 12,
            3 => {
                encrypts = true;
                // The key material parser reads 4 words, the salt, the keys
                // (one per key flag) and 8 bytes of wrapping.
                let (Some(&kf), Some(&slen), Some(&klen)) = (body.get(3), body.get(14), body.get(15)) else {
                    break; // a parse error: srt-protocol reads no further block
                };
                16 + 4 * usize::from(slen) + 4 * usize::from(klen) * (kf & 3).count_ones() as usize + 8
            }
            4 => return Verdict::Drop("key material response in a caller's handshake"),
            5 if size >= 4 => size,
            5 => return Verdict::Drop("empty stream id extension"),
            _ => return Verdict::Drop("unsupported handshake extension (congestion control, packet filter, group)"),
        };
        if consumed > size {
            break; // a parse error: srt-protocol reads no further block
        }
        rest = rest.get(4 + consumed..).unwrap_or_default();
    }
    if shake_type == -1 {
        Verdict::Conclusion { encrypts }
    } else {
        Verdict::Pass
    }
}

/// One caller's path to the internal listener.
struct Tunnel {
    socket: Arc<UdpSocket>,
    internal: SocketAddr,
    last_in: tokio::time::Instant,
    task: tokio::task::JoinHandle<()>,
    warned: bool,
}

/// Own the public socket until `stop`: each caller gets a loopback socket
/// connected to the internal listener (so srt-tokio tells callers apart),
/// datagrams pass both ways after [`inspect`]. A tunnel opens on a
/// handshake induction and closes after [`TUNNEL_IDLE`] without a datagram
/// from the caller (srt-tokio drops a connection after 5 s of silence).
async fn relay(
    public: Arc<UdpSocket>,
    internal_listener: SocketAddr,
    callers: Callers,
    stop: CancellationToken,
    max_tunnels: usize,
) {
    let mut tunnels: HashMap<SocketAddr, Tunnel> = HashMap::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    let mut full_logged = false;
    let mut errors = 0u32;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = sweep.tick() => {
                let now = tokio::time::Instant::now();
                tunnels.retain(|_, t| {
                    let keep = now.duration_since(t.last_in) < TUNNEL_IDLE;
                    if !keep {
                        t.task.abort();
                        lock(&callers).remove(&t.internal);
                    }
                    keep
                });
                full_logged = false;
            }
            r = public.recv_from(&mut buf) => {
                let (n, from) = match r {
                    Ok(r) => r,
                    Err(e) => {
                        // E.g. ICMP errors reported on the socket: not fatal.
                        errors = errors.saturating_add(1);
                        debug!(provider = "SRT", error = %e, "UDP receive error");
                        if errors > 3 {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        continue;
                    }
                };
                errors = 0;
                let packet = buf.get(..n).unwrap_or_default();
                let verdict = inspect(packet);
                let tunnel = match tunnels.entry(from) {
                    Entry::Occupied(t) => t.into_mut(),
                    Entry::Vacant(_) if verdict != Verdict::Induction => continue,
                    Entry::Vacant(v) => {
                        if lock(&callers).len() >= max_tunnels {
                            if !full_logged {
                                full_logged = true;
                                warn!(provider = "SRT", peer = %from, "too many SRT callers; handshake dropped");
                            }
                            continue;
                        }
                        match open_tunnel(&public, internal_listener, from).await {
                            Ok(t) => {
                                lock(&callers).insert(t.internal, Caller { peer: from, encrypts: false });
                                v.insert(t)
                            }
                            Err(e) => {
                                warn!(provider = "SRT", peer = %from, error = %e, "cannot open a tunnel to the SRT listener");
                                continue;
                            }
                        }
                    }
                };
                tunnel.last_in = tokio::time::Instant::now();
                match verdict {
                    Verdict::Drop(why) => {
                        if !tunnel.warned {
                            tunnel.warned = true;
                            warn!(provider = "SRT", peer = %from, reason = why, "SRT packet dropped (logged once per caller)");
                        }
                        continue;
                    }
                    Verdict::Conclusion { encrypts } => {
                        if let Some(c) = lock(&callers).get_mut(&tunnel.internal) {
                            c.encrypts = encrypts;
                        }
                    }
                    Verdict::Pass | Verdict::Induction => {}
                }
                // `try_send` also fails before the reactor has seen the
                // socket writable (a new tunnel): then wait a little. A
                // full buffer drops the datagram, as the network may.
                if tunnel.socket.try_send(packet).is_err() {
                    let _ = tokio::time::timeout(Duration::from_millis(5), tunnel.socket.send(packet)).await;
                }
            }
        }
    }
    for t in tunnels.into_values() {
        t.task.abort();
        lock(&callers).remove(&t.internal);
    }
}

fn lock(callers: &Callers) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, Caller>> {
    callers.lock().unwrap_or_else(|e| e.into_inner())
}

/// A loopback socket connected to the internal listener, and the task that
/// sends what the listener answers back to `peer` from the public socket.
async fn open_tunnel(
    public: &Arc<UdpSocket>,
    internal_listener: SocketAddr,
    peer: SocketAddr,
) -> std::io::Result<Tunnel> {
    let socket = Arc::new(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await?);
    socket.connect(internal_listener).await?;
    let internal = socket.local_addr()?;
    let (s, public) = (socket.clone(), public.clone());
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; TUNNEL_DATAGRAM];
        loop {
            match s.recv(&mut buf).await {
                Ok(n) => {
                    let _ = public.send_to(buf.get(..n).unwrap_or_default(), peer).await;
                }
                // The internal listener went away (ICMP): wait for the
                // relay to close this tunnel.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    Ok(Tunnel { socket, internal, last_in: tokio::time::Instant::now(), task, warned: false })
}

/// Log a refusal and send it to the caller.
async fn refuse(
    request: ConnectionRequest,
    peer: SocketAddr,
    streamid: Option<&str>,
    reason: RejectReason,
    why: &(dyn std::fmt::Display + Sync),
) {
    warn!(provider = "SRT", %peer, streamid = ?streamid.unwrap_or_default(), reason = %why, srt_reject = i32::from(reason), "publish rejected");
    let _ = tokio::time::timeout(Duration::from_secs(1), request.reject(reason)).await;
}

/// Decide on a connection request; accepted ones continue in `conns`.
async fn on_request(
    request: ConnectionRequest,
    registry: &Arc<Registry>,
    callers: &Callers,
    limit: &Arc<Semaphore>,
    conns: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) {
    // Without its query (publish key, signed policy): what names the stream
    // and what is logged. `presented` keeps the query, for the check.
    let (streamid, presented) = match request.stream_id() {
        Some(s) => {
            let (clean, presented) = auth::split_srt_stream_id(s.as_str());
            (Some(clean), presented)
        }
        None => (None, String::new()),
    };
    let sid = streamid.as_deref();
    let tunnel = request.remote();
    let Some(caller) = lock(callers).get(&tunnel).copied() else {
        // The relay closed the tunnel meanwhile: nobody to answer.
        let why = "the caller's tunnel is closed";
        return refuse(request, tunnel, sid, RejectReason::Server(ServerRejectReason::InternalServerError), &why).await;
    };
    let peer = caller.peer;
    let target = match sid.map(parse_stream_id).unwrap_or(Err(StreamIdError::Missing)) {
        Ok(t) => t,
        Err(e) => return refuse(request, peer, sid, e.reject_reason(), &e).await,
    };
    if shutdown.is_cancelled() {
        return refuse(request, peer, sid, RejectReason::Server(ServerRejectReason::Down), &PublishError::ShuttingDown)
            .await;
    }
    if let Err(e) = registry.provider_settings(&target.app, Provider::Srt) {
        return refuse(request, peer, sid, publish_reject_reason(&e), &e).await;
    }
    let grant = match registry.authorize(Provider::Srt, &target.app, &target.stream, &presented, peer) {
        Ok(g) => g,
        Err(e) => return refuse(request, peer, sid, publish_reject_reason(&e), &e).await,
    };
    if registry.live_streams().iter().any(|k| k.app == target.app && k.stream == target.stream) {
        let why = format!("stream {}/{} is already live; the first publisher keeps it", target.app, target.stream);
        return refuse(request, peer, sid, RejectReason::Server(ServerRejectReason::Conflict), &why).await;
    }
    let passphrase = registry.config().app(&target.app).and_then(|a| a.srt.as_ref()).and_then(|s| s.passphrase.clone());
    let key_settings = match passphrase {
        Some(p) if !(10..=79).contains(&p.len()) => {
            error!(provider = "SRT", app = %target.app, "the application's SRT passphrase is not 10 to 79 characters long");
            let why = "server misconfiguration (passphrase length)";
            return refuse(request, peer, sid, RejectReason::Server(ServerRejectReason::InternalServerError), &why)
                .await;
        }
        // The caller's key length is used: srt-protocol panics when the
        // listener's key length differs from the caller's.
        Some(p) => {
            AcceptParameters::new().set_key_settings(p, u16::from(request.key_size().as_raw())).take_key_settings()
        }
        None if caller.encrypts || request.key_size() != KeySize::Unspecified => {
            // srt-protocol panics on an encrypting caller when the listener
            // has no key: refuse before accepting. (libsrt announces no key
            // length when pbkeylen is not set: the relay saw the keying
            // material.)
            let why = "the caller encrypts (passphrase set) but the application has no SRT passphrase";
            return refuse(request, peer, sid, unsecure(), &why).await;
        }
        None => None,
    };
    let encrypted = key_settings.is_some();
    let Ok(permit) = limit.clone().try_acquire_owned() else {
        let why = "too many SRT connections";
        return refuse(request, peer, sid, RejectReason::Server(ServerRejectReason::Overload), &why).await;
    };
    let streamid = streamid.unwrap_or_default();
    let registry = registry.clone();
    let shutdown = shutdown.clone();
    conns.spawn(async move {
        let accepted = tokio::select! {
            r = tokio::time::timeout(ACCEPT_TIMEOUT, request.accept(key_settings)) => r,
            () = shutdown.cancelled() => return,
        };
        let socket = match accepted {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let why = if encrypted {
                    "encryption handshake failed: wrong or missing passphrase".to_string()
                } else {
                    format!("handshake failed: {e}")
                };
                warn!(provider = "SRT", %peer, streamid = ?streamid, reason = %why, "publish rejected");
                return;
            }
            Err(_) => {
                warn!(provider = "SRT", %peer, streamid = ?streamid, reason = "handshake timed out", "publish rejected");
                return;
            }
        };
        connection(socket, peer, target, streamid, grant, registry, permit).await;
    });
}

/// SRT_REJ_UNSECURE (the core reason libsrt gives for this case; srt-tokio
/// does not re-export `CoreRejectReason`).
fn unsecure() -> RejectReason {
    const SRT_REJ_UNSECURE: i32 = 1011;
    RejectReason::try_from(SRT_REJ_UNSECURE).unwrap_or(RejectReason::CoreUnrecognized(SRT_REJ_UNSECURE))
}

fn publish_reject_reason(e: &PublishError) -> RejectReason {
    RejectReason::Server(match e {
        PublishError::UnknownApp { .. } => ServerRejectReason::Notfound,
        PublishError::ProviderDisabled { .. } => ServerRejectReason::Forbidden,
        PublishError::InvalidStreamName { .. } => ServerRejectReason::BadRequest,
        PublishError::AlreadyLive { .. } | PublishError::Ending { .. } => ServerRejectReason::Conflict,
        PublishError::ShuttingDown => ServerRejectReason::Down,
        PublishError::Unauthorized { .. } => ServerRejectReason::Unauthorized,
    })
}

/// Publish `target`, waiting a little for a stream that is still ending.
async fn publish(registry: &Arc<Registry>, target: &Target, peer: SocketAddr) -> Result<Publisher, PublishError> {
    let start = tokio::time::Instant::now();
    loop {
        match registry.publish(&target.app, &target.stream, Provider::Srt, peer) {
            Err(PublishError::Ending { .. }) if start.elapsed() < ENDING_WAIT => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            r => return r,
        }
    }
}

/// A connected publisher: SRT payload → demuxer → stream.
async fn connection(
    mut socket: SrtSocket,
    peer: SocketAddr,
    target: Target,
    streamid: String,
    grant: auth::Grant,
    registry: Arc<Registry>,
    _permit: OwnedSemaphorePermit,
) {
    let publisher = match publish(&registry, &target, peer).await {
        Ok(p) => p,
        Err(e) => {
            // Lost a race with another publisher after the checks: the
            // handshake is done, so the connection can only be closed.
            warn!(provider = "SRT", %peer, streamid = ?streamid, reason = %e, "publish rejected; closing the connection");
            let _ = tokio::time::timeout(Duration::from_secs(1), socket.close()).await;
            return;
        }
    };
    auth::enforce(&grant, &publisher, Provider::Srt);
    let key: StreamKey = publisher.key().clone();
    info!(provider = "SRT", %peer, stream = %key, "SRT publisher connected");
    let mut feed = TsFeed::new(&key, Provider::Srt, peer);
    let ended = publisher.ended();
    let mut bytes = 0u64;
    let reason = loop {
        tokio::select! {
            () = ended.cancelled() => break "the stream ended".to_string(),
            item = socket.next() => match item {
                None => {
                    let events = feed.finish();
                    let _ = tokio::time::timeout(FLUSH_LIMIT, publisher.send(events)).await;
                    break "the publisher disconnected".to_string();
                }
                Some(Err(e)) => break format!("receive error: {e}"),
                Some(Ok((_, data))) => {
                    bytes += data.len() as u64;
                    match feed.push(&data) {
                        Ok(events) => {
                            if publisher.send(events).await.is_err() {
                                break "the stream ended".to_string();
                            }
                        }
                        Err(why) => {
                            warn!(provider = "SRT", %peer, stream = %key, reason = %why, "not a usable stream: ending it and closing the connection");
                            break format!("not a usable stream: {why}");
                        }
                    }
                }
            },
        }
    };
    drop(publisher);
    feed.log_summary();
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close()).await;
    info!(provider = "SRT", %peer, stream = %key, bytes, reason = %reason, "SRT connection closed");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(app: &str, stream: &str) -> Result<Target, StreamIdError> {
        Ok(Target { app: app.into(), stream: stream.into() })
    }

    #[test]
    fn stream_ids() {
        use StreamIdError::*;
        let long = format!("app/{}", "s".repeat(600));
        let cases: Vec<(&str, Result<Target, StreamIdError>)> = vec![
            // Access control syntax.
            ("#!::r=app/stream,m=publish", ok("app", "stream")),
            ("#!::m=publish,r=app/stream", ok("app", "stream")),
            ("#!::r=app/stream", ok("app", "stream")),
            ("#!::u=bob,r=live/cam-1.hd,m=publish,s=abc,t=stream,x=y", ok("live", "cam-1.hd")),
            ("#!::r=app/stream,m=PUBLISH", ok("app", "stream")),
            ("#!::r=app/stream,m=publish,", ok("app", "stream")),
            ("#!::r=app/stream,m=request", Err(Request)),
            ("#!::m=request,r=app/stream", Err(Request)),
            ("#!::r=app/stream,m=bidirectional", Err(Mode("bidirectional".into()))),
            ("#!::m=publish", Err(NoResource)),
            ("#!::", Err(NoResource)),
            ("#!::r=app/stream,r=app/other", Err(Duplicate("r".into()))),
            ("#!::r=app/stream,m", Err(NoValue("m".into()))),
            ("#!::r=app", Err(NotAppStream("app".into()))),
            ("#!::r=app/st ream", Err(BadName("app/st ream".into()))),
            ("%23%21%3A%3Ar%3Dapp%2Fstream%2Cm%3Dpublish", ok("app", "stream")),
            // Plain.
            ("app/stream", ok("app", "stream")),
            ("a_b.c-1/X_y.z-9", ok("a_b.c-1", "X_y.z-9")),
            ("app%2Fstream", ok("app", "stream")),
            // OvenMediaEngine's URL form, percent-encoded or not.
            ("srt://example.com:9999/app/stream", ok("app", "stream")),
            ("srt%3A%2F%2Fexample.com%3A9999%2Fapp%2Fstream", ok("app", "stream")),
            ("srt%3a%2f%2f127.0.0.1%3a9999%2fapp%2fstream", ok("app", "stream")),
            ("SRT://h/app/stream?x=1", ok("app", "stream")),
            ("srt://host:9999", Err(NotAppStream("srt://host:9999".into()))),
            ("srt://host/app", Err(NotAppStream("app".into()))),
            // Bogus.
            ("", Err(Empty)),
            ("stream", Err(NotAppStream("stream".into()))),
            ("app/", Err(NotAppStream("app/".into()))),
            ("/app/stream", Err(NotAppStream("/app/stream".into()))),
            ("app/stream/x", Err(NotAppStream("app/stream/x".into()))),
            ("app//stream", Err(NotAppStream("app//stream".into()))),
            ("app/..", Err(BadName("app/..".into()))),
            ("app/str\neam", Err(BadName("app/str\neam".into()))),
            ("app/strüam", Err(BadName("app/strüam".into()))),
            ("app/a%", Err(BadEncoding)),
            ("app/a%4", Err(BadEncoding)),
            ("app/a%zz", Err(BadEncoding)),
            ("app/a%ff", Err(BadEncoding)),
            ("app/a%2", Err(BadEncoding)),
            (long.as_str(), Err(TooLong(604))),
        ];
        for (input, want) in cases {
            assert_eq!(parse_stream_id(input), want, "stream id {input:?}");
        }
        // Exactly at the limit: parsed (the names are then too long).
        let at_limit = format!("a/{}", "s".repeat(MAX_STREAM_ID - 2));
        assert!(matches!(parse_stream_id(&at_limit), Err(BadName(_))));
    }

    use std::time::Instant;

    use bytes::Bytes;
    use tokio::net::UdpSocket;

    use crate::ingest::mpegts::testing::*;

    /// Start the provider on a free port with `apps`.
    async fn start(
        apps: Vec<crate::config::Application>,
        limit: usize,
    ) -> (SocketAddr, Arc<Registry>, CancellationToken) {
        init_logs();
        let (registry, shutdown) = registry(apps);
        let addr: SocketAddr = ([127, 0, 0, 1], free_udp_port()).into();
        let (r, s) = (registry.clone(), shutdown.clone());
        tokio::spawn(async move { serve_with(addr, r, s, limit).await.expect("SRT listener") });
        tokio::time::sleep(Duration::from_millis(100)).await;
        (addr, registry, shutdown)
    }

    async fn call(addr: SocketAddr, streamid: &str, passphrase: Option<&str>) -> std::io::Result<SrtSocket> {
        let mut b = SrtSocket::builder().latency(Duration::from_millis(50));
        if let Some(p) = passphrase {
            b = b.encryption(16, p);
        }
        match tokio::time::timeout(Duration::from_secs(5), b.call(addr, Some(streamid))).await {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "call timed out")),
        }
    }

    async fn send_ts(socket: &mut SrtSocket, ts: &[u8]) {
        for (i, chunk) in ts.chunks(1316).enumerate() {
            socket.send((Instant::now(), Bytes::copy_from_slice(chunk))).await.expect("send");
            if i % 2 == 1 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn refusals_and_passphrases() {
        let apps =
            vec![app("open", None, Some(500), None), app("secret", None, Some(500), Some("correct horse battery"))];
        let (addr, registry, shutdown) = start(apps, MAX_CONNECTIONS).await;
        for bogus in ["", "nothing", "open/a/b", "open/bad name", "#!::r=open/s,m=request", "nope/s", "open/s%zz"] {
            assert!(call(addr, bogus, None).await.is_err(), "{bogus:?} refused");
        }
        // Encrypted caller, application without passphrase (srt-protocol
        // would panic if it were accepted).
        assert!(call(addr, "open/s", Some("some passphrase")).await.is_err());
        // Wrong or missing passphrase.
        assert!(call(addr, "secret/s", Some("wrong passphrase!")).await.is_err());
        assert!(call(addr, "secret/s", None).await.is_err());
        assert!(registry.live_streams().is_empty(), "{:?}", registry.live_streams());
        // The listener still works: plain, then the right passphrase.
        let _a = call(addr, "#!::m=publish,r=open/s", None).await.expect("plain publish");
        let _b = call(addr, "secret/s", Some("correct horse battery")).await.expect("encrypted publish");
        assert!(wait_until(Duration::from_secs(2), || registry.live_streams().len() == 2).await);
        // A second publisher of a live stream is refused.
        assert!(call(addr, "open/s", None).await.is_err());
        assert_eq!(registry.live_streams().len(), 2);
        shutdown.cancel();
        registry.drain().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn media_flows_and_a_silent_connection_is_dropped() {
        let (addr, registry, shutdown) = start(vec![app("app", None, Some(500), None)], MAX_CONNECTIONS).await;
        let k = key("app", "cam");
        let mut socket = call(addr, "srt%3A%2F%2F127.0.0.1%3A9999%2Fapp%2Fcam", None).await.expect("publish");
        let ts = golden_ts();
        send_ts(&mut socket, &ts[..ts.len() / 2]).await;
        assert!(wait_until(Duration::from_secs(5), || registry.store().count(&k) > 0).await, "segments stored");
        let idle = std::time::Instant::now();
        // Silent but connected: the session ends after 500 ms, and the
        // provider closes the connection.
        assert!(wait_until(Duration::from_secs(3), || !is_live(&registry, &k)).await);
        let took = idle.elapsed();
        assert!(took < Duration::from_millis(500 + 400), "ended after {took:?}");
        assert_eq!(registry.store().count(&k), 0);
        let closed =
            tokio::time::timeout(Duration::from_secs(3), async { while socket.next().await.is_some() {} }).await;
        assert!(closed.is_ok(), "the server closed the connection");
        // Publishing again works.
        let mut again = call(addr, "app/cam", None).await.expect("publish again");
        send_ts(&mut again, &ts[..ts.len() / 4]).await;
        assert!(wait_until(Duration::from_secs(5), || registry.store().count(&k) > 0).await);
        shutdown.cancel();
        registry.drain().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connection_limit() {
        let (addr, registry, shutdown) = start(vec![app("app", None, Some(500), None)], 1).await;
        let mut first = call(addr, "app/one", None).await.expect("first");
        assert!(call(addr, "app/two", None).await.is_err(), "over the limit");
        let _ = first.close().await;
        drop(first);
        assert!(wait_until(Duration::from_secs(5), || registry.live_streams().is_empty()).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _third = call(addr, "app/three", None).await.expect("a slot is free again");
        shutdown.cancel();
        registry.drain().await;
    }

    /// A handshake packet: `version`, `shake_type`, extension blocks.
    fn handshake(version: i32, shake_type: i32, extensions: &[(u16, &[u8])]) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        p.extend(version.to_be_bytes());
        p.extend([0, 0, 0, if version == 4 { 2 } else { 5 }]);
        p.extend(12345u32.to_be_bytes());
        p.extend(1500u32.to_be_bytes());
        p.extend(8192u32.to_be_bytes());
        p.extend(shake_type.to_be_bytes());
        p.extend(0x1234u32.to_be_bytes());
        p.extend(0i32.to_be_bytes());
        p.extend([0u8; 16]);
        for (kind, body) in extensions {
            p.extend(kind.to_be_bytes());
            p.extend(((body.len() / 4) as u16).to_be_bytes());
            p.extend(*body);
        }
        p
    }

    /// An SRT control packet (type 0x7fff) of `subtype` with `body`.
    fn srt_control(subtype: u16, body: &[u8]) -> Vec<u8> {
        let mut p = vec![0xff, 0xff];
        p.extend(subtype.to_be_bytes());
        p.extend([0u8; 12]);
        p.extend(body);
        p
    }

    #[test]
    fn inspect_drops_what_srt_protocol_panics_on() {
        let hs: &[u8] = &[0, 1, 4, 0, 0, 0, 0, 0x3f, 0, 0x78, 0, 0];
        let km: &[u8] = &[0x12, 0x20, 0x29, 0x01, 0, 0, 0, 0, 2, 0, 2, 0, 0, 0, 4, 4];
        let cases: Vec<(Vec<u8>, Verdict)> = vec![
            (vec![], Verdict::Pass),
            (vec![0x80; 10], Verdict::Pass),
            (vec![0; 40], Verdict::Pass), // data
            (srt_control(3, &[0; 40]), Verdict::Pass),
            (srt_control(5, &[]), Verdict::Drop("SRT control packet other than key material")),
            (srt_control(8, &[]), Verdict::Drop("SRT control packet other than key material")),
            (handshake(4, 1, &[]), Verdict::Induction),
            (handshake(5, 1, &[]), Verdict::Induction),
            (handshake(5, -1, &[]), Verdict::Conclusion { encrypts: false }),
            (handshake(5, -1, &[(1, hs), (5, b"app/s\0\0\0")]), Verdict::Conclusion { encrypts: false }),
            (handshake(5, -1, &[(1, hs), (3, km), (5, b"app/")]), Verdict::Conclusion { encrypts: true }),
            (handshake(4, -1, &[(6, b"file")]), Verdict::Pass),
            (handshake(5, 0, &[(1, hs)]), Verdict::Pass),
            (
                handshake(5, -1, &[(1, hs), (6, b"file")]),
                Verdict::Drop("unsupported handshake extension (congestion control, packet filter, group)"),
            ),
            (
                handshake(5, 0, &[(8, &[0, 0, 0, 0])]),
                Verdict::Drop("unsupported handshake extension (congestion control, packet filter, group)"),
            ),
            // Blocks are read while more than 4 bytes remain.
            (handshake(5, 0, &[(8, b"")]), Verdict::Pass),
            (handshake(5, -1, &[(5, b"")]), Verdict::Conclusion { encrypts: false }),
            (handshake(5, -1, &[(5, b""), (1, hs)]), Verdict::Drop("empty stream id extension")),
            (handshake(5, -1, &[(4, km)]), Verdict::Drop("key material response in a caller's handshake")),
        ];
        for (packet, want) in cases {
            assert_eq!(inspect(&packet), want, "{packet:02x?}");
        }
        // A truncated block: srt-protocol reports a parse error.
        let mut p = handshake(5, -1, &[(5, b"app/")]);
        p.truncate(p.len() - 2);
        p.extend([0, 0]);
        let n = p.len();
        p[n - 6..n - 4].copy_from_slice(&9u16.to_be_bytes());
        assert_eq!(inspect(&p), Verdict::Pass);
        // Never panics on any prefix of these.
        for packet in [handshake(5, -1, &[(1, hs), (3, km), (5, b"app/")]), srt_control(4, km)] {
            for n in 0..=packet.len() {
                let _ = inspect(&packet[..n]);
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hostile_handshakes_do_not_stop_the_listener() {
        let (addr, registry, shutdown) = start(vec![app("app", None, Some(2000), None)], MAX_CONNECTIONS).await;
        let k = key("app", "live");
        // A live publisher, sending throughout.
        let mut live = call(addr, "app/live", None).await.expect("publish");
        let ts = golden_ts();
        let sender = tokio::spawn(async move {
            send_ts(&mut live, &ts).await;
            live
        });
        assert!(wait_until(Duration::from_secs(5), || registry.store().count(&k) > 0).await);
        // libsrt with a passphrase but no pbkeylen announces no key length:
        // to an application without a passphrase (srt-protocol panics if
        // such a caller is accepted).
        let b = SrtSocket::builder().encryption(0, "some passphrase");
        let r = tokio::time::timeout(Duration::from_secs(5), b.call(addr, Some("app/enc"))).await;
        assert!(matches!(r, Ok(Err(_))), "encrypting caller refused");
        // Raw packets srt-protocol panics on, from a caller with a tunnel.
        let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        raw.send_to(&handshake(4, 1, &[]), addr).await.unwrap();
        let mut buf = [0u8; 1500];
        let answer = tokio::time::timeout(Duration::from_secs(2), raw.recv_from(&mut buf)).await;
        assert!(answer.is_ok(), "induction answered");
        let hs: &[u8] = &[0, 1, 4, 0, 0, 0, 0, 0x3f, 0, 0x78, 0, 0];
        for evil in [
            srt_control(5, &[]),
            srt_control(8, &[]),
            handshake(5, -1, &[(1, hs), (6, b"file"), (5, b"app/")]),
            handshake(5, -1, &[(5, b""), (1, hs)]),
            handshake(5, 0, &[(8, &[0, 0, 0, 0])]),
        ] {
            raw.send_to(&evil, addr).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The publisher is still live and a new caller connects.
        assert!(is_live(&registry, &k));
        let _other = call(addr, "app/other", None).await.expect("the listener still accepts");
        let live = sender.await.expect("sender");
        assert!(is_live(&registry, &k), "the publisher survived");
        drop(live);
        shutdown.cancel();
        registry.drain().await;
    }

    #[test]
    fn stream_id_parser_never_panics() {
        // Every short string over an alphabet of the interesting characters.
        let alphabet = ['#', '!', ':', '=', ',', '/', '%', '2', 'F', 'a', 'r', 'm', '\u{e9}'];
        let mut inputs = vec![String::new()];
        for _ in 0..4 {
            let mut next = Vec::new();
            for s in &inputs {
                for c in alphabet {
                    let mut t = s.clone();
                    t.push(c);
                    next.push(t);
                }
            }
            inputs.extend(next);
        }
        for s in &inputs {
            let _ = parse_stream_id(s);
        }
        // Multi-byte characters next to '%' escapes and the limit.
        for s in ["%\u{e9}", "%a\u{e9}", "\u{e9}%", "srt://\u{e9}/a/b"] {
            let _ = parse_stream_id(s);
        }
    }
}
