//! `registry-auth explain --token JWT`: decode a token, verify its signature with the
//! configured signing key, and show its header and claims with readable times.
use std::process::ExitCode;

use base64::Engine as _;
use ring::signature::{self, UnparsedPublicKey};

use crate::config::Config;
use crate::service::AuthService;
use crate::token::kid::{Curve, PublicKeyMaterial};

pub fn run(token: &str, service: &AuthService, config: &Config) -> ExitCode {
    match explain(token, service, config) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn explain(token: &str, service: &AuthService, config: &Config) -> Result<String, String> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [header, claims, sig] = parts[..] else { return Err("not a JWT: expected three dot-separated parts".into()) };
    let decode = |part: &str, what: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|e| format!("the {what} is not base64url: {e}"))
    };
    let header_json: serde_json::Value =
        serde_json::from_slice(&decode(header, "header")?).map_err(|e| format!("the header is not JSON: {e}"))?;
    let claims_json: serde_json::Value =
        serde_json::from_slice(&decode(claims, "claims")?).map_err(|e| format!("the claims are not JSON: {e}"))?;
    let signature = decode(sig, "signature")?;
    let message = format!("{header}.{claims}");
    let key = service.issuer.key();
    let alg = header_json["alg"].as_str().unwrap_or("");
    let valid = alg == key.algorithm() && verify(key.public_key(), message.as_bytes(), &signature);
    let verdict = if valid {
        format!(
            "signature: valid ({alg}, key of {})",
            config
                .token
                .certificate
                .as_ref()
                .or(config.server.certificate.as_ref())
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )
    } else {
        format!("signature: INVALID for the configured key ({} expected, token says {alg:?}): not issued by this server's key", key.algorithm())
    };
    let mut out = format!("{verdict}\nheader: {header_json}\n");
    let pretty = serde_json::to_string_pretty(&claims_json).unwrap_or_default();
    out.push_str(&format!("claims: {pretty}\n"));
    out.push_str(&times(&claims_json, &config.token.issuer));
    if !valid {
        return Err(out);
    }
    Ok(out)
}

/// Issued/expiry times in UTC and whether the token is still valid now.
fn times(claims: &serde_json::Value, issuer: &str) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let show = |t: Option<i64>| {
        t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| "-".into())
    };
    let exp = claims["exp"].as_i64();
    let state = match exp {
        Some(exp) if exp > now => format!("valid for {} more seconds", exp - now),
        Some(exp) => format!("EXPIRED {} seconds ago", now - exp),
        None => "no expiry".into(),
    };
    let issuer_note = if claims["iss"] == issuer { "matches token.issuer" } else { "DIFFERS from token.issuer" };
    format!("issued at: {}\nexpires at: {} ({state})\nissuer: {issuer_note}\n", show(claims["iat"].as_i64()), show(exp))
}

fn verify(key: &PublicKeyMaterial, message: &[u8], sig: &[u8]) -> bool {
    match key {
        PublicKeyMaterial::Rsa { n, e } => signature::RsaPublicKeyComponents { n, e }
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
            .is_ok(),
        PublicKeyMaterial::Ec { curve, x, y } => {
            let point = uncompressed_point(*curve, x, y);
            match curve {
                Curve::P256 => {
                    UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point).verify(message, sig).is_ok()
                }
                Curve::P384 => {
                    UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, &point).verify(message, sig).is_ok()
                }
                Curve::P521 => verify_p521(&point, message, sig),
            }
        }
    }
}

/// ring has no P-521: the p521 crate (already used for signing) verifies ES512.
fn verify_p521(point: &[u8], message: &[u8], sig: &[u8]) -> bool {
    use p521::ecdsa::signature::Verifier as _;
    let (Ok(key), Ok(sig)) =
        (p521::ecdsa::VerifyingKey::from_sec1_bytes(point), p521::ecdsa::Signature::from_slice(sig))
    else {
        return false;
    };
    key.verify(message, &sig).is_ok()
}

/// `04 || x || y` with each coordinate left-padded to the curve's length.
fn uncompressed_point(curve: Curve, x: &[u8], y: &[u8]) -> Vec<u8> {
    let len = curve.coordinate_len();
    let mut point = vec![4u8];
    for c in [x, y] {
        let c = &c[c.len().saturating_sub(len)..];
        point.extend(std::iter::repeat_n(0u8, len - c.len()));
        point.extend_from_slice(c);
    }
    point
}
