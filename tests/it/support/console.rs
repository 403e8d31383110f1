//! The console fixture (issue 14), shared by `console_shell`, `console_registry` and
//! `console_ops`: our binary with a `console:` section and an embedded store; an HTTP
//! client that signs in like a browser (cookies, the sign-in form's CSRF binding) and
//! posts forms with the session's CSRF token; and the same in chromium (`support::browser`)
//! with screenshots under `target/screenshots/console/<name>.png`.
use std::path::PathBuf;

use crate::auth_server::AuthServer;
use crate::common::{with_keys, KeyKind, Keys};
use crate::stored_creds::{config, Engine};
use crate::support::browser::{screenshot_dir, Browser};
use crate::support::oidc_provider::{Answer, CookieAgent};

/// A running server with the console on.
pub struct ConsoleServer {
    pub keys: Keys,
    pub server: AuthServer,
}

impl ConsoleServer {
    /// The identity tests' users (`admin`/`badmin`, `test`/`123` in group `devs`) and ACL
    /// (`stored_creds::config`), `extra_users` under `users:`, and `console:` with the
    /// lines of `console` under it (indented by two spaces, or empty).
    pub fn start(console: &str, extra_users: &str) -> ConsoleServer {
        Self::start_with(console, extra_users, "")
    }

    /// [`ConsoleServer::start`] with more top-level sections (`lockout:`, `oidc_auth:`...).
    pub fn start_with(console: &str, extra_users: &str, sections: &str) -> ConsoleServer {
        let addr = format!("127.0.0.1:{}", crate::support::ports::free_port());
        Self::start_at(&addr, console, extra_users, sections)
    }

    /// [`ConsoleServer::start_with`] on `addr` (known before: a provider's redirect URI).
    pub fn start_at(addr: &str, console: &str, extra_users: &str, sections: &str) -> ConsoleServer {
        let keys = Keys::new(KeyKind::EcP256);
        let yaml = format!("{}console:\n{console}{sections}", config(&keys, &Engine::Embedded, extra_users));
        let server = start_yaml_at(addr, &yaml);
        ConsoleServer { keys, server }
    }

    /// A whole config of the caller's (`@ADDR@`, `@DIR@`, `@CERT@`, `@KEY@` filled in).
    pub fn start_with_yaml(yaml: &str) -> ConsoleServer {
        let keys = Keys::new(KeyKind::EcP256);
        let server = start_yaml(&with_keys(yaml, &keys));
        ConsoleServer { keys, server }
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr)
    }

    /// `http://<addr>/console<path>`.
    pub fn console(&self, path: &str) -> String {
        self.url(&format!("/console{path}"))
    }

    pub fn log(&self) -> String {
        self.server.process.log()
    }

    /// An HTTP client signed in as `user`.
    pub fn sign_in(&self, user: &str, password: &str) -> ConsoleClient {
        let mut client = ConsoleClient::new(&self.console(""));
        let answer = client.sign_in(user, password);
        assert_eq!(answer.status, 303, "sign-in as {user}: {}\n{}", answer.body, self.log());
        client.load_csrf();
        client
    }
}

fn start_yaml(yaml: &str) -> AuthServer {
    start_yaml_at(&format!("127.0.0.1:{}", crate::support::ports::free_port()), yaml)
}

fn start_yaml_at(addr: &str, yaml: &str) -> AuthServer {
    let dir = crate::support::temp_dir("console-server");
    let addr = addr.to_string();
    let path = dir.path().join("auth_config.yml");
    let text = yaml.replace("@ADDR@", &addr).replace("@DIR@", &dir.path().display().to_string());
    std::fs::write(&path, text).unwrap();
    AuthServer::serve(&addr, &path, dir)
}

/// The value of the first `name="csrf"` hidden field of a page.
pub fn csrf_of(body: &str) -> Option<String> {
    let at = body.find("name=\"csrf\" value=\"")?;
    let rest = &body[at + "name=\"csrf\" value=\"".len()..];
    rest.split('"').next().map(str::to_string)
}

/// The text of the element with `id` (up to its first `<`), HTML entities left as they are.
pub fn element_text(body: &str, id: &str) -> Option<String> {
    let at = body.find(&format!("id=\"{id}\""))?;
    let rest = &body[at..];
    let start = rest.find('>')? + 1;
    let end = rest[start..].find('<')?;
    Some(rest[start..start + end].to_string())
}

/// A cookie-keeping HTTP client of the console (no redirects followed).
pub struct ConsoleClient {
    pub agent: CookieAgent,
    /// `http://<addr>/console`.
    pub base: String,
    /// The session's CSRF token (after [`ConsoleClient::load_csrf`]).
    pub csrf: String,
}

impl ConsoleClient {
    pub fn new(base: &str) -> ConsoleClient {
        ConsoleClient { agent: CookieAgent::new(), base: base.to_string(), csrf: String::new() }
    }

    pub fn get(&mut self, path: &str) -> Answer {
        let url = format!("{}{path}", self.base);
        self.agent.request("GET", &url, None)
    }

    /// POSTs `fields` with this session's CSRF token added.
    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let csrf = self.csrf.clone();
        let mut all = fields.to_vec();
        all.push(("csrf", &csrf));
        self.post_raw(path, &all)
    }

    /// POSTs exactly `fields` (CSRF tests).
    pub fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let url = format!("{}{path}", self.base);
        self.agent.request("POST", &url, Some(fields))
    }

    /// Loads the sign-in form and posts it; the answer of the POST (303 home on success).
    pub fn sign_in(&mut self, user: &str, password: &str) -> Answer {
        let form = self.get("/signin");
        assert_eq!(form.status, 200, "{}", form.body);
        let csrf = csrf_of(&form.body).expect("the sign-in form has a csrf field");
        self.post_raw("/signin", &[("username", user), ("password", password), ("csrf", &csrf)])
    }

    /// Reads the session's CSRF token from the home page.
    pub fn load_csrf(&mut self) {
        let home = self.get("/");
        assert_eq!(home.status, 200, "home after sign-in: {home:?} (cookie {:?})", self.session_cookie());
        self.csrf = csrf_of(&home.body).expect("the home page has a csrf field");
    }

    /// The session cookie's value, if the client holds one.
    pub fn session_cookie(&self) -> Option<String> {
        self.agent.cookie(&self.base, "registry_auth_console")
    }
}

/// `target/screenshots/console/<name>.png` of the browser's current page.
pub async fn screenshot(browser: &Browser, name: &str) -> PathBuf {
    let png = browser.client.screenshot().await.expect("screenshot");
    let dir = screenshot_dir().join("console");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    path
}

/// Signs in with the password form in chromium; returns once the home page shows.
pub async fn browser_sign_in(browser: &Browser, console: &str, user: &str, password: &str) {
    browser.client.goto(&format!("{console}/signin")).await.unwrap();
    browser.fill("#username", user).await;
    browser.fill("#password", password).await;
    browser.click("#signin").await;
    let shown = browser.text("#whoami").await;
    assert_eq!(shown, user, "signed in as {user}");
}
