//! Gives freed heap memory back to the OS after a burst. glibc's malloc keeps what it
//! frees in its arenas for reuse: after a flood of connections (issue 17: 15,000 bodies
//! of 64 KB) the process kept its peak RSS although every connection had gone. A thread
//! looks once a second at how much the arenas hold free and, past [`FREE_BYTES_TO_TRIM`],
//! calls `malloc_trim`, which returns the free pages (also those in the middle of the
//! heap). Under ordinary load the free memory stays far below the threshold, so the
//! request path never pays for a trim.
use std::time::Duration;

/// Free heap bytes above which a trim is worth its cost (a few ms of page faults later).
pub const FREE_BYTES_TO_TRIM: usize = 8 * 1024 * 1024;
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Starts the trimming thread (glibc only; other allocators return memory themselves).
pub fn start() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new().name("heap-trim".into()).spawn(|| loop {
            std::thread::sleep(CHECK_EVERY);
            if free_bytes() > FREE_BYTES_TO_TRIM {
                trim();
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the heap-trim thread: memory freed after a flood stays with the process");
        }
    }
}

/// Bytes the allocator holds free (in all arenas), ready for reuse but counted in RSS.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn free_bytes() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics (glibc 2.33+).
    let info = unsafe { libc::mallinfo2() };
    info.fordblks
}

/// Returns free heap pages to the OS.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim() {
    // SAFETY: malloc_trim is thread-safe (it locks each arena in turn) and frees nothing
    // that is in use.
    unsafe {
        libc::malloc_trim(0);
    }
}
