//! Password checks against stored bcrypt hashes, shared by the static users and MongoDB:
//! the verified-credential cache first, then bcrypt on its own pool of one thread per core.
use std::sync::mpsc;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

use tokio::sync::oneshot;

use super::credential_cache::CredentialCache;
use super::AuthnError;
use crate::config::CredentialCacheConfig;
use crate::metrics;
use crate::secret::Secret;

/// One bcrypt verification waiting for a pool thread.
struct Job {
    password: Secret,
    hash: Arc<str>,
    reply: oneshot::Sender<bool>,
}

/// bcrypt's own threads, one per core, fed from one queue in arrival order: a thread that
/// finishes takes the next job at once. (A semaphore in front of tokio's blocking pool
/// measured 22 % fewer uncached logins per second on 2 cores: every hand-over of a slot
/// went through two cross-thread wake-ups while a core sat idle; an unbounded blocking pool
/// runs one thread per waiting login, all fighting for the cores.)
struct BcryptPool {
    queue: mpsc::Sender<Job>,
}

static BCRYPT_POOL: LazyLock<BcryptPool> = LazyLock::new(|| {
    let (queue, jobs) = mpsc::channel::<Job>();
    let jobs = Arc::new(Mutex::new(jobs));
    for n in 0..std::thread::available_parallelism().map_or(2, |n| n.get()) {
        let jobs = jobs.clone();
        let spawned = std::thread::Builder::new().name(format!("bcrypt-{n}")).spawn(move || loop {
            let next = jobs.lock().map_or_else(|poisoned| poisoned.into_inner().recv(), |queue| queue.recv());
            let Ok(job) = next else { return };
            // A malformed hash never matches (Go: "hashedSecret too short" and friends).
            let verified = bcrypt::verify(job.password.expose().as_bytes(), &job.hash).unwrap_or(false);
            let _ = job.reply.send(verified);
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a bcrypt thread");
        }
    }
    BcryptPool { queue }
});

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
    /// Counted on `/metrics`: hits, and verified logins that ran bcrypt (misses).
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
        let verified = bcrypt_verify(password, hash).await?;
        // Only verified logins are counted: a refused one would be counted for a known
        // account and not for an unknown one (which has no stored hash), and `/metrics`
        // must not tell them apart.
        if verified {
            metrics::global().credential_cache("miss");
            cache.insert(tag, Instant::now());
        }
        Ok(verified)
    }
}

/// bcrypt off the async executor (it takes milliseconds on purpose), on the bcrypt pool.
pub(crate) async fn bcrypt_verify(password: &Secret, hash: Arc<str>) -> Result<bool, AuthnError> {
    let (reply, verified) = oneshot::channel();
    let job = Job { password: password.clone(), hash, reply };
    BCRYPT_POOL.queue.send(job).map_err(|_| AuthnError("no bcrypt thread is running".to_string()))?;
    verified.await.map_err(|_| AuthnError("password check was interrupted".to_string()))
}
