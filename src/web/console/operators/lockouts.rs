//! The accounts and client addresses locked out now (brute-force protection), each with
//! an unlock button: the counter goes, the next login is checked normally. Audited.
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{span, Operator, SubNav};
use crate::identity::lockout::Subject;
use crate::identity::lockouts::{self, LOCKED_LISTED};
use crate::web::console::csrf;
use crate::web::console::errors::Kind;
use crate::web::console::page::{self, Layout};
use crate::web::console::ConsoleError;

struct Row {
    scope: &'static str,
    name: String,
    member: String,
    failures: u64,
    ends_in: String,
}

#[derive(Template)]
#[template(path = "console/operators/lockouts.html")]
struct LockoutsPage {
    layout: Layout,
    subnav: SubNav,
    csrf: String,
    notice: Option<&'static str>,
    enabled: bool,
    window: String,
    per_ip: u64,
    per_account: u64,
    listed_at_most: usize,
    rows: Vec<Row>,
}

#[derive(Deserialize)]
pub struct Done {
    #[serde(default)]
    done: String,
}

/// GET `/operators/lockouts`.
pub async fn page(op: Operator, query: web::Query<Done>) -> Result<HttpResponse, ConsoleError> {
    let lockout = &op.ctx.service().lockout;
    let locked = lockouts::list(lockout).await.map_err(|e| op.store_error(&e))?;
    let config = lockout.config();
    let page = LockoutsPage {
        layout: Layout::new(&op.session, "operators"),
        subnav: SubNav { current: "lockouts" },
        csrf: op.session.csrf.clone(),
        notice: match query.done.as_str() {
            "unlocked" => Some("Unlocked: the next login is checked normally."),
            "gone" => Some("It was no longer locked."),
            _ => None,
        },
        enabled: lockout.enabled(),
        window: span(config.window),
        per_ip: config.max_failures_per_ip,
        per_account: config.max_failures_per_account,
        listed_at_most: LOCKED_LISTED,
        rows: locked
            .iter()
            .map(|l| Row {
                scope: if matches!(l.subject, Subject::Account(_)) { "account" } else { "address" },
                name: l.subject.name().to_string(),
                member: l.subject.member(),
                failures: l.failures,
                ends_in: span(l.resets_in),
            })
            .collect(),
    };
    Ok(page::html(StatusCode::OK, page.render()))
}

#[derive(Deserialize)]
pub struct Unlock {
    #[serde(default)]
    csrf: String,
    /// `account:NAME` or `ip:GROUP`, as listed.
    #[serde(default)]
    lockout: String,
}

/// POST `/operators/lockouts/unlock`.
pub async fn unlock(op: Operator, form: web::Form<Unlock>) -> Result<HttpResponse, ConsoleError> {
    csrf::verify(&op.session, &form.csrf)?;
    let Some(subject) = Subject::from_member(&form.lockout) else {
        return Err(ConsoleError::new(
            Kind::BadRequest("That is not a lockout as listed."),
            Some(op.session.site.clone()),
        ));
    };
    let lockout = &op.ctx.service().lockout;
    let had = lockouts::unlock(lockout, &subject, &op.audit_name(), "console").await.map_err(|e| op.store_error(&e))?;
    let done = if had { "unlocked" } else { "gone" };
    Ok(page::see_other(&format!("{}/operators/lockouts?done={done}", op.session.site.prefix)))
}
