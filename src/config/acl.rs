//! The `acl:` section: entries of `match`, `actions` and `comment`, compiled by authz.
use std::collections::BTreeMap;

use super::diag::Diagnostics;
use super::reader::{to_string, Section};
use super::yaml::{Node, NodeKind};
use crate::authz::acl::{AclEntrySpec, MatchSpec};

const MATCH_KEYS: &[&str] = &["account", "type", "name", "service", "ip", "labels"];

/// The entries plus the line of each entry's `match` fields, to place compile errors.
#[derive(Debug, Clone, Default)]
pub struct AclSource {
    pub entries: Vec<AclEntrySpec>,
    /// Per entry: `match.<field>` → line.
    pub lines: Vec<BTreeMap<String, usize>>,
    /// Per entry: the line it starts on.
    pub entry_lines: Vec<usize>,
}

/// Reads `acl:`. `None` when absent or null ("not configured", as docker_auth).
pub fn read(root: &mut Section<'_>, diags: &mut Diagnostics) -> Option<AclSource> {
    let node = root.node("acl")?;
    let NodeKind::Seq(items) = &node.kind else {
        diags
            .error("acl", node.line, "acl must be a list of entries")
            .hint("write acl: followed by `- match: {...}` items");
        return None;
    };
    let mut source = AclSource::default();
    for (index, item) in items.iter().enumerate() {
        let path = format!("acl[{index}]");
        let mut lines = BTreeMap::new();
        if let Some(entry) = read_entry(item, &path, &mut lines, diags) {
            source.entries.push(entry);
            source.lines.push(lines);
            source.entry_lines.push(item.line);
        }
    }
    Some(source)
}

fn read_entry(
    node: &Node,
    path: &str,
    lines: &mut BTreeMap<String, usize>,
    diags: &mut Diagnostics,
) -> Option<AclEntrySpec> {
    let mut entry = Section::of(node, path, diags)?;
    let matcher = match entry.node("match") {
        Some(m) => read_match(m, &entry.child_path("match"), lines, diags),
        None => {
            diags
                .error(entry.child_path("match"), entry.line, format!("{path} has no match conditions"))
                .hint("add match: {} to match every request, or the conditions this entry is for");
            None
        }
    };
    let actions = match entry.node("actions") {
        Some(a) => super::reader::to_string_list(a, &entry.child_path("actions"), diags),
        None => {
            diags
                .error(entry.child_path("actions"), entry.line, format!("{path} has no actions"))
                .hint("add actions: [\"pull\"] (or [] to deny, [\"*\"] for everything requested)");
            None
        }
    };
    let comment = entry.string("comment", diags);
    entry.warn_unknown(&["match", "actions", "comment"], diags);
    Some(AclEntrySpec { matcher: matcher?, actions: actions?, comment })
}

pub(super) fn read_match(
    node: &Node,
    path: &str,
    lines: &mut BTreeMap<String, usize>,
    diags: &mut Diagnostics,
) -> Option<MatchSpec> {
    let mut m = Section::of(node, path, diags)?;
    let mut field = |m: &mut Section<'_>, key: &str, diags: &mut Diagnostics| {
        let node = m.node(key)?;
        lines.insert(format!("match.{key}"), node.line);
        to_string(node, &m.child_path(key), diags)
    };
    let mut spec = MatchSpec {
        account: field(&mut m, "account", diags),
        resource_type: field(&mut m, "type", diags),
        name: field(&mut m, "name", diags),
        service: field(&mut m, "service", diags),
        ip: field(&mut m, "ip", diags),
        labels: None,
    };
    if let Some(labels_node) = m.node("labels") {
        lines.insert("match.labels".into(), labels_node.line);
        spec.labels = read_label_conditions(labels_node, &m.child_path("labels"), lines, diags);
    }
    reject_unknown_match_keys(&m, diags);
    Some(spec)
}

fn read_label_conditions(
    node: &Node,
    path: &str,
    lines: &mut BTreeMap<String, usize>,
    diags: &mut Diagnostics,
) -> Option<BTreeMap<String, String>> {
    let mut section = Section::of(node, path, diags)?;
    let mut conditions = BTreeMap::new();
    for (key, value) in section.entries() {
        lines.insert(format!("match.labels.{key}"), value.line);
        if let Some(pattern) = to_string(value, &format!("{path}.{key}"), diags) {
            conditions.insert(key.clone(), pattern);
        }
    }
    Some(conditions)
}

/// docker_auth ignores unknown match keys, which leaves an empty match that grants to
/// everyone. Here they stop the start.
fn reject_unknown_match_keys(m: &Section<'_>, diags: &mut Diagnostics) {
    for (key, line) in m.unknown_keys() {
        let diag = diags.error(m.child_path(key), line, format!("unknown match condition {key:?}"));
        match key.split_once(':') {
            Some((field, value)) if MATCH_KEYS.contains(&field) => diag.hint(format!(
                "YAML needs a space after the colon: write {{{field}: {value}}}; as written it is one unknown key and would match every request"
            )),
            _ => diag.hint(format!("match conditions are: {}", MATCH_KEYS.join(", "))),
        }
    }
}
