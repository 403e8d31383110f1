//! TLS session resumption on the listener, seen by a real OpenSSL client: `s_client
//! -reconnect` connects once and then five more times offering the first session, and
//! prints `Reused` for each connection the server resumed (docker clients reconnect for
//! every token, so a resumed handshake is the common case in production).
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::auth_server::AuthServer;
use crate::common::{with_keys, KeyKind, Keys};
use crate::support::process::require_program;

/// One TLS server for the module; each test connects with its own client options.
fn server() -> &'static (AuthServer, Keys) {
    static SERVER: OnceLock<(AuthServer, Keys)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let keys = Keys::new(KeyKind::EcP256);
        let yaml = "server:\n  addr: \"@ADDR@\"\n  certificate: \"@CERT@\"\n  key: \"@KEY@\"\ntoken:\n  issuer: \"Acme auth server\"\n  expiration: 900\n  certificate: \"@CERT@\"\n  key: \"@KEY@\"\nusers:\n  \"\": {}\nacl:\n  - match: {account: \"\"}\n    actions: [\"pull\"]\n";
        (AuthServer::start(&with_keys(yaml, &keys), true, &[]), keys)
    })
}

/// Runs `openssl s_client -reconnect` with `options`; returns (new, reused) handshake counts.
fn reconnect(options: &[&str]) -> (usize, usize) {
    let (server, keys) = server();
    let output = Command::new(require_program("openssl"))
        .args(["s_client", "-connect", &server.addr, "-reconnect", "-CAfile"])
        .arg(&keys.cert)
        .args(options)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Verify return code: 0 (ok)"), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let count = |prefix: &str| stdout.lines().filter(|line| line.starts_with(prefix)).count();
    (count("New, "), count("Reused, "))
}

#[test]
fn tls13_reconnects_resume_with_tickets() {
    assert_eq!(reconnect(&["-tls1_3"]), (1, 5));
}

#[test]
fn tls12_reconnects_resume_with_tickets() {
    assert_eq!(reconnect(&["-tls1_2"]), (1, 5));
}

#[test]
fn tls12_reconnects_resume_with_session_ids_when_the_client_refuses_tickets() {
    assert_eq!(reconnect(&["-tls1_2", "-no_ticket"]), (1, 5));
}
