//! The queue between the request path and the store: [`record`] costs one bounded
//! channel send (no store round trip, no wait); one task drains the queue and writes what
//! has gathered in the last 20 ms (at most the list's CAP newest: older ones would be
//! trimmed at once, counted `superseded`). Process-wide like the metrics, so reloads keep it.
use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::mpsc::{self, error::TrySendError};

use super::{append, RecentEvent, CAP};
use crate::metrics;
use crate::store::SharedStore;

/// Events waiting at most; beyond it new events are dropped (and counted).
pub const QUEUE_LEN: usize = 4096;
/// How long events gather before they are written.
const GATHER: Duration = Duration::from_millis(20);

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
    // Events gather for GATHER before one write: the list keeps only the newest CAP, so a
    // busy server writes at most 50 batches a second (each an embedded commit or a Redis
    // script) instead of one per wake-up, which cost ~20 µs of CPU per token at 20k/s.
    let mut pending: VecDeque<RecentEvent> = VecDeque::with_capacity(CAP);
    let mut flush_at: Option<Instant> = None;
    loop {
        let next = match flush_at {
            None => receiver.recv().await,
            Some(at) => tokio::select! {
                event = receiver.recv() => event,
                _ = tokio::time::sleep_until(at) => {
                    flush(&store, &mut pending).await;
                    flush_at = None;
                    continue;
                }
            },
        };
        let Some(event) = next else {
            flush(&store, &mut pending).await;
            return;
        };
        if pending.len() == CAP {
            pending.pop_front();
            metrics::global().recent_events("superseded", 1);
        }
        pending.push_back(event);
        flush_at.get_or_insert_with(|| Instant::now() + GATHER);
    }
}

/// Writes what has gathered, oldest first.
async fn flush(store: &SharedStore, pending: &mut VecDeque<RecentEvent>) {
    if pending.is_empty() {
        return;
    }
    let n = pending.len() as u64;
    match append(store, pending.make_contiguous()).await {
        Ok(()) => metrics::global().recent_events("stored", n),
        Err(e) => {
            metrics::global().recent_events("dropped_store_error", n);
            tracing::warn!(store = %store.describe(), events = n, "recent audit events not kept (the log has them): {e}");
        }
    }
    pending.clear();
}
