//! The console's registry side (issue 14 items 2, 3 and 7's data): the registry reader
//! against the real registries (2.8.2, 3.0.0 and 3.1.1, one test per version running every
//! reading flow on one registry and one console) holding images pushed by skopeo —
//! single-platform OCI images and a multi-platform OCI index — and, on the real binary, the
//! My access and Repositories pages at the HTTP level and in a real browser. Blob reads the
//! registry redirects to its storage (the `redirect` middleware, storage served by a real
//! static HTTP server) are followed without our token.
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use registry_auth::registry_reader::{ReadError, ReaderConfig, ReaderLimits, RegistryReader};
use registry_auth::token::{KidMode, SigningKey, TokenIssuer, TokenOptions};
use tempfile::TempDir;

use crate::common::{KeyKind, Keys};
use crate::support::oci::{write_oci_index, write_oci_layout};
use crate::support::registry::{Registry, RegistryAuth, Version};
use crate::support::skopeo::{docker_ref, Creds, Skopeo};
use crate::support::storage_server::{Mode, StorageServer, SIGNATURE};
use crate::support::temp_dir;

const SERVICE: &str = "registry.console.test";
const ISSUER: &str = "Acme auth server";

/// Repositories the fixture pushes, in catalog order.
const REPOSITORIES: [&str; 5] = ["other/secret", "public/base", "team/app", "team/multi", "test/own"];

/// The registry storage with the pushed images (pushed once for the module, through a
/// registry without auth on the same storage), and what was pushed.
struct Pushed {
    _dir: TempDir,
    data: PathBuf,
    /// team/app:v1's manifest digest, its config + layer sizes.
    app_digest: String,
    app_size: u64,
    /// team/multi:v1's index digest and its platform manifests' digests.
    multi_digest: String,
    multi_platforms: Vec<String>,
}

fn pushed() -> &'static Pushed {
    static PUSHED: OnceLock<Pushed> = OnceLock::new();
    PUSHED.get_or_init(|| {
        let dir = temp_dir("console-images");
        let data = dir.path().join("registry-data");
        std::fs::create_dir_all(&data).unwrap();
        let open = Registry::start_without_auth_on(&data);
        let skopeo = Skopeo::with_shared_cache();
        let image = write_oci_layout(&dir.path().join("single"), "v1", &[("hello.txt", b"hello from the console")]);
        for repo in REPOSITORIES.iter().filter(|r| **r != "team/multi") {
            skopeo
                .copy(&image.oci_ref(), &docker_ref(&open.addr(), repo, "v1"), Creds::Anonymous, Creds::Anonymous)
                .unwrap_or_else(|e| panic!("push {repo}: {e}"));
        }
        skopeo
            .copy(&image.oci_ref(), &docker_ref(&open.addr(), "team/app", "v2"), Creds::Anonymous, Creds::Anonymous)
            .unwrap();
        let layout = dir.path().join("multi");
        let (multi_digest, multi_platforms) =
            write_oci_index(&layout, "v1", &[("linux", "amd64", None), ("linux", "arm64", Some("v8"))]);
        let src = format!("oci:{}:v1", layout.display());
        let dest = docker_ref(&open.addr(), "team/multi", "v1");
        let args: Vec<String> =
            ["copy", "--all", "--dest-tls-verify=false", "--dest-no-creds", &src, &dest].map(String::from).to_vec();
        skopeo.run(&args).unwrap_or_else(|e| panic!("push the index: {e}"));
        let manifest =
            std::fs::read(crate::support::oci::blob_path(&image.layout_dir, &image.manifest_digest)).unwrap();
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        let app_size = manifest["config"]["size"].as_u64().unwrap() + manifest["layers"][0]["size"].as_u64().unwrap();
        drop(open);
        Pushed { _dir: dir, data, app_digest: image.manifest_digest, app_size, multi_digest, multi_platforms }
    })
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys::new(KeyKind::EcP256))
}

/// The token form each version gets: 2.8.2 the libtrust kid (the default), 3.x `x5c` (3.x
/// rejects libtrust kids; see shared/peers/registry3-token-rules.md).
fn x5c(version: Version) -> bool {
    version != Version::V2_8_2
}

fn auth_trusting(cert: &Path) -> RegistryAuth {
    RegistryAuth {
        realm: "http://127.0.0.1:9/auth".into(),
        service: SERVICE.into(),
        issuer: ISSUER.into(),
        rootcertbundle: cert.to_path_buf(),
    }
}

/// Registry `version` on the pushed storage (or `data`) trusting `cert`, with `extra` config.
fn registry_on(version: Version, cert: &Path, data: Option<&Path>, extra: &str) -> Registry {
    let data = data.unwrap_or(&pushed().data);
    Registry::start_version_with_config(version, auth_trusting(cert).into(), Some(data), extra)
}

/// A 2.8.2 token registry on the pushed storage trusting `cert`.
fn registry_trusting(cert: &Path) -> Registry {
    registry_on(Version::V2_8_2, cert, None, "")
}

fn issuer(keys: &Keys, version: Version) -> TokenIssuer {
    let options =
        TokenOptions { issuer: ISSUER.into(), expiration_secs: 900, kid_mode: KidMode::Libtrust, x5c: x5c(version) };
    TokenIssuer::new(options, SigningKey::load(&keys.cert, &keys.key).unwrap())
}

fn new_reader(url: &str, ca_pem: Option<Vec<u8>>, limits: ReaderLimits) -> Arc<RegistryReader> {
    let config = ReaderConfig { url: url::Url::parse(url).unwrap(), ca_pem, service: None, limits };
    Arc::new(RegistryReader::new(config).unwrap())
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

/// A registry's `catalog.maxentries` below the reader's page size (1000): the registry
/// refuses `n=1000` (400 PAGINATION_NUMBER_INVALID) and the reader pages in its size.
const SMALL_CATALOG_PAGES: &str = "catalog:\n  maxentries: 2\n";

/// Every reading flow on registry `version`: the reader directly, then My access and
/// Repositories through the console, on one registry (catalog pages of at most 2) and one
/// console server.
fn reading_flows(version: Version) {
    let setup = ConsoleSetup::on(version, registry_on(version, &keys().cert, None, SMALL_CATALOG_PAGES));
    reader_reads_catalog_tags_and_tag_details(version, &setup.registry);
    my_access_shows_each_repository_with_the_deciding_rule(&setup);
    repositories_show_only_what_the_account_may_pull(&setup);
}

#[test]
fn reading_flows_on_2_8_2() {
    reading_flows(Version::V2_8_2);
}

#[test]
fn reading_flows_on_3_0_0() {
    reading_flows(Version::V3_0_0);
}

#[test]
fn reading_flows_on_3_1_1() {
    reading_flows(Version::V3_1_1);
}

/// Catalog (several pages, then cut at a cap), tags (paginated where the registry does so),
/// a single image's and a multi-platform index's details, all with self-minted tokens the
/// real registry accepts; a token of a key it does not trust is refused, and says why.
fn reader_reads_catalog_tags_and_tag_details(version: Version, registry: &Registry) {
    let pushed = pushed();
    let issuer = issuer(keys(), version);
    let limits = ReaderLimits { page_size: 2, ..ReaderLimits::default() };
    let reader = new_reader(&registry.url(), None, limits.clone());
    block_on(async {
        let catalog = reader.catalog(&issuer).await.unwrap_or_else(|e| panic!("{e}\n{}", registry.log()));
        assert_eq!(catalog.repositories, REPOSITORIES);
        assert!(!catalog.truncated);
        assert_eq!(reader.service().as_deref(), Some(SERVICE), "the audience comes from the challenge");

        let tags = reader.tags(&issuer, "team/app").await.unwrap_or_else(|e| panic!("{e}\n{}", registry.log()));
        assert_eq!(tags.tags, ["v1", "v2"]);
        let one_a_page = new_reader(&registry.url(), None, ReaderLimits { page_size: 1, ..limits.clone() });
        assert_eq!(one_a_page.tags(&issuer, "team/app").await.unwrap().tags, ["v1", "v2"]);

        let app = reader.tag_detail(&issuer, "team/app", "v1").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(app.digest, pushed.app_digest);
        assert_eq!(app.size, pushed.app_size);
        assert_eq!(app.images.len(), 1);
        assert_eq!(app.images[0].platform.to_string(), "linux/amd64");
        assert_eq!(app.media_type, "application/vnd.oci.image.manifest.v1+json");

        let multi = reader.tag_detail(&issuer, "team/multi", "v1").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(multi.digest, pushed.multi_digest);
        assert_eq!(multi.media_type, "application/vnd.oci.image.index.v1+json");
        let platforms: Vec<String> = multi.images.iter().map(|i| i.platform.to_string()).collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"]);
        let digests: Vec<String> = multi.images.iter().map(|i| i.digest.clone()).collect();
        assert_eq!(digests, pushed.multi_platforms);
        assert_eq!(multi.created.as_deref(), Some("2026-01-02T03:04:05Z"));
        assert_eq!(multi.size, multi.images.iter().map(|i| i.size).sum::<u64>());

        for (repo, tag) in [("team/app", "nope"), ("no/such", "v1"), ("../etc", "v1"), ("team/app", "<b>")] {
            let err = reader.tag_detail(&issuer, repo, tag).await.unwrap_err();
            assert!(matches!(err, ReadError::NotFound), "{repo}:{tag}: {err}");
        }
        assert!(matches!(reader.tags(&issuer, "no/such").await.unwrap_err(), ReadError::NotFound));
    });

    let capped = new_reader(&registry.url(), None, ReaderLimits { max_repositories: 3, ..limits });
    let catalog = block_on(capped.catalog(&issuer)).unwrap();
    assert_eq!(catalog.repositories, REPOSITORIES[..3]);
    assert!(catalog.truncated);

    // The default page size is above this registry's catalog.maxentries: refused, then
    // read in the registry's pages.
    let default = new_reader(&registry.url(), None, ReaderLimits::default());
    let catalog = block_on(default.catalog(&issuer)).unwrap_or_else(|e| panic!("{e}\n{}", registry.log()));
    assert_eq!(catalog.repositories, REPOSITORIES);
    let log = registry.log();
    assert!(log.contains("\"GET /v2/_catalog?n=1000 HTTP/1.1\" 400"), "{log}");

    // A key the registry does not trust: 401 with the registry's reason.
    let stranger = self::issuer(&Keys::new(KeyKind::EcP256), version);
    let err = block_on(new_reader(&registry.url(), None, ReaderLimits::default()).catalog(&stranger)).unwrap_err();
    assert!(matches!(err.kind(), ReadError::Unauthorized(_)), "{err}");
    assert!(err.to_string().contains("invalid_token"), "{err}\n{}", registry.log());
}

/// Blob reads the registry redirects to its storage (distribution's `redirect` middleware
/// pointing at a real static server over the registry's storage directory) are followed,
/// and storage never sees our token: the reader's tag details and the console's tag page.
/// Misbehaving storage (a loop, a body past the cap, wrong bytes, a refused presigned URL)
/// gives a clear error that names no presigned signature.
fn blob_reads_follow_redirects_to_storage(version: Version) {
    let pushed = pushed();
    let storage = StorageServer::start(&pushed.data, "storage");
    // 2.8.2 drops the baseurl's path (redirecting to /docker/...), 3.x keeps it.
    let middleware = format!(
        "middleware:\n  storage:\n    - name: redirect\n      options:\n        baseurl: \"{}storage/\"\n",
        storage.base_url()
    );
    let blob_prefix = match version {
        Version::V2_8_2 => "/docker/registry/v2/blobs/sha256/",
        _ => "/storage/docker/registry/v2/blobs/sha256/",
    };
    let registry = registry_on(version, &keys().cert, None, &middleware);
    let issuer = issuer(keys(), version);
    let reader = new_reader(&registry.url(), None, ReaderLimits::default());
    let logs = || format!("{}\n{}", registry.log(), storage.log());
    block_on(async {
        let app = reader.tag_detail(&issuer, "team/app", "v1").await.unwrap_or_else(|e| panic!("{e}\n{}", logs()));
        assert_eq!((app.digest.as_str(), app.size), (pushed.app_digest.as_str(), pushed.app_size));
        assert_eq!(app.images[0].platform.to_string(), "linux/amd64");
        let multi = reader.tag_detail(&issuer, "team/multi", "v1").await.unwrap_or_else(|e| panic!("{e}\n{}", logs()));
        let platforms: Vec<String> = multi.images.iter().map(|i| i.platform.to_string()).collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8"]);
        assert_eq!(multi.created.as_deref(), Some("2026-01-02T03:04:05Z"));
    });
    // One config read per image, each from storage (the reader asks storage only when the
    // registry redirects), and not one with an Authorization header.
    let seen = storage.seen();
    let blob_reads = seen.iter().filter(|s| s.method == "GET" && s.path.starts_with(blob_prefix)).count();
    assert_eq!(blob_reads, 3, "{seen:#?}\n{}", logs());
    let no_token = |seen: &[crate::support::storage_server::Seen]| {
        assert!(!seen.is_empty());
        for request in seen {
            assert!(!request.headers.contains_key("authorization"), "storage saw a token: {request:?}");
        }
    };
    no_token(&seen);

    let failure = |mode: Mode| {
        storage.set_mode(mode);
        let err = block_on(reader.tag_detail(&issuer, "team/app", "v1")).unwrap_err();
        assert!(!err.to_string().contains(SIGNATURE), "{err}");
        err
    };
    let err = failure(Mode::Loop);
    assert!(
        matches!(err.kind(), ReadError::BadAnswer(_)) && err.to_string().contains("more than 5 redirects"),
        "{err}"
    );
    let err = failure(Mode::Big);
    assert!(matches!(err.kind(), ReadError::TooLarge(_)), "{err}");
    let err = failure(Mode::Wrong);
    assert!(err.to_string().contains("does not match its digest"), "{err}");
    let err = failure(Mode::Signed);
    assert!(matches!(err.kind(), ReadError::Storage(_)), "{err}");
    let storage_origin = storage.base_url().trim_end_matches('/').to_string();
    assert!(err.to_string().contains(&format!("{storage_origin}{blob_prefix}")), "{err}");
    assert!(err.to_string().contains("answered 403"), "{err}");
    let seen = storage.seen();
    assert!(seen.iter().any(|s| s.path.contains(SIGNATURE)), "the presigned-style URL was followed: {seen:#?}");
    no_token(&seen);

    // The console's tag page reads through the redirect too; failing storage is a 502 that says so.
    storage.set_mode(Mode::Serve);
    let setup = ConsoleSetup::on(version, registry);
    let mut alice = setup.sign_in("alice");
    let tag = alice.get("/repositories/team/multi:v1");
    assert_eq!(tag.status, 200, "{}\n{}", tag.body, setup.server.log());
    assert_eq!(element_text(&tag.body, "digest"), Some(pushed.multi_digest.clone()));
    assert!(tag.body.contains("linux/arm64/v8"), "{}", tag.body);
    storage.set_mode(Mode::Signed);
    let failed = alice.get("/repositories/team/app:v1");
    assert_eq!(failed.status, 502, "{}", failed.body);
    let reason = unescape(&element_text(&failed.body, "reason").unwrap_or_default());
    assert!(reason.contains("storage"), "{}", failed.body);
    let log = setup.server.log();
    assert!(log.contains("answered 403") && !log.contains(SIGNATURE), "{log}");
    no_token(&storage.seen());
}

#[test]
fn blob_redirects_on_2_8_2() {
    blob_reads_follow_redirects_to_storage(Version::V2_8_2);
}

#[test]
fn blob_redirects_on_3_0_0() {
    blob_reads_follow_redirects_to_storage(Version::V3_0_0);
}

#[test]
fn blob_redirects_on_3_1_1() {
    blob_reads_follow_redirects_to_storage(Version::V3_1_1);
}

/// A catalog read is reused for its time to live: many pages asking within it walk the
/// registry once.
#[test]
fn reader_caches_the_catalog_briefly() {
    let registry = registry_trusting(&keys().cert);
    let issuer = issuer(keys(), Version::V2_8_2);
    let limits = ReaderLimits { catalog_ttl: Duration::from_millis(1500), ..ReaderLimits::default() };
    let reader = new_reader(&registry.url(), None, limits);
    let walks = || registry.log().matches("\"GET /v2/_catalog").count();
    block_on(async {
        for _ in 0..5 {
            reader.catalog(&issuer).await.unwrap();
        }
    });
    wait_for_log(|| walks() >= 1);
    assert_eq!(walks(), 1, "{}", registry.log());
    std::thread::sleep(Duration::from_millis(1600));
    block_on(reader.catalog(&issuer)).unwrap();
    wait_for_log(|| walks() >= 2);
    assert_eq!(walks(), 2);
}

/// The registry's access log is written after the answer; give it a moment.
fn wait_for_log(done: impl Fn() -> bool) {
    for _ in 0..50 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Clear errors, never a panic: nothing listening, and TLS with a certificate the reader
/// does not trust (a registry refusing our token: in `reading_flows`, per version).
#[test]
fn reader_errors_say_what_is_wrong() {
    let issuer = issuer(keys(), Version::V2_8_2);
    let closed = format!("http://127.0.0.1:{}", crate::support::ports::free_port());
    let err = block_on(new_reader(&closed, None, ReaderLimits::default()).catalog(&issuer)).unwrap_err();
    assert!(matches!(err.kind(), ReadError::Unreachable(_)), "{err}");

    // registry-auth's own TLS listener stands in for a registry behind TLS.
    let tls = crate::auth_server::AuthServer::start(&crate::e2e::config(keys(), ""), true, &["serve"]);
    let url = format!("https://{}", tls.addr);
    let err = block_on(new_reader(&url, None, ReaderLimits::default()).catalog(&issuer)).unwrap_err();
    assert!(matches!(err.kind(), ReadError::Tls(_)), "{err}");
    // With its CA the TLS succeeds and the answer is what is wrong (no registry there).
    let ca = std::fs::read(&keys().cert).unwrap();
    let err = block_on(new_reader(&url, Some(ca), ReaderLimits::default()).catalog(&issuer)).unwrap_err();
    assert!(matches!(err.kind(), ReadError::BadAnswer(_)), "{err}");
}

// ---- The pages, on the real binary ------------------------------------------------------

use crate::common::TEST_HASH;
use crate::support::browser::Browser;
use crate::support::console::{browser_sign_in, element_text, screenshot, ConsoleClient, ConsoleServer};

/// alice (team member) and bob (nobody special), both with password 123; tokens in the
/// form registry `version` accepts.
fn console_yaml(registry_url: &str, keys: &Keys, version: Version) -> String {
    let yaml = format!(
        r#"server:
  addr: "@ADDR@"
token:
  issuer: "{ISSUER}"
  expiration: 900
  x5c: {x5c}
  certificate: "{cert}"
  key: "{key}"
store:
  path: "@DIR@/data"
console:
  registry_url: "{registry_url}"
users:
  "alice":
    password: "{TEST_HASH}"
    labels: {{team: ["team"]}}
  "bob":
    password: "{TEST_HASH}"
acl:
  - match: {{name: "${{labels:team}}/*"}}
    actions: ["pull", "push"]
    comment: "a team pushes its namespace"
  - match: {{name: "public/*"}}
    actions: ["pull"]
    comment: "everyone pulls public images"
  - match: {{account: "alice", name: "many/*"}}
    actions: ["pull"]
  - match: {{name: "other/*"}}
    actions: []
    comment: "nobody reads other/"
"#,
        cert = keys.cert.display(),
        key = keys.key.display(),
        x5c = x5c(version),
    );
    yaml
}

struct ConsoleSetup {
    registry: Registry,
    server: ConsoleServer,
}

impl ConsoleSetup {
    /// The console reading registry `version` on the pushed storage (or `data`, a copy with more).
    fn start(version: Version, data: Option<&Path>) -> ConsoleSetup {
        Self::on(version, registry_on(version, &keys().cert, data, ""))
    }

    /// The console reading `registry` (of `version`).
    fn on(version: Version, registry: Registry) -> ConsoleSetup {
        let server = ConsoleServer::start_with_yaml(&console_yaml(&registry.url(), keys(), version));
        ConsoleSetup { registry, server }
    }

    fn sign_in(&self, user: &str) -> ConsoleClient {
        self.server.sign_in(user, "123")
    }
}

/// The `<tbody>` rows' first cells (`<th scope="row" ...>name`), in order.
fn row_names(body: &str) -> Vec<String> {
    body.split("<th scope=\"row\"")
        .skip(1)
        .map(|rest| {
            let text = &rest[rest.find('>').unwrap() + 1..];
            let text = text.strip_prefix("<a ").map(|a| &a[a.find('>').unwrap() + 1..]).unwrap_or(text);
            text[..text.find('<').unwrap()].to_string()
        })
        .collect()
}

/// The `href` of the element with `id`, as written in the page (entities kept).
fn href_of(body: &str, id: &str) -> Option<String> {
    let at = body.find(&format!("id=\"{id}\""))?;
    let tag_start = body[..at].rfind('<')?;
    let tag = &body[tag_start..body[at..].find('>')? + at];
    let href = &tag[tag.find("href=\"")? + 6..];
    Some(href[..href.find('"')?].to_string())
}

/// HTML text back to plain text (askama writes `&#34;`, `&#38;`, `&#39;`, `&#60;`, `&#62;`).
fn unescape(html: &str) -> String {
    html.replace("&#34;", "\"").replace("&#39;", "'").replace("&#60;", "<").replace("&#62;", ">").replace("&#38;", "&")
}

/// The table row of `name` (from its `<th>` to the row's end).
fn row_of<'a>(body: &'a str, name: &str) -> &'a str {
    let at =
        body.find(&format!("<th scope=\"row\" class=\"repo\">{name}</th>")).unwrap_or_else(|| panic!("no row {name}"));
    let rest = &body[at..];
    &rest[..rest.find("</tr>").unwrap()]
}

/// My access lists every repository with alice's actions and the deciding entry in
/// `explain`'s words; filters by text and action; the try-a-scope box decides any scope
/// (the very lines `registry-auth explain` prints) and echoes client text escaped.
fn my_access_shows_each_repository_with_the_deciding_rule(setup: &ConsoleSetup) {
    let mut alice = setup.sign_in("alice");
    let page = alice.get("/access");
    assert_eq!(page.status, 200, "{}\n{}", page.body, setup.server.log());
    assert_eq!(row_names(&page.body), REPOSITORIES, "every repository of the catalog");
    assert_eq!(element_text(&page.body, "repository-count").as_deref(), Some("5"));
    let body = unescape(&page.body);
    let team = row_of(&body, "team/app");
    assert!(team.contains("pull, push"), "{team}");
    assert!(team.contains(r#"acl[0] ("a team pushes its namespace")"#), "{team}");
    assert!(team.contains(r#"match: {name: "${labels:team}/*"}"#), "{team}");
    assert!(team.contains("entry allows: [pull, push]"), "{team}");
    let public = row_of(&body, "public/base");
    assert!(public.contains(">pull<") && public.contains("acl[1]"), "{public}");
    let other = row_of(&body, "other/secret");
    assert!(other.contains(">nothing<") && other.contains("acl[3]"), "{other}");
    let own = row_of(&body, "test/own");
    assert!(own.contains("no ACL entry matched: denied by default"), "{own}");
    let host = setup.registry.addr();
    assert_eq!(element_text(&page.body, "docker-login"), Some(format!("docker login {host} -u alice")));
    assert_eq!(element_text(&page.body, "docker-pull"), Some(format!("docker pull {host}/public/base")));

    let pushable = alice.get("/access?q=TEAM/&action=push");
    assert_eq!(row_names(&pushable.body), ["team/app", "team/multi"]);
    let none = alice.get("/access?action=none");
    assert_eq!(row_names(&none.body), ["other/secret", "test/own"]);
    let nothing = alice.get("/access?q=zzz");
    assert_eq!(element_text(&nothing.body, "shown").as_deref(), Some("No repository matches."));

    // Try a scope: the decision in the words of `registry-auth explain` on the same config.
    let tried = alice.post("/access/try", &[("scope", "repository:team/app:push,delete registry:catalog:*")]);
    assert_eq!(tried.status, 200, "{}", tried.body);
    let config = setup.server.server.dir.path().join("auth_config.yml");
    let out = std::process::Command::new(crate::auth_server::binary())
        .args(["explain", "--account", "alice", "--labels", "team=team", "--service", SERVICE, "--config"])
        .arg(&config)
        .args(["repository:team/app:push,delete", "registry:catalog:*"])
        .output()
        .unwrap();
    let explained = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{explained}{}", String::from_utf8_lossy(&out.stderr));
    let shown = unescape(&tried.body);
    assert!(explained.lines().filter(|l| l.starts_with("  ")).count() >= 4, "{explained}");
    for line in explained.lines().filter(|l| l.starts_with("  ")) {
        assert!(shown.contains(line.trim()), "the page lacks explain's line {line:?}:\n{shown}");
    }
    assert!(
        shown.contains(r#"repository:team/app:delete,push</code>: <span class="verdict">partly allowed</span>"#),
        "{shown}"
    );
    assert!(shown.contains(r#"registry:catalog:*</code>: <span class="verdict">denied</span>"#), "{shown}");

    // Client text is escaped, a bad scope is named, and the form needs the session's CSRF.
    let evil = alice.post("/access/try", &[("scope", "repository:<script>alert(1)</script>:pull")]);
    assert_eq!(evil.status, 200);
    assert!(!evil.body.contains("<script>alert(1)"), "{}", evil.body);
    assert!(evil.body.contains("&#60;script&#62;alert(1)&#60;/script&#62;"), "{}", evil.body);
    let bad = alice.post("/access/try", &[("scope", "nonsense")]);
    assert!(element_text(&bad.body, "try-error").is_some_and(|e| e.contains("scopes look like")), "{}", bad.body);
    let forged = alice.post_raw("/access/try", &[("scope", "repository:team/app:pull"), ("csrf", "forged")]);
    assert_eq!(forged.status, 403);
}

/// Repositories: only what the account may pull; tags; a tag's digest, size, created and
/// platforms (a multi-platform index); a repository it may not pull answers exactly like
/// one that does not exist.
fn repositories_show_only_what_the_account_may_pull(setup: &ConsoleSetup) {
    let pushed = pushed();
    let mut alice = setup.sign_in("alice");
    let list = alice.get("/repositories");
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(row_names(&list.body), ["public/base", "team/app", "team/multi"]);
    assert_eq!(row_names(&alice.get("/repositories?q=multi").body), ["team/multi"]);

    let tags = alice.get("/repositories/team/app");
    assert_eq!(tags.status, 200, "{}", tags.body);
    assert!(tags.body.contains(">v1</a>") && tags.body.contains(">v2</a>"), "{}", tags.body);
    let tag = alice.get("/repositories/team/app:v1");
    assert_eq!(tag.status, 200, "{}", tag.body);
    assert_eq!(element_text(&tag.body, "digest"), Some(pushed.app_digest.clone()));
    assert_eq!(element_text(&tag.body, "size"), Some(format!("{} B", pushed.app_size)));
    let multi = alice.get("/repositories/team/multi:v1");
    assert_eq!(element_text(&multi.body, "digest"), Some(pushed.multi_digest.clone()));
    assert_eq!(element_text(&multi.body, "created").as_deref(), Some("2026-01-02T03:04:05Z"));
    assert!(multi.body.contains("linux/amd64") && multi.body.contains("linux/arm64/v8"), "{}", multi.body);
    let host = setup.registry.addr();
    assert_eq!(
        element_text(&multi.body, "pull-digest"),
        Some(format!("docker pull {host}/team/multi@{}", pushed.multi_digest))
    );

    // Forbidden and nonexistent look the same, for the tags and the tag pages.
    let missing = alice.get("/repositories/no/such");
    assert_eq!(missing.status, 404);
    for path in ["/repositories/other/secret", "/repositories/test/own"] {
        let forbidden = alice.get(path);
        assert_eq!((forbidden.status, &forbidden.body), (404, &missing.body), "{path}");
    }
    let missing_tag = alice.get("/repositories/no/such:v1");
    let forbidden_tag = alice.get("/repositories/other/secret:v1");
    assert_eq!((forbidden_tag.status, &forbidden_tag.body), (404, &missing_tag.body));
    assert_eq!(alice.get("/repositories/team/app:nope").status, 404);
    assert_eq!(alice.get("/repositories/%3Cscript%3E").status, 404);

    // bob pulls public images only.
    let mut bob = setup.sign_in("bob");
    assert_eq!(row_names(&bob.get("/repositories").body), ["public/base"]);
    assert_eq!(bob.get("/repositories/team/app:v1").status, 404);
    // The registry was never asked about a repository bob may not pull.
    let log = setup.registry.log();
    assert!(log.contains("/v2/team/app/tags/list"), "the registry logs its requests: {log}");
    assert!(!log.contains("/v2/other/secret/"), "{log}");
}

/// Thousands of repositories come in pages: 120 more (hard-linked copies in a copy of the
/// storage), 50 a page, with working previous/next links and the filter kept across pages.
#[test]
fn long_lists_are_paginated() {
    let dir = temp_dir("console-many");
    let data = dir.path().join("data");
    let status = std::process::Command::new("cp").arg("-al").arg(&pushed().data).arg(&data).status().unwrap();
    assert!(status.success());
    let repos = data.join("docker/registry/v2/repositories");
    std::fs::create_dir_all(repos.join("many")).unwrap();
    for i in 0..120 {
        let status = std::process::Command::new("cp")
            .arg("-al")
            .arg(repos.join("team/app"))
            .arg(repos.join(format!("many/r{i:03}")))
            .status()
            .unwrap();
        assert!(status.success());
    }
    let setup = ConsoleSetup::start(Version::V2_8_2, Some(&data));
    let mut alice = setup.sign_in("alice");
    let first = alice.get("/repositories?q=many/");
    assert_eq!(element_text(&first.body, "shown").as_deref(), Some("Showing 1–50 of 120."));
    assert_eq!(row_names(&first.body).first().map(String::as_str), Some("many/r000"));
    let next = href_of(&first.body, "next-page").expect("a next link");
    assert_eq!(unescape(&next), "/console/repositories?q=many%2F&page=2");
    let second = alice.get(&unescape(&next).replacen("/console", "", 1));
    assert_eq!(element_text(&second.body, "shown").as_deref(), Some("Showing 51–100 of 120."));
    assert_eq!(row_names(&second.body).first().map(String::as_str), Some("many/r050"));
    let last = alice.get("/repositories?q=many/&page=3");
    assert_eq!(row_names(&last.body).len(), 20);
    assert!(href_of(&last.body, "next-page").is_none());
    let access = alice.get("/access?q=many/r11");
    assert_eq!(row_names(&access.body).len(), 10);
    assert_eq!(element_text(&access.body, "repository-count").as_deref(), Some("125"));
}

/// A registry that is down, or does not trust our key, gives an error page (502) that says
/// so; never a panic or a bare 500.
#[test]
fn registry_trouble_is_an_error_page() {
    let closed = format!("http://127.0.0.1:{}", crate::support::ports::free_port());
    let server = ConsoleServer::start_with_yaml(&console_yaml(&closed, keys(), Version::V2_8_2));
    let mut alice = server.sign_in("alice", "123");
    for path in ["/access", "/repositories", "/repositories/team/app", "/repositories/team/app:v1"] {
        let page = alice.get(path);
        assert_eq!(page.status, 502, "{path}: {}", page.body);
        assert!(element_text(&page.body, "reason").is_some_and(|r| r.contains("cannot be reached")), "{}", page.body);
    }
    assert!(server.log().contains("cannot read the registry"), "{}", server.log());

    let other = Keys::new(KeyKind::EcP256);
    let distrusting = registry_trusting(&other.cert);
    let server = ConsoleServer::start_with_yaml(&console_yaml(&distrusting.url(), keys(), Version::V2_8_2));
    let mut alice = server.sign_in("alice", "123");
    let page = alice.get("/access");
    assert_eq!(page.status, 502);
    let reason = unescape(&element_text(&page.body, "reason").unwrap_or_default());
    assert!(reason.contains("refused the console's token"), "{}", page.body);
}

/// In chromium: alice signs in, sees her access and the deciding rules, filters, tries a
/// scope, browses repositories and a multi-platform tag; bob sees no repository he may not
/// pull. Screenshots of every page under `target/screenshots/console/`.
#[test]
fn browser_my_access_and_repositories() {
    let setup = ConsoleSetup::start(Version::V2_8_2, None);
    let console = setup.server.console("");
    block_on(async {
        let browser = Browser::start("console_registry").await;
        browser_sign_in(&browser, &console, "alice", "123").await;
        browser.click("nav a[href$='/access']").await;
        let rule = browser.text("#access tbody tr:nth-child(3) .decided-by").await;
        assert_eq!(rule, r#"acl[0] ("a team pushes its namespace")"#);
        assert_eq!(browser.text("#access tbody tr:nth-child(3) .granted").await, "pull, push");
        screenshot(&browser, "console_registry_access").await;

        browser.fill("#q", "team").await;
        browser.click("#filter").await;
        assert_eq!(browser.text_becomes("#shown", "Showing 1–2 of 2.").await, "Showing 1–2 of 2.");
        // The same filtered page, scrolled to its table.
        browser.client.goto(&format!("{console}/access?q=team#access")).await.unwrap();
        assert_eq!(browser.text("#access tbody tr:nth-child(2) .repo").await, "team/multi");
        screenshot(&browser, "console_registry_access_filtered").await;

        browser.fill("#scope", "repository:other/secret:pull").await;
        browser.click("#try-scope").await;
        let decided = browser.text(".tried-lines").await;
        assert!(decided.contains(r#"decided by: acl[3] ("nobody reads other/")"#), "{decided}");
        assert!(decided.contains("granted: nothing"), "{decided}");
        screenshot(&browser, "console_registry_try_scope").await;

        browser.click("nav a[href$='/repositories']").await;
        assert_eq!(browser.text_becomes("#shown", "Showing 1–3 of 3.").await, "Showing 1–3 of 3.");
        screenshot(&browser, "console_registry_repositories").await;
        browser.click("a.repo[href$='/team/multi']").await;
        assert_eq!(browser.text("#repository").await, "team/multi");
        screenshot(&browser, "console_registry_tags").await;
        browser.click("a.tag").await;
        assert_eq!(browser.text("#reference").await, "team/multi:v1");
        assert_eq!(browser.text("#platforms tbody tr:nth-child(2) .platform").await, "linux/arm64/v8");
        screenshot(&browser, "console_registry_tag").await;
        browser.close().await;

        let browser = Browser::start("console_registry_bob").await;
        browser_sign_in(&browser, &console, "bob", "123").await;
        browser.client.goto(&format!("{console}/repositories")).await.unwrap();
        assert_eq!(browser.text("#shown").await, "Showing 1–1 of 1.");
        assert_eq!(browser.text("#repositories a.repo").await, "public/base");
        screenshot(&browser, "console_registry_bob_repositories").await;
        browser.client.goto(&format!("{console}/repositories/team/app")).await.unwrap();
        assert_eq!(browser.text("h1").await, "Not found");
        screenshot(&browser, "console_registry_bob_forbidden").await;
        browser.close().await;
    });
}
