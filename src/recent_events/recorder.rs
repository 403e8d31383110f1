//! The hand-over between the request path and the store: [`record`] appends the event to
//! an in-process ring of the list's CAP newest (an older one falls out, counted
//! `superseded`: the list would trim it anyway) and goes on, with no store round trip and
//! no wake-up of another thread except for the first event after a write. One task writes
//! what the ring holds every [`GATHER`], so a busy server serialises at most CAP events per
//! write whatever its rate. [`written`] lets a reader (the console's audit page, the stop)
//! have every event recorded before it asked in the store. Process-wide like the metrics,
//! so reloads keep it.
use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Notify};

use super::{append, RecentEvent, CAP};
use crate::metrics;
use crate::store::SharedStore;

/// How long events gather before they are written (a page read does not wait for it).
const GATHER: Duration = Duration::from_millis(250);
/// Readers waiting for a write at most (each an operator's page view).
const WAITERS: usize = 64;
/// A reader waits this long at most for the write it asked for.
const WAIT_BOUND: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Ring {
    events: VecDeque<RecentEvent>,
    /// Fallen out since the last write (counted then: no metrics lock per event).
    superseded: u64,
}

struct Recorder {
    ring: Mutex<Ring>,
    /// Told when the ring goes from empty to not empty.
    first: Notify,
    waiters: mpsc::Sender<oneshot::Sender<()>>,
}

static RECORDER: OnceLock<Recorder> = OnceLock::new();

/// Starts the writing task on the current tokio runtime, writing to `store`. The first
/// call wins; later ones (there is one store per process) do nothing.
pub fn start(store: SharedStore) {
    let (waiters, waiting) = mpsc::channel(WAITERS);
    let ring = Ring { events: VecDeque::with_capacity(CAP), superseded: 0 };
    let recorder = Recorder { ring: Mutex::new(ring), first: Notify::new(), waiters };
    if RECORDER.set(recorder).is_ok() {
        tokio::spawn(write_gathered(waiting, store));
    }
}

/// Keeps the event `build` makes, if the recorder runs; never waits for the store.
pub fn record(build: impl FnOnce() -> RecentEvent) {
    let Some(recorder) = RECORDER.get() else { return };
    let event = build().bounded();
    let mut ring = recorder.ring.lock().unwrap_or_else(|p| p.into_inner());
    let was_empty = ring.events.is_empty();
    if ring.events.len() == CAP {
        ring.events.pop_front();
        ring.superseded += 1;
    }
    ring.events.push_back(event);
    drop(ring);
    if was_empty {
        recorder.first.notify_one();
    }
}

/// Returns once every event recorded before the call is in the store (or failed to be
/// written, counted), so a page read afterwards shows them; at once if the recorder does
/// not run, and after [`WAIT_BOUND`] at most (the page then shows what the store has).
pub async fn written() {
    let Some(recorder) = RECORDER.get() else { return };
    let (done, wait) = oneshot::channel();
    // The bound covers the queueing too: with the store stuck, 64 readers fill the queue.
    let _ = tokio::time::timeout(WAIT_BOUND, async {
        if recorder.waiters.send(done).await.is_ok() {
            let _ = wait.await;
        }
    })
    .await;
}

async fn write_gathered(mut waiting: mpsc::Receiver<oneshot::Sender<()>>, store: SharedStore) {
    let Some(recorder) = RECORDER.get() else { return };
    let mut batch = VecDeque::with_capacity(CAP);
    // `waiting` never ends: its sender lives in a static.
    loop {
        let empty = recorder.ring.lock().unwrap_or_else(|p| p.into_inner()).events.is_empty();
        let mut waiter = None;
        if empty {
            tokio::select! {
                _ = recorder.first.notified() => {}
                asked = waiting.recv() => waiter = asked,
            }
        }
        if waiter.is_none() {
            tokio::select! {
                _ = tokio::time::sleep(GATHER) => {}
                asked = waiting.recv() => waiter = asked,
            }
        }
        let superseded = {
            let mut ring = recorder.ring.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::swap(&mut ring.events, &mut batch);
            std::mem::take(&mut ring.superseded)
        };
        if superseded > 0 {
            metrics::global().recent_events("superseded", superseded);
        }
        write(&store, &mut batch).await;
        if let Some(waiter) = waiter {
            let _ = waiter.send(());
        }
    }
}

/// Writes `batch`, oldest first, and empties it.
async fn write(store: &SharedStore, batch: &mut VecDeque<RecentEvent>) {
    if batch.is_empty() {
        return;
    }
    let n = batch.len() as u64;
    match append(store, batch.make_contiguous()).await {
        Ok(()) => metrics::global().recent_events("stored", n),
        Err(e) => {
            metrics::global().recent_events("dropped_store_error", n);
            tracing::warn!(store = %store.describe(), events = n, "recent audit events not kept (the log has them): {e}");
        }
    }
    batch.clear();
}
