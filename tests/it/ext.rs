//! `ext_auth` / `ext_authz` through HTTP token requests, with the real test scripts in
//! tests/ext/ (every exit code, labels, bad JSON, a hang, a stdout flood, concurrency).
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::auth_server::AuthServer;
use crate::common::*;
use crate::support::http::http_get;
use crate::support::temp_dir;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ext").join(name)
}

/// A config with one static user (`static`/`badmin`), `ext_auth` and an ACL where `alice`'s
/// `devs` label grants push; `ext_authz` (when given) decides what the ACL does not match.
fn ext_yaml(keys: &Keys, dir: &Path, ext_auth_extra: &str, with_authz: bool) -> String {
    let authz = if with_authz {
        format!("ext_authz:\n  command: {:?}\n  args: [{:?}]\n  timeout: 1s\n", script("ext_authz.sh"), dir)
    } else {
        String::new()
    };
    let yaml = format!(
        r#"{base}ext_auth:
  command: {command:?}
  args: [{dir:?}]
{ext_auth_extra}
acl:
  - match: {{labels: {{group: "devs"}}, name: "team/*"}}
    actions: ["pull", "push"]
  - match: {{account: "/.+/", name: "team/*"}}
    actions: ["pull"]
{authz}"#,
        base = base_yaml("@ADDR@", "", "static"),
        command = script("ext_auth.sh"),
    );
    with_keys(&yaml, keys)
}

struct Reply {
    status: StatusCode,
    body: String,
}

impl Reply {
    fn access(&self) -> Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        let body: Value = serde_json::from_str(&self.body).unwrap();
        decode_jwt(body["token"].as_str().unwrap()).claims["access"].clone()
    }
}

async fn token(yaml: &str, user: &str, password: &str, scope: &str) -> Reply {
    let app = app_for(&yaml.replace("@ADDR@", "127.0.0.1:0")).await;
    let uri = format!("/auth?service=registry&scope={scope}");
    let req = TestRequest::get().uri(&uri).insert_header(basic(user, password));
    let resp = test::call_service(&app, req.peer_addr("10.1.2.3:4567".parse().unwrap()).to_request()).await;
    let status = resp.status();
    let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    Reply { status, body }
}

fn setup(extra: &str, with_authz: bool) -> (Keys, TempDir, String) {
    let keys = Keys::new(KeyKind::EcP256);
    let dir = temp_dir("ext");
    let yaml = ext_yaml(&keys, dir.path(), extra, with_authz);
    (keys, dir, yaml)
}

#[actix_web::test]
async fn exit_0_allows_with_json_labels_that_reach_the_acl() {
    let (_keys, dir, yaml) = setup("", false);
    let r = token(&yaml, "alice", "open sesame", "repository:team/app:pull,push").await;
    assert_eq!(r.access(), json!([{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]));
    // The exact stdin: account, one space, the password with its spaces, no newline.
    assert_eq!(std::fs::read_to_string(dir.path().join("stdin-alice")).unwrap(), "alice open sesame");
    // Exit 0 with empty stdout: allowed without labels, so only the pull rule applies.
    let r = token(&yaml, "plain", "x", "repository:team/app:pull,push").await;
    assert_eq!(r.access()[0]["actions"], json!(["pull"]));
}

#[actix_web::test]
async fn exit_1_denies_and_exit_2_falls_through_to_unauthorized() {
    let (_keys, _dir, yaml) = setup("", false);
    for (user, password) in [("alice", "wrong"), ("deny", "x"), ("nomatch", "x")] {
        let r = token(&yaml, user, password, "repository:team/app:pull").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{user}: {}", r.body);
        assert_eq!(r.body, "Auth failed.\n");
    }
}

#[actix_web::test]
async fn static_users_come_first_and_a_wrong_static_password_never_reaches_the_program() {
    let (_keys, dir, yaml) = setup("", false);
    assert_eq!(token(&yaml, "static", "badmin", "repository:team/app:pull").await.status, StatusCode::OK);
    assert_eq!(token(&yaml, "static", "nope", "repository:team/app:pull").await.status, StatusCode::UNAUTHORIZED);
    assert!(!dir.path().join("stdin-static").exists(), "the static user must not reach ext_auth");
}

#[actix_web::test]
async fn exit_2_is_no_match_and_exit_1_a_definite_denial() {
    use registry_auth::authn::{ext::ExtAuth, Authenticator, AuthnOutcome};
    use registry_auth::config::ExtConfig;
    let dir = temp_dir("ext-direct");
    let config = ExtConfig {
        command: script("ext_auth.sh"),
        args: vec![dir.path().display().to_string()],
        timeout: Duration::from_secs(5),
        max_concurrency: 2,
    };
    let ext = ExtAuth::new(&config);
    let outcome = |user: &'static str| {
        let ext = &ext;
        async move { ext.authenticate(user, &registry_auth::secret::Secret::new("pw")).await.unwrap() }
    };
    assert_eq!(outcome("nomatch").await, AuthnOutcome::NoMatch);
    assert_eq!(outcome("deny").await, AuthnOutcome::Deny);
    assert_eq!(outcome("plain").await, AuthnOutcome::Allow(Default::default()));
}

#[actix_web::test]
async fn other_exit_codes_and_bad_output_fail_closed_with_a_fixed_500() {
    let (_keys, _dir, yaml) = setup("", false);
    for user in ["code3", "badjson", "badlabels"] {
        let r = token(&yaml, user, "x", "repository:team/app:pull").await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{user}: {}", r.body);
        // users is #1 in the chain, ext_auth #2; no internal text leaks.
        assert_eq!(r.body, "Authentication failed (authn #2 returned error)\n", "{user}");
    }
}

#[actix_web::test]
async fn a_hanging_program_is_killed_with_its_children_after_the_timeout() {
    let (_keys, dir, yaml) = setup("  timeout: 1s", false);
    let started = Instant::now();
    let r = token(&yaml, "hang", "x", "repository:team/app:pull").await;
    let elapsed = started.elapsed();
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.body);
    assert!(elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(5), "took {elapsed:?}");
    for file in ["hang.pid", "hang-child.pid"] {
        let pid = std::fs::read_to_string(dir.path().join(file)).unwrap();
        let proc_dir = PathBuf::from(format!("/proc/{}", pid.trim()));
        crate::support::ports::wait_until(&format!("{file} killed"), Duration::from_secs(5), || {
            match std::fs::read_to_string(proc_dir.join("stat")) {
                // Gone, or a zombie waiting for its (killed) parent to be reaped.
                Err(_) => crate::support::ports::Probe::Ready(()),
                Ok(stat) if stat.split(' ').nth(2) == Some("Z") => crate::support::ports::Probe::Ready(()),
                Ok(stat) => crate::support::ports::Probe::NotYet(stat),
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
    }
}

#[actix_web::test]
async fn a_program_flooding_stdout_is_cut_off_quickly() {
    let (_keys, _dir, yaml) = setup("", false);
    let started = Instant::now();
    let r = token(&yaml, "flood", "x", "repository:team/app:pull").await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.body);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

/// Runs three slow logins at once and says whether the script saw two runs overlap.
async fn overlapped(max_concurrency: usize) -> bool {
    let (_keys, dir, yaml) = setup(&format!("  max_concurrency: {max_concurrency}"), false);
    let app = app_for(&yaml.replace("@ADDR@", "127.0.0.1:0")).await;
    let request = || {
        let req = TestRequest::get().uri("/auth?service=registry").insert_header(basic("slow", "x"));
        test::call_service(&app, req.peer_addr("10.1.2.3:4567".parse().unwrap()).to_request())
    };
    let (a, b, c) = futures_util::join!(request(), request(), request());
    for resp in [a, b, c] {
        assert_eq!(resp.status(), StatusCode::OK);
    }
    dir.path().join("overlap").exists()
}

#[actix_web::test]
async fn max_concurrency_caps_the_number_of_running_children() {
    assert!(!overlapped(1).await, "with max_concurrency 1 two runs overlapped");
    // The control: without the cap the same logins do overlap, so the check above can fail.
    assert!(overlapped(3).await, "three parallel runs never overlapped; the test proves nothing");
}

#[actix_web::test]
async fn ext_authz_decides_what_the_acl_leaves_and_gets_docker_auths_json() {
    let (_keys, dir, yaml) = setup("", true);
    let r = token(&yaml, "alice", "open sesame", "repository:allow/app:push,pull").await;
    assert_eq!(r.access()[0]["actions"], json!(["pull", "push"]));
    let stdin = std::fs::read_to_string(dir.path().join("authz-stdin")).unwrap();
    assert_eq!(
        stdin,
        r#"{"Account":"alice","Type":"repository","Name":"allow/app","Service":"registry","IP":"10.1.2.3","Actions":["pull","push"],"Labels":{"group":["devs","qa"]}}"#
    );
    let r = token(&yaml, "alice", "open sesame", "repository:deny/app:pull").await;
    assert_eq!(r.access()[0]["actions"], json!([]));
    // The ACL matches team/* first: ext_authz is not asked.
    std::fs::remove_file(dir.path().join("authz-stdin")).unwrap();
    let r = token(&yaml, "alice", "open sesame", "repository:team/app:push").await;
    assert_eq!(r.access()[0]["actions"], json!(["push"]));
    assert!(!dir.path().join("authz-stdin").exists());
}

#[actix_web::test]
async fn ext_authz_errors_and_hangs_fail_closed() {
    let (_keys, _dir, yaml) = setup("", true);
    for scope in ["repository:other/app:pull", "repository:hang/app:pull"] {
        let started = Instant::now();
        let r = token(&yaml, "alice", "open sesame", scope).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{scope}: {}", r.body);
        assert_eq!(r.body, "Authorization failed (authz #2 returned error)\n");
        assert!(started.elapsed() < Duration::from_secs(5), "{scope} took {:?}", started.elapsed());
    }
}

#[test]
fn the_programs_stderr_goes_to_the_log_and_the_password_does_not() {
    let keys = Keys::new(KeyKind::EcP256);
    let dir = temp_dir("ext-log");
    let server = AuthServer::start(&ext_yaml(&keys, dir.path(), "", false), false, &[]);
    let auth = basic("noisy", "hunter2 secret");
    let reply = http_get(&server.addr, "/auth?service=registry", &[(&auth.0, &auth.1)]).unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body_text());
    let log = server.process.log();
    assert!(log.contains("diagnostic line from the hook"), "{log}");
    assert!(!log.contains("hunter2"), "the password reached the log: {log}");
}

#[test]
fn an_unknown_command_stops_the_start_with_the_yaml_line() {
    let keys = Keys::new(KeyKind::EcP256);
    let yaml = ext_yaml(&keys, Path::new("/tmp"), "", false)
        .replace(&format!("{:?}", script("ext_auth.sh")), "\"no-such-hook-program\"");
    let line = yaml.lines().position(|l| l.contains("no-such-hook-program")).unwrap() + 1;
    let err = registry_auth::config::load_str(&yaml, "test.yml").unwrap_err().to_string();
    assert!(err.contains("bad ext_auth config: invalid command \"no-such-hook-program\""), "{err}");
    assert!(err.contains(&format!("at ext_auth.command, line {line}")), "{err}");
}

#[actix_web::test]
async fn the_readme_sample_program_works() {
    let keys = Keys::new(KeyKind::EcP256);
    let dir = temp_dir("ext-sample");
    let users = dir.path().join("users.txt");
    std::fs::write(&users, "alice:s3cret:devs\n").unwrap();
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/ext_auth_example.sh");
    let yaml = ext_yaml(&keys, dir.path(), "", false)
        .replace(&format!("{:?}", script("ext_auth.sh")), &format!("{sample:?}"))
        .replace(&format!("[{:?}]", dir.path()), &format!("[{users:?}]"));
    let r = token(&yaml, "alice", "s3cret", "repository:team/app:push").await;
    assert_eq!(r.access()[0]["actions"], json!(["push"]), "the devs label reached the ACL");
    assert_eq!(token(&yaml, "alice", "nope", "repository:team/app:pull").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(token(&yaml, "bob", "s3cret", "repository:team/app:pull").await.status, StatusCode::UNAUTHORIZED);
}
