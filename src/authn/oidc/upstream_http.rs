//! The HTTP client a web sign-in provider asks its upstream with: rustls with the system's
//! roots (honouring `SSL_CERT_FILE`), HTTP/1.1, no redirects followed, one limit on each whole
//! call (connect, headers and body: `http_timeout`), a cap on the body, and a bound on calls
//! in flight so a slow upstream queues at most that many logins and refuses the rest quickly.
//! Plain http is accepted only because the config allows it for loopback addresses alone.
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use tokio::sync::Semaphore;

use super::provider::ProviderError;
use crate::upstream_client::{error_chain, https_or_http_client, system_roots, HttpsClient};

/// Largest upstream body read (JSON answers of a few kilobytes; a page of 100 teams is ~300 KiB).
pub const MAX_BODY: usize = 1024 * 1024;
/// Upstream calls in flight per provider; beyond that a login waits at most `http_timeout`.
const MAX_IN_FLIGHT: usize = 64;

pub struct UpstreamHttp {
    client: HttpsClient<Full<Bytes>>,
    timeout: Duration,
    in_flight: Arc<Semaphore>,
}

/// A whole answer, body read.
#[derive(Debug)]
pub struct UpstreamResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl UpstreamHttp {
    pub fn new(timeout: Duration) -> Result<UpstreamHttp, String> {
        let client = https_or_http_client(system_roots(), timeout)?;
        Ok(UpstreamHttp { client, timeout, in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)) })
    }

    /// Sends `request` and reads the whole answer within the timeout. Errors name the method
    /// and the URL without its query (tokens never travel in queries here, but codes might).
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<UpstreamResponse, ProviderError> {
        let target = describe(&request);
        let whole = async {
            let _permit = self.in_flight.acquire().await.map_err(|_| "shutting down".to_string())?;
            let response = self.client.request(request).await.map_err(|e| error_chain(&e))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_BODY)
                .collect()
                .await
                .map_err(|e| {
                    if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                        format!("answer larger than {MAX_BODY} bytes")
                    } else {
                        e.to_string()
                    }
                })?
                .to_bytes();
            Ok::<_, String>(UpstreamResponse { status: parts.status, headers: parts.headers, body })
        };
        match tokio::time::timeout(self.timeout, whole).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(cause)) => Err(ProviderError::Unavailable(format!("{target}: {cause}"))),
            Err(_) => {
                Err(ProviderError::Unavailable(format!("{target}: no complete answer within {:?}", self.timeout)))
            }
        }
    }
}

fn describe<B>(request: &Request<B>) -> String {
    let uri = request.uri();
    let host = uri.authority().map(|a| a.as_str()).unwrap_or("");
    format!("{} {}://{host}{}", request.method(), uri.scheme_str().unwrap_or("http"), uri.path())
}
