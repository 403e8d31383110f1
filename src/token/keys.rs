//! The token signing key: certificate chain plus matching private key, loaded once at start-up
//! the way docker_auth's `tls.LoadX509KeyPair` does (parity.md §2.4). Owns the start-up error
//! texts. Imports only its sibling modules `kid` and `signer`.
use std::fmt;
use std::path::{Path, PathBuf};

use p256::pkcs8::DecodePublicKey;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey as X509PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::kid::{self, Curve, PublicKeyMaterial};
use super::signer::{self, SignError, Signer};

/// Why the token key could not be loaded. The texts are shown to the operator at start-up;
/// docker_auth's wording is kept where it has one, with a hint added.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("failed to load token cert and key: cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("failed to load token cert and key: the {file} is not valid PEM: {detail}")]
    Pem { file: &'static str, detail: String },
    #[error("failed to load token cert and key: tls: failed to find a CERTIFICATE PEM block in the certificate file")]
    NoCertificate,
    #[error("failed to load token cert and key: cannot parse the first certificate: {0}")]
    BadCertificate(String),
    #[error("failed to load token cert and key: tls: failed to find a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY PEM block in the key file")]
    NoPrivateKey,
    #[error("failed to load token cert and key: the private key is encrypted, which is not supported; write an unencrypted copy with `openssl pkey -in key.pem -out key-plain.pem` and keep it readable only by this service")]
    EncryptedKey,
    #[error("failed to load token cert and key: tls: failed to parse private key: {0}")]
    BadKey(String),
    #[error("failed to load token cert and key: public key type {0} is not supported; the token key must be RSA or EC P-256/P-384/P-521")]
    UnsupportedKeyType(String),
    #[error("failed to load token cert and key: tls: private key does not match public key (the key file must hold the private key of the first certificate in the certificate file)")]
    KeyMismatch,
}

/// A loaded signing key. The algorithm is fixed by the key type (RS256 for any RSA key,
/// ES256/384/512 by curve), never configured.
pub struct SigningKey {
    algorithm: &'static str,
    signer: Signer,
    public: PublicKeyMaterial,
    spki_der: Vec<u8>,
    chain_der: Vec<Vec<u8>>,
    not_after: i64,
}

impl SigningKey {
    /// Builds the key from PEM text: `cert_pem` may hold a chain (leaf first); the first
    /// private-key block of `key_pem` must belong to the leaf.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<SigningKey, KeyError> {
        let chain_der = read_certificates(cert_pem)?;
        let private = signer::parse_private_key(key_pem)?;
        let leaf = chain_der.first().ok_or(KeyError::NoCertificate)?;
        let (leaf_key, not_after) = parse_leaf(leaf)?;
        // Compare the canonical SPKI re-encoding: equal key material, however either side
        // happened to encode it (leading zeros, compressed points, missing NULL).
        let spki_der = private.public.spki_der();
        if leaf_key.map(|key| key.spki_der()).as_ref() != Some(&spki_der) {
            return Err(KeyError::KeyMismatch);
        }
        Ok(SigningKey {
            algorithm: private.algorithm,
            signer: private.signer,
            public: private.public,
            spki_der,
            chain_der,
            not_after,
        })
    }

    /// Reads both files, then [`SigningKey::from_pem`]. I/O errors name the file.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<SigningKey, KeyError> {
        let read =
            |path: &Path| std::fs::read(path).map_err(|source| KeyError::Read { path: path.to_path_buf(), source });
        SigningKey::from_pem(&read(cert_path)?, &read(key_path)?)
    }

    /// `"RS256"`, `"ES256"`, `"ES384"` or `"ES512"`.
    pub fn algorithm(&self) -> &'static str {
        self.algorithm
    }

    /// The kid registry 2.8 looks up (token-spec.md §3.4).
    pub fn libtrust_kid(&self) -> String {
        kid::libtrust_kid(&self.public)
    }

    /// The RFC 7638 thumbprint of the real key, as registry 3.1+ computes it.
    pub fn thumbprint_kid(&self) -> String {
        kid::thumbprint_kid(&self.public)
    }

    pub fn public_key(&self) -> &PublicKeyMaterial {
        &self.public
    }

    /// Go-style SubjectPublicKeyInfo DER of the public key (what libtrust hashes).
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// DER certificates in file order, leaf first.
    pub fn certificate_chain_der(&self) -> &[Vec<u8>] {
        &self.chain_der
    }

    /// Expiry of the leaf certificate, Unix seconds.
    pub fn not_after_unix(&self) -> i64 {
        self.not_after
    }

    /// Signs the JWS signing input with the key's algorithm.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        self.signer.sign(message)
    }
}

/// Never prints key material, only what identifies the key.
impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.libtrust_kid())
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

pub(super) fn read_certificates(cert_pem: &[u8]) -> Result<Vec<Vec<u8>>, KeyError> {
    let chain = rustls_pemfile::certs(&mut &cert_pem[..])
        .map(|cert| cert.map(|der| der.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| KeyError::Pem { file: "certificate file", detail: e.to_string() })?;
    if chain.is_empty() {
        return Err(KeyError::NoCertificate);
    }
    Ok(chain)
}

/// The leaf's public key (`None` if it is of a type we cannot sign with) and its expiry.
pub(super) fn parse_leaf(der: &[u8]) -> Result<(Option<PublicKeyMaterial>, i64), KeyError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| KeyError::BadCertificate(e.to_string()))?;
    let not_after = cert.validity().not_after.timestamp();
    Ok((certificate_key(cert.public_key()), not_after))
}

fn certificate_key(spki: &SubjectPublicKeyInfo<'_>) -> Option<PublicKeyMaterial> {
    // RSA through x509-parser: the rsa crate's SPKI decoder refuses moduli over 4096 bits.
    if let Ok(X509PublicKey::RSA(rsa)) = spki.parsed() {
        return Some(PublicKeyMaterial::Rsa { n: rsa.modulus.to_vec(), e: rsa.exponent.to_vec() });
    }
    // Each curve's decoder checks the algorithm and curve OIDs and accepts compressed points.
    let point = if let Ok(key) = p256::PublicKey::from_public_key_der(spki.raw) {
        (Curve::P256, signer::uncompressed_point(&key))
    } else if let Ok(key) = p384::PublicKey::from_public_key_der(spki.raw) {
        (Curve::P384, signer::uncompressed_point(&key))
    } else {
        let key = p521::PublicKey::from_public_key_der(spki.raw).ok()?;
        (Curve::P521, signer::uncompressed_point(&key))
    };
    signer::ec_material(point.0, &point.1)
}
