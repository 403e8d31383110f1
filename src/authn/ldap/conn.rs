//! Connections to the directory: URL and TLS settings from the config, connect with a
//! timeout, and a small pool of idle service-account connections.
//!
//! Only connections bound as the service account (or anonymous) are pooled; a user bind
//! always gets a connection of its own, so no request ever runs as another user.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::authn::AuthnError;
use crate::config::ldap::{LdapConfig, LdapTls};
use crate::secret::Secret;

/// LDAP result code for a bind with a wrong DN or password (RFC 4511).
pub const INVALID_CREDENTIALS: u32 = 49;

/// Everything needed to open a connection; built once per config.
pub struct Connector {
    url: String,
    tls: LdapTls,
    insecure: bool,
    tls_config: Option<Arc<ClientConfig>>,
    connect_timeout: Duration,
    pub operation_timeout: Duration,
}

impl Connector {
    pub fn new(config: &LdapConfig) -> Result<Connector, String> {
        let scheme = if config.tls == LdapTls::Always { "ldaps" } else { "ldap" };
        let tls_config = match config.tls {
            LdapTls::None => None,
            _ => Some(Arc::new(tls_config(config)?)),
        };
        Ok(Connector {
            url: format!("{scheme}://{}", config.addr),
            tls: config.tls,
            insecure: config.insecure_tls_skip_verify,
            tls_config,
            connect_timeout: config.connect_timeout,
            operation_timeout: config.operation_timeout,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A new connection (TCP, then LDAPS or StartTLS), its I/O driven by a spawned task.
    pub async fn connect(&self) -> Result<Ldap, AuthnError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.connect_timeout)
            .set_starttls(self.tls == LdapTls::StartTls)
            .set_no_tls_verify(self.insecure);
        if let Some(config) = &self.tls_config {
            settings = settings.set_config(config.clone());
        }
        let connect = LdapConnAsync::with_settings(settings, &self.url);
        // The connect timeout covers TCP only; the TLS handshake and StartTLS need a bound too.
        let (conn, ldap) = tokio::time::timeout(self.connect_timeout + self.operation_timeout, connect)
            .await
            .map_err(|_| AuthnError(format!("LDAP connect to {} timed out", self.url)))?
            .map_err(|e| AuthnError(format!("LDAP connect to {} failed: {e}", self.url)))?;
        let url = self.url.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!(url, error = %e, "LDAP connection closed");
            }
        });
        Ok(ldap)
    }

    /// A simple bind; `Ok(false)` for invalid credentials, `Err` for anything else.
    pub async fn bind(&self, ldap: &mut Ldap, dn: &str, password: &Secret) -> Result<bool, AuthnError> {
        let result = ldap
            .with_timeout(self.operation_timeout)
            .simple_bind(dn, password.expose())
            .await
            .map_err(|e| AuthnError(format!("LDAP bind as {dn:?} on {} failed: {e}", self.url)))?;
        match result.rc {
            0 => Ok(true),
            INVALID_CREDENTIALS => Ok(false),
            rc => Err(AuthnError(format!("LDAP bind as {dn:?} on {} failed: rc={rc} {}", self.url, result.text))),
        }
    }
}

/// Roots from `ca_certificate` or the system, or no verification at all when asked.
fn tls_config(config: &LdapConfig) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?;
    if config.insecure_tls_skip_verify {
        let verifier = Arc::new(NoVerification(provider));
        return Ok(builder.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth());
    }
    let mut roots = RootCertStore::empty();
    match &config.ca_certificate {
        Some(pem) => {
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| format!("Error loading CA File: {e}"))?;
                roots.add(cert).map_err(|e| format!("Error loading CA File: {e}"))?;
            }
        }
        None => {
            // Unreadable system certificates only shrink the store; verification then fails closed.
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// `insecure_tls_skip_verify: true`: any certificate is accepted, as docker_auth does. The
/// handshake signature is still checked against the presented certificate (rustls needs a
/// valid handshake), which proves nothing about who the server is.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Idle service-account connections. A connection is taken out for one request and put
/// back only if the request did not fail on it; a dead one is simply dropped.
pub struct Pool {
    idle: Mutex<Vec<Ldap>>,
    max_idle: usize,
}

impl Pool {
    pub fn new(max_idle: usize) -> Pool {
        Pool { idle: Mutex::new(Vec::new()), max_idle }
    }

    /// An idle connection that still looks alive, if any.
    pub fn take(&self) -> Option<Ldap> {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while let Some(mut ldap) = idle.pop() {
            if !ldap.is_closed() {
                return Some(ldap);
            }
        }
        None
    }

    pub fn put(&self, ldap: Ldap) {
        let mut idle = self.idle.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if idle.len() < self.max_idle {
            idle.push(ldap);
        }
    }
}
