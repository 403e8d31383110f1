//! The HTTP client web sign-in providers talk to their upstream with (discovery, JWKS,
//! token endpoint, user APIs): hyper + rustls (the system's roots), HTTP/1.1, one limit on
//! each whole request (body included) and a cap on the body, so a slow, hanging or
//! flooding upstream is an error, never a stuck or swollen login. Plain `http://` is only
//! for loopback addresses (development and tests), checked on every request.
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use url::Url;

use crate::upstream_client::{error_chain, https_or_http_client, system_roots, HttpsClient};

/// Largest upstream answer read (a discovery document or JWKS is a few KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// Upstream calls in flight per provider; more wait (within the timeout), so a slow
/// provider holds a bounded number of logins and connections.
pub const MAX_IN_FLIGHT: usize = 32;

/// Why an upstream call failed; never carries tokens, codes or secrets.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// Not reachable, timed out, too large, not JSON: the upstream is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// The upstream answered with a 4xx and this body (OAuth2 `invalid_grant`...).
    #[error("{url} answered {status}: {body}")]
    Status { url: String, status: u16, body: String },
}

/// Whether `url` may be used: https, or http to a loopback address.
pub fn allowed_url(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => is_loopback_host(url),
        _ => false,
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[derive(Clone)]
pub struct Upstream {
    client: HttpsClient<Full<Bytes>>,
    timeout: Duration,
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl Upstream {
    pub fn new(timeout: Duration) -> Result<Upstream, String> {
        let client = https_or_http_client(system_roots(), timeout)?;
        Ok(Upstream { client, timeout, in_flight: Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT)) })
    }

    /// `GET url` → JSON.
    pub async fn get_json(&self, url: &Url, bearer: Option<&str>) -> Result<serde_json::Value, UpstreamError> {
        let mut request = http::Request::get(url.as_str()).header(http::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(Full::new(Bytes::new())).map_err(|e| UpstreamError::Unavailable(e.to_string()))?;
        self.json(url, request).await
    }

    /// `POST url` with a form body (and HTTP Basic client authentication) → JSON.
    pub async fn post_form(
        &self,
        url: &Url,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> Result<serde_json::Value, UpstreamError> {
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let mut request = http::Request::post(url.as_str())
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((user, password)) = basic {
            use base64::Engine as _;
            // RFC 6749 §2.3.1: both parts form-encoded before Basic.
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(user), enc(password));
            let value = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair));
            request = request.header(http::header::AUTHORIZATION, value);
        }
        let request =
            request.body(Full::new(Bytes::from(body))).map_err(|e| UpstreamError::Unavailable(e.to_string()))?;
        self.json(url, request).await
    }

    async fn json(&self, url: &Url, request: http::Request<Full<Bytes>>) -> Result<serde_json::Value, UpstreamError> {
        let target = redact(url);
        if !allowed_url(url) {
            return Err(UpstreamError::Unavailable(format!(
                "{target}: only https (or http to a loopback address) is allowed"
            )));
        }
        let call = async {
            let _permit = self.in_flight.acquire().await.map_err(|e| e.to_string())?;
            let response = self.client.request(request).await.map_err(|e| error_chain(&e))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|e| format!("body unreadable or over {MAX_BODY_BYTES} bytes: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        let (status, body) = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(cause)) => return Err(UpstreamError::Unavailable(format!("{target}: {cause}"))),
            Err(_) => {
                return Err(UpstreamError::Unavailable(format!(
                    "{target}: no complete answer within {:?}",
                    self.timeout
                )))
            }
        };
        if status.is_client_error() {
            // OAuth2 errors are short JSON; keep only their `error` fields (never echo tokens).
            let summary = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").map(|e| e.to_string()))
                .unwrap_or_else(|| "(no OAuth2 error)".to_string());
            return Err(UpstreamError::Status { url: target, status: status.as_u16(), body: summary });
        }
        if !status.is_success() {
            return Err(UpstreamError::Unavailable(format!("{target} answered {status}")));
        }
        serde_json::from_slice(&body).map_err(|e| UpstreamError::Unavailable(format!("{target}: not JSON: {e}")))
    }
}

/// The URL for logs: without query (codes never travel there, but be sure) or userinfo.
fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_or_loopback_http_only() {
        for ok in ["https://accounts.google.com", "http://127.0.0.1:8080/x", "http://[::1]:1/", "http://localhost:9/"] {
            assert!(allowed_url(&Url::parse(ok).unwrap()), "{ok}");
        }
        for bad in ["http://example.com", "http://10.0.0.1/", "ftp://127.0.0.1/", "http://127.0.0.1.nip.io/"] {
            assert!(!allowed_url(&Url::parse(bad).unwrap()), "{bad}");
        }
    }
}
