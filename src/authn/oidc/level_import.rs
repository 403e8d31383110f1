//! `level_token_db` in import mode: docker_auth's records copied into the store once, so
//! that its users' docker passwords keep working. Idempotent: a marker record
//! (`import:level_token_db:<directory>`) says the directory was imported, and a start that
//! finds it reads nothing; a record already in the store (a newer sign-in here) is never
//! overwritten. The marker is written last, so an interrupted import is finished by the
//! next start.
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::level_db::{self, LevelError};
use super::provider::{record_key, TokenRecord};
use crate::store::{SharedStore, StoreError, StoreExt as _};

/// What one import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// Copied now: `imported` new records, `kept` accounts the store already had, and
    /// `unreadable` values that are not docker_auth's JSON (skipped, named in the log).
    Now { imported: usize, kept: usize, unreadable: Vec<String> },
    /// An earlier start imported the directory, at `at`.
    Before { at: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Level(#[from] LevelError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The record that says a directory was imported.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    path: String,
    imported: usize,
    kept: usize,
    at: String,
}

fn marker_key(dir: &Path) -> String {
    let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    format!("import:level_token_db:{}", canonical.display())
}

/// Whether `dir` was imported into `store` already.
pub async fn imported_at(store: &SharedStore, dir: &Path) -> Result<Option<String>, StoreError> {
    Ok(store.get_json::<Marker>(&marker_key(dir)).await?.map(|m| m.at))
}

/// Imports `dir` into `store` unless an earlier start did, marking each record as
/// `provider`'s (docker_auth's records name none; in the shared store another section would
/// otherwise take them). Blocking file reads happen on a thread of their own
/// ([`level_db::read_records`]).
pub async fn import_once(store: &SharedStore, dir: &Path, provider: &str) -> Result<Imported, ImportError> {
    if let Some(at) = imported_at(store, dir).await? {
        return Ok(Imported::Before { at });
    }
    let owned = dir.to_path_buf();
    let records = tokio::task::spawn_blocking(move || level_db::read_records(&owned))
        .await
        .map_err(|_| LevelError::Corrupt { path: dir.display().to_string(), reason: "the reader stopped".into() })??;
    let (mut imported, mut kept, mut unreadable) = (0, 0, Vec::new());
    for (account, value) in records {
        let Ok(mut record) = serde_json::from_slice::<TokenRecord>(&value) else {
            unreadable.push(account);
            continue;
        };
        if record.provider.is_empty() {
            record.provider = provider.to_string();
        }
        match store.put_json_if_absent(&record_key(&account), &record, None).await {
            Ok(true) => imported += 1,
            Ok(false) => kept += 1,
            Err(StoreError::Invalid { .. }) => unreadable.push(account),
            Err(e) => return Err(e.into()),
        }
    }
    let at = super::records::format_time(std::time::SystemTime::now());
    let marker = Marker { path: dir.display().to_string(), imported, kept, at };
    store.put_json(&marker_key(dir), &marker, None).await?;
    Ok(Imported::Now { imported, kept, unreadable })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::memory::MemoryStore;

    #[test]
    fn imports_once_and_never_overwrites_a_record_the_store_has() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.ldb");
        {
            let mut db = rusty_leveldb::DB::open(&path, rusty_leveldb::Options::default()).unwrap();
            db.put(b"t:alice", br#"{"docker_password":"old-alice"}"#).unwrap();
            db.put(b"t:bob", br#"{"docker_password":"bob","labels":{"g":["a"]}}"#).unwrap();
            db.put(b"t:broken", b"not json").unwrap();
            db.flush().unwrap();
        }
        let store: SharedStore = Arc::new(MemoryStore::new());
        runtime.block_on(async {
            store.put(&record_key("alice"), br#"{"docker_password":"newer"}"#, None).await.unwrap();
            let first = import_once(&store, &path, "oidc").await.unwrap();
            assert_eq!(first, Imported::Now { imported: 1, kept: 1, unreadable: vec!["broken".to_string()] });
            assert_eq!(store.get("t:alice").await.unwrap().unwrap(), br#"{"docker_password":"newer"}"#);
            let bob: serde_json::Value = serde_json::from_slice(&store.get("t:bob").await.unwrap().unwrap()).unwrap();
            let expected = serde_json::json!({"docker_password": "bob", "labels": {"g": ["a"]}, "provider": "oidc"});
            assert_eq!(bob, expected, "docker_auth's fields, marked as the importing section's");
            store.delete("t:bob").await.unwrap();
            let second = import_once(&store, &path, "oidc").await.unwrap();
            assert!(matches!(second, Imported::Before { .. }), "{second:?}");
            assert_eq!(store.get("t:bob").await.unwrap(), None, "the second start imports nothing");
        });
    }
}
