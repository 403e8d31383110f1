//! `acl_mongo`: ACL entries in a MongoDB collection (parity.md §4.9), evaluated by the same
//! compiled engine as the static ACL, **ordered by `seq`** as docker_auth documents (its
//! code lost the sort). Loaded at start (a failure stops the start), then re-read every
//! `cache_ttl` in the background; a refresh that fails or holds an invalid document keeps
//! the previous ACL and logs which document is wrong.
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::IndexOptions;
use mongodb::{Client, Collection, IndexModel};

use super::acl::{Acl, AclEntrySpec, MatchSpec};
use super::{Authorizer, AuthzError, AuthzOutcome};
use crate::config::mongo::AclMongoConfig;
use crate::request::AuthzRequest;

const MATCH_KEYS: &[&str] = &["account", "type", "name", "service", "ip", "labels"];

pub struct AclMongo {
    current: Arc<RwLock<Arc<Acl>>>,
    /// The refresh loop; stopped when this config is replaced (reload) or dropped.
    refresher: tokio::task::JoinHandle<()>,
}

impl Drop for AclMongo {
    fn drop(&mut self) {
        self.refresher.abort();
    }
}

impl AclMongo {
    /// Loads the collection now (blocking up to a few timeouts) and starts the refresher.
    pub fn start(client: &Client, config: &AclMongoConfig) -> Result<AclMongo, String> {
        let collection = client.database(&config.dial.database).collection::<Document>(&config.collection);
        let first = collection.clone();
        let acl = crate::mongo::run_blocking(async move { load(&first).await }, config.dial.timeout * 3)?;
        let current = Arc::new(RwLock::new(Arc::new(acl)));
        let refresher = crate::mongo::runtime()?.spawn(refresh_loop(collection, config.cache_ttl, current.clone()));
        Ok(AclMongo { current, refresher })
    }

    fn snapshot(&self) -> Arc<Acl> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

async fn refresh_loop(collection: Collection<Document>, ttl: std::time::Duration, current: Arc<RwLock<Arc<Acl>>>) {
    ensure_seq_index(&collection).await;
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + ttl, ttl);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        match load(&collection).await {
            Ok(acl) => {
                tracing::debug!(entries = acl.len(), collection = %collection.namespace(), "acl_mongo refreshed");
                match current.write() {
                    Ok(mut guard) => *guard = Arc::new(acl),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(acl),
                }
            }
            Err(e) => {
                tracing::error!(collection = %collection.namespace(), error = %e, "acl_mongo refresh failed; keeping the previous ACL")
            }
        }
    }
}

/// docker_auth creates a unique index on `seq`; without the privilege we only warn.
async fn ensure_seq_index(collection: &Collection<Document>) {
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
    Acl::compile(specs).map_err(|errors| {
        let name = |index: usize| docs.get(index).map_or_else(|| format!("entry {index}"), describe);
        let described: Vec<String> =
            errors.iter().map(|e| format!("{}: {e} (field {})", name(e.index), e.field)).collect();
        described.join("; ")
    })
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
    let matcher = match doc.get("match") {
        Some(Bson::Document(m)) => match_spec(m).map_err(&fail)?,
        _ => return Err(fail("match is missing or not a document".into())),
    };
    let actions = match doc.get("actions") {
        Some(Bson::Array(items)) => strings(items).ok_or_else(|| fail("actions must be a list of strings".into()))?,
        _ => return Err(fail("actions is missing or not a list".into())),
    };
    let comment = doc.get_str("comment").ok().map(str::to_owned);
    Ok(AclEntrySpec { matcher, actions, comment })
}

fn match_spec(m: &Document) -> Result<MatchSpec, String> {
    if let Some(key) = m.keys().find(|k| !MATCH_KEYS.contains(&k.as_str())) {
        return Err(format!("unknown match key {key:?} (known: {})", MATCH_KEYS.join(", ")));
    }
    let field = |key: &str| match m.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("match.{key} must be a string")),
    };
    let labels = match m.get("labels") {
        None | Some(Bson::Null) => None,
        Some(Bson::Document(l)) => Some(label_conditions(l)?),
        Some(_) => return Err("match.labels must be a document of patterns".into()),
    };
    Ok(MatchSpec {
        account: field("account")?,
        resource_type: field("type")?,
        name: field("name")?,
        service: field("service")?,
        ip: field("ip")?,
        labels,
    })
}

fn label_conditions(l: &Document) -> Result<BTreeMap<String, String>, String> {
    l.iter()
        .map(|(k, v)| match v {
            Bson::String(s) => Ok((k.clone(), s.clone())),
            _ => Err(format!("match.labels.{k} must be a string")),
        })
        .collect()
}

fn strings(items: &[Bson]) -> Option<Vec<String>> {
    items.iter().map(|b| b.as_str().map(str::to_owned)).collect()
}

#[async_trait]
impl Authorizer for AclMongo {
    fn name(&self) -> &'static str {
        "acl_mongo"
    }

    async fn authorize(&self, req: &AuthzRequest<'_>) -> Result<AuthzOutcome, AuthzError> {
        Ok(self.snapshot().decide(req))
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
