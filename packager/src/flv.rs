//! FLV tag depacketizer (stub).
