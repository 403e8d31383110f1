//! The two logins that need the store: an identity token presented with
//! `grant_type=refresh_token`, and a robot's secret. Both end in the same ACL evaluation as
//! a password login (state.md: the ACL decides, always); what the store holds only proves
//! who the caller is. A store that cannot be reached refuses these grants (fail closed).
use super::{audit_denied, AuthError, AuthRequest, AuthService, Caller};
use crate::authn::LookupOutcome;
use crate::identity::identity_token::IssueError;
use crate::identity::Identity;

impl AuthService {
    /// The account behind a refresh token, with labels refreshed from its backend.
    pub(super) async fn redeem(
        &self,
        identity: &Identity,
        req: &AuthRequest,
        token: &str,
    ) -> Result<Caller, AuthError> {
        let record = match identity.tokens.redeem(token).await.inspect_err(store_failed)? {
            Ok(record) => record,
            Err(rejected) => {
                audit_denied(req, "invalid_grant", "");
                return Err(AuthError::InvalidGrant(rejected.reason()));
            }
        };
        let labels = match self.authn.lookup(&record.backend, &record.account).await.inspect_err(|e| {
            tracing::error!(account = %record.account, error = %e, "authentication backend error during a refresh-token exchange");
        })? {
            LookupOutcome::Found(labels) => labels,
            LookupOutcome::Unsupported => record.labels.clone().unwrap_or_default(),
            LookupOutcome::NotFound => {
                audit_denied(req, "invalid_grant", &record.backend);
                return Err(AuthError::InvalidGrant("the account no longer exists"));
            }
        };
        Ok(Caller::new(record.account, labels, "", "identity_token"))
    }

    pub(super) async fn robot_login(
        &self,
        identity: &Identity,
        req: &AuthRequest,
        name: &str,
    ) -> Result<Caller, AuthError> {
        let login = identity.robots.login(name, req.password.expose()).await.inspect_err(store_failed)?;
        let Some(login) = login else {
            audit_denied(req, "robot_refused", "robot");
            return Err(AuthError::Unauthorized);
        };
        let mut caller = Caller::new(login.account.clone(), login.labels.clone(), "", "robot");
        caller.robot = Some(login);
        Ok(caller)
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
            Ok(token) => {
                tracing::info!(
                    event = "identity_token_issued",
                    account = %caller.account,
                    backend = caller.backend,
                    client_id = %req.client_id.escape_debug(),
                    "identity token issued"
                );
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
