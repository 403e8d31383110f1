//! Credentials registry-auth issues itself and remembers in the store: identity tokens
//! (`docker login`'s refresh tokens) and robot (CI) secrets. Written against
//! [`crate::store::Store`], called from `service`; knows nothing of HTTP or of which
//! store engine is underneath.
use crate::store::SharedStore;

pub mod identity_token;
pub mod issued_secret;
pub mod lockout;
pub mod records;
pub mod robot;

pub use crate::store::StoreError;
pub use identity_token::{IdentityTokenConfig, IdentityTokens};
pub use robot::Robots;

/// Both features on one store.
pub struct Identity {
    pub tokens: IdentityTokens,
    pub robots: Robots,
}

impl Identity {
    pub fn new(store: SharedStore, config: IdentityTokenConfig) -> Identity {
        Identity { tokens: IdentityTokens::new(store.clone(), config), robots: Robots::new(store) }
    }
}
