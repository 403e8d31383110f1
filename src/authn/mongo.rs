//! `mongo_auth`: users in a MongoDB collection (parity.md §5.4). Documents are
//! `{username, password: <bcrypt>, labels: {k: [v]}}`; not found is "no match", a missing
//! password accepts any password (as docker_auth), a bcrypt mismatch denies; an unknown
//! account and a hash that is not bcrypt cost a decoy bcrypt check. An outage is
//! an error (fixed 500) and the driver reconnects by itself.
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mongodb::bson::doc;
use mongodb::options::IndexOptions;
use mongodb::{Client, Collection, IndexModel};
use serde::Deserialize;

use super::password::PasswordVerifier;
use super::static_users::normalise_prefix;
use super::{Authenticator, AuthnError, AuthnOutcome, LookupOutcome};
use crate::config::mongo::MongoAuthConfig;
use crate::request::Labels;
use crate::secret::Secret;

/// The fields we read; others (including `_id`) are ignored.
#[derive(Debug, Deserialize)]
struct UserDoc {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    labels: Option<Labels>,
}

pub struct MongoAuth {
    users: Collection<UserDoc>,
    verifier: Arc<PasswordVerifier>,
    /// Whether an unknown account ends the chain here (no `xorm_auth` after it): then it
    /// pays for a decoy check, so a wrong password and an unknown account cost the same.
    last_in_chain: bool,
}

impl MongoAuth {
    /// Never blocks: the index is created in the background (start-up must not depend on
    /// MongoDB being up, or on the privilege to create indexes — docker_auth issue #69).
    pub fn new(
        client: &Client,
        config: &MongoAuthConfig,
        verifier: Arc<PasswordVerifier>,
        last_in_chain: bool,
    ) -> MongoAuth {
        let users = client.database(&config.dial.database).collection::<UserDoc>(&config.collection);
        spawn_index_creation(users.clone(), config.dial.timeout);
        MongoAuth { users, verifier, last_in_chain }
    }
}

fn spawn_index_creation(users: Collection<UserDoc>, timeout: Duration) {
    let name = users.namespace().to_string();
    let create = async move {
        let index = IndexModel::builder()
            .keys(doc! {"username": 1})
            .options(IndexOptions::builder().unique(true).build())
            .build();
        users.create_index(index).await.map(|_| ())
    };
    let task = async move {
        match tokio::time::timeout(timeout * 3, crate::mongo::run(create)).await {
            Ok(Ok(())) => tracing::debug!(collection = %name, "unique index on username is in place"),
            Ok(Err(e)) => {
                tracing::warn!(collection = %name, error = %e, "could not create the unique index on username (lookups still work; create it with a privileged user)")
            }
            Err(_) => {
                tracing::warn!(collection = %name, "could not create the unique index on username: MongoDB did not answer")
            }
        }
    };
    match crate::mongo::runtime() {
        Ok(handle) => drop(handle.spawn(task)),
        Err(e) => tracing::warn!(error = %e, "could not create the unique index on username"),
    }
}

#[async_trait]
impl Authenticator for MongoAuth {
    fn name(&self) -> &'static str {
        "mongo_auth"
    }

    /// Ready when the server answers a cheap count on the users collection.
    async fn ready(&self) -> Result<(), AuthnError> {
        let users = self.users.clone();
        crate::mongo::run(async move { users.estimated_document_count().await.map(|_| ()) })
            .await
            .map_err(|e| AuthnError(format!("MongoDB is not reachable: {e}")))
    }

    async fn authenticate(&self, account: &str, password: &Secret) -> Result<AuthnOutcome, AuthnError> {
        let Some(user) = self.find(account).await? else {
            // When mongo_auth is the last backend an unknown account ends the chain here, and
            // costs a decoy check like a wrong password would.
            if self.last_in_chain {
                self.verifier.decoy(password).await?;
            }
            return Ok(AuthnOutcome::NoMatch);
        };
        let labels = user.labels.unwrap_or_default();
        let Some(hash) = user.password else { return Ok(AuthnOutcome::Allow(labels)) };
        let hash = Arc::from(normalise_prefix(&hash));
        if self.verifier.verify(self.name(), account, password, hash).await? {
            Ok(AuthnOutcome::Allow(labels))
        } else {
            Ok(AuthnOutcome::Deny)
        }
    }

    fn can_lookup(&self) -> bool {
        true
    }

    /// The user's document as it is now.
    async fn lookup(&self, account: &str) -> Result<LookupOutcome, AuthnError> {
        let found = self.find(account).await?;
        Ok(found.map_or(LookupOutcome::NotFound, |user| LookupOutcome::Found(user.labels.unwrap_or_default())))
    }
}

impl MongoAuth {
    async fn find(&self, account: &str) -> Result<Option<UserDoc>, AuthnError> {
        let users = self.users.clone();
        let filter = doc! {"username": account};
        crate::mongo::run(async move { users.find_one(filter).await })
            .await
            .map_err(|e| AuthnError(format!("MongoDB lookup failed: {e}")))
    }
}
