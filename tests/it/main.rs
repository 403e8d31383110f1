//! The one integration-test binary: in-process HTTP contract tests, config loading, the
//! CLI on the real binary, LDAP against a real slapd, and end-to-end runs against the real
//! registry and skopeo.
mod auth_server;
mod casbin;
mod cert_expiry;
mod cli;
mod common;
mod config_lint;
mod config_load;
mod credential_cache;
mod deploy;
mod dos;
mod drop_in;
mod e2e;
mod explain;
mod ext;
mod forge_login;
mod fuzz;
mod http_contract;
mod identity_tokens;
mod ldap;
mod letsencrypt;
mod lockout;
mod log_safety;
mod mongo;
mod observability;
mod ops;
mod registry3_keys;
mod reload;
mod robots;
mod rotation;
mod store;
mod stored_creds;
mod support;
mod tls_resumption;
mod token_keys;
mod xorm;
