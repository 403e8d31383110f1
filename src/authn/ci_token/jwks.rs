//! One issuer's key cache. Logins whose `kid` is known read the cached set and never wait
//! on the network. A fetch happens on the first login, when the set is older than
//! `jwks_cache_ttl`, or for an unknown `kid` (the issuer rotated its keys); at most one is
//! in flight per issuer, and at most one starts per `jwks_refetch_interval`, so tokens with
//! made-up `kid`s cannot make us hammer the issuer. A failed fetch keeps the old keys.
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::fetch::Fetcher;
use super::keys::{KeySet, VerificationKey};

pub struct IssuerKeys {
    /// The issuer's URL, for the log.
    issuer: String,
    source: Source,
    current: RwLock<Cached>,
    /// Held while a fetch runs: the single flight.
    fetching: tokio::sync::Mutex<Attempts>,
    ttl: Duration,
    refetch_interval: Duration,
    /// How long a login waits for another login's fetch (the fetch itself is bounded too).
    wait: Duration,
}

enum Source {
    Discovery(Fetcher),
    Fixed,
}

#[derive(Clone)]
struct Cached {
    set: Arc<KeySet>,
    /// `None` until the first successful fetch.
    fetched_at: Option<Instant>,
}

#[derive(Default)]
struct Attempts {
    last: Option<Instant>,
    last_error: Option<String>,
}

/// The section's cache and fetch timing.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub ttl: Duration,
    pub refetch_interval: Duration,
    pub http_timeout: Duration,
}

/// What a key lookup found.
pub enum Lookup {
    Key(Arc<VerificationKey>),
    /// The issuer (fetched recently) has no such key: the token is refused.
    Unknown,
    /// The keys could not be fetched and no cached key fits: the backend is unavailable.
    Unavailable(String),
}

impl IssuerKeys {
    pub fn discovered(issuer: &str, fetcher: Fetcher, timing: Timing) -> Self {
        Self::with(issuer, Source::Discovery(fetcher), KeySet::default(), timing)
    }

    /// Keys from a file, read at load; never fetched.
    pub fn fixed(issuer: &str, set: KeySet) -> Self {
        let timing = Timing { ttl: Duration::MAX, refetch_interval: Duration::MAX, http_timeout: Duration::ZERO };
        Self::with(issuer, Source::Fixed, set, timing)
    }

    fn with(issuer: &str, source: Source, set: KeySet, timing: Timing) -> Self {
        let Timing { ttl, refetch_interval, http_timeout } = timing;
        let fetched_at = matches!(source, Source::Fixed).then(Instant::now);
        IssuerKeys {
            issuer: issuer.to_string(),
            source,
            current: RwLock::new(Cached { set: Arc::new(set), fetched_at }),
            fetching: tokio::sync::Mutex::new(Attempts::default()),
            ttl,
            refetch_interval,
            // Discovery and JWKS: two bounded requests, plus scheduling slack.
            wait: http_timeout.saturating_mul(2).saturating_add(Duration::from_secs(1)),
        }
    }

    fn cached(&self) -> Cached {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn fresh(&self, cached: &Cached, now: Instant) -> bool {
        cached.fetched_at.is_some_and(|at| now.saturating_duration_since(at) < self.ttl)
    }

    pub async fn key(&self, kid: Option<&str>) -> Lookup {
        let cached = self.cached();
        let found = cached.set.get(kid);
        let Source::Discovery(fetcher) = &self.source else {
            return found.map_or(Lookup::Unknown, Lookup::Key);
        };
        if let Some(key) = &found {
            if self.fresh(&cached, Instant::now()) {
                return Lookup::Key(key.clone());
            }
        }
        let Ok(mut attempts) = tokio::time::timeout(self.wait, self.fetching.lock()).await else {
            return found
                .map_or_else(|| Lookup::Unavailable("waited too long for the issuer's keys".into()), Lookup::Key);
        };
        // Another login may have fetched while this one waited.
        let now_cached = self.cached();
        if now_cached.fetched_at != cached.fetched_at {
            if let Some(key) = now_cached.set.get(kid) {
                return Lookup::Key(key);
            }
        }
        let now = Instant::now();
        if attempts.last.is_some_and(|last| now.saturating_duration_since(last) < self.refetch_interval) {
            return match (now_cached.set.get(kid), &attempts.last_error) {
                (Some(key), _) => Lookup::Key(key),
                (None, Some(error)) => Lookup::Unavailable(error.clone()),
                (None, None) => Lookup::Unknown,
            };
        }
        attempts.last = Some(now);
        match fetcher.keys().await {
            Ok(set) => {
                // The interval runs from the end of a fetch: logins that queued behind a
                // failed one get its answer instead of a fetch each.
                attempts.last = Some(Instant::now());
                attempts.last_error = None;
                tracing::info!(issuer = %self.issuer, keys = set.len(), "fetched the keys of a CI token issuer");
                let set = Arc::new(set);
                *self.current.write().unwrap_or_else(|p| p.into_inner()) =
                    Cached { set: set.clone(), fetched_at: Some(Instant::now()) };
                set.get(kid).map_or(Lookup::Unknown, Lookup::Key)
            }
            Err(error) => {
                tracing::warn!(issuer = %self.issuer, error = %error, "cannot fetch the keys of a CI token issuer; cached keys stay in use");
                attempts.last = Some(Instant::now());
                attempts.last_error = Some(error.clone());
                now_cached.set.get(kid).map_or(Lookup::Unavailable(error), Lookup::Key)
            }
        }
    }
}
