//! Secrets we issue (identity tokens, robot secrets): 256 random bits from the OS RNG and
//! a recognisable prefix. The store keeps their keyed hash ([`super::secret_hasher`]);
//! bcrypt (for human passwords) would only cost every login time, as a 256-bit random
//! value cannot be guessed from any hash of it. [`legacy_digest`] is the plain SHA-256
//! of records written before the keyed hash, still accepted.
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

/// Random bytes per secret (the issue asks for at least 128 bits).
const RANDOM_BYTES: usize = 32;
/// base64url without padding of [`RANDOM_BYTES`].
const ENCODED_LEN: usize = 43;

/// What a secret is for; the prefix tells a leaked value's kind to scanners and humans,
/// and the kind is part of the digest so one kind can never stand in for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    IdentityToken,
    Robot,
    /// A console session cookie.
    ConsoleSession,
    /// The browser binding of a console sign-in form (before any session exists).
    ConsoleSignIn,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::IdentityToken => "rait_",
            Kind::Robot => "rars_",
            Kind::ConsoleSession => "racs_",
            Kind::ConsoleSignIn => "racf_",
        }
    }
}

/// The OS RNG failed: nothing can be issued safely.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RngError;

/// A fresh secret of `kind`.
pub fn generate(kind: Kind) -> Result<String, RngError> {
    let mut bytes = [0u8; RANDOM_BYTES];
    SystemRandom::new().fill(&mut bytes).map_err(|_| RngError)?;
    Ok(format!("{}{}", kind.prefix(), base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// Whether `text` has the shape of a secret of `kind` (checked before any store lookup).
pub fn well_formed(kind: Kind, text: &str) -> bool {
    text.strip_prefix(kind.prefix()).is_some_and(|body| {
        body.len() == ENCODED_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// The text hashed before a secret, so that one kind can never stand in for another.
pub(crate) fn domain(kind: Kind) -> &'static str {
    kind.prefix()
}

/// Lower-case hex SHA-256 of kind and secret: how records written before the keyed hash
/// name an identity token and check a robot's secret.
pub fn legacy_digest(kind: Kind, secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(kind.prefix().as_bytes());
    hasher.update([0u8]);
    hasher.update(secret.as_bytes());
    hex(&hasher.finalize())
}

/// Constant-time equality of two digests.
pub fn digests_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_well_formed_distinct_and_kind_bound() {
        let a = generate(Kind::IdentityToken).unwrap();
        let b = generate(Kind::IdentityToken).unwrap();
        assert_ne!(a, b);
        assert!(well_formed(Kind::IdentityToken, &a));
        assert!(!well_formed(Kind::Robot, &a));
        assert_ne!(legacy_digest(Kind::IdentityToken, &a), legacy_digest(Kind::Robot, &a));
        assert_eq!(legacy_digest(Kind::Robot, "x").len(), 64);
    }

    #[test]
    fn malformed_values_are_recognised() {
        let good = generate(Kind::Robot).unwrap();
        for bad in ["", "rars_", "rars_short", &format!("{good}x"), &good.replace('_', "+"), &good[1..]] {
            assert!(!well_formed(Kind::Robot, bad), "{bad}");
        }
        assert!(!well_formed(Kind::Robot, &"rars_é".repeat(20)));
    }

    #[test]
    fn digest_comparison() {
        let d = legacy_digest(Kind::Robot, "s");
        assert!(digests_equal(&d, &legacy_digest(Kind::Robot, "s")));
        assert!(!digests_equal(&d, &legacy_digest(Kind::Robot, "t")));
        assert!(!digests_equal(&d, &d[1..]));
    }
}
