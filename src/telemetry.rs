//! Logging setup: `tracing` to stderr as text or JSON lines, level from `RUST_LOG`,
//! `--log-level` or the glog-style `-v=N`.
//! Nothing logs passwords, tokens or Authorization headers; requests are not dumped.
//! Client-supplied text is escaped in the text format ([`text_fields`]).
use std::io::IsTerminal as _;

use tracing_subscriber::filter::Directive;
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

/// Installs the global subscriber once; `RUST_LOG` wins over `level`. The level applies
/// to our own events only: libraries stay at `warn`, so no debug output of the HTTP or
/// TLS stacks (which could show headers) appears at high verbosity.
pub fn init(level: &str, format: LogFormat) {
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter(level)).with_writer(std::io::stderr).with_target(false);
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
