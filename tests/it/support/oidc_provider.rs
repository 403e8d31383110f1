//! A real OpenID provider: npm `oidc-provider` (OpenID Certified) run by Debian's `nodejs`
//! from `tests/oidc-provider/provider.mjs`, on 127.0.0.1 with a random port, one process
//! per fixture, killed on drop. It stands in for Google, generic OIDC, GitLab's OIDC side
//! and CI issuers (client-credentials JWTs with extra claims).
//!
//! Logging in (browser or [`OidcProvider::login`]): the development login form accepts
//! any password for a login listed in the users; consent is granted without a page.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use super::http::http_get;
use super::ports::{free_port, Probe};
use super::process::{require_program, ChildGuard};
use super::temp_dir;

// Node loads oidc-provider in a few seconds on a quiet machine; under a parallel build it has
// taken over 30 s. A probe, not a sleep: a longer bound costs nothing when it is quick.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// One client registered at the provider.
#[derive(Debug, Clone)]
pub struct OidcClient {
    pub id: String,
    pub secret: String,
    pub redirect_uris: Vec<String>,
    /// Empty: authorization code + refresh token (a web sign-in client).
    pub grant_types: Vec<String>,
    /// Claims added to every access token this client gets (client-credentials JWTs).
    pub extra_claims: Value,
}

impl OidcClient {
    /// A web sign-in client (authorization code, refresh tokens).
    pub fn web(id: &str, secret: &str, redirect_uris: &[&str]) -> OidcClient {
        OidcClient {
            id: id.to_string(),
            secret: secret.to_string(),
            redirect_uris: redirect_uris.iter().map(|s| s.to_string()).collect(),
            grant_types: Vec::new(),
            extra_claims: Value::Null,
        }
    }

    /// A machine client: `client_credentials` only, access tokens as JWTs with `extra_claims`.
    pub fn machine(id: &str, secret: &str, extra_claims: Value) -> OidcClient {
        OidcClient {
            id: id.to_string(),
            secret: secret.to_string(),
            redirect_uris: Vec::new(),
            grant_types: vec!["client_credentials".to_string()],
            extra_claims,
        }
    }

    fn to_json(&self) -> Value {
        let mut client = json!({
            "client_id": self.id,
            "client_secret": self.secret,
            "redirect_uris": self.redirect_uris,
        });
        if !self.grant_types.is_empty() {
            client["grant_types"] = json!(self.grant_types);
        }
        if !self.extra_claims.is_null() {
            client["extra_claims"] = self.extra_claims.clone();
        }
        client
    }
}

/// What the provider is started with.
#[derive(Debug, Clone, Default)]
pub struct OidcProviderConfig {
    pub clients: Vec<OidcClient>,
    /// login → claims (`email`, `email_verified`, `groups`, `hd`, `name`...).
    pub users: serde_json::Map<String, Value>,
    /// A private JWK set (`{"keys": [...]}`) to sign with; a fresh RSA key when `None`.
    /// Restarting with a set that has a new key is a key rotation.
    pub jwks: Option<Value>,
    /// ID token lifetime in seconds (default 3600).
    pub id_token_ttl: Option<u64>,
    /// Access token lifetime in seconds (client credentials default 600).
    pub access_token_ttl: Option<u64>,
}

impl OidcProviderConfig {
    pub fn client(mut self, client: OidcClient) -> Self {
        self.clients.push(client);
        self
    }

    pub fn user(mut self, login: &str, claims: Value) -> Self {
        self.users.insert(login.to_string(), claims);
        self
    }
}

/// A running provider.
pub struct OidcProvider {
    pub port: u16,
    child: ChildGuard,
    _dir: tempfile::TempDir,
}

/// The directory holding `provider.mjs` and its `node_modules` (from `npm ci`).
pub fn provider_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-provider")
}

impl OidcProvider {
    pub fn start(config: &OidcProviderConfig) -> OidcProvider {
        let dir = provider_dir();
        assert!(
            dir.join("node_modules/oidc-provider/package.json").is_file(),
            "{}/node_modules is missing: run scripts/install-deps.sh (it runs npm ci there)",
            dir.display()
        );
        let node = require_program("node");
        let work = temp_dir("oidc-provider");
        let mut file = json!({
            "clients": config.clients.iter().map(OidcClient::to_json).collect::<Vec<_>>(),
            "users": config.users,
        });
        if let Some(jwks) = &config.jwks {
            file["jwks"] = jwks.clone();
        }
        if let Some(ttl) = config.id_token_ttl {
            file["id_token_ttl"] = json!(ttl);
        }
        if let Some(ttl) = config.access_token_ttl {
            file["access_token_ttl"] = json!(ttl);
        }
        let config_path = work.path().join("provider.json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&file).expect("provider config"))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", config_path.display()));
        // A port taken between free_port and listen makes node exit: try a few. Once in a
        // full CI run node stayed alive without listening for the whole bound (cause not
        // found); such a hang (wait_ready reports the process's state) is started again once.
        let mut last_error = String::new();
        let mut hangs_left = 1;
        for _ in 0..5 {
            let port = free_port();
            let mut command = Command::new(&node);
            command
                .arg(dir.join("provider.mjs"))
                .arg("--port")
                .arg(port.to_string())
                .arg("--config")
                .arg(&config_path)
                .current_dir(&dir);
            let mut child = ChildGuard::spawn("oidc-provider", command, work.path());
            let addr = format!("127.0.0.1:{port}");
            match child.wait_ready("discovery document", READY_TIMEOUT, || {
                match http_get(&addr, "/.well-known/openid-configuration", &[]) {
                    Ok(r) if r.status == 200 => Probe::Ready(()),
                    Ok(r) => Probe::NotYet(format!("status {}", r.status)),
                    Err(e) => Probe::NotYet(e.to_string()),
                }
            }) {
                Ok(()) => return OidcProvider { port, child, _dir: work },
                Err(e) if e.contains("EADDRINUSE") => last_error = e,
                Err(e) if hangs_left > 0 && e.contains("not ready after") => {
                    hangs_left -= 1;
                    eprintln!("oidc-provider hung, starting it again: {e}");
                    last_error = e;
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("oidc-provider did not start: {last_error}");
    }

    /// `http://127.0.0.1:<port>`: the issuer, without a trailing slash.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The provider's log, for assertion messages (and to check what it was sent).
    pub fn log(&self) -> String {
        self.child.log()
    }

    /// The account disappears at the provider: refresh grants for it fail from now on.
    pub fn disable(&self, login: &str) {
        self.control("disable", login);
    }

    /// The account comes back.
    pub fn enable(&self, login: &str) {
        self.control("enable", login);
    }

    fn control(&self, action: &str, login: &str) {
        let url = format!("{}/test/{action}/{login}", self.issuer());
        let response = ureq::post(&url).call().unwrap_or_else(|e| panic!("POST {url}: {e}"));
        assert_eq!(response.status(), 204, "POST {url}");
    }

    /// A client-credentials access token (a JWT signed with the provider's keys) for the
    /// audience `audience`, carrying the client's extra claims.
    pub fn client_credentials_jwt(&self, client: &OidcClient, audience: &str) -> String {
        let url = format!("{}/token", self.issuer());
        let response = ureq::post(&url)
            .set("Authorization", &basic(&client.id, &client.secret))
            .send_form(&[("grant_type", "client_credentials"), ("resource", audience), ("scope", "registry")])
            .unwrap_or_else(|e| panic!("POST {url}: {e}\n{}", self.log()));
        let body: Value = response.into_json().expect("token response JSON");
        body["access_token"].as_str().unwrap_or_else(|| panic!("no access_token in {body}")).to_string()
    }

    /// The provider's public JWK set (`/jwks`), as JSON.
    pub fn jwks(&self) -> Value {
        let url = format!("{}/jwks", self.issuer());
        ureq::get(&url).call().unwrap_or_else(|e| panic!("GET {url}: {e}")).into_json().expect("JWKS JSON")
    }

    /// Kills the provider (an upstream that no longer answers).
    pub fn stop(&mut self) {
        self.child.kill();
    }
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// A fresh private RSA JWK (`kid` given) for [`OidcProviderConfig::jwks`], made by node's
/// crypto so the test needs no key code of its own.
pub fn generate_rsa_jwk(kid: &str) -> Value {
    let node = require_program("node");
    let script = format!(
        "const {{generateKeyPairSync}}=require('node:crypto');\
         const k=generateKeyPairSync('rsa',{{modulusLength:2048}}).privateKey.export({{format:'jwk'}});\
         process.stdout.write(JSON.stringify({{...k,kid:{kid:?},alg:'RS256',use:'sig'}}));"
    );
    let output = Command::new(node).arg("-e").arg(script).output().expect("node -e");
    assert!(output.status.success(), "node -e failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("JWK JSON")
}

/// A browser without a browser: follows redirects by hand and keeps cookies per host, for
/// HTTP-level tests of the sign-in flow.
pub struct CookieAgent {
    agent: ureq::Agent,
    /// (host:port, name) → value.
    cookies: std::collections::BTreeMap<(String, String), String>,
}

/// One answer as the HTTP-level tests need it.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Default for CookieAgent {
    fn default() -> Self {
        Self::new()
    }
}

impl CookieAgent {
    pub fn new() -> CookieAgent {
        let agent = ureq::AgentBuilder::new().redirects(0).timeout(Duration::from_secs(20)).build();
        CookieAgent { agent, cookies: Default::default() }
    }

    fn host_of(url: &url::Url) -> String {
        format!("{}:{}", url.host_str().unwrap_or_default(), url.port_or_known_default().unwrap_or(0))
    }

    /// The cookie `name` this agent holds for `url`'s host.
    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        let url = url::Url::parse(url).unwrap();
        self.cookies.get(&(Self::host_of(&url), name.to_string())).cloned()
    }

    pub fn set_cookie(&mut self, url: &str, name: &str, value: Option<&str>) {
        let url = url::Url::parse(url).unwrap();
        let key = (Self::host_of(&url), name.to_string());
        match value {
            Some(v) => self.cookies.insert(key, v.to_string()),
            None => self.cookies.remove(&key),
        };
    }

    /// One request (no redirect following), cookies sent and remembered.
    pub fn request(&mut self, method: &str, url: &str, form: Option<&[(&str, &str)]>) -> Answer {
        let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        let host = Self::host_of(&parsed);
        let cookie_header: Vec<String> =
            self.cookies.iter().filter(|((h, _), _)| *h == host).map(|((_, n), v)| format!("{n}={v}")).collect();
        let mut request = self.agent.request(method, url);
        if !cookie_header.is_empty() {
            request = request.set("Cookie", &cookie_header.join("; "));
        }
        let result = match form {
            Some(form) => request.send_form(form),
            None => request.call(),
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {url}: {e}"),
        };
        let status = response.status();
        let location = response.header("location").map(|l| parsed.join(l).unwrap().to_string());
        let set_cookies: Vec<String> = response.all("set-cookie").into_iter().map(str::to_string).collect();
        let headers = response
            .headers_names()
            .iter()
            .map(|n| (n.clone(), response.header(n).unwrap_or("").to_string()))
            .collect();
        for line in &set_cookies {
            let pair = line.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let removal = value.is_empty() || line.to_ascii_lowercase().contains("max-age=0");
                let key = (host.clone(), name.trim().to_string());
                if removal {
                    self.cookies.remove(&key);
                } else {
                    self.cookies.insert(key, value.trim().to_string());
                }
            }
        }
        let body = response.into_string().unwrap_or_default();
        Answer { status, location, set_cookies, headers, body }
    }

    /// Signs `login` in at the provider, starting from its authorization URL, and returns
    /// the URL the provider sends the browser back to (our callback, with code and state),
    /// without requesting it.
    pub fn sign_in_at_provider(&mut self, authorize_url: &str, login: &str, redirect_prefix: &str) -> String {
        let mut url = authorize_url.to_string();
        for _ in 0..12 {
            if url.starts_with(redirect_prefix) {
                return url;
            }
            let answer = self.request("GET", &url, None);
            if let Some(next) = answer.location {
                url = next;
                continue;
            }
            assert_eq!(answer.status, 200, "GET {url}: {}", answer.body);
            // The development login form: <form ... action="/interaction/<uid>/login" method="post">
            let action = answer
                .body
                .split("action=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_else(|| panic!("no form at {url}: {}", answer.body));
            let target = url::Url::parse(&url).unwrap().join(action).unwrap().to_string();
            let fields: &[(&str, &str)] = if answer.body.contains("name=\"login\"") {
                &[("prompt", "login"), ("login", login), ("password", "any")]
            } else {
                &[("prompt", "consent")]
            };
            let posted = self.request("POST", &target, Some(fields));
            url =
                posted.location.unwrap_or_else(|| panic!("POST {target} answered {}: {}", posted.status, posted.body));
        }
        panic!("no redirect to {redirect_prefix} after 12 steps (last {url})");
    }
}
