//! Token minting: the compact JWS docker_auth issues (parity.md §2), signed with the key from
//! `keys`. Owns the header and claim layout; imports only `request::AccessEntry` from the rest
//! of the crate. Spec: https://distribution.github.io/distribution/spec/auth/jwt/
pub mod compat;
pub mod jwks;
pub mod keys;
pub mod kid;
pub mod published;
mod signer;

#[cfg(test)]
mod tests;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::Rng as _;
use serde::Serialize;
use serde_json::{json, Value};

use crate::request::AccessEntry;

pub use keys::{KeyError, SigningKey};
pub use signer::SignError;

/// Which key ID goes into the `kid` header (`token.disable_legacy_key_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KidMode {
    /// libtrust fingerprint: what registry 2.8 requires (the default).
    Libtrust,
    /// RFC 7638 thumbprint of the real key: what registry 3.1+ computes.
    Thumbprint,
}

impl KidMode {
    /// The `kid` header this mode gives a key (and the `kid` of its entry in `jwks`).
    pub fn kid(self, public: &kid::PublicKeyMaterial) -> String {
        match self {
            KidMode::Libtrust => kid::libtrust_kid(public),
            KidMode::Thumbprint => kid::thumbprint_kid(public),
        }
    }
}

#[derive(Debug, Clone)]
pub struct TokenOptions {
    /// `iss`; must equal the registry's `auth.token.issuer`.
    pub issuer: String,
    /// Lifetime in seconds: `exp = iat + expiration_secs`.
    pub expiration_secs: u64,
    pub kid_mode: KidMode,
    /// Send the certificate chain as `x5c` (opt-in; token-spec.md §4.3).
    pub x5c: bool,
}

/// Signs tokens. The header never changes, so it is encoded once in [`TokenIssuer::new`].
#[derive(Debug)]
pub struct TokenIssuer {
    options: TokenOptions,
    key: SigningKey,
    header_b64: String,
}

/// A signed token plus the times the HTTP layer reports beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    /// `iat`, Unix seconds.
    pub issued_at: i64,
    /// `exp - iat`.
    pub expires_in: u64,
}

/// The claims, in docker_auth's key order (struct order is serialization order).
#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    /// Always a string: registry 2.8 rejects an array here.
    aud: &'a str,
    exp: i64,
    nbf: i64,
    iat: i64,
    jti: String,
    access: &'a [AccessEntry],
}

/// docker_auth's clock-skew allowance: `nbf = iat - 10`.
const NOT_BEFORE_SLACK_SECS: i64 = 10;

impl TokenIssuer {
    pub fn new(options: TokenOptions, key: SigningKey) -> TokenIssuer {
        let header_b64 = URL_SAFE_NO_PAD.encode(header_json(&options, &key));
        TokenIssuer { options, key, header_b64 }
    }

    /// Issues a token valid from now.
    pub fn issue(&self, subject: &str, audience: &str, access: &[AccessEntry]) -> Result<IssuedToken, SignError> {
        self.issue_until(subject, audience, access, None)
    }

    /// [`TokenIssuer::issue`] with `exp` capped at `not_after` (Unix seconds) when given:
    /// a token issued for a credential that expires (a CI job's OIDC token) never outlives it.
    pub fn issue_until(
        &self,
        subject: &str,
        audience: &str,
        access: &[AccessEntry],
        not_after: Option<i64>,
    ) -> Result<IssuedToken, SignError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX));
        self.issue_at_until(now, subject, audience, access, not_after)
    }

    /// Issues a token with `iat = now_unix`; deterministic apart from `jti` and the signature.
    pub fn issue_at(
        &self,
        now_unix: i64,
        subject: &str,
        audience: &str,
        access: &[AccessEntry],
    ) -> Result<IssuedToken, SignError> {
        self.issue_at_until(now_unix, subject, audience, access, None)
    }

    /// [`TokenIssuer::issue_at`] with `exp` capped at `not_after`.
    pub fn issue_at_until(
        &self,
        now_unix: i64,
        subject: &str,
        audience: &str,
        access: &[AccessEntry],
        not_after: Option<i64>,
    ) -> Result<IssuedToken, SignError> {
        let lifetime = i64::try_from(self.options.expiration_secs).unwrap_or(i64::MAX);
        let full = now_unix.saturating_add(lifetime);
        let exp = not_after.map_or(full, |cap| full.min(cap));
        let claims = Claims {
            iss: &self.options.issuer,
            sub: subject,
            aud: audience,
            exp,
            nbf: now_unix.saturating_sub(NOT_BEFORE_SLACK_SECS),
            iat: now_unix,
            jti: random_jti().to_string(),
            access,
        };
        let claims_b64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?);
        let signing_input = format!("{}.{claims_b64}", self.header_b64);
        let signature = self.key.sign(signing_input.as_bytes())?;
        Ok(IssuedToken {
            token: format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)),
            issued_at: now_unix,
            expires_in: u64::try_from(exp.saturating_sub(now_unix)).unwrap_or(0),
        })
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    pub fn options(&self) -> &TokenOptions {
        &self.options
    }
}

/// `{"typ":"JWT","alg":..,"kid":..[,"x5c":[..]]}` in exactly this order. serde_json's
/// `preserve_order` feature keeps insertion order; the tests check the raw text.
fn header_json(options: &TokenOptions, key: &SigningKey) -> String {
    let kid = options.kid_mode.kid(key.public_key());
    let mut header = json!({ "typ": "JWT", "alg": key.algorithm(), "kid": kid });
    if options.x5c {
        // x5c is standard base64 with padding (RFC 7515 §4.1.6), not base64url.
        let chain = key.certificate_chain_der().iter();
        let x5c: Vec<Value> = chain.map(|der| Value::from(STANDARD.encode(der))).collect();
        if let Value::Object(fields) = &mut header {
            fields.insert("x5c".to_owned(), Value::Array(x5c));
        }
    }
    header.to_string()
}

/// A random non-negative 63-bit integer, like docker_auth's `rand.Int63()`, but from a
/// CSPRNG rather than a time-seeded PRNG: rand's thread-local ChaCha12, seeded and
/// periodically reseeded from the OS, which saves a getrandom system call per token.
fn random_jti() -> u64 {
    rand::thread_rng().gen::<u64>() >> 1
}
