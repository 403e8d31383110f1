//! Test keys and certificates, generated with rcgen and the RustCrypto crates (never with the
//! code under test), and small helpers to build an issuer and take a token apart.
use std::sync::OnceLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SignatureAlgorithm};
use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};

use crate::request::AccessEntry;
use crate::token::kid::{der_integer, der_sequence, der_tlv};
use crate::token::{KidMode, SigningKey, TokenIssuer, TokenOptions};

pub struct Fixture {
    pub cert_pem: String,
    pub key_pem: String,
}

impl Fixture {
    pub fn load(&self) -> Result<SigningKey, crate::token::KeyError> {
        SigningKey::from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes())
    }

    pub fn issuer(&self, kid_mode: KidMode, x5c: bool) -> TokenIssuer {
        let options = TokenOptions { issuer: "Acme auth".to_owned(), expiration_secs: 900, kid_mode, x5c };
        TokenIssuer::new(options, self.load().unwrap())
    }
}

/// One shared RSA-2048 key: generating it takes a noticeable fraction of a second.
pub fn rsa_2048() -> &'static rsa::RsaPrivateKey {
    static KEY: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    KEY.get_or_init(|| rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap())
}

pub fn self_signed(key: &KeyPair) -> String {
    let params = CertificateParams::new(vec!["token-signer".to_owned()]).unwrap();
    params.self_signed(key).unwrap().pem()
}

/// `pkcs1` writes the key as `RSA PRIVATE KEY`, otherwise as PKCS#8 `PRIVATE KEY`.
pub fn rsa_fixture(key: &rsa::RsaPrivateKey, pkcs1: bool) -> Fixture {
    let pkcs8 = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let cert_pem = self_signed(&KeyPair::from_pem(&pkcs8).unwrap());
    let key_pem = if pkcs1 { key.to_pkcs1_pem(LineEnding::LF).unwrap().to_string() } else { pkcs8.to_string() };
    Fixture { cert_pem, key_pem }
}

/// An rcgen P-256 or P-384 key; `sec1` re-encodes its PKCS#8 as `EC PRIVATE KEY`.
pub fn ec_fixture(alg: &'static SignatureAlgorithm, sec1: bool) -> (Fixture, KeyPair) {
    let key = KeyPair::generate_for(alg).unwrap();
    let pkcs8 = key.serialize_pem();
    let key_pem = match (sec1, alg == &rcgen::PKCS_ECDSA_P256_SHA256) {
        (false, _) => pkcs8,
        (true, true) => {
            p256::SecretKey::from_pkcs8_pem(&pkcs8).unwrap().to_sec1_pem(LineEnding::LF).unwrap().to_string()
        }
        (true, false) => {
            p384::SecretKey::from_pkcs8_pem(&pkcs8).unwrap().to_sec1_pem(LineEnding::LF).unwrap().to_string()
        }
    };
    let cert_pem = self_signed(&key);
    (Fixture { cert_pem, key_pem }, key)
}

/// A P-256 CA for chains and for leaves rcgen cannot self-sign.
pub fn p256_ca() -> (KeyPair, rcgen::Certificate) {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (key, cert)
}

/// An RSA key of any size with a CA-signed certificate (rcgen+ring cannot load < 2048 bits).
pub fn small_rsa_fixture(key: &rsa::RsaPrivateKey) -> Fixture {
    let (ca_key, ca_cert) = p256_ca();
    let public = RsaPublic(key.to_public_key().to_pkcs1_der().unwrap().into_vec());
    let params = CertificateParams::new(vec!["rsa-signer".to_owned()]).unwrap();
    let cert_pem = params.signed_by(&public, &ca_cert, &ca_key).unwrap().pem();
    let key_pem = key.to_pkcs1_pem(LineEnding::LF).unwrap().to_string();
    Fixture { cert_pem, key_pem }
}

struct RsaPublic(Vec<u8>);

impl rcgen::PublicKeyData for RsaPublic {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

/// A P-521 key (SEC1 PEM) with a hand-built self-signed certificate valid 2025–2035:
/// rcgen with ring cannot sign or even describe P-521 keys.
pub fn p521_fixture(secret: &p521::SecretKey) -> Fixture {
    use p521::ecdsa::signature::Signer;
    const ECDSA_SHA512: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
    const CN: &[u8] = &[0x06, 0x03, 0x55, 0x04, 0x03];
    let sig_alg = der_tlv(0x30, ECDSA_SHA512);
    let cn = der_sequence(&[CN.to_vec(), der_tlv(0x0c, b"p521 signer")]);
    let name = der_sequence(&[der_tlv(0x31, &cn)]);
    let validity = der_sequence(&[der_tlv(0x17, b"250101000000Z"), der_tlv(0x17, b"350101000000Z")]);
    let spki = secret.public_key().to_public_key_der().unwrap().into_vec();
    let version = der_tlv(0xa0, &der_integer(&[2]));
    let serial = der_integer(&[1]);
    let tbs = der_sequence(&[version, serial, sig_alg.clone(), name.clone(), validity, name, spki]);
    let signing_key = p521::ecdsa::SigningKey::from_slice(&secret.to_bytes()).unwrap();
    let signature: p521::ecdsa::Signature = signing_key.sign(&tbs);
    let bytes = signature.to_bytes();
    let (r, s) = bytes.split_at(66);
    let signature_der = der_sequence(&[der_integer(r), der_integer(s)]);
    let bits = der_tlv(0x03, &[&[0u8][..], &signature_der].concat());
    let cert_pem = pem("CERTIFICATE", &der_sequence(&[tbs, sig_alg, bits]));
    let key_pem = secret.to_sec1_pem(LineEnding::LF).unwrap().to_string();
    Fixture { cert_pem, key_pem }
}

pub fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|line| std::str::from_utf8(line).unwrap()).collect();
    let body = lines.join("\n");
    format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
}

pub fn repo_access() -> Vec<AccessEntry> {
    let entry = |class: Option<&str>, name: &str, actions: &[&str]| AccessEntry {
        resource_type: "repository".to_owned(),
        class: class.map(str::to_owned),
        name: name.to_owned(),
        actions: actions.iter().map(|a| a.to_string()).collect(),
    };
    vec![entry(None, "a/b", &["pull", "push"]), entry(Some("plugin"), "p", &[])]
}

/// Decoded header text, claims text and signature bytes of a compact JWS.
pub fn split(token: &str) -> (String, String, Vec<u8>) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a compact JWS has three parts");
    let text = |part: &str| String::from_utf8(URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    (text(parts[0]), text(parts[1]), signature)
}
