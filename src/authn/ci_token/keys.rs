//! An issuer's verification keys, parsed from its JWKS: each key with the algorithms it may
//! verify, taken from the key itself (its `alg`, else its type and curve), never from the
//! token. Symmetric (`oct`) keys, encryption keys and `none` are never usable.
use std::collections::HashMap;
use std::sync::Arc;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

/// One usable key.
pub struct VerificationKey {
    pub key: DecodingKey,
    /// What a token signed with this key may name as its `alg`.
    pub algorithms: Vec<Algorithm>,
}

/// The keys of one JWKS, by `kid` (a key without `kid` is kept under `""`).
#[derive(Default)]
pub struct KeySet {
    keys: HashMap<String, Arc<VerificationKey>>,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

impl KeySet {
    /// Parses a JWKS document. Keys this server cannot or must not use are skipped (an
    /// issuer may publish encryption or future key types beside its signing keys).
    pub fn parse(json: &[u8]) -> Result<KeySet, String> {
        let raw: RawSet = serde_json::from_slice(json).map_err(|e| format!("not a JWKS document: {e}"))?;
        let mut keys = HashMap::new();
        for value in raw.keys {
            let Ok(jwk) = serde_json::from_value::<Jwk>(value) else { continue };
            if let Some(key) = usable(&jwk) {
                keys.insert(jwk.common.key_id.clone().unwrap_or_default(), Arc::new(key));
            }
        }
        Ok(KeySet { keys })
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The key a token's `kid` names; a token without `kid` may use the only key of a set
    /// that has just one.
    pub fn get(&self, kid: Option<&str>) -> Option<Arc<VerificationKey>> {
        match kid {
            Some(kid) => self.keys.get(kid).cloned(),
            None if self.keys.len() == 1 => self.keys.values().next().cloned(),
            None => None,
        }
    }
}

fn usable(jwk: &Jwk) -> Option<VerificationKey> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))) {
        return None;
    }
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
        // Symmetric keys: a token "signed" with a published secret proves nothing.
        AlgorithmParameters::OctetKey(_) | AlgorithmParameters::OctetKeyPair(_) => return None,
    };
    let algorithms = match jwk.common.key_algorithm {
        None => by_type,
        Some(alg) => {
            let named = signing_algorithm(alg)?;
            if !by_type.contains(&named) {
                return None;
            }
            vec![named]
        }
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerificationKey { key, algorithms })
}

fn signing_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any base64url text: parsing a JWKS does not check the modulus.
    const RSA_N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9";

    fn rsa(extra: &str) -> String {
        format!(r#"{{"kty":"RSA","kid":"r1","n":"{RSA_N}","e":"AQAB"{extra}}}"#)
    }

    #[test]
    fn algorithms_come_from_the_key() {
        let set = KeySet::parse(format!(r#"{{"keys":[{}]}}"#, rsa(r#","alg":"RS256""#)).as_bytes()).unwrap();
        assert_eq!(set.get(Some("r1")).unwrap().algorithms, [Algorithm::RS256]);
        let set = KeySet::parse(format!(r#"{{"keys":[{}]}}"#, rsa("")).as_bytes()).unwrap();
        assert!(set.get(Some("r1")).unwrap().algorithms.contains(&Algorithm::PS512));
        assert!(set.get(None).is_some(), "the only key serves a token without kid");
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let doc = format!(
            r#"{{"keys":[{},{},{},{{"kty":"oct","kid":"h","k":"c2VjcmV0"}},{{"kty":"XYZ","kid":"x"}}]}}"#,
            rsa(r#","use":"enc""#).replace("r1", "e"),
            rsa(r#","alg":"HS256""#).replace("r1", "hs"),
            rsa(r#","alg":"ES256""#).replace("r1", "mismatch"),
        );
        let set = KeySet::parse(doc.as_bytes()).unwrap();
        assert!(set.is_empty());
        assert!(KeySet::parse(b"<html>").is_err());
        assert!(KeySet::parse(b"{\"keys\": 3}").is_err());
    }
}
