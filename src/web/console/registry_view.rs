//! What My access and Repositories share: the registry's repositories with the signed-in
//! account's decision for each (read through the reader, decided by the token endpoint's
//! authz chain), text filters, pages of a long list, and the error page for a registry the
//! console cannot read (down, TLS, our token refused) — details to the log, a plain reason
//! to the page.
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use super::page::{self, Layout};
use super::{ConsoleCtx, ConsoleError, ConsoleSession};
use crate::authz::ScopeDecision;
use crate::registry_reader::{Catalog, ReadError, RegistryReader};
use crate::service::access::Asker;

/// Rows per page of a long list.
pub const PAGE_SIZE: usize = 50;
/// Longest filter text taken from a query (longer is cut; repository names are at most 255).
pub const MAX_FILTER: usize = 255;

/// The repositories of the registry with this account's decision on each.
pub struct Decided {
    pub catalog: Arc<Catalog>,
    pub decisions: Vec<ScopeDecision>,
    /// The registry's `service` as the ACL sees it.
    pub service: String,
}

/// Why a registry page cannot be shown.
pub enum RegistryPageError {
    Console(ConsoleError),
    Registry(ReadError),
}

impl From<ConsoleError> for RegistryPageError {
    fn from(e: ConsoleError) -> Self {
        RegistryPageError::Console(e)
    }
}

impl From<ReadError> for RegistryPageError {
    fn from(e: ReadError) -> Self {
        RegistryPageError::Registry(e)
    }
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct RegistryErrorPage<'a> {
    layout: Layout,
    heading: &'a str,
    reason: &'a str,
}

impl RegistryPageError {
    /// The answer: the console's own error page, or 502 naming what is wrong with the registry.
    pub fn respond(self, session: &ConsoleSession, current: &'static str) -> HttpResponse {
        let error = match self {
            RegistryPageError::Console(e) => return actix_web::ResponseError::error_response(&e),
            RegistryPageError::Registry(ReadError::NotFound) => {
                return actix_web::ResponseError::error_response(&ConsoleError::not_found(Some(session.site.clone())))
            }
            RegistryPageError::Registry(e) => e,
        };
        tracing::error!(error = %error, "console: cannot read the registry");
        let reason = match error.kind() {
            ReadError::Unreachable(_) | ReadError::Timeout(_) => {
                "The registry cannot be reached right now. Try again in a moment; if it persists, tell the registry's operators."
            }
            ReadError::Storage(_) => {
                "The registry's storage, where it sends image data, failed to answer the console. Tell the registry's operators."
            }
            ReadError::Tls(_) => "The console cannot set up TLS with the registry (its certificate is not trusted). Tell the registry's operators.",
            ReadError::Unauthorized(_) => {
                "The registry refused the console's token: it does not trust this server's signing certificate or issuer. Tell the registry's operators."
            }
            _ => "The registry gave an answer the console cannot read. Tell the registry's operators.",
        };
        let page = RegistryErrorPage { layout: Layout::new(session, current), heading: "Registry unavailable", reason };
        page::html(StatusCode::BAD_GATEWAY, page.render())
    }
}

/// The reader, or a page saying the console has no `registry_url`.
pub fn reader(ctx: &ConsoleCtx) -> Result<&Arc<RegistryReader>, ConsoleError> {
    ctx.console().reader.as_ref().ok_or_else(|| {
        ConsoleError::new(
            super::errors::Kind::BadRequest("This console has no registry configured (console.registry_url)."),
            Some(ctx.site().clone()),
        )
    })
}

/// The client's address as the token endpoint would take it (ACL entries may match on it).
pub fn client_ip(ctx: &ConsoleCtx, req: &HttpRequest) -> Option<std::net::IpAddr> {
    crate::http::extract::client_ip(&ctx.app.real_ip, req.headers(), req.peer_addr()).ok().flatten()
}

/// Every repository of the catalog, decided for the signed-in account.
pub async fn decided(
    ctx: &ConsoleCtx,
    session: &ConsoleSession,
    req: &HttpRequest,
) -> Result<Decided, RegistryPageError> {
    let (catalog, registry_service) = catalog(ctx).await?;
    let decisions = decide(ctx, session, req, &registry_service, &catalog.repositories).await?;
    Ok(Decided { catalog, decisions, service: registry_service })
}

/// Whether `name` is in the catalog and the account may pull it (the only repositories
/// whose pages exist for it).
pub async fn may_pull(
    ctx: &ConsoleCtx,
    session: &ConsoleSession,
    req: &HttpRequest,
    name: &str,
) -> Result<bool, RegistryPageError> {
    let (catalog, registry_service) = catalog(ctx).await?;
    // Past the catalog's cap a repository may exist unlisted: the ACL and the registry decide.
    if !catalog.truncated && !catalog.repositories.iter().any(|r| r == name) {
        return Ok(false);
    }
    let decision = decide(ctx, session, req, &registry_service, std::slice::from_ref(&name.to_string())).await?;
    Ok(decision.first().is_some_and(|d| d.actions.iter().any(|a| a == "pull")))
}

/// The registry's catalog and its `service` as the ACL sees it.
async fn catalog(ctx: &ConsoleCtx) -> Result<(Arc<Catalog>, String), RegistryPageError> {
    let reader = reader(ctx)?;
    let catalog = reader.catalog(&ctx.service().issuer).await?;
    Ok((catalog, reader.service().unwrap_or_default()))
}

/// Who asks, as the token endpoint would see the signed-in account asking for `service`.
pub fn asker<'a>(ctx: &ConsoleCtx, session: &'a ConsoleSession, req: &HttpRequest, service: &'a str) -> Asker<'a> {
    Asker { account: &session.account, labels: &session.labels, service, ip: client_ip(ctx, req) }
}

/// The account's decision on each of `repositories`, by the token endpoint's authz chain.
async fn decide(
    ctx: &ConsoleCtx,
    session: &ConsoleSession,
    req: &HttpRequest,
    service: &str,
    repositories: &[String],
) -> Result<Vec<ScopeDecision>, ConsoleError> {
    let asker = asker(ctx, session, req, service);
    ctx.service().repository_access(&asker, repositories).await.map_err(|e| {
        tracing::error!(error = %e, "console: the authorization chain failed");
        ConsoleError::new(super::errors::Kind::Store, Some(session.site.clone()))
    })
}

/// A list's name filter as typed: trimmed, at most [`MAX_FILTER`] bytes, matched
/// case-insensitively as a substring (empty matches everything).
pub struct NameFilter {
    /// The text as shown back in the search box.
    pub text: String,
    lower: String,
}

impl NameFilter {
    pub fn new(raw: &str) -> NameFilter {
        let text = filter_text(raw);
        NameFilter { lower: text.to_ascii_lowercase(), text }
    }

    pub fn matches(&self, name: &str) -> bool {
        self.lower.is_empty() || name.to_ascii_lowercase().contains(&self.lower)
    }
}

fn filter_text(raw: &str) -> String {
    let trimmed = raw.trim();
    let mut end = trimmed.len().min(MAX_FILTER);
    while !trimmed.is_char_boundary(end) {
        end -= 1;
    }
    trimmed[..end].to_string()
}

/// One page of a filtered list, with links to its neighbours.
pub struct Pager {
    pub page: usize,
    pub pages: usize,
    pub total: usize,
    pub first_shown: usize,
    pub last_shown: usize,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// Page `raw_page` (1-based, clamped) of `total` items; `link(page)` builds a page's URL.
    pub fn new(total: usize, raw_page: &str, per_page: usize, link: impl Fn(usize) -> String) -> Pager {
        let pages = total.div_ceil(per_page).max(1);
        let page = raw_page.trim().parse::<usize>().unwrap_or(1).clamp(1, pages);
        let first = (page - 1) * per_page;
        Pager {
            page,
            pages,
            total,
            first_shown: if total == 0 { 0 } else { first + 1 },
            last_shown: (first + per_page).min(total),
            prev: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
        }
    }

    /// Page `raw_page` of `total` items listed at `path`, whose page links keep `filters`
    /// (key, value; empty values left out) in their query.
    pub fn listed(path: &str, filters: &[(&str, &str)], total: usize, raw_page: &str, per_page: usize) -> Pager {
        Pager::new(total, raw_page, per_page, |p| {
            let page = p.to_string();
            let pairs: Vec<(&str, &str)> = filters.iter().copied().chain([("page", page.as_str())]).collect();
            format!("{path}?{}", query(&pairs))
        })
    }

    /// The range of item indexes on this page.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.first_shown.saturating_sub(1)..self.last_shown
    }
}

/// `key=value&...`, each value percent-encoded for a query.
fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (key, value) in pairs {
        if !value.is_empty() {
            out.append_pair(key, value);
        }
    }
    out.finish()
}

/// `1.5 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_filters() {
        let pager = Pager::new(120, "3", 50, |p| format!("?page={p}"));
        assert_eq!((pager.page, pager.pages, pager.first_shown, pager.last_shown), (3, 3, 101, 120));
        assert_eq!(pager.range(), 100..120);
        assert_eq!(pager.prev.as_deref(), Some("?page=2"));
        assert!(pager.next.is_none());
        let pager = Pager::new(0, "x", 50, |p| p.to_string());
        assert_eq!((pager.page, pager.pages, pager.first_shown, pager.last_shown), (1, 1, 0, 0));
        assert_eq!(Pager::new(10, "999", 50, |p| p.to_string()).page, 1);
        assert_eq!(NameFilter::new(&format!("  {}  ", "é".repeat(200))).text.len(), 254);
        let filter = NameFilter::new(" Team/A ");
        assert!(filter.matches("team/app") && filter.matches("TEAM/APP") && !filter.matches("other/team"));
        assert!(NameFilter::new("").matches("anything"));
        assert_eq!(query(&[("q", "a b&c"), ("page", ""), ("action", "pull")]), "q=a+b%26c&action=pull");
        let pager = Pager::listed("/c/access", &[("q", "a b"), ("action", "")], 120, "2", 50);
        assert_eq!(pager.prev.as_deref(), Some("/c/access?q=a+b&page=1"));
        assert_eq!(pager.next.as_deref(), Some("/c/access?q=a+b&page=3"));
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
    }
}
