//! Fetches an issuer's keys: OIDC discovery (`/.well-known/openid-configuration`), then
//! its `jwks_uri`. Every request is bounded (connect and whole-answer timeout, body-size
//! cap, no redirects), so a slow or hostile endpoint costs one bounded wait, never a hang.
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use serde::Deserialize;
use url::Url;

use super::keys::KeySet;
use crate::config::ci_token::is_loopback;
use crate::upstream_client::{error_chain, https_or_http_client, system_roots, HttpsClient};

/// Discovery documents and JWKS are a few kilobytes; anything past this is refused.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

pub struct Fetcher {
    client: HttpsClient<Empty<Bytes>>,
    issuer: String,
    timeout: Duration,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

impl Fetcher {
    /// `ca_pem`: the roots for the issuer's HTTPS; `None` = the system roots.
    pub fn new(issuer: &str, ca_pem: Option<&[u8]>, timeout: Duration) -> Result<Fetcher, String> {
        let client = https_or_http_client(roots(ca_pem)?, timeout)?;
        Ok(Fetcher { client, issuer: issuer.to_string(), timeout })
    }

    /// The issuer's current keys. The error says what went wrong, for the log.
    pub async fn keys(&self) -> Result<KeySet, String> {
        let discovery_url = format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
        let body = self.get(&discovery_url).await?;
        let discovery: Discovery =
            serde_json::from_slice(&body).map_err(|e| format!("{discovery_url}: not a discovery document: {e}"))?;
        // OIDC Discovery §4.3: the document must name the very issuer it was fetched for.
        if discovery.issuer != self.issuer {
            return Err(format!("{discovery_url}: names issuer {:?}, not {:?}", discovery.issuer, self.issuer));
        }
        let jwks_uri = Url::parse(&discovery.jwks_uri).map_err(|e| format!("{discovery_url}: bad jwks_uri: {e}"))?;
        if jwks_uri.scheme() != "https" && !(jwks_uri.scheme() == "http" && is_loopback(&jwks_uri)) {
            return Err(format!("{discovery_url}: jwks_uri {jwks_uri} is not https"));
        }
        let body = self.get(jwks_uri.as_str()).await?;
        KeySet::parse(&body).map_err(|e| format!("{jwks_uri}: {e}"))
    }

    async fn get(&self, url: &str) -> Result<Bytes, String> {
        let request = http::Request::get(url)
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, concat!("registry-auth/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|e| format!("{url}: {e}"))?;
        let whole = async {
            let response = self.client.request(request).await.map_err(|e| error_chain(&e))?;
            if response.status() != http::StatusCode::OK {
                return Err(format!("answered {}", response.status()));
            }
            let declared = response.headers().get(http::header::CONTENT_LENGTH);
            let declared = declared.and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
            if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
                return Err(format!("body larger than {MAX_BODY_BYTES} bytes"));
            }
            let body = Limited::new(response.into_body(), MAX_BODY_BYTES).collect().await;
            body.map(|b| b.to_bytes()).map_err(|e| format!("body refused: {e} (limit {MAX_BODY_BYTES} bytes)"))
        };
        match tokio::time::timeout(self.timeout, whole).await {
            Ok(result) => result.map_err(|e| format!("{url}: {e}")),
            Err(_) => Err(format!("{url}: no complete answer within {:?}", self.timeout)),
        }
    }
}

fn roots(ca_pem: Option<&[u8]>) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in rustls_pemfile::certs(&mut &pem[..]) {
                roots.add(cert.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
            }
        }
        None => roots = system_roots(),
    }
    Ok(roots)
}
