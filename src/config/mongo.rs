//! The `mongo_auth:` and `acl_mongo:` sections: `dial_info` (mgo's DialInfo keys plus
//! `password_file` and `enable_tls`), `collection`, and for the ACL `cache_ttl`.
//! Unlike docker_auth, every address in `addrs` is used and `source` is honoured.
use std::time::Duration;

use super::diag::Diagnostics;
use super::reader::Section;
use crate::secret::Secret;

const DIAL_KEYS: &[&str] = &[
    "addrs",
    "timeout",
    "database",
    "username",
    "password",
    "password_file",
    "source",
    "mechanism",
    "direct",
    "enable_tls",
    "failfast",
    "service",
];
/// The mechanisms the driver speaks (mgo's names).
const MECHANISMS: &[&str] = &["SCRAM-SHA-1", "SCRAM-SHA-256", "PLAIN", "MONGODB-X509"];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach the server. Two sections with equal `DialInfo` share one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialInfo {
    pub addrs: Vec<String>,
    /// Connect and server-selection timeout: how long a request waits during an outage.
    pub timeout: Duration,
    pub database: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// authSource; docker_auth hard-wires `admin`, which stays the default.
    pub source: String,
    pub mechanism: Option<String>,
    pub direct: bool,
    pub enable_tls: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MongoAuthConfig {
    pub dial: DialInfo,
    pub collection: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclMongoConfig {
    pub dial: DialInfo,
    pub collection: String,
    pub cache_ttl: Duration,
}

/// Reads `mongo_auth:`. `None` when absent or invalid.
pub fn read_auth(root: &mut Section<'_>, diags: &mut Diagnostics) -> Option<MongoAuthConfig> {
    let mut s = Section::of(root.node("mongo_auth")?, "mongo_auth", diags)?;
    let dial = read_dial(&mut s, diags);
    let collection = read_collection(&mut s, diags);
    s.warn_unknown(&["dial_info", "collection"], diags);
    Some(MongoAuthConfig { dial: dial?, collection: collection? })
}

/// Reads `acl_mongo:`. `None` when absent or invalid.
pub fn read_acl(root: &mut Section<'_>, diags: &mut Diagnostics) -> Option<AclMongoConfig> {
    let mut s = Section::of(root.node("acl_mongo")?, "acl_mongo", diags)?;
    let dial = read_dial(&mut s, diags);
    let collection = read_collection(&mut s, diags);
    let cache_ttl = read_cache_ttl(&mut s, diags);
    s.warn_unknown(&["dial_info", "collection", "cache_ttl"], diags);
    Some(AclMongoConfig { dial: dial?, collection: collection?, cache_ttl: cache_ttl? })
}

fn read_collection(s: &mut Section<'_>, diags: &mut Diagnostics) -> Option<String> {
    let collection = s.string("collection", diags).unwrap_or_default();
    if collection.is_empty() {
        let path = s.child_path("collection");
        diags
            .error(&path, s.line, format!("{path} is required"))
            .hint("name the MongoDB collection, e.g. collection: users");
        return None;
    }
    Some(collection)
}

/// docker_auth crashes on a missing or zero TTL (acl_mongo and acl_xorm); here it is a
/// config error.
pub(super) fn read_cache_ttl(s: &mut Section<'_>, diags: &mut Diagnostics) -> Option<Duration> {
    let nanos = s.duration_nanos("cache_ttl", diags);
    match nanos {
        Some(n) if n > 0 => Some(Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))),
        _ => {
            if nanos.is_some() || !s.has_value("cache_ttl") {
                let path = s.child_path("cache_ttl");
                diags
                    .error(&path, s.line, format!("{path} is required (e.g. \"1m\" for 1 minute)"))
                    .hint("set how often the ACL is re-read, e.g. cache_ttl: 1m");
            }
            None
        }
    }
}

fn read_dial(parent: &mut Section<'_>, diags: &mut Diagnostics) -> Option<DialInfo> {
    let path = parent.child_path("dial_info");
    let Some(node) = parent.node("dial_info") else {
        diags
            .error(&path, parent.line, format!("At least one element in {path}.addrs is required"))
            .hint("add dial_info: with addrs: [\"mongo:27017\"] and database:");
        return None;
    };
    let mut d = Section::of(node, &path, diags)?;
    let addrs = read_addrs(&mut d, diags);
    let database = read_database(&mut d, diags);
    let timeout = read_timeout(&mut d, diags);
    let username = d.string("username", diags).filter(|u| !u.is_empty());
    let password = read_password(&mut d, diags);
    let source = d.string("source", diags).filter(|s| !s.is_empty()).unwrap_or_else(|| "admin".to_string());
    let mechanism = read_mechanism(&mut d, diags);
    let direct = d.bool("direct", diags).unwrap_or(false);
    let enable_tls = d.bool("enable_tls", diags).unwrap_or(false);
    note_ignored(&mut d, diags);
    d.warn_unknown(DIAL_KEYS, diags);
    Some(DialInfo {
        addrs: addrs?,
        timeout: timeout?,
        database: database?,
        username,
        password: password?,
        source,
        mechanism: mechanism?,
        direct,
        enable_tls,
    })
}

fn read_addrs(d: &mut Section<'_>, diags: &mut Diagnostics) -> Option<Vec<String>> {
    let addrs: Vec<String> = d.string_list("addrs", diags).unwrap_or_default();
    let addrs: Vec<String> = addrs.into_iter().filter(|a| !a.is_empty()).collect();
    if addrs.is_empty() {
        let path = d.child_path("addrs");
        diags
            .error(&path, d.line, format!("At least one element in {path} is required"))
            .hint("list the servers, e.g. addrs: [\"mongo1:27017\", \"mongo2:27017\"]");
        return None;
    }
    Some(addrs)
}

fn read_database(d: &mut Section<'_>, diags: &mut Diagnostics) -> Option<String> {
    let database = d.string("database", diags).unwrap_or_default();
    if database.is_empty() {
        let path = d.child_path("database");
        diags.error(&path, d.line, format!("{path} is required")).hint("name the database, e.g. database: docker_auth");
        return None;
    }
    Some(database)
}

fn read_timeout(d: &mut Section<'_>, diags: &mut Diagnostics) -> Option<Duration> {
    match d.duration_nanos("timeout", diags) {
        None if d.has_value("timeout") => None,
        // 0 means "no timeout" in mgo; we never wait forever, so it gets the default.
        None | Some(0) => Some(DEFAULT_TIMEOUT),
        Some(n) if n > 0 => Some(Duration::from_nanos(u64::try_from(n).unwrap_or(u64::MAX))),
        Some(_) => {
            diags.error(d.child_path("timeout"), d.line, "timeout must not be negative").hint("set timeout: \"10s\"");
            None
        }
    }
}

/// `password_file` (trimmed, read now) wins over `password`, as in docker_auth.
fn read_password(d: &mut Section<'_>, diags: &mut Diagnostics) -> Option<Option<Secret>> {
    let inline = d.string("password", diags).filter(|p| !p.is_empty()).map(Secret::new);
    let Some(file) = d.string("password_file", diags).filter(|f| !f.is_empty()) else {
        return Some(inline);
    };
    match std::fs::read_to_string(&file) {
        Ok(text) => Some(Some(Secret::new(text.trim()))),
        Err(e) => {
            diags
                .error(d.child_path("password_file"), d.line, format!("could not read {file}: {e}"))
                .hint("check the path and that the file is readable by this user");
            None
        }
    }
}

fn read_mechanism(d: &mut Section<'_>, diags: &mut Diagnostics) -> Option<Option<String>> {
    let Some(mechanism) = d.string("mechanism", diags).filter(|m| !m.is_empty()) else {
        return Some(None);
    };
    if MECHANISMS.contains(&mechanism.as_str()) {
        return Some(Some(mechanism));
    }
    diags
        .error(d.child_path("mechanism"), d.line, format!("unsupported mechanism {mechanism:?}"))
        .hint(format!("use one of {}, or leave it out to negotiate", MECHANISMS.join(", ")));
    None
}

/// mgo-only knobs: accepted so docker_auth configs load, but they change nothing here.
fn note_ignored(d: &mut Section<'_>, diags: &mut Diagnostics) {
    for key in ["failfast", "service"] {
        if let Some(node) = d.node(key) {
            diags
                .warn(d.child_path(key), node.line, format!("{key} has no effect in registry-auth"))
                .hint("remove it; the official driver has no equivalent");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse;

    fn read_text(text: &str) -> (Option<AclMongoConfig>, Diagnostics) {
        let root = parse(text).unwrap();
        let mut diags = Diagnostics::default();
        let mut top = Section::of(&root, "", &mut diags).unwrap();
        (read_acl(&mut top, &mut diags), diags)
    }

    #[test]
    fn all_keys_are_read_with_defaults() {
        let (acl, diags) = read_text(
            "acl_mongo:\n  dial_info:\n    addrs: [a:1, b:2]\n    database: d\n    username: u\n    password: p\n  collection: acl\n  cache_ttl: 1m\n",
        );
        assert!(diags.errors.is_empty(), "{diags:?}");
        let acl = acl.unwrap();
        assert_eq!(acl.dial.addrs, ["a:1", "b:2"]);
        assert_eq!((acl.dial.source.as_str(), acl.dial.timeout), ("admin", DEFAULT_TIMEOUT));
        assert_eq!(acl.dial.password.as_ref().map(Secret::expose), Some("p"));
        assert_eq!(acl.cache_ttl, Duration::from_secs(60));
    }

    #[test]
    fn docker_auth_messages_for_missing_keys_and_ttl() {
        let (acl, diags) = read_text("acl_mongo:\n  dial_info:\n    addrs: []\n  cache_ttl: 0\n");
        assert!(acl.is_none());
        let messages: Vec<&str> = diags.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "At least one element in acl_mongo.dial_info.addrs is required",
                "acl_mongo.dial_info.database is required",
                "acl_mongo.collection is required",
                "acl_mongo.cache_ttl is required (e.g. \"1m\" for 1 minute)",
            ]
        );
        let (_, diags) = read_text("acl_mongo:\n  dial_info: {addrs: [a], database: d}\n  collection: c\n");
        assert_eq!(diags.errors[0].path, "acl_mongo.cache_ttl");
    }
}
