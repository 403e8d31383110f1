//! `server.letsencrypt` against Debian's pebble: the first start obtains a certificate by
//! TLS-ALPN-01 on our own listener, a restart reuses the cached one, a short-lived
//! certificate is renewed and swapped in while requests go on, and an ACME server that is
//! down, hangs or refuses gives a clear error in the log and never a panic.
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth_server::binary;
use crate::common::{KeyKind, Keys, ADMIN_HASH};
use crate::support::pebble::{Pebble, PebbleOptions};
use crate::support::ports::{free_port, wait_until, Probe};
use crate::support::process::ChildGuard;
use crate::support::temp_dir;

const HOST: &str = "registry-auth.test";

struct Setup {
    keys: Keys,
    cache: tempfile::TempDir,
    /// Holds the config files.
    dir: tempfile::TempDir,
    port: u16,
}

impl Setup {
    fn new() -> Setup {
        let (cache, dir) = (temp_dir("acme-cache"), temp_dir("acme-config"));
        Setup { keys: Keys::new(KeyKind::EcP256), cache, dir, port: free_port() }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Our server with `letsencrypt` pointing at `directory` (its HTTPS checked against `ca`).
    fn start(&self, directory: &str, ca: &Path, extra: &str) -> ChildGuard {
        let yaml = format!(
            r#"server:
  addr: "{addr}"
  letsencrypt:
    email: "ops@example.com"
    cache_dir: {cache:?}
    host: "{HOST}"
    directory_url: "{directory}"
    directory_ca_certificate: {ca:?}
{extra}token: {{issuer: "Acme auth server", expiration: 900, certificate: {cert:?}, key: {key:?}}}
users:
  "admin": {{password: "{ADMIN_HASH}"}}
acl: []
"#,
            addr = self.addr(),
            cache = self.cache.path(),
            cert = self.keys.cert,
            key = self.keys.key,
        );
        let path = self.dir.path().join("auth_config.yml");
        std::fs::write(&path, yaml).unwrap();
        let mut command = Command::new(binary());
        command.arg(&path).env("RUST_LOG", "info");
        ChildGuard::spawn_in_temp_dir("registry-auth", command)
    }

    fn cached(&self) -> Vec<u8> {
        std::fs::read(self.cache.path().join(HOST)).unwrap()
    }
}

/// One HTTPS request on a new connection, the certificate checked against `root` for HOST;
/// returns the leaf certificate the server presented.
fn fetch(addr: &str, root: &str) -> Result<Vec<u8>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut root.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(HOST).unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let socket = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, socket);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).map_err(|e| format!("handshake or write: {e}"))?;
    let mut response = Vec::new();
    let read = tls.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    if !text.starts_with("HTTP/1.1 200") {
        return Err(format!("answer {text:?} ({read:?})"));
    }
    let leaf = tls.conn.peer_certificates().and_then(|c| c.first()).ok_or("no certificate")?;
    Ok(leaf.to_vec())
}

fn wait_for_https(server: &mut ChildGuard, addr: &str, root: &str, within: Duration) -> Vec<u8> {
    server
        .wait_ready("serves HTTPS with pebble's certificate", within, || match fetch(addr, root) {
            Ok(leaf) => Probe::Ready(leaf),
            Err(e) => Probe::NotYet(e),
        })
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn first_start_obtains_a_certificate_and_a_restart_reuses_it() {
    let setup = Setup::new();
    let pebble = Pebble::start(setup.port, PebbleOptions { validity_secs: None, blocklist: vec![] });
    let mut server = setup.start(&pebble.directory_url, &pebble.https_ca, "");
    let root = pebble.issuing_root_pem();
    let first = wait_for_https(&mut server, &setup.addr(), &root, Duration::from_secs(60));
    assert_eq!(pebble.issued(), 1, "{}", pebble.log());
    let cached = setup.cached();
    assert!(String::from_utf8_lossy(&cached).contains("PRIVATE KEY"), "key and chain in autocert's layout");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(setup.cache.path().join(HOST)).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    drop(server);

    let mut again = setup.start(&pebble.directory_url, &pebble.https_ca, "");
    let second = wait_for_https(&mut again, &setup.addr(), &root, Duration::from_secs(20));
    assert_eq!(second, first, "the restart serves the cached certificate");
    assert!(again.log().contains("serving the cached certificate"), "{}", again.log());
    assert_eq!(setup.cached(), cached, "the cache file is unchanged");
    assert_eq!(pebble.issued(), 1, "no new order: {}", pebble.log());
}

#[test]
fn a_short_lived_certificate_is_renewed_and_swapped_in_while_requests_go_on() {
    let setup = Setup::new();
    // Renewal at two thirds of a 15 s lifetime.
    let pebble = Pebble::start(setup.port, PebbleOptions { validity_secs: Some(15), blocklist: vec![] });
    let mut server = setup.start(&pebble.directory_url, &pebble.https_ca, "");
    let root = pebble.issuing_root_pem();
    let first = wait_for_https(&mut server, &setup.addr(), &root, Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(40);
    let (mut requests, mut after_swap, mut failures) = (0, 0, Vec::new());
    while Instant::now() < deadline && after_swap < 20 {
        requests += 1;
        match fetch(&setup.addr(), &root) {
            Ok(leaf) if leaf != first => after_swap += 1,
            Ok(_) => {}
            Err(e) => failures.push(e),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(failures.is_empty(), "{} of {requests} requests failed: {failures:?}\n{}", failures.len(), server.log());
    assert_eq!(after_swap, 20, "no new certificate within 40 s\n{}\n{}", server.log(), pebble.log());
    assert!(pebble.issued() >= 2);
    let cached = setup.cached();
    assert!(!cached.is_empty());
    assert!(server.exit_status().is_none(), "still running");
}

/// A TCP server that accepts and never answers.
fn silent_server() -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(4) {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    (addr, handle)
}

#[test]
fn acme_server_down_hanging_or_refusing_is_a_clear_error_never_a_panic() {
    let setup = Setup::new();
    let pebble = Pebble::start(setup.port, PebbleOptions { validity_secs: None, blocklist: vec![HOST.to_string()] });
    let closed = format!("https://127.0.0.1:{}/dir", free_port());
    let (silent, _holder) = silent_server();
    let cases = [
        (closed.as_str(), "", "Connection refused"),
        (&format!("https://{silent}/dir") as &str, "    timeout: 1s\n", "no complete answer within 1s"),
        (pebble.directory_url.as_str(), "", "rejectedIdentifier"),
    ];
    for (directory, extra, cause) in cases {
        let mut server = setup.start(directory, &pebble.https_ca, extra);
        let log = wait_until("the error is logged", Duration::from_secs(30), || {
            let log = server.log();
            if log.contains("letsencrypt: cannot obtain a certificate") {
                Probe::Ready(log)
            } else {
                Probe::NotYet(log)
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(log.contains(cause), "{cause}: {log}");
        assert!(log.contains("retrying in 10s"), "{log}");
        assert!(!log.contains("panicked"), "{log}");
        assert!(server.exit_status().is_none(), "the server keeps running: {log}");
        // No certificate yet: the handshake fails cleanly, nothing is served in plain HTTP.
        assert!(fetch(&setup.addr(), &pebble.issuing_root_pem()).is_err());
        let mut plain = TcpStream::connect(setup.addr()).unwrap();
        plain.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        plain.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        let _ = plain.read_to_end(&mut answer);
        assert!(!String::from_utf8_lossy(&answer).contains("200 OK"), "plain HTTP must not be served");
    }
}
