//! Console sessions in the store (state.md, "console session"): the browser holds a
//! 256-bit random cookie; the store holds `cs:<keyed hash of it>` with the account, its
//! labels, the CSRF secret and the expiries, and the index `cs-acct:<sha256(account)>` of
//! one account's sessions (at most [`MAX_PER_ACCOUNT`]), for "sign out everywhere".
//!
//! The idle timeout is the record's store ttl, renewed by use (at most every
//! [`touch_interval`]); the absolute lifetime is `expires` in the record, which a renewal
//! never moves. Nothing is cached in the process: signing out at one replica ends the
//! session at every replica on its next request. No actix here.
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::console::ConsoleConfig;
use crate::identity::issued_secret::{self, Kind, RngError};
use crate::identity::records::{now_unix, secs};
use crate::identity::SecretHasher;
use crate::request::Labels;
use crate::store::{SharedStore, StoreError, StoreExt as _};

/// Live sessions one account may have; signing in once more ends its oldest.
pub const MAX_PER_ACCOUNT: usize = 32;

/// One stored session (never the cookie itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub account: String,
    pub labels: Labels,
    /// The authenticator that accepted the password, or the web sign-in provider's backend.
    pub backend: String,
    /// `password`, or the web sign-in provider's name (`oidc`, `github`...).
    pub via: String,
    /// Key of this session's CSRF tokens (base64url of 32 random bytes).
    pub csrf_secret: String,
    pub created: i64,
    /// Absolute end (unix seconds): `created` + `session_lifetime`.
    pub expires: i64,
    /// Last request seen (unix seconds), at the granularity of [`touch_interval`].
    pub last_seen: i64,
}

/// A session found by its cookie.
#[derive(Debug, Clone)]
pub struct Live {
    /// The keyed hash of the cookie: the record's name.
    pub digest: String,
    pub record: SessionRecord,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Rng(#[from] RngError),
}

pub struct Sessions {
    store: SharedStore,
    hasher: Arc<SecretHasher>,
    idle: Duration,
    lifetime: Duration,
}

fn record_key(digest: &str) -> String {
    format!("cs:{digest}")
}

fn account_index(account: &str) -> String {
    let hex: String = Sha256::digest(account.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    format!("cs-acct:{hex}")
}

/// How often a use is written: a tenth of the idle timeout, at most a minute, so that a
/// session in use never lapses and one write serves many pages.
pub fn touch_interval(idle: Duration) -> i64 {
    secs(idle / 10).clamp(1, 60)
}

impl Sessions {
    pub fn new(store: SharedStore, hasher: Arc<SecretHasher>, config: &ConsoleConfig) -> Sessions {
        Sessions { store, hasher, idle: config.session_idle_timeout, lifetime: config.session_lifetime }
    }

    /// Starts a session for an account that just proved who it is; returns the cookie value.
    pub async fn create(
        &self,
        account: &str,
        labels: Labels,
        backend: &str,
        via: &str,
    ) -> Result<(String, Live), SessionError> {
        let cookie = issued_secret::generate(Kind::ConsoleSession)?;
        let digest = self.hasher.digest(Kind::ConsoleSession, &cookie).await?;
        let now = now_unix();
        let record = SessionRecord {
            account: account.to_string(),
            labels,
            backend: backend.to_string(),
            via: via.to_string(),
            csrf_secret: issued_secret::generate(Kind::ConsoleSession)?,
            created: now,
            expires: now.saturating_add(secs(self.lifetime)),
            last_seen: now,
        };
        self.make_room(account).await?;
        self.store.put_json(&record_key(&digest), &record, self.ttl(&record, now)).await?;
        self.store.index_add(&account_index(account), &digest, Some(self.lifetime)).await?;
        Ok((cookie, Live { digest, record }))
    }

    /// The live session of a cookie, its use recorded; `None` for anything else (unknown,
    /// signed out, idle too long, past its lifetime, not a session cookie at all).
    pub async fn find(&self, cookie: &str) -> Result<Option<Live>, StoreError> {
        if !issued_secret::well_formed(Kind::ConsoleSession, cookie) {
            return Ok(None);
        }
        let digest = self.hasher.digest(Kind::ConsoleSession, cookie).await?;
        let Some(mut record) = self.store.get_json::<SessionRecord>(&record_key(&digest)).await? else {
            return Ok(None);
        };
        let now = now_unix();
        if record.expires <= now || now - record.last_seen >= secs(self.idle) {
            self.end(&Live { digest, record }).await?;
            return Ok(None);
        }
        if now - record.last_seen >= touch_interval(self.idle) {
            record.last_seen = now;
            self.store.put_json(&record_key(&digest), &record, self.ttl(&record, now)).await?;
        }
        Ok(Some(Live { digest, record }))
    }

    /// The store ttl: the idle timeout, never past the absolute end.
    fn ttl(&self, record: &SessionRecord, now: i64) -> Option<Duration> {
        let remaining = u64::try_from(record.expires.saturating_sub(now)).unwrap_or(0).max(1);
        Some(self.idle.min(Duration::from_secs(remaining)))
    }

    /// Signs one session out (the record first: once it is gone the cookie opens nothing).
    pub async fn end(&self, live: &Live) -> Result<(), StoreError> {
        self.store.delete(&record_key(&live.digest)).await?;
        self.store.index_remove(&account_index(&live.record.account), &live.digest).await
    }

    /// Every live session of `account`, oldest first.
    pub async fn list(&self, account: &str) -> Result<Vec<Live>, StoreError> {
        let index = account_index(account);
        let mut out = Vec::new();
        for digest in self.store.index_members(&index, MAX_PER_ACCOUNT * 4).await? {
            match self.store.get_json::<SessionRecord>(&record_key(&digest)).await? {
                Some(record) if record.account == account => out.push(Live { digest, record }),
                Some(_) => {}
                // Lapsed (idle): its index entry goes too, so the index stays bounded.
                None => self.store.index_remove(&index, &digest).await?,
            }
        }
        out.sort_by(|a, b| (a.record.created, &a.digest).cmp(&(b.record.created, &b.digest)));
        Ok(out)
    }

    /// Signs out every session of `account` ("sign out everywhere"); returns how many.
    pub async fn end_all(&self, account: &str) -> Result<usize, StoreError> {
        let sessions = self.list(account).await?;
        for live in &sessions {
            self.end(live).await?;
        }
        Ok(sessions.len())
    }

    /// Ends the oldest sessions of `account` beyond [`MAX_PER_ACCOUNT`] - 1.
    async fn make_room(&self, account: &str) -> Result<(), StoreError> {
        let sessions = self.list(account).await?;
        for oldest in sessions.iter().take((sessions.len() + 1).saturating_sub(MAX_PER_ACCOUNT)) {
            self.end(oldest).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;

    fn sessions(idle: u64, lifetime: u64) -> Sessions {
        let store: SharedStore = Arc::new(MemoryStore::new());
        let config = ConsoleConfig {
            line: 1,
            registry_url: None,
            registry_ca_certificate: None,
            session_idle_timeout: Duration::from_secs(idle),
            session_lifetime: Duration::from_secs(lifetime),
            operators_line: None,
            operators: Vec::new(),
        };
        Sessions::new(store.clone(), Arc::new(SecretHasher::in_store(store)), &config)
    }

    #[tokio::test]
    async fn create_find_end_and_end_all() {
        let s = sessions(600, 3600);
        let (a, live) = s.create("alice", Labels::new(), "static", "password").await.unwrap();
        let (b, _) = s.create("alice", Labels::new(), "static", "password").await.unwrap();
        let (c, _) = s.create("bob", Labels::new(), "static", "password").await.unwrap();
        assert_eq!(s.find(&a).await.unwrap().unwrap().record.account, "alice");
        assert!(s.find("racs_nope").await.unwrap().is_none());
        assert!(s.find(&format!("{}x", &a[..a.len() - 1])).await.unwrap().is_none());
        s.end(&live).await.unwrap();
        assert!(s.find(&a).await.unwrap().is_none());
        assert!(s.find(&b).await.unwrap().is_some());
        assert_eq!(s.end_all("alice").await.unwrap(), 1);
        assert!(s.find(&b).await.unwrap().is_none());
        assert!(s.find(&c).await.unwrap().is_some(), "another account's session stays");
    }

    #[tokio::test]
    async fn an_account_keeps_at_most_its_newest_sessions() {
        let s = sessions(600, 3600);
        for _ in 0..MAX_PER_ACCOUNT + 3 {
            s.create("ci", Labels::new(), "static", "password").await.unwrap();
        }
        assert_eq!(s.list("ci").await.unwrap().len(), MAX_PER_ACCOUNT);
    }

    #[test]
    fn touches_are_rate_limited_below_the_idle_timeout() {
        assert_eq!(touch_interval(Duration::from_secs(1800)), 60);
        assert_eq!(touch_interval(Duration::from_secs(30)), 3);
        assert_eq!(touch_interval(Duration::from_secs(5)), 1);
    }
}
