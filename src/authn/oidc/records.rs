//! docker_auth's token DB on our store: `t:<account>` → [`TokenRecord`] (state.md), the
//! generated docker password (shown once, stored as bcrypt) and `valid_until` in Go's
//! RFC 3339 form. No TTL, as docker_auth's Redis token DB: a record lives until the next
//! sign-in replaces it. A provider whose `level_token_db` is used directly keeps its
//! records in that LevelDB directory instead ([`super::level_db`]), under the same keys.
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng as _;

use super::level_db::LevelDir;
use super::provider::{record_key, SignedIn, TokenRecord, UpstreamTokens};
use crate::secret::Secret;
use crate::store::decoded::DecodedRecords;
use crate::store::read_ahead::ReadAhead;
use crate::store::{SharedStore, StoreError, StoreExt as _};

/// docker_auth generates 16 alphanumeric characters (95 bits); 24 make ≥ 128 bits (state.md).
pub const PASSWORD_LEN: usize = 24;
/// docker_auth's `bcrypt.DefaultCost`, used when `token_hash_cost` is not set.
pub const DEFAULT_HASH_COST: u32 = 10;

/// A fresh docker password from the OS CSPRNG.
pub fn generate_password() -> Secret {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    Secret::new((0..PASSWORD_LEN).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect::<String>())
}

/// `valid_until` as Go's `time.Time` marshals it (UTC, RFC 3339).
pub fn format_time(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

/// Reads docker_auth's `valid_until` (any RFC 3339 offset, fractional seconds); an
/// unreadable one counts as already past, so the upstream is asked again.
pub fn parse_time(text: &str) -> SystemTime {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| u64::try_from(t.unix_timestamp()).ok())
        .map_or(UNIX_EPOCH, |secs| UNIX_EPOCH + Duration::from_secs(secs))
}

pub struct TokenDb {
    store: SharedStore,
    hash_cost: u32,
    /// Providers (`google`, `oidc`...) whose `level_token_db` is used directly.
    direct: Vec<(String, Arc<LevelDir>)>,
    /// The last decoded record of each account, by stored bytes ([`TokenDb::get_shared`]).
    decoded: DecodedRecords<TokenRecord>,
}

impl TokenDb {
    pub fn new(store: SharedStore, hash_cost: u32) -> TokenDb {
        TokenDb { store, hash_cost, direct: Vec::new(), decoded: DecodedRecords::default() }
    }

    /// `provider`'s records live in `dir`, not in the store.
    pub fn with_direct(mut self, provider: &str, dir: Arc<LevelDir>) -> TokenDb {
        self.direct.push((provider.to_string(), dir));
        self
    }

    fn level_of(&self, provider: &str) -> Option<&LevelDir> {
        self.direct.iter().find(|(name, _)| name == provider).map(|(_, dir)| dir.as_ref())
    }

    pub async fn get(&self, provider: &str, account: &str) -> Result<Option<TokenRecord>, StoreError> {
        let Some(dir) = self.level_of(provider) else { return self.store.get_json(&record_key(account)).await };
        let unavailable = |reason| StoreError::Unavailable { store: dir.describe(), reason };
        let Some(bytes) = dir.get(account).await.map_err(unavailable)? else { return Ok(None) };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| StoreError::Corrupt {
            store: dir.describe(),
            key: record_key(account),
            reason: e.to_string(),
        })
    }

    /// The store key of `account`'s record at `provider`; `None` when the provider's
    /// records live in a LevelDB directory instead.
    pub fn store_key(&self, provider: &str, account: &str) -> Option<String> {
        self.level_of(provider).is_none().then(|| record_key(account))
    }

    /// As [`TokenDb::get`], for the login path: read from the store at every call (a new
    /// sign-in or a revalidation is seen at once, by every replica), or taken from what
    /// this login read ahead; decoded only when the stored bytes changed.
    pub async fn get_shared(
        &self,
        provider: &str,
        account: &str,
        read: &ReadAhead,
    ) -> Result<Option<Arc<TokenRecord>>, StoreError> {
        if self.level_of(provider).is_some() {
            return Ok(self.get(provider, account).await?.map(Arc::new));
        }
        let key = record_key(account);
        let raw = match read.get(&key) {
            Some(value) => value.map(<[u8]>::to_vec),
            None => self.store.get(&key).await?,
        };
        let Some(raw) = raw else { return Ok(None) };
        let decoded = self.decoded.get(&key, raw, |raw| serde_json::from_slice(raw));
        decoded.map(Some).map_err(|e| StoreError::Corrupt {
            store: self.store.describe().to_string(),
            key,
            reason: e.to_string(),
        })
    }

    pub async fn put(&self, provider: &str, account: &str, record: &TokenRecord) -> Result<(), StoreError> {
        let Some(dir) = self.level_of(provider) else {
            return self.store.put_json(&record_key(account), record, None).await;
        };
        let bytes = self.store.encode(record)?;
        dir.put(account, bytes).await.map_err(|reason| StoreError::Unavailable { store: dir.describe(), reason })
    }

    /// Stores a fresh sign-in at `provider` with a new password (replacing any earlier one)
    /// and returns the password, to be shown once. bcrypt runs off the async executor.
    pub async fn sign_in(&self, provider: &str, signed_in: &SignedIn) -> Result<Result<Secret, String>, StoreError> {
        let password = generate_password();
        let (plain, cost) = (password.clone(), self.hash_cost);
        let hash = tokio::task::spawn_blocking(move || bcrypt::hash(plain.expose(), cost))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        let hash = match hash {
            Ok(hash) => hash,
            Err(e) => return Ok(Err(format!("cannot hash the generated password: {e}"))),
        };
        let mut record = record_of(&signed_in.upstream, signed_in.valid_until, hash, signed_in.labels.clone());
        record.provider = provider.to_string();
        self.put(provider, &signed_in.account, &record).await?;
        Ok(Ok(password))
    }

    /// Keeps the record but drops its password: the user chose an identity token instead.
    pub async fn forget_password(&self, provider: &str, account: &str) -> Result<(), StoreError> {
        if let Some(mut record) = self.get(provider, account).await? {
            record.docker_password.clear();
            self.put(provider, account, &record).await?;
        }
        Ok(())
    }
}

/// The record docker_auth writes: upstream tokens, deadline, bcrypt, labels.
pub fn record_of(
    upstream: &UpstreamTokens,
    valid_until: SystemTime,
    docker_password: String,
    labels: crate::request::Labels,
) -> TokenRecord {
    TokenRecord {
        token_type: upstream.token_type.clone(),
        access_token: upstream.access_token.expose().to_string(),
        refresh_token: upstream.refresh_token.as_ref().map(|t| t.expose().to_string()).unwrap_or_default(),
        valid_until: format_time(valid_until),
        docker_password,
        labels,
        provider: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_alphanumeric_and_fresh() {
        let a = generate_password();
        let b = generate_password();
        assert_eq!(a.expose().len(), PASSWORD_LEN);
        assert!(a.expose().bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn valid_until_round_trips_and_reads_go_fractions() {
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(format_time(at), "2023-11-14T22:13:20Z");
        assert_eq!(parse_time(&format_time(at)), at);
        assert_eq!(parse_time("2023-11-14T23:13:20.123456789+01:00"), at);
        assert_eq!(parse_time("garbage"), UNIX_EPOCH);
    }

    #[test]
    fn record_json_uses_docker_auths_field_names() {
        let upstream = UpstreamTokens {
            token_type: "Bearer".into(),
            access_token: Secret::new("at"),
            refresh_token: Some(Secret::new("rt")),
        };
        let labels = [("groups".to_string(), vec!["dev".to_string()])].into();
        let record = record_of(&upstream, UNIX_EPOCH + Duration::from_secs(1_700_000_000), "$2a$10$x".into(), labels);
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"token_type":"Bearer","access_token":"at","refresh_token":"rt",
                "valid_until":"2023-11-14T22:13:20Z","docker_password":"$2a$10$x","labels":{"groups":["dev"]}})
        );
    }
}
