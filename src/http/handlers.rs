//! Thin handlers: extract → service → response. Routes are matched exactly on the path,
//! as docker_auth does (`/auth/` and the bare prefix are 404s); any method is accepted.
//! Token protocol: https://distribution.github.io/distribution/spec/auth/token/
use actix_web::http::{header, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use super::body;
use super::error::{text, HttpError};
use super::extract::{basic_auth, client_ip, Form};
use super::oauth;
use super::{AppState, StateHandle};
use crate::metrics;
use crate::scope::parse_scopes;
use crate::secret::Secret;
use crate::service::{AuthRequest, Grant};

/// Largest accepted request head (actix itself stops at 128 KiB and 96 headers); a token
/// request's headers are well under 1 KiB.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

pub async fn dispatch(req: HttpRequest, payload: web::Payload, handle: web::Data<StateHandle>) -> HttpResponse {
    let state = handle.current();
    let (route, mut response) = if header_bytes(&req) > MAX_HEADER_BYTES {
        ("other", text(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "Request header fields too large\n".to_string()))
    } else {
        route(&req, payload, &state).await
    };
    metrics::global().request(route, response.status().as_u16());
    if state.hsts {
        response
            .headers_mut()
            .insert(header::STRICT_TRANSPORT_SECURITY, header::HeaderValue::from_static(super::HSTS_VALUE));
    }
    response
}

fn header_bytes(req: &HttpRequest) -> usize {
    let headers: usize = req.headers().iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    headers + req.path().len() + req.query_string().len()
}

/// The response and the route's fixed name for metrics (never the raw path: unbounded).
async fn route(req: &HttpRequest, payload: web::Payload, state: &AppState) -> (&'static str, HttpResponse) {
    let Some(path) = super::extract::decoded_path(req.path()) else {
        return ("other", text(StatusCode::BAD_REQUEST, "Bad request: invalid URL escape in path\n".to_string()));
    };
    let routes = &state.routes;
    if path == routes.index {
        match &state.web {
            Some(web) => ("index", web.index()),
            None => ("index", index(state)),
        }
    } else if path == routes.auth || path == routes.auth_token {
        let response = match body::read(req, payload).await {
            Ok(body) => token(req, &body, state).await,
            Err(e) => e.response(),
        };
        ("token", response)
    } else if path == routes.healthz {
        ("healthz", text(StatusCode::OK, "ok\n".to_string()))
    } else if path == routes.readyz {
        ("readyz", ready(state).await)
    } else if path == routes.metrics {
        ("metrics", metrics_page(state).await)
    } else if let Some(web) = state.web.as_ref().filter(|web| web.owns(&path)) {
        let response = match body::read(req, payload).await {
            Ok(body) => web.handle(req, &path, &body).await,
            Err(e) => e.response(),
        };
        ("web_signin", response)
    } else {
        ("other", text(StatusCode::NOT_FOUND, "Not found\n".to_string()))
    }
}

/// Ready when a config is loaded (there is a state), every backend can answer and so
/// can the store. The three are asked at once: a database that is down costs its own
/// timeout, not the sum of every backend's (a probe would give up first).
async fn ready(state: &AppState) -> HttpResponse {
    let (authn, authz, store) = futures_util::future::join3(
        state.service.authn.ready(),
        state.service.authz.ready(),
        state.service.store.health(),
    )
    .await;
    let failure = match (authn, authz) {
        (Err((backend, e)), _) => Some((backend, e.to_string())),
        (_, Err((backend, e))) => Some((backend, e.to_string())),
        _ => None,
    };
    let failure = match (failure, store) {
        (None, Err(e)) => {
            tracing::warn!(store = %state.service.store.describe(), error = %e, "not ready");
            return text(StatusCode::SERVICE_UNAVAILABLE, "not ready: the store is unavailable\n".to_string());
        }
        (failure, _) => failure,
    };
    match failure {
        None => text(StatusCode::OK, "ready\n".to_string()),
        Some((backend, error)) => {
            tracing::warn!(backend, error = %error, "not ready");
            text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: backend {backend} is unavailable\n"))
        }
    }
}

async fn metrics_page(state: &AppState) -> HttpResponse {
    let expiry = state.service.issuer.key().not_after_unix() - time::OffsetDateTime::now_utc().unix_timestamp();
    let store = &state.service.store;
    let up = store.health().await.is_ok();
    let mut body = metrics::global().render(Some(expiry));
    metrics::render_store_up(&mut body, store.engine(), up);
    HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(body)
}

/// `GET {prefix}/`: the page probes use (docker_auth's Helm chart does).
fn index(state: &AppState) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!("<h1>{}</h1>\n", html_escape(&state.issuer)))
}

async fn token(req: &HttpRequest, body: &[u8], state: &AppState) -> HttpResponse {
    let multipart = super::multipart::text_fields(req.headers(), body).await;
    let result = match parse_request(req, body, multipart, state) {
        Ok(auth_request) => state.service.handle(&auth_request).await.map_err(HttpError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(grant) => token_response(&grant),
        Err(e) => {
            if let HttpError::BadRequest(reason) = &e {
                tracing::warn!(reason = %reason, "bad request");
            }
            e.to_response(&state.issuer)
        }
    }
}

fn parse_request(
    req: &HttpRequest,
    body: &[u8],
    multipart: Vec<(String, String)>,
    state: &AppState,
) -> Result<AuthRequest, HttpError> {
    let ip = client_ip(&state.real_ip, req.headers(), req.peer_addr())?;
    let mut form = Form::parse(req.method(), req.headers(), req.query_string(), body);
    form.extend(multipart);
    let basic = basic_auth(req.headers());
    let (user, password) = match &basic {
        Some((user, password)) => (user.as_str(), password.as_str()),
        None if req.method() == Method::POST => match (form.first("username"), form.first("password")) {
            (u, p) if !u.is_empty() && !p.is_empty() => (u, p),
            _ => ("", ""),
        },
        None => ("", ""),
    };
    let account = match form.first("account") {
        "" => user,
        account if basic.is_some() && account != user => {
            return Err(HttpError::BadRequest(format!("user and account are not the same ({user:?} vs {account:?})")));
        }
        account => account,
    };
    let has_password = basic.is_some() || !form.first("password").is_empty();
    let oauth = oauth::read(&form, has_password, state.service.identity.is_some())?;
    let scopes =
        parse_scopes(form.all("scope"), &state.scope_limits).map_err(|e| HttpError::BadRequest(e.to_string()))?;
    Ok(AuthRequest {
        account: account.to_string(),
        password: Secret::new(password),
        service: form.first("service").to_string(),
        ip,
        scopes,
        refresh_token: oauth.refresh_token,
        offline: oauth.offline,
        client_id: oauth.client_id,
    })
}

/// The token response in docker_auth's key order. Written by hand: the token is base64url
/// and dots, and the timestamp digits and punctuation, so nothing needs JSON escaping, and
/// serde_json would scan the ~500-byte token twice for characters to escape.
fn token_response(grant: &Grant) -> HttpResponse {
    let issued_at = time::OffsetDateTime::from_unix_timestamp(grant.token.issued_at)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    let token = &grant.token.token;
    debug_assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
    // Identity tokens are a prefix and base64url too (see identity::issued_secret).
    let refresh = grant.refresh_token.as_deref().map(|r| format!(r#","refresh_token":"{r}""#)).unwrap_or_default();
    debug_assert!(grant
        .refresh_token
        .iter()
        .flat_map(|r| r.bytes())
        .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)));
    let body = format!(
        r#"{{"access_token":"{token}","token":"{token}","expires_in":{},"issued_at":"{issued_at}"{refresh}}}"#,
        grant.token.expires_in
    );
    HttpResponse::Ok().content_type("application/json").body(body)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
