//! Repositories (issue 14 item 3): the repositories the signed-in account may pull
//! (searchable, paginated), a repository's tags, and a tag's digest, size, created and
//! platforms. A repository the account may not pull has no page: its URLs answer exactly
//! like a repository that does not exist (the same 404), and the registry is not asked.
//!
//! URLs: `/repositories?q=&page=`, `/repositories/<name>` (tags), `/repositories/<name>:<tag>`
//! (no repository name holds a `:`, no tag a `/`).
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use askama::Template;
use serde::Deserialize;

use super::page::{self, Layout};
use super::registry_view::{self, human_size, NameFilter, Pager, RegistryPageError, PAGE_SIZE};
use super::{ConsoleCtx, ConsoleError, ConsoleSession};
use crate::registry_reader::names;

/// Tags per page of a repository.
const TAGS_PER_PAGE: usize = 100;

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: String,
}

struct RepoRow {
    name: String,
    push: bool,
}

#[derive(Template)]
#[template(path = "console/repositories.html")]
struct ListPage {
    layout: Layout,
    rows: Vec<RepoRow>,
    pager: Pager,
    q: String,
    truncated: bool,
}

#[derive(Template)]
#[template(path = "console/tags.html")]
struct TagsPage {
    layout: Layout,
    repository: String,
    tags: Vec<String>,
    pager: Pager,
    q: String,
    truncated: bool,
    docker_pull: String,
}

struct ImageRow {
    platform: String,
    digest: String,
    size: String,
    created: String,
}

#[derive(Template)]
#[template(path = "console/tag.html")]
struct TagPage {
    layout: Layout,
    repository: String,
    tag: String,
    digest: String,
    media_type: String,
    size: String,
    created: String,
    images: Vec<ImageRow>,
    truncated: bool,
    pull_tag: String,
    pull_digest: String,
}

/// GET `/repositories`.
pub async fn list(
    ctx: ConsoleCtx,
    session: ConsoleSession,
    req: HttpRequest,
    query: web::Query<ListQuery>,
) -> HttpResponse {
    list_page(&ctx, &session, &req, &query).await.unwrap_or_else(|e| e.respond(&session, "repositories"))
}

async fn list_page(
    ctx: &ConsoleCtx,
    session: &ConsoleSession,
    req: &HttpRequest,
    query: &ListQuery,
) -> Result<HttpResponse, RegistryPageError> {
    let decided = registry_view::decided(ctx, session, req).await?;
    let q = NameFilter::new(&query.q);
    let pullable: Vec<usize> = (0..decided.decisions.len())
        .filter(|&i| decided.decisions[i].actions.iter().any(|a| a == "pull"))
        .filter(|&i| q.matches(&decided.catalog.repositories[i]))
        .collect();
    let path = format!("{}/repositories", ctx.site().prefix);
    let pager = Pager::listed(&path, &[("q", &q.text)], pullable.len(), &query.page, PAGE_SIZE);
    let rows = pullable[pager.range()]
        .iter()
        .map(|&i| RepoRow {
            name: decided.catalog.repositories[i].clone(),
            push: decided.decisions[i].actions.iter().any(|a| a == "push"),
        })
        .collect();
    let page = ListPage {
        layout: Layout::new(session, "repositories"),
        rows,
        pager,
        q: q.text,
        truncated: decided.catalog.truncated,
    };
    Ok(page::html(StatusCode::OK, page.render()))
}

/// GET `/repositories/<name>` and `/repositories/<name>:<tag>`.
pub async fn repository(
    ctx: ConsoleCtx,
    session: ConsoleSession,
    req: HttpRequest,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
) -> HttpResponse {
    let reference = path.into_inner();
    let result = match reference.rsplit_once(':') {
        Some((name, tag)) => tag_page(&ctx, &session, &req, name, tag).await,
        None => tags_page(&ctx, &session, &req, &reference, &query).await,
    };
    result.unwrap_or_else(|e| e.respond(&session, "repositories"))
}

/// The same 404 for a name that is no repository, one the account may not pull, and one
/// the registry does not hold.
async fn pullable(
    ctx: &ConsoleCtx,
    session: &ConsoleSession,
    req: &HttpRequest,
    name: &str,
) -> Result<(), RegistryPageError> {
    if names::is_repository(name) && registry_view::may_pull(ctx, session, req, name).await? {
        Ok(())
    } else {
        Err(ConsoleError::not_found(Some(session.site.clone())).into())
    }
}

async fn tags_page(
    ctx: &ConsoleCtx,
    session: &ConsoleSession,
    req: &HttpRequest,
    name: &str,
    query: &ListQuery,
) -> Result<HttpResponse, RegistryPageError> {
    pullable(ctx, session, req, name).await?;
    let reader = registry_view::reader(ctx)?;
    let tags = reader.tags(&ctx.service().issuer, name).await?;
    let q = NameFilter::new(&query.q);
    let matching: Vec<&String> = tags.tags.iter().filter(|t| q.matches(t)).collect();
    let path = format!("{}/repositories/{name}", ctx.site().prefix);
    let pager = Pager::listed(&path, &[("q", &q.text)], matching.len(), &query.page, TAGS_PER_PAGE);
    let page = TagsPage {
        layout: Layout::new(session, "repositories"),
        repository: name.to_string(),
        tags: matching[pager.range()].iter().map(|t| t.to_string()).collect(),
        pager,
        q: q.text,
        truncated: tags.truncated,
        docker_pull: format!("docker pull {}/{name}", reader.host()),
    };
    Ok(page::html(StatusCode::OK, page.render()))
}

async fn tag_page(
    ctx: &ConsoleCtx,
    session: &ConsoleSession,
    req: &HttpRequest,
    name: &str,
    tag: &str,
) -> Result<HttpResponse, RegistryPageError> {
    pullable(ctx, session, req, name).await?;
    if !names::is_tag(tag) {
        return Err(ConsoleError::not_found(Some(session.site.clone())).into());
    }
    let reader = registry_view::reader(ctx)?;
    let detail = reader.tag_detail(&ctx.service().issuer, name, tag).await?;
    let host = reader.host();
    let images = detail
        .images
        .iter()
        .map(|i| ImageRow {
            platform: i.platform.to_string(),
            digest: i.digest.clone(),
            size: human_size(i.size),
            created: i.created.clone().unwrap_or_else(|| "unknown".into()),
        })
        .collect();
    let page = TagPage {
        layout: Layout::new(session, "repositories"),
        repository: name.to_string(),
        tag: tag.to_string(),
        pull_tag: format!("docker pull {host}/{name}:{tag}"),
        pull_digest: format!("docker pull {host}/{name}@{}", detail.digest),
        digest: detail.digest,
        media_type: detail.media_type,
        size: human_size(detail.size),
        created: detail.created.unwrap_or_else(|| "unknown".into()),
        images,
        truncated: detail.truncated,
    };
    Ok(page::html(StatusCode::OK, page.render()))
}
