//! The console's operator part. Domain layer on every store engine (memory, embedded,
//! embedded through the owner's admin socket, a real redis-server): current lockouts
//! listed and unlocked, the recent audit events kept and filtered. Then on the real
//! binary: `registry-auth lockout list|unlock` while the server runs, and the server
//! keeping its audit events in the store off the request path.
use std::sync::Arc;
use std::time::Duration;

use registry_auth::config::store::{EmbeddedConfig, RedisConfig, DEFAULT_TIMEOUT};
use registry_auth::config::LockoutConfig;
use registry_auth::identity::lockout::{Attempt, Lockout, Subject};
use registry_auth::identity::lockouts;
use registry_auth::recent_events::{self, Filter, RecentEvent};
use registry_auth::store::embedded::EmbeddedStore;
use registry_auth::store::memory::MemoryStore;
use registry_auth::store::redis::RedisStore;
use registry_auth::store::{self, SharedStore, StoreConfig};

use crate::stored_creds::{self, call, Engine, SERVICE};
use crate::support::redis::RedisServer;
use crate::support::temp_dir;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn lockout_config(per_ip: u64, per_account: u64) -> LockoutConfig {
    LockoutConfig {
        enabled: true,
        window: Duration::from_secs(60),
        max_failures_per_ip: per_ip,
        max_failures_per_account: per_account,
    }
}

/// Lockouts and recent events through the library, on one engine.
async fn domain(store: SharedStore) {
    let name = store.describe().to_string();
    let lockout = Lockout::new(&lockout_config(3, 2), store.clone());
    let ip = Some("10.9.8.7".parse().unwrap());
    for account in ["mallory", "mallory", "<b>eve</b>"] {
        lockout.record_failure(&Attempt { account, ip, service: SERVICE }).await;
    }
    let locked = lockouts::list(&lockout).await.unwrap();
    let listed: Vec<(String, u64)> = locked.iter().map(|l| (l.subject.member(), l.failures)).collect();
    assert_eq!(listed, [("account:mallory".to_string(), 2), ("ip:10.9.8.7".to_string(), 3)], "{name}");
    assert!(locked.iter().all(|l| l.resets_in <= Duration::from_secs(60) && l.resets_in > Duration::from_secs(50)));
    let mallory = Attempt { account: "mallory", ip: Some("10.1.1.1".parse().unwrap()), service: SERVICE };
    assert!(lockout.check(&mallory).await.is_err(), "{name}: locked");

    let account = Subject::Account("mallory".into());
    assert!(lockouts::unlock(&lockout, &account, "ops@console", "console").await.unwrap(), "{name}");
    assert!(lockout.check(&mallory).await.is_ok(), "{name}: unlocked");
    let address = Subject::from_member("ip:10.9.8.7").unwrap();
    assert!(lockouts::unlock(&lockout, &address, "ops@console", "console").await.unwrap());
    assert!(lockouts::list(&lockout).await.unwrap().is_empty(), "{name}");
    assert!(!lockouts::unlock(&lockout, &account, "ops@console", "console").await.unwrap(), "{name}: nothing left");

    // The unlocks were kept at once (operator actions write directly).
    let unlocks =
        recent_events::recent(&store, &Filter { outcome: Some("unlocked".into()), ..Filter::default() }).await.unwrap();
    assert_eq!(unlocks.len(), 3, "{name}: {unlocks:?}");
    assert_eq!((unlocks[2].account.as_str(), unlocks[2].operator.as_str()), ("mallory", "ops@console"));
    assert_eq!(unlocks[1].ip, "10.9.8.7");

    // Recent events: newest first, capped, filtered exactly.
    let event = |i: usize| RecentEvent {
        account: if i.is_multiple_of(2) { "alice".into() } else { "bob".into() },
        repositories: vec![format!("team/app{}", i % 3)],
        ..RecentEvent::new("token_decision", if i.is_multiple_of(5) { "denied" } else { "issued" })
    };
    let many: Vec<RecentEvent> = (0..recent_events::CAP + 200).map(event).collect();
    recent_events::append(&store, &many).await.unwrap();
    let all = recent_events::recent(&store, &Filter::default()).await.unwrap();
    assert_eq!(all.len(), recent_events::CAP, "{name}: capped");
    assert_eq!(all[0], many[many.len() - 1], "{name}: newest first");
    let filter = Filter {
        account: Some("alice".into()),
        outcome: Some("denied".into()),
        repository: Some("team/app1".into()),
        limit: 5,
    };
    let some = recent_events::recent(&store, &filter).await.unwrap();
    assert_eq!(some.len(), 5, "{name}");
    assert!(some.iter().all(|e| filter.matches(e)));
    // i even, i % 5 == 0, i % 3 == 1: i ≡ 10 (mod 30); the newest is the largest below CAP + 200.
    assert_eq!(some[0], many[1180], "{name}");
}

#[test]
fn memory_engine() {
    runtime().block_on(domain(Arc::new(MemoryStore::new())));
}

#[test]
fn embedded_engine_directly_and_through_the_admin_socket() {
    let dir = temp_dir("ops-embedded");
    let path = dir.path().join("data");
    let rt = runtime();
    rt.block_on(domain(Arc::new(EmbeddedStore::open(&path).unwrap())));
    let config = StoreConfig::Embedded(EmbeddedConfig { path: path.clone(), hash_key: None, line: 1 });
    let owner = store::open_owned(&config).unwrap();
    rt.block_on(async {
        store::admin::serve(&path, owner.clone()).unwrap();
        domain(store::for_cli(&config).unwrap()).await;
    });
}

#[test]
fn redis_engine() {
    let redis = RedisServer::start();
    let config = RedisConfig {
        addrs: vec![redis.addr()],
        cluster: false,
        db: 0,
        username: None,
        password: None,
        tls: false,
        ca_pem: None,
        key_prefix: "ops:".to_string(),
        timeout: DEFAULT_TIMEOUT,
        hash_key: None,
        line: 1,
    };
    runtime().block_on(domain(Arc::new(RedisStore::new(&config).unwrap())));
    assert_eq!(redis.command(&["LLEN", "ops:audit:recent"]), format!(":{}", recent_events::CAP), "LTRIM keeps the cap");
}

fn token(f: &stored_creds::Fixture, ip: &str, user: &str, password: &str, scope: &str) -> u16 {
    let req = f.http.get(&f.url()).query("service", SERVICE).query("scope", scope).set("X-Real-Ip", ip);
    call(req.set("Authorization", &stored_creds::basic(user, password)), None).0
}

/// The server's events reach the store in the background; polls the list for them.
fn kept_events(f: &stored_creds::Fixture, filter: &Filter, want: usize) -> Vec<RecentEvent> {
    let config =
        StoreConfig::Embedded(EmbeddedConfig { path: f.server.dir.path().join("data"), hash_key: None, line: 1 });
    let store = store::for_cli(&config).unwrap();
    let rt = runtime();
    let started = std::time::Instant::now();
    loop {
        let events = rt.block_on(recent_events::recent(&store, filter)).unwrap();
        if events.len() >= want || started.elapsed() > Duration::from_secs(10) {
            return events;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `lockout list|unlock` on the real binary while it serves, and the audit events it keeps.
#[test]
fn lockout_cli_and_kept_audit_events() {
    let extra = "lockout:\n  window: 60s\n  max_failures_per_ip: 50\n  max_failures_per_account: 3\n";
    let f = stored_creds::Fixture::start_with(&Engine::Embedded, "", "  real_ip_header: X-Real-Ip\n", extra);
    for _ in 0..3 {
        assert_eq!(token(&f, "10.0.0.5", "test", "wrong", "repository:devs/app:pull"), 401);
    }
    assert_eq!(token(&f, "10.0.0.6", "test", "123", "repository:devs/app:pull"), 429, "locked");
    let (ok, out, err) = f.cli(&["lockout", "list"]);
    assert!(ok, "{err}");
    let row = out.lines().find(|l| l.starts_with("account")).unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("test") && row.contains(" 3 "), "{out}");

    let (ok, out, err) = f.cli(&["lockout", "unlock", "--account", "test"]);
    assert!(ok && out.contains("unlocked account test"), "{out}{err}");
    assert_eq!(token(&f, "10.0.0.6", "test", "123", "repository:devs/app:pull"), 200, "unlocked");
    let (ok, out, _) = f.cli(&["lockout", "list"]);
    assert!(ok && !out.contains("test"), "{out}");
    let (ok, out, _) = f.cli(&["lockout", "unlock", "--ip", "10.0.0.99"]);
    assert!(ok && out.contains("nothing to unlock"), "{out}");
    let (ok, _, err) = f.cli(&["lockout", "unlock"]);
    assert!(!ok && err.contains("--account"), "{err}");

    // Denials, the lockout, the unlock and the issued token, newest first.
    let test_events = Filter { account: Some("test".into()), ..Filter::default() };
    let events = kept_events(&f, &test_events, 6);
    let outcomes: Vec<&str> = events.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["issued", "unlocked", "locked", "denied", "denied", "denied"], "{events:#?}");
    assert_eq!(events[0].repositories, ["devs/app"]);
    assert!(events[0].rules.contains("acl"), "{:?}", events[0].rules);
    assert_eq!((events[3].ip.as_str(), events[3].reason.as_str()), ("10.0.0.5", "wrong_password"));
    assert!(events[1].operator.contains('@') && events[1].detail == "cli", "{:?}", events[1]);
    let metrics = f.http.get(&f.url().replace("/auth", "/metrics")).call().unwrap().into_string().unwrap();
    assert!(metrics.contains("registry_auth_recent_events_total{result=\"stored\"}"), "{metrics}");
}
