//! Password checks against stored bcrypt hashes, shared by the static users and MongoDB:
//! the verified-credential cache first, then bcrypt on the blocking pool.
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use tokio::sync::Semaphore;

use super::credential_cache::CredentialCache;
use super::AuthnError;
use crate::config::CredentialCacheConfig;
use crate::metrics;
use crate::secret::Secret;

/// At most one bcrypt per core at a time, process-wide (so also across a reload's two
/// states): more only adds threads that steal the cores from each other and from the
/// HTTP workers. Waiters queue in arrival order.
static BCRYPT_SLOTS: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// Checks passwords for one loaded config; its cache is dropped with that config.
pub struct PasswordVerifier {
    cache: Option<CredentialCache>,
}

impl PasswordVerifier {
    pub fn new(config: &CredentialCacheConfig) -> PasswordVerifier {
        PasswordVerifier { cache: CredentialCache::new(config) }
    }

    /// Whether `password` matches `hash`, the hash `backend` stores for `account`.
    ///
    /// A cache hit needs the very same (backend, account, password, hash) to have been
    /// verified within the TTL. A wrong password can never hit, so it always pays the full
    /// bcrypt, like an uncached account: timing tells nothing about who logged in recently.
    pub async fn verify(
        &self,
        backend: &'static str,
        account: &str,
        password: &Secret,
        hash: Arc<str>,
    ) -> Result<bool, AuthnError> {
        let Some(cache) = &self.cache else { return bcrypt_verify(password, hash).await };
        let tag = cache.tag(backend, account, password, &hash);
        if cache.contains(&tag, Instant::now()) {
            metrics::global().credential_cache("hit");
            return Ok(true);
        }
        metrics::global().credential_cache("miss");
        let verified = bcrypt_verify(password, hash).await?;
        if verified {
            cache.insert(tag, Instant::now());
        }
        Ok(verified)
    }
}

/// bcrypt off the async executor (it takes milliseconds on purpose), within the core limit.
pub(crate) async fn bcrypt_verify(password: &Secret, hash: Arc<str>) -> Result<bool, AuthnError> {
    let _slot = BCRYPT_SLOTS.acquire().await.map_err(|e| AuthnError(format!("password check unavailable: {e}")))?;
    let password = password.clone();
    let result = tokio::task::spawn_blocking(move || {
        // A malformed hash never matches (Go: "hashedSecret too short" and friends).
        bcrypt::verify(password.expose().as_bytes(), &hash).unwrap_or(false)
    })
    .await;
    result.map_err(|e| AuthnError(format!("password check was interrupted: {e}")))
}
