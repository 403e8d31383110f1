//! Self-signed certificate and key generation (rcgen): `gen-cert`, and the first run of the
//! default config. rcgen's ring backend cannot generate RSA keys, so RSA keys come from
//! the `rsa` crate and are handed to rcgen as PKCS#8.
use std::path::Path;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use rsa::pkcs8::EncodePrivateKey as _;

#[derive(Debug, thiserror::Error)]
pub enum CertGenError {
    #[error("cannot generate the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot generate the RSA key: {0}")]
    Rsa(String),
    #[error(
        "cannot generate the EC key: the random generator keeps producing keys with a zero leading coordinate byte"
    )]
    EcRetries,
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("{path} already exists; pass --force to overwrite it")]
    Exists { path: String },
}

/// Validity of generated certificates. With `token.x5c` the registry checks the dates, so
/// a short validity would lock everyone out one day; ten years keeps that day far away.
pub const VALIDITY_DAYS: i64 = 3650;

/// The key algorithms `gen-cert` offers; all are accepted by the registry and by `serve`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyType {
    #[default]
    EcP256,
    EcP384,
    Rsa2048,
    Rsa4096,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct CertSpec {
    pub key_type: KeyType,
    /// DNS names or IP addresses; the first is also the common name.
    pub names: Vec<String>,
    pub days: i64,
}

/// A generated pair, PEM encoded, and the last day it is valid.
pub struct Generated {
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: time::OffsetDateTime,
}

/// Generates a self-signed certificate and its key.
pub fn generate(spec: &CertSpec) -> Result<Generated, CertGenError> {
    let key = key_pair(spec.key_type)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, spec.names.first().cloned().unwrap_or_else(|| "registry-auth".to_string()));
    params.distinguished_name = dn;
    params.subject_alt_names = spec.names.iter().filter_map(|n| san(n)).collect();
    let now = time::OffsetDateTime::now_utc();
    // A day of slack for clocks that are slightly behind.
    params.not_before = now - time::Duration::days(1);
    let not_after = now + time::Duration::days(spec.days);
    params.not_after = not_after;
    let cert = params.self_signed(&key)?;
    Ok(Generated { cert_pem: cert.pem(), key_pem: key.serialize_pem(), not_after })
}

fn key_pair(key_type: KeyType) -> Result<KeyPair, CertGenError> {
    let bits = match key_type {
        KeyType::EcP256 => {
            return ec_key_without_leading_zero(|| KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256))
        }
        KeyType::EcP384 => {
            return ec_key_without_leading_zero(|| KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384))
        }
        KeyType::Rsa2048 => 2048,
        KeyType::Rsa4096 => 4096,
    };
    let private =
        rsa::RsaPrivateKey::new(&mut rand::thread_rng(), bits).map_err(|e| CertGenError::Rsa(e.to_string()))?;
    let pem = private.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).map_err(|e| CertGenError::Rsa(e.to_string()))?;
    Ok(KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256)?)
}

/// Draws EC keys until neither coordinate starts with a zero byte. For such keys (about 1
/// in 128) registry 3.1.x's unpadded thumbprint differs from RFC 7638's, so a kid-only
/// token would depend on which of the two a registry computes.
fn ec_key_without_leading_zero(
    mut generate: impl FnMut() -> Result<KeyPair, rcgen::Error>,
) -> Result<KeyPair, CertGenError> {
    // Each draw fails with probability ~1/128, so 64 failures in a row mean a broken RNG.
    for _ in 0..64 {
        let key = generate()?;
        if !has_leading_zero_coordinate(key.public_key_raw()) {
            return Ok(key);
        }
    }
    Err(CertGenError::EcRetries)
}

/// For an uncompressed point `04 ‖ x ‖ y`: does x or y start with 0x00?
fn has_leading_zero_coordinate(point: &[u8]) -> bool {
    let len = point.len().saturating_sub(1) / 2;
    point.get(1) == Some(&0) || point.get(1 + len) == Some(&0)
}

/// Writes a self-signed EC P-256 certificate and key (mode 0600) for `names`
/// (DNS names or IP addresses), replacing existing files.
pub fn write_self_signed(cert_path: &Path, key_path: &Path, names: &[String]) -> Result<(), CertGenError> {
    let spec = CertSpec { key_type: KeyType::EcP256, names: names.to_vec(), days: VALIDITY_DAYS };
    write_pair(&generate(&spec)?, cert_path, key_path, true)
}

/// Writes the pair; without `force`, refuses when either file exists (checked before
/// anything is written, so a refusal leaves both files untouched).
pub fn write_pair(generated: &Generated, cert_path: &Path, key_path: &Path, force: bool) -> Result<(), CertGenError> {
    if !force {
        for path in [cert_path, key_path] {
            if path.exists() {
                return Err(CertGenError::Exists { path: path.display().to_string() });
            }
        }
    }
    write_file(key_path, generated.key_pem.as_bytes(), 0o600)?;
    write_file(cert_path, generated.cert_pem.as_bytes(), 0o644)
}

fn san(name: &str) -> Option<SanType> {
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => Some(SanType::IpAddress(ip)),
        Err(_) => name.to_string().try_into().ok().map(SanType::DnsName),
    }
}

fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertGenError> {
    let err = |source| CertGenError::Write { path: path.display().to_string(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    let file = options.open(path).map_err(err)?;
    // `mode` only applies to new files; an overwritten key must not keep looser permissions.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode)).map_err(err)?;
    #[cfg(not(unix))]
    let _ = mode;
    use std::io::Write as _;
    (&file).write_all(contents).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(key: &KeyPair) -> Vec<u8> {
        key.public_key_raw().to_vec()
    }

    /// A generator that yields a key with a leading zero coordinate first, then a clean one:
    /// the clean one must come out.
    #[test]
    fn ec_keys_with_a_leading_zero_coordinate_are_drawn_again() {
        let fresh = || KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let zero = std::iter::repeat_with(fresh).find(|k| has_leading_zero_coordinate(&point(k))).unwrap();
        let clean = std::iter::repeat_with(fresh).find(|k| !has_leading_zero_coordinate(&point(k))).unwrap();
        let expected = point(&clean);
        let mut queue = vec![clean, zero];
        let chosen = ec_key_without_leading_zero(|| Ok(queue.pop().unwrap())).unwrap();
        assert_eq!(point(&chosen), expected);
        assert!(has_leading_zero_coordinate(&[4, 1, 2, 0, 3]) && has_leading_zero_coordinate(&[4, 0, 2, 1, 3]));
        assert!(!has_leading_zero_coordinate(&[4, 1, 2, 1, 0]));
    }
}
