//! OpenID Connect providers: docker_auth's `oidc_auth` (any issuer, found by discovery) and
//! `google_auth` (Google's issuer, or an override; verified email, `domain` as the `hd`
//! rule, `hd` as a label). The authorization code flow with PKCE; the ID token is verified
//! here with jsonwebtoken against the issuer's JWKS (signature with an asymmetric
//! algorithm only, `iss`, `aud`, `azp`, `exp`, `nbf`, `nonce`).
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use subtle::ConstantTimeEq as _;
use tokio::sync::Mutex as AsyncMutex;
use url::Url;

use super::provider::{
    AuthorizeRequest, Callback, ProviderError, Revalidation, SignedIn, TokenRecord, UpstreamTokens, WebProvider,
};
use super::upstream::{Upstream, UpstreamError};
use crate::request::Labels;
use crate::secret::Secret;

/// Google's issuer (`google_auth` without `issuer`).
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// An unknown `kid` refetches the JWKS at most this often (a flood of forged tokens must
/// not turn into a flood of requests to the issuer).
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 60;
/// When the token endpoint does not say how long its access token lives.
const DEFAULT_EXPIRES_IN: u64 = 3600;
/// Asymmetric algorithms only: HS* would make the client secret a signing key, `none`
/// no signature at all.
const ALLOWED_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Google's extra rules.
#[derive(Debug, Clone, Default)]
pub struct GoogleRules {
    /// `domain`: only accounts of this Google Workspace domain (`hd` claim).
    pub domain: Option<String>,
}

/// What a section configures.
#[derive(Debug, Clone)]
pub struct OpenIdSettings {
    /// `google` or `oidc`.
    pub name: &'static str,
    pub display_name: String,
    pub issuer: Url,
    pub client_id: String,
    pub client_secret: Secret,
    pub scopes: Vec<String>,
    /// The claim that names the account (`email` by default).
    pub user_claim: String,
    /// Claims turned into labels (string or array of strings).
    pub labels_claims: Vec<String>,
    pub http_timeout: Duration,
    /// `Some` for `google_auth`.
    pub google: Option<GoogleRules>,
}

#[derive(Debug, Clone)]
struct Endpoints {
    authorization: Url,
    token: Url,
    jwks: Url,
}

#[derive(Default)]
struct Keys {
    set: Option<JwkSet>,
    fetched: Option<Instant>,
}

pub struct OpenIdProvider {
    settings: OpenIdSettings,
    upstream: Upstream,
    /// Discovery, once it succeeded (retried on the next sign-in until then).
    endpoints: Mutex<Option<Endpoints>>,
    discovery_lock: AsyncMutex<()>,
    keys: AsyncMutex<Keys>,
}

impl OpenIdProvider {
    pub fn new(settings: OpenIdSettings) -> Result<OpenIdProvider, String> {
        let upstream = Upstream::new(settings.http_timeout)?;
        Ok(OpenIdProvider {
            settings,
            upstream,
            endpoints: Mutex::new(None),
            discovery_lock: AsyncMutex::new(()),
            keys: AsyncMutex::new(Keys::default()),
        })
    }

    fn issuer_text(&self) -> String {
        self.settings.issuer.as_str().trim_end_matches('/').to_string()
    }

    fn cached_endpoints(&self) -> Option<Endpoints> {
        self.endpoints.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The issuer's endpoints from its discovery document (OpenID Connect Discovery 1.0:
    /// the document's `issuer` must be the configured one, exactly).
    async fn endpoints(&self) -> Result<Endpoints, ProviderError> {
        if let Some(found) = self.cached_endpoints() {
            return Ok(found);
        }
        let _one_at_a_time = self.discovery_lock.lock().await;
        if let Some(found) = self.cached_endpoints() {
            return Ok(found);
        }
        let url = Url::parse(&format!("{}/.well-known/openid-configuration", self.issuer_text()))
            .map_err(|e| ProviderError::Unavailable(format!("bad discovery URL: {e}")))?;
        let document = self.upstream.get_json(&url, None).await.map_err(unavailable)?;
        let stated = document["issuer"].as_str().unwrap_or_default().trim_end_matches('/');
        if stated != self.issuer_text() {
            return Err(ProviderError::Unavailable(format!(
                "discovery at {url} names issuer {stated:?}, not the configured {:?}",
                self.issuer_text()
            )));
        }
        let endpoint = |key: &str| -> Result<Url, ProviderError> {
            let text = document[key].as_str().unwrap_or_default();
            let url = Url::parse(text)
                .map_err(|_| ProviderError::Unavailable(format!("discovery document has no usable {key}")))?;
            if !super::upstream::allowed_url(&url) {
                return Err(ProviderError::Unavailable(format!(
                    "discovery {key} {url} is not https (plain http is allowed for loopback addresses only)"
                )));
            }
            Ok(url)
        };
        let found = Endpoints {
            authorization: endpoint("authorization_endpoint")?,
            token: endpoint("token_endpoint")?,
            jwks: endpoint("jwks_uri")?,
        };
        *self.endpoints.lock().unwrap_or_else(|p| p.into_inner()) = Some(found.clone());
        Ok(found)
    }

    /// The key `kid` of the issuer's JWKS; an unknown `kid` refetches the set (rotation),
    /// at most once per [`JWKS_REFETCH_INTERVAL`].
    async fn key(&self, jwks_url: &Url, kid: Option<&str>) -> Result<jsonwebtoken::jwk::Jwk, ProviderError> {
        let mut keys = self.keys.lock().await;
        let find = |set: &JwkSet| match kid {
            Some(kid) => set.find(kid).cloned(),
            // Without a kid, only an unambiguous set will do.
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        if let Some(key) = keys.set.as_ref().and_then(find) {
            return Ok(key);
        }
        let may_fetch = keys.fetched.is_none_or(|at| at.elapsed() >= JWKS_REFETCH_INTERVAL);
        if may_fetch {
            let value = self.upstream.get_json(jwks_url, None).await.map_err(unavailable)?;
            let set: JwkSet = serde_json::from_value(value)
                .map_err(|e| ProviderError::Unavailable(format!("{jwks_url} is not a JWK set: {e}")))?;
            keys.set = Some(set);
            keys.fetched = Some(Instant::now());
        }
        keys.set
            .as_ref()
            .and_then(find)
            .ok_or_else(|| ProviderError::Refused(format!("ID token signed with unknown key {kid:?}")))
    }

    /// Verifies an ID token; `nonce` is checked when given (sign-in, not refresh).
    async fn verify_id_token(&self, token: &str, nonce: Option<&str>) -> Result<Value, ProviderError> {
        let endpoints = self.endpoints().await?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| ProviderError::Refused(format!("ID token is not a signed JWT: {e}")))?;
        if !ALLOWED_ALGORITHMS.contains(&header.alg) {
            return Err(ProviderError::Refused(format!("ID token algorithm {:?} is not allowed", header.alg)));
        }
        let jwk = self.key(&endpoints.jwks, header.kid.as_deref()).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| ProviderError::Refused(format!("unusable JWK: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[self.issuer_text(), format!("{}/", self.issuer_text())]);
        validation.set_audience(&[&self.settings.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| ProviderError::Refused(format!("ID token rejected: {e}")))?;
        let claims = data.claims;
        // OIDC Core 3.1.3.7: with several audiences, azp must be us.
        if let Some(azp) = claims.get("azp").and_then(Value::as_str) {
            if azp != self.settings.client_id {
                return Err(ProviderError::Refused(format!("ID token azp {azp:?} is not our client_id")));
            }
        }
        if let Some(expected) = nonce {
            let got = claims.get("nonce").and_then(Value::as_str).unwrap_or_default();
            if !bool::from(got.as_bytes().ct_eq(expected.as_bytes())) {
                return Err(ProviderError::Refused("ID token nonce does not match this sign-in".to_string()));
            }
        }
        Ok(claims)
    }

    /// The account and labels the verified claims allow, or why not.
    fn identity(&self, claims: &Value) -> Result<(String, Labels), ProviderError> {
        let settings = &self.settings;
        let account = claims.get(&settings.user_claim).and_then(Value::as_str).unwrap_or_default();
        if account.is_empty() {
            return Err(ProviderError::Refused(format!("ID token has no {:?} claim", settings.user_claim)));
        }
        let uses_email = settings.user_claim == "email" || settings.google.is_some();
        if uses_email && claims.get("email_verified") != Some(&Value::Bool(true)) {
            return Err(ProviderError::Refused("the email address is not verified".to_string()));
        }
        let mut labels = Labels::new();
        for claim in &settings.labels_claims {
            let values: Vec<String> = match claims.get(claim) {
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
                _ => Vec::new(),
            };
            if !values.is_empty() {
                labels.insert(claim.clone(), values);
            }
        }
        if let Some(google) = &settings.google {
            let hd = claims.get("hd").and_then(Value::as_str).unwrap_or_default();
            if let Some(domain) = &google.domain {
                let email_domain = account.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
                if !hd.eq_ignore_ascii_case(domain) || !email_domain.eq_ignore_ascii_case(domain) {
                    return Err(ProviderError::Refused(format!("account is not in the domain {domain:?} (hd {hd:?})")));
                }
            }
            if !hd.is_empty() {
                labels.insert("hd".to_string(), vec![hd.to_string()]);
            }
        }
        Ok((account.to_string(), labels))
    }

    async fn token_request(&self, form: &[(&str, &str)]) -> Result<Value, ProviderError> {
        let endpoints = self.endpoints().await?;
        let client = (self.settings.client_id.as_str(), self.settings.client_secret.expose());
        self.upstream.post_form(&endpoints.token, Some(client), form).await.map_err(|e| match e {
            UpstreamError::Status { url, status, body } => {
                ProviderError::Refused(format!("token endpoint {url} answered {status}: {body}"))
            }
            UpstreamError::Unavailable(why) => ProviderError::Unavailable(why),
        })
    }
}

fn unavailable(e: UpstreamError) -> ProviderError {
    ProviderError::Unavailable(e.to_string())
}

/// The tokens of a token-endpoint answer and until when they are good.
fn upstream_tokens(answer: &Value) -> Result<(UpstreamTokens, SystemTime), ProviderError> {
    let access = answer["access_token"].as_str().unwrap_or_default();
    if access.is_empty() {
        return Err(ProviderError::Unavailable("token endpoint answered without access_token".to_string()));
    }
    let expires_in = answer["expires_in"].as_u64().unwrap_or(DEFAULT_EXPIRES_IN);
    let tokens = UpstreamTokens {
        token_type: answer["token_type"].as_str().unwrap_or("Bearer").to_string(),
        access_token: Secret::new(access),
        refresh_token: answer["refresh_token"].as_str().filter(|s| !s.is_empty()).map(Secret::new),
    };
    Ok((tokens, SystemTime::now() + Duration::from_secs(expires_in)))
}

#[async_trait]
impl WebProvider for OpenIdProvider {
    fn name(&self) -> &'static str {
        self.settings.name
    }

    fn display_name(&self) -> &str {
        &self.settings.display_name
    }

    async fn prepare(&self) -> Result<(), ProviderError> {
        self.endpoints().await.map(drop)
    }

    fn authorize_url(&self, request: &AuthorizeRequest) -> Url {
        let Some(endpoints) = self.cached_endpoints() else {
            // The flow calls prepare() first; without discovery there is nowhere to go.
            return self.settings.issuer.clone();
        };
        let mut url = endpoints.authorization;
        let scopes = self.settings.scopes.join(" ");
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.settings.client_id)
                .append_pair("redirect_uri", request.redirect_uri.as_str())
                .append_pair("scope", &scopes)
                .append_pair("state", &request.state)
                .append_pair("nonce", &request.nonce)
                .append_pair("code_challenge", &request.pkce_challenge)
                .append_pair("code_challenge_method", "S256");
            if self.settings.google.is_some() {
                // Google returns a refresh token only for offline access.
                query.append_pair("access_type", "offline");
                if self.settings.issuer.as_str().trim_end_matches('/') == GOOGLE_ISSUER {
                    // ...and, on a repeated sign-in, only after consent.
                    query.append_pair("prompt", "consent");
                }
                if let Some(domain) = self.settings.google.as_ref().and_then(|g| g.domain.as_deref()) {
                    query.append_pair("hd", domain);
                }
            }
        }
        url
    }

    async fn complete(&self, callback: &Callback) -> Result<SignedIn, ProviderError> {
        let answer = self
            .token_request(&[
                ("grant_type", "authorization_code"),
                ("code", callback.code.expose()),
                ("redirect_uri", callback.redirect_uri.as_str()),
                ("code_verifier", callback.pkce_verifier.expose()),
            ])
            .await?;
        let id_token = answer["id_token"].as_str().unwrap_or_default();
        if id_token.is_empty() {
            return Err(ProviderError::Refused("token endpoint answered without id_token".to_string()));
        }
        let claims = self.verify_id_token(id_token, Some(&callback.nonce)).await?;
        let (account, labels) = self.identity(&claims)?;
        let (upstream, valid_until) = upstream_tokens(&answer)?;
        Ok(SignedIn { account, labels, upstream, valid_until })
    }

    async fn revalidate(&self, account: &str, record: &TokenRecord) -> Result<Revalidation, ProviderError> {
        if record.refresh_token.is_empty() {
            // docker_auth: without a refresh token the user must sign in again.
            return Ok(Revalidation::Refused);
        }
        let answer = match self
            .token_request(&[("grant_type", "refresh_token"), ("refresh_token", &record.refresh_token)])
            .await
        {
            Ok(answer) => answer,
            Err(ProviderError::Refused(_)) => return Ok(Revalidation::Refused),
            Err(e) => return Err(e),
        };
        let labels = match answer["id_token"].as_str().filter(|t| !t.is_empty()) {
            Some(id_token) => {
                let claims = match self.verify_id_token(id_token, None).await {
                    Ok(claims) => claims,
                    Err(ProviderError::Refused(_)) => return Ok(Revalidation::Refused),
                    Err(e) => return Err(e),
                };
                match self.identity(&claims) {
                    Ok((renewed, labels)) if renewed == account => labels,
                    _ => return Ok(Revalidation::Refused),
                }
            }
            None => record.labels.clone(),
        };
        let (upstream, valid_until) = upstream_tokens(&answer)?;
        Ok(Revalidation::Valid { labels, upstream, valid_until })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(google: Option<GoogleRules>, labels_claims: &[&str]) -> OpenIdProvider {
        OpenIdProvider::new(OpenIdSettings {
            name: if google.is_some() { "google" } else { "oidc" },
            display_name: "X".into(),
            issuer: Url::parse("http://127.0.0.1:1").unwrap(),
            client_id: "c".into(),
            client_secret: Secret::new("s"),
            scopes: vec!["openid".into()],
            user_claim: "email".into(),
            labels_claims: labels_claims.iter().map(|s| s.to_string()).collect(),
            http_timeout: Duration::from_secs(1),
            google,
        })
        .unwrap()
    }

    #[test]
    fn labels_from_string_and_string_array_claims() {
        let p = provider(None, &["groups", "team", "missing", "number"]);
        let c =
            serde_json::json!({"email":"a@x.io","email_verified":true,"groups":["dev","ops"],"team":"blue","number":5});
        let (account, labels) = p.identity(&c).unwrap();
        assert_eq!(account, "a@x.io");
        assert_eq!(labels["groups"], ["dev", "ops"]);
        assert_eq!(labels["team"], ["blue"]);
        assert!(!labels.contains_key("missing") && !labels.contains_key("number"));
    }

    #[test]
    fn unverified_email_and_foreign_domain_are_refused() {
        let p = provider(None, &[]);
        let c = serde_json::json!({"email":"a@x.io","email_verified":false});
        assert!(matches!(p.identity(&c), Err(ProviderError::Refused(_))));
        let g = provider(Some(GoogleRules { domain: Some("acme.com".into()) }), &[]);
        let other = serde_json::json!({"email":"a@evil.com","email_verified":true,"hd":"evil.com"});
        assert!(matches!(g.identity(&other), Err(ProviderError::Refused(_))));
        let spoofed = serde_json::json!({"email":"a@evil.com","email_verified":true,"hd":"acme.com"});
        assert!(matches!(g.identity(&spoofed), Err(ProviderError::Refused(_))));
        let ok = serde_json::json!({"email":"a@acme.com","email_verified":true,"hd":"acme.com"});
        assert_eq!(g.identity(&ok).unwrap().1["hd"], ["acme.com"]);
    }
}
