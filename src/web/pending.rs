//! Sign-in attempts between our redirect and the provider's callback, and identity-token
//! offers between the result page and the user's choice: short-lived, single-use records
//! in the store (so any replica can finish a flow another started). Keys hold a SHA-256 of
//! the value the browser carries, never the value itself.
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::cookies::FLOW_TTL;
use crate::request::Labels;
use crate::store::{SharedStore, StoreError, StoreExt as _};

/// One started sign-in, found by its `state`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingFlow {
    pub provider: String,
    /// SHA-256 (hex) of the flow cookie's value: the browser that started it.
    pub browser: String,
    pub pkce_verifier: String,
    pub nonce: String,
    pub redirect_uri: String,
    /// Started from the console's sign-in page: the callback opens a console session
    /// instead of showing a docker password (records written before this read as false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub console: bool,
}

/// The offer on a result page to trade the password for an identity token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Offer {
    pub provider: String,
    pub account: String,
    pub labels: Labels,
}

pub fn digest(value: &str) -> String {
    Sha256::digest(value.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn flow_key(state: &str) -> String {
    format!("wf:{}", digest(state))
}

fn offer_key(offer: &str) -> String {
    format!("wo:{}", digest(offer))
}

pub async fn save_flow(store: &SharedStore, state: &str, flow: &PendingFlow) -> Result<(), StoreError> {
    store.put_json(&flow_key(state), flow, Some(FLOW_TTL)).await
}

/// The flow of `state`, removed so it can be finished only once (a replayed callback
/// finds nothing). `None` when unknown, expired or already taken by another request.
pub async fn take_flow(store: &SharedStore, state: &str) -> Result<Option<PendingFlow>, StoreError> {
    take(store, &flow_key(state)).await
}

pub async fn save_offer(store: &SharedStore, offer: &str, value: &Offer) -> Result<(), StoreError> {
    store.put_json(&offer_key(offer), value, Some(FLOW_TTL)).await
}

pub async fn take_offer(store: &SharedStore, offer: &str) -> Result<Option<Offer>, StoreError> {
    take(store, &offer_key(offer)).await
}

async fn take<T: serde::de::DeserializeOwned>(store: &SharedStore, key: &str) -> Result<Option<T>, StoreError> {
    let Some(value) = store.get_json::<T>(key).await? else { return Ok(None) };
    // Only the request whose delete removed it may use it: two concurrent callbacks with
    // one state cannot both finish.
    Ok(store.delete(key).await?.then_some(value))
}
