//! The store: the one interface to registry-auth's own memory (identity tokens, robots,
//! failure counters, later web sign-in records and console sessions), and its engines.
//! Design: `docs/state.md`; conventions for features: `store-interface.md`.
//!
//! Nothing here knows actix or any feature: features (`crate::identity`) are written once
//! against [`Store`] and tested against every engine. Engines:
//! - [`memory`]: the process's memory; a config without `store:` (docker_auth's) gets it,
//!   so that lockout counts work, but nothing survives a restart.
//! - [`embedded`]: a crash-safe file (redb) under `store.path`, owned by one process; the
//!   CLI reaches it through that process's [`admin`] socket.
//! - [`redis`]: one Redis server or a Redis Cluster, shared by replicas.
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;

pub mod admin;
pub mod decoded;
pub mod embedded;
pub mod memory;
pub mod open;
pub mod read_ahead;
mod read_cache;
pub mod redis;
pub mod runtime;

pub use crate::config::store::{EmbeddedConfig, RedisConfig, StoreConfig};
pub use open::{connect, for_cli, open_owned};

/// Longest key accepted by every engine, in bytes (keys hold names and hashes, not data).
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value accepted by every engine: a record is a small JSON document.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most members one [`Store::index_members`] call returns.
pub const MAX_LIST: usize = 10_000;
/// Longest capped list ([`Store::list_push`]'s `cap`) and most items one read returns.
pub const MAX_LIST_ITEMS: usize = 10_000;
/// Most bytes (all items together) one [`Store::list_push`] call writes.
pub const MAX_PUSH_BYTES: usize = MAX_VALUE_BYTES;

/// A shared handle; engines are cheap to clone behind it and safe to use concurrently.
pub type SharedStore = Arc<dyn Store>;

/// A failure counter after an increment, or as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Increments since the window started.
    pub count: u64,
    /// Time until the window ends and the counter disappears.
    pub resets_in: Duration,
}

/// Why an operation could not be served. The message is for logs (it names the store),
/// never for clients.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The engine cannot be reached or did not answer (Redis down, socket gone, I/O error).
    #[error("store {store} is unavailable: {reason}")]
    Unavailable { store: String, reason: String },
    /// The embedded file is owned by another process (a second server on one directory).
    #[error("store {store} is in use by another process: {reason}")]
    Locked { store: String, reason: String },
    /// The caller's input broke a limit of the interface (key or value too large...).
    #[error("store {store} refused the operation: {reason}")]
    Invalid { store: String, reason: String },
    /// A stored value could not be decoded as the record the caller expected.
    #[error("store {store}: record {key:?} is unreadable: {reason}")]
    Corrupt { store: String, key: String, reason: String },
}

/// One key-value store. Keys are UTF-8 strings of at most [`MAX_KEY_BYTES`] (by
/// convention `<kind>:<id>`, see `store-interface.md`); values are bytes of at most
/// [`MAX_VALUE_BYTES`] (by convention JSON, see [`StoreExt`]).
///
/// Contract:
/// - `Err` only when the store could not serve the request; "not found" is `Ok(None)` or
///   `Ok(false)`. Callers that grant fail closed on `Err`, callers that count fail open.
/// - Every acknowledged write (`Ok`) is durable as the engine promises (embedded: on disk,
///   fsynced; Redis: as its persistence is configured; memory: until the process exits),
///   except counters of the embedded engine, which live in memory (see [`embedded`]).
/// - A `ttl` of `None` means the record lives until deleted; `Some(d)` that it is gone
///   (reads return `None`) once `d` has passed. Engines remove expired records by themselves.
/// - Every method is atomic on its key; nothing spans keys (Redis Cluster puts keys in
///   different slots; `get_many` reads several but promises no snapshot). Write record
///   and index entry as two calls, record first.
/// - Safe to call concurrently from any runtime; no method blocks an async worker for
///   longer than an in-memory lookup.
#[async_trait]
pub trait Store: Send + Sync {
    /// What and where, for log lines and errors: `embedded data/store.redb`, `redis 10.0.0.5:6379`.
    fn describe(&self) -> &str;
    /// `memory`, `embedded` or `redis`: the fixed label of metrics.
    fn engine(&self) -> &'static str;
    /// Whether records outlive this process and are visible to the CLI (false only for the
    /// memory engine: features that grant from the store are off there).
    fn persistent(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Several records at once, in the order of `keys` (`None` for each absent one): one
    /// round trip on Redis (MGET; the cluster client splits it by slot and sends the parts
    /// at once), one read transaction on the embedded engine. Not atomic across keys on a
    /// cluster; callers must not need it to be.
    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }
    /// Creates or replaces the record.
    async fn put(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError>;
    /// Creates the record only if no live record has the key; `Ok(false)` if one has.
    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool, StoreError>;
    /// Replaces the record only if its current value is exactly `current`; `Ok(false)` if
    /// it differs or is gone (then re-read and retry, or give up).
    async fn compare_and_swap(
        &self,
        key: &str,
        current: &[u8],
        new: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError>;
    /// Removes the record; `Ok(false)` if there was none.
    async fn delete(&self, key: &str) -> Result<bool, StoreError>;

    /// Adds one to the counter at `key`, creating it with expiry `window` if absent (a
    /// fixed window: later increments do not extend it). Redis: INCR + PEXPIRE in one script.
    async fn increment(&self, key: &str, window: Duration) -> Result<Count, StoreError>;
    /// The counter at `key` without changing it; `None` when absent or expired.
    async fn count(&self, key: &str) -> Result<Option<Count>, StoreError>;
    /// The values of several counters, in the order of `keys` (`None` for each absent
    /// one), without the time left in their windows (ask [`Store::count`] for that): one
    /// round trip on Redis (an MGET, where two `count`s are two scripts).
    async fn count_values(&self, keys: &[&str]) -> Result<Vec<Option<u64>>, StoreError> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.count(key).await?.map(|c| c.count));
        }
        Ok(values)
    }

    /// [`Store::count_values`] of `counters` and [`Store::get_many`] of `records` together:
    /// one round trip on Redis (a single MGET), where the two calls are two. For a login
    /// that checks its lockout counters and then reads the record its authenticator needs.
    async fn count_values_and_get(
        &self,
        counters: &[&str],
        records: &[&str],
    ) -> Result<(Vec<Option<u64>>, Vec<Option<Vec<u8>>>), StoreError> {
        let counts = self.count_values(counters).await?;
        let values = if records.is_empty() { Vec::new() } else { self.get_many(records).await? };
        Ok((counts, values))
    }

    /// Adds `member` to the set `index` (or refreshes its expiry). An index is how records
    /// are listed: there is no key scan (a Redis SCAN walks every key of every node).
    async fn index_add(&self, index: &str, member: &str, ttl: Option<Duration>) -> Result<(), StoreError>;
    /// Removes `member` from `index`; removing an absent member is not an error.
    async fn index_remove(&self, index: &str, member: &str) -> Result<(), StoreError>;
    /// Live members of `index`, at most `limit` (capped at [`MAX_LIST`]), sorted by name.
    async fn index_members(&self, index: &str, limit: usize) -> Result<Vec<String>, StoreError>;

    /// Removes the counter at `key` (an operator's unlock); `Ok(false)` if there was none.
    async fn reset_count(&self, key: &str) -> Result<bool, StoreError>;

    /// Adds `items` to the front of the capped list at `key` (the last item of the slice
    /// becomes the newest) and drops all but the newest `cap` (at most [`MAX_LIST_ITEMS`]).
    /// All of `items` together are at most [`MAX_PUSH_BYTES`]. A list has no expiry: its
    /// cap bounds it. Redis: LPUSH + LTRIM in one script.
    async fn list_push(&self, key: &str, items: &[Vec<u8>], cap: usize) -> Result<(), StoreError>;
    /// The newest `limit` items (capped at [`MAX_LIST_ITEMS`]) of the list at `key`, newest
    /// first; empty when there is no list.
    async fn list_recent(&self, key: &str, limit: usize) -> Result<Vec<Vec<u8>>, StoreError>;

    /// Whether the store answers now, for `/readyz` and `check-config`.
    async fn health(&self) -> Result<(), StoreError>;
}

/// JSON records on top of [`Store`], for every `Serialize`/`Deserialize` type.
#[async_trait]
pub trait StoreExt: Store {
    async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        let Some(bytes) = self.get(key).await? else { return Ok(None) };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| StoreError::Corrupt {
            store: self.describe().to_string(),
            key: key.to_string(),
            reason: e.to_string(),
        })
    }

    async fn put_json<T: Serialize + Sync>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<(), StoreError> {
        let bytes = self.encode(value)?;
        self.put(key, &bytes, ttl).await
    }

    async fn put_json_if_absent<T: Serialize + Sync>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let bytes = self.encode(value)?;
        self.put_if_absent(key, &bytes, ttl).await
    }

    fn encode<T: Serialize>(&self, value: &T) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(value)
            .map_err(|e| StoreError::Invalid { store: self.describe().to_string(), reason: e.to_string() })
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

/// Checks the interface's limits; every engine calls it first.
pub(crate) fn check_key(store: &str, key: &str) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(StoreError::Invalid {
            store: store.to_string(),
            reason: format!("key length {} is outside 1..={MAX_KEY_BYTES}", key.len()),
        });
    }
    Ok(())
}

pub(crate) fn check_value(store: &str, value: &[u8]) -> Result<(), StoreError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(StoreError::Invalid {
            store: store.to_string(),
            reason: format!("value of {} bytes exceeds {MAX_VALUE_BYTES}", value.len()),
        });
    }
    Ok(())
}

/// Checks a [`Store::list_push`]'s limits; every engine calls it first.
pub(crate) fn check_push(store: &str, key: &str, items: &[Vec<u8>], cap: usize) -> Result<(), StoreError> {
    check_key(store, key)?;
    let bytes: usize = items.iter().map(Vec::len).sum();
    let invalid = |reason: String| Err(StoreError::Invalid { store: store.to_string(), reason });
    if bytes > MAX_PUSH_BYTES {
        return invalid(format!("a push of {bytes} bytes exceeds {MAX_PUSH_BYTES}"));
    }
    if cap == 0 || cap > MAX_LIST_ITEMS {
        return invalid(format!("list cap {cap} is outside 1..={MAX_LIST_ITEMS}"));
    }
    Ok(())
}

/// Milliseconds since the Unix epoch: the clock of expiries in the embedded engine.
pub(crate) fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// The absolute expiry (ms since the epoch) of a ttl; 0 means never.
pub(crate) fn expiry_millis(ttl: Option<Duration>) -> u64 {
    expiry_millis_from(now_millis(), ttl)
}

/// [`expiry_millis`] from a given `now`, for a caller that reports the time left against
/// that same `now` (another clock reading could make it longer than the ttl).
pub(crate) fn expiry_millis_from(now: u64, ttl: Option<Duration>) -> u64 {
    match ttl {
        None => 0,
        Some(ttl) => now.saturating_add(ttl.as_millis().min(u64::MAX as u128) as u64).max(1),
    }
}
