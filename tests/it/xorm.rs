//! `xorm_auth` and `acl_xorm` against real PostgreSQL, MariaDB and SQLite, through our real
//! binary: tables created when missing, users with and without labels, several rows with one
//! name, wrong passwords, ACL rows out of `seq` order with Go-cased JSON keys, refresh after
//! `cache_ttl`, bad rows that must not replace a good ACL, an outage that fails closed and
//! heals, start-up failures naming the key or row, and a skopeo push with SQL users.
use std::time::Duration;

use serde_json::{json, Value};

use crate::auth_server::AuthServer;
use crate::common::{base_yaml, decode_jwt, with_keys, KeyKind, Keys, ADMIN_HASH, TEST_HASH};
use crate::mongo::{granted, token};
use crate::support::http::http_get;
use crate::support::oci::write_oci_layout;
use crate::support::ports::{wait_until, Probe};
use crate::support::registry::{Registry, RegistryAuth};
use crate::support::skopeo::{docker_ref, Creds, Skopeo};
use crate::support::sql::SqlDb;
use crate::support::temp_dir;

const TTL_WAIT: Duration = Duration::from_secs(15);
const FIXED_500: &str = "Authentication failed (authn #2 returned error)\n";

fn config(keys: &Keys, db: &SqlDb, conn_string: &str, tls: bool) -> String {
    let server_tls = if tls { "  certificate: \"@CERT@\"\n  key: \"@KEY@\"\n" } else { "" };
    let base = base_yaml("@ADDR@", server_tls, "static");
    let kind = db.database_type();
    // YAML single quotes: the conn_string holds spaces, '@' and ':'.
    let conn = conn_string.replace('\'', "''");
    let yaml = format!(
        "{base}xorm_auth:\n  database_type: {kind}\n  conn_string: '{conn}'\nacl_xorm:\n  database_type: {kind}\n  conn_string: '{conn}'\n  cache_ttl: 1s\n"
    );
    with_keys(&yaml, keys)
}

fn wait_for_grant(server: &AuthServer, user: &str, password: &str, scope: &str, want: &Value) {
    wait_until(&format!("{user} gets {want} on {scope}"), TTL_WAIT, || match token(server, user, password, scope) {
        (200, body) => {
            let body: Value = serde_json::from_str(&body).unwrap();
            let got = decode_jwt(body["token"].as_str().unwrap()).claims["access"][0]["actions"].clone();
            if &got == want {
                Probe::Ready(())
            } else {
                Probe::NotYet(got.to_string())
            }
        }
        (status, body) => Probe::NotYet(format!("{status} {body}")),
    })
    .unwrap_or_else(|e| panic!("{e}"));
}

fn wait_for_log(server: &AuthServer, what: &str, needles: &[&str]) {
    wait_until(what, TTL_WAIT, || {
        let log = server.process.log();
        if needles.iter().all(|n| log.contains(n)) {
            Probe::Ready(())
        } else {
            Probe::NotYet(format!("log lacks {needles:?}"))
        }
    })
    .unwrap_or_else(|e| panic!("{e}"));
}

fn bcrypt_runs(server: &AuthServer) -> f64 {
    let text = http_get(&server.addr, "/metrics", &[]).unwrap().body_text();
    crate::observability::metric(&text, "registry_auth_bcrypt_jobs_total{result=\"run\"} ")
}

fn readyz(server: &AuthServer) -> u16 {
    http_get(&server.addr, "/readyz", &[]).unwrap().status
}

/// Users as docker_auth's xorm writes them: alice (bcrypt "123", group=devs), bob (no
/// labels: SQL NULL), ci (JSON null labels), carol twice (the newer row, "123", decides),
/// dave (labels that are not lists: a broken row).
fn seed_users(db: &SqlDb) {
    db.exec(&format!(
        "INSERT INTO xorm_user (username, password_hash, labels) VALUES \
         ('alice', '{TEST_HASH}', '{{\"group\":[\"devs\"]}}'), \
         ('bob', '{TEST_HASH}', NULL), \
         ('ci', '{TEST_HASH}', 'null'), \
         ('carol', '{ADMIN_HASH}', NULL), \
         ('carol', '{TEST_HASH}', NULL), \
         ('dave', '{TEST_HASH}', '{{\"group\":\"devs\"}}')"
    ));
}

/// Two entries out of order (by `seq`, devs get everything first), one with Go's field
/// names and one lower-case, as Go's case-insensitive decoding accepts both.
fn seed_acl(db: &SqlDb) {
    db.exec(
        "INSERT INTO xorm_acl_entry (seq, acl_entry) VALUES \
         (20, '{\"Match\":{\"account\":\"/.+/\"},\"Actions\":[\"pull\"],\"Comment\":\"everyone pulls\"}'), \
         (10, '{\"match\":{\"Labels\":{\"group\":\"devs\"}},\"actions\":[\"*\"],\"comment\":null}')",
    );
}

/// The whole behaviour on one database; `outage` also stops and restarts the server.
fn users_acl_refresh_and_bad_rows(mut db: SqlDb, outage: bool) {
    let keys = Keys::new(KeyKind::EcP256);
    // An empty database: both tables are created at start, and the ACL denies everything.
    let server = AuthServer::start(&config(&keys, &db, &db.conn_string(), false), false, &[]);
    assert_eq!(token(&server, "static", "badmin", "repository:x/y:pull").0, 200);
    assert_eq!(granted(&server, "static", "badmin", "repository:x/y:pull"), json!([]));
    seed_users(&db);
    seed_acl(&db);
    // The new rows apply after cache_ttl; seq 10 (devs: *) is consulted before seq 20.
    wait_for_grant(&server, "alice", "123", "repository:x/y:pull,push", &json!(["pull", "push"]));
    assert_eq!(token(&server, "alice", "wrong", "repository:x/y:pull").0, 401);
    assert_eq!(token(&server, "alice", "", "repository:x/y:pull").0, 401, "an empty password never matches");
    assert_eq!(granted(&server, "bob", "123", "repository:x/y:pull,push"), json!(["pull"]));
    assert_eq!(granted(&server, "ci", "123", "repository:x/y:pull,push"), json!(["pull"]));
    assert_eq!(granted(&server, "carol", "123", "repository:x/y:pull"), json!(["pull"]), "the highest id decides");
    assert_eq!(token(&server, "carol", "badmin", "repository:x/y:pull").0, 401, "an older row never decides");
    // An unknown account costs one bcrypt check (the decoy), exactly as a wrong password does.
    let runs = bcrypt_runs(&server);
    assert_eq!(token(&server, "alice", "wrong", "repository:x/y:pull").0, 401);
    assert_eq!(bcrypt_runs(&server), runs + 1.0, "a wrong password runs bcrypt once");
    assert_eq!(token(&server, "nobody", "123", "repository:x/y:pull").0, 401);
    assert_eq!(bcrypt_runs(&server), runs + 2.0, "an unknown SQL user must pay the decoy check");
    assert_eq!(token(&server, "dave", "123", "repository:x/y:pull"), (500, FIXED_500.to_string()));
    wait_for_log(&server, "dave's row is named", &["xorm_user row id=6: labels"]);
    // A bad row is refused with its seq named, and the last good ACL stays: an unknown match
    // key (it would match everyone), invalid JSON, a NULL entry.
    for (seq, entry) in [(1, "'{\"Match\":{\"team\":\"x\"},\"Actions\":[\"*\"]}'"), (2, "'{'"), (3, "NULL")] {
        db.exec(&format!("INSERT INTO xorm_acl_entry (seq, acl_entry) VALUES ({seq}, {entry})"));
        wait_for_log(&server, "the refresh is refused", &["acl_xorm refresh failed", &format!("seq={seq}")]);
        assert_eq!(granted(&server, "bob", "123", "repository:x/y:pull,push"), json!(["pull"]), "seq {seq}");
        db.exec(&format!("DELETE FROM xorm_acl_entry WHERE seq = {seq}"));
    }
    db.exec(
        "INSERT INTO xorm_acl_entry (seq, acl_entry) VALUES (5, '{\"Match\":{\"account\":\"bob\"},\"Actions\":[]}')",
    );
    wait_for_grant(&server, "bob", "123", "repository:x/y:pull", &json!([]));
    assert_eq!(readyz(&server), 200);
    if outage {
        db.stop();
        assert_eq!(token(&server, "alice", "123", "repository:x/y:push"), (500, FIXED_500.to_string()));
        // A static user is still authorized by the last ACL read from the database.
        assert_eq!(granted(&server, "static", "badmin", "repository:x/y:pull"), json!(["pull"]));
        assert_eq!(readyz(&server), 503, "/readyz must report the database down");
        db.restart();
        wait_for_grant(&server, "alice", "123", "repository:x/y:push", &json!(["push"]));
        assert_eq!(readyz(&server), 200);
    }
    let log = server.process.log();
    assert!(!log.contains("badmin") && !log.contains("w rd"), "a password reached the log:\n{log}");
}

#[test]
fn postgres_users_and_acl_decide_refresh_survive_bad_rows_and_an_outage() {
    users_acl_refresh_and_bad_rows(SqlDb::postgres(), true);
}

#[test]
fn mariadb_users_and_acl_decide_refresh_survive_bad_rows_and_an_outage() {
    users_acl_refresh_and_bad_rows(SqlDb::mariadb(), true);
}

#[test]
fn sqlite_users_and_acl_decide_refresh_and_survive_bad_rows() {
    users_acl_refresh_and_bad_rows(SqlDb::sqlite(), false);
}

/// Builds the app in-process from `yaml`; the start-up errors as text.
fn start_errors(yaml: &str) -> Vec<String> {
    let config = registry_auth::config::load_str(&yaml.replace("@ADDR@", "127.0.0.1:0"), "test.yml")
        .unwrap_or_else(|e| panic!("{e}"));
    let errors = registry_auth::app::build(&config).err().expect("the start must fail");
    errors.iter().map(ToString::to_string).collect()
}

#[test]
fn the_other_conn_string_forms_work_and_wrong_column_types_stop_the_start() {
    let keys = Keys::new(KeyKind::EcP256);
    for db in [SqlDb::postgres(), SqlDb::mariadb(), SqlDb::sqlite()] {
        // lib/pq key=value, a MySQL unix socket, a go-sqlite3 file: URI.
        let server = AuthServer::start(&config(&keys, &db, &db.alternate_conn_string(), false), false, &[]);
        seed_users(&db);
        assert_eq!(token(&server, "alice", "123", "repository:x/y:pull").0, 200, "{}", db.database_type());
        drop(server);
        // A hand-made table of the wrong shape: the start names the column.
        db.exec("DROP TABLE xorm_user");
        db.exec("CREATE TABLE xorm_user (id INTEGER, username VARCHAR(128), password_hash INTEGER, labels TEXT)");
        db.exec("INSERT INTO xorm_user (id, username, password_hash, labels) VALUES (1, 'alice', 5, NULL)");
        let errors = start_errors(&config(&keys, &db, &db.conn_string(), false));
        assert!(
            errors.iter().any(|e| e.contains("xorm_auth.conn_string") && e.contains("password_hash")),
            "{}: {errors:?}",
            db.database_type()
        );
    }
}

#[test]
fn an_unreachable_database_or_a_bad_first_acl_stops_the_start() {
    let keys = Keys::new(KeyKind::EcP256);
    let db = SqlDb::sqlite();
    // A table made earlier (by docker_auth), holding one row that is not an entry.
    db.exec("CREATE TABLE xorm_acl_entry (acl_entry TEXT NULL, seq INTEGER NULL)");
    seed_acl(&db);
    db.exec("INSERT INTO xorm_acl_entry (seq, acl_entry) VALUES (30, '[\"not an entry\"]')");
    let errors = start_errors(&config(&keys, &db, &db.conn_string(), false));
    assert!(errors.iter().any(|e| e.contains("acl_xorm.conn_string") && e.contains("seq=30")), "{errors:?}");
    // Nothing listens on this port: connection refused within the timeout, key named.
    let port = crate::support::ports::free_port();
    let yaml = with_keys(
        &format!(
            "{}acl_xorm:\n  database_type: mysql\n  conn_string: \"u:pw@tcp(127.0.0.1:{port})/auth?timeout=2s\"\n  cache_ttl: 1m\n",
            base_yaml("@ADDR@", "", "static")
        ),
        &keys,
    );
    let errors = start_errors(&yaml);
    assert!(
        errors.iter().any(|e| e.contains("cannot load the ACL") && e.contains("(at acl_xorm.conn_string")),
        "{errors:?}"
    );
}

#[test]
fn malformed_conn_strings_fail_naming_the_key_and_never_the_password() {
    let keys = Keys::new(KeyKind::EcP256);
    for (kind, conn, says) in [
        ("mysql", "u:hunter2@tcp(db:3306", "missing the slash"),
        ("mysql", "u:hunter2@pipe(x)/db", "network \"pipe\""),
        ("mysql", "u:hunter2@/db?loc=UTC&sql_mode=ANSI", "parameter \"sql_mode\""),
        ("postgres", "host=db password=hunter2 sslmode=maybe", "sslmode \"maybe\""),
        ("postgres", "postgres://u:hunter2@db:port/x", "invalid PostgreSQL URL"),
        ("sqlite3", "auth.db?_auth_pass=hunter2", "\"_auth_pass\""),
        ("oracle", "u/hunter2@db", "database_type \"oracle\" is not supported"),
    ] {
        let yaml = format!(
            "{}xorm_auth:\n  database_type: {kind}\n  conn_string: \"{conn}\"\n",
            with_keys(&base_yaml("127.0.0.1:0", "", "static"), &keys)
        );
        let error = registry_auth::config::load_str(&yaml, "t.yml").expect_err("must fail").to_string();
        assert!(error.contains("xorm_auth.") && error.contains(says), "{conn}: {error}");
        assert!(!error.contains("hunter2"), "{conn}: the password reached the message: {error}");
    }
}

#[test]
fn a_postgres_user_pushes_and_pulls_where_the_sql_acl_allows_and_not_elsewhere() {
    let keys = Keys::new(KeyKind::EcP256);
    let db = SqlDb::postgres();
    let auth = AuthServer::start(&config(&keys, &db, &db.conn_string(), true), true, &[]);
    db.exec(&format!(
        "INSERT INTO xorm_user (username, password_hash, labels) VALUES ('alice', '{TEST_HASH}', '{{\"team\":[\"web\"]}}')"
    ));
    db.exec("INSERT INTO xorm_acl_entry (seq, acl_entry) VALUES (1, '{\"Match\":{\"name\":\"${labels:team}/*\"},\"Actions\":[\"pull\",\"push\"],\"Comment\":\"team repos\"}')");
    let registry = Registry::start(RegistryAuth {
        realm: auth.realm(),
        service: "registry".to_string(),
        issuer: "Acme auth server".to_string(),
        rootcertbundle: keys.cert.clone(),
    });
    let images = temp_dir("xorm-images");
    let image = write_oci_layout(&images.path().join("layout"), "v1", &[("hello.txt", b"hello from postgres")]);
    let skopeo = Skopeo::with_shared_cache();
    let alice = Creds::Basic("alice", "123");
    let target = docker_ref(&registry.addr(), "web/app", "v1");
    // The ACL row arrives with the next refresh (cache_ttl 1s).
    wait_until("the push is allowed", TTL_WAIT, || {
        match skopeo.copy(&image.oci_ref(), &target, Creds::Anonymous, alice) {
            Ok(_) => Probe::Ready(()),
            Err(e) => Probe::NotYet(e),
        }
    })
    .unwrap_or_else(|e| panic!("push to web/app: {e}"));
    let pulled = temp_dir("xorm-pulled");
    let back = format!("oci:{}:v1", pulled.path().join("layout").display());
    skopeo.copy(&target, &back, alice, Creds::Anonymous).unwrap_or_else(|e| panic!("pull of web/app: {e}"));
    let refused =
        skopeo.copy(&image.oci_ref(), &docker_ref(&registry.addr(), "ops/app", "v1"), Creds::Anonymous, alice);
    assert!(refused.is_err(), "push outside the team namespace must fail");
}
