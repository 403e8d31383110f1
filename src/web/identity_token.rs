//! The page that shows an identity token once, after the user traded the generated
//! password for it, with the `~/.docker/config.json` entry that uses it.
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use askama::Template;
use base64::Engine as _;

use super::page;

#[derive(Template)]
#[template(path = "identity_token.html")]
struct IdentityTokenPage<'a> {
    issuer: &'a str,
    account: &'a str,
    token: &'a str,
    config_json: String,
}

pub fn respond(issuer: &str, account: &str, token: &str, registry_url: &str) -> HttpResponse {
    let registry = if registry_url.is_empty() { "<your registry>" } else { registry_url };
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{account}:"));
    let entry = serde_json::json!({"auths": {registry: {"auth": auth, "identitytoken": token}}});
    let config_json = serde_json::to_string_pretty(&entry).unwrap_or_default();
    page::html(StatusCode::OK, IdentityTokenPage { issuer, account, token, config_json }.render())
}
