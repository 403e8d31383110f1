//! docker_auth's two tables, as xorm's `Sync2` creates them (snake-case names from the Go
//! structs `XormUser` and `XormACLEntry`):
//! `xorm_user(id BIGINT pk autoincrement, username VARCHAR(128), password_hash VARCHAR(128),
//! labels JSON)` and `xorm_acl_entry(acl_entry TEXT holding the entry as JSON, seq BIGINT)`.
//! Created when missing; existing tables are used as they are. Integers are cast in SQL
//! (any integer column works, as with Go's driver), the JSON columns are read as text, and
//! a column of the wrong type fails the query with a message naming it.
use sqlx::Row;

use super::{PoolKind, SqlPool};

/// One `xorm_user` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub id: i64,
    pub password_hash: String,
    /// JSON text, `None` for SQL NULL.
    pub labels: Option<String>,
}

/// One `xorm_acl_entry` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRow {
    pub seq: Option<i64>,
    /// JSON text, `None` for SQL NULL.
    pub acl_entry: Option<String>,
}

/// Runs the same body for whichever pool `$pool` holds, `$p` bound to the typed pool.
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            PoolKind::Postgres($p) => $body,
            PoolKind::MySql($p) => $body,
            PoolKind::Sqlite($p) => $body,
        }
    };
}

const USER_TABLE_PG: &str = r#"CREATE TABLE IF NOT EXISTS "xorm_user" ("id" BIGSERIAL PRIMARY KEY NOT NULL, "username" VARCHAR(128) NOT NULL, "password_hash" VARCHAR(128) NOT NULL, "labels" JSON NULL)"#;
const USER_TABLE_MYSQL: &str = "CREATE TABLE IF NOT EXISTS `xorm_user` (`id` BIGINT(20) PRIMARY KEY AUTO_INCREMENT NOT NULL, `username` VARCHAR(128) NOT NULL, `password_hash` VARCHAR(128) NOT NULL, `labels` JSON NULL) DEFAULT CHARSET utf8mb4";
const USER_TABLE_SQLITE: &str = "CREATE TABLE IF NOT EXISTS `xorm_user` (`id` INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, `username` TEXT NOT NULL, `password_hash` TEXT NOT NULL, `labels` TEXT NULL)";
const ACL_TABLE_PG: &str = r#"CREATE TABLE IF NOT EXISTS "xorm_acl_entry" ("acl_entry" TEXT NULL, "seq" BIGINT NULL)"#;
const ACL_TABLE_MYSQL: &str =
    "CREATE TABLE IF NOT EXISTS `xorm_acl_entry` (`acl_entry` TEXT NULL, `seq` BIGINT(20) NULL) DEFAULT CHARSET utf8mb4";
const ACL_TABLE_SQLITE: &str =
    "CREATE TABLE IF NOT EXISTS `xorm_acl_entry` (`acl_entry` TEXT NULL, `seq` INTEGER NULL)";

const USER_PG: &str =
    r#"SELECT CAST("id" AS BIGINT) AS id, "password_hash", CAST("labels" AS TEXT) AS labels FROM "xorm_user""#;
const USER_MYSQL: &str =
    "SELECT CAST(`id` AS SIGNED) AS id, `password_hash`, CAST(`labels` AS CHAR) AS labels FROM `xorm_user`";
const USER_SQLITE: &str =
    "SELECT CAST(`id` AS INTEGER) AS id, `password_hash`, CAST(`labels` AS TEXT) AS labels FROM `xorm_user`";
const ACL_PG: &str = r#"SELECT CAST("seq" AS BIGINT) AS seq, CAST("acl_entry" AS TEXT) AS acl_entry FROM "xorm_acl_entry" ORDER BY "seq""#;
const ACL_MYSQL: &str =
    "SELECT CAST(`seq` AS SIGNED) AS seq, CAST(`acl_entry` AS CHAR) AS acl_entry FROM `xorm_acl_entry` ORDER BY `seq`";
const ACL_SQLITE: &str =
    "SELECT CAST(`seq` AS INTEGER) AS seq, CAST(`acl_entry` AS TEXT) AS acl_entry FROM `xorm_acl_entry` ORDER BY `seq`";

/// Which of the two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    User,
    AclEntry,
}

impl Table {
    pub fn name(self) -> &'static str {
        match self {
            Table::User => "xorm_user",
            Table::AclEntry => "xorm_acl_entry",
        }
    }
}

/// Creates `table` unless it exists.
pub async fn ensure_table(pool: &SqlPool, table: Table) -> Result<(), String> {
    pool.run(move |kind| async move {
        let ddl = match (&kind, table) {
            (PoolKind::Postgres(_), Table::User) => USER_TABLE_PG,
            (PoolKind::MySql(_), Table::User) => USER_TABLE_MYSQL,
            (PoolKind::Sqlite(_), Table::User) => USER_TABLE_SQLITE,
            (PoolKind::Postgres(_), Table::AclEntry) => ACL_TABLE_PG,
            (PoolKind::MySql(_), Table::AclEntry) => ACL_TABLE_MYSQL,
            (PoolKind::Sqlite(_), Table::AclEntry) => ACL_TABLE_SQLITE,
        };
        on_pool!(&kind, p => sqlx::raw_sql(ddl).execute(p).await.map(|_| ()))
            .map_err(|e| format!("cannot create table {}: {e}", table.name()))
    })
    .await
}

/// Whether the database answers a trivial query.
pub async fn ping(pool: &SqlPool) -> Result<(), String> {
    pool.run(|kind| async move {
        on_pool!(&kind, p => sqlx::raw_sql("SELECT 1").execute(p).await.map(|_| ())).map_err(|e| e.to_string())
    })
    .await
}

/// The row with the highest `id` among those named `username` (as docker_auth picks it),
/// or of all rows when `username` is `None` (a start-up check of the column types).
pub async fn find_user(pool: &SqlPool, username: Option<&str>) -> Result<Option<UserRow>, String> {
    let username = username.map(str::to_owned);
    pool.run(move |kind| async move {
        let (select, by_name, newest) = match &kind {
            PoolKind::Postgres(_) => (USER_PG, r#" WHERE "username" = $1"#, r#" ORDER BY "id" DESC LIMIT 1"#),
            PoolKind::MySql(_) => (USER_MYSQL, " WHERE `username` = ?", " ORDER BY `id` DESC LIMIT 1"),
            PoolKind::Sqlite(_) => (USER_SQLITE, " WHERE `username` = ?", " ORDER BY `id` DESC LIMIT 1"),
        };
        let sql = format!("{select}{}{newest}", if username.is_some() { by_name } else { "" });
        on_pool!(&kind, p => {
            let mut query = sqlx::query(&sql);
            if let Some(name) = &username {
                query = query.bind(name);
            }
            let row = query.fetch_optional(p).await.map_err(|e| e.to_string())?;
            let Some(row) = row else { return Ok(None) };
            let column = |e: sqlx::Error| format!("xorm_user: {e}");
            Ok(Some(UserRow {
                id: row.try_get::<i64, _>("id").map_err(column)?,
                password_hash: row.try_get::<String, _>("password_hash").map_err(column)?,
                labels: row.try_get::<Option<String>, _>("labels").map_err(column)?,
            }))
        })
    })
    .await
}

/// Every `xorm_acl_entry` row, ordered by `seq`.
pub async fn acl_rows(pool: &SqlPool) -> Result<Vec<AclRow>, String> {
    pool.run(|kind| async move {
        let sql = match &kind {
            PoolKind::Postgres(_) => ACL_PG,
            PoolKind::MySql(_) => ACL_MYSQL,
            PoolKind::Sqlite(_) => ACL_SQLITE,
        };
        on_pool!(&kind, p => {
            let rows = sqlx::query(sql).fetch_all(p).await.map_err(|e| e.to_string())?;
            let column = |e: sqlx::Error| format!("xorm_acl_entry: {e}");
            rows.iter()
                .map(|row| {
                    Ok(AclRow {
                        seq: row.try_get::<Option<i64>, _>("seq").map_err(column)?,
                        acl_entry: row.try_get::<Option<String>, _>("acl_entry").map_err(column)?,
                    })
                })
                .collect()
        })
    })
    .await
}
