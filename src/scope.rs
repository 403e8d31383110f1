//! The registry scope grammar (`type[(class)]:name:action,...`), parsed as docker_auth does
//! (parity.md §1.3) except for the type, which must match the spec's grammar (§8 item 22).
use crate::request::Scope;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// An empty element (double or trailing space) or a type outside the grammar.
    #[error("malformed scope request")]
    Malformed,
    /// Not 3 or 4 colon-separated parts.
    #[error("invalid scope: {0:?}")]
    Invalid(String),
    #[error("too many scopes: at most {0} per request (limits.max_scopes)")]
    TooMany(usize),
    #[error("scope too long: at most {0} bytes (limits.max_scope_length)")]
    TooLong(usize),
}

/// Caps on the `scope` values of one token request (over them: 400), so that one request
/// cannot ask for thousands of decisions, a huge token and as many log bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeLimits {
    pub max_scopes: usize,
    /// Bytes of one scope (`type:name:actions`).
    pub max_scope_length: usize,
}

/// 100 scopes is far more than any client asks for at once (docker asks for one or two);
/// a repository name is at most 255 characters in the distribution spec, so 1 KiB leaves
/// room for a host, a type, a class and actions.
impl Default for ScopeLimits {
    fn default() -> Self {
        ScopeLimits { max_scopes: 100, max_scope_length: 1024 }
    }
}

/// The type part of a scope, `[a-z0-9]+` with an optional `([a-z0-9]+)` class: the
/// resource type and the class. Checked by hand rather than with a regex: it runs for
/// every scope of every request.
fn parse_type(raw: &str) -> Option<(&str, Option<&str>)> {
    let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    match raw.split_once('(') {
        None => word(raw).then_some((raw, None)),
        Some((resource_type, rest)) => {
            let class = rest.strip_suffix(')')?;
            (word(resource_type) && word(class)).then_some((resource_type, Some(class)))
        }
    }
}

/// Parses every `scope` value in order. An empty *first* value means "no scopes at all"
/// (a login-only token), a docker_auth quirk that clients rely on.
/// Stops at the first scope over `limits`, before parsing the rest.
pub fn parse_scopes<'a>(
    values: impl IntoIterator<Item = &'a str>,
    limits: &ScopeLimits,
) -> Result<Vec<Scope>, ScopeError> {
    let mut values = values.into_iter().peekable();
    if values.peek().is_some_and(|first| first.is_empty()) {
        return Ok(Vec::new());
    }
    let mut scopes = Vec::new();
    for value in values {
        for element in value.split(' ') {
            if scopes.len() == limits.max_scopes {
                return Err(ScopeError::TooMany(limits.max_scopes));
            }
            if element.len() > limits.max_scope_length {
                return Err(ScopeError::TooLong(limits.max_scope_length));
            }
            scopes.push(parse_one(element)?);
        }
    }
    Ok(scopes)
}

fn parse_one(element: &str) -> Result<Scope, ScopeError> {
    if element.is_empty() {
        return Err(ScopeError::Malformed);
    }
    let parts: Vec<&str> = element.split(':').collect();
    let (raw_type, name, raw_actions) = match parts.as_slice() {
        [t, n, a] => (*t, n.to_string(), *a),
        // `host:port/repo` names carry one colon.
        [t, host, rest, a] => (*t, format!("{host}:{rest}"), *a),
        _ => return Err(ScopeError::Invalid(element.to_string())),
    };
    let (resource_type, class) = parse_type(raw_type).ok_or(ScopeError::Malformed)?;
    let (resource_type, class) = (resource_type.to_string(), class.map(str::to_string));
    let mut actions: Vec<String> = raw_actions.split(',').map(str::to_string).collect();
    actions.sort();
    Ok(Scope { resource_type, class, name, actions })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Scope {
        let mut scopes = parse_scopes([s], &ScopeLimits::default()).unwrap();
        assert_eq!(scopes.len(), 1);
        scopes.remove(0)
    }

    #[test]
    fn three_and_four_part_scopes() {
        let s = one("repository:foo/bar:push,pull");
        assert_eq!((s.resource_type.as_str(), s.name.as_str()), ("repository", "foo/bar"));
        assert_eq!(s.actions, ["pull", "push"]);
        assert_eq!(one("repository:host:5000/ns/img:pull").name, "host:5000/ns/img");
        assert_eq!(one("registry:catalog:*").actions, ["*"]);
    }

    #[test]
    fn actions_keep_duplicates_and_empty_strings() {
        assert_eq!(one("repository:a:push,pull,push").actions, ["pull", "push", "push"]);
        assert_eq!(one("repository:a:").actions, [""]);
        assert_eq!(one("repository::pull").name, "");
    }

    #[test]
    fn plugin_class_is_split_off() {
        let s = one("repository(plugin):n:pull");
        assert_eq!(s.resource_type, "repository");
        assert_eq!(s.class.as_deref(), Some("plugin"));
    }

    #[test]
    fn types_outside_the_grammar_are_malformed() {
        for bad in ["Repository:a:pull", "re-po:a:pull", "___:a:pull", "repository(Plugin):a:pull", "(x):a:pull"] {
            assert_eq!(parse_scopes([bad], &ScopeLimits::default()), Err(ScopeError::Malformed), "{bad}");
        }
    }

    #[test]
    fn a_class_is_one_word_in_one_pair_of_brackets_at_the_end() {
        for bad in ["repository():a:pull", "repository(a)(b):a:pull", "repository(a)b:a:pull", "repository((a):a:pull"]
        {
            assert_eq!(parse_scopes([bad], &ScopeLimits::default()), Err(ScopeError::Malformed), "{bad}");
        }
        let scope = one("repository2(plugin9):a:pull");
        assert_eq!((scope.resource_type.as_str(), scope.class.as_deref()), ("repository2", Some("plugin9")));
    }

    #[test]
    fn wrong_part_counts_are_invalid() {
        assert_eq!(
            parse_scopes(["repository:foo"], &ScopeLimits::default()),
            Err(ScopeError::Invalid("repository:foo".into()))
        );
        assert_eq!(
            parse_scopes(["repository:a:b:c:pull"], &ScopeLimits::default()),
            Err(ScopeError::Invalid("repository:a:b:c:pull".into()))
        );
    }

    #[test]
    fn spaces_split_and_empty_elements() {
        assert_eq!(parse_scopes(["repository:a:pull repository:b:push"], &ScopeLimits::default()).unwrap().len(), 2);
        assert_eq!(parse_scopes(["repository:a:pull", "repository:b:push"], &ScopeLimits::default()).unwrap().len(), 2);
        assert_eq!(parse_scopes(["repository:a:pull "], &ScopeLimits::default()), Err(ScopeError::Malformed));
        assert_eq!(
            parse_scopes(["repository:a:pull  repository:b:pull"], &ScopeLimits::default()),
            Err(ScopeError::Malformed)
        );
        assert_eq!(parse_scopes(["repository:a:pull", ""], &ScopeLimits::default()), Err(ScopeError::Malformed));
    }

    #[test]
    fn scope_count_and_length_are_capped() {
        let limits = ScopeLimits { max_scopes: 2, max_scope_length: 20 };
        assert_eq!(parse_scopes(["repository:a:pull repository:b:pull"], &limits).unwrap().len(), 2);
        let three = ["repository:a:pull", "repository:b:pull repository:c:pull"];
        assert_eq!(parse_scopes(three, &limits), Err(ScopeError::TooMany(2)));
        assert_eq!(parse_scopes(["repository:abcdefgh:pull"], &limits), Err(ScopeError::TooLong(20)));
        assert_eq!(parse_scopes(["repository:abc:pull"], &limits).unwrap().len(), 1);
    }

    #[test]
    fn empty_first_value_means_no_scopes_at_all() {
        assert_eq!(parse_scopes(["", "repository:a:pull"], &ScopeLimits::default()).unwrap(), Vec::new());
        assert_eq!(parse_scopes(std::iter::empty(), &ScopeLimits::default()).unwrap(), Vec::new());
    }
}
