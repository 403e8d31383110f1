//! Verified CI tokens, remembered for a short time so that a job pulling and pushing many
//! times with one token pays the signature check once. Keyed by the SHA-256 of the token
//! (never the token itself); an entry serves only while both its TTL and the token's own
//! `exp` hold, so a cached login can never outlive the CI token. Bounded: when full, the
//! oldest entry goes. Dropped with the config on reload.
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use super::super::MappedIdentity;

type Key = [u8; 32];
/// Identities by token digest, with when each was stored; and the digests oldest first.
type Entries = (HashMap<Key, (MappedIdentity, Instant)>, VecDeque<Key>);

pub struct VerifiedCache {
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<Entries>,
}

fn key_of(token: &str) -> Key {
    let mut key = [0u8; 32];
    key.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, token.as_bytes()).as_ref());
    key
}

impl VerifiedCache {
    pub fn new(ttl: Duration, max_entries: usize) -> VerifiedCache {
        VerifiedCache { ttl, max_entries, entries: Mutex::default() }
    }

    /// The identity a token was verified to, if that was less than the TTL ago and the
    /// token has not expired since.
    pub fn get(&self, token: &str) -> Option<MappedIdentity> {
        if self.max_entries == 0 {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (mapped, stored) = entries.0.get(&key_of(token))?;
        let fresh = stored.elapsed() < self.ttl && mapped.not_after > SystemTime::now();
        fresh.then(|| mapped.clone())
    }

    pub fn insert(&self, token: &str, mapped: &MappedIdentity) {
        if self.max_entries == 0 {
            return;
        }
        let key = key_of(token);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (map, order) = &mut *entries;
        while map.len() >= self.max_entries {
            let Some(oldest) = order.pop_front() else { break };
            map.remove(&oldest);
        }
        if map.insert(key, (mapped.clone(), Instant::now())).is_none() {
            order.push_back(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Labels;

    fn mapped(secs_left: u64) -> MappedIdentity {
        MappedIdentity {
            account: "gha:acme/app".into(),
            labels: Labels::new(),
            not_after: SystemTime::now() + Duration::from_secs(secs_left),
        }
    }

    #[test]
    fn entries_respect_the_token_expiry_the_ttl_and_the_bound() {
        let cache = VerifiedCache::new(Duration::from_secs(60), 2);
        cache.insert("a", &mapped(600));
        assert_eq!(cache.get("a").unwrap().account, "gha:acme/app");
        assert!(cache.get("b").is_none());
        let expired = MappedIdentity { not_after: SystemTime::now() - Duration::from_secs(1), ..mapped(0) };
        cache.insert("b", &expired);
        assert!(cache.get("b").is_none(), "an expired token is never served");
        cache.insert("c", &mapped(600));
        assert!(cache.get("a").is_none(), "the oldest entry went when full");
        let zero = VerifiedCache::new(Duration::ZERO, 10);
        zero.insert("a", &mapped(600));
        assert!(zero.get("a").is_none());
    }
}
