//! `console.operators`: who sees the console's Operators pages. A list of ACL-style
//! `match` blocks on `account` and `labels`; any block that matches makes an operator.
//!
//! ```yaml
//! console:
//!   operators:
//!     - account: admin
//!     - labels: {groups: registry-admins}
//! ```
//! Checked here with the ACL's reader and compiled once with the ACL's engine
//! ([`crate::authz::operators`]), so a bad pattern stops the start like a bad ACL entry.
use std::collections::BTreeMap;

use super::diag::Diagnostics;
use super::yaml::{Node, NodeKind};
use crate::authz::acl::MatchSpec;
use crate::authz::operators::Operators;

/// The blocks under `operators:` (none when absent or null); problems go to `diags`.
pub fn read(node: Option<&Node>, diags: &mut Diagnostics) -> Vec<MatchSpec> {
    let Some(node) = node else { return Vec::new() };
    let items = match &node.kind {
        NodeKind::Seq(items) => items,
        NodeKind::Null => return Vec::new(),
        _ => {
            diags
                .error("console.operators", node.line, "console.operators must be a list of match blocks")
                .hint("write operators: followed by items such as `- account: admin` or `- labels: {groups: registry-admins}`");
            return Vec::new();
        }
    };
    let mut blocks = Vec::new();
    let mut lines = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let path = format!("console.operators[{index}]");
        let mut fields = BTreeMap::new();
        if let Some(block) = super::acl::read_match(item, &path, &mut fields, diags) {
            blocks.push(block);
            lines.push((path, item.line));
        }
    }
    if let Err(errors) = Operators::compile(blocks.clone()) {
        for e in errors {
            let (path, line) = &lines[e.index.min(lines.len().saturating_sub(1))];
            let field = e.field.trim_start_matches("match.");
            diags
                .error(format!("{path}.{field}"), *line, format!("{path}: {}", e.detail))
                .hint("operators are matched on account and labels, with the ACL's patterns (literal, glob, /regex/)");
        }
        return Vec::new();
    }
    blocks
}
