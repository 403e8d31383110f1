//! `registry-auth jwks CONFIG` and `registry-auth bundle CONFIG`: what the registry must
//! trust for this config, the signing certificate first, then
//! `token.verification_certificates`. `jwks` prints the JSON for registry 3.x's
//! `auth.token.jwks`, keyed by the `kid` our tokens carry; `bundle` prints the PEM for
//! `auth.token.rootcertbundle` (registry 2.8 and 3.x). Only certificates are read.
use std::path::Path;
use std::process::ExitCode;

use crate::token::published::PublishedCert;
use crate::{app, config, token};

/// Which document to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jwks,
    Bundle,
}

pub fn run(path: &Path, format: Format) -> ExitCode {
    match render(path, format) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in errors {
                eprintln!("error: {error}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The document's text, or every problem found.
pub fn render(path: &Path, format: Format) -> Result<String, Vec<String>> {
    let config = config::load(path).map_err(|e| vec![e.to_string()])?;
    let certs = certificates(&config)?;
    Ok(match format {
        Format::Bundle => certs.iter().map(PublishedCert::pem).collect(),
        Format::Jwks => {
            let mode = app::kid_mode(&config);
            let doc = token::jwks::document(certs.iter().map(|c| (&c.public, mode.kid(&c.public))));
            format!("{}\n", serde_json::to_string_pretty(&doc).unwrap_or_default())
        }
    })
}

/// The signing certificate, then the verification certificates, each once.
fn certificates(config: &config::Config) -> Result<Vec<PublishedCert>, Vec<String>> {
    let signing = app::signing_certificate_path(config).ok_or_else(|| {
        vec!["no signing certificate: set token.certificate and token.key (or server.certificate and server.key)"
            .to_owned()]
    })?;
    let paths = std::iter::once(signing).chain(config.token.verification_certificates.iter().map(|p| p.as_path()));
    let mut certs: Vec<PublishedCert> = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match PublishedCert::load(path) {
            Ok(cert) if certs.iter().any(|c| c.public == cert.public) => {}
            Ok(cert) => certs.push(cert),
            Err(e) => errors.push(e.to_string().replace("failed to load token cert and key: ", "")),
        }
    }
    if errors.is_empty() {
        Ok(certs)
    } else {
        Err(errors)
    }
}
