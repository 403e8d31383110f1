//! The Operators pages (issue 14 item 5), for the accounts `console.operators` names:
//! every robot and identity token with revoke (`credentials.rs`), current lockouts with
//! unlock (`lockouts.rs`), the recent audit events with filters (`audit.rs`), explain for
//! any account (`explain.rs`), and the signing certificate's expiry with the `check-config`
//! findings of the running config (`overview.rs`).
//!
//! Every handler takes an [`Operator`]: a signed-in session that is an operator. Anyone
//! else gets the console's 404 page for every operator URL, as if it did not exist. Every
//! POST checks the CSRF token first; every action is audited with the operator's account.
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};

use super::{ConsoleCtx, ConsoleError, ConsoleSession};
use crate::authz::operators::Operators;
use crate::config::console::ConsoleConfig;
use crate::config::{Config, Diagnostic};

pub mod audit;
pub mod credentials;
pub mod explain;
pub mod lockouts;
pub mod overview;

/// What the Operators pages read, fixed per loaded config.
pub struct OpsState {
    pub operators: Operators,
    /// The loaded config (explain shows its ACL entries; the overview lints it).
    config: OnceLock<Arc<Config>>,
    /// Warnings the build gave (weak keys, registry compatibility...), for the overview.
    build_warnings: OnceLock<Vec<Diagnostic>>,
}

impl OpsState {
    pub fn new(console: &ConsoleConfig) -> OpsState {
        // The config reader compiled these already (console_operators), so this holds.
        let operators = Operators::compile(console.operators.clone()).unwrap_or_else(|errors| {
            tracing::error!(?errors, "console.operators did not compile: nobody is an operator");
            Operators::none()
        });
        OpsState { operators, config: OnceLock::new(), build_warnings: OnceLock::new() }
    }

    pub fn keep_config(&self, config: &Config) {
        let _ = self.config.set(Arc::new(config.clone()));
    }

    pub fn keep_build_warnings(&self, warnings: &[Diagnostic]) {
        let _ = self.build_warnings.set(warnings.to_vec());
    }

    pub fn config(&self) -> Option<&Arc<Config>> {
        self.config.get()
    }

    pub fn build_warnings(&self) -> &[Diagnostic] {
        self.build_warnings.get().map_or(&[], Vec::as_slice)
    }
}

/// A signed-in operator, with the request's console state.
pub struct Operator {
    pub session: ConsoleSession,
    pub ctx: ConsoleCtx,
}

impl Operator {
    /// How the operator appears in audit events: `console:<account>`.
    pub fn audit_name(&self) -> String {
        self.session.audit_name()
    }

    pub fn store_error(&self, error: &dyn std::fmt::Display) -> ConsoleError {
        ConsoleError::store(&self.session.site, error)
    }
}

impl FromRequest for Operator {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Operator, ConsoleError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let session = ConsoleSession::from_request(&req, payload);
        Box::pin(async move {
            let session = session.await?;
            let ctx = ConsoleCtx::from_req(&req)?;
            if !session.operator {
                return Err(ConsoleError::not_found(Some(session.site.clone())));
            }
            Ok(Operator { session, ctx })
        })
    }
}

/// The operator routes, relative to the console prefix.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/operators", web::get().to(overview::page))
        .route("/operators/credentials", web::get().to(credentials::page))
        .route("/operators/identity-tokens/revoke", web::post().to(credentials::revoke_token))
        .route("/operators/robots/revoke", web::post().to(credentials::revoke_robot))
        .route("/operators/lockouts", web::get().to(lockouts::page))
        .route("/operators/lockouts/unlock", web::post().to(lockouts::unlock))
        .route("/operators/audit", web::get().to(audit::page))
        .route("/operators/explain", web::get().to(explain::page));
}

/// Unix seconds as the console shows them.
pub fn utc(unix: i64) -> String {
    super::home::utc(unix)
}

/// A duration as `1h 4m` / `3m 20s` / `12s`.
pub fn span(d: std::time::Duration) -> String {
    let s = d.as_secs().max(1);
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// The sub-navigation of the Operators pages (its `current` marks the page shown).
pub struct SubNav {
    pub current: &'static str,
}

impl SubNav {
    pub fn items(&self) -> [(&'static str, &'static str, bool); 5] {
        let c = self.current;
        [
            ("", "Overview", c == "overview"),
            ("/credentials", "Robots and identity tokens", c == "credentials"),
            ("/lockouts", "Lockouts", c == "lockouts"),
            ("/audit", "Audit events", c == "audit"),
            ("/explain", "Explain", c == "explain"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn spans_read_like_people_write_them() {
        let span = |s| super::span(Duration::from_secs(s));
        assert_eq!(
            [span(0), span(59), span(60), span(200), span(3600), span(5400)],
            ["1s", "59s", "1m", "3m 20s", "1h", "1h 30m"]
        );
    }
}
