//! The HTTP server under the LL-HLS router: an accept loop serving an axum
//! [`Router`] over HTTP/1.1 and HTTP/2, in clear (HTTP/2 by prior knowledge,
//! "h2c") or over TLS (HTTP/2 or HTTP/1.1 chosen by ALPN).
//!
//! Every connection is bounded:
//!
//! - at most [`HttpLimits::max_connections`] open at once per listener; one
//!   more is accepted and closed at once (counted, logged at most once a
//!   second);
//! - the TLS handshake must end within [`TLS_HANDSHAKE_TIMEOUT`];
//! - a request head must arrive within [`HttpLimits::header_read_timeout`]:
//!   counted from the moment the connection is ready (after the handshake)
//!   for the first request, and, on HTTP/1.1, from the first byte of each
//!   later request (slowloris). A connection that misses it is closed;
//! - a request head larger than [`HttpLimits::max_header_bytes`] is refused
//!   (431 on HTTP/1.1, a stream error on HTTP/2);
//! - a connection with no request in flight for
//!   [`HttpLimits::keep_alive_idle`] is closed gracefully.
//!
//! On shutdown the listener stops accepting, every connection finishes its
//! in-flight requests (at most [`SHUTDOWN_GRACE`]) and is closed. Nothing
//! here panics on network input: every error ends one connection.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::{debug, info, warn};

pub use crate::config::HttpLimits;
use crate::config::TlsCert;
use crate::throttle::Throttle;

/// How long a TLS handshake may take.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long in-flight requests may run on after shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Connections closed for a late request head, logged at most once a second.
static HEAD_TIMEOUTS: Throttle = Throttle::new(Duration::from_secs(1));

/// hyper's HTTP/1.1 read buffer cannot be smaller than this (it panics).
const MIN_H1_BUFFER: usize = 8192;

/// The ALPN protocols offered over TLS, preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// Serve `app` on `listener` until `shutdown` is cancelled, then let the
/// connections finish their requests (at most [`SHUTDOWN_GRACE`]) and
/// return. With `tls`, every connection is TLS; its ALPN protocols are set
/// to `h2` and `http/1.1` if the configuration names none.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    app: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) {
    let tls = tls.map(|config| TlsAcceptor::from(with_alpn(config)));
    let local = listener.local_addr().ok();
    let tracker = TaskTracker::new();
    let mut refused = Refused::default();
    let mut accept_errors = 0u64;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: do not spin.
                accept_errors += 1;
                if accept_errors.is_power_of_two() {
                    warn!(addr = ?local, error = %e, count = accept_errors, "HTTP accept failed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if tracker.len() >= limits.max_connections {
            drop(stream);
            refused.note(local, limits.max_connections);
            continue;
        }
        let _ = stream.set_nodelay(true);
        tracker.spawn(connection(stream, peer, tls.clone(), app.clone(), limits, shutdown.clone()));
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE + Duration::from_secs(1), tracker.wait()).await.is_err() {
        debug!(addr = ?local, open = tracker.len(), "HTTP connections still open after the grace period");
    }
}

/// `config` with the ALPN protocols of [`ALPN`] unless it names some.
fn with_alpn(config: Arc<ServerConfig>) -> Arc<ServerConfig> {
    if !config.alpn_protocols.is_empty() {
        return config;
    }
    let mut c = (*config).clone();
    c.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Arc::new(c)
}

/// Connections refused by the connection limit, logged at most once a second.
#[derive(Default)]
struct Refused {
    total: u64,
    unlogged: u64,
    last_log: Option<Instant>,
}

impl Refused {
    fn note(&mut self, addr: Option<SocketAddr>, limit: usize) {
        self.total += 1;
        self.unlogged += 1;
        let now = Instant::now();
        let due = match self.last_log {
            None => true,
            Some(t) => now.duration_since(t) >= Duration::from_secs(1),
        };
        if due {
            warn!(
                addr = ?addr,
                limit,
                refused = self.unlogged,
                total = self.total,
                "HTTP connection limit reached: closed new connections at once"
            );
            self.unlogged = 0;
            self.last_log = Some(now);
        }
    }
}

/// One accepted connection: the TLS handshake if any, then HTTP.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: HttpLimits,
    shutdown: CancellationToken,
) {
    let Some(acceptor) = tls else {
        return serve_connection(stream, peer, app, limits, shutdown).await;
    };
    let handshake = tokio::select! {
        _ = shutdown.cancelled() => return,
        r = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => r,
    };
    match handshake {
        Ok(Ok(stream)) => serve_connection(stream, peer, app, limits, shutdown).await,
        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => debug!(%peer, "TLS handshake timed out"),
    }
}

/// What the watchdog of a connection decides.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Nothing to do before this instant.
    WaitUntil(Instant),
    /// A request head did not arrive in time: close.
    HeaderTimeout,
    /// No request for the idle time: close gracefully.
    Idle,
}

/// What a connection is doing, shared by its I/O wrapper, its requests and
/// its watchdog. Times are milliseconds since `start`.
struct Activity {
    start: Instant,
    /// Requests whose response has not been sent completely.
    in_flight: AtomicUsize,
    /// When the last request began or ended.
    last_change_ms: AtomicU64,
    /// 1 + when a request head began (bytes arrived on an idle HTTP/1.1
    /// connection, or the connection opened); 0: none pending.
    head_since: AtomicU64,
    /// Wakes the watchdog when a head begins.
    wake: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            last_change_ms: AtomicU64::new(0),
            // The first request is due from the start.
            head_since: AtomicU64::new(1),
            wake: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn at(&self, ms: u64) -> Instant {
        self.start + Duration::from_millis(ms)
    }

    /// Bytes arrived on an HTTP/1.1 connection: if no request is in flight,
    /// they begin a request head, due within the header timeout.
    fn bytes_arrived(&self) {
        if self.in_flight.load(Ordering::Acquire) == 0 && self.head_since.load(Ordering::Acquire) == 0 {
            self.head_since.store(self.now_ms() + 1, Ordering::Release);
            self.wake.notify_one();
        }
    }

    /// A request head was read: count the request until its response ends.
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_since.store(0, Ordering::Release);
        self.last_change_ms.store(self.now_ms(), Ordering::Release);
        InFlight(self.clone())
    }

    fn check(&self, now: Instant, limits: &HttpLimits) -> Verdict {
        let idle = limits.keep_alive_idle;
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Verdict::WaitUntil(now + idle);
        }
        let head_since = self.head_since.load(Ordering::Acquire);
        if head_since > 0 {
            let due = self.at(head_since - 1) + limits.header_read_timeout;
            return if now >= due { Verdict::HeaderTimeout } else { Verdict::WaitUntil(due) };
        }
        let due = self.at(self.last_change_ms.load(Ordering::Acquire)) + idle;
        if now >= due {
            Verdict::Idle
        } else {
            Verdict::WaitUntil(due)
        }
    }
}

/// A request in flight; dropped when its response body is done (or dropped).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.last_change_ms.store(a.now_ms(), Ordering::Release);
        a.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted as in flight until it is
/// sent (or dropped). Its size hint is the body's, so that hyper still sends
/// `Content-Length`.
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The first bytes of an HTTP/2 connection preface.
const H2_PREFACE_START: &[u8; 4] = b"PRI ";

/// An I/O stream that reports arriving bytes to the connection's
/// [`Activity`] (HTTP/1.1 only: an HTTP/2 client sends frames such as
/// PING on an idle connection; the preface tells the two apart).
struct Watched<I> {
    inner: I,
    activity: Arc<Activity>,
    /// The first bytes read, up to 4, to recognise the HTTP/2 preface.
    first: [u8; 4],
    first_len: usize,
}

impl<I> Watched<I> {
    fn new(inner: I, activity: Arc<Activity>) -> Watched<I> {
        Watched { inner, activity, first: [0; 4], first_len: 0 }
    }

    fn is_h2(&self) -> bool {
        self.first_len == 4 && &self.first == H2_PREFACE_START
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let new = &buf.filled()[before..];
        if !new.is_empty() {
            let me = &mut *self;
            if me.first_len < 4 {
                let take = (4 - me.first_len).min(new.len());
                me.first[me.first_len..me.first_len + take].copy_from_slice(&new[..take]);
                me.first_len += take;
            }
            if !me.is_h2() {
                me.activity.bytes_arrived();
            }
        }
        result
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Serve HTTP on one connection (clear or after the TLS handshake) until it
/// ends, misses a deadline, or shutdown's grace period is over.
async fn serve_connection<I>(io: I, peer: SocketAddr, app: Router, limits: HttpLimits, shutdown: CancellationToken)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut req: Request<Incoming>| {
            let in_flight = activity.begin();
            let app = app.clone();
            // Handlers that count viewers read the client address from here.
            req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            async move {
                let response = match app.oneshot(req).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                // The request stays in flight until its body is sent.
                Ok::<_, Infallible>(response.map(|body| Tracked { body, _in_flight: in_flight }))
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Head deadlines are the watchdog's: hyper's own timer would also
        // cut idle keep-alive connections.
        .header_read_timeout(None)
        .keep_alive(true)
        .max_buf_size(limits.max_header_bytes.max(MIN_H1_BUFFER));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let conn = builder.serve_connection(TokioIo::new(Watched::new(io, activity.clone())), service);
    tokio::pin!(conn);

    // Once set, the connection is closing: it is dropped at this instant.
    let mut closing_until: Option<Instant> = None;
    loop {
        let verdict = activity.check(Instant::now(), &limits);
        let wake_at = match verdict {
            Verdict::WaitUntil(at) => at,
            Verdict::HeaderTimeout => {
                debug!(%peer, "HTTP request head not received in time: closing");
                if let Some(due) = HEAD_TIMEOUTS.note(std::time::Instant::now()) {
                    warn!(
                        %peer,
                        limit_ms = limits.header_read_timeout.as_millis() as u64,
                        closed = due.count,
                        total = due.total,
                        "HTTP request heads not received within HeaderReadTimeoutMs (slow clients): closed connections"
                    );
                }
                return;
            }
            Verdict::Idle if closing_until.is_none() => {
                debug!(%peer, "HTTP connection idle: closing");
                conn.as_mut().graceful_shutdown();
                closing_until = Some(Instant::now() + SHUTDOWN_GRACE);
                continue;
            }
            Verdict::Idle => Instant::now() + limits.keep_alive_idle,
        };
        let wake_at = closing_until.map_or(wake_at, |until| wake_at.min(until));
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    debug!(%peer, error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            _ = shutdown.cancelled(), if closing_until.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing_until = Some(Instant::now() + SHUTDOWN_GRACE);
            }
            _ = activity.wake.notified() => {}
            _ = tokio::time::sleep_until(wake_at) => {
                if closing_until.is_some_and(|until| Instant::now() >= until) {
                    debug!(%peer, "HTTP connection still busy after the grace period: closing");
                    return;
                }
            }
        }
    }
}

// ----------------------------------------------------------------- TLS ---

/// The TLS configuration for `certs` (from `VirtualHost/Host/TLS`): each
/// certificate answers the SNI names of its `Host/Names`; the first one
/// answers any other name and clients without SNI. ALPN offers `h2` and
/// `http/1.1`. Errors name the file at fault.
pub fn load_tls(certs: &[TlsCert]) -> Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut entries = Vec::with_capacity(certs.len());
    for c in certs {
        let mut chain = read_certs(&c.cert_path)?;
        if let Some(path) = &c.chain_path {
            chain.extend(read_certs(path)?);
        }
        let key = read_key(&c.key_path)?;
        let key = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| anyhow!("TLS private key {}: unsupported key: {e}", c.key_path.display()))?;
        let certified = CertifiedKey::new(chain, key);
        certified.keys_match().map_err(|e| {
            anyhow!(
                "TLS private key {} does not belong to certificate {}: {e}",
                c.key_path.display(),
                c.cert_path.display()
            )
        })?;
        entries.push((c.names.clone(), Arc::new(certified)));
    }
    if entries.is_empty() {
        bail!("TLS needs a certificate: set VirtualHost/Host/TLS");
    }
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { entries }));
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    for c in certs {
        info!(config = %c.path, cert = %c.cert_path.display(), names = ?c.names, "TLS certificate loaded");
    }
    Ok(Arc::new(config))
}

fn read_file(what: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading TLS {what} {}", path.display()))
}

/// Every `CERTIFICATE` of a PEM file (at least one).
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read_file("certificate", path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("TLS certificate {}: not a PEM file: {e}", path.display()))?;
    if certs.is_empty() {
        bail!("TLS certificate {}: no CERTIFICATE in this PEM file", path.display());
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) of a PEM file.
fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = read_file("private key", path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            anyhow!("TLS private key {}: no PRIVATE KEY (PKCS#8, PKCS#1 or SEC1) in this PEM file", path.display())
        }
        e => anyhow!("TLS private key {}: not a PEM file: {e}", path.display()),
    })
}

/// Picks the certificate by SNI: an exact or `*.domain` name first, then a
/// certificate for any name (`*` or no names), then the first one.
#[derive(Debug)]
struct SniResolver {
    entries: Vec<(Vec<String>, Arc<CertifiedKey>)>,
}

impl SniResolver {
    fn pick(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let name = server_name.map(str::to_ascii_lowercase);
        let specific = name
            .as_deref()
            .and_then(|n| self.entries.iter().find(|(names, _)| names.iter().any(|p| p != "*" && host_matches(p, n))));
        let any = || self.entries.iter().find(|(names, _)| names.is_empty() || names.iter().any(|p| p == "*"));
        specific.or_else(any).or(self.entries.first()).map(|(_, key)| key.clone())
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.pick(hello.server_name())
    }
}

/// Whether `host` (lowercase) matches `pattern`: equal, `*`, or
/// `*.example.com` for any name ending in `.example.com`.
fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" || pattern == host {
        return true;
    }
    match pattern.strip_prefix('*') {
        Some(suffix) if suffix.starts_with('.') => host.len() > suffix.len() && host.ends_with(suffix),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn host_patterns() {
        assert!(host_matches("*", "a.example.com"));
        assert!(host_matches("a.example.com", "a.example.com"));
        assert!(host_matches("*.example.com", "a.example.com"));
        assert!(host_matches("*.example.com", "b.a.example.com"));
        assert!(!host_matches("*.example.com", "example.com"));
        assert!(!host_matches("*.example.com", "aexample.com"));
        assert!(!host_matches("a.example.com", "b.example.com"));
        assert!(!host_matches("*x.example.com", "ax.example.com"));
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lockstep-http-server-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        assert!(std::fs::create_dir_all(&d).is_ok());
        d
    }

    fn cert(dir: &Path, names: &[&str], cert_pem: &str, key_pem: &str) -> TlsCert {
        let cert_path = dir.join(format!("{}.crt", names.first().copied().unwrap_or("any").replace('*', "star")));
        let key_path = cert_path.with_extension("key");
        assert!(std::fs::write(&cert_path, cert_pem).is_ok());
        assert!(std::fs::write(&key_path, key_pem).is_ok());
        TlsCert {
            path: "Server/VirtualHosts/VirtualHost[0]/Host/TLS".into(),
            names: names.iter().map(|n| n.to_string()).collect(),
            cert_path,
            key_path,
            chain_path: None,
        }
    }

    fn self_signed(name: &str) -> (String, String) {
        match rcgen::generate_simple_self_signed(vec![name.to_owned()]) {
            Ok(c) => (c.cert.pem(), c.signing_key.serialize_pem()),
            Err(e) => panic!("rcgen: {e}"),
        }
    }

    #[test]
    fn tls_files_load_and_errors_name_the_file() {
        let dir = temp_dir("tls");
        let (a_cert, a_key) = self_signed("a.example.com");
        let (b_cert, b_key) = self_signed("b.example.com");
        let a = cert(&dir, &["a.example.com"], &a_cert, &a_key);
        let b = cert(&dir, &["*"], &b_cert, &b_key);
        let config = load_tls(&[a.clone(), b.clone()]);
        assert!(config.as_ref().is_ok_and(|c| c.alpn_protocols == vec![b"h2".to_vec(), b"http/1.1".to_vec()]));

        let err = |certs: &[TlsCert]| load_tls(certs).err().map(|e| format!("{e:#}")).unwrap_or_default();
        let missing = TlsCert { cert_path: dir.join("missing.crt"), ..a.clone() };
        let e = err(&[missing]);
        assert!(e.contains("missing.crt"), "{e}");
        let garbage = dir.join("garbage.pem");
        assert!(std::fs::write(&garbage, "not pem at all").is_ok());
        let e = err(&[TlsCert { cert_path: garbage.clone(), ..a.clone() }]);
        assert!(e.contains("garbage.pem") && e.contains("no CERTIFICATE"), "{e}");
        let e = err(&[TlsCert { key_path: garbage.clone(), ..a.clone() }]);
        assert!(e.contains("garbage.pem") && e.contains("no PRIVATE KEY"), "{e}");
        // A key that is not the certificate's.
        let e = err(&[TlsCert { key_path: b.key_path.clone(), ..a.clone() }]);
        assert!(e.contains("does not belong") && e.contains("a.example.com.crt"), "{e}");
        let chain = TlsCert { chain_path: Some(dir.join("chain-missing.pem")), ..a.clone() };
        assert!(err(&[chain]).contains("chain-missing.pem"));
        assert!(err(&[]).contains("certificate"));

        // SNI: exact name, then the catch-all, then the first.
        let resolver = SniResolver {
            entries: vec![
                (vec!["a.example.com".into()], Arc::new(CertifiedKey::new(vec![], key_of(&a_key)))),
                (vec!["*".into()], Arc::new(CertifiedKey::new(vec![], key_of(&b_key)))),
            ],
        };
        let picked = |name: Option<&str>| resolver.pick(name).map(|k| Arc::as_ptr(&k));
        let (ea, eb) = (Arc::as_ptr(&resolver.entries[0].1), Arc::as_ptr(&resolver.entries[1].1));
        assert_eq!(picked(Some("A.example.com")), Some(ea));
        assert_eq!(picked(Some("other.example.org")), Some(eb));
        assert_eq!(picked(None), Some(eb));
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn key_of(pem: &str) -> Arc<dyn rustls::sign::SigningKey> {
        let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).ok();
        let provider = rustls::crypto::ring::default_provider();
        match key.map(|k| provider.key_provider.load_private_key(k)) {
            Some(Ok(k)) => k,
            _ => panic!("test key"),
        }
    }

    fn limits(header_ms: u64, idle_ms: u64, max: usize) -> HttpLimits {
        HttpLimits {
            max_connections: max,
            header_read_timeout: Duration::from_millis(header_ms),
            max_header_bytes: 16 * 1024,
            keep_alive_idle: Duration::from_millis(idle_ms),
        }
    }

    /// A server on a free loopback port with `/` (immediate) and `/slow`
    /// (answers after 300 ms).
    async fn start(limits: HttpLimits) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
        let app = Router::new().route("/", get(|| async { "ok" })).route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "slow"
            }),
        );
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("bind: {e}"),
        };
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let token = CancellationToken::new();
        let task = tokio::spawn(serve(listener, None, app, limits, token.clone()));
        (addr, token, task)
    }

    async fn connect(addr: SocketAddr) -> TcpStream {
        TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connect: {e}"))
    }

    /// Read until the peer closes (or `limit`): (bytes, closed).
    async fn read_to_close(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                Err(_) => return (out, false),
                Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            }
        }
    }

    #[tokio::test]
    async fn idle_keep_alive_connections_close_after_the_idle_time_not_the_header_time() {
        let (addr, token, task) = start(limits(200, 800, 100)).await;
        let mut s = connect(addr).await;
        assert!(s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.is_ok());
        let mut buf = [0u8; 1024];
        let n = s.read(&mut buf).await.unwrap_or(0);
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        // Idle well past the header timeout: still open.
        let started = Instant::now();
        let (_, closed) = read_to_close(&mut s, Duration::from_millis(500)).await;
        assert!(!closed, "closed while idle before IdleTimeout");
        // Closed once idle for the idle time.
        let (_, closed) = read_to_close(&mut s, Duration::from_secs(3)).await;
        assert!(closed, "idle connection not closed");
        let idle_for = started.elapsed();
        assert!(idle_for >= Duration::from_millis(700), "{idle_for:?}");
        token.cancel();
        assert!(tokio::time::timeout(Duration::from_secs(8), task).await.is_ok());
    }

    #[tokio::test]
    async fn silent_and_slow_heads_are_closed_and_limits_refuse_extra_connections() {
        let (addr, token, task) = start(limits(300, 10_000, 3)).await;
        // Nothing sent at all.
        let mut silent = connect(addr).await;
        // A head trickling in.
        let mut slow = connect(addr).await;
        assert!(slow.write_all(b"GET / HTTP/1.1\r\n").await.is_ok());
        let mut third = connect(addr).await;
        // Over the limit of 3: closed at once.
        let mut extra = connect(addr).await;
        let (_, closed) = read_to_close(&mut extra, Duration::from_secs(2)).await;
        assert!(closed, "connection over the limit not closed");
        let start = Instant::now();
        let (_, silent_closed) = read_to_close(&mut silent, Duration::from_secs(3)).await;
        let (_, slow_closed) = read_to_close(&mut slow, Duration::from_secs(3)).await;
        let (_, third_closed) = read_to_close(&mut third, Duration::from_secs(3)).await;
        assert!(silent_closed && slow_closed && third_closed);
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
        // Room again: a normal request works.
        let mut s = connect(addr).await;
        assert!(s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.is_ok());
        let (bytes, _) = read_to_close(&mut s, Duration::from_secs(3)).await;
        let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
        assert!(text.starts_with("http/1.1 200"), "{text}");
        assert!(text.contains("content-length: 2\r\n") && !text.contains("chunked"), "{text}");
        token.cancel();
        assert!(tokio::time::timeout(Duration::from_secs(8), task).await.is_ok());
    }

    #[tokio::test]
    async fn shutdown_lets_in_flight_requests_finish_and_stops_accepting() {
        let (addr, token, task) = start(limits(1000, 10_000, 100)).await;
        let mut s = connect(addr).await;
        assert!(s.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await.is_ok());
        tokio::time::sleep(Duration::from_millis(100)).await;
        token.cancel();
        let (bytes, closed) = read_to_close(&mut s, Duration::from_secs(3)).await;
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("slow"), "{text}");
        assert!(closed);
        assert!(tokio::time::timeout(Duration::from_secs(3), task).await.is_ok());
        assert!(TcpStream::connect(addr).await.is_err(), "still accepting after shutdown");
    }
}
