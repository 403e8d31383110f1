//! Our `limits:` section (docker_auth has none): how much work one request and one client
//! may ask for — scopes per request, and the bcrypt queue's admission rules.
use super::diag::Diagnostics;
use super::reader::Section;
use crate::authn::bcrypt_pool::PoolLimits;
pub use crate::scope::ScopeLimits;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    pub scopes: ScopeLimits,
    pub bcrypt: PoolLimits,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig { scopes: ScopeLimits::default(), bcrypt: PoolLimits::defaults() }
    }
}

const KNOWN: &[&str] =
    &["max_scopes", "max_scope_length", "bcrypt_queue", "bcrypt_queue_per_client", "bcrypt_threads_per_client"];

pub fn read(root: &mut Section<'_>, diags: &mut Diagnostics) -> LimitsConfig {
    let mut config = LimitsConfig::default();
    let Some(node) = root.node("limits") else { return config };
    let Some(mut s) = Section::of(node, "limits", diags) else { return config };
    let mut read = |key: &str, max: usize, hint: &str, target: &mut usize| {
        let line = s.node(key).map_or(s.line, |n| n.line);
        let Some(n) = s.int(key, diags) else { return };
        match usize::try_from(n) {
            Ok(n) if (1..=max).contains(&n) => *target = n,
            _ => {
                diags
                    .error(format!("limits.{key}"), line, format!("limits.{key} must be 1 to {max}, got {n}"))
                    .hint(hint);
            }
        }
    };
    read(
        "max_scopes",
        10_000,
        "set how many scopes one token request may ask for, e.g. 100",
        &mut config.scopes.max_scopes,
    );
    read(
        "max_scope_length",
        65_536,
        "set the longest accepted scope in bytes, e.g. 1024",
        &mut config.scopes.max_scope_length,
    );
    read(
        "bcrypt_queue",
        1_000_000,
        "set how many password checks may wait in total, e.g. 128; beyond, logins get 503",
        &mut config.bcrypt.queue,
    );
    read(
        "bcrypt_queue_per_client",
        1_000_000,
        "set how many password checks one client IP may have waiting, e.g. 16",
        &mut config.bcrypt.queue_per_client,
    );
    read(
        "bcrypt_threads_per_client",
        1024,
        "set how many bcrypt threads one client IP may use at once, e.g. 1",
        &mut config.bcrypt.threads_per_client,
    );
    s.warn_unknown(KNOWN, diags);
    config
}
