//! `mongo_auth` and `acl_mongo` against a real MongoDB wire-protocol server (SecantusDB),
//! through our real binary: users with and without passwords and labels, ACL documents out
//! of `seq` order, refresh after `cache_ttl`, a bad document that must not replace a good
//! ACL, an outage that fails closed and heals, and a skopeo push to the real registry.
use std::time::Duration;

use mongodb::bson::{doc, Document};
use serde_json::{json, Value};

use crate::auth_server::AuthServer;
use crate::common::{base_yaml, basic, decode_jwt, with_keys, KeyKind, Keys, TEST_HASH};
use crate::support::http::http_get;
use crate::support::mongo::Mongo;
use crate::support::oci::write_oci_layout;
use crate::support::ports::{wait_until, Probe};
use crate::support::registry::{Registry, RegistryAuth};
use crate::support::skopeo::{docker_ref, Creds, Skopeo};
use crate::support::temp_dir;

const TTL_WAIT: Duration = Duration::from_secs(10);

fn config(keys: &Keys, mongo: &Mongo, tls: bool) -> String {
    let server_tls = if tls { "  certificate: \"@CERT@\"\n  key: \"@KEY@\"\n" } else { "" };
    let dial = format!("  dial_info:\n    addrs: [\"{}\"]\n    database: docker_auth\n    timeout: 1s\n", mongo.addr());
    let base = base_yaml("@ADDR@", server_tls, "static");
    let yaml = format!(
        r#"{base}mongo_auth:
{dial}  collection: users
acl_mongo:
{dial}  collection: acl
  cache_ttl: 1s
"#
    );
    with_keys(&yaml, keys)
}

/// The standard data: alice (bcrypt "123", label group=devs), ci (no password, no labels),
/// and two ACL entries inserted in the wrong order: by `seq`, devs get everything first.
fn seed(mongo: &Mongo) {
    mongo.insert(
        "users",
        vec![doc! {"username": "alice", "password": TEST_HASH, "labels": {"group": ["devs"]}}, doc! {"username": "ci"}],
    );
    mongo.insert(
        "acl",
        vec![
            doc! {"seq": 20, "match": {"account": "/.+/"}, "actions": ["pull"], "comment": "everyone pulls"},
            doc! {"seq": 10, "match": {"labels": {"group": "devs"}}, "actions": ["*"], "comment": "devs"},
        ],
    );
}

/// (status, body) of a token request for `scope` with Basic credentials.
pub fn token(server: &AuthServer, user: &str, password: &str, scope: &str) -> (u16, String) {
    let auth = basic(user, password);
    let path = format!("/auth?service=registry&scope={scope}");
    let reply = http_get(&server.addr, &path, &[(&auth.0, &auth.1)]).unwrap_or_else(|e| panic!("GET {path}: {e}"));
    (reply.status, reply.body_text())
}

pub fn granted(server: &AuthServer, user: &str, password: &str, scope: &str) -> Value {
    let (status, body) = token(server, user, password, scope);
    assert_eq!(status, 200, "{user}: {body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    decode_jwt(body["token"].as_str().unwrap()).claims["access"][0]["actions"].clone()
}

fn start() -> (Keys, Mongo, AuthServer) {
    let keys = Keys::new(KeyKind::EcP256);
    let mongo = Mongo::start();
    seed(&mongo);
    let server = AuthServer::start(&config(&keys, &mongo, false), false, &[]);
    (keys, mongo, server)
}

#[test]
fn mongo_users_and_a_seq_ordered_acl_decide_tokens() {
    let (_keys, mongo, server) = start();
    // seq 10 (devs: *) is consulted before seq 20 although it was inserted second.
    assert_eq!(granted(&server, "alice", "123", "repository:x/y:pull,push"), json!(["pull", "push"]));
    assert_eq!(token(&server, "alice", "wrong", "repository:x/y:pull").0, 401);
    // No password field: any password; no labels: only the seq 20 rule.
    assert_eq!(granted(&server, "ci", "anything", "repository:x/y:pull,push"), json!(["pull"]));
    // Not in the collection: no match, 401 after the chain.
    assert_eq!(token(&server, "nobody", "x", "repository:x/y:pull").0, 401);
    // The static user comes first in the chain and is authorized by the Mongo ACL.
    assert_eq!(granted(&server, "static", "badmin", "repository:x/y:pull,push"), json!(["pull"]));
    wait_until("unique indexes on username and seq", TTL_WAIT, || {
        let (users, acl) = (mongo.index_names("users"), mongo.index_names("acl"));
        if users.iter().any(|n| n == "username_1") && acl.iter().any(|n| n == "seq_1") {
            Probe::Ready(())
        } else {
            Probe::NotYet(format!("{users:?} {acl:?}"))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn acl_changes_apply_after_cache_ttl_and_a_bad_document_keeps_the_good_acl() {
    let (_keys, mongo, server) = start();
    assert_eq!(granted(&server, "ci", "x", "repository:x/y:pull"), json!(["pull"]));
    mongo.insert("acl", vec![doc! {"seq": 5, "match": {"account": "ci"}, "actions": []}]);
    wait_until("the new entry applies", TTL_WAIT, || match granted(&server, "ci", "x", "repository:x/y:pull") {
        v if v == json!([]) => Probe::Ready(()),
        v => Probe::NotYet(v.to_string()),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    // An unknown match key (it would match everything) and then a bad regex: each refresh
    // is refused with the document named, and the last good ACL stays.
    let bad: [Document; 2] = [
        doc! {"seq": 1, "match": {"team": "ci"}, "actions": ["*"]},
        doc! {"seq": 2, "match": {"name": "/(/"}, "actions": ["*"]},
    ];
    for document in bad {
        let seq = document.get_i32("seq").unwrap();
        mongo.insert("acl", vec![document]);
        wait_until("the refresh is refused", TTL_WAIT, || {
            let log = server.process.log();
            if log.contains("acl_mongo refresh failed") && log.contains(&format!("seq={seq}")) {
                Probe::Ready(())
            } else {
                Probe::NotYet("no refusal logged yet".into())
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(granted(&server, "ci", "x", "repository:x/y:pull"), json!([]), "seq {seq} replaced the ACL");
        mongo.delete("acl", doc! {"seq": seq});
    }
}

#[test]
fn a_mongo_outage_fails_closed_keeps_the_cached_acl_and_heals() {
    let (_keys, mut mongo, server) = start();
    assert_eq!(granted(&server, "alice", "123", "repository:x/y:push"), json!(["push"]));
    mongo.stop();
    let (status, body) = token(&server, "alice", "123", "repository:x/y:push");
    assert_eq!((status, body.as_str()), (500, "Authentication failed (authn #2 returned error)\n"));
    // A static user is still authorized by the last ACL read from MongoDB.
    assert_eq!(granted(&server, "static", "badmin", "repository:x/y:pull"), json!(["pull"]));
    let readyz = || crate::support::http::http_get(&server.addr, "/readyz", &[]).unwrap().status;
    assert_eq!(readyz(), 503, "/readyz must report MongoDB down");
    mongo.restart();
    wait_until("logins work again", Duration::from_secs(30), || {
        match token(&server, "alice", "123", "repository:x/y:push") {
            (200, _) => Probe::Ready(()),
            (status, body) => Probe::NotYet(format!("{status} {body}")),
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(readyz(), 200);
    let log = server.process.log();
    assert!(!log.contains("\"123\"") && !log.contains("badmin"), "a password reached the log:\n{log}");
}

#[test]
fn an_unreachable_acl_collection_stops_the_start() {
    let keys = Keys::new(KeyKind::EcP256);
    let mut mongo = Mongo::start();
    mongo.stop();
    let yaml = config(&keys, &mongo, false).replace("@ADDR@", "127.0.0.1:0");
    let config = registry_auth::config::load_str(&yaml, "test.yml").unwrap_or_else(|e| panic!("{e}"));
    let errors = registry_auth::app::build(&config).err().expect("the start must fail");
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(text.iter().any(|t| t.contains("cannot load the ACL from MongoDB")), "{text:?}");
}

#[test]
fn a_mongo_user_pushes_where_the_mongo_acl_allows_and_not_elsewhere() {
    let keys = Keys::new(KeyKind::EcP256);
    let mongo = Mongo::start();
    mongo.insert("users", vec![doc! {"username": "alice", "password": TEST_HASH, "labels": {"team": ["web"]}}]);
    mongo.insert(
        "acl",
        vec![doc! {"seq": 1, "match": {"name": "${labels:team}/*"}, "actions": ["pull", "push"], "comment": "team repos"}],
    );
    let auth = AuthServer::start(&config(&keys, &mongo, true), true, &[]);
    let registry = Registry::start(RegistryAuth {
        realm: auth.realm(),
        service: "registry".to_string(),
        issuer: "Acme auth server".to_string(),
        rootcertbundle: keys.cert.clone(),
    });
    let images = temp_dir("mongo-images");
    let image = write_oci_layout(&images.path().join("layout"), "v1", &[("hello.txt", b"hello from mongo")]);
    let skopeo = Skopeo::with_shared_cache();
    let alice = Creds::Basic("alice", "123");
    skopeo
        .copy(&image.oci_ref(), &docker_ref(&registry.addr(), "web/app", "v1"), Creds::Anonymous, alice)
        .unwrap_or_else(|e| panic!("push to web/app: {e}"));
    let refused =
        skopeo.copy(&image.oci_ref(), &docker_ref(&registry.addr(), "ops/app", "v1"), Creds::Anonymous, alice);
    assert!(refused.is_err(), "push outside the team namespace must fail");
}
