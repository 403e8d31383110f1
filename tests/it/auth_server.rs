//! Our own binary as a child process: written config, random port, readiness probe.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;

use crate::support::ports::{free_port, Probe};
use crate::support::process::ChildGuard;
use crate::support::temp_dir;

pub struct AuthServer {
    pub process: ChildGuard,
    pub addr: String,
    pub tls: bool,
    pub dir: TempDir,
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_registry-auth"))
}

impl AuthServer {
    /// Writes `yaml` (with `@ADDR@` replaced by a free loopback address) and runs
    /// `registry-auth <args...> <config>`; returns once `GET /` answers.
    pub fn start(yaml: &str, tls: bool, args: &[&str]) -> AuthServer {
        Self::start_probing(yaml, tls, args, "/")
    }

    /// [`AuthServer::start`] with readiness on `probe_path` (e.g. under a `path_prefix`).
    pub fn start_probing(yaml: &str, tls: bool, args: &[&str], probe_path: &str) -> AuthServer {
        let dir = temp_dir("auth-server");
        let addr = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("auth_config.yml");
        std::fs::write(&config, yaml.replace("@ADDR@", &addr)).unwrap();
        let mut command = Command::new(binary());
        command.args(args).arg(&config).env_remove("RUST_LOG");
        Self::spawn_probing(command, addr, tls, dir, probe_path)
    }

    /// `registry-auth serve <config>` (written already, in `dir`) at `addr`, logging at
    /// info; returns once `/healthz` answers.
    pub fn serve(addr: &str, config: &Path, dir: TempDir) -> AuthServer {
        Self::spawn_probing(serve_command(config), addr.to_string(), false, dir, "/healthz")
    }

    pub fn spawn(command: Command, addr: String, tls: bool, dir: TempDir) -> AuthServer {
        Self::spawn_probing(command, addr, tls, dir, "/")
    }

    pub fn spawn_probing(command: Command, addr: String, tls: bool, dir: TempDir, probe_path: &str) -> AuthServer {
        let mut process = ChildGuard::spawn("registry-auth", command, dir.path());
        let probe_addr = addr.clone();
        process
            .wait_ready("GET / answers", Duration::from_secs(20), || match index_status(&probe_addr, tls, probe_path) {
                Ok(200) => Probe::Ready(()),
                Ok(status) => Probe::Failed(format!("GET {probe_path} answered {status}")),
                Err(e) => Probe::NotYet(e),
            })
            .unwrap_or_else(|e| panic!("{e}"));
        AuthServer { process, addr, tls, dir }
    }

    pub fn realm(&self) -> String {
        format!("{}://{}/auth", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// An HTTP client that trusts `ca` (our self-signed certificate).
    pub fn client(ca: &Path) -> ureq::Agent {
        client_with_versions(ca, rustls::DEFAULT_VERSIONS)
    }
}

/// `registry-auth serve <config>` with `RUST_LOG=info` (the log tests read).
pub fn serve_command(config: &Path) -> Command {
    let mut command = Command::new(binary());
    command.arg("serve").arg(config).env("RUST_LOG", "info");
    command
}

/// An HTTP client that trusts `ca` and speaks only the given TLS versions.
pub fn client_with_versions(ca: &Path, versions: &[&'static rustls::SupportedProtocolVersion]) -> ureq::Agent {
    let pem = std::fs::read(ca).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    ureq::AgentBuilder::new().tls_config(Arc::new(config)).timeout(Duration::from_secs(20)).build()
}

fn index_status(addr: &str, tls: bool, path: &str) -> Result<u16, String> {
    if !tls {
        return crate::support::http::http_get(addr, path, &[]).map(|r| r.status).map_err(|e| e.to_string());
    }
    // Readiness only: the certificate is checked by the tests that fetch tokens.
    std::net::TcpStream::connect(addr).map(|_| 200).map_err(|e| e.to_string())
}
