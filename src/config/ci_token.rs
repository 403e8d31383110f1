//! The `ci_token_auth:` section (our addition, not in docker_auth): CI jobs log in with the
//! OIDC token their platform gives them (GitHub Actions, GitLab CI, a Kubernetes service
//! account, any OIDC issuer). Each trusted issuer names the audience its tokens must carry,
//! where its keys come from (discovery or a JWKS file, read here), the claims a token must
//! hold, and the templates that map claims to the account and labels the ACL sees.
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::diag::Diagnostics;
use super::reader::{to_string, to_string_list, Section};
use super::yaml::{Node, NodeKind};
use crate::authn::ci_token::keys::KeySet;
use crate::authn::ci_token::template::{RequiredClaim, Template};

const KNOWN: &[&str] = &["issuers", "http_timeout", "leeway", "jwks_cache_ttl", "jwks_refetch_interval"];
const ISSUER_KEYS: &[&str] =
    &["issuer", "audience", "username", "jwks_file", "ca_certificate", "required_claims", "account", "labels"];
const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(3600);
const DEFAULT_REFETCH_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct CiTokenConfig {
    pub line: usize,
    pub issuers: Vec<CiIssuer>,
    /// Limit on each discovery or JWKS request, body included.
    pub http_timeout: Duration,
    /// Clock skew allowed on `nbf` (never on `exp`: see the README).
    pub leeway: Duration,
    /// Discovered keys are fetched again after this long (old keys serve meanwhile).
    pub jwks_cache_ttl: Duration,
    /// At most one fetch per issuer in this interval, whatever unknown `kid`s arrive.
    pub jwks_refetch_interval: Duration,
}

/// Where an issuer's keys come from.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// `<issuer>/.well-known/openid-configuration`, then its `jwks_uri`.
    Discovery,
    /// `jwks_file`: the JWKS text, read at load (and on every reload).
    File { path: PathBuf, json: Vec<u8> },
}

#[derive(Debug, Clone)]
pub struct CiIssuer {
    pub line: usize,
    /// The `iss` tokens carry, exactly.
    pub issuer: String,
    /// A value the token's `aud` must hold.
    pub audience: String,
    /// When set, only logins with this user name are tried against this issuer.
    pub username: Option<String>,
    pub jwks: JwksSource,
    /// PEM roots for the issuer's HTTPS (a cluster CA); `None` = the system roots.
    pub ca_certificate: Option<Vec<u8>>,
    pub required_claims: Vec<RequiredClaim>,
    pub account: Template,
    pub labels: Vec<(String, Template)>,
}

/// Reads `ci_token_auth:`. `None` when absent or invalid.
pub fn read(root: &mut Section<'_>, diags: &mut Diagnostics) -> Option<CiTokenConfig> {
    let node = root.node("ci_token_auth")?;
    let mut s = Section::of(node, "ci_token_auth", diags)?;
    let errors_before = diags.errors.len();
    let http_timeout = positive(&mut s, "http_timeout", DEFAULT_HTTP_TIMEOUT, diags);
    let leeway = duration(&mut s, "leeway", DEFAULT_LEEWAY, diags);
    let jwks_cache_ttl = positive(&mut s, "jwks_cache_ttl", DEFAULT_CACHE_TTL, diags);
    let jwks_refetch_interval = positive(&mut s, "jwks_refetch_interval", DEFAULT_REFETCH_INTERVAL, diags);
    let issuers = read_issuers(&mut s, diags);
    s.warn_unknown(KNOWN, diags);
    if diags.errors.len() > errors_before {
        return None;
    }
    Some(CiTokenConfig { line: node.line, issuers, http_timeout, leeway, jwks_cache_ttl, jwks_refetch_interval })
}

fn read_issuers(s: &mut Section<'_>, diags: &mut Diagnostics) -> Vec<CiIssuer> {
    let path = s.child_path("issuers");
    let Some(node) = s.node("issuers") else {
        diags
            .error(&path, s.line, "ci_token_auth has no issuers")
            .hint("list the issuers whose tokens log in, e.g. - issuer: https://token.actions.githubusercontent.com");
        return Vec::new();
    };
    let NodeKind::Seq(items) = &node.kind else {
        diags.error(&path, node.line, "ci_token_auth.issuers must be a list").hint("write `- issuer: ...` items");
        return Vec::new();
    };
    let mut issuers: Vec<CiIssuer> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{index}]");
        let Some(issuer) = read_issuer(item, &item_path, diags) else { continue };
        if let Some(first) = issuers.iter().find(|i| i.issuer == issuer.issuer) {
            diags
                .error(
                    format!("{item_path}.issuer"),
                    issuer.line,
                    format!("issuer {:?} is listed twice", issuer.issuer),
                )
                .hint(format!(
                    "keep one entry (the first is on line {}); list several values under required_claims instead",
                    first.line
                ));
            continue;
        }
        issuers.push(issuer);
    }
    if items.is_empty() {
        diags
            .error(&path, node.line, "ci_token_auth.issuers is empty")
            .hint("list at least one issuer, or remove the section");
    }
    issuers
}

fn read_issuer(node: &Node, path: &str, diags: &mut Diagnostics) -> Option<CiIssuer> {
    let mut s = Section::of(node, path, diags)?;
    let line = node.line;
    let issuer =
        required(&mut s, "issuer", "the iss of the tokens, e.g. https://token.actions.githubusercontent.com", diags);
    let issuer_line = key_line(&mut s, "issuer");
    let issuer = issuer.and_then(|i| checked_url(&i, &s.child_path("issuer"), issuer_line, diags).map(|_| i));
    let audience = required(&mut s, "audience", "the aud the job asks its token for, e.g. registry.example.com", diags);
    let username = s.string("username", diags).filter(|u| !u.is_empty());
    let (jwks_line, ca_line) = (key_line(&mut s, "jwks_file"), key_line(&mut s, "ca_certificate"));
    let jwks = read_jwks_file(&mut s, jwks_line, diags);
    let ca_certificate = read_ca(&mut s, ca_line, diags);
    let required_claims = read_required_claims(&mut s, diags);
    let account_line = key_line(&mut s, "account");
    let account = required(&mut s, "account", "a template such as gha:${claims.repository}", diags)
        .and_then(|t| template(&t, &s.child_path("account"), account_line, diags));
    let labels = read_labels(&mut s, diags);
    s.warn_unknown(ISSUER_KEYS, diags);
    Some(CiIssuer {
        line,
        issuer: issuer?,
        audience: audience?,
        username,
        jwks: jwks?,
        ca_certificate: ca_certificate?,
        required_claims: required_claims?,
        account: account?,
        labels: labels?,
    })
}

/// The line of `key`'s value, or of the section when the key is absent.
fn key_line(s: &mut Section<'_>, key: &str) -> usize {
    s.node(key).map_or(s.line, |n| n.line)
}

fn required(s: &mut Section<'_>, key: &str, example: &str, diags: &mut Diagnostics) -> Option<String> {
    let errors_before = diags.errors.len();
    let value = s.string(key, diags).filter(|v| !v.is_empty());
    if value.is_none() && diags.errors.len() == errors_before {
        diags
            .error(s.child_path(key), s.line, format!("{} is required", s.child_path(key)))
            .hint(format!("set {key}: to {example}"));
    }
    value
}

/// https, or http on a loopback address (development and tests).
pub fn checked_url(text: &str, path: &str, line: usize, diags: &mut Diagnostics) -> Option<Url> {
    let url = match Url::parse(text) {
        Ok(url) => url,
        Err(e) => {
            diags
                .error(path, line, format!("{path} is not a URL: {e}"))
                .hint("write an absolute URL such as https://issuer.example.com");
            return None;
        }
    };
    if url.scheme() == "https" || (url.scheme() == "http" && is_loopback(&url)) {
        return Some(url);
    }
    diags
        .error(path, line, format!("{path} must be an https:// URL, got {text:?}"))
        .hint("use https (plain http is accepted only on 127.0.0.1, ::1 or localhost, for development)");
    None
}

pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    }
}

fn read_jwks_file(s: &mut Section<'_>, line: usize, diags: &mut Diagnostics) -> Option<JwksSource> {
    let Some(file) = s.string("jwks_file", diags).filter(|f| !f.is_empty()) else {
        return Some(JwksSource::Discovery);
    };
    let path = s.child_path("jwks_file");
    let json = match std::fs::read(&file) {
        Ok(json) => json,
        Err(e) => {
            diags
                .error(&path, line, format!("cannot read {file}: {e}"))
                .hint("check the path and that this user can read it");
            return None;
        }
    };
    match KeySet::parse(&json) {
        Ok(set) if !set.is_empty() => Some(JwksSource::File { path: PathBuf::from(file), json }),
        Ok(_) => {
            diags
                .error(&path, line, format!("{file} holds no usable signing key"))
                .hint("keys must be RSA, EC P-256/P-384 or Ed25519 public keys (symmetric keys are never used)");
            None
        }
        Err(e) => {
            diags
                .error(&path, line, format!("{file} is not a JWKS: {e}"))
                .hint("the file must hold {\"keys\": [...]} as the issuer publishes it");
            None
        }
    }
}

/// `Some(None)` when unset; `None` after an error.
fn read_ca(s: &mut Section<'_>, line: usize, diags: &mut Diagnostics) -> Option<Option<Vec<u8>>> {
    let Some(file) = s.string("ca_certificate", diags).filter(|f| !f.is_empty()) else { return Some(None) };
    let path = s.child_path("ca_certificate");
    let pem = std::fs::read(&file).map_err(|e| e.to_string()).and_then(|pem| {
        let certs = rustls_pemfile::certs(&mut pem.as_slice()).filter(Result::is_ok).count();
        if certs == 0 {
            return Err("no PEM certificate in it".to_string());
        }
        Ok(pem)
    });
    match pem {
        Ok(pem) => Some(Some(pem)),
        Err(e) => {
            diags
                .error(&path, line, format!("cannot use {file}: {e}"))
                .hint("name a PEM file with the CA certificate(s) of the issuer's HTTPS");
            None
        }
    }
}

fn read_required_claims(s: &mut Section<'_>, diags: &mut Diagnostics) -> Option<Vec<RequiredClaim>> {
    let Some(node) = s.node("required_claims") else { return Some(Vec::new()) };
    let path = s.child_path("required_claims");
    let mut map = Section::of(node, &path, diags)?;
    let mut rules = Vec::new();
    let mut ok = true;
    for (claim, value) in map.entries() {
        let value_path = format!("{path}.{claim}");
        let allowed = match &value.kind {
            NodeKind::Seq(_) => to_string_list(value, &value_path, diags),
            _ => to_string(value, &value_path, diags).map(|v| vec![v]),
        };
        match allowed {
            Some(allowed) if !allowed.is_empty() => rules.push(RequiredClaim { path: claim.clone(), allowed }),
            _ => {
                ok = false;
                diags
                    .error(&value_path, value.line, format!("{value_path} needs a value"))
                    .hint("write the exact value, or a list of accepted values");
            }
        }
    }
    ok.then_some(rules)
}

fn read_labels(s: &mut Section<'_>, diags: &mut Diagnostics) -> Option<Vec<(String, Template)>> {
    let Some(node) = s.node("labels") else { return Some(Vec::new()) };
    let path = s.child_path("labels");
    let mut map = Section::of(node, &path, diags)?;
    let mut labels = Vec::new();
    let mut ok = true;
    for (name, value) in map.entries() {
        let value_path = format!("{path}.{name}");
        match to_string(value, &value_path, diags).and_then(|t| template(&t, &value_path, value.line, diags)) {
            Some(t) => labels.push((name.clone(), t)),
            None => ok = false,
        }
    }
    ok.then_some(labels)
}

fn template(text: &str, path: &str, line: usize, diags: &mut Diagnostics) -> Option<Template> {
    Template::parse(text)
        .map_err(|e| {
            diags
                .error(path, line, format!("{path}: {e}"))
                .hint("write text with ${claims.<name>} placeholders, e.g. gha:${claims.repository}");
        })
        .ok()
}

fn duration(s: &mut Section<'_>, key: &str, default: Duration, diags: &mut Diagnostics) -> Duration {
    if !s.has_value(key) {
        return default;
    }
    match s.duration_nanos(key, diags) {
        Some(nanos) if nanos >= 0 => Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)),
        Some(_) => {
            diags
                .error(s.child_path(key), s.line, format!("{} must not be negative", s.child_path(key)))
                .hint("write a duration such as \"30s\"");
            default
        }
        None => default,
    }
}

fn positive(s: &mut Section<'_>, key: &str, default: Duration, diags: &mut Diagnostics) -> Duration {
    let has = s.has_value(key);
    let value = duration(s, key, default, diags);
    if has && value.is_zero() {
        diags
            .error(s.child_path(key), s.line, format!("{} must be positive", s.child_path(key)))
            .hint(format!("write a duration such as \"{}s\"", default.as_secs()));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse;

    fn read_text(text: &str) -> (Option<CiTokenConfig>, Diagnostics) {
        let root = parse(text).unwrap();
        let mut diags = Diagnostics::default();
        let mut top = Section::of(&root, "", &mut diags).unwrap();
        (read(&mut top, &mut diags), diags)
    }

    const GOOD: &str = "ci_token_auth:\n  issuers:\n    - issuer: https://token.actions.githubusercontent.com\n      audience: registry.example.com\n      required_claims:\n        repository_owner: acme\n        ref: [refs/heads/main, refs/heads/release]\n      account: \"gha:${claims.repository}\"\n      labels:\n        repo: \"${claims.repository}\"\n";

    #[test]
    fn a_github_issuer_with_defaults() {
        let (config, diags) = read_text(GOOD);
        assert!(diags.errors.is_empty() && diags.warnings.is_empty(), "{diags:?}");
        let config = config.unwrap();
        assert_eq!(config.http_timeout, DEFAULT_HTTP_TIMEOUT);
        let issuer = &config.issuers[0];
        assert_eq!(issuer.audience, "registry.example.com");
        assert!(matches!(issuer.jwks, JwksSource::Discovery));
        assert_eq!(issuer.required_claims[1].allowed, ["refs/heads/main", "refs/heads/release"]);
        assert_eq!(issuer.labels[0].0, "repo");
    }

    #[test]
    fn problems_name_path_and_line() {
        let cases = [
            ("ci_token_auth:\n  issuers: []\n", "ci_token_auth.issuers", "empty"),
            ("ci_token_auth: {}\n", "ci_token_auth.issuers", "no issuers"),
            ("ci_token_auth:\n  issuers:\n    - issuer: http://ci.example.com\n      audience: r\n      account: a\n", "ci_token_auth.issuers[0].issuer", "https"),
            ("ci_token_auth:\n  issuers:\n    - issuer: https://ci.example.com\n      account: a\n", "ci_token_auth.issuers[0].audience", "required"),
            ("ci_token_auth:\n  issuers:\n    - issuer: https://ci.example.com\n      audience: r\n      account: \"${sub}\"\n", "ci_token_auth.issuers[0].account", "unknown placeholder"),
            ("ci_token_auth:\n  issuers:\n    - issuer: https://ci.example.com\n      audience: r\n      account: a\n      jwks_file: /nonexistent/jwks.json\n", "ci_token_auth.issuers[0].jwks_file", "cannot read"),
            ("ci_token_auth:\n  http_timeout: 0s\n  issuers:\n    - issuer: https://ci.example.com\n      audience: r\n      account: a\n", "ci_token_auth.http_timeout", "positive"),
        ];
        for (text, path, words) in cases {
            let (config, diags) = read_text(text);
            assert!(config.is_none(), "{text}");
            let e = diags.errors.iter().find(|e| e.path == path).unwrap_or_else(|| panic!("{text}: {diags:?}"));
            assert!(e.message.contains(words) && e.hint.is_some() && e.line > 0, "{e:?}");
        }
    }

    #[test]
    fn loopback_http_is_accepted_and_duplicates_are_not() {
        let text = "ci_token_auth:\n  issuers:\n    - issuer: http://127.0.0.1:8080\n      audience: r\n      account: a\n    - issuer: http://127.0.0.1:8080\n      audience: s\n      account: b\n";
        let (config, diags) = read_text(text);
        assert!(config.is_none());
        assert_eq!(diags.errors[0].path, "ci_token_auth.issuers[1].issuer");
        assert!(diags.errors[0].message.contains("listed twice"));
    }
}
