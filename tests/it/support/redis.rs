//! A real Debian `redis-server` on 127.0.0.1 and a random port, in a temp dir, killed on
//! drop; optionally with a password, TLS (a CA generated here) or as a 3-node Redis
//! Cluster (`redis-server --cluster-enabled yes` ×3 + `redis-cli --cluster create`).
//! Persistence is an fsynced append-only file, so that a restart keeps every write the
//! server acknowledged (the property the store tests check).
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::ports::{free_port, wait_until, Probe};
use super::process::{require_program, ChildGuard};
use super::temp_dir;

#[derive(Debug, Clone, Default)]
pub struct RedisOptions {
    pub password: Option<String>,
    pub tls: bool,
    pub cluster: bool,
}

pub struct RedisServer {
    process: Option<ChildGuard>,
    pub port: u16,
    pub options: RedisOptions,
    dir: TempDir,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(RedisOptions::default())
    }

    pub fn start_with(options: RedisOptions) -> RedisServer {
        let dir = temp_dir("redis");
        if options.tls {
            write_tls_files(dir.path());
        }
        let mut server = RedisServer { process: None, port: free_port(), options, dir };
        server.launch();
        server
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA that signed the TLS certificate (when started with `tls`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn launch(&mut self) {
        let d = self.dir.path().display().to_string();
        let mut command = Command::new(require_program("redis-server"));
        command.args(["--bind", "127.0.0.1", "--dir", &d, "--save", "", "--appendonly", "yes"]);
        command.args(["--appendfsync", "always", "--daemonize", "no", "--protected-mode", "no", "--logfile", ""]);
        if self.options.tls {
            let port = self.port.to_string();
            command.args(["--port", "0", "--tls-port", &port, "--tls-auth-clients", "no"]);
            command.args(["--tls-cert-file", &format!("{d}/server.pem"), "--tls-key-file", &format!("{d}/server.key")]);
            command.args(["--tls-ca-cert-file", &format!("{d}/ca.pem")]);
            if self.options.cluster {
                command.args(["--tls-cluster", "yes"]);
            }
        } else {
            command.args(["--port", &self.port.to_string()]);
        }
        if let Some(password) = &self.options.password {
            command.args(["--requirepass", password]);
            if self.options.cluster {
                command.args(["--masterauth", password]);
            }
        }
        if self.options.cluster {
            command.args(["--cluster-enabled", "yes", "--cluster-config-file", &format!("{d}/nodes.conf")]);
            command.args(["--cluster-node-timeout", "2000"]);
        }
        let mut process = ChildGuard::spawn("redis-server", command, self.dir.path());
        let addr = self.addr();
        let tls = self.options.tls;
        let password = self.options.password.clone();
        process
            .wait_ready("PING answers", Duration::from_secs(20), || {
                if tls {
                    // No TLS client here: a listening port is enough (the store tests then talk TLS).
                    return match TcpStream::connect(&addr) {
                        Ok(_) => Probe::Ready(()),
                        Err(e) => Probe::NotYet(e.to_string()),
                    };
                }
                match command_reply(&addr, password.as_deref(), &["PING"]) {
                    Ok(reply) if reply == "+PONG" => Probe::Ready(()),
                    Ok(reply) => Probe::NotYet(reply),
                    Err(e) => Probe::NotYet(e),
                }
            })
            .unwrap_or_else(|e| panic!("{e}"));
        self.process = Some(process);
    }

    /// SIGKILL: the server vanishes mid-run, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Starts again on the same port and data directory (after [`RedisServer::kill`]).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// One command over plain RESP (not for TLS servers); the first reply line.
    pub fn command(&self, args: &[&str]) -> String {
        command_reply(&self.addr(), self.options.password.as_deref(), args).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn log(&self) -> String {
        self.process.as_ref().map(ChildGuard::log).unwrap_or_default()
    }
}

/// Sends AUTH (if any) and one command; returns the first line of the last reply.
fn command_reply(addr: &str, password: Option<&str>, args: &[&str]) -> Result<String, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut send = |args: &[&str]| -> Result<String, String> {
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        if let Some(len) = line.strip_prefix('$').and_then(|l| l.trim().parse::<usize>().ok()) {
            let mut body = vec![0; len + 2];
            reader.read_exact(&mut body).map_err(|e| e.to_string())?;
            return Ok(String::from_utf8_lossy(&body[..len]).into_owned());
        }
        Ok(line.trim_end().to_string())
    };
    if let Some(password) = password {
        send(&["AUTH", password])?;
    }
    send(args)
}

/// Three masters, slots spread by `redis-cli --cluster create`, cluster state ok.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    pub fn start() -> RedisCluster {
        Self::start_with(RedisOptions { cluster: true, ..RedisOptions::default() })
    }

    pub fn start_with(options: RedisOptions) -> RedisCluster {
        let options = RedisOptions { cluster: true, ..options };
        let nodes: Vec<RedisServer> = (0..3).map(|_| RedisServer::start_with(options.clone())).collect();
        let mut command = Command::new(require_program("redis-cli"));
        command.arg("--cluster").arg("create");
        command.args(nodes.iter().map(RedisServer::addr));
        command.args(["--cluster-replicas", "0", "--cluster-yes"]);
        if let Some(password) = &options.password {
            command.args(["-a", password, "--no-auth-warning"]);
        }
        let output = command.output().unwrap_or_else(|e| panic!("redis-cli --cluster create: {e}"));
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_state_ok();
        cluster
    }

    /// Waits until every node says `cluster_state:ok` (after a start or a restart, the
    /// nodes serve only once they have seen each other again).
    pub fn wait_state_ok(&self) {
        for node in &self.nodes {
            wait_until("cluster_state:ok", Duration::from_secs(20), || {
                let info = node.command(&["CLUSTER", "INFO"]);
                if info.contains("cluster_state:ok") {
                    Probe::Ready(())
                } else {
                    Probe::NotYet(info)
                }
            })
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }

    pub fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::addr).collect()
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it.
fn write_tls_files(dir: &Path) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "registry-auth redis test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "127.0.0.1");
    let server = params.signed_by(&server_key, &ca, &ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
}
