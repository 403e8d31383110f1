//! How the secrets we issue are kept, on the real binary: the store holds only an
//! HMAC-SHA256 under a key outside the records (embedded: `data/hash.key`, 0600; Redis:
//! `store.hash_key_file`), records written before the keyed hash (plain SHA-256) keep
//! working, every create / first use / revoke is one audit event (parsed from the JSON
//! log), and `/metrics` counts issued, exchanged, refused and robot logins without naming
//! any account.
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use registry_auth::identity::issued_secret::{self, Kind};
use registry_auth::store::StoreExt as _;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use crate::auth_server::{binary, AuthServer};
use crate::common::{KeyKind, Keys};
use crate::identity_tokens::exchange;
use crate::stored_creds::{basic, call, cli, config, granted, printed_secret, Engine, SERVICE};
use crate::support::redis::RedisServer;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest registry-auth stored before the keyed hash: SHA-256 of prefix, NUL, secret.
fn plain_sha256(secret: &str) -> String {
    let prefix = &secret[..5];
    hex(&Sha256::new().chain_update(prefix).chain_update([0]).chain_update(secret).finalize())
}

fn keyed(key_hex: &str, secret: &str) -> String {
    let key: Vec<u8> = (0..64).step_by(2).map(|i| u8::from_str_radix(&key_hex[i..i + 2], 16).unwrap()).collect();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(&secret.as_bytes()[..5]);
    context.update(&[0]);
    context.update(secret.as_bytes());
    hex(context.sign().as_ref())
}

/// Records exactly as the previous release wrote them: a token of `test` and robot `old`.
struct Legacy {
    token: String,
    robot_secret: String,
}

async fn write_legacy(store: &registry_auth::store::SharedStore) -> Legacy {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let token = issued_secret::generate(Kind::IdentityToken).unwrap();
    let d = plain_sha256(&token);
    let record =
        json!({"account": "test", "backend": "static", "client_id": "docker", "created": now, "expires": now + 86_400});
    store.put_json(&format!("it:{d}"), &record, None).await.unwrap();
    store.put(&format!("itu:{d}"), now.to_string().as_bytes(), None).await.unwrap();
    store.index_add("it-all", &d, None).await.unwrap();
    store.index_add(&format!("it-acct:{}", hex(&Sha256::digest(b"test"))), &d, None).await.unwrap();
    let robot_secret = issued_secret::generate(Kind::Robot).unwrap();
    let robot = json!({"name": "old", "secret_digest": plain_sha256(&robot_secret), "scopes": ["repository:team/*:pull"], "created": now});
    store.put_json("robot:old", &robot, None).await.unwrap();
    store.index_add("robots", "old", None).await.unwrap();
    Legacy { token, robot_secret }
}

/// Our binary on `yaml` (`@DIR@` = `dir`), logging JSON lines.
fn spawn(yaml: &str, dir: tempfile::TempDir) -> AuthServer {
    let addr = format!("127.0.0.1:{}", crate::support::ports::free_port());
    let path = dir.path().join("auth_config.yml");
    std::fs::write(&path, yaml.replace("@ADDR@", &addr).replace("@DIR@", &dir.path().display().to_string())).unwrap();
    let mut command = Command::new(binary());
    command.args(["--log-format", "json", "serve"]).arg(&path).env_remove("RUST_LOG");
    AuthServer::spawn(command, addr, false, dir)
}

/// The audit events (JSON log lines with a credential) of `log`.
fn audit_events(log: &str) -> Vec<Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e.get("credential").is_some() && e["event"] != "token_decision")
        .collect()
}

fn metric(server: &AuthServer, line_start: &str) -> u64 {
    let text = ureq::get(&format!("http://{}/metrics", server.addr)).call().unwrap().into_string().unwrap();
    assert!(!text.contains("robot$") && !text.contains("account=\""), "no account in /metrics:\n{text}");
    text.lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn robot_status(server: &AuthServer, user: &str, secret: &str) -> u16 {
    let req = ureq::get(&server.realm()).query("service", SERVICE).query("scope", "repository:team/app:pull");
    call(req.set("Authorization", &basic(user, secret)), None).0
}

fn offline_login(server: &AuthServer) -> String {
    let req = ureq::get(&server.realm()).query("service", SERVICE).query("offline_token", "true");
    let (status, body) = call(req.set("Authorization", &basic("test", "123")).query("client_id", "docker"), None);
    assert_eq!(status, 200, "{body}");
    body["refresh_token"].as_str().unwrap().to_string()
}

/// Embedded engine: records of the previous release (plain SHA-256) log in, are listed and
/// revoked; new ones are stored under the HMAC of `data/hash.key` (created 0600 on first
/// use) and never under their plain digest; each create, first use and revoke is audited.
#[test]
fn embedded_store_keeps_keyed_hashes_and_accepts_plain_sha256_records() {
    let keys = Keys::new(KeyKind::EcP256);
    let dir = crate::support::temp_dir("stored-secrets");
    let data = dir.path().join("data");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let legacy = runtime.block_on(async {
        let store: registry_auth::store::SharedStore =
            std::sync::Arc::new(registry_auth::store::embedded::EmbeddedStore::open(&data).unwrap());
        write_legacy(&store).await
    });
    let server = spawn(&config(&keys, &Engine::Embedded, ""), dir);

    // The previous release's records work as before.
    for _ in 0..2 {
        let (status, body) = exchange(&server.realm(), &legacy.token, "repository:test/app:pull");
        assert_eq!((status, granted(&body).1), (200, vec!["pull".to_string()]), "{body}");
        assert_eq!(robot_status(&server, "robot$old", &legacy.robot_secret), 200);
    }
    assert_eq!(robot_status(&server, "robot$old", &format!("rars_{}", "A".repeat(43))), 401);
    let (ok, out, err) = cli(&server, &["identity-tokens", "list", "--account", "test"]);
    assert!(ok && out.contains(&plain_sha256(&legacy.token)[..16]), "{out}{err}");

    // New ones are stored under the keyed hash only.
    let key_file = data.join("hash.key");
    let key = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(key.trim().len(), 64, "{key}");
    assert_eq!(std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777, 0o600);
    let token = offline_login(&server);
    let (ok, out, err) = cli(&server, &["robot", "create", "ci", "--scope", "repository:team/*:pull"]);
    assert!(ok, "{err}");
    let secret = printed_secret(&out);
    assert_eq!(robot_status(&server, "robot$ci", &secret), 200);
    let config_path = server.dir.path().join("auth_config.yml");
    let loaded = registry_auth::config::load(&config_path).unwrap();
    let store = registry_auth::store::connect(&loaded.store).unwrap();
    runtime.block_on(async {
        assert!(store.get(&format!("it:{}", keyed(&key, &token))).await.unwrap().is_some());
        assert!(store.get(&format!("it:{}", plain_sha256(&token))).await.unwrap().is_none());
        let robot: Value = store.get_json("robot:ci").await.unwrap().unwrap();
        assert_eq!(robot["secret_digest"], keyed(&key, &secret).as_str(), "{robot}");
        assert_eq!(robot["hash"], "hmac-sha256");
    });

    // Revocation of both generations.
    let (ok, _, err) = cli(&server, &["identity-tokens", "revoke", "--account", "test"]);
    assert!(ok, "{err}");
    for t in [&legacy.token, &token] {
        assert_eq!(exchange(&server.realm(), t, "repository:test/app:pull").0, 400);
    }
    let (ok, _, err) = cli(&server, &["robot", "revoke", "old"]);
    assert!(ok, "{err}");
    assert_eq!(robot_status(&server, "robot$old", &legacy.robot_secret), 401);

    // Audit: the server's events, and the CLI's (on its own stderr).
    let events = audit_events(&server.process.stderr());
    let count = |event: &str| events.iter().filter(|e| e["event"] == event).count();
    assert_eq!(count("identity_token_used"), 1, "first use per hour only: {events:#?}");
    assert_eq!(count("robot_used"), 2, "robots old and ci: {events:#?}");
    assert_eq!(count("identity_token_issued"), 1, "{events:#?}");
    for event in &events {
        for field in ["event", "outcome", "account", "ip", "service", "credential", "id"] {
            assert!(event.get(field).is_some(), "{field} missing in {event}");
        }
        let text = event.to_string();
        assert!(!text.contains(&legacy.token) && !text.contains(&token) && !text.contains(&secret), "{text}");
    }
    let issued = events.iter().find(|e| e["event"] == "identity_token_issued").unwrap();
    assert_eq!(
        (&issued["account"], &issued["service"], &issued["outcome"]),
        (&json!("test"), &json!(SERVICE), &json!("created"))
    );
    assert_eq!(issued["id"], &keyed(&key, &token)[..16]);
    let used = events.iter().find(|e| e["event"] == "robot_used" && e["id"] == "old").unwrap();
    assert_eq!((&used["account"], &used["ip"]), (&json!("robot$old"), &json!("127.0.0.1")));
    let output = Command::new(binary())
        .args(["--log-format", "json", "robot", "revoke", "ci", "--config"])
        .arg(&config_path)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(output.status.success());
    let revoked = audit_events(&String::from_utf8_lossy(&output.stderr));
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!((&revoked[0]["event"], &revoked[0]["outcome"]), (&json!("robot_revoked"), &json!("revoked")));
    assert_eq!((&revoked[0]["account"], &revoked[0]["id"]), (&json!("robot$ci"), &json!("ci")));
    assert!(revoked[0]["operator"].as_str().is_some_and(|o| o.contains('@')), "{}", revoked[0]);

    // Metrics, without any account name.
    assert_eq!(metric(&server, "registry_auth_identity_tokens_total{outcome=\"issued\"}"), 1);
    assert_eq!(metric(&server, "registry_auth_identity_tokens_total{outcome=\"exchanged\"}"), 2);
    assert_eq!(metric(&server, "registry_auth_identity_tokens_refused_total{reason=\"unknown_or_revoked\"}"), 2);
    assert_eq!(metric(&server, "registry_auth_robot_logins_total{result=\"allowed\"}"), 3);
    assert_eq!(metric(&server, "registry_auth_robot_logins_total{result=\"refused\"}"), 2);
    assert_eq!(exchange(&server.realm(), "rait_bad", "repository:test/app:pull").0, 400);
    assert_eq!(metric(&server, "registry_auth_identity_tokens_refused_total{reason=\"malformed\"}"), 1);
}

/// Redis with `store.hash_key_file`: the key never reaches Redis, digests are the HMAC of
/// the file's key, and a record of the previous release (plain SHA-256) still works.
#[test]
fn redis_store_with_a_hash_key_file() {
    let redis = RedisServer::start();
    let keys = Keys::new(KeyKind::EcP256);
    let dir = crate::support::temp_dir("stored-secrets-redis");
    let key = "0123456789abcdef".repeat(4);
    let key_file = dir.path().join("hash.key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    let engine = Engine::Redis { addr: redis.addr(), prefix: "ks:".to_string() };
    let yaml = config(&keys, &engine, "").replace("store:\n", &format!("store:\n  hash_key_file: {key_file:?}\n"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let legacy = runtime.block_on(async {
        let mut redis_config = crate::store::redis_config(vec![redis.addr()], false);
        redis_config.key_prefix = "ks:".to_string();
        let store: registry_auth::store::SharedStore =
            std::sync::Arc::new(registry_auth::store::redis::RedisStore::new(&redis_config).unwrap());
        write_legacy(&store).await
    });
    let server = spawn(&yaml, dir);
    assert_eq!(exchange(&server.realm(), &legacy.token, "repository:test/app:pull").0, 200);
    assert_eq!(robot_status(&server, "robot$old", &legacy.robot_secret), 200);
    let (ok, out, err) = cli(&server, &["robot", "create", "ci", "--scope", "repository:team/*:pull"]);
    assert!(ok, "{err}");
    let secret = printed_secret(&out);
    assert_eq!(robot_status(&server, "robot$ci", &secret), 200);
    let record: Value = serde_json::from_str(&redis.command(&["GET", "ks:robot:ci"])).unwrap();
    assert_eq!(record["secret_digest"], keyed(&key, &secret).as_str());
    let token = offline_login(&server);
    assert_eq!(redis.command(&["EXISTS", &format!("ks:it:{}", keyed(&key, &token))]), ":1");
    assert_eq!(redis.command(&["EXISTS", "ks:hash-key"]), ":0", "the key stays out of Redis");

    // A token idle too long (its use record expired) is refused and removed by the server:
    // counted, audited.
    let digest = keyed(&key, &token);
    assert_eq!(redis.command(&["DEL", &format!("ks:itu:{digest}")]), ":1");
    let (status, body) = exchange(&server.realm(), &token, "repository:test/app:pull");
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    assert_eq!(redis.command(&["EXISTS", &format!("ks:it:{digest}")]), ":0");
    assert_eq!(metric(&server, "registry_auth_identity_tokens_refused_total{reason=\"idle\"}"), 1);
    assert_eq!(metric(&server, "registry_auth_identity_tokens_revoked_total{reason=\"idle\"}"), 1);
    let events = audit_events(&server.process.stderr());
    let removed =
        events.iter().find(|e| e["event"] == "identity_token_revoked").unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!((&removed["detail"], &removed["id"]), (&json!("idle"), &json!(&digest[..16])));
}
