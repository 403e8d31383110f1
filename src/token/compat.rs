//! Which registry versions verify our tokens by `kid`, for the key and mode in use
//! (token-spec.md §4.1; registry3-token-rules.md). With `x5c` every version verifies the
//! chain and ignores the kid, so nothing here applies. Public key material only.
use super::kid::PublicKeyMaterial;
use super::KidMode;

/// A reason some registry version will refuse our tokens by kid, and what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The config key the finding is about.
    pub key: &'static str,
    pub message: String,
    pub hint: String,
}

const USE_X5C_OR_JWKS: &str = "set token.x5c: true (registry 2.8 and 3.x accept it), or give registry 3.x the file printed by `registry-auth jwks` as auth.token.jwks";

/// Every finding for this key, kid mode and x5c setting; empty when all versions agree.
pub fn kid_findings(public: &PublicKeyMaterial, mode: KidMode, x5c: bool) -> Vec<Finding> {
    if x5c {
        return Vec::new();
    }
    let mut findings = Vec::new();
    match mode {
        KidMode::Libtrust => findings.push(Finding {
            key: "token.x5c",
            message: "tokens carry only a libtrust key ID, which registry 3.x no longer computes: registry 3.0 and 3.1 refuse them (\"token signed by untrusted key with ID\"); only registry 2.x accepts them".to_owned(),
            hint: USE_X5C_OR_JWKS.to_owned(),
        }),
        KidMode::Thumbprint => {
            if let PublicKeyMaterial::Ec { .. } = public {
                findings.push(Finding {
                    key: "token.disable_legacy_key_id",
                    message: "registry 3.0.0 gives every EC key of a curve the same kid (it hashes the curve's generator point), so it refuses these tokens by kid from its rootcertbundle; registry 2.x refuses thumbprint kids altogether".to_owned(),
                    hint: format!("{USE_X5C_OR_JWKS}, or upgrade the registry to 3.1"),
                });
            }
            if has_leading_zero_coordinate(public) {
                findings.push(Finding {
                    key: "token.disable_legacy_key_id",
                    message: "the key's x or y coordinate starts with a zero byte: registry 3.1.x thumbprints it without the padding RFC 7638 requires, so the kid in our tokens (3.1.x's value) is not the key's RFC 7638 thumbprint and any verifier that pads refuses it".to_owned(),
                    hint: format!("{USE_X5C_OR_JWKS}, or make a new key with `registry-auth gen-cert` (it never makes such keys)"),
                });
            }
        }
    }
    findings
}

/// Whether an EC coordinate has a leading zero byte, where registry 3.1.x's unpadded
/// thumbprint and RFC 7638's differ (about 1 P-256 key in 128).
pub fn has_leading_zero_coordinate(public: &PublicKeyMaterial) -> bool {
    match public {
        PublicKeyMaterial::Ec { curve, x, y } => {
            let len = curve.coordinate_len();
            // A short (already stripped) coordinate had leading zeros too.
            [x, y].iter().any(|c| c.len() < len || c.first() == Some(&0))
        }
        PublicKeyMaterial::Rsa { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::kid::Curve;

    fn ec(x0: u8) -> PublicKeyMaterial {
        let mut x = vec![7u8; 32];
        x[0] = x0;
        PublicKeyMaterial::Ec { curve: Curve::P256, x, y: vec![9; 32] }
    }

    #[test]
    fn findings_by_mode_key_and_x5c() {
        let rsa = PublicKeyMaterial::Rsa { n: vec![0xc0; 256], e: vec![1, 0, 1] };
        assert!(kid_findings(&ec(0), KidMode::Thumbprint, true).is_empty(), "x5c wins on every version");
        assert_eq!(kid_findings(&rsa, KidMode::Libtrust, false)[0].key, "token.x5c");
        assert!(kid_findings(&rsa, KidMode::Thumbprint, false).is_empty());
        let ec_findings = kid_findings(&ec(1), KidMode::Thumbprint, false);
        assert_eq!(ec_findings.len(), 1);
        assert!(ec_findings[0].message.contains("3.0.0"));
        let zero = kid_findings(&ec(0), KidMode::Thumbprint, false);
        assert_eq!(zero.len(), 2);
        assert!(zero[1].message.contains("zero byte") && zero[1].hint.contains("gen-cert"));
        assert!(has_leading_zero_coordinate(&PublicKeyMaterial::Ec {
            curve: Curve::P256,
            x: vec![1; 31],
            y: vec![1; 32]
        }));
    }
}
