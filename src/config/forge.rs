//! docker_auth's `github_auth:` and `gitlab_auth:` sections, key for key (parity.md §3.2),
//! read into one [`ForgeConfig`]: both are an OAuth2 app at a code forge whose user API is
//! asked again every `revalidate_after`. `client_secret_file` is read here, at load and on
//! every reload, so a missing file stops start-up instead of every sign-in.
//!
//! Differences from docker_auth: upstream URLs must be https (loopback addresses excepted,
//! for development and tests); GitLab's URI defaults are the right way round (docker_auth
//! swaps them). The token DB subsections are read as for every web sign-in section
//! (`config::web_signin`: records in our store, `gcs_token_db` refused).
use std::time::Duration;

use url::Url;

use super::diag::Diagnostics;
use super::reader::Section;
use super::web_signin::{self, TokenDb};
use crate::authn::oidc::upstream::allowed_url;
use crate::secret::Secret;

/// Which forge a section configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForgeKind {
    GitHub,
    GitLab,
}

impl ForgeKind {
    /// The section name, which is also the route (`/github_auth`).
    pub fn section(self) -> &'static str {
        match self {
            ForgeKind::GitHub => "github_auth",
            ForgeKind::GitLab => "gitlab_auth",
        }
    }

    fn uri_keys(self) -> (&'static str, &'static str) {
        match self {
            ForgeKind::GitHub => ("github_web_uri", "github_api_uri"),
            ForgeKind::GitLab => ("gitlab_web_uri", "gitlab_api_uri"),
        }
    }

    fn default_uris(self) -> (&'static str, &'static str) {
        match self {
            ForgeKind::GitHub => ("https://github.com", "https://api.github.com"),
            ForgeKind::GitLab => ("https://gitlab.com", "https://gitlab.com/api/v4"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ForgeConfig {
    pub kind: ForgeKind,
    pub line: usize,
    /// GitHub: only members of this organization may sign in; also scopes the `teams` label.
    /// GitLab: read but unused, as in docker_auth.
    pub organization: Option<String>,
    pub client_id: String,
    pub client_secret: Secret,
    /// Where the browser signs in (`/login/oauth/authorize`, `/oauth/authorize`), no trailing slash.
    pub web_uri: Url,
    /// The REST API (`/user`...), no trailing slash.
    pub api_uri: Url,
    /// The callback registered at the forge. GitLab: required (docker_auth); GitHub: optional
    /// (our addition; without it GitHub uses the app's registered callback, as docker_auth does).
    pub redirect_uri: Option<Url>,
    /// Limit for each whole upstream call, body included.
    pub http_timeout: Duration,
    /// How long a sign-in holds before the user API is asked again.
    pub revalidate_after: Duration,
    /// Shown in the `docker login` command of the result page.
    pub registry_url: Option<String>,
    /// Mapped onto our store as for every web sign-in section (`config::web_signin`).
    pub token_db: TokenDb,
    /// bcrypt cost of generated passwords (`token_hash_cost` of the token DB subsection).
    pub token_hash_cost: Option<u32>,
}

const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_REVALIDATE_AFTER: Duration = Duration::from_secs(3600);
const TOKEN_DB_KEYS: &[&str] = &["level_token_db", "redis_token_db", "gcs_token_db"];

/// Reads `github_auth:` or `gitlab_auth:`; `None` when absent, null or wrong.
pub fn read(root: &mut Section<'_>, kind: ForgeKind, diags: &mut Diagnostics) -> Option<ForgeConfig> {
    let name = kind.section();
    let node = root.node(name)?;
    let mut s = Section::of(node, name, diags)?;
    let errors_before = diags.errors.len();
    let organization = s.string("organization", diags).filter(|o| !o.is_empty());
    if kind == ForgeKind::GitLab && organization.is_some() {
        let line = s.node("organization").map_or(s.line, |n| n.line);
        diags
            .warn(s.child_path("organization"), line, "gitlab_auth.organization is not used (as in docker_auth)")
            .hint("restrict by GitLab group in the ACL instead: match: {labels: {groups: my-group}}");
    }
    let client_id = required(
        &mut s,
        "client_id",
        "set client_id: to the application ID from the forge's OAuth app settings",
        diags,
    );
    let client_secret = read_client_secret(&mut s, diags);
    let (web_key, api_key) = kind.uri_keys();
    let (web_default, api_default) = kind.default_uris();
    let web_uri = read_url(&mut s, web_key, Some(web_default), diags);
    let api_uri = read_url(&mut s, api_key, Some(api_default), diags);
    let redirect_uri = read_url(&mut s, "redirect_uri", None, diags);
    if kind == ForgeKind::GitLab && redirect_uri.is_none() && !s.has_value("redirect_uri") {
        diags
            .error(s.child_path("redirect_uri"), s.line, "gitlab_auth.redirect_uri is required")
            .hint("set redirect_uri: https://<this server>/gitlab_auth, as registered in the GitLab application");
    }
    if let Some(uri) = &redirect_uri {
        check_redirect_path(&mut s, uri, name, diags);
    }
    let http_timeout = read_duration(&mut s, "http_timeout", DEFAULT_HTTP_TIMEOUT, diags);
    let revalidate_after = read_duration(&mut s, "revalidate_after", DEFAULT_REVALIDATE_AFTER, diags);
    let registry_url = s.string("registry_url", diags).filter(|r| !r.is_empty());
    if kind == ForgeKind::GitLab {
        read_grant_type(&mut s, diags);
    }
    let (token_db, token_hash_cost) = web_signin::read_token_db(&mut s, diags);
    let mut known = vec!["organization", "client_id", "client_secret", "client_secret_file", web_key, api_key];
    known.extend(["redirect_uri", "http_timeout", "revalidate_after", "registry_url"]);
    if kind == ForgeKind::GitLab {
        known.push("grant_type");
    }
    known.extend(TOKEN_DB_KEYS);
    s.warn_unknown(&known, diags);
    if diags.errors.len() > errors_before {
        return None;
    }
    Some(ForgeConfig {
        kind,
        line: s.line,
        organization,
        client_id: client_id?,
        client_secret: client_secret?,
        web_uri: web_uri?,
        api_uri: api_uri?,
        redirect_uri,
        http_timeout,
        revalidate_after,
        registry_url,
        token_db: token_db?,
        token_hash_cost,
    })
}

fn required(s: &mut Section<'_>, key: &str, hint: &str, diags: &mut Diagnostics) -> Option<String> {
    let line = s.node(key).map_or(s.line, |n| n.line);
    let value = s.string(key, diags).filter(|v| !v.is_empty());
    if value.is_none() {
        let path = s.child_path(key);
        diags.error(&path, line, format!("{path} is required")).hint(hint);
    }
    value
}

/// `client_secret_file` (trimmed, read now) wins over `client_secret`, as in docker_auth.
fn read_client_secret(s: &mut Section<'_>, diags: &mut Diagnostics) -> Option<Secret> {
    let inline = s.string("client_secret", diags).filter(|v| !v.is_empty());
    let file_line = s.node("client_secret_file").map(|n| n.line);
    if let Some(file) = s.string("client_secret_file", diags).filter(|f| !f.is_empty()) {
        let path = s.child_path("client_secret_file");
        let line = file_line.unwrap_or(s.line);
        return match std::fs::read_to_string(&file) {
            Ok(text) if !text.trim().is_empty() => Some(Secret::new(text.trim())),
            Ok(_) => {
                diags
                    .error(&path, line, format!("{file} is empty"))
                    .hint("put the OAuth application's client secret in that file");
                None
            }
            Err(e) => {
                diags
                    .error(&path, line, format!("could not read {file}: {e}"))
                    .hint("check the path and that the file is readable by this user");
                None
            }
        };
    }
    if inline.is_none() {
        let path = s.child_path("client_secret");
        diags
            .error(&path, s.line, format!("{path} or {path}_file is required"))
            .hint("set client_secret_file: to a file holding the OAuth application's secret");
    }
    inline.map(Secret::new)
}

/// An upstream URL: absolute, https unless the host is a loopback address, no query.
/// The trailing slash is dropped, as docker_auth's keys are written without one.
fn read_url(s: &mut Section<'_>, key: &str, default: Option<&str>, diags: &mut Diagnostics) -> Option<Url> {
    let line = s.node(key).map_or(s.line, |n| n.line);
    let path = s.child_path(key);
    let text = match s.string(key, diags).filter(|v| !v.is_empty()) {
        Some(text) => text,
        None => return default.and_then(|d| Url::parse(d).ok()),
    };
    let url = match Url::parse(text.trim_end_matches('/')) {
        Ok(url) if url.host().is_some() && url.query().is_none() && url.fragment().is_none() => url,
        _ => {
            diags
                .error(&path, line, format!("{path} must be an absolute URL without query, found {text:?}"))
                .hint("write it with the protocol and host, e.g. https://github.example.com");
            return None;
        }
    };
    if !allowed_url(&url) {
        diags
            .error(&path, line, format!("{path} must be an https URL, found {text:?}"))
            .hint("use https://; plain http is only accepted for 127.0.0.1, [::1] or localhost");
        return None;
    }
    Some(url)
}

/// docker_auth: "Must end with '/<section>' prefix" — the callback is the section's route.
fn check_redirect_path(s: &mut Section<'_>, uri: &Url, name: &str, diags: &mut Diagnostics) {
    if !uri.path().ends_with(&format!("/{name}")) {
        let line = s.node("redirect_uri").map_or(s.line, |n| n.line);
        let path = s.child_path("redirect_uri");
        diags
            .error(&path, line, format!("{path} must end with /{name}, found {:?}", uri.as_str()))
            .hint(format!("the callback is this server's /{name} route, e.g. https://auth.example.com/{name}"));
    }
}

/// docker_auth's durations: a Go duration or bare nanoseconds; zero or unset means the default.
/// A negative `revalidate_after` asks the forge at every login, as docker_auth would.
fn read_duration(s: &mut Section<'_>, key: &str, default: Duration, diags: &mut Diagnostics) -> Duration {
    match s.duration_nanos(key, diags) {
        None | Some(0) => default,
        Some(n) if n < 0 && key == "http_timeout" => default,
        Some(n) => Duration::from_nanos(u64::try_from(n).unwrap_or(0)),
    }
}

fn read_grant_type(s: &mut Section<'_>, diags: &mut Diagnostics) {
    let line = s.node("grant_type").map_or(s.line, |n| n.line);
    let path = s.child_path("grant_type");
    match s.string("grant_type", diags).as_deref() {
        None | Some("") | Some("authorization_code") => {}
        Some(other) => {
            diags
                .error(&path, line, format!("{path} must be authorization_code, found {other:?}"))
                .hint("the browser sign-in is the authorization code flow: grant_type: authorization_code");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse;

    fn load(text: &str, kind: ForgeKind) -> (Option<ForgeConfig>, Diagnostics) {
        let root = parse(text).unwrap();
        let mut diags = Diagnostics::default();
        let mut top = Section::of(&root, "", &mut diags).unwrap();
        (read(&mut top, kind, &mut diags), diags)
    }

    #[test]
    fn github_defaults_follow_docker_auth() {
        let (c, d) = load("github_auth:\n  client_id: a\n  client_secret: b\n", ForgeKind::GitHub);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        let c = c.unwrap();
        assert_eq!(c.web_uri.as_str(), "https://github.com/");
        assert_eq!(c.api_uri.as_str(), "https://api.github.com/");
        assert_eq!(c.http_timeout, Duration::from_secs(10));
        assert_eq!(c.revalidate_after, Duration::from_secs(3600));
        assert_eq!(c.token_db, TokenDb::Store);
    }

    #[test]
    fn gitlab_defaults_are_not_swapped_and_redirect_uri_is_required() {
        let (c, d) = load("gitlab_auth:\n  client_id: a\n  client_secret: b\n", ForgeKind::GitLab);
        assert!(c.is_none());
        assert_eq!(d.errors[0].path, "gitlab_auth.redirect_uri");
        let (c, d) = load(
            "gitlab_auth:\n  client_id: a\n  client_secret: b\n  redirect_uri: https://a.example/gitlab_auth\n",
            ForgeKind::GitLab,
        );
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        let c = c.unwrap();
        assert_eq!(c.web_uri.as_str(), "https://gitlab.com/");
        assert_eq!(c.api_uri.as_str(), "https://gitlab.com/api/v4");
    }

    #[test]
    fn plain_http_only_for_loopback() {
        let text =
            "github_auth:\n  client_id: a\n  client_secret: b\n  github_api_uri: http://github.example.com/api/v3\n";
        let (c, d) = load(text, ForgeKind::GitHub);
        assert!(c.is_none());
        assert_eq!(d.errors[0].path, "github_auth.github_api_uri");
        assert_eq!(d.errors[0].line, 4);
        assert!(d.errors[0].message.contains("https"), "{}", d.errors[0].message);
        for ok in ["http://127.0.0.1:8080", "http://[::1]:1", "http://localhost:9", "https://ghe.example.com/"] {
            let text = format!("github_auth:\n  client_id: a\n  client_secret: b\n  github_web_uri: {ok}\n");
            let (c, d) = load(&text, ForgeKind::GitHub);
            assert!(d.errors.is_empty(), "{ok}: {:?}", d.errors);
            assert!(!c.unwrap().web_uri.as_str().ends_with("//"));
        }
    }

    #[test]
    fn missing_secret_unknown_token_db_and_gcs_are_errors_with_lines() {
        let (c, d) = load("github_auth:\n  client_id: a\n  gcs_token_db:\n    bucket: b\n", ForgeKind::GitHub);
        assert!(c.is_none());
        let paths: Vec<_> = d.errors.iter().map(|e| (e.path.as_str(), e.line)).collect();
        assert!(paths.contains(&("github_auth.client_secret", 1)), "{paths:?}");
        assert!(paths.contains(&("github_auth.gcs_token_db", 3)), "{paths:?}");
        assert!(d.errors.iter().all(|e| e.hint.is_some()));
    }

    #[test]
    fn secret_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret\n").unwrap();
        let text = format!(
            "github_auth:\n  client_id: a\n  client_secret_file: {}\n  level_token_db:\n    path: /x\n    token_hash_cost: 5\n",
            file.display()
        );
        let (c, d) = load(&text, ForgeKind::GitHub);
        assert!(d.errors.is_empty(), "{:?}", d.errors);
        let c = c.unwrap();
        assert_eq!(c.client_secret.expose(), "s3cret");
        assert_eq!(c.token_db, TokenDb::Level { path: "/x".into(), mode: None, line: 5 });
        assert_eq!(c.token_hash_cost, Some(5));
        let text = "github_auth:\n  client_id: a\n  client_secret_file: /nonexistent/x\n";
        let (_, d) = load(text, ForgeKind::GitHub);
        assert_eq!(d.errors[0].path, "github_auth.client_secret_file");
        assert_eq!(d.errors[0].line, 3);
    }

    #[test]
    fn redirect_uri_must_be_the_route_and_grant_type_authorization_code() {
        let text = "gitlab_auth:\n  client_id: a\n  client_secret: b\n  redirect_uri: https://a.example/cb\n  grant_type: password\n";
        let (_, d) = load(text, ForgeKind::GitLab);
        let paths: Vec<_> = d.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["gitlab_auth.redirect_uri", "gitlab_auth.grant_type"]);
    }
}
