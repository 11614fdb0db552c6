//! MPEG-TS segment muxer (stub).
