//! Current lockouts for operators: which accounts and client addresses are locked now
//! (from the index [`Lockout`] keeps of counts that reached their limit) and unlocking
//! one (the counter and the index entry go; the next login is checked normally).
//! Both the CLI (`registry-auth lockout`) and the console's operator page use this.
use std::time::Duration;

use super::audit::Event;
use super::lockout::{Lockout, Scope, Subject, LOCKED_INDEX};
use crate::store::StoreError;

/// Most lockouts listed at once.
pub const LOCKED_LISTED: usize = 1000;

/// One current lockout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Locked {
    pub subject: Subject,
    /// Failed logins counted in this window.
    pub failures: u64,
    /// Until the window ends and logins are checked again.
    pub resets_in: Duration,
}

/// The lockouts in force now, accounts first, then addresses, each sorted by name.
pub async fn list(lockout: &Lockout) -> Result<Vec<Locked>, StoreError> {
    let store = lockout.store();
    let members = store.index_members(LOCKED_INDEX, LOCKED_LISTED).await?;
    let subjects: Vec<Subject> = members.iter().filter_map(|m| Subject::from_member(m)).collect();
    let counts =
        futures_util::future::join_all(subjects.iter().map(|s| async move { store.count(&s.counter_key()).await }))
            .await;
    let mut locked = Vec::new();
    for (subject, count) in subjects.into_iter().zip(counts) {
        let Some(count) = count? else { continue };
        if count.count >= limit(lockout, subject.scope()) {
            locked.push(Locked { subject, failures: count.count, resets_in: count.resets_in });
        }
    }
    locked.sort_by(|a, b| {
        (a.subject.scope() == Scope::Ip, a.subject.name()).cmp(&(b.subject.scope() == Scope::Ip, b.subject.name()))
    });
    Ok(locked)
}

fn limit(lockout: &Lockout, scope: Scope) -> u64 {
    match scope {
        Scope::Ip => lockout.config().max_failures_per_ip,
        Scope::Account => lockout.config().max_failures_per_account,
    }
}

/// Clears `subject`'s failure count (locked or not) and its index entry; `Ok(true)` if
/// it had a count. Audited with `operator` (who unlocked) and `via` (`cli`, `console`).
pub async fn unlock(lockout: &Lockout, subject: &Subject, operator: &str, via: &str) -> Result<bool, StoreError> {
    let store = lockout.store();
    let had_count = store.reset_count(&subject.counter_key()).await?;
    let member = subject.member();
    if member.len() <= crate::store::MAX_KEY_BYTES {
        store.index_remove(LOCKED_INDEX, &member).await?;
    }
    let (account, ip) = match subject {
        Subject::Account(name) => (name.as_str(), ""),
        Subject::Address(group) => ("", group.as_str()),
    };
    let event = Event {
        event: "lockout_cleared",
        outcome: "unlocked",
        account,
        ip,
        credential: "",
        id: &member,
        operator,
        detail: via,
        ..Default::default()
    };
    super::audit::log_and_keep(&event, "lockout cleared by an operator", store).await;
    Ok(had_count)
}
