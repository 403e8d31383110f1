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

/// Writes `event` as one `info` line and queues it for the store's recent events.
pub fn log(event: &Event<'_>, message: &str) {
    log_line(event, message);
    crate::recent_events::recorder::record(|| event.recent());
}

/// For operator actions (CLI, console), off the request path: writes the line and keeps
/// the event in the store's recent events before returning, so the action shows at once
/// (a store failure is logged; the action itself is done).
pub async fn log_and_keep(event: &Event<'_>, message: &str, store: &crate::store::SharedStore) {
    log_line(event, message);
    if let Err(e) = crate::recent_events::append(store, &[event.recent().bounded()]).await {
        crate::metrics::global().recent_events("dropped_store_error", 1);
        tracing::warn!(store = %store.describe(), "recent audit event not kept (the log has it): {e}");
    }
}

fn log_line(event: &Event<'_>, message: &str) {
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

impl Event<'_> {
    /// The event as kept in the store's recent-events list.
    pub fn recent(&self) -> crate::recent_events::RecentEvent {
        crate::recent_events::RecentEvent {
            account: self.account.to_string(),
            ip: self.ip.to_string(),
            service: self.service.to_string(),
            credential: self.credential.to_string(),
            id: self.id.to_string(),
            operator: self.operator.to_string(),
            detail: self.detail.to_string(),
            ..crate::recent_events::RecentEvent::new(self.event, self.outcome)
        }
    }
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
