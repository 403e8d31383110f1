//! docker_auth's `gitlab_auth`: an OAuth application at GitLab (gitlab.com or self-managed).
//! The account is the user's `username` (`GET /api/v4/user`); the label `groups` (docker_auth
//! has none, issue #330) holds the full paths of the user's groups, direct or inherited, from
//! the `groups` claim of `GET /oauth/userinfo` — the `openid` scope suffices for it, so the
//! app needs no API scope beyond `read_user`. GitLab access tokens expire after two hours:
//! revalidation uses the refresh token when the user API refuses the stored access token.
//! Endpoints: <https://docs.gitlab.com/api/oauth2/>, <https://docs.gitlab.com/integration/openid_connect_provider/>,
//! <https://docs.gitlab.com/api/users/#for-normal-users-1>.
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

const ACCEPT: &str = "application/json";
const SCOPE: &str = "read_user openid";
/// Groups kept at most in the label (a label is copied into every token request's ACL match).
const MAX_GROUPS: usize = 1000;

pub struct GitLab {
    config: ForgeConfig,
    http: UpstreamHttp,
}

#[derive(Deserialize)]
struct User {
    username: String,
    /// `active`, `blocked`, `deactivated`...; absent in old versions.
    #[serde(default)]
    state: Option<String>,
}

#[derive(Deserialize)]
struct UserInfo {
    #[serde(default)]
    groups: Vec<String>,
}

impl GitLab {
    pub fn new(config: ForgeConfig) -> Result<GitLab, String> {
        let http = UpstreamHttp::new(config.http_timeout)?;
        Ok(GitLab { config, http })
    }

    fn token_url(&self) -> String {
        forge_oauth::join(&self.config.web_uri, "/oauth/token")
    }

    async fn check_token(&self, token: &Secret) -> Result<Verdict, ProviderError> {
        let url = forge_oauth::join(&self.config.api_uri, "/user");
        let user = match forge_oauth::get_json::<User>(&self.http, &url, token, ACCEPT).await?.0 {
            Api::Found(user) if !user.username.is_empty() => user,
            Api::Found(_) => return Err(ProviderError::Unavailable("GET /user: no username in the answer".into())),
            Api::Unauthorized => return Ok(Verdict::Refused("GitLab no longer accepts the token".into())),
            Api::Denied(status) => return Ok(Verdict::Refused(format!("GET /user answered {status}"))),
        };
        if let Some(state) = user.state.as_deref().filter(|s| *s != "active") {
            return Ok(Verdict::Refused(format!("the GitLab account is {state:?}")));
        }
        let url = forge_oauth::join(&self.config.web_uri, "/oauth/userinfo");
        let groups = match forge_oauth::get_json::<UserInfo>(&self.http, &url, token, ACCEPT).await?.0 {
            Api::Found(info) => info.groups,
            Api::Unauthorized => return Ok(Verdict::Refused("GitLab no longer accepts the token".into())),
            Api::Denied(status) => return Ok(Verdict::Refused(format!("GET /oauth/userinfo answered {status}"))),
        };
        let groups: BTreeSet<String> = groups.into_iter().filter(|g| !g.is_empty()).take(MAX_GROUPS).collect();
        let mut labels = Labels::new();
        labels.insert("groups".into(), groups.into_iter().collect());
        Ok(Verdict::Allowed { account: user.username, labels })
    }
}

#[async_trait]
impl WebProvider for GitLab {
    fn name(&self) -> &'static str {
        "gitlab"
    }

    fn display_name(&self) -> &str {
        "GitLab"
    }

    fn authorize_url(&self, request: &AuthorizeRequest) -> Url {
        let redirect = self.config.redirect_uri.as_ref().unwrap_or(&request.redirect_uri);
        forge_oauth::authorize_url(
            &self.config.web_uri,
            "/oauth/authorize",
            &self.config,
            SCOPE,
            request,
            Some(redirect),
        )
    }

    async fn complete(&self, callback: &Callback) -> Result<SignedIn, ProviderError> {
        let redirect = self.config.redirect_uri.as_ref().unwrap_or(&callback.redirect_uri);
        let grant =
            Grant::Code { code: &callback.code, pkce_verifier: &callback.pkce_verifier, redirect_uri: Some(redirect) };
        let upstream = forge_oauth::redeem(&self.http, &self.config, &self.token_url(), grant).await?;
        match self.check_token(&upstream.access_token).await? {
            Verdict::Allowed { account: username, labels } => {
                Ok(forge_oauth::signed_in(&self.config, username, labels, upstream))
            }
            Verdict::Refused(why) => Err(ProviderError::Refused(why)),
        }
    }

    async fn revalidate(&self, account: &str, record: &TokenRecord) -> Result<Revalidation, ProviderError> {
        forge_oauth::revalidate(self, account, record).await
    }
}

#[async_trait]
impl Forge for GitLab {
    fn forge_name(&self) -> &'static str {
        "gitlab"
    }
    fn http(&self) -> &UpstreamHttp {
        &self.http
    }
    fn config(&self) -> &ForgeConfig {
        &self.config
    }
    fn token_url(&self) -> String {
        GitLab::token_url(self)
    }
    async fn verify(&self, token: &Secret) -> Result<Verdict, ProviderError> {
        self.check_token(token).await
    }
}
