//! One ACL string pattern, matched exactly as docker_auth matches it (`authz/acl.go`).
//!
//! A pattern is variable-substituted first, then a `/regex/` (longer than 2 bytes) is an
//! unanchored Go RE2 search and anything else is a whole-string Go `path.Match` glob.
//! Patterns without placeholders are compiled once at load; templates are rendered per
//! request. Go's regex dialect differs from the `regex` crate's (literal `{`, ASCII `\d`,
//! nested repetition is an error), so Go syntax is translated before compiling.

pub mod glob;
mod goregex;
mod prefix;

use regex::Regex;

pub use glob::{glob_match, BadGlob};
pub use goregex::go_regex;

use crate::request::Labels;

/// A compiled pattern for one field or label condition.
#[derive(Debug)]
pub struct Pattern {
    kind: Kind,
    /// What every value it matches starts with (see [`Pattern::literal_prefix`]).
    prefix: String,
}

#[derive(Debug)]
enum Kind {
    Fixed(Matcher),
    Template(Template),
}

impl Pattern {
    /// Validates `raw` as docker_auth does (regex syntax only, on the raw text with its
    /// placeholders) and precompiles it when it contains none.
    ///
    /// `keys` are the placeholder texts of the value slots passed to [`Pattern::is_match`];
    /// `expand_labels` enables `${labels:<key>}`.
    pub fn compile(raw: &str, keys: &[&str], expand_labels: bool) -> Result<Pattern, String> {
        let fixed = Matcher::new(raw)?;
        let template = Template::parse(raw, keys, expand_labels);
        Ok(if template.is_literal() {
            Pattern { kind: Kind::Fixed(fixed), prefix: prefix::fixed_prefix(raw) }
        } else {
            Pattern { prefix: template.literal_prefix(), kind: Kind::Template(template) }
        })
    }

    /// Whether matching needs per-request placeholder values.
    pub fn is_template(&self) -> bool {
        matches!(self.kind, Kind::Template(_))
    }

    /// A value can only match if it starts with this, whatever the placeholder and label
    /// values; empty means no constraint.
    pub fn literal_prefix(&self) -> &str {
        &self.prefix
    }

    /// `vars[slot]` is the value of placeholder `keys[slot]`; `None` leaves it literal.
    pub fn is_match(&self, value: &str, vars: &[Option<&str>], labels: &Labels) -> bool {
        match &self.kind {
            Kind::Fixed(m) => m.is_match(value),
            Kind::Template(t) => t.is_match(value, vars, labels),
        }
    }
}

/// Whether `p` is a `/regex/`, and its body.
pub fn regex_body(p: &str) -> Option<&str> {
    (p.len() > 2 && p.starts_with('/') && p.ends_with('/')).then(|| &p[1..p.len() - 1])
}

/// A pattern after substitution.
#[derive(Debug)]
enum Matcher {
    Regex(Regex),
    Glob(String),
    /// A malformed glob: docker_auth loads it and it never matches.
    Never,
}

impl Matcher {
    fn new(p: &str) -> Result<Matcher, String> {
        if let Some(body) = regex_body(p) {
            return go_regex(body).map(Matcher::Regex).map_err(|e| format!("invalid regex pattern: {e}"));
        }
        // Go reports a malformed glob whatever the name, so the empty name detects it.
        Ok(match glob_match(p, "") {
            Ok(_) => Matcher::Glob(p.to_owned()),
            Err(BadGlob) => Matcher::Never,
        })
    }

    fn is_match(&self, s: &str) -> bool {
        match self {
            Matcher::Regex(re) => re.is_match(s),
            Matcher::Glob(p) => glob_match(p, s).unwrap_or(false),
            Matcher::Never => false,
        }
    }
}

/// A pattern with placeholders, cut where docker_auth's single-pass replacer cuts it.
#[derive(Debug)]
struct Template {
    segments: Vec<Segment>,
    /// Distinct `${labels:<key>}` names, in order of first use.
    labels: Vec<String>,
}

#[derive(Debug)]
enum Segment {
    Text(String),
    Var { slot: usize, key: String },
    Label { index: usize, key: String },
}

impl Template {
    fn parse(raw: &str, keys: &[&str], expand_labels: bool) -> Template {
        let mut t = Template { segments: Vec::new(), labels: Vec::new() };
        let mut rest = raw;
        while let Some(c) = rest.chars().next() {
            let len = match t.placeholder(rest, keys, expand_labels) {
                Some(len) => len,
                None => {
                    t.push_char(c);
                    c.len_utf8()
                }
            };
            rest = &rest[len..];
        }
        t
    }

    /// Records the placeholder starting `s`, if any, and returns its length.
    fn placeholder(&mut self, s: &str, keys: &[&str], expand_labels: bool) -> Option<usize> {
        if !s.starts_with("${") {
            return None;
        }
        if let Some(slot) = keys.iter().position(|k| s.starts_with(k)) {
            let key = keys[slot].to_owned();
            let len = key.len();
            self.segments.push(Segment::Var { slot, key });
            return Some(len);
        }
        let body = s.strip_prefix("${labels:").filter(|_| expand_labels)?;
        // The name ends at the first `}` (so label names containing `}` cannot be referenced),
        // and one containing `${` would hide a basic placeholder from the first pass.
        let name = &body[..body.find('}')?];
        if name.contains("${") {
            return None;
        }
        let index = match self.labels.iter().position(|l| l == name) {
            Some(i) => i,
            None => {
                self.labels.push(name.to_owned());
                self.labels.len() - 1
            }
        };
        let key = format!("${{labels:{name}}}");
        let len = key.len();
        self.segments.push(Segment::Label { index, key });
        Some(len)
    }

    fn push_char(&mut self, c: char) {
        match self.segments.last_mut() {
            Some(Segment::Text(s)) => s.push(c),
            _ => self.segments.push(Segment::Text(c.to_string())),
        }
    }

    fn is_literal(&self) -> bool {
        self.segments.iter().all(|s| matches!(s, Segment::Text(_)))
    }

    /// Every rendering (labels literal or expanded) starts with the same leading text. When
    /// that text does not start with `/`, no rendering is a `/regex/`, so its glob prefix holds.
    fn literal_prefix(&self) -> String {
        match self.segments.first() {
            Some(Segment::Text(text)) if !text.starts_with('/') => prefix::glob_prefix(text),
            _ => String::new(),
        }
    }

    fn render(&self, vars: &[Option<&str>], picks: &[Option<&str>]) -> String {
        let mut out = String::new();
        for seg in &self.segments {
            out.push_str(match seg {
                Segment::Text(s) => s,
                Segment::Var { slot, key } => vars.get(*slot).copied().flatten().unwrap_or(key),
                Segment::Label { index, key } => picks.get(*index).copied().flatten().unwrap_or(key),
            });
        }
        out
    }

    /// Matches a rendering in place: only a `/regex/` needs compiling, and a malformed
    /// glob fails for every value, so no separate validation or copy is needed.
    fn matches_with(&self, value: &str, vars: &[Option<&str>], picks: &[Option<&str>]) -> bool {
        let rendered = self.render(vars, picks);
        match regex_body(&rendered) {
            Some(body) => go_regex(body).is_ok_and(|re| re.is_match(value)),
            None => glob_match(&rendered, value).unwrap_or(false),
        }
    }

    /// docker_auth tries the pattern with label placeholders literal, then with every
    /// combination of the values of the labels the request has.
    fn is_match(&self, value: &str, vars: &[Option<&str>], labels: &Labels) -> bool {
        if self.matches_with(value, vars, &[]) {
            return true;
        }
        let sets: Vec<Option<&[String]>> = self.labels.iter().map(|l| labels.get(l).map(Vec::as_slice)).collect();
        if sets.iter().all(Option::is_none) || sets.iter().flatten().any(|v| v.is_empty()) {
            return false;
        }
        let mut idx = vec![0; sets.len()];
        loop {
            let picks: Vec<Option<&str>> =
                sets.iter().zip(&idx).map(|(set, &i)| set.and_then(|v| v.get(i)).map(String::as_str)).collect();
            if self.matches_with(value, vars, &picks) {
                return true;
            }
            if !next_combination(&mut idx, &sets) {
                return false;
            }
        }
    }
}

/// Advances an odometer over the label value lists; false once every combination is done.
fn next_combination(idx: &mut [usize], sets: &[Option<&[String]>]) -> bool {
    for (i, set) in idx.iter_mut().zip(sets) {
        *i += 1;
        if *i < set.map_or(1, <[String]>::len) {
            return true;
        }
        *i = 0;
    }
    false
}

/// Go `regexp.QuoteMeta`: a backslash before each of `\.+*?()|[]{}^$`.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Capture-group references as docker_auth's `\$\{(.+?):(\d+)\}` finds them:
/// `(whole, name, digits)`. The lazy group makes `${name}/${account:1}` one match
/// with name `name}/${account`, which docker_auth then ignores; kept as is.
pub fn capture_refs(raw: &str) -> Vec<(&str, &str, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(off) = raw[from..].find("${") {
        let start = from + off;
        match capture_at(&raw[start + 2..]) {
            Some((len, name, digits)) => {
                out.push((&raw[start..start + 2 + len], name, digits));
                from = start + 2 + len;
            }
            None => from = start + 1,
        }
    }
    out
}

/// Matches `(.+?):(\d+)\}` at the start of `s`; returns (length, name, digits).
fn capture_at(s: &str) -> Option<(usize, &str, &str)> {
    for (i, c) in s.char_indices() {
        if c == '\n' {
            return None;
        }
        let name_end = i + c.len_utf8();
        let Some(tail) = s[name_end..].strip_prefix(':') else {
            continue;
        };
        let n = tail.bytes().take_while(u8::is_ascii_digit).count();
        if n > 0 && tail[n..].starts_with('}') {
            return Some((name_end + n + 2, &s[..name_end], &tail[..n]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_glob_loads_and_never_matches() {
        for pattern in ["[", "a[", "\\", "[]a]", "[x-]"] {
            let p = Pattern::compile(pattern, &[], true).unwrap();
            for name in ["", "a", "[", "]", "x", pattern] {
                assert!(!p.is_match(name, &[], &Labels::new()), "{pattern:?} vs {name:?}");
            }
        }
    }

    #[test]
    fn regex_is_an_unanchored_search_only_when_longer_than_two() {
        let cases = [
            ("/z$/", "baz", true),
            ("/^z/", "baz", false),
            ("/foo/", "xfoox", true),
            ("/.+/", "", false),
            ("/o/", "foo", true),
            ("/", "/", true),
        ];
        for (pattern, name, want) in cases {
            let m = Matcher::new(pattern).unwrap();
            assert_eq!(m.is_match(name), want, "{pattern:?} vs {name:?}");
        }
    }

    #[test]
    fn quote_meta_matches_go() {
        assert_eq!(quote_meta(r"\.+*?()|[]{}^$"), r"\\\.\+\*\?\(\)\|\[\]\{\}\^\$");
        assert_eq!(quote_meta("a-b/c_d é:@#"), "a-b/c_d é:@#");
        assert_eq!(quote_meta("john.smith"), r"john\.smith");
    }

    #[test]
    fn capture_refs_follow_docker_auths_lazy_scan() {
        type Refs = &'static [(&'static str, &'static str, &'static str)];
        let cases: &[(&str, Refs)] = &[
            ("${account:1}/*", &[("${account:1}", "account", "1")]),
            ("${account:1}-${account:2}/*", &[("${account:1}", "account", "1"), ("${account:2}", "account", "2")]),
            ("${name}/${account:1}", &[("${name}/${account:1}", "name}/${account", "1")]),
            ("${account:x}${name:2}", &[("${account:x}${name:2}", "account:x}${name", "2")]),
            ("${a:12x:3}", &[("${a:12x:3}", "a:12x", "3")]),
            ("${a\n:1}${b:2}", &[("${b:2}", "b", "2")]),
            ("${:1}", &[]),
            ("${account}", &[]),
            ("$${Type:01}", &[("${Type:01}", "Type", "01")]),
        ];
        for (raw, want) in cases {
            assert_eq!(capture_refs(raw), *want, "{raw:?}");
        }
    }

    fn labels(pairs: &[(&str, &[&str])]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect()
    }

    #[test]
    fn templates_substitute_in_one_pass() {
        let keys = ["${account}", "${x:1}"];
        let cases: &[(&str, [Option<&str>; 2], &str, bool)] = &[
            ("${account}", [Some("foo"), None], "foo", true),
            // A value is never re-scanned for placeholders.
            ("${account}", [Some(r"\$\{x:1\}"), Some("v")], "${x:1}", true),
            ("${x:1}/*", [Some("a"), Some("team")], "team/app", true),
            // Unresolved and unknown placeholders stay literal.
            ("${x:1}/*", [Some("a"), None], "${x:1}/app", true),
            ("${foo}", [Some("a"), None], "${foo}", true),
            ("${${account}}", [Some("a"), None], "${a}", true),
            ("${labels:a${account}}", [Some("x"), None], "${labels:ax}", true),
            // The regex test happens after substitution.
            ("${account}", [Some("/o/"), None], "foo", true),
            ("/${account}/", [Some("o"), None], "foo", true),
        ];
        for (raw, vars, value, want) in cases {
            let p = Pattern::compile(raw, &keys, true).unwrap();
            assert_eq!(p.is_match(value, vars, &Labels::new()), *want, "{raw:?} vs {value:?}");
        }
    }

    #[test]
    fn label_placeholders_expand_over_every_combination() {
        let l = labels(&[("g", &["a", "b"]), ("p", &["x", "y"]), ("none", &[])]);
        let cases = [
            ("${labels:g}/${labels:p}", "b/y", true),
            ("${labels:g}/${labels:p}", "a/z", false),
            ("${labels:g}-${labels:g}", "a-b", false),
            ("${labels:g}-${labels:g}", "b-b", true),
            ("${labels:g}/${labels:missing}", "a/x", false),
            ("${labels:g}/${labels:missing}", "a/${labels:missing}", true),
            ("${labels:none}*", "anything", false),
            // An empty value list yields no combination at all, as in docker_auth.
            ("${labels:g}/${labels:none}", "a/${labels:none}", false),
            ("${labels:missing}", "${labels:missing}", true),
        ];
        for (raw, value, want) in cases {
            let p = Pattern::compile(raw, &[], true).unwrap();
            assert_eq!(p.is_match(value, &[], &l), want, "{raw:?} vs {value:?}");
        }
        // Label values act as patterns, unquoted.
        let full = labels(&[("full-access", &["test/*"])]);
        let p = Pattern::compile("${labels:full-access}", &[], true).unwrap();
        assert!(p.is_match("test/foo", &[], &full));
        // Without expansion (label conditions) the placeholder is plain text.
        let p = Pattern::compile("${labels:g}", &[], false).unwrap();
        assert!(!p.is_template() && !p.is_match("a", &[], &l));
        assert!(p.is_match("${labels:g}", &[], &l));
    }

    #[test]
    fn compile_validates_raw_regex_and_reports_go_style() {
        let err = Pattern::compile("/(/", &[], true).err().unwrap_or_default();
        assert!(err.starts_with("invalid regex pattern: error parsing regexp: "), "{err}");
        assert!(Pattern::compile("/${account}_.*/", &["${account}"], true).is_ok());
        assert!(Pattern::compile("/foo?*/", &[], true).is_err());
        assert!(Pattern::compile("[", &[], true).is_ok());
        // A pattern that only becomes invalid after substitution never matches.
        let p = Pattern::compile("/${account}/", &["${account}"], true).unwrap();
        assert!(!p.is_match("(", &[Some("(")], &Labels::new()));
    }
}
