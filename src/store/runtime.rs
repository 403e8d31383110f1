//! The store's own runtime: one thread on which the shared Redis connection and the
//! Redis Cluster client live.
//!
//! Why: stores are built before (and outside) the HTTP runtime, and a connection used
//! from any thread (the CLI's admin requests, background tasks) needs a driver task that
//! outlives every caller's runtime (as `crate::mongo` does for the MongoDB driver). Such
//! operations are handed to this thread and awaited from whichever runtime the caller is
//! on. A thread whose runtime lasts as long as the thread (an HTTP worker, marked with
//! [`this_thread_keeps_its_runtime`]) keeps a connection of its own instead.
use std::cell::Cell;
use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Handle;

static RUNTIME: OnceLock<Result<Handle, String>> = OnceLock::new();

thread_local! {
    static KEEPS_ITS_RUNTIME: Cell<bool> = const { Cell::new(false) };
}

/// Called on a thread whose async runtime lives as long as the thread (an HTTP worker):
/// engines may then keep a connection of their own on it, driven by that runtime, and
/// skip the hand-over to the store thread (two thread wake-ups per command).
pub fn this_thread_keeps_its_runtime() {
    KEEPS_ITS_RUNTIME.with(|flag| flag.set(true));
}

/// Whether [`this_thread_keeps_its_runtime`] was called on the current thread.
pub fn thread_keeps_its_runtime() -> bool {
    KEEPS_ITS_RUNTIME.with(Cell::get)
}

/// The store runtime, started on first use on a thread named `store`.
pub fn handle() -> Result<Handle, String> {
    RUNTIME.get_or_init(start).clone()
}

fn start() -> Result<Handle, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the store runtime: {e}"))?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("store".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .map_err(|e| format!("cannot start the store thread: {e}"))?;
    Ok(handle)
}

/// Runs `operation` on the store runtime and waits for it from any runtime.
pub async fn run<T, F>(operation: F) -> Result<T, String>
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handle = handle()?;
    handle.spawn(operation).await.map_err(|e| format!("store operation was interrupted: {e}"))
}
