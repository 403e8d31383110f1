//! How every page is sent: HTML with headers that keep it out of caches, frames and
//! referrers (the result page holds a password; the callback URL a code).
use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;

/// Scripts are never needed; styles are inline in the base layout; forms post to us only.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn html(status: StatusCode, body: Result<String, askama::Error>) -> HttpResponse {
    match body {
        Ok(body) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
            .insert_header((header::X_FRAME_OPTIONS, "DENY"))
            .insert_header((header::REFERRER_POLICY, "no-referrer"))
            .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
            .body(body),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a page");
            crate::http::error::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal error\n".to_string())
        }
    }
}
