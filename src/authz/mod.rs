//! Authorization contract and the ordered chain of authorizers.
//! Backends live in submodules and depend on this file, never the other way round.
use std::sync::Arc;

use async_trait::async_trait;

use crate::request::AuthzRequest;

pub mod acl;
mod acl_index;
pub mod acl_json;
pub mod casbin;
pub mod explain;
pub mod ext;
pub mod mongo_acl;
pub mod operators;
pub mod pattern;
pub mod refreshed_acl;
#[cfg(test)]
mod test_rng;
pub mod xorm_acl;

/// Which rule decided, for the decision log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchedRule {
    /// 0-based index of the entry in its ACL.
    pub index: usize,
    pub comment: Option<String>,
}

/// The answer of one authorizer for one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthzOutcome {
    /// No rule applies: the chain asks the next authorizer.
    NoMatch,
    /// A rule applies: these actions are granted (possibly none, which denies) and the
    /// chain stops.
    Decided { actions: Vec<String>, rule: Option<MatchedRule> },
}

/// An authorizer that could not answer. The message goes to the log only.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AuthzError(pub String);

/// An authorization backend.
///
/// Contract (docker_auth `api/authz.go`): return `Err` only when the request could not be
/// served; an empty grant is a denial, not an error. Safe to call concurrently.
#[async_trait]
pub trait Authorizer: Send + Sync {
    /// Short name for logs, e.g. `acl`.
    fn name(&self) -> &'static str;
    /// Whether the backend can answer now (its directory or database is reachable), for
    /// `/readyz`. Backends without a remote peer are always ready.
    async fn ready(&self) -> Result<(), AuthzError> {
        Ok(())
    }
    async fn authorize(&self, req: &AuthzRequest<'_>) -> Result<AuthzOutcome, AuthzError>;
}

/// The result of the chain for one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeDecision {
    pub actions: Vec<String>,
    /// The authorizer (0-based index, name) and rule that decided; None = default deny.
    pub decided_by: Option<(usize, &'static str, Option<MatchedRule>)>,
}

#[derive(Debug, thiserror::Error)]
#[error("authz #{} ({}) returned error: {}", .index + 1, .backend, .source)]
pub struct ChainError {
    pub index: usize,
    pub backend: &'static str,
    pub source: AuthzError,
}

/// Authorizers in docker_auth's fixed order. No match anywhere means deny.
pub struct AuthzChain {
    backends: Vec<Arc<dyn Authorizer>>,
}

impl AuthzChain {
    pub fn new(backends: Vec<Arc<dyn Authorizer>>) -> Self {
        AuthzChain { backends }
    }

    /// The first backend that is not ready, with its error.
    pub async fn ready(&self) -> Result<(), (&'static str, AuthzError)> {
        for backend in &self.backends {
            backend.ready().await.map_err(|e| (backend.name(), e))?;
        }
        Ok(())
    }

    pub async fn authorize(&self, req: &AuthzRequest<'_>) -> Result<ScopeDecision, ChainError> {
        for (index, backend) in self.backends.iter().enumerate() {
            let outcome =
                backend.authorize(req).await.map_err(|source| ChainError { index, backend: backend.name(), source })?;
            if let AuthzOutcome::Decided { actions, rule } = outcome {
                return Ok(ScopeDecision { actions, decided_by: Some((index, backend.name(), rule)) });
            }
        }
        Ok(ScopeDecision { actions: Vec::new(), decided_by: None })
    }
}
