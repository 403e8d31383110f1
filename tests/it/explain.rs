//! `registry-auth explain` on the real binary: per-scope decisions with the deciding entry,
//! authentication outcomes, and token decoding with signature verification.
use std::process::{Command, Output};

use crate::auth_server::{binary, AuthServer};
use crate::common::{standard_yaml, KeyKind, Keys};
use crate::support::temp_dir;

fn explain(config: &std::path::Path, args: &[&str]) -> Output {
    Command::new(binary()).arg("explain").arg("--config").arg(config).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn explains_scopes_with_the_deciding_entry_and_substituted_pattern() {
    let keys = Keys::new(KeyKind::EcP256);
    let dir = temp_dir("explain");
    let config = dir.path().join("auth.yml");
    std::fs::write(&config, standard_yaml(&keys, "")).unwrap();
    let out = explain(
        &config,
        &[
            "--account",
            "test",
            "--password",
            "123",
            "repository:test/app:pull,push",
            "repository:other/x:push",
            "repository:denied/y:pull",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for want in [
        "authentication: \"test\" accepted by authn #1 (static); labels {\"group\": [\"devs\", \"qa\"]}",
        "scope repository:test/app:pull,push\n  decided by: acl[1] (\"own namespace\")\n  match: {account: \"test\", name: \"test/*\" (written \"${account}/*\")}\n  entry allows: [pull, push]\n  granted: pull,push",
        "scope repository:other/x:push\n  decided by: acl[5] (\"named users pull\")",
        "  granted: nothing",
        "scope repository:denied/y:pull\n  decided by: acl[4]\n",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in\n{stdout}");
    }
    let wrong = explain(&config, &["--account", "test", "--password", "nope", "repository:a/b:pull"]);
    assert!(
        text(&wrong.stdout).contains("rejected by authn #1 (static): wrong password -> 401"),
        "{}",
        text(&wrong.stdout)
    );
    // Assumed labels instead of a password: the label placeholder entry decides.
    let labels =
        explain(&config, &["--account", "test", "--labels", "group=qa,group=ops", "repository:ops/z:pull,push"]);
    let stdout = text(&labels.stdout);
    assert!(
        stdout.contains("skipped (no --password); account \"test\" with labels {\"group\": [\"qa\", \"ops\"]}"),
        "{stdout}"
    );
    assert!(
        stdout.contains("decided by: acl[2] (\"group namespaces\")") && stdout.contains("granted: pull\n"),
        "{stdout}"
    );
    let unknown = explain(&config, &["--account", "nobody", "--password", "x", "repository:a/b:pull"]);
    assert!(text(&unknown.stdout).contains("no backend knows \"nobody\""));
}

#[test]
fn explain_failure_modes() {
    let keys = Keys::new(KeyKind::EcP256);
    let dir = temp_dir("explain-bad");
    let config = dir.path().join("auth.yml");
    std::fs::write(&config, standard_yaml(&keys, "")).unwrap();
    let bad_scope = explain(&config, &["--account", "a", "repository:a"]);
    assert_eq!(bad_scope.status.code(), Some(1));
    assert!(text(&bad_scope.stderr).contains("invalid scope"), "{}", text(&bad_scope.stderr));
    let bad_labels = explain(&config, &["--account", "a", "--labels", "oops", "repository:a/b:pull"]);
    assert_eq!(bad_labels.status.code(), Some(1));
    assert!(text(&bad_labels.stderr).contains("not key=value"));
    let missing = explain(std::path::Path::new("/nonexistent.yml"), &["--account", "a"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("could not read /nonexistent.yml"));
    assert_eq!(explain(&config, &["repository:a/b:pull"]).status.code(), Some(2), "--account or --token is required");
    assert_eq!(explain(&config, &["--account", "a", "--ip", "not-an-ip"]).status.code(), Some(2));
}

#[test]
fn explain_token_verifies_with_the_configured_key_for_each_key_type() {
    for kind in [KeyKind::EcP256, KeyKind::Rsa2048] {
        let keys = Keys::new(kind);
        let yaml = standard_yaml(&keys, "").replace("127.0.0.1:0", "@ADDR@");
        let server = AuthServer::start(&yaml, false, &[]);
        let resp =
            crate::support::http::http_get(&server.addr, "/auth?service=reg&scope=repository:public/a:pull", &[])
                .unwrap();
        let token: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
        let token = token["token"].as_str().unwrap();
        let config = server.dir.path().join("auth_config.yml");
        let out = explain(&config, &["--token", token]);
        let stdout = text(&out.stdout);
        assert!(out.status.success(), "{kind:?}: {stdout}{}", text(&out.stderr));
        assert!(stdout.starts_with("signature: valid ("), "{stdout}");
        assert!(stdout.contains("\"aud\": \"reg\"") && stdout.contains("\"name\": \"public/a\""), "{stdout}");
        assert!(stdout.contains("more seconds)") && stdout.contains("issuer: matches token.issuer"), "{stdout}");

        // The same token against another key, and a tampered token, are rejected.
        let other = Keys::new(kind);
        let other_config = server.dir.path().join("other.yml");
        std::fs::write(&other_config, standard_yaml(&other, "")).unwrap();
        let out = explain(&other_config, &["--token", token]);
        assert_eq!(out.status.code(), Some(1), "{kind:?}");
        assert!(text(&out.stderr).contains("signature: INVALID"), "{}", text(&out.stderr));
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        parts[1] = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, br#"{"sub":"admin"}"#);
        let out = explain(&config, &["--token", &parts.join(".")]);
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains("INVALID"));
        let out = explain(&config, &["--token", "not-a-token"]);
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).contains("not a JWT"));
    }
}
