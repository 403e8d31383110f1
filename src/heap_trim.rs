//! Gives freed heap memory back to the OS after a burst. glibc's malloc keeps what it
//! frees in its arenas for reuse: after a flood of connections (issue 17: 15,000 bodies
//! of 64 KB) the process kept its peak RSS although every connection had gone. A thread
//! looks once a second at the arenas' statistics and, once [`BYTES_TO_TRIM`] more have
//! been freed than when it last looked or trimmed, calls `malloc_trim`, which returns the
//! free pages (also those in the middle of the heap). Under ordinary load far less than
//! that is freed between two looks, so the request path never pays for a trim.
use std::time::Duration;

/// Freed heap bytes above which a trim is worth its cost (a few ms of page faults later).
pub const BYTES_TO_TRIM: usize = 8 * 1024 * 1024;
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Decides when to trim from the allocator's bytes in use and bytes free. The free count
/// alone cannot say it: pages a trim gave back stay counted as free (the chunks are still
/// the allocator's, only their pages are gone), so after one flood it stayed above any
/// threshold and the thread trimmed every second for ever (300 `madvise` calls a second on
/// an idle server). What a trim can give back is what was freed since the last one: the
/// fall of the bytes in use from their highest, or the rise of the free bytes from their
/// lowest (memory freed after reuse of already-trimmed chunks).
#[derive(Debug, Clone, Copy)]
pub struct TrimWatch {
    in_use_high: usize,
    free_low: usize,
}

impl TrimWatch {
    pub fn new(in_use: usize, free: usize) -> TrimWatch {
        TrimWatch { in_use_high: in_use, free_low: free }
    }

    /// One look at the statistics; true when a trim is due. After a trim, [`Self::trimmed`].
    pub fn observe(&mut self, in_use: usize, free: usize) -> bool {
        self.in_use_high = self.in_use_high.max(in_use);
        self.free_low = self.free_low.min(free);
        self.in_use_high - in_use > BYTES_TO_TRIM || free - self.free_low > BYTES_TO_TRIM
    }

    /// Starts over from the statistics after a trim.
    pub fn trimmed(&mut self, in_use: usize, free: usize) {
        *self = TrimWatch::new(in_use, free);
    }
}

/// Starts the trimming thread (glibc only; other allocators return memory themselves).
pub fn start() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new().name("heap-trim".into()).spawn(|| {
            let (in_use, free) = heap_bytes();
            let mut watch = TrimWatch::new(in_use, free);
            loop {
                std::thread::sleep(CHECK_EVERY);
                let (in_use, free) = heap_bytes();
                if watch.observe(in_use, free) {
                    trim();
                    let (in_use, free) = heap_bytes();
                    watch.trimmed(in_use, free);
                }
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the heap-trim thread: memory freed after a flood stays with the process");
        }
    }
}

/// Bytes the allocator has handed out and bytes it holds free, in all arenas (free ones
/// are counted whether or not their pages are still resident).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn heap_bytes() -> (usize, usize) {
    // SAFETY: mallinfo2 only reads the allocator's statistics (glibc 2.33+).
    let info = unsafe { libc::mallinfo2() };
    (info.uordblks, info.fordblks)
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

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    #[test]
    fn a_flood_is_trimmed_once_and_an_idle_heap_never_again() {
        let mut watch = TrimWatch::new(2 * MIB, MIB);
        // The flood: 60 MiB in use, then freed.
        assert!(!watch.observe(60 * MIB, MIB));
        assert!(watch.observe(2 * MIB, 59 * MIB));
        // The trim gave the pages back, but the chunks stay counted as free.
        watch.trimmed(2 * MIB, 59 * MIB);
        for _ in 0..100 {
            assert!(!watch.observe(2 * MIB, 59 * MIB));
        }
    }

    #[test]
    fn ordinary_churn_is_never_trimmed() {
        let mut watch = TrimWatch::new(2 * MIB, MIB);
        for i in 0..1000 {
            let in_use = 2 * MIB + (i % 7) * MIB;
            assert!(!watch.observe(in_use, 9 * MIB - in_use));
        }
    }

    #[test]
    fn memory_freed_again_after_reusing_trimmed_chunks_is_trimmed() {
        let mut watch = TrimWatch::new(2 * MIB, 59 * MIB);
        // A second burst reuses the free chunks (their pages come back), then frees them.
        assert!(!watch.observe(50 * MIB, 11 * MIB));
        assert!(watch.observe(2 * MIB, 59 * MIB));
        // Growth past the first burst's heap counts as well.
        watch.trimmed(2 * MIB, 59 * MIB);
        assert!(watch.observe(2 * MIB, 70 * MIB));
    }
}
