//! The in-memory store: what the packager published, per stream, ready for
//! HTTP.
//!
//! Each live stream has a [`StreamState`]: its objects (media and the current
//! playlists), and for each LL-HLS rendition the playlist *as of every recent
//! point* (full and delta), rendered once when the point was published. A
//! blocking request waits on the stream's version channel, which the session
//! bumps after every batch of publications, so thousands of held requests wake
//! together and each re-checks its own condition.
//!
//! Ending a stream removes it at once: every URL answers 404 (which is what
//! makes a CDN fail over) and held requests are released.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use lockstep_packager::Point;
use tokio::sync::watch;

/// `app/stream`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    pub app: String,
    pub stream: String,
}

impl std::fmt::Display for StreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.app, self.stream)
    }
}

/// An object and its entity tag (a hash of the bytes, so it is the same on
/// every node that has the same bytes).
#[derive(Clone, Debug)]
pub struct Obj {
    pub bytes: Bytes,
    pub etag: Arc<str>,
}

impl Obj {
    pub fn new(bytes: Bytes) -> Obj {
        let etag = format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(&bytes));
        Obj { bytes, etag: etag.into() }
    }
}

/// One LL-HLS rendition's playlists by point.
#[derive(Default)]
pub struct Rendition {
    /// The newest point.
    pub last: Option<Point>,
    /// Playlist as of each retained point: (full, delta update).
    pub playlists: BTreeMap<Point, (Obj, Option<Obj>)>,
    /// Last part index of every completed segment still retained.
    pub last_part_of: BTreeMap<u64, u32>,
}

impl Rendition {
    /// The point a request for part (msn, part) resolves to, if it is
    /// published: the part itself, or `(msn + 1, 0)` when `part` is past the
    /// last part of the completed segment `msn` (HLS 6.2.5.2).
    pub fn resolve_part(&self, msn: u64, part: u32) -> Option<Point> {
        let p = Point { msn, part };
        if self.playlists.contains_key(&p) {
            return Some(p);
        }
        let last = *self.last_part_of.get(&msn)?;
        if part > last {
            let next = Point { msn: msn + 1, part: 0 };
            return self.playlists.contains_key(&next).then_some(next);
        }
        None
    }

    /// The point at which segment `msn` was complete.
    pub fn resolve_segment(&self, msn: u64) -> Option<Point> {
        let last = *self.last_part_of.get(&msn)?;
        let p = Point { msn, part: last };
        self.playlists.contains_key(&p).then_some(p)
    }

    /// The part that the current playlist's EXT-X-PRELOAD-HINT names.
    pub fn hinted(&self) -> Option<Point> {
        let last = self.last?;
        Some(if self.last_part_of.get(&last.msn) == Some(&last.part) {
            Point { msn: last.msn + 1, part: 0 }
        } else {
            Point { msn: last.msn, part: last.part + 1 }
        })
    }
}

/// Playlist parameters the HTTP layer needs (limits, cache lifetimes).
#[derive(Clone, Debug, Default)]
pub struct StreamInfo {
    pub target_duration_s: u32,
    pub part_target_ms: u32,
}

#[derive(Default)]
pub struct Inner {
    pub objects: HashMap<String, Obj>,
    /// LL-HLS renditions by label (`video1`, `audio2`).
    pub renditions: HashMap<String, Rendition>,
    pub info: StreamInfo,
    /// The stream's timeline state for the peer link (pairs only).
    pub peer: crate::peer::PeerStream,
    /// The stream ended: everything answers 404.
    pub ended: bool,
    /// Pair: this node adopted its peer's timeline and has not finished
    /// backfilling the window; its playlists answer 404 meanwhile (a CDN
    /// asks the peer), as they would differ from the peer's.
    pub backfilling: bool,
}

/// One live stream's published state.
pub struct StreamState {
    inner: RwLock<Inner>,
    version: watch::Sender<u64>,
}

impl StreamState {
    fn new() -> StreamState {
        StreamState { inner: RwLock::new(Inner::default()), version: watch::Sender::new(0) }
    }

    /// Read the state.
    pub fn read<T>(&self, f: impl FnOnce(&Inner) -> T) -> T {
        f(&self.inner.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Change the state and wake every waiter.
    pub fn update<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let r = f(&mut self.inner.write().unwrap_or_else(|e| e.into_inner()));
        self.version.send_modify(|v| *v = v.wrapping_add(1));
        r
    }

    /// A receiver that sees every later update.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

#[derive(Default)]
pub struct Store {
    streams: RwLock<HashMap<StreamKey, Arc<StreamState>>>,
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    pub fn stream(&self, key: &StreamKey) -> Option<Arc<StreamState>> {
        self.streams.read().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    /// The state of `key`, created empty if needed.
    pub fn open(&self, key: &StreamKey) -> Arc<StreamState> {
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        streams.entry(key.clone()).or_insert_with(|| Arc::new(StreamState::new())).clone()
    }

    /// Remove a stream: its URLs answer 404, held requests are released.
    pub fn remove_stream(&self, key: &StreamKey) {
        let removed = self.streams.write().unwrap_or_else(|e| e.into_inner()).remove(key);
        if let Some(s) = removed {
            s.update(|i| {
                i.ended = true;
                i.objects.clear();
                i.renditions.clear();
            });
        }
    }

    /// An object's bytes.
    #[cfg(test)]
    pub fn get(&self, key: &StreamKey, name: &str) -> Option<Bytes> {
        self.stream(key)?.read(|i| i.objects.get(name).map(|o| o.bytes.clone()))
    }

    /// Number of objects of a stream (0 if none).
    #[cfg(test)]
    pub fn count(&self, key: &StreamKey) -> usize {
        self.stream(key).map_or(0, |s| s.read(|i| i.objects.len()))
    }
}
