//! End-to-end tests of the HTTP server under the LL-HLS router, with the
//! real `lockstep` binary: HTTP/2 by prior knowledge (h2c), HTTPS with ALPN
//! (`h2` and `http/1.1`), slowloris, the connection limit, oversized headers
//! and hostile paths, and the TLS configuration errors. Every wait is
//! bounded; every process is killed by its PID (the harness's `Proc`).

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream as StdTcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

// ------------------------------------------------------------ helpers ---

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

/// The harness's Server.xml for `ports` with `extra` added to
/// `Bind/Publishers/LLHLS` and `host` to the virtual host.
fn xml_with(ports: Ports, extra: &str, host: &str) -> String {
    let xml = server_xml(ports, &[AppXml::default()]);
    let llhls = format!("<LLHLS><Port>{}</Port></LLHLS>", ports.http);
    assert!(xml.contains(&llhls), "harness Server.xml changed:\n{xml}");
    let xml = xml.replace(&llhls, &format!("<LLHLS><Port>{}</Port>{extra}</LLHLS>", ports.http));
    xml.replacen("<Name>default</Name>", &format!("<Name>default</Name>{host}"), 1)
}

/// Start `lockstep` with `xml` written to `dir/Server.xml` (so that
/// relative certificate paths are relative to `dir`).
fn start_in(dir: PathBuf, ports: Ports, xml: &str) -> Server {
    let conf = dir.join("Server.xml");
    std::fs::write(&conf, xml).expect("write config");
    let log = dir.join("lockstep.log");
    let out = std::fs::File::create(&log).expect("log file");
    let err = out.try_clone().expect("log file");
    let proc = Proc::spawn(
        "lockstep",
        Command::new(env!("CARGO_BIN_EXE_lockstep"))
            .arg("--config")
            .arg(&conf)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err),
    );
    let mut server = Server { proc, ports, dir, log };
    wait_for("the HTTP port to accept connections", Duration::from_secs(15), || {
        assert!(server.proc.running(), "lockstep exited early:\n{}", server.log_text());
        StdTcpStream::connect(("127.0.0.1", ports.http)).ok()
    });
    server
}

/// A self-signed certificate for `localhost`, written to `dir/tls/`:
/// returns the certificate's PEM.
fn write_certificate(dir: &Path) -> String {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
    std::fs::create_dir_all(dir.join("tls")).expect("tls dir");
    std::fs::write(dir.join("tls/cert.pem"), c.cert.pem()).expect("write cert");
    std::fs::write(dir.join("tls/key.pem"), c.signing_key.serialize_pem()).expect("write key");
    c.cert.pem()
}

const HOST_TLS: &str =
    "<Host><Names><Name>*</Name></Names><TLS><CertPath>tls/cert.pem</CertPath><KeyPath>tls/key.pem</KeyPath></TLS></Host>";

/// A TLS client trusting only `cert_pem`, offering `alpn`.
fn tls_connector(cert_pem: &str, alpn: &[&[u8]]) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(cert.expect("PEM certificate")).expect("root certificate");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

/// A response: status, HTTP version, body.
#[derive(Debug)]
struct Got {
    status: u16,
    version: Version,
    body: Vec<u8>,
}

fn request(authority: &str, path: &str) -> Request<Empty<Bytes>> {
    Request::get(format!("http://{authority}{path}")).header("host", authority).body(Empty::new()).expect("request")
}

/// One GET over HTTP/2 on `io` (prior knowledge or after ALPN `h2`).
async fn h2_get<I>(io: I, path: &str) -> Result<Got, String>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .map_err(|e| format!("h2 handshake: {e}"))?;
    tokio::spawn(conn);
    let mut req = request("localhost", path);
    req.headers_mut().remove("host");
    let resp = send.send_request(req).await.map_err(|e| format!("h2 request: {e}"))?;
    let (status, version) = (resp.status().as_u16(), resp.version());
    let body = resp.into_body().collect().await.map_err(|e| format!("h2 body: {e}"))?.to_bytes().to_vec();
    Ok(Got { status, version, body })
}

/// One GET over HTTP/1.1 on `io`.
async fn h1_get<I>(io: I, path: &str) -> Result<Got, String>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(io)).await.map_err(|e| format!("h1 handshake: {e}"))?;
    tokio::spawn(conn);
    let resp = send.send_request(request("localhost", path)).await.map_err(|e| format!("h1 request: {e}"))?;
    let (status, version) = (resp.status().as_u16(), resp.version());
    let body = resp.into_body().collect().await.map_err(|e| format!("h1 body: {e}"))?.to_bytes().to_vec();
    Ok(Got { status, version, body })
}

/// HTTP/2 with prior knowledge on the plain port.
async fn h2c_get(port: u16, path: &str) -> Result<Got, String> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    tokio::time::timeout(Duration::from_secs(10), h2_get(tcp, path)).await.map_err(|_| "h2c timed out".to_owned())?
}

/// HTTPS on `port`: the protocol ALPN chose, and the response.
async fn tls_get(port: u16, connector: &TlsConnector, path: &str) -> Result<(Option<Vec<u8>>, Got), String> {
    let fut = async {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
        let name = ServerName::try_from("localhost".to_owned()).map_err(|e| e.to_string())?;
        let tls = connector.connect(name, tcp).await.map_err(|e| format!("TLS handshake: {e}"))?;
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        let got = if alpn.as_deref() == Some(b"h2") { h2_get(tls, path).await? } else { h1_get(tls, path).await? };
        Ok((alpn, got))
    };
    tokio::time::timeout(Duration::from_secs(10), fut).await.map_err(|_| "HTTPS timed out".to_owned())?
}

/// Send raw bytes, read the answer until close (at most 5 s): (status, whole
/// answer). Status 0: no HTTP answer (closed or reset).
fn raw_request(port: u16, bytes: &[u8]) -> (u16, Vec<u8>) {
    let Ok(mut s) = StdTcpStream::connect(("127.0.0.1", port)) else { return (0, Vec::new()) };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let status = std::str::from_utf8(&out)
        .ok()
        .or_else(|| out.get(..12).and_then(|h| std::str::from_utf8(h).ok()))
        .and_then(|t| t.strip_prefix("HTTP/1.1 "))
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

/// Whether the server answers a plain request (any status; at most 5 s).
fn answers(port: u16) -> bool {
    let (status, _) = raw_request(port, b"GET /app/none/llhls.m3u8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    status != 0
}

/// Whether a connection was closed by the server (EOF or reset) rather
/// than still open.
fn closed(s: &mut StdTcpStream) -> bool {
    let _ = s.set_nonblocking(true);
    let mut buf = [0u8; 256];
    let r = loop {
        match s.read(&mut buf) {
            Ok(n) if n > 0 => continue,
            r => break r,
        }
    };
    let _ = s.set_nonblocking(false);
    !matches!(r, Err(e) if e.kind() == ErrorKind::WouldBlock)
}

// -------------------------------------------------------------- tests ---

#[test]
fn h2c_and_https_with_alpn_serve_the_same_bytes_as_plain_http() {
    let ports = Ports::free();
    let tls_port = free_tcp_port();
    let dir = temp_dir("http2-tls");
    let cert = write_certificate(&dir);
    let xml = xml_with(ports, &format!("<TLSPort>{tls_port}</TLSPort>"), HOST_TLS);
    let server = start_in(dir.clone(), ports, &xml);
    let log = server.wait_log("HTTPS (LL-HLS, HLS) listening", Duration::from_secs(5));
    assert!(log.contains(&tls_port.to_string()), "{log}");

    let input = standard_input(&dir, "flv", 20);
    let _push = ffmpeg_push(&input, "flv", &server.rtmp_url("app", "stream"));
    let media = wait_for("the video playlist with a complete segment", Duration::from_secs(20), || {
        let (st, body) = server.get("/app/stream/video1.m3u8");
        let text = String::from_utf8_lossy(&body).into_owned();
        (st == 200 && text.contains("#EXTINF:")).then_some(text)
    });
    // Immutable objects: the init segment and the first complete segment.
    let uris = playlist_uris(&media);
    let init = uris.iter().find(|u| u.ends_with("_init.mp4")).expect("init segment listed").clone();
    let segment = uris.iter().find(|u| !u.contains("init") && u.matches('.').count() == 1).expect("a segment").clone();
    let paths = ["/app/stream/llhls.m3u8".to_owned(), format!("/app/stream/{init}"), format!("/app/stream/{segment}")];

    let rt = runtime();
    let both = tls_connector(&cert, &[b"h2", b"http/1.1"]);
    let h1_only = tls_connector(&cert, &[b"http/1.1"]);
    let no_alpn = tls_connector(&cert, &[]);
    for path in &paths {
        let (st, plain) = server.get(path);
        assert_eq!(st, 200, "{path} over plain HTTP/1.1");
        assert!(!plain.is_empty());
        rt.block_on(async {
            let h2c = h2c_get(ports.http, path).await.unwrap_or_else(|e| panic!("{path} over h2c: {e}"));
            assert_eq!((h2c.status, h2c.version), (200, Version::HTTP_2), "{path} over h2c");
            for (name, connector, want_alpn, want_version) in [
                ("ALPN h2, http/1.1", &both, Some(b"h2".to_vec()), Version::HTTP_2),
                ("ALPN http/1.1", &h1_only, Some(b"http/1.1".to_vec()), Version::HTTP_11),
                ("no ALPN", &no_alpn, None, Version::HTTP_11),
            ] {
                let (alpn, got) =
                    tls_get(tls_port, connector, path).await.unwrap_or_else(|e| panic!("{path} over TLS, {name}: {e}"));
                assert_eq!(alpn, want_alpn, "{path} over TLS, {name}");
                assert_eq!((got.status, got.version), (200, want_version), "{path} over TLS, {name}");
                if !path.ends_with(".m3u8") {
                    assert!(got.body == plain, "{path} over TLS, {name}: other bytes than plain HTTP");
                }
            }
            if !path.ends_with(".m3u8") {
                assert!(h2c.body == plain, "{path} over h2c: other bytes than plain HTTP");
            }
        });
    }
    // A client that does not trust the certificate fails the handshake; the
    // server goes on.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen").cert.pem();
    rt.block_on(async {
        let err = tls_get(tls_port, &tls_connector(&other, &[b"h2"]), &paths[0]).await;
        assert!(err.is_err(), "untrusted certificate accepted: {err:?}");
        let ok = tls_get(tls_port, &both, &paths[0]).await;
        assert!(ok.is_ok_and(|(_, g)| g.status == 200));
    });
    assert!(server.log_text().lines().all(|l| !l.contains("panicked")), "{}", server.log_text());
}

#[test]
fn slowloris_connections_are_closed_after_the_header_timeout() {
    let ports = Ports::free();
    let dir = temp_dir("slowloris");
    let _server = start_in(dir, ports, &xml_with(ports, "<HeaderReadTimeoutMs>1000</HeaderReadTimeoutMs>", ""));
    let rt = runtime();
    let port = ports.http;
    let (lifetimes, normal) = rt.block_on(async move {
        let mut tasks = Vec::new();
        for i in 0..200 {
            tasks.push(tokio::spawn(async move {
                let start = Instant::now();
                let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else { return None };
                let _ = s.write_all(b"GET /app/stream/llhls.m3u8 HTTP/1.1\r\nHost: x\r\n").await;
                let mut buf = [0u8; 1024];
                // Trickle a header line every 200 ms until the server closes;
                // give up after 6 s.
                while start.elapsed() < Duration::from_secs(6) {
                    tokio::select! {
                        r = s.read(&mut buf) => match r {
                            Ok(n) if n > 0 => {}
                            _ => return Some(start.elapsed()),
                        },
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {
                            if s.write_all(format!("X-Slow-{i}: a\r\n").as_bytes()).await.is_err() {
                                return Some(start.elapsed());
                            }
                        }
                    }
                }
                None
            }));
        }
        // Meanwhile, a normal request is answered at once.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = Instant::now();
        let normal = tokio::task::spawn_blocking(move || {
            raw_request(port, b"GET /app/none/llhls.m3u8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        })
        .await
        .map(|(status, _)| (status, started.elapsed()));
        let mut lifetimes = Vec::new();
        for t in tasks {
            lifetimes.push(t.await.ok().flatten());
        }
        (lifetimes, normal)
    });
    let (status, took) = normal.expect("normal request task");
    assert_eq!(status, 404, "a normal request during the attack gets its answer (no such stream)");
    assert!(took < Duration::from_secs(1), "normal request took {took:?}");
    let open: Vec<usize> = lifetimes.iter().enumerate().filter(|(_, l)| l.is_none()).map(|(i, _)| i).collect();
    assert!(open.is_empty(), "{} slow connections still open after 6 s: {open:?}", open.len());
    let times: Vec<Duration> = lifetimes.into_iter().flatten().collect();
    let (min, max) = (times.iter().min().copied(), times.iter().max().copied());
    assert!(min >= Some(Duration::from_millis(900)), "closed before the header timeout: {min:?}");
    assert!(max <= Some(Duration::from_millis(3000)), "closed too late: {max:?}");
    assert!(answers(port), "server down after the attack");
}

#[test]
fn connections_over_the_limit_are_closed_at_once() {
    let ports = Ports::free();
    let dir = temp_dir("max-connections");
    let server = start_in(dir, ports, &xml_with(ports, "<MaxConnections>50</MaxConnections>", ""));
    // Let the harness's readiness probe connection go away.
    std::thread::sleep(Duration::from_millis(300));
    let mut conns: Vec<StdTcpStream> = (0..60)
        .map(|i| StdTcpStream::connect(("127.0.0.1", ports.http)).unwrap_or_else(|e| panic!("connect {i}: {e}")))
        .collect();
    let closed_ones = wait_for("the 10 connections over the limit to be closed", Duration::from_secs(5), || {
        let closed_ones: Vec<usize> =
            conns.iter_mut().enumerate().filter_map(|(i, s)| closed(s).then_some(i)).collect();
        (50..60).all(|i| closed_ones.contains(&i)).then_some(closed_ones)
    });
    // The first 50 stay open (49 if the harness's readiness probe was still
    // counted when they connected).
    assert!(closed_ones.len() <= 11, "connections under the limit were closed: {closed_ones:?}");
    server.wait_log("HTTP connection limit reached", Duration::from_secs(5));
    drop(conns);
    wait_for("a request once the idle connections are gone", Duration::from_secs(5), || {
        answers(ports.http).then_some(())
    });
    assert!(server.log_text().lines().all(|l| !l.contains("panicked")), "{}", server.log_text());
}

#[test]
fn oversized_headers_and_hostile_paths_are_refused_and_the_server_stays_up() {
    let ports = Ports::free();
    let dir = temp_dir("hostile");
    let server = start_in(dir, ports, &xml_with(ports, "", ""));
    let port = ports.http;

    // A 64 KiB header: 431, or the connection is closed.
    let big = format!("GET /app/stream/llhls.m3u8 HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(64 * 1024));
    let (status, _) = raw_request(port, big.as_bytes());
    assert!(status == 431 || status == 0, "64 KiB header: status {status}");
    assert!(answers(port), "server down after a 64 KiB header");

    // The same over HTTP/2: refused (the client or the server), never 200.
    let rt = runtime();
    rt.block_on(async {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .expect("h2c handshake");
        tokio::spawn(conn);
        let mut req = request("localhost", "/app/stream/llhls.m3u8");
        req.headers_mut().remove("host");
        req.headers_mut().insert("x-big", "a".repeat(64 * 1024).parse().expect("header value"));
        let r = tokio::time::timeout(Duration::from_secs(5), send.send_request(req)).await;
        let status = match r {
            Ok(Ok(resp)) => resp.status().as_u16(),
            _ => 0,
        };
        assert_ne!(status, 200, "64 KiB header over HTTP/2 served");
        let got = h2c_get(port, "/app/none/llhls.m3u8").await;
        assert!(got.is_ok_and(|g| g.status == 404), "h2c after an oversized header");
    });

    // Paths that try to leave the URL space, invalid UTF-8, bad request lines.
    let hostile: [&[u8]; 10] = [
        b"GET /app/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /%2e%2e/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /app/stream/..%2f..%2f..%2fetc%2fpasswd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /app/%2e%2e/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /app/%ff%fe/llhls.m3u8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /app/\xff\xfe/llhls.m3u8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET ../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /app/stream/llhls.m3u8 HTTP/1.1\r\nHost: x\r\nX-Bad: \xff\xfe\r\nConnection: close\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all\r\n\r\n",
    ];
    for req in hostile {
        let shown = String::from_utf8_lossy(req).lines().next().unwrap_or_default().to_owned();
        let (status, answer) = raw_request(port, req);
        assert!(matches!(status, 0 | 400 | 404), "{shown}: status {status}");
        let text = String::from_utf8_lossy(&answer);
        assert!(!text.contains("root:"), "{shown}: a file was served:\n{text}");
        assert!(answers(port), "server down after {shown}");
    }
    assert!(server.log_text().lines().all(|l| !l.contains("panicked")), "{}", server.log_text());
}

#[test]
fn tls_configuration_errors_name_the_path_and_the_file() {
    let ports = Ports::free();
    let dir = temp_dir("tls-errors");
    let run = |xml: &str, check_only: bool| {
        std::fs::write(dir.join("Server.xml"), xml).expect("write config");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lockstep"));
        if check_only {
            cmd.arg("--check-config");
        }
        let mut proc = Proc::spawn(
            "lockstep",
            cmd.arg("--config")
                .arg(dir.join("Server.xml"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("err.log")).expect("log")),
        );
        let status = proc.wait_timeout(Duration::from_secs(10)).expect("lockstep exits");
        (status.success(), std::fs::read_to_string(dir.join("err.log")).unwrap_or_default())
    };
    let tls_port = free_tcp_port();
    // TLSPort without a certificate.
    let (ok, err) = run(&xml_with(ports, &format!("<TLSPort>{tls_port}</TLSPort>"), ""), true);
    assert!(!ok && err.contains("Server/Bind/Publishers/LLHLS/TLSPort"), "{err}");
    // A certificate file that does not exist.
    let (ok, err) = run(&xml_with(ports, &format!("<TLSPort>{tls_port}</TLSPort>"), HOST_TLS), true);
    assert!(!ok && err.contains("Host/TLS/CertPath") && err.contains("cert.pem"), "{err}");
    // Files that exist but are not PEM: the server refuses to start, naming the file.
    std::fs::create_dir_all(dir.join("tls")).expect("tls dir");
    std::fs::write(dir.join("tls/cert.pem"), "not a certificate").expect("write");
    std::fs::write(dir.join("tls/key.pem"), "not a key").expect("write");
    let (ok, err) = run(&xml_with(ports, &format!("<TLSPort>{tls_port}</TLSPort>"), HOST_TLS), false);
    assert!(!ok && err.contains("tls/cert.pem") && err.contains("no CERTIFICATE"), "{err}");
    // A good certificate with a key that is not its own.
    write_certificate(&dir);
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
    std::fs::write(dir.join("tls/key.pem"), other.signing_key.serialize_pem()).expect("write");
    let (ok, err) = run(&xml_with(ports, &format!("<TLSPort>{tls_port}</TLSPort>"), HOST_TLS), false);
    assert!(!ok && err.contains("tls/key.pem") && err.contains("does not belong"), "{err}");
}
