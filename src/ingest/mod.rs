//! Ingest: providers (RTMP, SRT, MPEG-TS) turn network input into
//! [`DemuxEvent`]s and hand them to a [`Publisher`]; each live stream has one
//! session task that runs the timeline and the packager and fills the store.
//!
//! A provider asks the [`Registry`] for a publisher (`app/stream`); the
//! registry refuses unknown applications, disabled providers and a second
//! publisher for a live stream. Dropping the publisher ends the stream; the
//! session ends it too on silence (`PacketSilenceTimeoutMs`), on a bad
//! stream, or at shutdown, and the provider learns it through
//! [`Publisher::ended`] and drops the connection.

mod agree;
pub mod auth;
mod limits;
pub mod mpegts;
pub mod rtmp;
mod session;
pub mod srt;

pub use session::StreamSummary;

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lockstep_packager::demux::DemuxEvent;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, ProviderSettings};
use crate::metrics::Metrics;
use crate::store::{Store, StreamKey};
use crate::timeline::Clock;

/// Which provider a publisher came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    Rtmp,
    Srt,
    Mpegts,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Provider::Rtmp => "RTMP",
            Provider::Srt => "SRT",
            Provider::Mpegts => "MPEGTS",
        })
    }
}

/// Why a publish request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PublishError {
    #[error("unknown application {app:?}")]
    UnknownApp { app: String },
    #[error("application {app:?} does not accept {provider} publishing")]
    ProviderDisabled { app: String, provider: Provider },
    #[error("invalid stream name {stream:?}: use letters, digits, '.', '_' and '-'")]
    InvalidStreamName { stream: String },
    #[error("stream {key} is already live (from {provider} {peer}); the first publisher keeps it")]
    AlreadyLive { key: StreamKey, provider: Provider, peer: SocketAddr },
    #[error("stream {key} is ending; publish again in a moment")]
    Ending { key: StreamKey },
    #[error("the server is shutting down")]
    ShuttingDown,
    #[error("not authorized to publish {app}/{stream}: {reason}")]
    Unauthorized { app: String, stream: String, reason: auth::AuthError },
}

/// The stream ended; stop sending.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("stream ended")]
pub struct Ended;

/// A live publisher's handle on its stream.
pub struct Publisher {
    key: StreamKey,
    tx: mpsc::Sender<Vec<DemuxEvent>>,
    ended: CancellationToken,
}

impl Publisher {
    pub fn key(&self) -> &StreamKey {
        &self.key
    }

    /// Hand demuxed events (in arrival order) to the stream. Waits when the
    /// session is behind (bounded queue); `Err(Ended)` once the stream ended.
    pub async fn send(&self, events: Vec<DemuxEvent>) -> Result<(), Ended> {
        if events.is_empty() {
            return Ok(());
        }
        tokio::select! {
            r = self.tx.send(events) => r.map_err(|_| Ended),
            () = self.ended.cancelled() => Err(Ended),
        }
    }

    /// Completes when the stream has ended (silence, bad input, shutdown).
    pub fn ended(&self) -> CancellationToken {
        self.ended.clone()
    }

    pub fn is_ended(&self) -> bool {
        self.ended.is_cancelled()
    }
}

struct Live {
    session: u64,
    provider: Provider,
    peer: SocketAddr,
    ended: CancellationToken,
    summary: Arc<StreamSummary>,
}

/// The streams that are live, and how to start one.
pub struct Registry {
    config: Arc<Config>,
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    live: Mutex<HashMap<StreamKey, Live>>,
    next_session: AtomicU64,
    shutdown: CancellationToken,
    tasks: Mutex<JoinSet<()>>,
    metrics: Arc<Metrics>,
    /// The peer link, when this node is one of a pair.
    pair: Option<(crate::peer::PeerClient, crate::config::PairRole)>,
}

/// Events queued from a provider to its session before it waits.
const QUEUE: usize = 256;

/// Stream names are URL path elements.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s != "."
        && s != ".."
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

impl Registry {
    /// A registry with its own metrics (tests).
    #[cfg(test)]
    pub fn new(
        config: Arc<Config>,
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        shutdown: CancellationToken,
    ) -> Arc<Registry> {
        Registry::with_metrics(config, store, clock, shutdown, Arc::new(Metrics::new()))
    }

    /// The registry, counting into `metrics`.
    pub fn with_metrics(
        config: Arc<Config>,
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        shutdown: CancellationToken,
        metrics: Arc<Metrics>,
    ) -> Arc<Registry> {
        let pair = config.pair.as_ref().map(|p| (crate::peer::PeerClient::new(&p.peer_url, &p.secret), p.role));
        Arc::new(Registry {
            pair,
            config,
            store,
            clock,
            live: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(1),
            shutdown,
            tasks: Mutex::new(JoinSet::new()),
            metrics,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    #[cfg(test)]
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The provider settings of `app` for `provider`, if it accepts it.
    pub fn provider_settings(&self, app: &str, provider: Provider) -> Result<ProviderSettings, PublishError> {
        let a = self.config.app(app).ok_or_else(|| PublishError::UnknownApp { app: app.to_string() })?;
        let s = match provider {
            Provider::Rtmp => a.rtmp.clone(),
            Provider::Srt => a.srt.as_ref().map(|s| s.common.clone()),
            Provider::Mpegts => a.mpegts.as_ref().map(|s| s.common.clone()),
        };
        s.ok_or(PublishError::ProviderDisabled { app: app.to_string(), provider })
    }

    /// Check a publisher's credentials (publish key, signed policy) for
    /// `app/stream`; `url` is the URL or stream id as presented, query
    /// included (see [`auth`]). A refusal is counted.
    pub fn authorize(
        &self,
        provider: Provider,
        app: &str,
        stream: &str,
        url: &str,
        peer: SocketAddr,
    ) -> Result<auth::Grant, PublishError> {
        let request = auth::Request { provider, app, url, peer: peer.ip() };
        auth::authorize(&self.config, &request, auth::now_ms()).map_err(|reason| {
            let e = PublishError::Unauthorized { app: app.to_string(), stream: stream.to_string(), reason };
            self.metrics.publish_rejected(&e);
            e
        })
    }

    /// Start publishing `app/stream` (a refusal is counted).
    pub fn publish(
        self: &Arc<Self>,
        app: &str,
        stream: &str,
        provider: Provider,
        peer: SocketAddr,
    ) -> Result<Publisher, PublishError> {
        let r = self.try_publish(app, stream, provider, peer);
        if let Err(e) = &r {
            self.metrics.publish_rejected(e);
        }
        r
    }

    fn try_publish(
        self: &Arc<Self>,
        app: &str,
        stream: &str,
        provider: Provider,
        peer: SocketAddr,
    ) -> Result<Publisher, PublishError> {
        if self.shutdown.is_cancelled() {
            return Err(PublishError::ShuttingDown);
        }
        let settings = self.provider_settings(app, provider)?;
        if !valid_name(stream) {
            return Err(PublishError::InvalidStreamName { stream: stream.to_string() });
        }
        let key = StreamKey { app: app.to_string(), stream: stream.to_string() };
        let app_cfg = self.config.app(app).cloned().ok_or_else(|| PublishError::UnknownApp { app: app.to_string() })?;
        let session = self.next_session.fetch_add(1, Ordering::Relaxed);
        let ended = self.shutdown.child_token();
        let summary = {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(l) = live.get(&key) {
                if l.ended.is_cancelled() {
                    return Err(PublishError::Ending { key });
                }
                return Err(PublishError::AlreadyLive { key, provider: l.provider, peer: l.peer });
            }
            let counters = self.metrics.open_stream(&key);
            let summary = Arc::new(StreamSummary::new(provider, peer, settings.timestamp_mode, counters));
            live.insert(key.clone(), Live { session, provider, peer, ended: ended.clone(), summary: summary.clone() });
            summary
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let ctx = session::SessionContext {
            key: key.clone(),
            session,
            provider,
            peer,
            settings,
            app: app_cfg,
            store: self.store.clone(),
            clock: self.clock.clone(),
            ended: ended.clone(),
            registry: Arc::downgrade(self),
            summary,
            metrics: self.metrics.clone(),
            pair: self.pair.clone(),
            keyframe_warnings: crate::throttle::Throttle::new(session::REPEATED_WARNING_EVERY),
        };
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.spawn(session::run(ctx, rx));
        // Reap finished sessions so the set does not grow.
        while tasks.try_join_next().is_some() {}
        Ok(Publisher { key, tx, ended })
    }

    /// The live streams, sorted.
    pub fn live_streams(&self) -> Vec<StreamKey> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<StreamKey> =
            live.iter().filter(|(_, l)| !l.ended.is_cancelled()).map(|(k, _)| k.clone()).collect();
        v.sort();
        v
    }

    /// The summary of the live stream `key` (None once it is ending).
    pub fn summary(&self, key: &StreamKey) -> Option<Arc<StreamSummary>> {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(key).filter(|l| !l.ended.is_cancelled()).map(|l| l.summary.clone())
    }

    /// End the live stream `key` (API `DELETE`): its session stops, its
    /// URLs answer 404 and the publisher is disconnected. False if it is
    /// not live (or already ending).
    pub fn end(&self, key: &StreamKey) -> bool {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        match live.get(key).filter(|l| !l.ended.is_cancelled()) {
            Some(l) => {
                l.summary.mark_deleted();
                l.ended.cancel();
                true
            }
            None => false,
        }
    }

    /// Whether the session of `key` is still running (live or ending).
    pub fn has_session(&self, key: &StreamKey) -> bool {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).contains_key(key)
    }

    /// Called by a session when it is over.
    fn finished(&self, key: &StreamKey, session: u64) {
        let removed = {
            let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
            if live.get(key).is_some_and(|l| l.session == session) {
                live.remove(key)
            } else {
                None
            }
        };
        if let Some(l) = removed {
            self.metrics.close_stream(key, &l.summary.counters);
        }
    }

    /// Wait for every session to finish (after shutdown was signalled).
    pub async fn drain(&self) {
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        while tasks.join_next().await.is_some() {}
    }
}
