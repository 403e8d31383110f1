//! The `users:` section: static accounts with bcrypt hashes and labels.
use std::collections::BTreeMap;

use super::diag::Diagnostics;
use super::reader::{to_string, to_string_list, Section};
use super::yaml::{Node, NodeKind};
use crate::request::Labels;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    /// The bcrypt hash; `None` means docker_auth's "any password is accepted".
    pub password: Option<String>,
    pub labels: Labels,
    /// Line of `password:`, or of the user's entry when it has none, for findings such as
    /// a weak cost or a missing password.
    pub password_line: usize,
}

/// Reads `users:`. `None` when the key is absent or null ("not configured", as docker_auth).
pub fn read(root: &mut Section<'_>, diags: &mut Diagnostics) -> Option<BTreeMap<String, UserEntry>> {
    let node = root.node("users")?;
    let mut section = Section::of(node, "users", diags)?;
    let mut users = BTreeMap::new();
    for (account, user_node) in section.entries() {
        let path = format!("users.{}", super::yaml::key_segment(account));
        if user_node.kind == NodeKind::Null {
            warn_placeholder(account, &path, user_node.line, diags);
            continue;
        }
        if let Some(user) = read_user(user_node, &path, diags) {
            users.insert(account.clone(), user);
        }
    }
    Some(users)
}

/// `"bob":` (or `~`, `null`) is a nil entry to docker_auth: an unknown user, so the next
/// authenticator is asked. Only `"bob": {}` is a user who accepts any password.
fn warn_placeholder(account: &str, path: &str, line: usize, diags: &mut Diagnostics) {
    diags
        .warn(path, line, format!("user {account:?} has no value, so it is an unknown user (no login as {account:?} here)"))
        .hint(format!(
            "give it a password: {account:?}: {{password: \"<bcrypt hash>\"}}, or write {{}} to accept any password, or remove it"
        ));
}

fn read_user(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<UserEntry> {
    let mut user = Section::of(node, path, diags)?;
    let password = match user.node("password") {
        Some(hash) => to_string(hash, &user.child_path("password"), diags),
        // `password: ~` or `password:` is a present-but-empty hash: it can never match.
        None if user.has_key("password") => Some(String::new()),
        None => None,
    };
    if let (Some(hash), Some(hash_node)) = (&password, user.node("password")) {
        check_hash(hash, &user.child_path("password"), hash_node.line, diags);
    }
    let labels = read_labels(&mut user, diags);
    user.warn_unknown(&["password", "labels"], diags);
    let password_line = user.node("password").map_or(node.line, |n| n.line);
    Some(UserEntry { password, labels, password_line })
}

fn read_labels(user: &mut Section<'_>, diags: &mut Diagnostics) -> Labels {
    let mut labels = Labels::new();
    let Some(node) = user.node("labels") else { return labels };
    let path = user.child_path("labels");
    let Some(mut section) = Section::of(node, &path, diags) else { return labels };
    for (name, values) in section.entries() {
        let label_path = format!("{path}.{name}");
        if let Some(list) = to_string_list(values, &label_path, diags) {
            labels.insert(name.clone(), list);
        } else if let Some(last) = diags.errors.last_mut() {
            last.hint("label values are a list, e.g. group: [\"admins\"]");
        }
    }
    labels
}

/// docker_auth starts with an unusable hash (it simply never matches); we start too, but say so.
fn check_hash(hash: &str, path: &str, line: usize, diags: &mut Diagnostics) {
    if crate::authn::static_users::parse_bcrypt_cost(hash).is_none() {
        diags
            .warn(path, line, "password is not a bcrypt hash, so this user can never log in")
            .hint("store a bcrypt hash, e.g. from `htpasswd -nB USER` or `registry-auth hash-password`");
    }
}
