//! Our `console:` section (docker_auth has none): the web console under
//! `{path_prefix}/console/`, on when the section is present.
//!
//! ```yaml
//! console:
//!   registry_url: https://registry.example.com  # the registry the console reads and names in `docker login`
//!   registry_ca_certificate: ssl/registry-ca.pem # its CA, when not in the system roots
//!   session_idle_timeout: 30m                   # signed out after this long without a request
//!   session_lifetime: 12h                       # signed out this long after signing in, whatever happens
//!   operators:                                  # who sees the Operators pages (console-ops)
//!     - account: admin
//!     - labels: {groups: registry-admins}
//! ```
//! Sessions live in the store; on the memory engine (no `store:` section) the console is
//! off, with a warning, as identity tokens and robots are.
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::diag::Diagnostics;
use super::reader::Section;

pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(12 * 3600);
const MIN_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_IDLE: Duration = Duration::from_secs(7 * 86_400);
const MAX_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
/// Below this a session can lapse while someone reads a page (a warning, not an error).
const SHORT_IDLE: Duration = Duration::from_secs(5 * 60);

const KNOWN: &[&str] =
    &["registry_url", "registry_ca_certificate", "session_idle_timeout", "session_lifetime", "operators"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    pub line: usize,
    /// `registry_url`: where the registry is (the console reads it, and names it in the
    /// `docker login` lines). `None`: not configured (the pages that need it say so).
    pub registry_url: Option<Url>,
    /// `registry_ca_certificate`: its path and PEM text; `None` means the system roots.
    pub registry_ca_certificate: Option<(PathBuf, Vec<u8>)>,
    pub session_idle_timeout: Duration,
    pub session_lifetime: Duration,
    /// Line of `operators:` when present; the key is read by the Operators pages.
    pub operators_line: Option<usize>,
    /// `operators:`, checked ([`super::console_operators`]); compiled by the console.
    pub operators: Vec<crate::authz::acl::MatchSpec>,
}

impl ConsoleConfig {
    /// `host[:port]` of `registry_url`: what `docker login` and image names use.
    pub fn registry_host(&self) -> Option<String> {
        let url = self.registry_url.as_ref()?;
        let host = url.host_str()?;
        Some(match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        })
    }
}

pub fn read(root: &mut Section<'_>, diags: &mut Diagnostics) -> Option<ConsoleConfig> {
    let node = root.node("console");
    let Some(node) = node else {
        if root.has_key("console") {
            // `console:` with nothing under it: on, with every default.
            return Some(defaults(root.line));
        }
        return None;
    };
    let mut s = Section::of(node, "console", diags)?;
    let mut config = defaults(s.line);
    let errors_before = diags.errors.len();
    config.registry_url = registry_url(&mut s, diags);
    config.registry_ca_certificate = registry_ca(&mut s, diags);
    if let Some(d) = timeout(&mut s, "session_idle_timeout", MAX_IDLE, diags) {
        config.session_idle_timeout = d;
    }
    if let Some(d) = timeout(&mut s, "session_lifetime", MAX_LIFETIME, diags) {
        config.session_lifetime = d;
    }
    if diags.errors.len() > errors_before {
        // A timeout that did not parse would be compared as its default.
    } else if config.session_idle_timeout > config.session_lifetime {
        let line = s.node("session_idle_timeout").map_or(s.line, |n| n.line);
        diags
            .error(
                "console.session_idle_timeout",
                line,
                "console.session_idle_timeout is longer than console.session_lifetime",
            )
            .hint("make the idle timeout at most the lifetime (defaults: 30m and 12h)");
    } else if config.session_idle_timeout < SHORT_IDLE {
        let line = s.node("session_idle_timeout").map_or(s.line, |n| n.line);
        diags
            .warn(
                "console.session_idle_timeout",
                line,
                format!(
                    "console.session_idle_timeout is {}s: people are signed out while they read a page",
                    config.session_idle_timeout.as_secs()
                ),
            )
            .hint("use at least 5m (the default is 30m)");
    }
    config.operators_line = s.node("operators").map(|n| n.line);
    config.operators = super::console_operators::read(s.node("operators"), diags);
    s.warn_unknown(KNOWN, diags);
    Some(config)
}

/// The console keeps sessions in the store: on the memory engine it stays off (a warning,
/// so that check-config says so before anyone opens the page).
pub fn check_store(console: Option<&ConsoleConfig>, store: &super::StoreConfig, diags: &mut Diagnostics) {
    if let (Some(console), super::StoreConfig::Memory) = (console, store) {
        diags
            .warn(
                "console",
                console.line,
                "the console is off: its sessions need a persistent store, and there is no store: section (the memory engine would sign everyone out at each restart and could not be shared by replicas)",
            )
            .hint("add a store: section, e.g. store: {path: data} (embedded) or store: {redis: ...}");
    }
}

fn defaults(line: usize) -> ConsoleConfig {
    ConsoleConfig {
        line,
        registry_url: None,
        registry_ca_certificate: None,
        session_idle_timeout: DEFAULT_IDLE_TIMEOUT,
        session_lifetime: DEFAULT_LIFETIME,
        operators_line: None,
        operators: Vec::new(),
    }
}

fn registry_url(s: &mut Section<'_>, diags: &mut Diagnostics) -> Option<Url> {
    let line = s.node("registry_url").map_or(s.line, |n| n.line);
    let text = s.string("registry_url", diags).filter(|t| !t.is_empty())?;
    let hint = "write the registry's base URL, e.g. https://registry.example.com";
    match Url::parse(&text) {
        Ok(url) if matches!(url.scheme(), "https" | "http") && url.host_str().is_some() => {
            let loopback = crate::authn::oidc::upstream::allowed_url(&url);
            if url.scheme() == "http" && !loopback {
                diags
                    .warn(
                        "console.registry_url",
                        line,
                        format!("console.registry_url {text:?} is plain http: the console's tokens to the registry travel in clear"),
                    )
                    .hint("use https (with registry_ca_certificate for a private CA)");
            }
            Some(url)
        }
        Ok(_) => {
            diags
                .error(
                    "console.registry_url",
                    line,
                    format!("console.registry_url must be an http(s) URL, found {text:?}"),
                )
                .hint(hint);
            None
        }
        Err(e) => {
            diags
                .error("console.registry_url", line, format!("console.registry_url is not a URL ({e}): {text:?}"))
                .hint(hint);
            None
        }
    }
}

fn registry_ca(s: &mut Section<'_>, diags: &mut Diagnostics) -> Option<(PathBuf, Vec<u8>)> {
    let key = "console.registry_ca_certificate";
    let line = s.node("registry_ca_certificate").map_or(s.line, |n| n.line);
    let path = PathBuf::from(s.string("registry_ca_certificate", diags).filter(|p| !p.is_empty())?);
    let pem = match std::fs::read(&path) {
        Ok(pem) => pem,
        Err(e) => {
            diags
                .error(key, line, format!("cannot read {key} {}: {e}", path.display()))
                .hint("point it at a readable PEM file with the CA certificate of the registry's TLS certificate");
            return None;
        }
    };
    if rustls_pemfile::certs(&mut pem.as_slice()).filter(Result::is_ok).count() == 0 {
        diags
            .error(key, line, format!("{key} {} holds no PEM certificate", path.display()))
            .hint("the file must contain -----BEGIN CERTIFICATE----- blocks");
        return None;
    }
    Some((path, pem))
}

fn timeout(s: &mut Section<'_>, key: &str, max: Duration, diags: &mut Diagnostics) -> Option<Duration> {
    let line = s.node(key).map_or(s.line, |n| n.line);
    let text = s.string(key, diags)?;
    match super::identity::parse_lifetime(&text) {
        Some(d) if (MIN_TIMEOUT..=max).contains(&d) => Some(d),
        _ => {
            diags
                .error(
                    format!("console.{key}"),
                    line,
                    format!("console.{key} must be a duration from 5s to {}d, found {text:?}", max.as_secs() / 86_400),
                )
                .hint("write a Go duration such as \"30m\" or \"12h\", or days such as \"7d\"");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    const BASE: &str =
        "server: {addr: ':5001'}\ntoken: {issuer: x, expiration: 900, certificate: c, key: k}\nusers: {}\nacl: []\n";

    fn load(console: &str) -> Result<crate::config::Config, String> {
        load_str(&format!("{BASE}{console}"), "t.yml").map_err(|e| e.to_string())
    }

    #[test]
    fn absent_off_empty_on_with_defaults() {
        assert!(load("").unwrap().console.is_none());
        let on = load("console:\n").unwrap().console.unwrap();
        assert_eq!(on.session_idle_timeout, super::DEFAULT_IDLE_TIMEOUT);
        assert_eq!(on.session_lifetime, super::DEFAULT_LIFETIME);
        assert_eq!(on.registry_url, None);
    }

    #[test]
    fn keys_are_read() {
        let c = load("console:\n  registry_url: https://reg.example:5000\n  session_idle_timeout: 10m\n  session_lifetime: 2h\n  operators:\n    - account: admin\n")
            .unwrap()
            .console
            .unwrap();
        assert_eq!(c.registry_host().as_deref(), Some("reg.example:5000"));
        assert_eq!(c.session_idle_timeout.as_secs(), 600);
        assert_eq!(c.session_lifetime.as_secs(), 7200);
        assert_eq!(c.operators_line, Some(9));
    }

    #[test]
    fn bad_values_name_path_line_and_fix() {
        let e = load("console:\n  registry_url: ftp://x\n  session_lifetime: 1s\n  session_idle_timeout: forever\n")
            .unwrap_err();
        assert!(e.contains("console.registry_url") && e.contains("line 6"), "{e}");
        assert!(e.contains("console.session_lifetime must be a duration from 5s to 30d"), "{e}");
        assert!(e.contains("console.session_idle_timeout") && e.contains("\"forever\""), "{e}");
        let e = load("console:\n  session_idle_timeout: 2h\n  session_lifetime: 1h\n").unwrap_err();
        assert!(e.contains("longer than console.session_lifetime"), "{e}");
        let e = load("console:\n  registry_ca_certificate: /nonexistent/ca.pem\n").unwrap_err();
        assert!(e.contains("cannot read console.registry_ca_certificate /nonexistent/ca.pem"), "{e}");
    }
}
