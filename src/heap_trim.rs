//! Gives freed heap memory back to the OS after a burst. glibc's malloc keeps what it
//! frees in its arenas for reuse: after a flood of connections (issue 17: 15,000 bodies
//! of 64 KB) the process kept its peak RSS although every connection had gone. A thread
//! looks once a second at the arenas' statistics and, once [`BYTES_TO_TRIM`] more have
//! been freed than when it last looked or trimmed, calls `malloc_trim`, which returns the
//! free pages (also those in the middle of the heap). Under ordinary load far less than
//! that is freed between two looks, so the request path never pays for a trim.
//!
//! Only the heap: the binary's code pages an idle server no longer runs are clean, shared
//! with the page cache and reclaimed by the kernel under memory pressure; unmapping them
//! would lower the RSS figure, not the memory the machine can use.
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
///
/// A burst ends with one more trim: the last [`BYTES_TO_TRIM`] trim falls somewhere in the
/// burst's tail, and what the tail freed after it (up to 8 MiB: after the same flood the
/// process kept 1.7 + 3.5 MB or 1.7 + 9.6 MB of anonymous memory, depending on where that
/// trim fell) stayed resident. So after a burst trim, the first look that finds the heap
/// quiet (changed by less than [`QUIET_BYTES`] since the look before) trims whatever was
/// freed since. Ordinary load never makes a burst trim, so it never pays for this one.
#[derive(Debug, Clone, Copy)]
pub struct TrimWatch {
    in_use_high: usize,
    free_low: usize,
    /// The statistics of the look before, to tell a quiet heap.
    last: (usize, usize),
    /// Whether the trim `observe` last asked for is a burst trim.
    burst_due: bool,
    /// A burst trim was made and its settling trim is still to come.
    settling: bool,
}

/// Change of the heap between two looks under which it counts as quiet.
pub const QUIET_BYTES: usize = 256 * 1024;

impl TrimWatch {
    pub fn new(in_use: usize, free: usize) -> TrimWatch {
        TrimWatch { in_use_high: in_use, free_low: free, last: (in_use, free), burst_due: false, settling: false }
    }

    /// One look at the statistics; true when a trim is due. After a trim, [`Self::trimmed`].
    pub fn observe(&mut self, in_use: usize, free: usize) -> bool {
        self.in_use_high = self.in_use_high.max(in_use);
        self.free_low = self.free_low.min(free);
        let freed = (self.in_use_high - in_use).max(free - self.free_low);
        let quiet = in_use.abs_diff(self.last.0) < QUIET_BYTES && free.abs_diff(self.last.1) < QUIET_BYTES;
        self.last = (in_use, free);
        self.burst_due = freed > BYTES_TO_TRIM;
        self.burst_due || (self.settling && quiet && freed > 0)
    }

    /// Starts over from the statistics after a trim.
    pub fn trimmed(&mut self, in_use: usize, free: usize) {
        let settling = self.burst_due;
        *self = TrimWatch::new(in_use, free);
        self.settling = settling;
    }
}

/// Gives back what start-up alone used (its heap garbage), then starts the
/// trimming thread. Called once the server's workers are ready.
pub fn after_start_up() {
    give_back();
    start();
}

/// Returns free heap pages.
fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    trim();
}

/// Starts the trimming thread (glibc only; other allocators return memory themselves).
fn start() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new().name("heap-trim".into()).spawn(|| {
            let (in_use, free) = heap_bytes();
            let mut watch = TrimWatch::new(in_use, free);
            loop {
                std::thread::sleep(CHECK_EVERY);
                let (in_use, free) = heap_bytes();
                if watch.observe(in_use, free) {
                    give_back();
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
    fn the_tail_of_a_burst_is_trimmed_once_the_heap_is_quiet() {
        let mut watch = TrimWatch::new(2 * MIB, MIB);
        assert!(!watch.observe(60 * MIB, MIB));
        // The burst trim comes while the flood's last connections are still closing.
        assert!(watch.observe(20 * MIB, 41 * MIB));
        watch.trimmed(20 * MIB, 41 * MIB);
        // They close (7 MiB freed: below the burst threshold), then nothing changes.
        assert!(!watch.observe(13 * MIB, 48 * MIB));
        assert!(watch.observe(13 * MIB, 48 * MIB), "the quiet heap after the burst is not trimmed");
        watch.trimmed(13 * MIB, 48 * MIB);
        for _ in 0..100 {
            assert!(!watch.observe(13 * MIB, 48 * MIB));
        }
        // Small frees later on are ordinary churn again.
        assert!(!watch.observe(12 * MIB, 49 * MIB));
        assert!(!watch.observe(12 * MIB, 49 * MIB));
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
