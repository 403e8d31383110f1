//! The console (issue 14): server-rendered pages under `{path_prefix}/console/` on the
//! same listener, on when the config has a `console:` section and a persistent store.
//!
//! Layout (docs: `CONSOLE_DESIGN.md`): this file is the router ([`routes`]) and the
//! console's state ([`Console`]); `session.rs` the [`ConsoleSession`] extractor, `csrf.rs`
//! the form check, `page.rs` the headers and the [`page::Layout`] every template gets;
//! one file per page or page group. Pages read the domain through [`ConsoleCtx`]: access
//! decisions go through `AuthService` (the token endpoint's engine), never the store.
//!
//! Paths (relative to the console prefix): `/` home, `/signin`, `/signin/<provider>`,
//! `/signout`, `/signout-everywhere`, `/credentials...`, `/static/console.css`; the
//! navigation also links `/access`, `/repositories` and `/operators`.
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};

use crate::config::console::ConsoleConfig;
use crate::http::{AppState, StateHandle};
use crate::identity::{Identity, SecretHasher};
use crate::service::AuthService;
use crate::store::SharedStore;

pub mod access;
pub mod credentials;
pub mod csrf;
pub mod errors;
pub mod home;
pub mod operators;
pub mod page;
mod registry_view;
pub mod repositories;
pub mod session;
pub mod sessions;
pub mod signin;
mod static_files;

pub use errors::ConsoleError;
pub use session::ConsoleSession;

/// What every page shows, fixed per loaded config.
#[derive(Debug, Clone)]
pub struct Site {
    /// `{path_prefix}/console`: every console URL starts with it (no trailing slash).
    pub prefix: String,
    /// `token.issuer`: the pages' title.
    pub issuer: String,
    /// `host[:port]` of `console.registry_url`, for `docker login` lines.
    pub registry_host: Option<String>,
}

/// The console of one loaded config.
pub struct Console {
    pub site: Arc<Site>,
    pub config: ConsoleConfig,
    pub sessions: sessions::Sessions,
    /// Identity tokens and robots (the console is on only with a persistent store).
    pub identity: Arc<Identity>,
    pub store: SharedStore,
    /// Keys the sign-in form's browser binding (the installation's secret hasher).
    pub hasher: Arc<SecretHasher>,
    /// Reads `console.registry_url` for My access and Repositories (`None` without one).
    pub reader: Option<Arc<crate::registry_reader::RegistryReader>>,
    /// The static ACL's entries, to explain decisions in `registry-auth explain`'s words.
    pub acl_entries: Option<Vec<crate::authz::acl::AclEntrySpec>>,
    /// Who is an operator, and what the Operators pages read (console-ops).
    pub ops: operators::OpsState,
}

impl Console {
    pub fn new(
        config: &ConsoleConfig,
        path_prefix: &str,
        issuer: &str,
        store: SharedStore,
        identity: Arc<Identity>,
        hasher: Arc<SecretHasher>,
    ) -> Console {
        let site = Arc::new(Site {
            prefix: format!("{path_prefix}/console"),
            issuer: issuer.to_string(),
            registry_host: config.registry_host(),
        });
        let sessions = sessions::Sessions::new(store.clone(), hasher.clone(), config);
        let ops = operators::OpsState::new(config);
        Console {
            site,
            config: config.clone(),
            sessions,
            identity,
            store,
            hasher,
            ops,
            reader: None,
            acl_entries: None,
        }
    }

    /// The console with the loaded config the Operators pages explain and check.
    pub fn with_ops(self, config: &crate::config::Config) -> Console {
        self.ops.keep_config(config);
        self
    }
}

/// The state a console request runs against: the loaded config's [`AppState`] (taken once
/// per request, so a reload never splits one), with its console.
pub struct ConsoleCtx {
    pub app: Arc<AppState>,
    console: Arc<Console>,
}

impl ConsoleCtx {
    pub fn console(&self) -> &Arc<Console> {
        &self.console
    }

    pub fn service(&self) -> &AuthService {
        &self.app.service
    }

    pub fn site(&self) -> &Arc<Site> {
        &self.console().site
    }

    pub(crate) fn from_req(req: &HttpRequest) -> Result<ConsoleCtx, ConsoleError> {
        let app = req.app_data::<web::Data<StateHandle>>().map(|h| h.current()).ok_or(ConsoleError::not_found(None))?;
        let console = app.console.clone().ok_or(ConsoleError::not_found(None))?;
        Ok(ConsoleCtx { app, console })
    }
}

impl FromRequest for ConsoleCtx {
    type Error = ConsoleError;
    type Future = std::future::Ready<Result<ConsoleCtx, ConsoleError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(ConsoleCtx::from_req(req))
    }
}

/// The console's routes, mounted at `{path_prefix}/console` by `crate::http::app`. Each
/// page group adds its own lines here.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(home::to_slash))
        .route("/", web::get().to(home::page))
        .route("/static/console.css", web::get().to(static_files::stylesheet))
        .route("/signin", web::get().to(signin::form))
        .route("/signin", web::post().to(signin::submit))
        .route("/signin/{provider}", web::get().to(signin::with_provider))
        .route("/signout", web::post().to(signin::sign_out))
        .route("/signout-everywhere", web::post().to(signin::sign_out_everywhere))
        .route("/access", web::get().to(access::page))
        .route("/access/try", web::post().to(access::try_scope))
        .route("/repositories", web::get().to(repositories::list))
        .route("/repositories/{reference:.+}", web::get().to(repositories::repository))
        .route("/credentials", web::get().to(credentials::page))
        .route("/credentials/robots", web::post().to(credentials::create_robot))
        .route("/credentials/robots/revoke", web::post().to(credentials::revoke_robot))
        .route("/credentials/tokens/revoke", web::post().to(credentials::revoke_token))
        .configure(operators::routes)
        .default_service(web::to(errors::not_found));
}

/// The console's scope at `{path_prefix}/console`.
pub fn scope(path_prefix: &str) -> actix_web::Scope {
    web::scope(&format!("{path_prefix}/console")).configure(routes)
}
