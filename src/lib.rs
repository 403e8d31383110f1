//! registry-auth: a token authorization server for the Docker registry.
//! Layers: config → authn → authz → token → service → http, with the CLI on top.
// `deny`, not `forbid`: `heap_trim` (two argument-free glibc calls) allows it.
#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
pub mod acme;
pub mod app;
pub mod authn;
pub mod authz;
pub mod certgen;
pub mod cli;
pub mod config;
pub mod driver_runtime;
pub mod expiry_watch;
pub mod extprog;
#[allow(unsafe_code)]
pub mod heap_trim;
pub mod http;
pub mod identity;
pub mod lint;
pub mod metrics;
pub mod mongo;
pub mod ops;
pub mod recent_events;
pub mod registry_reader;
pub mod reload;
pub mod request;
pub mod scope;
pub mod secret;
pub mod server;
pub mod service;
pub mod sql;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod token;
pub mod upstream_client;
pub mod weak_keys;
pub mod web;
