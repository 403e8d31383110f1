//! The recent audit events the store keeps (newest first), filtered by account, outcome
//! and repository, at most `limit` of them. Every text is shown escaped: accounts,
//! scopes and addresses are client-supplied.
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{Operator, SubNav};
use crate::recent_events::{self, Filter, RecentEvent, CAP};
use crate::web::console::page::{self, Layout};
use crate::web::console::ConsoleError;

/// The outcomes the filter offers.
const OUTCOMES: [&str; 8] = ["issued", "denied", "created", "used", "rotated", "revoked", "locked", "unlocked"];
const DEFAULT_LIMIT: usize = 100;
/// Longest filter text taken (anything longer cannot match a kept field).
const MAX_FILTER: usize = 256;

#[derive(Deserialize, Default)]
pub struct Query {
    #[serde(default)]
    account: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    repository: String,
    #[serde(default)]
    limit: String,
}

struct Row {
    at: String,
    event: RecentEvent,
    /// What to show under "detail": reason, grant, id, operator.
    what: Vec<(&'static str, String)>,
}

#[derive(Template)]
#[template(path = "console/operators/audit.html")]
struct AuditPage {
    layout: Layout,
    subnav: SubNav,
    account: String,
    outcome: String,
    repository: String,
    limit: usize,
    cap: usize,
    outcomes: [&'static str; 8],
    rows: Vec<Row>,
}

fn wanted(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.chars().take(MAX_FILTER).collect())
}

/// GET `/operators/audit?account=&outcome=&repository=&limit=`.
pub async fn page(op: Operator, query: web::Query<Query>) -> Result<HttpResponse, ConsoleError> {
    let limit = query.limit.trim().parse::<usize>().ok().filter(|n| *n > 0).unwrap_or(DEFAULT_LIMIT).min(CAP);
    let outcome = wanted(&query.outcome).filter(|o| OUTCOMES.contains(&o.as_str()));
    let filter = Filter {
        account: wanted(&query.account),
        outcome: outcome.clone(),
        repository: wanted(&query.repository),
        limit,
    };
    // Events of the last moments (this operator's own actions among them) are still gathering.
    recent_events::recorder::written().await;
    let events = recent_events::recent(&op.ctx.console().store, &filter).await.map_err(|e| op.store_error(&e))?;
    let rows = events.into_iter().map(row).collect();
    let page = AuditPage {
        layout: Layout::new(&op.session, "operators"),
        subnav: SubNav { current: "audit" },
        account: filter.account.unwrap_or_default(),
        outcome: outcome.unwrap_or_default(),
        repository: filter.repository.unwrap_or_default(),
        limit,
        cap: CAP,
        outcomes: OUTCOMES,
        rows,
    };
    Ok(page::html(StatusCode::OK, page.render()))
}

fn row(event: RecentEvent) -> Row {
    let seconds = event.at.div_euclid(1000);
    let at = time::OffsetDateTime::from_unix_timestamp(seconds).map_or_else(
        |_| String::new(),
        |t| {
            format!(
                "{}-{:02}-{:02} {:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        },
    );
    let mut what = Vec::new();
    for (name, value) in [
        ("reason", &event.reason),
        ("credential", &event.credential),
        ("asked", &event.requested),
        ("granted", &event.granted),
        ("rules", &event.rules),
        ("id", &event.id),
        ("by", &event.operator),
        ("detail", &event.detail),
    ] {
        if !value.is_empty() {
            what.push((name, value.clone()));
        }
    }
    Row { at, event, what }
}
