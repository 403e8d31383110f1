//! The embedded engine: one redb file, `<store.path>/store.redb`, owned by one process.
//!
//! Why redb: pure Rust, maintained, ACID with copy-on-write B-trees and checksummed commits,
//! so an acknowledged commit (fsynced, `Durability::Immediate`, redb's default) survives
//! `kill -9` and a power cut, and a torn write is never read back. It locks the file: a
//! second process gets [`StoreError::Locked`] (the CLI then talks to the owner through
//! [`super::admin`]). SQLite would do too, but needs C and gives nothing a key-value
//! store needs here.
//!
//! Layout: table `records` maps a key to 8 bytes of expiry (ms since the epoch, little
//! endian, 0 = never) followed by the value; table `indexes` maps (index, member) to its
//! expiry. Expired entries read as absent and are removed by a sweep every
//! [`SWEEP_EVERY`] on a thread of their own. Failure counters are kept in memory (a
//! [`Counters`]): a fsync per failed login would cost more than the login, and a restart
//! forgetting the counts of at most one window is acceptable (state.md).
//!
//! Reads run inline (a B-tree lookup in redb's page cache, or the [`ReadCache`] of
//! records read lately, which every record write invalidates before it is acknowledged);
//! writes, which fsync, run on tokio's blocking threads.
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::memory::Counters;
use super::read_cache::ReadCache;
use super::{
    check_key, check_push, check_value, expiry_millis, now_millis, Count, Store, StoreError, MAX_LIST, MAX_LIST_ITEMS,
};

const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
const INDEXES: TableDefinition<(&str, &str), u64> = TableDefinition::new("indexes");
/// Capped lists: (list, sequence number) → item; the highest number is the newest.
const LISTS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("lists");
/// The file inside `store.path`.
pub const FILE_NAME: &str = "store.redb";
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// Page cache: records are small, this holds hundreds of thousands of them.
const CACHE_BYTES: usize = 64 * 1024 * 1024;

pub struct EmbeddedStore {
    db: Arc<Database>,
    describe: String,
    counters: Counters,
    /// Records read lately, by key (stored bytes: expiry and value).
    cache: Arc<ReadCache>,
}

impl EmbeddedStore {
    /// Opens (or creates, with its directory, mode 0700) the store under `dir`.
    pub fn open(dir: &Path) -> Result<EmbeddedStore, StoreError> {
        let file = dir.join(FILE_NAME);
        let describe = format!("embedded {}", file.display());
        create_private_dir(dir).map_err(|e| unavailable(&describe, format!("cannot create {}: {e}", dir.display())))?;
        let db = Database::builder().set_cache_size(CACHE_BYTES).create(&file).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
                store: describe.clone(),
                reason: "another registry-auth process owns this file".to_string(),
            },
            other => unavailable(&describe, other.to_string()),
        })?;
        restrict_file(&file);
        let store = EmbeddedStore { db: Arc::new(db), describe, counters: Counters::default(), cache: Arc::default() };
        store.create_tables()?;
        spawn_sweeper(Arc::downgrade(&store.db), store.describe.clone());
        Ok(store)
    }

    pub fn file(dir: &Path) -> PathBuf {
        dir.join(FILE_NAME)
    }

    fn create_tables(&self) -> Result<(), StoreError> {
        let describe = self.describe.clone();
        write_txn(&self.db, &describe, |txn| {
            txn.open_table(RECORDS)?;
            txn.open_table(INDEXES)?;
            txn.open_table(LISTS)?;
            Ok(())
        })
    }

    /// Runs `f` in one write transaction on a blocking thread and commits it (fsync).
    /// `record`: the key of the record it writes, forgotten by the read cache once the
    /// transaction ended, in the same task (so even when the caller stops waiting).
    async fn write<T, F>(&self, record: Option<String>, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(&redb::WriteTransaction) -> Result<T, redb::Error> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.db.clone();
        let describe = self.describe.clone();
        let cache = self.cache.clone();
        let task = tokio::task::spawn_blocking(move || {
            let result = write_txn(&db, &describe, f);
            if let Some(key) = record {
                cache.invalidate(&key);
            }
            result
        });
        task.await.map_err(|e| unavailable(&self.describe, format!("write interrupted: {e}")))?
    }

    /// The live value of `key` in `table`, through the read cache.
    fn read_record(
        &self,
        table: &redb::ReadOnlyTable<&'static str, &'static [u8]>,
        generation: u64,
        key: &str,
    ) -> Result<Option<Vec<u8>>, redb::Error> {
        let Some(stored) = table.get(key)? else { return Ok(None) };
        let stored = stored.value();
        self.cache.insert(generation, key, stored);
        Ok(live_value(stored).map(<[u8]>::to_vec))
    }

    fn cached(&self, key: &str) -> Option<Option<Vec<u8>>> {
        self.cache.get(key).map(|stored| live_value(&stored).map(<[u8]>::to_vec))
    }

    /// A conditional write of one record: `decide` sees the live current value.
    async fn write_record(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        decide: fn(Option<&[u8]>, &[u8]) -> bool,
        expected: Vec<u8>,
    ) -> Result<bool, StoreError> {
        check_key(&self.describe, key)?;
        check_value(&self.describe, value)?;
        let (key, mut stored) = (key.to_string(), expiry_millis(ttl).to_le_bytes().to_vec());
        stored.extend_from_slice(value);
        self.write(Some(key.clone()), move |txn| {
            let mut table = txn.open_table(RECORDS)?;
            let current = table.get(key.as_str())?.and_then(|v| live_value(v.value()).map(<[u8]>::to_vec));
            if !decide(current.as_deref(), &expected) {
                return Ok(false);
            }
            table.insert(key.as_str(), stored.as_slice())?;
            Ok(true)
        })
        .await
    }
}

fn write_txn<T>(
    db: &Database,
    describe: &str,
    f: impl FnOnce(&redb::WriteTransaction) -> Result<T, redb::Error>,
) -> Result<T, StoreError> {
    let txn = db.begin_write().map_err(|e| unavailable(describe, e.to_string()))?;
    let result = f(&txn).map_err(|e| unavailable(describe, e.to_string()))?;
    txn.commit().map_err(|e| unavailable(describe, e.to_string()))?;
    Ok(result)
}

fn unavailable(store: &str, reason: String) -> StoreError {
    StoreError::Unavailable { store: store.to_string(), reason }
}

/// The value part of a stored record, if it has not expired.
fn live_value(stored: &[u8]) -> Option<&[u8]> {
    let (expiry, value) = stored.split_first_chunk::<8>()?;
    let expires = u64::from_le_bytes(*expiry);
    (expires == 0 || expires > now_millis()).then_some(value)
}

fn live(expires: u64, now: u64) -> bool {
    expires == 0 || expires > now
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

fn restrict_file(file: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Err(e) = std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(file = %file.display(), "cannot make the store file private (mode 0600): {e}");
    }
}

/// Removes expired records and index entries every [`SWEEP_EVERY`] until the store is dropped.
fn spawn_sweeper(db: Weak<Database>, describe: String) {
    let spawned = std::thread::Builder::new().name("store-sweep".into()).spawn(move || loop {
        std::thread::sleep(SWEEP_EVERY);
        let Some(db) = db.upgrade() else { return };
        match sweep(&db, &describe) {
            Ok(0) => {}
            Ok(removed) => tracing::debug!(store = %describe, removed, "removed expired records"),
            Err(e) => tracing::warn!("{e}"),
        }
    });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the store's expiry sweep ({e}); expired records stay until overwritten");
    }
}

/// One sweep; returns how many entries were removed.
pub fn sweep(db: &Database, describe: &str) -> Result<usize, StoreError> {
    let now = now_millis();
    write_txn(db, describe, |txn| {
        let mut removed = 0;
        txn.open_table(RECORDS)?.retain(|_, stored| {
            let keep = live_value(stored).is_some();
            removed += usize::from(!keep);
            keep
        })?;
        txn.open_table(INDEXES)?.retain(|_, expires| {
            let keep = live(expires, now);
            removed += usize::from(!keep);
            keep
        })?;
        Ok(removed)
    })
}

#[async_trait]
impl Store for EmbeddedStore {
    fn describe(&self) -> &str {
        &self.describe
    }

    fn engine(&self) -> &'static str {
        "embedded"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(&self.describe, key)?;
        if let Some(value) = self.cached(key) {
            return Ok(value);
        }
        let read = || -> Result<Option<Vec<u8>>, redb::Error> {
            let generation = self.cache.generation();
            let txn = self.db.begin_read()?;
            self.read_record(&txn.open_table(RECORDS)?, generation, key)
        };
        read().map_err(|e| unavailable(&self.describe, e.to_string()))
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        for key in keys {
            check_key(&self.describe, key)?;
        }
        // All cached (the common case of a record read again): no read transaction.
        let cached: Option<Vec<_>> = keys.iter().map(|key| self.cached(key)).collect();
        if let Some(values) = cached {
            return Ok(values);
        }
        let read = || -> Result<Vec<Option<Vec<u8>>>, redb::Error> {
            let generation = self.cache.generation();
            let txn = self.db.begin_read()?;
            let table = txn.open_table(RECORDS)?;
            keys.iter().map(|key| self.read_record(&table, generation, key)).collect()
        };
        read().map_err(|e| unavailable(&self.describe, e.to_string()))
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        self.write_record(key, value, ttl, |_, _| true, Vec::new()).await.map(|_| ())
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool, StoreError> {
        self.write_record(key, value, ttl, |current, _| current.is_none(), Vec::new()).await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        current: &[u8],
        new: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        self.write_record(key, new, ttl, |found, expected| found == Some(expected), current.to_vec()).await
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        check_key(&self.describe, key)?;
        let key = key.to_string();
        self.write(Some(key.clone()), move |txn| {
            let mut table = txn.open_table(RECORDS)?;
            let removed = table.remove(key.as_str())?;
            Ok(removed.is_some_and(|v| live_value(v.value()).is_some()))
        })
        .await
    }

    async fn increment(&self, key: &str, window: Duration) -> Result<Count, StoreError> {
        self.counters.increment(&self.describe, key, window)
    }

    async fn count(&self, key: &str) -> Result<Option<Count>, StoreError> {
        self.counters.count(&self.describe, key)
    }

    async fn index_add(&self, index: &str, member: &str, ttl: Option<Duration>) -> Result<(), StoreError> {
        check_key(&self.describe, index)?;
        check_key(&self.describe, member)?;
        let (index, member, expires) = (index.to_string(), member.to_string(), expiry_millis(ttl));
        self.write(None, move |txn| {
            txn.open_table(INDEXES)?.insert((index.as_str(), member.as_str()), expires)?;
            Ok(())
        })
        .await
    }

    async fn index_remove(&self, index: &str, member: &str) -> Result<(), StoreError> {
        check_key(&self.describe, index)?;
        let (index, member) = (index.to_string(), member.to_string());
        self.write(None, move |txn| {
            txn.open_table(INDEXES)?.remove((index.as_str(), member.as_str()))?;
            Ok(())
        })
        .await
    }

    async fn index_members(&self, index: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        check_key(&self.describe, index)?;
        let limit = limit.min(MAX_LIST);
        let read = || -> Result<Vec<String>, redb::Error> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(INDEXES)?;
            let now = now_millis();
            let mut members = Vec::new();
            for entry in table.range((index, "")..)? {
                let (key, expires) = entry?;
                let (found_index, member) = key.value();
                if found_index != index || members.len() >= limit {
                    break;
                }
                if live(expires.value(), now) {
                    members.push(member.to_string());
                }
            }
            Ok(members)
        };
        read().map_err(|e| unavailable(&self.describe, e.to_string()))
    }

    async fn reset_count(&self, key: &str) -> Result<bool, StoreError> {
        self.counters.reset(&self.describe, key)
    }

    async fn list_push(&self, key: &str, items: &[Vec<u8>], cap: usize) -> Result<(), StoreError> {
        check_push(&self.describe, key, items, cap)?;
        let (key, items) = (key.to_string(), items.to_vec());
        self.write(None, move |txn| {
            let mut table = txn.open_table(LISTS)?;
            let range = (key.as_str(), 0)..=(key.as_str(), u64::MAX);
            let (mut oldest, newest) = {
                let mut entries = table.range(range.clone())?;
                let oldest = entries.next().transpose()?.map(|(k, _)| k.value().1);
                let newest = entries.next_back().transpose()?.map(|(k, _)| k.value().1).or(oldest);
                (oldest.unwrap_or(1), newest.unwrap_or(0))
            };
            let mut next = newest;
            for item in &items {
                next += 1;
                table.insert((key.as_str(), next), item.as_slice())?;
            }
            // Sequence numbers are contiguous from `oldest` to `next`.
            while next + 1 - oldest > cap as u64 {
                table.remove((key.as_str(), oldest))?;
                oldest += 1;
            }
            Ok(())
        })
        .await
    }

    async fn list_recent(&self, key: &str, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        check_key(&self.describe, key)?;
        let limit = limit.min(MAX_LIST_ITEMS);
        let read = || -> Result<Vec<Vec<u8>>, redb::Error> {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(LISTS)?;
            let mut items = Vec::new();
            for entry in table.range((key, 0)..=(key, u64::MAX))?.rev().take(limit) {
                items.push(entry?.1.value().to_vec());
            }
            Ok(items)
        };
        read().map_err(|e| unavailable(&self.describe, e.to_string()))
    }

    async fn health(&self) -> Result<(), StoreError> {
        let read = || -> Result<(), redb::Error> {
            let txn = self.db.begin_read()?;
            txn.open_table(RECORDS)?;
            Ok(())
        };
        read().map_err(|e| unavailable(&self.describe, e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record write is seen by the very next read, however often the record was read
    /// (and cached) before: the read cache must never answer a revoked or replaced value.
    #[tokio::test]
    async fn reads_after_every_kind_of_write_see_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.put("r", b"one", None).await.unwrap();
        for _ in 0..3 {
            assert_eq!(store.get("r").await.unwrap().as_deref(), Some(&b"one"[..]));
        }
        assert!(store.cache.get("r").is_some(), "read again from the cache");
        store.put("r", b"two", None).await.unwrap();
        assert_eq!(store.get("r").await.unwrap().as_deref(), Some(&b"two"[..]));
        assert!(store.compare_and_swap("r", b"two", b"three", None).await.unwrap());
        assert_eq!(store.get_many(&["r"]).await.unwrap(), [Some(b"three".to_vec())]);
        assert!(store.delete("r").await.unwrap());
        assert_eq!(store.get("r").await.unwrap(), None);
        assert_eq!(store.get_many(&["r", "r"]).await.unwrap(), [None, None]);
        assert!(store.put_if_absent("r", b"four", None).await.unwrap());
        assert_eq!(store.get("r").await.unwrap().as_deref(), Some(&b"four"[..]));
    }

    #[tokio::test]
    async fn a_cached_record_still_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.put("short", b"v", Some(Duration::from_millis(150))).await.unwrap();
        assert!(store.get("short").await.unwrap().is_some());
        assert!(store.cache.get("short").is_some());
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(store.get("short").await.unwrap(), None);
        assert_eq!(store.get_many(&["short"]).await.unwrap(), [None]);
    }

    /// A write the caller stopped waiting for (a client that hung up) still invalidates.
    #[tokio::test]
    async fn an_abandoned_write_still_invalidates() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.put("r", b"old", None).await.unwrap();
        assert!(store.get("r").await.unwrap().is_some());
        // Polled once (the blocking task starts and waits for the writer the test holds), then
        // dropped; a fast disk cannot finish the commit before the caller gives up.
        let held = store.db.begin_write().unwrap();
        let abandoned = tokio::time::timeout(Duration::ZERO, store.delete("r")).await;
        assert!(abandoned.is_err(), "the write waits for the held transaction");
        held.abort().unwrap();
        // The commit goes on in its blocking task; once it is on disk, no read sees the old value.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while store.db.begin_read().unwrap().open_table(RECORDS).unwrap().get("r").unwrap().is_some() {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(store.get("r").await.unwrap(), None);
    }
}
