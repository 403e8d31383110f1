//! The only module that knows the YAML crate (yaml-rust2, pure Rust and maintained,
//! unlike the archived serde_yaml and its unsafe-libyaml). It turns a document into a
//! small tree of [`Node`]s that remember their line, so every config error can name one.
//!
//! docker_auth reads YAML with gopkg.in/yaml.v2, so this loader keeps its habits:
//! a duplicate key's last value wins (each one is reported, see [`DuplicateKey`]),
//! scalars keep their style so that the typed layer can apply YAML 1.1 booleans (`yes`,
//! `on`) to plain scalars only, and YAML 1.1 merge keys (`<<: *anchor`, `<<: [*a, *b]`)
//! are applied (see [`apply_merges`]); merged keys are not duplicates.
use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A parsed YAML value with the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub line: usize,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Null,
    /// `plain` is false for quoted and block scalars, which are always strings.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Keys in document order, duplicates already collapsed (last one wins, first position kept).
    Map(Vec<(String, Node)>),
}

/// A syntax error, with the 1-based line where the parser stopped.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub message: String,
}

/// A key written twice in one mapping: the value at `line` replaced the one at `first_line`
/// (silently in docker_auth: a second `acl:` can undo the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateKey {
    /// Config-style path of the key, e.g. `acl` or `users.admin.password`.
    pub path: String,
    pub key: String,
    pub first_line: usize,
    pub line: usize,
}

/// A parsed document and the duplicate keys found in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub root: Node,
    pub duplicates: Vec<DuplicateKey>,
}

/// Parses one YAML document. An empty document is `Null`.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    parse_document(text).map(|doc| doc.root)
}

/// [`parse`], keeping the duplicate keys for the config's warnings.
pub fn parse_document(text: &str) -> Result<Document, YamlError> {
    let mut builder = TreeBuilder::default();
    let mut parser = Parser::new_from_str(text);
    parser
        .load(&mut builder, false)
        .map_err(|e| YamlError { line: e.marker().line(), message: e.info().to_string() })?;
    if let Some(error) = builder.error {
        return Err(error);
    }
    let root = builder.root.unwrap_or(Node { line: 1, kind: NodeKind::Null });
    Ok(Document { root, duplicates: builder.duplicates })
}

enum Frame {
    Seq {
        line: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        line: usize,
        anchor: usize,
        entries: Vec<(String, Node)>,
        pending_key: Option<(String, usize)>,
        /// Values of plain `<<` keys, in document order, applied when the mapping closes.
        merges: Vec<Node>,
        /// The pending key is a plain `<<` (a quoted "<<" is an ordinary key).
        pending_merge: bool,
        /// Keys written in this mapping, with their lines, to report duplicates.
        written: Vec<(String, usize)>,
    },
}

#[derive(Default)]
struct TreeBuilder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
    error: Option<YamlError>,
    duplicates: Vec<DuplicateKey>,
}

impl TreeBuilder {
    fn fail(&mut self, line: usize, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(YamlError { line, message: message.into() });
        }
    }

    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, pending_key, merges, pending_merge, .. }) => match pending_key.take() {
                None => match node.kind {
                    NodeKind::Scalar { text, plain } => {
                        *pending_merge = plain && text == MERGE_KEY;
                        *pending_key = Some((text, node.line));
                        self.note_key();
                    }
                    NodeKind::Null => {
                        *pending_key = Some((String::new(), node.line));
                        self.note_key();
                    }
                    _ => {
                        let line = node.line;
                        self.fail(line, "a mapping key must be a plain value, not a list or map");
                    }
                },
                Some(_) if std::mem::take(pending_merge) => merges.push(node),
                Some((key, key_line)) => {
                    // A block list or mapping starts on the line after its key, and an empty
                    // value is reported at the next token; errors read better at the key.
                    let node = match node.kind {
                        NodeKind::Seq(_) | NodeKind::Map(_) | NodeKind::Null => {
                            Node { line: key_line.min(node.line), ..node }
                        }
                        _ => node,
                    };
                    insert_last_wins(entries, key, node)
                }
            },
        }
    }

    /// Records the key just read in the innermost mapping; a repeated one is a duplicate.
    /// Plain merge keys (`<<`, any number of them) are not keys of the mapping itself, and
    /// merged keys never replace written ones, so neither is reported.
    fn note_key(&mut self) {
        let Some(Frame::Map { pending_key: Some((key, line)), written, pending_merge, .. }) = self.stack.last_mut()
        else {
            return;
        };
        if *pending_merge {
            return;
        }
        let (key, line) = (key.clone(), *line);
        match written.iter().find(|(k, _)| *k == key) {
            Some((_, first_line)) => {
                let first_line = *first_line;
                let path = self.path_to_innermost(&key);
                self.duplicates.push(DuplicateKey { path, key, first_line, line });
            }
            None => written.push((key, line)),
        }
    }

    /// The config-style path (`acl[1].match.account`) of `key` in the innermost mapping.
    fn path_to_innermost(&self, key: &str) -> String {
        let mut path = String::new();
        let segments = self.stack.iter().filter_map(|frame| match frame {
            Frame::Seq { items, .. } => Some(format!("[{}]", items.len())),
            Frame::Map { pending_key: Some((k, _)), .. } => Some(key_segment(k)),
            Frame::Map { .. } => None,
        });
        for segment in segments.take(self.stack.len().saturating_sub(1)).chain([key_segment(key)]) {
            if !path.is_empty() && !segment.starts_with('[') {
                path.push('.');
            }
            path.push_str(&segment);
        }
        path
    }

    fn close(&mut self) {
        let Some(frame) = self.stack.pop() else { return };
        let (node, anchor) = match frame {
            Frame::Seq { line, anchor, items } => (Node { line, kind: NodeKind::Seq(items) }, anchor),
            Frame::Map { line, anchor, entries, merges, .. } => match apply_merges(entries, merges) {
                Ok(entries) => (Node { line, kind: NodeKind::Map(entries) }, anchor),
                Err(bad_line) => {
                    self.fail(bad_line, "a merge key (<<) needs a mapping or a list of mappings as its value");
                    (Node { line, kind: NodeKind::Map(Vec::new()) }, anchor)
                }
            },
        };
        self.push_value(node, anchor);
    }
}

/// A mapping key as one segment of a config path (`users."a.b".password`): keys with
/// dots, spaces, brackets or nothing at all are quoted so the path stays readable.
pub fn key_segment(key: &str) -> String {
    if key.is_empty() || key.contains(['.', ' ', '[', ']']) {
        format!("{key:?}")
    } else {
        key.to_string()
    }
}

/// The YAML 1.1 merge key (https://yaml.org/type/merge.html), as yaml.v2 resolves it.
const MERGE_KEY: &str = "<<";

/// Applies a mapping's `<<` values: their keys are added where absent, so keys written in
/// the mapping always win, and in `<<: [*a, *b]` an earlier source wins over a later one
/// (the YAML 1.1 rule). Merged keys follow the mapping's own keys. `Err` carries the line
/// of a merge value that is not a mapping or a list of mappings.
fn apply_merges(mut entries: Vec<(String, Node)>, merges: Vec<Node>) -> Result<Vec<(String, Node)>, usize> {
    let mut sources = Vec::new();
    for merge in merges {
        match merge.kind {
            NodeKind::Map(map) => sources.push(map),
            NodeKind::Seq(items) => {
                for item in items {
                    match item.kind {
                        NodeKind::Map(map) => sources.push(map),
                        _ => return Err(item.line),
                    }
                }
            }
            _ => return Err(merge.line),
        }
    }
    for (key, node) in sources.into_iter().flatten() {
        if !entries.iter().any(|(k, _)| *k == key) {
            entries.push((key, node));
        }
    }
    Ok(entries)
}

fn insert_last_wins(entries: &mut Vec<(String, Node)>, key: String, node: Node) {
    match entries.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = node,
        None => entries.push((key, node)),
    }
}

fn scalar_node(text: String, style: TScalarStyle, line: usize) -> Node {
    let plain = style == TScalarStyle::Plain;
    let is_null = plain && matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL");
    let kind = if is_null { NodeKind::Null } else { NodeKind::Scalar { text, plain } };
    Node { line, kind }
}

impl MarkedEventReceiver for TreeBuilder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let line = mark.line().max(1);
        match event {
            Event::Scalar(text, style, anchor, _tag) => self.push_value(scalar_node(text, style, line), anchor),
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq { line, anchor, items: Vec::new() }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                line,
                anchor,
                entries: Vec::new(),
                pending_key: None,
                merges: Vec::new(),
                pending_merge: false,
                written: Vec::new(),
            }),
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(node) => self.push_value(Node { line, ..node }, 0),
                None => self.fail(line, "alias to an unknown anchor"),
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(node: &Node) -> &[(String, Node)] {
        match &node.kind {
            NodeKind::Map(entries) => entries,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn lines_are_one_based_and_point_at_values() {
        let root = parse("a: 1\nb:\n  c: x\n").unwrap();
        let entries = map(&root);
        assert_eq!(entries[0].1.line, 1);
        assert_eq!(entries[1].1.line, 2, "a block mapping points at its key");
        assert_eq!(map(&entries[1].1)[0].1.line, 3);
    }

    #[test]
    fn duplicate_keys_last_value_wins_in_first_position() {
        let root = parse("a: 1\nb: 2\na: 3\n").unwrap();
        let entries = map(&root);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].0, "a");
        assert_eq!(entries[0].1.kind, NodeKind::Scalar { text: "3".into(), plain: true });
    }

    #[test]
    fn duplicate_keys_are_reported_with_both_lines_and_their_path() {
        let text = "acl:\n  - match: {account: a, account: b}\n    actions: [pull]\nusers:\n  \"a.b\":\n    password: x\n    password: y\nacl: []\nlist: [{k: 1}, {k: 2, k: 3}]\n";
        let doc = parse_document(text).unwrap();
        let found: Vec<(&str, usize, usize)> =
            doc.duplicates.iter().map(|d| (d.path.as_str(), d.first_line, d.line)).collect();
        assert_eq!(
            found,
            [("acl[0].match.account", 2, 2), ("users.\"a.b\".password", 6, 7), ("acl", 1, 8), ("list[1].k", 9, 9)]
        );
        assert!(parse_document("a: 1\nb: {a: 2}\n<<: {c: 1}\n").unwrap().duplicates.is_empty());
        let merges = "base: &b {x: 1}\nm:\n  <<: *b\n  x: 2\n  <<: {y: 1}\n";
        assert!(parse_document(merges).unwrap().duplicates.is_empty(), "merge keys and merged keys");
        let quoted = parse_document("'<<': 1\n\"<<\": 2\n").unwrap();
        assert_eq!(quoted.duplicates.len(), 1, "a quoted << is an ordinary key");
    }

    #[test]
    fn flow_map_without_space_is_one_odd_key() {
        // docker_auth issue #326: `{account:"admin"}` is a single key with a null value.
        let root = parse("m: {account:\"admin\"}\n").unwrap();
        let inner = map(&map(&root)[0].1);
        assert_eq!(inner.len(), 1);
        assert_eq!(inner[0].0, "account:\"admin\"");
        assert_eq!(inner[0].1.kind, NodeKind::Null);
    }

    #[test]
    fn quoted_scalars_are_not_plain_and_nulls_are_recognised() {
        let root = parse("a: 'yes'\nb: yes\nc: ~\nd:\n").unwrap();
        let entries = map(&root);
        assert_eq!(entries[0].1.kind, NodeKind::Scalar { text: "yes".into(), plain: false });
        assert_eq!(entries[1].1.kind, NodeKind::Scalar { text: "yes".into(), plain: true });
        assert_eq!(entries[2].1.kind, NodeKind::Null);
        assert_eq!(entries[3].1.kind, NodeKind::Null);
    }

    #[test]
    fn aliases_copy_the_anchored_value() {
        let root = parse("a: &x [1, 2]\nb: *x\n").unwrap();
        let entries = map(&root);
        assert_eq!(entries[0].1.kind, entries[1].1.kind);
    }

    #[test]
    fn syntax_errors_carry_a_line() {
        let err = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(err.line >= 2, "{err}");
    }

    #[test]
    fn empty_document_is_null() {
        assert_eq!(parse("").unwrap().kind, NodeKind::Null);
        assert_eq!(parse("# only a comment\n").unwrap().kind, NodeKind::Null);
    }

    fn scalar(node: &Node) -> &str {
        match &node.kind {
            NodeKind::Scalar { text, .. } => text,
            other => panic!("not a scalar: {other:?}"),
        }
    }

    fn keys_and_values(node: &Node) -> Vec<(&str, &str)> {
        map(node).iter().map(|(k, v)| (k.as_str(), scalar(v))).collect()
    }

    #[test]
    fn merge_keys_add_absent_keys_and_explicit_keys_win() {
        let root = parse(
            "base: &b {a: 1, b: 2}
x:
  b: 3
  <<: *b
  c: 4
",
        )
        .unwrap();
        assert_eq!(keys_and_values(&map(&root)[1].1), [("b", "3"), ("c", "4"), ("a", "1")]);
    }

    #[test]
    fn merge_lists_let_earlier_sources_win() {
        let root = parse(
            "a: &a {k: a, only_a: 1}
b: &b {k: b, only_b: 2}
x: {<<: [*a, *b]}
y: {<<: [*b, *a]}
",
        )
        .unwrap();
        let entries = map(&root);
        assert_eq!(keys_and_values(&entries[2].1), [("k", "a"), ("only_a", "1"), ("only_b", "2")]);
        assert_eq!(keys_and_values(&entries[3].1), [("k", "b"), ("only_b", "2"), ("only_a", "1")]);
    }

    #[test]
    fn merges_nest_and_inline_maps_merge_too() {
        let root = parse(
            "a: &a {k: 1}
b: &b {<<: *a, j: 2}
c: {<<: *b}
d: {<<: {z: 9}}
",
        )
        .unwrap();
        let entries = map(&root);
        assert_eq!(keys_and_values(&entries[2].1), [("j", "2"), ("k", "1")]);
        assert_eq!(keys_and_values(&entries[3].1), [("z", "9")]);
    }

    #[test]
    fn quoted_merge_key_is_an_ordinary_key() {
        let root = parse(
            "a: &a {k: 1}
b: {\"<<\": x}
",
        )
        .unwrap();
        assert_eq!(keys_and_values(&map(&root)[1].1), [("<<", "x")]);
    }

    #[test]
    fn merge_of_a_scalar_is_an_error_with_its_line() {
        let err = parse(
            "a: 1
b:
  <<: text
",
        )
        .unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.message.contains("merge key"), "{err}");
        let err = parse(
            "a: &a [1]
b:
  <<: [*a]
",
        )
        .unwrap_err();
        assert_eq!(err.line, 3, "{err}");
    }
}
