//! The keyed hash under which the store keeps the secrets we issue (identity tokens, robot
//! secrets): HMAC-SHA256 with a 256-bit key from the OS RNG that lives outside the records
//! where it can (state.md: reading the store never lets anyone log in).
//!
//! Where the key is, by engine (`store.hash_key_file` overrides both):
//! - embedded: `<store.path>/hash.key`, created mode 0600 on first use (by the server or
//!   the CLI, whichever comes first; created atomically, so both read the same key);
//! - Redis: the record `hash-key` in Redis itself, created once by the first replica, so
//!   that replicas agree with no setup. A Redis dump then holds key and hashes together;
//!   that still lets nobody log in (the secrets are 256 random bits: there is nothing to
//!   guess from a hash, keyed or not), but it does let whoever holds the dump confirm a
//!   token seen elsewhere. `hash_key_file` (the same file on every replica) keeps the key
//!   out of Redis and closes that too.
//!
//! Records written before the key existed hold plain SHA-256 digests
//! ([`issued_secret::legacy_digest`]); callers look those up as a fallback.
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::OnceCell;

use super::issued_secret::{self, Kind};
use crate::store::{SharedStore, StoreConfig, StoreError};

/// Key bytes (256 bits).
pub const KEY_BYTES: usize = 32;
/// The key file of the embedded engine, inside `store.path`.
pub const KEY_FILE: &str = "hash.key";
/// The record holding the key when it lives in the store (Redis without `hash_key_file`).
/// The one record without an expiry: losing it would void every stored secret.
pub const KEY_RECORD: &str = "hash-key";

/// Key material: at least [`KEY_BYTES`] bytes, written as hex (never shown in `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct HashKey(Vec<u8>);

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(..)")
    }
}

impl HashKey {
    /// A key from its hex text (surrounding whitespace ignored); `None` unless it is at
    /// least 64 hex digits (256 bits).
    pub fn from_hex(text: &str) -> Option<HashKey> {
        let text = text.trim();
        if text.len() < KEY_BYTES * 2 || !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let bytes: Option<Vec<u8>> =
            (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect();
        bytes.map(HashKey)
    }

    fn generate() -> Result<HashKey, String> {
        let mut bytes = vec![0u8; KEY_BYTES];
        SystemRandom::new().fill(&mut bytes).map_err(|_| "the OS random number generator failed".to_string())?;
        Ok(HashKey(bytes))
    }

    fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Where the key comes from.
#[derive(Debug, Clone)]
enum Source {
    /// `store.hash_key_file`, read with the config.
    Given(HashKey),
    /// The embedded engine's `<store.path>/hash.key`, created on first use.
    File(PathBuf),
    /// The [`KEY_RECORD`] record of the store.
    Record,
}

/// Digests of issued secrets under the installation's key, loaded once on first use (a
/// Redis that is down at start-up only delays it; grants fail closed meanwhile).
pub struct SecretHasher {
    source: Source,
    store: SharedStore,
    key: OnceCell<hmac::Key>,
}

impl SecretHasher {
    /// The hasher for the store `config` names (`store` is that store, open).
    pub fn for_store(config: &StoreConfig, store: SharedStore) -> SecretHasher {
        let source = match config {
            StoreConfig::Embedded(e) => match &e.hash_key {
                Some(key) => Source::Given(key.clone()),
                None => Source::File(e.path.join(KEY_FILE)),
            },
            StoreConfig::Redis(r) => match &r.hash_key {
                Some(key) => Source::Given(key.clone()),
                None => Source::Record,
            },
            StoreConfig::Memory => Source::Record,
        };
        SecretHasher { source, store, key: OnceCell::new() }
    }

    /// A hasher keeping its key in `store` (unit tests, the memory engine).
    pub fn in_store(store: SharedStore) -> SecretHasher {
        SecretHasher { source: Source::Record, store, key: OnceCell::new() }
    }

    /// Where the key is, for `check-config` and logs.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Given(_) => "store.hash_key_file".to_string(),
            Source::File(path) => path.display().to_string(),
            Source::Record => format!("record {KEY_RECORD:?} of the store"),
        }
    }

    /// Lower-case hex HMAC-SHA256 of kind and secret.
    pub async fn digest(&self, kind: Kind, secret: &str) -> Result<String, StoreError> {
        let key = self.key().await?;
        let mut context = hmac::Context::with_key(key);
        context.update(issued_secret::domain(kind).as_bytes());
        context.update(&[0]);
        context.update(secret.as_bytes());
        Ok(issued_secret::hex(context.sign().as_ref()))
    }

    async fn key(&self) -> Result<&hmac::Key, StoreError> {
        self.key
            .get_or_try_init(|| async {
                let key = self.load().await?;
                Ok(hmac::Key::new(hmac::HMAC_SHA256, &key.0))
            })
            .await
    }

    async fn load(&self) -> Result<HashKey, StoreError> {
        let unavailable = |reason: String| StoreError::Unavailable { store: self.store.describe().to_string(), reason };
        match &self.source {
            Source::Given(key) => Ok(key.clone()),
            Source::File(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || load_or_create_file(&path))
                    .await
                    .map_err(|e| unavailable(e.to_string()))?
                    .map_err(unavailable)
            }
            Source::Record => {
                if let Some(key) = self.read_record().await? {
                    return Ok(key);
                }
                let fresh = HashKey::generate().map_err(unavailable)?;
                // Whoever creates it first wins; everyone then reads the same key.
                self.store.put_if_absent(KEY_RECORD, fresh.to_hex().as_bytes(), None).await?;
                self.read_record().await?.ok_or_else(|| unavailable(format!("the {KEY_RECORD} record vanished")))
            }
        }
    }

    async fn read_record(&self) -> Result<Option<HashKey>, StoreError> {
        let Some(bytes) = self.store.get(KEY_RECORD).await? else { return Ok(None) };
        let key = std::str::from_utf8(&bytes).ok().and_then(HashKey::from_hex);
        key.map(Some).ok_or_else(|| StoreError::Corrupt {
            store: self.store.describe().to_string(),
            key: KEY_RECORD.to_string(),
            reason: "not a hex key of at least 256 bits".to_string(),
        })
    }
}

/// Reads the key file, or creates it (0600) if absent. The new key is written to a
/// private temporary file, synced, then hard-linked into place: the link fails if
/// another process got there first, and then its key is the one read.
fn load_or_create_file(path: &Path) -> Result<HashKey, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => return parse_file(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read the hash key {}: {e}", path.display())),
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = dir.join(format!(".{KEY_FILE}.{}.{}", std::process::id(), rand::random::<u64>()));
    let written = (|| {
        let key = HashKey::generate().map_err(std::io::Error::other)?;
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        // Owned like the store directory: a CLI run by root must not leave a key the
        // server's user cannot read (fails harmlessly when we are that user already).
        let owner = std::fs::metadata(dir)?;
        let _ = std::os::unix::fs::fchown(&file, Some(owner.uid()), Some(owner.gid()));
        file.write_all(format!("{}\n", key.to_hex()).as_bytes())?;
        file.sync_all()?;
        if let Err(e) = std::fs::hard_link(&temp, path) {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(e);
            }
        }
        std::fs::File::open(dir)?.sync_all()
    })();
    let _ = std::fs::remove_file(&temp);
    written.map_err(|e| format!("cannot create the hash key {}: {e}", path.display()))?;
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("cannot read the hash key {}: {e}", path.display()))?;
    parse_file(path, &text)
}

fn parse_file(path: &Path, text: &str) -> Result<HashKey, String> {
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %path.display(), "the hash key file is readable by group or others: chmod 600 it");
        }
    }
    HashKey::from_hex(text).ok_or_else(|| format!("{} does not hold a hex key of at least 256 bits", path.display()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::memory::MemoryStore;

    #[test]
    fn keys_are_at_least_256_bits_of_hex() {
        assert!(HashKey::from_hex(&"ab".repeat(32)).is_some());
        assert!(HashKey::from_hex(&format!("  {}\n", "0F".repeat(40))).is_some());
        for bad in ["", "abc", &"ab".repeat(31), &"zz".repeat(32), &format!("{}a", "ab".repeat(32))] {
            assert!(HashKey::from_hex(bad).is_none(), "{bad}");
        }
        assert_eq!(format!("{:?}", HashKey::from_hex(&"ab".repeat(32)).unwrap()), "HashKey(..)");
    }

    #[tokio::test]
    async fn digests_are_keyed_kind_bound_and_differ_from_plain_sha256() {
        let store: SharedStore = Arc::new(MemoryStore::new());
        let a = SecretHasher::in_store(store.clone());
        let again = SecretHasher::in_store(store);
        let other = SecretHasher::in_store(Arc::new(MemoryStore::new()));
        let d = a.digest(Kind::Robot, "s").await.unwrap();
        assert_eq!(d.len(), 64);
        assert_eq!(d, again.digest(Kind::Robot, "s").await.unwrap(), "one key per store");
        assert_ne!(d, other.digest(Kind::Robot, "s").await.unwrap(), "another store, another key");
        assert_ne!(d, a.digest(Kind::IdentityToken, "s").await.unwrap());
        assert_ne!(d, issued_secret::legacy_digest(Kind::Robot, "s"));
    }

    #[test]
    fn the_key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(KEY_FILE);
        let first = load_or_create_file(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(load_or_create_file(&path).unwrap(), first);
        std::fs::write(&path, "short").unwrap();
        assert!(load_or_create_file(&path).unwrap_err().contains("at least 256 bits"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
    }
}
