//! The embedded engine's cache of records read: the stored bytes (expiry and value) of
//! keys read lately, so that a login reading the same record again skips a redb read
//! transaction and the copy out of its pages.
//!
//! Why this is safe where state.md forbids per-process caches of store records: those
//! rules are about replicas, which cannot see each other's writes. The embedded file has
//! one owner (the file lock), and every write reaches it through that owner's
//! [`super::embedded::EmbeddedStore`] (the CLI through its admin socket), which
//! invalidates the key in the same blocking task that committed it, before the write is
//! acknowledged. A revocation is therefore seen by the very next read. Expiry is checked
//! on each read, as for a record read from the file.
//!
//! A read that raced a write must not put the old value back: each invalidation bumps a
//! generation, and a read only caches what it found if no invalidation happened since
//! before its read transaction began.
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Most bytes of stored values kept; beyond it the cache starts over.
const MAX_BYTES: usize = 8 * 1024 * 1024;
/// Most keys kept (records are small; this bounds the map's own size).
const MAX_KEYS: usize = 20_000;

#[derive(Default)]
pub struct ReadCache {
    generation: AtomicU64,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, Arc<[u8]>>,
    bytes: usize,
}

impl ReadCache {
    /// The stored bytes of `key` as last read or written through this store, if cached.
    pub fn get(&self, key: &str) -> Option<Arc<[u8]>> {
        self.lock().map.get(key).cloned()
    }

    /// Taken before a read transaction begins; pass it to [`ReadCache::insert`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Caches what a read found, unless a write was committed since `generation`.
    pub fn insert(&self, generation: u64, key: &str, stored: &[u8]) {
        let mut entries = self.lock();
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if entries.map.len() >= MAX_KEYS || entries.bytes + stored.len() > MAX_BYTES {
            entries.map.clear();
            entries.bytes = 0;
        }
        entries.bytes += stored.len();
        if let Some(old) = entries.map.insert(key.to_string(), Arc::from(stored)) {
            entries.bytes -= old.len();
        }
    }

    /// Forgets `key`. Called after the write transaction touching it ended (committed or
    /// not), before the write is acknowledged.
    pub fn invalidate(&self, key: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let mut entries = self.lock();
        if let Some(old) = entries.map.remove(key) {
            entries.bytes -= old.len();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalidation_removes_the_key_and_voids_reads_begun_before_it() {
        let cache = ReadCache::default();
        let before = cache.generation();
        cache.insert(before, "a", b"old");
        assert_eq!(cache.get("a").as_deref(), Some(&b"old"[..]));
        // A read that began before a write committed found the old value: not cached.
        let racing = cache.generation();
        cache.invalidate("a");
        cache.insert(racing, "a", b"old");
        assert!(cache.get("a").is_none());
        let after = cache.generation();
        cache.insert(after, "a", b"new");
        assert_eq!(cache.get("a").as_deref(), Some(&b"new"[..]));
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = ReadCache::default();
        let big = vec![0u8; MAX_BYTES / 2 + 1];
        cache.insert(cache.generation(), "a", &big);
        cache.insert(cache.generation(), "b", &big);
        assert!(cache.get("a").is_none(), "the second value started the cache over");
        assert!(cache.get("b").is_some());
        for i in 0..MAX_KEYS + 1 {
            cache.insert(cache.generation(), &format!("k{i}"), b"v");
        }
        assert!(cache.lock().map.len() <= MAX_KEYS);
    }
}
