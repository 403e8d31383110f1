//! The two logins that need the store: an identity token presented with
//! `grant_type=refresh_token`, and a robot's secret. Both end in the same ACL evaluation as
//! a password login (state.md: the ACL decides, always); what the store holds only proves
//! who the caller is. A store that cannot be reached refuses these grants (fail closed).
//!
//! Metrics carry outcomes and reasons, never an account or robot name; robot refusals have
//! no reason at all (unknown, revoked, expired and wrong secret must look alike).
use super::{audit_denied, ip_text, AuthError, AuthRequest, AuthService, Caller};
use crate::authn::LookupOutcome;
use crate::identity::audit::{self, Event};
use crate::identity::identity_token::IssueError;
use crate::identity::Identity;
use crate::metrics;

impl AuthService {
    /// The account behind a refresh token, with labels refreshed from its backend.
    pub(super) async fn redeem(
        &self,
        identity: &Identity,
        req: &AuthRequest,
        token: &str,
    ) -> Result<Caller, AuthError> {
        let redeemed = identity.tokens.redeem(token).await.inspect_err(|e| {
            metrics::global().identity_token_refused("store_unavailable");
            store_failed(e);
        })?;
        let redeemed = match redeemed {
            Ok(redeemed) => redeemed,
            Err(rejected) => {
                metrics::global().identity_token_refused(rejected.label());
                audit_denied(req, "invalid_grant", "");
                return Err(AuthError::InvalidGrant(rejected.reason()));
            }
        };
        let record = redeemed.record;
        let labels = match self.authn.lookup(&record.backend, &record.account).await.inspect_err(|e| {
            tracing::error!(account = %record.account, error = %e, "authentication backend error during a refresh-token exchange");
        })? {
            LookupOutcome::Found(labels) => labels,
            LookupOutcome::Unsupported => record.labels.clone().unwrap_or_default(),
            LookupOutcome::NotFound => {
                metrics::global().identity_token_refused("account_gone");
                audit_denied(req, "invalid_grant", &record.backend);
                return Err(AuthError::InvalidGrant("the account no longer exists"));
            }
        };
        metrics::global().identity_token("exchanged");
        if identity.uses.first_this_hour(&format!("it:{}", redeemed.id)) {
            let event = Event {
                event: "identity_token_used",
                outcome: "used",
                account: &record.account,
                ip: &ip_text(req.ip),
                service: &req.service,
                credential: "identity_token",
                id: &redeemed.id,
                detail: &req.client_id.escape_debug().to_string(),
                ..Default::default()
            };
            audit::log(&event, "identity token used (first use this hour)");
        }
        Ok(Caller::new(record.account, labels, "", "identity_token"))
    }

    pub(super) async fn robot_login(
        &self,
        identity: &Identity,
        req: &AuthRequest,
        name: &str,
    ) -> Result<Caller, AuthError> {
        let login = identity.robots.login(name, req.password.expose()).await.inspect_err(|e| {
            metrics::global().robot_login("store_unavailable");
            store_failed(e);
        })?;
        let Some(login) = login else {
            metrics::global().robot_login("refused");
            audit_denied(req, "robot_refused", "robot");
            return Err(AuthError::Unauthorized);
        };
        metrics::global().robot_login("allowed");
        if identity.uses.first_this_hour(&format!("robot:{name}")) {
            let event = Event {
                event: "robot_used",
                outcome: "used",
                account: &login.account,
                ip: &ip_text(req.ip),
                service: &req.service,
                credential: "robot",
                id: name,
                ..Default::default()
            };
            audit::log(&event, "robot credential used (first use this hour)");
        }
        let mut caller = Caller::new(login.account.clone(), login.labels.clone(), "", "robot");
        if let Some(owner) = &login.owner {
            caller.acting_for = Some(self.robot_owner(req, owner).await?);
        }
        caller.robot = Some(login);
        Ok(caller)
    }

    /// The owner of a console CI credential as the ACL sees it now: its labels asked
    /// again from its backend (or the snapshot, for backends that cannot be asked). An
    /// owner who is gone takes the robot with them (401, as a revoked robot).
    async fn robot_owner(
        &self,
        req: &AuthRequest,
        owner: &crate::identity::robot::RobotOwner,
    ) -> Result<(String, crate::request::Labels), AuthError> {
        if owner.backend.is_empty() {
            // Signed in through a web sign-in provider: the labels it gave at creation.
            return Ok((owner.account.clone(), owner.labels.clone().unwrap_or_default()));
        }
        let found = self.authn.lookup(&owner.backend, &owner.account).await.inspect_err(|e| {
            tracing::error!(account = %owner.account, error = %e, "authentication backend error during a robot login");
        })?;
        match found {
            LookupOutcome::Found(labels) => Ok((owner.account.clone(), labels)),
            LookupOutcome::Unsupported => Ok((owner.account.clone(), owner.labels.clone().unwrap_or_default())),
            LookupOutcome::NotFound => {
                metrics::global().robot_login("refused");
                audit_denied(req, "robot_refused", "robot");
                Err(AuthError::Unauthorized)
            }
        }
    }

    /// The `refresh_token` of the response: the one presented (never rotated: dockerd keeps
    /// the first it got, moby#39718), or a new one for a password login that asked for it.
    /// Robots and anonymous logins get none: their credential is already what they store.
    pub(super) async fn refresh_token_for(
        &self,
        req: &AuthRequest,
        caller: &Caller,
    ) -> Result<Option<String>, AuthError> {
        if let Some(token) = &req.refresh_token {
            return Ok(Some(token.clone()));
        }
        let Some(identity) = &self.identity else { return Ok(None) };
        if !req.offline || caller.credential != "password" || caller.account.is_empty() {
            return Ok(None);
        }
        let snapshot = (!self.authn.can_lookup(caller.backend)).then(|| caller.labels.clone());
        let issued = identity.tokens.issue(&caller.account, caller.backend, snapshot, &req.client_id).await;
        match issued {
            Ok((token, id)) => {
                metrics::global().identity_token("issued");
                let detail = format!("backend={} client_id={}", caller.backend, req.client_id.escape_debug());
                let event = Event {
                    event: "identity_token_issued",
                    outcome: "created",
                    account: &caller.account,
                    ip: &ip_text(req.ip),
                    service: &req.service,
                    credential: "identity_token",
                    id: &id,
                    detail: &detail,
                    ..Default::default()
                };
                audit::log(&event, "identity token issued");
                Ok(Some(token))
            }
            Err(IssueError::Store(e)) => {
                store_failed(&e);
                Err(AuthError::Store(e))
            }
            Err(IssueError::Rng(e)) => Err(AuthError::Issue(e.to_string())),
        }
    }
}

fn store_failed(e: &crate::identity::StoreError) {
    tracing::error!(error = %e, "credential store unavailable: refusing a grant that needs it");
}
