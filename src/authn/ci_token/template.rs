//! Claim templates (`gha:${claims.repository}`) and required-claim checks, over the claims
//! of a verified token. Compiled once at load; rendering cannot fail because of config.
use serde_json::{Map, Value};

/// A compiled template: literal text and `${claims.<path>}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    /// A claim path: `repository`, `kubernetes.io.namespace` (see [`claim`]).
    Claim(String),
}

/// The longest rendered account or label value; longer ones refuse the login.
const MAX_RENDERED: usize = 512;

impl Template {
    /// Parses `text`; the error says what is wrong for the config diagnostic.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_string()));
            }
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| format!("unclosed placeholder in {text:?}"))?;
            let inner = &after[..end];
            let path = inner
                .strip_prefix("claims.")
                .filter(|p| !p.is_empty() && !p.split('.').any(str::is_empty))
                .ok_or_else(|| {
                    format!("unknown placeholder ${{{inner}}} in {text:?}: only ${{claims.<name>}} is known")
                })?;
            parts.push(Part::Claim(path.to_string()));
            rest = &after[end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        if parts.is_empty() {
            return Err("the template is empty".to_string());
        }
        Ok(Template { parts })
    }

    /// The rendered text; `None` when a claim is missing, not a scalar, or the result is
    /// empty, too long or holds control characters (it becomes an account or a label).
    pub fn render(&self, claims: &Map<String, Value>) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Claim(path) => out.push_str(&scalar_text(claim(claims, path)?)?),
            }
        }
        acceptable(&out).then_some(out)
    }

    /// Label values: a template that is one placeholder on a string-array claim gives one
    /// value per element; otherwise the one rendered value. Empty when nothing renders.
    pub fn render_values(&self, claims: &Map<String, Value>) -> Vec<String> {
        if let [Part::Claim(path)] = self.parts.as_slice() {
            if let Some(Value::Array(items)) = claim(claims, path) {
                return items.iter().filter_map(scalar_text).filter(|v| acceptable(v)).collect();
            }
        }
        self.render(claims).into_iter().collect()
    }
}

fn acceptable(text: &str) -> bool {
    !text.is_empty() && text.len() <= MAX_RENDERED && !text.chars().any(char::is_control)
}

/// A claim by dotted path. Claim names may hold dots themselves (`kubernetes.io`), so each
/// step takes the longest prefix of the remaining path that names a key.
pub fn claim<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(path) {
        return Some(value);
    }
    let mut split = path.len();
    while let Some(dot) = path[..split].rfind('.') {
        if let Some(Value::Object(inner)) = claims.get(&path[..dot]) {
            if let Some(found) = claim(inner, &path[dot + 1..]) {
                return Some(found);
            }
        }
        split = dot;
    }
    None
}

/// Strings as they are, numbers and booleans as JSON writes them; nothing else.
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// One `required_claims` entry: the claim must exist and equal one of `allowed` exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredClaim {
    pub path: String,
    pub allowed: Vec<String>,
}

impl RequiredClaim {
    pub fn holds(&self, claims: &Map<String, Value>) -> bool {
        claim(claims, &self.path).and_then(scalar_text).is_some_and(|v| self.allowed.contains(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn templates_render_claims_and_refuse_what_is_missing() {
        let c = claims(json!({"repository": "acme/app", "run": 7, "kubernetes.io": {"namespace": "ci"}, "o": {}}));
        assert_eq!(Template::parse("gha:${claims.repository}").unwrap().render(&c).as_deref(), Some("gha:acme/app"));
        assert_eq!(Template::parse("${claims.run}-x").unwrap().render(&c).as_deref(), Some("7-x"));
        let k8s = Template::parse("k8s:${claims.kubernetes.io.namespace}").unwrap();
        assert_eq!(k8s.render(&c).as_deref(), Some("k8s:ci"));
        assert_eq!(Template::parse("${claims.nope}").unwrap().render(&c), None);
        assert_eq!(Template::parse("${claims.o}").unwrap().render(&c), None);
        let bad = claims(json!({"x": "a\nb", "e": ""}));
        assert_eq!(Template::parse("${claims.x}").unwrap().render(&bad), None);
        assert_eq!(Template::parse("${claims.e}").unwrap().render(&bad), None);
    }

    #[test]
    fn array_claims_give_one_label_value_each() {
        let c = claims(json!({"groups": ["a", "b", 3, {"x": 1}]}));
        assert_eq!(Template::parse("${claims.groups}").unwrap().render_values(&c), ["a", "b", "3"]);
        assert!(Template::parse("g-${claims.groups}").unwrap().render_values(&c).is_empty());
    }

    #[test]
    fn bad_templates_are_config_errors() {
        for bad in ["", "${claims.x", "${account}", "${claims.}", "${claims.a..b}"] {
            assert!(Template::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn required_claims_match_exactly() {
        let c = claims(json!({"repository_owner": "acme", "ref": "refs/heads/main", "n": 1}));
        let rule =
            |p: &str, a: &[&str]| RequiredClaim { path: p.into(), allowed: a.iter().map(|s| s.to_string()).collect() };
        assert!(rule("repository_owner", &["acme"]).holds(&c));
        assert!(!rule("repository_owner", &["Acme"]).holds(&c));
        assert!(rule("ref", &["refs/heads/release", "refs/heads/main"]).holds(&c));
        assert!(!rule("missing", &["acme"]).holds(&c));
        assert!(rule("n", &["1"]).holds(&c));
    }
}
