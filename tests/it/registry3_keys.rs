//! registry 3.1.x's EC thumbprint quirk, against the real v3.1.1: for a key whose x or y
//! starts with a zero byte, 3.1.x hashes the coordinates unpadded. registry-auth's
//! thumbprint kid is that value, so 3.1.1 accepts our tokens, while the strict RFC 7638
//! thumbprint (padded) is refused; check-config and start-up warn about such keys, and
//! x5c works whatever the key.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::EncodePrivateKey as _;
use sha2::Digest as _;

use crate::common::{decode_jwt, Keys};
use crate::e2e::{assert_refused_by_kid, assert_warned, setup, Form};
use crate::support::registry::Version;

/// Draws P-256 keys until x or y has a leading zero byte (about 1 in 128), then writes it
/// with a self-signed certificate. Returns the keys and the point's (x, y).
fn leading_zero_keys() -> (Keys, Vec<u8>, Vec<u8>) {
    let (secret, x, y) = (0..10_000)
        .find_map(|_| {
            let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
            let point = secret.public_key().to_encoded_point(false);
            let (x, y) = (point.x()?.to_vec(), point.y()?.to_vec());
            (x[0] == 0 || y[0] == 0).then_some((secret, x, y))
        })
        .expect("a key with a leading zero coordinate within 10000 draws");
    let pem = secret.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap();
    let pair = rcgen::KeyPair::from_pem(&pem).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&pair)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("server.pem"), dir.path().join("server.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, pem.as_bytes()).unwrap();
    (Keys { _dir: dir, cert: cert_path, key: key_path }, x, y)
}

fn thumbprint(x: &[u8], y: &[u8]) -> String {
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(x),
        URL_SAFE_NO_PAD.encode(y)
    );
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))
}

fn strip(bytes: &[u8]) -> &[u8] {
    &bytes[bytes.iter().position(|b| *b != 0).unwrap_or(0)..]
}

#[test]
fn ec_key_with_a_leading_zero_coordinate_on_registry_3_1_1() {
    let (keys, x, y) = leading_zero_keys();
    let s = setup(Version::V3_1_1, &keys, "  disable_legacy_key_id: true\n", Form::ThumbprintKid);
    assert_warned(&s, "starts with a zero byte");

    // Our kid is 3.1.x's unpadded value: accepted.
    let ours = s.token(Some(("admin", "badmin")), &[]);
    let ours = ours["token"].as_str().unwrap();
    let jwt = decode_jwt(ours);
    assert_eq!(jwt.header["kid"], thumbprint(strip(&x), strip(&y)));
    assert_eq!(s.registry_call("GET", "/v2/", ours).0, 200, "{}", s.registry.log());

    // The same claims under the strict RFC 7638 kid (padded): refused.
    let rfc7638 = thumbprint(&x, &y);
    assert_ne!(rfc7638, jwt.header["kid"].as_str().unwrap());
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some(rfc7638);
    let key = jsonwebtoken::EncodingKey::from_ec_pem(&std::fs::read(&keys.key).unwrap()).unwrap();
    let strict = jsonwebtoken::encode(&header, &jwt.claims, &key).unwrap();
    assert_refused_by_kid(&s, &strict);

    // x5c ignores the kid: the same key works through the certificate.
    let x5c = setup(Version::V3_1_1, &keys, "  x5c: true\n  disable_legacy_key_id: true\n", Form::X5c);
    let token = x5c.token(Some(("admin", "badmin")), &["repository:a/b:pull"]);
    assert_eq!(x5c.registry_call("GET", "/v2/a/b/tags/list", token["token"].as_str().unwrap()).0, 404);
}
