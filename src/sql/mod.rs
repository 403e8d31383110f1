//! SQL plumbing for `xorm_auth` and `acl_xorm`: connection targets parsed from docker_auth's
//! `conn_string` formats ([`dsn`]), one bounded pool per distinct connection, and the xorm
//! tables ([`xorm_tables`]). One driver crate (sqlx) speaks PostgreSQL, MySQL/MariaDB and
//! SQLite; its pools live on the shared database runtime (`crate::driver_runtime`), and a
//! broken connection is dropped and re-opened on the next use, so an outage heals by itself.
use std::fmt;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};

use crate::secret::Secret;

pub mod dsn;
pub mod xorm_tables;

/// At most this many connections per pool: requests beyond it wait (up to the timeout)
/// instead of opening more, so a login storm cannot exhaust the database's connections.
const MAX_CONNECTIONS: u32 = 8;
/// How long a request waits for a connection or an answer unless `conn_string` says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// docker_auth's `database_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    MySql,
    Postgres,
    Sqlite,
}

impl DbKind {
    pub const NAMES: &'static [&'static str] = &["mysql", "postgres", "sqlite3"];

    pub fn parse(name: &str) -> Option<DbKind> {
        match name {
            "mysql" => Some(DbKind::MySql),
            "postgres" => Some(DbKind::Postgres),
            "sqlite3" => Some(DbKind::Sqlite),
            _ => None,
        }
    }
}

/// The driver's options for one database.
#[derive(Clone)]
pub enum Target {
    Postgres(PgConnectOptions),
    MySql(MySqlConnectOptions),
    Sqlite(SqliteConnectOptions),
}

/// Where and how to connect: parsed from `conn_string` at config load.
#[derive(Clone)]
pub struct ConnectSpec {
    pub kind: DbKind,
    /// The text as configured (it may hold a password), to share pools between sections.
    pub conn_string: Secret,
    pub target: Target,
    /// Connect, acquire and query timeout.
    pub timeout: Duration,
}

impl fmt::Debug for Target {
    /// The driver options hold the password: only the kind is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Postgres(_) => "Target::Postgres",
            Target::MySql(_) => "Target::MySql",
            Target::Sqlite(_) => "Target::Sqlite",
        })
    }
}

impl PartialEq for ConnectSpec {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.conn_string == other.conn_string
    }
}

impl fmt::Debug for ConnectSpec {
    /// The driver options hold the password, so only the kind and timeout are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectSpec").field("kind", &self.kind).field("timeout", &self.timeout).finish_non_exhaustive()
    }
}

/// A bounded pool of one of the three kinds.
#[derive(Clone)]
pub enum PoolKind {
    Postgres(PgPool),
    MySql(MySqlPool),
    Sqlite(SqlitePool),
}

#[derive(Clone)]
pub struct SqlPool {
    pub pool: PoolKind,
    pub timeout: Duration,
}

impl SqlPool {
    /// Runs `operation` on the driver runtime, bounded by the pool's timeout.
    pub async fn run<T, F>(&self, operation: impl FnOnce(PoolKind) -> F) -> Result<T, String>
    where
        F: std::future::Future<Output = Result<T, String>> + Send + 'static,
        T: Send + 'static,
    {
        let limit = self.timeout;
        let work = operation(self.pool.clone());
        crate::driver_runtime::run(async move {
            tokio::time::timeout(limit, work).await.unwrap_or_else(|_| Err(format!("no answer within {limit:?}")))
        })
        .await
    }
}

/// Pools made for one config, so `xorm_auth` and `acl_xorm` with the same connection share one.
#[derive(Default)]
pub struct Pools {
    made: Vec<(ConnectSpec, SqlPool)>,
}

impl Pools {
    /// A pool that connects lazily (the first query opens the first connection).
    pub fn get(&mut self, spec: &ConnectSpec) -> Result<SqlPool, String> {
        if let Some((_, pool)) = self.made.iter().find(|(s, _)| s == spec) {
            return Ok(pool.clone());
        }
        let handle = crate::driver_runtime::runtime()?;
        // The pool's maintenance tasks start on the current runtime: make that ours.
        let _entered = handle.enter();
        let idle = Duration::from_secs(300);
        let pool = match &spec.target {
            Target::Postgres(o) => PoolKind::Postgres(
                PgPoolOptions::new()
                    .max_connections(MAX_CONNECTIONS)
                    .acquire_timeout(spec.timeout)
                    .idle_timeout(idle)
                    .connect_lazy_with(o.clone()),
            ),
            Target::MySql(o) => PoolKind::MySql(
                MySqlPoolOptions::new()
                    .max_connections(MAX_CONNECTIONS)
                    .acquire_timeout(spec.timeout)
                    .idle_timeout(idle)
                    .connect_lazy_with(o.clone()),
            ),
            // One writer at a time is SQLite's rule; an in-memory database exists only
            // inside its one connection.
            Target::Sqlite(o) => {
                let max = if o.get_filename().as_os_str() == ":memory:" { 1 } else { MAX_CONNECTIONS };
                PoolKind::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(max)
                        .acquire_timeout(spec.timeout)
                        .idle_timeout(None)
                        .connect_lazy_with(o.clone()),
                )
            }
        };
        let pool = SqlPool { pool, timeout: spec.timeout };
        self.made.push((spec.clone(), pool.clone()));
        Ok(pool)
    }
}
