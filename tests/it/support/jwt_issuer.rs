//! A CI-token issuer on 127.0.0.1 and a random port: serves OIDC discovery and a JWKS, and
//! mints tokens with chosen claims, as GitHub Actions or GitLab CI would. Its keys can be
//! rotated (a new `kid`) while a test runs, and its endpoints (all, or one) can be told to
//! hang, answer garbage or send a huge body. Counts the JWKS fetches it served. For the
//! web sign-in it also names an authorization endpoint and answers its token endpoint
//! with whatever the test set ([`JwtIssuer::answer_token`]).
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey as _;
use rsa::pkcs1::EncodeRsaPrivateKey as _;
use rsa::traits::PublicKeyParts as _;
use serde_json::{json, Value};

/// How the issuer's endpoints answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Accept the connection and never answer.
    Hang,
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with an endless-looking body (4 MiB, no Content-Length).
    Huge,
}

/// One signing key: its `kid`, algorithm, private key and public JWK.
pub struct IssuerKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
    /// The public key as PEM (an attacker knows it: used for the HS256 confusion attack).
    pub public_pem: Vec<u8>,
}

impl IssuerKey {
    pub fn rsa(kid: &str) -> IssuerKey {
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let pem = private.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap();
        let public = private.to_public_key();
        let b64 = |n: &rsa::BigUint| URL_SAFE_NO_PAD.encode(n.to_bytes_be());
        let jwk =
            json!({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64(public.n()), "e": b64(public.e())});
        let public_pem = rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_pem(&public, rsa::pkcs1::LineEnding::LF).unwrap();
        IssuerKey {
            kid: kid.into(),
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
            jwk,
            public_pem: public_pem.into_bytes(),
        }
    }

    /// ES256 without `alg` in the JWK: the algorithm comes from the curve.
    pub fn ec(kid: &str) -> IssuerKey {
        let secret = p256::SecretKey::random(&mut rand::thread_rng());
        let pem = secret.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap();
        let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
        let (x, y) = (URL_SAFE_NO_PAD.encode(point.x().unwrap()), URL_SAFE_NO_PAD.encode(point.y().unwrap()));
        let jwk = json!({"kty": "EC", "kid": kid, "crv": "P-256", "x": x, "y": y});
        let public_pem =
            p256::pkcs8::EncodePublicKey::to_public_key_pem(&secret.public_key(), p256::pkcs8::LineEnding::LF).unwrap();
        IssuerKey {
            kid: kid.into(),
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            jwk,
            public_pem: public_pem.into_bytes(),
        }
    }
}

struct State {
    mode: Mode,
    /// `Some(path)`: `mode` applies to that endpoint only.
    mode_path: Option<String>,
    /// Published keys, the current signing key last.
    keys: Vec<Arc<IssuerKey>>,
    /// The token endpoint's answer (`None`: 400 invalid_grant).
    token_answer: Option<String>,
}

pub struct JwtIssuer {
    pub url: String,
    state: Arc<Mutex<State>>,
    jwks_fetches: Arc<AtomicUsize>,
    discovery_fetches: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    addr: String,
}

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

impl JwtIssuer {
    pub fn start(first_key: IssuerKey) -> JwtIssuer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let url = format!("http://{addr}");
        let state = Arc::new(Mutex::new(State {
            mode: Mode::Normal,
            mode_path: None,
            keys: vec![Arc::new(first_key)],
            token_answer: None,
        }));
        let (jwks_fetches, discovery_fetches) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let server = Server {
            url: url.clone(),
            state: state.clone(),
            jwks_fetches: jwks_fetches.clone(),
            discovery_fetches: discovery_fetches.clone(),
            stop: stop.clone(),
        };
        std::thread::spawn(move || server.accept_loop(listener));
        JwtIssuer { url, state, jwks_fetches, discovery_fetches, stop, addr }
    }

    pub fn set_mode(&self, mode: Mode) {
        let mut state = self.state.lock().unwrap();
        (state.mode, state.mode_path) = (mode, None);
    }

    /// `mode` for the endpoint at `path` only (`/.well-known/openid-configuration`,
    /// `/jwks`, `/token`); the others answer normally.
    pub fn set_mode_at(&self, path: &str, mode: Mode) {
        let mut state = self.state.lock().unwrap();
        (state.mode, state.mode_path) = (mode, Some(path.to_string()));
    }

    /// What the token endpoint answers from now on (200, JSON).
    pub fn answer_token(&self, body: &Value) {
        self.state.lock().unwrap().token_answer = Some(body.to_string());
    }

    /// Publishes `key` beside the old ones and signs with it from now on.
    pub fn rotate(&self, key: IssuerKey) {
        self.state.lock().unwrap().keys.push(Arc::new(key));
    }

    pub fn current_key(&self) -> Arc<IssuerKey> {
        self.state.lock().unwrap().keys.last().unwrap().clone()
    }

    pub fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn discovery_fetches(&self) -> usize {
        self.discovery_fetches.load(Ordering::SeqCst)
    }

    /// Claims a GitHub Actions job token carries, valid for `lifetime` seconds from now.
    pub fn claims(&self, audience: &str, repository: &str, lifetime: u64) -> Value {
        let now = now();
        let owner = repository.split('/').next().unwrap();
        json!({
            "iss": self.url, "aud": audience, "sub": format!("repo:{repository}:ref:refs/heads/main"),
            "repository": repository, "repository_owner": owner, "ref": "refs/heads/main",
            "iat": now, "nbf": now - 5, "exp": now + lifetime,
        })
    }

    /// Signs `claims` with the current key.
    pub fn mint(&self, claims: &Value) -> String {
        sign(&self.current_key(), claims)
    }
}

/// Signs with `key`, its `kid` in the header.
pub fn sign(key: &IssuerKey, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).unwrap()
}

/// A compact JWS with any header and signature bytes (for tokens no library would make).
pub fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.{}", enc(header), enc(claims), URL_SAFE_NO_PAD.encode(signature))
}

/// The HS256 "key confusion" forgery: HMAC over the token with the issuer's public key.
pub fn hs256_with_public_key(key: &IssuerKey, claims: &Value) -> String {
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": key.kid});
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!("{}.{}", enc(&header), enc(claims));
    let mac = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key.public_pem), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()))
}

impl Drop for JwtIssuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

struct Server {
    url: String,
    state: Arc<Mutex<State>>,
    jwks_fetches: Arc<AtomicUsize>,
    discovery_fetches: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn accept_loop(self, listener: TcpListener) {
        let server = Arc::new(self);
        for stream in listener.incoming() {
            if server.stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let server = server.clone();
            std::thread::spawn(move || server.serve(stream));
        }
    }

    fn serve(&self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let end = head.windows(4).position(|w| w == b"\r\n\r\n").map_or(head.len(), |at| at + 4);
        let text = String::from_utf8_lossy(&head[..end]).to_string();
        // Read a request body (the token endpoint's form) so that closing sends no reset.
        let length = text
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
            .unwrap_or(0usize);
        let mut body_read = head.len() - end;
        while body_read < length {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => body_read += n,
            }
        }
        let path = text.split_whitespace().nth(1).unwrap_or("").split('?').next().unwrap_or("").to_string();
        let (mode, jwks, token_answer) = {
            let state = self.state.lock().unwrap();
            let keys: Vec<&Value> = state.keys.iter().map(|k| &k.jwk).collect();
            let mode = match &state.mode_path {
                Some(only) if *only != path => Mode::Normal,
                _ => state.mode,
            };
            (mode, json!({"keys": keys}).to_string(), state.token_answer.clone())
        };
        let body = match path.as_str() {
            "/.well-known/openid-configuration" => {
                self.discovery_fetches.fetch_add(1, Ordering::SeqCst);
                json!({"issuer": self.url, "jwks_uri": format!("{}/jwks", self.url),
                    "authorization_endpoint": format!("{}/authorize", self.url),
                    "token_endpoint": format!("{}/token", self.url)})
                .to_string()
            }
            "/token" => match token_answer {
                Some(answer) => answer,
                None => return respond(&mut stream, "400 Bad Request", "{\"error\":\"invalid_grant\"}"),
            },
            "/jwks" => {
                self.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                jwks
            }
            _ => return respond(&mut stream, "404 Not Found", "{}"),
        };
        match mode {
            Mode::Normal => respond(&mut stream, "200 OK", &body),
            Mode::Hang => std::thread::sleep(Duration::from_secs(60)),
            Mode::Garbage => respond(&mut stream, "200 OK", "<html>this is not JSON"),
            Mode::Huge => {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{\"keys\":[",
                );
                let chunk = vec![b' '; 64 * 1024];
                for _ in 0..64 {
                    if stream.write_all(&chunk).is_err() {
                        return;
                    }
                }
            }
        }
    }
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
}
