//! The cookie that binds one sign-in attempt to the browser that started it (login-CSRF
//! protection: a callback opened in another browser has no such cookie). HttpOnly,
//! SameSite=Lax (the provider's redirect back is a top-level GET, which Lax lets through),
//! Secure on TLS, scoped to the provider's path, gone after [`FLOW_TTL`].
use std::time::Duration;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::HttpRequest;

/// How long a sign-in may take between our redirect and the provider's callback.
pub const FLOW_TTL: Duration = Duration::from_secs(600);

pub fn flow_cookie_name(provider: &str) -> String {
    format!("registry_auth_{provider}_signin")
}

/// The cookie carrying `value` for the flow of `provider`, limited to `path`.
pub fn flow_cookie(provider: &str, value: &str, path: &str, secure: bool) -> Cookie<'static> {
    Cookie::build(flow_cookie_name(provider), value.to_string())
        .path(path.to_string())
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(actix_web::cookie::time::Duration::seconds(FLOW_TTL.as_secs() as i64))
        .finish()
}

/// The same cookie, expired: sent with the callback's answer so it is used once.
pub fn cleared_flow_cookie(provider: &str, path: &str, secure: bool) -> Cookie<'static> {
    let mut cookie = flow_cookie(provider, "", path, secure);
    cookie.make_removal();
    cookie
}

/// The flow cookie the browser sent, if any.
pub fn read_flow_cookie(req: &HttpRequest, provider: &str) -> Option<String> {
    req.cookie(&flow_cookie_name(provider)).map(|c| c.value().to_string()).filter(|v| !v.is_empty())
}
