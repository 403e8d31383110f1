//! Audit events of the credentials we issue (identity tokens, robots): created, used (the
//! first use per hour of each credential, at each replica), rotated, revoked. Every event
//! carries the stable fields of token decisions (`event`, `outcome`, `account`, `ip`,
//! `service`) and `credential` (`identity_token`/`robot`), `id` (the token id as listed,
//! or the robot's name), `operator` (who ran the CLI command) and `detail`; never a secret.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a used credential stays quiet in the audit log.
pub const USE_INTERVAL: Duration = Duration::from_secs(3600);
/// Credentials remembered at once; beyond it the oldest hour is forgotten early, which
/// can only add `used` events, never lose one.
const MAX_REMEMBERED: usize = 100_000;

/// One audit event.
#[derive(Debug, Default)]
pub struct Event<'a> {
    /// `identity_token_issued`, `identity_token_used`, `identity_token_revoked`,
    /// `robot_created`, `robot_used`, `robot_rotated`, `robot_revoked`.
    pub event: &'static str,
    /// `created`, `used`, `rotated` or `revoked`.
    pub outcome: &'static str,
    pub account: &'a str,
    pub ip: &'a str,
    pub service: &'a str,
    pub credential: &'static str,
    pub id: &'a str,
    pub operator: &'a str,
    /// What else matters to this event (client id, scopes, why a token was removed).
    pub detail: &'a str,
}

/// Writes `event` as one `info` line.
pub fn log(event: &Event<'_>, message: &str) {
    tracing::info!(
        event = event.event,
        outcome = event.outcome,
        account = %event.account,
        ip = %event.ip,
        service = %event.service,
        credential = event.credential,
        id = %event.id,
        operator = %event.operator,
        detail = %event.detail,
        "{message}"
    );
}

/// When each credential's use was last audited, in this process.
#[derive(Default)]
pub struct UseAudit {
    seen: Mutex<HashMap<String, Instant>>,
}

impl UseAudit {
    /// Whether a use of `credential` is the first in [`USE_INTERVAL`] (and so is audited).
    pub fn first_this_hour(&self, credential: &str) -> bool {
        let now = Instant::now();
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.get(credential).is_some_and(|at| now.duration_since(*at) < USE_INTERVAL) {
            return false;
        }
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, at| now.duration_since(*at) < USE_INTERVAL);
            if seen.len() >= MAX_REMEMBERED {
                seen.clear();
            }
        }
        seen.insert(credential.to_string(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_use_per_hour_per_credential() {
        let uses = UseAudit::default();
        assert!(uses.first_this_hour("robot:ci"));
        assert!(!uses.first_this_hour("robot:ci"));
        assert!(uses.first_this_hour("it:0123456789abcdef"));
        if let Some(an_hour_ago) = Instant::now().checked_sub(USE_INTERVAL) {
            uses.seen.lock().unwrap().insert("robot:ci".into(), an_hour_ago);
            assert!(uses.first_this_hour("robot:ci"), "an hour later it is audited again");
        }
    }
}
