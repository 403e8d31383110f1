//! The queue between the request path and the store: [`record`] costs one bounded
//! channel send (no store round trip, no wait, no wake-up of another thread while events
//! gather); one task drains the queue and writes what has gathered in the last 20 ms (at
//! most the list's CAP newest: older ones would be trimmed at once, counted `superseded`).
//! [`written`] lets a reader (the console's audit page) see every event recorded before it
//! asked. Process-wide like the metrics, so reloads keep it.
use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::mpsc::{self, error::TryRecvError, error::TrySendError};
use tokio::sync::oneshot;

use super::{append, RecentEvent, CAP};
use crate::metrics;
use crate::store::SharedStore;

/// Events waiting at most; beyond it new events are dropped (and counted).
pub const QUEUE_LEN: usize = 4096;
/// How long events gather before they are written.
const GATHER: Duration = Duration::from_millis(20);
/// Readers waiting for a write at most (each an operator's page view).
const WAITERS: usize = 64;
/// A reader waits this long at most for the write it asked for.
const WAIT_BOUND: Duration = Duration::from_secs(2);

struct Recorder {
    events: mpsc::Sender<RecentEvent>,
    waiters: mpsc::Sender<oneshot::Sender<()>>,
}

static RECORDER: OnceLock<Recorder> = OnceLock::new();

/// Starts the drain task on the current tokio runtime, writing to `store`. The first call
/// wins; later ones (there is one store per process) do nothing.
pub fn start(store: SharedStore) {
    let (events, receiver) = mpsc::channel(QUEUE_LEN);
    let (waiters, waiting) = mpsc::channel(WAITERS);
    if RECORDER.set(Recorder { events, waiters }).is_ok() {
        tokio::spawn(drain(receiver, waiting, store));
    }
}

/// Queues the event `build` makes, if the recorder runs; never waits.
pub fn record(build: impl FnOnce() -> RecentEvent) {
    let Some(recorder) = RECORDER.get() else { return };
    match recorder.events.try_send(build().bounded()) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => metrics::global().recent_events("dropped_queue_full", 1),
        Err(TrySendError::Closed(_)) => metrics::global().recent_events("dropped_store_error", 1),
    }
}

/// Returns once every event recorded before the call is in the store (or was dropped and
/// counted), so a page read afterwards shows them; at once if the recorder does not run,
/// and after [`WAIT_BOUND`] at most (the page then shows what the store has).
pub async fn written() {
    let Some(recorder) = RECORDER.get() else { return };
    let (done, wait) = oneshot::channel();
    if recorder.waiters.send(done).await.is_ok() {
        let _ = tokio::time::timeout(WAIT_BOUND, wait).await;
    }
}

async fn drain(
    mut events: mpsc::Receiver<RecentEvent>,
    mut waiting: mpsc::Receiver<oneshot::Sender<()>>,
    store: SharedStore,
) {
    // The first event wakes the task; the ones that follow within GATHER are not polled for
    // (a send to a channel nobody polls wakes no one) but taken in one go afterwards, for one
    // store write: a wake-up and a write per event cost ~20 µs of CPU per token at 20k/s.
    // `waiting` never ends: its sender lives in a static.
    let mut pending: VecDeque<RecentEvent> = VecDeque::with_capacity(CAP);
    let mut open = true;
    while open {
        let mut waiter = None;
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => {
                    keep(&mut pending, event);
                    tokio::select! {
                        _ = tokio::time::sleep(GATHER) => {}
                        asked = waiting.recv() => waiter = asked,
                    }
                }
                None => open = false,
            },
            asked = waiting.recv() => waiter = asked,
        }
        open &= take_queued(&mut events, &mut pending);
        flush(&store, &mut pending).await;
        if let Some(waiter) = waiter {
            let _ = waiter.send(());
        }
    }
}

/// Moves what the queue holds into `pending`; false once every sender is gone.
fn take_queued(events: &mut mpsc::Receiver<RecentEvent>, pending: &mut VecDeque<RecentEvent>) -> bool {
    loop {
        match events.try_recv() {
            Ok(event) => keep(pending, event),
            Err(TryRecvError::Empty) => return true,
            Err(TryRecvError::Disconnected) => return false,
        }
    }
}

fn keep(pending: &mut VecDeque<RecentEvent>, event: RecentEvent) {
    if pending.len() == CAP {
        pending.pop_front();
        metrics::global().recent_events("superseded", 1);
    }
    pending.push_back(event);
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
