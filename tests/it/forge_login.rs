//! GitHub and GitLab sign-in against the fake forge (`support::forge`): the one upstream not
//! run for real. These drive the providers through their public contract (`WebProvider`):
//! the authorize URL is followed like a browser would (the forge redirects straight back
//! with a code), the code is exchanged, the user API, organization, teams and groups are
//! read, and revalidation sees members, leavers, revoked tokens and a stalled forge.
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use registry_auth::authn::oidc::github::GitHub;
use registry_auth::authn::oidc::gitlab::GitLab;
use registry_auth::authn::oidc::provider::{
    AuthorizeRequest, Callback, ProviderError, Revalidation, SignedIn, TokenRecord, WebProvider,
};
use registry_auth::config::forge::TokenDbConfig;
use registry_auth::config::{ForgeConfig, ForgeKind};
use registry_auth::secret::Secret;
use sha2::{Digest, Sha256};
use url::Url;

use crate::support::forge::{Answers, Forge, CLIENT_ID, CLIENT_SECRET};

const TIMEOUT: Duration = Duration::from_millis(700);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn config(forge: &Forge, kind: ForgeKind, organization: Option<&str>) -> ForgeConfig {
    let (api, redirect) = match kind {
        ForgeKind::GitHub => (forge.github_api(), None),
        ForgeKind::GitLab => (forge.gitlab_api(), Some(Url::parse("http://127.0.0.1:1/gitlab_auth").unwrap())),
    };
    ForgeConfig {
        kind,
        line: 1,
        organization: organization.map(Into::into),
        client_id: CLIENT_ID.into(),
        client_secret: Secret::new(CLIENT_SECRET),
        web_uri: Url::parse(&forge.base()).unwrap(),
        api_uri: Url::parse(&api).unwrap(),
        redirect_uri: redirect,
        http_timeout: TIMEOUT,
        revalidate_after: Duration::from_secs(3600),
        registry_url: None,
        token_db: TokenDbConfig::Store,
        token_hash_cost: None,
    }
}

/// One sign-in attempt as the flow prepares it: state, PKCE pair, callback URL.
struct Attempt {
    request: AuthorizeRequest,
    verifier: String,
}

fn attempt(callback: &str) -> Attempt {
    let verifier = format!("verifier-{}-0123456789abcdefghijklmnopqrstuvwxyz", rand::random::<u64>());
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let request = AuthorizeRequest {
        state: format!("state-{}", rand::random::<u64>()),
        nonce: "unused".into(),
        pkce_challenge: challenge,
        redirect_uri: Url::parse(callback).unwrap(),
    };
    Attempt { request, verifier }
}

/// Follows the authorize URL like a browser and returns the code the forge sends back,
/// after checking that it echoes our state.
fn browse(provider: &dyn WebProvider, attempt: &Attempt) -> String {
    let url = provider.authorize_url(&attempt.request);
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let response = agent.get(url.as_str()).call().unwrap_or_else(|e| panic!("authorize {url}: {e}"));
    assert_eq!(response.status(), 302, "authorize answered {}", response.status());
    let location = Url::parse(response.header("location").expect("a Location")).unwrap();
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query.get("state"), Some(&attempt.request.state), "the forge echoes our state");
    query["code"].clone()
}

fn callback(attempt: &Attempt, code: &str) -> Callback {
    Callback {
        code: Secret::new(code),
        pkce_verifier: Secret::new(attempt.verifier.clone()),
        nonce: attempt.request.nonce.clone(),
        redirect_uri: attempt.request.redirect_uri.clone(),
    }
}

fn sign_in(
    rt: &tokio::runtime::Runtime,
    provider: &dyn WebProvider,
    forge: &Forge,
    user: &str,
) -> Result<SignedIn, ProviderError> {
    forge.sign_in_as(user);
    let a = attempt("http://127.0.0.1:1/gitlab_auth");
    let code = browse(provider, &a);
    rt.block_on(provider.complete(&callback(&a, &code)))
}

fn record(signed: &SignedIn) -> TokenRecord {
    TokenRecord {
        token_type: signed.upstream.token_type.clone(),
        access_token: signed.upstream.access_token.expose().to_string(),
        refresh_token: signed.upstream.refresh_token.as_ref().map(|t| t.expose().to_string()).unwrap_or_default(),
        ..TokenRecord::default()
    }
}

fn github_forge() -> Forge {
    let forge = Forge::start();
    forge.register_callback("http://127.0.0.1:1/github_auth");
    for (slug, parent) in [("root", None), ("eng", Some("root")), ("platform", Some("eng")), ("ops", None)] {
        forge.add_team("acme", slug, parent);
    }
    forge.add_team("other-org", "intruders", None);
    forge.add_org_member("alice", "acme");
    forge.add_org_member("alice", "other-org");
    forge.add_team_member("alice", "acme", "platform");
    forge.add_team_member("alice", "acme", "ops");
    forge.add_team_member("alice", "other-org", "intruders");
    forge.add_org_member("carol", "acme");
    forge
}

#[test]
fn github_member_signs_in_with_teams_and_all_parent_teams() {
    let rt = runtime();
    let forge = github_forge();
    forge.set_team_page_size(1); // three pages of /user/teams through Link headers
    let github = GitHub::new(config(&forge, ForgeKind::GitHub, Some("acme"))).unwrap();
    let url = github.authorize_url(&attempt("http://127.0.0.1:1/github_auth").request);
    assert!(url.as_str().starts_with(&format!("{}/login/oauth/authorize?", forge.base())), "{url}");
    assert!(url.query().unwrap().contains("code_challenge_method=S256"), "{url}");
    let signed = sign_in(&rt, &github, &forge, "alice").expect("alice is in acme");
    assert_eq!(signed.account, "alice");
    assert_eq!(signed.labels["teams"], ["eng", "ops", "platform", "root"], "teams of acme only, with parents");
    assert!(signed.valid_until > SystemTime::now() + Duration::from_secs(3500));
    assert!(forge.hits("/api/v3/user/teams") >= 3, "all pages read");
    // A member in no team signs in with an empty teams label.
    let carol = sign_in(&rt, &github, &forge, "carol").unwrap();
    assert_eq!(carol.labels["teams"], Vec::<String>::new());
}

#[test]
fn github_without_organization_takes_any_user_and_no_teams() {
    let rt = runtime();
    let forge = github_forge();
    let github = GitHub::new(config(&forge, ForgeKind::GitHub, None)).unwrap();
    let signed = sign_in(&rt, &github, &forge, "mallory").unwrap();
    assert_eq!(signed.account, "mallory");
    assert!(!signed.labels.contains_key("teams"));
    assert_eq!(forge.hits("/api/v3/user/teams"), 0);
}

#[test]
fn github_non_member_is_refused_at_sign_in() {
    let rt = runtime();
    let forge = github_forge();
    let github = GitHub::new(config(&forge, ForgeKind::GitHub, Some("acme"))).unwrap();
    match sign_in(&rt, &github, &forge, "mallory") {
        Err(ProviderError::Refused(why)) => assert!(why.contains("not a member"), "{why}"),
        other => panic!("a non-member must be refused, got {other:?}"),
    }
}

#[test]
fn replayed_code_wrong_verifier_and_unknown_code_are_refused() {
    let rt = runtime();
    let forge = github_forge();
    for kind in [ForgeKind::GitHub, ForgeKind::GitLab] {
        let provider: Box<dyn WebProvider> = match kind {
            ForgeKind::GitHub => Box::new(GitHub::new(config(&forge, kind, Some("acme"))).unwrap()),
            ForgeKind::GitLab => Box::new(GitLab::new(config(&forge, kind, None)).unwrap()),
        };
        forge.sign_in_as("alice");
        let a = attempt("http://127.0.0.1:1/gitlab_auth");
        let code = browse(provider.as_ref(), &a);
        rt.block_on(provider.complete(&callback(&a, &code))).expect("the first use of a code works");
        let replay = rt.block_on(provider.complete(&callback(&a, &code)));
        assert!(matches!(replay, Err(ProviderError::Refused(_))), "{kind:?} replay: {replay:?}");

        let a = attempt("http://127.0.0.1:1/gitlab_auth");
        let code = browse(provider.as_ref(), &a);
        let mut wrong = callback(&a, &code);
        wrong.pkce_verifier = Secret::new("another-verifier-of-sufficient-length-0123456789");
        let result = rt.block_on(provider.complete(&wrong));
        assert!(matches!(result, Err(ProviderError::Refused(_))), "{kind:?} wrong verifier: {result:?}");

        let result = rt.block_on(provider.complete(&callback(&a, "garbage\r\n<code>")));
        assert!(matches!(result, Err(ProviderError::Refused(_))), "{kind:?} unknown code: {result:?}");
    }
}

#[test]
fn github_revalidation_member_leaver_and_revoked_token() {
    let rt = runtime();
    let forge = github_forge();
    let github = GitHub::new(config(&forge, ForgeKind::GitHub, Some("acme"))).unwrap();
    let signed = sign_in(&rt, &github, &forge, "alice").unwrap();
    match rt.block_on(github.revalidate("alice", &record(&signed))).unwrap() {
        Revalidation::Valid { labels, valid_until, .. } => {
            assert_eq!(labels["teams"], ["eng", "ops", "platform", "root"]);
            assert!(valid_until > SystemTime::now());
        }
        Revalidation::Refused => panic!("alice is still a member"),
    }
    // The record must belong to the account asking.
    assert!(matches!(rt.block_on(github.revalidate("carol", &record(&signed))).unwrap(), Revalidation::Refused));

    forge.leave_org("alice", "acme");
    assert!(matches!(rt.block_on(github.revalidate("alice", &record(&signed))).unwrap(), Revalidation::Refused));

    let carol = sign_in(&rt, &github, &forge, "carol").unwrap();
    forge.revoke_tokens("carol");
    assert!(matches!(rt.block_on(github.revalidate("carol", &record(&carol))).unwrap(), Revalidation::Refused));
}

fn gitlab_forge() -> Forge {
    let forge = Forge::start();
    forge.set_groups("dora", &["acme", "acme/platform", "acme/platform/registry"]);
    forge.set_groups("erin", &[]);
    forge
}

#[test]
fn gitlab_sign_in_with_groups_and_revalidation_through_the_refresh_token() {
    let rt = runtime();
    let forge = gitlab_forge();
    let gitlab = GitLab::new(config(&forge, ForgeKind::GitLab, None)).unwrap();
    let url = gitlab.authorize_url(&attempt("http://ignored.example/gitlab_auth").request);
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["redirect_uri"], "http://127.0.0.1:1/gitlab_auth", "the configured redirect_uri wins");
    assert_eq!(query["scope"], "read_user openid");

    let signed = sign_in(&rt, &gitlab, &forge, "dora").unwrap();
    assert_eq!(signed.account, "dora");
    assert_eq!(signed.labels["groups"], ["acme", "acme/platform", "acme/platform/registry"]);
    assert!(signed.upstream.refresh_token.is_some());

    // Two hours later GitLab's access token has expired: the refresh token renews it.
    forge.expire_access_tokens();
    let renewed = match rt.block_on(gitlab.revalidate("dora", &record(&signed))).unwrap() {
        Revalidation::Valid { labels, upstream, .. } => {
            assert_eq!(labels["groups"].len(), 3);
            assert_ne!(upstream.access_token, signed.upstream.access_token, "new tokens go into the record");
            upstream
        }
        Revalidation::Refused => panic!("the refresh token is still good"),
    };
    // The spent refresh token does not work twice; the renewed one does.
    forge.expire_access_tokens();
    assert!(matches!(rt.block_on(gitlab.revalidate("dora", &record(&signed))).unwrap(), Revalidation::Refused));
    let renewed_record = TokenRecord {
        access_token: renewed.access_token.expose().into(),
        refresh_token: renewed.refresh_token.unwrap().expose().into(),
        ..TokenRecord::default()
    };
    assert!(matches!(rt.block_on(gitlab.revalidate("dora", &renewed_record)).unwrap(), Revalidation::Valid { .. }));

    // Revoked access and refresh tokens: refused.
    forge.revoke_tokens("dora");
    assert!(matches!(rt.block_on(gitlab.revalidate("dora", &renewed_record)).unwrap(), Revalidation::Refused));
}

#[test]
fn gitlab_blocked_user_is_refused_and_no_groups_is_an_empty_label() {
    let rt = runtime();
    let forge = gitlab_forge();
    let gitlab = GitLab::new(config(&forge, ForgeKind::GitLab, None)).unwrap();
    let erin = sign_in(&rt, &gitlab, &forge, "erin").unwrap();
    assert_eq!(erin.labels["groups"], Vec::<String>::new());
    forge.block("erin");
    assert!(matches!(rt.block_on(gitlab.revalidate("erin", &record(&erin))).unwrap(), Revalidation::Refused));
    assert!(matches!(sign_in(&rt, &gitlab, &forge, "erin"), Err(ProviderError::Refused(_))));
}

#[test]
fn stalled_garbage_and_huge_upstream_answers_are_unavailable_within_the_timeout() {
    let rt = runtime();
    let forge = github_forge();
    let github = GitHub::new(config(&forge, ForgeKind::GitHub, Some("acme"))).unwrap();
    let gitlab = GitLab::new(config(&forge, ForgeKind::GitLab, None)).unwrap();
    forge.set_groups("alice", &["g"]);
    let signed_github = sign_in(&rt, &github, &forge, "alice").unwrap();
    let signed_gitlab = sign_in(&rt, &gitlab, &forge, "alice").unwrap();
    for answers in [Answers::Stall, Answers::Garbage, Answers::Huge] {
        forge.set_answers(answers);
        for provider in [&github as &dyn WebProvider, &gitlab] {
            let signed = if provider.name() == "github" { &signed_github } else { &signed_gitlab };
            let started = Instant::now();
            let result = rt.block_on(provider.revalidate("alice", &record(signed)));
            assert!(
                matches!(result, Err(ProviderError::Unavailable(_))),
                "{answers:?} {}: {result:?}",
                provider.name()
            );
            assert!(started.elapsed() < TIMEOUT * 3, "{answers:?}: took {:?}", started.elapsed());
            let a = attempt("http://127.0.0.1:1/gitlab_auth");
            let result = rt.block_on(provider.complete(&callback(&a, "some-code")));
            assert!(
                matches!(result, Err(ProviderError::Unavailable(_))),
                "{answers:?} {} complete: {result:?}",
                provider.name()
            );
        }
    }
    // Several stalled calls at once all end by the timeout, side by side, not one after another.
    forge.set_answers(Answers::Stall);
    let started = Instant::now();
    let stored = record(&signed_github);
    let calls = (0..8).map(|_| github.revalidate("alice", &stored));
    let results = rt.block_on(futures_util::future::join_all(calls));
    assert!(results.iter().all(|r| matches!(r, Err(ProviderError::Unavailable(_)))));
    assert!(started.elapsed() < TIMEOUT * 3, "8 stalled calls took {:?}", started.elapsed());
    forge.set_answers(Answers::Normal);
    assert!(matches!(
        rt.block_on(github.revalidate("alice", &record(&signed_github))).unwrap(),
        Revalidation::Valid { .. }
    ));
}

#[test]
fn error_messages_never_carry_upstream_tokens() {
    let rt = runtime();
    let forge = github_forge();
    let github = GitHub::new(config(&forge, ForgeKind::GitHub, Some("acme"))).unwrap();
    let signed = sign_in(&rt, &github, &forge, "alice").unwrap();
    let token = signed.upstream.access_token.expose().to_string();
    assert!(!format!("{signed:?}").contains(&token), "Debug of SignedIn shows the token");
    forge.set_answers(Answers::Garbage);
    let err = rt.block_on(github.revalidate("alice", &record(&signed))).unwrap_err();
    assert!(!err.to_string().contains(&token), "{err}");
}
