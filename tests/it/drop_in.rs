//! Drop-in gaps found by sending docker_auth and registry-auth the same configs and
//! requests (issue 10): placeholder users, a half TLS pair, YAML merge keys, lenient
//! form parsing, multipart forms, percent-encoded paths, an empty real-IP element, and
//! the README's list of the differences we keep on purpose.
use std::path::Path;
use std::process::{Command, Output};

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use serde_json::{json, Value};

use crate::auth_server::{binary, AuthServer};
use crate::common::*;
use crate::reload::{replace_file, wait_for_reloads};
use crate::support::http::http_get;
use crate::support::temp_dir;

struct Reply {
    status: StatusCode,
    headers: actix_web::http::header::HeaderMap,
    body: String,
}

impl Reply {
    fn claims(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        let body: Value = serde_json::from_str(&self.body).unwrap();
        decode_jwt(body["token"].as_str().unwrap()).claims
    }
}

async fn send(yaml: &str, req: TestRequest) -> Reply {
    let app = app_for(yaml).await;
    let resp = test::call_service(&app, req.peer_addr("10.1.2.3:4567".parse().unwrap()).to_request()).await;
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    Reply { status, headers, body }
}

fn std_yaml() -> (Keys, String) {
    let keys = Keys::new(KeyKind::EcP256);
    let yaml = standard_yaml(&keys, "");
    (keys, yaml)
}

fn check_config(dir: &Path, yaml: &str) -> (Option<i32>, String) {
    let path = dir.join("auth.yml");
    std::fs::write(&path, yaml).unwrap();
    let out: Output = Command::new(binary()).arg("check-config").arg(&path).env_remove("RUST_LOG").output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

// Item 1: `"bob":` is an unknown user, not "any password".

/// The config and the directory where the ext_auth script leaves its evidence.
fn placeholder_users_yaml(keys: &Keys) -> (String, tempfile::TempDir) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ext/ext_auth.sh");
    let dir = temp_dir("drop-in-ext");
    let yaml = format!(
        "server:\n  addr: \"127.0.0.1:0\"\ntoken:\n  issuer: \"Acme auth server\"\n  expiration: 900\n  certificate: \"@CERT@\"\n  key: \"@KEY@\"\n\
         users:\n  \"alice\":\n  \"bob\": null\n  \"carol\": ~\n  \"dave\": {{}}\n\
         ext_auth:\n  command: {script:?}\n  args: [{dir:?}]\n\
         acl:\n  - match: {{labels: {{group: \"devs\"}}}}\n    actions: [\"pull\", \"push\"]\n  - match: {{account: \"/.+/\"}}\n    actions: [\"pull\"]\n",
        dir = dir.path(),
    );
    (with_keys(&yaml, keys), dir)
}

#[actix_web::test]
async fn a_user_without_value_is_unknown_and_the_next_authenticator_decides() {
    let keys = Keys::new(KeyKind::EcP256);
    let (yaml, _evidence) = placeholder_users_yaml(&keys);
    let scope = "/auth?service=reg&scope=repository:team/app:pull,push";
    // ext_auth knows alice ("open sesame", group devs): it answers, not the placeholder.
    let r = send(&yaml, TestRequest::get().uri(scope).insert_header(basic("alice", "open sesame"))).await;
    assert_eq!(r.claims()["access"][0]["actions"], json!(["pull", "push"]), "ext_auth's labels apply");
    let r = send(&yaml, TestRequest::get().uri(scope).insert_header(basic("alice", "any password"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    // bob and carol are unknown to ext_auth too (exit 2): 401, whatever the password.
    for user in ["bob", "carol"] {
        let r = send(&yaml, TestRequest::get().uri(scope).insert_header(basic(user, "x"))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{user}: {}", r.body);
        assert_eq!(r.body, "Auth failed.\n");
    }
    // `{}` stays docker_auth's "no password key: any password".
    let r = send(&yaml, TestRequest::get().uri(scope).insert_header(basic("dave", "whatever"))).await;
    assert_eq!(r.claims()["sub"], "dave");
}

#[test]
fn check_config_warns_about_a_user_without_value_with_its_line() {
    let keys = Keys::new(KeyKind::EcP256);
    let dir = temp_dir("drop-in-check");
    let (code, stdout) = check_config(dir.path(), &placeholder_users_yaml(&keys).0);
    assert_eq!(code, Some(0), "{stdout}");
    for (user, line) in [("alice", 9), ("bob", 10), ("carol", 11)] {
        let expected = format!(
            "warning: user \"{user}\" has no value, so it is an unknown user (no login as \"{user}\" here) (at users.{user}, line {line})"
        );
        assert!(stdout.contains(&expected), "missing {expected:?} in\n{stdout}");
    }
    // dave (`{}`) is a real user: not "no value", but one that takes any password.
    assert!(!stdout.contains("user \"dave\" has no value"), "{stdout}");
    assert!(stdout.contains("warning: user \"dave\" has no password: any password logs in"), "{stdout}");
    // The fifth: without x5c, registry 3.x refuses the libtrust kid (token.x5c).
    assert!(stdout.contains("(at token.x5c, line 3)") && stdout.contains("OK, 5 warning(s)"), "{stdout}");
}

// Item 2: a server certificate without its key (or the reverse) refuses to start.

fn half_pair_yaml(keys: &Keys, server_line: &str) -> String {
    let yaml = format!(
        "server:\n  addr: \"@ADDR@\"\n{server_line}\ntoken:\n  issuer: \"Acme auth server\"\n  expiration: 900\n  certificate: \"@CERT@\"\n  key: \"@KEY@\"\nusers:\n  \"\": {{}}\nacl:\n  - match: {{account: \"\"}}\n    actions: [\"pull\"]\n"
    );
    with_keys(&yaml, keys)
}

#[test]
fn half_a_server_tls_pair_is_refused_by_check_config_and_serve() {
    let keys = Keys::new(KeyKind::EcP256);
    let dir = temp_dir("drop-in-tls");
    for (line, given, missing) in
        [("  certificate: \"@CERT@\"", "certificate", "key"), ("  key: \"@KEY@\"", "key", "certificate")]
    {
        let yaml = half_pair_yaml(&keys, line).replace("@ADDR@", "127.0.0.1:1");
        let (code, stdout) = check_config(dir.path(), &yaml);
        assert_eq!(code, Some(1), "{stdout}");
        let expected = format!(
            "error: failed to load server cert and key: both were not provided (at server.{given}, line 3); fix: set server.{missing} too"
        );
        assert!(stdout.contains(&expected), "missing {expected:?} in\n{stdout}");

        let path = dir.path().join("serve.yml");
        std::fs::write(&path, &yaml).unwrap();
        let out = Command::new(binary()).arg("serve").arg(&path).env_remove("RUST_LOG").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("both were not provided (at server."), "{stderr}");
    }
}

#[test]
fn a_reload_to_half_a_server_tls_pair_keeps_the_running_config() {
    let keys = Keys::new(KeyKind::EcP256);
    let yaml = half_pair_yaml(&keys, "");
    let server = AuthServer::start(&yaml, false, &[]);
    let config_path = server.dir.path().join("auth_config.yml");
    let running = std::fs::read_to_string(&config_path).unwrap();
    let broken = running
        .replace("  addr:", "  certificate: \"@CERT@\"\n  addr:")
        .replace("@CERT@", &keys.cert.display().to_string())
        .replace("actions: [\"pull\"]", "actions: [\"*\"]");
    replace_file(&config_path, &broken);
    wait_for_reloads(&server.addr, "failed", 1, || server.process.log());
    let resp = http_get(&server.addr, "/auth?scope=repository:a/b:pull,push", &[]).unwrap();
    let token: Value = serde_json::from_slice(&resp.body).unwrap();
    let access = &decode_jwt(token["token"].as_str().unwrap()).claims["access"];
    assert_eq!(access[0]["actions"], json!(["pull"]), "the old config still decides");
    let log = server.process.log();
    assert!(log.contains("both were not provided") && log.contains("server.certificate"), "{log}");
}

// Item 3: YAML merge keys, as docker_auth's yaml.v2 applies them.

#[actix_web::test]
async fn merge_keys_give_users_their_labels_and_acl_entries_their_fields() {
    let keys = Keys::new(KeyKind::EcP256);
    let yaml = with_keys(
        &format!(
            r#"
server:
  addr: "127.0.0.1:0"
token:
  issuer: "Acme auth server"
  expiration: 900
  certificate: "@CERT@"
  key: "@KEY@"
defaults:
  devs: &devs
    password: "{TEST_HASH}"
    labels: {{group: ["devs"]}}
  ops: &ops
    labels: {{group: ["ops"]}}
    password: "{ADMIN_HASH}"
users:
  "c": {{<<: *devs}}
  "d": {{<<: [*ops, *devs]}}
  "e":
    <<: [*devs, *ops]
    password: "{ADMIN_HASH}"
acl:
  - &team
    match: {{labels: {{group: "devs"}}, name: "team/*"}}
    actions: ["pull", "push"]
  - <<: *team
    match: {{labels: {{group: "ops"}}, name: "ops/*"}}
"#
        ),
        &keys,
    );
    let config = registry_auth::config::load_str(&yaml, "t.yml").unwrap();
    let paths: Vec<&str> = config.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(paths, ["defaults"], "no warning about `<<` keys");
    let grant = |user: &'static str, password: &'static str, repo: &'static str| {
        let yaml = yaml.clone();
        async move {
            let uri = format!("/auth?service=reg&scope=repository:{repo}:pull,push");
            let r = send(&yaml, TestRequest::get().uri(&uri).insert_header(basic(user, password))).await;
            (
                r.status,
                if r.status == StatusCode::OK { r.claims()["access"][0]["actions"].clone() } else { json!(null) },
            )
        }
    };
    // c is devs (password 123); d takes ops' labels and password first; e's own password wins.
    assert_eq!(grant("c", "123", "team/app").await, (StatusCode::OK, json!(["pull", "push"])));
    assert_eq!(grant("c", "badmin", "team/app").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(grant("d", "badmin", "ops/app").await, (StatusCode::OK, json!(["pull", "push"])));
    assert_eq!(grant("d", "badmin", "team/app").await, (StatusCode::OK, json!([])));
    assert_eq!(grant("e", "badmin", "team/app").await, (StatusCode::OK, json!(["pull", "push"])));
    assert_eq!(grant("e", "123", "team/app").await.0, StatusCode::UNAUTHORIZED);
}

#[test]
fn a_merge_key_on_a_scalar_is_refused_with_its_line() {
    let dir = temp_dir("drop-in-merge");
    let yaml = "server: {addr: ':5001'}\ntoken: {issuer: x, expiration: 60}\nusers:\n  a:\n    <<: oops\nacl: []\n";
    let (code, stdout) = check_config(dir.path(), yaml);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(stdout.contains("merge key (<<) needs a mapping or a list of mappings"), "{stdout}");
    assert!(stdout.contains("line 5"), "{stdout}");
}

// Item 4: a pair that does not decode is skipped, as Go's url.ParseQuery does.

#[actix_web::test]
async fn malformed_query_and_form_pairs_are_skipped_and_the_rest_kept() {
    let (_keys, yaml) = std_yaml();
    let query = "/auth?scope=%zz&service=reg&a=1;b=2&scope=repository:test/app:pull,push";
    let r = send(&yaml, TestRequest::get().uri(query).insert_header(basic("test", "123"))).await;
    let claims = r.claims();
    assert_eq!(claims["aud"], "reg");
    assert_eq!(claims["access"], json!([{"type": "repository", "name": "test/app", "actions": ["pull", "push"]}]));
    let form = TestRequest::post()
        .uri("/auth?service=reg")
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .set_payload("x=%&username=test&pass%zz=1&password=123&junk=a;b&scope=repository%3Atest%2Fapp%3Apull");
    let claims = send(&yaml, form).await.claims();
    assert_eq!(claims["sub"], "test");
    assert_eq!(claims["access"][0]["actions"], json!(["pull"]));
}

// Item 5: multipart/form-data bodies, within the body limit.

fn multipart(parts: &[(&str, Option<&str>, &str)]) -> TestRequest {
    let boundary = "----registry-auth-test";
    let mut body = String::new();
    for (name, filename, value) in parts {
        let file = filename.map(|f| format!("; filename=\"{f}\"")).unwrap_or_default();
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    TestRequest::post()
        .uri("/auth")
        .insert_header(("Content-Type", format!("multipart/form-data; boundary={boundary}")))
        .set_payload(body)
}

#[actix_web::test]
async fn multipart_forms_carry_credentials_scope_service_and_account() {
    let (_keys, yaml) = std_yaml();
    let request = multipart(&[
        ("username", None, "test"),
        ("password", None, "123"),
        ("account", None, "test"),
        ("service", None, "reg"),
        ("scope", None, "repository:test/app:pull,push"),
        ("scope", Some("scope.txt"), "repository:test/other:pull"),
    ]);
    let claims = send(&yaml, request).await.claims();
    assert_eq!((claims["sub"].clone(), claims["aud"].clone()), (json!("test"), json!("reg")));
    assert_eq!(
        claims["access"],
        json!([{"type": "repository", "name": "test/app", "actions": ["pull", "push"]}]),
        "file parts are not form values"
    );
    let wrong = multipart(&[("username", None, "test"), ("password", None, "nope")]);
    assert_eq!(send(&yaml, wrong).await.status, StatusCode::UNAUTHORIZED);
    let big = multipart(&[("username", None, "test"), ("pad", None, &"x".repeat(100 * 1024))]);
    assert_eq!(send(&yaml, big).await.status, StatusCode::PAYLOAD_TOO_LARGE);
    // A body that is not valid multipart is ignored, as Go does: the request is anonymous.
    let broken = TestRequest::post()
        .uri("/auth?scope=repository:public/x:pull")
        .insert_header(("Content-Type", "multipart/form-data; boundary=zzz"))
        .set_payload("username=test&password=123");
    assert_eq!(send(&yaml, broken).await.claims()["sub"], "");
}

// Item 6: routing on the percent-decoded path.

#[actix_web::test]
async fn percent_encoded_paths_route_as_decoded_and_bad_escapes_are_400() {
    let (_keys, yaml) = std_yaml();
    for path in ["/%61uth", "/auth%2Ftoken", "/%61%75%74%68/token"] {
        let r = send(&yaml, TestRequest::get().uri(path).insert_header(basic("test", "123"))).await;
        assert_eq!(r.claims()["sub"], "test", "{path}");
    }
    assert_eq!(send(&yaml, TestRequest::get().uri("/%61uth%2F")).await.status, StatusCode::NOT_FOUND);
    let r = send(&yaml, TestRequest::get().uri("/%zzuth")).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::BAD_REQUEST, "Bad request: invalid URL escape in path\n"));
    let prefixed = yaml.replace("  addr: \"127.0.0.1:0\"", "  addr: \"127.0.0.1:0\"\n  path_prefix: /pfx");
    assert_eq!(send(&prefixed, TestRequest::get().uri("/%70fx/healthz")).await.body, "ok\n");
}

// Item 7: an empty element picked by real_ip_pos.

#[actix_web::test]
async fn an_empty_real_ip_element_is_client_address_not_provided() {
    let (_keys, yaml) = std_yaml();
    let yaml = yaml.replace(
        "  addr: \"127.0.0.1:0\"",
        "  addr: \"127.0.0.1:0\"\n  real_ip_header: X-Forwarded-For\n  real_ip_pos: 0",
    );
    for value in [" , 10.0.0.2", ",10.0.0.2", "  "] {
        let r = send(&yaml, TestRequest::get().uri("/auth").insert_header(("X-Forwarded-For", value))).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (StatusCode::BAD_REQUEST, "Bad request: client address not provided\n"),
            "{value:?}"
        );
    }
    let second = yaml.replace("real_ip_pos: 0", "real_ip_pos: 1");
    let r = send(&second, TestRequest::get().uri("/auth").insert_header(("X-Forwarded-For", " , 10.0.0.2"))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

// Item 8: the deliberate differences, as documented and as they behave.

#[test]
fn readme_lists_the_deliberate_differences() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = readme.split("## Differences from docker_auth").nth(1).unwrap().split("\n## ").next().unwrap();
    let row = |needle: &str| table.lines().find(|l| l.starts_with('|') && l.contains(needle)).map(str::to_string);
    for needle in ["`/healthz`", "`WWW-Authenticate:", "`token.expiration`", "merge key", "`/%zz`"] {
        let line = row(needle).unwrap_or_else(|| panic!("no row for {needle} in\n{table}"));
        let ours = line.trim_end_matches('|').rsplit(" | ").next().unwrap();
        assert!(ours.len() > 20, "the row for {needle} says what we do and why: {line}");
    }
}

#[actix_web::test]
async fn realm_quotes_are_removed_and_fractional_expiration_is_refused() {
    let (_keys, yaml) = std_yaml();
    let quoted = yaml.replace("issuer: \"Acme auth server\"", "issuer: 'Acme \"quoted\" auth'");
    let r = send(&quoted, TestRequest::get().uri("/auth").insert_header(basic("test", "wrong"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers.get("www-authenticate").unwrap(), "Basic realm=\"Acme quoted auth\"");
    let dir = temp_dir("drop-in-expiration");
    let (code, stdout) = check_config(dir.path(), &yaml.replace("expiration: 900", "expiration: 1.5"));
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("token.expiration must be an integer, found \"1.5\" (at token.expiration, line 6)"),
        "{stdout}"
    );
}
