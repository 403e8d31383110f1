//! Live reload: on SIGHUP or when the config file changes, load and build the new config
//! through the same `config::load` + `app::build` as start-up, then swap it into the
//! [`StateHandle`]. Requests in flight keep the state they took; a config that fails to
//! load or build changes nothing and the reason is logged.
//!
//! The watcher watches the config's directory, not the file: editors that write a new file
//! and rename it over the old one, and Kubernetes ConfigMaps (which swap a `..data`
//! symlink), replace the inode, and a file watch would stay on the old one. Every event in
//! the directory that can concern the config leads to a re-read; only changed contents are
//! reloaded. Writes to other files (a log beside the config) are ignored in the watcher's
//! callback: they would otherwise wake the reload thread on every log line.
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::Watcher as _;

use crate::config::{self, ServerConfig, StoreConfig};
use crate::http::StateHandle;
use crate::{app, metrics};

/// Events arriving within this window are handled as one change (editors write in steps).
const DEBOUNCE: Duration = Duration::from_millis(200);
/// A busy directory (a log file beside the config) never goes quiet: re-read at least this often.
const MAX_DELAY: Duration = Duration::from_secs(1);

/// Why a reload was asked for, for the log.
#[derive(Debug, Clone, Copy)]
pub enum Trigger {
    Signal,
    FileChange,
}

/// Reloads one config file into one handle; safe to call from several threads.
pub struct Reloader {
    path: PathBuf,
    handle: Arc<StateHandle>,
    /// The listener settings in force: they cannot change without a restart.
    server: ServerConfig,
    /// The store settings in force: the open store is kept across reloads.
    store: StoreConfig,
    /// Contents of the last attempt, so that an unchanged (or still broken) file is not
    /// reloaded again on every directory event. The lock also serialises reloads.
    last: Mutex<Option<Vec<u8>>>,
}

impl Reloader {
    pub fn new(path: &Path, handle: Arc<StateHandle>, server: ServerConfig, store: StoreConfig) -> Arc<Reloader> {
        let last = std::fs::read(path).ok();
        Arc::new(Reloader { path: path.to_path_buf(), handle, server, store, last: Mutex::new(last) })
    }

    /// Loads and swaps in the config; a file change whose contents equal the last attempt
    /// is ignored. Returns whether a new state is in force.
    pub fn reload(&self, trigger: Trigger) -> bool {
        let mut last = match self.last.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let contents = std::fs::read(&self.path).ok();
        if matches!(trigger, Trigger::FileChange) && contents == *last {
            return false;
        }
        *last = contents;
        let ok = self.load_and_swap(trigger);
        metrics::global().reload(if ok { "ok" } else { "failed" });
        ok
    }

    fn load_and_swap(&self, trigger: Trigger) -> bool {
        let file = self.path.display().to_string();
        let mut config = match config::load(&self.path) {
            Ok(config) => config,
            Err(e) => {
                tracing::error!(?trigger, "config reload failed, keeping the running config: {e}");
                return false;
            }
        };
        // The store stays open across reloads (one process owns the embedded file).
        let running = self.handle.current();
        if config.store != self.store {
            tracing::warn!("store: settings changed; they take effect after a restart");
            // Keep the running store's settings, its hash key among them.
            config.store = self.store.clone();
        }
        let built = match app::build_with(&config, running.service.store.clone()) {
            Ok(built) => built,
            Err(errors) => {
                for e in &errors {
                    tracing::error!(?trigger, "config reload failed, keeping the running config: {e}");
                }
                return false;
            }
        };
        for warning in config.warnings.iter().chain(&built.warnings) {
            tracing::warn!("{warning}");
        }
        if config.server != self.server {
            tracing::warn!(
                "server: settings (listen address, TLS, path_prefix...) changed; they take effect after a restart"
            );
        }
        self.handle.replace(built.state);
        tracing::info!(?trigger, file, "config reloaded");
        true
    }
}

/// Reloads on every SIGHUP until the runtime stops. Call inside the server's runtime.
pub fn spawn_sighup(reloader: Arc<Reloader>) -> std::io::Result<()> {
    let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    actix_web::rt::spawn(async move {
        while hangups.recv().await.is_some() {
            let reloader = reloader.clone();
            // Loading reads files and prepares bcrypt hashes: off the async workers.
            let _ = tokio::task::spawn_blocking(move || reloader.reload(Trigger::Signal)).await;
        }
    });
    Ok(())
}

/// Watches the config's directory and reloads on changes. The returned watcher must be
/// kept alive; dropping it stops the watch (and the thread ends).
pub fn watch(reloader: Arc<Reloader>) -> notify::Result<notify::RecommendedWatcher> {
    let dir = match reloader.path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => dir.to_path_buf(),
        None => PathBuf::from("."),
    };
    let names = config_names(&reloader.path);
    let (tx, rx) = mpsc::channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|e| may_concern(&e, &names)) {
            let _ = tx.send(());
        }
    })?;
    watcher.watch(&dir, notify::RecursiveMode::NonRecursive)?;
    std::thread::Builder::new()
        .name("config-watch".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                let started = std::time::Instant::now();
                while started.elapsed() < MAX_DELAY && rx.recv_timeout(DEBOUNCE).is_ok() {}
                reloader.reload(Trigger::FileChange);
            }
        })
        .map_err(|e| notify::Error::generic(&e.to_string()))?;
    Ok(watcher)
}

/// The config's file name and, when it is a symlink, its target's (edited in place there).
fn config_names(path: &Path) -> Vec<OsString> {
    let target = std::fs::canonicalize(path).ok();
    [Some(path), target.as_deref()].into_iter().flatten().filter_map(|p| p.file_name()).map(OsString::from).collect()
}

/// Whether a directory event may change what the config path reads: anything but reads of,
/// or writes into, other files (renames, creations and removals always count).
fn may_concern(event: &notify::Event, names: &[OsString]) -> bool {
    use notify::event::ModifyKind;
    use notify::EventKind;
    let contents_only = matches!(event.kind, EventKind::Access(_) | EventKind::Modify(ModifyKind::Data(_)));
    !contents_only || event.paths.iter().any(|p| p.file_name().is_some_and(|n| names.iter().any(|c| c == n)))
}

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, CreateKind, DataChange, ModifyKind, RenameMode};
    use notify::{Event, EventKind};

    use super::*;

    #[test]
    fn only_writes_to_other_files_are_ignored() {
        let names = vec![OsString::from("auth_config.yml")];
        let event = |kind, path: &str| Event::new(kind).add_path(PathBuf::from(path));
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        assert!(!may_concern(&event(write, "/etc/ra/server.log"), &names));
        assert!(!may_concern(&event(EventKind::Access(AccessKind::Any), "/etc/ra/server.log"), &names));
        assert!(may_concern(&event(write, "/etc/ra/auth_config.yml"), &names));
        assert!(may_concern(&event(EventKind::Create(CreateKind::File), "/etc/ra/..data_tmp"), &names));
        assert!(may_concern(&event(EventKind::Modify(ModifyKind::Name(RenameMode::To)), "/etc/ra/..data"), &names));
    }
}
