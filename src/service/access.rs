//! What an already signed-in account may do, decided by the same authz chain `/auth` asks
//! (no token is signed, no audit line written): for the console's My access and
//! Repositories pages and its try-a-scope box.
use std::net::IpAddr;

use super::{AuthError, AuthService};
use crate::authz::ScopeDecision;
use crate::request::{AuthzRequest, Labels, Scope};

/// The actions the console asks about for every repository, in scope order.
pub const REPOSITORY_ACTIONS: [&str; 3] = ["delete", "pull", "push"];

/// Who asks, as the token endpoint would see them.
#[derive(Debug, Clone)]
pub struct Asker<'a> {
    pub account: &'a str,
    pub labels: &'a Labels,
    /// The registry's `service` (the `aud` of its tokens).
    pub service: &'a str,
    pub ip: Option<IpAddr>,
}

impl Asker<'_> {
    pub fn request<'r>(&'r self, resource_type: &'r str, name: &'r str, actions: &'r [String]) -> AuthzRequest<'r> {
        AuthzRequest {
            account: self.account,
            resource_type,
            name,
            service: self.service,
            ip: self.ip,
            actions,
            labels: self.labels,
        }
    }
}

impl AuthService {
    /// The chain's decision for one scope.
    pub async fn decide(&self, asker: &Asker<'_>, scope: &Scope) -> Result<ScopeDecision, AuthError> {
        let req = asker.request(&scope.resource_type, &scope.name, &scope.actions);
        Ok(self.authz.authorize(&req).await?)
    }

    /// [`REPOSITORY_ACTIONS`] decided for each of `repositories`, in their order.
    pub async fn repository_access(
        &self,
        asker: &Asker<'_>,
        repositories: &[String],
    ) -> Result<Vec<ScopeDecision>, AuthError> {
        let actions: Vec<String> = REPOSITORY_ACTIONS.iter().map(|a| a.to_string()).collect();
        let mut decisions = Vec::with_capacity(repositories.len());
        for name in repositories {
            let req = asker.request("repository", name, &actions);
            decisions.push(self.authz.authorize(&req).await?);
        }
        Ok(decisions)
    }
}
