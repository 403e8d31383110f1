//! `server.letsencrypt`: the listener's certificate comes from an ACME CA (Let's Encrypt by
//! default) through TLS-ALPN-01 on the listener itself, is kept in `cache_dir`, reused at the
//! next start while valid, renewed before expiry and swapped in without a restart. Unlike
//! docker_auth, this mode serves HTTPS (docker_auth's serves plain HTTP since 2021).
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::letsencrypt::LetsEncryptConfig;

pub mod cache;
mod http;
mod order;
pub mod resolver;

pub use resolver::{AcmeResolver, ACME_TLS_ALPN};

/// Waits after failed attempts: 10 s, doubling, at most an hour (the CA's rate limits).
const FIRST_RETRY: Duration = Duration::from_secs(10);
const LAST_RETRY: Duration = Duration::from_secs(3600);

pub struct Acme {
    config: LetsEncryptConfig,
    resolver: Arc<AcmeResolver>,
    /// `not_before`, `not_after` of the certificate being served (Unix seconds).
    validity: Option<(i64, i64)>,
}

impl Acme {
    /// Checks the CA file and puts a still-valid cached certificate in place, so that a
    /// restart serves at once and orders nothing. Nothing is contacted yet.
    /// Errors name the key to blame (`directory_ca_certificate` or `cache_dir`).
    pub fn prepare(config: &LetsEncryptConfig) -> Result<Acme, (&'static str, String)> {
        http::AcmeHttp::new(config).map_err(|e| ("directory_ca_certificate", e))?;
        let resolver = Arc::new(AcmeResolver::default());
        let path = cache::certificate_path(&config.cache_dir, &config.host);
        let validity = match std::fs::read(&path) {
            Ok(pem) => match cache::parse(&pem) {
                Ok(cached) if cached.not_after > now() => {
                    resolver.set_certificate(cached.certified);
                    tracing::info!(path = %path.display(), expires = cached.not_after, "letsencrypt: serving the cached certificate");
                    Some((cached.not_before, cached.not_after))
                }
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(path = %path.display(), "letsencrypt: the cached certificate is unusable ({e}); ordering a new one");
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(("cache_dir", format!("cannot read {}: {e}", path.display()))),
        };
        Ok(Acme { config: config.clone(), resolver, validity })
    }

    pub fn resolver(&self) -> Arc<AcmeResolver> {
        self.resolver.clone()
    }

    /// Obtains and renews for as long as the server runs. Errors are logged and retried;
    /// the certificate in place (if any) keeps being served meanwhile.
    pub async fn run(mut self) {
        let mut failures = 0;
        loop {
            let wait =
                self.validity.map_or(Duration::ZERO, |(from, until)| renew_in(from, until, self.config.renew_before));
            if !wait.is_zero() {
                tracing::info!(host = %self.config.host, "letsencrypt: next renewal in {}s", wait.as_secs());
                tokio::time::sleep(wait).await;
            }
            tracing::info!(host = %self.config.host, directory = %self.config.directory_url, "letsencrypt: ordering a certificate");
            match order::obtain(&self.config, &self.resolver).await.and_then(|pem| self.install(&pem)) {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    let retry = backoff(failures);
                    tracing::error!(
                        host = %self.config.host,
                        directory_url = %self.config.directory_url,
                        "letsencrypt: cannot obtain a certificate: {e}; retrying in {}s",
                        retry.as_secs()
                    );
                    tokio::time::sleep(retry).await;
                }
            }
        }
    }

    /// Serves the new certificate at once, then keeps it in the cache.
    fn install(&mut self, pem: &str) -> Result<(), String> {
        let cached = cache::parse(pem.as_bytes()).map_err(|e| format!("the issued certificate is unusable: {e}"))?;
        self.resolver.set_certificate(cached.certified);
        self.validity = Some((cached.not_before, cached.not_after));
        tracing::info!(host = %self.config.host, expires = cached.not_after, "letsencrypt: new certificate in use");
        let path = cache::certificate_path(&self.config.cache_dir, &self.config.host);
        if let Err(e) = cache::write_private(&path, pem.as_bytes()) {
            tracing::error!("letsencrypt: {e}; the certificate is served but a restart will order a new one");
        }
        Ok(())
    }
}

/// When to renew: `renew_before` ahead of expiry, but never earlier than two thirds into
/// the lifetime (short-lived certificates would otherwise be renewed all the time).
fn renew_in(not_before: i64, not_after: i64, renew_before: Duration) -> Duration {
    let lifetime = u64::try_from(not_after - not_before).unwrap_or(0);
    let ahead = renew_before.as_secs().min(lifetime / 3);
    let renew_at = not_after - i64::try_from(ahead).unwrap_or(0);
    Duration::from_secs(u64::try_from(renew_at - now()).unwrap_or(0))
}

fn backoff(failures: u32) -> Duration {
    FIRST_RETRY.saturating_mul(1 << failures.saturating_sub(1).min(10)).min(LAST_RETRY)
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_time_and_backoff() {
        let t = now();
        let day = 86_400;
        // A 90-day certificate issued today: renew 30 days before expiry.
        let wait = renew_in(t, t + 90 * day, Duration::from_secs(30 * day as u64)).as_secs() as i64;
        assert!((60 * day - 2..=60 * day).contains(&wait), "{wait}");
        // A 6-day one: at two thirds of its life, not at once.
        let wait = renew_in(t, t + 6 * day, Duration::from_secs(30 * day as u64)).as_secs() as i64;
        assert!((4 * day - 2..=4 * day).contains(&wait), "{wait}");
        assert_eq!(renew_in(t - 100, t - 1, Duration::from_secs(10)), Duration::ZERO);
        assert_eq!((backoff(1), backoff(2), backoff(30)), (FIRST_RETRY, FIRST_RETRY * 2, LAST_RETRY));
    }
}
