//! [`ConsoleSession`]: the extractor every signed-in page takes. It finds the session of
//! the request's cookie in the store (renewing its idle timeout), or answers with the
//! redirect to the sign-in page; a store that cannot answer gets the fixed 500 page (fail
//! closed: nobody is let in on a guess). Also the session cookie itself: HttpOnly,
//! SameSite=Strict, Secure on TLS, scoped to the console's path, no Max-Age (it ends with
//! the browser, and the store ends it sooner).
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};

use super::errors::Kind;
use super::sessions::Live;
use super::{csrf, ConsoleCtx, ConsoleError, Site};
use crate::request::Labels;

pub const COOKIE: &str = "registry_auth_console";

/// The signed-in person of a console request.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub account: String,
    pub labels: Labels,
    /// Whether `console.operators` names this account (the Operators pages).
    pub operator: bool,
    /// The CSRF token to put in every form (`<input type="hidden" name="csrf">`).
    pub csrf: String,
    /// `password` or the web sign-in provider's name.
    pub via: String,
    /// The authenticator that accepted the account.
    pub backend: String,
    pub created: i64,
    /// Absolute end (unix seconds).
    pub expires: i64,
    pub site: Arc<Site>,
    /// The session's record name, to sign it out.
    pub(crate) live: Live,
}

impl ConsoleSession {
    pub(crate) fn from_live(live: Live, site: Arc<Site>) -> ConsoleSession {
        let record = &live.record;
        ConsoleSession {
            account: record.account.clone(),
            labels: record.labels.clone(),
            // console-ops decides this from `console.operators`.
            operator: false,
            csrf: csrf::token(&record.csrf_secret, &live.digest),
            via: record.via.clone(),
            backend: record.backend.clone(),
            created: record.created,
            expires: record.expires,
            site,
            live,
        }
    }

    /// How the signed-in account appears as `operator` in audit events: `console:<account>`.
    pub fn audit_name(&self) -> String {
        format!("console:{}", self.account)
    }

    async fn of_request(req: HttpRequest) -> Result<ConsoleSession, ConsoleError> {
        let ctx = ConsoleCtx::from_req(&req)?;
        let site = ctx.site().clone();
        let Some(cookie) = req.cookie(COOKIE) else {
            return Err(ConsoleError::new(Kind::SignInRequired, Some(site)));
        };
        match ctx.console().sessions.find(cookie.value()).await {
            Ok(Some(live)) => {
                let mut session = ConsoleSession::from_live(live, site);
                session.operator = ctx.console().ops.operators.includes(&session.account, &session.labels);
                Ok(session)
            }
            Ok(None) => Err(ConsoleError::new(Kind::SignInRequired, Some(site))),
            Err(e) => Err(ConsoleError::store(&site, &e)),
        }
    }
}

impl FromRequest for ConsoleSession {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<ConsoleSession, ConsoleError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(ConsoleSession::of_request(req.clone()))
    }
}

/// The session cookie carrying `value`.
pub fn cookie(site: &Site, value: &str, secure: bool) -> Cookie<'static> {
    Cookie::build(COOKIE, value.to_string())
        .path(site.prefix.clone())
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .finish()
}

/// The same cookie, expired (sign-out).
pub fn cleared(site: &Site, secure: bool) -> Cookie<'static> {
    let mut cookie = cookie(site, "", secure);
    cookie.make_removal();
    cookie
}
