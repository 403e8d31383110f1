//! `casbin_authz` through HTTP token requests, with docker_auth's example model and policy
//! shapes (tests/casbin/): the request `(account, type, name, service, ip, action, labels)`,
//! `labelMatch`, `ipMatch`, roles, the allowed subset per action; and the configs it refuses.
use std::path::{Path, PathBuf};

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use registry_auth::{app, config};
use serde_json::{json, Value};

use crate::common::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/casbin").join(name)
}

/// alice (`a: [b]` or `labels`), bob (`a: [b, c]`, `d: [e]`) and admin; `acl: []` because
/// docker_auth does not count casbin as an authorizer (§3.3), and an empty ACL passes on.
fn casbin_yaml(keys: &Keys, alice_labels: &str, model: &Path, policy: &Path) -> String {
    let yaml = format!(
        r#"server: {{addr: "127.0.0.1:0"}}
token: {{issuer: "Acme auth server", expiration: 900, certificate: "@CERT@", key: "@KEY@"}}
users:
  "admin": {{password: "{ADMIN_HASH}"}}
  "alice": {{password: "{ADMIN_HASH}", labels: {alice_labels}}}
  "bob": {{password: "{ADMIN_HASH}", labels: {{a: ["b", "c"], d: ["e"]}}}}
acl: []
casbin_authz:
  model_path: {model:?}
  policy_path: {policy:?}
"#
    );
    with_keys(&yaml, keys)
}

/// The actions granted for `scope` to `user` (password `badmin`) coming from `ip`.
async fn granted(yaml: &str, user: &str, service: &str, ip: Option<&str>, scope: &str) -> Value {
    let app = app_for(yaml).await;
    let uri = format!("/auth?service={service}&scope={scope}");
    let mut req = TestRequest::get().uri(&uri).insert_header(basic(user, "badmin"));
    if let Some(ip) = ip {
        req = req.peer_addr(format!("{ip}:4567").parse().unwrap());
    }
    let resp = test::call_service(&app, req.to_request()).await;
    let status = resp.status();
    let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    let token: Value = serde_json::from_str(&body).unwrap();
    decode_jwt(token["token"].as_str().unwrap()).claims["access"][0]["actions"].clone()
}

const ALL: &str = "write,read,delete";

#[actix_web::test]
async fn docker_auths_permission_cases_through_http() {
    let keys = Keys::new(KeyKind::EcP256);
    let (model, policy) = (fixture("model.conf"), fixture("policy.csv"));
    let ab = casbin_yaml(&keys, r#"{a: ["b"]}"#, &model, &policy);
    let book1 = format!("book:book1:{ALL}");
    let cases: &[(&str, &str, &str, &str, Value)] = &[
        // alice is a user: the allowed subset of what she asks for.
        ("alice", "bookstore1", "1.2.3.4", &book1, json!(["read", "write"])),
        ("alice", "bookstore1", "1.2.3.3", &book1, json!([])),
        ("alice", "bookstore2", "1.2.3.4", &format!("book:book2:{ALL}"), json!([])),
        ("alice", "bookstore1", "1.2.3.4", &format!("pen:book1:{ALL}"), json!([])),
        // bob has role1's permissions.
        ("bob", "bookstore1", "192.168.1.123", &format!("book:book2:{ALL}"), json!(["read"])),
        ("bob", "bookstore1", "192.168.0.123", &format!("book:book2:{ALL}"), json!([])),
        ("bob", "restaurant", "192.168.1.123", &format!("book:book2:{ALL}"), json!([])),
        // admin may do anything.
        ("admin", "bookstore2", "1.2.3.3", &format!("pen:book1:{ALL}"), json!(["delete", "read", "write"])),
    ];
    for (user, service, ip, scope, want) in cases {
        assert_eq!(&granted(&ab, user, service, Some(ip), scope).await, want, "{user} {service} {ip} {scope}");
    }
    // Labels decide: a: [c] is not a: [b]; a: [b, c] contains it.
    let ac = casbin_yaml(&keys, r#"{a: ["c"]}"#, &model, &policy);
    assert_eq!(granted(&ac, "alice", "bookstore1", Some("1.2.3.4"), &book1).await, json!([]));
    let abc = casbin_yaml(&keys, r#"{a: ["b", "c"]}"#, &model, &policy);
    assert_eq!(granted(&abc, "alice", "bookstore1", Some("1.2.3.4"), &book1).await, json!(["read", "write"]));
    // Without labels the request carries `null`, which no label condition accepts.
    let none = casbin_yaml(&keys, "{}", &model, &policy);
    assert_eq!(granted(&none, "alice", "bookstore1", Some("1.2.3.4"), &book1).await, json!([]));
    // No client address (a unix socket): ip is "<nil>", ipMatch says no; nothing panics.
    assert_eq!(granted(&ab, "alice", "bookstore1", None, &book1).await, json!([]));
    assert_eq!(granted(&ab, "admin", "bookstore1", None, "book:x:pull").await, json!(["pull"]));
}

#[actix_web::test]
async fn static_acl_decides_first_and_casbin_after_it() {
    let keys = Keys::new(KeyKind::EcP256);
    let yaml = casbin_yaml(&keys, r#"{a: ["b"]}"#, &fixture("model.conf"), &fixture("policy.csv"));
    let yaml = yaml.replace("acl: []", "acl:\n  - match: {account: \"alice\", type: \"pen\"}\n    actions: [\"read\"]");
    let scope = format!("pen:book1:{ALL}");
    assert_eq!(granted(&yaml, "alice", "bookstore1", Some("1.2.3.4"), &scope).await, json!(["read"]));
    let scope = format!("book:book1:{ALL}");
    assert_eq!(granted(&yaml, "alice", "bookstore1", Some("1.2.3.4"), &scope).await, json!(["read", "write"]));
}

/// The message of the first build error, or of the first load error.
fn first_error(yaml: &str) -> String {
    match config::load_str(yaml, "test.yml") {
        Err(e) => e.diagnostics.errors[0].to_string(),
        Ok(config) => match app::build(&config) {
            Err(errors) => errors[0].to_string(),
            Ok(_) => panic!("config unexpectedly valid:\n{yaml}"),
        },
    }
}

#[test]
fn casbin_alone_is_refused_as_docker_auth_does() {
    let keys = Keys::new(KeyKind::EcP256);
    let yaml = casbin_yaml(&keys, "{}", &fixture("model.conf"), &fixture("policy.csv")).replace("acl: []\n", "");
    let e = first_error(&yaml);
    assert!(e.starts_with("ACL is empty, this is probably a mistake."), "{e}");
    assert!(e.contains("casbin_authz (line 7) does not count, as in docker_auth: add acl: [] beside it"), "{e}");
}

#[test]
fn bad_models_and_policies_name_the_key_and_line() {
    let keys = Keys::new(KeyKind::EcP256);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let model = fixture("model.conf");
    let model_text = std::fs::read_to_string(&model).unwrap();
    let cases = [
        (
            model.clone(),
            write("bare.csv", "p, alice, book, b, s, 1.2.3.4, read, {\"a\":[\"b\",\"c\"]}\n"),
            "casbin_authz.policy_path",
            "line 1: bare \" in a non-quoted field",
        ),
        (
            model.clone(),
            write("labels.csv", "\n\np, alice, book, b, s, 1.2.3.4, read, \"{a:[b]}\"\n"),
            "casbin_authz.policy_path",
            "line 3: labels \"{a:[b]}\" are not a JSON object",
        ),
        (
            model.clone(),
            write("short.csv", "p, alice, book, read\n"),
            "casbin_authz.policy_path",
            "line 1: p has 3 values, the model defines 7",
        ),
        (
            model.clone(),
            write("ptype.csv", "x, alice\n"),
            "casbin_authz.policy_path",
            "line 1: policy type \"x\" is not defined",
        ),
        (model.clone(), dir.path().join("missing.csv"), "casbin_authz.policy_path", "could not read"),
        (
            write(
                "three.conf",
                &model_text
                    .replace("r = account, type, name, service, ip, action, labels", "r = sub, obj, act")
                    .replace("r.account ==", "r.sub =="),
            ),
            fixture("policy.csv"),
            "casbin_authz.model_path",
            "the request definition has 3 fields",
        ),
        (
            write(
                "func.conf",
                &model_text.replace("m = r.account == \"admin\" ||", "m = noSuchFunction(r.account) ||"),
            ),
            fixture("policy.csv"),
            "casbin_authz.model_path",
            "the matcher cannot be evaluated",
        ),
    ];
    for (model, policy, key, text) in cases {
        let e = first_error(&casbin_yaml(&keys, "{}", &model, &policy));
        assert!(e.starts_with(key) || e.contains(&format!("(at {key}")), "{key}: {e}");
        assert!(e.contains(text), "{text}: {e}");
    }
}
