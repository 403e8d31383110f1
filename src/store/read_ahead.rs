//! Records read ahead for one login, together with its lockout counters
//! ([`super::Store::count_values_and_get`]): on Redis the counters and the record the
//! authenticator needs (a web sign-in's `t:<account>`) come in one MGET instead of two
//! round trips. Built for one request and dropped with it: what it holds is what the store
//! answered for this very login, so it is no cache (state.md keeps none of records).

/// The values read ahead, by key; a key that was not read ahead is not here at all.
#[derive(Debug, Default)]
pub struct ReadAhead {
    values: Vec<(String, Option<Vec<u8>>)>,
}

impl ReadAhead {
    /// Nothing read ahead: every reader asks the store itself.
    pub fn none() -> ReadAhead {
        ReadAhead::default()
    }

    /// `values[i]` is what the store answered for `keys[i]` (`None`: no record).
    pub fn new(keys: Vec<String>, values: Vec<Option<Vec<u8>>>) -> ReadAhead {
        debug_assert_eq!(keys.len(), values.len());
        ReadAhead { values: keys.into_iter().zip(values).collect() }
    }

    /// `Some(answer)` when `key` was read ahead (`Some(None)`: it has no record), `None`
    /// when it was not (then read it from the store).
    pub fn get(&self, key: &str) -> Option<Option<&[u8]>> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, value)| value.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_an_absent_record_from_a_key_not_read() {
        let read = ReadAhead::new(vec!["t:a".into(), "t:b".into()], vec![Some(b"{}".to_vec()), None]);
        assert_eq!(read.get("t:a"), Some(Some(&b"{}"[..])));
        assert_eq!(read.get("t:b"), Some(None));
        assert_eq!(read.get("t:c"), None);
        assert_eq!(ReadAhead::none().get("t:a"), None);
    }
}
