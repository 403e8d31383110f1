//! Live reload on the real binary under concurrent token load: editor-style
//! rename-and-replace, a broken config written mid-load, a Kubernetes-style `..data`
//! symlink swap and SIGHUP. Not one request may fail, and a broken config changes nothing.
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::auth_server::{binary, AuthServer};
use crate::common::{decode_jwt, with_keys, KeyKind, Keys};
use crate::support::http::http_get;
use crate::support::ports::free_port;
use crate::support::temp_dir;

fn config(keys: &Keys, addr: &str, actions: &str) -> String {
    let yaml = format!(
        "server:\n  addr: \"{addr}\"\ntoken:\n  issuer: \"Acme auth server\"\n  expiration: 900\n  certificate: \"@CERT@\"\n  key: \"@KEY@\"\nusers:\n  \"\": {{}}\nacl:\n  - match: {{account: \"\"}}\n    actions: [{actions}]\n"
    );
    with_keys(&yaml, keys)
}

/// The actions a fresh token grants on repository a/b.
fn granted(addr: &str) -> String {
    let resp = http_get(addr, "/auth?scope=repository:a/b:pull,push,delete", &[]).unwrap();
    assert_eq!(resp.status, 200, "{}", resp.body_text());
    let token: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    let claims = decode_jwt(token["token"].as_str().unwrap()).claims;
    let actions: Vec<String> =
        claims["access"][0]["actions"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    actions.join(",")
}

fn wait_for_grant(addr: &str, want: &str, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let now = granted(addr);
        if now == want {
            return;
        }
        assert!(Instant::now() < deadline, "grant never became {want} (is {now}):\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn reloads(addr: &str, result: &str) -> u64 {
    let text = http_get(addr, "/metrics", &[]).unwrap().body_text();
    let prefix = format!("registry_auth_config_reloads_total{{result=\"{result}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap().parse().unwrap()
}

pub fn wait_for_reloads(addr: &str, result: &str, at_least: u64, log: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while reloads(addr, result) < at_least {
        assert!(Instant::now() < deadline, "no {result} reload #{at_least}:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes `contents` to a temp file beside `path` and renames it over `path`.
pub fn replace_file(path: &Path, contents: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Requests tokens from several threads until stopped; counts failures.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(addr: &str, threads: usize) -> Load {
        let (stop, ok, failed) =
            (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let threads = (0..threads)
            .map(|_| {
                let (addr, stop, ok, failed) = (addr.to_string(), stop.clone(), ok.clone(), failed.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match http_get(&addr, "/auth?scope=repository:a/b:pull,push", &[]) {
                            Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                            _ => failed.fetch_add(1, Ordering::Relaxed),
                        };
                    }
                })
            })
            .collect();
        Load { stop, ok, failed, threads }
    }

    fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        (self.ok.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }
}

#[test]
fn reload_under_load_never_fails_a_request_and_a_broken_config_changes_nothing() {
    let keys = Keys::new(KeyKind::EcP256);
    let dir = temp_dir("reload");
    let addr = format!("127.0.0.1:{}", free_port());
    // Kubernetes layout: auth.yml -> ..data/auth.yml, ..data -> v1.
    std::fs::create_dir(dir.path().join("v1")).unwrap();
    std::fs::write(dir.path().join("v1/auth.yml"), config(&keys, &addr, "\"pull\"")).unwrap();
    std::os::unix::fs::symlink("v1", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/auth.yml", dir.path().join("auth.yml")).unwrap();
    let config_path = dir.path().join("auth.yml");
    let mut command = std::process::Command::new(binary());
    command.arg(&config_path).env_remove("RUST_LOG");
    let server = AuthServer::spawn(command, addr.clone(), false, dir);
    let log = || server.process.log();
    assert_eq!(granted(&addr), "pull");
    let load = Load::start(&addr, 4);

    // 1. ConfigMap-style: a new directory, then the ..data symlink renamed over the old one.
    let root = server.dir.path();
    std::fs::create_dir(root.join("v2")).unwrap();
    std::fs::write(root.join("v2/auth.yml"), config(&keys, &addr, "\"pull\", \"push\"")).unwrap();
    std::os::unix::fs::symlink("v2", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    wait_for_grant(&addr, "pull,push", log);
    assert_eq!(reloads(&addr, "ok"), 1);

    // 2. Editor-style: replace the symlink itself by a regular file (write + rename).
    replace_file(&config_path, &config(&keys, &addr, "\"*\""));
    wait_for_grant(&addr, "delete,pull,push", log);

    // 3. A broken config written in place mid-load: logged, counted, nothing changes.
    std::fs::write(&config_path, "acl: [\n  - match: {account:\"x\"}\n").unwrap();
    wait_for_reloads(&addr, "failed", 1, log);
    assert_eq!(granted(&addr), "delete,pull,push");
    // A config that loads but cannot build (missing key) keeps the old state too; via SIGHUP.
    let missing_key = config(&keys, &addr, "\"pull\"").replace(&keys.key.display().to_string(), "/nonexistent.key");
    replace_file(&config_path, &missing_key);
    wait_for_reloads(&addr, "failed", 2, log);
    let status = std::process::Command::new("kill").args(["-HUP", &server.process.id().to_string()]).status().unwrap();
    assert!(status.success());
    wait_for_reloads(&addr, "failed", 3, log);
    assert_eq!(granted(&addr), "delete,pull,push");

    // 4. Fixed again, reloaded by SIGHUP even though the watcher also sees it.
    replace_file(&config_path, &config(&keys, &addr, "\"pull\""));
    wait_for_grant(&addr, "pull", log);
    let (ok, failed) = load.finish();
    assert_eq!(failed, 0, "requests failed during reloads ({ok} ok):\n{}", log());
    assert!(ok > 100, "the load was too light to prove anything: {ok}");
    let log = server.process.log();
    assert!(log.contains("config reloaded") && log.contains("keeping the running config"), "{log}");
    assert!(
        log.contains("could not parse config") && log.contains("cannot read /nonexistent.key"),
        "the failed reloads say why:\n{log}"
    );
    eprintln!("reload under load: {ok} token requests, 0 failed");
}

#[test]
fn sighup_reloads_an_unchanged_path_with_new_keys() {
    let first = Keys::new(KeyKind::EcP256);
    let second = Keys::new(KeyKind::Rsa2048);
    let addr = format!("127.0.0.1:{}", free_port());
    let server = AuthServer::start(&config(&first, &addr, "\"pull\"").replace(&addr, "@ADDR@"), false, &[]);
    let config_path = server.dir.path().join("auth_config.yml");
    // Same config text, but the key files it names now hold another pair: only SIGHUP sees that.
    std::fs::copy(&second.cert, &first.cert).unwrap();
    std::fs::copy(&second.key, &first.key).unwrap();
    assert!(config_path.exists());
    let status = std::process::Command::new("kill").args(["-HUP", &server.process.id().to_string()]).status().unwrap();
    assert!(status.success());
    wait_for_reloads(&server.addr, "ok", 1, || server.process.log());
    let resp = http_get(&server.addr, "/auth?scope=repository:a/b:pull", &[]).unwrap();
    let token: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(decode_jwt(token["token"].as_str().unwrap()).header["alg"], "RS256");
}
