//! Brute-force protection: failed logins counted per client address and per account in
//! the store (so every replica sees the same counts), each in a fixed window. Beyond a
//! limit, [`Lockout::check`] refuses before any password is checked, until the window
//! passes.
//!
//! - Unknown accounts are counted and refused exactly like known ones: the caller counts
//!   every 401, whatever the reason, and the check never looks at the account's backend.
//! - A success resets nothing: an attacker who also owns one working account cannot wipe
//!   its address's count.
//! - IPv6 addresses count per /64 (what one host usually gets); IPv4 per address.
//! - Account names are hashed into the key (any length or character, fixed-size key).
//! - Fail open: when the store cannot count, the login goes on, with a warning and the
//!   `registry_auth_lockout_store_errors_total` metric (state.md).
use std::net::IpAddr;
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use crate::config::LockoutConfig;
use crate::metrics;
use crate::store::read_ahead::ReadAhead;
use crate::store::{Count, SharedStore, MAX_KEY_BYTES};

/// The event of the audit line written once per lockout (when a count reaches its limit).
pub const LOCKOUT_EVENT: &str = "lockout";

/// Which counter refused or locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Ip,
    Account,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ip => "ip",
            Scope::Account => "account",
        }
    }
}

pub struct Lockout {
    config: LockoutConfig,
    store: SharedStore,
}

/// The request a lockout decision is about.
pub struct Attempt<'a> {
    pub account: &'a str,
    pub ip: Option<IpAddr>,
    /// For the audit line only.
    pub service: &'a str,
}

impl Lockout {
    pub fn new(config: &LockoutConfig, store: SharedStore) -> Lockout {
        Lockout { config: config.clone(), store }
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// `Err(retry_after)` when the address or the account is locked. Anonymous requests
    /// (no account) are never refused here: they carry no password to guess.
    pub async fn check(&self, attempt: &Attempt<'_>) -> Result<(), Duration> {
        self.check_reading(attempt, Vec::new()).await.0
    }

    /// [`Lockout::check`], reading `records` in the same store call (one Redis round trip
    /// for a login that then needs them; see [`ReadAhead`]). Nothing is read ahead when
    /// the check does not ask the store (disabled, anonymous) or the store failed; the
    /// records are then read, and fail closed, where they are needed.
    pub async fn check_reading(
        &self,
        attempt: &Attempt<'_>,
        mut records: Vec<String>,
    ) -> (Result<(), Duration>, ReadAhead) {
        if !self.config.enabled || attempt.account.is_empty() {
            return (Ok(()), ReadAhead::none());
        }
        let (ip, account) = self.keys(attempt);
        // Both values in one store call (one Redis round trip); the time left in a window
        // is asked only for a counter at its limit.
        let subjects = [
            (ip.as_deref(), self.config.max_failures_per_ip, Scope::Ip),
            (Some(account.as_str()), self.config.max_failures_per_account, Scope::Account),
        ];
        let keys: Vec<&str> = subjects.iter().filter_map(|(key, _, _)| *key).collect();
        // A key the store would refuse (an account name beyond 1 KiB) is left to its reader:
        // refused with the counters, it would stop the counting.
        records.retain(|key| key.len() <= MAX_KEY_BYTES);
        let record_keys: Vec<&str> = records.iter().map(String::as_str).collect();
        let (mut values, read_ahead) = match self.store.count_values_and_get(&keys, &record_keys).await {
            Ok((counts, values)) => (counts.into_iter(), ReadAhead::new(records, values)),
            Err(e) => {
                self.skipped("check", &e.to_string());
                return (Ok(()), ReadAhead::none());
            }
        };
        let mut retry_after = None;
        for (key, limit, scope) in subjects {
            let Some(key) = key else { continue };
            if values.next().flatten().is_none_or(|count| count < limit) {
                continue;
            }
            if let Some(count) = self.read(key).await.filter(|c| c.count >= limit) {
                metrics::global().lockout_refused(scope.as_str());
                retry_after = retry_after.max(Some(count.resets_in));
            }
        }
        let checked = match retry_after {
            Some(wait) => Err(wait.max(Duration::from_secs(1))),
            None => Ok(()),
        };
        (checked, read_ahead)
    }

    /// Counts one failed login against the address and the account; writes the audit
    /// line when a count reaches its limit.
    pub async fn record_failure(&self, attempt: &Attempt<'_>) {
        if !self.config.enabled || attempt.account.is_empty() {
            return;
        }
        let (ip, account) = self.keys(attempt);
        let by_ip = async {
            match &ip {
                Some(key) => self.increment(key).await,
                None => None,
            }
        };
        let (ip_count, account_count) = tokio::join!(by_ip, self.increment(&account));
        let subjects = [
            (ip_count, self.config.max_failures_per_ip, attempt.ip.map(|ip| Subject::Address(address_group(ip)))),
            (account_count, self.config.max_failures_per_account, Some(Subject::Account(attempt.account.to_string()))),
        ];
        for (count, limit, subject) in subjects {
            let (Some(count), Some(subject)) = (count, subject) else { continue };
            if count.count == limit {
                audit_lockout(attempt, subject.scope(), limit, self.config.window);
                self.list_locked(&subject, count.resets_in).await;
            }
        }
    }

    /// Puts a new lockout in the index operators list ([`super::lockouts`]), expiring with
    /// its counter. Only when a count reaches its limit: once per lockout, not per login.
    async fn list_locked(&self, subject: &Subject, resets_in: Duration) {
        let member = subject.member();
        if member.len() > MAX_KEY_BYTES {
            return; // An account name beyond 1 KiB stays locked, only unlisted.
        }
        if let Err(e) = self.store.index_add(LOCKED_INDEX, &member, Some(resets_in)).await {
            self.skipped("list", &e.to_string());
        }
    }

    pub fn config(&self) -> &LockoutConfig {
        &self.config
    }

    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    async fn read(&self, key: &str) -> Option<Count> {
        self.store.count(key).await.unwrap_or_else(|e| {
            self.skipped("check", &e.to_string());
            None
        })
    }

    async fn increment(&self, key: &str) -> Option<Count> {
        match self.store.increment(key, self.config.window).await {
            Ok(count) => Some(count),
            Err(e) => {
                self.skipped("count", &e.to_string());
                None
            }
        }
    }

    fn skipped(&self, operation: &'static str, error: &str) {
        metrics::global().lockout_store_error(operation);
        tracing::warn!(store = %self.store.describe(), operation, error, "brute-force counting skipped: the store did not answer");
    }

    fn keys(&self, attempt: &Attempt<'_>) -> (Option<String>, String) {
        let ip = attempt.ip.map(|ip| Subject::Address(address_group(ip)).counter_key());
        (ip, Subject::Account(attempt.account.to_string()).counter_key())
    }
}

/// The index of current lockouts: members are [`Subject::member`]s, each expiring with
/// its counter's window.
pub const LOCKED_INDEX: &str = "lock:locked";

/// What a counter counts: an account, or a client address group ([`address_group`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Account(String),
    Address(String),
}

impl Subject {
    pub fn scope(&self) -> Scope {
        match self {
            Subject::Account(_) => Scope::Account,
            Subject::Address(_) => Scope::Ip,
        }
    }

    /// The account name or the address group.
    pub fn name(&self) -> &str {
        match self {
            Subject::Account(name) | Subject::Address(name) => name,
        }
    }

    /// The store key of its failure counter (account names hashed: any length, fixed key).
    pub fn counter_key(&self) -> String {
        match self {
            // One hex pass, not a `format!` per byte: every login with an account builds this key.
            Subject::Account(name) => format!("lock:a:{}", super::issued_secret::hex(&Sha256::digest(name.as_bytes()))),
            Subject::Address(group) => format!("lock:ip:{group}"),
        }
    }

    /// Its member in [`LOCKED_INDEX`]: `account:NAME` or `ip:GROUP`.
    pub fn member(&self) -> String {
        format!("{}:{}", self.scope().as_str(), self.name())
    }

    pub fn from_member(member: &str) -> Option<Subject> {
        match member.split_once(':')? {
            ("account", name) => Some(Subject::Account(name.to_string())),
            ("ip", group) if !group.is_empty() => Some(Subject::Address(group.to_string())),
            _ => None,
        }
    }
}

/// The counted unit of an address: itself for IPv4 (and IPv4-mapped IPv6), its /64 for IPv6.
pub fn address_group(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

fn audit_lockout(attempt: &Attempt<'_>, scope: Scope, limit: u64, window: Duration) {
    metrics::global().lockout(scope.as_str());
    let ip = attempt.ip.map(|ip| ip.to_string()).unwrap_or_default();
    crate::recent_events::recorder::record(|| crate::recent_events::RecentEvent {
        reason: "too_many_failures".to_string(),
        account: attempt.account.to_string(),
        ip: ip.clone(),
        service: attempt.service.to_string(),
        detail: format!("{} locked after {limit} failed logins, for {}s", scope.as_str(), window.as_secs()),
        ..crate::recent_events::RecentEvent::new(LOCKOUT_EVENT, "locked")
    });
    tracing::warn!(
        event = LOCKOUT_EVENT,
        outcome = "locked",
        reason = "too_many_failures",
        scope = scope.as_str(),
        account = %attempt.account,
        ip = %ip,
        service = %attempt.service,
        failures = limit,
        window_secs = window.as_secs(),
        "{} locked after {limit} failed logins: further logins are refused without a password check for up to {}s",
        if scope == Scope::Ip { "client address" } else { "account" },
        window.as_secs()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_group_by_host() {
        assert_eq!(address_group("10.1.2.3".parse().unwrap()), "10.1.2.3");
        assert_eq!(address_group("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.3");
        assert_eq!(address_group("2001:db8:1:2:aaaa::1".parse().unwrap()), "2001:db8:1:2::/64");
        assert_eq!(
            address_group("2001:db8:1:2:ffff::9".parse().unwrap()),
            address_group("2001:db8:1:2::1".parse().unwrap())
        );
    }
}
