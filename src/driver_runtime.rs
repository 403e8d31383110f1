//! One runtime for the database drivers (MongoDB, SQL), on a thread of its own.
//!
//! Why: configs are built before (and outside) the HTTP runtime, and actix runs one
//! single-threaded runtime per worker. Driver connection pools, monitors and the ACL
//! refreshers live on this one thread; requests hand their operations to it with [`run`]
//! and await the answer from whichever runtime they are on.
use std::fmt::Display;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::runtime::Handle;

static RUNTIME: OnceLock<Result<Handle, String>> = OnceLock::new();

/// The driver runtime, started on first use on a thread named `db-drivers`.
pub fn runtime() -> Result<Handle, String> {
    RUNTIME.get_or_init(start_runtime).clone()
}

fn start_runtime() -> Result<Handle, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the database driver runtime: {e}"))?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("db-drivers".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .map_err(|e| format!("cannot start the database driver thread: {e}"))?;
    Ok(handle)
}

/// Runs `operation` on the driver runtime and waits for it from any runtime.
pub async fn run<T, E, F>(operation: F) -> Result<T, String>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Display + Send + 'static,
{
    let handle = runtime()?;
    match handle.spawn(operation).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(e) => Err(format!("database operation was interrupted: {e}")),
    }
}

/// Runs `operation` on the driver runtime from synchronous code (start-up), waiting at
/// most `limit`. Safe to call from inside another runtime's thread.
pub fn run_blocking<T, F>(operation: F, limit: Duration) -> Result<T, String>
where
    F: Future<Output = Result<T, String>> + Send + 'static,
    T: Send + 'static,
{
    let handle = runtime()?;
    let (sender, receiver) = std::sync::mpsc::channel();
    handle.spawn(async move {
        let _ = sender.send(operation.await);
    });
    receiver.recv_timeout(limit).map_err(|_| format!("no answer from the database within {limit:?}"))?
}
