//! The real binary: docker_auth's invocation, exit codes, signals, first-run certificates,
//! and a unix-socket listener.
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::auth_server::{binary, AuthServer};
use crate::common::{decode_jwt, with_keys, KeyKind, Keys, ADMIN_HASH};
use crate::support::ports::free_port;
use crate::support::temp_dir;

fn small_config() -> String {
    format!(
        "server:\n  addr: \"@ADDR@\"\ntoken:\n  issuer: \"Acme auth server\"\n  expiration: 900\n  certificate: \"@CERT@\"\n  key: \"@KEY@\"\nusers:\n  \"admin\":\n    password: \"{ADMIN_HASH}\"\n  \"\": {{}}\nacl:\n  - match: {{account: \"\"}}\n    actions: [\"pull\"]\n"
    )
}

pub(crate) fn wait_exit(server: &mut AuthServer) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = server.process.exit_status() {
            return status;
        }
        assert!(Instant::now() < deadline, "did not exit:\n{}", server.process.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill").args([sig, &pid.to_string()]).status().unwrap();
    assert!(status.success());
}

#[test]
fn docker_auth_invocation_serves_and_sigterm_drains_with_exit_0() {
    let keys = Keys::new(KeyKind::EcP256);
    let mut server = AuthServer::start(
        &with_keys(&small_config(), &keys),
        false,
        &["--v=2", "-logtostderr", "-stderrthreshold=INFO"],
    );
    let resp = crate::support::http::http_get(&server.addr, "/auth?scope=repository:a/b:pull", &[]).unwrap();
    assert_eq!(resp.status, 200);
    let token: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(decode_jwt(token["token"].as_str().unwrap()).claims["access"][0]["actions"][0], "pull");
    signal(server.process.id(), "-TERM");
    let status = wait_exit(&mut server);
    assert_eq!(status.code(), Some(0), "{}", server.process.log());
    let log = server.process.stderr();
    assert!(log.contains("ignoring glog flag -stderrthreshold"), "{log}");
    assert!(log.contains("token issued"), "{log}");
    assert!(log.contains("Server stopped"), "{log}");
    assert!(log.contains("Running without TLS"), "{log}");
}

/// The server's log goes through a queue and a thread of its own: lines still queued when
/// SIGTERM arrives are written before it exits. 8 clients get 2,000 tokens as fast as they
/// can, the signal follows the last answer at once, and every audit line is there.
#[test]
fn sigterm_writes_every_queued_audit_line() {
    const CLIENTS: usize = 8;
    const EACH: usize = 250;
    let keys = Keys::new(KeyKind::EcP256);
    let mut server = AuthServer::start(&with_keys(&small_config(), &keys), false, &["serve"]);
    let url = format!("http://{}/auth?service=reg&scope=repository:a/b:pull", server.addr);
    std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            let url = url.as_str();
            s.spawn(move || {
                let agent = ureq::agent();
                for _ in 0..EACH {
                    assert_eq!(agent.get(url).call().map(|r| r.status()).map_err(|e| e.to_string()), Ok(200));
                }
            });
        }
    });
    signal(server.process.id(), "-TERM");
    let status = wait_exit(&mut server);
    assert_eq!(status.code(), Some(0), "{}", server.process.log());
    let log = server.process.stderr();
    assert_eq!(log.matches("token issued").count(), CLIENTS * EACH, "every audit line written before the exit");
    assert!(log.contains("Server stopped"), "{log}");
}

#[test]
fn tls_min_version_13_refuses_tls12_clients() {
    let keys = Keys::new(KeyKind::EcP256);
    let yaml = with_keys(&small_config(), &keys).replace(
        "  addr: \"@ADDR@\"",
        "  addr: \"@ADDR@\"\n  certificate: \"@CERT@\"\n  key: \"@KEY@\"\n  tls_min_version: TLS13",
    );
    let server = AuthServer::start(&with_keys(&yaml, &keys), true, &[]);
    let modern = AuthServer::client(&keys.cert).get(&server.realm()).call();
    assert_eq!(modern.map(|r| r.status()).map_err(|e| e.to_string()), Ok(200));
    let old =
        crate::auth_server::client_with_versions(&keys.cert, &[&rustls::version::TLS12]).get(&server.realm()).call();
    assert!(old.is_err(), "a TLS 1.2-only client must be refused");
}

#[test]
fn logs_never_contain_passwords_or_tokens() {
    let keys = Keys::new(KeyKind::EcP256);
    let server = AuthServer::start(&with_keys(&small_config(), &keys), false, &["-v=3"]);
    let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "admin:badmin");
    let auth = format!("Basic {basic}");
    let ok =
        crate::support::http::http_get(&server.addr, "/auth?scope=repository:a/b:pull", &[("Authorization", &auth)])
            .unwrap();
    assert_eq!(ok.status, 200);
    let token: serde_json::Value = serde_json::from_slice(&ok.body).unwrap();
    let wrong = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "admin:s3cret-wrong");
    let denied =
        crate::support::http::http_get(&server.addr, "/auth", &[("Authorization", &format!("Basic {wrong}"))]).unwrap();
    assert_eq!(denied.status, 401);
    let log = server.process.log();
    assert!(log.contains("token issued") && log.contains("wrong password"), "{log}");
    for secret in ["badmin", "s3cret-wrong", &basic, token["token"].as_str().unwrap()] {
        assert!(!log.contains(secret), "log leaks {secret}:\n{log}");
    }
}

#[test]
fn invalid_config_exits_1_listing_every_error() {
    let dir = temp_dir("bad-config");
    let path = dir.path().join("bad.yml");
    std::fs::write(&path, "server:\n  net: udp\ntoken:\n  issuer: x\n  expiration: 60\nusers: {}\nacl:\n  - match: {account:\"admin\"}\n    actions: [\"*\"]\n").unwrap();
    let out = Command::new(binary()).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Failed to load config"), "{stderr}");
    assert!(stderr.contains("server.addr is required"), "{stderr}");
    assert!(stderr.contains("server.net must be unix or tcp (at server.net, line 2)"), "{stderr}");
    assert!(stderr.contains("acl[0].match.account:\"admin\", line 8"), "{stderr}");
    let missing = Command::new(binary()).args(["serve", "/nonexistent/auth.yml"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("could not read /nonexistent/auth.yml"));
}

#[test]
fn first_run_of_the_default_config_generates_its_certificate() {
    let dir = temp_dir("default-config");
    let default = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/auth_config.yml")).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    assert!(default.contains("addr: \":5001\""));
    std::fs::create_dir_all(dir.path().join("config")).unwrap();
    std::fs::write(dir.path().join("config/auth_config.yml"), default.replace("\":5001\"", &format!("\"{addr}\"")))
        .unwrap();
    let mut command = Command::new(binary());
    command.current_dir(dir.path());
    let server = AuthServer::spawn(command, addr, true, dir);
    let ssl = server.dir.path().join("ssl");
    let mode = std::fs::metadata(ssl.join("server.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(server.process.stderr().contains("generated a self-signed certificate"));
    let client = AuthServer::client(&ssl.join("server.pem"));
    let body: serde_json::Value =
        client.get(&server.realm()).query("service", "Docker registry").call().unwrap().into_json().unwrap();
    let keys = Keys { cert: ssl.join("server.pem"), key: ssl.join("server.key"), _dir: temp_dir("unused") };
    crate::common::verify_jwt(body["token"].as_str().unwrap(), &keys, "Docker registry");
}

#[test]
fn unix_socket_listener_has_no_client_ip() {
    let keys = Keys::new(KeyKind::EcP256);
    let dir = temp_dir("unix");
    let socket = dir.path().join("auth.sock");
    std::fs::write(&socket, b"stale").unwrap();
    let yaml = with_keys(&small_config(), &keys)
        .replace("  addr: \"@ADDR@\"", &format!("  addr: \"{}\"\n  net: unix", socket.display()))
        .replace("acl:\n", "acl:\n  - match: {ip: \"0.0.0.0/0\"}\n    actions: [\"push\"]\n");
    let config = dir.path().join("auth.yml");
    std::fs::write(&config, yaml).unwrap();
    let mut process = crate::support::process::ChildGuard::spawn(
        "registry-auth",
        {
            let mut c = Command::new(binary());
            c.arg(&config);
            c
        },
        dir.path(),
    );
    let response = process
        .wait_ready("socket answers", Duration::from_secs(20), || {
            match unix_get(&socket, "/auth?scope=repository:a/b:pull,push") {
                Ok(r) => crate::support::ports::Probe::Ready(r),
                Err(e) => crate::support::ports::Probe::NotYet(e),
            }
        })
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    let token: serde_json::Value = serde_json::from_str(body).unwrap();
    let access = decode_jwt(token["token"].as_str().unwrap()).claims["access"].clone();
    assert_eq!(access[0]["actions"], serde_json::json!(["pull"]), "the ip rule must not match a unix peer");
}

fn unix_get(socket: &std::path::Path, path: &str) -> Result<String, String> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").map_err(|e| e.to_string())?;
    let mut out = String::new();
    stream.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// A client that never finishes its request head is cut off, so it cannot pin a worker;
/// an oversized header is refused with a 4xx.
#[test]
fn slow_and_oversized_requests_are_cut_off() {
    let keys = Keys::new(KeyKind::EcP256);
    let server = AuthServer::start(&with_keys(&small_config(), &keys), false, &[]);
    let mut slow = std::net::TcpStream::connect(&server.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    slow.write_all(b"GET /auth HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = Instant::now();
    let mut reply = Vec::new();
    let _ = slow.read_to_end(&mut reply);
    let waited = started.elapsed();
    assert!(waited < Duration::from_secs(12), "slow client held the connection for {waited:?}");
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.is_empty() || reply.starts_with("HTTP/1.1 408"), "{reply}");

    let big = "x".repeat(64 * 1024);
    let resp = crate::support::http::http_get(&server.addr, "/auth", &[("X-Big", &big)]);
    match resp {
        Ok(r) => assert_eq!(r.status, 431),
        Err(e) => {
            assert!(matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe), "{e}")
        }
    }
    let ok = crate::support::http::http_get(&server.addr, "/", &[]).unwrap();
    assert_eq!(ok.status, 200, "the server still serves");
}
