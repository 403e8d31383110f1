//! Web sign-in providers as authenticators (docker_auth's `google_auth`, `github_auth`,
//! `oidc_auth`, `gitlab_auth`): the password a sign-in mints is checked like any other.
//! [`provider`] is the contract between the browser flow (`crate::web`) and each provider;
//! [`records`] is docker_auth's token DB on our store; [`web_login`] the authenticator;
//! [`upstream`] the HTTP client the OpenID providers talk to their upstream with;
//! [`upstream_http`] the one GitHub and GitLab use (whole answers: status, headers such as
//! `Link`, empty 204 bodies).
mod forge_oauth;
pub mod github;
pub mod gitlab;
pub mod level_db;
pub mod level_import;
mod level_tables;
pub mod openid;
pub mod provider;
pub mod records;
pub mod upstream;
pub mod upstream_http;
pub mod web_login;
