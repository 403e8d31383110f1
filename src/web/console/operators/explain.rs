//! "Explain" for any account: the decision `/auth` would make for an account, its labels
//! and scopes, step by step — the text of `registry-auth explain`, from the same engine
//! (`ops::explain`), shown escaped in the page.
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{Operator, SubNav};
use crate::ops::explain::{explain, ExplainInput};
use crate::web::console::page::{self, Layout};
use crate::web::console::ConsoleError;

const DEFAULT_SERVICE: &str = "Docker registry";
/// Longest form field taken; scope lengths and counts are the config's `limits`.
const MAX_FIELD: usize = 4096;

#[derive(Deserialize, Default)]
pub struct Query {
    account: Option<String>,
    #[serde(default)]
    labels: String,
    #[serde(default)]
    scopes: String,
    service: Option<String>,
    #[serde(default)]
    ip: String,
}

#[derive(Template)]
#[template(path = "console/operators/explain.html")]
struct ExplainPage {
    layout: Layout,
    subnav: SubNav,
    account: String,
    labels: String,
    scopes: String,
    service: String,
    ip: String,
    /// The explanation, or why there is none.
    result: Option<Result<String, String>>,
}

fn field(text: &str) -> String {
    text.chars().take(MAX_FIELD).collect()
}

/// GET `/operators/explain?account=&labels=&scopes=&service=&ip=`: the form, and with an
/// account, the explanation.
pub async fn page(op: Operator, query: web::Query<Query>) -> Result<HttpResponse, ConsoleError> {
    let account = query.account.as_deref().map(field);
    let labels = field(&query.labels);
    let scopes = field(&query.scopes);
    let service = query.service.as_deref().map_or_else(|| DEFAULT_SERVICE.to_string(), field);
    let ip = field(query.ip.trim());
    let result = match &account {
        None => None,
        Some(account) => Some(run(&op, account, &labels, &scopes, &service, &ip).await),
    };
    let page = ExplainPage {
        layout: Layout::new(&op.session, "operators"),
        subnav: SubNav { current: "explain" },
        account: account.unwrap_or_default(),
        labels,
        scopes,
        service,
        ip,
        result,
    };
    Ok(page::html(StatusCode::OK, page.render()))
}

async fn run(
    op: &Operator,
    account: &str,
    labels: &str,
    scopes: &str,
    service: &str,
    ip: &str,
) -> Result<String, String> {
    let Some(config) = op.ctx.console().ops.config() else {
        return Err("the running config is not available to explain".to_string());
    };
    let ip = match ip {
        "" => None,
        text => Some(text.parse().map_err(|_| "the address is not an IP address".to_string())?),
    };
    let parsed = crate::scope::parse_scopes(scopes.split_whitespace(), &config.limits.scopes)
        .map_err(|e| format!("{e}; scopes look like repository:team/app:pull,push"))?;
    if parsed.is_empty() {
        return Err("give at least one scope, e.g. repository:team/app:pull,push".to_string());
    }
    let input = ExplainInput { account, password: None, labels: Some(labels.trim()), ip, service };
    explain(&input, &parsed, op.ctx.service(), config).await
}
