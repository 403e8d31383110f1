//! Our `lockout:` section (docker_auth has none): brute-force protection. Failed logins
//! are counted per client address and per account in the store; beyond a limit, logins
//! are refused (429) without checking the password until the window passes.
//!
//! ```yaml
//! lockout:
//!   enabled: true               # the default
//!   window: 15m                 # counting window, also the longest lock
//!   max_failures_per_ip: 100    # per client address (IPv6: per /64)
//!   max_failures_per_account: 1000
//! ```
//! Only failures count: a CI fleet behind one address with working credentials never
//! comes near the per-address limit. The per-account limit is far above it, so that an
//! attacker at one address cannot lock a user out everywhere.
use std::time::Duration;

use super::diag::Diagnostics;
use super::reader::{parse_go_duration, Section};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockoutConfig {
    pub enabled: bool,
    pub window: Duration,
    pub max_failures_per_ip: u64,
    pub max_failures_per_account: u64,
}

pub const DEFAULT_WINDOW: Duration = Duration::from_secs(15 * 60);
pub const DEFAULT_MAX_PER_IP: u64 = 100;
pub const DEFAULT_MAX_PER_ACCOUNT: u64 = 1000;
const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);
const MAX_LIMIT: i64 = 1_000_000_000;

impl Default for LockoutConfig {
    fn default() -> Self {
        LockoutConfig {
            enabled: true,
            window: DEFAULT_WINDOW,
            max_failures_per_ip: DEFAULT_MAX_PER_IP,
            max_failures_per_account: DEFAULT_MAX_PER_ACCOUNT,
        }
    }
}

const KNOWN: &[&str] = &["enabled", "window", "max_failures_per_ip", "max_failures_per_account"];

pub fn read(root: &mut Section<'_>, diags: &mut Diagnostics) -> LockoutConfig {
    let mut config = LockoutConfig::default();
    let Some(node) = root.node("lockout") else { return config };
    let Some(mut s) = Section::of(node, "lockout", diags) else { return config };
    config.enabled = s.bool("enabled", diags).unwrap_or(true);
    let window_line = s.node("window").map_or(s.line, |n| n.line);
    if let Some(text) = s.string("window", diags) {
        match parse_go_duration(&text) {
            Some(window) if window >= Duration::from_secs(1) && window <= MAX_WINDOW => config.window = window,
            _ => {
                diags
                    .error(
                        "lockout.window",
                        window_line,
                        format!("lockout.window must be a duration from 1s to 24h, found {text:?}"),
                    )
                    .hint("write a Go duration such as \"15m\" or \"1h\"");
            }
        }
    }
    if let Some(n) = read_limit(&mut s, "max_failures_per_ip", diags) {
        config.max_failures_per_ip = n;
    }
    if let Some(n) = read_limit(&mut s, "max_failures_per_account", diags) {
        config.max_failures_per_account = n;
    }
    if config.max_failures_per_account < config.max_failures_per_ip {
        let line = s.node("max_failures_per_account").map_or(s.line, |n| n.line);
        diags
            .warn(
                "lockout.max_failures_per_account",
                line,
                format!(
                    "max_failures_per_account ({}) is below max_failures_per_ip ({}): one address can lock an account out for everyone",
                    config.max_failures_per_account, config.max_failures_per_ip
                ),
            )
            .hint("keep the per-account limit well above the per-address one (defaults: 1000 and 100)");
    }
    s.warn_unknown(KNOWN, diags);
    config
}

fn read_limit(s: &mut Section<'_>, key: &str, diags: &mut Diagnostics) -> Option<u64> {
    let line = s.node(key).map_or(s.line, |n| n.line);
    let n = s.int(key, diags)?;
    if (1..=MAX_LIMIT).contains(&n) {
        return Some(n as u64);
    }
    diags
        .error(format!("lockout.{key}"), line, format!("lockout.{key} must be 1 to {MAX_LIMIT}, got {n}"))
        .hint("set how many failed logins a window allows; use enabled: false to turn the protection off");
    None
}
