//! Configs that open more than they seem to, reported by `check-config` (with line and
//! fix) and, where the issue is the config itself, at start-up: duplicate keys, anonymous
//! write access, password-less users, unanchored account regexes, weak keys, long tokens.
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output};

use rsa::pkcs1::EncodeRsaPublicKey as _;
use rsa::pkcs8::EncodePrivateKey as _;

use crate::auth_server::{binary, AuthServer};
use crate::common::{with_keys, KeyKind, Keys};
use crate::support::temp_dir;

/// Cost 10: no weak-hash warning gets in the way of the ones under test.
fn strong_hash() -> String {
    bcrypt::hash("pw", 10).unwrap()
}

fn check_config(path: &Path, strict: bool) -> (Option<i32>, String) {
    let mut command = Command::new(binary());
    command.arg("check-config");
    if strict {
        command.arg("--strict");
    }
    let Output { status, stdout, .. } = command.arg(path).env_remove("RUST_LOG").output().unwrap();
    (status.code(), String::from_utf8_lossy(&stdout).into_owned())
}

fn write(dir: &Path, yaml: &str) -> std::path::PathBuf {
    let path = dir.join("auth_config.yml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn assert_has(text: &str, expected: &[&str]) {
    for e in expected {
        assert!(text.contains(e), "missing {e:?} in\n{text}");
    }
}

/// The case: a second top-level `acl:` replaced the one that kept anonymous out.
fn duplicated(keys: &Keys) -> String {
    let hash = strong_hash();
    let yaml = format!(
        "server:\n  addr: \"@ADDR@\"\ntoken:\n  issuer: \"Acme auth server\"\n  expiration: 900\n  certificate: \"@CERT@\"\n  key: \"@KEY@\"\nusers:\n  \"admin\":\n    password: \"{hash}\"\n    password: \"{hash}\"\n  \"\": {{}}\nacl:\n  - match: {{account: \"admin\"}}\n    actions: [\"*\"]\n  - match: {{account: \"\"}}\n    actions: []\nacl:\n  - match: {{account: \"/^.*$/\", name: \"prod/*\", name: \"prod/db\"}}\n    actions: [\"pull\"]\n"
    );
    with_keys(&yaml, keys)
}

#[test]
fn duplicate_keys_are_warned_at_start_and_errors_under_strict() {
    let keys = Keys::new(KeyKind::EcP256);
    let dir = temp_dir("lint-dup");
    let path = write(dir.path(), &duplicated(&keys).replace("@ADDR@", "127.0.0.1:5001"));
    let expected = [
        "duplicate key \"password\" (lines 10 and 11): the value on line 11 replaces the one on line 10 (at users.admin.password, line 11); fix: keep one \"password\" key",
        "duplicate key \"acl\" (lines 13 and 18): the value on line 18 replaces the one on line 13 (at acl, line 18)",
        "duplicate key \"name\" (lines 19 and 19): the value on line 19 replaces the one on line 19 (at acl[0].match.name, line 19)",
    ];
    let (code, out) = check_config(&path, false);
    assert_eq!(code, Some(0), "{out}");
    assert_has(&out, &expected.map(|e| format!("warning: {e}")).each_ref().map(String::as_str));
    let (code, out) = check_config(&path, true);
    assert_eq!(code, Some(1), "duplicates are errors under --strict:\n{out}");
    assert_has(&out, &expected.map(|e| format!("error: {e}")).each_ref().map(String::as_str));
    assert_has(&out, &["3 error(s)"]);

    let server = AuthServer::start(&duplicated(&keys), false, &["serve"]);
    assert_has(&server.process.stderr(), &expected);
}

#[test]
fn configs_that_let_anyone_in_are_reported_with_line_and_fix() {
    let keys = Keys::new(KeyKind::EcP256);
    let dir = temp_dir("lint-open");
    let hash = strong_hash();
    let yaml = format!(
        "server:\n  addr: \"127.0.0.1:5001\"\ntoken:\n  issuer: \"Acme auth server\"\n  expiration: 900\n  certificate: \"@CERT@\"\n  key: \"@KEY@\"\nusers:\n  \"admin\":\n    password: \"{hash}\"\n  \"ci\": {{labels: {{group: [\"ci\"]}}}}\n  \"\": {{}}\nacl:\n  - match: {{account: \"/admin/\"}}\n    actions: [\"*\"]\n  - match: {{account: \"/.+/\", name: \"team/*\"}}\n    actions: [\"push\"]\n  - match: {{account: \"*\", name: \"prod/*\"}}\n    actions: [\"pull\", \"push\"]\n  - match: {{name: \"tmp/*\"}}\n    actions: [\"delete\"]\n  - match: {{account: \"/^ops$|^dev/\", type: \"repository\"}}\n    actions: [\"pull\"]\n  - match: {{account: \"/^(bot)?$/\"}}\n    actions: [\"*\"]\n  - match: {{account: \"\"}}\n    actions: [\"pull\"]\n  - match: {{name: \"x/*\"}}\n    actions: [\"push\"]\n"
    );
    let path = write(dir.path(), &with_keys(&yaml, &keys));
    let (code, out) = check_config(&path, false);
    assert_eq!(code, Some(0), "{out}");
    assert_has(&out, &[
        "warning: user \"ci\" has no password: any password logs in as \"ci\", and so does a request without credentials (?account=ci) (at users.\"ci\", line 11); fix: add password: with a bcrypt hash from `registry-auth hash-password ci`",
        "warning: account regex /admin/ has no anchors: it matches every account that contains such a text (at acl[0].match.account, line 14); fix: write /^admin$/ to match whole account names only",
        "warning: acl[2] grants \"push\" to anonymous clients: users has \"\" (no credentials) and its account \"*\" matches the empty account (at acl[2], line 18); fix: add account: \"/.+/\"",
        "warning: acl[3] grants \"delete\" to anonymous clients: users has \"\" (no credentials) and the entry has no account condition (at acl[3], line 20)",
        "warning: account regex /^ops$|^dev/ is not anchored at the end ($): it matches every account that contains such a text (at acl[4].match.account, line 22)",
        "fix: write /^(?:ops$|^dev)$/",
        "warning: acl[5] grants \"*\" to anonymous clients: users has \"\" (no credentials) and its account \"/^(bot)?$/\" matches the empty account (at acl[5], line 24)",
        // and without x5c, registry 3.x refuses the libtrust kid:
        "(at token.x5c, line 3)",
        "OK, 7 warning(s)",
    ]);
    // acl[1] needs a logged-in user; acl[7] is never reached by anonymous (acl[6] matches
    // every anonymous request first); "" itself has no password on purpose.
    assert!(!out.contains("acl[1]") && !out.contains("acl[7]") && !out.contains("user \"\""), "{out}");
    assert_eq!(check_config(&path, true).0, Some(2));
}

/// The public half of an RSA key for rcgen, which (with ring) cannot use RSA keys under
/// 2048 bits itself.
struct RsaPublic(Vec<u8>);

impl rcgen::PublicKeyData for RsaPublic {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &rcgen::SignatureAlgorithm {
        &rcgen::PKCS_RSA_SHA256
    }
}

/// An RSA pair of `bits`, its certificate issued by a throw-away EC CA, the key file with
/// `mode`.
fn rsa_pair(dir: &Path, bits: usize, mode: u32) -> (std::path::PathBuf, std::path::PathBuf) {
    let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), bits).unwrap();
    let pem = private.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    let public = RsaPublic(private.to_public_key().to_pkcs1_der().unwrap().into_vec());
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = rcgen::CertificateParams::new(vec!["test ca".to_string()]).unwrap().self_signed(&ca_key).unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let certificate = params.signed_by(&public, &ca, &ca_key).unwrap();
    let (cert, key) = (dir.join(format!("rsa{bits}.pem")), dir.join(format!("rsa{bits}.key")));
    std::fs::write(&cert, certificate.pem()).unwrap();
    std::fs::write(&key, pem.as_bytes()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
    (cert, key)
}

#[test]
fn weak_keys_readable_key_files_and_day_long_tokens_are_warned_at_start_and_by_check_config() {
    let dir = temp_dir("lint-weak");
    let (cert, key) = rsa_pair(dir.path(), 1024, 0o644);
    let hash = strong_hash();
    let yaml = format!(
        "server:\n  addr: \"@ADDR@\"\ntoken:\n  issuer: \"Acme auth server\"\n  expiration: 604800\n  certificate: \"{}\"\n  key: \"{}\"\nusers:\n  \"admin\":\n    password: \"{hash}\"\nacl:\n  - match: {{account: \"admin\"}}\n    actions: [\"*\"]\n",
        cert.display(),
        key.display()
    );
    let expected = [
        "token.expiration is 604800 s (168.0 h): a leaked token cannot be revoked and works that long (at token.expiration, line 5); fix: use at most 86400",
        "holds a 1024-bit RSA key: keys under 2048 bits can be factored (at token.certificate, line 3)",
        "is readable by every user (mode 644): whoever reads it can sign tokens or impersonate this server (at token.key, line 3); fix: chmod 600",
    ];
    let path = write(dir.path(), &yaml.replace("@ADDR@", "127.0.0.1:5001"));
    let (code, out) = check_config(&path, false);
    assert_eq!(code, Some(0), "{out}");
    assert_has(&out, &expected);
    assert_has(&out, &["(at token.x5c, line 3)", "OK, 4 warning(s)"]);
    let server = AuthServer::start(&yaml, false, &["serve"]);
    assert_has(&server.process.stderr(), &expected);
    drop(server);

    // A 2048-bit key readable by its owner only, a 15-minute token, x5c: nothing to say.
    let (cert, key) = rsa_pair(dir.path(), 2048, 0o600);
    let fine = yaml
        .replace("  expiration: 604800\n", "  expiration: 900\n  x5c: true\n")
        .replace(&dir.path().join("rsa1024.pem").display().to_string(), &cert.display().to_string())
        .replace(&dir.path().join("rsa1024.key").display().to_string(), &key.display().to_string());
    let path = write(dir.path(), &fine.replace("@ADDR@", "127.0.0.1:5001"));
    let (code, out) = check_config(&path, true);
    assert_eq!(code, Some(0), "{out}");
    assert_has(&out, &["OK, 0 warning(s)"]);
}
