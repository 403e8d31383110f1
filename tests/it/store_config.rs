//! `check-config` on the `store:`, `lockout:` and `identity_tokens:` sections: a real Redis
//! up (reported, exit 0) and down (error with path, line and fix, exit 1); odd values,
//! unknown keys, missing files and bad TLS settings reported with path, line and fix.
//! And the robot CLI on odd names and absurdly long values: a clear error, never a panic.
use std::path::Path;
use std::process::{Command, Output};

use crate::auth_server::binary;
use crate::common::{base_yaml, with_keys, KeyKind, Keys};
use crate::support::redis::RedisServer;
use crate::support::temp_dir;

/// The base config takes lines 1-13; a section appended starts on line 14.
const FIRST_LINE: usize = 14;

fn yaml(keys: &Keys, section: &str) -> String {
    let base = base_yaml("127.0.0.1:5001", "", "admin");
    with_keys(&format!("{base}acl:\n  - match: {{account: \"admin\"}}\n    actions: [\"*\"]\n{section}"), keys)
}

fn run(dir: &Path, args: &[&str], yaml: &str) -> (Option<i32>, String, String) {
    let path = dir.join("auth_config.yml");
    std::fs::write(&path, yaml.replace("@DIR@", &dir.display().to_string())).unwrap();
    let Output { status, stdout, stderr } =
        Command::new(binary()).args(args).arg(&path).env_remove("RUST_LOG").output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (status.code(), text(&stdout), text(&stderr))
}

#[test]
fn check_config_reports_redis_up_and_down() {
    let keys = Keys::new(KeyKind::EcP256);
    let dir = temp_dir("store-config-redis");
    let mut redis = RedisServer::start();
    let section = format!("store:\n  redis:\n    addr: \"{}\"\n    timeout: 500ms\n", redis.addr());
    let (code, out, err) = run(dir.path(), &["check-config"], &yaml(&keys, &section));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("store: redis {} answers", redis.addr())), "{out}");
    redis.kill();
    let (code, out, _) = run(dir.path(), &["check-config"], &yaml(&keys, &section));
    assert_eq!(code, Some(1), "{out}");
    let expected = format!("(at store.redis, line {}); fix: ", FIRST_LINE + 1);
    let line = out.lines().find(|l| l.starts_with("error: store redis")).unwrap_or_else(|| panic!("{out}"));
    assert!(line.contains("is unavailable") && line.contains(&redis.addr()) && line.contains(&expected), "{out}");
    assert!(out.contains("1 error(s)"), "{out}");
}

#[test]
fn store_lockout_and_identity_token_sections_report_path_line_and_fix() {
    let keys = Keys::new(KeyKind::EcP256);
    let dir = temp_dir("store-config-errors");
    std::fs::write(dir.path().join("short.key"), "abc123\n").unwrap();
    let l = |offset: usize| FIRST_LINE + offset;
    // (section, expected error or warning text: message part, path, line)
    let errors: Vec<(String, &str, &str, usize)> = vec![
        ("store: {}\n".into(), "store: names no engine", "store", l(0)),
        (
            "store:\n  path: data\n  redis:\n    addr: \"r:6379\"\n".into(),
            "store: sets path and redis; only one engine can be used",
            "store",
            l(0),
        ),
        ("store:\n  path: \"\"\n".into(), "store.path is empty", "store.path", l(1)),
        ("store:\n  redis:\n    addr: \"no-port\"\n".into(), "\"no-port\" is not host:port", "store.redis.addr", l(2)),
        ("store:\n  redis: {}\n".into(), "store.redis.addr is required", "store.redis.addr", l(1)),
        (
            "store:\n  redis:\n    addr: \"r:6379\"\n    password_file: /nonexistent/redis-pw\n".into(),
            "cannot read password_file /nonexistent/redis-pw",
            "store.redis.password_file",
            l(3),
        ),
        (
            "store:\n  redis:\n    addr: \"r:6379\"\n    tls: true\n    ca_file: /nonexistent/ca.pem\n".into(),
            "cannot read ca_file /nonexistent/ca.pem",
            "store.redis.ca_file",
            l(4),
        ),
        ("store:\n  redis:\n    addr: \"r:6379\"\n    tls: maybe\n".into(), "", "store.redis.tls", l(3)),
        (
            "store:\n  redis:\n    addr: \"r:6379\"\n    db: -1\n".into(),
            "must be a database number",
            "store.redis.db",
            l(3),
        ),
        (
            "store:\n  redis:\n    addr: \"r:6379\"\n    timeout: 5m\n".into(),
            "store.redis.timeout must be a duration from 10ms to 60s, found \"5m\"",
            "store.redis.timeout",
            l(3),
        ),
        (
            "store:\n  redis_cluster:\n    addrs: []\n".into(),
            "store.redis_cluster.addrs is required",
            "store.redis_cluster.addrs",
            l(2),
        ),
        (
            "store:\n  path: data\n  hash_key_file: \"@DIR@/short.key\"\n".into(),
            "short.key does not hold a hex key of at least 256 bits",
            "store.hash_key_file",
            l(2),
        ),
        (
            "store:\n  path: data\n  hash_key_file: /nonexistent/hash.key\n".into(),
            "cannot read hash_key_file /nonexistent/hash.key",
            "store.hash_key_file",
            l(2),
        ),
        (
            "lockout:\n  window: 0s\n".into(),
            "lockout.window must be a duration from 1s to 24h, found \"0s\"",
            "lockout.window",
            l(1),
        ),
        (
            "lockout:\n  max_failures_per_ip: 0\n".into(),
            "lockout.max_failures_per_ip must be 1 to 1000000000, got 0",
            "lockout.max_failures_per_ip",
            l(1),
        ),
        (
            "lockout:\n  max_failures_per_account: 99999999999999999999999\n".into(),
            "",
            "lockout.max_failures_per_account",
            l(1),
        ),
        ("lockout:\n  enabled: sometimes\n".into(), "", "lockout.enabled", l(1)),
        (
            "identity_tokens:\n  lifetime: 5m\n".into(),
            "identity_tokens.lifetime must be a duration from 1h to 3650d, found \"5m\"",
            "identity_tokens.lifetime",
            l(1),
        ),
        (
            format!("identity_tokens:\n  idle_timeout: {}d\n", "9".repeat(40)),
            "identity_tokens.idle_timeout must be a duration from 1h to 3650d",
            "identity_tokens.idle_timeout",
            l(1),
        ),
        (
            "identity_tokens:\n  lifetime: 2d\n  idle_timeout: 30d\n".into(),
            "identity_tokens.idle_timeout is longer than the lifetime",
            "identity_tokens.idle_timeout",
            l(0),
        ),
    ];
    for (section, message, path, line) in &errors {
        let (code, out, err) = run(dir.path(), &["check-config"], &yaml(&keys, section));
        assert_eq!(code, Some(1), "{section}\n{out}{err}");
        let wanted = format!("(at {path}, line {line}); fix: ");
        let found = out.lines().any(|o| o.starts_with("error: ") && o.contains(message) && o.contains(&wanted));
        assert!(found, "{section}: want {message:?} {wanted:?} in\n{out}");
        assert!(!err.contains("panicked"), "{err}");
    }
    let warnings: Vec<(String, &str, usize)> = vec![
        ("store:\n  path: \"@DIR@/data\"\n  pathh: x\n".into(), "store.pathh", l(2)),
        ("lockout:\n  max_failures: 3\n".into(), "lockout.max_failures", l(1)),
        ("identity_tokens:\n  lifetme: 90d\n".into(), "identity_tokens.lifetme", l(1)),
        (
            "lockout:\n  max_failures_per_ip: 50\n  max_failures_per_account: 10\n".into(),
            "lockout.max_failures_per_account",
            l(2),
        ),
    ];
    for (section, path, line) in &warnings {
        let (code, out, err) = run(dir.path(), &["check-config"], &yaml(&keys, section));
        assert_eq!(code, Some(0), "{section}\n{out}{err}");
        let wanted = format!("(at {path}, line {line}); fix: ");
        assert!(out.lines().any(|o| o.starts_with("warning: ") && o.contains(&wanted)), "{section}: {wanted}\n{out}");
        let (code, _, _) = run(dir.path(), &["check-config", "--strict"], &yaml(&keys, section));
        assert_eq!(code, Some(2), "warnings fail --strict: {section}");
    }
}

/// The robot CLI on a store without a server: odd names, absurd lengths and counts are a
/// clear error (exit 1, nothing printed as a secret), never a panic.
#[test]
fn robot_cli_refuses_odd_names_and_absurd_values() {
    let keys = Keys::new(KeyKind::EcP256);
    let dir = temp_dir("store-config-robots");
    let config = yaml(&keys, "store:\n  path: \"@DIR@/data\"\n");
    let long_name = "a".repeat(100_000);
    let long_scope = format!("repository:{}:pull", "x/".repeat(50_000));
    let long_description = "d".repeat(100_000);
    let many: Vec<String> = (0..40).flat_map(|i| ["--scope".to_string(), format!("repository:r{i}:pull")]).collect();
    let mut cases: Vec<(Vec<String>, &str)> = vec![
        (vec![long_name], "invalid robot name"),
        (vec!["ci\nsecond-line".into()], "invalid robot name"),
        (vec!["ci\u{202e}".into()], "invalid robot name"),
        (vec!["robot$ci".into()], "invalid robot name"),
        (vec!["..".into()], "invalid robot name"),
        (vec!["ci".into(), "--scope".into(), long_scope], "invalid scope"),
        (vec!["ci".into(), "--scope".into(), "repository:a:pull push".into()], "invalid scope"),
        (vec!["ci".into(), "--expires".into(), "99999999d".into()], "--expires"),
        (vec!["ci".into(), "--description".into(), long_description], "description"),
        (vec!["ci".into(), "--expires".into(), format!("{}d", "9".repeat(30))], "--expires"),
        (vec!["ci".into(), "--expires".into(), "0d".into()], "--expires"),
        ([vec!["ci".to_string()], many].concat(), "at most 32"),
    ];
    for (args, _) in cases.iter_mut() {
        if !args.iter().any(|a| a == "--scope") {
            args.extend(["--scope".to_string(), "repository:team/*:pull".to_string()]);
        }
    }
    for (args, want) in &cases {
        let args: Vec<&str> = ["robot", "create"].into_iter().chain(args.iter().map(String::as_str)).collect();
        let path = dir.path().join("auth_config.yml");
        std::fs::write(&path, config.replace("@DIR@", &dir.path().display().to_string())).unwrap();
        let out =
            Command::new(binary()).args(&args).arg("--config").arg(&path).env_remove("RUST_LOG").output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(1), "{:?}: {stdout}{stderr}", &args[..3.min(args.len())]);
        assert!(stderr.contains(want) && !stdout.contains("secret:"), "want {want:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && stderr.len() < 2_000,
            "short and clear: {}",
            &stderr[..200.min(stderr.len())]
        );
    }
}
