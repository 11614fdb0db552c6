//! Returning freed memory to the system.
//!
//! glibc's allocator keeps memory freed by other threads in per-thread
//! arenas. A stream that ends (a flooding publisher in particular) frees tens
//! of megabytes at once, which would otherwise stay in the process's RSS
//! until the same arenas are reused. `release_freed` asks glibc to hand the
//! free pages back (`malloc_trim`); elsewhere it does nothing.

/// Give the allocator's free memory back to the system. Cheap enough to
/// call when a stream ends (it walks the arenas once).
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only inspects and releases the allocator's own
    // free lists; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
