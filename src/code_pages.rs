//! Unmaps the executable's code and read-only data pages that the process mapped but is not
//! using, after start-up and after a burst. Most of an idle server's RSS is not memory it
//! allocated but pages of its own binary: the kernel maps every code page a thread runs and,
//! with it, the page cache neighbourhood of each fault ("fault-around", 64 KiB), so start-up
//! (argument and config parsing, key loading, the store, the TLS provider, the runtimes)
//! leaves ~15 MB of the binary mapped, of which serving tokens needs about two thirds.
//!
//! Only pages that are still the file's own (clean page cache, never written by this
//! process) of mappings without write permission are dropped: for those, the next access
//! maps the same bytes again from the page cache (a minor fault, about a microsecond per
//! 64 KiB). Pages this process wrote (relocated read-only data, a debugger's breakpoint)
//! are private copies and stay, so nothing the process holds is lost. The page cache itself
//! is untouched: the kernel keeps or drops it as for any other file.
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::os::unix::fs::{FileExt as _, MetadataExt as _};

/// /proc/self/pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
const PRESENT: u64 = 1 << 63;
const FILE_OR_SHARED: u64 = 1 << 61;

/// What [`release`] did: bytes of the executable's read-only mappings examined and the
/// resident bytes it unmapped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    pub examined: usize,
    pub unmapped: usize,
}

/// Unmaps the clean, resident pages of the executable's read-only mappings (code, read-only
/// data). Does nothing when the process is being traced (a debugger or uprobes may be
/// installing breakpoints) or when `/proc` cannot be read.
pub fn release() -> Released {
    let mut released = Released::default();
    if traced() {
        return released;
    }
    let Ok(exe) = std::fs::metadata("/proc/self/exe") else { return released };
    let (Ok(maps), Ok(pagemap)) = (File::open("/proc/self/maps"), File::open("/proc/self/pagemap")) else {
        return released;
    };
    let page = page_size();
    for line in BufReader::new(maps).lines().map_while(Result::ok) {
        let Some(mapping) = Mapping::parse(&line) else { continue };
        if mapping.inode != exe.ino() || !mapping.read_only {
            continue;
        }
        released.examined += mapping.end - mapping.start;
        released.unmapped += release_mapping(&pagemap, mapping.start, mapping.end, page);
    }
    released
}

/// One line of /proc/self/maps: `start-end perms offset dev inode path`.
#[derive(Debug, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    /// Private and without write permission (`r--p`, `r-xp`).
    read_only: bool,
    inode: u64,
}

impl Mapping {
    fn parse(line: &str) -> Option<Mapping> {
        let mut fields = line.split_ascii_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let perms = fields.next()?;
        let _offset = fields.next()?;
        let _device = fields.next()?;
        let inode = fields.next()?.parse().ok()?;
        Some(Mapping {
            start: usize::from_str_radix(start, 16).ok()?,
            end: usize::from_str_radix(end, 16).ok()?,
            read_only: perms.len() == 4 && perms.as_bytes()[1] == b'-' && perms.ends_with('p'),
            inode,
        })
    }
}

/// Unmaps the runs of resident file pages of one mapping; returns the bytes unmapped.
fn release_mapping(pagemap: &File, start: usize, end: usize, page: usize) -> usize {
    let pages = (end - start) / page;
    let mut entries = vec![0u8; pages * 8];
    if pagemap.read_exact_at(&mut entries, (start / page * 8) as u64).is_err() {
        return 0;
    }
    let entry = |i: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&entries[i * 8..i * 8 + 8]);
        u64::from_ne_bytes(bytes)
    };
    let mut unmapped = 0;
    let mut i = 0;
    while i < pages {
        // A run of pages that are resident file pages (absent ones cost nothing to include,
        // but a run starts and ends on resident ones).
        if !is_clean_file_page(entry(i)) {
            i += 1;
            continue;
        }
        let first = i;
        let mut resident = 0;
        while i < pages && (is_clean_file_page(entry(i)) || entry(i) & PRESENT == 0) {
            resident += usize::from(entry(i) & PRESENT != 0);
            i += 1;
        }
        if dont_need(start + first * page, (i - first) * page) {
            unmapped += resident * page;
        }
    }
    unmapped
}

fn is_clean_file_page(entry: u64) -> bool {
    entry & PRESENT != 0 && entry & FILE_OR_SHARED != 0
}

fn traced() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|status| status.lines().any(|l| l.starts_with("TracerPid:") && l.split_whitespace().nth(1) != Some("0")))
        .unwrap_or(true)
}

fn page_size() -> usize {
    // SAFETY: sysconf only reads a constant of the system.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

fn dont_need(addr: usize, len: usize) -> bool {
    // SAFETY: the range lies in a read-only private mapping of the executable and every
    // resident page in it is an unmodified page of the file: MADV_DONTNEED only removes
    // the mappings, and the next access maps the same bytes again from the page cache.
    // No reference into the range is invalidated (the contents do not change).
    unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_are_parsed() {
        let line = "55c5659f4000-55c566fe3000 r-xp 00699000 fd:01 1234567    /usr/bin/registry-auth";
        assert_eq!(
            Mapping::parse(line),
            Some(Mapping { start: 0x55c5659f4000, end: 0x55c566fe3000, read_only: true, inode: 1234567 })
        );
        let data = "55c56709a000-55c5670a2000 rw-p 01d9a000 fd:01 1234567    /usr/bin/registry-auth";
        assert!(Mapping::parse(data).is_some_and(|m| !m.read_only));
        assert_eq!(Mapping::parse("garbage"), None);
    }

    fn file_rss_kib() -> usize {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("RssFile:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn the_test_binary_gives_back_its_code_pages_and_keeps_running() {
        let before = file_rss_kib();
        let released = release();
        let after = file_rss_kib();
        assert!(released.examined > 0, "no read-only mapping of the executable found");
        assert!(released.unmapped > 0, "{released:?}");
        assert!(after < before, "file-backed RSS {before} KiB -> {after} KiB");
        // The code just released runs again (faulted back in) and computes the same.
        let words: Vec<String> = (0..1000).map(|i| format!("{i:x}")).collect();
        assert_eq!(words.concat().len(), 2728);
    }
}
