//! The console's operator part. Domain layer on every store engine (memory, embedded,
//! embedded through the owner's admin socket, a real redis-server): current lockouts
//! listed and unlocked, the recent audit events kept and filtered. Then on the real
//! binary: `registry-auth lockout list|unlock` while the server runs, and the server
//! keeping its audit events in the store off the request path.
use std::sync::Arc;
use std::time::Duration;

use registry_auth::config::store::{EmbeddedConfig, RedisConfig, DEFAULT_TIMEOUT};
use registry_auth::config::LockoutConfig;
use registry_auth::identity::lockout::{Attempt, Lockout, Subject};
use registry_auth::identity::lockouts;
use registry_auth::recent_events::{self, Filter, RecentEvent};
use registry_auth::store::embedded::EmbeddedStore;
use registry_auth::store::memory::MemoryStore;
use registry_auth::store::redis::RedisStore;
use registry_auth::store::{self, SharedStore, StoreConfig};

use crate::stored_creds::{self, call, Engine, SERVICE};
use crate::support::redis::RedisServer;
use crate::support::temp_dir;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn lockout_config(per_ip: u64, per_account: u64) -> LockoutConfig {
    LockoutConfig {
        enabled: true,
        window: Duration::from_secs(60),
        max_failures_per_ip: per_ip,
        max_failures_per_account: per_account,
    }
}

/// Lockouts and recent events through the library, on one engine.
async fn domain(store: SharedStore) {
    let name = store.describe().to_string();
    let lockout = Lockout::new(&lockout_config(3, 2), store.clone());
    let ip = Some("10.9.8.7".parse().unwrap());
    for account in ["mallory", "mallory", "<b>eve</b>"] {
        lockout.record_failure(&Attempt { account, ip, service: SERVICE }).await;
    }
    let locked = lockouts::list(&lockout).await.unwrap();
    let listed: Vec<(String, u64)> = locked.iter().map(|l| (l.subject.member(), l.failures)).collect();
    assert_eq!(listed, [("account:mallory".to_string(), 2), ("ip:10.9.8.7".to_string(), 3)], "{name}");
    assert!(locked.iter().all(|l| l.resets_in <= Duration::from_secs(60) && l.resets_in > Duration::from_secs(50)));
    let mallory = Attempt { account: "mallory", ip: Some("10.1.1.1".parse().unwrap()), service: SERVICE };
    assert!(lockout.check(&mallory).await.is_err(), "{name}: locked");

    let account = Subject::Account("mallory".into());
    assert!(lockouts::unlock(&lockout, &account, "ops@console", "console").await.unwrap(), "{name}");
    assert!(lockout.check(&mallory).await.is_ok(), "{name}: unlocked");
    let address = Subject::from_member("ip:10.9.8.7").unwrap();
    assert!(lockouts::unlock(&lockout, &address, "ops@console", "console").await.unwrap());
    assert!(lockouts::list(&lockout).await.unwrap().is_empty(), "{name}");
    assert!(!lockouts::unlock(&lockout, &account, "ops@console", "console").await.unwrap(), "{name}: nothing left");

    // The unlocks were kept at once (operator actions write directly).
    let unlocks =
        recent_events::recent(&store, &Filter { outcome: Some("unlocked".into()), ..Filter::default() }).await.unwrap();
    assert_eq!(unlocks.len(), 3, "{name}: {unlocks:?}");
    assert_eq!((unlocks[2].account.as_str(), unlocks[2].operator.as_str()), ("mallory", "ops@console"));
    assert_eq!(unlocks[1].ip, "10.9.8.7");

    // Recent events: newest first, capped, filtered exactly.
    let event = |i: usize| RecentEvent {
        account: if i.is_multiple_of(2) { "alice".into() } else { "bob".into() },
        repositories: vec![format!("team/app{}", i % 3)],
        ..RecentEvent::new("token_decision", if i.is_multiple_of(5) { "denied" } else { "issued" })
    };
    let many: Vec<RecentEvent> = (0..recent_events::CAP + 200).map(event).collect();
    recent_events::append(&store, &many).await.unwrap();
    let all = recent_events::recent(&store, &Filter::default()).await.unwrap();
    assert_eq!(all.len(), recent_events::CAP, "{name}: capped");
    assert_eq!(all[0], many[many.len() - 1], "{name}: newest first");
    let filter = Filter {
        account: Some("alice".into()),
        outcome: Some("denied".into()),
        repository: Some("team/app1".into()),
        limit: 5,
    };
    let some = recent_events::recent(&store, &filter).await.unwrap();
    assert_eq!(some.len(), 5, "{name}");
    assert!(some.iter().all(|e| filter.matches(e)));
    // i even, i % 5 == 0, i % 3 == 1: i ≡ 10 (mod 30); the newest is the largest below CAP + 200.
    assert_eq!(some[0], many[1180], "{name}");
}

#[test]
fn memory_engine() {
    runtime().block_on(domain(Arc::new(MemoryStore::new())));
}

#[test]
fn embedded_engine_directly_and_through_the_admin_socket() {
    let dir = temp_dir("ops-embedded");
    let path = dir.path().join("data");
    let rt = runtime();
    rt.block_on(domain(Arc::new(EmbeddedStore::open(&path).unwrap())));
    let config = StoreConfig::Embedded(EmbeddedConfig { path: path.clone(), hash_key: None, line: 1 });
    let owner = store::open_owned(&config).unwrap();
    rt.block_on(async {
        store::admin::serve(&path, owner.clone()).unwrap();
        domain(store::for_cli(&config).unwrap()).await;
    });
}

#[test]
fn redis_engine() {
    let redis = RedisServer::start();
    let config = RedisConfig {
        addrs: vec![redis.addr()],
        cluster: false,
        db: 0,
        username: None,
        password: None,
        tls: false,
        ca_pem: None,
        key_prefix: "ops:".to_string(),
        timeout: DEFAULT_TIMEOUT,
        hash_key: None,
        line: 1,
    };
    runtime().block_on(domain(Arc::new(RedisStore::new(&config).unwrap())));
    assert_eq!(redis.command(&["LLEN", "ops:audit:recent"]), format!(":{}", recent_events::CAP), "LTRIM keeps the cap");
}

fn token(f: &stored_creds::Fixture, ip: &str, user: &str, password: &str, scope: &str) -> u16 {
    let req = f.http.get(&f.url()).query("service", SERVICE).query("scope", scope).set("X-Real-Ip", ip);
    call(req.set("Authorization", &stored_creds::basic(user, password)), None).0
}

/// The server's events reach the store in the background; polls the list for them.
fn kept_events(f: &stored_creds::Fixture, filter: &Filter, want: usize) -> Vec<RecentEvent> {
    let config =
        StoreConfig::Embedded(EmbeddedConfig { path: f.server.dir.path().join("data"), hash_key: None, line: 1 });
    let store = store::for_cli(&config).unwrap();
    let rt = runtime();
    let started = std::time::Instant::now();
    loop {
        let events = rt.block_on(recent_events::recent(&store, filter)).unwrap();
        if events.len() >= want || started.elapsed() > Duration::from_secs(10) {
            return events;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `lockout list|unlock` on the real binary while it serves, and the audit events it keeps.
#[test]
fn lockout_cli_and_kept_audit_events() {
    let extra = "lockout:\n  window: 60s\n  max_failures_per_ip: 50\n  max_failures_per_account: 3\n";
    let f = stored_creds::Fixture::start_with(&Engine::Embedded, "", "  real_ip_header: X-Real-Ip\n", extra);
    for _ in 0..3 {
        assert_eq!(token(&f, "10.0.0.5", "test", "wrong", "repository:devs/app:pull"), 401);
    }
    assert_eq!(token(&f, "10.0.0.6", "test", "123", "repository:devs/app:pull"), 429, "locked");
    let (ok, out, err) = f.cli(&["lockout", "list"]);
    assert!(ok, "{err}");
    let row = out.lines().find(|l| l.starts_with("account")).unwrap_or_else(|| panic!("{out}"));
    assert!(row.contains("test") && row.contains(" 3 "), "{out}");

    let (ok, out, err) = f.cli(&["lockout", "unlock", "--account", "test"]);
    assert!(ok && out.contains("unlocked account test"), "{out}{err}");
    assert_eq!(token(&f, "10.0.0.6", "test", "123", "repository:devs/app:pull"), 200, "unlocked");
    let (ok, out, _) = f.cli(&["lockout", "list"]);
    assert!(ok && !out.contains("test"), "{out}");
    let (ok, out, _) = f.cli(&["lockout", "unlock", "--ip", "10.0.0.99"]);
    assert!(ok && out.contains("nothing to unlock"), "{out}");
    let (ok, _, err) = f.cli(&["lockout", "unlock"]);
    assert!(!ok && err.contains("--account"), "{err}");

    // Denials, the lockout, the unlock and the issued token, newest first.
    let test_events = Filter { account: Some("test".into()), ..Filter::default() };
    let events = kept_events(&f, &test_events, 6);
    let outcomes: Vec<&str> = events.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["issued", "unlocked", "locked", "denied", "denied", "denied"], "{events:#?}");
    assert_eq!(events[0].repositories, ["devs/app"]);
    assert!(events[0].rules.contains("acl"), "{:?}", events[0].rules);
    assert_eq!((events[3].ip.as_str(), events[3].reason.as_str()), ("10.0.0.5", "wrong_password"));
    assert!(events[1].operator.contains('@') && events[1].detail == "cli", "{:?}", events[1]);
    let metrics = f.http.get(&f.url().replace("/auth", "/metrics")).call().unwrap().into_string().unwrap();
    assert!(metrics.contains("registry_auth_recent_events_total{result=\"stored\"}"), "{metrics}");
}

/// The events of the last moments (still gathering in the process) are in the store's
/// list after a SIGTERM: read from the file once the server has exited.
#[test]
fn sigterm_keeps_the_last_events() {
    let mut f = stored_creds::Fixture::start(&Engine::Embedded, "");
    for _ in 0..3 {
        assert_eq!(token(&f, "10.0.0.7", "test", "wrong", "repository:devs/app:pull"), 401);
    }
    crate::cli::signal(f.server.process.id(), "-TERM");
    assert_eq!(crate::cli::wait_exit(&mut f.server).code(), Some(0), "{}", f.server.process.log());
    let config =
        StoreConfig::Embedded(EmbeddedConfig { path: f.server.dir.path().join("data"), hash_key: None, line: 1 });
    let store = store::for_cli(&config).unwrap();
    let filter = Filter { account: Some("test".into()), ..Filter::default() };
    let events = runtime().block_on(recent_events::recent(&store, &filter)).unwrap();
    let outcomes: Vec<&str> = events.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["denied", "denied", "denied"], "{events:#?}");
}

// ---- The Operators pages over HTTP and in chromium ----

use crate::common::TEST_HASH;
use crate::support::console::{browser_sign_in, element_text, screenshot, ConsoleClient, ConsoleServer};

/// `admin` is an operator by account, `ops` by label; `test` (group devs) and
/// `eve<script>` are not. Accounts lock after 3 failures.
fn console_server() -> ConsoleServer {
    let users = format!(
        "  \"ops\":\n    password: \"{TEST_HASH}\"\n    labels:\n      group: [\"ops\"]\n  \"eve<script>\":\n    password: \"{TEST_HASH}\"\n"
    );
    let console = "  operators:\n    - account: admin\n    - labels: {group: ops}\n";
    let sections = "lockout:\n  window: 60s\n  max_failures_per_ip: 1000\n  max_failures_per_account: 3\n";
    ConsoleServer::start_with(console, &users, sections)
}

const GETS: [&str; 6] = [
    "/operators",
    "/operators/credentials",
    "/operators/lockouts",
    "/operators/audit",
    "/operators/audit?account=test&outcome=denied",
    "/operators/explain?account=test&scopes=repository:devs/app:pull",
];
const POSTS: [&str; 3] =
    ["/operators/identity-tokens/revoke", "/operators/robots/revoke", "/operators/lockouts/unlock"];

/// An identity token of `user`, from a password login asking for offline access.
fn identity_token(server: &ConsoleServer, user: &str, password: &str) -> String {
    let req = ureq::get(&server.url("/auth"))
        .query("service", SERVICE)
        .query("scope", "repository:devs/app:pull")
        .query("offline_token", "true");
    let (status, body) = call(req.set("Authorization", &stored_creds::basic(user, password)), None);
    assert_eq!(status, 200, "{body}");
    body["refresh_token"].as_str().unwrap().to_string()
}

fn auth_status(server: &ConsoleServer, user: &str, password: &str) -> u16 {
    let req = ureq::get(&server.url("/auth")).query("service", SERVICE).query("scope", "repository:devs/app:pull");
    call(req.set("Authorization", &stored_creds::basic(user, password)), None).0
}

/// Where a 303 sends the browser, without the origin.
fn redirect(answer: &crate::support::oidc_provider::Answer) -> String {
    let location = answer.location.as_deref().unwrap_or_else(|| panic!("no redirect: {answer:?}"));
    let path = location.split_once("://").map_or(location, |(_, rest)| &rest[rest.find('/').unwrap_or(0)..]);
    path.to_string()
}

/// The listed id of the identity token of `account` on the credentials page.
fn listed_token_id(page: &str, account: &str) -> String {
    let row = page
        .find(&format!("<tr data-account=\"{account}\">"))
        .unwrap_or_else(|| panic!("no token of {account}: {page}"));
    let rest = &page[row..];
    let at = rest.find("name=\"id\" value=\"").unwrap() + "name=\"id\" value=\"".len();
    rest[at..at + 16].to_string()
}

#[test]
fn operator_pages_are_only_for_operators() {
    let server = console_server();
    let mut test = server.sign_in("test", "123");
    let home = test.get("/");
    assert!(!home.body.contains("/operators"), "no Operators link for a non-operator");
    for path in GETS {
        let answer = test.get(path);
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
        assert!(!answer.body.contains("Operators</h1>"));
    }
    for path in POSTS {
        let answer = test.post(path, &[("id", "0123456789abcdef"), ("name", "ci"), ("lockout", "account:test")]);
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
    }
    // Not signed in at all: the sign-in page, as everywhere in the console.
    let mut anonymous = ConsoleClient::new(&server.console(""));
    assert_eq!(anonymous.get("/operators/audit").status, 303);
    assert_eq!(anonymous.post_raw("/operators/lockouts/unlock", &[("lockout", "account:test")]).status, 303);

    // Operators by account and by label see every page; forms need the CSRF token.
    for (user, password) in [("admin", "badmin"), ("ops", "123")] {
        let mut op = server.sign_in(user, password);
        assert!(op.get("/").body.contains("/console/operators\""), "{user} has the Operators link");
        for path in GETS {
            let answer = op.get(path);
            assert_eq!(answer.status, 200, "{user} {path}: {}", answer.body);
            assert!(answer.body.contains("aria-label=\"Operators\""), "{path}");
        }
        for path in POSTS {
            let answer = op.post_raw(path, &[("lockout", "account:test"), ("csrf", "forged")]);
            assert_eq!(answer.status, 403, "{user} {path} without the token: {}", answer.body);
        }
    }
}

#[test]
fn operators_revoke_unlock_filter_and_explain() {
    let server = console_server();
    let mut op = server.sign_in("admin", "badmin");

    // Revoke another account's identity token: its refresh is refused.
    let token = identity_token(&server, "test", "123");
    let kept = identity_token(&server, "ops", "123");
    assert_eq!(crate::identity_tokens::exchange(&server.url("/auth"), &token, "repository:devs/app:pull").0, 200);
    let page = op.get("/operators/credentials");
    let id = listed_token_id(&page.body, "test");
    let revoked = op.post("/operators/identity-tokens/revoke", &[("id", &id)]);
    assert_eq!((revoked.status, redirect(&revoked).as_str()), (303, "/console/operators/credentials?done=token"));
    let (status, body) = crate::identity_tokens::exchange(&server.url("/auth"), &token, "repository:devs/app:pull");
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    assert_eq!(crate::identity_tokens::exchange(&server.url("/auth"), &kept, "repository:devs/app:pull").0, 200);
    let after = op.get("/operators/credentials?done=token");
    assert!(after.body.contains("id=\"notice\"") && !after.body.contains(&id), "{}", after.body);
    assert_eq!(
        redirect(&op.post("/operators/identity-tokens/revoke", &[("id", &id)])),
        "/console/operators/credentials?done=gone"
    );
    assert_eq!(op.post("/operators/identity-tokens/revoke", &[("id", "<script>")]).status, 400);

    // A robot made with the CLI, revoked in the page.
    let config = server.server.dir.path().join("auth_config.yml");
    let cli = |args: &[&str]| {
        std::process::Command::new(crate::auth_server::binary())
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    };
    let created = cli(&["robot", "create", "ci", "--scope", "repository:devs/*:pull"]);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let secret = stored_creds::printed_secret(&String::from_utf8_lossy(&created.stdout));
    assert_eq!(auth_status(&server, "robot$ci", &secret), 200);
    assert!(op.get("/operators/credentials").body.contains("robot$ci"));
    assert_eq!(
        redirect(&op.post("/operators/robots/revoke", &[("name", "ci")])),
        "/console/operators/credentials?done=robot"
    );
    assert_eq!(auth_status(&server, "robot$ci", &secret), 401, "revoked robots are refused");
    assert_eq!(
        redirect(&op.post("/operators/robots/revoke", &[("name", "ci")])),
        "/console/operators/credentials?done=gone"
    );

    // An account locked by failed logins (its name is HTML), unlocked in the page.
    for _ in 0..3 {
        assert_eq!(auth_status(&server, "eve<script>", "wrong"), 401);
    }
    assert_eq!(auth_status(&server, "eve<script>", "123"), 429, "locked");
    let locks = op.get("/operators/lockouts");
    assert!(
        locks.body.contains("<code>eve&#60;script&#62;</code>")
            || locks.body.contains("<code>eve&lt;script&gt;</code>"),
        "{}",
        locks.body
    );
    assert!(!locks.body.contains("eve<script>"), "escaped");
    let unlocked = op.post("/operators/lockouts/unlock", &[("lockout", "account:eve<script>")]);
    assert_eq!(redirect(&unlocked), "/console/operators/lockouts?done=unlocked");
    assert_eq!(auth_status(&server, "eve<script>", "123"), 200, "unlocked: logs in again");
    assert!(op.get("/operators/lockouts").body.contains("id=\"no-lockouts\""));
    assert_eq!(op.post("/operators/lockouts/unlock", &[("lockout", "bogus")]).status, 400);

    // The audit events, filtered.
    let rows = |op: &mut ConsoleClient, query: &str| {
        let page = op.get(&format!("/operators/audit?{query}"));
        assert_eq!(page.status, 200, "{}", page.body);
        element_text(&page.body, "event-count").unwrap()
    };
    assert_eq!(rows(&mut op, "account=eve%3Cscript%3E&outcome=denied"), "3 events");
    assert_eq!(rows(&mut op, "account=eve%3Cscript%3E&outcome=locked"), "1 event");
    assert_eq!(rows(&mut op, "account=eve%3Cscript%3E&outcome=unlocked"), "1 event");
    assert_eq!(rows(&mut op, "account=test&outcome=revoked"), "1 event");
    assert_eq!(rows(&mut op, "account=robot%24ci&outcome=revoked"), "1 event");
    assert_eq!(rows(&mut op, "account=eve%3Cscript%3E&outcome=denied&limit=2"), "2 events");
    assert_eq!(rows(&mut op, "repository=devs/app&account=ops&outcome=issued"), "2 events", "login and refresh");
    assert_eq!(rows(&mut op, "repository=other/app"), "0 events");
    let audit = op.get("/operators/audit?account=eve%3Cscript%3E");
    assert!(!audit.body.contains("eve<script>"), "{}", audit.body);
    assert!(audit.body.contains("eve&#60;script&#62;") || audit.body.contains("eve&lt;script&gt;"), "{}", audit.body);
    assert!(audit.body.contains("console:admin"), "the unlock names the operator");

    // Explain any account: the CLI's words.
    let explained =
        op.get("/operators/explain?account=test&labels=group%3Ddevs&scopes=repository%3Adevs%2Fapp%3Apull%2Cpush");
    let text = element_text(&explained.body, "explanation").unwrap_or_else(|| panic!("{}", explained.body));
    assert!(text.contains("decided by: acl[4]") && text.contains("granted: pull"), "{text}");
    let escaped = op.get("/operators/explain?account=%3Cscript%3E&scopes=repository%3Ax%3Apull");
    assert!(!escaped.body.contains("<script>") && escaped.body.contains("no ACL entry matched"), "{}", escaped.body);
    let bad = op.get("/operators/explain?account=test&scopes=nonsense");
    assert!(bad.body.contains("id=\"explain-error\""), "{}", bad.body);

    // The overview: the certificate's date and the running config's findings.
    let overview = op.get("/operators");
    assert!(
        overview.body.contains("id=\"cert-not-after\"") && overview.body.contains("id=\"cert-ok\""),
        "{}",
        overview.body
    );
    assert!(overview.body.contains("answers"), "{}", overview.body);
}

/// In chromium: an operator revokes another account's identity token (whose refresh is then
/// refused), unlocks a locked account (which then signs in), and filters the audit events.
#[test]
fn operator_in_the_browser() {
    let server = console_server();
    let token = identity_token(&server, "test", "123");
    for _ in 0..3 {
        assert_eq!(auth_status(&server, "test", "wrong"), 401);
    }
    let mut locked = ConsoleClient::new(&server.console(""));
    assert_ne!(locked.sign_in("test", "123").status, 303, "test is locked, in the console too");
    runtime().block_on(async {
        let browser = crate::support::browser::Browser::start("console_ops").await;
        let console = server.console("");
        browser_sign_in(&browser, &console, "admin", "badmin").await;
        browser.click("nav a[href$='/operators']").await;
        assert!(browser.text("#cert-not-after").await.contains("days left"));
        screenshot(&browser, "operators_overview").await;

        browser.click(".subnav a[href$='/operators/credentials']").await;
        let revoke =
            browser.client.find(fantoccini::Locator::Css("#tokens tr[data-account='test'] button")).await.unwrap();
        screenshot(&browser, "operators_credentials").await;
        revoke.click().await.unwrap();
        assert!(browser.text("#notice").await.contains("revoked"));
        screenshot(&browser, "operators_credentials_revoked").await;
        let (status, body) = crate::identity_tokens::exchange(&server.url("/auth"), &token, "repository:devs/app:pull");
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");

        browser.click(".subnav a[href$='/operators/lockouts']").await;
        screenshot(&browser, "operators_lockouts").await;
        browser.click("#lockouts button[aria-label='Unlock account test']").await;
        assert!(browser.text("#notice").await.contains("Unlocked"));
        let mut again = ConsoleClient::new(&server.console(""));
        assert_eq!(again.sign_in("test", "123").status, 303, "unlocked: test signs in again");

        browser.click(".subnav a[href$='/operators/audit']").await;
        browser.fill("#f-account", "test").await;
        browser
            .client
            .find(fantoccini::Locator::Css("#f-outcome"))
            .await
            .unwrap()
            .select_by_value("denied")
            .await
            .unwrap();
        browser.click("#filter").await;
        browser.text("#f-outcome option[value='denied'][selected]").await;
        assert_eq!(browser.text("#event-count").await, "3 events");
        screenshot(&browser, "operators_audit").await;

        browser.click(".subnav a[href$='/operators/explain']").await;
        browser.fill("#x-account", "test").await;
        browser.fill("#x-labels", "group=devs").await;
        browser.fill("#x-scopes", "repository:devs/app:pull,push").await;
        browser.click("#explain").await;
        assert!(browser.text("#explanation").await.contains("granted: pull"));
        screenshot(&browser, "operators_explain").await;
        browser.close().await;
    });
}

/// A bad `console.operators` block stops the start, named by its path and line.
#[test]
fn bad_operator_blocks_fail_check_config() {
    let keys = crate::common::Keys::new(crate::common::KeyKind::EcP256);
    let dir = temp_dir("ops-check");
    let base = stored_creds::config(&keys, &Engine::Embedded, "").replace("@DIR@", &dir.path().display().to_string());
    for (operators, want) in [
        ("    - {account: admin, ip: 10.0.0.0/8}\n", "console.operators[0].ip"),
        ("    - {}\n", "every signed-in account an operator"),
        ("    - account: \"/[/\"\n", "console.operators[0].account"),
        ("    - {acount: admin}\n", "unknown match condition"),
    ] {
        let path = dir.path().join("auth_config.yml");
        std::fs::write(&path, format!("{base}console:\n  operators:\n{operators}")).unwrap();
        let out =
            std::process::Command::new(crate::auth_server::binary()).arg("check-config").arg(&path).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{operators}: {text}");
        assert!(text.contains(want), "{operators}: {text}");
    }
}
