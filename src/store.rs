//! The in-memory object store: what the packager published, per stream,
//! ready for HTTP. Ending a stream removes all its objects at once, so every
//! URL of it answers 404 (which is what makes a CDN fail over).

use std::collections::HashMap;
use std::sync::RwLock;

use bytes::Bytes;

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

#[derive(Default)]
pub struct Store {
    streams: RwLock<HashMap<StreamKey, HashMap<String, Bytes>>>,
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    pub fn get(&self, key: &StreamKey, name: &str) -> Option<Bytes> {
        let streams = self.streams.read().unwrap_or_else(|e| e.into_inner());
        streams.get(key)?.get(name).cloned()
    }

    /// Publish (or replace) an object.
    pub fn put(&self, key: &StreamKey, name: String, bytes: Bytes) {
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        streams.entry(key.clone()).or_default().insert(name, bytes);
    }

    pub fn remove(&self, key: &StreamKey, name: &str) {
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = streams.get_mut(key) {
            s.remove(name);
        }
    }

    /// Remove every object of a stream.
    pub fn remove_stream(&self, key: &StreamKey) {
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        streams.remove(key);
    }

    /// Number of objects of a stream (0 if none).
    #[cfg(test)]
    pub fn count(&self, key: &StreamKey) -> usize {
        let streams = self.streams.read().unwrap_or_else(|e| e.into_inner());
        streams.get(key).map_or(0, HashMap::len)
    }
}
