//! Logging setup: `tracing` to stderr as text or JSON lines, level from `RUST_LOG`,
//! `--log-level` or the glog-style `-v=N`.
//! Nothing logs passwords, tokens or Authorization headers; requests are not dumped.
//! Client-supplied text is escaped in the text format ([`text_fields`]).
//!
//! The server (`serve`) writes its lines through [`batch_writer`]: a request thread
//! appends its formatted audit line to a bounded buffer, and one thread of its own
//! (`log-writer`) writes what gathered to stderr every few milliseconds, many lines per
//! `write`. When the buffer is full the request thread waits for room (backpressure, as a
//! blocking stderr did before), it never drops a line: audit lines are the record of every
//! grant and must not be lost to a burst. The returned [`LogGuard`] writes the rest when
//! the server stops (SIGTERM and SIGINT end in a graceful stop, then `main` returns and
//! drops it).
//! CLI commands write synchronously, so their lines stay in order with what they print.
use std::io::IsTerminal as _;

use tracing_subscriber::filter::Directive;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

mod batch_writer;
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

/// How lines reach stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogWriter {
    /// Written by the thread that logs, one `write` per line (CLI commands).
    Direct,
    /// Buffered for the `log-writer` thread (the server).
    Background,
}

/// Keeps the background log thread alive; dropping it writes every queued line first.
#[must_use = "dropping the guard stops the log thread"]
pub struct LogGuard {
    _worker: Option<batch_writer::BatchGuard>,
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
        LogWriter::Background => match batch_writer::start(std::io::stderr()) {
            Ok((writer, guard)) => {
                install(level, format, writer);
                LogGuard { _worker: Some(guard) }
            }
            // No thread to be had: log as the CLI does rather than not at all.
            Err(_) => init(level, format, LogWriter::Direct),
        },
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
