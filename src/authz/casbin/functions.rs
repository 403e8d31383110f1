//! Functions a casbin matcher can call. `labelMatch` is docker_auth's own; `ipMatch` and
//! `regexMatch` replace casbin-rs's versions, which panic on an address or regex they cannot
//! parse, where Go casbin returns an error that docker_auth reads as "not allowed".
use std::collections::BTreeMap;
use std::net::IpAddr;

use casbin::function_map::{dynamic_to_str, OperatorFunction};
use casbin::rhai::Dynamic;
use casbin::{CoreApi, Enforcer};

use crate::request::Labels;

pub fn register(enforcer: &mut Enforcer) {
    enforcer.add_function("labelMatch", OperatorFunction::Arg2(label_match_fn));
    enforcer.add_function("ipMatch", OperatorFunction::Arg2(ip_match_fn));
    enforcer.add_function("regexMatch", OperatorFunction::Arg2(regex_match_fn));
}

fn label_match_fn(request: Dynamic, policy: Dynamic) -> Dynamic {
    label_match(&dynamic_to_str(&request), &dynamic_to_str(&policy)).into()
}

fn ip_match_fn(ip: Dynamic, pattern: Dynamic) -> Dynamic {
    ip_match(&dynamic_to_str(&ip), &dynamic_to_str(&pattern)).into()
}

fn regex_match_fn(text: Dynamic, pattern: Dynamic) -> Dynamic {
    let pattern = dynamic_to_str(&pattern);
    match regex::Regex::new(&pattern) {
        Ok(re) => re.is_match(&dynamic_to_str(&text)).into(),
        Err(e) => {
            tracing::warn!(%pattern, error = %e, "casbin regexMatch: invalid regex in the policy; no match");
            false.into()
        }
    }
}

/// The labels of a policy rule: a JSON object of string lists. Empty text and `null` mean
/// "no label condition", as in docker_auth (Go decodes them to an empty map).
pub fn policy_labels(text: &str) -> Result<Labels, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(Labels::new());
    }
    let parsed: Option<BTreeMap<String, Option<Vec<String>>>> = serde_json::from_str(text).map_err(|e| {
        format!("labels {text:?} are not a JSON object of string lists such as {{\"group\":[\"devs\"]}}: {e}")
    })?;
    Ok(parsed.unwrap_or_default().into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect())
}

/// docker_auth's `labelMatch`: every value of every policy label is among the request's
/// values of that label. Unlike docker_auth, policy labels that do not parse match nothing
/// (Go's failed decode left an empty map, which matched every request).
pub fn label_match(request: &str, policy: &str) -> bool {
    let Ok(wanted) = policy_labels(policy) else {
        tracing::warn!(labels = %policy, "casbin labelMatch: policy labels do not parse; no match");
        return false;
    };
    let have = policy_labels(request).unwrap_or_default();
    wanted.iter().all(|(label, values)| values.iter().all(|v| have.get(label).is_some_and(|h| h.contains(v))))
}

/// Go casbin's `ipMatch`: the address equals `pattern` or lies in the `pattern` CIDR. An
/// unknown client address (`<nil>`) or a bad pattern is no match.
pub fn ip_match(ip: &str, pattern: &str) -> bool {
    let Ok(ip) = ip.parse::<IpAddr>().map(|ip| ip.to_canonical()) else { return false };
    if let Ok(net) = pattern.parse::<ipnet::IpNet>() {
        return net.contains(&ip);
    }
    match pattern.parse::<IpAddr>() {
        Ok(address) => address.to_canonical() == ip,
        Err(_) => {
            tracing::warn!(%pattern, "casbin ipMatch: the policy's pattern is neither an address nor a CIDR; no match");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docker_auth's `TestLabels` (casbin_authz_test.go).
    #[test]
    fn label_match_as_docker_auth() {
        let cases = [
            (r#"{"a":["b"]}"#, r#"{"a":["b"]}"#, true),
            (r#"{"a":["b"]}"#, r#"{"a":["c"]}"#, false),
            (r#"{"a":["b","c"]}"#, r#"{"a":["b"]}"#, true),
            (r#"{"a":["b"]}"#, r#"{"a":["b","c"]}"#, false),
            (r#"{"a":["b","c"],"d":["e"]}"#, r#"{"a":["b","c"]}"#, true),
            (r#"{"a":["b"]}"#, r#"{"a":["b","c"],"d":["f"]}"#, false),
            ("null", r#"{"a":["b"]}"#, false),
            ("null", "", true),
            ("null", "{}", true),
        ];
        for (request, policy, want) in cases {
            assert_eq!(label_match(request, policy), want, "{request} vs {policy}");
        }
        assert!(!label_match(r#"{"a":["b"]}"#, "{a:[b]}"), "unparsable policy labels grant nothing");
        assert!(!label_match(r#"{"a":["b"]}"#, r#"{"a":"b"}"#));
    }

    #[test]
    fn ip_match_never_panics() {
        assert!(ip_match("192.168.1.123", "192.168.1.0/24"));
        assert!(!ip_match("192.168.0.123", "192.168.1.0/24"));
        assert!(ip_match("1.2.3.4", "1.2.3.4"));
        assert!(ip_match("::ffff:1.2.3.4", "1.2.3.4"));
        assert!(!ip_match("<nil>", "1.2.3.4"));
        assert!(!ip_match("1.2.3.4", "1.2.3.*"));
        assert!(!ip_match("1.2.3.4", "1.2.3.0/99"));
    }
}
