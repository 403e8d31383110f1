//! Reading a request body within bounds: at most [`MAX_BODY_BYTES`] each (a declared
//! larger length is refused before reading), within [`BODY_TIMEOUT`], and at most
//! [`BODY_BUDGET_BYTES`] buffered over all connections at once, so that many slow large
//! bodies cannot pin memory (issue 17: 15,000 of them took 2 GB).
use std::sync::LazyLock;
use std::time::Duration;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt as _;
use tokio::sync::Semaphore;

use super::error::text;

/// Largest accepted request body: a token form is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A client that has not sent its body within this time is dropped (slow-client guard).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of request bodies being read at once, over all connections: 256 bodies of the
/// largest size, or tens of thousands of ordinary token forms. Beyond, 503.
pub const BODY_BUDGET_BYTES: usize = 16 * 1024 * 1024;

static BUDGET: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(BODY_BUDGET_BYTES));

/// Why a body could not be read; each maps to a 4xx or 503.
pub enum BodyError {
    Unreadable,
    TooLarge,
    Timeout,
    Busy,
}

impl BodyError {
    /// The response; the connection is closed, since the rest of the body is not wanted.
    pub fn response(&self) -> HttpResponse {
        let mut response = match self {
            BodyError::Unreadable => text(StatusCode::BAD_REQUEST, "Bad request: unreadable body\n".to_string()),
            BodyError::TooLarge => text(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large\n".to_string()),
            BodyError::Timeout => text(StatusCode::REQUEST_TIMEOUT, "Request body not received in time\n".to_string()),
            BodyError::Busy => {
                let mut busy = text(StatusCode::SERVICE_UNAVAILABLE, "Server busy, retry shortly\n".to_string());
                busy.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                busy
            }
        };
        response.head_mut().set_connection_type(actix_web::http::ConnectionType::Close);
        response
    }
}

/// How many bytes the body may take: its declared length, the cap when it is chunked, 0
/// when there is none. `Err` when the declared length is over the cap.
fn expected_len(req: &HttpRequest) -> Result<usize, BodyError> {
    let headers = req.headers();
    if let Some(length) = headers.get(header::CONTENT_LENGTH) {
        // actix has already refused unparsable lengths; be safe anyway.
        let length: u64 = length.to_str().ok().and_then(|l| l.trim().parse().ok()).ok_or(BodyError::Unreadable)?;
        return if length > MAX_BODY_BYTES as u64 { Err(BodyError::TooLarge) } else { Ok(length as usize) };
    }
    Ok(if headers.contains_key(header::TRANSFER_ENCODING) { MAX_BODY_BYTES } else { 0 })
}

/// Reads the body up to [`MAX_BODY_BYTES`] within [`BODY_TIMEOUT`], holding its share of
/// the budget while it does.
pub async fn read(req: &HttpRequest, mut payload: web::Payload) -> Result<Vec<u8>, BodyError> {
    let expected = expected_len(req)?;
    let _reserved = match expected {
        0 => None,
        n => Some(BUDGET.try_acquire_many(n as u32).map_err(|_| BodyError::Busy)?),
    };
    let read = async {
        let mut body = Vec::with_capacity(expected);
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
            // Never more than reserved: the declared length, or the cap when chunked.
            if body.len() + chunk.len() > expected {
                return Err(BodyError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    tokio::time::timeout(BODY_TIMEOUT, read).await.unwrap_or(Err(BodyError::Timeout))
}
