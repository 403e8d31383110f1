//! `xorm_auth`: users in docker_auth's SQL table `xorm_user` (parity.md §5.5) on
//! PostgreSQL, MySQL/MariaDB or SQLite. An empty account or password is "no match"; of
//! several rows with the name, the highest `id` decides; a bcrypt mismatch denies. Labels
//! are the row's JSON `{"name": ["value", ...]}` (SQL NULL or JSON null: none); a row
//! whose labels do not parse is an error (fixed 500), never a login without them.
use std::sync::Arc;

use async_trait::async_trait;

use super::password::PasswordVerifier;
use super::static_users::normalise_prefix;
use super::{Authenticator, AuthnError, AuthnOutcome};
use crate::request::Labels;
use crate::secret::Secret;
use crate::sql::xorm_tables::{self, Table, UserRow};
use crate::sql::SqlPool;

pub struct XormAuth {
    pool: SqlPool,
    verifier: Arc<PasswordVerifier>,
}

impl XormAuth {
    /// Creates `xorm_user` when missing, as docker_auth does at start (so the database must
    /// be reachable now), and reads one row to find columns of the wrong type early.
    pub fn start(pool: SqlPool, verifier: Arc<PasswordVerifier>) -> Result<XormAuth, String> {
        let check = pool.clone();
        let limit = pool.timeout * 3;
        crate::driver_runtime::run_blocking(
            async move {
                xorm_tables::ensure_table(&check, Table::User).await?;
                xorm_tables::find_user(&check, None).await.map(drop)
            },
            limit,
        )?;
        Ok(XormAuth { pool, verifier })
    }
}

/// The labels of `row`, or an error naming the row.
fn labels(row: &UserRow) -> Result<Labels, AuthnError> {
    let Some(text) = row.labels.as_deref() else { return Ok(Labels::new()) };
    let parsed: Option<Labels> = serde_json::from_str(text).map_err(|e| {
        AuthnError(format!("xorm_user row id={}: labels is not a JSON object of string lists: {e}", row.id))
    })?;
    Ok(parsed.unwrap_or_default())
}

#[async_trait]
impl Authenticator for XormAuth {
    fn name(&self) -> &'static str {
        "xorm_auth"
    }

    async fn ready(&self) -> Result<(), AuthnError> {
        xorm_tables::ping(&self.pool).await.map_err(|e| AuthnError(format!("the SQL database is not reachable: {e}")))
    }

    async fn authenticate(&self, account: &str, password: &Secret) -> Result<AuthnOutcome, AuthnError> {
        if account.is_empty() || password.is_empty() {
            return Ok(AuthnOutcome::NoMatch);
        }
        let found = xorm_tables::find_user(&self.pool, Some(account))
            .await
            .map_err(|e| AuthnError(format!("SQL user lookup failed: {e}")))?;
        let Some(row) = found else {
            // xorm_auth is always the last backend: an unknown account ends the chain here,
            // and costs a decoy check like a wrong password would.
            self.verifier.decoy(password).await?;
            return Ok(AuthnOutcome::NoMatch);
        };
        let labels = labels(&row)?;
        let hash = Arc::from(normalise_prefix(&row.password_hash));
        if self.verifier.verify(self.name(), account, password, hash).await? {
            Ok(AuthnOutcome::Allow(labels))
        } else {
            Ok(AuthnOutcome::Deny)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(labels: Option<&str>) -> UserRow {
        UserRow { id: 7, password_hash: String::new(), labels: labels.map(str::to_owned) }
    }

    #[test]
    fn labels_json_null_and_errors() {
        assert_eq!(labels(&row(None)).unwrap(), Labels::new());
        assert_eq!(labels(&row(Some("null"))).unwrap(), Labels::new());
        assert_eq!(labels(&row(Some(r#"{"g":["a","b"]}"#))).unwrap()["g"], ["a", "b"]);
        for bad in [r#"{"g":"a"}"#, "[1]", "{", "5"] {
            let e = labels(&row(Some(bad))).unwrap_err().0;
            assert!(e.contains("xorm_user row id=7: labels"), "{bad}: {e}");
        }
    }
}
