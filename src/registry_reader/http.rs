//! One bounded GET against the registry (or, after a redirect, its storage): a whole-answer
//! timeout, a body cap chosen by the caller, a bound on calls in flight, no redirects followed
//! here (`redirect` decides), and errors sorted into what an operator can act on (down, TLS,
//! refused, not found, nonsense).
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Limited};
use tokio::sync::Semaphore;

use super::ReadError;
use crate::upstream_client::{error_chain, https_or_http_client, HttpsClient};

/// A whole answer, body read.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn header(&self, name: http::header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub struct RegistryHttp {
    client: HttpsClient<Empty<Bytes>>,
    /// For redirect targets on other origins (S3, a CDN): the system's roots and the registry's CA.
    storage_client: HttpsClient<Empty<Bytes>>,
    timeout: Duration,
    in_flight: Arc<Semaphore>,
}

impl RegistryHttp {
    pub fn new(
        roots: rustls::RootCertStore,
        storage_roots: rustls::RootCertStore,
        timeout: Duration,
        max_in_flight: usize,
    ) -> Result<RegistryHttp, String> {
        let client = https_or_http_client(roots, timeout)?;
        let storage_client = https_or_http_client(storage_roots, timeout)?;
        let in_flight = Arc::new(Semaphore::new(max_in_flight.max(1)));
        Ok(RegistryHttp { client, storage_client, timeout, in_flight })
    }

    /// `GET url` on the registry's storage: never with a token.
    pub async fn get_storage(&self, url: &str, accept: &str, max_body: usize) -> Result<Answer, ReadError> {
        self.send(&self.storage_client, url, accept, None, max_body).await
    }

    /// `GET url` with `accept` and an optional bearer token; the body is refused past
    /// `max_body` bytes. Any status comes back as an [`Answer`]; only transport failures
    /// are errors.
    pub async fn get(
        &self,
        url: &str,
        accept: &str,
        bearer: Option<&str>,
        max_body: usize,
    ) -> Result<Answer, ReadError> {
        self.send(&self.client, url, accept, bearer, max_body).await
    }

    async fn send(
        &self,
        client: &HttpsClient<Empty<Bytes>>,
        url: &str,
        accept: &str,
        bearer: Option<&str>,
        max_body: usize,
    ) -> Result<Answer, ReadError> {
        let mut request = Request::get(url)
            .header(http::header::ACCEPT, accept)
            .header(http::header::USER_AGENT, concat!("registry-auth-console/", env!("CARGO_PKG_VERSION")));
        if let Some(token) = bearer {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request.body(Empty::new()).map_err(|e| ReadError::BadAnswer(format!("{url}: {e}")))?;
        let path = request.uri().path().to_string();
        let whole = async {
            let _permit = self.in_flight.acquire().await.map_err(|_| ReadError::Unreachable("shutting down".into()))?;
            let response = client.request(request).await.map_err(|e| transport_error(&e))?;
            let (parts, body) = response.into_parts();
            let declared = parts.headers.get(http::header::CONTENT_LENGTH);
            let declared = declared.and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
            if declared.is_some_and(|n| n > max_body) {
                return Err(ReadError::TooLarge(max_body));
            }
            let body = Limited::new(body, max_body).collect().await.map_err(|e| {
                if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    ReadError::TooLarge(max_body)
                } else {
                    ReadError::Unreachable(e.to_string())
                }
            })?;
            Ok(Answer { status: parts.status, headers: parts.headers, body: body.to_bytes() })
        };
        match tokio::time::timeout(self.timeout, whole).await {
            Ok(result) => result.map_err(|e| e.at(&path)),
            Err(_) => Err(ReadError::Timeout(self.timeout).at(&path)),
        }
    }
}

/// hyper says "client error (Connect)"; the chain below says whether TLS failed.
fn transport_error(error: &hyper_util::client::legacy::Error) -> ReadError {
    let text = error_chain(error);
    let lower = text.to_ascii_lowercase();
    if ["certificate", "tls", "handshake", "unknownissuer", "invalid peer"].iter().any(|w| lower.contains(w)) {
        ReadError::Tls(text)
    } else {
        ReadError::Unreachable(text)
    }
}
