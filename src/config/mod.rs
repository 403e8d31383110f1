//! Loads docker_auth's `auth_config.yml`, key for key: read, parse, validate.
//! Every problem is collected with its YAML path, line and a fix, in docker_auth's check
//! order (parity.md §3.3). Building the running state from a `Config` is `crate::app`.
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::authz::acl::Acl;

pub mod acl;
pub mod cache;
pub mod casbin;
pub mod ci_token;
pub mod console;
pub mod console_operators;
pub mod diag;
pub mod ext;
pub mod forge;
pub mod identity;
pub mod ldap;
pub mod letsencrypt;
pub mod limits;
pub mod lockout;
pub mod mongo;
pub mod reader;
pub mod server;
pub mod store;
pub mod token;
pub mod users;
pub mod web_signin;
pub mod xorm;
pub mod yaml;

pub use acl::AclSource;
pub use cache::CredentialCacheConfig;
pub use diag::{ConfigError, Diagnostic, Diagnostics};
pub use ext::ExtConfig;
pub use forge::{ForgeConfig, ForgeKind};
pub use ldap::LdapConfig;
pub use limits::{LimitsConfig, ScopeLimits};
pub use lockout::LockoutConfig;
pub use mongo::{AclMongoConfig, DialInfo, MongoAuthConfig};
pub use server::{Net, ServerConfig, TlsVersion};
pub use store::StoreConfig;
pub use token::TokenConfig;
pub use users::UserEntry;
pub use xorm::{AclXormConfig, XormAuthConfig};

use reader::Section;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub token: TokenConfig,
    /// `None` when the section is absent ("not configured").
    pub users: Option<BTreeMap<String, UserEntry>>,
    /// `ldap_auth:`, `None` when absent.
    pub ldap: Option<LdapConfig>,
    /// Our addition: `ci_token_auth:` (CI jobs' OIDC tokens), first in the chain.
    pub ci_token: Option<ci_token::CiTokenConfig>,
    pub acl: Option<AclSource>,
    /// The same ACL, compiled once at load.
    pub compiled_acl: Option<Arc<Acl>>,
    pub backends: Backends,
    /// Our addition: the verified-credential cache of the password backends.
    pub credential_cache: CredentialCacheConfig,
    /// Our addition: lifetimes of identity tokens (used when a store is configured).
    pub identity_tokens: crate::identity::IdentityTokenConfig,
    /// Our addition: where our own records live (`Memory` without a `store:` section).
    pub store: StoreConfig,
    /// Our addition: brute-force protection (on by default).
    pub lockout: LockoutConfig,
    /// Our addition: caps on what one request and one client may ask for.
    pub limits: LimitsConfig,
    /// docker_auth's web sign-in sections (`google_auth`, `oidc_auth`...).
    pub web_signin: web_signin::WebSignInConfig,
    /// Our addition: the web console (`console:`), `None` when the section is absent.
    pub console: Option<console::ConsoleConfig>,
    /// Non-fatal findings (unknown keys, unusable hashes...), to be logged at start.
    pub warnings: Vec<Diagnostic>,
}

/// The optional external backends; each `None` when its section is absent.
#[derive(Debug, Clone, Default)]
pub struct Backends {
    pub ext_auth: Option<ExtConfig>,
    pub ext_authz: Option<ExtConfig>,
    pub mongo_auth: Option<MongoAuthConfig>,
    pub acl_mongo: Option<AclMongoConfig>,
    pub casbin_authz: Option<casbin::CasbinConfig>,
    pub xorm_auth: Option<XormAuthConfig>,
    pub acl_xorm: Option<AclXormConfig>,
}

/// Authentication sections in docker_auth's chain order, after our `ci_token_auth`, which
/// comes first: a CI token is decided there and never reaches another backend.
const AUTHN_SECTIONS: &[&str] = &[
    "ci_token_auth",
    "users",
    "ext_auth",
    "google_auth",
    "github_auth",
    "oidc_auth",
    "gitlab_auth",
    "ldap_auth",
    "mongo_auth",
    "xorm_auth",
    "plugin_authn",
];
/// Authorization sections in chain order; `casbin_authz` does not count (docker_auth quirk).
const AUTHZ_SECTIONS: &[&str] = &["acl", "acl_mongo", "acl_xorm", "ext_authz", "plugin_authz"];
/// Go plugins (`.so`) can only be loaded by a Go program.
const GO_PLUGINS: &[(&str, &str)] = &[("plugin_authn", "ext_auth"), ("plugin_authz", "ext_authz")];

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        let mut diagnostics = Diagnostics::default();
        diagnostics
            .error("", 0, format!("could not read {file}: {e}"))
            .hint("check the path and that the file is readable by this user");
        ConfigError { file: file.clone(), diagnostics }
    })?;
    load_str(&text, &file)
}

/// Validates config text; `file` names it in messages.
pub fn load_str(text: &str, file: &str) -> Result<Config, ConfigError> {
    let mut diags = Diagnostics::default();
    let root = match yaml::parse_document(text) {
        Ok(doc) => {
            warn_duplicate_keys(&doc.duplicates, &mut diags);
            doc.root
        }
        Err(e) => {
            diags
                .error("", e.line, format!("could not parse config: {}", e.message))
                .hint("fix the YAML syntax on that line");
            return Err(ConfigError { file: file.to_string(), diagnostics: diags });
        }
    };
    let empty = yaml::Node { line: 1, kind: yaml::NodeKind::Map(Vec::new()) };
    let root = if root.kind == yaml::NodeKind::Null { &empty } else { &root };
    let Some(mut top) = Section::of(root, "", &mut diags) else {
        return Err(ConfigError { file: file.to_string(), diagnostics: diags });
    };
    let server = server::read(&mut top, &mut diags);
    let token = token::read(&mut top, &mut diags);
    let ci_token = ci_token::read(&mut top, &mut diags);
    let users = users::read(&mut top, &mut diags);
    check_sections_present(&top, AUTHN_SECTIONS, &mut diags, |d| {
        d.error("", 0, "no auth methods are configured, this is probably a mistake. Use an empty user map if you really want to deny everyone")
            .hint("add a users: section (users: {} denies everyone)");
    });
    let ext_auth = ext::read(&mut top, "ext_auth", &mut diags);
    let mongo_auth = mongo::read_auth(&mut top, &mut diags);
    let xorm_auth = xorm::read_auth(&mut top, &mut diags);
    let web_signin = web_signin::read(&mut top, &mut diags);
    reject_go_plugins(&mut top, &mut diags);
    let ldap = ldap::read(&mut top, &mut diags);
    let acl = acl::read(&mut top, &mut diags);
    let casbin_line = top.node("casbin_authz").map(|n| n.line);
    check_sections_present(&top, AUTHZ_SECTIONS, &mut diags, |d| {
        let e = d.error(
            "",
            0,
            "ACL is empty, this is probably a mistake. Use an empty list if you really want to deny all actions",
        );
        match casbin_line {
            // parity.md §3.3: docker_auth does not count casbin_authz here.
            Some(line) => {
                e.hint(format!("casbin_authz (line {line}) does not count, as in docker_auth: add acl: [] beside it"))
            }
            None => e.hint("add an acl: list (acl: [] denies everything)"),
        }
    });
    let compiled_acl = acl.as_ref().and_then(|acl| compile(acl, &mut diags));
    let acl_mongo = mongo::read_acl(&mut top, &mut diags);
    let acl_xorm = xorm::read_acl(&mut top, &mut diags);
    let ext_authz = ext::read(&mut top, "ext_authz", &mut diags);
    let casbin_authz = casbin::read(&mut top, &mut diags);
    let credential_cache = cache::read(&mut top, &mut diags);
    let identity_tokens = identity::read(&mut top, &mut diags);
    let store = store::read(&mut top, &mut diags);
    web_signin::check_token_dbs(&web_signin, &store, &mut diags);
    let lockout = lockout::read(&mut top, &mut diags);
    let limits = limits::read(&mut top, &mut diags);
    let console = console::read(&mut top, &mut diags);
    console::check_store(console.as_ref(), &store, &mut diags);
    top.warn_unknown(&known_top_level(), &mut diags);
    match (server, token, diags.has_errors()) {
        (Some(server), Some(token), false) => {
            let backends = Backends { ext_auth, ext_authz, mongo_auth, acl_mongo, casbin_authz, xorm_auth, acl_xorm };
            let warnings = diags.warnings;
            Ok(Config {
                server,
                token,
                users,
                ldap,
                ci_token,
                acl,
                compiled_acl,
                backends,
                credential_cache,
                identity_tokens,
                limits,
                store,
                lockout,
                web_signin,
                console,
                warnings,
            })
        }
        _ => Err(ConfigError { file: file.to_string(), diagnostics: diags }),
    }
}

/// docker_auth keeps the last of two equal keys without a word; we keep it too (a drop-in
/// must read the same config the same way) but say so: a second `acl:` can silently undo
/// the first. An error under `check-config --strict`.
fn warn_duplicate_keys(duplicates: &[yaml::DuplicateKey], diags: &mut Diagnostics) {
    for dup in duplicates {
        let diag = diags.warn(
            &dup.path,
            dup.line,
            format!(
                "duplicate key {:?} (lines {} and {}): the value on line {} replaces the one on line {}",
                dup.key, dup.first_line, dup.line, dup.line, dup.first_line
            ),
        );
        diag.hint(format!("keep one {:?} key and merge what the two say into it", dup.key));
        diag.error_when_strict();
    }
}

fn known_top_level() -> Vec<&'static str> {
    let mut known = vec![
        "server",
        "token",
        "credential_cache",
        "identity_tokens",
        "casbin_authz",
        "limits",
        "store",
        "lockout",
        "console",
    ];
    known.extend(AUTHN_SECTIONS.iter().chain(AUTHZ_SECTIONS));
    known.sort_unstable();
    known.dedup();
    known
}

/// A section counts as configured when its key has a non-null value (yaml.v2 pointer semantics).
fn check_sections_present(
    top: &Section<'_>,
    sections: &[&str],
    diags: &mut Diagnostics,
    report: impl FnOnce(&mut Diagnostics),
) {
    if !sections.iter().any(|s| top.has_value(s)) {
        report(diags);
    }
}

fn reject_go_plugins(top: &mut Section<'_>, diags: &mut Diagnostics) {
    for (section, instead) in GO_PLUGINS {
        if let Some(node) = top.node(section) {
            diags
                .error(*section, node.line, format!("{section} loads a Go plugin (.so), which only a Go program can load; registry-auth cannot run it"))
                .hint(format!("wrap the plugin in a small program and configure it as {instead} (README, \"Go plugins\", has an example)"));
        }
    }
}

/// Compiles the ACL, reporting invalid patterns with the line of the offending field.
fn compile(acl: &AclSource, diags: &mut Diagnostics) -> Option<Arc<Acl>> {
    match Acl::compile(acl.entries.clone()) {
        Ok(compiled) => Some(Arc::new(compiled)),
        Err(errors) => {
            for e in errors {
                let line = acl.lines.get(e.index).and_then(|l| l.get(&e.field)).copied().unwrap_or(0);
                diags
                    .error(format!("acl[{}].{}", e.index, e.field), line, e.to_string())
                    .hint("regexes are /.../ in RE2 syntax; IPs are an address or a CIDR such as 10.0.0.0/8");
            }
            None
        }
    }
}
