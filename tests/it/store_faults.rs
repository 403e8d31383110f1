//! Redis killed mid-run and restarted under the real binary, single server and a 3-node
//! Redis Cluster: while it is away, grants that need the store (identity-token exchange,
//! robot login) fail closed with the fixed 500, password logins against the config go on,
//! failed-login counting is skipped with a warning and a metric, `/readyz` says 503 and
//! nothing panics; within 2 s of its return everything works
//! again, and every credential acknowledged before the kill is still there.
use std::time::{Duration, Instant};

use crate::auth_server::AuthServer;
use crate::identity_tokens::exchange;
use crate::stored_creds::{basic, call, printed_secret, Engine, Fixture, SERVICE};
use crate::support::redis::{RedisCluster, RedisServer};

const STORE_DOWN: &str = "Authentication failed (store unavailable)\n";

fn robot(server: &AuthServer, secret: &str) -> (u16, serde_json::Value) {
    let req = ureq::get(&server.realm()).query("service", SERVICE).query("scope", "repository:team/app:pull");
    call(req.set("Authorization", &basic("robot$ci", secret)), None)
}

fn password(server: &AuthServer, pass: &str) -> u16 {
    let req = ureq::get(&server.realm()).query("service", SERVICE).query("scope", "repository:test/app:pull");
    call(req.set("Authorization", &basic("test", pass)), None).0
}

fn ready(server: &AuthServer) -> u16 {
    match ureq::get(&format!("http://{}/readyz", server.addr)).call() {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("{e}"),
    }
}

fn skipped_counts(server: &AuthServer) -> u64 {
    let text = ureq::get(&format!("http://{}/metrics", server.addr)).call().unwrap().into_string().unwrap();
    text.lines()
        .filter(|l| l.starts_with("registry_auth_lockout_store_errors_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

fn scenario(engine: &Engine, kill: &mut dyn FnMut(), restart: &mut dyn FnMut()) {
    let f = Fixture::start(engine, "");
    let req = f.http.get(&f.url()).query("service", SERVICE).query("offline_token", "true");
    let (status, body) = call(req.set("Authorization", &basic("test", "123")), None);
    assert_eq!(status, 200, "{body}");
    let token = body["refresh_token"].as_str().unwrap().to_string();
    let (ok, out, err) = f.cli(&["robot", "create", "ci", "--scope", "repository:team/*:pull"]);
    assert!(ok, "{err}");
    let secret = printed_secret(&out);
    assert_eq!(robot(&f.server, &secret).0, 200);
    assert_eq!(exchange(&f.url(), &token, "repository:test/app:pull").0, 200);

    kill();
    for _ in 0..3 {
        let started = Instant::now();
        let (status, body) = exchange(&f.url(), &token, "repository:test/app:pull");
        assert_eq!((status, body["text"].as_str()), (500, Some(STORE_DOWN)), "exchange while the store is away");
        let (status, body) = robot(&f.server, &secret);
        assert_eq!((status, body["text"].as_str()), (500, Some(STORE_DOWN)), "robot while the store is away");
        assert!(started.elapsed() < Duration::from_secs(6), "fails within the timeout: {:?}", started.elapsed());
        assert_eq!(password(&f.server, "123"), 200, "password logins against the config go on");
        assert_eq!(password(&f.server, "wrong"), 401);
    }
    assert_eq!(ready(&f.server), 503);
    assert!(skipped_counts(&f.server) >= 3, "skipped lockout counts are on /metrics");
    assert!(f.server.process.log().contains("brute-force counting skipped"), "and warned about");
    let (ok, out, err) = f.cli(&["robot", "create", "later", "--scope", "repository:team/*:pull"]);
    assert!(!ok && !out.contains("secret:") && err.contains("unavailable"), "{out}{err}");

    restart();
    let back = Instant::now();
    loop {
        let (status, body) = exchange(&f.url(), &token, "repository:test/app:pull");
        if status == 200 {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(2),
            "not working 2 s after the store's return: {status} {body}\n{}",
            f.server.process.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Every worker has its own connection: each must be back, not only the one that answered.
    for _ in 0..8 {
        let (status, body) = exchange(&f.url(), &token, "repository:test/app:pull");
        assert_eq!(status, 200, "a new connection (another worker) after the store's return: {body}");
    }
    assert_eq!(robot(&f.server, &secret).0, 200, "the robot acknowledged before the kill is still there");
    assert_eq!(ready(&f.server), 200);
    let log = f.server.process.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("credential store unavailable"), "a log line names the store failure:\n{log}");
}

#[test]
fn redis_killed_and_restarted_grants_fail_closed_and_come_back() {
    let redis = std::cell::RefCell::new(RedisServer::start());
    let engine = Engine::Redis { addr: redis.borrow().addr(), prefix: String::new() };
    scenario(&engine, &mut || redis.borrow_mut().kill(), &mut || redis.borrow_mut().restart());
}

#[test]
fn redis_cluster_killed_and_restarted_grants_fail_closed_and_come_back() {
    let cluster = std::cell::RefCell::new(RedisCluster::start());
    let engine = Engine::RedisCluster { addrs: cluster.borrow().addrs() };
    let mut kill = || cluster.borrow_mut().nodes.iter_mut().for_each(RedisServer::kill);
    // The cluster is back when its nodes say so: until they have seen each other again,
    // Redis itself answers CLUSTERDOWN.
    let mut restart = || {
        cluster.borrow_mut().nodes.iter_mut().for_each(RedisServer::restart);
        cluster.borrow().wait_state_ok();
    };
    scenario(&engine, &mut kill, &mut restart);
}

/// A replica holds one Redis connection per HTTP worker (the requests' commands) and one
/// shared by the rest (CLI through the admin socket, background writes), however many
/// clients it serves: what Redis's `maxclients` must allow per replica.
#[test]
fn a_replica_holds_one_redis_connection_per_worker_plus_one() {
    let redis = RedisServer::start();
    let engine = Engine::Redis { addr: redis.addr(), prefix: String::new() };
    let f = Fixture::start(&engine, "");
    let req = f.http.get(&f.url()).query("service", SERVICE).query("offline_token", "true");
    let (status, body) = call(req.set("Authorization", &basic("test", "123")), None);
    assert_eq!(status, 200, "{body}");
    let token = body["refresh_token"].as_str().unwrap().to_string();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (url, token) = (f.url(), token.clone());
            std::thread::spawn(move || (0..10).map(|_| exchange(&url, &token, "repository:test/app:pull").0).collect())
        })
        .collect();
    for client in clients {
        let statuses: Vec<u16> = client.join().unwrap();
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    }
    let list = redis.command(&["CLIENT", "LIST"]);
    // Less the connection this CLIENT LIST came on.
    let connections = list.lines().count() - 1;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    assert!((1..=workers + 1).contains(&connections), "{connections} connections for {workers} workers:\n{list}");
}
