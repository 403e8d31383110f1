//! Web sign-in providers as authenticators (docker_auth's `google_auth`, `github_auth`,
//! `oidc_auth`, `gitlab_auth`): the password a sign-in mints is checked like any other.
//! [`provider`] is the contract between the browser flow (`crate::web`) and each provider.
mod forge_oauth;
pub mod github;
pub mod gitlab;
pub mod provider;
pub mod upstream_http;
