//! One certificate order: account (cached), new order for the host, the TLS-ALPN-01
//! challenge answered by our own listener, finalize with a fresh P-256 key, download.
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount, NewOrder, OrderStatus,
    RetryPolicy,
};
use rcgen::{CertificateParams, CustomExtension, KeyPair};

use super::cache;
use super::http::AcmeHttp;
use super::resolver::AcmeResolver;
use crate::config::letsencrypt::LetsEncryptConfig;

/// How long the CA may take to validate and to issue.
const POLL: RetryPolicy = RetryPolicy::new().initial_delay(Duration::from_millis(250)).timeout(Duration::from_secs(90));

/// Key and chain, PEM, in autocert's layout.
pub async fn obtain(config: &LetsEncryptConfig, resolver: &AcmeResolver) -> Result<String, String> {
    let account = account(config).await?;
    let identifiers = [Identifier::Dns(config.host.clone())];
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await.map_err(|e| format!("new order: {e}"))?;
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.map_err(|e| format!("authorization: {e}"))?;
        match authorization.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => return Err(format!("authorization for {} is {other:?}", config.host)),
        }
        let mut challenge = authorization
            .challenge(ChallengeType::TlsAlpn01)
            .ok_or("the ACME server offers no tls-alpn-01 challenge for this name")?;
        let digest = challenge.key_authorization().digest();
        resolver.set_challenge(&config.host, challenge_certificate(&config.host, digest.as_ref())?);
        challenge.set_ready().await.map_err(|e| format!("challenge: {e}"))?;
    }
    let outcome = finish(&mut order, &config.host).await;
    resolver.clear_challenge();
    outcome
}

async fn finish(order: &mut instant_acme::Order, host: &str) -> Result<String, String> {
    let status = order.poll_ready(&POLL).await.map_err(|e| format!("validation: {e}"))?;
    if status != OrderStatus::Ready {
        return Err(format!("the ACME server did not validate the challenge (order is {status:?})"));
    }
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let csr = CertificateParams::new(vec![host.to_string()])
        .and_then(|params| params.serialize_request(&key))
        .map_err(|e| format!("cannot make the certificate request: {e}"))?;
    order.finalize_csr(csr.der()).await.map_err(|e| format!("finalize: {e}"))?;
    let chain = order.poll_certificate(&POLL).await.map_err(|e| format!("certificate: {e}"))?;
    Ok(format!("{}{chain}", key.serialize_pem()))
}

/// The account cached for this directory, or a new one (then cached).
async fn account(config: &LetsEncryptConfig) -> Result<Account, String> {
    let path = cache::account_path(&config.cache_dir, &config.directory_url);
    let builder = || AcmeHttp::new(config).map(|http| Account::builder_with_http(Box::new(http)));
    if let Ok(text) = std::fs::read(&path) {
        let credentials: AccountCredentials =
            serde_json::from_slice(&text).map_err(|e| format!("{}: not an account file: {e}", path.display()))?;
        return builder()?
            .from_credentials(credentials)
            .await
            .map_err(|e| format!("directory {}: {e}", config.directory_url));
    }
    let contact = format!("mailto:{}", config.email);
    let new = NewAccount { contact: &[&contact], terms_of_service_agreed: true, only_return_existing: false };
    let (account, credentials) = builder()?
        .create(&new, config.directory_url.clone(), None)
        .await
        .map_err(|e| format!("directory {}: {e}", config.directory_url))?;
    let text = serde_json::to_vec(&credentials).map_err(|e| e.to_string())?;
    cache::write_private(&path, &text)?;
    Ok(account)
}

/// RFC 8737: a self-signed certificate for the host carrying the key authorization digest.
fn challenge_certificate(host: &str, digest: &[u8]) -> Result<std::sync::Arc<rustls::sign::CertifiedKey>, String> {
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = CertificateParams::new(vec![host.to_string()]).map_err(|e| e.to_string())?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
    let certificate = params.self_signed(&key).map_err(|e| e.to_string())?;
    let pem = format!("{}{}", key.serialize_pem(), certificate.pem());
    cache::parse(pem.as_bytes()).map(|cached| cached.certified)
}
