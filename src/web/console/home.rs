//! The home page: who is signed in, how, until when, the `docker login` line, and where
//! to go next.
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use askama::Template;

use super::page::{self, Layout};
use super::{ConsoleCtx, ConsoleError, ConsoleSession};

#[derive(Template)]
#[template(path = "console/home.html")]
struct HomePage {
    layout: Layout,
    account: String,
    via: String,
    labels: Vec<(String, String)>,
    expires: String,
    docker_login: Option<String>,
    sessions: usize,
    csrf: String,
}

/// `2026-12-02 14:03 UTC`.
pub fn utc(unix: i64) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(unix) else { return String::new() };
    format!("{}-{:02}-{:02} {:02}:{:02} UTC", t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute())
}

/// GET `{prefix}/console` → `{prefix}/console/`.
pub async fn to_slash(ctx: ConsoleCtx) -> HttpResponse {
    page::see_other(&format!("{}/", ctx.site().prefix))
}

/// GET `/`.
pub async fn page(ctx: ConsoleCtx, session: ConsoleSession) -> Result<HttpResponse, ConsoleError> {
    let sessions =
        ctx.console().sessions.list(&session.account).await.map_err(|e| ConsoleError::store(&session.site, &e))?.len();
    let labels = session.labels.iter().map(|(k, v)| (k.clone(), v.join(", "))).collect();
    let docker_login = session
        .site
        .registry_host
        .as_ref()
        .map(|host| format!("docker login {host} -u {}", crate::web::result::shell_quote(&session.account)));
    let via = match session.via.as_str() {
        "password" => format!("password ({})", session.backend),
        // As the sign-in pages name it; a provider no longer configured by its name.
        provider => ctx
            .app
            .web
            .as_ref()
            .and_then(|w| w.provider(provider))
            .map_or(provider, |p| p.provider.display_name())
            .to_string(),
    };
    let page = HomePage {
        layout: Layout::new(&session, "home"),
        account: session.account.clone(),
        via,
        labels,
        expires: utc(session.expires),
        docker_login,
        sessions,
        csrf: session.csrf.clone(),
    };
    Ok(page::html(StatusCode::OK, page.render()))
}
