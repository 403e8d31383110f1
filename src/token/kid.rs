//! Public key material and the two key IDs derived from it: the libtrust fingerprint that
//! registry 2.8 looks up (token-spec.md §3.4) and the RFC 7638 thumbprint that registry 3.1+
//! computes (parity.md §2.2). Works on public values only, so the spec's test vectors apply
//! directly. Imports nothing from the rest of the crate.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// The NIST curves a token key may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    /// The JWK `crv` name.
    pub fn jwk_name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        }
    }

    /// Length of one coordinate in bytes (P-521 rounds 521 bits up to 66 bytes).
    pub fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }

    /// DER of the named-curve OID (secp256r1, secp384r1, secp521r1), tag included.
    fn oid_der(self) -> &'static [u8] {
        match self {
            Curve::P256 => &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
            Curve::P384 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
            Curve::P521 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23],
        }
    }
}

/// A public key as the numbers that define it. Integers are big-endian; leading zero bytes
/// are allowed on input and ignored wherever a minimal encoding is needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKeyMaterial {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// `x` and `y` are the affine coordinates of the key's own point.
    Ec {
        curve: Curve,
        x: Vec<u8>,
        y: Vec<u8>,
    },
}

const OID_RSA_ENCRYPTION: &[u8] = &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const DER_NULL: &[u8] = &[0x05, 0x00];

impl PublicKeyMaterial {
    /// SubjectPublicKeyInfo DER exactly as Go's `x509.MarshalPKIXPublicKey` writes it, which is
    /// what libtrust hashes: RSA with NULL parameters, EC with a named curve and an
    /// uncompressed point. Re-encoded rather than copied from the certificate, because a
    /// certificate may carry a compressed point or omit the NULL.
    pub fn spki_der(&self) -> Vec<u8> {
        let (algorithm, key_bits) = match self {
            PublicKeyMaterial::Rsa { n, e } => {
                let rsa_key = der_sequence(&[der_integer(n), der_integer(e)]);
                ([OID_RSA_ENCRYPTION, DER_NULL].concat(), rsa_key)
            }
            PublicKeyMaterial::Ec { curve, x, y } => {
                let len = curve.coordinate_len();
                let point = [&[0x04][..], &left_pad(x, len), &left_pad(y, len)].concat();
                ([OID_EC_PUBLIC_KEY, curve.oid_der()].concat(), point)
            }
        };
        let bit_string = der_tlv(0x03, &[&[0u8][..], &key_bits].concat());
        der_sequence(&[der_tlv(0x30, &algorithm), bit_string])
    }
}

/// The libtrust key ID: SHA-256 of the SPKI DER, first 30 bytes, base32, 12 groups of 4.
pub fn libtrust_kid(key: &PublicKeyMaterial) -> String {
    let digest = Sha256::digest(key.spki_der());
    let encoded = base32(&digest[..30]);
    let groups: Vec<&str> = encoded.as_bytes().chunks(4).filter_map(|chunk| std::str::from_utf8(chunk).ok()).collect();
    groups.join(":")
}

/// RFC 7638 thumbprint with minimal-byte integers, as registry 3.1 computes it. Unlike
/// docker_auth (which hashes the curve generator), EC keys use their own x and y.
pub fn thumbprint_kid(key: &PublicKeyMaterial) -> String {
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(strip_leading_zeros(bytes));
    // Members in lexicographic order, no whitespace (RFC 7638 §3.2); all values are
    // base64url or fixed names, so no JSON escaping is needed.
    let canonical = match key {
        PublicKeyMaterial::Rsa { n, e } => {
            format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n))
        }
        PublicKeyMaterial::Ec { curve, x, y } => {
            format!(r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#, curve.jwk_name(), b64(x), b64(y))
        }
    };
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// RFC 4648 base32, upper-case, without padding.
fn base32(data: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(data.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &byte in data {
        buffer = (buffer << 8) | u32::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

pub(crate) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

pub(crate) fn left_pad(bytes: &[u8], len: usize) -> Vec<u8> {
    let bytes = strip_leading_zeros(bytes);
    let mut out = vec![0u8; len.saturating_sub(bytes.len())];
    out.extend_from_slice(bytes);
    out
}

/// One DER tag-length-value with a definite length.
pub(crate) fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let len_bytes = len.to_be_bytes();
        let significant = strip_leading_zeros(&len_bytes);
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

pub(crate) fn der_sequence(items: &[Vec<u8>]) -> Vec<u8> {
    der_tlv(0x30, &items.concat())
}

/// A non-negative DER INTEGER: minimal bytes, with a 0x00 prefix when the top bit is set.
pub(crate) fn der_integer(value: &[u8]) -> Vec<u8> {
    let value = strip_leading_zeros(value);
    let mut content = Vec::with_capacity(value.len() + 1);
    if value.first().is_none_or(|&b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(value);
    der_tlv(0x02, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64url(s: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(s).unwrap()
    }

    /// distribution's docs/spec/auth/jwt.md example key (token-spec.md §7).
    fn jwt_md_ec_key() -> PublicKeyMaterial {
        PublicKeyMaterial::Ec {
            curve: Curve::P256,
            x: b64url("m7zUpx3b-zmVE5cymSs64POG9QcyEpJaYCD82-549_Q"),
            y: b64url("dU3biz8sZ_8GPB-odm8Wxz3lNDr1xcAQQPQaOcr1fmc"),
        }
    }

    /// RFC 7638 §3.1 example RSA key.
    fn rfc7638_rsa_key() -> PublicKeyMaterial {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        PublicKeyMaterial::Rsa { n: b64url(n), e: b64url("AQAB") }
    }

    #[test]
    fn ec_vector_libtrust() {
        assert_eq!(libtrust_kid(&jwt_md_ec_key()), "PYYO:TEWU:V7JH:26JV:AQTZ:LJC3:SXVJ:XGHA:34F2:2LAQ:ZRMK:Z7Q6");
    }

    #[test]
    fn ec_vector_thumbprint() {
        assert_eq!(thumbprint_kid(&jwt_md_ec_key()), "8qjioA3ZA7ti2JIE7c-U8smBFuZolQZvhSHDPU3hhB8");
    }

    #[test]
    fn rsa_vector_thumbprint() {
        assert_eq!(thumbprint_kid(&rfc7638_rsa_key()), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn rsa_vector_libtrust() {
        assert_eq!(libtrust_kid(&rfc7638_rsa_key()), "VUZD:EDHW:YWLN:RBFQ:KOA3:UVZ2:XKG5:2V2J:WTPI:6SRD:U6PZ:VCO5");
    }

    #[test]
    fn thumbprint_ignores_leading_zero_bytes_like_registry_3_1() {
        let mut padded = rfc7638_rsa_key();
        if let PublicKeyMaterial::Rsa { n, e } = &mut padded {
            n.insert(0, 0);
            e.insert(0, 0);
        }
        assert_eq!(thumbprint_kid(&padded), thumbprint_kid(&rfc7638_rsa_key()));
    }

    #[test]
    fn base32_matches_rfc4648_vectors() {
        assert_eq!(base32(b""), "");
        assert_eq!(base32(b"f"), "MY");
        assert_eq!(base32(b"fo"), "MZXQ");
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn der_lengths_and_integers() {
        assert_eq!(der_integer(&[0x7f]), vec![0x02, 0x01, 0x7f]);
        assert_eq!(der_integer(&[0x00, 0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(der_integer(&[]), vec![0x02, 0x01, 0x00]);
        let long = der_tlv(0x04, &[0u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
    }
}
