//! Logging setup: `tracing` to stderr as text or JSON lines, level from `RUST_LOG`,
//! `--log-level` or the glog-style `-v=N`.
//! Nothing logs passwords, tokens or Authorization headers; requests are not dumped.
use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

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
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("warn,registry_auth={level}")));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
}
