//! Signing in and out. The password form goes through the token endpoint's authn chain,
//! bcrypt pool and lockout (`AuthService::console_sign_in`); a wrong password and an
//! unknown account get the same status, page and (through the chain's decoy check) time.
//! The form is bound to the browser that loaded it (login CSRF): a random cookie whose
//! keyed hash is the form's `csrf` field. Sign-out ends this session; "sign out
//! everywhere" every session of the account.
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::page::{self, Layout};
use super::{csrf, session, ConsoleCtx, ConsoleError, ConsoleSession, Site};
use crate::identity::issued_secret::{self, Kind};
use crate::secret::Secret;
use crate::service::AuthError;

/// The cookie binding a sign-in form to its browser.
pub const BINDING_COOKIE: &str = "registry_auth_console_signin";
/// Longest accepted username (the chain's backends accept less; this bounds the work).
const MAX_USERNAME: usize = 256;

#[derive(Template)]
#[template(path = "console/signin.html")]
pub struct SignInPage {
    pub layout: Layout,
    pub csrf: String,
    pub username: String,
    /// Shown above the form (`role=alert`), empty for none.
    pub error: String,
    pub notice: &'static str,
    /// Web sign-in providers: (id, link, display name).
    pub providers: Vec<(String, String, String)>,
}

#[derive(Deserialize)]
pub struct SignInQuery {
    #[serde(default)]
    signed_out: String,
}

/// Forms without fields of their own: just the CSRF token (missing reads as empty).
#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

fn binding_cookie(site: &Site, value: &str, secure: bool) -> Cookie<'static> {
    Cookie::build(BINDING_COOKIE, value.to_string())
        .path(site.prefix.clone())
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .max_age(actix_web::cookie::time::Duration::hours(1))
        .finish()
}

/// The form's binding: the browser's cookie if it has a well-formed one (several tabs
/// share it), else a new one.
fn binding(req: &HttpRequest) -> Result<(String, bool), ConsoleError> {
    if let Some(c) = req.cookie(BINDING_COOKIE).filter(|c| issued_secret::well_formed(Kind::ConsoleSignIn, c.value())) {
        return Ok((c.value().to_string(), false));
    }
    let value = issued_secret::generate(Kind::ConsoleSignIn)
        .map_err(|_| ConsoleError::new(super::errors::Kind::Store, None))?;
    Ok((value, true))
}

fn providers(ctx: &ConsoleCtx) -> Vec<(String, String, String)> {
    let Some(web) = &ctx.app.web else { return Vec::new() };
    let prefix = &ctx.site().prefix;
    web.providers
        .iter()
        .map(|p| {
            let name = p.provider.name();
            (name.to_string(), format!("{prefix}/signin/{name}"), p.provider.display_name().to_string())
        })
        .collect()
}

/// GET `/signin`: the form (or home, for someone signed in already).
pub async fn form(
    req: HttpRequest,
    ctx: ConsoleCtx,
    query: web::Query<SignInQuery>,
) -> Result<HttpResponse, ConsoleError> {
    let site = ctx.site().clone();
    if let Some(c) = req.cookie(session::COOKIE) {
        if let Ok(Some(_)) = ctx.console().sessions.find(c.value()).await {
            return Ok(page::see_other(&format!("{}/", site.prefix)));
        }
    }
    let notice = match query.signed_out.as_str() {
        "" => "",
        "all" => "You are signed out on every device.",
        _ => "You are signed out.",
    };
    render(&req, &ctx, StatusCode::OK, String::new(), String::new(), notice).await
}

async fn render(
    req: &HttpRequest,
    ctx: &ConsoleCtx,
    status: StatusCode,
    username: String,
    error: String,
    notice: &'static str,
) -> Result<HttpResponse, ConsoleError> {
    let site = ctx.site().clone();
    let (binding, fresh) =
        binding(req).map_err(|_| ConsoleError::store(&site, &"the OS random number generator failed"))?;
    let csrf =
        ctx.console().hasher.digest(Kind::ConsoleSignIn, &binding).await.map_err(|e| ConsoleError::store(&site, &e))?;
    let page =
        SignInPage { layout: Layout::anonymous(&site, ""), csrf, username, error, notice, providers: providers(ctx) };
    let mut response = page::html(status, page.render());
    if fresh {
        let _ = response.add_cookie(&binding_cookie(&site, &binding, req.app_config().secure()));
    }
    Ok(response)
}

/// POST `/signin`: check the binding, then the password.
pub async fn submit(
    req: HttpRequest,
    ctx: ConsoleCtx,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, ConsoleError> {
    let site = ctx.site().clone();
    let form = form.into_inner();
    let bound = match req.cookie(BINDING_COOKIE) {
        Some(c) if !form.csrf.is_empty() => {
            let expected = ctx
                .console()
                .hasher
                .digest(Kind::ConsoleSignIn, c.value())
                .await
                .map_err(|e| ConsoleError::store(&site, &e))?;
            csrf::same(&expected, &form.csrf)
        }
        _ => false,
    };
    if !bound {
        tracing::warn!("console sign-in refused: the form was not loaded in this browser (CSRF)");
        return Err(ConsoleError::csrf(Some(site)));
    }
    let username: String = form.username.chars().take(MAX_USERNAME).collect();
    if username.is_empty() || form.password.is_empty() {
        let error = "Enter your username and password.".to_string();
        return render(&req, &ctx, StatusCode::BAD_REQUEST, username, error, "").await;
    }
    let ip = crate::http::extract::client_ip(&ctx.app.real_ip, req.headers(), req.peer_addr()).map_err(|_| {
        ConsoleError::new(super::errors::Kind::BadRequest("The client address is missing."), Some(site.clone()))
    })?;
    match ctx.service().console_sign_in(&username, Secret::new(form.password), ip).await {
        Ok(signed_in) => {
            start_session(&req, &ctx, &signed_in.account, signed_in.labels, signed_in.backend, "password").await
        }
        Err(AuthError::Unauthorized) => {
            let error = "Wrong username or password.".to_string();
            render(&req, &ctx, StatusCode::UNAUTHORIZED, username, error, "").await
        }
        Err(AuthError::TooManyAttempts { retry_after }) => {
            let minutes = retry_after.as_secs().div_ceil(60).max(1);
            let error = format!(
                "Too many failed sign-ins. Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            );
            let mut response = render(&req, &ctx, StatusCode::TOO_MANY_REQUESTS, username, error, "").await?;
            let retry = header::HeaderValue::from(retry_after.as_secs().max(1));
            response.headers_mut().insert(header::RETRY_AFTER, retry);
            Ok(response)
        }
        Err(AuthError::Store(e)) => Err(ConsoleError::store(&site, &e)),
        Err(e) => {
            tracing::error!(error = %e, "console sign-in failed");
            let error = "Signing in is not possible right now. Try again in a moment.".to_string();
            render(&req, &ctx, StatusCode::SERVICE_UNAVAILABLE, username, error, "").await
        }
    }
}

/// Creates the session of someone who just proved who they are, sets its cookie and sends
/// them home (a 303 after the same-site form; web sign-in lands on its own page first).
pub async fn start_session(
    req: &HttpRequest,
    ctx: &ConsoleCtx,
    account: &str,
    labels: crate::request::Labels,
    backend: &str,
    via: &str,
) -> Result<HttpResponse, ConsoleError> {
    let site = ctx.site().clone();
    let (cookie, _) = ctx
        .console()
        .sessions
        .create(account, labels, backend, via)
        .await
        .map_err(|e| ConsoleError::store(&site, &e))?;
    tracing::info!(event = "console_signin", account = %account.escape_debug(), via, backend, "console session started");
    let secure = req.app_config().secure();
    let mut response = page::see_other(&format!("{}/", site.prefix));
    let _ = response.add_cookie(&session::cookie(&site, &cookie, secure));
    let mut clear = binding_cookie(&site, "", secure);
    clear.make_removal();
    let _ = response.add_cookie(&clear);
    Ok(response)
}

/// POST `/signout`.
pub async fn sign_out(
    req: HttpRequest,
    ctx: ConsoleCtx,
    session: ConsoleSession,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    csrf::verify(&session, &form.csrf)?;
    ctx.console().sessions.end(&session.live).await.map_err(|e| ConsoleError::store(&session.site, &e))?;
    tracing::info!(event = "console_signout", account = %session.account.escape_debug(), "console session ended");
    Ok(signed_out(&req, &session.site, "1"))
}

/// POST `/signout-everywhere`: every session of the account, on every device.
pub async fn sign_out_everywhere(
    req: HttpRequest,
    ctx: ConsoleCtx,
    session: ConsoleSession,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, ConsoleError> {
    csrf::verify(&session, &form.csrf)?;
    let ended =
        ctx.console().sessions.end_all(&session.account).await.map_err(|e| ConsoleError::store(&session.site, &e))?;
    tracing::info!(event = "console_signout", account = %session.account.escape_debug(), sessions = ended, "console sessions ended everywhere");
    Ok(signed_out(&req, &session.site, "all"))
}

fn signed_out(req: &HttpRequest, site: &Site, which: &str) -> HttpResponse {
    let mut response = page::see_other(&format!("{}/signin?signed_out={which}", site.prefix));
    let _ = response.add_cookie(&session::cleared(site, req.app_config().secure()));
    response
}

#[derive(Template)]
#[template(path = "console/landing.html")]
struct LandingPage {
    layout: Layout,
    account: String,
    provider: String,
    next: String,
}

/// GET `/signin/<provider>`: a web sign-in that ends in a console session.
pub async fn with_provider(
    req: HttpRequest,
    ctx: ConsoleCtx,
    name: web::Path<String>,
) -> Result<HttpResponse, ConsoleError> {
    let site = ctx.site().clone();
    let web = ctx.app.web.as_ref().ok_or_else(|| ConsoleError::not_found(Some(site.clone())))?;
    let configured = web.provider(&name).ok_or_else(|| ConsoleError::not_found(Some(site.clone())))?;
    let mut response = web.start_for_console(configured, &req).await;
    page::secure_headers(&mut response);
    Ok(response)
}

/// The answer of a provider's callback for a sign-in the console started: the session and
/// its cookie, on a page of our own that continues to the console. The callback is the end
/// of a cross-site redirect chain, and Chromium does not send a SameSite=Strict cookie on a
/// redirect within such a chain; a navigation from this page is same-site, so it does.
pub async fn landing(
    console: &super::Console,
    req: &HttpRequest,
    web_provider: &dyn crate::authn::oidc::provider::WebProvider,
    signed_in: &crate::authn::oidc::provider::SignedIn,
) -> HttpResponse {
    let site = console.site.clone();
    let provider = web_provider.name();
    let backend = crate::authn::oidc::web_login::backend_name(provider);
    let created = console.sessions.create(&signed_in.account, signed_in.labels.clone(), backend, provider).await;
    let cookie = match created {
        Ok((cookie, _)) => cookie,
        Err(e) => return actix_web::ResponseError::error_response(&ConsoleError::store(&site, &e)),
    };
    tracing::info!(event = "console_signin", account = %signed_in.account.escape_debug(), via = provider, backend, "console session started");
    let page = LandingPage {
        layout: Layout::anonymous(&site, ""),
        account: signed_in.account.clone(),
        provider: web_provider.display_name().to_string(),
        next: format!("{}/", site.prefix),
    };
    let mut response = page::html(StatusCode::OK, page.render());
    let _ = response.add_cookie(&session::cookie(&site, &cookie, req.app_config().secure()));
    response
}
