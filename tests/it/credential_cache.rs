//! The verified-credential cache through the real binary, observed on `/metrics`
//! (`registry_auth_credential_cache_total{result=hit|miss}`, verified logins only):
//! repeat logins hit, wrong passwords never do (and are not counted), a reload drops it, a changed password (in the config or in MongoDB)
//! is refused at once, and `ttl: 0` turns it off. Timing is never asserted.
use mongodb::bson::doc;

use crate::auth_server::AuthServer;
use crate::common::{base_yaml, basic, with_keys, KeyKind, Keys, ADMIN_HASH, TEST_HASH};
use crate::observability::metric;
use crate::reload::{replace_file, wait_for_reloads};
use crate::support::http::http_get;
use crate::support::mongo::Mongo;

fn config(keys: &Keys, admin_hash: &str, extra: &str) -> String {
    let yaml = format!(
        "server:\n  addr: \"@ADDR@\"\ntoken:\n  issuer: \"Acme auth server\"\n  expiration: 900\n  certificate: \"@CERT@\"\n  key: \"@KEY@\"\nusers:\n  \"admin\":\n    password: \"{admin_hash}\"\n  \"test\":\n    password: \"{TEST_HASH}\"\nacl:\n  - match: {{account: \"/.+/\"}}\n    actions: [\"pull\"]\n{extra}"
    );
    with_keys(&yaml, keys)
}

fn login(server: &AuthServer, user: &str, password: &str) -> u16 {
    let (name, value) = basic(user, password);
    http_get(&server.addr, "/auth?service=registry&scope=repository:a/b:pull", &[(&name, &value)]).unwrap().status
}

/// (hits, misses) so far.
fn cache_counts(server: &AuthServer) -> (u64, u64) {
    let text = http_get(&server.addr, "/metrics", &[]).unwrap().body_text();
    let count =
        |result: &str| metric(&text, &format!("registry_auth_credential_cache_total{{result=\"{result}\"}} ")) as u64;
    (count("hit"), count("miss"))
}

/// Replaces the config as editors do and waits for the watcher's `nth` successful reload.
fn reload(server: &AuthServer, yaml: &str, nth: u64) {
    replace_file(&server.dir.path().join("auth_config.yml"), &yaml.replace("@ADDR@", &server.addr));
    wait_for_reloads(&server.addr, "ok", nth, || server.process.stderr());
}

#[test]
fn repeat_logins_hit_and_wrong_passwords_never_do() {
    let keys = Keys::new(KeyKind::EcP256);
    let server = AuthServer::start(&config(&keys, ADMIN_HASH, ""), false, &[]);
    assert_eq!(login(&server, "admin", "badmin"), 200);
    assert_eq!(cache_counts(&server), (0, 1));
    for _ in 0..3 {
        assert_eq!(login(&server, "admin", "badmin"), 200);
    }
    assert_eq!(cache_counts(&server), (3, 1));
    // A wrong password for a cached account never hits (and refusals are not counted).
    assert_eq!(login(&server, "admin", "wrong"), 401);
    assert_eq!(login(&server, "admin", "wrong"), 401);
    assert_eq!(cache_counts(&server), (3, 1));
    // Another user with the same password is a different entry.
    assert_eq!(login(&server, "test", "badmin"), 401);
    assert_eq!(login(&server, "test", "123"), 200);
    assert_eq!(cache_counts(&server), (3, 2));
    assert_eq!(login(&server, "admin", "badmin"), 200);
    assert_eq!(cache_counts(&server), (4, 2));
}

#[test]
fn a_reload_drops_the_cache_and_a_changed_password_is_refused_at_once() {
    let keys = Keys::new(KeyKind::EcP256);
    let server = AuthServer::start(&config(&keys, ADMIN_HASH, ""), false, &[]);
    assert_eq!((login(&server, "admin", "badmin"), login(&server, "admin", "badmin")), (200, 200));
    assert_eq!(cache_counts(&server), (1, 1));

    // Same users, another comment: a new state, so the cache starts empty.
    reload(&server, &config(&keys, ADMIN_HASH, "    comment: \"edited\"\n"), 1);
    assert_eq!(login(&server, "admin", "badmin"), 200);
    assert_eq!(cache_counts(&server), (1, 2));

    // admin's password becomes "123": the remembered "badmin" login must not survive.
    reload(&server, &config(&keys, TEST_HASH, ""), 2);
    assert_eq!(login(&server, "admin", "badmin"), 401);
    assert_eq!(login(&server, "admin", "123"), 200);
}

#[test]
fn ttl_zero_turns_the_cache_off() {
    let keys = Keys::new(KeyKind::EcP256);
    let yaml = config(&keys, ADMIN_HASH, "credential_cache:\n  ttl: 0\n");
    let server = AuthServer::start(&yaml, false, &[]);
    for _ in 0..3 {
        assert_eq!(login(&server, "admin", "badmin"), 200);
    }
    assert_eq!(cache_counts(&server), (0, 0), "no cache, no cache lookups");
}

#[test]
fn a_password_changed_in_mongodb_misses_the_cache() {
    let keys = Keys::new(KeyKind::EcP256);
    let mongo = Mongo::start();
    mongo.insert("users", vec![doc! {"username": "alice", "password": TEST_HASH}]);
    let dial = format!("  dial_info:\n    addrs: [\"{}\"]\n    database: docker_auth\n    timeout: 1s\n", mongo.addr());
    let base = base_yaml("@ADDR@", "", "static");
    let yaml = with_keys(
        &format!("{base}mongo_auth:\n{dial}  collection: users\nacl:\n  - match: {{account: \"/.+/\"}}\n    actions: [\"pull\"]\n"),
        &keys,
    );
    let server = AuthServer::start(&yaml, false, &[]);
    assert_eq!((login(&server, "alice", "123"), login(&server, "alice", "123")), (200, 200));
    assert_eq!(cache_counts(&server), (1, 1));
    // The document now holds admin's hash ("badmin"): the remembered "123" must not work.
    mongo.delete("users", doc! {"username": "alice"});
    mongo.insert("users", vec![doc! {"username": "alice", "password": ADMIN_HASH}]);
    assert_eq!(login(&server, "alice", "123"), 401);
    assert_eq!(login(&server, "alice", "badmin"), 200);
    assert_eq!(cache_counts(&server), (1, 2), "the new password ran bcrypt: no hit");
    // A deleted user is unknown at once, cached login or not.
    mongo.delete("users", doc! {"username": "alice"});
    assert_eq!(login(&server, "alice", "badmin"), 401);
}
