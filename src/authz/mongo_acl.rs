//! `acl_mongo`: ACL entries in a MongoDB collection (parity.md §4.9), evaluated by the same
//! compiled engine as the static ACL, **ordered by `seq`** as docker_auth documents (its
//! code lost the sort). Loading and refreshing every `cache_ttl` is [`RefreshedAcl`]; the
//! documents are decoded by [`acl_json`](super::acl_json) with exact keys.
use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::IndexOptions;
use mongodb::{Client, Collection, IndexModel};

use super::acl::{Acl, AclEntrySpec};
use super::acl_json::{self, KeyRule};
use super::refreshed_acl::RefreshedAcl;
use super::{Authorizer, AuthzError, AuthzOutcome};
use crate::config::mongo::AclMongoConfig;
use crate::request::AuthzRequest;

pub struct AclMongo {
    acl: RefreshedAcl,
}

impl AclMongo {
    /// Loads the collection now (blocking up to a few timeouts) and starts the refresher.
    pub fn start(client: &Client, config: &AclMongoConfig) -> Result<AclMongo, String> {
        let collection = client.database(&config.dial.database).collection::<Document>(&config.collection);
        let first = collection.clone();
        let acl = crate::mongo::run_blocking(async move { load(&first).await }, config.dial.timeout * 3)?;
        crate::mongo::runtime()?.spawn(ensure_seq_index(collection.clone()));
        let source = collection.namespace().to_string();
        let load_again = move || {
            let collection = collection.clone();
            async move { load(&collection).await }
        };
        Ok(AclMongo { acl: RefreshedAcl::start("acl_mongo", source, acl, config.cache_ttl, load_again)? })
    }
}

/// docker_auth creates a unique index on `seq`; without the privilege we only warn.
async fn ensure_seq_index(collection: Collection<Document>) {
    let index =
        IndexModel::builder().keys(doc! {"seq": 1}).options(IndexOptions::builder().unique(true).build()).build();
    if let Err(e) = collection.create_index(index).await {
        tracing::warn!(collection = %collection.namespace(), error = %e, "could not create the unique index on seq");
    }
}

/// Reads every document sorted by `seq` and compiles them; any invalid document fails all.
async fn load(collection: &Collection<Document>) -> Result<Acl, String> {
    let cursor = collection.find(doc! {}).sort(doc! {"seq": 1}).await.map_err(|e| e.to_string())?;
    let docs: Vec<Document> = cursor.try_collect().await.map_err(|e| e.to_string())?;
    let specs = docs.iter().map(entry_spec).collect::<Result<Vec<_>, _>>()?;
    acl_json::compile(specs, |index| docs.get(index).map_or_else(|| format!("entry {index}"), describe))
}

/// Names a document in messages by its `seq` and `_id`.
fn describe(doc: &Document) -> String {
    let seq = doc.get("seq").map_or("none".to_string(), |s| s.to_string());
    let id = doc.get("_id").map_or("none".to_string(), |s| s.to_string());
    format!("document seq={seq} _id={id}")
}

fn entry_spec(doc: &Document) -> Result<AclEntrySpec, String> {
    let fail = |what: String| format!("{}: {what}", describe(doc));
    if !matches!(doc.get("seq"), Some(Bson::Int32(_) | Bson::Int64(_) | Bson::Double(_))) {
        return Err(fail("seq is not set (a number orders the entries)".into()));
    }
    let value = Bson::Document(doc.clone()).into_relaxed_extjson();
    acl_json::entry_spec(&value, KeyRule::Exact).map_err(fail)
}

#[async_trait]
impl Authorizer for AclMongo {
    fn name(&self) -> &'static str {
        "acl_mongo"
    }

    async fn authorize(&self, req: &AuthzRequest<'_>) -> Result<AuthzOutcome, AuthzError> {
        Ok(self.acl.snapshot().decide(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_become_acl_entries() {
        let d = doc! {"seq": 1, "match": {"account": "a", "labels": {"g": "x"}}, "actions": ["pull"], "comment": "c"};
        let spec = entry_spec(&d).unwrap();
        assert_eq!(spec.matcher.account.as_deref(), Some("a"));
        assert_eq!(spec.matcher.labels.unwrap()["g"], "x");
        assert_eq!((spec.actions, spec.comment.as_deref()), (vec!["pull".to_string()], Some("c")));
    }

    #[test]
    fn invalid_documents_are_named() {
        let unknown = doc! {"seq": 7, "match": {"team": "a"}, "actions": []};
        assert!(entry_spec(&unknown).unwrap_err().contains("seq=7") && entry_spec(&unknown).is_err());
        assert!(entry_spec(&unknown).unwrap_err().contains("unknown match key \"team\""));
        assert!(entry_spec(&doc! {"match": {}, "actions": []}).unwrap_err().contains("seq is not set"));
        assert!(entry_spec(&doc! {"seq": 1, "actions": []}).unwrap_err().contains("match is missing"));
        assert!(entry_spec(&doc! {"seq": 1, "match": {}}).unwrap_err().contains("actions is missing"));
        assert!(entry_spec(&doc! {"seq": 1, "match": {"name": 3}, "actions": []}).is_err());
    }
}
