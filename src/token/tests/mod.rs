//! Every supported key type signs a token that an independent verifier accepts
//! (jsonwebtoken; the p521 crate for ES512, which jsonwebtoken lacks).
mod fixtures;
mod layout;
mod loading;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rsa::traits::PublicKeyParts;
use serde_json::Value;

use self::fixtures::{ec_fixture, repo_access, rsa_2048, rsa_fixture, split};
use super::{KidMode, TokenIssuer};

/// Issues a real-time token and checks signature, iss, aud, exp and nbf with jsonwebtoken.
fn assert_verifies(issuer: &TokenIssuer, key: &DecodingKey, alg: Algorithm, sig_len: usize) {
    let issued = issuer.issue("alice", "registry.example", &repo_access()).unwrap();
    let mut validation = Validation::new(alg);
    validation.set_issuer(&["Acme auth"]);
    validation.set_audience(&["registry.example"]);
    validation.validate_nbf = true;
    let data = jsonwebtoken::decode::<Value>(&issued.token, key, &validation).unwrap();
    assert_eq!(data.claims["sub"], "alice");
    let kid = issuer.key().libtrust_kid();
    assert_eq!(data.header.kid.as_deref(), Some(kid.as_str()));
    assert_eq!(split(&issued.token).2.len(), sig_len);
}

fn rsa_decoding_key(key: &rsa::RsaPrivateKey) -> DecodingKey {
    DecodingKey::from_rsa_raw_components(&key.n().to_bytes_be(), &key.e().to_bytes_be())
}

fn ec_decoding_key(key: &rcgen::KeyPair) -> DecodingKey {
    DecodingKey::from_ec_pem(key.public_key_pem().as_bytes()).unwrap()
}

#[test]
fn rsa_pkcs1_key_signs_rs256() {
    let issuer = rsa_fixture(rsa_2048(), true).issuer(KidMode::Libtrust, false);
    assert_eq!(issuer.key().algorithm(), "RS256");
    assert_verifies(&issuer, &rsa_decoding_key(rsa_2048()), Algorithm::RS256, 256);
}

#[test]
fn rsa_pkcs8_key_signs_rs256() {
    let fixture = rsa_fixture(rsa_2048(), false);
    assert!(fixture.key_pem.contains("BEGIN PRIVATE KEY"));
    let issuer = fixture.issuer(KidMode::Libtrust, false);
    assert_verifies(&issuer, &rsa_decoding_key(rsa_2048()), Algorithm::RS256, 256);
}

#[test]
fn rsa_1024_key_is_refused_with_the_reason() {
    // docker_auth signs with RSA-1024; AWS-LC (and sound practice) needs at least 2048 bits.
    let small = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 1024).unwrap();
    let error = fixtures::small_rsa_fixture(&small).load().unwrap_err().to_string();
    assert!(error.contains("the RSA key has 1024 bits; token keys must have 2048 to 8192 bits"), "{error}");
}

#[test]
fn rsa_3072_key_signs_rs256() {
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 3072).unwrap();
    let issuer = fixtures::small_rsa_fixture(&key).issuer(KidMode::Libtrust, false);
    assert_eq!(issuer.key().algorithm(), "RS256");
    assert_verifies(&issuer, &rsa_decoding_key(&key), Algorithm::RS256, 384);
}

#[test]
fn ec_p256_sec1_key_signs_es256() {
    let (fixture, key) = ec_fixture(&rcgen::PKCS_ECDSA_P256_SHA256, true);
    assert!(fixture.key_pem.contains("BEGIN EC PRIVATE KEY"));
    let issuer = fixture.issuer(KidMode::Libtrust, false);
    assert_eq!(issuer.key().algorithm(), "ES256");
    assert_verifies(&issuer, &ec_decoding_key(&key), Algorithm::ES256, 64);
}

#[test]
fn ec_p256_pkcs8_key_signs_es256() {
    let (fixture, key) = ec_fixture(&rcgen::PKCS_ECDSA_P256_SHA256, false);
    assert!(fixture.key_pem.contains("BEGIN PRIVATE KEY"));
    let issuer = fixture.issuer(KidMode::Libtrust, false);
    assert_verifies(&issuer, &ec_decoding_key(&key), Algorithm::ES256, 64);
}

#[test]
fn ec_p384_keys_sign_es384() {
    for sec1 in [false, true] {
        let (fixture, key) = ec_fixture(&rcgen::PKCS_ECDSA_P384_SHA384, sec1);
        let issuer = fixture.issuer(KidMode::Libtrust, false);
        assert_eq!(issuer.key().algorithm(), "ES384");
        assert_verifies(&issuer, &ec_decoding_key(&key), Algorithm::ES384, 96);
    }
}

#[test]
fn ec_p521_key_signs_es512() {
    use p521::ecdsa::signature::Verifier;
    let secret = p521::SecretKey::random(&mut rand::rngs::OsRng);
    let issuer = fixtures::p521_fixture(&secret).issuer(KidMode::Libtrust, false);
    assert_eq!(issuer.key().algorithm(), "ES512");
    assert_eq!(issuer.key().not_after_unix(), 2_051_222_400); // 2035-01-01T00:00:00Z
    let issued = issuer.issue("alice", "registry.example", &[]).unwrap();
    let (signing_input, signature_b64) = issued.token.rsplit_once('.').unwrap();
    let signature_bytes = URL_SAFE_NO_PAD.decode(signature_b64).unwrap();
    assert_eq!(signature_bytes.len(), 132);
    let signature = p521::ecdsa::Signature::from_slice(&signature_bytes).unwrap();
    let verifier = p521::ecdsa::VerifyingKey::from_affine(*secret.public_key().as_affine());
    let verifier = verifier.unwrap();
    verifier.verify(signing_input.as_bytes(), &signature).unwrap();
    let mut tampered = signing_input.as_bytes().to_vec();
    tampered[0] ^= 1;
    assert!(verifier.verify(&tampered, &signature).is_err());
}
