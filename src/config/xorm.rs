//! The `xorm_auth:` and `acl_xorm:` sections: `database_type` (`mysql`, `postgres`,
//! `sqlite3`), `conn_string` in that driver's format (parsed now, so a malformed one stops
//! the start with the key named), and for the ACL `cache_ttl`.
use std::time::Duration;

use super::diag::Diagnostics;
use super::reader::Section;
use crate::sql::{dsn, ConnectSpec, DbKind};

#[derive(Debug, Clone, PartialEq)]
pub struct XormAuthConfig {
    pub connect: ConnectSpec,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AclXormConfig {
    pub connect: ConnectSpec,
    pub cache_ttl: Duration,
}

/// Reads `xorm_auth:`. `None` when absent or invalid.
pub fn read_auth(root: &mut Section<'_>, diags: &mut Diagnostics) -> Option<XormAuthConfig> {
    let mut s = Section::of(root.node("xorm_auth")?, "xorm_auth", diags)?;
    let connect = read_connect(&mut s, diags);
    s.warn_unknown(&["database_type", "conn_string"], diags);
    Some(XormAuthConfig { connect: connect? })
}

/// Reads `acl_xorm:`. `None` when absent or invalid.
pub fn read_acl(root: &mut Section<'_>, diags: &mut Diagnostics) -> Option<AclXormConfig> {
    let mut s = Section::of(root.node("acl_xorm")?, "acl_xorm", diags)?;
    let connect = read_connect(&mut s, diags);
    let cache_ttl = super::mongo::read_cache_ttl(&mut s, diags);
    s.warn_unknown(&["database_type", "conn_string", "cache_ttl"], diags);
    Some(AclXormConfig { connect: connect?, cache_ttl: cache_ttl? })
}

fn read_connect(s: &mut Section<'_>, diags: &mut Diagnostics) -> Option<ConnectSpec> {
    let kind = read_kind(s, diags);
    let path = s.child_path("conn_string");
    let line = s.node("conn_string").map_or(s.line, |n| n.line);
    let conn = s.string("conn_string", diags).unwrap_or_default();
    if conn.is_empty() {
        diags
            .error(&path, line, format!("{path} is required"))
            .hint("e.g. \"user:pass@tcp(db:3306)/auth?charset=utf8\" (mysql), \"postgres://user:pass@db/auth?sslmode=disable\" (postgres) or a file path (sqlite3)");
        return None;
    }
    match dsn::parse(kind?, &conn) {
        Ok(spec) => Some(spec),
        Err(e) => {
            // The message names the part of the string, never the string (it may hold a password).
            diags.error(&path, line, format!("{path}: {e}")).hint(conn_hint(kind?));
            None
        }
    }
}

fn conn_hint(kind: DbKind) -> &'static str {
    match kind {
        DbKind::MySql => "use Go's MySQL DSN form: user:password@tcp(host:3306)/database?charset=utf8",
        DbKind::Postgres => {
            "use postgres://user:password@host:5432/database?sslmode=disable or host=... user=... dbname=..."
        }
        DbKind::Sqlite => "use a file path such as /var/lib/registry-auth/auth.db",
    }
}

fn read_kind(s: &mut Section<'_>, diags: &mut Diagnostics) -> Option<DbKind> {
    let path = s.child_path("database_type");
    let line = s.node("database_type").map_or(s.line, |n| n.line);
    let name = s.string("database_type", diags).unwrap_or_default();
    let kind = DbKind::parse(&name);
    if kind.is_none() {
        let message =
            if name.is_empty() { format!("{path} is required") } else { format!("{path} {name:?} is not supported") };
        diags.error(&path, line, message).hint(format!("use one of {}", DbKind::NAMES.join(", ")));
    }
    kind
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse;

    fn read_text(text: &str) -> (Option<AclXormConfig>, Diagnostics) {
        let root = parse(text).unwrap();
        let mut diags = Diagnostics::default();
        let mut top = Section::of(&root, "", &mut diags).unwrap();
        (read_acl(&mut top, &mut diags), diags)
    }

    #[test]
    fn keys_are_read_and_errors_name_them_without_the_password() {
        let (acl, diags) = read_text(
            "acl_xorm:\n  database_type: postgres\n  conn_string: \"postgres://u:pw@db/auth?sslmode=disable\"\n  cache_ttl: 30s\n",
        );
        assert!(diags.errors.is_empty(), "{diags:?}");
        let acl = acl.unwrap();
        assert_eq!((acl.connect.kind, acl.cache_ttl), (DbKind::Postgres, Duration::from_secs(30)));
        assert!(!format!("{acl:?}").contains("pw"));
        let (acl, diags) =
            read_text("acl_xorm:\n  database_type: oracle\n  conn_string: \"secret@/x\"\n  cache_ttl: 0\n");
        assert!(acl.is_none());
        let messages: Vec<&str> = diags.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "acl_xorm.database_type \"oracle\" is not supported",
                "acl_xorm.cache_ttl is required (e.g. \"1m\" for 1 minute)"
            ]
        );
        let (_, diags) =
            read_text("acl_xorm:\n  database_type: mysql\n  conn_string: \"u:hunter2@tcp(db:x)/a\"\n  cache_ttl: 1m\n");
        assert_eq!(diags.errors[0].path, "acl_xorm.conn_string");
        assert!(diags.errors[0].message.contains("invalid port") && !diags.errors[0].message.contains("hunter2"));
    }
}
