//! ACL entries stored as JSON-like values by the database ACLs: `acl_mongo` documents
//! (exact keys `match`/`actions`/`comment`) and `acl_xorm` rows (Go's `encoding/json`
//! rules: `Match`/`Actions`/`Comment`, keys matched case-insensitively, later keys win).
//! An unknown match key is an error, never ignored: it would widen the match.
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::acl::{Acl, AclEntrySpec, MatchSpec};

const MATCH_KEYS: &[&str] = &["account", "type", "name", "service", "ip", "labels"];

/// How object keys are matched to the entry's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRule {
    /// BSON documents: the key is the field name. Other top-level keys are ignored.
    Exact,
    /// Go's `encoding/json`: case-insensitive (Unicode simple folding); unknown top-level
    /// keys are ignored, and of two keys naming one field the later wins.
    GoFold,
}

/// Decodes one entry; the error says which field is wrong.
pub fn entry_spec(value: &Value, rule: KeyRule) -> Result<AclEntrySpec, String> {
    let Value::Object(object) = value else { return Err("the entry is not a JSON object".into()) };
    let fields = pick(object, &["match", "actions", "comment"], rule, false)?;
    let matcher = match fields.get("match") {
        Some(Value::Object(m)) => match_spec(m, rule)?,
        _ => return Err("match is missing or not an object".into()),
    };
    let actions = match fields.get("actions") {
        Some(Value::Array(items)) => strings(items).ok_or("actions must be a list of strings")?,
        _ => return Err("actions is missing or not a list".into()),
    };
    let comment = match fields.get("comment") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("comment must be a string".into()),
    };
    Ok(AclEntrySpec { matcher, actions, comment })
}

/// Compiles decoded entries; `name(i)` names entry `i` in the messages.
pub fn compile(specs: Vec<AclEntrySpec>, name: impl Fn(usize) -> String) -> Result<Acl, String> {
    Acl::compile(specs).map_err(|errors| {
        let described: Vec<String> =
            errors.iter().map(|e| format!("{}: {e} (field {})", name(e.index), e.field)).collect();
        described.join("; ")
    })
}

/// The values of `object` for each of `names` (returned under the canonical name).
/// With `strict`, a key that names no field is an error.
fn pick<'a>(
    object: &'a Map<String, Value>,
    names: &[&'static str],
    rule: KeyRule,
    strict: bool,
) -> Result<BTreeMap<&'static str, &'a Value>, String> {
    let mut picked = BTreeMap::new();
    for (key, value) in object {
        match names.iter().find(|name| key_names(key, name, rule)) {
            Some(name) => drop(picked.insert(*name, value)),
            None if strict => {
                return Err(format!("unknown match key {key:?} (known: {})", MATCH_KEYS.join(", ")));
            }
            None => {}
        }
    }
    Ok(picked)
}

fn key_names(key: &str, name: &str, rule: KeyRule) -> bool {
    match rule {
        KeyRule::Exact => key == name,
        KeyRule::GoFold => key == name || go_fold(key) == go_fold(name),
    }
}

/// Go's `encoding/json` folds a name rune by rune to upper(lower(r)), so `K` (Kelvin
/// sign) matches `k` and `ſ` matches `s`.
fn go_fold(text: &str) -> String {
    text.chars().flat_map(char::to_lowercase).flat_map(char::to_uppercase).collect()
}

fn match_spec(m: &Map<String, Value>, rule: KeyRule) -> Result<MatchSpec, String> {
    let fields = pick(m, MATCH_KEYS, rule, true)?;
    let field = |key: &str| match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("match.{key} must be a string")),
    };
    let labels = match fields.get("labels") {
        None | Some(Value::Null) => None,
        Some(Value::Object(l)) => Some(label_conditions(l)?),
        Some(_) => return Err("match.labels must be an object of patterns".into()),
    };
    Ok(MatchSpec {
        account: field("account")?,
        resource_type: field("type")?,
        name: field("name")?,
        service: field("service")?,
        ip: field("ip")?,
        labels,
    })
}

fn label_conditions(l: &Map<String, Value>) -> Result<BTreeMap<String, String>, String> {
    l.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            _ => Err(format!("match.labels.{k} must be a string")),
        })
        .collect()
}

fn strings(items: &[Value]) -> Option<Vec<String>> {
    items.iter().map(|v| v.as_str().map(str::to_owned)).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn go_keys_match_case_insensitively_and_the_later_key_wins() {
        let value =
            json!({"Match": {"Account": "a", "LABELS": {"g": "x"}}, "actions": ["pull"], "COMMENT": "c", "extra": 1});
        let spec = entry_spec(&value, KeyRule::GoFold).unwrap();
        assert_eq!(spec.matcher.account.as_deref(), Some("a"));
        assert_eq!(spec.matcher.labels.unwrap()["g"], "x");
        assert_eq!((spec.actions, spec.comment.as_deref()), (vec!["pull".to_string()], Some("c")));
        let twice = json!({"match": {"name": "first"}, "Match": {"name": "second"}, "Actions": [], "Comment": null});
        assert_eq!(entry_spec(&twice, KeyRule::GoFold).unwrap().matcher.name.as_deref(), Some("second"));
        // U+017F LATIN SMALL LETTER LONG S folds to s, as in Go.
        let long_s = json!({"Match": {"\u{17f}ervice": "reg"}, "Actions": []});
        assert_eq!(entry_spec(&long_s, KeyRule::GoFold).unwrap().matcher.service.as_deref(), Some("reg"));
        let fold = json!({"Match": {"n\u{0430}me": "x"}, "Actions": []});
        assert!(entry_spec(&fold, KeyRule::GoFold).is_err());
    }

    #[test]
    fn exact_keys_and_errors_name_the_field() {
        assert!(entry_spec(&json!({"Match": {}, "actions": []}), KeyRule::Exact).unwrap_err().contains("match is"));
        let unknown = json!({"match": {"team": "a"}, "actions": []});
        assert!(entry_spec(&unknown, KeyRule::GoFold).unwrap_err().contains("unknown match key \"team\""));
        assert!(entry_spec(&json!({"match": {}}), KeyRule::Exact).unwrap_err().contains("actions is missing"));
        assert!(entry_spec(&json!({"match": {"name": 3}, "actions": []}), KeyRule::Exact).is_err());
        assert!(entry_spec(&json!({"match": {}, "actions": [1]}), KeyRule::Exact).is_err());
        assert!(entry_spec(&json!([1]), KeyRule::GoFold).unwrap_err().contains("not a JSON object"));
    }
}
