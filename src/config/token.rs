//! The `token:` section: issuer, lifetime and the signing pair.
use std::path::PathBuf;

use super::diag::Diagnostics;
use super::reader::Section;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenConfig {
    pub issuer: String,
    pub expiration: u64,
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub disable_legacy_key_id: bool,
    /// Our addition: send the certificate chain in the `x5c` header.
    pub x5c: bool,
    /// Our addition: certificates published for the registry (`jwks`, `bundle`) beside the
    /// signing one, never used to sign: the next key before a rotation, the old one after.
    pub verification_certificates: Vec<PathBuf>,
    pub line: usize,
}

/// Tokens cannot be revoked: a leaked one works until it expires, so more than a day is
/// reported (at start-up and by `check-config`).
pub const MAX_SENSIBLE_EXPIRATION: u64 = 24 * 3600;

const KNOWN: &[&str] =
    &["issuer", "expiration", "certificate", "key", "disable_legacy_key_id", "x5c", "verification_certificates"];

/// Reads `token:`, reporting docker_auth's checks 5 and 6 (§3.3).
pub fn read(root: &mut Section<'_>, diags: &mut Diagnostics) -> Option<TokenConfig> {
    let node = root.node("token");
    let line = node.map_or(0, |n| n.line);
    let mut t = match node {
        Some(node) => Section::of(node, "token", diags)?,
        None => {
            diags
                .error("token.issuer", 0, "token.issuer is required")
                .hint("add a token: section with issuer: (the registry's auth.token.issuer) and expiration: (seconds)");
            diags
                .error("token.expiration", 0, "expiration must be positive, got 0")
                .hint("set token.expiration to the token lifetime in seconds, e.g. 900");
            return None;
        }
    };
    let issuer = t.string("issuer", diags).unwrap_or_default();
    if issuer.is_empty() {
        diags
            .error("token.issuer", t.line, "token.issuer is required")
            .hint("set it to the same value as the registry's auth.token.issuer");
    }
    let expiration = t.int("expiration", diags);
    let positive = match expiration {
        Some(seconds) if seconds > 0 => Some(seconds as u64),
        Some(seconds) => {
            let at = t.node("expiration").map_or(t.line, |n| n.line);
            diags
                .error("token.expiration", at, format!("expiration must be positive, got {seconds}"))
                .hint("token.expiration is in seconds, e.g. 900 for 15 minutes");
            None
        }
        None if t.node("expiration").is_some() => None,
        None => {
            diags
                .error("token.expiration", t.line, "expiration must be positive, got 0")
                .hint("token.expiration is in seconds, e.g. 900 for 15 minutes");
            None
        }
    };
    if let Some(seconds) = positive {
        warn_long_lifetime(seconds, t.node("expiration").map_or(t.line, |n| n.line), diags);
    }
    let config = TokenConfig {
        issuer,
        expiration: positive.unwrap_or(0),
        certificate: t.string("certificate", diags).filter(|p| !p.is_empty()).map(PathBuf::from),
        key: t.string("key", diags).filter(|p| !p.is_empty()).map(PathBuf::from),
        disable_legacy_key_id: t.bool("disable_legacy_key_id", diags).unwrap_or(false),
        x5c: t.bool("x5c", diags).unwrap_or(false),
        verification_certificates: verification_certificates(&mut t, diags),
        line,
    };
    t.warn_unknown(KNOWN, diags);
    Some(config)
}

fn warn_long_lifetime(seconds: u64, line: usize, diags: &mut Diagnostics) {
    if seconds > MAX_SENSIBLE_EXPIRATION {
        diags
            .warn(
                "token.expiration",
                line,
                format!(
                    "token.expiration is {seconds} s ({:.1} h): a leaked token cannot be revoked and works that long",
                    seconds as f64 / 3600.0
                ),
            )
            .hint("use at most 86400 (24 h); clients fetch a new token when theirs expires, e.g. expiration: 900");
    }
}

/// `verification_certificates: [path, ...]`; empty entries are errors (a path was meant).
fn verification_certificates(t: &mut Section<'_>, diags: &mut Diagnostics) -> Vec<PathBuf> {
    let list = t.string_list("verification_certificates", diags).unwrap_or_default();
    let line = t.node("verification_certificates").map_or(t.line, |n| n.line);
    for (i, _) in list.iter().enumerate().filter(|(_, p)| p.is_empty()) {
        diags
            .error(format!("token.verification_certificates[{i}]"), line, "empty certificate path")
            .hint("list PEM certificate files, e.g. [\"ssl/next.pem\"]");
    }
    list.into_iter().filter(|p| !p.is_empty()).map(PathBuf::from).collect()
}
