//! Self-signed certificate and key generation (rcgen), so a first run just works.
use std::path::Path;

use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};

#[derive(Debug, thiserror::Error)]
pub enum CertGenError {
    #[error("cannot generate the certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("cannot write {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

/// Validity of generated certificates. With `token.x5c` the registry checks the dates, so
/// a short validity would lock everyone out one day; ten years keeps that day far away.
pub const VALIDITY_DAYS: i64 = 3650;

/// Writes a self-signed EC P-256 certificate and key (mode 0600) for `names`
/// (DNS names or IP addresses).
pub fn write_self_signed(cert_path: &Path, key_path: &Path, names: &[String]) -> Result<(), CertGenError> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names.first().cloned().unwrap_or_else(|| "registry-auth".to_string()));
    params.distinguished_name = dn;
    params.subject_alt_names = names.iter().filter_map(|n| san(n)).collect();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(VALIDITY_DAYS);
    let cert = params.self_signed(&key)?;
    write_file(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_file(cert_path, cert.pem().as_bytes(), 0o644)
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
    #[cfg(not(unix))]
    let _ = mode;
    use std::io::Write as _;
    options.open(path).and_then(|mut f| f.write_all(contents)).map_err(err)
}
