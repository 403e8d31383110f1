//! Required literal prefixes: text a value must start with for a pattern to match it, so
//! the ACL can skip entries by lookup instead of matching them. Computed once at load and
//! conservative: the empty prefix (no constraint) is always correct.

use super::regex_body;

/// Regex metacharacters (Go `regexp.QuoteMeta`): a literal run stops at the first one.
const REGEX_META: &str = r"\.+*?()[]{}^$|";

/// The prefix of a pattern without placeholders: a `/regex/` or a glob.
pub(super) fn fixed_prefix(raw: &str) -> String {
    match regex_body(raw) {
        Some(body) => regex_prefix(body).to_owned(),
        None => glob_prefix(raw),
    }
}

/// The literal text before a glob's first `*`, `?` or `[`, with `\x` read as `x`. A lone
/// trailing `\` stops it (in a template it would escape the value that follows). A
/// malformed glob never matches, so whatever this returns for it is safe.
pub(super) fn glob_prefix(glob: &str) -> String {
    let mut out = String::new();
    let mut chars = glob.chars();
    while let Some(c) = chars.next() {
        let literal = match c {
            '*' | '?' | '[' => break,
            '\\' => match chars.next() {
                Some(escaped) => escaped,
                None => break,
            },
            _ => c,
        };
        out.push(literal);
    }
    out
}

/// The literal run after a leading `^` of a Go regex body. Empty when the body is not
/// anchored or has a `|` anywhere (an alternative need not start at the anchor); flags
/// and escapes stop the run, so `(?i)` can never reach it.
fn regex_prefix(body: &str) -> &str {
    let Some(rest) = body.strip_prefix('^') else { return "" };
    if rest.contains('|') {
        return "";
    }
    let end = rest.find(|c| REGEX_META.contains(c)).unwrap_or(rest.len());
    let run = &rest[..end];
    // A quantifier applies to the run's last character, which may then be absent.
    if rest[end..].starts_with(['?', '*', '+', '{']) {
        let last = run.chars().next_back().map_or(0, char::len_utf8);
        return &run[..run.len() - last];
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::pattern::{quote_meta, Pattern};
    use crate::authz::test_rng::Rng;
    use crate::request::Labels;

    #[test]
    fn glob_prefix_stops_at_the_first_wildcard() {
        let cases = [
            ("team1/*", "team1/"),
            ("bench/app", "bench/app"),
            ("fo?", "fo"),
            ("ab[c]d", "ab"),
            ("*abc", ""),
            ("", ""),
            (r"a\*b*", "a*b"),
            (r"a\\b", r"a\b"),
            (r"a\", "a"),
            (r"\", ""),
            ("a]b*", "a]b"),
            ("é/x?", "é/x"),
            ("/", "/"),
            ("//", "//"),
        ];
        for (glob, want) in cases {
            assert_eq!(glob_prefix(glob), want, "{glob:?}");
        }
    }

    #[test]
    fn regex_prefix_takes_the_anchored_literal_run() {
        let cases = [
            ("^svc-1-[a-z]+$", "svc-1-"),
            ("^svc1/.+", "svc1/"),
            ("^abc", "abc"),
            ("^abc$", "abc"),
            ("^abc?", "ab"),
            ("^abc*d", "ab"),
            ("^abc+", "ab"),
            ("^abc{2}", "ab"),
            ("^abé?", "ab"),
            ("^ab(c)?", "ab"),
            (r"^ab\.c", "ab"),
            (r"^ab\d?", "ab"),
            ("^ab[c]*", "ab"),
            ("^a?", ""),
            ("^", ""),
            ("^^ab", ""),
            ("^(?i)abc", ""),
            (r"^\Qab\E", ""),
            ("^ab|cd", ""),
            ("^ab(c|d)", ""),
            ("abc", ""),
            ("a^bc", ""),
            ("(?m)^abc", ""),
            ("^a b#c", "a b#c"),
        ];
        for (body, want) in cases {
            assert_eq!(regex_prefix(body), want, "{body:?}");
        }
    }

    #[test]
    fn fixed_prefix_reads_regexes_and_globs() {
        let cases = [
            ("/^svc-1-[a-z]+$/", "svc-1-"),
            ("/abc/", ""),
            ("/^a", "/^a"),
            ("//", "//"),
            ("/", "/"),
            ("team1-*", "team1-"),
        ];
        for (raw, want) in cases {
            assert_eq!(fixed_prefix(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn template_prefix_is_the_leading_glob_text() {
        let cases = [
            ("ns1/${account}/*", "ns1/"),
            ("team-${labels:g}/*", "team-"),
            ("a*${account}", "a"),
            (r"ab\${account}", "ab"),
            (r"ab\\${account}", r"ab\"),
            ("${account}", ""),
            ("${labels:g}/x", ""),
            ("/${account}/", ""),
            ("/x${account}", ""),
            // Unknown placeholders stay literal: a plain glob.
            ("${foo}bar", "${foo}bar"),
        ];
        for (raw, want) in cases {
            let p = Pattern::compile(raw, &["${account}"], true).unwrap();
            assert_eq!(p.literal_prefix(), want, "{raw:?}");
        }
        // Without label expansion `${labels:g}` is plain text.
        assert_eq!(Pattern::compile("${labels:g}x", &[], false).unwrap().literal_prefix(), "${labels:g}x");
    }

    /// A pattern token and texts it may match, to build values that often match.
    type Token = (&'static str, &'static [&'static str]);

    const GLOB: &[Token] = &[
        ("a", &["a"]),
        ("b", &["b"]),
        ("/", &["/"]),
        ("-", &["-"]),
        ("é", &["é"]),
        ("*", &["", "a", "ab", "é"]),
        ("?", &["a", "é", "/"]),
        ("[ab]", &["a", "b"]),
        ("[^a]", &["a", "b"]),
        (r"\*", &["*"]),
        (r"\a", &["a"]),
        ("[", &["["]),
        ("]", &["]"]),
    ];

    const REGEX: &[Token] = &[
        ("a", &["a"]),
        ("b", &["b"]),
        ("/", &["/"]),
        ("é", &["é"]),
        (".", &["a", "x"]),
        ("a?", &["", "a"]),
        ("b*", &["", "b", "bb"]),
        ("é+", &["é", "éé"]),
        ("x{1,2}", &["x", "xx"]),
        ("(a|b)", &["a", "b"]),
        ("|", &[""]),
        ("[ab]", &["a", "b"]),
        (r"\.", &["."]),
        (r"\d", &["1"]),
        ("(?i)a", &["A", "a"]),
        ("$", &[""]),
        ("{", &["{"]),
    ];

    /// Template-only tokens: placeholders (texts from the case's values) and a lone `\`,
    /// which escapes whatever the next token renders.
    const PLACEHOLDERS: &[&str] = &["${account}", "${labels:g}", "\\"];

    /// A random pattern and, per token, the texts it may match.
    struct Case {
        raw: String,
        parts: Vec<Vec<String>>,
    }

    impl Case {
        fn push(&mut self, token: &str, texts: Vec<String>) {
            self.raw.push_str(token);
            self.parts.push(texts);
        }

        fn random(rng: &mut Rng, account: &str, labels: &[String]) -> Case {
            let (regex, template) = (rng.below(2) == 0, rng.below(2) == 0);
            let mut case = Case { raw: String::new(), parts: Vec::new() };
            if regex {
                case.push("/", vec![String::new()]);
                if rng.below(4) > 0 {
                    case.push("^", vec![String::new()]);
                }
            }
            let tokens = if regex { REGEX } else { GLOB };
            for _ in 0..rng.below(6) + 1 {
                if template && rng.below(3) == 0 {
                    match *rng.pick(PLACEHOLDERS) {
                        "${account}" => case.push("${account}", vec![account.to_owned()]),
                        "${labels:g}" => {
                            // docker_auth also tries the placeholder left literal.
                            let texts = labels.iter().cloned().chain(["${labels:g}".to_owned()]);
                            case.push("${labels:g}", texts.collect())
                        }
                        other => case.push(other, vec![other.to_owned(), String::new()]),
                    }
                } else {
                    let (token, texts) = rng.pick(tokens);
                    case.push(token, texts.iter().map(|t| t.to_string()).collect());
                }
            }
            if regex {
                case.push("/", vec![String::new()]);
            }
            case
        }

        /// A value built from the tokens' texts, sometimes disturbed at the start.
        fn value(&self, rng: &mut Rng) -> String {
            let mut v: String = self.parts.iter().map(|texts| rng.pick(texts).as_str()).collect();
            match rng.below(8) {
                0 => v.insert(0, *rng.pick(&['a', 'b', 'x', '/'])),
                1 if !v.is_empty() => _ = v.remove(0),
                _ => {}
            }
            v
        }
    }

    /// Whenever a pattern matches a value, the value starts with the pattern's prefix:
    /// seeded random globs, anchored and unanchored regexes, and templates with labels.
    #[test]
    fn every_match_starts_with_the_literal_prefix() {
        let mut rng = Rng::new(0x70_72_65_66);
        let (mut matched, mut constrained) = (0, 0);
        for _ in 0..800 {
            let len = rng.below(3) + 1;
            let account = rng.string(&["a", "b", ".", "é", "*", "/", "o"], len);
            let values: Vec<String> =
                (0..rng.below(3)).map(|_| rng.pick(&["a", "b", "a*", "é", "["]).to_string()).collect();
            let labels: Labels = [("g".to_owned(), values.clone())].into();
            let case = Case::random(&mut rng, &account, &values);
            let Ok(p) = Pattern::compile(&case.raw, &["${account}"], true) else { continue };
            let quoted = quote_meta(&account);
            for _ in 0..8 {
                let value = case.value(&mut rng);
                if !p.is_match(&value, &[Some(&quoted)], &labels) {
                    continue;
                }
                matched += 1;
                constrained += usize::from(!p.literal_prefix().is_empty());
                assert!(value.starts_with(p.literal_prefix()), "{:?} matched {value:?}: {p:?}", case.raw);
            }
        }
        assert!(matched > 1000 && constrained > 500, "{matched} matches, {constrained} with a prefix");
    }
}
