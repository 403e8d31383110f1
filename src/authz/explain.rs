//! How a decision reads, in the words of `registry-auth explain`: which authorizer and entry
//! decided (index, comment), the entry's conditions with the request's values substituted,
//! what it allows and what was granted. The CLI prints these lines; the console shows them.
use super::acl::{AclEntrySpec, MatchSpec};
use super::ScopeDecision;
use crate::request::AuthzRequest;

/// What `explain` says when nothing matched.
pub const DEFAULT_DENY: &str = "no ACL entry matched: denied by default";

/// One decision, explained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionText {
    /// `acl[3] ("comment")` or `ext`; `None`: nothing matched ([`DEFAULT_DENY`]).
    pub decided_by: Option<String>,
    /// The deciding entry's conditions, `{name: "team/*", ...}`.
    pub matched: Option<String>,
    /// The deciding entry's actions, `[pull, push]`.
    pub entry_allows: Option<String>,
    /// `pull,push` or `nothing`.
    pub granted: String,
}

impl DecisionText {
    /// `entries`: the static ACL's entries, to show the deciding entry's conditions.
    pub fn new(decision: &ScopeDecision, req: &AuthzRequest<'_>, entries: Option<&[AclEntrySpec]>) -> DecisionText {
        let mut text = DecisionText {
            decided_by: None,
            matched: None,
            entry_allows: None,
            granted: if decision.actions.is_empty() { "nothing".to_string() } else { decision.actions.join(",") },
        };
        match &decision.decided_by {
            Some((_, backend, Some(rule))) => {
                let comment = rule.comment.as_deref().map(|c| format!(" ({c:?})")).unwrap_or_default();
                text.decided_by = Some(format!("{backend}[{}]{comment}", rule.index));
                if let Some(spec) = entries.and_then(|e| e.get(rule.index)) {
                    text.matched = Some(describe(&spec.matcher, req));
                    text.entry_allows = Some(format!("[{}]", spec.actions.join(", ")));
                }
            }
            Some((_, backend, None)) => text.decided_by = Some(backend.to_string()),
            None => {}
        }
        text
    }

    /// The lines `explain` prints under a scope.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::with_capacity(4);
        match &self.decided_by {
            Some(by) => lines.push(format!("decided by: {by}")),
            None => lines.push(DEFAULT_DENY.to_string()),
        }
        if let Some(matched) = &self.matched {
            lines.push(format!("match: {matched}"));
        }
        if let Some(allows) = &self.entry_allows {
            lines.push(format!("entry allows: {allows}"));
        }
        lines.push(format!("granted: {}", self.granted));
        lines
    }
}

/// The entry's conditions with `${account}`, `${type}`, `${name}`, `${service}` replaced
/// by the request's values (label and capture placeholders are shown as written).
fn describe(spec: &MatchSpec, req: &AuthzRequest<'_>) -> String {
    let substitute = |p: &str| {
        p.replace("${account}", req.account)
            .replace("${type}", req.resource_type)
            .replace("${name}", req.name)
            .replace("${service}", req.service)
    };
    let mut parts = Vec::new();
    for (key, value) in [
        ("account", &spec.account),
        ("type", &spec.resource_type),
        ("name", &spec.name),
        ("service", &spec.service),
        ("ip", &spec.ip),
    ] {
        if let Some(value) = value {
            let shown = substitute(value);
            let note = if &shown != value { format!(" (written {value:?})") } else { String::new() };
            parts.push(format!("{key}: {shown:?}{note}"));
        }
    }
    for (key, value) in spec.labels.iter().flatten() {
        parts.push(format!("labels.{key}: {value:?}"));
    }
    format!("{{{}}}", parts.join(", "))
}
