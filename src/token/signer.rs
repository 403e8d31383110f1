//! The private half of a signing key: parses the key PEM the way Go's `tls.X509KeyPair`
//! accepts it (PKCS#1, PKCS#8, SEC1; parity.md §2.4) and signs with the one JWS algorithm the
//! key type allows, in the byte form registry 2.8 accepts (PKCS#1 v1.5 for RSA, raw
//! fixed-length r‖s for EC; token-spec.md §3.3 step 7). Imports only `kid` and `KeyError`.
//!
//! Every signature is made by aws-lc-rs (AWS-LC, constant-time, OpenSSL-speed assembly on
//! x86-64 and aarch64), the same library rustls uses for the listener. The RustCrypto crates
//! only parse the key files and derive the public half; none of them signs.
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as lc_sig, EcdsaKeyPair, RsaKeyPair};
use p256::elliptic_curve::sec1::{FromEncodedPoint, ModulusSize, ToEncodedPoint};
use p256::elliptic_curve::{AffinePoint, CurveArithmetic, FieldBytesSize, PublicKey};
use p256::pkcs8::{AssociatedOid, DecodePrivateKey, ObjectIdentifier, PrivateKeyInfo};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::traits::PublicKeyParts;
use rustls_pemfile::Item;

use super::keys::KeyError;
use super::kid::{Curve, PublicKeyMaterial};

/// Signing failed. Only a broken crypto backend (or its OS RNG) can cause this at run time.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("token signing failed in {0}")]
    Crypto(&'static str),
    #[error("the token claims could not be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The RSA moduli AWS-LC signs with. Go (and so docker_auth) signs with any size, but
/// below 2048 bits RSA is no longer safe, and above 8192 AWS-LC refuses the key.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=8192;

pub(crate) enum Signer {
    /// RS256, PKCS#1 v1.5 (blinded, constant-time in AWS-LC).
    Rsa(RsaKeyPair),
    /// ES256 / ES384 / ES512; `*_FIXED_SIGNING` yields raw r‖s.
    Ecdsa(EcdsaKeyPair),
}

impl Signer {
    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match self {
            Signer::Rsa(key) => {
                let mut signature = vec![0u8; key.public_modulus_len()];
                key.sign(&lc_sig::RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut signature)
                    .map_err(|_| SignError::Crypto("aws-lc RSA"))?;
                Ok(signature)
            }
            Signer::Ecdsa(key) => key
                .sign(&SystemRandom::new(), message)
                .map(|signature| signature.as_ref().to_vec())
                .map_err(|_| SignError::Crypto("aws-lc ECDSA")),
        }
    }
}

/// A parsed private key, ready to sign.
pub(crate) struct PrivateKey {
    pub(crate) algorithm: &'static str,
    pub(crate) signer: Signer,
    pub(crate) public: PublicKeyMaterial,
}

/// Parses the first private-key PEM block, as Go does; other blocks are skipped.
pub(crate) fn parse_private_key(key_pem: &[u8]) -> Result<PrivateKey, KeyError> {
    // rustls-pemfile silently skips "ENCRYPTED PRIVATE KEY" blocks and cannot read the legacy
    // OpenSSL encryption headers, so detect both here to say what is actually wrong.
    if contains(key_pem, b"ENCRYPTED PRIVATE KEY-----") || contains(key_pem, b"4,ENCRYPTED") {
        return Err(KeyError::EncryptedKey);
    }
    for item in rustls_pemfile::read_all(&mut &key_pem[..]) {
        let item = item.map_err(|e| KeyError::Pem { file: "key file", detail: e.to_string() })?;
        match item {
            Item::Pkcs1Key(der) => return from_pkcs1(der.secret_pkcs1_der()),
            Item::Pkcs8Key(der) => return from_pkcs8(der.secret_pkcs8_der()),
            Item::Sec1Key(der) => return from_sec1(der.secret_sec1_der()),
            _ => continue,
        }
    }
    Err(KeyError::NoPrivateKey)
}

fn from_pkcs1(der: &[u8]) -> Result<PrivateKey, KeyError> {
    rsa_key(rsa::RsaPrivateKey::from_pkcs1_der(der).map_err(bad_key)?)
}

/// PKCS#8 says what it holds, so dispatch on the algorithm OID and name what we refuse.
fn from_pkcs8(der: &[u8]) -> Result<PrivateKey, KeyError> {
    let info = PrivateKeyInfo::try_from(der).map_err(bad_key)?;
    let algorithm = info.algorithm.oid;
    if algorithm == rsa::pkcs1::ALGORITHM_OID {
        use rsa::pkcs8::DecodePrivateKey as _;
        return rsa_key(rsa::RsaPrivateKey::from_pkcs8_der(der).map_err(bad_key)?);
    }
    if algorithm != p256::elliptic_curve::ALGORITHM_OID {
        return Err(KeyError::UnsupportedKeyType(key_type_name(algorithm)));
    }
    match info.algorithm.parameters_oid().map_err(bad_key)? {
        p256::NistP256::OID => p256_key(&p256::SecretKey::from_pkcs8_der(der).map_err(bad_key)?),
        p384::NistP384::OID => p384_key(&p384::SecretKey::from_pkcs8_der(der).map_err(bad_key)?),
        p521::NistP521::OID => p521_key(&p521::SecretKey::from_pkcs8_der(der).map_err(bad_key)?),
        curve => Err(KeyError::UnsupportedKeyType(format!("ECDSA on curve {curve}"))),
    }
}

/// SEC1 names its curve only optionally; each parser rejects a key whose named curve or
/// scalar length is not its own, so trying them in turn is unambiguous.
fn from_sec1(der: &[u8]) -> Result<PrivateKey, KeyError> {
    if let Ok(key) = p256::SecretKey::from_sec1_der(der) {
        return p256_key(&key);
    }
    if let Ok(key) = p384::SecretKey::from_sec1_der(der) {
        return p384_key(&key);
    }
    match p521::SecretKey::from_sec1_der(der) {
        Ok(key) => p521_key(&key),
        Err(_) => Err(KeyError::UnsupportedKeyType("EC (unknown curve, or a malformed EC PRIVATE KEY)".to_owned())),
    }
}

fn rsa_key(key: rsa::RsaPrivateKey) -> Result<PrivateKey, KeyError> {
    let public = PublicKeyMaterial::Rsa { n: key.n().to_bytes_be(), e: key.e().to_bytes_be() };
    let bits = key.n().bits();
    if !RSA_BITS.contains(&bits) {
        return Err(KeyError::RsaKeySize(bits));
    }
    let pkcs1 = key.to_pkcs1_der().map_err(bad_key)?;
    let signer = Signer::Rsa(RsaKeyPair::from_der(pkcs1.as_bytes()).map_err(bad_key)?);
    Ok(PrivateKey { algorithm: "RS256", signer, public })
}

fn p256_key(key: &p256::SecretKey) -> Result<PrivateKey, KeyError> {
    let point = uncompressed_point(&key.public_key());
    let signer = ecdsa(&lc_sig::ECDSA_P256_SHA256_FIXED_SIGNING, &key.to_bytes(), &point)?;
    ec_key("ES256", Curve::P256, signer, &point)
}

fn p384_key(key: &p384::SecretKey) -> Result<PrivateKey, KeyError> {
    let point = uncompressed_point(&key.public_key());
    let signer = ecdsa(&lc_sig::ECDSA_P384_SHA384_FIXED_SIGNING, &key.to_bytes(), &point)?;
    ec_key("ES384", Curve::P384, signer, &point)
}

fn p521_key(key: &p521::SecretKey) -> Result<PrivateKey, KeyError> {
    let point = uncompressed_point(&key.public_key());
    let signer = ecdsa(&lc_sig::ECDSA_P521_SHA512_FIXED_SIGNING, &key.to_bytes(), &point)?;
    ec_key("ES512", Curve::P521, signer, &point)
}

fn ecdsa(alg: &'static lc_sig::EcdsaSigningAlgorithm, scalar: &[u8], point: &[u8]) -> Result<Signer, KeyError> {
    EcdsaKeyPair::from_private_key_and_public_key(alg, scalar, point).map(Signer::Ecdsa).map_err(bad_key)
}

fn ec_key(algorithm: &'static str, curve: Curve, signer: Signer, point: &[u8]) -> Result<PrivateKey, KeyError> {
    let public =
        ec_material(curve, point).ok_or_else(|| KeyError::BadKey("unexpected EC public point length".to_owned()))?;
    Ok(PrivateKey { algorithm, signer, public })
}

/// The SEC1 uncompressed encoding `04 ‖ x ‖ y` of any of the three curves' public keys.
pub(crate) fn uncompressed_point<C>(key: &PublicKey<C>) -> Vec<u8>
where
    C: CurveArithmetic,
    AffinePoint<C>: FromEncodedPoint<C> + ToEncodedPoint<C>,
    FieldBytesSize<C>: ModulusSize,
{
    key.to_encoded_point(false).as_bytes().to_vec()
}

/// Splits an uncompressed point into the curve's fixed-length coordinates.
pub(crate) fn ec_material(curve: Curve, point: &[u8]) -> Option<PublicKeyMaterial> {
    let len = curve.coordinate_len();
    if point.len() != 1 + 2 * len || point.first() != Some(&0x04) {
        return None;
    }
    Some(PublicKeyMaterial::Ec { curve, x: point.get(1..1 + len)?.to_vec(), y: point.get(1 + len..)?.to_vec() })
}

fn key_type_name(oid: ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.3.101.112" => "Ed25519".to_owned(),
        "1.3.101.113" => "Ed448".to_owned(),
        "1.3.101.110" => "X25519".to_owned(),
        "1.3.101.111" => "X448".to_owned(),
        "1.2.840.113549.1.1.10" => "RSASSA-PSS".to_owned(),
        "1.2.840.10040.4.1" => "DSA".to_owned(),
        other => format!("with algorithm OID {other}"),
    }
}

fn bad_key(error: impl std::fmt::Display) -> KeyError {
    KeyError::BadKey(error.to_string())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}
