//! docker_auth's `conn_string` formats, as its Go drivers read them, turned into sqlx
//! options. What cannot be mapped is an error naming the part, never silently dropped.
//! - `mysql` (go-sql-driver): `[user[:password]@][net[(addr)]]/dbname[?param=value&...]`,
//!   net `tcp` (default, address `127.0.0.1:3306`) or `unix` (a socket path).
//! - `postgres` (lib/pq): a `postgres://` / `postgresql://` URL or `key=value` pairs with
//!   lib/pq's quoting; `sslmode` defaults to `require`, as in lib/pq.
//! - `sqlite3` (go-sqlite3): a file path or `file:` URI, with its `?param=value` options.
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};

use super::{ConnectSpec, DbKind, Target, DEFAULT_TIMEOUT};
use crate::config::reader::parse_go_duration;
use crate::secret::Secret;

/// go-sql-driver parameters that change nothing here (they tune Go-side behaviour).
const MYSQL_NO_OP: &[&str] = &[
    "parseTime",
    "loc",
    "allowNativePasswords",
    "allowCleartextPasswords",
    "interpolateParams",
    "checkConnLiveness",
    "maxAllowedPacket",
    "clientFoundRows",
    "columnsWithAlias",
    "rejectReadOnly",
    "readTimeout",
    "writeTimeout",
];

/// Parses `conn` for `kind`.
pub fn parse(kind: DbKind, conn: &str) -> Result<ConnectSpec, String> {
    let (target, timeout) = match kind {
        DbKind::MySql => mysql(conn)?,
        DbKind::Postgres => postgres(conn)?,
        DbKind::Sqlite => sqlite(conn)?,
    };
    Ok(ConnectSpec { kind, conn_string: Secret::new(conn), target, timeout })
}

fn mysql(dsn: &str) -> Result<(Target, Duration), String> {
    let slash = dsn.rfind('/').ok_or("invalid MySQL DSN: missing the slash before the database name")?;
    let (head, tail) = (&dsn[..slash], &dsn[slash + 1..]);
    let mut options = MySqlConnectOptions::new().ssl_mode(MySqlSslMode::Disabled);
    let address = match head.rfind('@') {
        Some(at) => {
            let (user, password) = head[..at].split_once(':').unwrap_or((&head[..at], ""));
            options = options.username(user);
            if !password.is_empty() {
                options = options.password(password);
            }
            &head[at + 1..]
        }
        None => head,
    };
    options = mysql_address(options, address)?;
    let (database, query) = tail.split_once('?').unwrap_or((tail, ""));
    let database = percent_decode(database).ok_or("invalid MySQL DSN: bad %-escape in the database name")?;
    if !database.is_empty() {
        options = options.database(&database);
    }
    let mut timeout = DEFAULT_TIMEOUT;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "charset" => options = options.charset(value.split(',').next().unwrap_or_default()),
            "collation" => options = options.collation(&value),
            "timeout" => timeout = duration(&key, &value)?,
            "tls" => options = options.ssl_mode(mysql_tls(&value)?),
            known if MYSQL_NO_OP.contains(&known) => {}
            other => {
                return Err(format!(
                    "MySQL DSN parameter {other:?} is not supported (supported: charset, collation, timeout, tls, {})",
                    MYSQL_NO_OP.join(", ")
                ))
            }
        }
    }
    Ok((Target::MySql(options), timeout))
}

/// `net(addr)`: `tcp(host:port)`, `unix(/path/to.sock)`, or empty for 127.0.0.1:3306.
fn mysql_address(options: MySqlConnectOptions, address: &str) -> Result<MySqlConnectOptions, String> {
    let (net, addr) = match address.split_once('(') {
        Some((net, rest)) => {
            let addr = rest.strip_suffix(')').ok_or("invalid MySQL DSN: the address must end with ')'")?;
            (net, addr)
        }
        None => (address, ""),
    };
    match net {
        "" | "tcp" | "tcp4" | "tcp6" => {
            let addr = if addr.is_empty() { "127.0.0.1:3306" } else { addr };
            let (host, port) = host_port(addr, 3306)?;
            Ok(options.host(&host).port(port))
        }
        "unix" => Ok(options.socket(if addr.is_empty() { "/tmp/mysql.sock" } else { addr })),
        other => Err(format!("invalid MySQL DSN: network {other:?} is not supported (use tcp or unix)")),
    }
}

fn mysql_tls(value: &str) -> Result<MySqlSslMode, String> {
    match value {
        "true" => Ok(MySqlSslMode::VerifyIdentity),
        "skip-verify" => Ok(MySqlSslMode::Required),
        "preferred" => Ok(MySqlSslMode::Preferred),
        "false" => Ok(MySqlSslMode::Disabled),
        other => Err(format!("MySQL DSN tls={other:?} is not supported (use true, skip-verify, preferred or false)")),
    }
}

/// `host:port`, `[v6]:port` or a bare host.
fn host_port(addr: &str, default_port: u16) -> Result<(String, u16), String> {
    let bad_port = |p: &str| format!("invalid port {p:?} in address {addr:?}");
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| format!("invalid address {addr:?}"))?;
        return match after.strip_prefix(':') {
            Some(port) => Ok((host.to_string(), port.parse().map_err(|_| bad_port(port))?)),
            None if after.is_empty() => Ok((host.to_string(), default_port)),
            None => Err(format!("invalid address {addr:?}")),
        };
    }
    match addr.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_string(), port.parse().map_err(|_| bad_port(port))?)),
        None => Ok((addr.to_string(), default_port)),
    }
}

fn postgres(conn: &str) -> Result<(Target, Duration), String> {
    let pairs = if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        pq_url_pairs(conn)?
    } else {
        pq_kv_pairs(conn)?
    };
    let mut options = PgConnectOptions::new();
    let mut timeout = DEFAULT_TIMEOUT;
    let mut ssl_mode_set = std::env::var_os("PGSSLMODE").is_some();
    for (key, value) in pairs {
        options = match key.as_str() {
            "host" | "hostaddr" if value.starts_with('/') => options.socket(&value),
            "host" | "hostaddr" => options.host(&value),
            "port" => options.port(value.parse().map_err(|_| format!("invalid port {value:?}"))?),
            "dbname" => options.database(&value),
            "user" => options.username(&value),
            "password" => options.password(&value),
            "sslmode" => {
                ssl_mode_set = true;
                options.ssl_mode(pq_ssl_mode(&value)?)
            }
            "sslrootcert" => options.ssl_root_cert(&value),
            "sslcert" => options.ssl_client_cert(&value),
            "sslkey" => options.ssl_client_key(&value),
            "application_name" | "fallback_application_name" => options.application_name(&value),
            "search_path" => options.options([("search_path", value.as_str())]),
            "connect_timeout" => {
                let seconds: u64 = value.parse().map_err(|_| format!("connect_timeout={value:?} is not a number of seconds"))?;
                if seconds > 0 {
                    timeout = Duration::from_secs(seconds);
                }
                options
            }
            other => return Err(format!("PostgreSQL connection parameter {other:?} is not supported (supported: host, hostaddr, port, dbname, user, password, sslmode, sslrootcert, sslcert, sslkey, application_name, fallback_application_name, search_path, connect_timeout)")),
        };
    }
    if !ssl_mode_set {
        // lib/pq's default: TLS without certificate checks.
        options = options.ssl_mode(PgSslMode::Require);
    }
    Ok((Target::Postgres(options), timeout))
}

fn pq_ssl_mode(value: &str) -> Result<PgSslMode, String> {
    match value {
        "disable" => Ok(PgSslMode::Disable),
        "allow" => Ok(PgSslMode::Allow),
        "prefer" => Ok(PgSslMode::Prefer),
        "require" => Ok(PgSslMode::Require),
        "verify-ca" => Ok(PgSslMode::VerifyCa),
        "verify-full" => Ok(PgSslMode::VerifyFull),
        other => Err(format!("sslmode {other:?} is not supported (use disable, require, verify-ca or verify-full)")),
    }
}

/// lib/pq's `ParseURL`: user info, host, port, path as dbname, query as more pairs.
fn pq_url_pairs(conn: &str) -> Result<Vec<(String, String)>, String> {
    let url = url::Url::parse(conn).map_err(|e| format!("invalid PostgreSQL URL: {e}"))?;
    let mut pairs = Vec::new();
    let decode = |s: &str| percent_decode(s).ok_or_else(|| "invalid PostgreSQL URL: bad %-escape".to_string());
    if !url.username().is_empty() {
        pairs.push(("user".into(), decode(url.username())?));
    }
    if let Some(password) = url.password() {
        pairs.push(("password".into(), decode(password)?));
    }
    if let Some(host) = url.host_str().filter(|h| !h.is_empty()) {
        pairs.push(("host".into(), host.trim_start_matches('[').trim_end_matches(']').to_string()));
    }
    if let Some(port) = url.port() {
        pairs.push(("port".into(), port.to_string()));
    }
    let path = url.path().trim_start_matches('/');
    if !path.is_empty() {
        pairs.push(("dbname".into(), decode(path)?));
    }
    pairs.extend(url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())));
    Ok(pairs)
}

/// lib/pq's `key=value` form: spaces separate pairs, values may be 'single quoted', and a
/// backslash escapes the next character.
fn pq_kv_pairs(conn: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut chars = conn.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!("invalid PostgreSQL connection string: missing \"=\" after {key:?}"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let quoted = chars.next_if_eq(&'\'').is_some();
        let mut value = String::new();
        loop {
            match chars.next() {
                Some('\\') => {
                    value.push(chars.next().ok_or("invalid PostgreSQL connection string: trailing backslash")?)
                }
                Some('\'') if quoted => break,
                Some(c) if !quoted && c.is_whitespace() => break,
                Some(c) => value.push(c),
                None if quoted => return Err("invalid PostgreSQL connection string: unterminated quoted value".into()),
                None => break,
            }
        }
        pairs.push((key, value));
    }
}

fn sqlite(conn: &str) -> Result<(Target, Duration), String> {
    let rest = conn.strip_prefix("file:").unwrap_or(conn);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() {
        return Err("the SQLite database path is empty".into());
    }
    let mut options = if path == ":memory:" {
        SqliteConnectOptions::from_str(":memory:").map_err(|e| e.to_string())?
    } else {
        SqliteConnectOptions::new().filename(PathBuf::from(path)).create_if_missing(true)
    };
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        options = match key.as_ref() {
            "mode" => match value.as_ref() {
                "ro" => options.read_only(true).create_if_missing(false),
                "rw" => options.create_if_missing(false),
                "rwc" => options,
                "memory" => options.in_memory(true),
                other => return Err(format!("SQLite mode={other:?} is not supported (use ro, rw, rwc or memory)")),
            },
            "cache" => options.shared_cache(value == "shared"),
            "_busy_timeout" | "_timeout" => {
                let ms: u64 = value.parse().map_err(|_| format!("{key}={value:?} is not a number of milliseconds"))?;
                options.busy_timeout(Duration::from_millis(ms))
            }
            "_journal_mode" | "_journal" => {
                options.journal_mode(SqliteJournalMode::from_str(&value).map_err(|e| format!("{key}: {e}"))?)
            }
            "_synchronous" | "_sync" => {
                options.synchronous(SqliteSynchronous::from_str(&value).map_err(|e| format!("{key}: {e}"))?)
            }
            "_foreign_keys" | "_fk" => options.foreign_keys(matches!(value.as_ref(), "1" | "true" | "yes" | "on")),
            other => return Err(format!("SQLite parameter {other:?} is not supported (supported: mode, cache, _busy_timeout, _journal_mode, _synchronous, _foreign_keys)")),
        };
    }
    Ok((Target::Sqlite(options), DEFAULT_TIMEOUT))
}

fn duration(key: &str, value: &str) -> Result<Duration, String> {
    parse_go_duration(value)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("MySQL DSN {key}={value:?} is not a duration such as \"5s\""))
}

/// `%XX` escapes (as Go's `url.PathUnescape`); `None` for a broken escape.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn my(dsn: &str) -> MySqlConnectOptions {
        match mysql(dsn).unwrap().0 {
            Target::MySql(o) => o,
            _ => unreachable!(),
        }
    }

    fn pg(conn: &str) -> PgConnectOptions {
        match postgres(conn).unwrap().0 {
            Target::Postgres(o) => o,
            _ => unreachable!(),
        }
    }

    #[test]
    fn go_mysql_dsns() {
        let o = my("alice:s3:cr@t@tcp(db.example:3307)/auth?charset=utf8&parseTime=true");
        assert_eq!((o.get_host(), o.get_port(), o.get_username()), ("db.example", 3307, "alice"));
        assert_eq!((o.get_database(), o.get_charset()), (Some("auth"), "utf8"));
        let o = my("username:password@/database_name?charset=utf8");
        assert_eq!((o.get_host(), o.get_port()), ("127.0.0.1", 3306));
        let o = my("u@unix(/run/mysqld/mysqld.sock)/d");
        assert_eq!(o.get_socket().map(|p| p.display().to_string()), Some("/run/mysqld/mysqld.sock".into()));
        assert_eq!(my("u:p@tcp([::1])/d").get_host(), "::1");
        assert_eq!(mysql("u:p@tcp(h:1)/d?timeout=2s").unwrap().1, Duration::from_secs(2));
        for (bad, says) in [
            ("u:p@tcp(h:1)", "missing the slash"),
            ("u:p@tcp(h:1/d", "must end with ')'"),
            ("u:p@udp(h:1)/d", "network \"udp\""),
            ("u:p@tcp(h:x)/d", "invalid port"),
            ("u:p@/d?foo=1", "parameter \"foo\""),
            ("u:p@/d?tls=custom", "tls=\"custom\""),
            ("u:p@/d?timeout=soon", "timeout"),
        ] {
            let e = mysql(bad).err().unwrap_or_else(|| panic!("{bad} parsed"));
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn lib_pq_urls_and_key_value_strings() {
        let o = pg("postgres://bob:p%40ss@db:6543/auth?sslmode=disable&application_name=ra");
        assert_eq!((o.get_host(), o.get_port(), o.get_username()), ("db", 6543, "bob"));
        assert_eq!(o.get_database(), Some("auth"));
        assert!(matches!(o.get_ssl_mode(), PgSslMode::Disable));
        let o = pg(r"host=/tmp/pg port=5433 user=bob password='it\'s' dbname = auth sslmode=verify-full");
        assert_eq!((o.get_port(), o.get_database()), (5433, Some("auth")));
        assert!(matches!(o.get_ssl_mode(), PgSslMode::VerifyFull));
        let pairs = pq_kv_pairs(r"password='a b\'c' x=y\ z").unwrap();
        assert_eq!(pairs, [("password".into(), "a b'c".into()), ("x".into(), "y z".into())]);
        if std::env::var_os("PGSSLMODE").is_none() {
            assert!(matches!(pg("host=h").get_ssl_mode(), PgSslMode::Require), "lib/pq defaults to require");
        }
        assert_eq!(postgres("host=h connect_timeout=3").unwrap().1, Duration::from_secs(3));
        for (bad, says) in [
            ("host", "missing \"=\""),
            ("password='open", "unterminated"),
            ("host=h sslmode=sometimes", "sslmode \"sometimes\""),
            ("host=h target_session_attrs=any", "\"target_session_attrs\" is not supported"),
            ("postgres://h:notaport/d", "invalid PostgreSQL URL"),
        ] {
            let e = postgres(bad).err().unwrap_or_else(|| panic!("{bad} parsed"));
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn sqlite_paths_and_uris() {
        let Target::Sqlite(o) = sqlite("/var/lib/auth.db").unwrap().0 else { unreachable!() };
        assert_eq!(o.get_filename(), std::path::Path::new("/var/lib/auth.db"));
        let Target::Sqlite(o) = sqlite("file:auth.db?cache=shared&_busy_timeout=500").unwrap().0 else {
            unreachable!()
        };
        assert_eq!(o.get_filename(), std::path::Path::new("auth.db"));
        assert!(sqlite("").unwrap_err().contains("empty"));
        assert!(sqlite("a.db?_auth_user=x").unwrap_err().contains("\"_auth_user\""));
        assert!(sqlite("a.db?mode=weird").unwrap_err().contains("mode"));
    }
}
