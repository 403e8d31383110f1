//! The HTTPS client instant-acme talks to the ACME server with: rustls with the roots of
//! `directory_ca_certificate` (or the system's, honouring `SSL_CERT_FILE`), HTTP/1.1, and a
//! limit on each whole request, body included, so a server that hangs is an error.
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, Error, HttpClient};

use crate::config::letsencrypt::LetsEncryptConfig;
use crate::upstream_client::{error_chain, system_roots};

pub struct AcmeHttp {
    client: Client<HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>,
    timeout: Duration,
}

impl AcmeHttp {
    pub fn new(config: &LetsEncryptConfig) -> Result<AcmeHttp, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?
            .with_root_certificates(roots(config)?)
            .with_no_client_auth();
        let mut connector = HttpConnector::new();
        connector.enforce_http(false);
        connector.set_connect_timeout(Some(config.timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new()).build(https);
        Ok(AcmeHttp { client, timeout: config.timeout })
    }
}

fn roots(config: &LetsEncryptConfig) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    match &config.directory_ca_certificate {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
                let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                roots.add(cert).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("no PEM certificate in {}", path.display()));
            }
        }
        None => roots = system_roots(),
    }
    Ok(roots)
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, Error>> + Send>> {
        let target = format!("{} {}", req.method(), req.uri());
        let response = self.client.request(req);
        let timeout = self.timeout;
        Box::pin(async move {
            let whole = async {
                let (parts, body) = response.await.map_err(|e| error_chain(&e))?.into_parts();
                let body = body.collect().await.map_err(|e| error_chain(&e))?.to_bytes();
                Ok::<_, String>(http::Response::from_parts(parts, Full::new(body)))
            };
            match tokio::time::timeout(timeout, whole).await {
                Ok(Ok(response)) => Ok(BytesResponse::from(response)),
                Ok(Err(cause)) => Err(Error::Other(format!("{target}: {cause}").into())),
                Err(_) => Err(Error::Other(format!("{target}: no complete answer within {timeout:?}").into())),
            }
        })
    }
}
