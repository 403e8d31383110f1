//! The one mapping from a failed sign-in to its page: a fixed reason per case (the
//! details go to the log), a status that says whose fault it was, and a link to start over.
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use askama::Template;

use super::page;

/// Why a callback or form was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInError {
    /// No `state` in the callback.
    MissingState,
    /// No flow cookie: the callback was opened in another browser, or too late.
    NoBrowserBinding,
    /// The `state` is unknown, expired or already used (a replayed callback).
    UnknownState,
    /// The flow cookie belongs to another sign-in (another browser's state).
    WrongBrowser,
    /// No `code` in the callback.
    MissingCode,
    /// The provider reported an error (the user cancelled, consent refused).
    ProviderError,
    /// The provider's answer did not prove an allowed identity.
    Refused,
    /// The provider could not be asked.
    Unavailable,
    /// The store could not keep or read the flow.
    Store,
    /// An identity-token offer that is unknown, expired or already used.
    UnknownOffer,
    /// Identity tokens need a persistent store.
    NoIdentityTokens,
    /// Too many sign-ins started this minute.
    Busy,
}

impl SignInError {
    fn status(self) -> StatusCode {
        match self {
            SignInError::Refused => StatusCode::FORBIDDEN,
            SignInError::Unavailable => StatusCode::BAD_GATEWAY,
            SignInError::Store => StatusCode::INTERNAL_SERVER_ERROR,
            SignInError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            SignInError::MissingState => {
                "The sign-in answer carries no state. Start the sign-in again from this server."
            }
            SignInError::NoBrowserBinding => {
                "This sign-in was not started in this browser, or took too long. Start it again."
            }
            SignInError::UnknownState => "This sign-in is unknown, expired or was already used. Start it again.",
            SignInError::WrongBrowser => "This sign-in was started in another browser. Start it again here.",
            SignInError::MissingCode => "The sign-in answer carries no authorization code.",
            SignInError::ProviderError => "The identity provider did not sign you in (cancelled or refused there).",
            SignInError::Refused => "The identity provider's answer does not allow this account to sign in here.",
            SignInError::Unavailable => "The identity provider is unavailable. Try again later.",
            SignInError::Store => "Sign-in failed (store unavailable).",
            SignInError::UnknownOffer => "This offer is unknown, expired or was already used. Sign in again.",
            SignInError::NoIdentityTokens => "Identity tokens need a store (see the store: section).",
            SignInError::Busy => "Too many sign-ins right now. Try again in a minute.",
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    issuer: &'a str,
    reason: &'a str,
    retry: &'a str,
}

pub fn respond(issuer: &str, error: SignInError, retry: &str) -> HttpResponse {
    page::html(error.status(), ErrorPage { issuer, reason: error.reason(), retry }.render())
}
