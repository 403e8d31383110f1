//! Records decoded once per distinct stored value: a feature that reads the same record at
//! every login (an identity token, a web sign-in's `t:<account>`) keeps the last value it
//! decoded for each key with the bytes it came from, and decodes again only when the
//! store answers different bytes. Every login still reads the store, so a revocation or a
//! change is seen at once; this spares only the JSON decoding and its allocations.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most keys kept; beyond it the map starts over.
const MAX_KEYS: usize = 10_000;

/// The stored bytes a value was decoded from, and the value.
type Entry<T> = (Vec<u8>, Arc<T>);

pub struct DecodedRecords<T> {
    map: Mutex<HashMap<String, Entry<T>>>,
}

impl<T> Default for DecodedRecords<T> {
    fn default() -> Self {
        DecodedRecords { map: Mutex::new(HashMap::new()) }
    }
}

impl<T> DecodedRecords<T> {
    /// The value of `raw`, the bytes just read for `key`: the one decoded last time if the
    /// bytes are the same, else `decode(raw)` (kept for next time when it succeeds).
    pub fn get<E>(&self, key: &str, raw: Vec<u8>, decode: impl FnOnce(&[u8]) -> Result<T, E>) -> Result<Arc<T>, E> {
        let lock = || self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, value)) = lock().get(key).filter(|(known, _)| *known == raw) {
            return Ok(value.clone());
        }
        let value = Arc::new(decode(&raw)?);
        let mut map = lock();
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            map.clear();
        }
        map.insert(key.to_string(), (raw, value.clone()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_again_only_when_the_bytes_change() {
        let records = DecodedRecords::<String>::default();
        let mut calls = 0;
        let mut decode = |raw: &[u8]| -> Result<String, ()> {
            calls += 1;
            Ok(String::from_utf8(raw.to_vec()).unwrap())
        };
        assert_eq!(*records.get("k", b"a".to_vec(), &mut decode).unwrap(), "a");
        assert_eq!(*records.get("k", b"a".to_vec(), &mut decode).unwrap(), "a");
        assert_eq!(*records.get("k", b"b".to_vec(), &mut decode).unwrap(), "b");
        assert!(records.get("k", b"c".to_vec(), |_| Err::<String, _>("bad")).is_err());
        assert_eq!(*records.get("k", b"b".to_vec(), &mut decode).unwrap(), "b");
        assert_eq!(calls, 2);
    }
}
