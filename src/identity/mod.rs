//! Credentials registry-auth issues itself and remembers in the store: identity tokens
//! (`docker login`'s refresh tokens) and robot (CI) secrets. Written against
//! [`crate::store::Store`], called from `service`; knows nothing of HTTP or of which
//! store engine is underneath.
use std::sync::Arc;

use crate::store::SharedStore;

pub mod audit;
pub mod identity_token;
pub mod issued_secret;
pub mod lockout;
pub mod lockouts;
pub mod records;
pub mod robot;
pub mod secret_hasher;

pub use crate::store::StoreError;
pub use identity_token::{IdentityTokenConfig, IdentityTokens};
pub use robot::Robots;
pub use secret_hasher::SecretHasher;

/// Both features on one store.
pub struct Identity {
    pub tokens: IdentityTokens,
    pub robots: Robots,
    /// Which credentials were already audited as used this hour.
    pub uses: audit::UseAudit,
}

impl Identity {
    pub fn new(store: SharedStore, hasher: Arc<SecretHasher>, config: IdentityTokenConfig) -> Identity {
        Identity {
            tokens: IdentityTokens::new(store.clone(), hasher.clone(), config),
            robots: Robots::new(store, hasher),
            uses: audit::UseAudit::default(),
        }
    }
}
