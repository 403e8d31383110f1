//! TLS session resumption on the listener, seen by a real OpenSSL client: `s_client
//! -sess_out` saves the first connection's session, a second `s_client -sess_in` offers
//! it and prints `Reused` when the server resumed it (docker clients reconnect for every
//! token, so a resumed handshake is the common case in production).
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::auth_server::AuthServer;
use crate::common::{with_keys, KeyKind, Keys};
use crate::support::process::require_program;
use crate::support::temp_dir;

/// A TLS server for one test. Not a shared `static`: statics are never dropped, so its
/// process would outlive the test binary.
fn server() -> (AuthServer, Keys) {
    {
        let keys = Keys::new(KeyKind::EcP256);
        let yaml = "server:\n  addr: \"@ADDR@\"\n  certificate: \"@CERT@\"\n  key: \"@KEY@\"\ntoken:\n  issuer: \"Acme auth server\"\n  expiration: 900\n  certificate: \"@CERT@\"\n  key: \"@KEY@\"\nusers:\n  \"\": {}\nacl:\n  - match: {account: \"\"}\n    actions: [\"pull\"]\n";
        (AuthServer::start(&with_keys(yaml, &keys), true, &[]), keys)
    }
}

/// One `openssl s_client` connection that sends a GET and reads the answer (so TLS 1.3
/// tickets, which come after the handshake, arrive), saving or offering the session.
fn connect((server, keys): &(AuthServer, Keys), options: &[&str], session: (&str, &Path)) -> String {
    let mut child = Command::new(require_program("openssl"))
        .args(["s_client", "-connect", &server.addr, "-ign_eof", "-CAfile"])
        .arg(&keys.cert)
        .args(options)
        .arg(session.0)
        .arg(session.1)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(stdout.contains("Verify return code: 0 (ok)"), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("HTTP/1.0 200 OK"), "{stdout}");
    stdout
}

/// A first connection and a second one offering its session: both outputs.
fn first_and_resumed(options: &[&str]) -> (String, String) {
    let dir = temp_dir("tls-session");
    let file = dir.path().join("session.pem");
    let server = server();
    let first = connect(&server, options, ("-sess_out", &file));
    let second = connect(&server, options, ("-sess_in", &file));
    (first, second)
}

const TICKET_ISSUED: &str = "TLS session ticket lifetime hint";

#[test]
fn tls13_second_connection_resumes() {
    let (first, second) = first_and_resumed(&["-tls1_3"]);
    assert!(first.contains("New, TLSv1.3"), "{first}");
    assert!(second.contains("Reused, TLSv1.3"), "{second}");
}

#[test]
fn tls12_second_connection_resumes_with_a_session_ticket() {
    let (first, second) = first_and_resumed(&["-tls1_2"]);
    assert!(first.contains("New, TLSv1.2") && first.contains(TICKET_ISSUED), "{first}");
    assert!(second.contains("Reused, TLSv1.2"), "{second}");
}

#[test]
fn tls12_second_connection_resumes_by_session_id_when_the_client_refuses_tickets() {
    let (first, second) = first_and_resumed(&["-tls1_2", "-no_ticket"]);
    assert!(first.contains("New, TLSv1.2") && !first.contains(TICKET_ISSUED), "{first}");
    assert!(second.contains("Reused, TLSv1.2"), "{second}");
}

/// The server's suite order wins, as on docker_auth's Go server: an OpenSSL client that
/// lists AES-256-GCM first gets AES-128-GCM, on TLS 1.3 and 1.2; one TLS 1.3 ticket.
#[test]
fn the_server_picks_aes_128_gcm_and_sends_one_ticket() {
    let dir = temp_dir("tls-suites");
    let file = dir.path().join("session.pem");
    let server = server();
    let tls13 = connect(
        &server,
        &["-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"],
        ("-sess_out", &file),
    );
    assert!(tls13.contains("Cipher is TLS_AES_128_GCM_SHA256"), "{tls13}");
    assert_eq!(tls13.matches("Post-Handshake New Session Ticket arrived").count(), 1, "{tls13}");
    let tls12 = connect(
        &server,
        &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"],
        ("-sess_out", &file),
    );
    assert!(tls12.contains("Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"), "{tls12}");
}
