//! The console's shell (issue 14) on the real binary, at the HTTP level: password sign-in
//! through the authn chain (lockout included, no enumeration), sessions (cookie flags,
//! idle and absolute expiry, sign-out, sign-out everywhere), CSRF on every form, the
//! security headers, and escaping of client-supplied text.
use std::time::Duration;

use crate::common::ADMIN_HASH;
use crate::support::console::{csrf_of, element_text, ConsoleClient, ConsoleServer};

const XSS_USER: &str = "<script>alert(1)</script>";

fn server() -> ConsoleServer {
    ConsoleServer::start(
        "  registry_url: https://registry.acme.test\n",
        &format!("  \"{XSS_USER}\":\n    password: \"{ADMIN_HASH}\"\n"),
    )
}

fn header<'a>(answer: &'a crate::support::oidc_provider::Answer, name: &str) -> Option<&'a str> {
    answer.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

#[test]
fn password_sign_in_sessions_headers_csrf_and_escaping() {
    let server = server();
    // Not signed in: every page sends the browser to the sign-in form.
    let mut anonymous = ConsoleClient::new(&server.console(""));
    let home = anonymous.get("/");
    assert_eq!((home.status, home.location.as_deref()), (303, Some(server.console("/signin").as_str())));
    assert_eq!(anonymous.get("").location.as_deref(), Some(server.console("/").as_str()));
    let form = anonymous.get("/signin");
    assert_eq!(form.status, 200);
    for (name, value) in [
        ("content-security-policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(header(&form, name), Some(value), "{name}");
    }
    assert!(!form.body.contains("<script") && !form.body.contains("style="), "no inline script or style");
    assert!(form.body.contains("<label for=\"username\">") && form.body.contains("class=\"skip\""));
    let css = anonymous.get("/static/console.css");
    assert_eq!((css.status, header(&css, "content-type")), (200, Some("text/css; charset=utf-8")));

    // Sign-in form without its browser binding (a cross-site post): 403.
    let mut stranger = ConsoleClient::new(&server.console(""));
    let forged = stranger.post_raw("/signin", &[("username", "admin"), ("password", "badmin"), ("csrf", "x")]);
    assert_eq!(forged.status, 403, "{}", forged.body);

    // Signing in: a session cookie with the flags, and the home page.
    let mut admin = ConsoleClient::new(&server.console(""));
    let signed_in = admin.sign_in("admin", "badmin");
    assert_eq!(signed_in.status, 303, "{}\n{}", signed_in.body, server.log());
    let cookie =
        signed_in.set_cookies.iter().find(|c| c.starts_with("registry_auth_console=")).expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
    assert!(!cookie.contains("Secure") && !cookie.contains("Max-Age"), "{cookie}");
    let value = admin.session_cookie().unwrap();
    assert!(value.starts_with("racs_") && value.len() >= 43, "256 random bits: {value}");
    admin.load_csrf();
    let home = admin.get("/");
    assert_eq!(element_text(&home.body, "whoami").as_deref(), Some("admin"));
    assert_eq!(element_text(&home.body, "docker-login").as_deref(), Some("docker login registry.acme.test -u admin"));
    assert!(!server.log().contains(&value), "the cookie is never logged");

    // CSRF: a form without the token or with another session's is refused, and does nothing.
    let mut test = server.sign_in("test", "123");
    for fields in [vec![], vec![("csrf", "")], vec![("csrf", test.csrf.as_str())], vec![("csrf", "AAAA")]] {
        let refused = admin.post_raw("/signout", &fields);
        assert_eq!(refused.status, 403, "{fields:?}: {}", refused.body);
        assert!(refused.body.contains("Form expired"));
    }
    assert_eq!(admin.get("/").status, 200, "still signed in");

    // Escaping: an account name with markup renders as text.
    let mut xss = server.sign_in(XSS_USER, "badmin");
    let home = xss.get("/");
    assert!(!home.body.contains(XSS_USER), "{}", home.body);
    assert!(
        home.body.contains("&#60;script&#62;alert(1)&#60;/script&#62;") || home.body.contains("&lt;script&gt;"),
        "{}",
        home.body
    );
    let again = ConsoleClient::new(&server.console("")).sign_in(XSS_USER, "wrong");
    assert_eq!(again.status, 401);
    assert!(!again.body.contains(XSS_USER), "the echoed username is escaped too");

    // Sign-out ends this session only; the old cookie opens nothing afterwards.
    let mut second = server.sign_in("admin", "badmin");
    let old = admin.session_cookie().unwrap();
    let out = admin.post("/signout", &[]);
    assert_eq!(out.status, 303);
    assert!(out.location.unwrap().ends_with("/console/signin?signed_out=1"));
    assert!(admin.session_cookie().is_none(), "cleared");
    admin.agent.set_cookie(&server.console(""), "registry_auth_console", Some(&old));
    assert_eq!(admin.get("/").status, 303, "a signed-out cookie opens nothing");
    assert_eq!(second.get("/").status, 200, "the other session stays");

    // Sign-out everywhere: every session of the account, not another account's.
    let mut third = server.sign_in("admin", "badmin");
    let count = element_text(&third.get("/").body, "session-count").unwrap();
    assert_eq!(count, "2");
    let everywhere = third.post("/signout-everywhere", &[]);
    assert_eq!(everywhere.status, 303);
    assert_eq!(second.get("/").status, 303, "signed out on the other device");
    assert_eq!(third.get("/").status, 303);
    assert_eq!(test.get("/").status, 200, "test's session is not admin's");
    let notice = test.agent.request("GET", &server.console("/signin?signed_out=all"), None);
    assert_eq!(notice.status, 303, "signed-in people skip the form");
}

#[test]
fn no_enumeration_and_lockout_applies_to_console_sign_in() {
    let server = ConsoleServer::start("", "");
    let mut client = ConsoleClient::new(&server.console(""));
    let wrong = client.sign_in("admin", "wrong");
    let unknown = client.sign_in("nobody", "wrong");
    assert_eq!((wrong.status, unknown.status), (401, 401));
    assert_eq!(element_text(&wrong.body, "error"), element_text(&unknown.body, "error"));
    assert_eq!(wrong.body.replace("value=\"admin\"", ""), unknown.body.replace("value=\"nobody\"", ""), "same page");
    assert_eq!(element_text(&wrong.body, "error").as_deref(), Some("Wrong username or password."));
    let empty = client.sign_in("admin", "");
    assert_eq!(empty.status, 400);
    // A robot's secret or an unknown "robot$" never opens a console session.
    assert_eq!(client.sign_in("robot$ci", "rars_x").status, 401);
    let csrf = csrf_of(&wrong.body).unwrap();
    assert!(!csrf.is_empty());

    // The lockout of the token endpoint counts console failures too: after three
    // failures from this address even the right password is refused (429), for a known and
    // an unknown account alike, and so is a token request.
    let locked =
        ConsoleServer::start_with("", "", "lockout:\n  max_failures_per_ip: 3\n  max_failures_per_account: 3\n");
    let mut client = ConsoleClient::new(&locked.console(""));
    for _ in 0..3 {
        assert_eq!(client.sign_in("admin", "wrong").status, 401);
    }
    let refused = client.sign_in("admin", "badmin");
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(element_text(&refused.body, "error").unwrap().starts_with("Too many failed sign-ins."));
    assert!(header(&refused, "retry-after").is_some());
    assert_eq!(client.sign_in("nobody", "x").status, 429);
    let token = ureq::get(&locked.url("/auth"))
        .query("service", crate::stored_creds::SERVICE)
        .set("Authorization", &crate::stored_creds::basic("admin", "badmin"))
        .call();
    assert!(matches!(token, Err(ureq::Error::Status(429, _))), "{token:?}");
    assert!(locked.log().contains("console"), "the lockout names the console");
}

#[test]
fn sessions_end_when_idle_and_at_their_lifetime() {
    let server = ConsoleServer::start("  session_idle_timeout: 5s\n  session_lifetime: 11s\n", "");
    let mut idle = server.sign_in("admin", "badmin");
    let mut busy = server.sign_in("test", "123");
    let started = std::time::Instant::now();
    // busy keeps using its session (every 2 s); idle does not.
    let mut idle_checked = false;
    while started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(busy.get("/").status, 200, "in use at {:?}", started.elapsed());
        if !idle_checked && started.elapsed() >= Duration::from_secs(6) {
            assert_eq!(idle.get("/").status, 303, "idle for more than 5 s");
            idle_checked = true;
        }
    }
    assert!(idle_checked);
    std::thread::sleep(Duration::from_secs(11).saturating_sub(started.elapsed()) + Duration::from_millis(1200));
    assert_eq!(busy.get("/").status, 303, "past its 11 s lifetime, although in use");
}

/// The browser test of signing in and out: chromium opens the console (reached as
/// `localhost`, the provider as `127.0.0.1`: another site, as a real provider is), signs in
/// with a password, signs out, then signs in through the real OpenID provider, whose
/// cross-site redirect chain ends on our landing page and continues into the console with
/// the SameSite=Strict session cookie. Screenshots: target/screenshots/console/.
#[test]
fn browser_signs_in_with_a_password_and_with_the_openid_provider() {
    use crate::support::browser::Browser;
    use crate::support::console::{browser_sign_in, screenshot};
    use crate::support::oidc_provider::{OidcClient, OidcProvider, OidcProviderConfig};

    let port = crate::support::ports::free_port();
    let redirect = format!("http://localhost:{port}/oidc_auth");
    let claims = serde_json::json!({"email": "alice@acme.test", "email_verified": true, "groups": ["dev"]});
    let provider = OidcProvider::start(
        &OidcProviderConfig::default()
            .client(OidcClient::web("registry", "registry-secret", &[&redirect]))
            .user("alice", claims),
    );
    let oidc = format!(
        "oidc_auth:\n  issuer: \"{}\"\n  redirect_url: \"{redirect}\"\n  client_id: registry\n  client_secret: registry-secret\n  scopes: [openid, email, groups]\n  labels_claims: [groups]\n  http_timeout: 5s\n",
        provider.issuer()
    );
    let server = ConsoleServer::start_at(
        &format!("127.0.0.1:{port}"),
        "  registry_url: https://registry.acme.test\n",
        "",
        &oidc,
    );
    let console = format!("http://localhost:{port}/console");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let browser = Browser::start("console").await;
        browser.client.goto(&format!("{console}/")).await.unwrap();
        browser.text("#signin-oidc").await;
        screenshot(&browser, "signin").await;
        browser_sign_in(&browser, &console, "test", "123").await;
        assert!(browser.text("#docker-login").await.contains("docker login registry.acme.test -u test"));
        screenshot(&browser, "home").await;
        browser.click("#signout").await;
        assert_eq!(browser.text("#notice").await, "You are signed out.");
        screenshot(&browser, "signed-out").await;

        browser.click("#signin-oidc").await;
        browser.fill("input[name=login]", "alice").await;
        browser.fill("input[name=password]", "any").await;
        browser.click("button[type=submit]").await;
        let shown = browser.text("#whoami").await;
        assert_eq!(shown, "alice@acme.test", "{}", server.log());
        assert_eq!(browser.text("#via").await, "OpenID Connect", "the provider as the sign-in page names it");
        assert!(browser.text("#labels").await.contains("groups: dev"));
        screenshot(&browser, "home-oidc").await;
        browser.close().await;
    });
    assert!(server.log().contains("via=\"oidc\""), "{}", server.log());
}

/// My credentials over HTTP: a CI credential broader than the account is refused with the
/// reason; identity tokens of the account are listed and revoked (and then refused at
/// /auth); another account's credentials cannot be revoked.
#[test]
fn credentials_are_never_broader_than_the_account_and_revoke_works() {
    let server = server();
    let mut test = server.sign_in("test", "123");
    let create = |client: &mut ConsoleClient, name: &str, repos: &str, push: bool| {
        let mut fields = vec![("name", name), ("repositories", repos), ("pull", "on"), ("days", "30")];
        if push {
            fields.push(("push", "on"));
        }
        client.post("/credentials/robots", &fields)
    };
    let refused = create(&mut test, "ci-devs", "devs/app", true);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(
        element_text(&refused.body, "error").as_deref(),
        Some("You may not push devs/app yourself, so a CI credential of yours cannot either.")
    );
    let wildcard = create(&mut test, "ci-any", "test/*", false);
    assert_eq!(wildcard.status, 400);
    assert!(element_text(&wildcard.body, "error").unwrap().contains("no wildcards"));
    let no_csrf = test.post_raw("/credentials/robots", &[("name", "x"), ("repositories", "test/app"), ("pull", "on")]);
    assert_eq!(no_csrf.status, 403);
    let created = create(&mut test, "ci-test", "test/app\ndevs/app", false);
    assert_eq!(created.status, 200, "{}", created.body);
    let secret = element_text(&created.body, "robot-secret").unwrap();
    assert!(secret.starts_with("rars_"));
    let token = |user: &str, password: &str, scope: &str| {
        let req = ureq::get(&server.url("/auth"))
            .query("service", crate::stored_creds::SERVICE)
            .query("scope", scope)
            .set("Authorization", &crate::stored_creds::basic(user, password));
        crate::stored_creds::call(req, None)
    };
    let (status, body) = token("robot$ci-test", &secret, "repository:test/app:pull,push");
    assert_eq!(status, 200);
    assert_eq!(
        crate::stored_creds::granted(&body).1,
        vec!["pull".to_string()],
        "its own scopes narrow the owner's push"
    );
    assert_eq!(server.log().matches(&secret).count(), 0, "the secret is never logged");

    // An identity token made by `docker login` shows up and is revoked from the page.
    let req = ureq::get(&server.url("/auth"))
        .query("service", crate::stored_creds::SERVICE)
        .query("offline_token", "true")
        .query("client_id", "docker")
        .set("Authorization", &crate::stored_creds::basic("test", "123"));
    let (status, body) = crate::stored_creds::call(req, None);
    assert_eq!(status, 200);
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    let page = test.get("/credentials");
    assert!(page.body.contains("<td>docker</td>"), "{}", page.body);
    let id = page.body.split("id=\"token-").nth(1).unwrap().split('"').next().unwrap().to_string();
    let mut admin = server.sign_in("admin", "badmin");
    assert_eq!(admin.post("/credentials/tokens/revoke", &[("id", &id)]).status, 400, "not admin's token");
    assert_eq!(admin.post("/credentials/robots/revoke", &[("id", "ci-test")]).status, 400, "not admin's robot");
    assert_eq!(test.post("/credentials/tokens/revoke", &[("id", &id)]).status, 303);
    let req = ureq::post(&server.url("/auth/token"));
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("service", crate::stored_creds::SERVICE),
        ("client_id", "docker"),
    ];
    let (status, _) = crate::stored_creds::call(req, Some(&form));
    assert_eq!(status, 400, "the revoked identity token is refused (invalid_grant)");
    assert_eq!(test.post("/credentials/robots/revoke", &[("id", "ci-test")]).status, 303);
    assert_eq!(token("robot$ci-test", &secret, "repository:test/app:pull").0, 401);
}

/// The browser test of My credentials: chromium signs in, creates a CI credential for
/// test/app (pull and push), skopeo pushes with it through the real registry (and is
/// refused another repository), the page revokes it, and skopeo is refused.
#[test]
fn browser_creates_a_ci_credential_skopeo_pushes_then_it_is_revoked() {
    use crate::support::browser::Browser;
    use crate::support::console::{browser_sign_in, screenshot};
    use crate::support::oci::write_oci_layout;
    use crate::support::registry::{Registry, RegistryAuth};
    use crate::support::skopeo::{docker_ref, Creds, Skopeo};

    let server = server();
    let registry = Registry::start(RegistryAuth {
        realm: server.url("/auth"),
        service: crate::stored_creds::SERVICE.to_string(),
        issuer: "Acme auth server".to_string(),
        rootcertbundle: server.keys.cert.clone(),
    });
    let console = server.console("");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (login, secret, browser) = runtime.block_on(async {
        let browser = Browser::start("console").await;
        browser_sign_in(&browser, &console, "test", "123").await;
        browser.client.goto(&format!("{console}/credentials")).await.unwrap();
        browser.text("#no-robots").await;
        browser.fill("#name", "ci-app").await;
        browser.fill("#repositories", "test/app").await;
        browser.click("#push").await;
        let days = browser.client.find(fantoccini::Locator::Css("#days")).await.unwrap();
        days.clear().await.unwrap();
        days.send_keys("30").await.unwrap();
        screenshot(&browser, "credentials-form").await;
        browser.click("#create").await;
        let login = browser.text("#robot-login").await;
        let secret = browser.text("#robot-secret").await;
        screenshot(&browser, "credential-created").await;
        (login, secret, browser)
    });
    assert_eq!(login, "robot$ci-app");
    let images = crate::support::temp_dir("images");
    let image = write_oci_layout(&images.path().join("layout"), "v1", &[("hello.txt", b"console CI credential")]);
    let skopeo = Skopeo::new();
    let creds = Creds::Basic(&login, &secret);
    let target = docker_ref(&registry.addr(), "test/app", "v1");
    skopeo
        .copy(&image.oci_ref(), &target, Creds::Anonymous, creds)
        .unwrap_or_else(|e| panic!("push: {e}\n{}", server.log()));
    skopeo.inspect_raw(&target, creds).unwrap_or_else(|e| panic!("pull: {e}"));
    let other = docker_ref(&registry.addr(), "test/other", "v1");
    assert!(skopeo.copy(&image.oci_ref(), &other, Creds::Anonymous, creds).is_err(), "outside its scopes");

    runtime.block_on(async {
        browser.client.goto(&format!("{console}/credentials")).await.unwrap();
        assert!(browser.text("#robot-ci-app").await.contains("repository:test/app:pull,push"));
        screenshot(&browser, "credentials").await;
        browser.click("#revoke-ci-app").await;
        browser.text("#no-robots").await;
        screenshot(&browser, "credentials-revoked").await;
        browser.close().await;
    });
    assert!(skopeo.inspect_raw(&target, creds).is_err(), "revoked in the page: refused");
}

/// On a TLS listener the console's cookies are Secure.
#[test]
fn cookies_are_secure_on_tls() {
    let keys = crate::common::Keys::new(crate::common::KeyKind::EcP256);
    let yaml = crate::stored_creds::config(&keys, &crate::stored_creds::Engine::Embedded, "").replacen(
        "  addr: \"@ADDR@\"\n",
        &format!("  addr: \"@ADDR@\"\n  certificate: \"{}\"\n  key: \"{}\"\n", keys.cert.display(), keys.key.display()),
        1,
    );
    let server = crate::stored_creds::start_server(&format!("{yaml}console:\n"), true);
    let client = crate::auth_server::AuthServer::client(&keys.cert);
    let answer = client.get(&format!("https://{}/console/signin", server.addr)).call().unwrap();
    assert_eq!(answer.status(), 200);
    let cookie = answer
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("registry_auth_console_signin="))
        .unwrap()
        .to_string();
    for flag in ["Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(cookie.contains(flag), "{flag} in {cookie}");
    }
}
