//! Robot (CI) credentials: named secrets with their own scopes, created from the CLI.
//!
//! Records: `robot:<name>` (digest of the secret, scopes, expiry, creator, description,
//! created), `robotu:<name>` (last use, written at most once a minute per process) and the
//! index `robots` of names.
//! A robot logs in as `robot$NAME` (or the shell-friendly `robot+NAME`); its account in
//! the ACL is `robot$NAME` with labels `kind: [robot]` and `robot: [NAME]`, and what the
//! ACL grants is further cut down to the robot's own scopes.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::audit;
use super::issued_secret::{self, Kind, RngError};
use super::records::{get_number, now_unix, secs, ttl_until, MAX_LISTED};
use super::secret_hasher::SecretHasher;
use crate::authz::pattern::glob::glob_match;
use crate::request::{Labels, Scope};
use crate::scope::parse_scopes;
use crate::store::{SharedStore, StoreError, StoreExt as _};

/// The account prefix of every robot, and its quote-free alternative for shells.
pub const ACCOUNT_PREFIX: &str = "robot$";
pub const ALT_ACCOUNT_PREFIX: &str = "robot+";
const MAX_NAME_LEN: usize = 64;
const MAX_SCOPES: usize = 32;
const MAX_DESCRIPTION_LEN: usize = 256;
const TOUCH_INTERVAL: Duration = Duration::from_secs(60);
/// The `hash` of records whose digest is the keyed hash.
pub const KEYED_HASH: &str = "hmac-sha256";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotRecord {
    pub name: String,
    pub secret_digest: String,
    /// How `secret_digest` was made: [`KEYED_HASH`], or absent for the plain SHA-256 of
    /// records written before the keyed hash (still accepted).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
    /// `type:name-glob:actions`, e.g. `repository:team/*:pull,push`.
    pub scopes: Vec<String>,
    #[serde(default)]
    pub expires: Option<i64>,
    pub created: i64,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub description: String,
    /// Set for a robot an account made for itself (a console CI credential): what it gets
    /// is that account's ACL answer at each login, narrowed by `scopes`. Robots made with
    /// the CLI have none (the ACL sees them as `robot$NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<RobotOwner>,
}

/// The account a robot acts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RobotOwner {
    pub account: String,
    /// The authenticator that knows the account (asked again at each login).
    pub backend: String,
    /// Labels at creation, used only for backends that cannot be asked again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
}

/// A robot as the CLI lists it (never the secret: only its digest is stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotInfo {
    pub record: RobotRecord,
    pub last_used: Option<i64>,
}

/// What `robot create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewRobot {
    pub name: String,
    pub scopes: Vec<String>,
    pub lifetime: Option<Duration>,
    pub description: String,
    pub created_by: String,
    pub owner: Option<RobotOwner>,
}

#[derive(Debug, thiserror::Error)]
pub enum RobotError {
    #[error("invalid robot name {0:?}: use 1 to 64 characters a-z, 0-9, '.', '_' or '-', starting and ending with a letter or digit")]
    BadName(String),
    #[error("invalid scope {0:?}: {1} (write type:name:actions, e.g. repository:team/*:pull,push)")]
    BadScope(String, String),
    #[error("a robot needs at least one --scope, and at most {MAX_SCOPES}")]
    ScopeCount,
    #[error("the description is longer than {MAX_DESCRIPTION_LEN} characters")]
    LongDescription,
    #[error("a robot named {0:?} already exists (rotate its secret with `robot rotate`, or revoke it first)")]
    Exists(String),
    #[error("no robot named {0:?}")]
    NotFound(String),
    #[error("robot {0:?} changed while it was being rotated; run the command again")]
    Changed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Rng(#[from] RngError),
}

/// One allowed scope of a robot, parsed once per login.
#[derive(Debug, Clone)]
struct RobotScope {
    resource_type: String,
    name_glob: String,
    actions: Vec<String>,
}

/// An authenticated robot: its ACL identity and the limit on what it may get.
#[derive(Debug, Clone)]
pub struct RobotLogin {
    pub account: String,
    pub labels: Labels,
    /// The account whose ACL answer this robot gets (narrowed by its scopes).
    pub owner: Option<RobotOwner>,
    scopes: Arc<[RobotScope]>,
}

impl RobotLogin {
    /// The actions of `granted` (the ACL's answer for `scope`) that the robot's own scopes
    /// also allow.
    pub fn narrow(&self, scope: &Scope, granted: &[String]) -> Vec<String> {
        let mut allowed: Vec<&str> = Vec::new();
        for own in self.scopes.iter() {
            let name_matches = glob_match(&own.name_glob, &scope.name).unwrap_or(false);
            if own.resource_type == scope.resource_type && name_matches {
                allowed.extend(own.actions.iter().map(String::as_str));
            }
        }
        if allowed.contains(&"*") {
            return granted.to_vec();
        }
        if granted.iter().any(|a| a == "*") {
            // The ACL allows everything asked; give the robot's own actions that were asked.
            let mut out: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
            out.sort();
            out.dedup();
            return out;
        }
        granted.iter().filter(|a| allowed.contains(&a.as_str())).cloned().collect()
    }
}

/// The robot name in a login's username, if it is a robot's.
pub fn robot_name(username: &str) -> Option<&str> {
    username.strip_prefix(ACCOUNT_PREFIX).or_else(|| username.strip_prefix(ALT_ACCOUNT_PREFIX))
}

pub fn valid_name(name: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    name.len() <= MAX_NAME_LEN
        && edge_ok(name.chars().next())
        && edge_ok(name.chars().last())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

fn parse_scope(text: &str) -> Result<RobotScope, RobotError> {
    let bad = |why: &str| RobotError::BadScope(shown(text), why.to_string());
    if text.contains(' ') || text.is_empty() {
        return Err(bad("one scope per --scope, without spaces"));
    }
    let parsed = parse_scopes([text], &crate::scope::ScopeLimits::default()).map_err(|e| bad(&e.to_string()))?;
    let [scope] = parsed.as_slice() else { return Err(bad("one scope per --scope")) };
    if scope.actions.iter().any(String::is_empty) || scope.name.is_empty() {
        return Err(bad("name and actions must not be empty"));
    }
    glob_match(&scope.name, "").map_err(|_| bad("the name is not a valid glob"))?;
    Ok(RobotScope {
        resource_type: scope.resource_type.clone(),
        name_glob: scope.name.clone(),
        actions: scope.actions.clone(),
    })
}

/// Client text as an error shows it: at most 80 characters (the rest elided).
fn shown(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

fn record_key(name: &str) -> String {
    format!("robot:{name}")
}

fn used_key(name: &str) -> String {
    format!("robotu:{name}")
}

const INDEX: &str = "robots";

/// The store ttl of a robot record; `Some(ZERO)` would be gone at once, so a robot whose
/// expiry passed gets the shortest ttl (and is refused at login anyway).
fn ttl_of(record: &RobotRecord) -> Option<Duration> {
    record.expires.map(|e| ttl_until(e, now_unix()).unwrap_or(Duration::from_secs(1)))
}

/// A robot record as read from the store, decoded once per distinct stored value.
struct Decoded {
    /// The stored bytes it was decoded from.
    raw: Vec<u8>,
    record: RobotRecord,
    scopes: Arc<[RobotScope]>,
}

/// Most decoded records kept (a store lists at most this many robots).
const MAX_DECODED: usize = crate::store::MAX_LIST;

pub struct Robots {
    store: SharedStore,
    hasher: Arc<SecretHasher>,
    /// When this process last wrote each robot's use (bounded by the number of robots).
    touched: Mutex<HashMap<String, Instant>>,
    /// The last decoded value of each robot's record. Every login still reads the record
    /// from the store (a revocation or rotation is seen at once, by every replica); this
    /// only spares decoding the JSON and parsing the scopes again when the stored bytes
    /// are the same as last time.
    decoded: Mutex<HashMap<String, Arc<Decoded>>>,
    /// Compared against when the robot does not exist, so both cases cost the same.
    decoy_digest: String,
}

impl Robots {
    pub fn new(store: SharedStore, hasher: Arc<SecretHasher>) -> Robots {
        let decoy_digest = issued_secret::legacy_digest(Kind::Robot, &format!("decoy-{}", rand::random::<u128>()));
        Robots { store, hasher, touched: Mutex::new(HashMap::new()), decoded: Mutex::new(HashMap::new()), decoy_digest }
    }

    /// Creates a robot; returns its record and the secret, which is shown once and never stored.
    /// Audited with `operator` (who created it) and `via` (`cli`, `console`), as are
    /// [`rotate`](Self::rotate) and [`revoke`](Self::revoke).
    pub async fn create(&self, new: &NewRobot, operator: &str, via: &str) -> Result<(RobotRecord, String), RobotError> {
        let record = self.check(new)?;
        let secret = issued_secret::generate(Kind::Robot)?;
        let secret_digest = self.hasher.digest(Kind::Robot, &secret).await?;
        let record = RobotRecord { secret_digest, hash: KEYED_HASH.to_string(), ..record };
        let ttl = ttl_of(&record);
        if !self.store.put_json_if_absent(&record_key(&record.name), &record, ttl).await? {
            return Err(RobotError::Exists(record.name));
        }
        self.store.index_add(INDEX, &record.name, ttl).await?;
        self.audit(("robot_created", "created"), &record.name, operator, via).await;
        Ok((record, secret))
    }

    fn check(&self, new: &NewRobot) -> Result<RobotRecord, RobotError> {
        if !valid_name(&new.name) {
            return Err(RobotError::BadName(shown(&new.name)));
        }
        if new.scopes.is_empty() || new.scopes.len() > MAX_SCOPES {
            return Err(RobotError::ScopeCount);
        }
        for scope in &new.scopes {
            parse_scope(scope)?;
        }
        if new.description.chars().count() > MAX_DESCRIPTION_LEN {
            return Err(RobotError::LongDescription);
        }
        let now = now_unix();
        let expires = new.lifetime.map(|d| now.saturating_add(secs(d)));
        Ok(RobotRecord {
            name: new.name.clone(),
            secret_digest: String::new(),
            hash: String::new(),
            scopes: new.scopes.clone(),
            expires,
            created: now,
            created_by: new.created_by.clone(),
            description: new.description.clone(),
            owner: new.owner.clone(),
        })
    }

    /// A new secret for an existing robot; the old one stops working at once.
    /// Compare-and-swap, so that a rotation racing a revocation never brings the robot back.
    pub async fn rotate(&self, name: &str, operator: &str, via: &str) -> Result<(RobotRecord, String), RobotError> {
        let key = record_key(name);
        let current = match valid_name(name) {
            true => self.store.get(&key).await?,
            false => None,
        };
        let Some(current) = current else { return Err(RobotError::NotFound(shown(name))) };
        let mut record: RobotRecord = serde_json::from_slice(&current).map_err(|e| StoreError::Corrupt {
            store: self.store.describe().to_string(),
            key: key.clone(),
            reason: e.to_string(),
        })?;
        let secret = issued_secret::generate(Kind::Robot)?;
        record.secret_digest = self.hasher.digest(Kind::Robot, &secret).await?;
        record.hash = KEYED_HASH.to_string();
        let new = self.store.encode(&record)?;
        if !self.store.compare_and_swap(&key, &current, &new, ttl_of(&record)).await? {
            return Err(RobotError::Changed(name.to_string()));
        }
        self.audit(("robot_rotated", "rotated"), name, operator, via).await;
        Ok((record, secret))
    }

    pub async fn revoke(&self, name: &str, operator: &str, via: &str) -> Result<(), RobotError> {
        if !valid_name(name) || !self.store.delete(&record_key(name)).await? {
            return Err(RobotError::NotFound(shown(name)));
        }
        self.store.delete(&used_key(name)).await?;
        self.store.index_remove(INDEX, name).await?;
        self.audit(("robot_revoked", "revoked"), name, operator, via).await;
        Ok(())
    }

    /// The audit line of a change to robot `name`, kept in the recent events at once.
    async fn audit(&self, (event, outcome): (&'static str, &'static str), name: &str, operator: &str, via: &str) {
        let account = format!("{ACCOUNT_PREFIX}{name}");
        let event = audit::Event {
            event,
            outcome,
            account: &account,
            credential: "robot",
            id: name,
            operator,
            detail: via,
            ..Default::default()
        };
        audit::log_and_keep(&event, "robot credential changed", &self.store).await;
    }

    pub async fn list(&self) -> Result<Vec<RobotInfo>, StoreError> {
        let mut out = Vec::new();
        for name in self.store.index_members(INDEX, MAX_LISTED).await? {
            let Some(record) = self.get(&name).await? else { continue };
            let last_used = get_number(&self.store, &used_key(&name)).await?;
            out.push(RobotInfo { record, last_used });
        }
        Ok(out)
    }

    async fn get(&self, name: &str) -> Result<Option<RobotRecord>, StoreError> {
        if !valid_name(name) {
            return Ok(None);
        }
        self.store.get_json(&record_key(name)).await
    }

    /// Checks a robot login; `None` for an unknown, expired or revoked robot or a wrong
    /// secret, alike (the caller answers 401 as for a wrong password).
    pub async fn login(&self, name: &str, secret: &str) -> Result<Option<RobotLogin>, StoreError> {
        let raw = match valid_name(name) {
            true => self.store.get(&record_key(name)).await?,
            false => None,
        };
        let decoded = match raw {
            Some(raw) => Some(self.decode(name, raw)?),
            None => None,
        };
        let record = decoded.as_ref().map(|d| &d.record);
        let presented = match record {
            Some(r) if r.hash.is_empty() => issued_secret::legacy_digest(Kind::Robot, secret),
            _ => self.hasher.digest(Kind::Robot, secret).await?,
        };
        let stored = record.map_or(self.decoy_digest.as_str(), |r| r.secret_digest.as_str());
        let matches = issued_secret::digests_equal(&presented, stored);
        let Some(decoded) = decoded.filter(|d| matches && d.record.expires.is_none_or(|e| e > now_unix())) else {
            return Ok(None);
        };
        let (record, scopes) = (&decoded.record, decoded.scopes.clone());
        self.touch(record).await?;
        let labels = Labels::from([
            ("kind".to_string(), vec!["robot".to_string()]),
            ("robot".to_string(), vec![record.name.clone()]),
        ]);
        let account = format!("{ACCOUNT_PREFIX}{}", record.name);
        Ok(Some(RobotLogin { account, labels, owner: record.owner.clone(), scopes }))
    }

    /// The record and scopes of `raw`, the stored value of robot `name`: decoded again
    /// only when it differs from the value decoded last time.
    fn decode(&self, name: &str, raw: Vec<u8>) -> Result<Arc<Decoded>, StoreError> {
        let lock = || self.decoded.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = lock().get(name).filter(|d| d.raw == raw) {
            return Ok(known.clone());
        }
        let record: RobotRecord = serde_json::from_slice(&raw).map_err(|e| StoreError::Corrupt {
            store: self.store.describe().to_string(),
            key: record_key(name),
            reason: e.to_string(),
        })?;
        let scopes = record.scopes.iter().filter_map(|s| parse_scope(s).ok()).collect();
        let decoded = Arc::new(Decoded { raw, record, scopes });
        let mut known = lock();
        if known.len() >= MAX_DECODED && !known.contains_key(name) {
            known.clear();
        }
        known.insert(name.to_string(), decoded.clone());
        Ok(decoded)
    }

    async fn touch(&self, record: &RobotRecord) -> Result<(), StoreError> {
        let now = Instant::now();
        {
            let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
            if touched.get(&record.name).is_some_and(|t| now.duration_since(*t) < TOUCH_INTERVAL) {
                return Ok(());
            }
            touched.insert(record.name.clone(), now);
        }
        self.store.put(&used_key(&record.name), now_unix().to_string().as_bytes(), ttl_of(record)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["ci", "a", "team-ci.build_1", "0"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "-ci", "ci-", "CI", "c i", "c/i", "c$i", "ci\n", &"a".repeat(65), "é"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert_eq!(robot_name("robot$ci"), Some("ci"));
        assert_eq!(robot_name("robot+ci"), Some("ci"));
        assert_eq!(robot_name("robotci"), None);
    }

    #[test]
    fn scopes_parse_and_narrow() {
        assert!(parse_scope("repository:team/*:pull,push").is_ok());
        for bad in ["", "repository:team", "repository:team/*:", "a b:c:d", "repository::pull"] {
            assert!(parse_scope(bad).is_err(), "{bad:?}");
        }
        let login = RobotLogin {
            account: "robot$ci".into(),
            labels: Labels::new(),
            owner: None,
            scopes: vec![
                parse_scope("repository:team/*:pull,push").unwrap(),
                parse_scope("repository:lib:pull").unwrap(),
            ]
            .into(),
        };
        let scope = |name: &str| Scope {
            resource_type: "repository".into(),
            class: None,
            name: name.into(),
            actions: vec!["pull".into(), "push".into()],
        };
        let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
        assert_eq!(login.narrow(&scope("team/app"), &s(&["pull", "push"])), s(&["pull", "push"]));
        assert_eq!(login.narrow(&scope("lib"), &s(&["pull", "push"])), s(&["pull"]));
        assert_eq!(login.narrow(&scope("other/app"), &s(&["pull", "push"])), s(&[]));
        assert_eq!(login.narrow(&scope("team/app"), &s(&["*"])), s(&["pull", "push"]));
        assert_eq!(login.narrow(&scope("team/app"), &s(&["pull"])), s(&["pull"]));
    }
}

#[cfg(test)]
mod store_tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::memory::MemoryStore;

    fn new_robot(name: &str, lifetime: Option<Duration>) -> NewRobot {
        NewRobot { name: name.into(), scopes: vec!["repository:team/*:pull".into()], lifetime, ..Default::default() }
    }

    fn robots() -> Robots {
        let store: SharedStore = Arc::new(MemoryStore::new());
        Robots::new(store.clone(), Arc::new(SecretHasher::in_store(store)))
    }

    #[tokio::test]
    async fn create_login_rotate_revoke() {
        let robots = robots();
        let (_, secret) = robots.create(&new_robot("ci", None), "ops@host", "cli").await.unwrap();
        assert!(matches!(robots.create(&new_robot("ci", None), "ops@host", "cli").await, Err(RobotError::Exists(_))));
        let login = robots.login("ci", &secret).await.unwrap().unwrap();
        assert_eq!(login.account, "robot$ci");
        assert_eq!(login.labels["robot"], ["ci"]);
        assert!(robots.login("ci", "wrong").await.unwrap().is_none());
        assert!(robots.login("nobody", &secret).await.unwrap().is_none());
        let (_, rotated) = robots.rotate("ci", "ops@host", "cli").await.unwrap();
        assert!(robots.login("ci", &secret).await.unwrap().is_none());
        assert!(robots.login("ci", &rotated).await.unwrap().is_some());
        let listed = robots.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].last_used.is_some());
        robots.revoke("ci", "console:admin", "console").await.unwrap();
        assert!(robots.login("ci", &rotated).await.unwrap().is_none());
        assert!(matches!(robots.rotate("ci", "ops@host", "cli").await, Err(RobotError::NotFound(_))));
        assert!(robots.list().await.unwrap().is_empty());
        // Each change audited and kept, newest first, with who made it (a refused one is not).
        let kept = crate::recent_events::recent(&robots.store, &Default::default()).await.unwrap();
        let kept: Vec<[&str; 5]> =
            kept.iter().map(|e| [&e.event, &e.account, &e.id, &e.operator, &e.detail].map(String::as_str)).collect();
        assert_eq!(
            kept,
            [
                ["robot_revoked", "robot$ci", "ci", "console:admin", "console"],
                ["robot_rotated", "robot$ci", "ci", "ops@host", "cli"],
                ["robot_created", "robot$ci", "ci", "ops@host", "cli"],
            ]
        );
    }

    #[tokio::test]
    async fn an_expired_robot_is_refused() {
        let robots = robots();
        let mut record = robots.check(&new_robot("old", None)).unwrap();
        let secret = issued_secret::generate(Kind::Robot).unwrap();
        record.secret_digest = robots.hasher.digest(Kind::Robot, &secret).await.unwrap();
        record.hash = KEYED_HASH.to_string();
        record.expires = Some(now_unix() - 1);
        robots.store.put_json(&record_key("old"), &record, None).await.unwrap();
        assert!(robots.login("old", &secret).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_robot_stored_under_plain_sha256_still_logs_in_and_rotates_to_the_keyed_hash() {
        let robots = robots();
        let mut record = robots.check(&new_robot("old", None)).unwrap();
        let secret = issued_secret::generate(Kind::Robot).unwrap();
        record.secret_digest = issued_secret::legacy_digest(Kind::Robot, &secret);
        robots.store.put_json(&record_key("old"), &record, None).await.unwrap();
        assert!(robots.login("old", &secret).await.unwrap().is_some());
        assert!(robots.login("old", "rars_wrong").await.unwrap().is_none());
        let (rotated, new_secret) = robots.rotate("old", "ops@host", "cli").await.unwrap();
        assert_eq!(rotated.hash, KEYED_HASH);
        assert!(robots.login("old", &new_secret).await.unwrap().is_some());
        assert!(robots.login("old", &secret).await.unwrap().is_none());
    }
}
