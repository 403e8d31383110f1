//! `GET {prefix}/` with web sign-in configured, as docker_auth does it: with `google_auth`
//! a page of links (docker_auth links Google only; we list every configured provider),
//! otherwise a 301 to the first of `github_auth`, `oidc_auth`, `gitlab_auth`.
use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use askama::Template;

use super::{page, WebSignIn};

pub struct Link {
    pub name: String,
    pub display_name: String,
    pub href: String,
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage<'a> {
    issuer: &'a str,
    links: Vec<Link>,
}

pub fn respond(web: &WebSignIn) -> HttpResponse {
    let has_google = web.providers.iter().any(|p| p.provider.name() == "google");
    if !has_google {
        if let Some(first) = web.providers.first() {
            return HttpResponse::MovedPermanently()
                .insert_header((header::LOCATION, web.route_of(first.provider.name())))
                .finish();
        }
    }
    let links = web
        .providers
        .iter()
        .map(|p| Link {
            name: p.provider.name().to_string(),
            display_name: p.provider.display_name().to_string(),
            href: web.route_of(p.provider.name()),
        })
        .collect();
    page::html(StatusCode::OK, IndexPage { issuer: &web.issuer, links }.render())
}
