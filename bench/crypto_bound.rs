//! Single-core cost of the two operations that bound tokens per second: one bcrypt
//! verification at a given cost, and one token signature with a given key. Also hashes
//! passwords for the bench configs. Used by `bench/run.sh`; not part of the product.
//!
//! crypto_bound hash COST PASSWORD            → prints a bcrypt hash
//! crypto_bound users COST N PASSWORD         → YAML `users:` entries user0..N-1, all with PASSWORD
//! crypto_bound bcrypt COST                   → microseconds per verification
//! crypto_bound sign CERT KEY                 → microseconds per signed token (our issuer)
//! crypto_bound sign-raw CERT KEY             → microseconds per bare signature (the crate's
//!                                              primitive alone, over a token-sized input)
//! crypto_bound ci-token ISSUER AUDIENCE JWKS → writes a JWKS (one RSA-2048 key) to JWKS and
//!                                              prints an RS256 CI token signed with it, valid
//!                                              for an hour (GitHub Actions' shape)
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use registry_auth::request::AccessEntry;
use registry_auth::token::{KidMode, SigningKey, TokenIssuer, TokenOptions};

/// Repeats `op` for at least `budget` and returns microseconds per call.
fn per_call_micros(budget: Duration, mut op: impl FnMut()) -> f64 {
    op();
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < budget {
        op();
        calls += 1;
    }
    start.elapsed().as_secs_f64() * 1e6 / calls as f64
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let budget = Duration::from_secs(2);
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["hash", cost, password] => match cost.parse().map(|c| bcrypt::hash(password, c)) {
            Ok(Ok(hash)) => println!("{hash}"),
            _ => return usage(),
        },
        ["users", cost, count, password] => {
            // One hash for all: each login still runs a full bcrypt (and the credential
            // cache is keyed by account too), and 30,000 users are written in a second.
            let (Ok(cost), Ok(count)) = (cost.parse::<u32>(), count.parse::<usize>()) else { return usage() };
            let Ok(hash) = bcrypt::hash(password, cost) else { return usage() };
            for i in 0..count {
                println!("  \"user{i}\":\n    password: \"{hash}\"");
            }
        }
        ["bcrypt", cost] => {
            let Ok(Ok(hash)) = cost.parse().map(|c| bcrypt::hash("bench-password", c)) else { return usage() };
            println!(
                "{:.1}",
                per_call_micros(budget, || assert!(bcrypt::verify("bench-password", &hash).unwrap_or(false)))
            );
        }
        ["sign-raw", cert, key] => {
            let key = match SigningKey::load(Path::new(cert), Path::new(key)) {
                Ok(key) => key,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            // A JWS signing input of an anonymous pull token is about 450 bytes.
            let input = [b'a'; 450];
            println!("{:.1}", per_call_micros(budget, || assert!(key.sign(&input).is_ok())));
        }
        ["sign", cert, key] => {
            let key = match SigningKey::load(Path::new(cert), Path::new(key)) {
                Ok(key) => key,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let options =
                TokenOptions { issuer: "bench".into(), expiration_secs: 900, kid_mode: KidMode::Libtrust, x5c: false };
            let issuer = TokenIssuer::new(options, key);
            let access = [AccessEntry {
                resource_type: "repository".into(),
                class: None,
                name: "library/alpine".into(),
                actions: vec!["pull".into()],
            }];
            println!("{:.1}", per_call_micros(budget, || assert!(issuer.issue("", "registry", &access).is_ok())));
        }
        ["ci-token", issuer, audience, jwks] => match ci_token(issuer, audience, Path::new(jwks)) {
            Ok(token) => println!("{token}"),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
        _ => return usage(),
    }
    ExitCode::SUCCESS
}

/// A key pair for a bench issuer: its JWKS goes to `jwks`, the token it signs is returned.
fn ci_token(issuer: &str, audience: &str, jwks: &Path) -> Result<String, String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use rsa::pkcs1::EncodeRsaPrivateKey as _;
    use rsa::traits::PublicKeyParts as _;
    let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).map_err(|e| e.to_string())?;
    let pem = private.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).map_err(|e| e.to_string())?;
    let b64 = |n: &rsa::BigUint| URL_SAFE_NO_PAD.encode(n.to_bytes_be());
    let set = serde_json::json!({"keys": [{"kty": "RSA", "kid": "bench", "alg": "RS256", "use": "sig",
        "n": b64(private.n()), "e": b64(private.e())}]});
    std::fs::write(jwks, set.to_string()).map_err(|e| format!("{}: {e}", jwks.display()))?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?.as_secs();
    let claims = serde_json::json!({"iss": issuer, "aud": audience, "sub": "repo:bench/app:ref:refs/heads/main",
        "repository": "bench/app", "repository_owner": "bench", "iat": now, "nbf": now, "exp": now + 3600});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some("bench".into());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
    jsonwebtoken::encode(&header, &claims, &key).map_err(|e| e.to_string())
}

fn usage() -> ExitCode {
    eprintln!("usage: crypto_bound hash COST PASSWORD | users COST N PASSWORD | bcrypt COST | sign CERT KEY | sign-raw CERT KEY | ci-token ISSUER AUDIENCE JWKS");
    ExitCode::from(2)
}
