//! The web sign-in's token DB for one config: the store, plus docker_auth's
//! `level_token_db` directories — imported into the store once, or opened for direct use
//! (`level_token_db.mode`, `config::web_signin::LevelMode`). Only the serving process
//! imports and opens; `check-config` and the other CLI runs read a copy to check it, and
//! say what a start would do (their token DB is the store alone: a directory in direct use
//! belongs to the running server, so `explain` does not see its records).
use std::future::Future;
use std::path::Path;

use crate::authn::oidc::level_db::{self, LevelDir, LevelError};
use crate::authn::oidc::level_import::{self, ImportError, Imported};
use crate::authn::oidc::records::TokenDb;
use crate::config::web_signin::LevelMode;
use crate::config::{Config, Diagnostics};
use crate::store::SharedStore;

pub(super) fn token_db(config: &Config, store: &SharedStore, owner: bool, diags: &mut Diagnostics) -> TokenDb {
    let mut db = TokenDb::new(store.clone(), super::token_hash_cost(config));
    for (provider, section, dir, mode, line) in config.web_signin.level_dbs() {
        let key = format!("{section}.level_token_db.path");
        let mode = LevelMode::resolve(mode, &config.store);
        let problem = match (mode, owner) {
            (LevelMode::Direct, true) => match LevelDir::open(dir) {
                Ok(level) => {
                    tracing::info!(section, path = %dir.display(), "level_token_db used directly");
                    db = db.with_direct(provider, level);
                    None
                }
                Err(e) => Some(e),
            },
            (LevelMode::Import, true) => match blocking(level_import::import_once(store, dir, provider)) {
                Err(e) => {
                    diags.error(&key, line, format!("cannot import {}: {e}", dir.display()));
                    None
                }
                Ok(Ok(imported)) => {
                    log_import(section, dir, store, &imported);
                    None
                }
                Ok(Err(ImportError::Level(LevelError::Missing { path }))) => {
                    diags
                        .warn(&key, line, format!("{path} does not exist: nothing to import"))
                        .hint("if docker_auth's records are elsewhere, fix path:; otherwise drop level_token_db");
                    None
                }
                Ok(Err(ImportError::Level(e))) => Some(e),
                Ok(Err(ImportError::Store(e))) => {
                    diags
                        .error(&key, line, format!("cannot import {} into the store: {e}", dir.display()))
                        .hint("check that the store is reachable; the import runs again at the next start");
                    None
                }
            },
            (mode, false) => {
                check_only(config, store, section, dir, mode, line, diags);
                None
            }
        };
        if let Some(e) = problem {
            diags.error(&key, line, e.to_string()).hint(e.hint());
        }
    }
    db
}

fn log_import(section: &str, dir: &Path, store: &SharedStore, imported: &Imported) {
    match imported {
        Imported::Now { imported, kept, unreadable } => {
            tracing::info!(
                section,
                path = %dir.display(),
                store = %store.describe(),
                imported,
                kept,
                "level_token_db imported (records the store already had are kept)"
            );
            for account in unreadable {
                tracing::warn!(section, path = %dir.display(), account = %account, "level_token_db: record skipped (not docker_auth's JSON, or too large)");
            }
        }
        Imported::Before { at } => {
            tracing::info!(section, path = %dir.display(), at = %at, "level_token_db was imported before; nothing to import")
        }
    }
}

/// `check-config`: reads a copy (damage is an error), says what a start would do.
fn check_only(
    config: &Config,
    store: &SharedStore,
    section: &str,
    dir: &Path,
    mode: LevelMode,
    line: usize,
    diags: &mut Diagnostics,
) {
    let key = format!("{section}.level_token_db.path");
    if mode == LevelMode::Import && config.store != crate::store::StoreConfig::Memory {
        if let Ok(Ok(Some(at))) = blocking(level_import::imported_at(store, dir)) {
            tracing::debug!(section, at = %at, "level_token_db imported before");
            return;
        }
    }
    match level_db::read_records(dir) {
        Ok(records) => {
            let what = match mode {
                LevelMode::Import => "imported into the store at the next start",
                LevelMode::Direct => "used directly",
            };
            tracing::info!(section, path = %dir.display(), records = records.len(), "level_token_db will be {what}");
        }
        Err(LevelError::Missing { path }) if mode == LevelMode::Direct => {
            tracing::info!(section, path = %path, "level_token_db does not exist yet; the server creates it");
        }
        Err(LevelError::Missing { path }) => {
            diags
                .warn(&key, line, format!("{path} does not exist: nothing to import"))
                .hint("if docker_auth's records are elsewhere, fix path:; otherwise drop level_token_db");
        }
        Err(LevelError::Locked { path }) => {
            diags
                .warn(
                    &key,
                    line,
                    format!("{path} is in use by another process (the running server, or docker_auth); not checked"),
                )
                .hint("a server starts only once docker_auth has stopped using the directory");
        }
        Err(e) => {
            diags.error(&key, line, e.to_string()).hint(e.hint());
        }
    }
}

/// Waits for `future` on a runtime of its own, from any thread (start-up, reload, CLI).
fn blocking<F: Future + Send>(future: F) -> Result<F::Output, String>
where
    F::Output: Send,
{
    std::thread::scope(|scope| {
        let runner = scope.spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            runtime.map(|r| r.block_on(future)).map_err(|e| format!("cannot start a runtime: {e}"))
        });
        runner.join().unwrap_or_else(|_| Err("the import stopped unexpectedly".to_string()))
    })
}
