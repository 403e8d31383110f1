//! Logging setup: `tracing` to stderr, level from `RUST_LOG` or the glog-style `-v=N`.
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

/// Installs the global subscriber once; `RUST_LOG` wins over `level`. The level applies
/// to our own events only: libraries stay at `warn`, so no debug output of the HTTP or
/// TLS stacks (which could show headers) appears at high verbosity.
pub fn init(level: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("warn,registry_auth={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
