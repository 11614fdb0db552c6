//! Timeline agreement with the peer (contract §3).
//!
//! When a node of a pair starts a stream, it holds the encoder's samples and
//! asks its peer whether it has the stream live:
//!
//! - **The peer has it, and its timeline should win** (this node is the
//!   backup, or the peer's session is older than ours by more than
//!   [`ADOPT_MIN_AGE_MS`], i.e. we restarted while it carried on): we adopt
//!   the peer's timeline exactly, by finding a keyframe we received among the
//!   peer's recent keyframe fingerprints (hash of the sample bytes → its
//!   timeline DTS); offset = peer DTS − our encoder DTS. With it we take the
//!   peer's grid anchor, so we cut and number as it does, and publish from
//!   the next whole segment.
//! - **The peer does not have it**: the main goes on alone at once; the
//!   backup asks again for up to [`BACKUP_WAIT_MS`] (both started together:
//!   the main's timeline wins), then goes on alone.
//! - **The peer is unreachable**: alone.
//!
//! Nothing is published before this is settled; the samples held meanwhile
//! are mapped with the settled timeline.

use std::collections::HashMap;
use std::time::Duration;

use lockstep_packager::{Anchor, Sample, Timescale};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::config::PairRole;
use crate::peer::{fingerprint, PeerClient, PeerError, PeerStream};
use crate::store::StreamKey;

/// A main adopts its peer's timeline only if the peer's session is at least
/// this much older than its own (it restarted while the backup carried on);
/// when both start together the main's timeline wins.
pub const ADOPT_MIN_AGE_MS: i64 = 2000;
/// How long a backup waits for the main to have a stream it started too.
pub const BACKUP_WAIT_MS: u64 = 2000;
/// How long to look for a keyframe the peer also has before going alone.
pub const MATCH_DEADLINE_MS: u64 = 6000;
/// Samples held while agreeing, at most (then: alone).
const MAX_HELD: usize = 6000;

/// How the stream's timeline was settled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Our own timeline (TimestampMode as configured).
    Alone,
    /// The peer's: add `offset_90k` to encoder timestamps; cut with `anchor`.
    Adopt { offset_90k: i64, anchor: Option<Anchor>, peer: Box<PeerStream> },
}

type Fetch = JoinHandle<Result<Option<PeerStream>, PeerError>>;

enum Phase {
    /// Asking the peer.
    Fetching(Fetch),
    /// The peer has the stream: looking for a common keyframe.
    Matching {
        peer: PeerStream,
        refetch: Option<Fetch>,
    },
    Done,
}

pub struct Agreement {
    client: PeerClient,
    role: PairRole,
    key: StreamKey,
    started_ms: i64,
    started: Instant,
    phase: Phase,
    /// Encoder samples held until the timeline is settled: (timescale,
    /// sample, is the driving track).
    held: Vec<(Timescale, Sample, bool)>,
}

fn spawn_fetch(client: &PeerClient, key: &StreamKey, delay: Duration) -> Fetch {
    let (c, app, stream) = (client.clone(), key.app.clone(), key.stream.clone());
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        c.stream_state(&app, &stream).await
    })
}

impl Agreement {
    pub fn start(client: PeerClient, role: PairRole, key: StreamKey, started_ms: i64) -> Agreement {
        let phase = Phase::Fetching(spawn_fetch(&client, &key, Duration::ZERO));
        Agreement { client, role, key, started_ms, started: Instant::now(), phase, held: Vec::new() }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Done)
    }

    /// The held samples, in arrival order (after a decision).
    pub fn take_held(&mut self) -> Vec<(Timescale, Sample, bool)> {
        std::mem::take(&mut self.held)
    }

    /// Hold a sample; a decision if it settles the matter.
    pub fn push(&mut self, ts: Timescale, s: Sample, driver: bool) -> Option<Decision> {
        self.held.push((ts, s, driver));
        if self.held.len() >= MAX_HELD {
            warn!(stream = %self.key, peer = self.client.addr(), "timeline agreement took too long; going on alone");
            self.phase = Phase::Done;
            return Some(Decision::Alone);
        }
        self.try_match()
    }

    /// Wait for the pending peer answer (pending forever when none).
    pub async fn wait(&mut self) -> Result<Option<PeerStream>, PeerError> {
        let handle = match &mut self.phase {
            Phase::Fetching(h) => h,
            Phase::Matching { refetch: Some(h), .. } => h,
            _ => return std::future::pending().await,
        };
        let r = handle.await;
        match r {
            Ok(r) => r,
            Err(e) => Err(PeerError::Unreachable { addr: self.client.addr().to_string(), why: e.to_string() }),
        }
    }

    /// A peer answer arrived (from [`Agreement::wait`]).
    pub fn on_answer(&mut self, answer: Result<Option<PeerStream>, PeerError>) -> Option<Decision> {
        let elapsed = self.started.elapsed();
        match answer {
            Err(e) => {
                info!(stream = %self.key, reason = %e, "peer unreachable; this node's timeline is its own");
                self.phase = Phase::Done;
                Some(Decision::Alone)
            }
            Ok(None) => {
                if self.role == PairRole::Backup && elapsed < Duration::from_millis(BACKUP_WAIT_MS) {
                    self.phase = Phase::Fetching(spawn_fetch(&self.client, &self.key, Duration::from_millis(200)));
                    return None;
                }
                info!(stream = %self.key, peer = self.client.addr(), "the peer does not have this stream; this node's timeline is its own");
                self.phase = Phase::Done;
                Some(Decision::Alone)
            }
            Ok(Some(peer)) => {
                let peer_is_older = peer.started_ms + ADOPT_MIN_AGE_MS < self.started_ms;
                if self.role == PairRole::Main && !peer_is_older {
                    info!(stream = %self.key, peer = self.client.addr(), "both nodes started this stream together; the main's timeline wins");
                    self.phase = Phase::Done;
                    return Some(Decision::Alone);
                }
                self.phase = Phase::Matching { peer, refetch: None };
                self.try_match()
            }
        }
    }

    /// In Matching: find a held driving keyframe the peer also has.
    fn try_match(&mut self) -> Option<Decision> {
        let Phase::Matching { peer, refetch } = &mut self.phase else { return None };
        // Fingerprints that occur once in the peer's list.
        let mut counts: HashMap<&str, (usize, i64)> = HashMap::new();
        for (h, dts) in &peer.keyframes {
            let e = counts.entry(h.as_str()).or_insert((0, *dts));
            e.0 += 1;
        }
        for (ts, s, driver) in &self.held {
            if !*driver || !s.keyframe {
                continue;
            }
            if let Some((1, peer_dts)) = counts.get(fingerprint(&s.data).as_str()) {
                let src_90k = ts.convert_floor(s.dts, Timescale::MPEG);
                let offset_90k = peer_dts - src_90k;
                info!(stream = %self.key, peer = self.client.addr(), offset_90k, "adopted the peer's timeline (matched a keyframe)");
                let decision = Decision::Adopt {
                    offset_90k,
                    anchor: peer.anchor.map(Anchor::from),
                    peer: Box::new(std::mem::take(peer)),
                };
                self.phase = Phase::Done;
                return Some(decision);
            }
        }
        if self.started.elapsed() > Duration::from_millis(MATCH_DEADLINE_MS) {
            warn!(stream = %self.key, peer = self.client.addr(), "no keyframe in common with the peer; this node's timeline is its own (is the peer fed by the same encoder?)");
            self.phase = Phase::Done;
            return Some(Decision::Alone);
        }
        // The peer may lag behind us: ask again shortly.
        if refetch.is_none() {
            *refetch = Some(spawn_fetch(&self.client, &self.key, Duration::from_millis(250)));
        }
        None
    }

    /// A refetched peer state while matching.
    pub fn on_refetch(&mut self, answer: Result<Option<PeerStream>, PeerError>) -> Option<Decision> {
        if let Phase::Matching { peer, refetch } = &mut self.phase {
            *refetch = None;
            if let Ok(Some(p)) = answer {
                *peer = p;
            }
        }
        self.try_match()
    }

    /// Whether the pending answer is a refetch (Matching) rather than the
    /// first question.
    pub fn matching(&self) -> bool {
        matches!(self.phase, Phase::Matching { .. })
    }
}
