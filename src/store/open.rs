//! Getting a store handle from the `store:` config: [`open_owned`] for `serve`, [`connect`]
//! for everything else (CLI subcommands, `check-config`, `explain`, in-process tests), which
//! reaches the running server's embedded store through its admin socket when the file is
//! owned, so that the CLI acts on the same store while the server runs.
use std::sync::Arc;

use super::admin::AdminClient;
use super::embedded::EmbeddedStore;
use super::memory::MemoryStore;
use super::redis::RedisStore;
use super::{SharedStore, StoreConfig, StoreError};

/// The store `serve` owns: the embedded file is locked by this process (a second server on
/// the same directory fails with [`StoreError::Locked`], naming the path).
pub fn open_owned(config: &StoreConfig) -> Result<SharedStore, StoreError> {
    match config {
        StoreConfig::Memory => Ok(Arc::new(MemoryStore::new())),
        StoreConfig::Embedded(embedded) => Ok(Arc::new(EmbeddedStore::open(&embedded.path)?)),
        StoreConfig::Redis(redis) => Ok(Arc::new(RedisStore::new(redis)?)),
    }
}

/// The same store as a running server's: Redis directly; the embedded file directly when
/// no server owns it, else through the owner's admin socket (`<store.path>/admin.sock`).
pub fn connect(config: &StoreConfig) -> Result<SharedStore, StoreError> {
    match config {
        StoreConfig::Embedded(embedded) => match EmbeddedStore::open(&embedded.path) {
            Err(StoreError::Locked { .. }) => Ok(Arc::new(AdminClient::new(&embedded.path))),
            other => Ok(Arc::new(other?)),
        },
        other => open_owned(other),
    }
}

/// For CLI subcommands that manage records (robots, identity tokens): [`connect`], refusing
/// the memory engine, whose records live in a server process the CLI cannot reach.
pub fn for_cli(config: &StoreConfig) -> Result<SharedStore, StoreError> {
    if *config == StoreConfig::Memory {
        return Err(StoreError::Invalid {
            store: "memory".to_string(),
            reason: "the config has no store: section, so there is nothing to manage; add one \
                     (store: {path: data} for one server, store: {redis: {addr: ...}} for replicas)"
                .to_string(),
        });
    }
    connect(config)
}
