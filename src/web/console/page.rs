//! How every console page is sent, and the [`Layout`] every template gets (as its
//! `layout` field; `console/base.html` reads it). Headers: no caching (pages show
//! credentials), no framing, no sniffing, no referrer, and a CSP that allows only our own
//! stylesheet: no script at all, no inline style.
use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;

use super::{ConsoleSession, Site};

pub const CSP: &str =
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The signed-in person as the layout shows them.
#[derive(Debug, Clone)]
pub struct User {
    pub account: String,
    pub operator: bool,
    /// For the sign-out form in the header.
    pub csrf: String,
}

/// What `console/base.html` needs: title, links, who is signed in, which page is current
/// (`home`, `access`, `repositories`, `credentials`, `operators`, or `""`).
#[derive(Debug, Clone)]
pub struct Layout {
    pub issuer: String,
    /// `{path_prefix}/console`.
    pub prefix: String,
    pub current: &'static str,
    pub user: Option<User>,
}

impl Layout {
    /// The layout of a page for a signed-in session.
    pub fn new(session: &ConsoleSession, current: &'static str) -> Layout {
        let user = User { account: session.account.clone(), operator: session.operator, csrf: session.csrf.clone() };
        Layout { user: Some(user), ..Layout::anonymous(&session.site, current) }
    }

    /// The layout of a page nobody is signed in to (sign-in, errors).
    pub fn anonymous(site: &Arc<Site>, current: &'static str) -> Layout {
        Layout { issuer: site.issuer.clone(), prefix: site.prefix.clone(), current, user: None }
    }
}

/// The security headers every console answer carries.
pub fn secure_headers(response: &mut HttpResponse) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("no-referrer"));
    headers.insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(CSP));
}

/// A rendered page (or the fixed 500 when a template cannot render).
pub fn html(status: StatusCode, body: Result<String, askama::Error>) -> HttpResponse {
    let mut response = match body {
        Ok(body) => HttpResponse::build(status).content_type("text/html; charset=utf-8").body(body),
        Err(e) => {
            tracing::error!(error = %e, "console: cannot render a page");
            crate::http::error::text(StatusCode::INTERNAL_SERVER_ERROR, "Internal error\n".to_string())
        }
    };
    secure_headers(&mut response);
    response
}

/// 303 to `location` (after a form: the browser then GETs it).
pub fn see_other(location: &str) -> HttpResponse {
    let mut response = HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish();
    secure_headers(&mut response);
    response
}
