//! Key material that works but should not be trusted: RSA keys under 2048 bits and
//! private-key files that other users can read. Reported as warnings by every load
//! (start-up, reload, `check-config`) through [`crate::app::build`], after the keys loaded.
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use x509_parser::public_key::PublicKey;

use crate::config::{Config, Diagnostics};

/// NIST SP 800-131A: RSA under 2048 bits is disallowed for signatures.
pub const MIN_RSA_BITS: usize = 2048;

/// Warnings for the signing pair and the TLS pair (each file once).
pub fn check(config: &Config, diags: &mut Diagnostics) {
    let token_pair = match (&config.token.certificate, &config.token.key) {
        (Some(cert), Some(key)) => Some(("token", cert, key, config.token.line)),
        _ => None,
    };
    let server_pair = match (&config.server.certificate, &config.server.key) {
        (Some(cert), Some(key)) => Some(("server", cert, key, 0)),
        _ => None,
    };
    let mut seen = Vec::new();
    for (section, cert, key, line) in token_pair.into_iter().chain(server_pair) {
        if !seen.contains(&cert) {
            small_rsa_key(section, cert, line, diags);
            seen.push(cert);
        }
        if !seen.contains(&key) {
            readable_key_file(section, key, line, diags);
            seen.push(key);
        }
    }
}

fn small_rsa_key(section: &str, cert: &Path, line: usize, diags: &mut Diagnostics) {
    let Some(bits) = rsa_bits(cert).filter(|bits| *bits < MIN_RSA_BITS) else { return };
    diags
        .warn(
            format!("{section}.certificate"),
            line,
            format!("{} holds a {bits}-bit RSA key: keys under {MIN_RSA_BITS} bits can be factored", cert.display()),
        )
        .hint("make a new pair with `registry-auth gen-cert` (EC P-256) or `gen-cert --key-type rsa-2048`");
}

/// Bits of the RSA modulus of the first certificate in the PEM file; `None` for other key
/// types or an unreadable file (the key loader reports those).
fn rsa_bits(cert: &Path) -> Option<usize> {
    let pem = std::fs::read(cert).ok()?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    match cert.public_key().parsed().ok()? {
        PublicKey::RSA(rsa) => {
            let modulus: Vec<u8> = rsa.modulus.iter().copied().skip_while(|b| *b == 0).collect();
            let first = *modulus.first()?;
            Some((modulus.len() - 1) * 8 + (8 - first.leading_zeros() as usize))
        }
        _ => None,
    }
}

fn readable_key_file(section: &str, key: &Path, line: usize, diags: &mut Diagnostics) {
    let Ok(meta) = std::fs::metadata(key) else { return };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o044 == 0 {
        return;
    }
    diags
        .warn(
            format!("{section}.key"),
            line,
            format!(
                "private key {} is readable by {} (mode {mode:03o}): whoever reads it can sign tokens or impersonate this server",
                key.display(),
                if mode & 0o004 != 0 { "every user" } else { "its group" }
            ),
        )
        .hint(format!("chmod 600 {} (owned by the user registry-auth runs as)", key.display()));
}
