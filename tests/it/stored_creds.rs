//! Shared fixture of the identity-token and robot tests: our binary with a store (embedded
//! in its temp dir, or a real redis-server), static users, an ACL, and helpers for the
//! token endpoint and the store subcommands.
use std::process::Command;

use serde_json::Value;

use crate::auth_server::{binary, AuthServer};
use crate::common::{decode_jwt, with_keys, KeyKind, Keys, ADMIN_HASH, TEST_HASH};

pub const SERVICE: &str = "Docker registry";

/// Which store engine a scenario runs on.
#[derive(Debug, Clone)]
pub enum Engine {
    /// `store: {path: <server dir>/data}`.
    Embedded,
    /// `store: {redis: {addr: ...}}` with this address and key prefix.
    Redis { addr: String, prefix: String },
    /// `store: {redis_cluster: {addrs: [...]}}`.
    RedisCluster { addrs: Vec<String> },
}

impl Engine {
    fn yaml(&self) -> String {
        match self {
            Engine::Embedded => "store:\n  path: \"@DIR@/data\"\n".to_string(),
            Engine::Redis { addr, prefix } => {
                format!("store:\n  redis:\n    addr: \"{addr}\"\n    key_prefix: \"{prefix}\"\n")
            }
            Engine::RedisCluster { addrs } => format!("store:\n  redis_cluster:\n    addrs: {addrs:?}\n"),
        }
    }
}

/// The users and ACL every scenario shares; `extra_users` adds entries under `users:`.
pub fn config(keys: &Keys, engine: &Engine, extra_users: &str) -> String {
    config_with(keys, engine, extra_users, "", "")
}

/// [`config`] with lines added under `server:` and top-level sections after `acl:`.
pub fn config_with(keys: &Keys, engine: &Engine, extra_users: &str, server_extra: &str, sections: &str) -> String {
    let yaml = format!(
        r#"server:
  addr: "@ADDR@"
{server_extra}token:
  issuer: "Acme auth server"
  expiration: 900
  certificate: "@CERT@"
  key: "@KEY@"
{store}identity_tokens:
  lifetime: 90d
  idle_timeout: 30d
users:
  "admin":
    password: "{ADMIN_HASH}"
  "test":
    password: "{TEST_HASH}"
    labels:
      group: ["devs"]
{extra_users}acl:
  - match: {{account: "admin"}}
    actions: ["*"]
  - match: {{account: "robot$ci", name: "team/locked"}}
    actions: ["pull"]
    comment: "the operator narrows one robot further"
  - match: {{labels: {{kind: "robot"}}, name: "team/*"}}
    actions: ["pull", "push"]
  - match: {{account: "/^[a-z]+$/", name: "${{account}}/*"}}
    actions: ["pull", "push"]
  - match: {{name: "${{labels:group}}/*"}}
    actions: ["pull"]
{sections}"#,
        store = engine.yaml()
    );
    with_keys(&yaml, keys)
}

pub struct Fixture {
    pub keys: Keys,
    pub server: AuthServer,
    pub http: ureq::Agent,
}

impl Fixture {
    pub fn start(engine: &Engine, extra_users: &str) -> Fixture {
        let keys = Keys::new(KeyKind::EcP256);
        let server = start_server(&config(&keys, engine, extra_users), false);
        Fixture { keys, server, http: ureq::AgentBuilder::new().build() }
    }

    /// [`Fixture::start`] with [`config_with`]'s additions.
    pub fn start_with(engine: &Engine, extra_users: &str, server_extra: &str, sections: &str) -> Fixture {
        let keys = Keys::new(KeyKind::EcP256);
        let server = start_server(&config_with(&keys, engine, extra_users, server_extra, sections), false);
        Fixture { keys, server, http: ureq::AgentBuilder::new().build() }
    }

    pub fn url(&self) -> String {
        self.server.realm()
    }

    /// `registry-auth <args> --config <this server's config>`: (success, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        cli(&self.server, args)
    }
}

/// Starts our binary with `yaml` (`@DIR@` becomes its temp dir).
pub fn start_server(yaml: &str, tls: bool) -> AuthServer {
    let dir = crate::support::temp_dir("auth-server");
    let addr = format!("127.0.0.1:{}", crate::support::ports::free_port());
    let path = dir.path().join("auth_config.yml");
    let text = yaml.replace("@ADDR@", &addr).replace("@DIR@", &dir.path().display().to_string());
    std::fs::write(&path, text).unwrap();
    let mut command = Command::new(binary());
    command.arg("serve").arg(&path).env_remove("RUST_LOG");
    AuthServer::spawn(command, addr, tls, dir)
}

pub fn cli(server: &AuthServer, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(binary())
        .args(args)
        .arg("--config")
        .arg(server.dir.path().join("auth_config.yml"))
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

/// The secret printed by `robot create` / `robot rotate`.
pub fn printed_secret(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("secret:"))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no secret in {stdout}"))
}

/// (status, JSON body or {"text": body}).
pub fn call(req: ureq::Request, form: Option<&[(&str, &str)]>) -> (u16, Value) {
    let result = match form {
        Some(form) => req.send_form(form),
        None => req.call(),
    };
    let (status, body) = match result {
        Ok(resp) => (resp.status(), resp.into_string().unwrap()),
        Err(ureq::Error::Status(code, resp)) => (code, resp.into_string().unwrap()),
        Err(e) => panic!("{e}"),
    };
    let json = serde_json::from_str(&body).unwrap_or_else(|_| serde_json::json!({ "text": body }));
    (status, json)
}

pub fn basic(user: &str, password: &str) -> String {
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// `(sub, actions of the first access entry)` of a token response.
pub fn granted(body: &Value) -> (String, Vec<String>) {
    let claims = decode_jwt(body["token"].as_str().unwrap_or_else(|| panic!("no token in {body}"))).claims;
    let actions = claims["access"][0]["actions"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    (claims["sub"].as_str().unwrap().to_string(), actions)
}
