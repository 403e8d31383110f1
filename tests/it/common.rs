//! Shared fixtures: generated keys, config files and the in-process app.
use std::path::{Path, PathBuf};

use actix_web::dev::{Service, ServiceResponse};
use actix_web::test;
use actix_web::web::Data;
use base64::Engine as _;
use registry_auth::http::StateHandle;
use registry_auth::{app, config};
use rsa::pkcs8::EncodePrivateKey;
use serde_json::Value;
use tempfile::TempDir;

/// docker_auth's example hashes: admin/badmin and test/123 (cost 5).
pub const ADMIN_HASH: &str = "$2y$05$LO.vzwpWC5LZGqThvEfznu8qhb5SGqvBSWY1J3yZ4AxtMRZ3kN5jC";
pub const TEST_HASH: &str = "$2y$05$WuwBasGDAgr.QCbGIjKJaep4dhxeai9gNZdmBnQXqpKly57oNutya";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    EcP256,
    Rsa2048,
}

/// A certificate and key in a temp dir (kept alive as long as this value).
pub struct Keys {
    pub _dir: TempDir,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Keys {
    pub fn new(kind: KeyKind) -> Keys {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("server.pem");
        let key = dir.path().join("server.key");
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        match kind {
            KeyKind::EcP256 => registry_auth::certgen::write_self_signed(&cert, &key, &names).unwrap(),
            KeyKind::Rsa2048 => write_rsa_pair(&cert, &key, &names),
        }
        Keys { _dir: dir, cert, key }
    }

    pub fn cert_pem(&self) -> String {
        std::fs::read_to_string(&self.cert).unwrap()
    }
}

fn write_rsa_pair(cert: &Path, key: &Path, names: &[String]) {
    let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let pem = private.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let pair = rcgen::KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).unwrap();
    let params = rcgen::CertificateParams::new(names.to_vec()).unwrap();
    let certificate = params.self_signed(&pair).unwrap();
    std::fs::write(cert, certificate.pem()).unwrap();
    std::fs::write(key, pem.as_bytes()).unwrap();
}

/// A config text with `@CERT@` and `@KEY@` replaced by the key paths.
pub fn with_keys(yaml: &str, keys: &Keys) -> String {
    yaml.replace("@CERT@", &keys.cert.display().to_string()).replace("@KEY@", &keys.key.display().to_string())
}

/// The `server`, `token` (with `@CERT@`/`@KEY@`) and `users` sections shared by backend
/// tests: one static user `user` with password `badmin`, so the chain has a first member.
/// `server_extra` holds more `server:` lines (e.g. a TLS pair).
pub fn base_yaml(addr: &str, server_extra: &str, user: &str) -> String {
    format!(
        "server:\n  addr: \"{addr}\"\n{server_extra}token:\n  issuer: \"Acme auth server\"\n  expiration: 900\n  certificate: \"@CERT@\"\n  key: \"@KEY@\"\nusers:\n  \"{user}\":\n    password: \"{ADMIN_HASH}\"\n"
    )
}

/// The standard test config: token pair, admin/test users, anonymous, a small ACL.
pub fn standard_yaml(keys: &Keys, extra_token: &str) -> String {
    let yaml = format!(
        r#"
server:
  addr: "127.0.0.1:0"
token:
  issuer: "Acme auth server"
  expiration: 900
  certificate: "@CERT@"
  key: "@KEY@"
{extra_token}
users:
  "admin":
    password: "{ADMIN_HASH}"
  "test":
    password: "{TEST_HASH}"
    labels:
      group: ["devs", "qa"]
  "nopass": {{}}
  "": {{}}
acl:
  - match: {{account: "admin"}}
    actions: ["*"]
    comment: "admin"
  - match: {{account: "test", name: "${{account}}/*"}}
    actions: ["pull", "push"]
    comment: "own namespace"
  - match: {{account: "test", name: "${{labels:group}}/*"}}
    actions: ["pull"]
    comment: "group namespaces"
  - match: {{account: "", type: "repository", name: "public/*"}}
    actions: ["pull"]
    comment: "anonymous pull"
  - match: {{name: "denied/*"}}
    actions: []
  - match: {{account: "/.+/", type: "repository"}}
    actions: ["pull"]
    comment: "named users pull"
"#
    );
    with_keys(&yaml, keys)
}

/// The in-process app for a config text.
pub async fn app_for(
    yaml: &str,
) -> impl Service<actix_http::Request, Response = ServiceResponse<impl actix_web::body::MessageBody>, Error = actix_web::Error>
{
    let config = config::load_str(yaml, "test.yml").unwrap_or_else(|e| panic!("{e}"));
    let built = app::build(&config).unwrap_or_else(|e| panic!("{e:?}"));
    test::init_service(registry_auth::http::app(Data::new(StateHandle::new(built.state)))).await
}

pub fn basic(user: &str, password: &str) -> (String, String) {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    ("Authorization".to_string(), format!("Basic {encoded}"))
}

/// A JWT split into its raw header text, raw claims text and signature bytes.
pub struct Jwt {
    pub header_text: String,
    pub claims_text: String,
    pub header: Value,
    pub claims: Value,
    pub signature: Vec<u8>,
}

pub fn decode_jwt(token: &str) -> Jwt {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "compact JWS has three parts: {token}");
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).unwrap();
    assert!(!token.contains('='), "no padding");
    let header_text = String::from_utf8(b64(parts[0])).unwrap();
    let claims_text = String::from_utf8(b64(parts[1])).unwrap();
    Jwt {
        header: serde_json::from_str(&header_text).unwrap(),
        claims: serde_json::from_str(&claims_text).unwrap(),
        header_text,
        claims_text,
        signature: b64(parts[2]),
    }
}

/// Verifies the signature with jsonwebtoken against the certificate's public key.
pub fn verify_jwt(token: &str, keys: &Keys, audience: &str) -> Value {
    let jwt = decode_jwt(token);
    let alg: jsonwebtoken::Algorithm = jwt.header["alg"].as_str().unwrap().parse().unwrap();
    let pem = keys.cert_pem();
    let key = match alg {
        jsonwebtoken::Algorithm::RS256 => jsonwebtoken::DecodingKey::from_rsa_pem(&public_key_pem(&pem)).unwrap(),
        _ => jsonwebtoken::DecodingKey::from_ec_pem(&public_key_pem(&pem)).unwrap(),
    };
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&["Acme auth server"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation).unwrap_or_else(|e| panic!("{e}")).claims
}

/// The SubjectPublicKeyInfo of a PEM certificate, as a PEM public key.
fn public_key_pem(cert_pem: &str) -> Vec<u8> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).unwrap();
    let cert = pem.parse_x509().unwrap();
    let spki = cert.tbs_certificate.subject_pki.raw;
    let body = base64::engine::general_purpose::STANDARD.encode(spki);
    format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n").into_bytes()
}
