//! Our `identity_tokens:` section (docker_auth has none): how long the refresh tokens that
//! `docker login` stores live, in total and without use. They need a store (`store:`).
use std::time::Duration;

use super::diag::Diagnostics;
use super::reader::{parse_go_duration, Section};
use crate::identity::IdentityTokenConfig;

const KNOWN: &[&str] = &["lifetime", "idle_timeout"];
/// Below this a token would lapse between two CI runs of the same day.
const MIN: Duration = Duration::from_secs(3600);
/// Ten years: beyond this "configurable" becomes "never expires".
const MAX: Duration = Duration::from_secs(3650 * 86_400);

/// `90d`, `12h`, or any Go duration (`1h30m`).
pub fn parse_lifetime(text: &str) -> Option<Duration> {
    if let Some(days) = text.strip_suffix('d') {
        let days: u64 = days.parse().ok()?;
        return days.checked_mul(86_400).map(Duration::from_secs);
    }
    parse_go_duration(text)
}

pub fn read(root: &mut Section<'_>, diags: &mut Diagnostics) -> IdentityTokenConfig {
    let mut config = IdentityTokenConfig::default();
    let Some(node) = root.node("identity_tokens") else { return config };
    let Some(mut s) = Section::of(node, "identity_tokens", diags) else { return config };
    if let Some(d) = duration(&mut s, "lifetime", diags) {
        config.lifetime = d;
    }
    if let Some(d) = duration(&mut s, "idle_timeout", diags) {
        config.idle_timeout = d;
    }
    if config.idle_timeout > config.lifetime {
        diags
            .error("identity_tokens.idle_timeout", s.line, "identity_tokens.idle_timeout is longer than the lifetime")
            .hint("make idle_timeout at most lifetime (defaults: lifetime 90d, idle_timeout 30d)");
    }
    s.warn_unknown(KNOWN, diags);
    config
}

fn duration(s: &mut Section<'_>, key: &str, diags: &mut Diagnostics) -> Option<Duration> {
    let line = s.node(key).map_or(s.line, |n| n.line);
    let text = s.string(key, diags)?;
    match parse_lifetime(&text) {
        Some(d) if (MIN..=MAX).contains(&d) => Some(d),
        _ => {
            diags
                .error(
                    format!("identity_tokens.{key}"),
                    line,
                    format!("identity_tokens.{key} must be a duration from 1h to 3650d, found {text:?}"),
                )
                .hint("write days such as \"90d\" or a Go duration such as \"720h\"");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("90d"), Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_lifetime("12h"), Some(Duration::from_secs(12 * 3600)));
        assert_eq!(parse_lifetime("d"), None);
        assert_eq!(parse_lifetime("-1d"), None);
        assert_eq!(parse_lifetime("99999999999999999999d"), None);
    }
}
