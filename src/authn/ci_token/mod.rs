//! `ci_token_auth`: a CI job logs in with the OIDC token its platform issued it
//! (`docker login -u <any> -p "$ID_TOKEN"`). First in the chain: a password that is a JWT
//! from a listed issuer is decided here and never handed to another backend (LDAP or an
//! ext_auth program would otherwise receive the job's token); any other password is
//! `NoMatch` after a few cheap checks ([`verify::peek_issuer`]), with no network call.
//! The account and labels come from the section's claim templates; the registry token
//! issued for the login expires no later than the CI token ([`MappedIdentity::not_after`]).
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use super::{Authenticator, AuthnError, AuthnOutcome, MappedIdentity};
use crate::config::ci_token::{CiIssuer, CiTokenConfig, JwksSource};
use crate::request::Labels;
use crate::secret::Secret;

pub mod cache;
pub mod fetch;
pub mod jwks;
pub mod keys;
pub mod template;
pub mod verify;

use jwks::{IssuerKeys, Lookup, Timing};

pub struct CiTokenAuth {
    issuers: HashMap<String, Issuer>,
    leeway_secs: u64,
    verified: cache::VerifiedCache,
}

/// How long a verified token is remembered (bounded by its own `exp`), and how many.
const VERIFIED_TTL: Duration = Duration::from_secs(60);
const VERIFIED_MAX: usize = 10_000;

struct Issuer {
    config: CiIssuer,
    keys: IssuerKeys,
}

impl CiTokenAuth {
    /// Builds the key caches (no network: keys are fetched at the first login).
    pub fn new(config: &CiTokenConfig) -> Result<CiTokenAuth, (usize, String)> {
        // Both crypto features of jsonwebtoken may be on in one build (a test dependency's
        // choice); name ours so the crate never has to guess.
        let _ = jsonwebtoken::crypto::CryptoProvider::install_default(&jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER);
        let timing = Timing {
            ttl: config.jwks_cache_ttl,
            refetch_interval: config.jwks_refetch_interval,
            http_timeout: config.http_timeout,
        };
        let mut issuers = HashMap::new();
        for (index, issuer) in config.issuers.iter().enumerate() {
            let keys = match &issuer.jwks {
                JwksSource::Discovery => {
                    let fetcher =
                        fetch::Fetcher::new(&issuer.issuer, issuer.ca_certificate.as_deref(), config.http_timeout)
                            .map_err(|e| (index, e))?;
                    IssuerKeys::discovered(&issuer.issuer, fetcher, timing)
                }
                JwksSource::File { path, json } => {
                    let set = keys::KeySet::parse(json).map_err(|e| (index, format!("{}: {e}", path.display())))?;
                    IssuerKeys::fixed(&issuer.issuer, set)
                }
            };
            issuers.insert(issuer.issuer.clone(), Issuer { config: issuer.clone(), keys });
        }
        let verified = cache::VerifiedCache::new(VERIFIED_TTL, VERIFIED_MAX);
        Ok(CiTokenAuth { issuers, leeway_secs: config.leeway.as_secs(), verified })
    }

    async fn check(
        &self,
        issuer: &Issuer,
        account: &str,
        token: &str,
    ) -> Result<Result<MappedIdentity, String>, AuthnError> {
        let config = &issuer.config;
        if config.username.as_deref().is_some_and(|u| u != account) {
            return Ok(Err("the login name is not the configured username".into()));
        }
        let Ok(header) = jsonwebtoken::decode_header(token) else { return Ok(Err("malformed header".into())) };
        let key = match issuer.keys.key(header.kid.as_deref()).await {
            Lookup::Key(key) => key,
            Lookup::Unknown => return Ok(Err("unknown kid".into())),
            Lookup::Unavailable(e) => return Err(AuthnError(format!("keys of {} unavailable: {e}", config.issuer))),
        };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let verified = match verify::verify(token, &key, &config.issuer, &config.audience, self.leeway_secs, now) {
            Ok(verified) => verified,
            Err(reason) => return Ok(Err(reason)),
        };
        let claims = &verified.claims;
        if let Some(rule) = config.required_claims.iter().find(|rule| !rule.holds(claims)) {
            return Ok(Err(format!("required claim {} does not match", rule.path)));
        }
        let Some(mapped_account) = config.account.render(claims) else {
            return Ok(Err("the account template names a missing or unusable claim".into()));
        };
        let mut labels = Labels::new();
        for (name, template) in &config.labels {
            let values = template.render_values(claims);
            if !values.is_empty() {
                labels.entry(name.clone()).or_default().extend(values);
            }
        }
        let not_after = UNIX_EPOCH + Duration::from_secs(verified.exp);
        Ok(Ok(MappedIdentity { account: mapped_account, labels, not_after }))
    }
}

#[async_trait]
impl Authenticator for CiTokenAuth {
    fn name(&self) -> &'static str {
        "ci_token_auth"
    }

    async fn authenticate(&self, account: &str, password: &Secret) -> Result<AuthnOutcome, AuthnError> {
        let token = password.expose();
        let Some(issuer) = verify::peek_issuer(token).and_then(|iss| self.issuers.get(&iss)) else {
            return Ok(AuthnOutcome::NoMatch);
        };
        if issuer.config.username.as_deref().is_none_or(|u| u == account) {
            if let Some(mapped) = self.verified.get(token) {
                return Ok(AuthnOutcome::AllowMapped(Box::new(mapped)));
            }
        }
        match self.check(issuer, account, token).await? {
            Ok(mapped) => {
                self.verified.insert(token, &mapped);
                Ok(AuthnOutcome::AllowMapped(Box::new(mapped)))
            }
            Err(reason) => {
                tracing::warn!(issuer = %issuer.config.issuer, reason = %reason, "CI token refused");
                Ok(AuthnOutcome::Deny)
            }
        }
    }
}
