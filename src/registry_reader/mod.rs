//! A small client of the registry's HTTP API (distribution spec) for the console: the
//! catalog, a repository's tags, and for a tag its digest, size, created time and platforms.
//! It authenticates with tokens registry-auth mints for itself (`token`), and every read is
//! bounded: body caps, a whole-answer timeout, calls in flight, repositories and tags read,
//! and a catalog cached for a few seconds so pages do not walk the registry per request.
//! Nothing here renders HTML or decides what an account may see: the pages do that through
//! the service the token endpoint uses.
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};
use url::Url;

mod http;
pub mod manifest;
pub mod names;
mod redirect;
pub mod token;

use self::http::{Answer, RegistryHttp};
use manifest::{ImageConfig, Manifest, Platform};
use token::{TokenCache, TokenScope};

use crate::token::TokenIssuer;

/// Limits of one reader; [`ReaderLimits::default`] suits a registry of tens of thousands
/// of repositories.
#[derive(Debug, Clone)]
pub struct ReaderLimits {
    /// Whole answer (connect, headers, body) of one request.
    pub timeout: Duration,
    /// Requests to the registry in flight at once, across all pages.
    pub max_in_flight: usize,
    /// Repositories read from the catalog; the rest are not shown (the catalog says it was cut).
    pub max_repositories: usize,
    /// Tags read for one repository.
    pub max_tags: usize,
    /// How long a catalog read is reused.
    pub catalog_ttl: Duration,
    /// Entries asked for per catalog or tags page (`n`; distribution serves at most 1000).
    pub page_size: usize,
}

impl Default for ReaderLimits {
    fn default() -> ReaderLimits {
        ReaderLimits {
            timeout: Duration::from_secs(10),
            max_in_flight: 8,
            max_repositories: 20_000,
            max_tags: 5_000,
            catalog_ttl: Duration::from_secs(10),
            page_size: 1000,
        }
    }
}

/// A page of 1000 names of at most 255 bytes, JSON-quoted, fits easily.
const MAX_LIST_BODY: usize = 1024 * 1024;
/// distribution refuses manifests above 4 MiB.
const MAX_MANIFEST_BODY: usize = 4 * 1024 * 1024;
const MAX_CONFIG_BODY: usize = 4 * 1024 * 1024;
/// Platforms of one index whose manifests and configs are read.
const MAX_PLATFORMS: usize = 32;

/// Why the registry could not be read. The text is for operators and the console's error
/// page; it holds no token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReadError {
    #[error("the registry cannot be reached: {0}")]
    Unreachable(String),
    #[error("TLS with the registry failed (is console.registry_ca the CA of its certificate?): {0}")]
    Tls(String),
    #[error("the registry refused registry-auth's own token ({0}); does its auth.token trust this server's certificate and issuer?")]
    Unauthorized(String),
    #[error("no such repository or tag")]
    NotFound,
    #[error("the registry gave no complete answer within {0:?}")]
    Timeout(Duration),
    #[error("the registry's answer is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the registry's answer makes no sense: {0}")]
    BadAnswer(String),
    /// `n` above the registry's `catalog.maxentries` (distribution's PAGINATION_NUMBER_INVALID);
    /// the list is read again in the registry's own page size.
    #[error("the registry refused the page size (its catalog.maxentries is lower)")]
    PageSizeRefused,
    /// A redirect target (the registry's storage) failed; the URL is named without its query.
    #[error("the registry's storage, where it redirected the read, failed: {0}")]
    Storage(String),
    #[error("{1} (GET {0})")]
    At(String, Box<ReadError>),
}

impl ReadError {
    fn at(self, path: &str) -> ReadError {
        match self {
            ReadError::NotFound | ReadError::At(..) => self,
            other => ReadError::At(path.to_string(), Box::new(other)),
        }
    }

    /// Without the request context.
    pub fn kind(&self) -> &ReadError {
        match self {
            ReadError::At(_, inner) => inner.kind(),
            other => other,
        }
    }
}

/// The repositories the registry lists, in its (sorted) order.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub repositories: Vec<String>,
    /// More repositories exist than `max_repositories`.
    pub truncated: bool,
}

/// Tags of one repository.
#[derive(Debug, Clone)]
pub struct Tags {
    pub tags: Vec<String>,
    pub truncated: bool,
}

/// One platform's image.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    pub platform: Platform,
    pub digest: String,
    /// Config and layers, compressed, as pulled.
    pub size: u64,
    pub created: Option<String>,
}

/// What the console shows of a tag.
#[derive(Debug, Clone)]
pub struct TagDetail {
    pub tag: String,
    /// Of the manifest (or index) the tag names.
    pub digest: String,
    pub media_type: String,
    /// All platforms' images together (an index), or the one image's size.
    pub size: u64,
    /// The latest of the platforms' `created`.
    pub created: Option<String>,
    pub images: Vec<PlatformImage>,
    /// More platforms than were read.
    pub truncated: bool,
}

/// Where the registry is and which roots its TLS is checked with.
pub struct ReaderConfig {
    pub url: Url,
    /// PEM of the CA(s) of the registry's certificate; `None` = the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The registry's `auth.token.service` (the tokens' `aud`); `None` = read from its challenge.
    pub service: Option<String>,
    pub limits: ReaderLimits,
}

pub struct RegistryReader {
    base: Url,
    http: RegistryHttp,
    limits: ReaderLimits,
    tokens: TokenCache,
    /// The token audience: `Some(None)` once the registry was seen to need no token.
    service: Mutex<Option<Option<String>>>,
    catalog: Mutex<Option<(Instant, std::sync::Arc<Catalog>)>>,
    /// One catalog walk at a time; the others wait for its result.
    catalog_walk: tokio::sync::Mutex<()>,
}

impl RegistryReader {
    pub fn new(config: ReaderConfig) -> Result<RegistryReader, String> {
        if !matches!(config.url.scheme(), "http" | "https") || config.url.host_str().is_none() {
            return Err(format!("{}: the registry URL must be http(s)://host[:port]", config.url));
        }
        let roots = match &config.ca_pem {
            Some(pem) => pem_roots(pem)?,
            None => crate::upstream_client::system_roots(),
        };
        // Storage behind a redirect (S3, a CDN) usually has a public certificate; a private
        // one (MinIO) often shares the registry's CA.
        let mut storage_roots = crate::upstream_client::system_roots();
        if let Some(pem) = &config.ca_pem {
            storage_roots.roots.extend(pem_roots(pem)?.roots);
        }
        let http = RegistryHttp::new(roots, storage_roots, config.limits.timeout, config.limits.max_in_flight)?;
        let mut base = config.url;
        base.set_path("");
        base.set_query(None);
        Ok(RegistryReader {
            base,
            http,
            limits: config.limits,
            tokens: TokenCache::default(),
            service: Mutex::new(config.service.map(Some)),
            catalog: Mutex::new(None),
            catalog_walk: tokio::sync::Mutex::new(()),
        })
    }

    /// `host[:port]` as `docker login` and `docker pull` name the registry.
    pub fn host(&self) -> String {
        let host = self.base.host_str().unwrap_or_default();
        match self.base.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }

    /// The token audience the registry expects, once known (after any read).
    pub fn service(&self) -> Option<String> {
        self.service.lock().unwrap_or_else(|p| p.into_inner()).clone().flatten()
    }

    /// The catalog, read at most once per `catalog_ttl` (one walk at a time; a walk of an
    /// expired catalog serves the previous one to the requests that come meanwhile).
    pub async fn catalog(&self, issuer: &TokenIssuer) -> Result<std::sync::Arc<Catalog>, ReadError> {
        if let Some(catalog) = self.fresh_catalog() {
            return Ok(catalog);
        }
        // While one request walks an expired catalog, the others get the previous one
        // instead of queueing behind the walk.
        let _walk = match self.catalog_walk.try_lock() {
            Ok(walk) => walk,
            Err(_) => match self.stale_catalog() {
                Some(stale) => return Ok(stale),
                None => self.catalog_walk.lock().await,
            },
        };
        // Another request may have walked it while this one waited.
        if let Some(catalog) = self.fresh_catalog() {
            return Ok(catalog);
        }
        let (repositories, truncated) = self
            .walk_list(issuer, "/v2/_catalog", &TokenScope::Catalog, "repositories", self.limits.max_repositories)
            .await?;
        let catalog = std::sync::Arc::new(Catalog { repositories, truncated });
        *self.catalog.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), catalog.clone()));
        Ok(catalog)
    }

    fn stale_catalog(&self) -> Option<std::sync::Arc<Catalog>> {
        self.catalog.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|(_, c)| c.clone())
    }

    fn fresh_catalog(&self) -> Option<std::sync::Arc<Catalog>> {
        let cached = self.catalog.lock().unwrap_or_else(|p| p.into_inner());
        cached.as_ref().filter(|(at, _)| at.elapsed() < self.limits.catalog_ttl).map(|(_, c)| c.clone())
    }

    /// The tags of `repository` (`NotFound` for a name that is not a repository name).
    pub async fn tags(&self, issuer: &TokenIssuer, repository: &str) -> Result<Tags, ReadError> {
        if !names::is_repository(repository) {
            return Err(ReadError::NotFound);
        }
        let scope = TokenScope::Pull(repository.to_string());
        let path = format!("/v2/{repository}/tags/list");
        let (tags, truncated) = self.walk_list(issuer, &path, &scope, "tags", self.limits.max_tags).await?;
        Ok(Tags { tags, truncated })
    }

    /// Digest, size, created and platforms of `repository:tag`.
    pub async fn tag_detail(&self, issuer: &TokenIssuer, repository: &str, tag: &str) -> Result<TagDetail, ReadError> {
        if !names::is_repository(repository) || !names::is_tag(tag) {
            return Err(ReadError::NotFound);
        }
        let scope = TokenScope::Pull(repository.to_string());
        let (manifest, media_type, digest) = self.manifest(issuer, repository, &scope, tag).await?;
        let mut detail = TagDetail {
            tag: tag.to_string(),
            digest,
            media_type,
            size: 0,
            created: None,
            images: Vec::new(),
            truncated: false,
        };
        match manifest {
            Manifest::Image { config, layers } => {
                let image = self.image(issuer, repository, &scope, &detail.digest, &config, &layers, None).await?;
                detail.images.push(image);
            }
            Manifest::Index { manifests } => {
                let entries: Vec<_> = manifest::platform_entries(&manifests).collect();
                detail.truncated = entries.len() > MAX_PLATFORMS;
                for entry in entries.into_iter().take(MAX_PLATFORMS) {
                    if !names::is_digest(&entry.digest) {
                        return Err(ReadError::BadAnswer(format!("an index entry's digest {:?}", entry.digest)));
                    }
                    let (child, _, digest) = self.manifest(issuer, repository, &scope, &entry.digest).await?;
                    if entry.digest.starts_with("sha256:") && digest != entry.digest {
                        return Err(ReadError::BadAnswer(format!("the manifest {} has another digest", entry.digest)));
                    }
                    let Manifest::Image { config, layers } = child else {
                        return Err(ReadError::BadAnswer("an index inside an index".into()));
                    };
                    let platform = entry.platform.clone();
                    detail
                        .images
                        .push(self.image(issuer, repository, &scope, &digest, &config, &layers, platform).await?);
                }
            }
        }
        detail.size = detail.images.iter().map(|i| i.size).sum();
        detail.created = detail.images.iter().filter_map(|i| i.created.clone()).max();
        Ok(detail)
    }

    /// The manifest `reference` names, its media type and its digest (of the bytes served).
    async fn manifest(
        &self,
        issuer: &TokenIssuer,
        repository: &str,
        scope: &TokenScope,
        reference: &str,
    ) -> Result<(Manifest, String, String), ReadError> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let answer = self.authorized_get(issuer, &path, scope, manifest::ACCEPT, MAX_MANIFEST_BODY).await?;
        let content_type = answer.header(::http::header::CONTENT_TYPE).unwrap_or("").to_string();
        let (manifest, media_type) =
            Manifest::parse(&content_type, &answer.body).map_err(|e| ReadError::BadAnswer(e).at(&path))?;
        let digest = format!("sha256:{}", hex(&Sha256::digest(&answer.body)));
        Ok((manifest, media_type, digest))
    }

    #[allow(clippy::too_many_arguments)]
    async fn image(
        &self,
        issuer: &TokenIssuer,
        repository: &str,
        scope: &TokenScope,
        digest: &str,
        config: &manifest::Descriptor,
        layers: &[manifest::Descriptor],
        platform: Option<Platform>,
    ) -> Result<PlatformImage, ReadError> {
        if !names::is_digest(&config.digest) {
            return Err(ReadError::BadAnswer(format!("a config digest {:?}", config.digest)));
        }
        let path = format!("/v2/{repository}/blobs/{}", config.digest);
        let answer = self.authorized_get_blob(issuer, &path, scope, MAX_CONFIG_BODY).await?;
        // Read from storage behind a redirect, the bytes prove themselves by their digest.
        if !digest_matches(&config.digest, &answer.body) {
            return Err(ReadError::BadAnswer("the config blob does not match its digest".into()).at(&path));
        }
        let parsed = ImageConfig::parse(&answer.body).map_err(|e| ReadError::BadAnswer(e).at(&path))?;
        let size = config.size.saturating_add(layers.iter().map(|l| l.size).fold(0u64, u64::saturating_add));
        Ok(PlatformImage {
            platform: platform.unwrap_or(parsed.platform),
            digest: digest.to_string(),
            size,
            created: parsed.created,
        })
    }

    /// Reads a paginated list (`{"<field>": [...]}` plus `Link: <...>; rel="next"`), at most `max`.
    async fn walk_list(
        &self,
        issuer: &TokenIssuer,
        path: &str,
        scope: &TokenScope,
        field: &str,
        max: usize,
    ) -> Result<(Vec<String>, bool), ReadError> {
        let mut items = Vec::new();
        let mut next = Some(format!("{path}?n={}", self.limits.page_size.clamp(1, 1000)));
        let mut own_page_size = false;
        while let Some(path_and_query) = next.take() {
            if items.len() >= max {
                items.truncate(max);
                return Ok((items, true));
            }
            let answer =
                match self.authorized_get(issuer, &path_and_query, scope, "application/json", MAX_LIST_BODY).await {
                    // A registry with a lower `catalog.maxentries` refuses our `n`; without one it
                    // pages in its own size (min(100, maxentries)) and links the rest.
                    Err(e) if matches!(e.kind(), ReadError::PageSizeRefused) && items.is_empty() && !own_page_size => {
                        own_page_size = true;
                        next = Some(path.to_string());
                        continue;
                    }
                    answer => answer?,
                };
            let mut body: serde_json::Value = serde_json::from_slice(&answer.body)
                .map_err(|e| ReadError::BadAnswer(format!("not JSON: {e}")).at(path))?;
            let page = match body.get_mut(field).map(serde_json::Value::take) {
                Some(serde_json::Value::Array(page)) => page,
                Some(serde_json::Value::Null) | None => Vec::new(),
                Some(_) => return Err(ReadError::BadAnswer(format!("{field} is not a list")).at(path)),
            };
            let before = items.len();
            items.extend(page.into_iter().filter_map(|v| v.as_str().map(str::to_string)));
            if let Some(link) = answer.header(::http::header::LINK) {
                // A page that adds nothing but names a next page would loop forever.
                if items.len() > before {
                    next = Some(self.next_page(link).map_err(|e| e.at(path))?);
                }
            }
        }
        let truncated = items.len() > max;
        items.truncate(max);
        Ok((items, truncated))
    }

    /// The path and query of a `Link: <...>; rel="next"`, only on the registry's own origin.
    fn next_page(&self, link: &str) -> Result<String, ReadError> {
        let target = link
            .split(',')
            .find(|part| part.contains("rel=\"next\"") || part.contains("rel=next"))
            .and_then(|part| part.trim().strip_prefix('<'))
            .and_then(|part| part.split_once('>'))
            .map(|(url, _)| url)
            .ok_or_else(|| ReadError::BadAnswer(format!("a Link header {link:?}")))?;
        let url = self.base.join(target).map_err(|e| ReadError::BadAnswer(format!("Link {target:?}: {e}")))?;
        if url.origin() != self.base.origin() {
            return Err(ReadError::BadAnswer(format!("Link to another host: {target:?}")));
        }
        Ok(match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_string(),
        })
    }

    /// GET with a console token for `scope`; a refused cached token is replaced once. A
    /// redirect is an error here: only blob reads follow one ([`Self::authorized_get_blob`]).
    async fn authorized_get(
        &self,
        issuer: &TokenIssuer,
        path_and_query: &str,
        scope: &TokenScope,
        accept: &str,
        max_body: usize,
    ) -> Result<Answer, ReadError> {
        self.authorized_get_following(issuer, path_and_query, scope, accept, max_body, false).await
    }

    /// [`Self::authorized_get`] that follows the registry's redirect to its storage.
    async fn authorized_get_blob(
        &self,
        issuer: &TokenIssuer,
        path: &str,
        scope: &TokenScope,
        max_body: usize,
    ) -> Result<Answer, ReadError> {
        self.authorized_get_following(issuer, path, scope, "*/*", max_body, true).await
    }

    async fn authorized_get_following(
        &self,
        issuer: &TokenIssuer,
        path_and_query: &str,
        scope: &TokenScope,
        accept: &str,
        max_body: usize,
        follow_redirects: bool,
    ) -> Result<Answer, ReadError> {
        let url = format!("{}{}", self.base.as_str().trim_end_matches('/'), path_and_query);
        let service = self.discover_service().await?;
        let mut retried = false;
        loop {
            let token = match &service {
                Some(service) => Some(self.tokens.get(issuer, service, scope).map_err(ReadError::BadAnswer)?),
                None => None,
            };
            let answer = self.http.get(&url, accept, token.as_deref(), max_body).await?;
            match answer.status.as_u16() {
                200 => return Ok(answer),
                _ if follow_redirects && redirect::is_redirect(answer.status) => {
                    let from = Url::parse(&url).map_err(|e| ReadError::BadAnswer(e.to_string()))?;
                    let followed = self.follow(answer, from, token.as_deref(), accept, max_body).await;
                    return followed.map_err(|e| e.at(strip_query(path_and_query)));
                }
                401 if !retried && service.is_some() => {
                    if let Some(service) = &service {
                        self.tokens.forget(service, scope);
                    }
                    retried = true;
                }
                401 => {
                    let reason = answer
                        .header(::http::header::WWW_AUTHENTICATE)
                        .and_then(token::bearer_params)
                        .and_then(|p| p.get("error").cloned())
                        .unwrap_or_else(|| "401".to_string());
                    return Err(ReadError::Unauthorized(reason).at(strip_query(path_and_query)));
                }
                404 => return Err(ReadError::NotFound),
                status => {
                    let code = error_code(&answer.body);
                    let error = match code.as_deref() {
                        Some("PAGINATION_NUMBER_INVALID") if status == 400 => ReadError::PageSizeRefused,
                        Some(code) => ReadError::BadAnswer(format!("answered {status} {code}")),
                        None => ReadError::BadAnswer(format!("answered {status}")),
                    };
                    return Err(error.at(strip_query(path_and_query)));
                }
            }
        }
    }

    /// Follows `answer`'s redirect chain (at most [`redirect::MAX_HOPS`]), each hop under the
    /// same timeout and body cap; the token goes only to the registry's own origin.
    async fn follow(
        &self,
        mut answer: Answer,
        mut from: Url,
        token: Option<&str>,
        accept: &str,
        max_body: usize,
    ) -> Result<Answer, ReadError> {
        for _ in 0..redirect::MAX_HOPS {
            let to = redirect::target(&from, &answer)?;
            let own = redirect::may_carry_token(&self.base, &to);
            answer = if own {
                self.http.get(to.as_str(), accept, token, max_body).await?
            } else {
                let shown = redirect::shown(&to);
                self.http.get_storage(to.as_str(), accept, max_body).await.map_err(|e| match e.kind() {
                    ReadError::TooLarge(_) => e.kind().clone(),
                    inner => ReadError::Storage(format!("{shown}: {inner}")),
                })?
            };
            if answer.status == ::http::StatusCode::OK {
                return Ok(answer);
            }
            if !redirect::is_redirect(answer.status) {
                let status = answer.status.as_u16();
                return Err(if own {
                    ReadError::BadAnswer(format!("a redirect target on the registry answered {status}"))
                } else {
                    ReadError::Storage(format!("{} answered {status}", redirect::shown(&to)))
                });
            }
            from = to;
        }
        Err(ReadError::BadAnswer(format!("more than {} redirects", redirect::MAX_HOPS)))
    }

    /// The token audience: configured, or the `service` of the registry's challenge at `/v2/`.
    async fn discover_service(&self) -> Result<Option<String>, ReadError> {
        if let Some(known) = self.service.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(known);
        }
        let url = format!("{}/v2/", self.base.as_str().trim_end_matches('/'));
        let answer = self.http.get(&url, "application/json", None, MAX_LIST_BODY).await?;
        let service = match answer.status.as_u16() {
            200 => None,
            401 => {
                let params = answer.header(::http::header::WWW_AUTHENTICATE).and_then(token::bearer_params);
                match params.and_then(|mut p| p.remove("service")) {
                    Some(service) => Some(service),
                    None => {
                        return Err(ReadError::BadAnswer(
                            "401 at /v2/ without a Bearer challenge naming a service".into(),
                        )
                        .at("/v2/"))
                    }
                }
            }
            status => return Err(ReadError::BadAnswer(format!("answered {status}")).at("/v2/")),
        };
        *self.service.lock().unwrap_or_else(|p| p.into_inner()) = Some(service.clone());
        Ok(service)
    }
}

/// The first `code` of a distribution error body (`{"errors":[{"code":"NAME_UNKNOWN",...}]}`),
/// kept only when it looks like one (it goes into logs and pages).
fn error_code(body: &[u8]) -> Option<String> {
    let body: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = body.get("errors")?.get(0)?.get("code")?.as_str()?;
    let plausible = !code.is_empty() && code.len() <= 64 && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
    plausible.then(|| code.to_string())
}

fn strip_query(path_and_query: &str) -> &str {
    path_and_query.split('?').next().unwrap_or(path_and_query)
}

/// `digest` is `sha256:<hex>` or `sha512:<hex>` (checked by `names::is_digest`) of `body`.
fn digest_matches(digest: &str, body: &[u8]) -> bool {
    match digest.split_once(':') {
        Some(("sha256", hex_digest)) => hex(&Sha256::digest(body)) == hex_digest,
        Some(("sha512", hex_digest)) => hex(&sha2::Sha512::digest(body)) == hex_digest,
        _ => false,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn pem_roots(pem: &[u8]) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        let cert = cert.map_err(|e| format!("the registry CA: {e}"))?;
        roots.add(cert).map_err(|e| format!("the registry CA: {e}"))?;
    }
    if roots.is_empty() {
        return Err("the registry CA file holds no certificate".into());
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_read_when_plausible() {
        let body =
            br#"{"errors":[{"code":"PAGINATION_NUMBER_INVALID","message":"invalid number","detail":{"n":1000}}]}"#;
        assert_eq!(error_code(body).as_deref(), Some("PAGINATION_NUMBER_INVALID"));
        assert_eq!(error_code(br#"{"errors":[{"code":"evil\ncode"}]}"#), None);
        assert_eq!(error_code(b"<html>502</html>"), None);
        assert_eq!(error_code(br#"{"errors":[]}"#), None);
    }
}
