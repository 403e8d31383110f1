//! Identity tokens: the OAuth2 refresh tokens `docker login` keeps as `identitytoken`
//! (distribution token spec, "OAuth2 Token"; parity.md, token-spec.md §1.4).
//!
//! Records: `it:<digest>` holds who the token is for and until when (expiring with the
//! token); `itu:<digest>` holds when it was last used and expires after the idle timeout,
//! so a token idle too long disappears by itself on every engine. The two are separate so
//! that recording a use never rewrites (or resurrects) the token record. The index
//! `it-all` lists every token, `it-acct:<sha256(account)>` one account's (at most
//! [`MAX_PER_ACCOUNT`]: each `docker login` makes a new one). Nothing is cached in the
//! process: a revocation is seen by every replica on its next request.
//!
//! An exchange reads `it:` and `itu:` together ([`Store::get_many`](crate::store::Store::get_many):
//! one Redis round trip, also on a cluster, where the two keys live in different slots) and
//! writes the use at most once a minute per token, after the answer (the write is spawned,
//! not awaited: a lost use only brings the idle timeout a minute closer).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::audit;
use super::issued_secret::{self, Kind, RngError};
use super::records::{now_unix, secs, ttl_until, MAX_LISTED};
use super::secret_hasher::SecretHasher;
use crate::metrics;
use crate::request::Labels;
use crate::store::{SharedStore, StoreError, StoreExt as _};

/// Defaults: three months of life, one month without use.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(90 * 86_400);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 86_400);
/// A use is written at most this often per token (state.md: last-used at most once a minute).
const TOUCH_INTERVAL_SECS: i64 = 60;
/// Characters of the digest shown as a token's id in listings and used to revoke it.
pub const ID_LEN: usize = 16;
/// Live tokens one account may have; issuing one more drops its oldest.
pub const MAX_PER_ACCOUNT: usize = 100;
/// Tokens whose last use this process remembers writing; beyond it the list is pruned
/// (which can only allow one more write of a use, never skip one for longer than a minute).
const MAX_TOUCHED: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityTokenConfig {
    pub lifetime: Duration,
    pub idle_timeout: Duration,
}

impl Default for IdentityTokenConfig {
    fn default() -> Self {
        IdentityTokenConfig { lifetime: DEFAULT_LIFETIME, idle_timeout: DEFAULT_IDLE_TIMEOUT }
    }
}

/// One stored identity token (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub account: String,
    /// The authenticator that accepted the password at login (`static`, `ldap`...).
    pub backend: String,
    /// Labels seen at login, kept only for backends that cannot be asked again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default)]
    pub client_id: String,
    pub created: i64,
    pub expires: i64,
}

/// A token as the CLI lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub record: TokenRecord,
    pub last_used: Option<i64>,
}

/// A token that may be exchanged: its id (as listed) and record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redeemed {
    pub id: String,
    pub record: TokenRecord,
}

/// Why a presented token grants nothing; all are `invalid_grant` to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    Malformed,
    Unknown,
    Expired,
    Idle,
}

impl Rejected {
    pub fn reason(self) -> &'static str {
        match self {
            Rejected::Malformed => "malformed refresh token",
            Rejected::Unknown => "unknown or revoked refresh token",
            Rejected::Expired => "refresh token expired",
            Rejected::Idle => "refresh token unused for too long",
        }
    }

    /// The `reason` label of the refusal metric and the audit line.
    pub fn label(self) -> &'static str {
        match self {
            Rejected::Malformed => "malformed",
            Rejected::Unknown => "unknown_or_revoked",
            Rejected::Expired => "expired",
            Rejected::Idle => "idle",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Rng(#[from] RngError),
}

pub struct IdentityTokens {
    store: SharedStore,
    hasher: Arc<SecretHasher>,
    config: IdentityTokenConfig,
    /// When this process last started writing each token's use (unix seconds), so that
    /// concurrent exchanges of one token write it once, not once each.
    touched: Mutex<HashMap<String, i64>>,
}

/// A token's records as read for an exchange or a listing.
struct Found {
    digest: String,
    record: TokenRecord,
    last_used: Option<i64>,
}

const ALL_INDEX: &str = "it-all";

fn record_key(digest: &str) -> String {
    format!("it:{digest}")
}

fn used_key(digest: &str) -> String {
    format!("itu:{digest}")
}

/// Accounts can be long and hold any character; their digest keeps the key short.
fn account_index(account: &str) -> String {
    let digest = Sha256::digest(account.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("it-acct:{hex}")
}

impl IdentityTokens {
    pub fn new(store: SharedStore, hasher: Arc<SecretHasher>, config: IdentityTokenConfig) -> IdentityTokens {
        IdentityTokens { store, hasher, config, touched: Mutex::new(HashMap::new()) }
    }

    /// Issues a token for an account that just proved its password; returns it and its id.
    pub async fn issue(
        &self,
        account: &str,
        backend: &str,
        labels: Option<Labels>,
        client_id: &str,
    ) -> Result<(String, String), IssueError> {
        let token = issued_secret::generate(Kind::IdentityToken)?;
        let digest = self.hasher.digest(Kind::IdentityToken, &token).await?;
        let now = now_unix();
        let expires = now.saturating_add(secs(self.config.lifetime));
        let record = TokenRecord {
            account: account.to_string(),
            backend: backend.to_string(),
            labels,
            client_id: client_id.chars().take(128).collect(),
            created: now,
            expires,
        };
        self.make_room(account).await?;
        let ttl = Some(self.config.lifetime);
        // The use record first: a token whose record exists is always exchangeable.
        self.write_use(&digest, now, expires).await?;
        self.store.put_json(&record_key(&digest), &record, ttl).await?;
        self.store.index_add(ALL_INDEX, &digest, ttl).await?;
        self.store.index_add(&account_index(account), &digest, ttl).await?;
        Ok((token, digest.chars().take(ID_LEN).collect()))
    }

    /// The record of a presented token, after checking expiry and idleness and recording
    /// the use; `Err(Rejected)` for anything that must not be exchanged.
    pub async fn redeem(&self, token: &str) -> Result<Result<Redeemed, Rejected>, StoreError> {
        if !issued_secret::well_formed(Kind::IdentityToken, token) {
            return Ok(Err(Rejected::Malformed));
        }
        let Some(Found { digest, record, last_used }) = self.find(token).await? else {
            return Ok(Err(Rejected::Unknown));
        };
        let now = now_unix();
        if record.expires <= now {
            return Ok(Err(Rejected::Expired));
        }
        let Some(last_used) = last_used else {
            // Idle beyond the timeout: the use record expired. Drop the token itself too.
            self.remove(&digest, &record.account).await?;
            removed(&digest, &record.account, "idle");
            return Ok(Err(Rejected::Idle));
        };
        if now - last_used >= TOUCH_INTERVAL_SECS {
            self.touch_later(&digest, now, record.expires);
        }
        Ok(Ok(Redeemed { id: digest.chars().take(ID_LEN).collect(), record }))
    }

    /// The records of `token`: under the keyed hash, or, for tokens issued before it,
    /// under the plain SHA-256 of the secret (they keep working until they expire).
    async fn find(&self, token: &str) -> Result<Option<Found>, StoreError> {
        let keyed = self.hasher.digest(Kind::IdentityToken, token).await?;
        if let Some(found) = self.read(keyed).await? {
            return Ok(Some(found));
        }
        self.read(issued_secret::legacy_digest(Kind::IdentityToken, token)).await
    }

    /// A token's record and last use, in one store read.
    async fn read(&self, digest: String) -> Result<Option<Found>, StoreError> {
        let (record_key, used_key) = (record_key(&digest), used_key(&digest));
        let mut values = self.store.get_many(&[&record_key, &used_key]).await?.into_iter();
        let (Some(record), used) = (values.next().flatten(), values.next().flatten()) else { return Ok(None) };
        let record = serde_json::from_slice(&record).map_err(|e| StoreError::Corrupt {
            store: self.store.describe().to_string(),
            key: record_key,
            reason: e.to_string(),
        })?;
        let last_used = used.and_then(|b| std::str::from_utf8(&b).ok().and_then(|s| s.parse().ok()));
        Ok(Some(Found { digest, record, last_used }))
    }

    async fn write_use(&self, digest: &str, now: i64, expires: i64) -> Result<(), StoreError> {
        write_use(&self.store, self.config.idle_timeout, digest, now, expires).await
    }

    /// Records a use without making the exchange wait for it, once per
    /// [`TOUCH_INTERVAL_SECS`] per token in this process. A write that fails is logged; the
    /// next exchange a minute later tries again (the idle timeout is days).
    fn touch_later(&self, digest: &str, now: i64, expires: i64) {
        {
            let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
            if touched.get(digest).is_some_and(|at| now - at < TOUCH_INTERVAL_SECS) {
                return;
            }
            if touched.len() >= MAX_TOUCHED {
                touched.retain(|_, at| now - *at < TOUCH_INTERVAL_SECS);
                if touched.len() >= MAX_TOUCHED {
                    touched.clear();
                }
            }
            touched.insert(digest.to_string(), now);
        }
        let (store, idle_timeout, digest) = (self.store.clone(), self.config.idle_timeout, digest.to_string());
        tokio::spawn(async move {
            if let Err(e) = write_use(&store, idle_timeout, &digest, now, expires).await {
                let id: String = digest.chars().take(ID_LEN).collect();
                tracing::warn!(id = %id, error = %e, "could not record an identity token's use");
            }
        });
    }

    /// Drops the oldest tokens of `account` beyond [`MAX_PER_ACCOUNT`] - 1.
    async fn make_room(&self, account: &str) -> Result<(), StoreError> {
        let index = account_index(account);
        if self.store.index_members(&index, MAX_PER_ACCOUNT).await?.len() < MAX_PER_ACCOUNT {
            return Ok(());
        }
        let tokens = self.list(Some(account)).await?;
        for oldest in tokens.iter().take((tokens.len() + 1).saturating_sub(MAX_PER_ACCOUNT)) {
            self.remove(&oldest.digest, account).await?;
            removed(&oldest.digest, account, "over_limit");
        }
        Ok(())
    }

    /// The record first: once it is gone the token is refused everywhere.
    async fn remove(&self, digest: &str, account: &str) -> Result<(), StoreError> {
        self.store.delete(&record_key(digest)).await?;
        self.store.delete(&used_key(digest)).await?;
        self.store.index_remove(ALL_INDEX, digest).await?;
        self.store.index_remove(&account_index(account), digest).await
    }

    /// Every live token, or those of one account, oldest first.
    pub async fn list(&self, account: Option<&str>) -> Result<Vec<Listed>, StoreError> {
        let index = account.map_or(ALL_INDEX.to_string(), account_index);
        let mut out = Vec::new();
        for digest in self.store.index_members(&index, MAX_LISTED).await? {
            // Members of tokens that went idle or were revoked half-way stay until their ttl.
            let Some(Found { digest, record, last_used }) = self.read(digest).await? else { continue };
            if account.is_some_and(|a| a != record.account) {
                continue;
            }
            let info = TokenInfo { id: digest.chars().take(ID_LEN).collect(), record, last_used };
            out.push(Listed { digest, info });
        }
        out.sort_by(|a, b| (a.info.record.created, &a.info.id).cmp(&(b.info.record.created, &b.info.id)));
        Ok(out)
    }

    /// Revokes the tokens whose id (digest prefix, at least 8 characters) or account matches; returns them.
    /// Each is audited (and kept in the recent events) with `operator` (who revoked it) and
    /// `via` (`cli`, `console`), the same for every caller.
    pub async fn revoke(&self, selector: &Selector, operator: &str, via: &str) -> Result<Vec<TokenInfo>, StoreError> {
        let victims: Vec<Listed> = match selector {
            Selector::Account(account) => self.list(Some(account)).await?,
            Selector::Id(id) => self.list(None).await?.into_iter().filter(|t| id_matches(&t.digest, id)).collect(),
        };
        for token in &victims {
            self.remove(&token.digest, &token.info.record.account).await?;
            let event = audit::Event {
                event: "identity_token_revoked",
                outcome: "revoked",
                account: &token.info.record.account,
                credential: "identity_token",
                id: &token.info.id,
                operator,
                detail: via,
                ..Default::default()
            };
            audit::log_and_keep(&event, "identity token revoked", &self.store).await;
        }
        Ok(victims.into_iter().map(|t| t.info).collect())
    }
}

/// Writes the use record of a token: `now`, until the idle timeout (never past the token's expiry).
async fn write_use(
    store: &SharedStore,
    idle_timeout: Duration,
    digest: &str,
    now: i64,
    expires: i64,
) -> Result<(), StoreError> {
    let until = now.saturating_add(secs(idle_timeout)).min(expires);
    let Some(ttl) = ttl_until(until, now) else { return Ok(()) };
    store.put(&used_key(digest), now.to_string().as_bytes(), Some(ttl)).await
}

/// A token the server itself removed (`idle`, or `over_limit`: the account's oldest
/// beyond [`MAX_PER_ACCOUNT`]): a revocation, audited and counted.
fn removed(digest: &str, account: &str, why: &'static str) {
    metrics::global().identity_token_revoked(why);
    let id: String = digest.chars().take(ID_LEN).collect();
    let event = audit::Event {
        event: "identity_token_revoked",
        outcome: "revoked",
        account,
        credential: "identity_token",
        id: &id,
        detail: why,
        ..Default::default()
    };
    audit::log(&event, "identity token removed by the server");
}

/// A listed token with its full digest (which only this module needs).
pub struct Listed {
    digest: String,
    pub info: TokenInfo,
}

/// Which tokens `revoke` acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Id(String),
    Account(String),
}

fn id_matches(id: &str, wanted: &str) -> bool {
    wanted.len() >= 8 && id.starts_with(&wanted.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::memory::MemoryStore;

    fn tokens() -> (SharedStore, IdentityTokens) {
        let store: SharedStore = Arc::new(MemoryStore::new());
        let hasher = Arc::new(SecretHasher::in_store(store.clone()));
        (store.clone(), IdentityTokens::new(store, hasher, IdentityTokenConfig::default()))
    }

    #[tokio::test]
    async fn issue_redeem_list_revoke() {
        let (_, t) = tokens();
        let (a, a_id) = t.issue("alice", "static", None, "docker").await.unwrap();
        let (b, _) = t.issue("alice", "ldap", Some(Labels::new()), "containerd-client").await.unwrap();
        let (c, _) = t.issue("bob", "static", None, "docker").await.unwrap();
        let redeemed = t.redeem(&a).await.unwrap().unwrap();
        assert_eq!(redeemed.id, a_id);
        let record = redeemed.record;
        assert_eq!(
            (record.account.as_str(), record.backend.as_str(), record.client_id.as_str()),
            ("alice", "static", "docker")
        );
        assert_eq!(t.list(Some("alice")).await.unwrap().len(), 2);
        assert_eq!(t.list(None).await.unwrap().len(), 3);
        assert_eq!(t.redeem("rait_nope").await.unwrap(), Err(Rejected::Malformed));
        let id = t.list(Some("bob")).await.unwrap()[0].info.id.clone();
        assert_eq!(t.revoke(&Selector::Id(id[..8].to_string()), "ops@host", "cli").await.unwrap().len(), 1);
        assert_eq!(t.redeem(&c).await.unwrap(), Err(Rejected::Unknown));
        assert!(
            t.revoke(&Selector::Id("abc".into()), "ops@host", "cli").await.unwrap().is_empty(),
            "short ids match nothing"
        );
        assert_eq!(t.revoke(&Selector::Account("alice".into()), "ops@host", "cli").await.unwrap().len(), 2);
        assert_eq!(t.redeem(&b).await.unwrap(), Err(Rejected::Unknown));
        assert!(t.list(None).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_revocation_is_audited_and_kept_with_who_revoked_it() {
        let (store, t) = tokens();
        let (_, id) = t.issue("alice", "static", None, "docker").await.unwrap();
        assert_eq!(t.revoke(&Selector::Id(id.clone()), "console:admin", "console").await.unwrap().len(), 1);
        let kept = crate::recent_events::recent(&store, &Default::default()).await.unwrap();
        let e = &kept[0];
        assert_eq!(
            [&e.event, &e.outcome, &e.account, &e.credential, &e.id, &e.operator, &e.detail].map(String::as_str),
            ["identity_token_revoked", "revoked", "alice", "identity_token", id.as_str(), "console:admin", "console"]
        );
    }

    #[tokio::test]
    async fn a_token_whose_use_record_expired_is_idle_and_removed() {
        let (store, t) = tokens();
        let (token, _) = t.issue("alice", "static", None, "").await.unwrap();
        let digest = t.hasher.digest(Kind::IdentityToken, &token).await.unwrap();
        assert!(store.delete(&used_key(&digest)).await.unwrap());
        assert_eq!(t.redeem(&token).await.unwrap(), Err(Rejected::Idle));
        assert_eq!(t.redeem(&token).await.unwrap(), Err(Rejected::Unknown));
    }

    #[tokio::test]
    async fn a_use_is_written_after_the_answer_and_at_most_once_a_minute() {
        let (store, t) = tokens();
        let (token, _) = t.issue("alice", "static", None, "").await.unwrap();
        let key = used_key(&t.hasher.digest(Kind::IdentityToken, &token).await.unwrap());
        let old = (now_unix() - 2 * TOUCH_INTERVAL_SECS).to_string();
        let used = || async { String::from_utf8(store.get(&key).await.unwrap().unwrap()).unwrap() };
        store.put(&key, old.as_bytes(), None).await.unwrap();
        t.redeem(&token).await.unwrap().unwrap();
        for _ in 0..1000 {
            if used().await != old {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_ne!(used().await, old, "the use was recorded");
        store.put(&key, old.as_bytes(), None).await.unwrap();
        t.redeem(&token).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(used().await, old, "not written again within the minute by this process");
    }

    #[tokio::test]
    async fn a_token_stored_under_plain_sha256_still_works() {
        let (store, t) = tokens();
        let token = issued_secret::generate(Kind::IdentityToken).unwrap();
        let digest = issued_secret::legacy_digest(Kind::IdentityToken, &token);
        let now = now_unix();
        let record = TokenRecord {
            account: "old".into(),
            backend: "static".into(),
            labels: None,
            client_id: String::new(),
            created: now,
            expires: now + 3600,
        };
        store.put_json(&record_key(&digest), &record, None).await.unwrap();
        store.put(&used_key(&digest), now.to_string().as_bytes(), None).await.unwrap();
        store.index_add(&account_index("old"), &digest, None).await.unwrap();
        let redeemed = t.redeem(&token).await.unwrap().unwrap();
        assert_eq!((redeemed.record, redeemed.id), (record, digest[..ID_LEN].to_string()));
        assert_eq!(t.revoke(&Selector::Account("old".into()), "ops@host", "cli").await.unwrap().len(), 1);
        assert_eq!(t.redeem(&token).await.unwrap(), Err(Rejected::Unknown));
    }

    #[tokio::test]
    async fn an_account_keeps_at_most_its_newest_tokens() {
        let (_, t) = tokens();
        let mut issued = Vec::new();
        for _ in 0..=MAX_PER_ACCOUNT {
            issued.push(t.issue("ci", "static", None, "").await.unwrap().0);
        }
        assert_eq!(t.list(Some("ci")).await.unwrap().len(), MAX_PER_ACCOUNT);
        let mut refused = 0;
        for token in &issued {
            refused += usize::from(t.redeem(token).await.unwrap().is_err());
        }
        // Issued within the same second, "oldest" is any one of them.
        assert_eq!(refused, 1);
        assert!(t.redeem(issued.last().unwrap()).await.unwrap().is_ok(), "the newest stays");
    }
}
