//! `ext_authz`: an external program decides each scope (parity.md §4.9). Stdin is the JSON
//! `{"Account","Type","Name","Service","IP","Actions","Labels"}` (no trailing newline);
//! exit 0 grants every requested action, 1 grants none (and ends the chain), anything else
//! (or a timeout) fails the request closed. Stdout is ignored.
use async_trait::async_trait;
use serde::Serialize;

use super::{Authorizer, AuthzError, AuthzOutcome};
use crate::config::ext::ExtConfig;
use crate::extprog::Runner;
use crate::request::{AuthzRequest, Labels};

/// Go's JSON of docker_auth's `AuthRequestInfo`: IP is `""` when unknown, empty labels are
/// `null` (a nil Go map).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Input<'a> {
    account: &'a str,
    #[serde(rename = "Type")]
    resource_type: &'a str,
    name: &'a str,
    service: &'a str,
    #[serde(rename = "IP")]
    ip: String,
    actions: &'a [String],
    labels: Option<&'a Labels>,
}

pub struct ExtAuthz {
    runner: Runner,
}

impl ExtAuthz {
    pub fn new(config: &ExtConfig) -> ExtAuthz {
        ExtAuthz { runner: Runner::new("ext_authz", config) }
    }
}

#[async_trait]
impl Authorizer for ExtAuthz {
    fn name(&self) -> &'static str {
        "ext_authz"
    }

    async fn authorize(&self, req: &AuthzRequest<'_>) -> Result<AuthzOutcome, AuthzError> {
        let input = serde_json::to_vec(&input(req)).map_err(|e| AuthzError(e.to_string()))?;
        let finished = self.runner.run(&input).await.map_err(|e| AuthzError(e.to_string()))?;
        match finished.code {
            Some(0) => Ok(AuthzOutcome::Decided { actions: req.actions.to_vec(), rule: None }),
            Some(1) => Ok(AuthzOutcome::Decided { actions: Vec::new(), rule: None }),
            Some(code) => Err(AuthzError(format!("bad return code from command: {code}"))),
            None => Err(AuthzError("bad return code from command: killed by a signal".into())),
        }
    }
}

fn input<'a>(req: &'a AuthzRequest<'a>) -> Input<'a> {
    Input {
        account: req.account,
        resource_type: req.resource_type,
        name: req.name,
        service: req.service,
        ip: req.ip.map(|ip| ip.to_canonical().to_string()).unwrap_or_default(),
        actions: req.actions,
        labels: (!req.labels.is_empty()).then_some(req.labels),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_json_has_docker_auths_keys_and_shapes() {
        let actions = vec!["pull".to_string(), "push".to_string()];
        let none = Labels::new();
        let mut req = AuthzRequest {
            account: "alice",
            resource_type: "repository",
            name: "team/app",
            service: "registry",
            ip: None,
            actions: &actions,
            labels: &none,
        };
        let text = serde_json::to_string(&input(&req)).unwrap();
        assert_eq!(
            text,
            r#"{"Account":"alice","Type":"repository","Name":"team/app","Service":"registry","IP":"","Actions":["pull","push"],"Labels":null}"#
        );
        let labels = Labels::from([("group".to_string(), vec!["devs".to_string()])]);
        req.labels = &labels;
        req.ip = Some("::ffff:10.0.0.1".parse().unwrap());
        let text = serde_json::to_string(&input(&req)).unwrap();
        assert!(text.ends_with(r#""IP":"10.0.0.1","Actions":["pull","push"],"Labels":{"group":["devs"]}}"#), "{text}");
    }
}
