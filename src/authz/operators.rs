//! Who is a console operator: `console.operators`, a list of ACL-style `match` blocks on
//! `account` and `labels` (glob, `/regex/`, label values as in the ACL). An account is an
//! operator when any block matches it. Compiled once with the ACL's own engine, so a
//! pattern means exactly what it means in `acl:`; anonymous is never an operator.
use crate::request::{AuthzRequest, Labels};

use super::acl::{Acl, AclEntrySpec, AclError, MatchSpec};
use super::AuthzOutcome;

/// The action the compiled entries grant; nothing else ever sees it.
const OPERATOR: &str = "operator";

#[derive(Debug)]
pub struct Operators {
    rules: Acl,
}

impl Operators {
    /// Compiles the blocks; only `account` and `labels` may be set (an operator is a
    /// person, not a scope or an address). Errors name the block by its index.
    pub fn compile(blocks: Vec<MatchSpec>) -> Result<Operators, Vec<AclError>> {
        let mut errors = Vec::new();
        for (index, block) in blocks.iter().enumerate() {
            for (field, set) in [
                ("type", block.resource_type.is_some()),
                ("name", block.name.is_some()),
                ("service", block.service.is_some()),
                ("ip", block.ip.is_some()),
            ] {
                if set {
                    errors.push(AclError {
                        index,
                        field: field.to_string(),
                        detail: format!("operators match on account and labels only, not {field}"),
                    });
                }
            }
            if block.account.is_none() && block.labels.is_none() {
                errors.push(AclError {
                    index,
                    field: "account".to_string(),
                    detail: "an empty match would make every signed-in account an operator; name an account or labels"
                        .to_string(),
                });
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let entries = blocks
            .into_iter()
            .map(|matcher| AclEntrySpec { matcher, actions: vec![OPERATOR.to_string()], comment: None })
            .collect();
        Ok(Operators { rules: Acl::compile(entries)? })
    }

    /// No operators at all.
    pub fn none() -> Operators {
        Operators { rules: Acl::compile(Vec::new()).unwrap_or_else(|_| unreachable!("an empty ACL compiles")) }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `account` with `labels` (as its authenticator gave them) is an operator.
    pub fn includes(&self, account: &str, labels: &Labels) -> bool {
        if account.is_empty() {
            return false;
        }
        let wanted = [OPERATOR.to_string()];
        let request = AuthzRequest {
            account,
            resource_type: "console",
            name: "operators",
            service: "",
            ip: None,
            actions: &wanted,
            labels,
        };
        matches!(self.rules.decide(&request), AuthzOutcome::Decided { actions, .. } if !actions.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(account: Option<&str>, labels: &[(&str, &str)]) -> MatchSpec {
        MatchSpec {
            account: account.map(String::from),
            labels: (!labels.is_empty()).then(|| labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
            ..Default::default()
        }
    }

    fn labels(pairs: &[(&str, &[&str])]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect()
    }

    #[test]
    fn matches_accounts_and_labels_like_the_acl() {
        let ops = Operators::compile(vec![
            block(Some("admin"), &[]),
            block(Some("/^ops-[a-z]+$/"), &[]),
            block(None, &[("group", "sre")]),
        ])
        .unwrap();
        let none = Labels::new();
        assert!(ops.includes("admin", &none));
        assert!(!ops.includes("admin2", &none), "a literal is not a prefix");
        assert!(ops.includes("ops-anna", &none));
        assert!(!ops.includes("ops-Anna", &none));
        assert!(ops.includes("bob", &labels(&[("group", &["dev", "sre"])])));
        assert!(!ops.includes("bob", &labels(&[("group", &["dev"])])));
        assert!(!ops.includes("", &labels(&[("group", &["sre"])])), "anonymous never");
        let globbed = Operators::compile(vec![block(Some("team-*"), &[])]).unwrap();
        assert!(globbed.includes("team-a", &none));
        assert!(!Operators::none().includes("admin", &none));
    }

    #[test]
    fn refuses_scope_fields_and_empty_blocks() {
        let mut with_ip = block(Some("admin"), &[]);
        with_ip.ip = Some("10.0.0.0/8".into());
        let errors = Operators::compile(vec![block(None, &[]), with_ip]).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!((errors[0].index, errors[1].index, errors[1].field.as_str()), (0, 1, "ip"));
        let bad_regex = Operators::compile(vec![block(Some("/[/"), &[])]).unwrap_err();
        assert_eq!(bad_regex[0].field, "match.account", "{bad_regex:?}");
    }
}
