//! Verifies one CI token against one key: the signature with an algorithm the key allows
//! (so never `none` and never HS*: the key set holds no symmetric keys), `iss`, `aud`,
//! `nbf` with the leeway, and `exp` strictly, since the registry token is capped at it.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::Validation;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::keys::VerificationKey;

/// CI tokens are one or two kilobytes; longer passwords are not looked at as tokens.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A verified token's claims and its `exp` (Unix seconds).
pub struct Verified {
    pub claims: Map<String, Value>,
    pub exp: u64,
}

#[derive(Deserialize)]
struct Peek {
    iss: Option<String>,
}

/// The unverified `iss` of a password shaped like a compact JWS, or `None` for any other
/// password: a length check, a character scan and one small JSON parse, no crypto and no
/// network, so that passwords meant for other backends cost next to nothing here.
pub fn peek_issuer(password: &str) -> Option<String> {
    if password.len() > MAX_TOKEN_BYTES || !password.starts_with("eyJ") {
        return None;
    }
    let mut parts = password.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    let b64url = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    // An empty signature is let through so that an `alg: none` token from a trusted
    // issuer is refused here rather than passed on to the next backend.
    if parts.next().is_some() || payload.is_empty() || ![header, payload, signature].into_iter().all(b64url) {
        return None;
    }
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Peek>(&payload).ok()?.iss
}

/// `Err` names why the token is refused (for the log; it holds no token material).
pub fn verify(
    token: &str,
    key: &VerificationKey,
    issuer: &str,
    audience: &str,
    leeway_secs: u64,
    now: u64,
) -> Result<Verified, String> {
    let Some(&first) = key.algorithms.first() else { return Err("the key allows no algorithm".into()) };
    let mut validation = Validation::new(first);
    validation.algorithms = key.algorithms.clone();
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.validate_nbf = true;
    validation.leeway = leeway_secs;
    let data =
        jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation).map_err(|e| reason(e.kind()))?;
    let exp = data.claims.get("exp").and_then(Value::as_u64).ok_or("exp is not a number of seconds")?;
    if exp <= now {
        return Err("expired".into());
    }
    Ok(Verified { claims: data.claims, exp })
}

fn reason(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => "algorithm not allowed for the key".into(),
        ErrorKind::ExpiredSignature => "expired".into(),
        ErrorKind::ImmatureSignature => "not yet valid (nbf)".into(),
        ErrorKind::InvalidIssuer => "wrong issuer".into(),
        ErrorKind::InvalidAudience => "wrong audience".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("missing claim {claim}"),
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Json(_) | ErrorKind::Utf8(_) => {
            "malformed token".into()
        }
        other => format!("refused: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn only_jws_shaped_passwords_are_peeked_at() {
        let payload = b64(r#"{"iss":"https://ci.example.com","sub":"x"}"#);
        let header = b64(r#"{"alg":"RS256"}"#);
        assert_eq!(peek_issuer(&format!("{header}.{payload}.c2ln")).as_deref(), Some("https://ci.example.com"));
        assert_eq!(peek_issuer(&format!("{header}.{payload}.")).as_deref(), Some("https://ci.example.com"));
        for other in [
            "hunter2".to_string(),
            String::new(),
            format!("{header}.{payload}"),
            format!("{header}.{payload}.sig.more"),
            format!("{header}.{payload}.s+g"),
            format!("{header}.{}.sig", b64("not json")),
            format!("{header}.{}.sig", b64(r#"{"sub":"no iss"}"#)),
            format!("{header}.{payload}.{}", "A".repeat(MAX_TOKEN_BYTES)),
        ] {
            assert_eq!(peek_issuer(&other), None, "{other:.60}");
        }
    }
}
