//! GitHub and GitLab sign-in against the fake forge (`support::forge`): the one upstream not
//! run for real. These drive the providers through their public contract (`WebProvider`):
//! the authorize URL is followed like a browser would (the forge redirects straight back
//! with a code), the code is exchanged, the user API, organization, teams and groups are
//! read, and revalidation sees members, leavers, revoked tokens and a stalled forge.
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use registry_auth::authn::oidc::github::GitHub;
use registry_auth::authn::oidc::gitlab::GitLab;
use registry_auth::authn::oidc::provider::{
    AuthorizeRequest, Callback, ProviderError, Revalidation, SignedIn, TokenRecord, WebProvider,
};
use registry_auth::config::web_signin::TokenDb;
use registry_auth::config::{ForgeConfig, ForgeKind};
use registry_auth::secret::Secret;
use sha2::{Digest, Sha256};
use url::Url;

use crate::support::forge::{Answers, Forge, CLIENT_ID, CLIENT_SECRET};

const TIMEOUT: Duration = Duration::from_millis(700);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn config(forge: &Forge, kind: ForgeKind, organization: Option<&str>) -> ForgeConfig {
    let (api, redirect) = match kind {
        ForgeKind::GitHub => (forge.github_api(), None),
        ForgeKind::GitLab => (forge.gitlab_api(), Some(Url::parse("http://127.0.0.1:1/gitlab_auth").unwrap())),
    };
    ForgeConfig {
        kind,
        line: 1,
        organization: organization.map(Into::into),
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(CLIENT_SECRET),
        web_uri: Url::parse(&forge.base()).unwrap(),
        api_uri: Url::parse(&api).unwrap(),
        redirect_uri: redirect,
        http_timeout: TIMEOUT,
        revalidate_after: Duration::from_secs(3600),
        registry_url: None,
        token_db: TokenDb::Store,
        token_hash_cost: None,
    }
}

/// One sign-in attempt as the flow prepares it: state, PKCE pair, callback URL.
struct Attempt {
    request: AuthorizeRequest,
    verifier: String,
}

fn attempt(callback: &str) -> Attempt {
    let verifier = format!("verifier-{}-0123456789abcdefghijklmnopqrstuvwxyz", rand::random::<u64>());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let request = AuthorizeRequest {
        state: format!("state-{}", rand::random::<u64>()),
        nonce: "unused".into(),
        pkce_challenge: challenge,
        redirect_uri: Url::parse(callback).unwrap(),
    };
    Attempt { request, verifier }
}

/// Follows the authorize URL like a browser and returns the code the forge sends back,
/// after checking that it echoes our state.
fn browse(provider: &dyn WebProvider, attempt: &Attempt) -> String {
    let url = provider.authorize_url(&attempt.request);
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let response = agent.get(url.as_str()).call().unwrap_or_else(|e| panic!("authorize {url}: {e}"));
    assert_eq!(response.status(), 302, "authorize answered {}", response.status());
    let location = Url::parse(response.header("location").expect("a Location")).unwrap();
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query.get("state"), Some(&attempt.request.state), "the forge echoes our state");
    query["code"].clone()
}

fn callback(attempt: &Attempt, code: &str) -> Callback {
    Callback {
        code: Secret::new(code),
        pkce_verifier: Secret::new(attempt.verifier.clone()),
        nonce: attempt.request.nonce.clone(),
        redirect_uri: attempt.request.redirect_uri.clone(),
    }
}

fn sign_in(
    rt: &tokio::runtime::Runtime,
    provider: &dyn WebProvider,
    forge: &Forge,
    user: &str,
) -> Result<SignedIn, ProviderError> {
    forge.sign_in_as(user);
    let a = attempt("http://127.0.0.1:1/gitlab_auth");
    let code = browse(provider, &a);
    rt.block_on(provider.complete(&callback(&a, &code)))
}

fn record(signed: &SignedIn) -> TokenRecord {
    TokenRecord {
        token_type: signed.upstream.token_type.clone(),
        access_token: signed.upstream.access_token.expose().to_string(),
        refresh_token: signed.upstream.refresh_token.as_ref().map(|t| t.expose().to_string()).unwrap_or_default(),
        ..TokenRecord::default()
    }
}

fn github_forge() -> Forge {
    let forge = Forge::start();
    forge.register_callback("http://127.0.0.1:1/github_auth");
    for (slug, parent) in [("root", None), ("eng", Some("root")), ("platform", Some("eng")), ("ops", None)] {
        forge.add_team("acme", slug, parent);
    }
    forge.add_team("other-org", "intruders", None);
    forge.add_org_member("alice", "acme");
    forge.add_org_member("alice", "other-org");
    forge.add_team_member("alice", "acme", "platform");
    forge.add_team_member("alice", "acme", "ops");
    forge.add_team_member("alice", "other-org", "intruders");
    forge.add_org_member("carol", "acme");
    forge
}

#[test]
fn github_member_signs_in_with_teams_and_all_parent_teams() {
    let rt = runtime();
    let forge = github_forge();
    forge.set_team_page_size(1); // three pages of /user/teams through Link headers
    let github = GitHub::new(config(&forge, ForgeKind::GitHub, Some("acme"))).unwrap();
    let url = github.authorize_url(&attempt("http://127.0.0.1:1/github_auth").request);
    assert!(url.as_str().starts_with(&format!("{}/login/oauth/authorize?", forge.base())), "{url}");
    assert!(url.query().unwrap().contains("code_challenge_method=S256"), "{url}");
    let signed = sign_in(&rt, &github, &forge, "alice").expect("alice is in acme");
    assert_eq!(signed.account, "alice");
    assert_eq!(signed.labels["teams"], ["eng", "ops", "platform", "root"], "teams of acme only, with parents");
    assert!(signed.valid_until > SystemTime::now() + Duration::from_secs(3500));
    assert!(forge.hits("/api/v3/user/teams") >= 3, "all pages read");
    // A member in no team signs in with an empty teams label.
    let carol = sign_in(&rt, &github, &forge, "carol").unwrap();
    assert_eq!(carol.labels["teams"], Vec::<String>::new());
}

#[test]
fn github_without_organization_takes_any_user_and_no_teams() {
    let rt = runtime();
    let forge = github_forge();
    let github = GitHub::new(config(&forge, ForgeKind::GitHub, None)).unwrap();
    let signed = sign_in(&rt, &github, &forge, "mallory").unwrap();
    assert_eq!(signed.account, "mallory");
    assert!(!signed.labels.contains_key("teams"));
    assert_eq!(forge.hits("/api/v3/user/teams"), 0);
}

#[test]
fn github_non_member_is_refused_at_sign_in() {
    let rt = runtime();
    let forge = github_forge();
    let github = GitHub::new(config(&forge, ForgeKind::GitHub, Some("acme"))).unwrap();
    match sign_in(&rt, &github, &forge, "mallory") {
        Err(ProviderError::Refused(why)) => assert!(why.contains("not a member"), "{why}"),
        other => panic!("a non-member must be refused, got {other:?}"),
    }
}

#[test]
fn replayed_code_wrong_verifier_and_unknown_code_are_refused() {
    let rt = runtime();
    let forge = github_forge();
    for kind in [ForgeKind::GitHub, ForgeKind::GitLab] {
        let provider: Box<dyn WebProvider> = match kind {
            ForgeKind::GitHub => Box::new(GitHub::new(config(&forge, kind, Some("acme"))).unwrap()),
            ForgeKind::GitLab => Box::new(GitLab::new(config(&forge, kind, None)).unwrap()),
        };
        forge.sign_in_as("alice");
        let a = attempt("http://127.0.0.1:1/gitlab_auth");
        let code = browse(provider.as_ref(), &a);
        rt.block_on(provider.complete(&callback(&a, &code))).expect("the first use of a code works");
        let replay = rt.block_on(provider.complete(&callback(&a, &code)));
        assert!(matches!(replay, Err(ProviderError::Refused(_))), "{kind:?} replay: {replay:?}");

        let a = attempt("http://127.0.0.1:1/gitlab_auth");
        let code = browse(provider.as_ref(), &a);
        let mut wrong = callback(&a, &code);
        wrong.pkce_verifier = Secret::new("another-verifier-of-sufficient-length-0123456789");
        let result = rt.block_on(provider.complete(&wrong));
        assert!(matches!(result, Err(ProviderError::Refused(_))), "{kind:?} wrong verifier: {result:?}");

        let result = rt.block_on(provider.complete(&callback(&a, "garbage\r\n<code>")));
        assert!(matches!(result, Err(ProviderError::Refused(_))), "{kind:?} unknown code: {result:?}");
    }
}

#[test]
fn github_revalidation_member_leaver_and_revoked_token() {
    let rt = runtime();
    let forge = github_forge();
    let github = GitHub::new(config(&forge, ForgeKind::GitHub, Some("acme"))).unwrap();
    let signed = sign_in(&rt, &github, &forge, "alice").unwrap();
    match rt.block_on(github.revalidate("alice", &record(&signed))).unwrap() {
        Revalidation::Valid { labels, valid_until, .. } => {
            assert_eq!(labels["teams"], ["eng", "ops", "platform", "root"]);
            assert!(valid_until > SystemTime::now());
        }
        Revalidation::Refused => panic!("alice is still a member"),
    }
    // The record must belong to the account asking.
    assert!(matches!(rt.block_on(github.revalidate("carol", &record(&signed))).unwrap(), Revalidation::Refused));

    forge.leave_org("alice", "acme");
    assert!(matches!(rt.block_on(github.revalidate("alice", &record(&signed))).unwrap(), Revalidation::Refused));

    let carol = sign_in(&rt, &github, &forge, "carol").unwrap();
    forge.revoke_tokens("carol");
    assert!(matches!(rt.block_on(github.revalidate("carol", &record(&carol))).unwrap(), Revalidation::Refused));
}

fn gitlab_forge() -> Forge {
    let forge = Forge::start();
    forge.set_groups("dora", &["acme", "acme/platform", "acme/platform/registry"]);
    forge.set_groups("erin", &[]);
    forge
}

#[test]
fn gitlab_sign_in_with_groups_and_revalidation_through_the_refresh_token() {
    let rt = runtime();
    let forge = gitlab_forge();
    let gitlab = GitLab::new(config(&forge, ForgeKind::GitLab, None)).unwrap();
    let url = gitlab.authorize_url(&attempt("http://ignored.example/gitlab_auth").request);
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["redirect_uri"], "http://127.0.0.1:1/gitlab_auth", "the configured redirect_uri wins");
    assert_eq!(query["scope"], "read_user openid");

    let signed = sign_in(&rt, &gitlab, &forge, "dora").unwrap();
    assert_eq!(signed.account, "dora");
    assert_eq!(signed.labels["groups"], ["acme", "acme/platform", "acme/platform/registry"]);
    assert!(signed.upstream.refresh_token.is_some());

    // Two hours later GitLab's access token has expired: the refresh token renews it.
    forge.expire_access_tokens();
    let renewed = match rt.block_on(gitlab.revalidate("dora", &record(&signed))).unwrap() {
        Revalidation::Valid { labels, upstream, .. } => {
            assert_eq!(labels["groups"].len(), 3);
            assert_ne!(upstream.access_token, signed.upstream.access_token, "new tokens go into the record");
            upstream
        }
        Revalidation::Refused => panic!("the refresh token is still good"),
    };
    // The spent refresh token does not work twice; the renewed one does.
    forge.expire_access_tokens();
    assert!(matches!(rt.block_on(gitlab.revalidate("dora", &record(&signed))).unwrap(), Revalidation::Refused));
    let renewed_record = TokenRecord {
        access_token: renewed.access_token.expose().into(),
        refresh_token: renewed.refresh_token.unwrap().expose().into(),
        ..TokenRecord::default()
    };
    assert!(matches!(rt.block_on(gitlab.revalidate("dora", &renewed_record)).unwrap(), Revalidation::Valid { .. }));

    // Revoked access and refresh tokens: refused.
    forge.revoke_tokens("dora");
    assert!(matches!(rt.block_on(gitlab.revalidate("dora", &renewed_record)).unwrap(), Revalidation::Refused));
}

#[test]
fn gitlab_blocked_user_is_refused_and_no_groups_is_an_empty_label() {
    let rt = runtime();
    let forge = gitlab_forge();
    let gitlab = GitLab::new(config(&forge, ForgeKind::GitLab, None)).unwrap();
    let erin = sign_in(&rt, &gitlab, &forge, "erin").unwrap();
    assert_eq!(erin.labels["groups"], Vec::<String>::new());
    forge.block("erin");
    assert!(matches!(rt.block_on(gitlab.revalidate("erin", &record(&erin))).unwrap(), Revalidation::Refused));
    assert!(matches!(sign_in(&rt, &gitlab, &forge, "erin"), Err(ProviderError::Refused(_))));
}

#[test]
fn stalled_garbage_and_huge_upstream_answers_are_unavailable_within_the_timeout() {
    let rt = runtime();
    let forge = github_forge();
    let github = GitHub::new(config(&forge, ForgeKind::GitHub, Some("acme"))).unwrap();
    let gitlab = GitLab::new(config(&forge, ForgeKind::GitLab, None)).unwrap();
    forge.set_groups("alice", &["g"]);
    let signed_github = sign_in(&rt, &github, &forge, "alice").unwrap();
    let signed_gitlab = sign_in(&rt, &gitlab, &forge, "alice").unwrap();
    for answers in [Answers::Stall, Answers::Garbage, Answers::Huge] {
        forge.set_answers(answers);
        for provider in [&github as &dyn WebProvider, &gitlab] {
            let signed = if provider.name() == "github" { &signed_github } else { &signed_gitlab };
            let started = Instant::now();
            let result = rt.block_on(provider.revalidate("alice", &record(signed)));
            assert!(
                matches!(result, Err(ProviderError::Unavailable(_))),
                "{answers:?} {}: {result:?}",
                provider.name()
            );
            assert!(started.elapsed() < TIMEOUT * 3, "{answers:?}: took {:?}", started.elapsed());
            let a = attempt("http://127.0.0.1:1/gitlab_auth");
            let result = rt.block_on(provider.complete(&callback(&a, "some-code")));
            assert!(
                matches!(result, Err(ProviderError::Unavailable(_))),
                "{answers:?} {} complete: {result:?}",
                provider.name()
            );
        }
    }
    // Several stalled calls at once all end by the timeout, side by side, not one after another.
    forge.set_answers(Answers::Stall);
    let started = Instant::now();
    let stored = record(&signed_github);
    let calls = (0..8).map(|_| github.revalidate("alice", &stored));
    let results = rt.block_on(futures_util::future::join_all(calls));
    assert!(results.iter().all(|r| matches!(r, Err(ProviderError::Unavailable(_)))));
    assert!(started.elapsed() < TIMEOUT * 3, "8 stalled calls took {:?}", started.elapsed());
    forge.set_answers(Answers::Normal);
    assert!(matches!(
        rt.block_on(github.revalidate("alice", &record(&signed_github))).unwrap(),
        Revalidation::Valid { .. }
    ));
}

#[test]
fn error_messages_never_carry_upstream_tokens() {
    let rt = runtime();
    let forge = github_forge();
    let github = GitHub::new(config(&forge, ForgeKind::GitHub, Some("acme"))).unwrap();
    let signed = sign_in(&rt, &github, &forge, "alice").unwrap();
    let token = signed.upstream.access_token.expose().to_string();
    assert!(!format!("{signed:?}").contains(&token), "Debug of SignedIn shows the token");
    forge.set_answers(Answers::Garbage);
    let err = rt.block_on(github.revalidate("alice", &record(&signed))).unwrap_err();
    assert!(!err.to_string().contains(&token), "{err}");
}

// ---- Through the server: the browser flow over HTTP, /auth, the ACL and the real registry ----

/// A browser without JavaScript: follows nothing by itself, keeps cookies by name.
struct Browser {
    agent: ureq::Agent,
    cookies: std::collections::BTreeMap<String, String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new() -> Browser {
        Browser { agent: ureq::AgentBuilder::new().redirects(0).build(), cookies: Default::default() }
    }

    fn get(&mut self, url: &str) -> Page {
        let mut request = self.agent.get(url);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            request = request.set("Cookie", &jar.join("; "));
        }
        let response = match request.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("GET {url}: {e}"),
        };
        for set in response.all("set-cookie") {
            let pair = set.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() || set.to_ascii_lowercase().contains("max-age=0") {
                    self.cookies.remove(name.trim());
                } else {
                    self.cookies.insert(name.trim().to_string(), value.to_string());
                }
            }
        }
        let status = response.status();
        let location = response.header("location").map(str::to_string);
        let body = response.into_string().unwrap_or_default();
        Page { status, location, body }
    }
}

/// What a result page shows, by element id.
fn element(body: &str, id: &str) -> Option<String> {
    let start = body.find(&format!("id=\"{id}\">"))? + id.len() + 6;
    let end = body[start..].find('<')? + start;
    Some(body[start..end].to_string())
}

/// The web server and the fake forge of one test.
struct Site {
    forge: Forge,
    auth: crate::auth_server::AuthServer,
    keys: crate::common::Keys,
}

const ADMIN_PASSWORD: &str = "badmin";

fn site(forge: Forge, revalidate_after: &str) -> Site {
    site_with(forge, revalidate_after, &["github_auth", "gitlab_auth"])
}

/// A site with only the given sections.
fn site_with(forge: Forge, revalidate_after: &str, sections: &[&str]) -> Site {
    use crate::common::*;
    let keys = Keys::new(KeyKind::EcP256);
    let secret_dir = crate::support::temp_dir("forge-secret");
    let secret = secret_dir.path().join("client_secret");
    std::fs::write(&secret, format!("{CLIENT_SECRET}\n")).unwrap();
    let base = base_yaml("@ADDR@", "", "admin");
    let (web, github_api, gitlab_api) = (forge.base(), forge.github_api(), forge.gitlab_api());
    let secret = secret.display();
    let github = format!(
        r#"github_auth:
  organization: "acme"
  client_id: "{CLIENT_ID}"
  client_secret_file: "{secret}"
  github_web_uri: "{web}"
  github_api_uri: "{github_api}"
  http_timeout: "2s"
  revalidate_after: "{revalidate_after}"
  registry_url: "registry.example.com"
"#
    );
    let gitlab = format!(
        r#"gitlab_auth:
  client_id: "{CLIENT_ID}"
  client_secret_file: "{secret}"
  gitlab_web_uri: "{web}"
  gitlab_api_uri: "{gitlab_api}"
  redirect_uri: "http://@ADDR@/gitlab_auth"
  grant_type: "authorization_code"
  http_timeout: "2s"
  revalidate_after: "{revalidate_after}"
"#
    );
    let github = if sections.contains(&"github_auth") { github } else { String::new() };
    let gitlab = if sections.contains(&"gitlab_auth") { gitlab } else { String::new() };
    let yaml = format!(
        r#"{base}{github}{gitlab}acl:
  - match: {{account: "admin"}}
    actions: ["*"]
  - match: {{labels: {{teams: "ops"}}, name: "tools/*"}}
    actions: ["pull"]
  - match: {{name: "${{labels:teams}}/*"}}
    actions: ["pull", "push"]
  - match: {{name: "${{labels:groups}}/*"}}
    actions: ["pull", "push"]
"#
    );
    let auth = crate::auth_server::AuthServer::start_probing(&with_keys(&yaml, &keys), false, &["serve"], "/healthz");
    drop(secret_dir); // read at load
    forge.register_callback(&format!("http://{}/github_auth", auth.addr));
    Site { forge, auth, keys }
}

impl Site {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.auth.addr)
    }

    /// The whole flow in one browser: our route → the forge → our callback. Returns the
    /// callback's page (the result page on success).
    fn flow(&self, browser: &mut Browser, route: &str, user: &str) -> Page {
        self.forge.sign_in_as(user);
        let start = browser.get(&self.url(route));
        assert_eq!(start.status, 302, "{route} starts with a redirect: {}", start.body);
        let at_forge = browser.get(start.location.as_deref().unwrap());
        assert_eq!(at_forge.status, 302, "the forge redirects back: {}", at_forge.body);
        browser.get(at_forge.location.as_deref().unwrap())
    }

    /// Signs in and returns the account and generated password from the result page.
    fn sign_in(&self, route: &str, user: &str) -> (String, String) {
        let page = self.flow(&mut Browser::new(), route, user);
        assert_eq!(page.status, 200, "{user} at {route}: {}\n{}", page.body, self.auth.process.log());
        let account = element(&page.body, "account").expect("the account on the page");
        let password = element(&page.body, "password").expect("the password on the page");
        let login = element(&page.body, "docker-login").expect("the docker login command");
        assert!(login.contains(&password) && login.contains(&account), "{login}");
        (account, password)
    }

    /// `GET /auth` for one scope: status and body.
    fn token(&self, user: &str, password: &str, scope: &str) -> (u16, String) {
        let (name, value) = crate::common::basic(user, password);
        let url = self.url(&format!("/auth?service=registry&scope={scope}"));
        match ureq::get(&url).set(&name, &value).call() {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
            Err(e) => panic!("GET /auth: {e}"),
        }
    }

    /// The actions granted for one scope (asserting a 200).
    fn granted(&self, user: &str, password: &str, scope: &str) -> Vec<String> {
        let (status, body) = self.token(user, password, scope);
        assert_eq!(status, 200, "{user} {scope}: {body}\n{}", self.auth.process.log());
        let token: serde_json::Value = serde_json::from_str(&body).unwrap();
        let claims = crate::common::decode_jwt(token["token"].as_str().unwrap()).claims;
        claims["access"][0]["actions"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect()
    }
}

#[test]
fn github_web_sign_in_password_pushes_and_pulls_through_the_registry_by_team() {
    use crate::support::oci::write_oci_layout;
    use crate::support::registry::{Registry, RegistryAuth};
    use crate::support::skopeo::{docker_ref, Creds, Skopeo};
    let site = site(github_forge(), "1h");
    let (account, password) = site.sign_in("/github_auth", "alice");
    assert_eq!(account, "alice");
    assert!(password.len() >= 16, "{password}");
    assert!(!site.auth.process.log().contains(&password), "the generated password is never logged");

    let registry = Registry::start(RegistryAuth {
        realm: site.auth.realm(),
        service: "registry".to_string(),
        issuer: "Acme auth server".to_string(),
        rootcertbundle: site.keys.cert.clone(),
    });
    let images = crate::support::temp_dir("forge-images");
    let image = write_oci_layout(&images.path().join("layout"), "v1", &[("hello.txt", b"hello from github")]);
    let skopeo = Skopeo::new();
    let alice = Creds::Basic("alice", &password);
    let push = |repo: &str, creds| {
        skopeo.copy(&image.oci_ref(), &docker_ref(&registry.addr(), repo, "v1"), Creds::Anonymous, creds)
    };
    // `eng` is platform's parent team: ${labels:teams} holds it too.
    push("eng/app", alice).unwrap_or_else(|e| panic!("alice pushes into eng/: {e}\n{}", site.auth.process.log()));
    push("platform/app", alice).unwrap();
    assert!(push("intruders/app", alice).is_err(), "a team of another organization gives nothing");
    assert!(push("eng/other", Creds::Basic("alice", "wrong-password")).is_err());
    let tags = skopeo.list_tags(&format!("docker://{}/eng/app", registry.addr()), alice).unwrap();
    assert!(tags.contains("\"v1\""), "{tags}");

    // The label condition of the ACL: ops members pull tools/*, nobody else.
    assert_eq!(site.granted("alice", &password, "repository:tools/x:pull,push"), ["pull"]);
    let (carol, carol_pw) = site.sign_in("/github_auth", "carol");
    assert_eq!(site.granted(&carol, &carol_pw, "repository:tools/x:pull"), Vec::<String>::new());

    // Signing in again replaces the password.
    let (_, again) = site.sign_in("/github_auth", "alice");
    assert_ne!(again, password);
    assert_eq!(site.token("alice", &password, "repository:eng/app:pull").0, 401, "the old password is gone");
    assert_eq!(site.granted("alice", &again, "repository:eng/app:pull"), ["pull"]);
}

#[test]
fn github_web_sign_in_refuses_non_members_and_the_index_redirects_to_github() {
    let site = site(github_forge(), "1h");
    let page = site.flow(&mut Browser::new(), "/github_auth", "mallory");
    assert!((400..500).contains(&page.status), "a non-member gets a 4xx page, got {}: {}", page.status, page.body);
    assert!(element(&page.body, "password").is_none());
    assert_eq!(site.token("mallory", "anything", "repository:eng/app:pull").0, 401);
    // docker_auth's index: github_auth set (and no google_auth) → 301 to /github_auth.
    let index = Browser::new().get(&site.url("/"));
    assert_eq!((index.status, index.location.as_deref()), (301, Some("/github_auth")), "{}", index.body);
}

#[test]
fn gitlab_web_sign_in_groups_label_allows_and_refuses() {
    let site = site(gitlab_forge(), "1h");
    let (account, password) = site.sign_in("/gitlab_auth", "dora");
    assert_eq!(account, "dora");
    assert_eq!(site.granted("dora", &password, "repository:acme/platform/app:pull,push"), ["pull", "push"]);
    assert_eq!(site.granted("dora", &password, "repository:acme/platform/registry/x:push"), ["push"]);
    assert_eq!(site.granted("dora", &password, "repository:other/app:pull,push"), Vec::<String>::new());
    let (erin, erin_pw) = site.sign_in("/gitlab_auth", "erin");
    assert_eq!(site.granted(&erin, &erin_pw, "repository:acme/app:pull"), Vec::<String>::new());
}

#[test]
fn revalidation_after_revalidate_after_member_leaver_revoked_and_refreshed() {
    let site = site_with(github_forge(), "1ms", &["github_auth"]);
    let (_, alice) = site.sign_in("/github_auth", "alice");
    let (_, carol) = site.sign_in("/github_auth", "carol");
    let asked = site.forge.hits("/api/v3/user");
    assert_eq!(site.granted("alice", &alice, "repository:eng/app:pull"), ["pull"], "still a member");
    assert!(site.forge.hits("/api/v3/user") > asked, "the user API was asked again");

    site.forge.leave_org("alice", "acme");
    let (status, body) = site.token("alice", &alice, "repository:eng/app:pull");
    assert_eq!(status, 401, "left the organization: {body}");

    site.forge.revoke_tokens("carol");
    assert_eq!(site.token("carol", &carol, "repository:eng/app:pull").0, 401, "token revoked");

    // GitLab's access token expired: the refresh token renews it, the login still works.
    let site = site_with(gitlab_forge(), "1ms", &["gitlab_auth"]);
    let (_, dora) = site.sign_in("/gitlab_auth", "dora");
    assert_eq!(site.granted("dora", &dora, "repository:acme/app:pull"), ["pull"]);
    site.forge.expire_access_tokens();
    assert_eq!(site.granted("dora", &dora, "repository:acme/app:pull"), ["pull"]);
    site.forge.revoke_tokens("dora");
    assert_eq!(site.token("dora", &dora, "repository:acme/app:pull").0, 401, "revoked at GitLab");
}

#[test]
fn with_two_providers_each_revalidates_only_its_own_sign_ins() {
    // GitHub comes first in the chain; a GitLab user's record must not be taken (and
    // revalidated, with a GitLab token) by GitHub's authenticator.
    let site = site(gitlab_forge(), "1ms");
    let (_, dora) = site.sign_in("/gitlab_auth", "dora");
    let github_asked = site.forge.hits("/api/v3/user");
    assert_eq!(site.granted("dora", &dora, "repository:acme/app:pull"), ["pull"], "{}", site.auth.process.log());
    assert_eq!(site.forge.hits("/api/v3/user"), github_asked, "GitHub was not asked about a GitLab sign-in");
    assert_eq!(site.granted("dora", &dora, "repository:acme/app:pull"), ["pull"], "and again, renewed by GitLab");
    site.forge.revoke_tokens("dora");
    assert_eq!(site.token("dora", &dora, "repository:acme/app:pull").0, 401, "GitLab's no still counts");
}

#[test]
fn stalled_forge_is_the_fixed_500_for_that_login_only() {
    let site = site(github_forge(), "1ms");
    let (_, alice) = site.sign_in("/github_auth", "alice");
    site.forge.set_answers(Answers::Stall);
    let asked = site.forge.hits("/api/v3/user");
    let url = site.url("/auth?service=registry&scope=repository:eng/app:pull");
    let (name, value) = crate::common::basic("alice", &alice);
    let stalled = std::thread::spawn(move || match ureq::get(&url).set(&name, &value).call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap_or_default()),
        Err(e) => panic!("{e}"),
    });
    crate::support::ports::wait_until("the login reaches the stalled forge", Duration::from_secs(10), || {
        if site.forge.hits("/api/v3/user") > asked {
            crate::support::ports::Probe::Ready(())
        } else {
            crate::support::ports::Probe::NotYet("no call yet".into())
        }
    })
    .unwrap();
    // While alice's login waits on GitHub, another login is answered.
    assert_eq!(site.granted("admin", ADMIN_PASSWORD, "repository:any/thing:pull"), ["pull"]);
    assert!(!stalled.is_finished(), "the stalled login was still waiting on the forge");
    let (status, body) = stalled.join().unwrap();
    assert_eq!(status, 500, "{body}");
    assert!(!body.contains("at-") && !body.contains("127.0.0.1"), "the fixed body says nothing: {body}");
    site.forge.set_answers(Answers::Normal);
    assert_eq!(site.granted("alice", &alice, "repository:eng/app:pull"), ["pull"], "recovers with the forge");
}

#[test]
fn callback_bad_input_is_a_4xx_or_the_fixed_500_never_a_panic() {
    let site = site(github_forge(), "1h");
    // The flow answers an upstream that cannot be asked with 502 (its error page), the rest 4xx.
    let is_refusal = |page: &Page| (400..500).contains(&page.status) || [500, 502].contains(&page.status);
    // No state, unknown state, no cookie.
    let page = Browser::new().get(&site.url("/github_auth?code=abc"));
    assert!((400..500).contains(&page.status), "no state: {} {}", page.status, page.body);
    let mut browser = Browser::new();
    site.forge.sign_in_as("alice");
    let start = browser.get(&site.url("/github_auth"));
    let back = browser.get(start.location.as_deref().unwrap()).location.unwrap();
    let code = Url::parse(&back).unwrap().query_pairs().find(|(k, _)| k == "code").unwrap().1.to_string();
    let forged = browser.get(&site.url(&format!("/github_auth?code={code}&state=forged")));
    assert!((400..500).contains(&forged.status), "mismatched state: {} {}", forged.status, forged.body);
    let elsewhere = Browser::new().get(&back);
    assert!((400..500).contains(&elsewhere.status), "another browser: {} {}", elsewhere.status, elsewhere.body);

    // The real callback works once; replayed (even with the cookie kept) it is refused.
    let mut browser = Browser::new();
    site.forge.sign_in_as("alice");
    let start = browser.get(&site.url("/github_auth"));
    let cookies = browser.cookies.clone();
    let back = browser.get(start.location.as_deref().unwrap()).location.unwrap();
    assert_eq!(browser.get(&back).status, 200);
    browser.cookies = cookies;
    let replay = browser.get(&back);
    assert!((400..500).contains(&replay.status), "replayed callback: {} {}", replay.status, replay.body);
    assert!(element(&replay.body, "password").is_none());

    // The forge answers the code exchange with garbage, a huge body, or not at all.
    for answers in [Answers::Garbage, Answers::Huge, Answers::Stall] {
        let mut browser = Browser::new();
        site.forge.sign_in_as("alice");
        let start = browser.get(&site.url("/github_auth"));
        let back = browser.get(start.location.as_deref().unwrap()).location.unwrap();
        site.forge.set_answers(answers);
        let page = browser.get(&back);
        site.forge.set_answers(Answers::Normal);
        assert!(is_refusal(&page), "{answers:?}: {} {}", page.status, page.body);
        assert!(element(&page.body, "password").is_none());
    }
    // Garbage in the callback's own parameters.
    let junk = browser_junk(&site);
    assert!(junk.iter().all(is_refusal), "{:?}", junk.iter().map(|p| p.status).collect::<Vec<_>>());
    assert_eq!(Browser::new().get(&site.url("/healthz")).status, 200, "still serving");
    assert!(!site.auth.process.log().contains("panicked"), "{}", site.auth.process.log());
}

fn browser_junk(site: &Site) -> Vec<Page> {
    let long = "A".repeat(6000);
    [
        "/github_auth?state=&code=",
        "/github_auth?state=%00%ff&code=%0d%0a",
        "/github_auth?error=access_denied&state=x",
        "/gitlab_auth?code=x&state=x&state=y",
    ]
    .iter()
    .map(|q| q.to_string())
    .chain([format!("/github_auth?code={long}&state={long}")])
    .map(|q| Browser::new().get(&site.url(&q)))
    .collect()
}
