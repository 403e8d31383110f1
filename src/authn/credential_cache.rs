//! The verified-credential cache: remembers, for a short time, that a password matched a
//! stored bcrypt hash, so that a CI runner logging in for every pull pays bcrypt once.
//!
//! What it stores is only an HMAC tag, under a key drawn at random when the cache is
//! built, of (backend, account, password, stored hash): never the password, and nothing an
//! attacker who reads memory can test guesses against offline without the key. Only
//! successes are stored, so a wrong password always runs bcrypt, whether or not the account
//! has a cached login; and because the stored hash is part of the tag, a changed password
//! (in the config or in MongoDB) misses at once. The cache belongs to one loaded config and
//! is dropped with it on reload.
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ring::hmac;
use subtle::ConstantTimeEq as _;

use crate::config::CredentialCacheConfig;
use crate::secret::Secret;

/// An HMAC-SHA256 tag. Equality is constant-time: the bytes are secret-derived.
#[derive(Clone, Copy)]
pub struct Tag([u8; 32]);

impl PartialEq for Tag {
    fn eq(&self, other: &Tag) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Tag {}

impl Hash for Tag {
    /// The tag is uniformly random already; its first eight bytes are a fine hash.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.0[..8]);
    }
}

pub struct CredentialCache {
    key: hmac::Key,
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    /// Tag → when it was stored.
    by_tag: HashMap<Tag, Instant>,
    /// Tags in the order they were stored; with one TTL for all, also the order they expire.
    order: VecDeque<(Tag, Instant)>,
}

impl CredentialCache {
    /// `None` when the config turns the cache off.
    pub fn new(config: &CredentialCacheConfig) -> Option<CredentialCache> {
        if config.ttl.is_zero() || config.max_entries == 0 {
            return None;
        }
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new()).ok()?;
        Some(CredentialCache {
            key,
            ttl: config.ttl,
            max_entries: config.max_entries,
            entries: Mutex::new(Entries::default()),
        })
    }

    /// The tag of one login attempt. Each field is length-prefixed so that no two different
    /// tuples feed the HMAC the same bytes.
    pub fn tag(&self, backend: &str, account: &str, password: &Secret, stored_hash: &str) -> Tag {
        let mut ctx = hmac::Context::with_key(&self.key);
        for field in [backend, account, password.expose(), stored_hash] {
            ctx.update(&(field.len() as u64).to_be_bytes());
            ctx.update(field.as_bytes());
        }
        let mut tag = [0u8; 32];
        tag.copy_from_slice(ctx.sign().as_ref());
        Tag(tag)
    }

    /// Whether this exact login was verified less than `ttl` ago.
    pub fn contains(&self, tag: &Tag, now: Instant) -> bool {
        let entries = self.lock();
        entries.by_tag.get(tag).is_some_and(|stored| now.saturating_duration_since(*stored) < self.ttl)
    }

    /// Records a verified login; expired entries go first, then the oldest while full.
    pub fn insert(&self, tag: Tag, now: Instant) {
        let mut entries = self.lock();
        while let Some(&(oldest, stored)) = entries.order.front() {
            let expired = now.saturating_duration_since(stored) >= self.ttl;
            if !expired && entries.order.len() < self.max_entries {
                break;
            }
            entries.order.pop_front();
            // A tag stored again later has a newer entry in `order`; keep it.
            if entries.by_tag.get(&oldest) == Some(&stored) {
                entries.by_tag.remove(&oldest);
            }
        }
        entries.by_tag.insert(tag, now);
        entries.order.push_back((tag, now));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().by_tag.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        match self.entries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(ttl_secs: u64, max_entries: usize) -> CredentialCache {
        CredentialCache::new(&CredentialCacheConfig { ttl: Duration::from_secs(ttl_secs), max_entries }).unwrap()
    }

    fn pw(s: &str) -> Secret {
        Secret::new(s)
    }

    #[test]
    fn every_field_is_part_of_the_tag_and_fields_cannot_run_together() {
        let c = cache(60, 10);
        let base = c.tag("static", "alice", &pw("secret"), "$2y$05$hash");
        assert!(base == c.tag("static", "alice", &pw("secret"), "$2y$05$hash"));
        let others = [
            c.tag("mongo_auth", "alice", &pw("secret"), "$2y$05$hash"),
            c.tag("static", "alicE", &pw("secret"), "$2y$05$hash"),
            c.tag("static", "alice", &pw("secreT"), "$2y$05$hash"),
            c.tag("static", "alice", &pw("secret"), "$2y$05$hasH"),
            // Moving bytes between fields must change the tag.
            c.tag("static", "alices", &pw("ecret"), "$2y$05$hash"),
        ];
        assert!(others.iter().all(|t| *t != base));
    }

    #[test]
    fn a_new_cache_has_a_new_key() {
        let (a, b) = (cache(60, 10), cache(60, 10));
        assert!(a.tag("static", "alice", &pw("secret"), "h") != b.tag("static", "alice", &pw("secret"), "h"));
    }

    #[test]
    fn entries_expire_after_the_ttl() {
        let c = cache(60, 10);
        let t0 = Instant::now();
        let tag = c.tag("static", "alice", &pw("secret"), "h");
        assert!(!c.contains(&tag, t0));
        c.insert(tag, t0);
        assert!(c.contains(&tag, t0 + Duration::from_secs(59)));
        assert!(!c.contains(&tag, t0 + Duration::from_secs(60)));
        // Expired entries are dropped by the next insert.
        c.insert(c.tag("static", "bob", &pw("x"), "h"), t0 + Duration::from_secs(61));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn a_full_cache_evicts_the_oldest_entry() {
        let c = cache(60, 3);
        let t0 = Instant::now();
        let tags: Vec<Tag> = (0..5).map(|i| c.tag("static", &format!("u{i}"), &pw("p"), "h")).collect();
        for (i, tag) in tags.iter().enumerate() {
            c.insert(*tag, t0 + Duration::from_secs(i as u64));
        }
        assert_eq!(c.len(), 3);
        let now = t0 + Duration::from_secs(5);
        let present: Vec<bool> = tags.iter().map(|t| c.contains(t, now)).collect();
        assert_eq!(present, [false, false, true, true, true]);
    }

    #[test]
    fn storing_a_tag_again_keeps_its_newer_time() {
        let c = cache(60, 2);
        let t0 = Instant::now();
        let a = c.tag("static", "a", &pw("p"), "h");
        // Two concurrent first logins both verify and both store.
        c.insert(a, t0);
        c.insert(a, t0 + Duration::from_secs(1));
        // Evicting the stale queue entry must not drop the fresh one.
        c.insert(c.tag("static", "b", &pw("p"), "h"), t0 + Duration::from_secs(2));
        assert!(c.contains(&a, t0 + Duration::from_secs(3)));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn ttl_zero_turns_the_cache_off() {
        assert!(CredentialCache::new(&CredentialCacheConfig { ttl: Duration::ZERO, max_entries: 10 }).is_none());
    }
}
