//! Shared fixtures for the integration-test binary (`tests/it/main.rs`).
//!
//! Every fixture drives a real program (the Debian `docker-registry`,
//! `skopeo`, ...) on 127.0.0.1 with a random free port and a private temp
//! dir, and kills it on drop. A missing program is a test failure, never a
//! skip: run `scripts/install-deps.sh` first.

// Each test module uses a different subset of these helpers; the unused rest
// would otherwise fail `clippy -D warnings` with dead-code errors.
#![allow(dead_code)]

pub mod browser;
pub mod console;
pub mod containerd;
pub mod forge;
pub mod http;
pub mod jwt_issuer;
pub mod mongo;
pub mod oci;
pub mod oidc_provider;
pub mod pebble;
pub mod ports;
pub mod process;
pub mod redis;
pub mod registry;
pub mod registry3;
pub mod skopeo;
pub mod slapd;
pub mod sql;
pub mod storage_server;

use tempfile::TempDir;

/// A fresh temp dir whose name says which fixture owns it (helps when a
/// failed run leaves files behind).
pub fn temp_dir(label: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("registry-auth-it-{label}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("cannot create a temp dir for {label}: {e}"))
}
