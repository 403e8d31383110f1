//! `acl_xorm`: ACL entries in docker_auth's SQL table `xorm_acl_entry` (parity.md §4.9),
//! ordered by `seq`, each row's `acl_entry` JSON decoded as Go decodes it (`Match`,
//! `Actions`, `Comment`, keys case-insensitive). Loading and refreshing every `cache_ttl` is
//! [`RefreshedAcl`]: the first load must succeed for the start to go on, a failed refresh
//! or a bad row keeps the previous ACL and names the row in the log.
use async_trait::async_trait;

use super::acl::{Acl, AclEntrySpec};
use super::acl_json::{self, KeyRule};
use super::refreshed_acl::RefreshedAcl;
use super::{Authorizer, AuthzError, AuthzOutcome};
use crate::request::AuthzRequest;
use crate::sql::xorm_tables::{self, AclRow, Table};
use crate::sql::SqlPool;

pub struct AclXorm {
    acl: RefreshedAcl,
    pool: SqlPool,
}

impl AclXorm {
    /// Creates `xorm_acl_entry` when missing, loads it now and starts the refresher.
    pub fn start(pool: SqlPool, cache_ttl: std::time::Duration) -> Result<AclXorm, String> {
        let first = pool.clone();
        let acl = crate::driver_runtime::run_blocking(
            async move {
                xorm_tables::ensure_table(&first, Table::AclEntry).await?;
                load(&first).await
            },
            pool.timeout * 3,
        )?;
        let again = pool.clone();
        let load_again = move || {
            let pool = again.clone();
            async move { load(&pool).await }
        };
        let acl = RefreshedAcl::start("acl_xorm", Table::AclEntry.name().to_string(), acl, cache_ttl, load_again)?;
        Ok(AclXorm { acl, pool })
    }
}

async fn load(pool: &SqlPool) -> Result<Acl, String> {
    let rows = xorm_tables::acl_rows(pool).await?;
    let specs = rows.iter().map(entry_spec).collect::<Result<Vec<_>, _>>()?;
    acl_json::compile(specs, |index| rows.get(index).map_or_else(|| format!("entry {index}"), describe))
}

fn describe(row: &AclRow) -> String {
    format!("xorm_acl_entry row seq={}", row.seq.map_or("NULL".to_string(), |s| s.to_string()))
}

fn entry_spec(row: &AclRow) -> Result<AclEntrySpec, String> {
    let fail = |what: String| format!("{}: {what}", describe(row));
    if row.seq.is_none() {
        return Err(fail("seq is NULL (a number orders the entries)".into()));
    }
    let text = row.acl_entry.as_deref().ok_or_else(|| fail("acl_entry is NULL".into()))?;
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| fail(format!("acl_entry is not valid JSON: {e}")))?;
    acl_json::entry_spec(&value, KeyRule::GoFold).map_err(fail)
}

#[async_trait]
impl Authorizer for AclXorm {
    fn name(&self) -> &'static str {
        "acl_xorm"
    }

    /// The cached ACL keeps answering during an outage, but `/readyz` reports it.
    async fn ready(&self) -> Result<(), AuthzError> {
        xorm_tables::ping(&self.pool).await.map_err(|e| AuthzError(format!("the SQL database is not reachable: {e}")))
    }

    async fn authorize(&self, req: &AuthzRequest<'_>) -> Result<AuthzOutcome, AuthzError> {
        Ok(self.acl.snapshot().decide(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: Option<i64>, entry: Option<&str>) -> AclRow {
        AclRow { seq, acl_entry: entry.map(str::to_owned) }
    }

    #[test]
    fn rows_decode_as_go_would_and_bad_rows_are_named() {
        let spec = entry_spec(&row(Some(1), Some(r#"{"Match":{"account":"a"},"Actions":["pull"],"Comment":null}"#)));
        assert_eq!(spec.unwrap().matcher.account.as_deref(), Some("a"));
        let lower = entry_spec(&row(Some(2), Some(r#"{"match":{"Name":"x/*"},"actions":["*"],"comment":"c"}"#)));
        assert_eq!(lower.unwrap().comment.as_deref(), Some("c"));
        assert!(entry_spec(&row(None, Some("{}"))).unwrap_err().contains("seq=NULL: seq is NULL"));
        assert!(entry_spec(&row(Some(3), None)).unwrap_err().contains("seq=3: acl_entry is NULL"));
        assert!(entry_spec(&row(Some(4), Some("{"))).unwrap_err().contains("seq=4: acl_entry is not valid JSON"));
        let unknown = entry_spec(&row(Some(5), Some(r#"{"Match":{"team":"x"},"Actions":["*"]}"#)));
        assert!(unknown.unwrap_err().contains("seq=5: unknown match key"));
    }
}
