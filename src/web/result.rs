//! The page after a successful sign-in: the account, the generated password (shown this
//! once, never logged), the exact `docker login` command, and the offer of an identity
//! token instead.
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use askama::Template;

use super::page;

#[derive(Template)]
#[template(path = "result.html")]
pub struct ResultPage<'a> {
    pub issuer: &'a str,
    pub display_name: &'a str,
    pub account: &'a str,
    pub password: &'a str,
    pub docker_login: String,
    /// The one-time value of the identity-token form; `None` without a persistent store.
    pub offer: Option<String>,
    /// Where the form posts (the provider's route).
    pub action: String,
}

/// docker_auth's command: `docker login -u <account> -p <password> <registry_url>`.
pub fn docker_login(account: &str, password: &str, registry_url: &str) -> String {
    let registry = if registry_url.is_empty() { "<your registry>" } else { registry_url };
    format!("docker login -u {} -p {password} {registry}", shell_quote(account))
}

/// Single-quoted for a POSIX shell when it holds anything beyond the safe characters.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"@._-+:/=".contains(&b)) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

pub fn respond(page: ResultPage<'_>) -> HttpResponse {
    page::html(StatusCode::OK, page.render())
}
