//! The queue between the request path and the store: [`record`] costs one bounded
//! channel send (no store round trip, no wait); one task drains the queue and writes
//! whatever has gathered in one push, so a busy server writes large batches, an idle one
//! single events. Process-wide like the metrics, so reloads keep it.
use std::sync::OnceLock;

use tokio::sync::mpsc::{self, error::TrySendError};

use super::{append, RecentEvent};
use crate::metrics;
use crate::store::SharedStore;

/// Events waiting at most; beyond it new events are dropped (and counted).
pub const QUEUE_LEN: usize = 4096;
/// Events written in one go at most.
const BATCH: usize = 256;

static QUEUE: OnceLock<mpsc::Sender<RecentEvent>> = OnceLock::new();

/// Starts the drain task on the current tokio runtime, writing to `store`. The first call
/// wins; later ones (there is one store per process) do nothing.
pub fn start(store: SharedStore) {
    let (sender, receiver) = mpsc::channel(QUEUE_LEN);
    if QUEUE.set(sender).is_ok() {
        tokio::spawn(drain(receiver, store));
    }
}

/// Queues the event `build` makes, if the recorder runs; never waits.
pub fn record(build: impl FnOnce() -> RecentEvent) {
    let Some(queue) = QUEUE.get() else { return };
    match queue.try_send(build().bounded()) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => metrics::global().recent_events("dropped_queue_full", 1),
        Err(TrySendError::Closed(_)) => metrics::global().recent_events("dropped_store_error", 1),
    }
}

async fn drain(mut receiver: mpsc::Receiver<RecentEvent>, store: SharedStore) {
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        let n = batch.len() as u64;
        match append(&store, &batch).await {
            Ok(()) => metrics::global().recent_events("stored", n),
            Err(e) => {
                metrics::global().recent_events("dropped_store_error", n);
                tracing::warn!(store = %store.describe(), events = n, "recent audit events not kept (the log has them): {e}");
            }
        }
        batch.clear();
    }
}
