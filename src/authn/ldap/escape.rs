//! Text that crosses into LDAP syntax: filter values (RFC 4515), DN values (RFC 4514),
//! and reading the first `CN=` out of a DN for `parse_cn`. Pure functions, no I/O.

/// Escapes a value for a search filter: docker_auth's set `\ ( ) ! * & | = > < ~` plus NUL,
/// each as `\hh`. `*` matters most: unescaped, `ali*` would be a wildcard search.
pub fn filter_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' | '(' | ')' | '!' | '*' | '&' | '|' | '=' | '>' | '<' | '~' | '\0' => {
                out.push_str(&format!("\\{:02x}", c as u32));
            }
            _ => out.push(c),
        }
    }
    out
}

/// Escapes a value for an attribute value inside a DN, so an account such as
/// `alice,ou=admins` stays one RDN value instead of adding RDNs.
pub fn dn_value(value: &str) -> String {
    let last = value.chars().count().saturating_sub(1);
    let mut out = String::with_capacity(value.len());
    for (i, c) in value.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\00"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '#' if i == 0 => out.push_str("\\#"),
            _ => out.push(c),
        }
    }
    out
}

/// `template` with `${name}` replaced by the value, for each pair.
pub fn substitute(template: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(template.to_string(), |text, (name, value)| text.replace(&format!("${{{name}}}"), value))
}

/// docker_auth's `parse_cn`: the value of the first RDN whose type is `CN` (any case),
/// unescaped; the whole input when there is none or the DN does not parse.
pub fn first_cn(dn: &str) -> String {
    split_unescaped(dn, &[',', '+'])
        .into_iter()
        .filter_map(|rdn| rdn.split_once('='))
        .find(|(kind, _)| kind.trim().eq_ignore_ascii_case("cn"))
        .and_then(|(_, value)| unescape_dn_value(value.trim()))
        .unwrap_or_else(|| dn.to_string())
}

/// Splits at separators that are not escaped with a backslash.
fn split_unescaped<'a>(text: &'a str, separators: &[char]) -> Vec<&'a str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if separators.contains(&c) {
            parts.push(&text[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&text[start..]);
    parts
}

/// `\,` → `,` and `\hh` → the byte; `None` for a dangling backslash or invalid UTF-8.
fn unescape_dn_value(value: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        if b != b'\\' {
            bytes.push(b);
            continue;
        }
        let hex = rest.get(..2).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(byte) => {
                bytes.push(byte);
                rest = &rest[2..];
            }
            None => {
                let (&next, tail) = rest.split_first()?;
                bytes.push(next);
                rest = tail;
            }
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_escaping_covers_docker_auths_set_and_nul() {
        assert_eq!(filter_value("alice"), "alice");
        assert_eq!(filter_value("*"), "\\2a");
        assert_eq!(filter_value(")(uid=*"), "\\29\\28uid\\3d\\2a");
        assert_eq!(filter_value("\\()!*&|=><~\0"), "\\5c\\28\\29\\21\\2a\\26\\7c\\3d\\3e\\3c\\7e\\00");
        assert_eq!(filter_value("jürgen"), "jürgen");
    }

    #[test]
    fn dn_escaping_keeps_one_rdn_value() {
        assert_eq!(dn_value("alice"), "alice");
        assert_eq!(dn_value("alice,ou=admins"), "alice\\,ou\\=admins");
        assert_eq!(dn_value(" #x+y "), "\\ #x\\+y\\ ");
        assert_eq!(dn_value("#a\"b;c<d>e\\"), "\\#a\\\"b\\;c\\<d\\>e\\\\");
    }

    #[test]
    fn substitution_replaces_every_occurrence() {
        assert_eq!(substitute("(|(uid=${account})(cn=${account}))", &[("account", "a")]), "(|(uid=a)(cn=a))");
        assert_eq!(substitute("(member=${dn})", &[("dn", "x"), ("account", "y")]), "(member=x)");
    }

    #[test]
    fn first_cn_of_a_dn() {
        assert_eq!(first_cn("cn=Devs,ou=groups,dc=example,dc=com"), "Devs");
        assert_eq!(first_cn("CN=Domain Admins,CN=Users,DC=corp"), "Domain Admins");
        assert_eq!(first_cn("ou=x,Cn=Team\\, A,dc=y"), "Team, A");
        assert_eq!(first_cn("cn=a\\2cb,dc=y"), "a,b");
        assert_eq!(first_cn("uid=bob+cn=Bob B,dc=y"), "Bob B");
        assert_eq!(first_cn("ou=nocn,dc=y"), "ou=nocn,dc=y");
        assert_eq!(first_cn("plain"), "plain");
    }
}
