//! The Redis engine: one server (a `ConnectionManager`, which reconnects by itself) or a
//! Redis Cluster (the cluster client, which follows slot moves), over TCP or rustls.
//!
//! Every operation is one command or one Lua script on one key, so each is atomic and
//! works in a cluster (a script's keys must share a slot; ours have one key); the one
//! multi-key read, `get_many`, is an MGET, which the cluster client splits by slot. Counters are
//! INCR + PEXPIRE in one script; indexes are sorted sets scored by expiry (ms since the
//! epoch, `+inf` for none), pruned as they are written. Every key gets `key_prefix`.
//! Each command is limited by `timeout`; a server that is down fails fast and the next
//! command after its return reconnects.
//!
//! Connections (single server): one per HTTP worker thread, driven by that worker's own
//! runtime, so a request's command goes out and its answer comes back on the thread that
//! awaits it; plus one on the store thread for everyone else (CLI, background tasks). A
//! replica thus holds up to workers + 1 connections. The cluster client is shared and
//! lives on the store thread.
use std::cell::RefCell;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ConnectionAddr, FromRedisValue, IntoConnectionInfo};
use tokio::sync::OnceCell;

use super::{
    check_key, check_push, check_value, now_millis, runtime, Count, Store, StoreError, MAX_LIST, MAX_LIST_ITEMS,
};
use crate::config::store::RedisConfig;

const CAS: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '' then redis.call('SET', KEYS[1], ARGV[2]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1";
/// A fixed window: the expiry is set by the first increment only (and repaired if a
/// counter was ever left without one).
const INCREMENT: &str = r"
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if n == 1 or ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) ttl = tonumber(ARGV[1]) end
return {n, ttl}";
const COUNT: &str = r"
local n = redis.call('GET', KEYS[1])
if not n then return false end
return {tonumber(n), redis.call('PTTL', KEYS[1])}";
const INDEX_ADD: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
return 1";

/// ARGV[1] is the cap, the rest the items, oldest first (LPUSH makes the last the head).
const LIST_PUSH: &str = r"
redis.call('LPUSH', KEYS[1], unpack(ARGV, 2))
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[1]) - 1)
return 1";

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// One Redis server: what each worker needs to open its own connection, and the shared
/// connection on the store thread.
struct Single {
    client: redis::Client,
    config: ConnectionManagerConfig,
    shared: ConnectionManager,
    /// Identifies this store in the workers' connection lists. The server keeps its store
    /// across reloads, but a store dropped while a worker lives would leave its connection
    /// behind: an entry whose store is gone is closed at the next insert. (The `Weak` keeps
    /// the address from being reused by a later store.)
    alive: Arc<()>,
}

struct WorkerConnection {
    store: Weak<()>,
    manager: ConnectionManager,
}

thread_local! {
    static WORKER_CONNECTIONS: RefCell<Vec<WorkerConnection>> = const { RefCell::new(Vec::new()) };
}

pub struct RedisStore {
    describe: String,
    prefix: String,
    timeout: Duration,
    single: Option<Single>,
    cluster: Option<(redis::cluster::ClusterClient, OnceCell<ClusterConnection>)>,
}

fn connection_info(addr: &str, config: &RedisConfig) -> Result<redis::ConnectionInfo, String> {
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| format!("{addr:?} is not host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let port: u16 = port.parse().map_err(|_| format!("{addr:?} has no valid port"))?;
    let address = if config.tls {
        ConnectionAddr::TcpTls { host, port, insecure: false, tls_params: None }
    } else {
        ConnectionAddr::Tcp(host, port)
    };
    let info = address.into_connection_info().map_err(|e| e.to_string())?;
    let mut redis = info.redis_settings().clone().set_db(config.db);
    if let Some(username) = &config.username {
        redis = redis.set_username(username);
    }
    if let Some(password) = &config.password {
        redis = redis.set_password(password.expose());
    }
    Ok(info.set_redis_settings(redis))
}

fn certificates(config: &RedisConfig) -> redis::TlsCertificates {
    redis::TlsCertificates { client_tls: None, root_cert: config.ca_pem.clone() }
}

impl RedisStore {
    /// Prepares the connection; nothing is sent until the first operation, so a Redis that
    /// is down at start-up delays nothing and is reached once it is up.
    pub fn new(config: &RedisConfig) -> Result<RedisStore, StoreError> {
        let describe = config.describe();
        let fail = |reason: String| StoreError::Unavailable { store: describe.clone(), reason };
        let infos =
            config.addrs.iter().map(|a| connection_info(a, config)).collect::<Result<Vec<_>, _>>().map_err(&fail)?;
        let mut store = RedisStore {
            describe: describe.clone(),
            prefix: config.key_prefix.clone(),
            timeout: config.timeout,
            single: None,
            cluster: None,
        };
        if config.cluster {
            let mut builder = redis::cluster::ClusterClientBuilder::new(infos)
                .connection_timeout(config.timeout)
                .response_timeout(config.timeout)
                .retries(1)
                .min_retry_wait(20)
                .max_retry_wait(200);
            if let Some(username) = &config.username {
                builder = builder.username(username);
            }
            if let Some(password) = &config.password {
                builder = builder.password(password.expose());
            }
            if config.tls {
                crate::tls::install_process_provider();
                builder = builder.tls(redis::TlsMode::Secure).certs(certificates(config));
            }
            let client = builder.build().map_err(|e| fail(e.to_string()))?;
            store.cluster = Some((client, OnceCell::new()));
        } else {
            let info = infos.into_iter().next().ok_or_else(|| fail("no address".to_string()))?;
            let client = if config.tls {
                crate::tls::install_process_provider();
                redis::Client::build_with_tls(info, certificates(config))
            } else {
                redis::Client::open(info)
            }
            .map_err(|e| fail(e.to_string()))?;
            let manager_config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(config.timeout))
                .set_response_timeout(Some(config.timeout))
                .set_min_delay(Duration::from_millis(20))
                .set_max_delay(Duration::from_millis(250))
                .set_number_of_retries(2);
            let handle = runtime::handle().map_err(&fail)?;
            // The shared manager's driver task lives on the store runtime.
            let _entered = handle.enter();
            let shared = ConnectionManager::new_lazy_with_config(client.clone(), manager_config.clone())
                .map_err(|e| fail(e.to_string()))?;
            store.single = Some(Single { client, config: manager_config, shared, alive: Arc::new(()) });
        }
        Ok(store)
    }

    fn key(&self, key: &str) -> Result<String, StoreError> {
        check_key(&self.describe, key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    fn fail(&self, reason: impl Into<String>) -> StoreError {
        StoreError::Unavailable { store: self.describe.clone(), reason: reason.into() }
    }

    /// This worker thread's own connection to the single server, opened (lazily) on first
    /// use; `None` off the workers, for a cluster, or outside a runtime.
    fn worker_connection(&self) -> Option<ConnectionManager> {
        let single = self.single.as_ref()?;
        if !runtime::thread_keeps_its_runtime() {
            return None;
        }
        WORKER_CONNECTIONS.with(|cell| {
            let mut connections = cell.borrow_mut();
            let mine = Arc::as_ptr(&single.alive);
            if let Some(found) = connections.iter().find(|c| Weak::as_ptr(&c.store) == mine) {
                return Some(found.manager.clone());
            }
            tokio::runtime::Handle::try_current().ok()?;
            let manager = ConnectionManager::new_lazy_with_config(single.client.clone(), single.config.clone()).ok()?;
            connections.retain(|c| c.store.strong_count() > 0);
            connections.push(WorkerConnection { store: Arc::downgrade(&single.alive), manager: manager.clone() });
            Some(manager)
        })
    }

    async fn conn(&self) -> Result<Conn, StoreError> {
        if let Some(single) = &self.single {
            return Ok(Conn::Single(single.shared.clone()));
        }
        let Some((client, cell)) = &self.cluster else { return Err(self.fail("no connection configured")) };
        let client = client.clone();
        let connect = async move { runtime::run(async move { client.get_async_connection().await }).await };
        let conn = cell
            .get_or_try_init(|| async {
                match tokio::time::timeout(self.timeout, connect).await {
                    Ok(Ok(Ok(conn))) => Ok(conn),
                    Ok(Ok(Err(e))) => Err(self.fail(format!("cannot connect: {e}"))),
                    Ok(Err(e)) => Err(self.fail(e)),
                    Err(_) => Err(self.fail(format!("no connection within {:?}", self.timeout))),
                }
            })
            .await?;
        Ok(Conn::Cluster(conn.clone()))
    }

    /// Runs one command, within the timeout: on this worker's connection where there is
    /// one, otherwise on the store runtime.
    async fn query<T: FromRedisValue + Send + 'static>(&self, cmd: Cmd) -> Result<T, StoreError> {
        let answer = match self.worker_connection() {
            Some(mut manager) => {
                let operation = async move { Ok(cmd.query_async::<T>(&mut manager).await) };
                tokio::time::timeout(self.timeout, operation).await
            }
            None => {
                let conn = self.conn().await?;
                let operation = async move {
                    match conn {
                        Conn::Single(mut c) => cmd.query_async::<T>(&mut c).await,
                        Conn::Cluster(mut c) => cmd.query_async::<T>(&mut c).await,
                    }
                };
                tokio::time::timeout(self.timeout, runtime::run(operation)).await
            }
        };
        match answer {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(e))) => Err(self.fail(e.to_string())),
            Ok(Err(e)) => Err(self.fail(e)),
            Err(_) => Err(self.fail(format!("no answer within {:?}", self.timeout))),
        }
    }

    /// A counter as MGET answers it: the decimal text INCR keeps.
    fn counter_value(&self, bytes: &[u8]) -> Result<u64, StoreError> {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| self.fail(format!("a counter holds {:?}, not a number", String::from_utf8_lossy(bytes))))
    }

    fn eval(script: &str, key: String) -> Cmd {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(script).arg(1).arg(key);
        cmd
    }

    fn set(key: String, value: &[u8], ttl: Option<Duration>, only_new: bool) -> Cmd {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value);
        if only_new {
            cmd.arg("NX");
        }
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg(millis(ttl));
        }
        cmd
    }
}

/// Redis wants a positive expiry; anything shorter than 1 ms becomes 1 ms.
fn millis(ttl: Duration) -> u64 {
    (ttl.as_millis().min(u64::MAX as u128) as u64).max(1)
}

#[async_trait]
impl Store for RedisStore {
    fn describe(&self) -> &str {
        &self.describe
    }

    fn engine(&self) -> &'static str {
        "redis"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(key)?);
        self.query(cmd).await
    }

    async fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("MGET");
        for key in keys {
            cmd.arg(self.key(key)?);
        }
        let values: Vec<Option<Vec<u8>>> = self.query(cmd).await?;
        if values.len() != keys.len() {
            return Err(self.fail(format!("MGET of {} keys answered {} values", keys.len(), values.len())));
        }
        Ok(values)
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        check_value(&self.describe, value)?;
        self.query::<()>(Self::set(self.key(key)?, value, ttl, false)).await
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool, StoreError> {
        check_value(&self.describe, value)?;
        let reply: Option<String> = self.query(Self::set(self.key(key)?, value, ttl, true)).await?;
        Ok(reply.is_some())
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        current: &[u8],
        new: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        check_value(&self.describe, new)?;
        let mut cmd = Self::eval(CAS, self.key(key)?);
        cmd.arg(current).arg(new).arg(ttl.map(|t| millis(t).to_string()).unwrap_or_default());
        let swapped: i64 = self.query(cmd).await?;
        Ok(swapped == 1)
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(key)?);
        let removed: i64 = self.query(cmd).await?;
        Ok(removed > 0)
    }

    async fn increment(&self, key: &str, window: Duration) -> Result<Count, StoreError> {
        let mut cmd = Self::eval(INCREMENT, self.key(key)?);
        cmd.arg(millis(window));
        let (count, ttl): (u64, i64) = self.query(cmd).await?;
        Ok(Count { count, resets_in: Duration::from_millis(ttl.max(0) as u64) })
    }

    async fn count(&self, key: &str) -> Result<Option<Count>, StoreError> {
        let found: Option<(u64, i64)> = self.query(Self::eval(COUNT, self.key(key)?)).await?;
        Ok(found.map(|(count, ttl)| Count { count, resets_in: Duration::from_millis(ttl.max(0) as u64) }))
    }

    async fn count_values(&self, keys: &[&str]) -> Result<Vec<Option<u64>>, StoreError> {
        Ok(self.count_values_and_get(keys, &[]).await?.0)
    }

    async fn count_values_and_get(
        &self,
        counters: &[&str],
        records: &[&str],
    ) -> Result<(Vec<Option<u64>>, Vec<Option<Vec<u8>>>), StoreError> {
        let mut values = self.get_many(&[counters, records].concat()).await?;
        let records = values.split_off(counters.len());
        let counts = values.into_iter().map(|value| value.map(|bytes| self.counter_value(&bytes)).transpose());
        Ok((counts.collect::<Result<_, _>>()?, records))
    }

    async fn index_add(&self, index: &str, member: &str, ttl: Option<Duration>) -> Result<(), StoreError> {
        check_key(&self.describe, member)?;
        let now = now_millis();
        let score = ttl.map_or("+inf".to_string(), |t| now.saturating_add(millis(t)).to_string());
        let mut cmd = Self::eval(INDEX_ADD, self.key(index)?);
        cmd.arg(score).arg(member).arg(now);
        self.query::<i64>(cmd).await.map(|_| ())
    }

    async fn index_remove(&self, index: &str, member: &str) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(self.key(index)?).arg(member);
        self.query::<i64>(cmd).await.map(|_| ())
    }

    async fn index_members(&self, index: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let mut cmd = redis::cmd("ZRANGEBYSCORE");
        cmd.arg(self.key(index)?)
            .arg(format!("({}", now_millis()))
            .arg("+inf")
            .arg("LIMIT")
            .arg(0)
            .arg(limit.min(MAX_LIST));
        let mut members: Vec<String> = self.query(cmd).await?;
        members.sort_unstable();
        Ok(members)
    }

    async fn reset_count(&self, key: &str) -> Result<bool, StoreError> {
        self.delete(key).await
    }

    async fn list_push(&self, key: &str, items: &[Vec<u8>], cap: usize) -> Result<(), StoreError> {
        check_push(&self.describe, key, items, cap)?;
        if items.is_empty() {
            return Ok(());
        }
        let mut cmd = Self::eval(LIST_PUSH, self.key(key)?);
        cmd.arg(cap);
        for item in items {
            cmd.arg(item.as_slice());
        }
        self.query::<i64>(cmd).await.map(|_| ())
    }

    async fn list_recent(&self, key: &str, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let limit = limit.min(MAX_LIST_ITEMS);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("LRANGE");
        cmd.arg(self.key(key)?).arg(0).arg(limit - 1);
        self.query(cmd).await
    }

    async fn health(&self) -> Result<(), StoreError> {
        let reply: String = self.query(redis::cmd("PING")).await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(self.fail(format!("PING answered {reply:?}")))
        }
    }
}
