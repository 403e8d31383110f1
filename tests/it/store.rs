//! The store contract, run against every engine: the embedded file, the embedded file
//! through a server's admin socket, one real redis-server (plain, with a password and
//! TLS), a real 3-node Redis Cluster, and the memory engine. Then the faults: Redis killed
//! and restarted mid-run, and a second owner of one embedded directory.
use std::sync::Arc;
use std::time::{Duration, Instant};

use registry_auth::config::store::{EmbeddedConfig, RedisConfig, DEFAULT_TIMEOUT};
use registry_auth::secret::Secret;
use registry_auth::store::embedded::EmbeddedStore;
use registry_auth::store::memory::MemoryStore;
use registry_auth::store::redis::RedisStore;
use registry_auth::store::{
    self, SharedStore, Store, StoreConfig, StoreError, StoreExt, MAX_KEY_BYTES, MAX_VALUE_BYTES,
};

use crate::support::redis::{RedisCluster, RedisOptions, RedisServer};
use crate::support::temp_dir;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

pub fn redis_config(addrs: Vec<String>, cluster: bool) -> RedisConfig {
    RedisConfig {
        addrs,
        cluster,
        db: 0,
        username: None,
        password: None,
        tls: false,
        ca_pem: None,
        key_prefix: "it:".to_string(),
        timeout: DEFAULT_TIMEOUT,
        hash_key: None,
        line: 1,
    }
}

/// Polls `check` every 20 ms until it holds or `limit` passes (expiry needs time to pass).
async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Every method of the trait, its limits and its atomicity under concurrency.
async fn contract(store: SharedStore) {
    let name = store.describe().to_string();
    // Records.
    assert_eq!(store.get("rec:a").await.unwrap(), None, "{name}");
    store.put("rec:a", b"one", None).await.unwrap();
    assert_eq!(store.get("rec:a").await.unwrap().as_deref(), Some(&b"one"[..]), "{name}");
    store.put("rec:a", b"two", None).await.unwrap();
    assert_eq!(store.get("rec:a").await.unwrap().as_deref(), Some(&b"two"[..]));
    assert!(!store.put_if_absent("rec:a", b"three", None).await.unwrap(), "{name}: present");
    assert!(!store.compare_and_swap("rec:a", b"one", b"x", None).await.unwrap(), "{name}: stale current");
    assert!(store.compare_and_swap("rec:a", b"two", b"x", None).await.unwrap(), "{name}");
    assert_eq!(store.get("rec:a").await.unwrap().as_deref(), Some(&b"x"[..]));
    assert!(store.delete("rec:a").await.unwrap());
    assert!(!store.delete("rec:a").await.unwrap(), "{name}: already gone");
    assert!(!store.compare_and_swap("rec:a", b"x", b"y", None).await.unwrap(), "{name}: gone");
    assert!(store.put_if_absent("rec:a", b"new", None).await.unwrap());
    let binary: Vec<u8> = (0..=255).collect();
    store.put("rec:bin", &binary, None).await.unwrap();
    assert_eq!(store.get("rec:bin").await.unwrap(), Some(binary.clone()), "{name}: any bytes round-trip");

    // Several records in one read (Redis: one MGET, split by slot on a cluster), in order.
    let keys: Vec<String> = (0..12).map(|i| format!("many:{i}")).collect();
    for key in keys.iter().step_by(2) {
        store.put(key, key.as_bytes(), None).await.unwrap();
    }
    let wanted: Vec<&str> = keys.iter().map(String::as_str).collect();
    let expected: Vec<Option<Vec<u8>>> =
        keys.iter().enumerate().map(|(i, k)| (i % 2 == 0).then(|| k.as_bytes().to_vec())).collect();
    assert_eq!(store.get_many(&wanted).await.unwrap(), expected, "{name}: get_many keeps the order of the keys");
    assert_eq!(store.get_many(&["rec:a", "rec:none"]).await.unwrap(), [Some(b"new".to_vec()), None]);
    assert!(store.get_many(&[]).await.unwrap().is_empty());
    assert!(matches!(store.get_many(&["rec:a", ""]).await, Err(StoreError::Invalid { .. })), "{name}");

    // JSON helpers.
    let record = serde_json::json!({"v": 1, "name": "ci", "scopes": ["repository:team/*:pull"]});
    assert!(store.put_json_if_absent("rec:json", &record, None).await.unwrap());
    assert_eq!(store.get_json::<serde_json::Value>("rec:json").await.unwrap(), Some(record));
    store.put("rec:broken", b"{not json", None).await.unwrap();
    assert!(matches!(store.get_json::<serde_json::Value>("rec:broken").await, Err(StoreError::Corrupt { .. })));

    // Expiry.
    store.put("rec:short", b"v", Some(Duration::from_millis(150))).await.unwrap();
    assert!(store.get("rec:short").await.unwrap().is_some());
    assert!(eventually(Duration::from_secs(3), async || store.get("rec:short").await.unwrap().is_none()).await);
    assert!(store.put_if_absent("rec:short", b"again", None).await.unwrap(), "{name}: expired counts as absent");

    // Counters: a fixed window.
    let first = store.increment("cnt:a", Duration::from_secs(60)).await.unwrap();
    assert_eq!(first.count, 1);
    assert!(first.resets_in <= Duration::from_secs(60) && first.resets_in > Duration::from_secs(50), "{first:?}");
    assert_eq!(store.increment("cnt:a", Duration::from_secs(60)).await.unwrap().count, 2);
    assert_eq!(store.count("cnt:a").await.unwrap().map(|c| c.count), Some(2));
    assert_eq!(store.count("cnt:none").await.unwrap(), None);
    store.increment("cnt:short", Duration::from_millis(200)).await.unwrap();
    assert!(eventually(Duration::from_secs(3), async || store.count("cnt:short").await.unwrap().is_none()).await);
    assert_eq!(store.increment("cnt:short", Duration::from_secs(60)).await.unwrap().count, 1, "{name}: new window");

    // Resetting a counter (an operator's unlock).
    store.increment("cnt:reset", Duration::from_secs(60)).await.unwrap();
    store.increment("cnt:reset", Duration::from_secs(60)).await.unwrap();
    assert!(store.reset_count("cnt:reset").await.unwrap(), "{name}");
    assert_eq!(store.count("cnt:reset").await.unwrap(), None, "{name}: reset");
    assert!(!store.reset_count("cnt:reset").await.unwrap(), "{name}: already gone");
    let anew = store.increment("cnt:reset", Duration::from_secs(60)).await.unwrap().count;
    assert_eq!(anew, 1, "{name}: counts anew");

    // Capped lists: newest first, the cap keeps the newest.
    assert!(store.list_recent("list:x", 10).await.unwrap().is_empty(), "{name}");
    store.list_push("list:x", &[b"1".to_vec(), b"2".to_vec()], 3).await.unwrap();
    store.list_push("list:x", &[b"3".to_vec()], 3).await.unwrap();
    assert_eq!(store.list_recent("list:x", 10).await.unwrap(), [b"3".to_vec(), b"2".to_vec(), b"1".to_vec()]);
    store.list_push("list:x", &[b"4".to_vec(), b"5".to_vec()], 3).await.unwrap();
    assert_eq!(
        store.list_recent("list:x", 10).await.unwrap(),
        [b"5".to_vec(), b"4".to_vec(), b"3".to_vec()],
        "{name}: the oldest fall off"
    );
    assert_eq!(store.list_recent("list:x", 2).await.unwrap(), [b"5".to_vec(), b"4".to_vec()], "{name}: limit");
    store.list_push("list:x", &[], 3).await.unwrap();
    store.list_push("list:other", std::slice::from_ref(&binary), 3).await.unwrap();
    assert_eq!(store.list_recent("list:other", 1).await.unwrap(), [binary], "{name}: any bytes");
    assert_eq!(store.list_recent("list:x", 10).await.unwrap().len(), 3, "{name}: lists are apart");
    let too_much = vec![vec![0u8; MAX_VALUE_BYTES / 2 + 1], vec![0u8; MAX_VALUE_BYTES / 2 + 1]];
    assert!(matches!(store.list_push("list:x", &too_much, 3).await, Err(StoreError::Invalid { .. })), "{name}");
    assert!(matches!(store.list_push("list:x", &[b"6".to_vec()], 0).await, Err(StoreError::Invalid { .. })));
    let pushes = (0..20).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.list_push("list:race", &[format!("{i}").into_bytes()], 100).await.unwrap() })
    });
    futures_join(pushes).await;
    assert_eq!(store.list_recent("list:race", 100).await.unwrap().len(), 20, "{name}: no concurrent push lost");

    // Indexes.
    for member in ["c", "a", "b"] {
        store.index_add("idx:x", member, None).await.unwrap();
    }
    store.index_add("idx:x", "a", None).await.unwrap();
    store.index_add("idx:other", "z", None).await.unwrap();
    assert_eq!(store.index_members("idx:x", 100).await.unwrap(), ["a", "b", "c"], "{name}");
    store.index_remove("idx:x", "b").await.unwrap();
    store.index_remove("idx:x", "never").await.unwrap();
    assert_eq!(store.index_members("idx:x", 100).await.unwrap(), ["a", "c"]);
    assert_eq!(store.index_members("idx:x", 1).await.unwrap().len(), 1);
    assert!(store.index_members("idx:empty", 100).await.unwrap().is_empty());
    store.index_add("idx:x", "soon", Some(Duration::from_millis(150))).await.unwrap();
    assert!(store.index_members("idx:x", 100).await.unwrap().contains(&"soon".to_string()));
    assert!(
        eventually(Duration::from_secs(3), async || store.index_members("idx:x", 100).await.unwrap() == ["a", "c"])
            .await
    );

    // Limits.
    let long_key = "k".repeat(MAX_KEY_BYTES + 1);
    assert!(matches!(store.get(&long_key).await, Err(StoreError::Invalid { .. })), "{name}");
    assert!(matches!(store.get("").await, Err(StoreError::Invalid { .. })));
    let big = vec![0u8; MAX_VALUE_BYTES + 1];
    assert!(matches!(store.put("rec:big", &big, None).await, Err(StoreError::Invalid { .. })), "{name}");
    store.put("rec:max", &big[..MAX_VALUE_BYTES], None).await.unwrap();

    // Atomicity: concurrent increments all count, and exactly one racer creates a record.
    let increments = (0..40).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.increment("cnt:race", Duration::from_secs(60)).await.unwrap().count })
    });
    let mut seen: Vec<u64> = futures_join(increments).await;
    seen.sort_unstable();
    assert_eq!(seen, (1..=40).collect::<Vec<u64>>(), "{name}: every increment returns its own count");
    let racers = (0..20).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.put_if_absent("rec:race", format!("{i}").as_bytes(), None).await.unwrap() })
    });
    let won = futures_join(racers).await.into_iter().filter(|w| *w).count();
    assert_eq!(won, 1, "{name}: exactly one put_if_absent wins");
    store.health().await.unwrap();
}

async fn futures_join<T: Send + 'static>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[test]
fn memory_engine_keeps_the_contract() {
    let store: SharedStore = Arc::new(MemoryStore::new());
    assert!(!store.persistent());
    runtime().block_on(contract(store));
}

#[test]
fn embedded_engine_keeps_the_contract_and_survives_reopening() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = temp_dir("store-embedded");
    let path = dir.path().join("data");
    let rt = runtime();
    {
        let store: SharedStore = Arc::new(EmbeddedStore::open(&path).unwrap());
        assert!(store.persistent());
        rt.block_on(contract(store.clone()));
        rt.block_on(store.put("rec:kept", b"after reopen", None)).unwrap();
    }
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o700, "the directory is private");
    assert_eq!(mode(&path.join("store.redb")), 0o600, "the file is private");
    let store = EmbeddedStore::open(&path).unwrap();
    assert_eq!(rt.block_on(store.get("rec:kept")).unwrap().as_deref(), Some(&b"after reopen"[..]));
    assert_eq!(rt.block_on(store.get("rec:a")).unwrap().as_deref(), Some(&b"new"[..]));
    assert_eq!(rt.block_on(store.list_recent("list:x", 10)).unwrap().len(), 3, "lists survive reopening");
}

/// A second opener of an owned directory gets the owner's store through its admin
/// socket (the CLI's path while the server runs); a second owner is refused.
#[test]
fn embedded_store_is_reached_through_the_owners_admin_socket() {
    let dir = temp_dir("store-admin");
    let path = dir.path().join("data");
    let config = StoreConfig::Embedded(EmbeddedConfig { path: path.clone(), hash_key: None, line: 1 });
    let rt = runtime();
    let owner = store::open_owned(&config).unwrap();
    let second = store::open_owned(&config).err().expect("a second owner must be refused");
    assert!(matches!(second, StoreError::Locked { .. }), "{second}");
    assert!(second.to_string().contains("store.redb"), "names the file: {second}");

    // Locked and no socket yet: a clear error, not a hang.
    let client = store::connect(&config).unwrap();
    let err = rt.block_on(client.health()).unwrap_err();
    assert!(err.to_string().contains("is the server running?"), "{err}");

    rt.block_on(async {
        store::admin::serve(&path, owner.clone()).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        let socket = std::fs::metadata(path.join("admin.sock")).unwrap().permissions().mode() & 0o777;
        assert_eq!(socket, 0o600);
        let client = store::for_cli(&config).unwrap();
        assert!(client.describe().contains("admin.sock"), "{}", client.describe());
        contract(client.clone()).await;
        client.put("rec:via-socket", b"seen by the owner", None).await.unwrap();
        assert_eq!(owner.get("rec:via-socket").await.unwrap().as_deref(), Some(&b"seen by the owner"[..]));
    });
}

#[test]
fn cli_refuses_a_config_without_a_store() {
    let err = store::for_cli(&StoreConfig::Memory).err().unwrap();
    assert!(err.to_string().contains("no store: section"), "{err}");
}

#[test]
fn redis_engine_keeps_the_contract() {
    let redis = RedisServer::start();
    let store: SharedStore = Arc::new(RedisStore::new(&redis_config(vec![redis.addr()], false)).unwrap());
    runtime().block_on(contract(store));
    // Counters are real Redis counters with a real expiry, under the configured prefix.
    assert_eq!(redis.command(&["GET", "it:cnt:a"]), "2");
    let ttl: i64 = redis.command(&["PTTL", "it:cnt:a"]).trim_start_matches(':').parse().unwrap();
    assert!(ttl > 50_000 && ttl <= 60_000, "{ttl}");
}

#[test]
fn redis_engine_with_password_database_and_tls() {
    let redis =
        RedisServer::start_with(RedisOptions { password: Some("s3cret pass".into()), tls: true, cluster: false });
    let rt = runtime();
    let mut config = redis_config(vec![redis.addr()], false);
    config.tls = true;
    config.ca_pem = Some(std::fs::read(redis.ca_file()).unwrap());
    config.db = 3;
    let wrong = RedisStore::new(&RedisConfig { password: Some(Secret::new("wrong")), ..config.clone() }).unwrap();
    let err = rt.block_on(wrong.health()).unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    let untrusted =
        RedisStore::new(&RedisConfig { ca_pem: None, password: Some(Secret::new("s3cret pass")), ..config.clone() })
            .unwrap();
    assert!(rt.block_on(untrusted.health()).is_err(), "a certificate from an unknown CA is refused");
    config.password = Some(Secret::new("s3cret pass"));
    let store: SharedStore = Arc::new(RedisStore::new(&config).unwrap());
    rt.block_on(contract(store));
}

#[test]
fn redis_cluster_keeps_the_contract() {
    let cluster = RedisCluster::start();
    let store: SharedStore = Arc::new(RedisStore::new(&redis_config(cluster.addrs(), true)).unwrap());
    assert!(store.describe().starts_with("redis-cluster"), "{}", store.describe());
    runtime().block_on(contract(store.clone()));
    // Keys really are spread over the nodes (not all in one slot).
    let rt = runtime();
    rt.block_on(async {
        for i in 0..30 {
            store.put(&format!("spread:{i}"), b"v", None).await.unwrap();
        }
    });
    let holding = cluster.nodes.iter().filter(|n| n.command(&["DBSIZE"]).trim_start_matches(':') != "0").count();
    assert_eq!(holding, 3, "every master holds some keys");
}

/// Redis killed mid-run: every call fails with `Unavailable` within the timeout (no
/// panic, no hang); after the restart calls work again within 2 s, and every write that
/// was acknowledged before the kill is still there.
#[test]
fn redis_killed_and_restarted_mid_run() {
    let mut redis = RedisServer::start();
    let mut config = redis_config(vec![redis.addr()], false);
    config.timeout = Duration::from_millis(500);
    let store: SharedStore = Arc::new(RedisStore::new(&config).unwrap());
    let rt = runtime();
    let acknowledged: Vec<String> = rt.block_on(async {
        let mut keys = Vec::new();
        for i in 0..50 {
            let key = format!("ack:{i}");
            store.put(&key, b"kept", None).await.unwrap();
            keys.push(key);
        }
        keys
    });
    redis.kill();
    rt.block_on(async {
        for _ in 0..3 {
            let started = Instant::now();
            let err = store.get("ack:1").await.unwrap_err();
            assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
            assert!(err.to_string().contains(&redis.addr()), "names the store: {err}");
            assert!(started.elapsed() < Duration::from_secs(2), "fails fast: {:?}", started.elapsed());
            assert!(store.increment("cnt:down", Duration::from_secs(60)).await.is_err());
        }
    });
    redis.restart();
    let back = Instant::now();
    rt.block_on(async {
        assert!(
            eventually(Duration::from_secs(2), async || store.health().await.is_ok()).await,
            "works again within 2 s of Redis' return"
        );
        for key in &acknowledged {
            assert_eq!(store.get(key).await.unwrap().as_deref(), Some(&b"kept"[..]), "{key} was acknowledged");
        }
    });
    assert!(back.elapsed() < Duration::from_secs(4));
}
