//! The one way registry-auth builds an HTTP client for an upstream (web sign-in providers,
//! CI-token issuers, the ACME server): rustls on aws-lc-rs (the process's one crypto
//! library), HTTP/1.1, a connect timeout, and error text that names the real cause.
//! Callers keep their own limits on the whole call, body size and calls in flight.
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Body;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

pub type HttpsClient<B> = Client<HttpsConnector<HttpConnector>, B>;

/// The system's roots (honouring `SSL_CERT_FILE`).
pub fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates only shrink the store; verification then fails closed.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    roots
}

/// A client for https URLs (and plain http, which the configs allow for loopback only).
pub fn https_or_http_client<B>(
    roots: rustls::RootCertStore,
    connect_timeout: Duration,
) -> Result<HttpsClient<B>, String>
where
    B: Body + Send + 'static,
    B::Data: Send,
{
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot set up TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut connector = HttpConnector::new();
    connector.enforce_http(false);
    connector.set_connect_timeout(Some(connect_timeout));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

/// hyper's errors say "client error (Connect)"; the causes below them say what happened.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
