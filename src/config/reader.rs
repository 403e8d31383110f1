//! Typed reads from the YAML tree with docker_auth's (gopkg.in/yaml.v2) conversions:
//! any scalar reads as a string, YAML 1.1 booleans on plain scalars, Go-style integers.
//! Every read failure and every unknown key becomes a [`Diagnostic`] with path and line.
use super::diag::Diagnostics;
use super::yaml::{Node, NodeKind};

/// A YAML mapping being read; remembers which keys were used so the rest can be reported.
pub struct Section<'a> {
    pub path: String,
    pub line: usize,
    entries: &'a [(String, Node)],
    used: Vec<bool>,
}

impl<'a> Section<'a> {
    /// `None` (with an error) when `node` is not a mapping; `None` silently when it is null.
    pub fn of(node: &'a Node, path: &str, diags: &mut Diagnostics) -> Option<Section<'a>> {
        match &node.kind {
            NodeKind::Map(entries) => {
                Some(Section { path: path.to_string(), line: node.line, entries, used: vec![false; entries.len()] })
            }
            NodeKind::Null => None,
            _ => {
                diags.error(path, node.line, format!("{} must be a mapping of keys to values", display(path)));
                None
            }
        }
    }

    pub fn child_path(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    /// The raw node under `key`, marking the key as known. Null values count as absent.
    pub fn node(&mut self, key: &str) -> Option<&'a Node> {
        let index = self.entries.iter().position(|(k, _)| k == key)?;
        self.used[index] = true;
        let node = &self.entries[index].1;
        (node.kind != NodeKind::Null).then_some(node)
    }

    /// Whether `key` has a non-null value, without marking it as read.
    pub fn has_value(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, n)| k == key && n.kind != NodeKind::Null)
    }

    /// Whether `key` is present, even with a null value.
    pub fn has_key(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _)| k == key)
    }

    pub fn string(&mut self, key: &str, diags: &mut Diagnostics) -> Option<String> {
        let node = self.node(key)?;
        to_string(node, &self.child_path(key), diags)
    }

    pub fn bool(&mut self, key: &str, diags: &mut Diagnostics) -> Option<bool> {
        let node = self.node(key)?;
        to_bool(node, &self.child_path(key), diags)
    }

    pub fn int(&mut self, key: &str, diags: &mut Diagnostics) -> Option<i64> {
        let node = self.node(key)?;
        to_int(node, &self.child_path(key), diags)
    }

    /// A Go duration (`"10s"`, `"1m30s"`; a bare integer is nanoseconds), in nanoseconds.
    pub fn duration_nanos(&mut self, key: &str, diags: &mut Diagnostics) -> Option<i128> {
        let node = self.node(key)?;
        let path = self.child_path(key);
        let text = to_string(node, &path, diags)?;
        let parsed = parse_go_duration_nanos(&text);
        if parsed.is_none() {
            diags
                .error(&path, node.line, format!("{path} must be a duration, found {text:?}"))
                .hint("write a Go duration such as \"10s\", \"1m\" or \"1h30m\"");
        }
        parsed
    }

    pub fn string_list(&mut self, key: &str, diags: &mut Diagnostics) -> Option<Vec<String>> {
        let node = self.node(key)?;
        to_string_list(node, &self.child_path(key), diags)
    }

    /// Keys in document order, with their nodes (for maps keyed by user data).
    pub fn entries(&mut self) -> impl Iterator<Item = &'a (String, Node)> {
        self.used.iter_mut().for_each(|u| *u = true);
        self.entries.iter()
    }

    /// Keys that no read asked for, with their lines.
    pub fn unknown_keys(&self) -> Vec<(&'a str, usize)> {
        self.entries
            .iter()
            .zip(&self.used)
            .filter(|(_, used)| !**used)
            .map(|((key, node), _)| (key.as_str(), node.line))
            .collect()
    }

    /// docker_auth ignores unknown keys; we keep starting but say where they are.
    pub fn warn_unknown(&self, known: &[&str], diags: &mut Diagnostics) {
        for (key, line) in self.unknown_keys() {
            diags
                .warn(self.child_path(key), line, format!("unknown key {:?} is ignored", key))
                .hint(format!("check the spelling; known keys here: {}", known.join(", ")));
        }
    }
}

fn display(path: &str) -> &str {
    if path.is_empty() {
        "the config file"
    } else {
        path
    }
}

fn type_error(node: &Node, path: &str, wanted: &str, diags: &mut Diagnostics) {
    let found = match &node.kind {
        NodeKind::Null => "nothing".to_string(),
        NodeKind::Scalar { text, .. } => format!("{text:?}"),
        NodeKind::Seq(_) => "a list".to_string(),
        NodeKind::Map(_) => "a mapping".to_string(),
    };
    diags
        .error(path, node.line, format!("{path} must be {wanted}, found {found}"))
        .hint(format!("write {wanted} here"));
}

pub fn to_string(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<String> {
    match &node.kind {
        NodeKind::Scalar { text, .. } => Some(text.clone()),
        NodeKind::Null => None,
        _ => {
            type_error(node, path, "a string", diags);
            None
        }
    }
}

pub fn to_bool(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<bool> {
    if let NodeKind::Scalar { text, plain: true } = &node.kind {
        match text.as_str() {
            "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => return Some(true),
            "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => return Some(false),
            _ => {}
        }
    }
    type_error(node, path, "true or false", diags);
    None
}

pub fn to_int(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<i64> {
    if let NodeKind::Scalar { text, plain: true } = &node.kind {
        if let Some(value) = parse_go_int(text) {
            return Some(value);
        }
    }
    type_error(node, path, "an integer", diags);
    None
}

/// YAML 1.1 integers as yaml.v2 reads them: sign, `_` separators, 0x / 0o / 0b / leading-0 octal.
pub fn parse_go_int(text: &str) -> Option<i64> {
    let cleaned: String = text.chars().filter(|c| *c != '_').collect();
    let (negative, digits) = match cleaned.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, cleaned.strip_prefix('+').unwrap_or(&cleaned)),
    };
    let (radix, body) = if let Some(hex) = digits.strip_prefix("0x") {
        (16, hex)
    } else if let Some(bin) = digits.strip_prefix("0b") {
        (2, bin)
    } else if let Some(oct) = digits.strip_prefix("0o") {
        (8, oct)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let value = i64::from_str_radix(body, radix).ok()?;
    Some(if negative { -value } else { value })
}

/// A Go duration string (`"10s"`, `"1m30s"`, `"250ms"`) for our own timeout keys. Unlike
/// yaml.v2, a bare integer is not read as nanoseconds (for a timeout that is always a
/// mistake), and negative values are refused.
pub fn parse_go_duration(text: &str) -> Option<std::time::Duration> {
    if parse_go_int(text).is_some() {
        return None;
    }
    let nanos = u64::try_from(parse_go_duration_nanos(text)?).ok()?;
    Some(std::time::Duration::from_nanos(nanos))
}

/// Go's `time.ParseDuration`, plus yaml.v2's bare integer (nanoseconds). Returns nanoseconds.
pub fn parse_go_duration_nanos(text: &str) -> Option<i128> {
    if let Some(nanos) = parse_go_int(text) {
        return Some(i128::from(nanos));
    }
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        total += number * unit_nanos(&rest[..unit_len])?;
        rest = &rest[unit_len..];
    }
    let nanos = total.round() as i128;
    Some(if negative { -nanos } else { nanos })
}

fn unit_nanos(unit: &str) -> Option<f64> {
    Some(match unit {
        "ns" => 1.0,
        "us" | "µs" | "μs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" => 60e9,
        "h" => 3600e9,
        _ => return None,
    })
}

pub fn to_string_list(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<Vec<String>> {
    let NodeKind::Seq(items) = &node.kind else {
        type_error(node, path, "a list", diags);
        return None;
    };
    let mut values = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match &item.kind {
            NodeKind::Scalar { text, .. } => values.push(text.clone()),
            // yaml.v2 decodes a null list item into a string as "".
            NodeKind::Null => values.push(String::new()),
            _ => {
                type_error(item, &format!("{path}[{i}]"), "a string", diags);
                return None;
            }
        }
    }
    Some(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse;

    #[test]
    fn go_integers() {
        assert_eq!(parse_go_int("900"), Some(900));
        assert_eq!(parse_go_int("-5"), Some(-5));
        assert_eq!(parse_go_int("0x0303"), Some(0x303));
        assert_eq!(parse_go_int("010"), Some(8));
        assert_eq!(parse_go_int("1_000"), Some(1000));
        assert_eq!(parse_go_int("15m"), None);
        assert_eq!(parse_go_int("9.5"), None);
        assert_eq!(parse_go_int(""), None);
    }

    #[test]
    fn go_durations() {
        use std::time::Duration;
        assert_eq!(parse_go_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("5 s"), None);
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("s"), None);
        assert_eq!(parse_go_duration("-1m"), None);
    }

    #[test]
    fn go_durations_in_nanoseconds_like_yaml_v2() {
        assert_eq!(parse_go_duration_nanos("10s"), Some(10_000_000_000));
        assert_eq!(parse_go_duration_nanos("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_go_duration_nanos("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_go_duration_nanos("250ms"), Some(250_000_000));
        assert_eq!(parse_go_duration_nanos("-1m"), Some(-60_000_000_000));
        assert_eq!(parse_go_duration_nanos("1000"), Some(1000));
        assert_eq!(parse_go_duration_nanos("0"), Some(0));
        assert_eq!(parse_go_duration_nanos("10"), Some(10));
        assert_eq!(parse_go_duration_nanos("10x"), None);
        assert_eq!(parse_go_duration_nanos("s"), None);
        assert_eq!(parse_go_duration_nanos(""), None);
    }

    #[test]
    fn yaml11_booleans_only_on_plain_scalars() {
        let root = parse("a: yes\nb: 'yes'\nc: off\n").unwrap();
        let mut diags = Diagnostics::default();
        let mut section = Section::of(&root, "", &mut diags).unwrap();
        assert_eq!(section.bool("a", &mut diags), Some(true));
        assert_eq!(section.bool("c", &mut diags), Some(false));
        assert_eq!(section.bool("b", &mut diags), None);
        assert_eq!(diags.errors.len(), 1);
        assert_eq!(diags.errors[0].path, "b");
        assert_eq!(diags.errors[0].line, 2);
    }

    #[test]
    fn unknown_keys_are_reported_with_lines() {
        let root = parse("known: 1\ntypo: 2\n").unwrap();
        let mut diags = Diagnostics::default();
        let mut section = Section::of(&root, "server", &mut diags).unwrap();
        section.int("known", &mut diags);
        section.warn_unknown(&["known"], &mut diags);
        assert_eq!(diags.warnings.len(), 1);
        assert_eq!(diags.warnings[0].path, "server.typo");
        assert_eq!(diags.warnings[0].line, 2);
    }

    #[test]
    fn scalars_of_any_kind_read_as_strings_and_lists_reject_maps() {
        let root = parse("n: 123\nl: [a, 1, ~]\nbad: [{x: 1}]\n").unwrap();
        let mut diags = Diagnostics::default();
        let mut section = Section::of(&root, "", &mut diags).unwrap();
        assert_eq!(section.string("n", &mut diags).as_deref(), Some("123"));
        assert_eq!(section.string_list("l", &mut diags), Some(vec!["a".into(), "1".into(), String::new()]));
        assert_eq!(section.string_list("bad", &mut diags), None);
        assert_eq!(diags.errors[0].path, "bad[0]");
    }
}
