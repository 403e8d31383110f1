//! docker_auth's `github_auth`: an OAuth app at GitHub (or GitHub Enterprise). The account
//! is the user's `login`; with `organization` set only its members sign in (docker_auth's
//! rule: `GET /orgs/{org}/members/{login}` answers 204), and the label `teams` holds the slugs
//! of the user's teams in that organization plus their parent teams. Past `valid_until` the
//! user API is asked again with the stored token and the membership checked again.
//! Endpoints: <https://docs.github.com/en/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps>,
//! `GET /user`, `GET /orgs/{org}/members/{username}`, `GET /user/teams`, `GET /orgs/{org}/teams/{slug}`.
use std::collections::BTreeSet;

use async_trait::async_trait;
use serde::Deserialize;
use url::Url;

use super::forge_oauth::{self, Api, Forge, Grant, Verdict};
use super::provider::{AuthorizeRequest, Callback, ProviderError, Revalidation, SignedIn, TokenRecord, WebProvider};
use super::upstream_http::UpstreamHttp;
use crate::config::ForgeConfig;
use crate::request::Labels;
use crate::secret::Secret;

const ACCEPT: &str = "application/vnd.github+json";
/// `read:org` lets `/user/teams` and the membership check see private teams and members.
const SCOPE: &str = "read:org";
/// Pages of `/user/teams` read at most (100 teams each).
const MAX_TEAM_PAGES: usize = 10;
/// Parent links followed at most per team (GitHub nests teams without a fixed limit).
const MAX_TEAM_DEPTH: usize = 8;

pub struct GitHub {
    config: ForgeConfig,
    http: UpstreamHttp,
}

#[derive(Deserialize)]
struct User {
    login: String,
}

#[derive(Deserialize)]
struct Team {
    slug: String,
    #[serde(default)]
    organization: Option<Org>,
    #[serde(default)]
    parent: Option<ParentTeam>,
}

#[derive(Deserialize)]
struct Org {
    login: String,
}

#[derive(Deserialize)]
struct ParentTeam {
    slug: String,
}

impl GitHub {
    pub fn new(config: ForgeConfig) -> Result<GitHub, String> {
        let http = UpstreamHttp::new(config.http_timeout)?;
        Ok(GitHub { config, http })
    }

    fn api(&self, path: &str) -> String {
        forge_oauth::join(&self.config.api_uri, path)
    }

    /// The user, the organization rule and the teams, all asked with `token`.
    async fn check_token(&self, token: &Secret) -> Result<Verdict, ProviderError> {
        let login = match forge_oauth::get_json::<User>(&self.http, &self.api("/user"), token, ACCEPT).await?.0 {
            Api::Found(user) if !user.login.is_empty() => user.login,
            Api::Found(_) => return Err(ProviderError::Unavailable("GET /user: no login in the answer".into())),
            Api::Unauthorized => return Ok(Verdict::Refused("GitHub no longer accepts the token".into())),
            Api::Denied(status) => return Ok(Verdict::Refused(format!("GET /user answered {status}"))),
        };
        let mut labels = Labels::new();
        if let Some(org) = &self.config.organization {
            if let Some(why) = self.check_membership(org, &login, token).await? {
                return Ok(Verdict::Refused(why));
            }
            labels.insert("teams".into(), self.teams(org, token).await?);
        }
        Ok(Verdict::Allowed { account: login, labels })
    }

    /// docker_auth's rule: 204 is a member; 404 (not a member) and 302 (the token's user
    /// cannot see the organization's members) are not. `None` means a member.
    async fn check_membership(&self, org: &str, login: &str, token: &Secret) -> Result<Option<String>, ProviderError> {
        let url = self.api(&format!("/orgs/{}/members/{}", segment(org), segment(login)));
        let response = forge_oauth::get(&self.http, &url, token, ACCEPT).await?;
        match response.status.as_u16() {
            204 => Ok(None),
            302 | 404 => Ok(Some(format!("{login:?} is not a member of organization {org:?}"))),
            401 => Ok(Some("GitHub no longer accepts the token".into())),
            403 => Ok(Some(format!(
                "organization {org:?} does not let this app see its members (OAuth app access restrictions?)"
            ))),
            s if (400..500).contains(&s) => Ok(Some(format!("membership check for {org:?} answered {s}"))),
            s => Err(ProviderError::Unavailable(format!("membership check for {org:?} answered {s}"))),
        }
    }

    /// Slugs of the user's teams in `org` and of all their parents, sorted, without repeats.
    async fn teams(&self, org: &str, token: &Secret) -> Result<Vec<String>, ProviderError> {
        let mut slugs = BTreeSet::new();
        let mut parents = Vec::new();
        let mut next = Some(self.api("/user/teams?per_page=100"));
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            let (api, response) = forge_oauth::get_json::<Vec<Team>>(&self.http, &url, token, ACCEPT).await?;
            let teams = match api {
                Api::Found(teams) => teams,
                Api::Unauthorized | Api::Denied(_) => {
                    return Err(ProviderError::Refused("GitHub refused to list the user's teams".into()))
                }
            };
            for team in teams {
                if team.organization.as_ref().is_some_and(|o| o.login.eq_ignore_ascii_case(org)) {
                    if let Some(parent) = team.parent {
                        parents.push(parent.slug);
                    }
                    slugs.insert(team.slug);
                }
            }
            next = next_page(&response.headers, &self.config.api_uri).filter(|_| pages < MAX_TEAM_PAGES);
        }
        // Parents of parents: the listing names one level; ask for the rest, bounded.
        let mut depth = 0;
        while !parents.is_empty() && depth < MAX_TEAM_DEPTH {
            depth += 1;
            let mut grand = Vec::new();
            for slug in std::mem::take(&mut parents) {
                if !slugs.insert(slug.clone()) {
                    continue;
                }
                let url = self.api(&format!("/orgs/{}/teams/{}", segment(org), segment(&slug)));
                if let Api::Found(team) = forge_oauth::get_json::<Team>(&self.http, &url, token, ACCEPT).await?.0 {
                    grand.extend(team.parent.map(|p| p.slug));
                }
            }
            parents = grand;
        }
        Ok(slugs.into_iter().collect())
    }
}

/// A path segment, percent-encoded (logins and slugs are `[A-Za-z0-9-]`, but never trust that).
fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The `Link: <…>; rel="next"` URL, only when it stays on the configured API: the token
/// goes with it.
fn next_page(headers: &http::HeaderMap, api: &Url) -> Option<String> {
    let link = headers.get(http::header::LINK)?.to_str().ok()?;
    let next = link.split(',').find(|part| part.contains("rel=\"next\""))?;
    let url = next.split(';').next()?.trim().trim_start_matches('<').trim_end_matches('>');
    let parsed = Url::parse(url).ok()?;
    let same_origin = parsed.origin() == api.origin() && parsed.path().starts_with(api.path().trim_end_matches('/'));
    same_origin.then(|| parsed.to_string())
}

#[async_trait]
impl WebProvider for GitHub {
    fn name(&self) -> &'static str {
        "github"
    }

    fn display_name(&self) -> &str {
        "GitHub"
    }

    fn authorize_url(&self, request: &AuthorizeRequest) -> Url {
        forge_oauth::authorize_url(
            &self.config.web_uri,
            "/login/oauth/authorize",
            &self.config,
            SCOPE,
            request,
            self.config.redirect_uri.as_ref(),
        )
    }

    async fn complete(&self, callback: &Callback) -> Result<SignedIn, ProviderError> {
        let token_url = forge_oauth::join(&self.config.web_uri, "/login/oauth/access_token");
        let grant = Grant::Code {
            code: &callback.code,
            pkce_verifier: &callback.pkce_verifier,
            redirect_uri: self.config.redirect_uri.as_ref(),
        };
        let upstream = forge_oauth::redeem(&self.http, &self.config, &token_url, grant).await?;
        match self.check_token(&upstream.access_token).await? {
            Verdict::Allowed { account: login, labels } => {
                Ok(forge_oauth::signed_in(&self.config, login, labels, upstream))
            }
            Verdict::Refused(why) => Err(ProviderError::Refused(why)),
        }
    }

    async fn revalidate(&self, account: &str, record: &TokenRecord) -> Result<Revalidation, ProviderError> {
        forge_oauth::revalidate(self, account, record).await
    }
}

#[async_trait]
impl Forge for GitHub {
    fn forge_name(&self) -> &'static str {
        "github"
    }
    fn http(&self) -> &UpstreamHttp {
        &self.http
    }
    fn config(&self) -> &ForgeConfig {
        &self.config
    }
    fn token_url(&self) -> String {
        forge_oauth::join(&self.config.web_uri, "/login/oauth/access_token")
    }
    async fn verify(&self, token: &Secret) -> Result<Verdict, ProviderError> {
        self.check_token(token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_page_stays_on_the_api() {
        let api = Url::parse("https://ghe.example.com/api/v3").unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::LINK,
            "<https://ghe.example.com/api/v3/user/teams?page=2>; rel=\"next\", <https://ghe.example.com/api/v3/user/teams?page=5>; rel=\"last\"".parse().unwrap(),
        );
        assert_eq!(next_page(&headers, &api).as_deref(), Some("https://ghe.example.com/api/v3/user/teams?page=2"));
        headers.insert(http::header::LINK, "<https://evil.example/user/teams?page=2>; rel=\"next\"".parse().unwrap());
        assert_eq!(next_page(&headers, &api), None);
        headers.insert(http::header::LINK, "<https://ghe.example.com/other?page=2>; rel=\"next\"".parse().unwrap());
        assert_eq!(next_page(&headers, &api), None);
    }
}
