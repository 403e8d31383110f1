//! Every robot and every identity token of every account, each with a revoke button.
//! Revocation is the same store operation as the CLI's, audited with the operator.
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::{utc, Operator, SubNav};
use crate::identity::identity_token::{Selector, ID_LEN};
use crate::identity::robot::RobotError;
use crate::web::console::csrf;
use crate::web::console::errors::Kind;
use crate::web::console::page::{self, Layout};
use crate::web::console::ConsoleError;

struct TokenRow {
    id: String,
    account: String,
    client: String,
    created: String,
    last_used: String,
    expires: String,
}

struct RobotRow {
    name: String,
    scopes: String,
    created_by: String,
    created: String,
    last_used: String,
    expires: String,
}

#[derive(Template)]
#[template(path = "console/operators/credentials.html")]
struct CredentialsPage {
    layout: Layout,
    subnav: SubNav,
    csrf: String,
    notice: Option<&'static str>,
    tokens: Vec<TokenRow>,
    robots: Vec<RobotRow>,
}

#[derive(Deserialize)]
pub struct Done {
    #[serde(default)]
    done: String,
}

/// Fixed notices after an action (the query names one; nothing of it is echoed).
fn notice(done: &str) -> Option<&'static str> {
    match done {
        "token" => Some("The identity token was revoked; its next refresh is refused."),
        "robot" => Some("The robot was revoked; its secret stops working at once."),
        "gone" => Some("It was already gone."),
        _ => None,
    }
}

/// GET `/operators/credentials`.
pub async fn page(op: Operator, query: web::Query<Done>) -> Result<HttpResponse, ConsoleError> {
    let identity = &op.ctx.console().identity;
    let (tokens, robots) = tokio::join!(identity.tokens.list(None), identity.robots.list());
    let tokens = tokens.map_err(|e| op.store_error(&e))?;
    let robots = robots.map_err(|e| op.store_error(&e))?;
    let never = || "never".to_string();
    let page = CredentialsPage {
        layout: Layout::new(&op.session, "operators"),
        subnav: SubNav { current: "credentials" },
        csrf: op.session.csrf.clone(),
        notice: notice(&query.done),
        tokens: tokens
            .iter()
            .map(|l| TokenRow {
                id: l.info.id.clone(),
                account: l.info.record.account.clone(),
                client: l.info.record.client_id.clone(),
                created: utc(l.info.record.created),
                last_used: l.info.last_used.map_or_else(never, utc),
                expires: utc(l.info.record.expires),
            })
            .collect(),
        robots: robots
            .iter()
            .map(|r| RobotRow {
                name: r.record.name.clone(),
                scopes: r.record.scopes.join(" "),
                created_by: r.record.created_by.clone(),
                created: utc(r.record.created),
                last_used: r.last_used.map_or_else(never, utc),
                expires: r.record.expires.map_or_else(never, utc),
            })
            .collect(),
    };
    Ok(page::html(StatusCode::OK, page.render()))
}

#[derive(Deserialize)]
pub struct RevokeToken {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

/// POST `/operators/identity-tokens/revoke`: one token by its full listed id.
pub async fn revoke_token(op: Operator, form: web::Form<RevokeToken>) -> Result<HttpResponse, ConsoleError> {
    csrf::verify(&op.session, &form.csrf)?;
    let id = form.id.trim();
    if id.len() != ID_LEN || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ConsoleError::new(
            Kind::BadRequest("That is not an identity token id as listed."),
            Some(op.session.site.clone()),
        ));
    }
    let tokens = &op.ctx.console().identity.tokens;
    let revoked = tokens
        .revoke(&Selector::Id(id.to_string()), &op.audit_name(), "console")
        .await
        .map_err(|e| op.store_error(&e))?;
    let done = if revoked.is_empty() { "gone" } else { "token" };
    Ok(page::see_other(&format!("{}/operators/credentials?done={done}", op.session.site.prefix)))
}

#[derive(Deserialize)]
pub struct RevokeRobot {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// POST `/operators/robots/revoke`: one robot by name.
pub async fn revoke_robot(op: Operator, form: web::Form<RevokeRobot>) -> Result<HttpResponse, ConsoleError> {
    csrf::verify(&op.session, &form.csrf)?;
    let robots = &op.ctx.console().identity.robots;
    let done = match robots.revoke(&form.name, &op.audit_name(), "console").await {
        Ok(()) => "robot",
        Err(RobotError::Store(e)) => return Err(op.store_error(&e)),
        Err(_) => "gone",
    };
    Ok(page::see_other(&format!("{}/operators/credentials?done={done}", op.session.site.prefix)))
}
