//! The token use case: authenticate → authorize each scope → sign. No HTTP types here:
//! `http` calls this, this calls `authn`, `authz`, `token` and `identity`, never the
//! other way round. Identity-token and robot logins are in `service/stored_credentials.rs`.
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Instant, UNIX_EPOCH};

use crate::authn::{self, AuthnChain, AuthnOutcome};
use crate::authz::{self, AuthzChain, ScopeDecision};
use crate::identity::lockout::{Attempt, Lockout};
use crate::identity::Identity;
use crate::metrics;
use crate::recent_events::{recorder, RecentEvent};
use crate::request::{AccessEntry, AuthzRequest, Labels, Scope};
use crate::secret::Secret;
use crate::store::read_ahead::ReadAhead;
use crate::store::{SharedStore, StoreError};
use crate::token::{IssuedToken, SignError, TokenIssuer};

pub mod access;
mod audit_text;
pub mod console_login;
mod stored_credentials;

use audit_text::{GrantedText, IpText, RulesText, ScopeText, ScopesText};

/// One parsed token request.
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub account: String,
    pub password: Secret,
    pub service: String,
    pub ip: Option<IpAddr>,
    pub scopes: Vec<Scope>,
    /// `grant_type=refresh_token`: the identity token presented instead of a password.
    pub refresh_token: Option<String>,
    /// `offline_token=true` (GET) or `access_type=offline` (POST): the client wants an
    /// identity token with its access token.
    pub offline: bool,
    /// OAuth2 `client_id` (`docker`, `containerd-client`...), kept with an identity token.
    pub client_id: String,
}

/// A successful decision: the signed token and what it grants.
#[derive(Debug)]
pub struct Grant {
    pub token: IssuedToken,
    pub access: Vec<AccessEntry>,
    /// The identity token to return as `refresh_token`, when one was asked for or used.
    pub refresh_token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong password, or no backend knows the account.
    #[error("authentication failed")]
    Unauthorized,
    #[error("authentication backend failed: {0}")]
    Authn(#[from] authn::ChainError),
    #[error("authorization backend failed: {0}")]
    Authz(#[from] authz::ChainError),
    #[error("signing failed: {0}")]
    Signing(#[from] SignError),
    /// A refresh token that grants nothing (OAuth2 `invalid_grant`; the client asks for
    /// the password again).
    #[error("invalid grant: {0}")]
    InvalidGrant(&'static str),
    /// The store was needed to grant and could not answer (fail closed, state.md).
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot issue a credential: {0}")]
    Issue(String),
    /// Too many failed logins for this account or client address; the password was not
    /// checked. Retry after the given time.
    #[error("too many failed logins; retry in {}s", .retry_after.as_secs())]
    TooManyAttempts { retry_after: std::time::Duration },
    /// The bcrypt queue is full (overall or for this client): 503, retry later.
    #[error("too many password checks waiting")]
    Overloaded,
}

/// The authn chain, authz chain, token issuer and store of one loaded config.
pub struct AuthService {
    pub authn: AuthnChain,
    pub authz: AuthzChain,
    pub issuer: TokenIssuer,
    /// Our own records (identity tokens, robots, lockout counts); shared across reloads.
    pub store: SharedStore,
    /// Identity tokens and robots on `store`; `None` on the memory engine (no `store:`
    /// section): their records would vanish at restart and the CLI could not reach them.
    pub identity: Option<Arc<Identity>>,
    /// Brute-force protection, checked before any password (`identity::lockout`).
    pub lockout: Lockout,
}

impl AuthService {
    pub async fn handle(&self, req: &AuthRequest) -> Result<Grant, AuthError> {
        let caller = self.identify(req).await?;
        let mut access = Vec::with_capacity(req.scopes.len());
        let mut decisions = Vec::with_capacity(req.scopes.len());
        for scope in &req.scopes {
            let decision = self.authorize(req, &caller, scope).await?;
            let actions = match &caller.robot {
                Some(robot) => robot.narrow(scope, &decision.actions),
                None => decision.actions.clone(),
            };
            access.push(AccessEntry {
                resource_type: scope.resource_type.clone(),
                class: scope.class.clone(),
                name: scope.name.clone(),
                actions,
            });
            metrics::global().authz(if decision.actions.is_empty() { "denied" } else { "allowed" });
            decisions.push(decision);
        }
        let started = Instant::now();
        let token = self.issuer.issue_until(&caller.account, &req.service, &access, caller.not_after);
        metrics::global().signing(started.elapsed());
        let token = token?;
        let refresh_token = self.refresh_token_for(req, &caller).await?;
        log_decision(req, &caller, &access, &decisions);
        Ok(Grant { token, access, refresh_token })
    }

    /// Who is asking, behind brute-force protection: a locked address or account is
    /// refused before any password or robot secret is checked, and every 401 counts as a
    /// failure.
    async fn identify(&self, req: &AuthRequest) -> Result<Caller, AuthError> {
        let attempt = Attempt { account: &req.account, ip: req.ip, service: &req.service };
        // A password login reads its backends' records with the counters (ReadAhead).
        let presented = self.presented(req);
        let records = match presented {
            Presented::Password => self.authn.record_keys(&req.account),
            Presented::RefreshToken(..) | Presented::Robot(..) => Vec::new(),
        };
        let (checked, read_ahead) = self.lockout.check_reading(&attempt, records).await;
        if let Err(retry_after) = checked {
            return Err(AuthError::TooManyAttempts { retry_after });
        }
        let result = match presented {
            Presented::RefreshToken(identity, token) => self.redeem(identity, req, token).await,
            Presented::Robot(identity, name) => self.robot_login(identity, req, name).await,
            Presented::Password => self.authenticate(req, &read_ahead).await,
        };
        if matches!(result, Err(AuthError::Unauthorized)) {
            self.lockout.record_failure(&attempt).await;
        }
        result
    }

    /// A refresh token, a robot's secret, or a password (stored credentials only where a
    /// persistent store holds them).
    fn presented<'a>(&'a self, req: &'a AuthRequest) -> Presented<'a> {
        if let Some(identity) = &self.identity {
            if let Some(token) = &req.refresh_token {
                return Presented::RefreshToken(identity, token);
            }
            if let Some(name) = crate::identity::robot::robot_name(&req.account) {
                return Presented::Robot(identity, name);
            }
        }
        Presented::Password
    }

    /// A password login through the authn chain. A CI token maps its own account and caps
    /// the token's lifetime; it is no `password` credential, so it never gets an identity
    /// token (that would outlive the CI token).
    async fn authenticate(&self, req: &AuthRequest, read_ahead: &ReadAhead) -> Result<Caller, AuthError> {
        let started = Instant::now();
        let login = self.authn.authenticate_read_ahead(&req.account, &req.password, read_ahead);
        let (decision, refused) = authn::password::for_client(req.ip, login).await;
        if refused {
            // Not an authentication outcome: nothing about the account was learnt.
            tracing::warn!(ip = %IpText(req.ip), "login refused: the bcrypt queue is full (limits.bcrypt_queue*)");
            return Err(AuthError::Overloaded);
        }
        let decision = decision.inspect_err(|e| {
            metrics::global().authn(e.backend, "error", started.elapsed());
            tracing::error!(account = %req.account, ip = %IpText(req.ip), error = %e, "authentication backend error");
        })?;
        // Refusals are counted without backend or latency: `/metrics` is public, and a
        // wrong password must look exactly like an unknown account there (the audit log,
        // which only the operator reads, keeps the difference).
        match decision.outcome {
            AuthnOutcome::Allow(labels) => {
                let backend = decision.backend.map_or("none", |(_, name)| name);
                metrics::global().authn(backend, "allow", started.elapsed());
                let backend = decision.backend.map_or("", |(_, name)| name);
                Ok(Caller::new(req.account.clone(), labels, backend, "password"))
            }
            AuthnOutcome::AllowMapped(mapped) => {
                let backend = decision.backend.map_or("none", |(_, name)| name);
                metrics::global().authn(backend, "allow", started.elapsed());
                let not_after = mapped.not_after.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
                let mut caller = Caller::new(mapped.account, mapped.labels, backend, "ci_token");
                caller.not_after = Some(i64::try_from(not_after).unwrap_or(i64::MAX));
                Ok(caller)
            }
            AuthnOutcome::Deny => {
                metrics::global().authn_denied();
                let backend = decision.backend.map_or("", |(_, name)| name);
                audit_denied(req, "wrong_password", backend);
                Err(AuthError::Unauthorized)
            }
            AuthnOutcome::NoMatch => {
                metrics::global().authn_denied();
                audit_denied(req, "unknown_account", "");
                Err(AuthError::Unauthorized)
            }
        }
    }

    async fn authorize(&self, req: &AuthRequest, caller: &Caller, scope: &Scope) -> Result<ScopeDecision, AuthError> {
        let (account, labels) = match &caller.acting_for {
            Some((account, labels)) => (account, labels),
            None => (&caller.account, &caller.labels),
        };
        let authz_req = AuthzRequest {
            account,
            resource_type: &scope.resource_type,
            name: &scope.name,
            service: &req.service,
            ip: req.ip,
            actions: &scope.actions,
            labels,
        };
        let decision = self.authz.authorize(&authz_req).await.inspect_err(|e| {
            tracing::error!(account = %caller.account, scope = %ScopeText(scope), error = %e, "authorization backend error");
        })?;
        Ok(decision)
    }
}

/// What a request logs in with, decided once per request ([`AuthService::presented`]).
#[derive(Clone, Copy)]
enum Presented<'a> {
    RefreshToken(&'a Identity, &'a str),
    Robot(&'a Identity, &'a str),
    Password,
}

/// The authenticated caller of one request.
pub(crate) struct Caller {
    /// The account the ACL sees and the token's `sub`.
    pub account: String,
    pub labels: Labels,
    /// The authenticator that decided (`""` for robots and refresh tokens).
    pub backend: &'static str,
    /// Set for robots: their own scopes narrow what the ACL grants.
    pub robot: Option<crate::identity::robot::RobotLogin>,
    /// `password`, `ci_token`, `identity_token` or `robot`, for the audit line.
    pub credential: &'static str,
    /// Unix seconds the issued token must not outlive (the CI token's `exp`).
    pub not_after: Option<i64>,
    /// For a robot owned by an account: that account and its current labels, which the ACL
    /// is asked about instead of the robot (the robot's scopes then narrow the answer).
    pub acting_for: Option<(String, Labels)>,
}

impl Caller {
    pub(crate) fn new(account: String, labels: Labels, backend: &'static str, credential: &'static str) -> Caller {
        Caller { account, labels, backend, robot: None, credential, not_after: None, acting_for: None }
    }
}

/// The client address as text, empty when there is none (for fields that take a `&str`).
fn ip_text(ip: Option<IpAddr>) -> String {
    IpText(ip).to_string()
}

/// The `event` field of every audit line; with `outcome` (`issued` or `denied`) and the
/// fields below it is a stable interface for log pipelines (documented in the README).
pub const AUDIT_EVENT: &str = "token_decision";

/// Audit line of a request refused at authentication (401).
pub(crate) fn audit_denied(req: &AuthRequest, reason: &'static str, backend: &str) {
    let message = match reason {
        "wrong_password" => "authentication failed: wrong password",
        "invalid_grant" => "authentication failed: refresh token refused",
        "robot_refused" => "authentication failed: unknown, expired or revoked robot, or wrong secret",
        _ => "authentication failed: account did not match any authn rule",
    };
    tracing::warn!(
        event = AUDIT_EVENT,
        outcome = "denied",
        reason,
        account = %req.account,
        ip = %IpText(req.ip),
        service = %req.service,
        requested = %ScopesText(&req.scopes),
        backend,
        "{message}"
    );
    recorder::record(|| RecentEvent {
        reason: reason.to_string(),
        account: req.account.clone(),
        ip: IpText(req.ip).to_string(),
        service: req.service.clone(),
        requested: ScopesText(&req.scopes).to_string(),
        repositories: scope_repositories(&req.scopes),
        detail: backend.to_string(),
        ..RecentEvent::new(AUDIT_EVENT, "denied")
    });
}

fn scope_repositories(scopes: &[Scope]) -> Vec<String> {
    crate::recent_events::repositories(scopes.iter().map(|s| (s.resource_type.as_str(), s.name.as_str())))
}

/// One log line per decision: who, from where, what was asked, what was granted and why.
fn log_decision(req: &AuthRequest, caller: &Caller, access: &[AccessEntry], decisions: &[ScopeDecision]) {
    tracing::info!(
        event = AUDIT_EVENT,
        outcome = "issued",
        account = %caller.account,
        credential = caller.credential,
        ip = %IpText(req.ip),
        service = %req.service,
        requested = %ScopesText(&req.scopes),
        granted = %GrantedText(access),
        rules = %RulesText(decisions),
        "token issued"
    );
    recorder::record(|| RecentEvent {
        account: caller.account.clone(),
        credential: caller.credential.to_string(),
        ip: IpText(req.ip).to_string(),
        service: req.service.clone(),
        requested: ScopesText(&req.scopes).to_string(),
        granted: GrantedText(access).to_string(),
        rules: RulesText(decisions).to_string(),
        repositories: scope_repositories(&req.scopes),
        ..RecentEvent::new(AUDIT_EVENT, "issued")
    });
}
