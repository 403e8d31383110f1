//! docker_auth's web sign-in sections `google_auth` and `oidc_auth`, key for key
//! (reference.yml, parity.md §3.2), with their token DB subsections mapped onto our store
//! (state.md): `redis_token_db` must be the Redis of `store:` (docker_auth's `t:<account>`
//! records then keep working), `level_token_db` names docker_auth's LevelDB directory,
//! imported once into the store or used directly (`mode:`, ours; see [`LevelMode`]),
//! `gcs_token_db` is refused.
use std::path::{Path, PathBuf};
use std::time::Duration;

use url::Url;

use super::diag::Diagnostics;
use super::forge::{self, ForgeConfig, ForgeKind};
use super::reader::Section;
use super::store::StoreConfig;
use crate::authn::oidc::openid::GOOGLE_ISSUER;
use crate::authn::oidc::upstream::allowed_url;
use crate::secret::Secret;

const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const TOKEN_DB_KEYS: &[&str] = &["level_token_db", "redis_token_db", "gcs_token_db"];
const GOOGLE_KEYS: &[&str] = &[
    "domain",
    "client_id",
    "client_secret",
    "client_secret_file",
    "level_token_db",
    "redis_token_db",
    "gcs_token_db",
    "http_timeout",
    "issuer",
    "redirect_url",
    "registry_url",
];
const OIDC_KEYS: &[&str] = &[
    "issuer",
    "redirect_url",
    "client_id",
    "client_secret",
    "client_secret_file",
    "level_token_db",
    "redis_token_db",
    "gcs_token_db",
    "http_timeout",
    "registry_url",
    "user_claim",
    "labels_claims",
    "scopes",
];

/// Where docker_auth kept the section's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenDb {
    /// No subsection: our store.
    Store,
    /// `redis_token_db`: accepted when it is the Redis of `store:`.
    Redis { addrs: Vec<String>, line: usize },
    /// `level_token_db`: docker_auth's LevelDB directory (`authn::oidc::level_db`).
    Level { path: PathBuf, mode: Option<LevelMode>, line: usize },
}

/// What `level_token_db.mode` (ours; docker_auth ignores the key) does with the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelMode {
    /// Copy its records into `store:` once, at the first start that sees it; from then on
    /// the store holds the sign-ins (one engine for every record, replicas through Redis,
    /// docker_auth's directory left untouched for a rollback). The default with a `store:`.
    Import,
    /// Read and write the directory itself, as docker_auth does (one server only; sign-ins
    /// made here stay visible to docker_auth). The default without a `store:` section,
    /// where importing into the memory engine would lose every sign-in at restart.
    Direct,
}

impl LevelMode {
    /// `mode:` unset: import into a persistent store, else use the directory.
    pub fn resolve(mode: Option<LevelMode>, store: &StoreConfig) -> LevelMode {
        mode.unwrap_or(if *store == StoreConfig::Memory { LevelMode::Direct } else { LevelMode::Import })
    }
}

/// What `google_auth` and `oidc_auth` share.
#[derive(Debug, Clone)]
pub struct OpenIdSection {
    pub section: &'static str,
    pub line: usize,
    pub issuer: Url,
    pub client_id: String,
    pub client_secret: Secret,
    pub http_timeout: Duration,
    pub registry_url: String,
    /// `None`: derived from the request (google_auth without our `redirect_url`).
    pub redirect_url: Option<Url>,
    pub token_db: TokenDb,
    /// `token_hash_cost` of the token DB (bcrypt cost of generated passwords).
    pub token_hash_cost: Option<u32>,
    pub scopes: Vec<String>,
    pub user_claim: String,
    pub labels_claims: Vec<String>,
    /// `google_auth.domain` (`Some("")` never: empty means none).
    pub domain: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct WebSignInConfig {
    pub google: Option<OpenIdSection>,
    /// `github_auth` (`config::forge`).
    pub github: Option<ForgeConfig>,
    pub oidc: Option<OpenIdSection>,
    /// `gitlab_auth` (`config::forge`).
    pub gitlab: Option<ForgeConfig>,
}

impl WebSignInConfig {
    pub fn is_empty(&self) -> bool {
        self.google.is_none() && self.github.is_none() && self.oidc.is_none() && self.gitlab.is_none()
    }

    /// Every `level_token_db`: `(provider, section, path, mode, line)`, in chain order.
    pub fn level_dbs(&self) -> Vec<(&'static str, &'static str, &Path, Option<LevelMode>, usize)> {
        self.token_dbs()
            .into_iter()
            .filter_map(|(section, db)| match db {
                TokenDb::Level { path, mode, line } => {
                    Some((section.trim_end_matches("_auth"), section, path.as_path(), *mode, *line))
                }
                _ => None,
            })
            .collect()
    }

    /// Every configured section's name, line and token DB.
    fn token_dbs(&self) -> Vec<(&'static str, &TokenDb)> {
        let openid = [&self.google, &self.oidc].into_iter().flatten().map(|s| (s.section, &s.token_db));
        let forges = [&self.github, &self.gitlab].into_iter().flatten().map(|f| (f.kind.section(), &f.token_db));
        openid.chain(forges).collect()
    }
}

/// In docker_auth's order: google, github, oidc, gitlab.
pub fn read(root: &mut Section<'_>, diags: &mut Diagnostics) -> WebSignInConfig {
    WebSignInConfig {
        google: read_section(root, "google_auth", diags),
        github: forge::read(root, ForgeKind::GitHub, diags),
        oidc: read_section(root, "oidc_auth", diags),
        gitlab: forge::read(root, ForgeKind::GitLab, diags),
    }
}

fn read_section(root: &mut Section<'_>, section: &'static str, diags: &mut Diagnostics) -> Option<OpenIdSection> {
    let node = root.node(section)?;
    let mut s = Section::of(node, section, diags)?;
    let google = section == "google_auth";
    let errors_before = diags.errors.len();
    let client_id = required_string(&mut s, "client_id", diags);
    let client_secret = read_secret(&mut s, diags);
    let http_timeout = read_timeout(&mut s, diags);
    let registry_url = s.string("registry_url", diags).unwrap_or_default();
    let issuer = match (google, s.node("issuer").map(|n| n.line)) {
        (true, None) => Url::parse(GOOGLE_ISSUER).ok(),
        (_, line) => {
            let line = line.unwrap_or(s.line);
            let text = if google {
                s.string("issuer", diags).unwrap_or_default()
            } else {
                required_string(&mut s, "issuer", diags)
            };
            checked_url(&s.child_path("issuer"), line, &text, diags)
        }
    };
    let redirect_line = s.node("redirect_url").map_or(s.line, |n| n.line);
    let redirect_url = match s.string("redirect_url", diags) {
        Some(text) => {
            let url = checked_url(&s.child_path("redirect_url"), redirect_line, &text, diags);
            let suffix = format!("/{}", section);
            if url.as_ref().is_some_and(|u| !u.path().ends_with(&suffix)) {
                diags
                    .error(
                        s.child_path("redirect_url"),
                        redirect_line,
                        format!("{section}.redirect_url must end with {suffix}"),
                    )
                    .hint(format!(
                        "register and configure this server's {suffix} route, e.g. https://auth.example.com{suffix}"
                    ));
            }
            url
        }
        None if !google => {
            diags
                .error(s.child_path("redirect_url"), s.line, format!("{section}.redirect_url is required"))
                .hint("set it to this server's /oidc_auth URL, as registered at the provider");
            None
        }
        None => None,
    };
    let (token_db, token_hash_cost) = read_token_db(&mut s, diags);
    let (scopes, user_claim, labels_claims, domain) = if google {
        let domain = s.string("domain", diags).filter(|d| !d.is_empty());
        (vec!["openid".to_string(), "email".to_string()], "email".to_string(), Vec::new(), domain)
    } else {
        let scopes = s.string_list("scopes", diags).unwrap_or_else(|| vec!["openid".to_string(), "email".to_string()]);
        if !scopes.iter().any(|s| s == "openid") {
            let line = s.node("scopes").map_or(s.line, |n| n.line);
            diags
                .error(s.child_path("scopes"), line, "oidc_auth.scopes must include openid")
                .hint("list openid first, e.g. scopes: [openid, email, groups]");
        }
        let user_claim = s.string("user_claim", diags).filter(|c| !c.is_empty()).unwrap_or_else(|| "email".to_string());
        let labels_claims = s.string_list("labels_claims", diags).unwrap_or_default();
        if let Some(node) = s.node("label_claims") {
            diags
                .warn(
                    s.child_path("label_claims"),
                    node.line,
                    "label_claims is ignored (docker_auth ignores it too: reference.yml misspells the key)",
                )
                .hint("rename it to labels_claims to get labels from these claims");
        }
        (scopes, user_claim, labels_claims, None)
    };
    s.warn_unknown(if google { GOOGLE_KEYS } else { OIDC_KEYS }, diags);
    if diags.errors.len() > errors_before {
        return None;
    }
    Some(OpenIdSection {
        section,
        line: s.line,
        issuer: issuer?,
        client_id,
        client_secret: client_secret?,
        http_timeout,
        registry_url,
        redirect_url,
        token_db: token_db?,
        token_hash_cost,
        scopes,
        user_claim,
        labels_claims,
        domain,
    })
}

fn required_string(s: &mut Section<'_>, key: &str, diags: &mut Diagnostics) -> String {
    let line = s.node(key).map_or(s.line, |n| n.line);
    let value = s.string(key, diags).unwrap_or_default();
    if value.is_empty() {
        diags
            .error(s.child_path(key), line, format!("{} is required", s.child_path(key)))
            .hint(format!("set {key}: as registered at the identity provider"));
    }
    value
}

/// https, or http to a loopback address (development and tests).
fn checked_url(path: &str, line: usize, text: &str, diags: &mut Diagnostics) -> Option<Url> {
    if text.is_empty() {
        return None;
    }
    match Url::parse(text) {
        Ok(url) if allowed_url(&url) => Some(url),
        Ok(_) => {
            diags.error(path, line, format!("{path} must be an https URL, found {text:?}")).hint(
                "use https://...; plain http is accepted only for loopback addresses (127.0.0.1, ::1, localhost)",
            );
            None
        }
        Err(e) => {
            diags
                .error(path, line, format!("{path} is not a URL ({e}): {text:?}"))
                .hint("write a full URL such as https://accounts.example.com");
            None
        }
    }
}

fn read_secret(s: &mut Section<'_>, diags: &mut Diagnostics) -> Option<Secret> {
    let inline = s.string("client_secret", diags).filter(|v| !v.is_empty());
    let file_line = s.node("client_secret_file").map_or(s.line, |n| n.line);
    let file = s.string("client_secret_file", diags).filter(|v| !v.is_empty());
    match (inline, file) {
        (Some(secret), _) => Some(Secret::new(secret)),
        (None, Some(path)) => match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => Some(Secret::new(text.trim().to_string())),
            Ok(_) => {
                diags
                    .error(s.child_path("client_secret_file"), file_line, format!("{path} is empty"))
                    .hint("put the client secret (one line) into that file");
                None
            }
            Err(e) => {
                diags
                    .error(s.child_path("client_secret_file"), file_line, format!("cannot read {path}: {e}"))
                    .hint("check the path and that the file is readable by this user");
                None
            }
        },
        (None, None) => {
            diags
                .error(
                    s.child_path("client_secret"),
                    s.line,
                    format!("{}: client_secret or client_secret_file is required", s.path),
                )
                .hint("set client_secret_file: to a file holding the secret the provider gave this client");
            None
        }
    }
}

fn read_timeout(s: &mut Section<'_>, diags: &mut Diagnostics) -> Duration {
    match s.duration_nanos("http_timeout", diags) {
        Some(nanos) if nanos > 0 => Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)),
        Some(_) => {
            let line = s.node("http_timeout").map_or(s.line, |n| n.line);
            diags
                .error(s.child_path("http_timeout"), line, format!("{} must be positive", s.child_path("http_timeout")))
                .hint("write a Go duration such as \"10s\"");
            DEFAULT_HTTP_TIMEOUT
        }
        None => DEFAULT_HTTP_TIMEOUT,
    }
}

pub(super) fn read_token_db(s: &mut Section<'_>, diags: &mut Diagnostics) -> (Option<TokenDb>, Option<u32>) {
    let present: Vec<&str> = TOKEN_DB_KEYS.iter().copied().filter(|k| s.has_value(k)).collect();
    if present.len() > 1 {
        diags
            .error(
                s.path.clone(),
                s.line,
                format!("{}: sets {}; only one token DB can be used", s.path, present.join(" and ")),
            )
            .hint("keep one token DB subsection (registry-auth keeps the records in its store: section)");
        return (None, None);
    }
    let Some(&key) = present.first() else { return (Some(TokenDb::Store), None) };
    let Some(node) = s.node(key) else { return (Some(TokenDb::Store), None) };
    let path = s.child_path(key);
    let Some(mut sub) = Section::of(node, &path, diags) else { return (None, None) };
    let cost = read_cost(&mut sub, diags);
    let db = match key {
        "gcs_token_db" => {
            sub.entries().for_each(drop);
            diags
                .error(&path, node.line, format!("{path}: Google Cloud Storage token DBs are not available in registry-auth"))
                .hint("remove gcs_token_db: sign-in records are kept in the store: section (embedded or Redis); users sign in once more");
            None
        }
        "redis_token_db" => {
            let mut addrs = Vec::new();
            for (opts, field) in [("redis_options", "addr"), ("redis_cluster_options", "addrs")] {
                if let Some(n) = sub.node(opts) {
                    if let Some(mut o) = Section::of(n, &sub.child_path(opts), diags) {
                        if field == "addr" {
                            addrs.extend(o.string("addr", diags));
                        } else {
                            addrs.extend(o.string_list("addrs", diags).unwrap_or_default());
                        }
                        o.entries().for_each(drop);
                    }
                }
            }
            sub.warn_unknown(&["redis_options", "redis_cluster_options", "token_hash_cost"], diags);
            Some(TokenDb::Redis { addrs, line: node.line })
        }
        _ => read_level(&mut sub, &path, node.line, diags),
    };
    (db, cost)
}

/// `level_token_db: {path, token_hash_cost, mode}`. A directory that is not there yet is
/// fine (a fresh docker_auth install; direct mode creates it, as docker_auth does); one
/// that exists without a LevelDB in it is a mistake in the path.
fn read_level(sub: &mut Section<'_>, path: &str, section_line: usize, diags: &mut Diagnostics) -> Option<TokenDb> {
    let line = sub.node("path").map_or(section_line, |n| n.line);
    let dir = sub.string("path", diags).unwrap_or_default();
    let mode_line = sub.node("mode").map_or(section_line, |n| n.line);
    let mode = match sub.string("mode", diags).as_deref() {
        None => Some(None),
        Some("import") => Some(Some(LevelMode::Import)),
        Some("direct") => Some(Some(LevelMode::Direct)),
        Some(other) => {
            diags
                .error(format!("{path}.mode"), mode_line, format!("{path}.mode must be import or direct, found {other:?}"))
                .hint("import: copy the records into store: once (the default with a store:); direct: keep using the directory, as docker_auth does");
            None
        }
    };
    sub.warn_unknown(&["path", "token_hash_cost", "mode"], diags);
    if dir.is_empty() {
        diags
            .error(format!("{path}.path"), line, format!("{path}.path is required"))
            .hint("name docker_auth's token DB directory, or drop level_token_db: records then live in the store");
        return None;
    }
    let dir = PathBuf::from(dir);
    let empty = std::fs::read_dir(&dir).map(|mut d| d.next().is_none()).unwrap_or(true);
    if dir.exists() && !empty && !dir.join("CURRENT").is_file() {
        diags
            .error(format!("{path}.path"), line, format!("{} is not a LevelDB directory (it has no CURRENT file)", dir.display()))
            .hint("point path: at the directory docker_auth's level_token_db.path named (it holds CURRENT, MANIFEST-* and *.ldb files)");
        return None;
    }
    Some(TokenDb::Level { path: dir, mode: mode?, line })
}

fn read_cost(sub: &mut Section<'_>, diags: &mut Diagnostics) -> Option<u32> {
    let line = sub.node("token_hash_cost").map_or(sub.line, |n| n.line);
    let cost = sub.int("token_hash_cost", diags)?;
    match u32::try_from(cost) {
        Ok(c) if (4..=31).contains(&c) => Some(c),
        _ => {
            diags
                .error(
                    sub.child_path("token_hash_cost"),
                    line,
                    format!("token_hash_cost must be a bcrypt cost from 4 to 31, got {cost}"),
                )
                .hint("leave it out for 10, docker_auth's default");
            None
        }
    }
}

/// `redis_token_db` works when it is the store's Redis: the same `t:<account>` keys.
pub fn check_token_dbs(web: &WebSignInConfig, store: &StoreConfig, diags: &mut Diagnostics) {
    for (section, token_db) in web.token_dbs() {
        if let TokenDb::Level { mode: Some(LevelMode::Import), line, .. } = token_db {
            if *store == StoreConfig::Memory {
                let path = format!("{section}.level_token_db.mode");
                diags
                    .warn(
                        &path,
                        *line,
                        format!(
                            "{path}: import into the memory store (no store: section) forgets every sign-in at restart"
                        ),
                    )
                    .hint("add store: {path: data} (or redis:) to keep the imported records, or use mode: direct");
            }
        }
        let TokenDb::Redis { addrs, line } = token_db else { continue };
        let path = format!("{section}.redis_token_db");
        match store {
            StoreConfig::Redis(redis)
                if addrs.iter().all(|a| redis.addrs.contains(a)) && redis.key_prefix.is_empty() => {}
            StoreConfig::Redis(_) => {
                diags
                    .error(&path, *line, format!("{path} names another Redis ({}) than store: (or store: has a key_prefix)", addrs.join(", ")))
                    .hint("point store.redis at the Redis of redis_token_db without a key_prefix, so docker_auth's t:<account> records keep working");
            }
            _ => {
                diags
                    .error(&path, *line, format!("{path}: registry-auth keeps sign-in records in its store, and store: is not this Redis"))
                    .hint(format!(
                        "add store: {{redis: {{addr: \"{}\"}}}} (redis_cluster: {{addrs: [...]}} for a cluster) so docker_auth's records there keep working, or drop redis_token_db",
                        addrs.join(", ")
                    ));
            }
        }
    }
}
