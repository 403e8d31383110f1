//! Builds the running state from a validated [`Config`]: keys, TLS, backends, chains and
//! the store. `serve` opens the store once ([`crate::store::open_owned`]) and builds with
//! [`build_with`]; a reload reuses the running store; `check-config`, `explain` and tests
//! go through [`build`], which reaches the store as the CLI does ([`crate::store::connect`]).
use std::path::Path;
use std::sync::Arc;

use crate::acme::Acme;
use crate::authn::ci_token::CiTokenAuth;
use crate::authn::ext::ExtAuth;
use crate::authn::ldap::LdapAuth;
use crate::authn::mongo::MongoAuth;
use crate::authn::oidc::github::GitHub;
use crate::authn::oidc::gitlab::GitLab;
use crate::authn::oidc::openid::{GoogleRules, OpenIdProvider, OpenIdSettings};
use crate::authn::oidc::provider::WebProvider;
use crate::authn::oidc::records::TokenDb;
use crate::authn::oidc::web_login::WebLoginAuth;
use crate::authn::password::PasswordVerifier;
use crate::authn::static_users::StaticUsers;
use crate::authn::xorm::XormAuth;
use crate::authn::{Authenticator, AuthnChain};
use crate::authz::casbin::CasbinAuthz;
use crate::authz::ext::ExtAuthz;
use crate::authz::mongo_acl::AclMongo;
use crate::authz::xorm_acl::AclXorm;
use crate::authz::{Authorizer, AuthzChain};
use crate::config::{Config, Diagnostic, Diagnostics, ForgeConfig, ForgeKind};
use crate::http::{AppState, RealIp, Routes};
use crate::identity::lockout::Lockout;
use crate::identity::{Identity, SecretHasher};
use crate::mongo::Clients;
use crate::service::AuthService;
use crate::sql::Pools;
use crate::store::{SharedStore, StoreConfig, StoreError};
use crate::token::published::PublishedCert;
use crate::token::{KidMode, SigningKey, TokenIssuer, TokenOptions};
use crate::web::console::Console;
use crate::web::{ConfiguredProvider, WebSignIn};

mod level_token_dbs;

/// What `serve` needs: the request state and, for HTTPS, the listener's TLS config.
pub struct Built {
    pub state: AppState,
    pub tls: Option<rustls::ServerConfig>,
    /// With `server.letsencrypt`: the task that obtains and renews the certificate `tls`
    /// serves; `serve` runs it, `check-config` and reload only build it.
    pub acme: Option<Acme>,
    pub warnings: Vec<Diagnostic>,
}

/// Loads keys and certificates, reaches the store and assembles the chains. Errors name
/// the config key.
pub fn build(config: &Config) -> Result<Built, Vec<Diagnostic>> {
    let store = crate::store::connect(&config.store).map_err(|e| vec![store_diagnostic(&config.store, &e)])?;
    build_as(config, store, Owner::No)
}

/// The problem of a store that cannot be opened, pointing at the `store:` section.
pub fn store_diagnostic(config: &StoreConfig, error: &StoreError) -> Diagnostic {
    let (path, line) = match config {
        StoreConfig::Memory => ("store", 0),
        StoreConfig::Embedded(e) => ("store.path", e.line),
        StoreConfig::Redis(r) => (if r.cluster { "store.redis_cluster" } else { "store.redis" }, r.line),
    };
    let hint = match error {
        StoreError::Locked { .. } => "another registry-auth server uses this directory: stop it, or give each server its own store.path (replicas share a Redis store instead)",
        _ => "check that the directory is writable by this user (embedded) or that Redis is reachable with these settings",
    };
    Diagnostic {
        path: path.to_string(),
        line,
        message: error.to_string(),
        hint: Some(hint.to_string()),
        error_when_strict: false,
    }
}

/// The console's registry reader for `console.registry_url` (none without one).
fn registry_reader(
    section: &crate::config::console::ConsoleConfig,
) -> Result<Option<Arc<crate::registry_reader::RegistryReader>>, Diagnostic> {
    let Some(url) = &section.registry_url else { return Ok(None) };
    let config = crate::registry_reader::ReaderConfig {
        url: url.clone(),
        ca_pem: section.registry_ca_certificate.as_ref().map(|(_, pem)| pem.clone()),
        service: None,
        limits: crate::registry_reader::ReaderLimits::default(),
    };
    crate::registry_reader::RegistryReader::new(config).map(|r| Some(Arc::new(r))).map_err(|message| Diagnostic {
        path: "console.registry_url".to_string(),
        line: section.line,
        message,
        hint: Some(
            "registry_url is the registry's http(s)://host[:port]; registry_ca_certificate a PEM file of its CA".into(),
        ),
        error_when_strict: false,
    })
}

/// [`build`] with a store already open (the one `serve` owns, or the running one on reload):
/// this process serves, so it imports and opens `level_token_db` directories.
pub fn build_with(config: &Config, store: SharedStore) -> Result<Built, Vec<Diagnostic>> {
    build_as(config, store, Owner::Yes)
}

/// Whether the build is for the serving process (which owns docker_auth's LevelDB
/// directories) or for `check-config`, `explain` and other CLI runs (which only check them).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owner {
    Yes,
    No,
}

fn build_as(config: &Config, store: SharedStore, owner: Owner) -> Result<Built, Vec<Diagnostic>> {
    let mut diags = Diagnostics::default();
    let (tls, acme) = listener_tls(config, &mut diags);
    let key = signing_key(config, &mut diags);
    let published = verification_certificates(config, &mut diags);
    let mut clients = Clients::default();
    let mut pools = Pools::default();
    let web_providers = web_providers(config, &mut diags);
    let token_db = Arc::new(level_token_dbs::token_db(config, &store, owner == Owner::Yes, &mut diags));
    let web_chain = WebChain { providers: &web_providers, db: &token_db };
    let authn = authn_chain(config, &web_chain, &mut clients, &mut pools, &mut diags);
    // The database ACLs are loaded only once the cheap checks passed.
    let authz = if diags.has_errors() { None } else { authz_chain(config, &mut clients, &mut pools, &mut diags) };
    if diags.has_errors() {
        return Err(diags.errors);
    }
    let (Some(key), Some(authn), Some(authz)) = (key, authn, authz) else { return Err(diags.errors) };
    crate::weak_keys::check(config, &mut diags);
    let options = TokenOptions {
        issuer: config.token.issuer.clone(),
        expiration_secs: config.token.expiration,
        kid_mode: kid_mode(config),
        x5c: config.token.x5c,
    };
    registry_compat_warnings(config, &key, &published, &mut diags);
    let hasher = Arc::new(SecretHasher::for_store(&config.store, store.clone()));
    let identity = store
        .persistent()
        .then(|| Arc::new(Identity::new(store.clone(), hasher.clone(), config.identity_tokens.clone())));
    // Sessions need the persistent store (config::console::check_store warns otherwise).
    let console = match (&config.console, &identity) {
        (Some(section), Some(identity)) => {
            let mut console = Console::new(
                section,
                &config.server.path_prefix,
                &config.token.issuer,
                store.clone(),
                identity.clone(),
                hasher.clone(),
            )
            .with_ops(config);
            console.reader = registry_reader(section).map_err(|d| vec![d])?;
            console.acl_entries = config.acl.as_ref().map(|acl| acl.entries.clone());
            Some(Arc::new(console))
        }
        _ => None,
    };
    let web = (!web_providers.is_empty()).then(|| {
        Arc::new(WebSignIn {
            providers: web_providers,
            db: token_db,
            store: store.clone(),
            identity: identity.clone(),
            prefix: config.server.path_prefix.clone(),
            issuer: config.token.issuer.clone(),
            starts: Default::default(),
            console: console.clone(),
        })
    });
    let lockout = Lockout::new(&config.lockout, store.clone());
    let service = AuthService { authn, authz, issuer: TokenIssuer::new(options, key), store, identity, lockout };
    let state = AppState {
        service,
        routes: Routes::new(&config.server.path_prefix),
        issuer: config.token.issuer.clone(),
        hsts: config.server.hsts,
        real_ip: RealIp { header: config.server.real_ip_header.clone(), position: config.server.real_ip_pos },
        scope_limits: config.limits.scopes,
        web,
        console,
    };
    if let Some(console) = &state.console {
        console.ops.keep_build_warnings(&diags.warnings);
    }
    Ok(Built { state, tls, acme, warnings: diags.warnings })
}

/// HTTPS from the certificate pair, or from the ACME CA of `server.letsencrypt`.
fn listener_tls(config: &Config, diags: &mut Diagnostics) -> (Option<rustls::ServerConfig>, Option<Acme>) {
    let server = &config.server;
    if let (Some(cert), Some(key)) = (&server.certificate, &server.key) {
        return (crate::tls::server_tls(server, cert, key, diags), None);
    }
    let Some(le) = &server.letsencrypt else { return (None, None) };
    match Acme::prepare(le) {
        Ok(acme) => (crate::tls::acme_server_tls(server, acme.resolver(), diags), Some(acme)),
        Err((key, e)) => {
            diags.error(format!("server.letsencrypt.{key}"), le.line, e);
            (None, None)
        }
    }
}

/// The `kid` our tokens carry (`token.disable_legacy_key_id`).
pub fn kid_mode(config: &Config) -> KidMode {
    if config.token.disable_legacy_key_id {
        KidMode::Thumbprint
    } else {
        KidMode::Libtrust
    }
}

/// The certificate whose key signs: the token pair's, else the server's (§2.4).
pub fn signing_certificate_path(config: &Config) -> Option<&Path> {
    match (&config.token.certificate, &config.token.key) {
        (Some(cert), Some(_)) => Some(cert),
        _ => config.server.certificate.as_deref(),
    }
}

/// `token.verification_certificates`, loaded so that a bad one stops start-up and reload.
fn verification_certificates(config: &Config, diags: &mut Diagnostics) -> Vec<PublishedCert> {
    let mut loaded = Vec::new();
    for (i, path) in config.token.verification_certificates.iter().enumerate() {
        match PublishedCert::load(path) {
            Ok(cert) => loaded.push(cert),
            Err(e) => {
                let message = e.to_string().replace("failed to load token cert and key: ", "");
                diags
                    .error(format!("token.verification_certificates[{i}]"), config.token.line, message)
                    .hint("list PEM certificate files whose key is RSA or EC P-256/P-384/P-521");
            }
        }
    }
    loaded
}

/// What registry 3.x will make of our kid (start-up and check-config warnings), and
/// verification certificates that duplicate the signing key.
fn registry_compat_warnings(config: &Config, key: &SigningKey, published: &[PublishedCert], diags: &mut Diagnostics) {
    let line = config.token.line;
    for finding in crate::token::compat::kid_findings(key.public_key(), kid_mode(config), config.token.x5c) {
        diags.warn(finding.key, line, finding.message).hint(finding.hint);
    }
    for (i, cert) in published.iter().enumerate() {
        if &cert.public == key.public_key() {
            let message = format!("{} holds the signing key itself", cert.path.display());
            diags
                .warn(format!("token.verification_certificates[{i}]"), line, message)
                .hint("list only the next key (before a rotation) or the previous one (until its tokens expire)");
        }
    }
}

/// The token pair, or the server's TLS pair when the token section names none (§2.4).
fn signing_key(config: &Config, diags: &mut Diagnostics) -> Option<SigningKey> {
    let line = config.token.line;
    let (cert, key, section) = match (
        &config.token.certificate,
        &config.token.key,
        &config.server.certificate,
        &config.server.key,
    ) {
        (Some(c), Some(k), _, _) => (c, k, "token"),
        (Some(_), None, _, _) | (None, Some(_), _, _) => {
            diags
                .error("token.certificate", line, "failed to load token cert and key: both were not provided")
                .hint("set both token.certificate and token.key, or neither to sign with the server's TLS pair");
            return None;
        }
        (None, None, Some(c), Some(k)) => (c, k, "server"),
        _ => {
            diags
                .error("token.certificate", line, "failed to load token cert and key: none provided")
                .hint("set token.certificate and token.key (e.g. made by `registry-auth gen-cert`), or server.certificate and server.key");
            return None;
        }
    };
    load_key(cert, key, section, line, diags)
}

fn load_key(cert: &Path, key: &Path, section: &str, line: usize, diags: &mut Diagnostics) -> Option<SigningKey> {
    match SigningKey::load(cert, key) {
        Ok(key) => Some(key),
        Err(e) => {
            diags
                .error(format!("{section}.certificate"), line, e.to_string())
                .hint("use a PEM certificate with its matching RSA or EC (P-256/P-384/P-521) private key");
            None
        }
    }
}

/// The web sign-in providers in docker_auth's chain order (google, github, oidc, gitlab).
fn web_providers(config: &Config, diags: &mut Diagnostics) -> Vec<ConfiguredProvider> {
    let web = &config.web_signin;
    let mut providers = Vec::new();
    openid_provider(web.google.as_ref(), &mut providers, diags);
    forge_provider(web.github.as_ref(), &mut providers, diags);
    openid_provider(web.oidc.as_ref(), &mut providers, diags);
    forge_provider(web.gitlab.as_ref(), &mut providers, diags);
    providers
}

/// `github_auth` or `gitlab_auth`.
fn forge_provider(section: Option<&ForgeConfig>, providers: &mut Vec<ConfiguredProvider>, diags: &mut Diagnostics) {
    let Some(section) = section else { return };
    let provider: Result<Arc<dyn WebProvider>, String> = match section.kind {
        ForgeKind::GitHub => GitHub::new(section.clone()).map(|p| Arc::new(p) as Arc<dyn WebProvider>),
        ForgeKind::GitLab => GitLab::new(section.clone()).map(|p| Arc::new(p) as Arc<dyn WebProvider>),
    };
    match provider {
        Ok(provider) => providers.push(ConfiguredProvider {
            provider,
            registry_url: section.registry_url.clone().unwrap_or_default(),
            redirect_uri: section.redirect_uri.clone(),
        }),
        Err(e) => {
            diags.error(section.kind.section(), section.line, e);
        }
    }
}

/// `google_auth` or `oidc_auth`.
fn openid_provider(
    section: Option<&crate::config::web_signin::OpenIdSection>,
    providers: &mut Vec<ConfiguredProvider>,
    diags: &mut Diagnostics,
) {
    if let Some(section) = section {
        let google = section.section == "google_auth";
        let settings = OpenIdSettings {
            name: if google { "google" } else { "oidc" },
            display_name: if google { "Google".to_string() } else { "OpenID Connect".to_string() },
            issuer: section.issuer.clone(),
            client_id: section.client_id.clone(),
            client_secret: section.client_secret.clone(),
            scopes: section.scopes.clone(),
            user_claim: section.user_claim.clone(),
            labels_claims: section.labels_claims.clone(),
            http_timeout: section.http_timeout,
            google: google.then(|| GoogleRules { domain: section.domain.clone() }),
        };
        match OpenIdProvider::new(settings) {
            Ok(provider) => providers.push(ConfiguredProvider {
                provider: Arc::new(provider),
                registry_url: section.registry_url.clone(),
                redirect_uri: section.redirect_url.clone(),
            }),
            Err(e) => {
                diags.error(section.section, section.line, e);
            }
        }
    }
}

/// The bcrypt cost of generated passwords: the first `token_hash_cost` set, else 10.
pub(crate) fn token_hash_cost(config: &Config) -> u32 {
    let web = &config.web_signin;
    let openid = [&web.google, &web.oidc].into_iter().flatten().map(|s| s.token_hash_cost);
    let forges = [&web.github, &web.gitlab].into_iter().flatten().map(|s| s.token_hash_cost);
    openid.chain(forges).flatten().next().unwrap_or(crate::authn::oidc::records::DEFAULT_HASH_COST)
}

/// What the chain needs to check web sign-in passwords.
struct WebChain<'a> {
    providers: &'a [ConfiguredProvider],
    db: &'a Arc<TokenDb>,
}

/// Our ci_token_auth first, then docker_auth's order: users, ext_auth, google, github, oidc, gitlab, ldap, mongo, xorm, plugin.
fn authn_chain(
    config: &Config,
    web: &WebChain<'_>,
    clients: &mut Clients,
    pools: &mut Pools,
    diags: &mut Diagnostics,
) -> Option<AuthnChain> {
    let mut backends: Vec<Arc<dyn Authenticator>> = Vec::new();
    let b = &config.backends;
    // One cache for this config's password backends, dropped with it on reload.
    let verifier = Arc::new(PasswordVerifier::new(&config.credential_cache, config.limits.bcrypt));
    if let Some(ci) = &config.ci_token {
        match CiTokenAuth::new(ci) {
            Ok(auth) => backends.push(Arc::new(auth)),
            Err((index, e)) => {
                let line = ci.issuers.get(index).map_or(ci.line, |i| i.line);
                diags
                    .error(format!("ci_token_auth.issuers[{index}]"), line, e)
                    .hint("check ca_certificate (PEM certificates) and jwks_file");
                return None;
            }
        }
    }
    if let Some(users) = &config.users {
        // The decoy check for unknown accounts belongs to the last backend only.
        let last_in_chain = b.ext_auth.is_none()
            && web.providers.is_empty()
            && config.ldap.is_none()
            && b.mongo_auth.is_none()
            && b.xorm_auth.is_none();
        match StaticUsers::new(users.iter(), last_in_chain, verifier.clone()) {
            Ok(static_users) => backends.push(Arc::new(static_users)),
            Err(e) => {
                diags.error("users", 0, e.to_string());
                return None;
            }
        }
    }
    if let Some(ext) = &b.ext_auth {
        backends.push(Arc::new(ExtAuth::new(ext)));
    }
    let web_is_last = config.ldap.is_none() && b.mongo_auth.is_none() && b.xorm_auth.is_none();
    for (i, configured) in web.providers.iter().enumerate() {
        let last = web_is_last && i + 1 == web.providers.len();
        let auth = WebLoginAuth::new(configured.provider.clone(), web.db.clone(), verifier.clone(), last);
        backends.push(Arc::new(auth));
    }
    if let Some(ldap) = &config.ldap {
        match LdapAuth::new(ldap) {
            Ok(auth) => backends.push(Arc::new(auth)),
            Err(e) => {
                diags
                    .error("ldap_auth", ldap.line, e)
                    .hint("filters look like (&(uid=${account})(objectClass=person)); ca_certificate must hold PEM certificates");
                return None;
            }
        }
    }
    if config.users.is_none() && (b.mongo_auth.is_some() || b.xorm_auth.is_some()) {
        // Without static users nothing has prepared the decoy that unknown accounts pay.
        if let Err(e) = verifier.prepare_decoy(std::iter::empty()) {
            let section = if b.mongo_auth.is_some() { "mongo_auth" } else { "xorm_auth" };
            diags.error(section, 0, e.to_string());
            return None;
        }
    }
    if let Some(mongo) = &b.mongo_auth {
        match clients.get(&mongo.dial) {
            Ok(client) => {
                backends.push(Arc::new(MongoAuth::new(&client, mongo, verifier.clone(), b.xorm_auth.is_none())))
            }
            Err(e) => {
                diags.error("mongo_auth.dial_info", 0, e).hint("check addrs (host:port) and the credentials");
                return None;
            }
        }
    }
    if let Some(xorm) = &b.xorm_auth {
        match pools.get(&xorm.connect).and_then(|pool| XormAuth::start(pool, verifier.clone())) {
            Ok(auth) => backends.push(Arc::new(auth)),
            Err(e) => {
                diags
                    .error("xorm_auth.conn_string", 0, format!("cannot use the xorm_user table: {e}"))
                    .hint("check that the database is reachable with these credentials and xorm_user has docker_auth's columns");
                return None;
            }
        }
    }
    Some(AuthnChain::new(backends))
}

/// docker_auth's order: acl, acl_mongo, acl_xorm, ext_authz, plugin_authz, casbin_authz.
fn authz_chain(
    config: &Config,
    clients: &mut Clients,
    pools: &mut Pools,
    diags: &mut Diagnostics,
) -> Option<AuthzChain> {
    let mut backends: Vec<Arc<dyn Authorizer>> = Vec::new();
    if let Some(acl) = &config.compiled_acl {
        backends.push(acl.clone());
    }
    if let Some(mongo) = &config.backends.acl_mongo {
        match clients.get(&mongo.dial).and_then(|client| AclMongo::start(&client, mongo)) {
            Ok(acl) => backends.push(Arc::new(acl)),
            Err(e) => {
                diags
                    .error("acl_mongo", 0, format!("cannot load the ACL from MongoDB: {e}"))
                    .hint("check that MongoDB is reachable and every document in the collection is a valid entry");
                return None;
            }
        }
    }
    if let Some(xorm) = &config.backends.acl_xorm {
        match pools.get(&xorm.connect).and_then(|pool| AclXorm::start(pool, xorm.cache_ttl)) {
            Ok(acl) => backends.push(Arc::new(acl)),
            Err(e) => {
                diags
                    .error("acl_xorm.conn_string", 0, format!("cannot load the ACL from xorm_acl_entry: {e}"))
                    .hint("check that the database is reachable and every row of xorm_acl_entry is a valid entry");
                return None;
            }
        }
    }
    if let Some(ext) = &config.backends.ext_authz {
        backends.push(Arc::new(ExtAuthz::new(ext)));
    }
    if let Some(casbin) = &config.backends.casbin_authz {
        match CasbinAuthz::load(casbin) {
            Ok(authz) => backends.push(Arc::new(authz)),
            Err(e) => {
                diags
                    .error(format!("casbin_authz.{}", e.key), casbin.line, e.message)
                    .hint("see docker_auth's examples/casbin_authz_model.conf and casbin_authz_policy.csv for the expected shape");
                return None;
            }
        }
    }
    Some(AuthzChain::new(backends))
}
