//! MPEG-TS demuxer (stub).
