//! The authenticator of one web sign-in provider: the password a sign-in generated is
//! checked at `/auth` like any stored bcrypt (through the verified-credential cache); past
//! the record's `valid_until` the provider is asked again first. An upstream that says no
//! is a denial (401: docker_auth answers 500); one that cannot be asked is an error (the
//! fixed 500). An account without a record is not ours: the chain goes on.
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use super::provider::{ProviderError, Revalidation, TokenRecord, WebProvider};
use super::records::{format_time, parse_time, TokenDb};
use crate::authn::password::PasswordVerifier;
use crate::authn::{Authenticator, AuthnError, AuthnOutcome, LookupOutcome};
use crate::request::Labels;
use crate::secret::Secret;
use crate::store::read_ahead::ReadAhead;

pub struct WebLoginAuth {
    provider: Arc<dyn WebProvider>,
    db: Arc<TokenDb>,
    verifier: Arc<PasswordVerifier>,
    /// `google_auth`, `oidc_auth`...: the backend name in logs, metrics and identity tokens.
    name: &'static str,
    /// Last in the chain: an unknown account pays a decoy bcrypt check, as a wrong
    /// password does (no user enumeration by timing).
    decoy_unknown: bool,
}

impl WebLoginAuth {
    pub fn new(
        provider: Arc<dyn WebProvider>,
        db: Arc<TokenDb>,
        verifier: Arc<PasswordVerifier>,
        decoy_unknown: bool,
    ) -> WebLoginAuth {
        let name = backend_name(provider.name());
        WebLoginAuth { provider, db, verifier, name, decoy_unknown }
    }

    /// The account's record if this provider wrote it (or docker_auth did, without saying
    /// which provider): another provider's record is another provider's to check.
    async fn record(&self, account: &str, read: &ReadAhead) -> Result<Option<Arc<TokenRecord>>, AuthnError> {
        let record = self
            .db
            .get_shared(self.provider.name(), account, read)
            .await
            .map_err(|e| AuthnError(format!("web sign-in record unavailable: {e}")))?;
        Ok(record.filter(|r| r.provider.is_empty() || r.provider == self.provider.name()))
    }

    /// The record's labels, after asking the upstream again when `valid_until` has passed.
    /// `None`: the upstream refused the account.
    async fn current_labels(&self, account: &str, record: &TokenRecord) -> Result<Option<Labels>, AuthnError> {
        if parse_time(&record.valid_until) > SystemTime::now() {
            return Ok(Some(record.labels.clone()));
        }
        match self.provider.revalidate(account, record).await {
            Ok(Revalidation::Valid { labels, upstream, valid_until }) => {
                let mut renewed = record.clone();
                renewed.token_type = upstream.token_type;
                renewed.access_token = upstream.access_token.expose().to_string();
                if let Some(refresh) = upstream.refresh_token {
                    renewed.refresh_token = refresh.expose().to_string();
                }
                renewed.valid_until = format_time(valid_until);
                renewed.labels = labels.clone();
                renewed.provider = self.provider.name().to_string();
                self.db
                    .put(self.provider.name(), account, &renewed)
                    .await
                    .map_err(|e| AuthnError(format!("cannot store the revalidated sign-in: {e}")))?;
                tracing::info!(backend = self.name, account = %account, "upstream revalidated the web sign-in");
                Ok(Some(labels))
            }
            Ok(Revalidation::Refused) | Err(ProviderError::Refused(_)) => {
                tracing::warn!(backend = self.name, account = %account, "upstream refused the web sign-in on revalidation");
                Ok(None)
            }
            Err(ProviderError::Unavailable(why)) => {
                Err(AuthnError(format!("{}: revalidation failed: {why}", self.provider.name())))
            }
        }
    }
}

/// The chain's name for provider `name` (its config section).
pub fn backend_name(name: &str) -> &'static str {
    match name {
        "google" => "google_auth",
        "github" => "github_auth",
        "oidc" => "oidc_auth",
        "gitlab" => "gitlab_auth",
        _ => "web_auth",
    }
}

#[async_trait]
impl Authenticator for WebLoginAuth {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn authenticate(&self, account: &str, password: &Secret) -> Result<AuthnOutcome, AuthnError> {
        self.authenticate_read_ahead(account, password, &ReadAhead::none()).await
    }

    fn record_key(&self, account: &str) -> Option<String> {
        self.db.store_key(self.provider.name(), account)
    }

    async fn authenticate_read_ahead(
        &self,
        account: &str,
        password: &Secret,
        read: &ReadAhead,
    ) -> Result<AuthnOutcome, AuthnError> {
        if account.is_empty() || password.is_empty() {
            return Ok(AuthnOutcome::NoMatch);
        }
        let Some(record) = self.record(account, read).await? else {
            if self.decoy_unknown {
                self.verifier.decoy(password).await?;
            }
            return Ok(AuthnOutcome::NoMatch);
        };
        if record.docker_password.is_empty() {
            // The user chose an identity token: no password logs in.
            self.verifier.decoy(password).await?;
            return Ok(AuthnOutcome::Deny);
        }
        let hash: Arc<str> = Arc::from(crate::authn::static_users::normalise_prefix(&record.docker_password));
        if !self.verifier.verify(self.name, account, password, hash).await? {
            return Ok(AuthnOutcome::Deny);
        }
        Ok(match self.current_labels(account, &record).await? {
            Some(labels) => AuthnOutcome::Allow(labels),
            None => AuthnOutcome::Deny,
        })
    }

    async fn lookup(&self, account: &str) -> Result<LookupOutcome, AuthnError> {
        let Some(record) = self.record(account, &ReadAhead::none()).await? else { return Ok(LookupOutcome::NotFound) };
        Ok(match self.current_labels(account, &record).await? {
            Some(labels) => LookupOutcome::Found(labels),
            None => LookupOutcome::NotFound,
        })
    }

    fn can_lookup(&self) -> bool {
        true
    }
}
