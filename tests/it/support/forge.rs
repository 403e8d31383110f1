//! A local fake GitHub and GitLab: the one upstream the tests cannot run for real. It serves
//! exactly the documented endpoints registry-auth uses, on 127.0.0.1 with a random port, from
//! a thread per connection (std only), stopped on drop:
//!
//! - GitHub (web `http://<addr>`, API `http://<addr>/api/v3`): `GET /login/oauth/authorize`
//!   (redirects straight back with a code: no login page), `POST /login/oauth/access_token`
//!   (errors as GitHub sends them: 200 with `error`), `GET /user`, `GET /orgs/{org}/members/{login}`
//!   (204 / 404), `GET /user/teams` (paginated with `Link`), `GET /orgs/{org}/teams/{slug}`.
//! - GitLab (web `http://<addr>`, API `http://<addr>/api/v4`): `GET /oauth/authorize`,
//!   `POST /oauth/token` (authorization_code and refresh_token; 400 `invalid_grant`),
//!   `GET /user`, `GET /oauth/userinfo` (the `groups` claim).
//!
//! Codes are single-use and bound to the PKCE challenge, client and redirect URI, as upstream.
//! Switches: who signs in next, leaving an organization, revoking a user's tokens, expiring
//! access tokens (GitLab's two hours), stalling every answer, garbage or huge bodies.
use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "registry-auth-it";
pub const CLIENT_SECRET: &str = "forge-client-secret";

/// How the forge answers the token endpoint and the user APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answers {
    Normal,
    /// Accepts the connection and never answers.
    Stall,
    /// 200 with a body that is not JSON.
    Garbage,
    /// 200 with a 3 MiB JSON body.
    Huge,
}

#[derive(Debug, Clone)]
pub struct ForgeTeam {
    pub org: String,
    pub slug: String,
    pub parent: Option<String>,
}

#[derive(Default)]
struct State {
    /// Who the next authorize request signs in as.
    next_user: Option<String>,
    /// GitHub's registered callback (used when no `redirect_uri` is sent).
    registered_callback: Option<String>,
    /// user → organizations.
    orgs: HashMap<String, Vec<String>>,
    /// Every team of every organization, with its parent; members per team.
    teams: Vec<ForgeTeam>,
    members: HashMap<String, Vec<String>>,
    /// user → GitLab group full paths.
    groups: HashMap<String, Vec<String>>,
    codes: HashMap<String, Code>,
    access: HashMap<String, String>,
    refresh: HashMap<String, String>,
    /// Which users are blocked (GitLab `state: blocked`).
    blocked: Vec<String>,
    serial: u64,
}

struct Code {
    user: String,
    challenge: String,
    redirect_uri: Option<String>,
}

pub struct Forge {
    addr: String,
    state: Arc<Mutex<State>>,
    answers: Arc<Mutex<Answers>>,
    stop: Arc<AtomicBool>,
    /// Requests served, by path (no query).
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
    team_page_size: Arc<AtomicUsize>,
}

impl Forge {
    pub fn start() -> Forge {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake forge on 127.0.0.1");
        let addr = listener.local_addr().unwrap().to_string();
        let forge = Forge {
            addr,
            state: Arc::default(),
            answers: Arc::new(Mutex::new(Answers::Normal)),
            stop: Arc::default(),
            hits: Arc::default(),
            team_page_size: Arc::new(AtomicUsize::new(2)),
        };
        let server = Server {
            state: forge.state.clone(),
            answers: forge.answers.clone(),
            hits: forge.hits.clone(),
            team_page_size: forge.team_page_size.clone(),
            base: format!("http://{}", forge.addr),
        };
        let stop = forge.stop.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let server = server.clone();
                thread::spawn(move || server.serve(stream));
            }
        });
        forge
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn github_api(&self) -> String {
        format!("{}/api/v3", self.base())
    }

    pub fn gitlab_api(&self) -> String {
        format!("{}/api/v4", self.base())
    }

    /// The next authorize request signs in as `user` (the "browser" at the forge).
    pub fn sign_in_as(&self, user: &str) {
        self.state.lock().unwrap().next_user = Some(user.to_string());
    }

    /// GitHub's callback registered with the OAuth app.
    pub fn register_callback(&self, url: &str) {
        self.state.lock().unwrap().registered_callback = Some(url.to_string());
    }

    pub fn add_org_member(&self, user: &str, org: &str) {
        self.state.lock().unwrap().orgs.entry(user.into()).or_default().push(org.into());
    }

    /// The user leaves `org` (and its teams).
    pub fn leave_org(&self, user: &str, org: &str) {
        let mut s = self.state.lock().unwrap();
        s.orgs.entry(user.into()).or_default().retain(|o| o != org);
        let teams: Vec<String> = s.teams.iter().filter(|t| t.org == org).map(|t| team_key(&t.org, &t.slug)).collect();
        for key in teams {
            s.members.entry(key).or_default().retain(|m| m != user);
        }
    }

    pub fn add_team(&self, org: &str, slug: &str, parent: Option<&str>) {
        let team = ForgeTeam { org: org.into(), slug: slug.into(), parent: parent.map(Into::into) };
        self.state.lock().unwrap().teams.push(team);
    }

    pub fn add_team_member(&self, user: &str, org: &str, slug: &str) {
        self.state.lock().unwrap().members.entry(team_key(org, slug)).or_default().push(user.into());
    }

    pub fn set_groups(&self, user: &str, groups: &[&str]) {
        self.state.lock().unwrap().groups.insert(user.into(), groups.iter().map(|g| g.to_string()).collect());
    }

    pub fn block(&self, user: &str) {
        self.state.lock().unwrap().blocked.push(user.into());
    }

    /// Revokes every access and refresh token of `user` (the user revoked the app).
    pub fn revoke_tokens(&self, user: &str) {
        let mut s = self.state.lock().unwrap();
        s.access.retain(|_, u| u != user);
        s.refresh.retain(|_, u| u != user);
    }

    /// Every access token expires; refresh tokens keep working (GitLab after two hours).
    pub fn expire_access_tokens(&self) {
        self.state.lock().unwrap().access.clear();
    }

    pub fn set_answers(&self, answers: Answers) {
        *self.answers.lock().unwrap() = answers;
    }

    pub fn set_team_page_size(&self, size: usize) {
        self.team_page_size.store(size, Ordering::SeqCst);
    }

    /// How many requests hit `path` (without query) so far.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// Access tokens currently valid.
    pub fn live_access_tokens(&self) -> usize {
        self.state.lock().unwrap().access.len()
    }
}

impl Drop for Forge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn team_key(org: &str, slug: &str) -> String {
    format!("{org}/{slug}")
}

#[derive(Clone)]
struct Server {
    state: Arc<Mutex<State>>,
    answers: Arc<Mutex<Answers>>,
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
    team_page_size: Arc<AtomicUsize>,
    base: String,
}

struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    form: HashMap<String, String>,
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn json(status: u16, value: serde_json::Value) -> Response {
    Response {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: value.to_string().into_bytes(),
    }
}

fn empty(status: u16) -> Response {
    Response { status, headers: Vec::new(), body: Vec::new() }
}

fn pairs(text: &str) -> HashMap<String, String> {
    form_urlencoded::parse(text.as_bytes()).into_owned().collect()
}

impl Server {
    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let Some(request) = read_request(&stream) else { return };
        *self.hits.lock().unwrap().entry(request.path.clone()).or_default() += 1;
        let answers = *self.answers.lock().unwrap();
        let upstream_call = !request.path.ends_with("/authorize");
        let response = match answers {
            Answers::Stall if upstream_call => {
                // Hold the connection well past any http_timeout a test configures.
                thread::sleep(Duration::from_secs(30));
                return;
            }
            Answers::Garbage if upstream_call => Response {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: b"<html>{{{ not json".to_vec(),
            },
            Answers::Huge if upstream_call => {
                let mut body = b"{\"access_token\":\"".to_vec();
                body.extend(std::iter::repeat_n(b'a', 3 * 1024 * 1024));
                body.extend(b"\",\"login\":\"x\"}");
                Response { status: 200, headers: vec![("Content-Type".into(), "application/json".into())], body }
            }
            _ => self.route(&request),
        };
        write_response(stream, response);
    }

    fn route(&self, r: &Request) -> Response {
        let path = r.path.as_str();
        match (r.method.as_str(), path) {
            ("GET", "/login/oauth/authorize") => self.authorize(r, false),
            ("GET", "/oauth/authorize") => self.authorize(r, true),
            ("POST", "/login/oauth/access_token") => self.github_token(r),
            ("POST", "/oauth/token") => self.gitlab_token(r),
            ("GET", "/api/v3/user") => {
                self.with_user(r, |_, user| json(200, serde_json::json!({"login": user, "id": 1})))
            }
            ("GET", "/api/v3/user/teams") => self.with_user(r, |s, user| self.user_teams(s, user, r)),
            ("GET", "/api/v4/user") => self.with_user(r, |s, user| {
                let state = if s.blocked.iter().any(|b| b == user) { "blocked" } else { "active" };
                json(200, serde_json::json!({"username": user, "id": 7, "state": state}))
            }),
            ("GET", "/oauth/userinfo") => self.with_user(r, |s, user| {
                let groups = s.groups.get(user).cloned().unwrap_or_default();
                json(200, serde_json::json!({"sub": "7", "nickname": user, "groups": groups}))
            }),
            ("GET", p) if p.starts_with("/api/v3/orgs/") => self.orgs(r, &p["/api/v3/orgs/".len()..]),
            _ => json(404, serde_json::json!({"message": "Not Found"})),
        }
    }

    fn authorize(&self, r: &Request, gitlab: bool) -> Response {
        let mut s = self.state.lock().unwrap();
        let q = &r.query;
        let bad = |why: &str| json(400, serde_json::json!({"error": "invalid_request", "error_description": why}));
        if q.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
            return bad("unknown client_id");
        }
        if q.get("code_challenge_method").map(String::as_str) != Some("S256") || !q.contains_key("code_challenge") {
            return bad("PKCE S256 required");
        }
        if gitlab && q.get("response_type").map(String::as_str) != Some("code") {
            return bad("response_type must be code");
        }
        let Some(state) = q.get("state") else { return bad("state required") };
        let redirect = match (q.get("redirect_uri"), &s.registered_callback) {
            (Some(uri), _) => uri.clone(),
            (None, Some(registered)) if !gitlab => registered.clone(),
            _ => return bad("redirect_uri required"),
        };
        let Some(user) = s.next_user.clone() else { return bad("nobody signs in (test forgot sign_in_as)") };
        s.serial += 1;
        let code = format!("code-{}-{}", s.serial, rand_hex());
        let challenge = q["code_challenge"].clone();
        s.codes.insert(code.clone(), Code { user, challenge, redirect_uri: q.get("redirect_uri").cloned() });
        let sep = if redirect.contains('?') { '&' } else { '?' };
        let location = format!(
            "{redirect}{sep}code={}&state={}",
            form_urlencoded::byte_serialize(code.as_bytes()).collect::<String>(),
            form_urlencoded::byte_serialize(state.as_bytes()).collect::<String>()
        );
        Response { status: 302, headers: vec![("Location".into(), location)], body: Vec::new() }
    }

    /// Checks client, code (single use), PKCE and redirect URI; `Err` is the OAuth error code.
    fn redeem_code(&self, s: &mut State, f: &HashMap<String, String>) -> Result<String, &'static str> {
        if f.get("client_id").map(String::as_str) != Some(CLIENT_ID)
            || f.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
        {
            return Err("invalid_client");
        }
        let code = s.codes.remove(f.get("code").map(String::as_str).unwrap_or("")).ok_or("invalid_grant")?;
        let verifier = f.get("code_verifier").ok_or("invalid_grant")?;
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        if challenge != code.challenge || f.get("redirect_uri") != code.redirect_uri.as_ref() {
            return Err("invalid_grant");
        }
        Ok(code.user)
    }

    fn issue(&self, s: &mut State, user: &str) -> (String, String) {
        s.serial += 1;
        let access = format!("at-{}-{}", s.serial, rand_hex());
        let refresh = format!("rt-{}-{}", s.serial, rand_hex());
        s.access.insert(access.clone(), user.into());
        s.refresh.insert(refresh.clone(), user.into());
        (access, refresh)
    }

    fn github_token(&self, r: &Request) -> Response {
        let mut s = self.state.lock().unwrap();
        match self.redeem_code(&mut s, &r.form) {
            Ok(user) => {
                let (access, _) = self.issue(&mut s, &user);
                json(200, serde_json::json!({"access_token": access, "token_type": "bearer", "scope": "read:org"}))
            }
            // GitHub answers a bad code with 200 and an error field.
            Err(_) => json(
                200,
                serde_json::json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}),
            ),
        }
    }

    fn gitlab_token(&self, r: &Request) -> Response {
        let mut s = self.state.lock().unwrap();
        let f = &r.form;
        let user = match f.get("grant_type").map(String::as_str) {
            Some("authorization_code") => self.redeem_code(&mut s, f),
            Some("refresh_token") => {
                if f.get("client_id").map(String::as_str) != Some(CLIENT_ID)
                    || f.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
                {
                    Err("invalid_client")
                } else {
                    // GitLab rotates refresh tokens: the old one is spent.
                    s.refresh.remove(f.get("refresh_token").map(String::as_str).unwrap_or("")).ok_or("invalid_grant")
                }
            }
            _ => Err("unsupported_grant_type"),
        };
        match user {
            Ok(user) => {
                let (access, refresh) = self.issue(&mut s, &user);
                json(
                    200,
                    serde_json::json!({"access_token": access, "token_type": "Bearer", "expires_in": 7200, "refresh_token": refresh, "scope": "read_user openid", "created_at": 1}),
                )
            }
            Err(code) => json(if code == "invalid_client" { 401 } else { 400 }, serde_json::json!({"error": code})),
        }
    }

    fn with_user(&self, r: &Request, answer: impl FnOnce(&State, &str) -> Response) -> Response {
        let s = self.state.lock().unwrap();
        let token = r.headers.get("authorization").and_then(|h| h.strip_prefix("Bearer ")).unwrap_or("");
        match s.access.get(token) {
            Some(user) => {
                let user = user.clone();
                answer(&s, &user)
            }
            None => json(401, serde_json::json!({"message": "Bad credentials"})),
        }
    }

    fn user_teams(&self, s: &State, user: &str, r: &Request) -> Response {
        let teams: Vec<&ForgeTeam> = s
            .teams
            .iter()
            .filter(|t| s.members.get(&team_key(&t.org, &t.slug)).is_some_and(|m| m.iter().any(|u| u == user)))
            .collect();
        let size = self.team_page_size.load(Ordering::SeqCst).max(1);
        let page: usize = r.query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1).max(1);
        let items: Vec<serde_json::Value> =
            teams.iter().skip((page - 1) * size).take(size).map(|t| team_json(t)).collect();
        let mut response = json(200, serde_json::Value::Array(items));
        if page * size < teams.len() {
            let next = format!("{}/api/v3/user/teams?per_page=100&page={}", self.base, page + 1);
            response.headers.push(("Link".into(), format!("<{next}>; rel=\"next\"")));
        }
        response
    }

    fn orgs(&self, r: &Request, rest: &str) -> Response {
        let parts: Vec<&str> = rest.split('/').collect();
        self.with_user(r, |s, caller| match parts.as_slice() {
            [org, "members", login] => {
                let caller_in = s.orgs.get(caller).is_some_and(|o| o.iter().any(|x| x == org));
                let member = s.orgs.get(*login).is_some_and(|o| o.iter().any(|x| x == org));
                match (caller_in, member) {
                    (true, true) => empty(204),
                    (true, false) => empty(404),
                    // GitHub: a requester outside the org is sent to the public members list.
                    (false, _) => Response {
                        status: 302,
                        headers: vec![(
                            "Location".into(),
                            format!("{}/api/v3/orgs/{org}/public_members/{login}", self.base),
                        )],
                        body: Vec::new(),
                    },
                }
            }
            [org, "teams", slug] => match s.teams.iter().find(|t| t.org == *org && t.slug == *slug) {
                Some(team) => json(200, team_json(team)),
                None => json(404, serde_json::json!({"message": "Not Found"})),
            },
            _ => json(404, serde_json::json!({"message": "Not Found"})),
        })
    }
}

fn team_json(t: &ForgeTeam) -> serde_json::Value {
    let parent = t.parent.as_ref().map(|p| serde_json::json!({"slug": p, "name": p}));
    serde_json::json!({"slug": t.slug, "name": t.slug, "organization": {"login": t.org}, "parent": parent})
}

fn rand_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64);
    format!("{:016x}", h.finish())
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length.min(1 << 20)];
    reader.read_exact(&mut body).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let form = if method == "POST" { pairs(&String::from_utf8_lossy(&body)) } else { HashMap::new() };
    Some(Request { method, path: path.to_string(), query: pairs(query), headers, form })
}

fn write_response(mut stream: TcpStream, response: Response) {
    let reason = match response.status {
        200 => "OK",
        204 => "No Content",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        _ => "Other",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        response.status,
        response.body.len()
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&response.body);
}
