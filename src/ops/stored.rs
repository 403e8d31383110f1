//! What the store subcommands share: load the config, reach the store (the running
//! server's, through its admin socket for the embedded engine), run one async task.
use std::future::Future;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use crate::identity::{IdentityTokenConfig, SecretHasher};
use crate::store::SharedStore;

/// Loads `config`, connects to its store and runs `task`; config and store problems are
/// printed and give exit code 1.
pub fn with_store<F, Fut>(config: &Path, task: F) -> ExitCode
where
    F: FnOnce(SharedStore, Arc<SecretHasher>, IdentityTokenConfig) -> Fut,
    Fut: Future<Output = ExitCode>,
{
    with_config(config, |loaded, store, hasher| task(store, hasher, loaded.identity_tokens))
}

/// [`with_store`] for commands that need more of the config than the store.
pub fn with_config<F, Fut>(config: &Path, task: F) -> ExitCode
where
    F: FnOnce(crate::config::Config, SharedStore, Arc<SecretHasher>) -> Fut,
    Fut: Future<Output = ExitCode>,
{
    let loaded = match crate::config::load(config) {
        Ok(loaded) => loaded,
        Err(e) => return fail(&format!("cannot load {}: {e}", config.display())),
    };
    let store = match crate::store::open::for_cli(&loaded.store) {
        Ok(store) => store,
        Err(e) => return fail(&e.to_string()),
    };
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => {
            let hasher = Arc::new(SecretHasher::for_store(&loaded.store, store.clone()));
            runtime.block_on(task(loaded, store, hasher))
        }
        Err(e) => fail(&format!("cannot start a runtime: {e}")),
    }
}

pub fn fail(message: &str) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

/// Who ran the command, for the record and the audit line.
pub fn operator() -> String {
    let user = std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).unwrap_or_default();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{user}@{}", host.trim())
}

/// RFC 3339 in UTC, seconds precision.
pub fn time_text(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}
