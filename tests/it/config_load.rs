//! Config loading: docker_auth-style example files, messages with path and line, all
//! errors at once.
use registry_auth::app;
use registry_auth::config::{self, ConfigError};

use crate::common::*;

/// Our docker_auth-style example configs (same sections and keys as docker_auth's
/// `examples/`), shipped with the tests so that they pass from a plain clone.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/docker_auth");

fn compat(name: &str, keys: &Keys) -> String {
    let path = std::path::Path::new(FIXTURES).join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    with_keys(&text, keys)
}

fn errors(yaml: &str) -> Vec<String> {
    match config::load_str(yaml, "test.yml") {
        Ok(_) => panic!("config unexpectedly valid:\n{yaml}"),
        Err(ConfigError { diagnostics, .. }) => diagnostics.errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn simple_and_non_tls_examples_load_and_build_unchanged() {
    let keys = Keys::new(KeyKind::Rsa2048);
    for name in ["simple.yml", "non_tls.yml"] {
        let config = config::load_str(&compat(name, &keys), name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(config.users.as_ref().map(|u| u.len()), Some(2), "{name}");
        assert!(config.warnings.is_empty(), "{name}: {:?}", config.warnings);
        app::build(&config).unwrap_or_else(|e| panic!("{name}: {e:?}"));
    }
}

#[test]
fn ldap_example_loads_and_builds_with_paths_adapted() {
    let keys = Keys::new(KeyKind::EcP256);
    let config = config::load_str(&compat("ldap_auth.yml", &keys), "ldap_auth.yml").unwrap_or_else(|e| panic!("{e}"));
    let ldap = config.ldap.as_ref().unwrap();
    assert_eq!(ldap.addr, "directory.example.net:636");
    assert_eq!(ldap.tls, config::ldap::LdapTls::Always);
    assert!(ldap.initial_bind_as_user);
    // The duplicate bind_dn key: the last value wins, as with yaml.v2.
    assert_eq!(ldap.bind_dn.as_deref(), Some("uid=${account},ou=staff,dc=example,dc=net"));
    assert_eq!(ldap.filter, "(&(uid=${account})(objectClass=inetOrgPerson))");
    // ... and is reported, with both lines.
    let warnings: Vec<String> = config.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("duplicate key \"bind_dn\" (lines 18 and 22)"), "{warnings:?}");
    // Building makes no connection: the directory is only contacted at the first login.
    let built = app::build(&config).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(built.state.service.authn.len(), 1);
}

#[test]
fn active_directory_example_loads_and_builds_with_paths_adapted() {
    let keys = Keys::new(KeyKind::EcP256);
    let dir = tempfile::tempdir().unwrap();
    let (ca, password) = (dir.path().join("ca.pem"), dir.path().join("pw"));
    std::fs::write(&ca, keys.cert_pem()).unwrap();
    std::fs::write(&password, "secret\n").unwrap();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/config/ldap_ad.yml");
    let yaml = std::fs::read_to_string(example)
        .unwrap()
        .replace("/etc/registry-auth/corp-ca.pem", &ca.display().to_string())
        .replace("/etc/registry-auth/ldap-password", &password.display().to_string())
        .replace("ssl/server.pem", "@CERT@")
        .replace("ssl/server.key", "@KEY@");
    let config = config::load_str(&with_keys(&yaml, &keys), "ldap_ad.yml").unwrap_or_else(|e| panic!("{e}"));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let ldap = config.ldap.as_ref().unwrap();
    assert_eq!(ldap.tls, config::ldap::LdapTls::Always);
    assert_eq!(ldap.bind_password.as_ref().map(|p| p.expose()), Some("secret"));
    assert_eq!(ldap.labels[0].attribute, "memberOf");
    app::build(&config).unwrap_or_else(|e| panic!("{e:?}"));
}

#[test]
fn ldap_config_mistakes_name_path_and_line() {
    let keys = Keys::new(KeyKind::EcP256);
    let yaml = with_keys(
        "server: {addr: ':5001'}\ntoken: {issuer: i, expiration: 900, certificate: '@CERT@', key: '@KEY@'}\n\
         ldap_auth:\n  addr: h:389\n  tls: ssl\n  ca_certificate: /nonexistent/ca.pem\n  filter: (uid=${account})\n\
         acl: []\n",
        &keys,
    );
    let errors = errors(&yaml);
    assert!(
        errors[0].starts_with(
            "ldap_auth.tls must be \"\", none, starttls or always, found \"ssl\" (at ldap_auth.tls, line 5)"
        ),
        "{errors:?}"
    );
    assert!(errors[1].starts_with("Error loading CA File: /nonexistent/ca.pem"), "{errors:?}");
    assert!(errors[1].contains("(at ldap_auth.ca_certificate, line 6)"), "{errors:?}");
    let bad_filter = with_keys(
        "server: {addr: ':5001'}\ntoken: {issuer: i, expiration: 900, certificate: '@CERT@', key: '@KEY@'}\n\
         ldap_auth: {addr: 'h:389', filter: '(uid=${account}'}\nacl: []\n",
        &keys,
    );
    let config = config::load_str(&bad_filter, "t.yml").unwrap();
    let problems = app::build(&config).err().unwrap();
    assert!(problems[0].message.contains("ldap_auth.filter is not a valid LDAP filter"), "{problems:?}");
}

#[test]
fn examples_with_unsupported_sections_fail_naming_only_those_sections() {
    let keys = Keys::new(KeyKind::EcP256);
    let reference = errors(&compat("reference.yml", &keys));
    // The web sign-in sections load; only the fixture's own secret files (absent here) and
    // github/gitlab's three token DBs at once are errors, each naming its section.
    let expected = [("google_auth", 1), ("github_auth", 2), ("oidc_auth", 0), ("gitlab_auth", 2)];
    for (section, count) in expected {
        let hits = reference.iter().filter(|e| e.contains(&format!("(at {section}"))).count();
        assert_eq!(hits, count, "{section} in {reference:#?}");
    }
    assert!(reference.iter().all(|e| !e.contains("not supported")), "{reference:#?}");
    // Go plugins are refused with a pointer to the external-program sections.
    for (section, instead) in [("plugin_authn", "ext_auth"), ("plugin_authz", "ext_authz")] {
        let message = format!("{section} loads a Go plugin (.so), which only a Go program can load");
        let hits: Vec<_> = reference.iter().filter(|e| e.starts_with(&message)).collect();
        assert_eq!(hits.len(), 1, "{section} in {reference:#?}");
        assert!(hits[0].contains(&format!("configure it as {instead} (README, \"Go plugins\"")), "{}", hits[0]);
    }
    // mongo_auth, acl_mongo, xorm_auth and acl_xorm are valid as written; the ext programs do not exist here.
    for (section, command) in [("ext_auth", "check-login"), ("ext_authz", "check-scope")] {
        let message = format!("bad {section} config: invalid command \"/opt/example/bin/{command}\"");
        assert_eq!(reference.iter().filter(|e| e.starts_with(&message)).count(), 1, "{message} in {reference:#?}");
    }
    let web_errors: usize = expected.iter().map(|(_, count)| count).sum();
    assert_eq!(reference.len(), web_errors + 4, "only these fail: {reference:#?}");
    // The Google client secret file does not exist here.
    let secret = "cannot read /etc/example/google_secret";
    let hits: Vec<_> = reference.iter().filter(|e| e.starts_with(secret)).collect();
    assert_eq!(hits.len(), 1, "{reference:#?}");
    assert!(hits[0].contains("(at google_auth.client_secret_file, line 28)"), "{}", hits[0]);
}

#[test]
fn docker_auth_messages_in_check_order_all_at_once() {
    let yaml = "server:\n  net: udp\n  path_prefix: auth\n  tls_min_version: TLS13\n  tls_cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]\ntoken:\n  expiration: 0\n";
    let e = errors(yaml);
    let messages: Vec<&str> =
        e.iter().map(|m| m.split(" (at").next().unwrap().split("; fix:").next().unwrap()).collect();
    assert_eq!(
        messages,
        [
            "server.addr is required",
            "server.net must be unix or tcp",
            "server.path_prefix must be an absolute path",
            "TLS 1.3 ciphersuites are not configurable",
            "token.issuer is required",
            "expiration must be positive, got 0",
            "no auth methods are configured, this is probably a mistake. Use an empty user map if you really want to deny everyone",
            "ACL is empty, this is probably a mistake. Use an empty list if you really want to deny all actions",
        ]
    );
    assert!(e[1].contains("(at server.net, line 2)"), "{}", e[1]);
    assert!(e.iter().all(|m| m.contains("; fix: ")), "{e:#?}");
}

const BASE: &str = "server: {addr: ':5001'}\ntoken: {issuer: x, expiration: 60}\nusers: {}\n";

#[test]
fn flow_map_trap_and_unknown_match_keys_are_hard_errors() {
    let e = errors(&format!("{BASE}acl:\n  - match: {{account:\"admin\"}}\n    actions: [\"*\"]\n  - match: {{team: devs}}\n    actions: [pull]\n"));
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].starts_with(
            "unknown match condition \"account:\\\"admin\\\"\" (at acl[0].match.account:\"admin\", line 5)"
        ),
        "{}",
        e[0]
    );
    assert!(e[0].contains("space after the colon"), "{}", e[0]);
    assert!(e[1].contains("(at acl[1].match.team, line 7)"), "{}", e[1]);
}

#[test]
fn entries_without_match_or_actions_are_errors() {
    let e = errors(&format!(
        "{BASE}acl:\n  - actions: [pull]\n  - match: {{account: x}}\n  - match:\n    actions: [pull]\n"
    ));
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(e[0].starts_with("acl[0] has no match conditions"));
    assert!(e[1].starts_with("acl[1] has no actions"));
    assert!(e[2].starts_with("acl[2] has no match conditions"));
}

#[test]
fn invalid_patterns_name_entry_field_and_line() {
    let e = errors(&format!("{BASE}acl:\n  - match: {{name: \"/(/\"}}\n    actions: []\n  - match: {{ip: \"192.168.0.*\"}}\n    actions: []\n"));
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(e[0].starts_with("invalid ACL: entry 0, invalid match conditions: invalid pattern \"/(/\""), "{}", e[0]);
    assert!(e[0].contains("(at acl[0].match.name, line 5)"), "{}", e[0]);
    assert!(e[1].contains("invalid IP pattern"), "{}", e[1]);
    assert!(e[1].contains("line 7"), "{}", e[1]);
}

#[test]
fn type_errors_and_unknown_keys() {
    let e = errors("server: {addr: ':5001'}\ntoken: {issuer: x, expiration: '15m'}\nusers:\n  a:\n    labels: {group: admins}\nacl: []\n");
    assert_eq!(e.len(), 2, "{e:#?}");
    assert!(
        e[0].starts_with("token.expiration must be an integer, found \"15m\" (at token.expiration, line 2)"),
        "{}",
        e[0]
    );
    assert!(e[1].contains("users.a.labels.group"), "{}", e[1]);
    let ok = config::load_str(&format!("{BASE}acl: []\nsevrer: {{}}\ntoken_extra: 1\n"), "t.yml").unwrap();
    let paths: Vec<&str> = ok.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(paths, ["sevrer", "token_extra"]);
}

#[test]
fn yaml11_booleans_duplicates_and_empty_sections() {
    let yaml = format!("{BASE}acl: []\nserver: {{addr: ':1', hsts: yes}}\n");
    let config = config::load_str(&yaml, "t.yml").unwrap();
    assert!(config.server.hsts);
    assert_eq!(config.server.addr, ":1");
    let e = errors("server: {addr: ':1'}\ntoken: {issuer: x, expiration: 60}\nusers:\nacl: ~\n");
    assert!(e[0].starts_with("no auth methods are configured"), "{e:#?}");
    assert!(e[1].starts_with("ACL is empty"), "{e:#?}");
}

#[test]
fn key_problems_are_reported_by_build() {
    let keys = Keys::new(KeyKind::EcP256);
    let other = Keys::new(KeyKind::EcP256);
    let mismatched = format!("{BASE}acl: []\n").replace(
        "token: {issuer: x, expiration: 60}",
        &format!(
            "token: {{issuer: x, expiration: 60, certificate: '{}', key: '{}'}}",
            keys.cert.display(),
            other.key.display()
        ),
    );
    let config = config::load_str(&mismatched, "t.yml").unwrap();
    let e = app::build(&config).err().expect("mismatched pair must fail");
    assert!(e[0].to_string().contains("private key does not match public key"), "{e:?}");
    let only_one = format!("{BASE}acl: []\n").replace(
        "token: {issuer: x, expiration: 60}",
        &format!("token: {{issuer: x, expiration: 60, certificate: '{}'}}", keys.cert.display()),
    );
    let e = app::build(&config::load_str(&only_one, "t.yml").unwrap()).err().unwrap();
    assert!(e[0].to_string().starts_with("failed to load token cert and key: both were not provided"), "{e:?}");
    let none = format!("{BASE}acl: []\n");
    let e = app::build(&config::load_str(&none, "t.yml").unwrap()).err().unwrap();
    assert!(e[0].to_string().starts_with("failed to load token cert and key: none provided"), "{e:?}");
}

#[test]
fn credential_cache_settings_and_their_mistakes() {
    let keys = Keys::new(KeyKind::EcP256);
    let base = with_keys(&base_yaml("127.0.0.1:0", "", "admin"), &keys) + "acl: []\n";
    let config = config::load_str(&base, "test.yml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.credential_cache, config::CredentialCacheConfig::default());
    let set =
        config::load_str(&format!("{base}credential_cache:\n  ttl: 5m\n  max_entries: 50\n"), "test.yml").unwrap();
    assert_eq!(set.credential_cache.ttl, std::time::Duration::from_secs(300));
    assert_eq!(set.credential_cache.max_entries, 50);
    let line = base.lines().count() + 2;
    let cases = [
        ("ttl: 2h", "credential_cache.ttl must be a duration from 0 to 1h, found \"2h\""),
        ("ttl: -1s", "credential_cache.ttl must be a duration from 0 to 1h, found \"-1s\""),
        ("ttl: 60", "credential_cache.ttl must be a duration from 0 to 1h, found \"60\""),
        ("max_entries: 0", "credential_cache.max_entries must be 1 to 1000000, got 0"),
    ];
    for (setting, message) in cases {
        let errors = errors(&format!("{base}credential_cache:\n  {setting}\n"));
        assert_eq!(errors.len(), 1, "{setting}: {errors:?}");
        assert!(errors[0].contains(message), "{setting}: {}", errors[0]);
        assert!(errors[0].contains(&format!("line {line}")), "{setting}: {}", errors[0]);
    }
}
