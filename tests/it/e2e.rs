//! End to end: the real registries (2.8.2 from Debian, 3.0.0 and 3.1.1 from
//! `support::registry3`) trusting our tokens, driven by `skopeo` and by raw registry API
//! calls. One scenario (admin push, namespace push and refusal, anonymous pull and no push,
//! wrong password, catalog, cross-repository mount refused), run for RSA-2048 and EC P-256
//! keys in every token form a version accepts. One test per version × key runs its forms in
//! turn (one key, one auth server and one registry per form). The one form that cannot work
//! (an EC thumbprint kid on 3.0.0) is asserted to be refused, and warned about.
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::auth_server::{binary, AuthServer};
use crate::common::{KeyKind, Keys, ADMIN_HASH, TEST_HASH};
use crate::support::oci::{read_oci_image, write_oci_layout};
use crate::support::registry::{Registry, TokenTrust, Version};
use crate::support::skopeo::{docker_ref, Creds, Skopeo};
use crate::support::temp_dir;

pub const SERVICE: &str = "Docker registry";
pub const ISSUER: &str = "Acme auth server";

/// How the registry finds the key that signed a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `x5c: true`: the certificate rides in the token; rootcertbundle (every version).
    X5c,
    /// The default libtrust kid; rootcertbundle (2.x only).
    LibtrustKid,
    /// `disable_legacy_key_id: true`: the thumbprint kid; rootcertbundle (3.x).
    ThumbprintKid,
    /// The kid our tokens carry, listed in the JWKS `registry-auth jwks` prints; no
    /// rootcertbundle (3.x). EC keys use the thumbprint kid, RSA the libtrust one.
    Jwks,
}

impl Form {
    fn token_lines(self, kind: KeyKind) -> &'static str {
        match (self, kind) {
            (Form::X5c, _) => "  x5c: true\n",
            (Form::LibtrustKid, _) | (Form::Jwks, KeyKind::Rsa2048) => "",
            (Form::ThumbprintKid, _) | (Form::Jwks, KeyKind::EcP256) => "  disable_legacy_key_id: true\n",
        }
    }
}

pub fn config(keys: &Keys, token_lines: &str) -> String {
    format!(
        r#"server:
  addr: "@ADDR@"
  certificate: "{cert}"
  key: "{key}"
token:
  issuer: "{ISSUER}"
  expiration: 900
{token_lines}users:
  "admin":
    password: "{ADMIN_HASH}"
  "test":
    password: "{TEST_HASH}"
  "": {{}}
acl:
  - match: {{account: "admin"}}
    actions: ["*"]
  - match: {{account: "/.+/", name: "${{account}}/*"}}
    actions: ["pull", "push"]
  - match: {{type: "repository", name: "public/*"}}
    actions: ["pull"]
"#,
        cert = keys.cert.display(),
        key = keys.key.display(),
    )
}

pub struct Setup {
    pub auth: AuthServer,
    pub registry: Registry,
    pub http: ureq::Agent,
}

/// The config file the auth server runs on.
pub fn config_path(auth: &AuthServer) -> PathBuf {
    auth.dir.path().join("auth_config.yml")
}

/// `registry-auth <subcommand> <config>` on the real binary: (exit code, stdout, stderr).
pub fn run_cli(args: &[&str], config: &Path) -> (Option<i32>, String, String) {
    let out = Command::new(binary()).args(args).arg(config).env_remove("RUST_LOG").output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Writes what `registry-auth jwks` prints for the auth server's config beside it.
pub fn write_jwks(auth: &AuthServer) -> PathBuf {
    let (code, stdout, stderr) = run_cli(&["jwks"], &config_path(auth));
    assert_eq!(code, Some(0), "jwks: {stderr}");
    let path = auth.dir.path().join("jwks.json");
    std::fs::write(&path, stdout).unwrap();
    path
}

pub fn setup(version: Version, keys: &Keys, token_lines: &str, form: Form) -> Setup {
    let auth = AuthServer::start(&config(keys, token_lines), true, &["serve"]);
    let (rootcertbundle, jwks) = match form {
        Form::Jwks => (None, Some(write_jwks(&auth))),
        _ => (Some(keys.cert.clone()), None),
    };
    let trust =
        TokenTrust { realm: auth.realm(), service: SERVICE.into(), issuer: ISSUER.into(), rootcertbundle, jwks };
    let registry = Registry::start_version(version, trust, None);
    let http = AuthServer::client(&keys.cert);
    Setup { auth, registry, http }
}

impl Setup {
    pub fn token(&self, creds: Option<(&str, &str)>, scopes: &[&str]) -> Value {
        let mut req = self.http.get(&self.auth.realm()).query("service", SERVICE);
        for scope in scopes {
            req = req.query("scope", scope);
        }
        if let Some((user, password)) = creds {
            let encoded =
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{user}:{password}"));
            req = req.set("Authorization", &format!("Basic {encoded}"));
        }
        req.call().unwrap_or_else(|e| panic!("token request: {e}")).into_json().unwrap()
    }

    /// A registry API call with a bearer token; returns (status, body).
    pub fn registry_call(&self, method: &str, path: &str, token: &str) -> (u16, String) {
        let url = format!("{}{path}", self.registry.url());
        let result = ureq::request(method, &url).set("Authorization", &format!("Bearer {token}")).call();
        match result {
            Ok(resp) => (resp.status(), resp.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap_or_default()),
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    fn reference(&self, repo: &str) -> String {
        docker_ref(&self.registry.addr(), repo, "v1")
    }

    fn context(&self) -> String {
        format!("{}\n{}", self.auth.process.log(), self.registry.log())
    }
}

fn scenario(s: &Setup) {
    let images = temp_dir("images");
    let image = write_oci_layout(&images.path().join("layout"), "v1", &[("hello.txt", b"hello from registry-auth")]);
    let skopeo = Skopeo::with_shared_cache();
    let admin = Creds::Basic("admin", "badmin");
    let user = Creds::Basic("test", "123");

    // Admin pushes anywhere.
    for repo in ["public/base", "private/base"] {
        skopeo
            .copy(&image.oci_ref(), &s.reference(repo), Creds::Anonymous, admin)
            .unwrap_or_else(|e| panic!("admin push {repo}: {e}\n{}", s.context()));
    }
    // A user pushes inside its namespace (blob known in private/base: containers/image tries a
    // cross-repository mount, which must not be granted) and is refused outside it.
    skopeo
        .copy(&image.oci_ref(), &s.reference("test/app"), Creds::Anonymous, user)
        .unwrap_or_else(|e| panic!("user push: {e}"));
    let outside = skopeo.copy(&image.oci_ref(), &s.reference("other/app"), Creds::Anonymous, user);
    assert!(outside.is_err(), "push outside the namespace must fail");
    let tags = skopeo.list_tags(&format!("docker://{}/test/app", s.registry.addr()), user).unwrap();
    assert!(tags.contains("\"v1\""), "{tags}");

    // The user's image round-trips.
    let pulled_dir = images.path().join("pulled");
    skopeo.copy(&s.reference("test/app"), &format!("oci:{}:v1", pulled_dir.display()), user, Creds::Anonymous).unwrap();
    let (_, layers) = read_oci_image(&pulled_dir, "v1");
    assert_eq!(layers.as_slice(), std::slice::from_ref(&image.layer_digest));

    // Anonymous pulls public images, nothing private, and never pushes.
    skopeo.inspect_raw(&s.reference("public/base"), Creds::Anonymous).unwrap_or_else(|e| panic!("anonymous pull: {e}"));
    assert!(skopeo.inspect_raw(&s.reference("private/base"), Creds::Anonymous).is_err());
    assert!(skopeo.copy(&image.oci_ref(), &s.reference("public/anon"), Creds::Anonymous, Creds::Anonymous).is_err());

    // A wrong password is refused, even for what anonymous could read.
    let wrong = skopeo.inspect_raw(&s.reference("public/base"), Creds::Basic("test", "wrong"));
    assert!(wrong.is_err(), "wrong password must be refused");

    catalog(s);
    blob_mount(s, &image.layer_digest);
}

/// `registry:catalog:*` lists the catalog for admin; a user token does not.
fn catalog(s: &Setup) {
    let admin = s.token(Some(("admin", "badmin")), &["registry:catalog:*"]);
    assert_eq!(admin["token"], admin["access_token"]);
    let (status, body) = s.registry_call("GET", "/v2/_catalog", admin["token"].as_str().unwrap());
    assert_eq!(status, 200, "{body}");
    let repos: Value = serde_json::from_str(&body).unwrap();
    for repo in ["private/base", "public/base", "test/app"] {
        assert!(repos["repositories"].as_array().unwrap().iter().any(|r| r == repo), "{body}");
    }
    let user = s.token(Some(("test", "123")), &["registry:catalog:*"]);
    assert_eq!(s.registry_call("GET", "/v2/_catalog", user["token"].as_str().unwrap()).0, 401);
}

/// A mount request carries two scopes; the user gets push on its target but no pull on
/// the source, so the registry refuses the mount. Admin's identical request succeeds.
fn blob_mount(s: &Setup, layer: &str) {
    let scopes = ["repository:test/mounted:pull,push", "repository:private/base:pull"];
    let path = format!("/v2/test/mounted/blobs/uploads/?mount={layer}&from=private/base");
    let user = s.token(Some(("test", "123")), &scopes);
    let claims = crate::common::decode_jwt(user["token"].as_str().unwrap()).claims;
    assert_eq!(claims["access"][1]["actions"], serde_json::json!([]), "{claims}");
    let (status, body) = s.registry_call("POST", &path, user["token"].as_str().unwrap());
    assert_eq!(status, 401, "user mount must be refused: {body}");
    let admin = s.token(Some(("admin", "badmin")), &scopes);
    let (status, body) = s.registry_call("POST", &path, admin["token"].as_str().unwrap());
    assert_eq!(status, 201, "admin mount: {body}");
}

/// A token the registry refuses by kid: 401 on `/v2/` (which any valid token opens), and
/// the registry's log names the kid it could not find.
pub fn assert_refused_by_kid(s: &Setup, token: &str) {
    let kid = crate::common::decode_jwt(token).header["kid"].as_str().unwrap().to_owned();
    let (status, body) = s.registry_call("GET", "/v2/", token);
    assert_eq!(status, 401, "{body}");
    let expected = format!("token signed by untrusted key with ID: \\\"{kid}\\\"");
    let log = s.registry.log();
    assert!(log.contains(&expected) || log.contains(&expected.replace('\\', "")), "no {expected:?} in\n{log}");
}

/// check-config and start-up both warn, with the fix.
pub fn assert_warned(s: &Setup, needle: &str) {
    let (code, stdout, _) = run_cli(&["check-config"], &config_path(&s.auth));
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains(needle) && stdout.contains("token.x5c: true"), "check-config: {stdout}");
    let stderr = s.auth.process.stderr();
    assert!(stderr.contains(needle), "start-up log: {stderr}");
}

fn forms(version: Version) -> &'static [Form] {
    match version {
        Version::V2_8_2 => &[Form::X5c, Form::LibtrustKid],
        _ => &[Form::X5c, Form::ThumbprintKid, Form::Jwks],
    }
}

fn matrix(version: Version, kind: KeyKind) {
    let keys = Keys::new(kind);
    for &form in forms(version) {
        let s = setup(version, &keys, form.token_lines(kind), form);
        if (version, kind, form) == (Version::V3_0_0, KeyKind::EcP256, Form::ThumbprintKid) {
            // 3.0.0 hashes the curve's generator point: no EC key verifies by thumbprint kid.
            assert_warned(&s, "registry 3.0.0 gives every EC key of a curve the same kid");
            let token = s.token(Some(("admin", "badmin")), &[]);
            assert_refused_by_kid(&s, token["token"].as_str().unwrap());
            continue;
        }
        scenario(&s);
    }
}

#[test]
fn registry_2_8_2_rsa() {
    matrix(Version::V2_8_2, KeyKind::Rsa2048);
}

#[test]
fn registry_2_8_2_ec_p256() {
    matrix(Version::V2_8_2, KeyKind::EcP256);
}

#[test]
fn registry_3_0_0_rsa() {
    matrix(Version::V3_0_0, KeyKind::Rsa2048);
}

#[test]
fn registry_3_0_0_ec_p256() {
    matrix(Version::V3_0_0, KeyKind::EcP256);
}

#[test]
fn registry_3_1_1_rsa() {
    matrix(Version::V3_1_1, KeyKind::Rsa2048);
}

#[test]
fn registry_3_1_1_ec_p256() {
    matrix(Version::V3_1_1, KeyKind::EcP256);
}

/// The default kid (libtrust) is refused by 3.x, and check-config and start-up say so.
#[test]
fn libtrust_kid_is_refused_by_3_1_1_and_warned_about() {
    let keys = Keys::new(KeyKind::Rsa2048);
    let s = setup(Version::V3_1_1, &keys, "", Form::LibtrustKid);
    assert_warned(&s, "registry 3.0 and 3.1 refuse them");
    let token = s.token(Some(("admin", "badmin")), &[]);
    assert_refused_by_kid(&s, token["token"].as_str().unwrap());
}
