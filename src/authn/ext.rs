//! `ext_auth`: an external program decides (parity.md §5.6). Stdin is `"<account> <password>"`
//! (one space, no newline); exit 0 allows (optional JSON `{"labels": {k: [v]}}` on stdout),
//! 1 denies, 2 is "no match", anything else (or a timeout) fails the request closed.
use async_trait::async_trait;
use serde::Deserialize;

use super::{Authenticator, AuthnError, AuthnOutcome};
use crate::config::ext::ExtConfig;
use crate::extprog::Runner;
use crate::request::Labels;
use crate::secret::Secret;

/// docker_auth's `ExtAuthResponse`; other keys are ignored, as Go's decoder does.
#[derive(Debug, Deserialize)]
struct Response {
    #[serde(default)]
    labels: Option<Labels>,
}

pub struct ExtAuth {
    runner: Runner,
}

impl ExtAuth {
    pub fn new(config: &ExtConfig) -> ExtAuth {
        ExtAuth { runner: Runner::new("ext_auth", config) }
    }
}

/// `lookup` stays `Unsupported`: the program's protocol takes a password, so identity
/// tokens of ext_auth accounts use the labels the program gave at login.
#[async_trait]
impl Authenticator for ExtAuth {
    fn name(&self) -> &'static str {
        "ext_auth"
    }

    async fn authenticate(&self, account: &str, password: &Secret) -> Result<AuthnOutcome, AuthnError> {
        let input = format!("{account} {}", password.expose());
        let finished = self.runner.run(input.as_bytes()).await.map_err(|e| AuthnError(e.to_string()))?;
        match finished.code {
            Some(0) => parse_labels(&finished.stdout).map(AuthnOutcome::Allow),
            Some(1) => Ok(AuthnOutcome::Deny),
            Some(2) => Ok(AuthnOutcome::NoMatch),
            Some(code) => Err(AuthnError(format!("bad return code from command: {code}"))),
            None => Err(AuthnError("bad return code from command: killed by a signal".into())),
        }
    }
}

/// Empty (or whitespace-only) stdout means no labels; anything else must be a JSON object.
fn parse_labels(stdout: &[u8]) -> Result<Labels, AuthnError> {
    if stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok(Labels::new());
    }
    let response: Option<Response> = serde_json::from_slice(stdout)
        .map_err(|e| AuthnError(format!("invalid JSON from command on exit 0 (want {{\"labels\":{{...}}}}): {e}")))?;
    Ok(response.and_then(|r| r.labels).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_read_from_a_json_object() {
        let labels = parse_labels(br#"{"labels": {"group": ["a", "b"]}, "other": 1}"#).unwrap();
        assert_eq!(labels["group"], ["a", "b"]);
        assert!(parse_labels(b"").unwrap().is_empty());
        assert!(parse_labels(b" \n").unwrap().is_empty());
        assert!(parse_labels(b"null").unwrap().is_empty());
        assert!(parse_labels(b"{}").unwrap().is_empty());
        assert!(parse_labels(b"ok").is_err());
        assert!(parse_labels(br#"{"labels": {"group": "a"}}"#).is_err());
        assert!(parse_labels(b"[1]").is_err());
    }
}
