//! One ACL string pattern, matched exactly as docker_auth matches it (`authz/acl.go`).
//!
//! A pattern is variable-substituted first, then a `/regex/` (longer than 2 bytes) is an
//! unanchored Go RE2 search and anything else is a whole-string Go `path.Match` glob.
//! Patterns without placeholders are compiled once at load; templates are rendered per
//! request. Go's regex dialect differs from the `regex` crate's (literal `{`, ASCII `\d`,
//! nested repetition is an error), so Go syntax is translated before compiling.

use regex::Regex;

use crate::request::Labels;

/// A compiled pattern for one field or label condition.
#[derive(Debug)]
pub struct Pattern(Kind);

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
        Ok(Pattern(if template.is_literal() { Kind::Fixed(fixed) } else { Kind::Template(template) }))
    }

    /// Whether matching needs per-request placeholder values.
    pub fn is_template(&self) -> bool {
        matches!(self.0, Kind::Template(_))
    }

    /// `vars[slot]` is the value of placeholder `keys[slot]`; `None` leaves it literal.
    pub fn is_match(&self, value: &str, vars: &[Option<&str>], labels: &Labels) -> bool {
        match &self.0 {
            Kind::Fixed(m) => m.is_match(value),
            Kind::Template(t) => t.is_match(value, vars, labels),
        }
    }
}

/// Whether `p` is a `/regex/`, and its body.
fn regex_body(p: &str) -> Option<&str> {
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

    fn matches_with(&self, value: &str, vars: &[Option<&str>], picks: &[Option<&str>]) -> bool {
        Matcher::new(&self.render(vars, picks)).is_ok_and(|m| m.is_match(value))
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

/// A malformed glob (Go `path.ErrBadPattern`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadGlob;

/// Go `path.Match`, ported line for line: whole-string, `*` and `?` never match `/`,
/// classes `[a-z]` / `[^a]`, `\` escapes. Works on bytes and runes exactly as Go does.
pub fn glob_match(pattern: &str, name: &str) -> Result<bool, BadGlob> {
    let (mut pat, mut name) = (pattern.as_bytes(), name.as_bytes());
    'chunks: while !pat.is_empty() {
        let (star, chunk, rest) = scan_chunk(pat);
        pat = rest;
        if star && chunk.is_empty() {
            return Ok(!name.contains(&b'/'));
        }
        if let Some(t) = match_chunk(chunk, name)? {
            if t.is_empty() || !pat.is_empty() {
                name = t;
                continue;
            }
        }
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                if let Some(t) = match_chunk(chunk, &name[i + 1..])? {
                    if pat.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'chunks;
                }
                i += 1;
            }
        }
        // Go checks that the rest of the pattern is well-formed before saying no.
        while !pat.is_empty() {
            let (_, chunk, rest) = scan_chunk(pat);
            pat = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off leading stars and the following star-free chunk.
fn scan_chunk(mut p: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while let [b'*', rest @ ..] = p {
        p = rest;
        star = true;
    }
    let (mut in_range, mut i) = (false, 0);
    while i < p.len() {
        match p[i] {
            b'\\' if i + 1 < p.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => return (star, &p[..i], &p[i..]),
            _ => {}
        }
        i += 1;
    }
    (star, p, &[])
}

/// Matches one chunk at the start of `s`; returns the rest of `s` on success. After a
/// mismatch it keeps parsing, so a malformed chunk is always reported.
fn match_chunk<'s>(mut chunk: &[u8], mut s: &'s [u8]) -> Result<Option<&'s [u8]>, BadGlob> {
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        failed |= s.is_empty();
        match c {
            b'[' => {
                let mut r = 0;
                if !failed {
                    let (rune, n) = decode_rune(s);
                    (r, s) = (rune, &s[n..]);
                }
                let (matched, rest) = match_class(&chunk[1..], r)?;
                chunk = rest;
                failed |= !matched;
            }
            b'?' => {
                if !failed {
                    failed = s[0] == b'/';
                    s = &s[decode_rune(s).1..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c == b'\\' {
                    chunk = &chunk[1..];
                }
                let &lit = chunk.first().ok_or(BadGlob)?;
                if !failed {
                    failed = lit != s[0];
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok((!failed).then_some(s))
}

/// Parses a class body (after `[`) and tests rune `r`; returns (matched, rest).
fn match_class(mut chunk: &[u8], r: u32) -> Result<(bool, &[u8]), BadGlob> {
    let negated = chunk.first() == Some(&b'^');
    if negated {
        chunk = &chunk[1..];
    }
    let (mut matched, mut ranges) = (false, 0);
    loop {
        if chunk.first() == Some(&b']') && ranges > 0 {
            return Ok((matched != negated, &chunk[1..]));
        }
        let (lo, rest) = class_char(chunk)?;
        let (mut hi, mut rest) = (lo, rest);
        if rest.first() == Some(&b'-') {
            (hi, rest) = class_char(&rest[1..])?;
        }
        chunk = rest;
        matched |= lo <= r && r <= hi;
        ranges += 1;
    }
}

/// Go `getEsc`: one possibly escaped class character, which must not end the pattern.
fn class_char(chunk: &[u8]) -> Result<(u32, &[u8]), BadGlob> {
    let chunk = match chunk {
        [] | [b'-', ..] | [b']', ..] => return Err(BadGlob),
        [b'\\', rest @ ..] => rest,
        _ => chunk,
    };
    let (r, n) = decode_rune(chunk);
    if (r == 0xFFFD && n == 1) || chunk.len() <= n {
        return Err(BadGlob);
    }
    Ok((r, &chunk[n..]))
}

/// Go `utf8.DecodeRune`: (U+FFFD, 1) for invalid UTF-8, (U+FFFD, 0) for empty input.
fn decode_rune(s: &[u8]) -> (u32, usize) {
    let Some(chunk) = s.utf8_chunks().next() else {
        return (0xFFFD, 0);
    };
    match chunk.valid().chars().next() {
        Some(c) => (u32::from(c), c.len_utf8()),
        None => (0xFFFD, 1),
    }
}

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

    const BAD: Result<bool, BadGlob> = Err(BadGlob);

    /// Go's own table, `src/path/match_test.go`.
    #[test]
    fn glob_matches_go_path_match_table() {
        let cases: &[(&str, &str, Result<bool, BadGlob>)] = &[
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(false)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Ok(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^b-d]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("a???b", "a☺b", Ok(false)),
            ("a[^a][^a][^a]b", "a☺b", Ok(false)),
            ("[a-ζ]*", "α", Ok(true)),
            ("*[a-ζ]", "A", Ok(false)),
            ("a?b", "a/b", Ok(false)),
            ("a*b", "a/b", Ok(false)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "x", Ok(true)),
            ("[x\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[\\-x]", "x", Ok(true)),
            ("[\\-x]", "-", Ok(true)),
            ("[\\-x]", "a", Ok(false)),
            ("[]a]", "]", BAD),
            ("[-]", "-", BAD),
            ("[x-]", "x", BAD),
            ("[x-]", "-", BAD),
            ("[x-]", "z", BAD),
            ("[-x]", "x", BAD),
            ("[-x]", "-", BAD),
            ("[-x]", "a", BAD),
            ("\\", "a", BAD),
            ("[a-b-c]", "a", BAD),
            ("[", "a", BAD),
            ("[^", "a", BAD),
            ("[^bc", "a", BAD),
            ("a[", "a", BAD),
            ("a[", "ab", BAD),
            ("a[", "x", BAD),
            ("a/b[", "x", BAD),
            ("*x", "xxx", Ok(true)),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(glob_match(pattern, name), *want, "Match({pattern:?}, {name:?})");
        }
    }

    /// parity.md §4.2–4.3 on globs (issue #366 and friends).
    #[test]
    fn glob_matches_parity_examples() {
        let cases = [
            ("foo/*", "foo/bar", true),
            ("foo/*", "foo/", true),
            ("foo/*", "foo/bar/baz", false),
            ("*", "a/b", false),
            ("*/*", "a/b", true),
            ("*", "", true),
            ("", "", true),
            ("", "a", false),
            ("[!a]", "!", true),
            ("[!a]", "b", false),
            ("Foo", "foo", false),
            ("//", "//", true),
            ("\\*", "*", true),
            ("\\*", "x", false),
        ];
        for (pattern, name, want) in cases {
            let m = Matcher::new(pattern).unwrap();
            assert_eq!(m.is_match(name), want, "{pattern:?} vs {name:?}");
        }
    }

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
