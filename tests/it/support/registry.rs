//! The stock Docker registry on a random loopback port, configured for token auth:
//! distribution 2.8.2 (Debian `docker-registry`) or 3.0.0 / 3.1.1 (see [`Version`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::http::http_get;
use super::ports::{free_port, Probe};
use super::process::{require_program, ChildGuard};
use super::temp_dir;

use super::registry3;

pub use registry3::Version;

const PROGRAM: &str = "docker-registry";
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts when another process grabs the chosen port before the registry
/// binds it (see `free_port`).
const START_ATTEMPTS: usize = 3;

/// The `auth.token` section: where clients get tokens and how the registry
/// verifies them.
#[derive(Clone, Debug)]
pub struct RegistryAuth {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    /// PEM certificate(s) whose keys may sign tokens.
    pub rootcertbundle: PathBuf,
}

/// `auth.token` for any version: 3.x takes a `jwks` file beside or instead of the bundle.
#[derive(Clone, Debug)]
pub struct TokenTrust {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    pub rootcertbundle: Option<PathBuf>,
    pub jwks: Option<PathBuf>,
}

impl From<RegistryAuth> for TokenTrust {
    fn from(auth: RegistryAuth) -> TokenTrust {
        TokenTrust {
            realm: auth.realm,
            service: auth.service,
            issuer: auth.issuer,
            rootcertbundle: Some(auth.rootcertbundle),
            jwks: None,
        }
    }
}

enum AuthSetup {
    Token(TokenTrust),
    Disabled,
    /// No auth section in the file; the caller's `REGISTRY_*` env vars rule.
    Env(Vec<(String, String)>),
}

/// A running registry, killed (and its storage removed) on drop.
pub struct Registry {
    // Declared before `dir` so the registry stops before its files vanish.
    process: ChildGuard,
    port: u16,
    data: PathBuf,
    dir: TempDir,
}

impl Registry {
    /// Starts a registry that demands tokens from `auth.realm`; returns once
    /// `GET /v2/` answers 401.
    pub fn start(auth: RegistryAuth) -> Registry {
        Self::launch(AuthSetup::Token(auth.into()))
    }

    /// Starts registry `version` trusting `trust`, on `data_dir` (shared storage, e.g. for
    /// a replacement instance) or a fresh one; returns once `GET /v2/` answers 401.
    pub fn start_version(version: Version, trust: TokenTrust, data_dir: Option<&Path>) -> Registry {
        Self::launch_version(version, AuthSetup::Token(trust), data_dir)
    }

    /// [`Registry::start_version`] with top-level config sections `extra` appended to its
    /// file (e.g. `middleware:`).
    pub fn start_version_with_config(
        version: Version,
        trust: TokenTrust,
        data_dir: Option<&Path>,
        extra: &str,
    ) -> Registry {
        Self::launch_with(version, AuthSetup::Token(trust), data_dir, extra)
    }

    /// [`Registry::start_with_env`] for registry `version`.
    pub fn start_version_with_env(version: Version, env: Vec<(String, String)>) -> Registry {
        Self::launch_version(version, AuthSetup::Env(env), None)
    }

    /// Starts a registry without any auth; returns once `GET /v2/` answers 200.
    pub fn start_without_auth() -> Registry {
        Self::launch(AuthSetup::Disabled)
    }

    /// Like [`Registry::start_without_auth`], serving the storage in `data_dir` (e.g. a
    /// restored backup) instead of a fresh one.
    pub fn start_without_auth_on(data_dir: &Path) -> Registry {
        Self::launch_on(AuthSetup::Disabled, Some(data_dir))
    }

    /// Starts a registry from a config file without an auth section, with
    /// `env` added to its environment (e.g. `REGISTRY_AUTH_TOKEN_REALM`), as
    /// container deployments configure it. Ready means `GET /v2/` answers 401
    /// when any `REGISTRY_AUTH*` variable is given, 200 otherwise.
    pub fn start_with_env<K: Into<String>, V: Into<String>>(env: Vec<(K, V)>) -> Registry {
        let env = env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        Self::launch(AuthSetup::Env(env))
    }

    /// "127.0.0.1:<port>"
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// "http://127.0.0.1:<port>"
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Root of the filesystem storage driver.
    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    /// The registry's output so far: access log (stdout) and app log (stderr).
    pub fn log(&self) -> String {
        self.process.log()
    }

    fn launch(setup: AuthSetup) -> Registry {
        Self::launch_on(setup, None)
    }

    fn launch_on(setup: AuthSetup, data_dir: Option<&Path>) -> Registry {
        Self::launch_version(Version::V2_8_2, setup, data_dir)
    }

    fn launch_version(version: Version, setup: AuthSetup, data_dir: Option<&Path>) -> Registry {
        Self::launch_with(version, setup, data_dir, "")
    }

    fn launch_with(version: Version, setup: AuthSetup, data_dir: Option<&Path>, extra: &str) -> Registry {
        let program = match version {
            Version::V2_8_2 => require_program(PROGRAM),
            v3 => registry3::binary(v3),
        };
        let name = version.program_name();
        let expected_status = match &setup {
            AuthSetup::Token(_) => 401,
            AuthSetup::Disabled => 200,
            AuthSetup::Env(env) => {
                if env.iter().any(|(key, _)| key.starts_with("REGISTRY_AUTH")) {
                    401
                } else {
                    200
                }
            }
        };
        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let dir = temp_dir("registry");
            let port = free_port();
            let data = data_dir.map_or_else(|| dir.path().join("data"), Path::to_path_buf);
            let mut config = config_yaml(&data, port, &setup);
            config.push_str(extra);
            let config_path = dir.path().join("config.yml");
            fs::write(&config_path, config).unwrap_or_else(|e| panic!("cannot write {}: {e}", config_path.display()));
            let mut process = ChildGuard::spawn(name, command(&program, &config_path, &setup), dir.path());
            let addr = format!("127.0.0.1:{port}");
            let ready = process.wait_ready(&format!("GET /v2/ answers {expected_status}"), START_TIMEOUT, || {
                probe_base(&addr, expected_status)
            });
            if let Err(e) = ready {
                let port_race = process.log().contains("address already in use");
                // Its log is already in `e`; dropping first avoids printing it twice.
                drop(process);
                if !port_race {
                    panic!("{name} did not start: {e}");
                }
                last_error = e;
                continue;
            }
            return Registry { process, port, data, dir };
        }
        panic!("{name} did not start after {START_ATTEMPTS} port races: {last_error}")
    }
}

fn command(program: &Path, config_path: &Path, setup: &AuthSetup) -> Command {
    let mut command = Command::new(program);
    command.arg("serve").arg(config_path);
    // The registry overrides its config with any REGISTRY_* variable, so one
    // left in the developer's shell must not leak into the test.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("REGISTRY_") {
            command.env_remove(key);
        }
    }
    // registry 3.x would export a trace span per request to localhost:4318 (2.8 ignores it).
    command.env("OTEL_TRACES_EXPORTER", "none");
    if let AuthSetup::Env(env) = setup {
        command.envs(env.iter().map(|(k, v)| (k, v)));
    }
    command
}

fn probe_base(addr: &str, expected_status: u16) -> Probe<()> {
    match http_get(addr, "/v2/", &[]) {
        Ok(response) if response.status == expected_status => Probe::Ready(()),
        // A wrong status will not fix itself: the auth setup is not in effect.
        Ok(response) => Probe::Failed(format!(
            "GET /v2/ answered {} (expected {expected_status}); WWW-Authenticate: {:?}",
            response.status,
            response.header("www-authenticate")
        )),
        Err(e) => Probe::NotYet(e.to_string()),
    }
}

/// YAML double-quoted scalars accept JSON string syntax, so JSON quoting
/// makes any path or URL safe to embed.
fn quoted(value: &str) -> String {
    serde_json::Value::from(value).to_string()
}

fn config_yaml(data_dir: &Path, port: u16, setup: &AuthSetup) -> String {
    let mut yaml = format!(
        r"version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: {data}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {addr}
  secret: registry-auth-integration-tests
health:
  storagedriver:
    enabled: false
",
        data = quoted(&data_dir.to_string_lossy()),
        addr = quoted(&format!("127.0.0.1:{port}")),
    );
    if let AuthSetup::Token(auth) = setup {
        yaml.push_str(&format!(
            r"auth:
  token:
    realm: {realm}
    service: {service}
    issuer: {issuer}
",
            realm = quoted(&auth.realm),
            service = quoted(&auth.service),
            issuer = quoted(&auth.issuer),
        ));
        for (key, path) in [("rootcertbundle", &auth.rootcertbundle), ("jwks", &auth.jwks)] {
            if let Some(path) = path {
                yaml.push_str(&format!("    {key}: {}\n", quoted(&path.to_string_lossy())));
            }
        }
    }
    yaml
}
