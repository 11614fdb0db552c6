//! See `lockstep_fuzz::targets::srt` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| lockstep_fuzz::targets::srt::run(data));
