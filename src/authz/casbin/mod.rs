//! `casbin_authz` (parity.md §4.9): a casbin enforcer decides each requested action with
//! docker_auth's request `(account, type, name, service, ip, action, labels)`, where `ip` is
//! `<nil>` when unknown and `labels` is the JSON of the user's labels (`null` when none).
//! The granted actions are the allowed subset; casbin never answers "no match", and it comes
//! last in the chain, as in docker_auth.
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};

use async_trait::async_trait;
use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter};

use super::{Authorizer, AuthzError, AuthzOutcome};
use crate::config::casbin::CasbinConfig;
use crate::request::AuthzRequest;

mod functions;
mod policy;

/// docker_auth's request definition has these seven fields, in this order.
const REQUEST_FIELDS: usize = 7;

/// Why the model or the policy cannot be used; `key` is the config key to blame.
#[derive(Debug)]
pub struct LoadError {
    pub key: &'static str,
    pub message: String,
}

pub struct CasbinAuthz {
    enforcer: Enforcer,
}

impl CasbinAuthz {
    /// Reads, parses and checks the model and the policy (no request can fail on them later
    /// except through a matcher that errors at run time).
    pub fn load(config: &CasbinConfig) -> Result<CasbinAuthz, LoadError> {
        let model_err = |message: String| LoadError { key: "model_path", message };
        let policy_err = |message: String| LoadError { key: "policy_path", message };
        let model_text = read(&config.model_path).map_err(model_err)?;
        let policy_text = read(&config.policy_path).map_err(policy_err)?;
        let rules =
            policy::parse(&policy_text).map_err(|e| policy_err(format!("{}: {e}", config.policy_path.display())))?;
        let enforcer = run_to_completion(async move {
            let model = DefaultModel::from_str(&model_text).await.map_err(|e| model_err(e.to_string()))?;
            Enforcer::new(model, MemoryAdapter::default()).await.map_err(|e| model_err(e.to_string()))
        })
        .map_err(model_err)??;
        let mut authz = CasbinAuthz { enforcer };
        functions::register(&mut authz.enforcer);
        authz.check_request_definition().map_err(model_err)?;
        authz.add_rules(rules).map_err(|e| policy_err(format!("{}: {e}", config.policy_path.display())))?;
        authz.probe().map_err(model_err)?;
        Ok(authz)
    }

    fn check_request_definition(&self) -> Result<(), String> {
        let fields = self.enforcer.get_model().get_model().get("r").and_then(|r| r.get("r")).map(|r| r.tokens.len());
        match fields {
            Some(REQUEST_FIELDS) => Ok(()),
            found => Err(format!(
                "the request definition has {} fields; docker_auth's casbin requests have 7: r = account, type, name, service, ip, action, labels",
                found.unwrap_or(0)
            )),
        }
    }

    /// Puts the rules into the model as casbin's file adapter would, after checking each
    /// one's type and width (and its labels, when the matcher calls `labelMatch`).
    fn add_rules(&mut self, rules: Vec<policy::Rule>) -> Result<(), String> {
        let labels_column = self.labels_column();
        let model = self.enforcer.get_mut_model().get_mut_model();
        for rule in rules {
            let section = if rule.ptype.starts_with('p') { "p" } else { "g" };
            let assertion = model
                .get_mut(section)
                .and_then(|s| s.get_mut(&rule.ptype))
                .filter(|_| rule.ptype.starts_with(['p', 'g']))
                .ok_or_else(|| {
                    format!("line {}: policy type {:?} is not defined in the model", rule.line, rule.ptype)
                })?;
            let width = if section == "p" { assertion.tokens.len() } else { assertion.value.matches('_').count() };
            if rule.values.len() != width {
                return Err(format!(
                    "line {}: {} has {} values, the model defines {width}",
                    rule.line,
                    rule.ptype,
                    rule.values.len()
                ));
            }
            if let Some(column) = labels_column.filter(|_| rule.ptype == "p") {
                functions::policy_labels(&rule.values[column]).map_err(|e| format!("line {}: {e}", rule.line))?;
            }
            assertion.policy.insert(rule.values);
        }
        self.enforcer.build_role_links().map_err(|e| e.to_string())
    }

    /// The `p` column passed to `labelMatch(r.x, p.y)` in the matcher, if any.
    fn labels_column(&self) -> Option<usize> {
        let model = self.enforcer.get_model().get_model();
        let matcher = &model.get("m")?.get("m")?.value;
        let call = regex::Regex::new(r"labelMatch\(\s*r[._]\w+\s*,\s*p[._](\w+)\s*\)").ok()?;
        let name = format!("p_{}", call.captures(matcher)?.get(1)?.as_str());
        model.get("p")?.get("p")?.tokens.iter().position(|t| *t == name)
    }

    /// One evaluation at load, so that a matcher calling an unknown function or comparing
    /// undefined fields stops the start instead of failing every request.
    fn probe(&self) -> Result<(), String> {
        let args = ("", "", "", "", "<nil>", "", "null");
        match catch_unwind(AssertUnwindSafe(|| self.enforcer.enforce(args))) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("the matcher cannot be evaluated: {e}")),
            Err(_) => Err("the matcher cannot be evaluated (casbin panicked, see above)".into()),
        }
    }

    fn allows(&self, req: &AuthzRequest<'_>, ip: &str, labels: &str, action: &str) -> Result<bool, AuthzError> {
        let args = (req.account, req.resource_type, req.name, req.service, ip, action, labels);
        match catch_unwind(AssertUnwindSafe(|| self.enforcer.enforce(args))) {
            Ok(result) => result.map_err(|e| AuthzError(format!("casbin: {e}"))),
            Err(_) => Err(AuthzError("casbin panicked while evaluating the matcher; request refused".into())),
        }
    }
}

#[async_trait]
impl Authorizer for CasbinAuthz {
    fn name(&self) -> &'static str {
        "casbin_authz"
    }

    async fn authorize(&self, req: &AuthzRequest<'_>) -> Result<AuthzOutcome, AuthzError> {
        let ip = req.ip.map_or_else(|| "<nil>".to_string(), |ip| ip.to_canonical().to_string());
        let labels = if req.labels.is_empty() {
            "null".to_string()
        } else {
            serde_json::to_string(req.labels).map_err(|e| AuthzError(e.to_string()))?
        };
        let mut actions = Vec::new();
        for action in req.actions {
            if self.allows(req, &ip, &labels, action)? {
                actions.push(action.clone());
            }
        }
        Ok(AuthzOutcome::Decided { actions, rule: None })
    }
}

fn read(path: &std::path::Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("could not read {}: {e}", path.display()))
}

/// casbin's constructors are async although they do no I/O here (the model is text and the
/// adapter is in memory); run them on a runtime of their own so that loading works from
/// `serve`, `check-config` and a reload inside the server's runtime alike.
fn run_to_completion<F>(future: F) -> Result<F::Output, String>
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .map_err(|e| format!("cannot start a runtime to load casbin: {e}"))?;
                Ok(runtime.block_on(future))
            })
            .join()
            .map_err(|_| "casbin panicked while loading the model".to_string())?
    })
}
