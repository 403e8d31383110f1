//! HTTP front end (actix-web): routes under `path_prefix`, request extraction and the
//! mapping of domain errors to responses. Handlers call `service`; nothing below `service`
//! knows about HTTP.
use std::sync::{Arc, RwLock};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{middleware, web, App};

pub mod body;
pub mod error;
pub mod extract;
pub mod handlers;
mod multipart;
pub mod oauth;

use crate::service::AuthService;
pub use extract::RealIp;

pub const HSTS_VALUE: &str = "max-age=63072000; includeSubDomains";

/// Exact paths of the routes, prefix included.
#[derive(Debug, Clone)]
pub struct Routes {
    /// `server.path_prefix` itself.
    pub prefix: String,
    pub index: String,
    pub auth: String,
    pub auth_token: String,
    pub healthz: String,
    pub readyz: String,
    pub metrics: String,
}

impl Routes {
    pub fn new(prefix: &str) -> Routes {
        Routes {
            prefix: prefix.to_string(),
            index: format!("{prefix}/"),
            auth: format!("{prefix}/auth"),
            auth_token: format!("{prefix}/auth/token"),
            healthz: format!("{prefix}/healthz"),
            readyz: format!("{prefix}/readyz"),
            metrics: format!("{prefix}/metrics"),
        }
    }
}

/// Everything a request needs from one loaded config.
pub struct AppState {
    pub service: AuthService,
    pub routes: Routes,
    /// `token.issuer`: the Basic realm and the index page title.
    pub issuer: String,
    pub hsts: bool,
    pub real_ip: RealIp,
    /// `limits.max_scopes` and `limits.max_scope_length`.
    pub scope_limits: crate::scope::ScopeLimits,
    /// docker_auth's browser sign-in (`google_auth`, `oidc_auth`...), when configured.
    pub web: Option<Arc<crate::web::WebSignIn>>,
    /// The console (`console:` with a persistent store).
    pub console: Option<Arc<crate::web::console::Console>>,
}

/// The current state; a reload swaps it while requests in flight keep the one they took.
pub struct StateHandle(RwLock<Arc<AppState>>);

impl StateHandle {
    pub fn new(state: AppState) -> StateHandle {
        StateHandle(RwLock::new(Arc::new(state)))
    }

    pub fn current(&self) -> Arc<AppState> {
        match self.0.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn replace(&self, state: AppState) {
        let new = Arc::new(state);
        match self.0.write() {
            Ok(mut guard) => *guard = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

/// The actix application; used by the server and, in-process, by tests.
pub fn app(
    handle: web::Data<StateHandle>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let current = handle.current();
    let hsts = current.hsts;
    // The listener's settings (path_prefix among them) never change without a restart,
    // so the console's scope is fixed here; with no console configured it answers 404.
    let console = crate::web::console::scope(&current.routes.prefix);
    let headers =
        middleware::DefaultHeaders::new().add((actix_web::http::header::STRICT_TRANSPORT_SECURITY, HSTS_VALUE));
    App::new()
        .app_data(handle)
        .wrap(middleware::Condition::new(hsts, headers))
        .service(console)
        .default_service(web::to(handlers::dispatch))
}
