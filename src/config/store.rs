//! Our `store:` section (docker_auth has none): where registry-auth keeps its own records.
//!
//! ```yaml
//! store:
//!   path: data                 # embedded engine: a directory, created mode 0700
//! # or one Redis server:
//! store:
//!   redis:
//!     addr: "redis:6379"
//!     db: 0
//!     username: ""             # ACL user (Redis 6+), optional
//!     password_file: /run/secrets/redis
//!     tls: true                # rustls; ca_file adds a private CA (and implies tls)
//!     ca_file: /etc/ssl/redis-ca.pem
//!     key_prefix: ""           # docker_auth's token DB uses none
//!     timeout: 2s
//! # or a Redis Cluster: `redis_cluster:` with `addrs: [...]` and the same keys but db.
//! # with any engine, optionally:
//!   hash_key_file: /run/secrets/registry-auth-hash-key   # 64+ hex digits: openssl rand -hex 32
//! ```
//! `hash_key_file` is the key of the hash under which issued secrets are stored
//! (`identity::secret_hasher`); without it the embedded engine creates `<path>/hash.key`
//! and Redis keeps the key in a record of its own.
//! Without the section the memory engine is used (counts in this process only).
//! Files it names are read here, at load and on every reload.
use std::path::PathBuf;
use std::time::Duration;

use super::diag::Diagnostics;
use super::reader::{parse_go_duration, Section};
use crate::identity::secret_hasher::HashKey;
use crate::secret::Secret;

/// Which engine, and its settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StoreConfig {
    /// No `store:` section: this process's memory.
    #[default]
    Memory,
    Embedded(EmbeddedConfig),
    Redis(RedisConfig),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedConfig {
    /// The directory holding `store.redb` and `admin.sock`.
    pub path: PathBuf,
    /// `store.hash_key_file`, read; `None`: `<path>/hash.key`, created on first use.
    pub hash_key: Option<HashKey>,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `host:port` of the server, or of the cluster's seed nodes.
    pub addrs: Vec<String>,
    pub cluster: bool,
    /// Database number (single server only; a cluster has only 0).
    pub db: i64,
    pub username: Option<String>,
    /// The trimmed contents of `password_file`.
    pub password: Option<Secret>,
    pub tls: bool,
    /// PEM text of `ca_file`; `None` means the system roots.
    pub ca_pem: Option<Vec<u8>>,
    pub key_prefix: String,
    /// Limit for connecting and for each command.
    pub timeout: Duration,
    /// `store.hash_key_file`, read; `None`: the key lives in Redis (record `hash-key`).
    pub hash_key: Option<HashKey>,
    pub line: usize,
}

impl RedisConfig {
    /// `redis 10.0.0.5:6379` or `redis-cluster a:6379,b:6379`, for logs.
    pub fn describe(&self) -> String {
        let kind = if self.cluster { "redis-cluster" } else { "redis" };
        let db = if self.db != 0 { format!(" db {}", self.db) } else { String::new() };
        format!("{kind} {}{db}", self.addrs.join(","))
    }
}

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
const ENGINES: &[&str] = &["path", "redis", "redis_cluster"];
const KNOWN: &[&str] = &["path", "redis", "redis_cluster", "hash_key_file"];
const REDIS_KEYS: &[&str] = &["addr", "db", "username", "password_file", "tls", "ca_file", "key_prefix", "timeout"];
const CLUSTER_KEYS: &[&str] = &["addrs", "username", "password_file", "tls", "ca_file", "key_prefix", "timeout"];

pub fn read(root: &mut Section<'_>, diags: &mut Diagnostics) -> StoreConfig {
    let Some(node) = root.node("store") else { return StoreConfig::Memory };
    let Some(mut s) = Section::of(node, "store", diags) else { return StoreConfig::Memory };
    let present: Vec<&str> = ENGINES.iter().copied().filter(|k| s.has_value(k)).collect();
    let hash_key = read_hash_key(&mut s, diags);
    let mut config = match present.as_slice() {
        ["path"] => read_embedded(&mut s, diags),
        ["redis"] => read_redis(&mut s, "redis", diags),
        ["redis_cluster"] => read_redis(&mut s, "redis_cluster", diags),
        [] => {
            diags.error("store", s.line, "store: names no engine").hint(
                "set store.path (a directory, e.g. data) for the embedded store, or store.redis / store.redis_cluster",
            );
            None
        }
        several => {
            diags
                .error("store", s.line, format!("store: sets {}; only one engine can be used", several.join(" and ")))
                .hint("keep store.path (one server) or store.redis / store.redis_cluster (replicas), not both");
            None
        }
    };
    s.warn_unknown(KNOWN, diags);
    match &mut config {
        Some(StoreConfig::Embedded(e)) => e.hash_key = hash_key,
        Some(StoreConfig::Redis(r)) => r.hash_key = hash_key,
        _ => {}
    }
    config.unwrap_or_default()
}

/// `store.hash_key_file`: the file must exist and hold at least 256 bits as hex.
fn read_hash_key(s: &mut Section<'_>, diags: &mut Diagnostics) -> Option<HashKey> {
    let line = s.node("hash_key_file").map_or(s.line, |n| n.line);
    let bytes = read_file(s, "hash_key_file", diags)?;
    let file = s.string("hash_key_file", diags).unwrap_or_default();
    let key = std::str::from_utf8(&bytes).ok().and_then(HashKey::from_hex);
    if key.is_none() {
        diags
            .error("store.hash_key_file", line, format!("{file} does not hold a hex key of at least 256 bits"))
            .hint(format!("create one with: openssl rand -hex 32 > {file} && chmod 600 {file}"));
    }
    key
}

fn read_embedded(s: &mut Section<'_>, diags: &mut Diagnostics) -> Option<StoreConfig> {
    let line = s.node("path").map_or(s.line, |n| n.line);
    let path = s.string("path", diags)?;
    if path.is_empty() {
        diags.error("store.path", line, "store.path is empty").hint("name a directory, e.g. path: data");
        return None;
    }
    Some(StoreConfig::Embedded(EmbeddedConfig { path: PathBuf::from(path), hash_key: None, line }))
}

fn read_redis(parent: &mut Section<'_>, key: &str, diags: &mut Diagnostics) -> Option<StoreConfig> {
    let node = parent.node(key)?;
    let mut s = Section::of(node, &parent.child_path(key), diags)?;
    let cluster = key == "redis_cluster";
    let errors_before = diags.errors.len();
    let addrs = read_addrs(&mut s, cluster, diags);
    let db = if cluster { 0 } else { read_db(&mut s, diags) };
    let username = s.string("username", diags).filter(|u| !u.is_empty());
    let password = read_file(&mut s, "password_file", diags)
        .map(|bytes| Secret::new(String::from_utf8_lossy(&bytes).trim().to_string()));
    let ca_pem = read_file(&mut s, "ca_file", diags);
    let tls = s.bool("tls", diags).unwrap_or(false) || ca_pem.is_some();
    let key_prefix = s.string("key_prefix", diags).unwrap_or_default();
    let timeout = read_timeout(&mut s, diags);
    s.warn_unknown(if cluster { CLUSTER_KEYS } else { REDIS_KEYS }, diags);
    if diags.errors.len() > errors_before {
        return None;
    }
    Some(StoreConfig::Redis(RedisConfig {
        addrs,
        cluster,
        db,
        username,
        password,
        tls,
        ca_pem,
        key_prefix,
        timeout,
        hash_key: None,
        line: s.line,
    }))
}

fn read_addrs(s: &mut Section<'_>, cluster: bool, diags: &mut Diagnostics) -> Vec<String> {
    let (key, list) = if cluster {
        ("addrs", s.string_list("addrs", diags).unwrap_or_default())
    } else {
        ("addr", s.string("addr", diags).into_iter().collect())
    };
    let line = s.node(key).map_or(s.line, |n| n.line);
    let path = s.child_path(key);
    if list.is_empty() || list.iter().any(|a| a.is_empty()) {
        diags.error(&path, line, format!("{path} is required")).hint(if cluster {
            "list the cluster's nodes, e.g. addrs: [\"redis-1:6379\", \"redis-2:6379\"]"
        } else {
            "set the server's host:port, e.g. addr: \"redis:6379\""
        });
    }
    for addr in &list {
        let valid = addr.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !addr.is_empty() && !valid {
            diags
                .error(&path, line, format!("{addr:?} is not host:port"))
                .hint("write the address as host:port, e.g. redis:6379 or [::1]:6379");
        }
    }
    list
}

fn read_db(s: &mut Section<'_>, diags: &mut Diagnostics) -> i64 {
    let line = s.node("db").map_or(s.line, |n| n.line);
    let db = s.int("db", diags).unwrap_or(0);
    if !(0..=1_000_000).contains(&db) {
        diags
            .error(s.child_path("db"), line, format!("{} must be a database number, got {db}", s.child_path("db")))
            .hint("use 0 (the default) up to the server's `databases` setting minus one");
    }
    db
}

fn read_file(s: &mut Section<'_>, key: &str, diags: &mut Diagnostics) -> Option<Vec<u8>> {
    let line = s.node(key).map_or(s.line, |n| n.line);
    let file = s.string(key, diags).filter(|f| !f.is_empty())?;
    match std::fs::read(&file) {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            diags
                .error(s.child_path(key), line, format!("cannot read {key} {file}: {e}"))
                .hint("check the path and that the file is readable by this user");
            None
        }
    }
}

fn read_timeout(s: &mut Section<'_>, diags: &mut Diagnostics) -> Duration {
    let line = s.node("timeout").map_or(s.line, |n| n.line);
    let Some(text) = s.string("timeout", diags) else { return DEFAULT_TIMEOUT };
    match parse_go_duration(&text) {
        Some(t) if t >= Duration::from_millis(10) && t <= Duration::from_secs(60) => t,
        _ => {
            diags
                .error(
                    s.child_path("timeout"),
                    line,
                    format!("{} must be a duration from 10ms to 60s, found {text:?}", s.child_path("timeout")),
                )
                .hint("write a Go duration such as \"2s\" or \"500ms\"");
            DEFAULT_TIMEOUT
        }
    }
}
