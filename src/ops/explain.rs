//! `registry-auth explain`: what the running server would decide for one account and a set
//! of scopes, step by step: which authenticator answered, which ACL entry decided each
//! scope (index, comment, its conditions with the request's values substituted) and what
//! is granted. Uses the same load, build and chains as `serve`.
use std::fmt::Write as _;
use std::net::IpAddr;
use std::process::ExitCode;

use crate::authn::AuthnOutcome;
use crate::authz::explain::DecisionText;
use crate::authz::ScopeDecision;
use crate::cli::ExplainArgs;
use crate::config::Config;
use crate::request::{AuthzRequest, Labels, Scope};
use crate::secret::Secret;
use crate::service::AuthService;
use crate::{app, config};

pub fn run(args: &ExplainArgs) -> ExitCode {
    let config = match config::load(&args.config) {
        Ok(config) => config,
        Err(e) => return fail(&e.to_string()),
    };
    let built = match app::build(&config) {
        Ok(built) => built,
        Err(errors) => return fail(&errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")),
    };
    let service = &built.state.service;
    if let Some(token) = &args.token {
        return super::explain_token::run(token, service, &config);
    }
    let Some(account) = &args.account else { return fail("--account is needed (or --token)") };
    let scopes = match crate::scope::parse_scopes(args.scopes.iter().map(String::as_str), &config.limits.scopes) {
        Ok(scopes) => scopes,
        Err(e) => return fail(&format!("{e}; scopes look like repository:team/app:pull,push")),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&format!("cannot start: {e}")),
    };
    let input = ExplainInput {
        account,
        password: args.password.as_deref(),
        labels: args.labels.as_deref(),
        ip: args.ip,
        service: &args.service,
    };
    match runtime.block_on(explain(&input, &scopes, service, &config)) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// Who and what to explain: the command's flags, or the console's explain form.
pub struct ExplainInput<'a> {
    pub account: &'a str,
    /// Run authentication with this password; otherwise it is skipped and `labels` assumed.
    pub password: Option<&'a str>,
    /// `key=value,key=value2`.
    pub labels: Option<&'a str>,
    /// The client address the ACL's ip conditions see.
    pub ip: Option<IpAddr>,
    pub service: &'a str,
}

/// The explanation as `registry-auth explain` prints it (the console shows the same text).
/// `Err` for input the engine cannot take (labels that are not key=value) or a backend
/// that failed.
pub async fn explain(
    input: &ExplainInput<'_>,
    scopes: &[Scope],
    service: &AuthService,
    config: &Config,
) -> Result<String, String> {
    let mut out = String::new();
    let Some((account, labels)) = authenticate(input, service, &mut out).await? else { return Ok(out) };
    let account = account.as_str();
    let ip: Option<IpAddr> = input.ip;
    for scope in scopes {
        let req = AuthzRequest {
            account,
            resource_type: &scope.resource_type,
            name: &scope.name,
            service: input.service,
            ip,
            actions: &scope.actions,
            labels: &labels,
        };
        let decision = service.authz.authorize(&req).await.map_err(|e| e.to_string())?;
        let _ = writeln!(out, "\nscope {}:{}:{}", scope.resource_type, scope.name, scope.actions.join(","));
        describe_decision(&mut out, &decision, &req, config);
    }
    Ok(out)
}

/// Which authorizer and entry decided, the entry's conditions and actions, and the grant.
fn describe_decision(out: &mut String, decision: &ScopeDecision, req: &AuthzRequest<'_>, config: &Config) {
    let entries = config.acl.as_ref().map(|a| a.entries.as_slice());
    for line in DecisionText::new(decision, req, entries).lines() {
        let _ = writeln!(out, "  {line}");
    }
}

/// Runs the authn chain with `--password`, or takes `--labels` as given: the account the
/// ACL sees (a CI token maps its own) and its labels. `None` = denied.
async fn authenticate(
    input: &ExplainInput<'_>,
    service: &AuthService,
    out: &mut String,
) -> Result<Option<(String, Labels)>, String> {
    let account = input.account;
    let Some(password) = input.password else {
        let labels = parse_labels(input.labels.unwrap_or(""))?;
        let _ = writeln!(out, "authentication: skipped (no --password); account {account:?} with labels {labels:?}");
        return Ok(Some((account.to_string(), labels)));
    };
    let decision = service.authn.authenticate(account, &Secret::new(password)).await.map_err(|e| e.to_string())?;
    let by = decision.backend.map(|(i, name)| format!("authn #{} ({name})", i + 1)).unwrap_or_default();
    match decision.outcome {
        AuthnOutcome::Allow(labels) => {
            let _ = writeln!(out, "authentication: {account:?} accepted by {by}; labels {labels:?}");
            Ok(Some((account.to_string(), labels)))
        }
        AuthnOutcome::AllowMapped(mapped) => {
            let _ = writeln!(
                out,
                "authentication: accepted by {by} as account {:?}; labels {:?}",
                mapped.account, mapped.labels
            );
            Ok(Some((mapped.account, mapped.labels)))
        }
        AuthnOutcome::Deny => {
            let _ = writeln!(out, "authentication: {account:?} rejected by {by}: wrong password -> 401, no token");
            Ok(None)
        }
        AuthnOutcome::NoMatch => {
            let _ = writeln!(out, "authentication: no backend knows {account:?} -> 401, no token");
            Ok(None)
        }
    }
}

/// `k=v,k=v2,j=w` → labels (repeated keys collect values).
fn parse_labels(text: &str) -> Result<Labels, String> {
    let mut labels = Labels::new();
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or_else(|| format!("label {pair:?} is not key=value"))?;
        labels.entry(key.to_string()).or_default().push(value.to_string());
    }
    Ok(labels)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_and_reject_garbage() {
        let labels = parse_labels("group=a,group=b,team=x").unwrap();
        assert_eq!(labels["group"], ["a", "b"]);
        assert!(parse_labels("oops").is_err());
        assert!(parse_labels("").unwrap().is_empty());
    }
}
