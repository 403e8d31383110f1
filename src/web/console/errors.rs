//! The one mapping from a refused console request to its answer: a fixed page per case
//! (details go to the log, never to the page), or the redirect to the sign-in page.
use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;

use super::page::{self, Layout};
use super::Site;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// No live session: 303 to the sign-in page.
    SignInRequired,
    /// A form without the right CSRF token: 403.
    Csrf,
    /// The store could not answer: the fixed 500 page (fail closed).
    Store,
    /// Not a console page (or no console in this config): 404.
    NotFound,
    /// A client's mistake the page names: 400.
    BadRequest(&'static str),
    /// Something this account may not do: 403 with the reason.
    Forbidden(&'static str),
}

/// A console request that ends in an error page or the sign-in redirect.
#[derive(Debug, Clone)]
pub struct ConsoleError {
    pub kind: Kind,
    /// `None` when there is no console to render a page of (404 as plain text).
    pub site: Option<Arc<Site>>,
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "console request refused: {:?}", self.kind)
    }
}

impl ConsoleError {
    pub fn new(kind: Kind, site: Option<Arc<Site>>) -> ConsoleError {
        ConsoleError { kind, site }
    }

    pub fn not_found(site: Option<Arc<Site>>) -> ConsoleError {
        ConsoleError::new(Kind::NotFound, site)
    }

    pub fn csrf(site: Option<Arc<Site>>) -> ConsoleError {
        ConsoleError::new(Kind::Csrf, site)
    }

    /// Logs the store's failure (naming the store) and answers with the fixed 500 page.
    pub fn store(site: &Arc<Site>, error: &dyn std::fmt::Display) -> ConsoleError {
        tracing::error!(error = %error, "console: the store is unavailable; refusing the request");
        ConsoleError::new(Kind::Store, Some(site.clone()))
    }

    fn message(&self) -> (&'static str, &'static str) {
        match self.kind {
            Kind::SignInRequired => ("Sign-in required", "Sign in to continue."),
            Kind::Csrf => (
                "Form expired",
                "This form was not sent from this console session (or the session changed). Go back, reload the page and try again.",
            ),
            Kind::Store => ("Temporarily unavailable", "The console cannot reach its store right now. Try again in a moment."),
            Kind::NotFound => ("Not found", "There is no such page in the console."),
            Kind::BadRequest(why) => ("Cannot do that", why),
            Kind::Forbidden(why) => ("Not allowed", why),
        }
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    heading: &'a str,
    reason: &'a str,
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self.kind {
            Kind::SignInRequired => StatusCode::SEE_OTHER,
            Kind::Csrf | Kind::Forbidden(_) => StatusCode::FORBIDDEN,
            Kind::Store => StatusCode::INTERNAL_SERVER_ERROR,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::BadRequest(_) => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let Some(site) = &self.site else {
            return crate::http::error::text(StatusCode::NOT_FOUND, "Not found\n".to_string());
        };
        if self.kind == Kind::SignInRequired {
            return HttpResponse::SeeOther()
                .insert_header((header::LOCATION, format!("{}/signin", site.prefix)))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish();
        }
        let (heading, reason) = self.message();
        let page = ErrorPage { layout: Layout::anonymous(site, ""), heading, reason };
        page::html(self.status_code(), page.render())
    }
}

/// Any path under the console that no page serves.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    ConsoleError::not_found(super::ConsoleCtx::from_req(&req).ok().map(|ctx| ctx.site().clone())).error_response()
}
