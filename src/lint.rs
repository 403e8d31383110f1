//! Findings that do not stop `serve` but that an operator wants to hear about before a
//! deploy (`check-config`): weak bcrypt costs, certificates close to expiry, ACL entries
//! that can never match, and configs that let in more than they seem to
//! ([`open_access`]). Every check is conservative: it only reports what is certain.
use std::path::Path;

mod open_access;

use crate::authz::acl::MatchSpec;
use crate::config::{AclSource, Config, Diagnostic, Diagnostics};

/// Costs below this are cheap to brute-force from a leaked config.
pub const MIN_BCRYPT_COST: u32 = 10;
/// Certificates expiring sooner than this are reported.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// All findings for a config that loaded and built.
pub fn lint(config: &Config) -> Vec<Diagnostic> {
    let mut diags = Diagnostics::default();
    weak_hashes(config, &mut diags);
    expiring_certificates(config, &mut diags);
    if let Some(acl) = &config.acl {
        shadowed_entries(acl, &mut diags);
    }
    open_access::check(config, &mut diags);
    diags.warnings
}

fn weak_hashes(config: &Config, diags: &mut Diagnostics) {
    for (name, user) in config.users.iter().flatten() {
        let cost = user.password.as_deref().and_then(crate::authn::static_users::parse_bcrypt_cost);
        if let Some(cost) = cost.filter(|c| *c < MIN_BCRYPT_COST) {
            diags
                .warn(format!("users.{name:?}.password"), user.password_line, format!("bcrypt cost {cost} is weak"))
                .hint(format!("re-hash with `registry-auth hash-password --cost {MIN_BCRYPT_COST} {name}`"));
        }
    }
}

fn expiring_certificates(config: &Config, diags: &mut Diagnostics) {
    let token_cert = config.token.certificate.as_ref().or(config.server.certificate.as_ref());
    let mut seen = Vec::new();
    for (path, key) in [(token_cert, "token.certificate"), (config.server.certificate.as_ref(), "server.certificate")] {
        let Some(path) = path.filter(|p| !seen.contains(p)) else { continue };
        seen.push(path);
        if let Some(days) = days_left(path) {
            if days < EXPIRY_WARNING_DAYS {
                let state = if days < 0 { "has expired".to_string() } else { format!("expires in {days} days") };
                diags
                    .warn(key, config.token.line, format!("certificate {} {state}", path.display()))
                    .hint("make a new pair with `registry-auth gen-cert` and give the registry the new certificate");
            }
        }
    }
}

/// Whole days until the first certificate in the PEM file expires (None if unreadable:
/// the build step already reported that).
pub fn days_left(path: &Path) -> Option<i64> {
    let seconds = seconds_left(path)?;
    Some(seconds.div_euclid(86_400))
}

/// Seconds until the first certificate in the PEM file expires.
pub fn seconds_left(path: &Path) -> Option<i64> {
    let pem = std::fs::read(path).ok()?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    let not_after = cert.validity().not_after.timestamp();
    Some(not_after - time::OffsetDateTime::now_utc().unix_timestamp())
}

fn shadowed_entries(acl: &AclSource, diags: &mut Diagnostics) {
    for (later, spec) in acl.entries.iter().enumerate() {
        let earlier = acl.entries[..later].iter().position(|e| covers(&e.matcher, &spec.matcher));
        if let Some(earlier) = earlier {
            let line = acl.entry_lines.get(later).copied().unwrap_or(0);
            diags
                .warn(
                    format!("acl[{later}]"),
                    line,
                    format!("acl[{later}] can never match: acl[{earlier}] matches every request it would"),
                )
                .hint(format!(
                    "move acl[{later}] above acl[{earlier}], or remove it (the first matching entry decides)"
                ));
        }
    }
}

/// Whether every request matched by `b` is also matched by `a`: each condition of `a` is
/// absent, matches everything (`/.*/`), or is the same placeholder-free text as in `b`.
fn covers(a: &MatchSpec, b: &MatchSpec) -> bool {
    let fields =
        [(&a.account, &b.account), (&a.resource_type, &b.resource_type), (&a.name, &b.name), (&a.service, &b.service)];
    let strings_ok = fields.iter().all(|(a, b)| match a {
        None => true,
        Some(p) if p == "/.*/" => true,
        Some(p) => same_literal(p, b.as_deref()),
    });
    // An IP condition never matches a request without an address, so only equality is safe.
    let ip_ok = a.ip.is_none() || (a.ip == b.ip);
    let labels_ok = match (&a.labels, &b.labels) {
        (None, _) => true,
        (Some(a), _) if a.is_empty() => true,
        (Some(a), Some(b)) => a.iter().all(|(k, p)| same_literal(p, b.get(k).map(String::as_str))),
        (Some(_), None) => false,
    };
    strings_ok && ip_ok && labels_ok
}

/// Placeholders (`${name:1}`) can depend on the entry's own other fields, so equal text
/// only proves equal meaning without them.
fn same_literal(a: &str, b: Option<&str>) -> bool {
    b == Some(a) && !a.contains("${")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(account: Option<&str>, name: Option<&str>) -> MatchSpec {
        MatchSpec { account: account.map(String::from), name: name.map(String::from), ..MatchSpec::default() }
    }

    #[test]
    fn shadowing_is_reported_only_when_certain() {
        assert!(covers(&MatchSpec::default(), &spec(Some("admin"), None)));
        assert!(covers(&spec(Some("admin"), None), &spec(Some("admin"), Some("a/*"))));
        assert!(covers(&spec(Some("/.*/"), None), &spec(None, Some("x"))));
        assert!(!covers(&spec(Some("admin"), None), &spec(None, Some("x"))));
        // "*" does not match names with a slash.
        assert!(!covers(&spec(None, Some("*")), &spec(None, Some("a/b"))));
        assert!(!covers(&spec(Some("${name:1}"), None), &spec(Some("${name:1}"), None)));
        let with_ip = MatchSpec { ip: Some("0.0.0.0/0".into()), ..MatchSpec::default() };
        assert!(!covers(&with_ip, &MatchSpec::default()));
        assert!(covers(&with_ip, &with_ip));
    }
}
