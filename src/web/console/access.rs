//! My access (issue 14 item 2): for every repository the registry holds, what the signed-in
//! account may do and the ACL entry that decided, in `registry-auth explain`'s words
//! (`authz::explain`); filterable by text and action, paginated; a box to try any scope;
//! the `docker login` and `docker pull` lines for this registry.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::page::{self, Layout};
use super::registry_view::{self, NameFilter, Pager, RegistryPageError, PAGE_SIZE};
use super::{csrf, ConsoleCtx, ConsoleSession};
use crate::authz::explain::DecisionText;
use crate::service::access::REPOSITORY_ACTIONS;
use crate::web::result::shell_quote;

/// The action filters offered (besides "any").
const ACTION_FILTERS: [&str; 4] = ["pull", "push", "delete", "none"];

#[derive(Deserialize)]
pub struct AccessQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    page: String,
}

#[derive(Deserialize)]
pub struct TryForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    scope: String,
}

/// One repository's row.
struct Row {
    name: String,
    /// Granted actions, in scope order; empty = nothing.
    granted: Vec<String>,
    text: DecisionText,
}

/// The try-a-scope result: one entry per scope asked.
struct Tried {
    scope: String,
    lines: Vec<String>,
    /// `allowed` (every action asked), `partly allowed` or `denied`.
    verdict: &'static str,
}

#[derive(Template)]
#[template(path = "console/access.html")]
struct AccessPage {
    layout: Layout,
    account: String,
    csrf: String,
    rows: Vec<Row>,
    pager: Pager,
    q: String,
    /// (value, label, selected) of the action filter's options.
    action_options: Vec<(&'static str, &'static str, bool)>,
    /// Repositories in the registry, and whether the catalog was cut at the reader's cap.
    repositories: usize,
    truncated: bool,
    docker_login: String,
    docker_pull: Option<String>,
    scope: String,
    tried: Vec<Tried>,
    try_error: String,
}

/// GET `/access`.
pub async fn page(
    ctx: ConsoleCtx,
    session: ConsoleSession,
    req: HttpRequest,
    query: web::Query<AccessQuery>,
) -> HttpResponse {
    render(&ctx, &session, &req, &query, String::new(), Vec::new(), String::new())
        .await
        .unwrap_or_else(|e| e.respond(&session, "access"))
}

/// POST `/access/try`: the same page with the decision for the scopes typed in the box.
pub async fn try_scope(
    ctx: ConsoleCtx,
    session: ConsoleSession,
    req: HttpRequest,
    form: web::Form<TryForm>,
) -> HttpResponse {
    if let Err(e) = csrf::verify(&session, &form.csrf) {
        return actix_web::ResponseError::error_response(&e);
    }
    let typed = form.scope.trim().to_string();
    let query = AccessQuery { q: String::new(), action: String::new(), page: String::new() };
    let (tried, error) = match tried(&ctx, &session, &req, &typed).await {
        Ok(tried) => (tried, String::new()),
        Err(message) => (Vec::new(), message),
    };
    render(&ctx, &session, &req, &query, typed, tried, error).await.unwrap_or_else(|e| e.respond(&session, "access"))
}

/// Each scope of `typed` (space- or comma-separated forms as `/auth` takes them), decided.
async fn tried(
    ctx: &ConsoleCtx,
    session: &ConsoleSession,
    req: &HttpRequest,
    typed: &str,
) -> Result<Vec<Tried>, String> {
    if typed.is_empty() {
        return Err("Type a scope, for example repository:team/app:push".into());
    }
    let scopes = crate::scope::parse_scopes(typed.split_whitespace(), &ctx.app.scope_limits)
        .map_err(|e| format!("{e}; scopes look like repository:team/app:pull,push or registry:catalog:*"))?;
    let registry_service = ctx.console().reader.as_ref().and_then(|r| r.service()).unwrap_or_default();
    let asker = registry_view::asker(ctx, session, req, &registry_service);
    let entries = ctx.console().acl_entries.as_deref();
    let mut tried = Vec::with_capacity(scopes.len());
    for scope in &scopes {
        let decision = ctx.service().decide(&asker, scope).await.map_err(|e| {
            tracing::error!(error = %e, "console: the authorization chain failed");
            "The authorization backend cannot answer right now.".to_string()
        })?;
        let req = asker.request(&scope.resource_type, &scope.name, &scope.actions);
        let text = DecisionText::new(&decision, &req, entries);
        tried.push(Tried {
            scope: format!("{}:{}:{}", scope.resource_type, scope.name, scope.actions.join(",")),
            lines: text.lines(),
            verdict: if decision.actions.is_empty() {
                "denied"
            } else if scope.actions.iter().all(|a| decision.actions.contains(a)) {
                "allowed"
            } else {
                "partly allowed"
            },
        });
    }
    Ok(tried)
}

async fn render(
    ctx: &ConsoleCtx,
    session: &ConsoleSession,
    req: &HttpRequest,
    query: &AccessQuery,
    scope: String,
    tried: Vec<Tried>,
    try_error: String,
) -> Result<HttpResponse, RegistryPageError> {
    let decided = registry_view::decided(ctx, session, req).await?;
    let q = NameFilter::new(&query.q);
    let action = ACTION_FILTERS.iter().find(|a| **a == query.action).copied().unwrap_or("");
    let wanted = |granted: &[String]| match action {
        "" => true,
        "none" => granted.is_empty(),
        action => granted.iter().any(|g| g == action),
    };
    let matching: Vec<usize> = (0..decided.decisions.len())
        .filter(|&i| q.matches(&decided.catalog.repositories[i]) && wanted(&decided.decisions[i].actions))
        .collect();
    let path = format!("{}/access", ctx.site().prefix);
    let pager = Pager::listed(&path, &[("q", &q.text), ("action", action)], matching.len(), &query.page, PAGE_SIZE);
    let entries = ctx.console().acl_entries.as_deref();
    let actions: Vec<String> = REPOSITORY_ACTIONS.iter().map(|a| a.to_string()).collect();
    let asker = registry_view::asker(ctx, session, req, &decided.service);
    let rows = matching[pager.range()]
        .iter()
        .map(|&i| {
            let name = &decided.catalog.repositories[i];
            let decision = &decided.decisions[i];
            let req = asker.request("repository", name, &actions);
            Row {
                name: name.clone(),
                granted: decision.actions.clone(),
                text: DecisionText::new(decision, &req, entries),
            }
        })
        .collect();
    let host = registry_view::reader(ctx)?.host();
    let first_pullable =
        (0..decided.decisions.len()).find(|&i| decided.decisions[i].actions.iter().any(|a| a == "pull"));
    let page = AccessPage {
        layout: Layout::new(session, "access"),
        account: session.account.clone(),
        csrf: session.csrf.clone(),
        rows,
        pager,
        q: q.text,
        action_options: [("", "any access")]
            .into_iter()
            .chain(ACTION_FILTERS.iter().map(|a| (*a, *a)))
            .map(|(value, label)| (value, if value == "none" { "no access" } else { label }, value == action))
            .collect(),
        repositories: decided.catalog.repositories.len(),
        truncated: decided.catalog.truncated,
        docker_login: format!("docker login {host} -u {}", shell_quote(&session.account)),
        docker_pull: first_pullable.map(|i| format!("docker pull {host}/{}", decided.catalog.repositories[i])),
        scope,
        tried,
        try_error,
    };
    Ok(page::html(StatusCode::OK, page.render()))
}
