//! The server's log writer: a request thread appends its formatted line to a shared,
//! bounded buffer and goes on; one thread of its own (`log-writer`) writes what has
//! gathered to the sink in one `write` every few milliseconds. Appending wakes that
//! thread only when it sleeps with nothing to write, or when the buffer passes
//! [`HIGH_WATER`]: waking it for every line (as a channel per line does) cost more CPU than
//! formatting the line. A full buffer makes request threads wait for room (backpressure,
//! never a lost audit line); [`BatchGuard`] writes the rest when the server stops.
use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How long lines gather before a write (also the longest a line waits, when nothing is full).
const GATHER: Duration = Duration::from_millis(5);
/// Past this many bytes the writer thread is woken to write at once.
const HIGH_WATER: usize = 256 * 1024;
/// Bytes the buffer holds at most; request threads wait for room past it.
pub const LIMIT: usize = 4 * 1024 * 1024;
/// A batch buffer keeps at most this capacity between bursts.
const KEPT_CAPACITY: usize = 64 * 1024;

#[derive(Default)]
struct State {
    buf: Vec<u8>,
    /// The writer thread waits for a first line (and must be woken for it).
    idle: bool,
    /// The guard was dropped: write what is left, then stop.
    closing: bool,
    /// The writer thread has stopped; lines go straight to the sink's fallback.
    stopped: bool,
}

struct Shared {
    state: Mutex<State>,
    /// The writer thread waits here for lines.
    lines: Condvar,
    /// Request threads wait here for room.
    room: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A thread that panicked while appending left whole lines behind: keep logging.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The [`MakeWriter`] request threads log through.
#[derive(Clone)]
pub struct BatchWriter {
    shared: Arc<Shared>,
}

/// Keeps the writer thread; dropping it writes every buffered line and stops the thread.
pub struct BatchGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Starts the `log-writer` thread writing to `sink`.
pub fn start<W: Write + Send + 'static>(sink: W) -> io::Result<(BatchWriter, BatchGuard)> {
    let shared = Arc::new(Shared { state: Mutex::new(State::default()), lines: Condvar::new(), room: Condvar::new() });
    let worker = shared.clone();
    let thread = std::thread::Builder::new().name("log-writer".into()).spawn(move || write_batches(&worker, sink))?;
    Ok((BatchWriter { shared: shared.clone() }, BatchGuard { shared, thread: Some(thread) }))
}

fn write_batches<W: Write>(shared: &Shared, mut sink: W) {
    let mut batch = Vec::new();
    loop {
        let mut state = shared.lock();
        while state.buf.is_empty() && !state.closing {
            state.idle = true;
            state = shared.lines.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        state.idle = false;
        if !state.closing && state.buf.len() < HIGH_WATER {
            state = shared
                .lines
                .wait_timeout_while(state, GATHER, |s| !s.closing && s.buf.len() < HIGH_WATER)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        std::mem::swap(&mut state.buf, &mut batch);
        let last = state.closing && batch.is_empty();
        if last {
            state.stopped = true;
        }
        drop(state);
        shared.room.notify_all();
        if last {
            let _ = sink.flush();
            return;
        }
        // A sink that fails (stderr closed) loses the lines it refused, as a direct write would.
        let _ = sink.write_all(&batch).and_then(|()| sink.flush());
        batch.clear();
        batch.shrink_to(KEPT_CAPACITY);
    }
}

impl<'a> MakeWriter<'a> for BatchWriter {
    type Writer = &'a BatchWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Write for &BatchWriter {
    /// Appends the whole line (the fmt layer hands over one formatted event per call).
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let shared = &self.shared;
        let mut state = shared.lock();
        while state.buf.len() >= LIMIT && !state.closing {
            state = shared.room.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        if state.stopped {
            // Logged after the server stopped (a late thread): write it directly.
            drop(state);
            return io::stderr().write_all(line).map(|()| line.len());
        }
        let before = state.buf.len();
        state.buf.extend_from_slice(line);
        let crossed = before < HIGH_WATER && state.buf.len() >= HIGH_WATER;
        if state.idle || crossed {
            state.idle = false;
            shared.lines.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for BatchGuard {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.lines.notify_one();
        self.shared.room.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    /// A sink that hands every write to the test, and can be held shut.
    struct Sink {
        writes: mpsc::Sender<Vec<u8>>,
        gate: Arc<Mutex<()>>,
    }

    impl Write for Sink {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            let _open = self.gate.lock().unwrap();
            self.writes.send(data.to_vec()).unwrap();
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn sink() -> (Sink, mpsc::Receiver<Vec<u8>>, Arc<Mutex<()>>) {
        let (writes, written) = mpsc::channel();
        let gate = Arc::new(Mutex::new(()));
        (Sink { writes, gate: gate.clone() }, written, gate)
    }

    fn log(writer: &BatchWriter, line: &str) {
        (&*writer).write_all(line.as_bytes()).unwrap();
    }

    #[test]
    fn a_line_is_written_soon_and_many_lines_in_few_writes() {
        let (sink, written, _gate) = sink();
        let (writer, guard) = start(sink).unwrap();
        log(&writer, "one\n");
        let first = written.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(first, b"one\n");
        for i in 0..1000 {
            log(&writer, &format!("line {i}\n"));
        }
        drop(guard);
        let batches: Vec<Vec<u8>> = written.try_iter().collect();
        let text = String::from_utf8(batches.concat()).unwrap();
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!(text, expected, "every line, in order");
        assert!(batches.len() < 100, "{} writes for 1,000 lines", batches.len());
    }

    #[test]
    fn a_full_buffer_makes_loggers_wait_and_loses_nothing() {
        let (sink, written, gate) = sink();
        let (writer, guard) = start(sink).unwrap();
        let shut = gate.lock().unwrap();
        let line = "x".repeat(1023) + "\n";
        let lines = 3 * LIMIT / line.len();
        let logger = {
            let writer = writer.clone();
            let line = line.clone();
            std::thread::spawn(move || (0..lines).for_each(|_| log(&writer, &line)))
        };
        // The sink is shut: the logger fills the buffer (one batch is out at the sink) and waits.
        std::thread::sleep(Duration::from_millis(300));
        assert!(!logger.is_finished(), "a logger waits for room");
        assert!(writer.shared.lock().buf.len() <= LIMIT + line.len());
        drop(shut);
        logger.join().unwrap();
        drop(guard);
        let total: usize = written.try_iter().map(|w| w.len()).sum();
        assert_eq!(total, lines * line.len());
    }

    #[test]
    fn lines_after_the_stop_are_not_lost_or_stuck() {
        let (sink, written, _gate) = sink();
        let (writer, guard) = start(sink).unwrap();
        log(&writer, "before\n");
        drop(guard);
        assert_eq!(written.try_iter().collect::<Vec<_>>().concat(), b"before\n");
        // Goes to stderr directly; the point is that it returns.
        log(&writer, "after the stop\n");
    }
}
