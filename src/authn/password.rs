//! Password checks against stored bcrypt hashes, shared by the static users and MongoDB:
//! the verified-credential cache first, then bcrypt on the bcrypt pool (`bcrypt_pool`),
//! and the decoy verification that makes an unknown account or an unusable stored hash
//! cost what the slowest real account costs.
use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::bcrypt_pool::{pool, PoolLimits, Refusal, Work};
use super::credential_cache::CredentialCache;
use super::static_users::parse_bcrypt_cost;
use super::AuthnError;
use crate::config::CredentialCacheConfig;
use crate::metrics;
use crate::secret::Secret;

/// The decoy's cost until a configured hash says otherwise: `hash-password`'s default.
const DEFAULT_DECOY_COST: u32 = 10;

/// The login a password check belongs to: whose turn it takes in the bcrypt queue, and
/// whether the pool refused one of its checks (then the login is answered 503, not 500).
struct LoginClient {
    ip: Option<IpAddr>,
    refused: Cell<bool>,
}

tokio::task_local! {
    static LOGIN: LoginClient;
}

/// Runs `login` (an authentication chain) with its password checks queued for client `ip`.
/// Returns its output and whether the bcrypt pool refused a check (queue full).
pub async fn for_client<F: Future>(ip: Option<IpAddr>, login: F) -> (F::Output, bool) {
    let client = LoginClient { ip, refused: Cell::new(false) };
    LOGIN
        .scope(client, async {
            let output = login.await;
            (output, LOGIN.with(|c| c.refused.get()))
        })
        .await
}

/// The decoy hashes, one per cost, made with a random password nobody knows.
struct Decoy {
    cost: AtomicU32,
    hashes: Mutex<HashMap<u32, Arc<str>>>,
}

impl Decoy {
    fn hash(&self, cost: u32) -> Option<Arc<str>> {
        self.hashes.lock().unwrap_or_else(|p| p.into_inner()).get(&cost).cloned()
    }

    fn make(&self, cost: u32) -> Result<Arc<str>, AuthnError> {
        let random: [u8; 16] = rand::random();
        let hash: Arc<str> = bcrypt::hash(random, cost)
            .map(Arc::from)
            .map_err(|e| AuthnError(format!("cannot prepare decoy hash: {e}")))?;
        self.hashes.lock().unwrap_or_else(|p| p.into_inner()).insert(cost, hash.clone());
        Ok(hash)
    }
}

/// Checks passwords for one loaded config; its cache is dropped with that config.
pub struct PasswordVerifier {
    cache: Option<CredentialCache>,
    limits: PoolLimits,
    decoy: Arc<Decoy>,
}

impl PasswordVerifier {
    pub fn new(config: &CredentialCacheConfig, limits: PoolLimits) -> PasswordVerifier {
        let decoy = Decoy { cost: AtomicU32::new(DEFAULT_DECOY_COST), hashes: Mutex::default() };
        PasswordVerifier { cache: CredentialCache::new(config), limits, decoy: Arc::new(decoy) }
    }

    /// Sets the decoy to the highest cost among `hashes` (the configured users), and makes
    /// its hash now, so that no login pays for that. Unusable hashes do not count.
    pub fn prepare_decoy<'a>(&self, hashes: impl IntoIterator<Item = &'a str>) -> Result<(), AuthnError> {
        let cost = hashes.into_iter().filter_map(parse_bcrypt_cost).max().unwrap_or(DEFAULT_DECOY_COST);
        self.decoy.cost.store(cost, Ordering::Relaxed);
        self.decoy.make(cost)?;
        tracing::info!(cost, "unknown accounts and unusable stored hashes cost a decoy bcrypt check at cost {cost}, the highest configured");
        Ok(())
    }

    /// Raises the decoy cost to a stored hash's cost met at run time (MongoDB users).
    fn raise_decoy_cost(&self, hash: &str) {
        if let Some(cost) = parse_bcrypt_cost(hash) {
            let before = self.decoy.cost.fetch_max(cost, Ordering::Relaxed);
            if cost > before {
                tracing::info!(cost, "decoy bcrypt check raised to cost {cost}, the highest met so far");
            }
        }
    }

    /// Whether `password` matches `hash`, the hash `backend` stores for `account`.
    ///
    /// A cache hit needs the very same (backend, account, password, hash) to have been
    /// verified within the TTL. A wrong password can never hit, so it always pays the full
    /// bcrypt, like an uncached account: timing tells nothing about who logged in recently.
    /// Counted on `/metrics`: hits, and verified logins that ran bcrypt (misses).
    /// A hash that is not bcrypt never matches and costs a decoy check.
    pub async fn verify(
        &self,
        backend: &'static str,
        account: &str,
        password: &Secret,
        hash: Arc<str>,
    ) -> Result<bool, AuthnError> {
        self.raise_decoy_cost(&hash);
        if parse_bcrypt_cost(&hash).is_none() {
            self.decoy(password).await?;
            return Ok(false);
        }
        let Some(cache) = &self.cache else { return self.bcrypt_verify(password, hash).await };
        let tag = cache.tag(backend, account, password, &hash);
        if cache.contains(&tag, Instant::now()) {
            metrics::global().credential_cache("hit");
            return Ok(true);
        }
        let verified = self.bcrypt_verify(password, hash).await?;
        // Only verified logins are counted: a refused one would be counted for a known
        // account and not for an unknown one (which has no stored hash), and `/metrics`
        // must not tell them apart.
        if verified {
            metrics::global().credential_cache("miss");
            cache.insert(tag, Instant::now());
        }
        Ok(verified)
    }

    /// A verification that can never match, at the decoy cost, under the same queue rules
    /// as a real one: what an unknown account costs.
    pub async fn decoy(&self, password: &Secret) -> Result<(), AuthnError> {
        let cost = self.decoy.cost.load(Ordering::Relaxed);
        let (decoy, password) = (self.decoy.clone(), password.clone());
        let work: Work = Box::new(move || {
            tracing::debug!("bcrypt check at cost {cost}");
            match decoy.hash(cost) {
                Some(hash) => bcrypt::verify(password.expose().as_bytes(), &hash).unwrap_or(false),
                // The first decoy at a cost met at run time makes its hash: the same work.
                None => decoy.make(cost).is_err(),
            }
        });
        self.run(work).await.map(|_| ())
    }

    /// bcrypt off the async executor (it takes milliseconds on purpose), on the bcrypt pool.
    async fn bcrypt_verify(&self, password: &Secret, hash: Arc<str>) -> Result<bool, AuthnError> {
        let password = password.clone();
        let work: Work = Box::new(move || {
            if let Some(cost) = parse_bcrypt_cost(&hash) {
                tracing::debug!("bcrypt check at cost {cost}");
            }
            bcrypt::verify(password.expose().as_bytes(), &hash).unwrap_or(false)
        });
        self.run(work).await
    }

    async fn run(&self, work: Work) -> Result<bool, AuthnError> {
        let ip = LOGIN.try_with(|c| c.ip).ok().flatten();
        pool().run(ip, self.limits, work).await.map_err(|refusal| {
            if refusal != Refusal::Stopped {
                let _ = LOGIN.try_with(|c| c.refused.set(true));
            }
            AuthnError(format!("password check refused: {refusal}"))
        })
    }
}
