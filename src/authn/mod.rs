//! Authentication contract and the ordered chain of authenticators.
//! Backends live in submodules and depend on this file, never the other way round.
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::request::Labels;
use crate::secret::Secret;
use crate::store::read_ahead::ReadAhead;

pub mod bcrypt_pool;
pub mod ci_token;
pub mod credential_cache;
pub mod ext;
pub mod ldap;
pub mod mongo;
pub mod oidc;
pub mod password;
pub mod static_users;
pub mod xorm;

/// The answer of one authenticator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthnOutcome {
    /// "I don't know this user": the chain tries the next backend.
    NoMatch,
    /// Known user, wrong credentials: the chain stops with 401.
    Deny,
    /// Authenticated, with the user's labels: the chain stops with success.
    Allow(Labels),
    /// Authenticated by a credential that names its own account and lifetime (a CI job's
    /// OIDC token): the ACL sees the mapped account, and nothing issued for the login may
    /// outlive the credential.
    AllowMapped(Box<MappedIdentity>),
}

/// Who a self-describing credential says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedIdentity {
    /// The account the ACL sees and the registry token's `sub` (not the login name).
    pub account: String,
    pub labels: Labels,
    /// The credential's own expiry: the registry token's `exp` is capped at it.
    pub not_after: SystemTime,
}

/// The answer of [`Authenticator::lookup`]: an account's labels found without its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupOutcome {
    /// The account exists now, with these labels.
    Found(Labels),
    /// The backend no longer knows the account.
    NotFound,
    /// The backend cannot be asked without the password (ext_auth, LDAP bound as the user):
    /// the caller uses what it saw at login.
    Unsupported,
}

/// A backend that could not answer (directory down, bad program output...).
/// The message goes to the log only; clients get a fixed body.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AuthnError(pub String);

/// An authentication backend.
///
/// Contract (docker_auth `api/authn.go`): return `Err` only when the request could not be
/// served, never for a denial. Implementations must be safe to call concurrently.
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// Short name for logs and metrics, e.g. `static`.
    fn name(&self) -> &'static str;
    /// Whether the backend can answer now (its directory or database is reachable), for
    /// `/readyz`. Backends without a remote peer are always ready.
    async fn ready(&self) -> Result<(), AuthnError> {
        Ok(())
    }
    async fn authenticate(&self, account: &str, password: &Secret) -> Result<AuthnOutcome, AuthnError>;
    /// The store record this backend reads to authenticate `account`, if any, so that the
    /// login can read it with its lockout counters (one Redis round trip, [`ReadAhead`]).
    fn record_key(&self, _account: &str) -> Option<String> {
        None
    }
    /// [`Authenticator::authenticate`] with the records read ahead for this login; a
    /// backend with a [`Authenticator::record_key`] takes its record from `read` when it
    /// is there.
    async fn authenticate_read_ahead(
        &self,
        account: &str,
        password: &Secret,
        _read: &ReadAhead,
    ) -> Result<AuthnOutcome, AuthnError> {
        self.authenticate(account, password).await
    }
    /// The account's current labels without its password, for identity-token exchanges
    /// (the user proved who they are at login; this refreshes what they are now).
    /// `Err` only when the backend could not answer. Backends that have no way to look an
    /// account up without its password answer `Unsupported`, the default.
    async fn lookup(&self, _account: &str) -> Result<LookupOutcome, AuthnError> {
        Ok(LookupOutcome::Unsupported)
    }
    /// Whether [`Authenticator::lookup`] can answer for this backend as configured; when it
    /// cannot, identity tokens keep the labels seen at login instead.
    fn can_lookup(&self) -> bool {
        false
    }
}

/// The result of running the chain: the outcome and the 0-based index of the backend
/// that decided (None when no backend matched).
#[derive(Debug)]
pub struct ChainDecision {
    pub outcome: AuthnOutcome,
    pub backend: Option<(usize, &'static str)>,
}

/// A chain failure: which backend failed and why (for the log).
#[derive(Debug, thiserror::Error)]
#[error("authn #{} ({}) returned error: {}", .index + 1, .backend, .source)]
pub struct ChainError {
    pub index: usize,
    pub backend: &'static str,
    pub source: AuthnError,
}

/// Authenticators in docker_auth's fixed order; the first that does not answer
/// `NoMatch` decides.
pub struct AuthnChain {
    backends: Vec<Arc<dyn Authenticator>>,
}

impl AuthnChain {
    pub fn new(backends: Vec<Arc<dyn Authenticator>>) -> Self {
        AuthnChain { backends }
    }

    pub fn len(&self) -> usize {
        self.backends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.backends.is_empty()
    }

    /// The first backend that is not ready, with its error.
    pub async fn ready(&self) -> Result<(), (&'static str, AuthnError)> {
        for backend in &self.backends {
            backend.ready().await.map_err(|e| (backend.name(), e))?;
        }
        Ok(())
    }

    /// [`Authenticator::lookup`] on the backend named `backend` (the one that authenticated
    /// the account at login); `NotFound` when this config has no such backend any more.
    pub async fn lookup(&self, backend: &str, account: &str) -> Result<LookupOutcome, ChainError> {
        let Some((index, found)) = self.backends.iter().enumerate().find(|(_, b)| b.name() == backend) else {
            return Ok(LookupOutcome::NotFound);
        };
        found.lookup(account).await.map_err(|source| ChainError { index, backend: found.name(), source })
    }

    /// [`Authenticator::can_lookup`] of the backend named `backend`.
    pub fn can_lookup(&self, backend: &str) -> bool {
        self.backends.iter().any(|b| b.name() == backend && b.can_lookup())
    }

    pub async fn authenticate(&self, account: &str, password: &Secret) -> Result<ChainDecision, ChainError> {
        self.authenticate_read_ahead(account, password, &ReadAhead::none()).await
    }

    /// The store records the chain's backends read to authenticate `account` (each once).
    pub fn record_keys(&self, account: &str) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for key in self.backends.iter().filter_map(|b| b.record_key(account)) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }

    /// [`AuthnChain::authenticate`] with records read ahead ([`AuthnChain::record_keys`]).
    pub async fn authenticate_read_ahead(
        &self,
        account: &str,
        password: &Secret,
        read: &ReadAhead,
    ) -> Result<ChainDecision, ChainError> {
        for (index, backend) in self.backends.iter().enumerate() {
            let outcome = backend
                .authenticate_read_ahead(account, password, read)
                .await
                .map_err(|source| ChainError { index, backend: backend.name(), source })?;
            if outcome != AuthnOutcome::NoMatch {
                return Ok(ChainDecision { outcome, backend: Some((index, backend.name())) });
            }
        }
        Ok(ChainDecision { outcome: AuthnOutcome::NoMatch, backend: None })
    }
}
