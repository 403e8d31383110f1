//! Go `path.Match` globs, ported line for line (docker_auth matches ACL globs with it).

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::pattern::Matcher;
    use crate::authz::test_rng::Rng;

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

    /// Go checks the whole pattern whatever the name, so a glob that is malformed for ""
    /// is malformed for every name; templates rely on this to skip a separate check.
    #[test]
    fn a_malformed_glob_fails_for_every_name() {
        let tokens = ["a", "b", "/", "-", "é", "*", "?", "[", "]", "^", "\\", "[a-b]", "\\*"];
        let mut rng = Rng::new(0x61_6c_6f_62);
        let mut malformed = 0;
        for _ in 0..3000 {
            let len = rng.below(7);
            let pattern = rng.string(&tokens, len);
            if glob_match(&pattern, "").is_ok() {
                continue;
            }
            malformed += 1;
            for _ in 0..20 {
                let len = rng.below(6);
                let name = rng.string(&tokens, len);
                assert_eq!(glob_match(&pattern, &name), Err(BadGlob), "{pattern:?} vs {name:?}");
            }
        }
        assert!(malformed > 300, "only {malformed} malformed globs generated");
    }
}
