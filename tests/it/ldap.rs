//! `ldap_auth` against a real OpenLDAP slapd started per test (support/slapd.rs): outcomes,
//! labels from memberOf and from the group search, filter and DN injection, plain / StartTLS /
//! LDAPS with and without verification, fail-closed errors and recovery, and a skopeo push.
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use serde_json::{json, Value};

use crate::auth_server::AuthServer;
use crate::common::*;
use crate::support::oci::write_oci_layout;
use crate::support::registry::{Registry, RegistryAuth};
use crate::support::skopeo::{docker_ref, Creds, Skopeo};
use crate::support::slapd::{Slapd, BASE, READER_DN, READER_PASSWORD};
use crate::support::temp_dir;

const FAILED_500: &str = "Authentication failed (authn #2 returned error)\n";

/// Static `admin` first (docker_auth's chain order), then LDAP with `ldap` as its body.
fn config(keys: &Keys, addr: &str, ldap: &str) -> String {
    let base = base_yaml(addr, "", "admin");
    let yaml = format!(
        r#"{base}ldap_auth:
{ldap}
acl:
  - match: {{account: "admin"}}
    actions: ["*"]
  - match: {{name: "${{labels:groups}}/*"}}
    actions: ["pull", "push"]
  - match: {{name: "${{labels:raw}}/*"}}
    actions: ["pull"]
"#
    );
    with_keys(&yaml, keys)
}

/// The service-account lines, with the password in a file as docker_auth wants it.
fn service_bind(dir: &std::path::Path) -> String {
    let file = dir.join("bind_password");
    std::fs::write(&file, format!("{READER_PASSWORD}\n")).unwrap();
    format!("  bind_dn: \"{READER_DN}\"\n  bind_password_file: \"{}\"\n", file.display())
}

const MEMBER_OF_LABELS: &str = r#"  base: "ou=people,dc=example,dc=com"
  filter: "(&(uid=${account})(objectClass=inetOrgPerson))"
  labels:
    groups: {attribute: memberOf, parse_cn: true, lower_case: true}
    raw: {attribute: memberof, parse_cn: true}
"#;

/// (status, body) of `GET /auth` for one scope.
async fn ask<S, B>(app: &S, user: &str, password: &str, scope: &str) -> (StatusCode, String)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let uri = format!("/auth?service=registry&scope={scope}");
    let req = TestRequest::get().uri(&uri).insert_header(basic(user, password)).to_request();
    let resp = test::call_service(app, req).await;
    let status = resp.status();
    let body = test::read_body(resp).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The actions granted for the single requested scope (asserting a 200).
async fn granted<S, B>(app: &S, user: &str, password: &str, scope: &str) -> Value
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let (status, body) = ask(app, user, password, scope).await;
    assert_eq!(status, StatusCode::OK, "{user} {scope}: {body}");
    let token: Value = serde_json::from_str(&body).unwrap();
    decode_jwt(token["token"].as_str().unwrap()).claims["access"][0]["actions"].clone()
}

#[actix_web::test]
async fn service_bind_search_user_bind_and_member_of_labels() {
    let slapd = Slapd::start();
    let keys = Keys::new(KeyKind::EcP256);
    let ldap = format!("  addr: \"{}\"\n{}{MEMBER_OF_LABELS}", slapd.ldap_addr(), service_bind(slapd.dir()));
    let app = app_for(&config(&keys, "127.0.0.1:0", &ldap)).await;

    // memberOf → parse_cn + lower_case: alice is in Devs and ops, bob only in Devs.
    assert_eq!(granted(&app, "alice", "alice-pw", "repository:devs/app:pull,push").await, json!(["pull", "push"]));
    assert_eq!(granted(&app, "alice", "alice-pw", "repository:ops/app:push").await, json!(["push"]));
    assert_eq!(granted(&app, "bob", "bob-pw", "repository:ops/app:pull").await, json!([]));
    assert_eq!(granted(&app, "carol", "carol-pw", "repository:devs/app:pull").await, json!([]));
    // parse_cn without lower_case keeps the CN's case; the attribute name is case-insensitive.
    assert_eq!(granted(&app, "bob", "bob-pw", "repository:Devs/app:pull,push").await, json!(["pull"]));

    // Wrong password: 401. Unknown account, empty password: no match, so 401 too.
    for (user, password) in [("alice", "wrong"), ("nobody", "x"), ("alice", "")] {
        let (status, body) = ask(&app, user, password, "repository:devs/app:pull").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{user}: {body}");
    }
    // The static user before LDAP still decides for itself.
    assert_eq!(granted(&app, "admin", "badmin", "repository:x/y:push").await, json!(["push"]));
}

#[actix_web::test]
async fn service_connections_are_reused_and_user_binds_are_not() {
    let slapd = Slapd::start();
    let keys = Keys::new(KeyKind::EcP256);
    let ldap = format!("  addr: \"{}\"\n{}{MEMBER_OF_LABELS}", slapd.ldap_addr(), service_bind(slapd.dir()));
    let app = app_for(&config(&keys, "127.0.0.1:0", &ldap)).await;
    let before = slapd.accepted_connections();
    for _ in 0..5 {
        assert_eq!(granted(&app, "alice", "alice-pw", "repository:devs/app:pull").await, json!(["pull"]));
    }
    // One pooled service connection for all five searches, one connection per user bind.
    assert_eq!(slapd.accepted_connections() - before, 1 + 5);
}

#[actix_web::test]
async fn filter_injection_never_authenticates() {
    let slapd = Slapd::start();
    let keys = Keys::new(KeyKind::EcP256);
    let ldap = format!("  addr: \"{}\"\n{}{MEMBER_OF_LABELS}", slapd.ldap_addr(), service_bind(slapd.dir()));
    let app = app_for(&config(&keys, "127.0.0.1:0", &ldap)).await;
    // Unescaped, `ali*` would find exactly alice and her password would log it in; the others
    // would widen or break the filter.
    for account in ["ali*", "*", ")(uid=*", "alice)(uid=*", "*)(|(uid=*", "alice\0"] {
        let (status, body) = ask(&app, account, "alice-pw", "repository:devs/app:pull").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{account:?}: {body}");
    }
    assert_eq!(granted(&app, "alice", "alice-pw", "repository:devs/app:pull").await, json!(["pull"]));
}

#[actix_web::test]
async fn group_search_gives_group_labels_without_member_of() {
    let slapd = Slapd::start();
    let keys = Keys::new(KeyKind::EcP256);
    // Anonymous service search (no bind_dn), groups found by member=<user DN>.
    let ldap = format!(
        "  addr: \"{}\"\n  base: \"{BASE}\"\n  filter: \"(uid=${{account}})\"\n  group_base: \"ou=groups,{BASE}\"\n  group_filter: \"(&(objectClass=groupOfNames)(member=${{dn}}))\"\n",
        slapd.ldap_addr()
    );
    let app = app_for(&config(&keys, "127.0.0.1:0", &ldap)).await;
    assert_eq!(granted(&app, "alice", "alice-pw", "repository:Devs/app:push").await, json!(["push"]));
    assert_eq!(granted(&app, "alice", "alice-pw", "repository:ops/app:push").await, json!(["push"]));
    assert_eq!(granted(&app, "bob", "bob-pw", "repository:ops/app:push").await, json!([]));
    assert_eq!(granted(&app, "carol", "carol-pw", "repository:Devs/app:pull").await, json!([]));
    let (status, _) = ask(&app, "alice", "bob-pw", "repository:Devs/app:pull").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn initial_bind_as_user_escapes_the_account_in_the_dn() {
    let slapd = Slapd::start();
    let keys = Keys::new(KeyKind::EcP256);
    let ldap = format!(
        "  addr: \"{}\"\n  initial_bind_as_user: true\n  bind_dn: \"uid=${{account}},ou=people,{BASE}\"\n{MEMBER_OF_LABELS}",
        slapd.ldap_addr()
    );
    let app = app_for(&config(&keys, "127.0.0.1:0", &ldap)).await;
    assert_eq!(granted(&app, "alice", "alice-pw", "repository:devs/app:push").await, json!(["push"]));
    // `alice,ou=people` stays one RDN value (unit-tested in escape.rs), names no entry: 401.
    for (account, password) in [("alice", "wrong"), ("alice,ou=people", "alice-pw"), ("nobody", "x")] {
        let (status, body) = ask(&app, account, password, "repository:devs/app:pull").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{account}: {body}");
    }
}

#[actix_web::test]
async fn more_than_one_entry_is_a_fixed_500() {
    let slapd = Slapd::start();
    let keys = Keys::new(KeyKind::EcP256);
    let ldap =
        format!("  addr: \"{}\"\n  base: \"{BASE}\"\n  filter: \"(description=${{account}})\"\n", slapd.ldap_addr());
    let app = app_for(&config(&keys, "127.0.0.1:0", &ldap)).await;
    let (status, body) = ask(&app, "team", "alice-pw", "repository:devs/app:pull").await;
    assert_eq!((status, body.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, FAILED_500));
}

#[actix_web::test]
async fn starttls_and_ldaps_verify_the_directory_certificate() {
    let slapd = Slapd::start();
    let keys = Keys::new(KeyKind::EcP256);
    let ca = slapd.ca_path.display().to_string();
    let user = format!("  base: \"{BASE}\"\n  filter: \"(uid=${{account}})\"\n");
    let cases = [
        (format!("  addr: \"{}\"\n  tls: starttls\n  ca_certificate: \"{ca}\"\n", slapd.ldap_addr()), true),
        (format!("  addr: \"{}\"\n  tls: always\n  ca_certificate: \"{ca}\"\n", slapd.ldaps_addr()), true),
        (format!("  addr: \"{}\"\n  tls: always\n  insecure_tls_skip_verify: true\n", slapd.ldaps_addr()), true),
        (format!("  addr: \"{}\"\n  tls: starttls\n  insecure_tls_skip_verify: true\n", slapd.ldap_addr()), true),
        // The test CA is in no system store: verification must fail, and fail closed.
        (format!("  addr: \"{}\"\n  tls: always\n", slapd.ldaps_addr()), false),
        (format!("  addr: \"{}\"\n  tls: starttls\n", slapd.ldap_addr()), false),
        // Plain LDAP to the LDAPS port is not a TLS downgrade that works.
        (format!("  addr: \"{}\"\n  tls: none\n  operation_timeout: 2s\n", slapd.ldaps_addr()), false),
    ];
    for (connection, works) in cases {
        let app = app_for(&config(&keys, "127.0.0.1:0", &format!("{connection}{user}"))).await;
        let (status, body) = ask(&app, "alice", "alice-pw", "repository:x/y:pull").await;
        if works {
            assert_eq!(status, StatusCode::OK, "{connection}: {body}");
        } else {
            assert_eq!((status, body.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, FAILED_500), "{connection}");
        }
    }
}

#[actix_web::test]
async fn directory_down_fails_closed_and_recovery_is_automatic() {
    let mut slapd = Slapd::start();
    let keys = Keys::new(KeyKind::EcP256);
    let ldap = format!("  addr: \"{}\"\n{}{MEMBER_OF_LABELS}", slapd.ldap_addr(), service_bind(slapd.dir()));
    let app = app_for(&config(&keys, "127.0.0.1:0", &ldap)).await;
    assert_eq!(granted(&app, "alice", "alice-pw", "repository:devs/app:push").await, json!(["push"]));

    slapd.stop();
    // Known and unknown accounts alike: a 5xx, never a 401 as if the user did not exist.
    for user in ["alice", "nobody"] {
        let (status, body) = ask(&app, user, "alice-pw", "repository:devs/app:push").await;
        assert_eq!((status, body.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, FAILED_500), "{user}");
    }
    assert_eq!(granted(&app, "admin", "badmin", "repository:devs/app:push").await, json!(["push"]));
    assert_eq!(readyz(&app).await, StatusCode::SERVICE_UNAVAILABLE, "/readyz must report the directory down");

    // The pooled connection died with slapd; the next login reconnects by itself.
    slapd.restart();
    assert_eq!(readyz(&app).await, StatusCode::OK);
    assert_eq!(granted(&app, "alice", "alice-pw", "repository:devs/app:push").await, json!(["push"]));
    assert_eq!(granted(&app, "alice", "alice-pw", "repository:ops/app:push").await, json!(["push"]));
}

async fn readyz<S, B>(app: &S) -> StatusCode
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    test::call_service(app, TestRequest::get().uri("/readyz").to_request()).await.status()
}

#[actix_web::test]
async fn a_directory_that_never_answers_times_out() {
    // Accepts TCP connections (kernel backlog) but never speaks LDAP.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let keys = Keys::new(KeyKind::EcP256);
    let ldap = format!(
        "  addr: \"{addr}\"\n  filter: \"(uid=${{account}})\"\n  connect_timeout: 500ms\n  operation_timeout: 500ms\n"
    );
    let app = app_for(&config(&keys, "127.0.0.1:0", &ldap)).await;
    let started = Instant::now();
    let (status, body) = ask(&app, "alice", "alice-pw", "repository:x/y:pull").await;
    assert_eq!((status, body.as_str()), (StatusCode::INTERNAL_SERVER_ERROR, FAILED_500));
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

/// `config/ldap_openldap.yml` (the README's example), pointed at the test slapd.
#[actix_web::test]
async fn the_openldap_example_config_works_as_documented() {
    let slapd = Slapd::start();
    let keys = Keys::new(KeyKind::EcP256);
    let password = slapd.dir().join("ldap-password");
    std::fs::write(&password, READER_PASSWORD).unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/ldap_openldap.yml");
    let yaml = std::fs::read_to_string(example)
        .unwrap()
        .replace("ldap.example.com:389", &slapd.ldap_addr())
        .replace("/etc/registry-auth/ldap-ca.pem", &slapd.ca_path.display().to_string())
        .replace("/etc/registry-auth/ldap-password", &password.display().to_string())
        .replace("ssl/server.pem", "@CERT@")
        .replace("ssl/server.key", "@KEY@");
    let app = app_for(&with_keys(&yaml, &keys)).await;
    assert_eq!(granted(&app, "alice", "alice-pw", "repository:Devs/app:push").await, json!(["push"]));
    assert_eq!(granted(&app, "alice", "alice-pw", "repository:ops/app:push").await, json!(["push"]));
    assert_eq!(granted(&app, "carol", "carol-pw", "repository:ops/app:pull,push").await, json!(["pull"]));
    assert_eq!(granted(&app, "dave", "dave-pw", "repository:ops/app:delete").await, json!(["delete"]));
}

/// The real binary, registry and skopeo: an LDAP user pushes into its group's namespace
/// (`${labels:groups}/*` from memberOf) over LDAPS and is refused everywhere else.
#[test]
fn ldap_user_pushes_into_its_group_namespace_with_skopeo() {
    let slapd = Slapd::start();
    let keys = Keys::new(KeyKind::EcP256);
    let ldap = format!(
        "  addr: \"{}\"\n  tls: always\n  ca_certificate: \"{}\"\n{}{MEMBER_OF_LABELS}",
        slapd.ldaps_addr(),
        slapd.ca_path.display(),
        service_bind(slapd.dir())
    );
    let auth = AuthServer::start(&config(&keys, "@ADDR@", &ldap), false, &["serve"]);
    let registry = Registry::start(RegistryAuth {
        realm: auth.realm(),
        service: "registry".to_string(),
        issuer: "Acme auth server".to_string(),
        rootcertbundle: keys.cert.clone(),
    });
    let images = temp_dir("ldap-images");
    let image = write_oci_layout(&images.path().join("layout"), "v1", &[("hello.txt", b"hello from ldap")]);
    let skopeo = Skopeo::new();
    let bob = Creds::Basic("bob", "bob-pw");
    let push = |repo: &str, creds| {
        skopeo.copy(&image.oci_ref(), &docker_ref(&registry.addr(), repo, "v1"), Creds::Anonymous, creds)
    };
    push("devs/app", bob).unwrap_or_else(|e| panic!("bob pushes into devs/: {e}\n{}", auth.process.log()));
    assert!(push("ops/app", bob).is_err(), "bob is not in ops");
    assert!(push("bob/app", bob).is_err(), "no namespace of his own");
    assert!(push("devs/other", Creds::Basic("bob", "wrong")).is_err(), "wrong password");
    let tags = skopeo.list_tags(&format!("docker://{}/devs/app", registry.addr()), bob).unwrap();
    assert!(tags.contains("\"v1\""), "{tags}");
}
