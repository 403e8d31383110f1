//! Robot (CI) credentials on the real binary, on both store engines: created, listed,
//! rotated and revoked with the CLI while the server runs; logins by Basic and by the POST
//! password grant, narrowed to the robot's scopes with the ACL still applied; odd input
//! refused; and, on the embedded engine, `kill -9` amid a burst of creates loses no robot
//! that was printed.
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::auth_server::{binary, AuthServer};
use crate::stored_creds::{basic, call, granted, printed_secret, Engine, Fixture, SERVICE};

fn robot_token(f: &Fixture, user: &str, secret: &str, scope: &str) -> (u16, serde_json::Value) {
    let req = f.http.get(&f.url()).query("service", SERVICE).query("scope", scope).query("offline_token", "true");
    call(req.set("Authorization", &basic(user, secret)), None)
}

fn actions(f: &Fixture, user: &str, secret: &str, scope: &str) -> Vec<String> {
    let (status, body) = robot_token(f, user, secret, scope);
    assert_eq!(status, 200, "{body}");
    let (sub, actions) = granted(&body);
    assert_eq!(sub, "robot$ci");
    assert!(body.get("refresh_token").is_none(), "robots get no identity token: {body}");
    actions
}

pub fn scenario(engine: &Engine) {
    let f = Fixture::start(engine, "");
    let create =
        ["robot", "create", "ci", "--scope", "repository:team/*:pull,push", "--scope", "repository:lib/*:pull"];
    let (ok, out, err) = f.cli(&[&create[..], &["--expires", "30d", "--description", "CI runners"]].concat());
    assert!(ok, "{err}");
    assert!(out.contains("docker login --username 'robot$ci'"), "{out}");
    let secret = printed_secret(&out);
    assert!(secret.starts_with("rars_"), "{secret}");

    // The robot's scopes AND the ACL.
    assert_eq!(actions(&f, "robot$ci", &secret, "repository:team/app:pull,push"), ["pull", "push"]);
    assert_eq!(actions(&f, "robot+ci", &secret, "repository:team/locked:pull,push"), ["pull"]);
    assert!(actions(&f, "robot$ci", &secret, "repository:lib/base:pull").is_empty(), "the ACL grants lib/ nothing");
    assert!(actions(&f, "robot$ci", &secret, "repository:other/app:pull,push").is_empty());
    let form = [
        ("grant_type", "password"),
        ("username", "robot$ci"),
        ("password", &secret),
        ("service", SERVICE),
        ("scope", "repository:team/app:push"),
    ];
    let (status, body) = call(f.http.post(&f.url()), Some(&form));
    assert_eq!((status, granted(&body).1), (200, vec!["push".to_string()]), "{body}");

    // Refused like a wrong password.
    let wrong = format!("rars_{}", "A".repeat(43));
    for (user, password) in [
        ("robot$ci", wrong.as_str()),
        ("robot$ci", "short"),
        ("robot$nobody", &secret),
        ("robot$Bad Name!", &secret),
        ("robot$", &secret),
    ] {
        let (status, body) = robot_token(&f, user, password, "repository:team/app:pull");
        assert_eq!(status, 401, "{user}: {body}");
    }
    let long_name = format!("robot${}", "x".repeat(5000));
    assert_eq!(robot_token(&f, &long_name, &secret, "repository:team/app:pull").0, 401);

    cli_errors(&f);
    let (ok, out, err) = f.cli(&["robot", "list"]);
    assert!(ok, "{err}");
    assert!(out.contains("ci") && out.contains("repository:team/*:pull,push") && !out.contains(&secret), "{out}");
    assert!(!out.lines().nth(1).unwrap().contains(" never "), "expiry and last use are set: {out}");

    // Rotation and revocation take effect at once.
    let (ok, out, err) = f.cli(&["robot", "rotate", "ci"]);
    assert!(ok, "{err}");
    let rotated = printed_secret(&out);
    assert_eq!(robot_token(&f, "robot$ci", &secret, "repository:team/app:pull").0, 401);
    assert_eq!(actions(&f, "robot$ci", &rotated, "repository:team/app:pull"), ["pull"]);
    let (ok, _, err) = f.cli(&["robot", "revoke", "ci"]);
    assert!(ok, "{err}");
    assert_eq!(robot_token(&f, "robot$ci", &rotated, "repository:team/app:pull").0, 401);
    let (ok, _, err) = f.cli(&["robot", "revoke", "ci"]);
    assert!(!ok && err.contains("no robot named"), "{err}");
}

fn cli_errors(f: &Fixture) {
    let cases: &[(&[&str], &str)] = &[
        (&["robot", "create", "ci", "--scope", "repository:x:pull"], "already exists"),
        (&["robot", "create", "Bad Name", "--scope", "repository:x:pull"], "invalid robot name"),
        (&["robot", "create", "a/b", "--scope", "repository:x:pull"], "invalid robot name"),
        (&["robot", "create", "ok", "--scope", "repository:x"], "invalid scope"),
        (&["robot", "create", "ok", "--scope", "repository:x:pull", "--expires", "soon"], "--expires"),
        (&["robot", "rotate", "nobody"], "no robot named"),
    ];
    for (args, want) in cases {
        let (ok, out, err) = f.cli(args);
        assert!(!ok && err.contains(want), "{args:?}: {out}{err}");
    }
    let long = "x".repeat(300);
    let (ok, _, err) = f.cli(&["robot", "create", "ok", "--scope", "repository:x:pull", "--description", &long]);
    assert!(!ok && err.contains("description"), "{err}");
}

#[test]
fn embedded_store() {
    scenario(&Engine::Embedded);
}

/// Creates robots one after another through the CLI while the server is killed with
/// SIGKILL; after a restart on the same directory, every robot whose secret was printed
/// logs in.
#[test]
fn kill_9_during_robot_creates_loses_no_printed_robot() {
    let f = Fixture::start(&Engine::Embedded, "");
    let config = f.server.dir.path().join("auth_config.yml");
    let printed: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let (printed, stop, config) = (printed.clone(), stop.clone(), config.clone());
            std::thread::spawn(move || {
                for i in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let name = format!("burst-{w}-{i}");
                    let out = Command::new(binary())
                        .args(["robot", "create", &name, "--scope", "repository:team/*:pull", "--config"])
                        .arg(&config)
                        .output()
                        .unwrap();
                    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
                    if out.status.success() {
                        printed.lock().unwrap().push((name, printed_secret(&stdout)));
                    }
                }
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while printed.lock().unwrap().len() < 6 {
        assert!(std::time::Instant::now() < deadline, "no robot created:\n{}", f.server.process.log());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let Fixture { keys, server, http } = f;
    let AuthServer { mut process, addr, tls, dir } = server;
    process.kill();
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().unwrap();
    }
    let mut command = Command::new(binary());
    command.arg("serve").arg(dir.path().join("auth_config.yml")).env_remove("RUST_LOG");
    let restarted = Fixture { keys, server: AuthServer::spawn(command, addr, tls, dir), http };
    let printed = printed.lock().unwrap().clone();
    assert!(printed.len() >= 6);
    for (name, secret) in &printed {
        let req =
            restarted.http.get(&restarted.url()).query("service", SERVICE).query("scope", "repository:team/a:pull");
        let (status, body) = call(req.set("Authorization", &basic(&format!("robot${name}"), secret)), None);
        assert_eq!(status, 200, "robot {name} was printed but is gone: {body}");
    }
}

#[test]
fn redis_store() {
    let redis = crate::support::redis::RedisServer::start();
    scenario(&Engine::Redis { addr: redis.addr(), prefix: "robot-test:".to_string() });
}
