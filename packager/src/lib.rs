//! # lockstep-packager
//!
//! A deterministic, sans-IO packager for live streams: H.264 and AAC samples
//! in, LL-HLS (CMAF/fMP4 init segments, parts and segments) and classic HLS
//! (MPEG-TS segments) out, with every playlist written by hand from integer
//! durations.
//!
//! Its one promise: **the output is a pure function of the samples and the
//! configuration.** Two packagers fed the same samples produce byte-identical
//! objects under identical names, even if one started later (a restarted
//! node) or received the samples in different batches. That is what lets a
//! main and a backup origin sit behind one CDN and be swapped at any moment.
//!
//! ## The run loop
//!
//! ```no_run
//! use lockstep_packager::{Config, Output, Packager, StreamDescription, Sample};
//! # fn samples() -> Vec<Sample> { vec![] }
//! # fn description() -> StreamDescription { unimplemented!() }
//! let mut p = Packager::new(description(), Config::default())?;
//! for sample in samples() {
//!     p.push(sample)?;
//!     while let Some(out) = p.poll_output() {
//!         match out {
//!             Output::Object(obj) => { /* store obj.bytes under obj.name */ }
//!             Output::Retire(name) => { /* delete name from the store */ }
//!             Output::Event(e) => { /* log and count */ }
//!             Output::Published { track, point, .. } => { /* wake requests held for this point */ }
//!         }
//!     }
//! }
//! p.finish();
//! # Ok::<(), lockstep_packager::PackagerError>(())
//! ```
//!
//! Nothing in this crate reads a clock, opens a socket or a file, or draws a
//! random number (clippy's `disallowed-methods`/`disallowed-types` in
//! `clippy.toml` enforce it). The caller owns time and IO: ingest turns
//! network input into [`Sample`]s with timeline timestamps (the depacketizers
//! [`flv`] and [`ts_demux`] help), and the delivery layer serves the objects
//! and renders blocking playlists with [`Packager::render_llhls_playlist`].
//!
//! ## The time model
//!
//! - Every timestamp is an integer number of ticks in its track's
//!   [`Timescale`] (90 kHz for video, the sample rate for audio). Durations
//!   in the configuration are integer milliseconds.
//! - Comparisons across timescales are exact (cross multiplication in
//!   `i128`); conversions round in a stated direction. No floating point sits
//!   between a timestamp and an output byte; playlist durations are printed
//!   from ticks with five decimals, rounded half up ([`playlist::fmt_ticks`]).
//! - The timeline is the *server* timeline (after TimestampMode). The
//!   packager does not care what zero means; EXT-X-PROGRAM-DATE-TIME is
//!   `program_date_time_base_ms + start` of each segment.
//!
//! ## The grid
//!
//! Segments and parts are cut on a grid on the timeline, so every node cuts
//! at the same sample wherever it started (see [`grid`] for the exact rules):
//! a segment starts at the first keyframe at or after the next multiple of
//! SegmentDuration (or at the first sample past a small tolerance if the
//! encoder sends no keyframe there, reported as
//! [`Event::KeyframeIntervalTooLong`]); its media sequence number is the
//! grid cell index; parts are cut on a budget inside the segment; audio
//! follows the video's cut points so all renditions share (msn, part)
//! numbering.
//!
//! ## Invariants
//!
//! 1. Same samples (per track, in decode order) and same [`Config`] ⇒ same
//!    objects, same names, same bytes. Track interleaving and batch sizes
//!    never matter.
//! 2. A packager started with [`grid::Start::Joined`] publishes nothing
//!    before the first whole segment; from there on its objects equal those
//!    of a packager that saw the stream from the start.
//! 3. No per-process counter reaches output: `mfhd` sequence numbers
//!    ([`fragment_sequence`]), `tfdt`, TS continuity counters (from zero in
//!    every segment), PCR and media sequence numbers all derive from the
//!    timeline. All creation/modification times in boxes are zero.
//! 4. A playlist rendered as of a point `(msn, part)` is the same text
//!    whenever and wherever it is rendered.
//! 5. Bad input never panics: depacketizers return typed errors with
//!    context; the packager drops samples it cannot place and says so with an
//!    [`Event`].
//!
//! ## Pairs
//!
//! A node that joins a stream its peer already serves passes the peer's
//! [`Anchor`] (grid phase and numbering base, [`Packager::anchor`]) with
//! [`grid::Start::Joined`], and after its first publication takes the peer's
//! playlist history of the window ([`Packager::export_history`],
//! [`Packager::import_history`]); from then on its playlists, too, equal the
//! peer's at every point.
//!
//! ## Names
//!
//! For a track labelled `video1` (kind and track id): `llhls.m3u8` (master),
//! `video1.m3u8`, `video1_init.mp4` (`video1_v{n}_init.mp4` after the n-th codec
//! configuration change), `video1_{msn}.m4s` (segment),
//! `video1_{msn}.{part}.m4s` (part). Classic HLS: `playlist.m3u8` (master),
//! `ts.m3u8`, `ts_{msn}.ts`. See `docs/packager.md`.

pub mod codec;
pub mod demux;
pub mod flv;
pub mod fmp4;
pub mod grid;
pub mod media;
pub mod packager;
pub mod playlist;
pub mod ts_demux;
pub mod ts_inspect;
pub mod ts_mux;

pub use grid::{GridAnchor, LaneConfig, Start};
pub use media::{CodecConfig, MediaTime, Sample, StreamDescription, Timescale, Track, TrackId, TrackKind};
pub use packager::{
    config_fingerprint, fragment_sequence, Anchor, Config, ConfigVersion, Event, ExportedHistory, Format, HlsConfig,
    LlHlsConfig, Object, ObjectKind, Output, Packager, PackagerError,
};
pub use playlist::Point;
