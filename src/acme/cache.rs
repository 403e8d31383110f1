//! What `cache_dir` holds: the certificate as docker_auth's autocert keeps it (a file named
//! after the host: the private key, then the chain, PEM), so a directory docker_auth filled
//! is reused; and the ACME account of each directory URL. Files are written atomically
//! (temp file + rename), mode 0600.
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

/// A certificate ready to serve, with its validity (Unix seconds).
pub struct Cached {
    pub certified: Arc<CertifiedKey>,
    pub not_before: i64,
    pub not_after: i64,
}

pub fn certificate_path(dir: &Path, host: &str) -> PathBuf {
    dir.join(host)
}

pub fn account_path(dir: &Path, directory_url: &str) -> PathBuf {
    let digest = Sha256::digest(directory_url.as_bytes());
    let tag: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    dir.join(format!("registry-auth-acme-account-{tag}.json"))
}

/// Parses key + chain PEM into a servable certificate.
pub fn parse(pem: &[u8]) -> Result<Cached, String> {
    let key = rustls_pemfile::private_key(&mut &pem[..])
        .map_err(|e| format!("unreadable private key: {e}"))?
        .ok_or("no private key")?;
    let chain: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| format!("unreadable certificate: {e}"))?;
    let leaf = chain.first().ok_or("no certificate")?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf).map_err(|e| format!("invalid certificate: {e}"))?;
    let validity = parsed.validity();
    let (not_before, not_after) = (validity.not_before.timestamp(), validity.not_after.timestamp());
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider.key_provider.load_private_key(key).map_err(|e| format!("unusable private key: {e}"))?;
    Ok(Cached { certified: Arc::new(CertifiedKey::new(chain, signing)), not_before, not_after })
}

pub fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    let mut temp = path.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| file.write_all(contents).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&temp, path));
    result.map_err(|e| format!("cannot write {}: {e}", path.display()))
}
