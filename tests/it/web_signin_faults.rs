//! The web sign-in's own upstream fetches under fault, against a local misbehaving issuer
//! (`support::jwt_issuer`, the CI-token tests' one): OIDC discovery, the JWKS and the token
//! endpoint each hang, answer garbage or send a huge body. The browser gets the fixed
//! "provider unavailable" page (502), never a panic; a stalled fetch holds up only the
//! sign-ins waiting for it, while a static user's `/auth` login is answered; the start
//! (and `check-config`) warns about an issuer whose discovery cannot be fetched.
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::auth_server::binary;
use crate::support::jwt_issuer::{now, IssuerKey, JwtIssuer, Mode};
use crate::support::oidc_provider::{Answer, CookieAgent};
use crate::support::ports::{free_port, wait_until, Probe};
use crate::web_signin::{oidc_section, query_param, Server, CLIENT_ID};

const DISCOVERY: &str = "/.well-known/openid-configuration";
/// `admin`/`badmin`, for the logins that must not wait.
const USERS: &str =
    "users:\n  admin:\n    password: \"$2y$05$LO.vzwpWC5LZGqThvEfznu8qhb5SGqvBSWY1J3yZ4AxtMRZ3kN5jC\"\n";

/// Starts a sign-in: `(state, nonce)` from the redirect to the issuer, or the answer.
fn start(server: &Server, agent: &mut CookieAgent) -> Result<(String, String), Answer> {
    let answer = agent.request("GET", &server.url("/oidc_auth"), None);
    match answer.location.as_deref() {
        Some(location) if answer.status == 302 => {
            Ok((query_param(location, "state").unwrap(), query_param(location, "nonce").unwrap()))
        }
        _ => Err(answer),
    }
}

fn callback(server: &Server, agent: &mut CookieAgent, state: &str) -> Answer {
    agent.request("GET", &server.url(&format!("/oidc_auth?code=c0de&state={state}")), None)
}

/// The token endpoint's answer with an ID token for `nonce`, signed with the issuer's key.
fn token_answer(issuer: &JwtIssuer, nonce: &str) -> Value {
    let claims = json!({"iss": issuer.url, "aud": CLIENT_ID, "sub": "s1", "exp": now() + 300, "iat": now(),
        "nonce": nonce, "email": "alice@acme.test", "email_verified": true, "groups": ["dev"]});
    json!({"access_token": "upstream-access", "token_type": "Bearer", "expires_in": 3600, "id_token": issuer.mint(&claims)})
}

fn assert_unavailable_page(answer: &Answer, what: &str, log: &str) {
    assert_eq!(answer.status, 502, "{what}: {}\n{log}", answer.body);
    assert!(answer.body.contains("The identity provider is unavailable"), "{what}: {}", answer.body);
    assert!(!answer.body.contains("127.0.0.1:"), "{what}: the cause stays in the log: {}", answer.body);
    assert!(!answer.body.contains("id=\"password\""), "{what}");
}

/// Runs `slow` (which waits for a hanging fetch) on a thread and checks that, while it
/// waits, a static user's token request is answered: the stalled provider blocks no one else.
fn others_served_while(
    server: &Server,
    what: &str,
    started: impl Fn() -> bool,
    slow: impl FnOnce() -> Answer + Send + 'static,
) -> Answer {
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let waiting = std::thread::spawn(move || {
        let answer = slow();
        flag.store(true, Ordering::SeqCst);
        answer
    });
    wait_until(&format!("{what}: the hanging fetch starts"), Duration::from_secs(10), || {
        if started() {
            Probe::Ready(())
        } else {
            Probe::NotYet("not asked yet".into())
        }
    })
    .unwrap();
    for _ in 0..3 {
        let (status, body) = server.token("admin", "badmin", "repository:dev/app:pull");
        assert_eq!(status, 200, "{what}: {body}");
    }
    assert!(!done.load(Ordering::SeqCst), "{what}: the static login was answered while the fetch still hung");
    waiting.join().unwrap()
}

#[test]
fn hanging_garbage_and_huge_upstream_answers_give_the_unavailable_page_and_block_no_one_else() {
    let issuer = Arc::new(JwtIssuer::start(IssuerKey::rsa("k1")));
    issuer.set_mode_at(DISCOVERY, Mode::Garbage);
    let addr = format!("127.0.0.1:{}", free_port());
    let section = oidc_section(&issuer.url, &addr, "").replace("http_timeout: 5s", "http_timeout: 2s");
    let server = Arc::new(Server::start(&addr, &section, USERS));

    // The start warns (in the background; it does not wait for the issuer).
    wait_until("the start-up discovery warning", Duration::from_secs(10), || {
        if server.log().contains("oidc_auth: the identity provider cannot be asked") {
            Probe::Ready(())
        } else {
            Probe::NotYet("no warning yet".into())
        }
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", server.log()));

    // Discovery: garbage, huge, hanging.
    for mode in [Mode::Garbage, Mode::Huge] {
        issuer.set_mode_at(DISCOVERY, mode);
        let answer = start(&server, &mut CookieAgent::new()).unwrap_err();
        assert_unavailable_page(&answer, &format!("discovery {mode:?}"), &server.log());
    }
    issuer.set_mode_at(DISCOVERY, Mode::Hang);
    let fetches = issuer.discovery_fetches();
    let s = server.clone();
    let answer = others_served_while(
        &server,
        "discovery hangs",
        || issuer.discovery_fetches() > fetches,
        move || start(&s, &mut CookieAgent::new()).unwrap_err(),
    );
    assert_unavailable_page(&answer, "discovery hangs", &server.log());

    // The JWKS (the token endpoint answers a good ID token): garbage, huge, hanging.
    issuer.set_mode(Mode::Normal);
    for mode in [Mode::Garbage, Mode::Huge] {
        issuer.set_mode_at("/jwks", mode);
        let mut agent = CookieAgent::new();
        let (state, nonce) = start(&server, &mut agent).unwrap_or_else(|a| panic!("{a:?}\n{}", server.log()));
        issuer.answer_token(&token_answer(&issuer, &nonce));
        assert_unavailable_page(&callback(&server, &mut agent, &state), &format!("JWKS {mode:?}"), &server.log());
    }
    issuer.set_mode_at("/jwks", Mode::Hang);
    let mut agent = CookieAgent::new();
    let (state, nonce) = start(&server, &mut agent).unwrap();
    issuer.answer_token(&token_answer(&issuer, &nonce));
    let fetches = issuer.jwks_fetches();
    let s = server.clone();
    let answer = others_served_while(
        &server,
        "JWKS hangs",
        || issuer.jwks_fetches() > fetches,
        move || callback(&s, &mut agent, &state),
    );
    assert_unavailable_page(&answer, "JWKS hangs", &server.log());

    // The token endpoint: garbage, huge, hanging (counted through the sign-ins' answers).
    for mode in [Mode::Garbage, Mode::Huge, Mode::Hang] {
        issuer.set_mode_at("/token", mode);
        let mut agent = CookieAgent::new();
        let (state, _) = start(&server, &mut agent).unwrap();
        assert_unavailable_page(
            &callback(&server, &mut agent, &state),
            &format!("token endpoint {mode:?}"),
            &server.log(),
        );
    }

    // The issuer recovers: the same server signs in (the harness is sound).
    issuer.set_mode(Mode::Normal);
    let mut agent = CookieAgent::new();
    let (state, nonce) = start(&server, &mut agent).unwrap();
    issuer.answer_token(&token_answer(&issuer, &nonce));
    let good = callback(&server, &mut agent, &state);
    assert_eq!(good.status, 200, "{}\n{}", good.body, server.log());
    assert!(good.body.contains("id=\"password\""), "{}", good.body);
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.contains("upstream-access"), "no upstream token in the log");
}

/// `check-config` says when the issuer's discovery cannot be fetched, as a warning with
/// the key, line and fix; the config is still OK.
#[test]
fn check_config_warns_when_the_issuer_cannot_be_asked() {
    let dead = format!("http://127.0.0.1:{}", free_port());
    let keys = crate::common::Keys::new(crate::common::KeyKind::EcP256);
    let dir = crate::support::temp_dir("check");
    let yaml = format!(
        "server:\n  addr: \"127.0.0.1:5001\"\ntoken:\n  issuer: i\n  expiration: 900\n  certificate: \"@CERT@\"\n  key: \"@KEY@\"\n{}acl: []\n",
        oidc_section(&dead, "127.0.0.1:5001", "")
    );
    let path = dir.path().join("c.yml");
    std::fs::write(&path, crate::common::with_keys(&yaml, &keys)).unwrap();
    let output = Command::new(binary()).arg("check-config").arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("warning: oidc_auth: the identity provider cannot be asked")
            && text.contains("(at oidc_auth.issuer, line 8)")
            && text.contains("fix: check issuer:"),
        "{text}"
    );
}
