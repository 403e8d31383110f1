//! Brute-force protection through HTTP token requests, on the embedded store, on a real
//! redis-server and in memory (no `store:`), including two real replicas sharing Redis
//! counts and Redis going away (counting fails open).
//!
//! `ext_auth` (tests/ext/ext_auth.sh) leaves `stdin-<account>` behind each time it runs,
//! which proves that a locked login never reaches a password check.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use tempfile::TempDir;

use crate::auth_server::AuthServer;
use crate::common::*;
use crate::support::http::http_get;
use crate::support::redis::RedisServer;
use crate::support::temp_dir;

/// Where the counts live in one test.
enum Engine {
    Embedded(TempDir),
    Redis(RedisServer),
    Memory,
}

impl Engine {
    fn embedded() -> Engine {
        Engine::Embedded(temp_dir("lockout-store"))
    }

    fn yaml(&self) -> String {
        match self {
            Engine::Embedded(dir) => format!("store:\n  path: {:?}\n", dir.path().join("data")),
            Engine::Redis(redis) => format!("store:\n  redis:\n    addr: \"{}\"\n    timeout: 500ms\n", redis.addr()),
            Engine::Memory => String::new(),
        }
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ext/ext_auth.sh")
}

/// Static user `static`/`badmin`, ext_auth's `alice`/`open sesame`, client addresses from
/// `X-Real-Ip`, and the given lockout limits.
fn lockout_yaml(keys: &Keys, evidence: &Path, engine: &Engine, per_ip: u64, per_account: u64, window: &str) -> String {
    let yaml = format!(
        "{base}ext_auth:\n  command: {command:?}\n  args: [{evidence:?}]\nacl:\n  - match: {{account: \"/.+/\"}}\n    actions: [\"pull\"]\n\
         {store}lockout:\n  window: {window}\n  max_failures_per_ip: {per_ip}\n  max_failures_per_account: {per_account}\n",
        base = base_yaml("@ADDR@", "  real_ip_header: X-Real-Ip\n", "static"),
        command = script(),
        store = engine.yaml(),
    );
    with_keys(&yaml, keys)
}

struct Reply {
    status: StatusCode,
    retry_after: Option<u64>,
    body: String,
}

struct App<S> {
    service: S,
}

impl<S, B> App<S>
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    async fn login(&self, ip: &str, user: &str, password: &str) -> Reply {
        let req = TestRequest::get()
            .uri("/auth?service=registry&scope=repository:team/app:pull")
            .insert_header(basic(user, password))
            .insert_header(("X-Real-Ip", ip))
            .peer_addr("127.0.0.1:4567".parse().unwrap());
        let resp = test::call_service(&self.service, req.to_request()).await;
        let status = resp.status();
        let retry_after =
            resp.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().expect("Retry-After is seconds"));
        let body = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
        Reply { status, retry_after, body }
    }
}

async fn app(
    yaml: &str,
) -> App<
    impl actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
    >,
> {
    App { service: app_for(&yaml.replace("@ADDR@", "127.0.0.1:0")).await }
}

/// The core rules, on one engine: a locked address is refused (429, Retry-After) even
/// with the right password, which is not checked; an unknown account is counted and
/// refused exactly alike; the same account from another address still works.
async fn locks_an_address_without_checking_the_password(engine: Engine) {
    let keys = Keys::new(KeyKind::EcP256);
    let evidence = temp_dir("lockout-evidence");
    let app = app(&lockout_yaml(&keys, evidence.path(), &engine, 3, 10, "30s")).await;
    for _ in 0..3 {
        let r = app.login("10.0.0.1", "alice", "wrong").await;
        assert_eq!((r.status, r.retry_after), (StatusCode::UNAUTHORIZED, None), "{}", r.body);
    }
    let alice_stdin = evidence.path().join("stdin-alice");
    std::fs::remove_file(&alice_stdin).unwrap();
    let locked = app.login("10.0.0.1", "alice", "open sesame").await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS, "{}", locked.body);
    let wait = locked.retry_after.expect("Retry-After");
    assert!((1..=30).contains(&wait), "{wait}");
    assert!(!alice_stdin.exists(), "the password of a locked login must not be checked");

    // An account nobody knows: the same statuses, the same body, the same header.
    for _ in 0..3 {
        assert_eq!(app.login("10.0.0.2", "nobody-at-all", "guess").await.status, StatusCode::UNAUTHORIZED);
    }
    let unknown = app.login("10.0.0.2", "nobody-at-all", "guess").await;
    assert_eq!(unknown.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(unknown.body, locked.body);
    assert!(unknown.retry_after.is_some());

    // The same account from elsewhere is not locked (3 failures, account limit 10).
    assert_eq!(app.login("10.0.0.3", "alice", "open sesame").await.status, StatusCode::OK);
    assert!(alice_stdin.exists());
    // Static users (bcrypt) are protected the same way.
    assert_eq!(app.login("10.0.0.1", "static", "badmin").await.status, StatusCode::TOO_MANY_REQUESTS);
}

#[actix_web::test]
async fn embedded_store_locks_an_address_without_checking_the_password() {
    locks_an_address_without_checking_the_password(Engine::embedded()).await;
}

#[actix_web::test]
async fn redis_store_locks_an_address_without_checking_the_password() {
    locks_an_address_without_checking_the_password(Engine::Redis(RedisServer::start())).await;
}

/// A plain docker_auth config (no `store:`): the counts live in the process's memory.
#[actix_web::test]
async fn without_a_store_counts_live_in_memory() {
    locks_an_address_without_checking_the_password(Engine::Memory).await;
}

/// Success resets nothing; the per-account limit spans addresses; the lock ends with
/// the window.
async fn counting_rules(engine: Engine) {
    let keys = Keys::new(KeyKind::EcP256);
    let evidence = temp_dir("lockout-evidence");
    let app = app(&lockout_yaml(&keys, evidence.path(), &engine, 3, 5, "2s")).await;
    let statuses = async |ip: &str, user: &str, passwords: &[&str]| {
        let mut out = Vec::new();
        for password in passwords {
            out.push(app.login(ip, user, password).await.status.as_u16());
        }
        out
    };
    assert_eq!(statuses("10.0.1.1", "static", &["x", "x", "badmin", "x", "badmin"]).await, [401, 401, 200, 401, 429]);

    // alice fails once from each of five addresses: her account is locked everywhere,
    // other accounts at those addresses are not.
    for i in 0..5 {
        assert_eq!(app.login(&format!("10.0.2.{i}"), "alice", "wrong").await.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.login("10.0.2.99", "alice", "open sesame").await.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.login("10.0.2.0", "static", "badmin").await.status, StatusCode::OK);

    // The window passes (2 s): both locks end (each window started at its first failure).
    let started = Instant::now();
    for (ip, user, password) in [("10.0.1.1", "static", "badmin"), ("10.0.2.99", "alice", "open sesame")] {
        loop {
            let r = app.login(ip, user, password).await;
            if r.status == StatusCode::OK {
                break;
            }
            assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
            assert!(started.elapsed() < Duration::from_secs(5), "{user} still locked after the window");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[actix_web::test]
async fn embedded_store_counting_rules() {
    counting_rules(Engine::embedded()).await;
}

#[actix_web::test]
async fn redis_store_counting_rules() {
    counting_rules(Engine::Redis(RedisServer::start())).await;
}

/// Redis goes away: logins go on (401 for a wrong password, 200 for the right one,
/// never 429 or 500), counting is skipped with a warning and a metric; once Redis is back
/// counting resumes.
#[actix_web::test]
async fn redis_down_counting_fails_open_and_resumes() {
    let keys = Keys::new(KeyKind::EcP256);
    let evidence = temp_dir("lockout-evidence");
    let mut engine = Engine::Redis(RedisServer::start());
    let app = app(&lockout_yaml(&keys, evidence.path(), &engine, 2, 100, "60s")).await;
    let Engine::Redis(redis) = &mut engine else { unreachable!() };
    let skipped_before = skipped_count(&app).await;
    redis.kill();
    for _ in 0..4 {
        let started = Instant::now();
        assert_eq!(app.login("10.0.3.1", "static", "x").await.status, StatusCode::UNAUTHORIZED);
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    }
    assert_eq!(app.login("10.0.3.1", "static", "badmin").await.status, StatusCode::OK);
    assert!(skipped_count(&app).await >= skipped_before + 4, "the skipped counts are on /metrics");
    redis.restart();
    let started = Instant::now();
    while ready_status(&app).await != StatusCode::OK {
        assert!(started.elapsed() < Duration::from_secs(2), "the store is back within 2 s of Redis' return");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        for password in ["x", "x", "badmin"] {
            out.push(app.login("10.0.3.1", "static", password).await.status.as_u16());
        }
        out
    };
    assert_eq!(statuses, [401, 401, 429], "counting resumed once Redis was back");
}

async fn ready_status<S, B>(app: &App<S>) -> StatusCode
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    test::call_service(&app.service, TestRequest::get().uri("/readyz").to_request()).await.status()
}

async fn skipped_count<S, B>(app: &App<S>) -> u64
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    let resp = test::call_service(&app.service, TestRequest::get().uri("/metrics").to_request()).await;
    let text = String::from_utf8(test::read_body(resp).await.to_vec()).unwrap();
    text.lines()
        .filter(|l| l.starts_with("registry_auth_lockout_store_errors_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

/// Two real replicas on one Redis share the counts: failures at either add up, the lock
/// holds at both, and exactly one audit event says so.
#[test]
fn two_replicas_share_counts_through_redis() {
    let keys = Keys::new(KeyKind::EcP256);
    let evidence = temp_dir("lockout-evidence");
    let engine = Engine::Redis(RedisServer::start());
    let yaml = lockout_yaml(&keys, evidence.path(), &engine, 3, 100, "60s");
    let replicas = [AuthServer::start(&yaml, false, &["serve"]), AuthServer::start(&yaml, false, &["serve"])];
    let login = |replica: &AuthServer, password: &str| {
        let (name, value) = basic("static", password);
        let path = "/auth?service=registry&scope=repository:team/app:pull";
        http_get(&replica.addr, path, &[(&name, &value), ("X-Real-Ip", "10.0.4.1")]).unwrap()
    };
    assert_eq!(login(&replicas[0], "x").status, 401);
    assert_eq!(login(&replicas[1], "x").status, 401);
    assert_eq!(login(&replicas[0], "x").status, 401);
    for replica in &replicas {
        let r = login(replica, "badmin");
        assert_eq!(r.status, 429, "{}", r.body_text());
        assert!(r.header("retry-after").is_some());
    }
    let events: usize = replicas
        .iter()
        .map(|r| {
            r.process
                .stderr()
                .lines()
                .filter(|l| l.contains("event=\"lockout\"") || l.contains("event=lockout"))
                .count()
        })
        .sum();
    assert_eq!(
        events,
        1,
        "one audit event per lockout:\n{}\n{}",
        replicas[0].process.stderr(),
        replicas[1].process.stderr()
    );
    // The same on /metrics, by scope only (no account or address in any label).
    let metric = |replica: &AuthServer, name: &str| -> u64 {
        let text = ureq::get(&format!("http://{}/metrics", replica.addr)).call().unwrap().into_string().unwrap();
        assert!(!text.contains("10.0.4.1"), "{text}");
        text.lines().find(|l| l.starts_with(name)).and_then(|l| l.rsplit(' ').next()?.parse().ok()).unwrap_or(0)
    };
    let sum = |name: &str| replicas.iter().map(|r| metric(r, name)).sum::<u64>();
    assert_eq!(sum("registry_auth_lockouts_total{scope=\"ip\"}"), 1);
    assert_eq!(sum("registry_auth_lockout_refused_total{scope=\"ip\"}"), 2);
    assert_eq!(sum("registry_auth_lockouts_total{scope=\"account\"}"), 0);
    drop(engine);
}
