//! Web sign-in (issue 13): docker_auth's `oidc_auth` and `google_auth` against a real
//! OpenID provider (npm `oidc-provider`, see `support::oidc_provider`).
use serde_json::json;

use crate::common::decode_jwt;
use crate::support::oidc_provider::{OidcClient, OidcProvider, OidcProviderConfig};

/// The provider fixture itself: discovery names its issuer, and a machine client gets a
/// client-credentials JWT signed by a key of the published JWKS, with its extra claims
/// (what the CI-token tests build on).
#[test]
fn provider_serves_discovery_and_client_credentials_jwts() {
    let machine = OidcClient::machine("ci-job", "ci-secret", json!({"repository_owner": "acme"}));
    let provider = OidcProvider::start(&OidcProviderConfig::default().client(machine.clone()));
    let discovery: serde_json::Value = ureq::get(&format!("{}/.well-known/openid-configuration", provider.issuer()))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(discovery["issuer"], provider.issuer());
    let jwt = provider.client_credentials_jwt(&machine, "https://registry.example");
    let decoded = decode_jwt(&jwt);
    assert_eq!(decoded.claims["iss"], provider.issuer());
    assert_eq!(decoded.claims["aud"], "https://registry.example");
    assert_eq!(decoded.claims["sub"], "ci-job");
    assert_eq!(decoded.claims["repository_owner"], "acme");
    let kid = decoded.header["kid"].as_str().unwrap();
    let jwks = provider.jwks();
    assert!(jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == kid), "{jwks}");
}
