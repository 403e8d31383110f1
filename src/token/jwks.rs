//! The JWKS document for a registry's `auth.token.jwks` (registry 3.x): one JWK per trusted
//! key, under the `kid` our tokens carry. Registry 3.x trusts a JWKS `kid` exactly as
//! written, so any kid mode works there, on 3.0.0 and 3.1.x alike, whatever the key.
//! Built from public key material only, independent of the signing backend.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};

use super::kid::{left_pad, strip_leading_zeros, PublicKeyMaterial};

/// `{"keys": [...]}` for `(key, kid)` pairs, in order.
pub fn document<'a>(keys: impl IntoIterator<Item = (&'a PublicKeyMaterial, String)>) -> Value {
    let keys: Vec<Value> = keys.into_iter().map(|(public, kid)| jwk(public, &kid)).collect();
    json!({ "keys": keys })
}

/// One public JWK (RFC 7517/7518). RSA integers are minimal; EC coordinates are padded to
/// the curve size, which go-jose (registry 3.x) requires when it reads the file.
pub fn jwk(public: &PublicKeyMaterial, kid: &str) -> Value {
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    match public {
        PublicKeyMaterial::Rsa { n, e } => json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "n": b64(strip_leading_zeros(n)),
            "e": b64(strip_leading_zeros(e)),
        }),
        PublicKeyMaterial::Ec { curve, x, y } => json!({
            "kty": "EC",
            "use": "sig",
            "alg": algorithm(public),
            "kid": kid,
            "crv": curve.jwk_name(),
            "x": b64(&left_pad(x, curve.coordinate_len())),
            "y": b64(&left_pad(y, curve.coordinate_len())),
        }),
    }
}

/// The JWS algorithm registry-auth signs with for this key.
pub fn algorithm(public: &PublicKeyMaterial) -> &'static str {
    use super::kid::Curve;
    match public {
        PublicKeyMaterial::Rsa { .. } => "RS256",
        PublicKeyMaterial::Ec { curve: Curve::P256, .. } => "ES256",
        PublicKeyMaterial::Ec { curve: Curve::P384, .. } => "ES384",
        PublicKeyMaterial::Ec { curve: Curve::P521, .. } => "ES512",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::kid::Curve;

    #[test]
    fn ec_coordinates_are_padded_and_rsa_integers_minimal() {
        let ec = PublicKeyMaterial::Ec { curve: Curve::P256, x: vec![0, 0, 7], y: vec![1; 32] };
        let key = jwk(&ec, "k1");
        assert_eq!(URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap().len(), 32);
        assert_eq!(
            (key["kty"].as_str(), key["alg"].as_str(), key["kid"].as_str()),
            (Some("EC"), Some("ES256"), Some("k1"))
        );
        let rsa = PublicKeyMaterial::Rsa { n: vec![0, 0xc1, 2], e: vec![0, 1, 0, 1] };
        let key = jwk(&rsa, "k2");
        assert_eq!((key["n"].as_str(), key["e"].as_str()), (Some("wQI"), Some("AQAB")));
        assert_eq!(document([(&rsa, "a".to_owned()), (&ec, "b".to_owned())])["keys"].as_array().unwrap().len(), 2);
    }
}
