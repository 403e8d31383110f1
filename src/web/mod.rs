//! Web pages beside the token endpoint: docker_auth's browser sign-in (`/<provider>_auth`)
//! generic over [`WebProvider`], one module per page, typed askama templates
//! (`src/web/templates/`), and the cookie and single-use records that make the flow safe
//! against login CSRF and replays. `http` routes here; this calls the providers, the token
//! DB (`authn::oidc::records`) and identity tokens; nothing below knows about pages.
use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse};
use base64::Engine as _;
use url::Url;

use crate::authn::oidc::provider::WebProvider;
use crate::authn::oidc::records::TokenDb;
use crate::identity::Identity;
use crate::store::SharedStore;

pub mod console;
pub mod cookies;
pub mod errors;
mod flow;
pub mod identity_token;
pub mod index;
mod page;
pub mod pending;
pub mod result;

/// One configured provider and what its section says about the pages.
pub struct ConfiguredProvider {
    pub provider: Arc<dyn WebProvider>,
    /// `registry_url`: shown in the `docker login` command.
    pub registry_url: String,
    /// The callback registered at the provider (`redirect_url`, `redirect_uri`); `None`:
    /// derived from the request (scheme, `Host`, `path_prefix`, `/<name>_auth`).
    pub redirect_uri: Option<Url>,
}

/// The web sign-in of one loaded config.
pub struct WebSignIn {
    /// In docker_auth's order: google, github, oidc, gitlab.
    pub providers: Vec<ConfiguredProvider>,
    pub db: Arc<TokenDb>,
    pub store: SharedStore,
    /// Identity tokens, when the store is persistent (offered on the result page).
    pub identity: Option<Arc<Identity>>,
    /// `server.path_prefix`.
    pub prefix: String,
    /// `token.issuer`: the pages' title.
    pub issuer: String,
    /// Caps the sign-ins started per minute: each writes a store record, and anyone can ask.
    pub starts: StartBudget,
    /// The console, whose sign-in page starts flows that end in a console session.
    pub console: Option<Arc<console::Console>>,
}

/// Sign-ins started in the current minute, at most [`StartBudget::PER_MINUTE`]; beyond, 503.
#[derive(Default)]
pub struct StartBudget(std::sync::Mutex<Option<(std::time::Instant, u32)>>);

impl StartBudget {
    pub const PER_MINUTE: u32 = 6000;

    /// Whether one more sign-in may start now.
    pub fn take(&self) -> bool {
        let mut guard = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        let (since, count) = match *guard {
            Some((since, count)) if now.duration_since(since) < std::time::Duration::from_secs(60) => (since, count),
            _ => (now, 0),
        };
        if count >= Self::PER_MINUTE {
            return false;
        }
        *guard = Some((since, count + 1));
        true
    }
}

impl WebSignIn {
    /// `{prefix}/<name>_auth`.
    pub fn route_of(&self, name: &str) -> String {
        format!("{}/{name}_auth", self.prefix)
    }

    fn provider_at(&self, path: &str) -> Option<&ConfiguredProvider> {
        self.providers.iter().find(|p| self.route_of(p.provider.name()) == path)
    }

    /// Whether `path` is one of ours (the index page or a provider's route).
    pub fn owns(&self, path: &str) -> bool {
        self.provider_at(path).is_some()
    }

    /// The index page (with at least one provider configured).
    pub fn index(&self) -> HttpResponse {
        index::respond(self)
    }

    /// The provider called `name`, if configured.
    pub fn provider(&self, name: &str) -> Option<&ConfiguredProvider> {
        self.providers.iter().find(|p| p.provider.name() == name)
    }

    /// Starts a sign-in with `configured` that ends in a console session.
    pub async fn start_for_console(&self, configured: &ConfiguredProvider, req: &HttpRequest) -> HttpResponse {
        flow::start_for_console(self, configured, req).await
    }

    /// A request to a provider's route: start, callback, or the identity-token form.
    pub async fn handle(&self, req: &HttpRequest, path: &str, body: &[u8]) -> HttpResponse {
        match self.provider_at(path) {
            Some(configured) => flow::handle(self, configured, req, body).await,
            None => crate::http::error::text(actix_web::http::StatusCode::NOT_FOUND, "Not found\n".to_string()),
        }
    }
}

/// 32 bytes from the OS CSPRNG, base64url: states, nonces, PKCE verifiers, cookies.
pub fn random_token() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
