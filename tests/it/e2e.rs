//! End to end: the real `docker-registry` (2.8.2) trusting our tokens, driven by `skopeo`
//! and by raw registry API calls. One scenario, run for RSA and EC keys, with `kid` and `x5c`.
use serde_json::Value;

use crate::auth_server::AuthServer;
use crate::common::{KeyKind, Keys, ADMIN_HASH, TEST_HASH};
use crate::support::oci::{read_oci_image, write_oci_layout};
use crate::support::registry::{Registry, RegistryAuth};
use crate::support::skopeo::{docker_ref, Creds, Skopeo};
use crate::support::temp_dir;

const SERVICE: &str = "Docker registry";
const ISSUER: &str = "Acme auth server";

fn config(keys: &Keys, x5c: bool) -> String {
    format!(
        r#"server:
  addr: "@ADDR@"
  certificate: "{cert}"
  key: "{key}"
token:
  issuer: "{ISSUER}"
  expiration: 900
  x5c: {x5c}
users:
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

struct Setup {
    _keys: Keys,
    auth: AuthServer,
    registry: Registry,
    http: ureq::Agent,
    cert: std::path::PathBuf,
}

fn setup(kind: KeyKind, x5c: bool) -> Setup {
    let keys = Keys::new(kind);
    let auth = AuthServer::start(&config(&keys, x5c), true, &["serve"]);
    let registry = Registry::start(RegistryAuth {
        realm: auth.realm(),
        service: SERVICE.to_string(),
        issuer: ISSUER.to_string(),
        rootcertbundle: keys.cert.clone(),
    });
    let http = AuthServer::client(&keys.cert);
    Setup { cert: keys.cert.clone(), _keys: keys, auth, registry, http }
}

impl Setup {
    fn token(&self, creds: Option<(&str, &str)>, scopes: &[&str]) -> Value {
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
    fn registry_call(&self, method: &str, path: &str, token: &str) -> (u16, String) {
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
}

fn scenario(kind: KeyKind, x5c: bool) {
    let s = setup(kind, x5c);
    let _ = &s.cert;
    let images = temp_dir("images");
    let image = write_oci_layout(&images.path().join("layout"), "v1", &[("hello.txt", b"hello from registry-auth")]);
    let skopeo = Skopeo::with_shared_cache();
    let admin = Creds::Basic("admin", "badmin");
    let user = Creds::Basic("test", "123");

    // Admin pushes anywhere.
    for repo in ["public/base", "private/base"] {
        skopeo
            .copy(&image.oci_ref(), &s.reference(repo), Creds::Anonymous, admin)
            .unwrap_or_else(|e| panic!("admin push {repo}: {e}"));
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

    catalog(&s);
    blob_mount(&s, &image.layer_digest);
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

#[test]
fn rsa_key_with_kid() {
    scenario(KeyKind::Rsa2048, false);
}

#[test]
fn ec_p256_key_with_kid() {
    scenario(KeyKind::EcP256, false);
}

#[test]
fn rsa_key_with_x5c() {
    scenario(KeyKind::Rsa2048, true);
}

#[test]
fn ec_p256_key_with_x5c() {
    scenario(KeyKind::EcP256, true);
}
