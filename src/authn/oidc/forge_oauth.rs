//! What GitHub and GitLab share: an OAuth2 app (authorization code with PKCE, refresh) whose
//! REST API is asked with the user's access token. Answers are sorted into "the forge says
//! no" ([`ProviderError::Refused`], a 4xx page or a 401 at `/auth`) and "the forge could not
//! be asked" ([`ProviderError::Unavailable`], the fixed 500). Tokens never reach a message.
use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::Full;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use url::Url;

use super::provider::{ProviderError, Revalidation, SignedIn, TokenRecord, UpstreamTokens};
use super::upstream_http::{UpstreamHttp, UpstreamResponse};
use crate::config::ForgeConfig;
use crate::request::Labels;
use crate::secret::Secret;

const USER_AGENT: &str = concat!("registry-auth/", env!("CARGO_PKG_VERSION"));

/// `base` + `path`, for base URLs written without a trailing slash (`…/api/v4`).
pub fn join(base: &Url, path: &str) -> String {
    format!("{}{path}", base.as_str().trim_end_matches('/'))
}

/// The token endpoint's JSON answer (RFC 6749 §5.1 and §5.2; GitHub answers errors with 200).
#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    token_type: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// The grant to redeem at the token endpoint.
pub enum Grant<'a> {
    Code { code: &'a Secret, pkce_verifier: &'a Secret, redirect_uri: Option<&'a Url> },
    Refresh { refresh_token: &'a str },
}

/// Redeems `grant` at `token_url`. A refused grant (bad, replayed or expired code, revoked
/// refresh token) is `Refused`; no answer, a 5xx or garbage is `Unavailable`.
pub async fn redeem(
    http: &UpstreamHttp,
    config: &ForgeConfig,
    token_url: &str,
    grant: Grant<'_>,
) -> Result<UpstreamTokens, ProviderError> {
    let body = token_form(config, grant);
    let request = Request::builder()
        .method(Method::POST)
        .uri(token_url)
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::USER_AGENT, USER_AGENT)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| ProviderError::Unavailable(format!("token endpoint {token_url}: {e}")))?;
    let response = http.send(request).await?;
    token_answer(&response)
}

/// The form body of a token request (the serializer is not `Send`: keep it out of awaits).
fn token_form(config: &ForgeConfig, grant: Grant<'_>) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("client_id", &config.client_id);
    form.append_pair("client_secret", config.client_secret.expose());
    match grant {
        Grant::Code { code, pkce_verifier, redirect_uri } => {
            form.append_pair("grant_type", "authorization_code");
            form.append_pair("code", code.expose());
            form.append_pair("code_verifier", pkce_verifier.expose());
            if let Some(uri) = redirect_uri {
                form.append_pair("redirect_uri", uri.as_str());
            }
        }
        Grant::Refresh { refresh_token } => {
            form.append_pair("grant_type", "refresh_token");
            form.append_pair("refresh_token", refresh_token);
        }
    }
    form.finish()
}

fn token_answer(response: &UpstreamResponse) -> Result<UpstreamTokens, ProviderError> {
    if response.status.is_server_error() {
        return Err(ProviderError::Unavailable(format!("token endpoint answered {}", response.status)));
    }
    let answer: Option<TokenAnswer> = serde_json::from_slice(&response.body).ok();
    match answer {
        Some(a) if a.error.is_none() && response.status.is_success() && !a.access_token.is_empty() => {
            Ok(UpstreamTokens {
                token_type: if a.token_type.is_empty() { "bearer".into() } else { a.token_type },
                access_token: Secret::new(a.access_token),
                refresh_token: a.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
            })
        }
        Some(a) if a.error.is_some() || response.status.is_client_error() => Err(ProviderError::Refused(format!(
            "token endpoint refused the grant ({}, {})",
            response.status,
            printable(a.error.as_deref().unwrap_or("no error code"))
        ))),
        _ if response.status.is_client_error() => {
            Err(ProviderError::Refused(format!("token endpoint refused the grant ({})", response.status)))
        }
        _ => Err(ProviderError::Unavailable(format!(
            "token endpoint answered {} without an access token in JSON",
            response.status
        ))),
    }
}

/// What a user-API call found.
pub enum Api<T> {
    Found(T),
    /// 401: the token is not (or no longer) valid.
    Unauthorized,
    /// Another 4xx, with its status (e.g. 404 "not a member", 403 "restricted").
    Denied(StatusCode),
}

/// GETs `url` with the user's token. 5xx, timeouts and unreadable JSON are `Unavailable`.
pub async fn get_json<T: DeserializeOwned>(
    http: &UpstreamHttp,
    url: &str,
    access_token: &Secret,
    accept: &str,
) -> Result<(Api<T>, UpstreamResponse), ProviderError> {
    let response = get(http, url, access_token, accept).await?;
    let api = match response.status {
        s if s.is_success() => match serde_json::from_slice(&response.body) {
            Ok(value) => Api::Found(value),
            Err(e) => {
                return Err(ProviderError::Unavailable(format!("GET {}: unreadable answer: {e}", strip_query(url))))
            }
        },
        StatusCode::UNAUTHORIZED => Api::Unauthorized,
        s if s.is_client_error() => Api::Denied(s),
        s => return Err(ProviderError::Unavailable(format!("GET {} answered {s}", strip_query(url)))),
    };
    Ok((api, response))
}

/// GETs `url` with the user's token and returns the whole answer, whatever its status.
pub async fn get(
    http: &UpstreamHttp,
    url: &str,
    access_token: &Secret,
    accept: &str,
) -> Result<UpstreamResponse, ProviderError> {
    let request = Request::builder()
        .method(Method::GET)
        .uri(url)
        .header(header::ACCEPT, accept)
        .header(header::AUTHORIZATION, format!("Bearer {}", access_token.expose()))
        .header(header::USER_AGENT, USER_AGENT)
        .body(Full::new(Bytes::new()))
        .map_err(|e| ProviderError::Unavailable(format!("GET {}: {e}", strip_query(url))))?;
    http.send(request).await
}

fn strip_query(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// Upstream error codes go to logs: keep them short and printable.
fn printable(text: &str) -> String {
    text.chars().filter(|c| c.is_ascii_graphic()).take(64).collect()
}

/// The record's tokens, as the provider gets them back from the store.
pub fn stored_tokens(record: &super::provider::TokenRecord) -> UpstreamTokens {
    UpstreamTokens {
        token_type: record.token_type.clone(),
        access_token: Secret::new(record.access_token.clone()),
        refresh_token: Some(record.refresh_token.clone()).filter(|t| !t.is_empty()).map(Secret::new),
    }
}

/// The authorize URL every OAuth2 forge takes: client, state, PKCE S256, scope.
pub fn authorize_url(
    web_uri: &Url,
    path: &str,
    config: &ForgeConfig,
    scope: &str,
    request: &super::provider::AuthorizeRequest,
    redirect_uri: Option<&Url>,
) -> Url {
    let mut url = web_uri.clone();
    url.set_path(&format!("{}{path}", web_uri.path().trim_end_matches('/')));
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", &config.client_id);
        q.append_pair("response_type", "code");
        q.append_pair("scope", scope);
        q.append_pair("state", &request.state);
        q.append_pair("code_challenge", &request.pkce_challenge);
        q.append_pair("code_challenge_method", "S256");
        if let Some(uri) = redirect_uri {
            q.append_pair("redirect_uri", uri.as_str());
        }
    }
    url
}

/// What a forge's user API says of an access token.
pub enum Verdict {
    Allowed { account: String, labels: Labels },
    Refused(String),
}

/// The two calls that differ between GitHub and GitLab; the rest of sign-in and
/// revalidation is shared.
#[async_trait::async_trait]
pub trait Forge: Send + Sync {
    /// `github` or `gitlab`, for logs.
    fn forge_name(&self) -> &'static str;
    fn http(&self) -> &UpstreamHttp;
    fn config(&self) -> &ForgeConfig;
    /// The OAuth token endpoint.
    fn token_url(&self) -> String;
    /// Asks the user API who the token belongs to and whether the forge's rules allow them.
    async fn verify(&self, token: &Secret) -> Result<Verdict, ProviderError>;
}

/// A verified sign-in, to be asked again after `revalidate_after`.
pub fn signed_in(config: &ForgeConfig, account: String, labels: Labels, upstream: UpstreamTokens) -> SignedIn {
    SignedIn { account, labels, upstream, valid_until: std::time::SystemTime::now() + config.revalidate_after }
}

/// At revalidation every "no" is the same answer: the account must sign in again.
fn refused_as_verdict(result: Result<Verdict, ProviderError>) -> Result<Verdict, ProviderError> {
    match result {
        Err(ProviderError::Refused(why)) => Ok(Verdict::Refused(why)),
        other => other,
    }
}

/// Revalidation for both forges: the stored access token, or when the forge refuses it and
/// a refresh token exists (GitHub App tokens expire after 8 hours, GitLab's after 2), a
/// renewed one; the token must still belong to `account`.
pub async fn revalidate(forge: &dyn Forge, account: &str, record: &TokenRecord) -> Result<Revalidation, ProviderError> {
    let mut upstream = stored_tokens(record);
    let mut verdict = refused_as_verdict(forge.verify(&upstream.access_token).await)?;
    if let (Verdict::Refused(_), Some(refresh)) = (&verdict, upstream.refresh_token.clone()) {
        let grant = Grant::Refresh { refresh_token: refresh.expose() };
        match redeem(forge.http(), forge.config(), &forge.token_url(), grant).await {
            Ok(fresh) => {
                upstream = fresh;
                verdict = refused_as_verdict(forge.verify(&upstream.access_token).await)?;
            }
            Err(ProviderError::Refused(_)) => {}
            Err(e) => return Err(e),
        }
    }
    match verdict {
        Verdict::Allowed { account: found, labels } if found == account => {
            let signed = signed_in(forge.config(), found, labels, upstream);
            Ok(Revalidation::Valid {
                labels: signed.labels,
                upstream: signed.upstream,
                valid_until: signed.valid_until,
            })
        }
        Verdict::Allowed { .. } => Ok(Revalidation::Refused),
        Verdict::Refused(why) => {
            tracing::info!(provider = forge.forge_name(), account = %account, reason = %why, "revalidation refused");
            Ok(Revalidation::Refused)
        }
    }
}
