//! The memory engine: records, indexes and counters in this process's memory. A config
//! without `store:` (docker_auth's) gets it, so lockout counting works without a store;
//! nothing survives a restart and the CLI cannot reach it ([`Store::persistent`] is false).
//! The embedded engine keeps its counters in a [`Counters`] too.
//!
//! Bounded: at most [`MAX_ENTRIES`] records and counters each; expired entries are swept
//! whenever a table has doubled since the last sweep (amortised O(1) per write).
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{
    check_key, check_push, check_value, expiry_millis, expiry_millis_from, now_millis, Count, Store, StoreError,
    MAX_LIST, MAX_LIST_ITEMS,
};

/// Most live records (and, separately, counters) kept; ~100 bytes each.
pub const MAX_ENTRIES: usize = 1_000_000;
const FIRST_SWEEP: usize = 1024;

/// A value with its absolute expiry in ms since the epoch (0: never).
struct Entry<V> {
    value: V,
    expires: u64,
}

fn live(expires: u64, now: u64) -> bool {
    expires == 0 || expires > now
}

/// A map whose expired entries disappear; bounded by [`MAX_ENTRIES`].
struct ExpiringMap<V> {
    entries: HashMap<String, Entry<V>>,
    sweep_at: usize,
}

impl<V> Default for ExpiringMap<V> {
    fn default() -> Self {
        ExpiringMap { entries: HashMap::new(), sweep_at: FIRST_SWEEP }
    }
}

impl<V> ExpiringMap<V> {
    fn get(&self, key: &str, now: u64) -> Option<&Entry<V>> {
        self.entries.get(key).filter(|e| live(e.expires, now))
    }

    /// Room for one more entry, sweeping first when due; false when full of live entries.
    fn make_room(&mut self, key: &str, now: u64) -> bool {
        if self.entries.len() >= self.sweep_at || self.entries.len() >= MAX_ENTRIES {
            self.entries.retain(|_, e| live(e.expires, now));
            self.sweep_at = (self.entries.len() * 2).clamp(FIRST_SWEEP, MAX_ENTRIES);
        }
        self.entries.len() < MAX_ENTRIES || self.entries.contains_key(key)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Fixed-window counters in memory.
#[derive(Default)]
pub struct Counters(Mutex<ExpiringMap<u64>>);

impl Counters {
    pub fn increment(&self, store: &str, key: &str, window: Duration) -> Result<Count, StoreError> {
        check_key(store, key)?;
        let now = now_millis();
        let mut map = lock(&self.0);
        if map.get(key, now).is_none() {
            if !map.make_room(key, now) {
                return Err(full(store));
            }
            map.entries.insert(key.to_string(), Entry { value: 0, expires: expiry_millis_from(now, Some(window)) });
        }
        let entry = map.entries.get_mut(key).ok_or_else(|| full(store))?;
        entry.value += 1;
        Ok(Count { count: entry.value, resets_in: Duration::from_millis(entry.expires.saturating_sub(now)) })
    }

    pub fn reset(&self, store: &str, key: &str) -> Result<bool, StoreError> {
        check_key(store, key)?;
        let removed = lock(&self.0).entries.remove(key);
        Ok(removed.is_some_and(|e| live(e.expires, now_millis())))
    }

    pub fn count(&self, store: &str, key: &str) -> Result<Option<Count>, StoreError> {
        check_key(store, key)?;
        let now = now_millis();
        let map = lock(&self.0);
        Ok(map
            .get(key, now)
            .map(|e| Count { count: e.value, resets_in: Duration::from_millis(e.expires.saturating_sub(now)) }))
    }
}

fn full(store: &str) -> StoreError {
    StoreError::Unavailable { store: store.to_string(), reason: format!("more than {MAX_ENTRIES} live entries") }
}

/// The memory engine.
#[derive(Default)]
pub struct MemoryStore {
    records: Mutex<ExpiringMap<Vec<u8>>>,
    indexes: Mutex<HashMap<String, BTreeMap<String, u64>>>,
    counters: Counters,
    /// Capped lists, newest first; each bounded by its cap, and few exist (one per feature).
    lists: Mutex<HashMap<String, VecDeque<Vec<u8>>>>,
}

const NAME: &str = "memory";

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn write(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        only_if: Condition<'_>,
    ) -> Result<bool, StoreError> {
        check_key(NAME, key)?;
        check_value(NAME, value)?;
        let now = now_millis();
        let mut map = lock(&self.records);
        let current = map.get(key, now).map(|e| e.value.as_slice());
        let allowed = match only_if {
            Condition::Always => true,
            Condition::Absent => current.is_none(),
            Condition::Equals(expected) => current == Some(expected),
        };
        if !allowed {
            return Ok(false);
        }
        if !map.make_room(key, now) {
            return Err(full(NAME));
        }
        map.entries.insert(key.to_string(), Entry { value: value.to_vec(), expires: expiry_millis(ttl) });
        Ok(true)
    }
}

enum Condition<'a> {
    Always,
    Absent,
    Equals(&'a [u8]),
}

#[async_trait]
impl Store for MemoryStore {
    fn describe(&self) -> &str {
        "memory (this process only)"
    }

    fn engine(&self) -> &'static str {
        NAME
    }

    fn persistent(&self) -> bool {
        false
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(NAME, key)?;
        Ok(lock(&self.records).get(key, now_millis()).map(|e| e.value.clone()))
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        self.write(key, value, ttl, Condition::Always).map(|_| ())
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool, StoreError> {
        self.write(key, value, ttl, Condition::Absent)
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        current: &[u8],
        new: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.write(key, new, ttl, Condition::Equals(current))
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        check_key(NAME, key)?;
        let removed = lock(&self.records).entries.remove(key);
        Ok(removed.is_some_and(|e| live(e.expires, now_millis())))
    }

    async fn increment(&self, key: &str, window: Duration) -> Result<Count, StoreError> {
        self.counters.increment(NAME, key, window)
    }

    async fn count(&self, key: &str) -> Result<Option<Count>, StoreError> {
        self.counters.count(NAME, key)
    }

    async fn index_add(&self, index: &str, member: &str, ttl: Option<Duration>) -> Result<(), StoreError> {
        check_key(NAME, index)?;
        check_key(NAME, member)?;
        let mut indexes = lock(&self.indexes);
        let now = now_millis();
        let set = indexes.entry(index.to_string()).or_default();
        set.retain(|_, expires| live(*expires, now));
        set.insert(member.to_string(), expiry_millis(ttl));
        Ok(())
    }

    async fn index_remove(&self, index: &str, member: &str) -> Result<(), StoreError> {
        check_key(NAME, index)?;
        let mut indexes = lock(&self.indexes);
        if let Some(set) = indexes.get_mut(index) {
            set.remove(member);
            if set.is_empty() {
                indexes.remove(index);
            }
        }
        Ok(())
    }

    async fn index_members(&self, index: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        check_key(NAME, index)?;
        let now = now_millis();
        let indexes = lock(&self.indexes);
        let Some(set) = indexes.get(index) else { return Ok(Vec::new()) };
        Ok(set.iter().filter(|(_, e)| live(**e, now)).map(|(m, _)| m.clone()).take(limit.min(MAX_LIST)).collect())
    }

    async fn reset_count(&self, key: &str) -> Result<bool, StoreError> {
        self.counters.reset(NAME, key)
    }

    async fn list_push(&self, key: &str, items: &[Vec<u8>], cap: usize) -> Result<(), StoreError> {
        check_push(NAME, key, items, cap)?;
        let mut lists = lock(&self.lists);
        let list = lists.entry(key.to_string()).or_default();
        for item in items {
            list.push_front(item.clone());
        }
        list.truncate(cap);
        Ok(())
    }

    async fn list_recent(&self, key: &str, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        check_key(NAME, key)?;
        let lists = lock(&self.lists);
        let Some(list) = lists.get(key) else { return Ok(Vec::new()) };
        Ok(list.iter().take(limit.min(MAX_LIST_ITEMS)).cloned().collect())
    }

    async fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
