//! My credentials (issue item 4): the account's identity tokens (the `docker login`s it
//! made) with revoke, and its CI credentials: robots it owns, created here for chosen
//! repositories and actions with an expiry, shown once, listed and revoked.
//!
//! Never broader than the account: at creation every requested repository and action is
//! asked of the token endpoint's authz chain for this account and its labels, and refused
//! unless granted. At each later login (`service::stored_credentials`) the robot gets its
//! owner's *current* ACL answer narrowed by its own scopes, so it never outlives its
//! owner's rights. Repositories are named exactly (no wildcards): a glob cannot be checked
//! against the ACL once for every name it may match later.
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::errors::Kind;
use super::home::utc;
use super::page::{self, Layout};
use super::{csrf, ConsoleCtx, ConsoleError, ConsoleSession};
use crate::identity::identity_token::Selector;
use crate::identity::robot::{valid_name, NewRobot, RobotError, RobotOwner, ACCOUNT_PREFIX};
use crate::request::AuthzRequest;

const MAX_REPOSITORIES: usize = 32;
const MAX_DAYS: u64 = 365;

struct TokenRow {
    id: String,
    client: String,
    created: String,
    last_used: String,
}

struct RobotRow {
    name: String,
    login: String,
    scopes: String,
    created: String,
    expires: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "console/credentials.html")]
struct CredentialsPage {
    layout: Layout,
    csrf: String,
    tokens: Vec<TokenRow>,
    robots: Vec<RobotRow>,
    error: String,
    notice: String,
    form: CreateForm,
}

#[derive(Template)]
#[template(path = "console/credential_created.html")]
struct CreatedPage {
    layout: Layout,
    login: String,
    secret: String,
    docker_login: String,
    scopes: String,
    expires: String,
}

#[derive(Deserialize, Default, Clone)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    repositories: String,
    #[serde(default)]
    pull: String,
    #[serde(default)]
    push: String,
    #[serde(default)]
    days: String,
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
}

fn never(t: Option<i64>) -> String {
    t.map_or_else(|| "never".to_string(), utc)
}

/// GET `/credentials`.
pub async fn page(ctx: ConsoleCtx, session: ConsoleSession) -> Result<HttpResponse, ConsoleError> {
    let form = CreateForm { pull: "on".into(), days: "90".into(), ..Default::default() };
    render(&ctx, &session, StatusCode::OK, String::new(), String::new(), form).await
}

async fn render(
    ctx: &ConsoleCtx,
    session: &ConsoleSession,
    status: StatusCode,
    error: String,
    notice: String,
    form: CreateForm,
) -> Result<HttpResponse, ConsoleError> {
    let identity = &ctx.console().identity;
    let store_err = |e: &dyn std::fmt::Display| ConsoleError::store(&session.site, e);
    let tokens = identity.tokens.list(Some(&session.account)).await.map_err(|e| store_err(&e))?;
    let tokens = tokens
        .into_iter()
        .map(|t| TokenRow {
            id: t.info.id.clone(),
            client: if t.info.record.client_id.is_empty() {
                "unnamed client".into()
            } else {
                t.info.record.client_id.clone()
            },
            created: utc(t.info.record.created),
            last_used: never(t.info.last_used),
        })
        .collect();
    let robots = identity.robots.list().await.map_err(|e| store_err(&e))?;
    let robots = robots
        .into_iter()
        .filter(|r| r.record.owner.as_ref().is_some_and(|o| o.account == session.account))
        .map(|r| RobotRow {
            login: format!("{ACCOUNT_PREFIX}{}", r.record.name),
            name: r.record.name.clone(),
            scopes: r.record.scopes.join(" "),
            created: utc(r.record.created),
            expires: never(r.record.expires),
            last_used: never(r.last_used),
        })
        .collect();
    let page = CredentialsPage {
        layout: Layout::new(session, "credentials"),
        csrf: session.csrf.clone(),
        tokens,
        robots,
        error,
        notice,
        form,
    };
    Ok(page::html(status, page.render()))
}

/// POST `/credentials/tokens/revoke`: one of the account's own identity tokens.
pub async fn revoke_token(
    ctx: ConsoleCtx,
    session: ConsoleSession,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, ConsoleError> {
    csrf::verify(&session, &form.csrf)?;
    let tokens = &ctx.console().identity.tokens;
    let own = tokens.list(Some(&session.account)).await.map_err(|e| ConsoleError::store(&session.site, &e))?;
    let Some(token) = own.iter().find(|t| !form.id.is_empty() && t.info.id == form.id) else {
        return Err(ConsoleError::new(
            Kind::BadRequest("No such identity token of yours (revoked already?)."),
            Some(session.site.clone()),
        ));
    };
    tokens
        .revoke(&Selector::Id(token.info.id.clone()), &session.audit_name(), "console")
        .await
        .map_err(|e| ConsoleError::store(&session.site, &e))?;
    Ok(page::see_other(&format!("{}/credentials", session.site.prefix)))
}

/// POST `/credentials/robots/revoke`: one of the account's own CI credentials.
pub async fn revoke_robot(
    ctx: ConsoleCtx,
    session: ConsoleSession,
    form: web::Form<RevokeForm>,
) -> Result<HttpResponse, ConsoleError> {
    csrf::verify(&session, &form.csrf)?;
    let robots = &ctx.console().identity.robots;
    let listed = robots.list().await.map_err(|e| ConsoleError::store(&session.site, &e))?;
    let owned = listed
        .iter()
        .any(|r| r.record.name == form.id && r.record.owner.as_ref().is_some_and(|o| o.account == session.account));
    if !owned {
        return Err(ConsoleError::new(
            Kind::BadRequest("No such CI credential of yours (revoked already?)."),
            Some(session.site.clone()),
        ));
    }
    match robots.revoke(&form.id, &session.audit_name(), "console").await {
        Ok(()) | Err(RobotError::NotFound(_)) => {}
        Err(e) => return Err(ConsoleError::store(&session.site, &e)),
    }
    Ok(page::see_other(&format!("{}/credentials", session.site.prefix)))
}

/// The form's repositories, actions and lifetime, or what is wrong with them.
fn parse(form: &CreateForm) -> Result<(Vec<String>, Vec<String>, u64), String> {
    if !valid_name(&form.name) {
        return Err(
            "Name: use 1 to 64 characters a-z, 0-9, '.', '_' or '-', starting and ending with a letter or digit."
                .into(),
        );
    }
    let mut repositories: Vec<String> = form
        .repositories
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect();
    repositories.sort();
    repositories.dedup();
    if repositories.is_empty() || repositories.len() > MAX_REPOSITORIES {
        return Err(format!("Repositories: name 1 to {MAX_REPOSITORIES} repositories, one per line."));
    }
    for repo in &repositories {
        let ok = repo.len() <= 255
            && repo.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
            && !repo.starts_with('/')
            && !repo.ends_with('/');
        if !ok {
            return Err("Repositories: name each repository exactly, e.g. team/app (lowercase letters, digits, . _ - /; no wildcards).".into());
        }
    }
    let actions: Vec<String> = [("pull", &form.pull), ("push", &form.push)]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(a, _)| a.to_string())
        .collect();
    if actions.is_empty() {
        return Err("Actions: choose pull, push or both.".into());
    }
    let days: u64 = form.days.trim().parse().unwrap_or(0);
    if !(1..=MAX_DAYS).contains(&days) {
        return Err(format!("Expires: give a number of days from 1 to {MAX_DAYS}."));
    }
    Ok((repositories, actions, days))
}

/// POST `/credentials/robots`: a new CI credential, shown once.
pub async fn create_robot(
    req: HttpRequest,
    ctx: ConsoleCtx,
    session: ConsoleSession,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, ConsoleError> {
    csrf::verify(&session, &form.csrf)?;
    let form = form.into_inner();
    let refuse = |why: String| render(&ctx, &session, StatusCode::BAD_REQUEST, why, String::new(), form.clone());
    let (repositories, actions, days) = match parse(&form) {
        Ok(parsed) => parsed,
        Err(why) => return refuse(why).await,
    };
    let ip = super::registry_view::client_ip(&ctx, &req);
    for repo in &repositories {
        let authz = AuthzRequest {
            account: &session.account,
            resource_type: "repository",
            name: repo,
            service: "",
            ip,
            actions: &actions,
            labels: &session.labels,
        };
        let decision = match ctx.service().authz.authorize(&authz).await {
            Ok(decision) => decision,
            Err(e) => {
                tracing::error!(error = %e, "console: authorization backend error while checking a CI credential");
                let why = "The access rules cannot be checked right now. Try again in a moment.".to_string();
                return render(&ctx, &session, StatusCode::SERVICE_UNAVAILABLE, why, String::new(), form).await;
            }
        };
        let granted = |a: &String| decision.actions.iter().any(|g| g == a || g == "*");
        if let Some(missing) = actions.iter().find(|a| !granted(a)) {
            let why = format!("You may not {missing} {repo} yourself, so a CI credential of yours cannot either.");
            return render(&ctx, &session, StatusCode::FORBIDDEN, why, String::new(), form).await;
        }
    }
    let scopes: Vec<String> = repositories.iter().map(|r| format!("repository:{r}:{}", actions.join(","))).collect();
    let by_password = session.via == "password";
    let owner = RobotOwner {
        account: session.account.clone(),
        backend: if by_password { session.backend.clone() } else { String::new() },
        labels: (!by_password || !ctx.service().authn.can_lookup(&session.backend)).then(|| session.labels.clone()),
    };
    let new = NewRobot {
        name: form.name.clone(),
        scopes: scopes.clone(),
        lifetime: Some(std::time::Duration::from_secs(days * 86_400)),
        description: format!("CI credential of {}", session.account),
        created_by: session.account.clone(),
        owner: Some(owner),
    };
    let (record, secret) = match ctx.console().identity.robots.create(&new, &session.audit_name(), "console").await {
        Ok(created) => created,
        Err(RobotError::Exists(_)) => {
            return refuse(format!("Name: a credential named {} exists already; choose another name.", form.name)).await
        }
        Err(e @ (RobotError::Store(_) | RobotError::Rng(_))) => return Err(ConsoleError::store(&session.site, &e)),
        Err(e) => return refuse(e.to_string()).await,
    };
    let login = format!("{ACCOUNT_PREFIX}{}", record.name);
    let host = session.site.registry_host.clone().unwrap_or_else(|| "<your registry>".to_string());
    let page = CreatedPage {
        layout: Layout::new(&session, "credentials"),
        docker_login: format!("docker login {host} -u '{login}' -p {secret}"),
        login,
        secret,
        scopes: scopes.join(" "),
        expires: never(record.expires),
    };
    Ok(page::html(StatusCode::OK, page.render()))
}
