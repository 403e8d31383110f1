//! Domain types shared by every layer: labels, requested scopes and granted access.
//! Imports nothing from the rest of the crate.
use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;

/// Labels attached to an authenticated user: label name → values.
pub type Labels = BTreeMap<String, Vec<String>>;

/// One requested resource scope (`type[(class)]:name:actions`), parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub resource_type: String,
    /// Set for `repository(plugin)`-style types; emitted as `class` in the token.
    pub class: Option<String>,
    pub name: String,
    /// Sorted by byte order; duplicates and empty strings are kept, as docker_auth does.
    pub actions: Vec<String>,
}

/// One `access` entry of the issued token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccessEntry {
    #[serde(rename = "type")]
    pub resource_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    pub name: String,
    pub actions: Vec<String>,
}

/// What the authorizers see for one scope.
#[derive(Debug, Clone)]
pub struct AuthzRequest<'a> {
    pub account: &'a str,
    pub resource_type: &'a str,
    pub name: &'a str,
    pub service: &'a str,
    pub ip: Option<IpAddr>,
    pub actions: &'a [String],
    pub labels: &'a Labels,
}
