//! Operator subcommands on the real binary: gen-cert, hash-password, check-config,
//! including their failure modes and exit codes.
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::auth_server::{binary, AuthServer};
use crate::common::{basic, verify_jwt, Keys, ADMIN_HASH};
use crate::support::temp_dir;

fn run(args: &[&str]) -> Output {
    Command::new(binary()).args(args).env_remove("RUST_LOG").output().unwrap()
}

fn run_with_stdin(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(binary())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The child may exit before reading (usage errors): a broken pipe is expected then.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn gen_cert(dir: &Path, extra: &[&str]) -> Output {
    let cert = dir.join("ssl/auth.pem");
    let key = dir.join("ssl/auth.key");
    let mut args = vec!["gen-cert", "--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

fn config_with(keys_dir: &Path, users: &str, acl: &str) -> String {
    format!(
        "server:\n  addr: \"@ADDR@\"\ntoken:\n  issuer: \"Acme auth server\"\n  expiration: 900\n  certificate: \"{}\"\n  key: \"{}\"\n  x5c: true\nusers:\n{users}\nacl:\n{acl}",
        keys_dir.join("ssl/auth.pem").display(),
        keys_dir.join("ssl/auth.key").display()
    )
}

fn keys_of(dir: &Path) -> Keys {
    Keys { cert: dir.join("ssl/auth.pem"), key: dir.join("ssl/auth.key"), _dir: temp_dir("unused") }
}

#[test]
fn gen_cert_every_key_type_signs_tokens_the_certificate_verifies() {
    for key_type in ["ec-p256", "ec-p384", "rsa-2048", "rsa-4096"] {
        let dir = temp_dir("gen-cert");
        let out = gen_cert(dir.path(), &["--key-type", key_type, "--san", "auth.example", "--san", "10.1.2.3"]);
        assert!(out.status.success(), "{key_type}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        let cert = dir.path().join("ssl/auth.pem");
        for line in [
            format!("REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE={}", cert.display()),
            "REGISTRY_AUTH_TOKEN_ISSUER=Acme auth server".to_string(),
            "REGISTRY_AUTH_TOKEN_SERVICE=Docker registry".to_string(),
            "REGISTRY_AUTH_TOKEN_REALM=https://auth:5001/auth".to_string(),
            "(3650 days)".to_string(),
        ] {
            assert!(stdout.contains(&line), "{key_type}: missing {line:?} in\n{stdout}");
        }
        let mode = std::fs::metadata(dir.path().join("ssl/auth.key")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{key_type}");
        let pem = std::fs::read(&cert).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        let parsed = pem.parse_x509().unwrap();
        let sans = format!("{:?}", parsed.subject_alternative_name().unwrap().unwrap().value.general_names);
        assert!(sans.contains("auth.example") && sans.contains("10.1.2.3") || sans.contains("[10, 1, 2, 3]"), "{sans}");
        let days = (parsed.validity().not_after.timestamp() - time::OffsetDateTime::now_utc().unix_timestamp()) / 86400;
        assert!((3648..=3650).contains(&days), "{key_type}: {days}");
        let yaml = config_with(dir.path(), "  \"\": {}", "  - match: {account: \"\"}\n    actions: [\"pull\"]\n");
        let server = AuthServer::start(&yaml, false, &[]);
        let resp = crate::support::http::http_get(
            &server.addr,
            "/auth?service=Docker+registry&scope=repository:a/b:pull",
            &[],
        )
        .unwrap();
        assert_eq!(resp.status, 200, "{key_type}");
        let token: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        verify_jwt(token["token"].as_str().unwrap(), &keys_of(dir.path()), "Docker registry");
    }
}

#[test]
fn gen_cert_refuses_to_overwrite_without_force_and_fixes_key_mode_with_it() {
    let dir = temp_dir("gen-cert-force");
    assert!(gen_cert(dir.path(), &["--days", "30"]).status.success());
    let key = dir.path().join("ssl/auth.key");
    let before = std::fs::read(&key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = gen_cert(dir.path(), &[]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("already exists; pass --force"), "{}", text(&refused.stderr));
    assert_eq!(std::fs::read(&key).unwrap(), before, "a refusal must not touch the key");
    let forced = gen_cert(dir.path(), &["--force"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert_ne!(std::fs::read(&key).unwrap(), before);
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn gen_cert_rejects_bad_arguments_with_usage_errors() {
    let dir = temp_dir("gen-cert-bad");
    for bad in [&["--key-type", "dsa"][..], &["--days", "0"], &["--days", "x"]] {
        let out = gen_cert(dir.path(), bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(!dir.path().join("ssl/auth.key").exists());
    }
    // An unwritable destination is an error, not a panic.
    let out = run(&["gen-cert", "--cert", "/proc/nope/c.pem", "--key", "/proc/nope/c.key"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("cannot write"), "{}", text(&out.stderr));
}

#[test]
fn hash_password_from_stdin_verifies_in_serve() {
    let out = run_with_stdin(&["hash-password", "alice", "--cost", "4", "--format", "yaml"], "s3cret pass\n");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cost 4 is below 10"), "{}", text(&out.stderr));
    let snippet = text(&out.stdout);
    assert!(snippet.starts_with("users:\n  \"alice\":\n    password: \"$2b$04$"), "{snippet}");
    assert!(!snippet.contains("s3cret"));
    let dir = temp_dir("hash-serve");
    assert!(gen_cert(dir.path(), &[]).status.success());
    let users = snippet.trim_start_matches("users:\n").trim_end();
    let yaml = config_with(dir.path(), users, "  - match: {account: \"alice\"}\n    actions: [\"push\", \"pull\"]\n");
    let server = AuthServer::start(&yaml, false, &[]);
    let (name, value) = basic("alice", "s3cret pass");
    let ok =
        crate::support::http::http_get(&server.addr, "/auth?scope=repository:a/b:push", &[(&name, &value)]).unwrap();
    assert_eq!(ok.status, 200, "{}", ok.body_text());
    let (name, value) = basic("alice", "s3cret");
    let denied = crate::support::http::http_get(&server.addr, "/auth", &[(&name, &value)]).unwrap();
    assert_eq!(denied.status, 401);
}

#[test]
fn hash_password_formats_warnings_and_failures() {
    let out = run(&["hash-password", "bob", "--password", "hunter2", "--cost", "10"]);
    assert!(out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("visible in `ps`") && !stderr.contains("below"), "{stderr}");
    let line = text(&out.stdout);
    let (user, hash) = line.trim_end().split_once(':').unwrap();
    assert_eq!(user, "bob");
    assert!(hash.starts_with("$2b$10$") && bcrypt::verify("hunter2", hash).unwrap());
    let bare = run_with_stdin(&["hash-password", "--cost", "4"], "pw\r\n");
    assert!(bcrypt::verify("pw", text(&bare.stdout).trim_end()).unwrap());
    let empty = run_with_stdin(&["hash-password", "bob"], "");
    assert_eq!(empty.status.code(), Some(1));
    assert!(text(&empty.stderr).contains("password is empty"));
    assert!(empty.stdout.is_empty());
    let yaml_without_user = run_with_stdin(&["hash-password", "--format", "yaml"], "pw\n");
    assert_eq!(yaml_without_user.status.code(), Some(1));
    assert!(text(&yaml_without_user.stderr).contains("needs a USER"));
    assert_eq!(run(&["hash-password", "bob", "--cost", "3", "--password", "x"]).status.code(), Some(2));
}

fn write_config(dir: &Path, yaml: &str) -> String {
    let path = dir.join("auth_config.yml");
    std::fs::write(&path, yaml.replace("@ADDR@", "127.0.0.1:5001")).unwrap();
    path.display().to_string()
}

#[test]
fn check_config_ok_warnings_and_strict_exit_codes() {
    let dir = temp_dir("check-ok");
    assert!(gen_cert(dir.path(), &[]).status.success());
    let strong = bcrypt::hash("pw", 10).unwrap();
    let clean = config_with(
        dir.path(),
        &format!("  \"admin\":\n    password: \"{strong}\""),
        "  - match: {account: \"admin\"}\n    actions: [\"*\"]\n",
    );
    let path = write_config(dir.path(), &clean);
    for args in [&["check-config", &path][..], &["check-config", "--strict", &path]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
        assert!(text(&out.stdout).contains("OK, 0 warning(s)"), "{}", text(&out.stdout));
    }

    assert!(gen_cert(dir.path(), &["--force", "--days", "10"]).status.success());
    let acl = "  - match: {account: \"admin\"}\n    actions: [\"*\"]\n  - match: {account: \"admin\", name: \"x/*\"}\n    actions: [\"pull\"]\n  - match: {name: \"x/*\"}\n    actions: [\"pull\"]\n";
    let weak = config_with(dir.path(), &format!("  \"admin\":\n    password: \"{ADMIN_HASH}\""), acl);
    let path = write_config(dir.path(), &weak);
    let out = run(&["check-config", &path]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for expected in [
        "warning: bcrypt cost 5 is weak (at users.\"admin\".password, line 11); fix: re-hash with `registry-auth hash-password --cost 10 admin`",
        "warning: acl[1] can never match: acl[0] matches every request it would (at acl[1], line 15)",
        "auth.pem expires in ",
        "OK, 3 warning(s)",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in\n{stdout}");
    }
    assert!(!stdout.contains("acl[2]"), "acl[2] is reachable: {stdout}");
    assert_eq!(run(&["check-config", "--strict", &path]).status.code(), Some(2));
}

#[test]
fn check_config_reports_load_and_build_errors_with_exit_1() {
    let dir = temp_dir("check-bad");
    let trap = "server:\n  addr: \":5001\"\ntoken:\n  issuer: x\n  expiration: 60\n  certificate: /nonexistent/c.pem\n  key: /nonexistent/c.key\nusers: {}\nacl:\n  - match: {account:\"admin\"}\n    actions: [\"*\"]\n  - match: {}\n    actions: [1, 2]\n    extra: 1\n";
    let path = write_config(dir.path(), trap);
    let out = run(&["check-config", &path]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("error: unknown match condition \"account:\\\"admin\\\"\" (at acl[0].match.account:\"admin\", line 10); fix: YAML needs a space after the colon"), "{stdout}");
    assert!(stdout.contains("warning: ") && stdout.contains("acl[1].extra"), "{stdout}");
    assert!(stdout.contains("error(s)"), "{stdout}");

    // Loads fine, but the key cannot be read: the build step (as in serve) catches it.
    let missing_key = trap
        .replace("{account:\"admin\"}", "{account: \"admin\"}")
        .replace("[1, 2]", "[\"pull\"]")
        .replace("    extra: 1\n", "");
    let path = write_config(dir.path(), &missing_key);
    let out = run(&["check-config", &path]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("error: ") && stdout.contains("(at token.certificate, line 3)"), "{stdout}");
    assert!(stdout.contains("/nonexistent/c"), "{stdout}");

    let out = run(&["check-config", "/nonexistent/auth.yml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("could not read /nonexistent/auth.yml"));
    assert_eq!(run(&["check-config"]).status.code(), Some(2), "CONFIG is required");
}
