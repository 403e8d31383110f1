//! Health, readiness and metrics endpoints scraped from the real binary, and the JSON
//! audit log with its stable fields.
use std::collections::BTreeMap;
use std::process::Command;

use crate::auth_server::{binary, AuthServer};
use crate::common::{base_yaml, basic, with_keys, KeyKind, Keys, ADMIN_HASH};
use crate::support::http::http_get;
use crate::support::mongo::Mongo;

fn config(keys: &Keys) -> String {
    let yaml = format!(
        "server:\n  addr: \"@ADDR@\"\n  path_prefix: /pfx\ntoken:\n  issuer: \"Acme auth server\"\n  expiration: 900\n  certificate: \"@CERT@\"\n  key: \"@KEY@\"\nusers:\n  \"admin\":\n    password: \"{ADMIN_HASH}\"\n  \"\": {{}}\nacl:\n  - match: {{account: \"\", name: \"public/*\"}}\n    actions: [\"pull\"]\n  - match: {{account: \"admin\"}}\n    actions: [\"*\"]\n"
    );
    with_keys(&yaml, keys)
}

pub fn metric(text: &str, line_start: &str) -> f64 {
    let line = text.lines().find(|l| l.starts_with(line_start)).unwrap_or_else(|| panic!("no {line_start} in\n{text}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn health_readiness_and_metrics_under_the_path_prefix() {
    let keys = Keys::new(KeyKind::EcP256);
    let server = AuthServer::start_probing(&config(&keys), false, &["serve"], "/pfx/readyz");
    let get = |path: &str, headers: &[(&str, &str)]| http_get(&server.addr, path, headers).unwrap();
    assert_eq!(get("/pfx/healthz", &[]).body_text(), "ok\n");
    let ready = get("/pfx/readyz", &[]);
    assert_eq!((ready.status, ready.body_text().as_str()), (200, "ready\n"));
    assert_eq!(get("/healthz", &[]).status, 404, "endpoints live under path_prefix");
    assert_eq!(get("/pfx/auth?scope=repository:public/a:pull,push", &[]).status, 200);
    assert_eq!(get("/pfx/auth?scope=repository:private/a:pull", &[]).status, 200);
    let (name, value) = basic("admin", "wrong");
    assert_eq!(get("/pfx/auth", &[(&name, &value)]).status, 401);
    let scrape = get("/pfx/metrics", &[]);
    assert_eq!(scrape.status, 200);
    assert!(scrape.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let text = scrape.body_text();
    assert_eq!(metric(&text, "registry_auth_http_requests_total{route=\"token\",code=\"200\"}"), 2.0);
    assert_eq!(metric(&text, "registry_auth_http_requests_total{route=\"token\",code=\"401\"}"), 1.0);
    assert_eq!(metric(&text, "registry_auth_http_requests_total{route=\"healthz\",code=\"200\"}"), 1.0);
    assert_eq!(metric(&text, "registry_auth_http_requests_total{route=\"other\",code=\"404\"}"), 1.0);
    assert_eq!(metric(&text, "registry_auth_authn_duration_seconds_count{backend=\"static\",outcome=\"allow\"}"), 2.0);
    assert_eq!(metric(&text, "registry_auth_authn_denied_total"), 1.0);
    assert_eq!(metric(&text, "registry_auth_authz_decisions_total{outcome=\"allowed\"}"), 1.0);
    assert_eq!(metric(&text, "registry_auth_authz_decisions_total{outcome=\"denied\"}"), 1.0);
    assert_eq!(metric(&text, "registry_auth_signing_duration_seconds_count"), 2.0);
    assert_eq!(metric(&text, "registry_auth_config_reloads_total{result=\"failed\"}"), 0.0);
    let expiry = metric(&text, "registry_auth_signing_certificate_expiry_seconds");
    assert!((3649.0 * 86400.0..=3650.0 * 86400.0).contains(&expiry), "{expiry}");
}

#[test]
fn json_audit_log_has_stable_fields() {
    let keys = Keys::new(KeyKind::EcP256);
    let yaml = config(&keys).replace("  path_prefix: /pfx\n", "");
    let server = AuthServer::start(&yaml, false, &["serve", "--log-format", "json", "--log-level", "info"]);
    let (name, value) = basic("admin", "badmin");
    assert_eq!(
        http_get(&server.addr, "/auth?service=reg&scope=repository:x/y:push", &[(&name, &value)]).unwrap().status,
        200
    );
    let (name, value) = basic("admin", "nope");
    assert_eq!(http_get(&server.addr, "/auth?service=reg", &[(&name, &value)]).unwrap().status, 401);
    let log = server.process.stderr();
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|v: &serde_json::Value| v["event"] == "token_decision")
        .collect();
    assert_eq!(events.len(), 2, "{log}");
    let issued = &events[0];
    for (field, want) in [
        ("outcome", "issued"),
        ("account", "admin"),
        ("ip", "127.0.0.1"),
        ("service", "reg"),
        ("requested", "repository:x/y:push"),
        ("granted", "repository:x/y:push"),
        ("rules", "acl[1]"),
        ("level", "INFO"),
    ] {
        assert_eq!(issued[field], want, "{field}: {issued}");
    }
    assert_eq!(events[1]["outcome"], "denied");
    assert_eq!(events[1]["reason"], "wrong_password");
    assert_eq!(events[1]["level"], "WARN");
    assert!(!log.contains("badmin") && !log.contains("nope"));
}

#[test]
fn bad_log_flags_are_usage_errors() {
    for args in [&["serve", "--log-format", "xml", "x.yml"][..], &["serve", "--log-level", "loud", "x.yml"]] {
        let out = Command::new(binary()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

/// Every series of a scrape with its value, minus what changes by itself (the expiry gauge).
fn series(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("registry_auth_signing_certificate_expiry_seconds"))
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(name, value)| (name.to_string(), value.parse().unwrap()))
        .collect()
}

/// What changed between two scrapes.
fn changes(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(name, value)| (name.clone(), value - before.get(name).copied().unwrap_or(0.0)))
        .filter(|(_, delta)| *delta != 0.0)
        .collect()
}

/// Scrapes around one wrong password for `known` and one login as an unknown account,
/// after one of each as warm-up; returns the two sets of changes.
fn failed_login_changes(server: &AuthServer, known: &str) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let scrape = || series(&http_get(&server.addr, "/metrics", &[]).unwrap().body_text());
    let login = |user: &str| {
        let (name, value) = basic(user, "wrong");
        http_get(&server.addr, "/auth?service=reg&scope=repository:x/y:push", &[(&name, &value)]).unwrap().status
    };
    assert_eq!((login(known), login("nobody")), (401, 401));
    let start = scrape();
    assert_eq!(login(known), 401);
    let after_wrong_password = scrape();
    assert_eq!(login("nobody"), 401);
    // The recent-events list is written by a background task in batches, so when its
    // counter moves is not tied to the request: both refusals store one event alike, but
    // which scrape sees it depends on the batching, not on the account.
    let settled = |mut c: BTreeMap<String, f64>| {
        c.retain(|name, _| !name.starts_with("registry_auth_recent_events_total"));
        c
    };
    (settled(changes(&start, &after_wrong_password)), settled(changes(&after_wrong_password, &scrape())))
}

#[test]
fn failed_logins_look_alike_on_metrics_with_mongo_last_in_the_chain() {
    let keys = Keys::new(KeyKind::EcP256);
    let mongo = Mongo::start();
    mongo.insert("users", vec![mongodb::bson::doc! {"username": "alice", "password": ADMIN_HASH}]);
    let dial = format!("  dial_info:\n    addrs: [\"{}\"]\n    database: docker_auth\n    timeout: 1s\n", mongo.addr());
    let yaml = format!(
        "{}mongo_auth:\n{dial}  collection: users\nacl:\n  - match: {{account: \"/.+/\"}}\n    actions: [\"pull\"]\n",
        base_yaml("@ADDR@", "", "static")
    );
    let server = AuthServer::start(&with_keys(&yaml, &keys), false, &["serve"]);
    let (wrong_password, unknown_account) = failed_login_changes(&server, "alice");
    assert_eq!(wrong_password, unknown_account);
    assert_eq!(wrong_password.get("registry_auth_authn_denied_total"), Some(&1.0), "{wrong_password:?}");
}

#[test]
fn a_wrong_password_and_an_unknown_account_change_metrics_alike() {
    let keys = Keys::new(KeyKind::EcP256);
    let yaml = config(&keys).replace("  path_prefix: /pfx\n", "");
    let server = AuthServer::start(&yaml, false, &["serve"]);
    let (wrong_password, unknown_account) = failed_login_changes(&server, "admin");
    assert_eq!(wrong_password, unknown_account);
    // What does change: the 401, the refusal count, one bcrypt check (the decoy for the
    // unknown account) and the scrape itself.
    assert_eq!(wrong_password.get("registry_auth_http_requests_total{route=\"token\",code=\"401\"}"), Some(&1.0));
    assert_eq!(wrong_password.get("registry_auth_authn_denied_total"), Some(&1.0));
    assert_eq!(wrong_password.get("registry_auth_bcrypt_jobs_total{result=\"run\"}"), Some(&1.0));
    assert_eq!(wrong_password.len(), 4, "{wrong_password:?}");
    // A login that works is still timed by the backend that accepted it.
    let (name, value) = basic("admin", "badmin");
    assert_eq!(http_get(&server.addr, "/auth?service=reg", &[(&name, &value)]).unwrap().status, 200);
    let text = http_get(&server.addr, "/metrics", &[]).unwrap().body_text();
    assert_eq!(metric(&text, "registry_auth_authn_duration_seconds_count{backend=\"static\",outcome=\"allow\"}"), 1.0);
    assert!(!text.contains("outcome=\"deny\"") && !text.contains("no_match"), "{text}");
}
