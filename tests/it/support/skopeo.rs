//! Runs the real `skopeo` (1.9.3) against loopback registries, isolated from
//! the machine's containers config, credentials and blob-info cache.

use std::cell::Cell;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::process::require_program;
use super::temp_dir;

/// Bounds a hung transfer so a test fails instead of hanging forever.
const COMMAND_TIMEOUT: &str = "120s";

/// Registry credentials for one side of a skopeo call.
#[derive(Clone, Copy, Debug)]
pub enum Creds<'a> {
    /// `--no-creds`: anonymous token requests.
    Anonymous,
    /// `--creds user:password`
    Basic(&'a str, &'a str),
    /// Whatever the auth file holds (see [`Skopeo::store_identity_token`]).
    AuthFile,
}

/// "docker://<addr>/<repo>:<tag>"
pub fn docker_ref(addr: &str, repo: &str, tag: &str) -> String {
    format!("docker://{addr}/{repo}:{tag}")
}

/// A skopeo runner with a private HOME, XDG dirs, auth file, policy and
/// registries config.
///
/// containers/image remembers which repositories hold a blob (the blob-info
/// cache) and then tries a cross-repository mount instead of an upload. By
/// default every call gets a fresh cache, so pushes are independent;
/// [`Skopeo::with_shared_cache`] keeps one cache for all calls of this value.
pub struct Skopeo {
    program: PathBuf,
    root: TempDir,
    shared_cache: bool,
    calls: Cell<u32>,
}

impl Skopeo {
    /// Every call starts with an empty blob-info cache.
    pub fn new() -> Skopeo {
        Self::create(false)
    }

    /// All calls share one blob-info cache (needed to provoke a blob mount).
    pub fn with_shared_cache() -> Skopeo {
        Self::create(true)
    }

    fn create(shared_cache: bool) -> Skopeo {
        let program = require_program("skopeo");
        let root = temp_dir("skopeo");
        let dir = root.path();
        for sub in ["home", "config", "cache", "run", "tmp", "registries.d"] {
            create_dir(&dir.join(sub));
        }
        // containers/image refuses a runtime dir that others can read.
        fs::set_permissions(dir.join("run"), fs::Permissions::from_mode(0o700))
            .unwrap_or_else(|e| panic!("cannot chmod skopeo run dir: {e}"));
        write(&dir.join("auth.json"), r#"{"auths":{}}"#);
        write(&dir.join("policy.json"), r#"{"default":[{"type":"insecureAcceptAnything"}]}"#);
        write(&dir.join("registries.conf"), "unqualified-search-registries = []\n");
        Skopeo { program, root, shared_cache, calls: Cell::new(0) }
    }

    /// `skopeo copy <src> <dest>`, e.g. from `OciImage::oci_ref()` to
    /// `docker_ref(..)`, docker to docker, or docker to "oci:<dir>:<tag>".
    pub fn copy(&self, src: &str, dest: &str, src_creds: Creds, dest_creds: Creds) -> Result<String, String> {
        let mut args = strings(&["copy", "--src-tls-verify=false", "--dest-tls-verify=false"]);
        args.extend(creds_args("src-", src_creds));
        args.extend(creds_args("dest-", dest_creds));
        args.extend(strings(&[src, dest]));
        self.run(&args)
    }

    /// `skopeo inspect --raw docker://...`: the manifest bytes as stored.
    pub fn inspect_raw(&self, image: &str, creds: Creds) -> Result<String, String> {
        let mut args = strings(&["inspect", "--raw", "--tls-verify=false"]);
        args.extend(creds_args("", creds));
        args.push(image.to_owned());
        self.run(&args)
    }

    /// `skopeo list-tags docker://<addr>/<repo>`: JSON `{"Repository":..,"Tags":[..]}`.
    pub fn list_tags(&self, repo_ref: &str, creds: Creds) -> Result<String, String> {
        let mut args = strings(&["list-tags", "--tls-verify=false"]);
        args.extend(creds_args("", creds));
        args.push(repo_ref.to_owned());
        self.run(&args)
    }

    /// Runs `skopeo <args>` (a subcommand first) in the isolated environment,
    /// adding `--authfile` and `--retry-times 0` after the subcommand.
    /// Ok(stdout) on success, Err(stderr) otherwise.
    pub fn run(&self, args: &[String]) -> Result<String, String> {
        let (subcommand, rest) = args.split_first().unwrap_or_else(|| panic!("skopeo needs a subcommand"));
        let dir = self.root.path();
        let output = self
            .command()
            .arg(subcommand)
            .arg("--authfile")
            .arg(dir.join("auth.json"))
            // One failed request must stay one failure, not three.
            .args(["--retry-times", "0"])
            .args(rest)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.program.display()));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(stderr)
        }
    }

    /// Writes an auth file entry for `registry` (host:port) holding an identity token and
    /// no password, as `docker login` leaves it when the server returned a refresh token:
    /// `auth` is base64 of `user:` (containers/image ignores an entry without it).
    pub fn store_identity_token(&self, registry: &str, user: &str, token: &str) {
        let auth_field = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{user}:"));
        let auth = serde_json::json!({"auths": {registry: {"auth": auth_field, "identitytoken": token}}});
        write(&self.root.path().join("auth.json"), &auth.to_string());
    }

    /// The blob-info cache the next call will use.
    pub fn cache_dir(&self) -> PathBuf {
        if self.shared_cache {
            self.root.path().join("shared-data")
        } else {
            self.root.path().join(format!("call-{}-data", self.calls.get()))
        }
    }

    fn command(&self) -> Command {
        let dir = self.root.path();
        let data_home = self.cache_dir();
        self.calls.set(self.calls.get() + 1);
        let mut command = Command::new(&self.program);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.join("home"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .env("XDG_DATA_HOME", &data_home)
            .env("TMPDIR", dir.join("tmp"))
            .env("REGISTRY_AUTH_FILE", dir.join("auth.json"))
            .env("CONTAINERS_REGISTRIES_CONF", dir.join("registries.conf"))
            // As root, containers/image keeps the blob-info cache in
            // /var/lib/containers, shared by every run; a non-zero "rootless"
            // uid makes it use $XDG_DATA_HOME instead.
            .env("_CONTAINERS_ROOTLESS_UID", "65534")
            .arg("--policy")
            .arg(dir.join("policy.json"))
            .arg("--registries.d")
            .arg(dir.join("registries.d"))
            .arg("--tmpdir")
            .arg(dir.join("tmp"))
            .args(["--command-timeout", COMMAND_TIMEOUT]);
        command
    }
}

impl Default for Skopeo {
    fn default() -> Self {
        Self::new()
    }
}

fn creds_args(prefix: &str, creds: Creds) -> Vec<String> {
    match creds {
        Creds::Anonymous => vec![format!("--{prefix}no-creds")],
        Creds::Basic(user, password) => {
            vec![format!("--{prefix}creds"), format!("{user}:{password}")]
        }
        Creds::AuthFile => Vec::new(),
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn create_dir(path: &Path) {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
