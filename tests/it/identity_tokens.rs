//! Identity tokens (OAuth2 refresh tokens) on the real binary, on both store engines:
//! issued by the login GET and the POST password grant, exchanged with the POST refresh
//! grant, listed and revoked with the CLI, refused once the account is gone; bad input is
//! a 4xx; skopeo pushes and pulls with an `identitytoken` through the real registry.
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::stored_creds::{basic, call, granted, Engine, Fixture, SERVICE};

fn login_get(f: &Fixture, user: &str, password: &str, offline: bool) -> Value {
    let mut req = f.http.get(&f.url()).query("account", user).query("client_id", "docker").query("service", SERVICE);
    if offline {
        req = req.query("offline_token", "true");
    }
    let (status, body) = call(req.set("Authorization", &basic(user, password)), None);
    assert_eq!(status, 200, "{body}");
    body
}

fn login_post(f: &Fixture, user: &str, password: &str) -> Value {
    let form = [
        ("grant_type", "password"),
        ("username", user),
        ("password", password),
        ("access_type", "offline"),
        ("client_id", "containerd-client"),
        ("service", SERVICE),
    ];
    let (status, body) = call(f.http.post(&f.url()), Some(&form));
    assert_eq!(status, 200, "{body}");
    body
}

pub fn exchange(url: &str, token: &str, scope: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", "containers/image"),
        ("service", SERVICE),
        ("scope", scope),
    ];
    call(ureq::post(url), Some(&form))
}

fn assert_invalid_grant(result: (u16, Value)) {
    assert_eq!(result.0, 400, "{}", result.1);
    assert_eq!(result.1["error"], "invalid_grant", "{}", result.1);
}

pub fn scenario(engine: &Engine) {
    let f = Fixture::start(engine, "  \"leaver\": {}\n");
    // Only asked-for logins carry a refresh token.
    assert!(login_get(&f, "test", "123", false).get("refresh_token").is_none());
    let from_get = login_get(&f, "test", "123", true)["refresh_token"].as_str().unwrap().to_string();
    let from_post = login_post(&f, "test", "123")["refresh_token"].as_str().unwrap().to_string();
    assert!(from_get.starts_with("rait_") && from_get != from_post, "{from_get} {from_post}");

    // Exchanges: the ACL decides afresh, labels come from the config, the token is echoed.
    let (status, body) = exchange(&f.url(), &from_get, "repository:test/app:pull,push");
    assert_eq!(status, 200, "{body}");
    assert_eq!(granted(&body), ("test".to_string(), vec!["pull".to_string(), "push".to_string()]));
    assert_eq!(body["refresh_token"], from_get.as_str());
    let (_, body) = exchange(&f.url(), &from_post, "repository:devs/base:pull,push");
    assert_eq!(granted(&body).1, ["pull"], "labels from the users: section");
    let (_, body) = exchange(&f.url(), &from_post, "repository:admin/x:pull");
    assert!(granted(&body).1.is_empty());

    bad_input(&f, &from_get);
    cli_list_and_revoke(&f, &from_get, &from_post);
    account_removed(&f);
}

fn bad_input(f: &Fixture, good: &str) {
    for token in ["rait_short", "garbage", &"a".repeat(5000), &format!("rait_{}", "A".repeat(43)), "rait_%00"] {
        assert_invalid_grant(exchange(&f.url(), token, "repository:test/app:pull"));
    }
    let both = f.http.post(&f.url()).set("Authorization", &basic("test", "123"));
    let (status, body) = call(both, Some(&[("grant_type", "refresh_token"), ("refresh_token", good)]));
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
    let form = [("grant_type", "password"), ("username", "test"), ("password", "123"), ("refresh_token", good)];
    let (status, body) = call(f.http.post(&f.url()), Some(&form));
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
    let (status, body) = call(f.http.post(&f.url()), Some(&[("grant_type", "refresh_token")]));
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
    let long_client = "c".repeat(10_000);
    let form = [("grant_type", "refresh_token"), ("refresh_token", good), ("client_id", long_client.as_str())];
    assert_eq!(call(f.http.post(&f.url()), Some(&form)).0, 400);
    // Absurdly long values: a 4xx with a body, never a 500.
    let huge = "r".repeat(200_000);
    for form in [
        vec![("grant_type", "refresh_token"), ("refresh_token", huge.as_str()), ("service", SERVICE)],
        vec![("grant_type", "password"), ("username", "robot$ci"), ("password", huge.as_str()), ("service", SERVICE)],
        vec![("grant_type", "password"), ("username", huge.as_str()), ("password", "x"), ("service", SERVICE)],
    ] {
        let (status, body) = call(f.http.post(&f.url()), Some(&form));
        assert!((400..500).contains(&status) && body.to_string().len() > 2, "{status} {body}");
    }
    // A malformed scope is the usual 400, not a server error.
    let (status, _) = exchange(&f.url(), good, "repository:a:b:c:pull");
    assert_eq!(status, 400);
}

fn cli_list_and_revoke(f: &Fixture, from_get: &str, from_post: &str) {
    let (ok, out, err) = f.cli(&["identity-tokens", "list", "--account", "test"]);
    assert!(ok, "{err}");
    let rows: Vec<&str> = out.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(!out.contains(from_get) && !out.contains(from_post), "secrets never listed: {out}");
    let docker_row = rows.iter().find(|r| r.contains(" docker ")).unwrap_or_else(|| panic!("{out}"));
    let id = docker_row.split_whitespace().next().unwrap();
    let (ok, out, err) = f.cli(&["identity-tokens", "revoke", id]);
    assert!(ok && out.contains(id), "{out}{err}");
    assert_invalid_grant(exchange(&f.url(), from_get, "repository:test/app:pull"));
    assert_eq!(exchange(&f.url(), from_post, "repository:test/app:pull").0, 200);
    let (ok, _, err) = f.cli(&["identity-tokens", "revoke", "--account", "test"]);
    assert!(ok, "{err}");
    assert_invalid_grant(exchange(&f.url(), from_post, "repository:test/app:pull"));
    let (ok, _, err) = f.cli(&["identity-tokens", "revoke", "--account", "test"]);
    assert!(!ok && err.contains("no identity token"), "{err}");
    let (ok, _, err) = f.cli(&["identity-tokens", "revoke", "abc"]);
    assert!(!ok && err.contains("8 characters"), "{err}");
}

/// A user removed from the config (reloaded) can no longer exchange its token.
fn account_removed(f: &Fixture) {
    let token = login_get(f, "leaver", "any", true)["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(exchange(&f.url(), &token, "repository:leaver/x:pull").0, 200);
    let path = f.server.dir.path().join("auth_config.yml");
    let text = std::fs::read_to_string(&path).unwrap();
    let without: String = text.lines().filter(|l| !l.contains("leaver")).map(|l| format!("{l}\n")).collect();
    crate::reload::replace_file(&path, &without);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = exchange(&f.url(), &token, "repository:leaver/x:pull");
        if status == 400 {
            assert_eq!(body["error"], "invalid_grant");
            break;
        }
        assert!(Instant::now() < deadline, "token still accepted after the user left:\n{}", f.server.process.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn embedded_store() {
    scenario(&Engine::Embedded);
}

/// The real registry trusting `f`'s tokens, and an image (tag v1) whose one file holds
/// `content`, in a layout that lives as long as the returned directory.
fn registry_and_image(
    f: &Fixture,
    content: &[u8],
) -> (crate::support::registry::Registry, tempfile::TempDir, crate::support::oci::OciImage) {
    use crate::support::registry::{Registry, RegistryAuth};

    let registry = Registry::start(RegistryAuth {
        realm: f.url(),
        service: SERVICE.to_string(),
        issuer: "Acme auth server".to_string(),
        rootcertbundle: f.keys.cert.clone(),
    });
    let images = crate::support::temp_dir("images");
    let image = crate::support::oci::write_oci_layout(&images.path().join("layout"), "v1", &[("hello.txt", content)]);
    (registry, images, image)
}

/// skopeo with only an identity token in its auth file (containers/image then uses the
/// POST refresh grant) pushes and pulls through the real registry, and a robot pushes by
/// Basic; once the token is revoked the next pull is refused.
#[test]
fn skopeo_with_identity_token_and_robot_through_the_registry() {
    use crate::support::skopeo::{docker_ref, Creds, Skopeo};

    let f = Fixture::start(&Engine::Embedded, "");
    let (registry, _images, image) = registry_and_image(&f, b"identity tokens");
    let token = login_get(&f, "test", "123", true)["refresh_token"].as_str().unwrap().to_string();
    let skopeo = Skopeo::new();
    skopeo.store_identity_token(&registry.addr(), "test", &token);
    let target = docker_ref(&registry.addr(), "test/app", "v1");
    skopeo.copy(&image.oci_ref(), &target, Creds::Anonymous, Creds::AuthFile).unwrap_or_else(|e| panic!("push: {e}"));
    skopeo.inspect_raw(&target, Creds::AuthFile).unwrap_or_else(|e| panic!("pull: {e}"));
    let outside = docker_ref(&registry.addr(), "admin/app", "v1");
    assert!(skopeo.copy(&image.oci_ref(), &outside, Creds::Anonymous, Creds::AuthFile).is_err());

    let (ok, out, err) = f.cli(&["robot", "create", "ci", "--scope", "repository:team/*:pull,push"]);
    assert!(ok, "{err}");
    let secret = crate::stored_creds::printed_secret(&out);
    let robot = Creds::Basic("robot$ci", &secret);
    let team = docker_ref(&registry.addr(), "team/app", "v1");
    skopeo.copy(&image.oci_ref(), &team, Creds::Anonymous, robot).unwrap_or_else(|e| panic!("robot push: {e}"));
    skopeo.inspect_raw(&team, robot).unwrap_or_else(|e| panic!("robot pull: {e}"));
    assert!(skopeo.inspect_raw(&target, robot).is_err(), "outside the robot's scopes");

    let (ok, _, err) = f.cli(&["identity-tokens", "revoke", "--account", "test"]);
    assert!(ok, "{err}");
    assert!(skopeo.inspect_raw(&target, Creds::AuthFile).is_err(), "a revoked token must be refused on the next pull");
}

/// containerd's `ctr --refresh TOKEN` (the refresh grant with an empty username) pulls and
/// pushes through the real registry; a revoked token is refused on the next pull.
#[test]
fn ctr_with_refresh_token_through_the_registry() {
    use crate::support::containerd::Containerd;
    use crate::support::skopeo::{docker_ref, Creds, Skopeo};

    let f = Fixture::start(&Engine::Embedded, "");
    let (registry, _images, image) = registry_and_image(&f, b"from ctr");
    Skopeo::new()
        .copy(
            &image.oci_ref(),
            &docker_ref(&registry.addr(), "test/app", "v1"),
            Creds::Anonymous,
            Creds::Basic("test", "123"),
        )
        .unwrap_or_else(|e| panic!("seed push: {e}"));
    let token = login_get(&f, "test", "123", true)["refresh_token"].as_str().unwrap().to_string();
    let containerd = Containerd::start();
    let source = format!("{}/test/app:v1", registry.addr());
    let pulled = containerd.ctr(&["images", "pull", "--plain-http", "--refresh", &token, &source]);
    pulled.unwrap_or_else(|e| panic!("ctr pull: {e}\n{}\n{}", containerd.log(), f.server.process.log()));
    let copy = format!("{}/test/copy:v1", registry.addr());
    containerd
        .ctr(&["images", "push", "--plain-http", "--refresh", &token, &copy, &source])
        .unwrap_or_else(|e| panic!("ctr push: {e}"));
    containerd.ctr(&["images", "rm", &source]).unwrap();
    let (ok, _, err) = f.cli(&["identity-tokens", "revoke", "--account", "test"]);
    assert!(ok, "{err}");
    let refused = containerd.ctr(&["images", "pull", "--plain-http", "--refresh", &token, &copy]);
    assert!(refused.is_err(), "a revoked token must be refused on the next pull");
}

#[test]
fn redis_store() {
    let redis = crate::support::redis::RedisServer::start();
    scenario(&Engine::Redis { addr: redis.addr(), prefix: "ident-test:".to_string() });
}

/// Two replicas on one Redis: a token issued by one is exchanged at the other; revoked
/// with the CLI, it is refused at both on the next request. The same for a robot.
#[test]
fn two_replicas_on_one_redis() {
    use crate::common::{KeyKind, Keys};
    use crate::stored_creds::{cli, config, printed_secret, start_server};

    let redis = crate::support::redis::RedisServer::start();
    let keys = Keys::new(KeyKind::EcP256);
    let yaml = config(&keys, &Engine::Redis { addr: redis.addr(), prefix: String::new() }, "");
    let (a, b) = (start_server(&yaml, false), start_server(&yaml, false));
    let http = ureq::AgentBuilder::new().build();
    let req = http.get(&a.realm()).query("service", SERVICE).query("offline_token", "true");
    let (status, body) = call(req.set("Authorization", &basic("test", "123")), None);
    assert_eq!(status, 200, "{body}");
    let token = body["refresh_token"].as_str().unwrap().to_string();
    let (status, body) = exchange(&b.realm(), &token, "repository:test/app:pull");
    assert_eq!((status, granted(&body).1), (200, vec!["pull".to_string()]), "{body}");

    let (ok, out, err) = cli(&b, &["robot", "create", "ci", "--scope", "repository:team/*:pull"]);
    assert!(ok, "{err}");
    let secret = printed_secret(&out);
    let robot_status = |server: &crate::auth_server::AuthServer| {
        let req = http.get(&server.realm()).query("service", SERVICE).query("scope", "repository:team/x:pull");
        call(req.set("Authorization", &basic("robot$ci", &secret)), None).0
    };
    assert_eq!((robot_status(&a), robot_status(&b)), (200, 200));

    let (ok, _, err) = cli(&a, &["identity-tokens", "revoke", "--account", "test"]);
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&a, &["robot", "revoke", "ci"]);
    assert!(ok, "{err}");
    for server in [&a, &b] {
        assert_invalid_grant(exchange(&server.realm(), &token, "repository:test/app:pull"));
        assert_eq!(robot_status(server), 401);
    }
}
