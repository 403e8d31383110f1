//! The distribution grammar for repository names, tags and digests: a name taken from a
//! page's URL goes into a registry URL only when it is one of these.
use std::sync::LazyLock;

use regex::Regex;

static REPOSITORY: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // a constant pattern, covered by the tests below
    Regex::new(r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$").unwrap()
});
static TAG: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)]
    Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").unwrap()
});
static DIGEST: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)]
    Regex::new(r"^sha256:[a-f0-9]{64}$|^sha512:[a-f0-9]{128}$").unwrap()
});

/// A repository name as distribution accepts it (at most 255 bytes).
pub fn is_repository(name: &str) -> bool {
    name.len() <= 255 && REPOSITORY.is_match(name)
}

pub fn is_tag(tag: &str) -> bool {
    TAG.is_match(tag)
}

pub fn is_digest(digest: &str) -> bool {
    DIGEST.is_match(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        for ok in ["app", "team/app", "a.b_c__d--e/f0", "library/ubuntu"] {
            assert!(is_repository(ok), "{ok}");
        }
        for bad in ["", "Team/app", "a//b", "../x", "a/", "/a", "a?n=1", "<script>", "a b", &"a".repeat(256)] {
            assert!(!is_repository(bad), "{bad}");
        }
        assert!(is_tag("v1.2-rc_3") && is_tag("latest") && !is_tag(".x") && !is_tag("a/b") && !is_tag(""));
        assert!(is_digest(&format!("sha256:{}", "a".repeat(64))) && !is_digest("sha256:../"));
    }
}
