//! The one integration-test binary: in-process HTTP contract tests, config loading, the
//! CLI on the real binary, and end-to-end runs against the real registry and skopeo.
mod auth_server;
mod cli;
mod common;
mod config_load;
mod deploy;
mod e2e;
mod explain;
mod http_contract;
mod observability;
mod ops;
mod reload;
mod support;
