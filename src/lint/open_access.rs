//! Configs that let in more than they seem to: ACL entries that give anonymous clients
//! write access, users that log in with any password (or none), account regexes that
//! match more names than the one they spell. Each finding names the line and the fix.
use regex_syntax::hir::Look;

use crate::authz::acl::{AclEntrySpec, MatchSpec, VAR_KEYS};
use crate::authz::pattern::{go_regex, regex_body, Pattern};
use crate::config::{AclSource, Config, Diagnostics};
use crate::request::Labels;

/// Actions that change the registry; anonymous clients should not have them.
const WRITE_ACTIONS: &[&str] = &["push", "delete", "*"];

/// Every finding of this module.
pub fn check(config: &Config, diags: &mut Diagnostics) {
    users_without_password(config, diags);
    if let Some(acl) = &config.acl {
        if let Some(labels) = anonymous_labels(config) {
            anonymous_writes(acl, &labels, diags);
        }
        unanchored_account_regexes(acl, diags);
    }
}

/// The labels of the anonymous user when `"": {}` (no password) lets clients without
/// credentials in; `None` when anonymous logins are refused.
fn anonymous_labels(config: &Config) -> Option<Labels> {
    let anonymous = config.users.as_ref()?.get("")?;
    anonymous.password.is_none().then(|| anonymous.labels.clone())
}

fn users_without_password(config: &Config, diags: &mut Diagnostics) {
    for (name, user) in config.users.iter().flatten().filter(|(name, u)| !name.is_empty() && u.password.is_none()) {
        diags
            .warn(
                format!("users.{name:?}"),
                user.password_line,
                format!(
                    "user {name:?} has no password: any password logs in as {name:?}, and so does a request without credentials (?account={name})"
                ),
            )
            .hint(format!("add password: with a bcrypt hash from `registry-auth hash-password {name}`"));
    }
}

/// Entries an anonymous request can reach that grant write actions. Stops at the first
/// entry that matches every anonymous request: nothing below it is reached by anonymous.
fn anonymous_writes(acl: &AclSource, labels: &Labels, diags: &mut Diagnostics) {
    for (index, entry) in acl.entries.iter().enumerate() {
        if !matches_anonymous(&entry.matcher, labels) {
            continue;
        }
        if let Some(action) = entry.actions.iter().find(|a| WRITE_ACTIONS.contains(&a.as_str())) {
            let line = acl.entry_lines.get(index).copied().unwrap_or(0);
            diags
                .warn(
                    format!("acl[{index}]"),
                    line,
                    format!("acl[{index}] grants {action:?} to anonymous clients: users has \"\" (no credentials) and {}", account_text(entry)),
                )
                .hint(format!(
                    "add account: \"/.+/\" (any logged-in user) or a named account to acl[{index}].match, or remove push, delete and * from its actions"
                ));
        }
        if matches_every_anonymous_request(&entry.matcher) {
            return;
        }
    }
}

fn account_text(entry: &AclEntrySpec) -> String {
    match &entry.matcher.account {
        None => "the entry has no account condition".to_string(),
        Some(pattern) => format!("its account {pattern:?} matches the empty account"),
    }
}

/// Whether some anonymous request (account `""`, the anonymous user's labels) satisfies
/// the entry's account and label conditions; the other conditions depend on the request.
fn matches_anonymous(spec: &MatchSpec, labels: &Labels) -> bool {
    let account_ok = match &spec.account {
        None => true,
        Some(raw) => {
            Pattern::compile(raw, &VAR_KEYS, false).is_ok_and(|p| p.is_match("", &[Some(""), None, None, None], labels))
        }
    };
    let labels_ok = spec.labels.iter().flatten().all(|(key, raw)| {
        let values = labels.get(key).map(Vec::as_slice).unwrap_or_default();
        Pattern::compile(raw, &[], false).is_ok_and(|p| values.iter().any(|v| p.is_match(v, &[], labels)))
    });
    account_ok && labels_ok
}

/// No condition but the account, and the account matches `""`.
fn matches_every_anonymous_request(spec: &MatchSpec) -> bool {
    let open = |field: &Option<String>| field.as_deref().is_none_or(|p| p == "/.*/");
    let account = spec.account.as_deref().is_none_or(|p| matches!(p, "" | "/.*/" | "*"));
    account
        && open(&spec.resource_type)
        && open(&spec.name)
        && open(&spec.service)
        && spec.ip.is_none()
        && spec.labels.as_ref().is_none_or(|l| l.is_empty())
}

/// `/admin/` is a search: it matches `badadmin` and `admin2` too. Regexes that mean
/// "anyone" (`/.*/`, `/.+/`) are left alone.
fn unanchored_account_regexes(acl: &AclSource, diags: &mut Diagnostics) {
    for (index, entry) in acl.entries.iter().enumerate() {
        let Some(raw) = &entry.matcher.account else { continue };
        let Some(body) = regex_body(raw) else { continue };
        if matches!(body, ".*" | ".+") {
            continue;
        }
        let Some((start, end)) = anchors(body) else { continue };
        if start && end {
            continue;
        }
        let line = acl.lines.get(index).and_then(|l| l.get("match.account")).copied().unwrap_or(0);
        let missing = match (start, end) {
            (false, false) => "has no anchors",
            (false, true) => "is not anchored at the start (^)",
            _ => "is not anchored at the end ($)",
        };
        diags
            .warn(
                format!("acl[{index}].match.account"),
                line,
                format!("account regex {raw} {missing}: it matches every account that contains such a text"),
            )
            .hint(format!("write {} to match whole account names only", anchored(body)));
    }
}

/// Whether every match of the regex starts at the beginning and ends at the end of the
/// text (`None` when it does not parse: the loader has reported that).
fn anchors(body: &str) -> Option<(bool, bool)> {
    let translated = go_regex(body).ok()?;
    let hir = regex_syntax::Parser::new().parse(translated.as_str()).ok()?;
    let props = hir.properties();
    Some((props.look_set_prefix().contains(Look::Start), props.look_set_suffix().contains(Look::End)))
}

fn anchored(body: &str) -> String {
    let inner = body.trim_start_matches('^').trim_end_matches('$');
    if inner.contains('|') {
        format!("/^(?:{inner})$/")
    } else {
        format!("/^{inner}$/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_are_read_from_the_regex_not_its_text() {
        assert_eq!(anchors("admin"), Some((false, false)));
        assert_eq!(anchors("^admin$"), Some((true, true)));
        assert_eq!(anchors("^admin"), Some((true, false)));
        assert_eq!(anchors("^a|b$"), Some((false, false)), "each anchor covers one branch only");
        assert_eq!(anchors("^(a|b)$"), Some((true, true)));
        assert_eq!(anchored("^a|b$"), "/^(?:a|b)$/");
        assert_eq!(anchored("admin"), "/^admin$/");
    }

    #[test]
    fn anonymous_matching_follows_the_matcher() {
        let spec = |account: Option<&str>| MatchSpec { account: account.map(String::from), ..MatchSpec::default() };
        let none = Labels::new();
        for account in [None, Some(""), Some("*"), Some("/.*/"), Some("/^(admin)?$/"), Some("${account}")] {
            assert!(matches_anonymous(&spec(account), &none), "{account:?}");
        }
        for account in [Some("/.+/"), Some("admin"), Some("?*"), Some("/^admin$/")] {
            assert!(!matches_anonymous(&spec(account), &none), "{account:?}");
        }
        let labelled = MatchSpec { labels: Some([("group".into(), "ops".into())].into()), ..MatchSpec::default() };
        assert!(!matches_anonymous(&labelled, &none));
        assert!(matches_anonymous(&labelled, &[("group".to_string(), vec!["ops".to_string()])].into()));
    }
}
