//! Lockstep: a live-streaming origin that runs as a byte-identical redundant
//! pair. The `lockstep` binary (src/main.rs) is a thin command line over this
//! library; the library form exists so that fuzz targets and benchmarks can
//! reach the parsers and the server's building blocks.

pub mod api;
pub mod config;
pub mod http;
pub mod http_server;
pub mod ingest;
pub mod mem;
pub mod metrics;
pub mod package;
pub mod peer;
pub mod server;
pub mod session_key;
pub mod sign_url;
pub mod store;
pub mod throttle;
pub mod timeline;
pub mod verify;
