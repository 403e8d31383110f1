//! `ci_token_auth`: CI jobs log in with their own OIDC token, on the real binary. A test
//! issuer (`support::jwt_issuer`) serves discovery and a JWKS on loopback; skopeo pushes and
//! pulls through the real registry with the token as password, the ACL decides on the
//! mapped account and labels, the registry token never outlives the CI token, the issuer
//! rotates its key mid-run, forged and malformed tokens are refused with 401, and a JWKS
//! endpoint that hangs, answers garbage or sends a huge body costs that issuer's logins
//! the fixed 500 without holding up anyone else's.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::auth_server::AuthServer;
use crate::common::{decode_jwt, KeyKind, Keys, ADMIN_HASH};
use crate::stored_creds::{basic, call, granted};
use crate::support::jwt_issuer::{hs256_with_public_key, now, raw_token, sign, IssuerKey, JwtIssuer, Mode};
use crate::support::oci::write_oci_layout;
use crate::support::oidc_provider::{OidcClient, OidcProvider, OidcProviderConfig};
use crate::support::ports::{wait_until, Probe};
use crate::support::registry::{Registry, RegistryAuth};
use crate::support::skopeo::{docker_ref, Creds, Skopeo};
use crate::support::temp_dir;

const SERVICE: &str = "registry.test";
const ISSUER: &str = "Acme auth server";
const AUDIENCE: &str = "registry.test";

fn config(keys: &Keys, ci: &JwtIssuer, other: &JwtIssuer) -> String {
    let issuers = format!(
        r#"    - issuer: "{ci}"
      audience: "{AUDIENCE}"
      required_claims:
        repository_owner: acme
      account: "gha:${{claims.repository}}"
      labels:
        repo: "${{claims.repository}}"
        env: "${{claims.environment}}"
    - issuer: "{other}"
      audience: "{AUDIENCE}"
      account: "other:${{claims.sub}}"
"#,
        ci = ci.url,
        other = other.url,
    );
    config_with(keys, &issuers)
}

/// The auth server's config with these `ci_token_auth.issuers` entries.
fn config_with(keys: &Keys, issuers: &str) -> String {
    format!(
        r#"server:
  addr: "@ADDR@"
  certificate: "{cert}"
  key: "{key}"
token:
  issuer: "{ISSUER}"
  expiration: 900
ci_token_auth:
  http_timeout: 3s
  jwks_refetch_interval: 1s
  issuers:
{issuers}users:
  "admin":
    password: "{ADMIN_HASH}"
acl:
  - match: {{account: "admin"}}
    actions: ["*"]
  - match: {{name: "${{labels:repo}}"}}
    actions: ["pull", "push"]
    comment: "a job pushes its own repository"
  - match: {{labels: {{env: "production"}}, name: "releases/*"}}
    actions: ["pull", "push"]
    comment: "production jobs publish releases"
  - match: {{account: "/^gha:acme\\/.+$/", name: "acme/*"}}
    actions: ["pull"]
"#,
        cert = keys.cert.display(),
        key = keys.key.display(),
    )
}

struct Fixture {
    keys: Keys,
    ci: JwtIssuer,
    other: JwtIssuer,
    auth: AuthServer,
    http: ureq::Agent,
}

impl Fixture {
    fn start() -> Fixture {
        let keys = Keys::new(KeyKind::EcP256);
        let ci = JwtIssuer::start(IssuerKey::rsa("rsa-1"));
        let other = JwtIssuer::start(IssuerKey::ec("ec-other"));
        let auth = AuthServer::start(&config(&keys, &ci, &other), true, &["serve"]);
        let http = AuthServer::client(&keys.cert);
        Fixture { keys, ci, other, auth, http }
    }

    fn token(&self, user: &str, password: &str, scope: &str) -> (u16, Value) {
        let req = self.http.get(&self.auth.realm()).query("service", SERVICE).query("scope", scope);
        call(req.set("Authorization", &basic(user, password)), None)
    }

    fn actions(&self, password: &str, scope: &str) -> (String, Vec<String>) {
        let (status, body) = self.token("ci", password, scope);
        assert_eq!(status, 200, "{body}\n{}", self.auth.process.log());
        granted(&body)
    }

    fn status(&self, password: &str) -> u16 {
        self.token("ci", password, "repository:acme/app:pull").0
    }
}

#[test]
fn ci_jobs_push_and_pull_through_the_real_registry_with_their_oidc_token() {
    let f = Fixture::start();
    let registry = Registry::start(RegistryAuth {
        realm: f.auth.realm(),
        service: SERVICE.into(),
        issuer: ISSUER.into(),
        rootcertbundle: f.keys.cert.clone(),
    });
    let job = f.ci.mint(&f.ci.claims(AUDIENCE, "acme/app", 600));
    let images = temp_dir("ci-token-images");
    let image = write_oci_layout(&images.path().join("layout"), "v1", &[("hello.txt", b"built by CI")]);
    let skopeo = Skopeo::new();
    let at = |repo: &str| docker_ref(&registry.addr(), repo, "v1");
    let context = || format!("{}\n{}", f.auth.process.log(), registry.log());

    // The job pushes and pulls its own repository, with any user name.
    skopeo
        .copy(&image.oci_ref(), &at("acme/app"), Creds::Anonymous, Creds::Basic("anything", &job))
        .unwrap_or_else(|e| panic!("CI push: {e}\n{}", context()));
    skopeo.inspect_raw(&at("acme/app"), Creds::Basic("x", &job)).unwrap_or_else(|e| panic!("CI pull: {e}"));
    // Another repository of the owner: pull only; releases/: only for production jobs.
    assert!(skopeo.copy(&image.oci_ref(), &at("acme/other"), Creds::Anonymous, Creds::Basic("ci", &job)).is_err());
    assert!(skopeo.copy(&image.oci_ref(), &at("releases/app"), Creds::Anonymous, Creds::Basic("ci", &job)).is_err());
    let mut production = f.ci.claims(AUDIENCE, "acme/app", 600);
    production["environment"] = json!("production");
    let release_job = f.ci.mint(&production);
    skopeo
        .copy(&image.oci_ref(), &at("releases/app"), Creds::Anonymous, Creds::Basic("ci", &release_job))
        .unwrap_or_else(|e| panic!("production push: {e}\n{}", context()));

    // The ACL sees the mapped account and labels.
    let (sub, actions) = f.actions(&job, "repository:acme/app:pull,push");
    assert_eq!((sub.as_str(), actions), ("gha:acme/app", vec!["pull".to_string(), "push".to_string()]));
    assert_eq!(f.actions(&job, "repository:acme/lib:pull,push").1, ["pull"]);
    assert!(f.actions(&job, "repository:releases/app:push").1.is_empty());
    assert!(f.actions(&job, "repository:evil/app:pull").1.is_empty());
}

#[test]
fn the_registry_token_never_outlives_the_ci_token() {
    let f = Fixture::start();
    let short = f.ci.claims(AUDIENCE, "acme/app", 120);
    let (status, body) = f.token("ci", &f.ci.mint(&short), "repository:acme/app:pull");
    assert_eq!(status, 200, "{body}");
    let claims = decode_jwt(body["token"].as_str().unwrap()).claims;
    let ci_exp = short["exp"].as_u64().unwrap();
    assert!(claims["exp"].as_u64().unwrap() <= ci_exp, "{claims} outlives {ci_exp}");
    assert!(body["expires_in"].as_u64().unwrap() <= 120, "{body}");
    assert!(body.get("refresh_token").is_none(), "no identity token for a CI login: {body}");
    // A long-lived CI token gets the configured lifetime, as a password login does.
    let (_, body) = f.token("ci", &f.ci.mint(&f.ci.claims(AUDIENCE, "acme/app", 7200)), "repository:acme/app:pull");
    assert_eq!(body["expires_in"], 900, "{body}");
    // A verified token is remembered, but never past its own exp (the cache TTL is 60 s).
    let brief = f.ci.mint(&f.ci.claims(AUDIENCE, "acme/app", 2));
    assert_eq!((f.status(&brief), f.status(&brief)), (200, 200));
    wait_until("the remembered token expires", Duration::from_secs(10), || match f.status(&brief) {
        401 => Probe::Ready(()),
        status => Probe::NotYet(format!("status {status}")),
    })
    .unwrap();
    // A static user's token is unchanged.
    let (status, body) = f.token("admin", "badmin", "repository:acme/app:pull");
    assert_eq!((status, body["expires_in"].as_u64()), (200, Some(900)), "{body}");
}

#[test]
fn a_key_rotation_at_the_issuer_is_picked_up_and_unknown_kids_are_rate_limited() {
    let f = Fixture::start();
    let claims = f.ci.claims(AUDIENCE, "acme/app", 600);
    let old = f.ci.current_key();
    assert_eq!(f.status(&f.ci.mint(&claims)), 200);
    assert_eq!(f.ci.jwks_fetches(), 1);
    // Known kids are served from the cache.
    for _ in 0..5 {
        assert_eq!(f.status(&f.ci.mint(&claims)), 200);
    }
    assert_eq!(f.ci.jwks_fetches(), 1);

    // The issuer rotates (new kid, EC key) while we run: the new kid makes us refetch.
    f.ci.rotate(IssuerKey::ec("ec-2"));
    let rotated = f.ci.mint(&claims);
    wait_until("the rotated key is accepted", Duration::from_secs(10), || match f.status(&rotated) {
        200 => Probe::Ready(()),
        status => Probe::NotYet(format!("status {status}")),
    })
    .unwrap();
    assert_eq!(f.status(&sign(&old, &claims)), 200, "the old key is still published");

    // A kid the issuer does not have, after a refetch: 401; a burst of them fetches at most
    // once per jwks_refetch_interval.
    let stranger = IssuerKey::ec("no-such-kid");
    let (before, started) = (f.ci.jwks_fetches(), std::time::Instant::now());
    for _ in 0..10 {
        assert_eq!(f.status(&sign(&stranger, &claims)), 401);
    }
    let (fetched, allowed) = (f.ci.jwks_fetches() - before, 1 + started.elapsed().as_secs() as usize);
    assert!(fetched <= allowed, "{fetched} fetches for 10 unknown kids in {:?}", started.elapsed());
    // The wrong key under a known kid is a bad signature.
    let mut impostor = IssuerKey::rsa("rsa-1");
    impostor.kid = old.kid.clone();
    assert_eq!(f.status(&sign(&impostor, &claims)), 401);
}

#[test]
fn forged_expired_and_malformed_tokens_are_refused_with_401() {
    let f = Fixture::start();
    let key = f.ci.current_key();
    let good = f.ci.claims(AUDIENCE, "acme/app", 600);
    let accepted = f.ci.mint(&good);
    assert_eq!(f.status(&accepted), 200);
    let with = |changes: &[(&str, Value)]| {
        let mut claims = good.clone();
        for (name, value) in changes {
            if value.is_null() {
                claims.as_object_mut().unwrap().remove(*name);
            } else {
                claims[*name] = value.clone();
            }
        }
        claims
    };
    let now = now();
    let cases: Vec<(&str, String)> = vec![
        ("expired", f.ci.mint(&with(&[("exp", json!(now - 120))]))),
        ("expired within the leeway", f.ci.mint(&with(&[("exp", json!(now - 5))]))),
        ("not yet valid", f.ci.mint(&with(&[("nbf", json!(now + 600))]))),
        ("wrong issuer", f.ci.mint(&with(&[("iss", json!("https://evil.example.com"))]))),
        ("another trusted issuer's name", f.ci.mint(&with(&[("iss", json!(f.other.url))]))),
        ("wrong audience", f.ci.mint(&with(&[("aud", json!("someone-else"))]))),
        ("no audience", f.ci.mint(&with(&[("aud", Value::Null)]))),
        ("no exp", f.ci.mint(&with(&[("exp", Value::Null)]))),
        ("missing required claim", f.ci.mint(&with(&[("repository_owner", Value::Null)]))),
        ("required claim differs", f.ci.mint(&with(&[("repository_owner", json!("evil"))]))),
        ("account claim missing", f.ci.mint(&with(&[("repository", Value::Null)]))),
        ("alg none", raw_token(&json!({"alg": "none", "kid": key.kid}), &good, b"")),
        ("alg none, two parts", raw_token(&json!({"alg": "none"}), &good, b"").trim_end_matches('.').to_string()),
        ("HS256 with the public key", hs256_with_public_key(&key, &good)),
        ("header not JSON", format!("eyJub3Q.{}", f.ci.mint(&good).split_once('.').unwrap().1)),
        ("three garbage parts", "eyJhbGciOi.eyJpc3MiOi.c2ln".to_string()),
        ("truncated signature", {
            let t = f.ci.mint(&good);
            t[..t.len() - 10].to_string()
        }),
        ("a plain password", "hunter2".to_string()),
    ];
    for (what, token) in &cases {
        let (status, body) = f.token("ci", token, "repository:acme/app:pull");
        assert_eq!(status, 401, "{what}: {body}");
    }
    let log = f.auth.process.log();
    assert!(!log.contains(&accepted[accepted.len() - 40..]), "no token material in the log");
    assert!(log.contains("CI token refused"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

#[test]
fn a_hostile_jwks_endpoint_costs_its_logins_a_500_and_blocks_no_one_else() {
    let f = Fixture::start();
    let job = f.ci.mint(&f.ci.claims(AUDIENCE, "acme/app", 600));
    assert_eq!(f.status(&job), 200, "warm the good issuer's cache");
    let other_claims = json!({"iss": f.other.url, "aud": AUDIENCE, "sub": "job-1", "exp": now() + 600});
    let other_token = f.other.mint(&other_claims);

    // Hanging: the logins for that issuer wait (one fetch in flight) while everyone else
    // is served.
    f.other.set_mode(Mode::Hang);
    let done = Arc::new(AtomicBool::new(false));
    let waiting: Vec<_> = (0..3)
        .map(|_| {
            let (http, realm, token, done) = (f.http.clone(), f.auth.realm(), other_token.clone(), done.clone());
            std::thread::spawn(move || {
                let req = http.get(&realm).query("service", SERVICE).query("scope", "repository:x:pull");
                let (status, body) = call(req.set("Authorization", &basic("ci", &token)), None);
                done.store(true, Ordering::SeqCst);
                (status, body)
            })
        })
        .collect();
    wait_until("the hanging issuer is asked", Duration::from_secs(10), || {
        if f.other.discovery_fetches() > 0 {
            Probe::Ready(())
        } else {
            Probe::NotYet("no discovery request yet".into())
        }
    })
    .unwrap();
    for _ in 0..5 {
        assert_eq!(f.status(&job), 200);
        assert_eq!(f.token("admin", "badmin", "repository:acme/app:pull").0, 200);
    }
    assert!(!done.load(Ordering::SeqCst), "other logins were answered while the hanging fetch was still waiting");
    for handle in waiting {
        let (status, body) = handle.join().unwrap();
        assert_eq!(status, 500, "{body}");
        assert!(!body.to_string().contains("127.0.0.1"), "fixed body, no cause: {body}");
    }
    assert_eq!(f.other.discovery_fetches(), 1, "one fetch in flight for concurrent logins");

    // Garbage and a huge body: the fixed 500 as well, once the refetch interval allows a try.
    for mode in [Mode::Garbage, Mode::Huge] {
        f.other.set_mode(mode);
        let fetches = f.other.discovery_fetches();
        let status = wait_until(&format!("{mode:?} is fetched"), Duration::from_secs(10), || {
            let status = f.status(&other_token);
            if f.other.discovery_fetches() > fetches {
                Probe::Ready(status)
            } else {
                Probe::NotYet(format!("status {status}"))
            }
        })
        .unwrap();
        assert_eq!(status, 500, "{mode:?}");
    }
    // The issuer recovers: its logins work again.
    f.other.set_mode(Mode::Normal);
    wait_until("the recovered issuer is used", Duration::from_secs(10), || match f.status(&other_token) {
        200 => Probe::Ready(()),
        status => Probe::NotYet(format!("status {status}")),
    })
    .unwrap();
    let (sub, _) = granted(&f.token("ci", &other_token, "repository:x:pull").1);
    assert_eq!(sub, "other:job-1");
    let log = f.auth.process.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("cannot fetch the keys of a CI token issuer"), "{log}");
}

#[test]
fn check_config_reports_a_bad_section_with_path_line_and_fix() {
    let yaml = r#"server:
  addr: "127.0.0.1:0"
token:
  issuer: "x"
  certificate: "/nonexistent.pem"
  key: "/nonexistent.key"
ci_token_auth:
  issuers:
    - issuer: "http://ci.example.com"
      audience: "r"
      account: "gha:${claims.repository"
acl: []
"#;
    let dir = temp_dir("ci-token-config");
    let path = dir.path().join("auth_config.yml");
    std::fs::write(&path, yaml).unwrap();
    let (code, out, _) = crate::e2e::run_cli(&["check-config"], &path);
    assert_eq!(code, Some(1), "{out}");
    let line = |words: &[&str]| out.lines().find(|l| words.iter().all(|w| l.contains(w))).map(str::to_string);
    assert!(line(&["ci_token_auth.issuers[0].issuer", "https://", "line 9", "fix:"]).is_some(), "{out}");
    assert!(line(&["ci_token_auth.issuers[0].account", "unclosed", "line 11", "fix:"]).is_some(), "{out}");
}

/// A token signed by a real OpenID provider (npm `oidc-provider`, a client-credentials
/// access token as a JWT): discovered, verified and mapped like a CI platform's token.
#[test]
fn a_token_from_a_real_openid_provider_logs_in() {
    let machine =
        OidcClient::machine("ci-job", "ci-secret", json!({"repository_owner": "acme", "repository": "acme/app"}));
    let stranger = OidcClient::machine("other-job", "other-secret", json!({"repository_owner": "evil"}));
    let provider = OidcProvider::start(&OidcProviderConfig::default().client(machine.clone()).client(stranger.clone()));
    let keys = Keys::new(KeyKind::EcP256);
    let issuers = format!(
        r#"    - issuer: "{}"
      audience: "https://registry.example"
      required_claims: {{repository_owner: acme}}
      account: "oidc:${{claims.sub}}"
      labels: {{repo: "${{claims.repository}}"}}
"#,
        provider.issuer()
    );
    let auth = AuthServer::start(&config_with(&keys, &issuers), true, &["serve"]);
    let http = AuthServer::client(&keys.cert);
    let token = |password: &str| {
        let req = http.get(&auth.realm()).query("service", SERVICE).query("scope", "repository:acme/app:pull,push");
        call(req.set("Authorization", &basic("ci", password)), None)
    };
    let (status, body) = token(&provider.client_credentials_jwt(&machine, "https://registry.example"));
    assert_eq!(status, 200, "{body}\n{}", auth.process.log());
    assert_eq!(granted(&body), ("oidc:ci-job".to_string(), vec!["pull".to_string(), "push".to_string()]));
    let (status, _) = token(&provider.client_credentials_jwt(&machine, "https://elsewhere.example"));
    assert_eq!(status, 401, "another audience");
    let (status, _) = token(&provider.client_credentials_jwt(&stranger, "https://registry.example"));
    assert_eq!(status, 401, "a required claim differs");
}
