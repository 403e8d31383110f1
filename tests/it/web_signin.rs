//! Web sign-in (issue 13): docker_auth's `oidc_auth` and `google_auth` on the real binary
//! against a real OpenID provider (npm `oidc-provider`, `support::oidc_provider`), in a
//! real browser (chromium through WebDriver) and at the HTTP level, with skopeo through
//! the real registry; the ID-token rejections against a test issuer whose token endpoint
//! hands out exactly the token each case needs.
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::auth_server::AuthServer;
use crate::common::{decode_jwt, with_keys, KeyKind, Keys};
use crate::stored_creds::{basic, call, granted};
use crate::support::oidc_provider::{Answer, CookieAgent, OidcClient, OidcProvider, OidcProviderConfig};
use crate::support::ports::free_port;

pub(crate) const SERVICE: &str = "registry.test";
pub(crate) const CLIENT_ID: &str = "registry";
pub(crate) const CLIENT_SECRET: &str = "registry-secret";

/// The provider fixture itself: discovery names its issuer, and a machine client gets a
/// client-credentials JWT signed by a key of the published JWKS, with its extra claims
/// (what the CI-token tests build on).
#[test]
fn provider_serves_discovery_and_client_credentials_jwts() {
    let machine = OidcClient::machine("ci-job", "ci-secret", json!({"repository_owner": "acme"}));
    let provider = OidcProvider::start(&OidcProviderConfig::default().client(machine.clone()));
    let discovery: Value = ureq::get(&format!("{}/.well-known/openid-configuration", provider.issuer()))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(discovery["issuer"], provider.issuer());
    let jwt = provider.client_credentials_jwt(&machine, "https://registry.example");
    let decoded = decode_jwt(&jwt);
    assert_eq!(decoded.claims["iss"], provider.issuer());
    assert_eq!(decoded.claims["aud"], "https://registry.example");
    assert_eq!(decoded.claims["sub"], "ci-job");
    assert_eq!(decoded.claims["repository_owner"], "acme");
    let kid = decoded.header["kid"].as_str().unwrap();
    let jwks = provider.jwks();
    assert!(jwks["keys"].as_array().unwrap().iter().any(|k| k["kid"] == kid), "{jwks}");
}

fn users() -> OidcProviderConfig {
    OidcProviderConfig::default()
        .user(
            "alice",
            json!({"email": "alice@acme.test", "email_verified": true, "groups": ["dev", "qa"], "hd": "acme.test"}),
        )
        .user("bob", json!({"email": "bob@acme.test", "email_verified": true, "groups": "ops", "hd": "acme.test"}))
        .user("eve", json!({"email": "eve@acme.test", "email_verified": false, "groups": ["dev"], "hd": "acme.test"}))
        .user("mallory", json!({"email": "mallory@other.test", "email_verified": true, "hd": "other.test"}))
        .user(
            "xss",
            json!({"email": "\"><script>alert(1)</script>'@acme.test", "email_verified": true, "groups": ["<i>g</i>"]}),
        )
}

/// Our server with `section` (a web sign-in section, `@ISSUER@` and `@ADDR@` filled in).
pub(crate) struct Server {
    _keys: Keys,
    pub(crate) server: AuthServer,
}

impl Server {
    pub(crate) fn start(addr: &str, section: &str, extra: &str) -> Server {
        let keys = Keys::new(KeyKind::EcP256);
        let dir = crate::support::temp_dir("auth-server");
        let yaml = format!(
            r#"{head}store:
  path: "{dir}/data"
{section}
{extra}
acl:
  - match: {{name: "${{labels:groups}}/*"}}
    actions: ["pull", "push"]
    comment: "the provider's groups own their namespaces"
  - match: {{labels: {{hd: "acme.test"}}, name: "acme/*"}}
    actions: ["pull"]
    comment: "Google Workspace domain label"
"#,
            head = config_head(addr),
            dir = dir.path().display()
        );
        let path = write_config(dir.path(), &yaml, &keys);
        let server = AuthServer::serve(addr, &path, dir);
        Server { _keys: keys, server }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr)
    }

    pub(crate) fn log(&self) -> String {
        self.server.process.log()
    }

    /// `(status, body)` of a token request with Basic credentials for `scope`.
    pub(crate) fn token(&self, user: &str, password: &str, scope: &str) -> (u16, Value) {
        token_at(&self.server.addr, user, password, scope)
    }
}

/// The `server:` and `token:` sections the web sign-in configs start with (seven lines:
/// the tests' expected line numbers count on them); `@CERT@`/`@KEY@` as [`write_config`] fills them.
pub(crate) fn config_head(addr: &str) -> String {
    format!(
        r#"server:
  addr: "{addr}"
token:
  issuer: "Acme auth server"
  expiration: 900
  certificate: "@CERT@"
  key: "@KEY@"
"#
    )
}

/// Writes `yaml` with `keys` filled in as `dir/auth_config.yml`; returns its path.
pub(crate) fn write_config(dir: &Path, yaml: &str, keys: &Keys) -> PathBuf {
    let path = dir.join("auth_config.yml");
    std::fs::write(&path, with_keys(yaml, keys)).unwrap();
    path
}

/// `(status, body)` of a token request to the server at `addr` with Basic credentials for `scope`.
pub(crate) fn token_at(addr: &str, user: &str, password: &str, scope: &str) -> (u16, Value) {
    let req = ureq::get(&format!("http://{addr}/auth"))
        .query("service", SERVICE)
        .query("scope", scope)
        .set("Authorization", &basic(user, password));
    call(req, None)
}

pub(crate) fn oidc_section(issuer: &str, addr: &str, extra: &str) -> String {
    format!(
        r#"oidc_auth:
  issuer: "{issuer}"
  redirect_url: "http://{addr}/oidc_auth"
  client_id: "{CLIENT_ID}"
  client_secret: "{CLIENT_SECRET}"
  registry_url: "registry.acme.test"
  scopes: [openid, email, groups]
  labels_claims: [groups]
  http_timeout: 5s
{extra}"#
    )
}

pub(crate) fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The text of the element with `id` on a page (our templates put values in `<code id=...>`).
fn element_text(body: &str, id: &str) -> String {
    let start = body.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id} in {body}"));
    let rest = &body[start..];
    let open = rest.find('>').unwrap() + 1;
    let close = rest[open..].find('<').unwrap();
    rest[open..open + close].to_string()
}

/// Starts a sign-in at our server and signs `login` in at the provider: the callback URL
/// (not yet requested) and the agent holding our flow cookie.
fn signed_in_at_provider(server: &Server, agent: &mut CookieAgent, login: &str) -> String {
    let start = agent.request("GET", &server.url("/oidc_auth"), None);
    assert_eq!(start.status, 302, "{start:?}");
    let cookie = start.set_cookies.iter().find(|c| c.starts_with("registry_auth_oidc_signin=")).expect("flow cookie");
    let lower = cookie.to_ascii_lowercase();
    assert!(
        lower.contains("httponly") && lower.contains("samesite=lax") && lower.contains("path=/oidc_auth"),
        "{cookie}"
    );
    assert!(lower.contains("max-age=600") && !lower.contains("secure"), "no Secure without TLS: {cookie}");
    let authorize = start.location.unwrap();
    assert_eq!(query_param(&authorize, "code_challenge_method").as_deref(), Some("S256"), "{authorize}");
    for p in ["state", "nonce", "code_challenge"] {
        assert!(query_param(&authorize, p).is_some_and(|v| v.len() >= 43), "{p} in {authorize}");
    }
    agent.sign_in_at_provider(&authorize, login, &server.url("/oidc_auth"))
}

fn finish(agent: &mut CookieAgent, callback: &str) -> Answer {
    agent.request("GET", callback, None)
}

/// HTTP-level oidc_auth against the real provider: sign-in, the result page, `/auth` with
/// the password (labels from string and string-array claims in the ACL), signing in again
/// replaces the password, login CSRF and replay rejections, unverified email, revalidation
/// past valid_until (refresh), an upstream that says no (401) and one that is gone (500),
/// and neither password nor upstream tokens in the log.
#[test]
fn oidc_sign_in_over_http_with_every_callback_rejection() {
    let addr = format!("127.0.0.1:{}", free_port());
    let client = OidcClient::web(CLIENT_ID, CLIENT_SECRET, &[&format!("http://{addr}/oidc_auth")]);
    let mut config = users().client(client);
    config.access_token_ttl = Some(3);
    let mut provider = OidcProvider::start(&config);
    let server = Server::start(&addr, &oidc_section(&provider.issuer(), &addr, ""), "");

    // Index: only oidc_auth → docker_auth's 301.
    let index = CookieAgent::new().request("GET", &server.url("/"), None);
    assert_eq!((index.status, index.location.as_deref()), (301, Some(server.url("/oidc_auth").as_str())));

    let mut browser = CookieAgent::new();
    let callback = signed_in_at_provider(&server, &mut browser, "alice");
    let flow_cookie = browser.cookie(&server.url("/"), "registry_auth_oidc_signin").expect("flow cookie");
    let page = finish(&mut browser, &callback);
    assert_eq!(page.status, 200, "{}\n{}", page.body, server.log());
    let header = |name: &str| page.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    assert_eq!(header("cache-control").as_deref(), Some("no-store"));
    assert!(header("content-security-policy").unwrap().contains("default-src 'none'"));
    assert_eq!(element_text(&page.body, "account"), "alice@acme.test");
    let password = element_text(&page.body, "password");
    assert_eq!(password.len(), 24);
    assert_eq!(
        element_text(&page.body, "docker-login"),
        format!("docker login -u alice@acme.test -p {password} registry.acme.test")
    );
    assert!(browser.cookie(&server.url("/"), "registry_auth_oidc_signin").is_none(), "the flow cookie is cleared");

    // The password logs in; labels_claims (array) decide in the ACL.
    let (status, body) = server.token("alice@acme.test", &password, "repository:dev/app:pull,push");
    assert_eq!(status, 200, "{body}\n{}", server.log());
    assert_eq!(granted(&body), ("alice@acme.test".to_string(), vec!["pull".to_string(), "push".to_string()]));
    let (_, body) = server.token("alice@acme.test", &password, "repository:ops/app:pull");
    assert!(granted(&body).1.is_empty(), "not in ops");
    assert_eq!(server.token("alice@acme.test", "wrong", "repository:dev/app:pull").0, 401);
    assert_eq!(server.token("nobody@acme.test", &password, "repository:dev/app:pull").0, 401);

    // Replaying the callback, even with the flow cookie kept: the state was used.
    browser.set_cookie(&server.url("/"), "registry_auth_oidc_signin", Some(&flow_cookie));
    let replay = finish(&mut browser, &callback);
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert!(replay.body.contains("unknown, expired or was already used"), "{}", replay.body);

    // A string claim is a label too; signing in again replaces the password.
    let mut bob = CookieAgent::new();
    let callback = signed_in_at_provider(&server, &mut bob, "bob");
    let first = element_text(&finish(&mut bob, &callback).body, "password");
    let callback = signed_in_at_provider(&server, &mut bob, "bob");
    let second = element_text(&finish(&mut bob, &callback).body, "password");
    assert_ne!(first, second);
    assert_eq!(server.token("bob@acme.test", &first, "repository:ops/app:pull").0, 401, "the old password is gone");
    let (_, body) = server.token("bob@acme.test", &second, "repository:ops/app:pull,push");
    assert_eq!(granted(&body).1, ["pull", "push"]);

    // Login CSRF: the victim's browser has no cookie for the attacker's sign-in.
    let mut attacker = CookieAgent::new();
    let planted = signed_in_at_provider(&server, &mut attacker, "alice");
    let mut victim = CookieAgent::new();
    let answer = finish(&mut victim, &planted);
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("not started in this browser"), "{}", answer.body);
    // ...nor when it has a cookie of its own sign-in.
    let mut victim = CookieAgent::new();
    let _own = signed_in_at_provider(&server, &mut victim, "bob");
    let answer = finish(&mut victim, &planted);
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.contains("started in another browser"), "{}", answer.body);
    // Missing state, missing code, a provider error.
    let mut agent = CookieAgent::new();
    let callback = signed_in_at_provider(&server, &mut agent, "alice");
    let code = query_param(&callback, "code").unwrap();
    let no_state = finish(&mut agent, &server.url(&format!("/oidc_auth?code={code}")));
    assert_eq!(no_state.status, 400);
    assert!(no_state.body.contains("no state"), "{}", no_state.body);
    let other = signed_in_at_provider(&server, &mut agent, "alice");
    let other_state = query_param(&other, "state").unwrap();
    let no_code = finish(&mut agent, &server.url(&format!("/oidc_auth?state={other_state}")));
    assert_eq!(no_code.status, 400);
    assert!(no_code.body.contains("no authorization code"), "{}", no_code.body);
    // A replayed code with a fresh state: the provider refuses the code a second time.
    let fresh = signed_in_at_provider(&server, &mut agent, "alice");
    let used = finish(&mut agent, &fresh);
    assert_eq!(used.status, 200);
    // This sign-in replaced alice's password.
    let first_password = password;
    let password = element_text(&used.body, "password");
    assert_eq!(server.token("alice@acme.test", &first_password, "repository:dev/app:pull").0, 401);
    let again = signed_in_at_provider(&server, &mut agent, "alice");
    let again_state = query_param(&again, "state").unwrap();
    let replayed_code = finish(
        &mut agent,
        &server.url(&format!("/oidc_auth?code={}&state={again_state}", query_param(&fresh, "code").unwrap())),
    );
    assert_eq!(replayed_code.status, 403, "{}", replayed_code.body);
    let third = signed_in_at_provider(&server, &mut agent, "alice");
    let third_state = query_param(&third, "state").unwrap();
    let cancelled = finish(&mut agent, &server.url(&format!("/oidc_auth?error=access_denied&state={third_state}")));
    assert_eq!(cancelled.status, 400);
    assert!(cancelled.body.contains("did not sign you in"), "{}", cancelled.body);

    // An email the provider has not verified is refused.
    let mut eve = CookieAgent::new();
    let callback = signed_in_at_provider(&server, &mut eve, "eve");
    let answer = finish(&mut eve, &callback);
    assert_eq!(answer.status, 403, "{}", answer.body);
    assert!(!answer.body.contains("id=\"password\""));

    // Text from the provider is escaped on the page, and quoted in the shell command.
    let mut xss = CookieAgent::new();
    let callback = signed_in_at_provider(&server, &mut xss, "xss");
    let answer = finish(&mut xss, &callback);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(!answer.body.contains("<script>") && answer.body.contains("&#60;script&#62;"), "{}", answer.body);
    let command = element_text(&answer.body, "docker-login");
    assert!(command.starts_with("docker login -u &#39;&#34;&#62;&#60;script&#62;alert(1)&#60;/script&#62;&#39;\\&#39;&#39;@acme.test&#39; -p "), "{command}");

    // Past valid_until (access tokens live 3 s here) the refresh token is used...
    std::thread::sleep(Duration::from_millis(3500));
    let (status, body) = server.token("alice@acme.test", &password, "repository:dev/app:pull");
    assert_eq!(status, 200, "{body}\n{}", server.log());
    assert!(server.log().contains("upstream revalidated the web sign-in"), "{}", server.log());
    // ...an account the provider no longer knows is a 401 (docker_auth: 500)...
    provider.disable("alice");
    std::thread::sleep(Duration::from_millis(3500));
    let (status, body) = server.token("alice@acme.test", &password, "repository:dev/app:pull");
    assert_eq!(status, 401, "{body}\n{}", server.log());
    // ...and a provider that does not answer is the fixed 500.
    std::thread::sleep(Duration::from_millis(3500));
    provider.stop();
    let (status, body) = server.token("bob@acme.test", &second, "repository:ops/app:pull");
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["text"], "Authentication failed (authn #1 returned error)\n");

    // Neither generated passwords nor upstream tokens reach the log.
    let log = server.log();
    for secret in [&first_password, &password, &first, &second, &code] {
        assert!(!log.contains(secret.as_str()), "a secret is in the log:\n{log}");
    }
    assert!(!log.contains("refresh_token\":") && !log.contains("eyJ"), "upstream tokens in the log:\n{log}");
}

/// google_auth with the issuer override: the `domain` rule (`hd`), verified email, `hd` as
/// a label in the ACL, and the index page linking to Google.
#[test]
fn google_sign_in_with_domain_rule_and_hd_label() {
    let addr = format!("127.0.0.1:{}", free_port());
    let client = OidcClient::web(CLIENT_ID, CLIENT_SECRET, &[&format!("http://{addr}/google_auth")]);
    let provider = OidcProvider::start(&users().client(client));
    let section = format!(
        r#"google_auth:
  domain: "acme.test"
  client_id: "{CLIENT_ID}"
  client_secret: "{CLIENT_SECRET}"
  issuer: "{}"
  http_timeout: "5s"
"#,
        provider.issuer()
    );
    let server = Server::start(&addr, &section, "");
    let index = CookieAgent::new().request("GET", &server.url("/"), None);
    assert_eq!(index.status, 200);
    assert!(index.body.contains("google_auth\"") && index.body.contains("Sign in with Google"), "{}", index.body);

    let sign_in = |login: &str| {
        let mut agent = CookieAgent::new();
        let start = agent.request("GET", &server.url("/google_auth"), None);
        let authorize = start.location.clone().unwrap_or_else(|| panic!("{start:?}\n{}", server.log()));
        assert_eq!(query_param(&authorize, "hd").as_deref(), Some("acme.test"));
        assert_eq!(query_param(&authorize, "access_type").as_deref(), Some("offline"));
        let callback = agent.sign_in_at_provider(&authorize, login, &server.url("/google_auth"));
        finish(&mut agent, &callback)
    };
    let page = sign_in("alice");
    assert_eq!(page.status, 200, "{}\n{}", page.body, server.log());
    let password = element_text(&page.body, "password");
    let (status, body) = server.token("alice@acme.test", &password, "repository:acme/base:pull,push");
    assert_eq!(status, 200, "{body}");
    assert_eq!(granted(&body).1, ["pull"], "hd label");

    // The offer on the result page: an identity token instead of the password.
    let offer =
        page.body.split("name=\"offer\" value=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_string();
    let mut agent = CookieAgent::new();
    let form = [("action", "identity_token"), ("offer", offer.as_str())];
    let traded = agent.request("POST", &server.url("/google_auth"), Some(&form));
    assert_eq!(traded.status, 200, "{}\n{}", traded.body, server.log());
    let token = element_text(&traded.body, "identity-token");
    assert!(token.starts_with("rait_"), "{token}");
    assert!(traded.body.contains("identitytoken"), "{}", traded.body);
    let (status, body) = crate::identity_tokens::exchange(&server.url("/auth"), &token, "repository:acme/base:pull");
    assert_eq!(status, 200, "{body}\n{}", server.log());
    assert_eq!(granted(&body), ("alice@acme.test".to_string(), vec!["pull".to_string()]));
    assert_eq!(
        server.token("alice@acme.test", &password, "repository:acme/base:pull").0,
        401,
        "the password was traded"
    );
    assert_eq!(agent.request("POST", &server.url("/google_auth"), Some(&form)).status, 400, "an offer is used once");

    let refused = sign_in("mallory");
    assert_eq!(refused.status, 403, "another domain: {}", refused.body);
    assert_eq!(sign_in("eve").status, 403, "unverified email");
    assert!(server.log().contains("not in the domain"), "{}", server.log());
}

/// The browser test: chromium opens our index page (google_auth and oidc_auth configured:
/// a page of links), follows "Sign in with OpenID Connect", signs in at the real provider,
/// lands on our result page; the password read from the page pushes and pulls with skopeo
/// through the real registry where the provider's `groups` allow it, and is refused where
/// they do not. Screenshots of each page go to target/screenshots/.
#[test]
fn browser_signs_in_and_skopeo_uses_the_password_through_the_registry() {
    use crate::support::browser::Browser;
    use crate::support::oci::write_oci_layout;
    use crate::support::registry::{Registry, RegistryAuth};
    use crate::support::skopeo::{docker_ref, Creds, Skopeo};

    let addr = format!("127.0.0.1:{}", free_port());
    let redirects = [format!("http://{addr}/oidc_auth"), format!("http://{addr}/google_auth")];
    let client = OidcClient::web(CLIENT_ID, CLIENT_SECRET, &[&redirects[0], &redirects[1]]);
    let provider = OidcProvider::start(&users().client(client));
    let google = format!(
        "google_auth:\n  client_id: \"{CLIENT_ID}\"\n  client_secret: \"{CLIENT_SECRET}\"\n  issuer: \"{}\"\n",
        provider.issuer()
    );
    let server = Server::start(&addr, &format!("{google}{}", oidc_section(&provider.issuer(), &addr, "")), "");
    let registry = Registry::start(RegistryAuth {
        realm: server.url("/auth"),
        service: SERVICE.to_string(),
        issuer: "Acme auth server".to_string(),
        rootcertbundle: server._keys.cert.clone(),
    });

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (account, password) = runtime.block_on(async {
        let browser = Browser::start("web_signin").await;
        browser.client.goto(&server.url("/")).await.unwrap();
        browser.text("#signin-oidc").await;
        browser.screenshot("index").await;
        browser.click("#signin-oidc").await;
        browser.fill("input[name=login]", "alice").await;
        browser.fill("input[name=password]", "any").await;
        browser.screenshot("provider-login").await;
        browser.click("button[type=submit]").await;
        let password = browser.text("#password").await;
        let account = browser.text("#account").await;
        assert!(browser.text("#docker-login").await.contains(&format!("-p {password} registry.acme.test")));
        browser.screenshot("result").await;
        // A callback this browser did not start (its flow cookie is gone with the sign-in).
        browser.client.goto(&server.url("/oidc_auth?state=forged&code=x")).await.unwrap();
        assert!(browser.text("#reason").await.contains("not started in this browser"));
        browser.screenshot("error").await;
        browser.close().await;
        (account, password)
    });
    assert_eq!(account, "alice@acme.test");

    let images = crate::support::temp_dir("images");
    let image = write_oci_layout(&images.path().join("layout"), "v1", &[("hello.txt", b"web sign-in")]);
    let skopeo = Skopeo::new();
    let creds = Creds::Basic(&account, &password);
    let allowed = docker_ref(&registry.addr(), "dev/app", "v1");
    skopeo
        .copy(&image.oci_ref(), &allowed, Creds::Anonymous, creds)
        .unwrap_or_else(|e| panic!("push: {e}\n{}", server.log()));
    skopeo.inspect_raw(&allowed, creds).unwrap_or_else(|e| panic!("pull: {e}"));
    let refused = docker_ref(&registry.addr(), "ops/app", "v1");
    assert!(skopeo.copy(&image.oci_ref(), &refused, Creds::Anonymous, creds).is_err(), "alice is not in ops");
    let screenshots = crate::support::browser::screenshot_dir();
    for page in ["index", "provider-login", "result", "error"] {
        assert!(screenshots.join(format!("web_signin-{page}.png")).is_file(), "{page} screenshot");
    }
}

/// A test issuer: discovery, a JWKS with one RSA key, and a token endpoint that answers
/// with whatever ID token the test set last, so each rejection can be provoked exactly.
struct TestIssuer {
    addr: String,
    next: std::sync::Arc<std::sync::Mutex<(u16, String)>>,
    key: jsonwebtoken::EncodingKey,
    other_key: jsonwebtoken::EncodingKey,
}

impl TestIssuer {
    fn start() -> TestIssuer {
        use rsa::pkcs1::EncodeRsaPrivateKey as _;
        use rsa::traits::PublicKeyParts as _;
        use std::io::{BufRead as _, BufReader, Read as _, Write as _};

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let pem = |k: &rsa::RsaPrivateKey| k.to_pkcs1_pem(rsa::pkcs1::LineEnding::LF).unwrap().to_string();
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let other = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let b64 = |b: Vec<u8>| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b);
        let jwks = json!({"keys": [{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
            "n": b64(private.n().to_bytes_be()), "e": b64(private.e().to_bytes_be())}]});
        let issuer = format!("http://{addr}");
        let discovery = json!({"issuer": issuer, "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"), "jwks_uri": format!("{issuer}/jwks")});
        let next = std::sync::Arc::new(std::sync::Mutex::new((200u16, String::new())));
        let shared = next.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut length = 0;
                loop {
                    let mut header = String::new();
                    if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                        break;
                    }
                    if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let (status, text) = match path.as_str() {
                    "/.well-known/openid-configuration" => (200, discovery.to_string()),
                    "/jwks" => (200, jwks.to_string()),
                    "/token" => shared.lock().unwrap().clone(),
                    _ => (404, "{}".to_string()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            }
        });
        TestIssuer {
            addr,
            next,
            key: jsonwebtoken::EncodingKey::from_rsa_pem(pem(&private).as_bytes()).unwrap(),
            other_key: jsonwebtoken::EncodingKey::from_rsa_pem(pem(&other).as_bytes()).unwrap(),
        }
    }

    fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The claims of a good ID token for `nonce`.
    fn claims(&self, nonce: &str) -> Value {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        json!({"iss": self.issuer(), "aud": CLIENT_ID, "sub": "s1", "exp": now + 300, "iat": now,
            "nonce": nonce, "email": "alice@acme.test", "email_verified": true, "groups": ["dev"]})
    }

    fn sign(&self, claims: &Value, kid: &str, other_key: bool) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(&header, claims, if other_key { &self.other_key } else { &self.key }).unwrap()
    }

    fn answer_with(&self, status: u16, id_token: &str) {
        let body = json!({"access_token": "upstream-access", "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": "upstream-refresh", "id_token": id_token});
        *self.next.lock().unwrap() = (status, body.to_string());
    }
}

/// Every ID-token rejection at the callback, each a 403 page without a password: another
/// issuer, another audience, expired, `alg: none`, HS256 keyed with the client secret, a
/// key the JWKS does not hold, another nonce, an unverified email, a token that is not a
/// JWT; an upstream 500 is a 502 page. A good token signs in (the harness is sound).
#[test]
fn id_token_rejections_at_the_callback() {
    let issuer = TestIssuer::start();
    let addr = format!("127.0.0.1:{}", free_port());
    let server = Server::start(&addr, &oidc_section(&issuer.issuer(), &addr, ""), "");
    let b64 = |v: &Value| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, v.to_string());
    let attempt = |make: &dyn Fn(&str) -> (u16, String)| -> Answer {
        let mut agent = CookieAgent::new();
        let start = agent.request("GET", &server.url("/oidc_auth"), None);
        let location = start.location.clone().unwrap_or_else(|| panic!("{start:?}\n{}", server.log()));
        let (state, nonce) = (query_param(&location, "state").unwrap(), query_param(&location, "nonce").unwrap());
        let (status, token) = make(&nonce);
        issuer.answer_with(status, &token);
        agent.request("GET", &server.url(&format!("/oidc_auth?code=c0de&state={state}")), None)
    };
    let good = attempt(&|nonce| (200, issuer.sign(&issuer.claims(nonce), "k1", false)));
    assert_eq!(good.status, 200, "{}\n{}", good.body, server.log());
    let with = |nonce: &str, change: &dyn Fn(&mut Value)| {
        let mut claims = issuer.claims(nonce);
        change(&mut claims);
        (200, issuer.sign(&claims, "k1", false))
    };
    type Make<'a> = Box<dyn Fn(&str) -> (u16, String) + 'a>;
    let cases: Vec<(&str, Make<'_>)> = vec![
        ("another issuer", Box::new(|n| with(n, &|c| c["iss"] = json!("https://evil.test")))),
        ("another audience", Box::new(|n| with(n, &|c| c["aud"] = json!("someone-else")))),
        ("azp of another client", Box::new(|n| with(n, &|c| c["azp"] = json!("someone-else")))),
        ("expired", Box::new(|n| with(n, &|c| c["exp"] = json!(1_000_000)))),
        ("not yet valid", Box::new(|n| with(n, &|c| c["nbf"] = json!(4_000_000_000u64)))),
        ("another nonce", Box::new(|n| with(n, &|c| c["nonce"] = json!("replayed")))),
        (
            "no nonce",
            Box::new(|n| {
                with(n, &|c| {
                    c.as_object_mut().unwrap().remove("nonce");
                })
            }),
        ),
        ("unverified email", Box::new(|n| with(n, &|c| c["email_verified"] = json!(false)))),
        ("unsigned", Box::new(|n| (200, format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&issuer.claims(n)))))),
        (
            "HS256 with the client secret",
            Box::new(|n| {
                let key = jsonwebtoken::EncodingKey::from_secret(CLIENT_SECRET.as_bytes());
                (200, jsonwebtoken::encode(&jsonwebtoken::Header::default(), &issuer.claims(n), &key).unwrap())
            }),
        ),
        ("a key the JWKS lacks", Box::new(|n| (200, issuer.sign(&issuer.claims(n), "k2", true)))),
        ("the JWKS kid with another key", Box::new(|n| (200, issuer.sign(&issuer.claims(n), "k1", true)))),
        ("not a JWT", Box::new(|_| (200, "garbage".to_string()))),
        ("the code refused", Box::new(|_| (400, String::new()))),
    ];
    for (case, make) in &cases {
        let answer = attempt(make.as_ref());
        assert_eq!(answer.status, 403, "{case}: {}\n{}", answer.body, server.log());
        assert!(!answer.body.contains("id=\"password\""), "{case}");
    }
    let down = attempt(&|_| (500, String::new()));
    assert_eq!(down.status, 502, "{}", down.body);
    assert!(down.body.contains("unavailable"), "{}", down.body);
    // Page text is escaped: the issuer name is the config's, the reason fixed.
    assert!(
        !server.log().contains("upstream-refresh") && !server.log().contains("upstream-access"),
        "{}",
        server.log()
    );
}

fn config_problems(section: &str, store: &str) -> (Vec<String>, Vec<String>) {
    let keys = Keys::new(KeyKind::EcP256);
    let yaml = with_keys(
        &format!(
            "server: {{addr: ':5001'}}\ntoken: {{issuer: i, expiration: 900, certificate: '@CERT@', key: '@KEY@'}}\n{store}{section}acl: []\n"
        ),
        &keys,
    );
    match registry_auth::config::load_str(&yaml, "t.yml") {
        Ok(config) => (Vec::new(), config.warnings.iter().map(ToString::to_string).collect()),
        Err(e) => (
            e.diagnostics.errors.iter().map(ToString::to_string).collect(),
            e.diagnostics.warnings.iter().map(ToString::to_string).collect(),
        ),
    }
}

/// Config errors name the key, its line and a fix: plain-http issuers and redirect URLs
/// that are not loopback, a redirect_url not ending in /oidc_auth, a missing secret,
/// docker_auth's token DBs (gcs refused naming the section, a level_token_db path that is no
/// LevelDB refused, an import into the memory store warned, redis_token_db only as the
/// store's Redis), and
/// reference.yml's misspelt label_claims (ignored by docker_auth) warned.
#[test]
fn web_signin_config_errors_name_path_line_and_fix() {
    let oidc = |extra: &str| {
        format!(
            "oidc_auth:\n  issuer: https://sso.example.com\n  redirect_url: https://auth.example.com/oidc_auth\n  client_id: c\n  client_secret: s\n{extra}"
        )
    };
    let (errors, _) = config_problems(&oidc("").replace("https://sso", "http://sso"), "");
    assert!(
        errors[0].starts_with("oidc_auth.issuer must be an https URL")
            && errors[0].contains("line 4")
            && errors[0].contains("fix: use https://"),
        "{errors:?}"
    );
    let (errors, _) = config_problems(&oidc("").replace("/oidc_auth\n", "/callback\n"), "");
    assert!(
        errors[0].contains("oidc_auth.redirect_url must end with /oidc_auth") && errors[0].contains("line 5"),
        "{errors:?}"
    );
    let (errors, _) = config_problems(&oidc("").replace("  client_secret: s\n", ""), "");
    assert!(errors[0].contains("client_secret or client_secret_file is required"), "{errors:?}");
    let (errors, _) = config_problems(&oidc("  gcs_token_db:\n    bucket: b\n    client_secret_file: /x\n"), "");
    assert!(
        errors[0].starts_with("oidc_auth.gcs_token_db: Google Cloud Storage token DBs are not available"),
        "{errors:?}"
    );
    let leveldb = crate::support::temp_dir("leveldb");
    std::fs::write(leveldb.path().join("notes.txt"), "not a LevelDB").unwrap();
    let level = format!("  level_token_db:\n    path: {}\n", leveldb.path().display());
    let (errors, _) = config_problems(&oidc(&level), "");
    assert!(
        errors[0].contains("is not a LevelDB directory (it has no CURRENT file)")
            && errors[0].contains("oidc_auth.level_token_db.path, line 9"),
        "{errors:?}"
    );
    let fresh = format!("  level_token_db:\n    path: {}/new.ldb\n    mode: import\n", leveldb.path().display());
    let (errors, warnings) = config_problems(&oidc(&fresh), "");
    assert!(errors.is_empty(), "{errors:?}");
    assert!(
        warnings.iter().any(|w| w.contains("import into the memory store (no store: section) forgets every sign-in")),
        "{warnings:?}"
    );
    let redis = "  redis_token_db:\n    redis_options:\n      addr: redis.example.com:6379\n";
    let (errors, _) = config_problems(&oidc(redis), "");
    assert!(
        errors[0].contains("oidc_auth.redis_token_db: registry-auth keeps sign-in records in its store")
            && errors[0].contains("add store: {redis: {addr: \"redis.example.com:6379\"}}"),
        "{errors:?}"
    );
    let (errors, _) = config_problems(&oidc(redis), "store:\n  redis:\n    addr: redis.example.com:6379\n");
    assert!(errors.is_empty(), "the store's own Redis: {errors:?}");
    let (_, warnings) = config_problems(&oidc("  label_claims: [groups]\n"), "");
    assert!(
        warnings.iter().any(|w| w.contains("label_claims is ignored") && w.contains("rename it to labels_claims")),
        "{warnings:?}"
    );
    let (errors, _) = config_problems(
        "google_auth:\n  client_id: c\n  client_secret: s\n  issuer: http://accounts.example.com\n",
        "",
    );
    assert!(errors[0].starts_with("google_auth.issuer must be an https URL"), "{errors:?}");
    let (errors, _) = config_problems("google_auth:\n  client_id: c\n  client_secret: s\n", "");
    assert!(errors.is_empty(), "Google's issuer by default: {errors:?}");
}
