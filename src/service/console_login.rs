//! A console sign-in with username and password: the same authn chain, bcrypt pool and
//! lockout as a `docker login`, with the same audit lines (service `console`). Only a
//! password proves a person here: robots, identity tokens and CI tokens are credentials
//! for machines and never open a console session.
use std::net::IpAddr;

use super::{AuthError, AuthRequest, AuthService};
use crate::identity::lockout::Attempt;
use crate::request::Labels;
use crate::secret::Secret;

/// The `service` of console sign-ins in audit lines and lockout events.
pub const CONSOLE_SERVICE: &str = "console";

/// Who signed in: the account the ACL sees, its labels and the backend that said so.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub account: String,
    pub labels: Labels,
    pub backend: &'static str,
}

impl AuthService {
    /// Checks a console password. Every refusal is [`AuthError::Unauthorized`] (wrong
    /// password and unknown account alike, after the chain's decoy check), counted by the
    /// lockout; a locked address or account gets [`AuthError::TooManyAttempts`] before any
    /// password is checked.
    pub async fn console_sign_in(
        &self,
        account: &str,
        password: Secret,
        ip: Option<IpAddr>,
    ) -> Result<SignedIn, AuthError> {
        let attempt = Attempt { account, ip, service: CONSOLE_SERVICE };
        let (checked, read_ahead) = self.lockout.check_reading(&attempt, self.authn.record_keys(account)).await;
        if let Err(retry_after) = checked {
            return Err(AuthError::TooManyAttempts { retry_after });
        }
        let req = AuthRequest {
            account: account.to_string(),
            password,
            service: CONSOLE_SERVICE.to_string(),
            ip,
            scopes: Vec::new(),
            refresh_token: None,
            offline: false,
            client_id: String::new(),
        };
        let result = match self.authenticate(&req, &read_ahead).await {
            Ok(caller) if caller.credential == "password" && !caller.account.is_empty() => {
                Ok(SignedIn { account: caller.account, labels: caller.labels, backend: caller.backend })
            }
            Ok(_) => Err(AuthError::Unauthorized),
            Err(e) => Err(e),
        };
        if matches!(result, Err(AuthError::Unauthorized)) {
            self.lockout.record_failure(&attempt).await;
        }
        result
    }
}
