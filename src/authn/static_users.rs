//! Static users from the `users:` section: bcrypt hashes and labels (parity.md §5.2).
use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use super::password::PasswordVerifier;
use super::{Authenticator, AuthnError, AuthnOutcome, LookupOutcome};
use crate::config::UserEntry;
use crate::request::Labels;
use crate::secret::Secret;

struct StoredUser {
    /// Normalised bcrypt hash; `None` = any password is accepted (docker_auth behaviour).
    hash: Option<Arc<str>>,
    labels: Labels,
}

/// The `users:` map.
pub struct StaticUsers {
    users: HashMap<String, StoredUser>,
    /// Whether an unknown account ends the chain here: then it pays for a decoy check at
    /// the highest configured cost, so that it costs what a wrong password costs (no
    /// account enumeration by timing).
    last_in_chain: bool,
    verifier: Arc<PasswordVerifier>,
}

impl StaticUsers {
    /// `last_in_chain`: whether an unknown account ends the chain here (then it pays for a
    /// decoy verification at the users' highest cost).
    pub fn new<'a>(
        entries: impl IntoIterator<Item = (&'a String, &'a UserEntry)>,
        last_in_chain: bool,
        verifier: Arc<PasswordVerifier>,
    ) -> Result<Self, AuthnError> {
        let users: HashMap<String, StoredUser> = entries
            .into_iter()
            .map(|(name, entry)| {
                let hash = entry.password.as_deref().map(|h| Arc::from(normalise_prefix(h)));
                (name.clone(), StoredUser { hash, labels: entry.labels.clone() })
            })
            .collect();
        verifier.prepare_decoy(users.values().filter_map(|u| u.hash.as_deref()))?;
        Ok(StaticUsers { users, last_in_chain, verifier })
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Go's bcrypt accepts `$2$` (no minor version); the bcrypt crate wants a minor letter.
/// The algorithm is the same, so `$2$` is read as `$2a$`.
pub(crate) fn normalise_prefix(hash: &str) -> String {
    match hash.strip_prefix("$2$") {
        Some(rest) => format!("$2a${rest}"),
        None => hash.to_string(),
    }
}

/// The cost of a well-formed bcrypt hash (`$2[abxy]?$NN$` + 53 characters), else `None`.
pub fn parse_bcrypt_cost(hash: &str) -> Option<u32> {
    let normalised = normalise_prefix(hash);
    let mut parts = normalised.strip_prefix('$')?.split('$');
    let version = parts.next()?;
    let cost = parts.next()?;
    let rest = parts.next()?;
    let valid_version = matches!(version, "2a" | "2b" | "2x" | "2y");
    let cost: u32 = if cost.len() == 2 { cost.parse().ok()? } else { return None };
    (valid_version && (4..=31).contains(&cost) && rest.len() == 53 && parts.next().is_none()).then_some(cost)
}

#[async_trait]
impl Authenticator for StaticUsers {
    fn name(&self) -> &'static str {
        "static"
    }

    async fn authenticate(&self, account: &str, password: &Secret) -> Result<AuthnOutcome, AuthnError> {
        let Some(user) = self.users.get(account) else {
            if self.last_in_chain {
                self.verifier.decoy(password).await?;
            }
            return Ok(AuthnOutcome::NoMatch);
        };
        let Some(hash) = &user.hash else {
            return Ok(AuthnOutcome::Allow(user.labels.clone()));
        };
        if self.verifier.verify(self.name(), account, password, hash.clone()).await? {
            Ok(AuthnOutcome::Allow(user.labels.clone()))
        } else {
            Ok(AuthnOutcome::Deny)
        }
    }

    fn can_lookup(&self) -> bool {
        true
    }

    /// The `users:` entry as loaded now (a reload that removed the user ends its tokens).
    async fn lookup(&self, account: &str) -> Result<LookupOutcome, AuthnError> {
        Ok(self.users.get(account).map_or(LookupOutcome::NotFound, |u| LookupOutcome::Found(u.labels.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::bcrypt_pool::PoolLimits;

    const BADMIN: &str = "$2y$05$LO.vzwpWC5LZGqThvEfznu8qhb5SGqvBSWY1J3yZ4AxtMRZ3kN5jC";

    fn users(list: &[(&str, Option<&str>)]) -> StaticUsers {
        let entries: Vec<(String, UserEntry)> = list
            .iter()
            .map(|(n, h)| {
                (n.to_string(), UserEntry { password: h.map(str::to_string), labels: Labels::new(), password_line: 0 })
            })
            .collect();
        let verifier = Arc::new(PasswordVerifier::new(&Default::default(), PoolLimits::defaults()));
        StaticUsers::new(entries.iter().map(|(n, e)| (n, e)), true, verifier).unwrap()
    }

    async fn check(u: &StaticUsers, account: &str, password: &str) -> AuthnOutcome {
        u.authenticate(account, &Secret::new(password)).await.unwrap()
    }

    #[tokio::test]
    async fn bcrypt_prefixes_and_outcomes() {
        let body = &BADMIN[3..];
        for prefix in ["$2a", "$2b", "$2x", "$2y", "$2"] {
            let hash = format!("{prefix}{body}");
            let u = users(&[("admin", Some(&hash))]);
            assert_eq!(check(&u, "admin", "badmin").await, AuthnOutcome::Allow(Labels::new()), "{prefix}");
            assert_eq!(check(&u, "admin", "wrong").await, AuthnOutcome::Deny, "{prefix}");
        }
    }

    #[tokio::test]
    async fn unknown_user_is_no_match_and_missing_password_accepts_anything() {
        let u = users(&[("admin", Some(BADMIN)), ("ci", None), ("", None)]);
        assert_eq!(check(&u, "nobody", "x").await, AuthnOutcome::NoMatch);
        assert_eq!(check(&u, "ci", "").await, AuthnOutcome::Allow(Labels::new()));
        assert_eq!(check(&u, "ci", "anything").await, AuthnOutcome::Allow(Labels::new()));
        assert_eq!(check(&u, "", "").await, AuthnOutcome::Allow(Labels::new()));
    }

    #[tokio::test]
    async fn plain_text_and_empty_hashes_never_match() {
        let u = users(&[("p", Some("badmin")), ("e", Some(""))]);
        assert_eq!(check(&u, "p", "badmin").await, AuthnOutcome::Deny);
        assert_eq!(check(&u, "e", "").await, AuthnOutcome::Deny);
    }

    #[tokio::test]
    async fn only_the_first_72_bytes_count() {
        let long = "x".repeat(72);
        let hash = bcrypt::hash(&long, 4).unwrap();
        let u = users(&[("l", Some(&hash))]);
        assert_eq!(check(&u, "l", &format!("{long}tail")).await, AuthnOutcome::Allow(Labels::new()));
        assert_eq!(check(&u, "l", &long[..71]).await, AuthnOutcome::Deny);
    }

    #[test]
    fn bcrypt_cost_parsing() {
        assert_eq!(parse_bcrypt_cost(BADMIN), Some(5));
        assert_eq!(parse_bcrypt_cost(&format!("$2{}", &BADMIN[3..])), Some(5));
        assert_eq!(parse_bcrypt_cost("$2y$5$x"), None);
        assert_eq!(parse_bcrypt_cost("$2y$03$LO.vzwpWC5LZGqThvEfznu8qhb5SGqvBSWY1J3yZ4AxtMRZ3kN5jC"), None);
        assert_eq!(parse_bcrypt_cost("plain"), None);
    }
}
