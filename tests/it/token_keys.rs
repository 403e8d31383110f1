//! The issued token's key id and certificate headers, checked against independent oracles:
//! openssl for the libtrust fingerprint (parity.md §2.2's recipe) and jsonwebtoken's JWK
//! thumbprint for RFC 7638. Also the server-pair fallback and TLS option errors.
use std::process::Command;

use actix_web::test::{self, TestRequest};
use base64::Engine as _;
use registry_auth::{app, config};
use serde_json::Value;

use crate::common::*;

async fn token_for(yaml: &str) -> String {
    let app = app_for(yaml).await;
    let resp = test::call_service(&app, TestRequest::get().uri("/auth?service=reg").to_request()).await;
    assert_eq!(resp.status(), 200);
    let body: Value = test::read_body_json(resp).await;
    body["token"].as_str().unwrap().to_string()
}

/// parity.md §2.2: the shell recipe that gives docker_auth's kid.
fn openssl_libtrust_kid(cert: &std::path::Path) -> String {
    let script = format!(
        "openssl x509 -in '{}' -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | head -c 30 | base32 | tr -d '=\\n' | fold -w4 | paste -sd:",
        cert.display()
    );
    let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[actix_web::test]
async fn default_kid_is_the_libtrust_fingerprint_for_rsa_and_ec() {
    for kind in [KeyKind::Rsa2048, KeyKind::EcP256] {
        let keys = Keys::new(kind);
        let jwt = decode_jwt(&token_for(&standard_yaml(&keys, "")).await);
        let expected = openssl_libtrust_kid(&keys.cert);
        assert_eq!(expected.len(), 59, "{expected}");
        assert_eq!(jwt.header["kid"], expected.as_str(), "{kind:?}");
        assert_eq!(jwt.header["alg"], if kind == KeyKind::Rsa2048 { "RS256" } else { "ES256" });
        assert!(jwt.header.get("x5c").is_none());
    }
}

#[actix_web::test]
async fn disable_legacy_key_id_gives_the_rfc7638_thumbprint_of_the_real_key() {
    let mut kids = Vec::new();
    for kind in [KeyKind::Rsa2048, KeyKind::EcP256, KeyKind::EcP256] {
        let keys = Keys::new(kind);
        let token = token_for(&standard_yaml(&keys, "  disable_legacy_key_id: true")).await;
        let jwt = decode_jwt(&token);
        let kid = jwt.header["kid"].as_str().unwrap().to_string();
        let jwk = match kind {
            KeyKind::Rsa2048 => jsonwebtoken::jwk::Jwk::from_encoding_key(
                &jsonwebtoken::EncodingKey::from_rsa_pem(&std::fs::read(&keys.key).unwrap()).unwrap(),
                jsonwebtoken::Algorithm::RS256,
            ),
            KeyKind::EcP256 => jsonwebtoken::jwk::Jwk::from_encoding_key(
                &jsonwebtoken::EncodingKey::from_ec_pem(&std::fs::read(&keys.key).unwrap()).unwrap(),
                jsonwebtoken::Algorithm::ES256,
            ),
        }
        .unwrap();
        assert_eq!(kid, minimal_byte_thumbprint(&jwk), "{kind:?}");
        kids.push(kid);
    }
    assert_ne!(kids[1], kids[2], "two EC keys must not share a kid (docker_auth's generator-point bug)");
}

#[actix_web::test]
async fn x5c_carries_the_certificate_in_standard_base64() {
    let keys = Keys::new(KeyKind::EcP256);
    let jwt = decode_jwt(&token_for(&standard_yaml(&keys, "  x5c: true")).await);
    let pem = std::fs::read(&keys.cert).unwrap();
    let (_, parsed) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let expected = base64::engine::general_purpose::STANDARD.encode(&parsed.contents);
    assert_eq!(jwt.header["x5c"], serde_json::json!([expected]));
    assert!(jwt.header_text.starts_with(r#"{"typ":"JWT","alg":"ES256","kid":"#), "{}", jwt.header_text);
}

#[actix_web::test]
async fn server_tls_pair_signs_when_the_token_section_has_none() {
    let keys = Keys::new(KeyKind::Rsa2048);
    let yaml = with_keys(
        "server:\n  addr: ':0'\n  certificate: '@CERT@'\n  key: '@KEY@'\ntoken:\n  issuer: 'Acme auth server'\n  expiration: 60\nusers:\n  '': {}\nacl: []\n",
        &keys,
    );
    let token = token_for(&yaml).await;
    verify_jwt(&token, &keys, "reg");
}

#[test]
fn tls_options_rustls_cannot_honour_are_errors_naming_the_key() {
    let keys = Keys::new(KeyKind::EcP256);
    let base = "server:\n  addr: ':0'\n  certificate: '@CERT@'\n  key: '@KEY@'\n@TLS@token:\n  issuer: x\n  expiration: 60\nusers: {}\nacl: []\n";
    let build = |tls: &str| {
        let yaml = with_keys(&base.replace("@TLS@", tls), &keys);
        app::build(&config::load_str(&yaml, "t.yml").unwrap())
            .map(|_| ())
            .map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>())
    };
    build("  tls_min_version: TLS12\n  tls_curve_preferences: [X25519, P256, 24]\n  tls_cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, 0xcca9]\n").unwrap();
    let e = build("  tls_curve_preferences: [P256, P521]\n").unwrap_err();
    assert!(e[0].starts_with("curve \"P521\" is not supported (at server.tls_curve_preferences[1], line 5)"), "{e:?}");
    let e = build("  tls_cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n").unwrap_err();
    assert!(e[0].contains("cipher suite \"TLS_RSA_WITH_AES_128_CBC_SHA\" is not supported"), "{e:?}");
    let e =
        config::load_str(&with_keys(&base.replace("@TLS@", "  tls_min_version: TLS14\n"), &keys), "t.yml").unwrap_err();
    assert!(e.to_string().contains("unknown TLS version \"TLS14\""), "{e}");
}

/// RFC 7638 over the key's own coordinates with minimal-byte integers (registry 3.1's
/// choice, parity.md §2.2), from jsonwebtoken's JWK of the private key.
fn minimal_byte_thumbprint(jwk: &jsonwebtoken::jwk::Jwk) -> String {
    use jsonwebtoken::jwk::AlgorithmParameters;
    use sha2::Digest as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let minimal = |field: &str| {
        let bytes = b64.decode(field).unwrap();
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len() - 1);
        b64.encode(&bytes[start..])
    };
    let canonical = match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, minimal(&rsa.e), minimal(&rsa.n))
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, minimal(&ec.x), minimal(&ec.y))
        }
        other => panic!("unexpected key {other:?}"),
    };
    b64.encode(sha2::Sha256::digest(canonical.as_bytes()))
}
