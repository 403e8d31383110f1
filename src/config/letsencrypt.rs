//! `server.letsencrypt:` — docker_auth's `email`, `cache_dir` and `host`, and our additions
//! `directory_url`, `directory_ca_certificate`, `renew_before` and `timeout`. Used only
//! when `server.certificate`/`key` are not set, as in docker_auth.
use std::path::PathBuf;
use std::time::Duration;

use super::diag::Diagnostics;
use super::reader::Section;

const KNOWN: &[&str] =
    &["email", "cache_dir", "host", "directory_url", "directory_ca_certificate", "renew_before", "timeout"];
pub const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// autocert's default: renew 30 days before expiry (capped at a third of the lifetime).
const DEFAULT_RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LetsEncryptConfig {
    pub email: String,
    /// Holds the account and the certificate; must exist (docker_auth's rule).
    pub cache_dir: PathBuf,
    /// The one name the certificate is for.
    pub host: String,
    /// The ACME directory; Let's Encrypt production unless set.
    pub directory_url: String,
    /// PEM roots for the directory's HTTPS; `None` = the system roots (`SSL_CERT_FILE`).
    pub directory_ca_certificate: Option<PathBuf>,
    pub renew_before: Duration,
    /// Limit for each request to the ACME server.
    pub timeout: Duration,
    pub line: usize,
}

/// Reads `server.letsencrypt` (the caller ignores it when a certificate pair is set).
pub fn read(server: &mut Section<'_>, diags: &mut Diagnostics) -> Option<LetsEncryptConfig> {
    let node = server.node("letsencrypt")?;
    let mut s = Section::of(node, "server.letsencrypt", diags)?;
    let line = node.line;
    let email = required(&mut s, "email", "the address Let's Encrypt registers the account with", diags);
    let cache_dir = required(&mut s, "cache_dir", "an existing directory that survives restarts", diags);
    let host = required(&mut s, "host", "the name clients use, e.g. auth.example.com", diags);
    let directory_url = s.string("directory_url", diags).filter(|u| !u.is_empty());
    let directory_url = directory_url.unwrap_or_else(|| LETS_ENCRYPT_PRODUCTION.to_string());
    if !directory_url.starts_with("https://") {
        diags
            .error(
                s.child_path("directory_url"),
                line,
                format!("directory_url must be an https:// URL, got {directory_url:?}"),
            )
            .hint(format!(
                "leave it out for Let's Encrypt ({LETS_ENCRYPT_PRODUCTION}), or use your ACME CA's directory"
            ));
    }
    let directory_ca_certificate =
        s.string("directory_ca_certificate", diags).filter(|p| !p.is_empty()).map(PathBuf::from);
    let renew_before = duration(&mut s, "renew_before", DEFAULT_RENEW_BEFORE, diags);
    let timeout = duration(&mut s, "timeout", DEFAULT_TIMEOUT, diags);
    s.warn_unknown(KNOWN, diags);
    let cache_dir = PathBuf::from(cache_dir?);
    if !cache_dir.is_dir() {
        // docker_auth's rule and message: a mistyped path must not lose the certificates.
        diags
            .error(
                s.child_path("cache_dir"),
                line,
                format!("server.letsencrypt.cache_dir ({}) does not exist or is not a directory", cache_dir.display()),
            )
            .hint("create the directory (mode 0700, owned by the server's user) or fix the path");
    }
    if let Some(host) = &host {
        if host.contains(['*', '/', ':', ' ']) {
            diags
                .error(s.child_path("host"), line, format!("host {host:?} must be one DNS name"))
                .hint("set host: to the name clients connect to, without scheme, port or wildcard");
        }
    }
    Some(LetsEncryptConfig {
        email: email?,
        cache_dir,
        host: host?,
        directory_url,
        directory_ca_certificate,
        renew_before: renew_before?,
        timeout: timeout?,
        line,
    })
}

fn required(s: &mut Section<'_>, key: &str, what: &str, diags: &mut Diagnostics) -> Option<String> {
    let value = s.string(key, diags).filter(|v| !v.is_empty());
    if value.is_none() {
        let hint = if key == "host" {
            format!("set host: to {what}; registry-auth obtains the certificate for that name at start (docker_auth's certificates for any name a client asks for would let anyone exhaust the CA's rate limits)")
        } else {
            format!("set {key}: to {what}")
        };
        diags.error(s.child_path(key), s.line, format!("server.letsencrypt.{key} is required")).hint(hint);
    }
    value
}

fn duration(s: &mut Section<'_>, key: &str, default: Duration, diags: &mut Diagnostics) -> Option<Duration> {
    if !s.has_value(key) {
        return Some(default);
    }
    let nanos = s.duration_nanos(key, diags)?;
    if nanos <= 0 {
        diags
            .error(s.child_path(key), s.line, format!("{key} must be positive"))
            .hint("use a Go duration such as \"720h\" or \"30s\"");
        return None;
    }
    Some(Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse;

    fn read_text(text: &str) -> (Option<LetsEncryptConfig>, Diagnostics) {
        let root = parse(text).unwrap();
        let mut diags = Diagnostics::default();
        let mut top = Section::of(&root, "", &mut diags).unwrap();
        (read(&mut top, &mut diags), diags)
    }

    #[test]
    fn defaults_and_docker_auth_checks() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("letsencrypt:\n  email: a@b.c\n  cache_dir: {:?}\n  host: auth.example.com\n", dir.path());
        let (le, diags) = read_text(&text);
        let le = le.unwrap();
        assert!(diags.errors.is_empty(), "{diags:?}");
        assert_eq!(
            (le.directory_url.as_str(), le.renew_before, le.timeout),
            (LETS_ENCRYPT_PRODUCTION, DEFAULT_RENEW_BEFORE, DEFAULT_TIMEOUT)
        );
        let (_, diags) = read_text("letsencrypt:\n  email: a@b.c\n  cache_dir: /nonexistent/x\n");
        let messages: Vec<_> = diags.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "server.letsencrypt.host is required",
                "server.letsencrypt.cache_dir (/nonexistent/x) does not exist or is not a directory"
            ]
        );
        let (_, diags) = read_text("letsencrypt:\n  cache_dir: /tmp\n  host: h\n  directory_url: http://x\n");
        assert_eq!(diags.errors.len(), 2, "{diags:?}");
    }
}
