//! The authorization code flow on `/<name>_auth`, for any [`WebProvider`]:
//! - GET without `code`, `state` or `error`: start. A fresh `state`, PKCE S256 verifier and
//!   `nonce` are kept in a single-use store record; the browser gets a cookie whose hash the
//!   record holds, and a redirect to the provider.
//! - GET with `state`: the callback. The record is taken (once), the cookie must match it
//!   (same browser), then the provider exchanges the code and verifies the identity; the
//!   sign-in is stored (a new password replaces the old) and the result page shown.
//! - POST `action=identity_token`: the result page's offer, traded for an identity token.
use actix_web::http::{header, Method};
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use url::Url;

use super::cookies::{cleared_flow_cookie, flow_cookie, read_flow_cookie};
use super::errors::{self, SignInError};
use super::pending::{self, Offer, PendingFlow};
use super::result::{docker_login, ResultPage};
use super::{random_token, ConfiguredProvider, WebSignIn};
use crate::authn::oidc::provider::{AuthorizeRequest, Callback, ProviderError};
use crate::authn::oidc::web_login::backend_name;
use crate::http::extract::Form;
use crate::secret::Secret;

pub async fn handle(web: &WebSignIn, configured: &ConfiguredProvider, req: &HttpRequest, body: &[u8]) -> HttpResponse {
    let form = Form::parse(req.method(), req.headers(), req.query_string(), body);
    if req.method() == Method::POST && form.first("action") == "identity_token" {
        return identity_token(web, configured, form.first("offer")).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD && req.method() != Method::POST {
        return crate::http::error::text(
            actix_web::http::StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed\n".to_string(),
        );
    }
    let is_callback = ["code", "state", "error"].iter().any(|k| form.all(k).next().is_some());
    if is_callback {
        callback(web, configured, req, &form).await
    } else {
        start(web, configured, req, false).await
    }
}

/// GET `{prefix}/console/signin/<provider>`: a sign-in whose callback (on the provider's
/// usual route, as registered there) ends in a console session.
pub async fn start_for_console(web: &WebSignIn, configured: &ConfiguredProvider, req: &HttpRequest) -> HttpResponse {
    start(web, configured, req, true).await
}

fn secure(req: &HttpRequest) -> bool {
    req.app_config().secure()
}

/// The callback URL: configured, or this server's own route as the browser reached it.
fn redirect_uri(web: &WebSignIn, configured: &ConfiguredProvider, req: &HttpRequest) -> Option<Url> {
    if let Some(uri) = &configured.redirect_uri {
        return Some(uri.clone());
    }
    let scheme = if secure(req) { "https" } else { "http" };
    let host = req.headers().get(header::HOST)?.to_str().ok()?;
    Url::parse(&format!("{scheme}://{host}{}", web.route_of(configured.provider.name()))).ok()
}

fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

async fn start(web: &WebSignIn, configured: &ConfiguredProvider, req: &HttpRequest, console: bool) -> HttpResponse {
    let provider = &configured.provider;
    let route = web.route_of(provider.name());
    let Some(redirect) = redirect_uri(web, configured, req) else {
        return crate::http::error::text(
            actix_web::http::StatusCode::BAD_REQUEST,
            "Bad request: no Host header\n".into(),
        );
    };
    if !web.starts.take() {
        tracing::warn!(provider = provider.name(), "sign-in refused: too many started this minute");
        let mut response = errors::respond(&web.issuer, SignInError::Busy, &route);
        response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
        return response;
    }
    if let Err(e) = provider.prepare().await {
        tracing::error!(provider = provider.name(), error = %e, "cannot start a sign-in");
        return errors::respond(&web.issuer, SignInError::Unavailable, &route);
    }
    let (state, nonce, verifier, browser) = (random_token(), random_token(), random_token(), random_token());
    let flow = PendingFlow {
        provider: provider.name().to_string(),
        browser: pending::digest(&browser),
        pkce_verifier: verifier.clone(),
        nonce: nonce.clone(),
        redirect_uri: redirect.to_string(),
        console,
    };
    if let Err(e) = pending::save_flow(&web.store, &state, &flow).await {
        tracing::error!(provider = provider.name(), error = %e, "cannot keep a sign-in attempt");
        return errors::respond(&web.issuer, SignInError::Store, &route);
    }
    let request = AuthorizeRequest { state, nonce, pkce_challenge: pkce_challenge(&verifier), redirect_uri: redirect };
    let location = provider.authorize_url(&request);
    HttpResponse::Found()
        .cookie(flow_cookie(provider.name(), &browser, &route, secure(req)))
        .insert_header((header::LOCATION, location.as_str()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

async fn callback(web: &WebSignIn, configured: &ConfiguredProvider, req: &HttpRequest, form: &Form) -> HttpResponse {
    let provider = &configured.provider;
    let route = web.route_of(provider.name());
    let refuse = |error: SignInError| {
        let mut response = errors::respond(&web.issuer, error, &route);
        let _ = response.add_cookie(&cleared_flow_cookie(provider.name(), &route, secure(req)));
        response
    };
    let state = form.first("state");
    if state.is_empty() {
        tracing::warn!(provider = provider.name(), "sign-in callback without state");
        return refuse(SignInError::MissingState);
    }
    let Some(browser) = read_flow_cookie(req, provider.name()) else {
        tracing::warn!(
            provider = provider.name(),
            "sign-in callback without the flow cookie (another browser, or expired)"
        );
        return refuse(SignInError::NoBrowserBinding);
    };
    let flow = match pending::take_flow(&web.store, state).await {
        Ok(Some(flow)) => flow,
        Ok(None) => {
            tracing::warn!(provider = provider.name(), "sign-in callback with an unknown, expired or used state");
            return refuse(SignInError::UnknownState);
        }
        Err(e) => {
            tracing::error!(provider = provider.name(), error = %e, "cannot read a sign-in attempt");
            return refuse(SignInError::Store);
        }
    };
    let same_browser: bool = pending::digest(&browser).as_bytes().ct_eq(flow.browser.as_bytes()).into();
    if !same_browser || flow.provider != provider.name() {
        tracing::warn!(
            provider = provider.name(),
            "sign-in callback from another browser than the one that started it"
        );
        return refuse(SignInError::WrongBrowser);
    }
    if form.all("error").next().is_some() {
        tracing::warn!(provider = provider.name(), error = %form.first("error").escape_debug(), "the provider reported an error");
        return refuse(SignInError::ProviderError);
    }
    let code = form.first("code");
    if code.is_empty() {
        return refuse(SignInError::MissingCode);
    }
    let Ok(redirect_uri) = Url::parse(&flow.redirect_uri) else { return refuse(SignInError::UnknownState) };
    let callback = Callback {
        code: Secret::new(code),
        pkce_verifier: Secret::new(flow.pkce_verifier),
        nonce: flow.nonce,
        redirect_uri,
    };
    let signed_in = match provider.complete(&callback).await {
        Ok(signed_in) => signed_in,
        Err(ProviderError::Refused(why)) => {
            tracing::warn!(provider = provider.name(), reason = %why, "sign-in refused");
            return refuse(SignInError::Refused);
        }
        Err(ProviderError::Unavailable(why)) => {
            tracing::error!(provider = provider.name(), reason = %why, "sign-in failed: provider unavailable");
            return refuse(SignInError::Unavailable);
        }
    };
    if flow.console {
        if let Some(console) = &web.console {
            // No docker password is made (it would replace the one the user has).
            let mut response = crate::web::console::signin::landing(console, req, provider.as_ref(), &signed_in).await;
            let _ = response.add_cookie(&cleared_flow_cookie(provider.name(), &route, secure(req)));
            return response;
        }
    }
    let password = match web.db.sign_in(provider.name(), &signed_in).await {
        Ok(Ok(password)) => password,
        Ok(Err(why)) => {
            tracing::error!(provider = provider.name(), reason = %why, "cannot store the sign-in");
            return refuse(SignInError::Store);
        }
        Err(e) => {
            tracing::error!(provider = provider.name(), error = %e, "cannot store the sign-in");
            return refuse(SignInError::Store);
        }
    };
    tracing::info!(provider = provider.name(), account = %signed_in.account, "web sign-in: new password issued");
    let offer = match &web.identity {
        Some(_) => {
            let offer = random_token();
            let value = Offer {
                provider: provider.name().to_string(),
                account: signed_in.account.clone(),
                labels: signed_in.labels.clone(),
            };
            match pending::save_offer(&web.store, &offer, &value).await {
                Ok(()) => Some(offer),
                Err(e) => {
                    tracing::warn!(provider = provider.name(), error = %e, "cannot keep the identity-token offer; not shown");
                    None
                }
            }
        }
        None => None,
    };
    let page = ResultPage {
        issuer: &web.issuer,
        display_name: provider.display_name(),
        account: &signed_in.account,
        password: password.expose(),
        docker_login: docker_login(&signed_in.account, password.expose(), &configured.registry_url),
        offer,
        action: route.clone(),
    };
    let mut response = super::result::respond(page);
    let _ = response.add_cookie(&cleared_flow_cookie(provider.name(), &route, secure(req)));
    response
}

async fn identity_token(web: &WebSignIn, configured: &ConfiguredProvider, offer: &str) -> HttpResponse {
    let provider = &configured.provider;
    let route = web.route_of(provider.name());
    let Some(identity) = &web.identity else {
        return errors::respond(&web.issuer, SignInError::NoIdentityTokens, &route);
    };
    let taken = if offer.is_empty() { Ok(None) } else { pending::take_offer(&web.store, offer).await };
    let offer = match taken {
        Ok(Some(offer)) if offer.provider == provider.name() => offer,
        Ok(_) => return errors::respond(&web.issuer, SignInError::UnknownOffer, &route),
        Err(e) => {
            tracing::error!(provider = provider.name(), error = %e, "cannot read an identity-token offer");
            return errors::respond(&web.issuer, SignInError::Store, &route);
        }
    };
    // The web login backend can look the account up again: no labels snapshot.
    let issued = identity.tokens.issue(&offer.account, backend_name(provider.name()), None, "web-sign-in").await;
    let (token, token_id) = match issued {
        Ok(issued) => issued,
        Err(e) => {
            tracing::error!(provider = provider.name(), error = %e, "cannot issue an identity token");
            return errors::respond(&web.issuer, SignInError::Store, &route);
        }
    };
    if let Err(e) = web.db.forget_password(provider.name(), &offer.account).await {
        tracing::error!(provider = provider.name(), error = %e, "cannot drop the generated password");
        return errors::respond(&web.issuer, SignInError::Store, &route);
    }
    tracing::info!(provider = provider.name(), account = %offer.account, token_id = %token_id, "web sign-in: password traded for an identity token");
    super::identity_token::respond(&web.issuer, &offer.account, &token, &configured.registry_url)
}
