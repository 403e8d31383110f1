//! docker_auth's `level_token_db` (a LevelDB directory of `t:<account>` records): the
//! fixture is written at test time by a real LevelDB (Debian's python3-plyvel on
//! libleveldb, snappy tables, through `tests/leveldb/write_token_db.py`), and the
//! passwords in it log in at `/auth` and through the real registry with skopeo, both
//! imported once into the store and used directly; the import is idempotent; a locked,
//! damaged or mistyped directory stops the start with its path, line and fix.
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::auth_server::{binary, serve_command, AuthServer};
use crate::common::{KeyKind, Keys};
use crate::stored_creds::granted;
use crate::support::ports::{free_port, wait_until, Probe};
use crate::support::process::{require_program, ChildGuard};
use crate::web_signin::{config_head, token_at, write_config, SERVICE};

/// Writes `spec` (see the script) into the LevelDB at `dir` with the real libleveldb.
fn write_token_db(dir: &Path, spec: &Value) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/leveldb/write_token_db.py");
    // Debian's interpreter: python3-plyvel is installed for it (PATH may hold another).
    let python = Path::new("/usr/bin/python3");
    assert!(python.is_file(), "/usr/bin/python3 not found: run scripts/install-deps.sh");
    let mut child = Command::new(python)
        .arg(&script)
        .arg(dir)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run write_token_db.py");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), spec.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "write_token_db.py failed (python3-plyvel missing? run scripts/install-deps.sh): {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// docker_auth's TokenDBValue for a password (bcrypt cost 4: fast tests).
fn record(password: &str, groups: &[&str]) -> Value {
    json!({
        "token_type": "Bearer",
        "access_token": "upstream-access-token",
        "refresh_token": "upstream-refresh-token",
        "valid_until": "2099-01-01T00:00:00Z",
        "docker_password": bcrypt::hash(password, 4).unwrap(),
        "labels": {"groups": groups},
    })
}

struct Site {
    keys: Keys,
    addr: String,
    leveldb: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        Site {
            keys: Keys::new(KeyKind::EcP256),
            addr: format!("127.0.0.1:{}", free_port()),
            leveldb: crate::support::temp_dir("leveldb"),
        }
    }

    fn db(&self) -> std::path::PathBuf {
        self.leveldb.path().join("oidc.ldb")
    }

    /// The config: `oidc_auth` with an issuer nobody serves (valid records need no
    /// upstream), its `level_token_db` in `mode`, and `store` (`""`: none).
    fn config(&self, dir: &Path, mode: &str, store: &str) -> std::path::PathBuf {
        let dead = format!("127.0.0.1:{}", free_port());
        let mode = if mode.is_empty() { String::new() } else { format!("    mode: {mode}\n") };
        let yaml = format!(
            r#"{head}oidc_auth:
  issuer: "http://{dead}"
  redirect_url: "http://{addr}/oidc_auth"
  client_id: "registry"
  client_secret: "registry-secret"
  http_timeout: 2s
  level_token_db:
    path: "{db}"
{mode}acl:
  - match: {{name: "${{labels:groups}}/*"}}
    actions: ["pull", "push"]
{store}"#,
            head = config_head(&self.addr),
            addr = self.addr,
            db = self.db().display(),
        );
        write_config(dir, &yaml, &self.keys)
    }

    fn start(&self, mode: &str, store: &str) -> AuthServer {
        let dir = crate::support::temp_dir("auth-server");
        let path = self.config(dir.path(), mode, store);
        AuthServer::serve(&self.addr, &path, dir)
    }

    /// The log of a start that must fail (it exits by itself within 20 s).
    fn failed_start(&self, mode: &str, store: &str) -> String {
        let dir = crate::support::temp_dir("auth-server");
        let path = self.config(dir.path(), mode, store);
        let mut child = ChildGuard::spawn("registry-auth", serve_command(&path), dir.path());
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.exit_status().is_none() {
            assert!(Instant::now() < deadline, "the server started although it must not:\n{}", child.log());
            std::thread::sleep(Duration::from_millis(20));
        }
        child.log()
    }

    fn assert_grants(&self, user: &str, password: &str, repo: &str) {
        let (status, body) = token_at(&self.addr, user, password, &format!("repository:{repo}:pull,push"));
        assert_eq!(status, 200, "{user}: {body}");
        assert_eq!(granted(&body), (user.to_string(), vec!["pull".to_string(), "push".to_string()]), "{user}");
    }

    fn assert_refused(&self, user: &str, password: &str) {
        let (status, body) = token_at(&self.addr, user, password, "repository:dev/app:pull");
        assert_eq!(status, 401, "{user}: {body}");
    }
}

fn store_section(dir: &Path) -> String {
    format!("store:\n  path: \"{}\"\n", dir.display())
}

/// Import mode (the default with a store): a password from docker_auth's LevelDB pushes
/// and pulls through the registry; records from the log and from compacted snappy tables
/// both count, the newest version of a key wins, deleted ones are gone; a second start
/// imports nothing (a changed LevelDB is not read again). Direct mode on the same
/// directory then reads it live, and docker_auth's lock keeps a second process out.
#[test]
fn level_token_db_passwords_pull_through_the_registry_imported_and_direct() {
    use crate::support::oci::write_oci_layout;
    use crate::support::registry::{Registry, RegistryAuth};
    use crate::support::skopeo::{docker_ref, Creds, Skopeo};

    let site = Site::new();
    write_token_db(
        &site.db(),
        &json!({
            "compacted": {
                "alice@acme.test": record("alice-pw", &["dev"]),
                "bob@acme.test": record("bob-old", &["ops"]),
                "carol@acme.test": record("carol-pw", &["dev"]),
            },
            "put": {"bob@acme.test": record("bob-new", &["ops"]), "carol@acme.test": null},
        }),
    );
    let ldb_files = std::fs::read_dir(site.db())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "ldb"));
    assert!(ldb_files.count() > 0, "the fixture has table files");

    let store = crate::support::temp_dir("store");
    let server = site.start("", &store_section(&store.path().join("data")));
    assert!(server.process.log().contains("level_token_db imported"), "{}", server.process.log());
    assert!(server.process.log().contains("imported=2"), "{}", server.process.log());
    let registry = Registry::start(RegistryAuth {
        realm: server.realm(),
        service: SERVICE.to_string(),
        issuer: "Acme auth server".to_string(),
        rootcertbundle: site.keys.cert.clone(),
    });
    let images = crate::support::temp_dir("images");
    let image = write_oci_layout(&images.path().join("layout"), "v1", &[("hello.txt", b"level_token_db")]);
    let skopeo = Skopeo::new();
    let alice = Creds::Basic("alice@acme.test", "alice-pw");
    let pushed = docker_ref(&registry.addr(), "dev/app", "v1");
    skopeo
        .copy(&image.oci_ref(), &pushed, Creds::Anonymous, alice)
        .unwrap_or_else(|e| panic!("push: {e}\n{}", server.process.log()));
    skopeo.inspect_raw(&pushed, alice).unwrap_or_else(|e| panic!("pull: {e}"));
    assert!(skopeo.inspect_raw(&pushed, Creds::Basic("alice@acme.test", "wrong")).is_err());
    site.assert_grants("bob@acme.test", "bob-new", "ops/app");
    site.assert_refused("bob@acme.test", "bob-old");
    site.assert_refused("carol@acme.test", "carol-pw");
    drop(server);

    // docker_auth kept running for a while: alice signed in again, dave is new.
    write_token_db(
        &site.db(),
        &json!({"alice@acme.test": record("alice-again", &["dev"]), "dave@acme.test": record("dave-pw", &["dev"])}),
    );
    let again = site.start("import", &store_section(&store.path().join("data")));
    assert!(
        again.process.log().contains("level_token_db was imported before; nothing to import"),
        "{}",
        again.process.log()
    );
    site.assert_grants("alice@acme.test", "alice-pw", "dev/app");
    site.assert_refused("alice@acme.test", "alice-again");
    site.assert_refused("dave@acme.test", "dave-pw");
    drop(again);

    // Direct: the directory itself, as docker_auth reads it (no store: section needed).
    let direct = site.start("", "");
    assert!(direct.process.log().contains("level_token_db used directly"), "{}", direct.process.log());
    site.assert_grants("dave@acme.test", "dave-pw", "dev/app");
    site.assert_grants("alice@acme.test", "alice-again", "dev/app");
    skopeo.inspect_raw(&pushed, Creds::Basic("dave@acme.test", "dave-pw")).unwrap_or_else(|e| panic!("pull: {e}"));
    // A reload keeps the open directory (and its lock): nothing is reopened.
    let config = direct.dir.path().join("auth_config.yml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}# reloaded\n")).unwrap();
    wait_until("the reload", Duration::from_secs(10), || match direct.process.log() {
        log if log.contains("config reloaded") => Probe::Ready(()),
        log if log.contains("config reload failed") => Probe::Failed(log),
        _ => Probe::NotYet("not reloaded yet".into()),
    })
    .unwrap();
    site.assert_grants("dave@acme.test", "dave-pw", "dev/app");
    let other = Site {
        keys: Keys::new(KeyKind::EcP256),
        addr: format!("127.0.0.1:{}", free_port()),
        leveldb: crate::support::temp_dir("unused"),
    };
    let second = failed_start_on(&other, &site.db());
    assert!(second.contains("is locked by another process"), "{second}");
    drop(direct);

    // docker_auth (goleveldb) holds an flock on LOCK while it runs.
    let flock = require_program("flock");
    let mut holder = Command::new(flock).arg("-n").arg(site.db().join("LOCK")).args(["sleep", "30"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let fresh = crate::support::temp_dir("store");
    let log = site.failed_start("import", &store_section(&fresh.path().join("data")));
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(
        log.contains("oidc_auth.level_token_db.path, line 15")
            && log.contains("is locked by another process")
            && log.contains("stop docker_auth"),
        "{log}"
    );
}

/// `site`'s config pointed at `db`, started in direct mode; it must fail.
fn failed_start_on(site: &Site, db: &Path) -> String {
    let link = site.leveldb.path().join("oidc.ldb");
    std::os::unix::fs::symlink(db, &link).unwrap();
    site.failed_start("direct", "")
}

/// A damaged directory (CURRENT names a missing manifest), one that is not a LevelDB, and
/// a mode docker_auth never had: each stops the start (and `check-config`) with the key,
/// its line and a fix; a directory that does not exist yet is only a warning on import.
#[test]
fn level_token_db_problems_name_path_line_and_fix() {
    let site = Site::new();
    let records = json!({"alice@acme.test": record("alice-pw", &["dev"]), "bob@acme.test": record("bob-pw", &["ops"])});
    write_token_db(&site.db(), &json!({"compacted": records}));
    let store = crate::support::temp_dir("store");
    let store = store_section(&store.path().join("data"));
    // One flipped byte in the table block holding the records (the reader alone would skip it).
    let table = std::fs::read_dir(site.db())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "ldb"))
        .unwrap();
    let mut bytes = std::fs::read(&table).unwrap();
    let at = bytes.windows(15).position(|w| w == b"docker_password").expect("a record in the table");
    bytes[at] ^= 0x01;
    std::fs::write(&table, &bytes).unwrap();
    for mode in ["import", "direct"] {
        let log = site.failed_start(mode, &store);
        assert!(
            log.contains("oidc_auth.level_token_db.path, line 15") && log.contains("fails its checksum"),
            "{mode}: {log}"
        );
    }
    std::fs::write(site.db().join("CURRENT"), "MANIFEST-999999\n").unwrap();
    let log = site.failed_start("import", &store);
    assert!(
        log.contains("oidc_auth.level_token_db.path, line 15")
            && log.contains("is not a readable LevelDB")
            && log.contains("restore the directory from a backup"),
        "{log}"
    );
    let dir = crate::support::temp_dir("check");
    let output =
        Command::new(binary()).arg("check-config").arg(site.config(dir.path(), "direct", "")).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success() && text.contains("is not a readable LevelDB"), "{text}");

    std::fs::remove_dir_all(site.db()).unwrap();
    std::fs::create_dir(site.db()).unwrap();
    std::fs::write(site.db().join("notes.txt"), "not a LevelDB").unwrap();
    let log = site.failed_start("import", &store);
    assert!(log.contains("is not a LevelDB directory (it has no CURRENT file)") && log.contains("line 15"), "{log}");

    let log = site.failed_start("both", &store);
    assert!(log.contains("oidc_auth.level_token_db.mode must be import or direct") && log.contains("line 16"), "{log}");

    std::fs::remove_dir_all(site.db()).unwrap();
    let server = site.start("import", &store);
    assert!(server.process.log().contains("does not exist: nothing to import"), "{}", server.process.log());
}

/// A site whose LevelDB holds alice's record (password `alice-pw`, group `dev`), a Redis of
/// its own, and the `store:` section naming that Redis.
fn alice_on_redis() -> (Site, crate::support::redis::RedisServer, String) {
    let site = Site::new();
    write_token_db(&site.db(), &json!({"alice@acme.test": record("alice-pw", &["dev"])}));
    let redis = crate::support::redis::RedisServer::start();
    let store = format!("store:\n  redis:\n    addr: \"{}\"\n", redis.addr());
    (site, redis, store)
}

/// Import into a Redis store (replicas share it): the records land as docker_auth's
/// `t:<account>` JSON marked with the section's provider, the marker says the directory
/// was imported, and a second server on the same Redis imports nothing.
#[test]
fn level_token_db_imports_into_a_redis_store_once() {
    let (site, redis, store) = alice_on_redis();
    let server = site.start("", &store);
    site.assert_grants("alice@acme.test", "alice-pw", "dev/app");
    let stored: Value = serde_json::from_str(&redis.command(&["GET", "t:alice@acme.test"])).unwrap();
    assert_eq!(stored["provider"], "oidc", "{stored}");
    assert!(stored["docker_password"].as_str().unwrap().starts_with("$2"), "{stored}");
    let marker = format!("import:level_token_db:{}", site.db().canonicalize().unwrap().display());
    assert_eq!(redis.command(&["EXISTS", &marker]), ":1", "{marker}");
    drop(server);
    let again = site.start("import", &store);
    assert!(again.process.log().contains("was imported before"), "{}", again.process.log());
    site.assert_grants("alice@acme.test", "alice-pw", "dev/app");
}

/// A web sign-in password login on Redis reads its record in the MGET that reads its
/// lockout counters (one round trip, not two), and still sees a replaced record on the very
/// next login: what it read ahead is this login's own read, not a cache.
#[test]
fn a_web_signin_login_on_redis_reads_its_record_with_the_counters() {
    let (site, redis, store) = alice_on_redis();
    let _server = site.start("", &store);
    site.assert_grants("alice@acme.test", "alice-pw", "dev/app");
    redis.command(&["CONFIG", "RESETSTAT"]);
    for _ in 0..5 {
        site.assert_grants("alice@acme.test", "alice-pw", "dev/app");
    }
    site.assert_refused("alice@acme.test", "wrong");
    let calls = |command: &str| {
        let stats = redis.command(&["INFO", "commandstats"]);
        let line = stats.lines().find(|l| l.starts_with(&format!("cmdstat_{command}:"))).map(str::to_string);
        line.and_then(|l| l.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok()).unwrap_or(0)
    };
    assert_eq!((calls("mget"), calls("get")), (6, 0), "{}", redis.command(&["INFO", "commandstats"]));

    let mut replaced = record("alice-new", &["dev"]);
    replaced["provider"] = json!("oidc");
    redis.command(&["SET", "t:alice@acme.test", &replaced.to_string()]);
    site.assert_refused("alice@acme.test", "alice-pw");
    site.assert_grants("alice@acme.test", "alice-new", "dev/app");
}
