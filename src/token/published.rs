//! Certificates the registry is told to trust (`jwks`, `bundle`): the signing certificate
//! and `token.verification_certificates`. Public halves only: no private key is read, so
//! publishing works wherever the certificates are readable. Imports only its siblings.
use std::path::{Path, PathBuf};

use super::keys::{self, KeyError};
use super::kid::PublicKeyMaterial;

/// One certificate file's leaf: its DER, its key and its expiry.
#[derive(Debug, Clone)]
pub struct PublishedCert {
    pub path: PathBuf,
    pub leaf_der: Vec<u8>,
    pub public: PublicKeyMaterial,
    /// Unix seconds.
    pub not_after: i64,
}

impl PublishedCert {
    /// Reads the first certificate of a PEM file; its key must be RSA or EC P-256/384/521.
    pub fn load(path: &Path) -> Result<PublishedCert, KeyError> {
        let pem = std::fs::read(path).map_err(|source| KeyError::Read { path: path.to_path_buf(), source })?;
        let leaf_der = keys::read_certificates(&pem)?.swap_remove(0);
        let (public, not_after) = keys::parse_leaf(&leaf_der)?;
        let public = public.ok_or_else(|| KeyError::UnsupportedKeyType("of this certificate".to_owned()))?;
        Ok(PublishedCert { path: path.to_path_buf(), leaf_der, public, not_after })
    }

    /// The leaf as one PEM CERTIFICATE block (64-column base64, as openssl writes it).
    pub fn pem(&self) -> String {
        use base64::Engine as _;
        let body = base64::engine::general_purpose::STANDARD.encode(&self.leaf_der);
        let lines: Vec<&str> = body.as_bytes().chunks(64).filter_map(|line| std::str::from_utf8(line).ok()).collect();
        format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
    }
}
