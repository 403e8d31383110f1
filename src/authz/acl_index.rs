//! Candidate lookup for the static ACL, so a long ACL costs a request little more than a
//! short one. Each entry is filed under the longest literal prefix one of its string
//! fields requires; a request then tries only the entries whose prefix its value starts
//! with, plus the entries no prefix constrains, still in ACL order.

use std::collections::HashMap;

/// Entry numbers by required prefix, per string field.
#[derive(Debug, Default)]
pub(super) struct PrefixIndex {
    /// Entries without any required prefix: candidates for every request.
    unindexed: Vec<usize>,
    fields: [FieldIndex; 4],
}

#[derive(Debug, Default)]
struct FieldIndex {
    by_prefix: HashMap<String, Vec<usize>>,
    /// The distinct prefix lengths in `by_prefix`, ascending.
    lengths: Vec<usize>,
}

impl PrefixIndex {
    /// `keys` yields, for each entry in order, its (field number, required prefix) or
    /// None; an empty prefix constrains nothing and counts as None.
    pub(super) fn new<'p>(keys: impl IntoIterator<Item = Option<(usize, &'p str)>>) -> PrefixIndex {
        let mut index = PrefixIndex::default();
        for (entry, key) in keys.into_iter().enumerate() {
            match key.filter(|(_, prefix)| !prefix.is_empty()) {
                Some((field, prefix)) => index.fields[field].insert(prefix, entry),
                None => index.unindexed.push(entry),
            }
        }
        index
    }

    /// Every entry that can match a request with these field values, ascending. Each
    /// entry is filed once, so there are no duplicates.
    pub(super) fn candidates(&self, values: [&str; 4]) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.unindexed.len() + 4);
        out.extend_from_slice(&self.unindexed);
        for (field, value) in self.fields.iter().zip(values) {
            field.collect(value, &mut out);
        }
        out.sort_unstable();
        out
    }
}

impl FieldIndex {
    fn insert(&mut self, prefix: &str, entry: usize) {
        self.by_prefix.entry(prefix.to_owned()).or_default().push(entry);
        if let Err(at) = self.lengths.binary_search(&prefix.len()) {
            self.lengths.insert(at, prefix.len());
        }
    }

    /// Appends the entries filed under any prefix of `value`: one lookup per distinct
    /// prefix length that fits and ends on a character boundary.
    fn collect(&self, value: &str, out: &mut Vec<usize>) {
        for &len in self.lengths.iter().take_while(|&&len| len <= value.len()) {
            if let Some(entries) = value.get(..len).and_then(|p| self.by_prefix.get(p)) {
                out.extend_from_slice(entries);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_the_unindexed_and_prefix_hits_in_order() {
        let keys = [
            Some((2, "team1/")),
            None,
            Some((0, "svc-1-")),
            Some((2, "team")),
            Some((1, "repository")),
            Some((2, "")),
            Some((2, "team1/app/x")),
            Some((2, "té")),
        ];
        let index = PrefixIndex::new(keys);
        let cases: [([&str; 4], &[usize]); 5] = [
            (["", "repository", "team1/app", ""], &[0, 1, 3, 4, 5]),
            (["svc-1-x", "repo", "bench/app", ""], &[1, 2, 5]),
            (["svc-1", "", "team1/app/x", ""], &[0, 1, 3, 5, 6]),
            (["", "", "team", ""], &[1, 3, 5]),
            (["", "", "té/x", ""], &[1, 5, 7]),
        ];
        for (values, want) in cases {
            assert_eq!(index.candidates(values), want, "{values:?}");
        }
    }

    #[test]
    fn multibyte_values_are_cut_only_at_char_boundaries() {
        // Length 2 falls inside the "é" of "aé": that prefix is skipped, not a panic.
        let index = PrefixIndex::new([Some((0, "ab"))]);
        assert_eq!(index.candidates(["aé", "", "", ""]), Vec::<usize>::new());
        assert_eq!(index.candidates(["éé", "", "", ""]), Vec::<usize>::new());
        assert_eq!(index.candidates(["ab", "", "", ""]), [0]);
    }
}
