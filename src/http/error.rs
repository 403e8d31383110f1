//! The single place where failures become HTTP responses. Bodies are fixed texts in
//! docker_auth's shapes; internal causes are logged by the service, never sent.
use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;

use crate::service::AuthError;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// 400 `Bad request: <reason>` (the reason is about the client's own input).
    #[error("Bad request: {0}")]
    BadRequest(String),
    /// OAuth2 `grant_type=refresh_token` without a store to keep identity tokens in.
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    /// OAuth2 `invalid_request`: the OAuth2 fields contradict each other or are missing.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl HttpError {
    /// The response; `realm` is the token issuer, used in the Basic challenge.
    pub fn to_response(&self, realm: &str) -> HttpResponse {
        match self {
            HttpError::BadRequest(reason) => text(StatusCode::BAD_REQUEST, format!("Bad request: {reason}\n")),
            HttpError::UnsupportedGrantType => oauth_error(
                "unsupported_grant_type",
                "refresh tokens need a store (see the store: section); only the password grant is supported",
            ),
            HttpError::InvalidRequest(why) => oauth_error("invalid_request", why),
            HttpError::Auth(AuthError::InvalidGrant(why)) => oauth_error("invalid_grant", why),
            HttpError::Auth(AuthError::Issue(_)) => {
                text(StatusCode::INTERNAL_SERVER_ERROR, "Failed to generate token\n".to_string())
            }
            HttpError::Auth(AuthError::Unauthorized) => {
                let mut response = text(StatusCode::UNAUTHORIZED, "Auth failed.\n".to_string());
                let challenge = format!("Basic realm=\"{}\"", realm.replace(['"', '\\'], ""));
                if let Ok(value) = header::HeaderValue::from_str(&challenge) {
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
                }
                response
            }
            HttpError::Auth(AuthError::Authn(e)) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Authentication failed (authn #{} returned error)\n", e.index + 1),
            ),
            HttpError::Auth(AuthError::Authz(e)) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Authorization failed (authz #{} returned error)\n", e.index + 1),
            ),
            HttpError::Auth(AuthError::Overloaded) => {
                let mut response =
                    text(StatusCode::SERVICE_UNAVAILABLE, "Too many logins waiting, retry shortly\n".to_string());
                response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                response
            }
            HttpError::Auth(AuthError::Signing(_)) => {
                text(StatusCode::INTERNAL_SERVER_ERROR, "Failed to generate token\n".to_string())
            }
            // The cause (which store, why) is logged by the caller; the body is fixed.
            HttpError::Auth(AuthError::Store(_)) => {
                text(StatusCode::INTERNAL_SERVER_ERROR, "Authentication failed (store unavailable)\n".to_string())
            }
            HttpError::Auth(AuthError::TooManyAttempts { retry_after }) => {
                // Rounded up: a client retrying at Retry-After must not find the lock still on.
                let seconds = retry_after.as_millis().div_ceil(1000).max(1) as u64;
                let mut response =
                    text(StatusCode::TOO_MANY_REQUESTS, format!("Too many failed logins, retry in {seconds}s\n"));
                response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
                response
            }
        }
    }
}

/// An RFC 6749 §5.2 error: 400 and a JSON body. The texts are fixed strings of ours.
fn oauth_error(error: &str, description: &str) -> HttpResponse {
    let body = serde_json::json!({"error": error, "error_description": description});
    HttpResponse::BadRequest().content_type("application/json").body(body.to_string())
}

/// Go's `http.Error`: plain text, utf-8, nosniff.
pub fn text(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body)
}
