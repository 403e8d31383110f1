//! CSRF tokens: every console form carries a hidden `csrf` field. In a session it is
//! HMAC-SHA256 keyed by the session's own random secret over the session's name, so it is
//! bound to that session and worthless in any other; before a session (the sign-in form)
//! it is the installation's keyed hash of a random binding cookie, so a form posted from
//! another site (login CSRF) carries no valid pair. Checked in constant time; SameSite=Strict
//! cookies are the second wall.
use base64::Engine as _;
use ring::hmac;
use subtle::ConstantTimeEq as _;

use super::{ConsoleError, ConsoleSession};

/// The token of the session named `digest` whose CSRF secret is `secret`.
pub fn token(secret: &str, digest: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = hmac::Context::with_key(&key);
    context.update(b"registry-auth console csrf\0");
    context.update(digest.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(context.sign().as_ref())
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Every POST handler calls this first: `submitted` is the form's `csrf` field (empty
/// when missing). A mismatch is 403 with a page that says to reload and try again.
pub fn verify(session: &ConsoleSession, submitted: &str) -> Result<(), ConsoleError> {
    if !submitted.is_empty() && same(&session.csrf, submitted) {
        return Ok(());
    }
    tracing::warn!(account = %session.account, "console form refused: missing or wrong CSRF token");
    Err(ConsoleError::csrf(Some(session.site.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound_to_secret_and_session() {
        let t = token("secret", "digest");
        assert_eq!(t, token("secret", "digest"));
        assert_ne!(t, token("other", "digest"));
        assert_ne!(t, token("secret", "other"));
        assert!(same(&t, &token("secret", "digest")));
        assert!(!same(&t, &t[1..]));
    }
}
