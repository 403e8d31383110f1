//! Signing-key rotation without downtime (README "Key rotation"), on the real binary
//! with skopeo pulling in a loop from a real registry: 2.8.2 trusting a PEM bundle
//! (`registry-auth bundle`, tokens with x5c) and 3.1.1 trusting a JWKS (`registry-auth
//! jwks`, kid-only tokens). Every step of the procedure runs while the pulls go on; a
//! registry "restart" is blue-green (a new instance on the same storage takes the traffic,
//! the old one is drained, then stopped), as a rolling restart behind a balancer is.
//! Not one pull may fail.
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::auth_server::AuthServer;
use crate::common::{decode_jwt, ADMIN_HASH};
use crate::e2e::{run_cli, ISSUER, SERVICE};
use crate::reload::{replace_file, wait_for_reloads};
use crate::support::http::http_get;
use crate::support::oci::write_oci_layout;
use crate::support::registry::{Registry, TokenTrust, Version};
use crate::support::skopeo::{docker_ref, Creds, Skopeo};
use crate::support::temp_dir;

/// Short, so that the wait before removing the old key stays short.
const LIFETIME_SECS: u64 = 3;
/// Bounds of the pull loop.
const MAX_PULLS: usize = 400;
const MAX_TIME: Duration = Duration::from_secs(240);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Trust {
    Bundle,
    Jwks,
}

fn config(cert: &Path, key: &Path, verification: &[&Path], trust: Trust) -> String {
    let x5c = if trust == Trust::Bundle { "  x5c: true\n" } else { "" };
    let list: Vec<String> = verification.iter().map(|p| format!("\"{}\"", p.display())).collect();
    let verification =
        if list.is_empty() { String::new() } else { format!("  verification_certificates: [{}]\n", list.join(", ")) };
    format!(
        "server:\n  addr: \"@ADDR@\"\ntoken:\n  issuer: \"{ISSUER}\"\n  expiration: {LIFETIME_SECS}\n  certificate: \"{}\"\n  key: \"{}\"\n{x5c}{verification}users:\n  \"admin\":\n    password: \"{ADMIN_HASH}\"\nacl:\n  - match: {{account: \"admin\"}}\n    actions: [\"*\"]\n",
        cert.display(),
        key.display()
    )
}

/// The registry currently in service, by generation; pulls register under the generation
/// they started with, so a replaced instance is stopped only once its pulls are done.
struct Balancer {
    current: Mutex<(usize, String)>,
    in_flight: Mutex<HashMap<usize, usize>>,
    pulls_by_generation: Mutex<HashMap<usize, usize>>,
}

impl Balancer {
    fn checkout(&self) -> (usize, String) {
        let current = self.current.lock().unwrap().clone();
        *self.in_flight.lock().unwrap().entry(current.0).or_default() += 1;
        current
    }

    fn done(&self, generation: usize) {
        *self.in_flight.lock().unwrap().entry(generation).or_default() -= 1;
        *self.pulls_by_generation.lock().unwrap().entry(generation).or_default() += 1;
    }

    fn pulls(&self, generation: usize) -> usize {
        self.pulls_by_generation.lock().unwrap().get(&generation).copied().unwrap_or(0)
    }

    /// Sends new pulls to `addr`, then waits until no pull uses an older instance.
    fn switch(&self, addr: String) -> usize {
        let generation = {
            let mut current = self.current.lock().unwrap();
            *current = (current.0 + 1, addr);
            current.0
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.in_flight.lock().unwrap().iter().any(|(g, n)| *g < generation && *n > 0) {
            assert!(Instant::now() < deadline, "pulls on the old registry never finished");
            std::thread::sleep(Duration::from_millis(20));
        }
        generation
    }
}

struct Loop {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(usize, Vec<String>)>,
}

/// skopeo pulls `team/app:v1` (manifest and layer) until stopped or a bound is reached.
fn start_pulls(balancer: Arc<Balancer>) -> Loop {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        let skopeo = Skopeo::new();
        let out = temp_dir("rotation-pulls");
        let started = Instant::now();
        let (mut pulls, mut failures) = (0, Vec::new());
        while !flag.load(Ordering::SeqCst) && pulls < MAX_PULLS && started.elapsed() < MAX_TIME {
            let (generation, addr) = balancer.checkout();
            let dest = out.path().join(format!("pull-{pulls}"));
            let result = skopeo.copy(
                &docker_ref(&addr, "team/app", "v1"),
                &format!("oci:{}:v1", dest.display()),
                Creds::Basic("admin", "badmin"),
                Creds::Anonymous,
            );
            balancer.done(generation);
            if let Err(e) = result {
                failures.push(format!("pull {pulls} from registry generation {generation}: {e}"));
            }
            let _ = std::fs::remove_dir_all(&dest);
            pulls += 1;
        }
        (pulls, failures)
    });
    Loop { stop, thread }
}

struct Rotation {
    version: Version,
    trust: Trust,
    auth: AuthServer,
    data: tempfile::TempDir,
    registry: Option<Registry>,
    balancer: Arc<Balancer>,
}

impl Rotation {
    fn config_path(&self) -> PathBuf {
        self.auth.dir.path().join("auth_config.yml")
    }

    /// What the registry must trust now: `registry-auth bundle` or `jwks` of the config.
    fn trust_file(&self, name: &str) -> TokenTrust {
        let (command, file) = match self.trust {
            Trust::Bundle => ("bundle", format!("{name}.pem")),
            Trust::Jwks => ("jwks", format!("{name}.json")),
        };
        let (code, stdout, stderr) = run_cli(&[command], &self.config_path());
        assert_eq!(code, Some(0), "{command}: {stderr}");
        let path = self.auth.dir.path().join(file);
        std::fs::write(&path, stdout).unwrap();
        let (rootcertbundle, jwks) = match self.trust {
            Trust::Bundle => (Some(path), None),
            Trust::Jwks => (None, Some(path)),
        };
        TokenTrust { realm: self.auth.realm(), service: SERVICE.into(), issuer: ISSUER.into(), rootcertbundle, jwks }
    }

    /// Blue-green restart of the registry with the current trust file.
    fn restart_registry(&mut self, name: &str) -> usize {
        let next = Registry::start_version(self.version, self.trust_file(name), Some(self.data.path()));
        let generation = self.balancer.switch(next.addr());
        self.registry = Some(next);
        generation
    }

    /// Writes the config and waits until the server has loaded it (`reloads` so far).
    fn reconfigure(&self, yaml: &str, reloads: u64) {
        replace_file(&self.config_path(), &yaml.replace("@ADDR@", &self.auth.addr));
        wait_for_reloads(&self.auth.addr, "ok", reloads, || self.auth.process.log());
    }

    fn wait_for_pulls(&self, generation: usize, at_least: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.balancer.pulls(generation) < at_least {
            assert!(Instant::now() < deadline, "no pulls on registry generation {generation}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn token_now(addr: &str) -> String {
    let (name, value) = crate::common::basic("admin", "badmin");
    let resp = http_get(addr, "/auth?service=Docker%20registry", &[(&name, &value)]).unwrap();
    let body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    body["token"].as_str().unwrap().to_owned()
}

fn kid_now(addr: &str) -> String {
    decode_jwt(&token_now(addr)).header["kid"].as_str().unwrap().to_owned()
}

/// `GET /v2/` with a bearer token: any token the registry trusts opens it.
fn base_status(registry: &Registry, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    http_get(&registry.addr(), "/v2/", &[("Authorization", auth.as_str())]).unwrap().status
}

fn gen_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    let out = std::process::Command::new(crate::auth_server::binary())
        .args(["gen-cert", "--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

fn rotate_under_load(version: Version, trust: Trust) {
    let keys_dir = temp_dir("rotation-keys");
    let (old_cert, old_key) = gen_cert(keys_dir.path(), "old");
    let auth = AuthServer::start(&config(&old_cert, &old_key, &[], trust), false, &["serve"]);
    let balancer = Arc::new(Balancer {
        current: Mutex::new((0, String::new())),
        in_flight: Mutex::new(HashMap::new()),
        pulls_by_generation: Mutex::new(HashMap::new()),
    });
    let mut r = Rotation { version, trust, auth, data: temp_dir("rotation-data"), registry: None, balancer };
    let first = r.restart_registry("trust-0");
    let old_token = token_now(&r.auth.addr);
    let old_kid = decode_jwt(&old_token).header["kid"].as_str().unwrap().to_owned();

    let images = temp_dir("rotation-image");
    let image = write_oci_layout(&images.path().join("layout"), "v1", &[("app.txt", b"rotate me")]);
    let addr = r.registry.as_ref().unwrap().addr();
    Skopeo::new()
        .copy(&image.oci_ref(), &docker_ref(&addr, "team/app", "v1"), Creds::Anonymous, Creds::Basic("admin", "badmin"))
        .unwrap_or_else(|e| panic!("push: {e}"));
    let started = Instant::now();
    let pulls = start_pulls(r.balancer.clone());
    r.wait_for_pulls(first, 2);

    // 1. A new pair, published beside the old one; the registry restarts trusting both.
    let (new_cert, new_key) = gen_cert(keys_dir.path(), "new");
    r.reconfigure(&config(&old_cert, &old_key, &[&new_cert], trust), 1);
    assert_eq!(kid_now(&r.auth.addr), old_kid, "still signing with the old key");
    let both = r.restart_registry("trust-1");
    r.wait_for_pulls(both, 2);

    // 2. Sign with the new key; the old one stays published until its tokens expire.
    r.reconfigure(&config(&new_cert, &new_key, &[&old_cert], trust), 2);
    let new_kid = kid_now(&r.auth.addr);
    assert_ne!(new_kid, old_kid, "signing with the new key after the reload");
    assert_eq!(base_status(r.registry.as_ref().unwrap(), &old_token), 200, "both keys are trusted");
    let switched = r.balancer.pulls(both);
    std::thread::sleep(Duration::from_secs(LIFETIME_SECS));
    r.wait_for_pulls(both, switched + 2);

    // 3. Old tokens have expired: drop the old key, restart the registry with the new one only.
    r.reconfigure(&config(&new_cert, &new_key, &[], trust), 3);
    let (_, published, _) = run_cli(&["jwks"], &r.config_path());
    assert_eq!(serde_json::from_str::<serde_json::Value>(&published).unwrap()["keys"].as_array().unwrap().len(), 1);
    let last = r.restart_registry("trust-2");
    r.wait_for_pulls(last, 3);

    pulls.stop.store(true, Ordering::SeqCst);
    let (count, failures) = pulls.thread.join().unwrap();
    let elapsed = started.elapsed();
    eprintln!("rotation on {}: {count} pulls in {elapsed:.1?}, {} failed", version.tag(), failures.len());
    assert!(failures.is_empty(), "{} of {count} pulls failed:\n{}", failures.len(), failures.join("\n"));
    assert!(count < MAX_PULLS && elapsed < MAX_TIME, "the loop hit its bound before the rotation finished");
    // The registry now refuses the old key (the token is within the registry's 60 s leeway,
    // so only the key can be the reason), and trusts the new one.
    let registry = r.registry.as_ref().unwrap();
    assert_eq!(base_status(registry, &old_token), 401, "the old key is no longer trusted");
    assert_eq!(base_status(registry, &token_now(&r.auth.addr)), 200);
}

#[test]
fn key_rotation_under_pulls_registry_2_8_2_bundle_and_x5c() {
    rotate_under_load(Version::V2_8_2, Trust::Bundle);
}

#[test]
fn key_rotation_under_pulls_registry_3_1_1_jwks() {
    rotate_under_load(Version::V3_1_1, Trust::Jwks);
}

/// A verification certificate that cannot be read stops check-config (and serve) with its
/// path; one that holds the signing key itself is a warning; `jwks` and `bundle` list each
/// key once, the signing one first.
#[test]
fn verification_certificates_are_checked_and_published_once_each() {
    let dir = temp_dir("verification-certs");
    let (cert, key) = gen_cert(dir.path(), "signing");
    let (next, _) = gen_cert(dir.path(), "next");
    let path = dir.path().join("auth_config.yml");
    let missing = dir.path().join("missing.pem");
    std::fs::write(&path, config(&cert, &key, &[&missing], Trust::Bundle)).unwrap();
    let (code, stdout, _) = run_cli(&["check-config"], &path);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("(at token.verification_certificates[0], line 3)") && stdout.contains("missing.pem"),
        "{stdout}"
    );
    let (code, _, stderr) = run_cli(&["jwks"], &path);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("missing.pem"), "{stderr}");

    std::fs::write(&path, config(&cert, &key, &[&cert, &next], Trust::Bundle)).unwrap();
    let (code, stdout, _) = run_cli(&["check-config"], &path);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("signing.pem holds the signing key itself"), "{stdout}");
    let (_, jwks, _) = run_cli(&["jwks"], &path);
    let jwks: serde_json::Value = serde_json::from_str(&jwks).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "{jwks}");
    assert_eq!(jwks["keys"][0]["kty"], "EC");
    let (_, bundle, _) = run_cli(&["bundle"], &path);
    let signing = std::fs::read_to_string(&cert).unwrap();
    assert_eq!(bundle.matches("-----BEGIN CERTIFICATE-----").count(), 2);
    assert!(bundle.starts_with(signing.trim_end()), "the signing certificate first:\n{bundle}");
}
