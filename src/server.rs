//! The server: bind every configured listener, run providers and HTTP until
//! shutdown, then end every stream and wait for the sessions.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::config::Config;
use crate::http::HttpState;
use crate::http_server;
use crate::ingest::{mpegts, rtmp, srt, Registry};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::timeline::Clock;

// `GET /health` and its background monitor.
#[path = "health.rs"]
pub mod health;

/// How long shutdown waits for sessions and connections to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Run until `shutdown` is cancelled.
pub async fn run(config: Config, clock: Arc<dyn Clock>, shutdown: CancellationToken) -> Result<()> {
    let config = Arc::new(config);
    // Certificates first: a bad file stops the server before it binds.
    let tls = match config.http.tls_port {
        Some(_) if config.bind.llhls.is_some() => Some(http_server::load_tls(&config.http.certs)?),
        _ => None,
    };
    let store = Arc::new(Store::new());
    let metrics = Arc::new(Metrics::new());
    let registry = Registry::with_metrics(config.clone(), store.clone(), clock, shutdown.clone(), metrics.clone());
    let ip = config.ip;
    let mut tasks = tokio::task::JoinSet::new();
    let http_state = HttpState::new(store.clone(), config.clone());
    let health = health::Health::new(config.pair.clone(), metrics.clone());
    tasks.spawn(health.clone().run(registry.clone(), store.clone(), http_state.clone(), shutdown.clone()));

    if let Some(port) = config.bind.rtmp {
        let addr = SocketAddr::new(ip, port);
        let l = TcpListener::bind(addr).await.with_context(|| format!("binding RTMP to {addr}"))?;
        info!(%addr, "RTMP provider listening");
        tasks.spawn(rtmp::serve(l, registry.clone(), shutdown.clone()));
    }
    if let Some(port) = config.bind.srt {
        let addr = SocketAddr::new(ip, port);
        let (r, s) = (registry.clone(), shutdown.clone());
        info!(%addr, "SRT provider listening");
        tasks.spawn(async move {
            if let Err(e) = srt::serve(addr, r, s).await {
                tracing::error!(%addr, error = %e, "SRT provider stopped");
            }
        });
    }
    if !config.bind.mpegts.is_empty() {
        let mut sockets = Vec::new();
        for &port in &config.bind.mpegts {
            let addr = SocketAddr::new(ip, port);
            sockets.push(UdpSocket::bind(addr).await.with_context(|| format!("binding MPEG-TS/UDP to {addr}"))?);
            info!(%addr, "MPEGTS provider listening (UDP)");
        }
        tasks.spawn(mpegts::serve(sockets, registry.clone(), shutdown.clone()));
    }
    if let Some(port) = config.bind.llhls {
        let addr = SocketAddr::new(ip, port);
        let l = TcpListener::bind(addr).await.with_context(|| format!("binding LLHLS (HTTP) to {addr}"))?;
        let mut app = crate::metrics::delivery_router(http_state, metrics.clone());
        if let Some(pair) = &config.pair {
            // The peer link shares the LLHLS port (signed requests only).
            app = app.merge(crate::peer::routes(store.clone(), &pair.secret));
        }
        app = app.merge(health::router(health.clone()));
        let limits = config.http.limits;
        if let (Some(tls_port), Some(tls)) = (config.http.tls_port, tls) {
            let tls_addr = SocketAddr::new(ip, tls_port);
            let tl = TcpListener::bind(tls_addr)
                .await
                .with_context(|| format!("binding LLHLS TLSPort (HTTPS) to {tls_addr}"))?;
            info!(addr = %tls_addr, "HTTPS (LL-HLS, HLS) listening");
            tasks.spawn(http_server::serve(tl, Some(tls), app.clone(), limits, shutdown.clone()));
        }
        info!(%addr, "HTTP (LL-HLS, HLS) listening");
        tasks.spawn(http_server::serve(l, None, app, limits, shutdown.clone()));
    }

    if let Some(api) = &config.api {
        let addr = SocketAddr::new(ip, api.port);
        let l = TcpListener::bind(addr).await.with_context(|| format!("binding the API (HTTP) to {addr}"))?;
        info!(%addr, "API and metrics listening");
        let state = crate::api::ApiState::new(
            config.clone(),
            registry.clone(),
            store.clone(),
            metrics.clone(),
            &api.access_token,
        );
        let app = crate::api::router(state)
            .merge(health::router(health.clone()))
            .into_make_service_with_connect_info::<SocketAddr>();
        let s = shutdown.clone();
        tasks.spawn(async move {
            let _ = axum::serve(l, app).with_graceful_shutdown(async move { s.cancelled().await }).await;
        });
    }

    shutdown.cancelled().await;
    info!("shutting down: ending streams");
    let wait = async {
        registry.drain().await;
        while tasks.join_next().await.is_some() {}
    };
    if tokio::time::timeout(SHUTDOWN_GRACE, wait).await.is_err() {
        info!("shutdown grace period over; exiting");
    }
    Ok(())
}
