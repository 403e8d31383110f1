//! The console's own registry tokens: minted with registry-auth's signing key for a subject
//! no account can have, for one scope at a time, short-lived and reused until shortly before
//! they expire. Also reads the registry's challenge for the `service` (the token's `aud`).
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::request::AccessEntry;
use crate::token::TokenIssuer;

/// The `sub` of the console's tokens. Basic credentials cannot carry a `:` in the user
/// name, so no account logging in at `/auth` can ever have it.
pub const SUBJECT: &str = "registry-auth:console";
/// Lifetime of a console token (capped further by `token.expiration`).
pub const LIFETIME_SECS: i64 = 60;
/// A cached token is replaced this long before it expires (the registry's clock may be ahead).
const RENEW_BEFORE_SECS: i64 = 15;
/// Distinct scopes remembered (one per repository read recently); past this the cache starts over.
const MAX_CACHED: usize = 1024;

/// One scope a console token grants.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TokenScope {
    /// `registry:catalog:*`
    Catalog,
    /// `repository:<name>:pull`
    Pull(String),
}

impl TokenScope {
    fn access(&self) -> AccessEntry {
        let (resource_type, name, action) = match self {
            TokenScope::Catalog => ("registry", "catalog", "*"),
            TokenScope::Pull(name) => ("repository", name.as_str(), "pull"),
        };
        AccessEntry {
            resource_type: resource_type.to_string(),
            class: None,
            name: name.to_string(),
            actions: vec![action.to_string()],
        }
    }
}

#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<(String, TokenScope), (String, i64)>>,
}

impl TokenCache {
    /// A valid token for `scope` and `service`: the cached one, or a fresh one.
    pub fn get(&self, issuer: &TokenIssuer, service: &str, scope: &TokenScope) -> Result<String, String> {
        let now = unix_now();
        let key = (service.to_string(), scope.clone());
        if let Some((token, renew_at)) = self.lock().get(&key) {
            if now < *renew_at {
                return Ok(token.clone());
            }
        }
        let issued = issuer
            .issue_until(SUBJECT, service, &[scope.access()], Some(now + LIFETIME_SECS))
            .map_err(|e| format!("cannot sign the console's registry token: {e}"))?;
        let lifetime = i64::try_from(issued.expires_in).unwrap_or(LIFETIME_SECS);
        // A short `token.expiration` still leaves the token half its life.
        let renew_at = issued.issued_at + (lifetime - RENEW_BEFORE_SECS).max(lifetime / 2);
        let mut tokens = self.lock();
        if tokens.len() >= MAX_CACHED {
            tokens.clear();
        }
        tokens.insert(key, (issued.token.clone(), renew_at));
        Ok(issued.token)
    }

    /// Forgets the token for `scope` (the registry refused it: the key may have rotated).
    pub fn forget(&self, service: &str, scope: &TokenScope) {
        self.lock().remove(&(service.to_string(), scope.clone()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, TokenScope), (String, i64)>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn unix_now() -> i64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX)
}

/// The parameters of a `Bearer` challenge (`realm`, `service`, `scope`, `error`...).
pub fn bearer_params(challenge: &str) -> Option<HashMap<String, String>> {
    let rest = challenge.trim_start();
    let (scheme, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = HashMap::new();
    let mut rest = rest.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted.find('"').unwrap_or(quoted.len());
                (&quoted[..end], quoted.get(end + 1..).unwrap_or(""))
            }
            None => after.split_once(',').unwrap_or((after, "")),
        };
        params.insert(key, value.to_string());
        rest = after.trim_start_matches(',').trim();
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_parameters_are_read() {
        let p = bearer_params(
            r#"Bearer realm="https://auth.test/auth",service="registry.test",scope="registry:catalog:*",error="insufficient_scope""#,
        )
        .unwrap();
        assert_eq!(p["realm"], "https://auth.test/auth");
        assert_eq!(p["service"], "registry.test");
        assert_eq!(p["scope"], "registry:catalog:*");
        assert_eq!(p["error"], "insufficient_scope");
        assert!(bearer_params(r#"Basic realm="x""#).is_none());
        assert_eq!(bearer_params("Bearer service=a, realm=b").unwrap()["realm"], "b");
    }
}

#[cfg(test)]
mod issuer_tests {
    use super::*;
    use crate::token::{KidMode, SigningKey, TokenOptions};
    use base64::Engine as _;

    fn claims(token: &str) -> serde_json::Value {
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    }

    #[test]
    fn console_tokens_are_short_lived_narrow_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        crate::certgen::write_self_signed(&cert, &key, &["localhost".to_string()]).unwrap();
        let options =
            TokenOptions { issuer: "iss".into(), expiration_secs: 900, kid_mode: KidMode::Libtrust, x5c: false };
        let issuer = TokenIssuer::new(options, SigningKey::load(&cert, &key).unwrap());
        let cache = TokenCache::default();
        let pull = TokenScope::Pull("team/app".into());
        let token = cache.get(&issuer, "registry.test", &pull).unwrap();
        let c = claims(&token);
        assert_eq!(c["sub"], SUBJECT);
        assert_eq!(c["aud"], "registry.test");
        assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), LIFETIME_SECS);
        assert_eq!(c["access"], serde_json::json!([{"type": "repository", "name": "team/app", "actions": ["pull"]}]));
        assert_eq!(cache.get(&issuer, "registry.test", &pull).unwrap(), token, "reused while fresh");
        let catalog = cache.get(&issuer, "registry.test", &TokenScope::Catalog).unwrap();
        assert_eq!(claims(&catalog)["access"][0]["name"], "catalog");
        cache.forget("registry.test", &pull);
        assert_ne!(cache.get(&issuer, "registry.test", &pull).unwrap(), token, "a forgotten token is replaced");
    }
}
