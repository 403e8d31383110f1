//! The last [`CAP`] audit events kept in the store, newest first, for the console's
//! operators: token decisions (issued, denied), identity events (identity tokens and robots
//! created, used, rotated, revoked) and lockouts (locked, unlocked). The log line stays the
//! full record; this list is a bounded window onto it that every replica shares.
//!
//! The request path never waits for the store: [`recorder::record`] keeps the event in an
//! in-process ring of the newest [`CAP`] that one background task writes every 250 ms; an
//! event that falls out of the ring before a write is counted
//! (`registry_auth_recent_events_total{result="superseded"}`): the list would have trimmed it.
//! The CLI, which has no request path, writes with [`append`] directly.
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::store::{SharedStore, StoreError, StoreExt as _, MAX_PUSH_BYTES};

pub mod recorder;

/// The store key of the list.
pub const LIST_KEY: &str = "audit:recent";
/// How many events the list keeps.
pub const CAP: usize = 1000;
/// Longest kept text of one field, in bytes; a scope list gets [`MAX_LIST_TEXT`]. Longer
/// (client-supplied) text is cut, marked with `…`.
const MAX_TEXT: usize = 256;
const MAX_LIST_TEXT: usize = 2048;
/// Repository names kept per event, for the repository filter.
const MAX_REPOSITORIES: usize = 16;

/// One audit event as kept in the list. Every text is stored as received (bounded) and
/// escaped where it is shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecentEvent {
    /// Milliseconds since the Unix epoch.
    pub at: i64,
    /// `token_decision`, `identity_token_issued`, `robot_revoked`, `lockout`, ...
    pub event: String,
    /// `issued`, `denied`, `created`, `used`, `rotated`, `revoked`, `locked`, `unlocked`.
    pub outcome: String,
    /// Why it was denied or locked (`wrong_password`, `too_many_failures`...).
    pub reason: String,
    pub account: String,
    pub ip: String,
    pub service: String,
    /// `password`, `identity_token`, `robot`, ...
    pub credential: String,
    /// The scopes asked for and what was granted, as on the log line.
    pub requested: String,
    pub granted: String,
    /// The ACL entries that decided, as on the log line.
    pub rules: String,
    /// The repositories the event is about (from the requested scopes).
    pub repositories: Vec<String>,
    /// The credential's id (token id, robot name).
    pub id: String,
    /// Who acted (CLI user@host, console account) for operator actions.
    pub operator: String,
    pub detail: String,
}

impl RecentEvent {
    /// An event of now.
    pub fn new(event: &str, outcome: &str) -> RecentEvent {
        RecentEvent { at: now_millis(), event: event.to_string(), outcome: outcome.to_string(), ..Default::default() }
    }

    /// The same event with every field within its bound.
    pub fn bounded(mut self) -> RecentEvent {
        for field in [
            &mut self.event,
            &mut self.outcome,
            &mut self.reason,
            &mut self.account,
            &mut self.ip,
            &mut self.service,
            &mut self.credential,
            &mut self.id,
            &mut self.operator,
            &mut self.detail,
        ] {
            cut(field, MAX_TEXT);
        }
        for field in [&mut self.requested, &mut self.granted, &mut self.rules] {
            cut(field, MAX_LIST_TEXT);
        }
        self.repositories.truncate(MAX_REPOSITORIES);
        for name in &mut self.repositories {
            cut(name, MAX_TEXT);
        }
        self
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, marking the cut.
fn cut(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
}

fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Which events an operator asks for; empty conditions match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Exactly this account.
    pub account: Option<String>,
    /// Exactly this outcome (`issued`, `denied`, `revoked`...).
    pub outcome: Option<String>,
    /// Events about exactly this repository.
    pub repository: Option<String>,
    /// At most this many (newest first); 0 or above [`CAP`] means [`CAP`].
    pub limit: usize,
}

impl Filter {
    pub fn matches(&self, event: &RecentEvent) -> bool {
        let holds = |wanted: &Option<String>, value: &str| wanted.as_deref().is_none_or(|w| w == value);
        holds(&self.account, &event.account)
            && holds(&self.outcome, &event.outcome)
            && self.repository.as_deref().is_none_or(|r| event.repositories.iter().any(|name| name == r))
    }

    fn limit(&self) -> usize {
        if self.limit == 0 {
            CAP
        } else {
            self.limit.min(CAP)
        }
    }
}

/// The newest events that match `filter`, newest first. Unreadable entries (written by a
/// newer version, or damaged) are skipped, not fatal.
pub async fn recent(store: &SharedStore, filter: &Filter) -> Result<Vec<RecentEvent>, StoreError> {
    let items = store.list_recent(LIST_KEY, CAP).await?;
    let mut events: Vec<RecentEvent> =
        items.iter().filter_map(|item| serde_json::from_slice::<RecentEvent>(item).ok()).collect();
    // Pushed in batches (a server's every 250 ms, the CLI's at once, other replicas' in
    // between), so list order is not time order: newest first by time, ties in list order.
    events.sort_by_key(|e| std::cmp::Reverse(e.at));
    Ok(events.into_iter().filter(|e| filter.matches(e)).take(filter.limit()).collect())
}

/// Writes `events` (oldest first) to the list, in as few pushes as the push size allows.
pub async fn append(store: &SharedStore, events: &[RecentEvent]) -> Result<(), StoreError> {
    let mut batch: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0;
    for event in events {
        let item = store.encode(event)?;
        if bytes + item.len() > MAX_PUSH_BYTES && !batch.is_empty() {
            store.list_push(LIST_KEY, &batch, CAP).await?;
            batch.clear();
            bytes = 0;
        }
        bytes += item.len();
        batch.push(item);
    }
    if !batch.is_empty() {
        store.list_push(LIST_KEY, &batch, CAP).await?;
    }
    Ok(())
}

/// The repository names among scopes written as `repository:NAME:ACTIONS` (or with a
/// class, `repository(plugin):NAME:ACTIONS`).
pub fn repositories<'a>(scopes: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (resource_type, name) in scopes {
        if resource_type == "repository" && !names.iter().any(|n| n == name) && names.len() < MAX_REPOSITORIES {
            names.push(name.to_string());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_on_a_character_boundary() {
        let event = RecentEvent { account: "é".repeat(300), requested: "x".repeat(5000), ..Default::default() };
        let bounded = event.bounded();
        assert!(bounded.account.len() <= MAX_TEXT && bounded.account.ends_with('…'), "{}", bounded.account);
        assert!(bounded.requested.len() <= MAX_LIST_TEXT);
        let short = RecentEvent { account: "alice".into(), ..Default::default() }.bounded();
        assert_eq!(short.account, "alice");
    }

    #[test]
    fn filters_match_exactly() {
        let event = RecentEvent {
            account: "alice".into(),
            outcome: "denied".into(),
            repositories: vec!["team/app".into()],
            ..Default::default()
        };
        let with = |account: Option<&str>, outcome: Option<&str>, repository: Option<&str>| Filter {
            account: account.map(String::from),
            outcome: outcome.map(String::from),
            repository: repository.map(String::from),
            limit: 0,
        };
        assert!(with(None, None, None).matches(&event));
        assert!(with(Some("alice"), Some("denied"), Some("team/app")).matches(&event));
        assert!(!with(Some("alic"), None, None).matches(&event));
        assert!(!with(None, Some("issued"), None).matches(&event));
        assert!(!with(None, None, Some("team")).matches(&event));
    }
}
