//! (manual in progress)
pub mod codec;
pub mod demux;
pub mod flv;
pub mod media;
pub mod ts_demux;
pub mod ts_mux;
