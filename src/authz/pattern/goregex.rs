//! Go RE2 regex syntax translated to the `regex` crate's dialect, so that exactly what Go
//! accepts loads (nested repetition such as `foo?*` is an error in Go, literal `{` is not).

use regex::Regex;

/// Compiles a Go RE2 regex with the `regex` crate, rejecting what Go rejects.
pub fn go_regex(src: &str) -> Result<Regex, String> {
    let translated = Translator { src, pos: 0, out: String::new(), operand: false, last_repeat: None }.run()?;
    Regex::new(&translated).map_err(|e| {
        let text = e.to_string();
        let reason = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default();
        format!("error parsing regexp: {}", reason.trim_start_matches("error: "))
    })
}

fn syntax(code: &str, expr: &str) -> String {
    format!("error parsing regexp: {code}: `{expr}`")
}

/// Go's Perl classes are ASCII-only: (negated, class body).
fn perl_class(c: char) -> Option<(bool, &'static str)> {
    let body = match c.to_ascii_lowercase() {
        'd' => "0-9",
        's' => r"\t\n\x0C\r ",
        'w' => "0-9A-Za-z_",
        _ => return None,
    };
    "dswDSW".contains(c).then_some((c.is_ascii_uppercase(), body))
}

/// One escape sequence, as Go's parser reads it.
enum Esc {
    Char(char),
    Perl(bool, &'static str),
    Unicode(String),
}

impl Esc {
    /// The `regex` crate's text, inside a class or standing alone.
    fn text(&self, in_class: bool) -> String {
        match self {
            Esc::Char(c) if in_class => class_literal(*c),
            Esc::Char(c) => regex::escape(c.encode_utf8(&mut [0; 4])),
            Esc::Perl(false, body) if in_class => (*body).to_owned(),
            Esc::Perl(negated, body) => format!("[{}{body}]", if *negated { "^" } else { "" }),
            Esc::Unicode(text) => text.clone(),
        }
    }
}

/// Rewrites Go regex syntax into the `regex` crate's dialect.
struct Translator<'a> {
    src: &'a str,
    pos: usize,
    out: String,
    /// Go's parse stack has an operand on top (not empty, `(` or `|`).
    operand: bool,
    /// Start of the previous token when it was a repetition operator.
    last_repeat: Option<usize>,
}

impl<'a> Translator<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn literal(&mut self, c: char) {
        self.out.push_str(&Esc::Char(c).text(false));
        self.operand = true;
    }

    fn run(mut self) -> Result<String, String> {
        while let Some(c) = self.bump() {
            let start = self.pos - c.len_utf8();
            let mut repeat = None;
            match c {
                '*' | '+' | '?' => repeat = Some(self.repeat(start)?),
                '{' => match repeat_bounds(self.rest()) {
                    Some((len, min, max)) => {
                        self.pos += len;
                        if min > 1000 || max.is_some_and(|m| m > 1000 || min > m) {
                            return Err(syntax("invalid repeat count", &self.src[start..self.pos]));
                        }
                        repeat = Some(self.repeat(start)?);
                    }
                    None => self.literal('{'),
                },
                '(' => self.group(start)?,
                '|' => {
                    self.out.push('|');
                    self.operand = false;
                }
                ')' | '^' | '$' | '.' => {
                    self.out.push(c);
                    self.operand = true;
                }
                '[' => self.class(start)?,
                '\\' => self.escape_top(start)?,
                _ => self.literal(c),
            }
            self.last_repeat = repeat;
        }
        Ok(self.out)
    }

    /// A repetition operator `src[start..pos]`, plus an optional non-greedy `?`.
    fn repeat(&mut self, start: usize) -> Result<usize, String> {
        if self.peek() == Some('?') {
            self.pos += 1;
        }
        if let Some(prev) = self.last_repeat {
            let expr = &self.src[prev..self.pos];
            return Err(syntax("invalid nested repetition operator", expr));
        }
        let op = &self.src[start..self.pos];
        if !self.operand {
            return Err(syntax("missing argument to repetition operator", op));
        }
        self.out.push_str(op);
        Ok(start)
    }

    fn group(&mut self, start: usize) -> Result<(), String> {
        let rest = self.rest();
        let Some(after) = rest.strip_prefix("?P<").or_else(|| rest.strip_prefix("?<")) else {
            if rest.starts_with('?') {
                return self.flags(start);
            }
            self.out.push('(');
            self.operand = false;
            return Ok(());
        };
        let bad = || syntax("invalid named capture", &self.src[start..]);
        let name = &after[..after.find('>').ok_or_else(bad)?];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(bad());
        }
        self.pos += rest.len() - after.len() + name.len() + 1;
        self.out.push_str(&format!("(?P<{name}>"));
        self.operand = false;
        Ok(())
    }

    /// `(?flags)` or `(?flags:`; Go knows only `i`, `m`, `s`, `U` and one `-`.
    fn flags(&mut self, start: usize) -> Result<(), String> {
        self.pos += 1;
        let (mut on, mut off, mut negated) = (String::new(), String::new(), false);
        while let Some(c) = self.bump() {
            match c {
                'i' | 'm' | 's' | 'U' if negated => off.extend((!off.contains(c)).then_some(c)),
                'i' | 'm' | 's' | 'U' => on.extend((!on.contains(c)).then_some(c)),
                '-' if !negated => negated = true,
                ':' | ')' if !negated || !off.is_empty() => {
                    on.retain(|f| !off.contains(f));
                    let flags = if off.is_empty() { on } else { format!("{on}-{off}") };
                    // A bare flag group leaves Go's parse stack (and `operand`) as it was.
                    if c == ':' {
                        self.out.push_str(&format!("(?{flags}:"));
                        self.operand = false;
                    } else if !flags.is_empty() {
                        self.out.push_str(&format!("(?{flags})"));
                    }
                    return Ok(());
                }
                _ => break,
            }
        }
        Err(syntax("invalid or unsupported Perl syntax", &self.src[start..self.pos]))
    }

    /// A character class, from after `[` to its `]`.
    fn class(&mut self, start: usize) -> Result<(), String> {
        self.out.push('[');
        if self.peek() == Some('^') {
            self.pos += 1;
            self.out.push('^');
        }
        let mut first = true;
        loop {
            let rest = self.rest();
            if rest.is_empty() {
                return Err(syntax("missing closing ]", &self.src[start..]));
            }
            if rest.starts_with(']') && !first {
                self.pos += 1;
                self.out.push(']');
                self.operand = true;
                return Ok(());
            }
            first = false;
            if rest.starts_with("[:") && self.named_class()? {
                continue;
            }
            self.class_item()?;
        }
    }

    /// `[:alpha:]` or `[:^alpha:]`; false when the text is not a named class at all.
    fn named_class(&mut self) -> Result<bool, String> {
        const NAMES: [&str; 14] = [
            "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct", "space", "upper",
            "word", "xdigit",
        ];
        let rest = self.rest();
        let Some(end) = rest[2..].find(":]") else {
            return Ok(false);
        };
        let full = &rest[..end + 4];
        let name = &rest[2..end + 2];
        if !NAMES.contains(&name.strip_prefix('^').unwrap_or(name)) {
            return Err(syntax("invalid character class range", full));
        }
        self.out.push_str(full);
        self.pos += full.len();
        Ok(true)
    }

    /// A class item: a Perl or Unicode class, a character or a range.
    fn class_item(&mut self) -> Result<(), String> {
        let item_start = self.pos;
        let lo = match self.class_char()? {
            Esc::Char(c) => c,
            class => {
                self.out.push_str(&class.text(true));
                return Ok(());
            }
        };
        self.out.push_str(&class_literal(lo));
        let rest = self.rest();
        if rest.len() < 2 || !rest.starts_with('-') || rest[1..].starts_with(']') {
            return Ok(());
        }
        self.pos += 1;
        let hi_start = self.pos;
        let Esc::Char(hi) = self.class_char()? else {
            return Err(syntax("invalid escape sequence", &self.src[hi_start..self.pos]));
        };
        if hi < lo {
            return Err(syntax("invalid character class range", &self.src[item_start..self.pos]));
        }
        self.out.push('-');
        self.out.push_str(&class_literal(hi));
        Ok(())
    }

    fn class_char(&mut self) -> Result<Esc, String> {
        let start = self.pos;
        match self.bump() {
            Some('\\') => self.escape(start),
            Some(c) => Ok(Esc::Char(c)),
            None => Err(syntax("missing closing ]", &self.src[start..])),
        }
    }

    /// An escape outside a class, where `\Q..\E` and assertions are also allowed.
    fn escape_top(&mut self, start: usize) -> Result<(), String> {
        let assertion = match self.peek() {
            Some('b') => r"(?-u:\b)",
            Some('B') => r"(?-u:\B)",
            Some('A') => r"\A",
            Some('z') => r"\z",
            Some('Q') => {
                self.quoted();
                return Ok(());
            }
            _ => "",
        };
        if !assertion.is_empty() {
            self.pos += 1;
            self.out.push_str(assertion);
            self.operand = true;
            return Ok(());
        }
        let text = self.escape(start)?.text(false);
        self.out.push_str(&text);
        self.operand = true;
        Ok(())
    }

    /// `\Q...\E` (or to the end): literal text.
    fn quoted(&mut self) {
        self.pos += 1;
        let rest = self.rest();
        let (text, after) = rest.split_once(r"\E").unwrap_or((rest, ""));
        self.pos = self.src.len() - after.len();
        text.chars().for_each(|c| self.literal(c));
    }

    /// The escape after a backslash at `start`, as Go's `parseEscape` and class parsers read it.
    fn escape(&mut self, start: usize) -> Result<Esc, String> {
        let Some(c) = self.bump() else {
            return Err(syntax("trailing backslash at end of expression", ""));
        };
        let char_of = |v: u32| char::from_u32(v).map(Esc::Char);
        let esc = match c {
            '1'..='7' if self.peek().is_some_and(|d| d.is_digit(8)) => char_of(self.octal(c)),
            '0' => char_of(self.octal(c)),
            'x' => self.hex().and_then(char_of),
            'a' => Some(Esc::Char('\x07')),
            'f' => Some(Esc::Char('\x0C')),
            'n' => Some(Esc::Char('\n')),
            'r' => Some(Esc::Char('\r')),
            't' => Some(Esc::Char('\t')),
            'v' => Some(Esc::Char('\x0B')),
            'p' | 'P' => self.unicode(c == 'P'),
            _ if c.is_ascii() && !c.is_ascii_alphanumeric() => Some(Esc::Char(c)),
            _ => perl_class(c).map(|(n, body)| Esc::Perl(n, body)),
        };
        esc.ok_or_else(|| syntax("invalid escape sequence", &self.src[start..self.pos]))
    }

    /// Up to three octal digits, the first already read.
    fn octal(&mut self, first: char) -> u32 {
        let mut v = first.to_digit(8).unwrap_or(0);
        for _ in 0..2 {
            match self.peek().and_then(|d| d.to_digit(8)) {
                Some(d) => (v, self.pos) = (v * 8 + d, self.pos + 1),
                None => break,
            }
        }
        v
    }

    /// `\xHH` or `\x{H...}` (after the `x`).
    fn hex(&mut self) -> Option<u32> {
        let rest = self.rest();
        let (digits, len) = match rest.strip_prefix('{') {
            Some(body) => {
                let end = body.find('}')?;
                (&body[..end], end + 2)
            }
            None => (rest.get(..2)?, 2),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let v = u32::from_str_radix(digits, 16).ok().filter(|v| *v <= 0x10FFFF)?;
        self.pos += len;
        Some(v)
    }

    /// `\pL`, `\p{Greek}`, `\p{^Greek}` (Go's negated form, which `regex` lacks).
    fn unicode(&mut self, mut negated: bool) -> Option<Esc> {
        let rest = self.rest();
        let name = match rest.strip_prefix('{') {
            Some(body) => &body[..body.find('}')?],
            None => rest.get(..rest.chars().next()?.len_utf8())?,
        };
        self.pos += if rest.starts_with('{') { name.len() + 2 } else { name.len() };
        let name = match name.strip_prefix('^') {
            Some(n) => {
                negated = !negated;
                n
            }
            None => name,
        };
        let p = if negated { 'P' } else { 'p' };
        (!name.is_empty()).then(|| Esc::Unicode(format!("\\{p}{{{name}}}")))
    }
}

/// Go's `{n}`, `{n,}` or `{n,m}` after the `{`: (length through `}`, min, max).
/// Anything else makes the `{` a literal.
fn repeat_bounds(s: &str) -> Option<(usize, u32, Option<u32>)> {
    let (min, mut n) = go_int(s)?;
    let max = match s[n..].chars().next()? {
        '}' => Some(min),
        ',' if s[n + 1..].starts_with('}') => {
            n += 1;
            None
        }
        ',' => {
            let (max, len) = go_int(&s[n + 1..])?;
            n += 1 + len;
            Some(max)
        }
        _ => return None,
    };
    s[n..].starts_with('}').then_some((n + 1, min, max))
}

/// Go's `parseInt` for repeat counts: digits without a leading zero; saturates.
fn go_int(s: &str) -> Option<(u32, usize)> {
    let len = s.bytes().take_while(u8::is_ascii_digit).count();
    if len == 0 || (len > 1 && s.starts_with('0')) {
        return None;
    }
    let v = s[..len].bytes().fold(0u32, |v, d| v.saturating_mul(10).saturating_add(u32::from(d - b'0')));
    Some((v, len))
}

/// A character inside a class, escaped where the `regex` crate gives it a meaning
/// (nested classes and `&&`, `--`, `~~` set operations) that Go does not.
fn class_literal(c: char) -> String {
    if matches!(c, '\\' | '[' | ']' | '-' | '^' | '&' | '~') {
        format!("\\{c}")
    } else {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go syntax accepted or rejected as Go does, and Go semantics where the dialects differ.
    /// `None` = must fail to compile.
    #[test]
    fn go_regex_dialect() {
        let cases: &[(&str, &str, Option<bool>)] = &[
            ("foo.*", "foox", Some(true)),
            ("foo?*", "foo", None),
            ("a**", "a", None),
            ("a+*", "a", None),
            ("a*??", "a", None),
            ("x{2}{3}", "xx", None),
            ("a{2}*", "aa", None),
            ("a*?", "a", Some(true)),
            ("a{1,2}?b", "aab", Some(true)),
            ("*a", "a", None),
            ("a|*", "a", None),
            ("(*)", "a", None),
            ("{2}", "a", None),
            ("a{1001}", "a", None),
            ("a{3,2}", "a", None),
            ("a{1000}", "a", Some(false)),
            ("${account}_.*", "foo_x", Some(false)),
            ("a{,5}", "a{,5}", Some(true)),
            ("a{01}", "a{01}", Some(true)),
            ("a{x}", "a{x}", Some(true)),
            ("a}", "a}", Some(true)),
            ("a]", "a]", Some(true)),
            ("^\\d$", "٣", Some(false)),
            ("^\\d$", "3", Some(true)),
            ("^\\w$", "é", Some(false)),
            ("^\\s$", "\u{A0}", Some(false)),
            ("^\\S$", "\u{A0}", Some(true)),
            ("x\\b", "xé", Some(true)),
            ("^[\\d]$", "٣", Some(false)),
            ("^[^\\D]$", "7", Some(true)),
            ("^[\\w-]+$", "a-b_c", Some(true)),
            ("\\Q.*\\E", "a", Some(false)),
            ("\\Q.*\\E", "x.*y", Some(true)),
            ("\\Qa.b", "a.b", Some(true)),
            ("\\<a\\>", "<a>", Some(true)),
            ("\\/", "/", Some(true)),
            ("^[a&&b]$", "&", Some(true)),
            ("^[a[]$", "[", Some(true)),
            ("^[+--]$", ",", Some(true)),
            ("[a--]", "-", None),
            ("^[]a]$", "]", Some(true)),
            ("^[^]a]$", "b", Some(true)),
            ("^[a-]$", "-", Some(true)),
            ("[z-a]", "a", None),
            ("[a", "a", None),
            ("[]", "]", None),
            ("^[[:alpha:]]$", "b", Some(true)),
            ("^[[:^alpha:]]$", "b", Some(false)),
            ("[[:foo:]]", "f", None),
            ("^[[:a]$", ":", Some(true)),
            ("^\\p{^Greek}$", "a", Some(true)),
            ("^\\p{^Greek}$", "α", Some(false)),
            ("^\\P{^Greek}$", "α", Some(true)),
            ("^\\pL$", "é", Some(true)),
            ("^[\\p{Greek}x]$", "x", Some(true)),
            ("(?i)K", "k", Some(true)),
            ("(?i:a)B", "Ab", Some(false)),
            ("(?i-i)a", "A", Some(false)),
            ("(?)a", "a", Some(true)),
            ("(?x)a", "a", None),
            ("(?i-)a", "a", None),
            ("(?-)a", "a", None),
            ("(?P=n)", "a", None),
            ("(?P<n>a)(?<m>b)", "ab", Some(true)),
            ("(?P<>a)", "a", None),
            ("\\101\\x42\\x{43}", "ABC", Some(true)),
            ("^[\\x41-\\x43]$", "B", Some(true)),
            ("\\0", "\0", Some(true)),
            ("\\1", "a", None),
            ("\\8", "a", None),
            ("\\C", "a", None),
            ("\\u0041", "A", None),
            ("\\", "a", None),
            ("(", "a", None),
            (")", "a", None),
            ("\\a\\f\\t\\v", "\x07\x0C\t\x0B", Some(true)),
            ("\\Aab\\z", "ab", Some(true)),
        ];
        for (src, text, want) in cases {
            let got = go_regex(src).map(|re| re.is_match(text)).ok();
            assert_eq!(got, *want, "{src:?} on {text:?}");
        }
    }

    #[test]
    fn go_regex_errors_read_like_go() {
        let cases = [
            ("foo?*", "error parsing regexp: invalid nested repetition operator: `?*`"),
            ("a*??", "error parsing regexp: invalid nested repetition operator: `*??`"),
            ("*", "error parsing regexp: missing argument to repetition operator: `*`"),
            ("a{1001}", "error parsing regexp: invalid repeat count: `{1001}`"),
            ("[a", "error parsing regexp: missing closing ]: `[a`"),
            ("\\8", "error parsing regexp: invalid escape sequence: `\\8`"),
        ];
        for (src, want) in cases {
            assert_eq!(go_regex(src).err().as_deref(), Some(want), "{src:?}");
        }
        let unclosed = go_regex("(").err().unwrap_or_default();
        assert!(unclosed.starts_with("error parsing regexp: ") && !unclosed.contains('\n'));
    }
}
