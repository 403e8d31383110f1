//! Our `credential_cache:` section (docker_auth has none): how long a verified password is
//! remembered and how many are kept. `ttl: 0` turns the cache off.
use std::time::Duration;

use super::diag::Diagnostics;
use super::reader::{parse_go_duration, Section};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialCacheConfig {
    /// Zero disables the cache.
    pub ttl: Duration,
    pub max_entries: usize,
}

/// Short enough that a password removed outside our config (a Mongo document edited by
/// hand is re-read per request anyway) is not honoured for long; long enough to cover a
/// CI job's burst of pulls.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
/// A cache entry is ~100 bytes; this caps the cache at about 100 MB.
const MAX_MAX_ENTRIES: i64 = 1_000_000;
/// Longer than this and a revoked password stays usable too long to call it a cache.
const MAX_TTL: Duration = Duration::from_secs(3600);

impl Default for CredentialCacheConfig {
    fn default() -> Self {
        CredentialCacheConfig { ttl: DEFAULT_TTL, max_entries: DEFAULT_MAX_ENTRIES }
    }
}

const KNOWN: &[&str] = &["ttl", "max_entries"];

pub fn read(root: &mut Section<'_>, diags: &mut Diagnostics) -> CredentialCacheConfig {
    let mut config = CredentialCacheConfig::default();
    let Some(node) = root.node("credential_cache") else { return config };
    let Some(mut s) = Section::of(node, "credential_cache", diags) else { return config };
    let ttl_line = s.node("ttl").map_or(s.line, |n| n.line);
    if let Some(text) = s.string("ttl", diags) {
        match parse_go_duration(&text).or_else(|| (text == "0").then_some(Duration::ZERO)) {
            Some(ttl) if ttl <= MAX_TTL => config.ttl = ttl,
            _ => {
                diags
                    .error(
                        "credential_cache.ttl",
                        ttl_line,
                        format!("credential_cache.ttl must be a duration from 0 to 1h, found {text:?}"),
                    )
                    .hint("write a Go duration such as \"60s\" or \"5m\"; 0 turns the cache off");
            }
        }
    }
    let size_line = s.node("max_entries").map_or(s.line, |n| n.line);
    if let Some(n) = s.int("max_entries", diags) {
        match usize::try_from(n) {
            Ok(n) if (1..=MAX_MAX_ENTRIES as usize).contains(&n) => config.max_entries = n,
            _ => {
                diags
                    .error(
                        "credential_cache.max_entries",
                        size_line,
                        format!("credential_cache.max_entries must be 1 to {MAX_MAX_ENTRIES}, got {n}"),
                    )
                    .hint("set how many verified logins to remember, e.g. 10000 (use ttl: 0 to turn the cache off)");
            }
        }
    }
    s.warn_unknown(KNOWN, diags);
    config
}
