//! Logging setup: `tracing` to stderr as text or JSON lines, level from `RUST_LOG`,
//! `--log-level` or the glog-style `-v=N`.
//! Nothing logs passwords, tokens or Authorization headers; requests are not dumped.
//! Client-supplied text is escaped in the text format ([`text_fields`]).
//!
//! The server (`serve`) writes its lines through a non-blocking writer: a request thread
//! formats its audit line and hands it to a bounded queue, and one thread of its own
//! (`log-writer`) writes the queue to stderr, many lines per `write` under load. When the
//! queue is full the request thread waits for room (backpressure, as a blocking stderr
//! did before), it never drops a line: audit lines are the record of every grant and must
//! not be lost to a burst. The returned [`LogGuard`] flushes the queue when the server
//! stops (SIGTERM and SIGINT end in a graceful stop, then `main` returns and drops it).
//! CLI commands write synchronously, so their lines stay in order with what they print.
use std::io::{BufWriter, IsTerminal as _};

use tracing_subscriber::filter::Directive;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

mod text_fields;

/// Crates whose events are capped at `warn` whatever `RUST_LOG` says. The file watcher
/// (`notify`) logs every inotify event it reads at debug/trace level: with the log file
/// in the watched config directory, each of its lines would be a write that produces an
/// event that produces a line (38 MB/s while idle).
const CAPPED: &[&str] = &["notify", "inotify", "mio"];

/// glog verbosity → level: 0–1 info, 2 debug, 3+ trace.
pub fn level_for_verbosity(v: u8) -> &'static str {
    match v {
        0 | 1 => "info",
        2 => "debug",
        _ => "trace",
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    /// One JSON object per line, fields at the top level (for log shippers).
    Json,
}

/// Lines the server's log queue holds (a few MB of audit lines): room for a burst while
/// stderr is slow; past it, request threads wait.
pub const LOG_QUEUE_LINES: usize = 8192;
/// The log thread's buffer: what one `write` to stderr carries at most.
const LOG_WRITE_BYTES: usize = 64 * 1024;

/// How lines reach stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogWriter {
    /// Written by the thread that logs, one `write` per line (CLI commands).
    Direct,
    /// Queued for the `log-writer` thread (the server).
    Background,
}

/// Keeps the background log thread alive; dropping it writes every queued line first.
#[must_use = "dropping the guard stops the log thread"]
pub struct LogGuard {
    _worker: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Installs the global subscriber once; `RUST_LOG` wins over `level`. The level applies
/// to our own events only: libraries stay at `warn`, so no debug output of the HTTP or
/// TLS stacks (which could show headers) appears at high verbosity.
pub fn init(level: &str, format: LogFormat, writer: LogWriter) -> LogGuard {
    match writer {
        LogWriter::Direct => {
            install(level, format, std::io::stderr);
            LogGuard { _worker: None }
        }
        LogWriter::Background => {
            let (queue, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .lossy(false)
                .buffered_lines_limit(LOG_QUEUE_LINES)
                .thread_name("log-writer")
                .finish(BufWriter::with_capacity(LOG_WRITE_BYTES, std::io::stderr()));
            install(level, format, queue);
            LogGuard { _worker: Some(guard) }
        }
    }
}

fn install<W>(level: &str, format: LogFormat, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt().with_env_filter(filter(level)).with_writer(writer).with_target(false);
    let _ = match format {
        LogFormat::Text => {
            builder.fmt_fields(text_fields::EscapedFields).with_ansi(std::io::stderr().is_terminal()).try_init()
        }
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
}

/// `RUST_LOG` or the default, then the [`CAPPED`] crates at `warn` at most (a later
/// directive for the same target replaces an earlier one).
fn filter(level: &str) -> EnvFilter {
    let mut filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("warn,registry_auth={level}")));
    for target in CAPPED {
        if let Ok(directive) = format!("{target}=warn").parse::<Directive>() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}
