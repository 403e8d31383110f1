//! Key and certificate loading failures, with the start-up messages operators see.
use std::io::Write;

use super::fixtures::{ec_fixture, pem, rsa_2048, rsa_fixture, self_signed, Fixture};
use crate::token::kid::{der_integer, der_sequence, der_tlv};
use crate::token::{KeyError, SigningKey};

fn p256() -> (Fixture, rcgen::KeyPair) {
    ec_fixture(&rcgen::PKCS_ECDSA_P256_SHA256, false)
}

#[test]
fn key_of_another_certificate_is_rejected_with_go_wording() {
    let (first, _) = p256();
    let (second, _) = p256();
    let mixed = Fixture { cert_pem: first.cert_pem, key_pem: second.key_pem };
    let error = mixed.load().unwrap_err();
    assert!(matches!(error, KeyError::KeyMismatch), "{error:?}");
    assert!(error
        .to_string()
        .starts_with("failed to load token cert and key: tls: private key does not match public key"));
}

#[test]
fn key_of_another_type_is_a_mismatch() {
    let (ec, _) = p256();
    let mixed = Fixture { cert_pem: ec.cert_pem, key_pem: rsa_fixture(rsa_2048(), true).key_pem };
    assert!(matches!(mixed.load(), Err(KeyError::KeyMismatch)));
}

#[test]
fn ed25519_is_rejected_naming_the_type() {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let fixture = Fixture { cert_pem: self_signed(&key), key_pem: key.serialize_pem() };
    let message = fixture.load().unwrap_err().to_string();
    assert!(message.contains("Ed25519"), "{message}");
    assert!(message.contains("RSA or EC P-256/P-384/P-521"), "{message}");
}

#[test]
fn encrypted_keys_are_rejected_clearly() {
    let (fixture, _) = p256();
    let pkcs8 = pem("ENCRYPTED PRIVATE KEY", b"not really encrypted");
    let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
    for key_pem in [pkcs8.as_str(), legacy] {
        let result = SigningKey::from_pem(fixture.cert_pem.as_bytes(), key_pem.as_bytes());
        let error = result.unwrap_err();
        assert!(matches!(error, KeyError::EncryptedKey), "{error:?}");
        assert!(error.to_string().contains("encrypted"));
    }
}

#[test]
fn missing_pem_blocks_are_reported() {
    let (fixture, _) = p256();
    let no_cert = SigningKey::from_pem(fixture.key_pem.as_bytes(), fixture.key_pem.as_bytes());
    assert!(matches!(no_cert, Err(KeyError::NoCertificate)));
    let no_key = SigningKey::from_pem(fixture.cert_pem.as_bytes(), fixture.cert_pem.as_bytes());
    assert!(matches!(no_key, Err(KeyError::NoPrivateKey)));
}

#[test]
fn key_after_other_blocks_is_found_like_go() {
    let (fixture, _) = p256();
    let combined = format!("{}{}", fixture.cert_pem, fixture.key_pem);
    let key = SigningKey::from_pem(combined.as_bytes(), combined.as_bytes()).unwrap();
    assert_eq!(key.algorithm(), "ES256");
}

#[test]
fn unsupported_ec_curve_in_pkcs8_is_named() {
    let (fixture, _) = p256();
    // A PKCS#8 envelope naming secp256k1 (1.3.132.0.10) around a SEC1 key.
    let sec1 = p256::SecretKey::random(&mut rand::rngs::OsRng).to_sec1_der().unwrap();
    let ec_public_key = [0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    let secp256k1 = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];
    let algorithm = der_sequence(&[ec_public_key.to_vec(), secp256k1.to_vec()]);
    let der = der_sequence(&[der_integer(&[0]), algorithm, der_tlv(0x04, &sec1)]);
    let key_pem = pem("PRIVATE KEY", &der);
    let error = SigningKey::from_pem(fixture.cert_pem.as_bytes(), key_pem.as_bytes());
    let message = error.unwrap_err().to_string();
    assert!(message.contains("1.3.132.0.10"), "{message}");
}

#[test]
fn load_reads_files_and_names_the_missing_one() {
    let (fixture, _) = p256();
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::File::create(&cert_path).and_then(|mut file| file.write_all(fixture.cert_pem.as_bytes())).unwrap();
    std::fs::write(&key_path, &fixture.key_pem).unwrap();
    assert_eq!(SigningKey::load(&cert_path, &key_path).unwrap().algorithm(), "ES256");
    let missing = dir.path().join("nope.pem");
    let message = SigningKey::load(&cert_path, &missing).unwrap_err().to_string();
    assert!(message.contains(&missing.display().to_string()), "{message}");
}

#[test]
fn debug_output_shows_no_key_material() {
    let (fixture, _) = p256();
    let key = fixture.load().unwrap();
    let debug = format!("{key:?}");
    assert!(debug.contains("ES256") && debug.contains(&key.libtrust_kid()));
    assert!(!debug.contains("signer"), "{debug}");
}
