//! The contract between the web sign-in flow and one provider (Google, generic OIDC, GitHub,
//! GitLab): the flow (`crate::web`) owns `state`, PKCE, nonce, cookies and pages; a provider
//! owns the upstream protocol — where to send the browser, how to turn a code into a verified
//! account with labels, and how to ask again when the record's `valid_until` has passed.
//! The record the flow stores is docker_auth's token DB value ([`TokenRecord`]).
use std::time::SystemTime;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::request::Labels;
use crate::secret::Secret;

/// What the flow generated for one sign-in attempt; the provider puts it into its URL.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// Opaque, single-use, bound to the browser by a cookie (login-CSRF protection).
    pub state: String,
    /// OIDC `nonce`, echoed in the ID token; providers without ID tokens ignore it.
    pub nonce: String,
    /// PKCE S256 challenge of the verifier the flow keeps.
    pub pkce_challenge: String,
    /// Our callback URL, as registered at the provider.
    pub redirect_uri: Url,
}

/// What the callback hands back to the provider.
#[derive(Debug, Clone)]
pub struct Callback {
    pub code: Secret,
    pub pkce_verifier: Secret,
    pub nonce: String,
    pub redirect_uri: Url,
}

/// The upstream's tokens, kept in the record to ask again later. Never logged.
#[derive(Debug, Clone, Default)]
pub struct UpstreamTokens {
    pub token_type: String,
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
}

/// A verified identity: everything was checked (signature, `iss`, `aud`, `exp`, nonce,
/// verified email, domain or organization rules).
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The registry account name (`user_claim`, email, login...).
    pub account: String,
    /// Labels for the ACL (`${labels:...}`): groups, teams, claims, `hd`.
    pub labels: Labels,
    pub upstream: UpstreamTokens,
    /// When the upstream must be asked again (docker_auth's `valid_until`).
    pub valid_until: SystemTime,
}

/// The answer of [`WebProvider::revalidate`].
#[derive(Debug, Clone)]
pub enum Revalidation {
    /// The upstream still knows and allows the account: new labels, tokens and deadline.
    Valid { labels: Labels, upstream: UpstreamTokens, valid_until: SystemTime },
    /// The upstream says no (token revoked, user left the organization): a 401 at `/auth`.
    Refused,
}

/// Why a provider call failed. Messages go to logs only (never tokens or codes in them).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The browser's or the upstream's answer does not prove an allowed identity (bad code,
    /// wrong audience, unverified email, not in the organization): a 4xx page, or a 401.
    #[error("sign-in refused: {0}")]
    Refused(String),
    /// The upstream could not be asked (timeout, 5xx, garbage): the fixed 500.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
}

/// One configured web sign-in provider. Safe to call concurrently; every upstream call is
/// bounded by the section's `http_timeout` and by a body-size cap.
#[async_trait]
pub trait WebProvider: Send + Sync {
    /// `google`, `github`, `oidc` or `gitlab`: the route `/<name>_auth`, logs and metrics.
    fn name(&self) -> &'static str;
    /// What the index page's link says ("Sign in with GitHub").
    fn display_name(&self) -> &str;
    /// Called by the flow before [`WebProvider::authorize_url`]: a provider that must learn
    /// its endpoints first (OIDC discovery) does it here. Default: nothing to do.
    async fn prepare(&self) -> Result<(), ProviderError> {
        Ok(())
    }
    /// Where to send the browser.
    fn authorize_url(&self, request: &AuthorizeRequest) -> Url;
    /// Exchanges the callback's code and verifies the identity.
    async fn complete(&self, callback: &Callback) -> Result<SignedIn, ProviderError>;
    /// Asks the upstream again for an account whose record is past `valid_until`
    /// (refresh token for Google/OIDC, the user API for GitHub/GitLab).
    async fn revalidate(&self, account: &str, record: &TokenRecord) -> Result<Revalidation, ProviderError>;
}

/// docker_auth's token DB value, field for field (`auth_server/authn/tokendb.go`), so that
/// records in docker_auth's Redis keep working. Key: `t:<account>` (see `docs/state.md`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenRecord {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token_type: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub access_token: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub refresh_token: String,
    /// RFC 3339, as Go's `time.Time` marshals it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub valid_until: String,
    /// bcrypt of the generated docker password.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub docker_password: String,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// Our addition: the provider that wrote the record (`github`, `oidc`...), so that with
    /// several providers on one store only that provider checks and revalidates it. Go's
    /// decoder ignores the field; a record without it (written by docker_auth) belongs to
    /// whichever provider comes first in the chain, as when docker_auth shared one Redis.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub provider: String,
}

/// The store key of an account's record.
pub fn record_key(account: &str) -> String {
    format!("t:{account}")
}
