//! The raw JSON text of header and claims (key order matters to nobody but diffing
//! operators, yet it is docker_auth's observable output), x5c, and the two kid modes.
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use p256::pkcs8::EncodePublicKey;
use rsa::traits::PublicKeyParts;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::fixtures::{ec_fixture, p256_ca, repo_access, rsa_2048, rsa_fixture, split, Fixture};
use crate::token::KidMode;

const NOW: i64 = 1_700_000_000;

#[test]
fn header_is_exactly_typ_alg_kid_in_order() {
    let (fixture, _) = ec_fixture(&rcgen::PKCS_ECDSA_P256_SHA256, false);
    let issuer = fixture.issuer(KidMode::Libtrust, false);
    let token = issuer.issue_at(NOW, "alice", "svc", &[]).unwrap().token;
    let kid = issuer.key().libtrust_kid();
    let expected = format!(r#"{{"typ":"JWT","alg":"ES256","kid":"{kid}"}}"#);
    assert_eq!(split(&token).0, expected);
}

#[test]
fn claims_have_docker_auth_order_and_values() {
    let issuer = rsa_fixture(rsa_2048(), true).issuer(KidMode::Libtrust, false);
    let issued = issuer.issue_at(NOW, "alice", "registry.example", &repo_access());
    let issued = issued.unwrap();
    assert_eq!((issued.issued_at, issued.expires_in), (NOW, 900));
    let claims = split(&issued.token).1;
    let head = r#"{"iss":"Acme auth","sub":"alice","aud":"registry.example","exp":1700000900,"nbf":1699999990,"iat":1700000000,"jti":""#;
    let tail = r#"","access":[{"type":"repository","name":"a/b","actions":["pull","push"]},{"type":"repository","class":"plugin","name":"p","actions":[]}]}"#;
    assert!(claims.starts_with(head), "{claims}");
    assert!(claims.ends_with(tail), "{claims}");
    let jti = &claims[head.len()..claims.len() - tail.len()];
    assert!(jti.bytes().all(|b| b.is_ascii_digit()), "jti {jti:?}");
    assert!(jti.parse::<u64>().unwrap() < 1 << 63);
}

#[test]
fn login_token_has_empty_access_array_and_empty_subject() {
    let (fixture, _) = ec_fixture(&rcgen::PKCS_ECDSA_P256_SHA256, true);
    let issuer = fixture.issuer(KidMode::Libtrust, false);
    let claims = split(&issuer.issue_at(NOW, "", "", &[]).unwrap().token).1;
    assert!(claims.starts_with(r#"{"iss":"Acme auth","sub":"","aud":"","#));
    assert!(claims.ends_with(r#","access":[]}"#), "{claims}");
}

#[test]
fn jti_differs_between_tokens() {
    let (fixture, _) = ec_fixture(&rcgen::PKCS_ECDSA_P256_SHA256, true);
    let issuer = fixture.issuer(KidMode::Libtrust, false);
    let jti = || {
        let claims = split(&issuer.issue_at(NOW, "a", "s", &[]).unwrap().token).1;
        let value: serde_json::Value = serde_json::from_str(&claims).unwrap();
        value["jti"].as_str().unwrap().to_owned()
    };
    assert_ne!(jti(), jti());
}

#[test]
fn x5c_sends_the_chain_leaf_first_in_standard_base64() {
    let (ca_key, ca_cert) = p256_ca();
    let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(vec!["leaf".to_owned()]).unwrap();
    let leaf = params.signed_by(&leaf_key, &ca_cert, &ca_key).unwrap();
    let fixture = Fixture { cert_pem: format!("{}{}", leaf.pem(), ca_cert.pem()), key_pem: leaf_key.serialize_pem() };
    let issuer = fixture.issuer(KidMode::Libtrust, true);
    let header = split(&issuer.issue_at(NOW, "a", "s", &[]).unwrap().token).0;
    let leaf_b64 = STANDARD.encode(leaf.der());
    let ca_b64 = STANDARD.encode(ca_cert.der());
    let kid = issuer.key().libtrust_kid();
    let expected = format!(r#"{{"typ":"JWT","alg":"ES256","kid":"{kid}","x5c":["{leaf_b64}","{ca_b64}"]}}"#);
    assert_eq!(header, expected);
    // Two DER certificates in base64 without any '+' or '/' would be a ~1e-9 coincidence,
    // so this guards against base64url sneaking in.
    assert!(header.contains('+') || header.contains('/'));
}

#[test]
fn thumbprint_mode_uses_rfc7638_of_the_real_rsa_key() {
    let issuer = rsa_fixture(rsa_2048(), false).issuer(KidMode::Thumbprint, false);
    let header = split(&issuer.issue_at(NOW, "a", "s", &[]).unwrap().token).0;
    // Independent RFC 7638 computation: jsonwebtoken's JWK thumbprint.
    let (n, e) = (rsa_2048().n().to_bytes_be(), rsa_2048().e().to_bytes_be());
    let jwk = jsonwebtoken::jwk::Jwk {
        common: Default::default(),
        algorithm: jsonwebtoken::jwk::AlgorithmParameters::RSA(jsonwebtoken::jwk::RSAKeyParameters {
            key_type: jsonwebtoken::jwk::RSAKeyType::RSA,
            n: base64_url(&n),
            e: base64_url(&e),
        }),
    };
    let expected = jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256);
    assert_eq!(header, format!(r#"{{"typ":"JWT","alg":"RS256","kid":"{expected}"}}"#));
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn ec_thumbprint_is_per_key_not_docker_auths_generator_constant() {
    let kid = |_| {
        let (fixture, _) = ec_fixture(&rcgen::PKCS_ECDSA_P256_SHA256, false);
        fixture.load().unwrap().thumbprint_kid()
    };
    let (first, second) = (kid(1), kid(2));
    assert_ne!(first, second);
    assert_ne!(first, "xx0BcA-wMohw8atYDJOe6peGModklG2wRHBlXHMvl0M");
    assert_eq!(first.len(), 43);
}

#[test]
fn spki_der_is_what_the_certificate_and_go_encode() {
    let (fixture, key) = ec_fixture(&rcgen::PKCS_ECDSA_P384_SHA384, false);
    assert_eq!(fixture.load().unwrap().spki_der(), key.public_key_der());
    let signing_key = rsa_fixture(rsa_2048(), true).load().unwrap();
    let rsa_spki = rsa_2048().to_public_key().to_public_key_der().unwrap();
    assert_eq!(signing_key.spki_der(), rsa_spki.as_bytes());
}

#[test]
fn libtrust_kid_is_from_the_leaf_and_chain_is_kept_in_order() {
    let fixture = rsa_fixture(rsa_2048(), true);
    let key = fixture.load().unwrap();
    let chain = key.certificate_chain_der();
    assert_eq!(chain.len(), 1);
    let (_, cert) = X509Certificate::from_der(&chain[0]).unwrap();
    assert_eq!(cert.public_key().raw, key.spki_der());
    assert_eq!(key.not_after_unix(), cert.validity().not_after.timestamp());
    let kid = key.libtrust_kid();
    assert_eq!(kid.len(), 59);
    assert!(kid.split(':').all(|group| group.len() == 4));
}
