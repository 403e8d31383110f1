//! The console's registry side (issue 14 items 2, 3 and 7's data): the registry reader
//! against the real registry (2.8.2) holding images pushed by skopeo — single-platform OCI
//! images and a multi-platform OCI index — and, on the real binary, the My access and
//! Repositories pages at the HTTP level and in a real browser.
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use registry_auth::registry_reader::{ReadError, ReaderConfig, ReaderLimits, RegistryReader};
use registry_auth::token::{KidMode, SigningKey, TokenIssuer, TokenOptions};
use tempfile::TempDir;

use crate::common::{KeyKind, Keys};
use crate::support::oci::{write_oci_index, write_oci_layout};
use crate::support::registry::{Registry, RegistryAuth};
use crate::support::skopeo::{docker_ref, Creds, Skopeo};
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

/// A token registry on the pushed storage trusting `cert` (the module's key by default).
fn registry_trusting(cert: &Path) -> Registry {
    let auth = RegistryAuth {
        realm: "http://127.0.0.1:9/auth".into(),
        service: SERVICE.into(),
        issuer: ISSUER.into(),
        rootcertbundle: cert.to_path_buf(),
    };
    crate::support::registry::Registry::start_version(
        crate::support::registry::Version::V2_8_2,
        auth.into(),
        Some(&pushed().data),
    )
}

fn issuer(keys: &Keys) -> TokenIssuer {
    let options = TokenOptions { issuer: ISSUER.into(), expiration_secs: 900, kid_mode: KidMode::Libtrust, x5c: false };
    TokenIssuer::new(options, SigningKey::load(&keys.cert, &keys.key).unwrap())
}

fn new_reader(url: &str, ca_pem: Option<Vec<u8>>, limits: ReaderLimits) -> Arc<RegistryReader> {
    let config = ReaderConfig { url: url::Url::parse(url).unwrap(), ca_pem, service: None, limits };
    Arc::new(RegistryReader::new(config).unwrap())
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

/// Catalog (several pages, then cut at a cap), tags, a single image's and a multi-platform
/// index's details, all with self-minted tokens the real registry accepts.
#[test]
fn reader_reads_catalog_tags_and_tag_details() {
    let pushed = pushed();
    let registry = registry_trusting(&keys().cert);
    let issuer = issuer(keys());
    let limits = ReaderLimits { page_size: 2, ..ReaderLimits::default() };
    let reader = new_reader(&registry.url(), None, limits.clone());
    block_on(async {
        let catalog = reader.catalog(&issuer).await.unwrap_or_else(|e| panic!("{e}\n{}", registry.log()));
        assert_eq!(catalog.repositories, REPOSITORIES);
        assert!(!catalog.truncated);
        assert_eq!(reader.service().as_deref(), Some(SERVICE), "the audience comes from the challenge");

        let tags = reader.tags(&issuer, "team/app").await.unwrap();
        assert_eq!(tags.tags, ["v1", "v2"]);

        let app = reader.tag_detail(&issuer, "team/app", "v1").await.unwrap();
        assert_eq!(app.digest, pushed.app_digest);
        assert_eq!(app.size, pushed.app_size);
        assert_eq!(app.images.len(), 1);
        assert_eq!(app.images[0].platform.to_string(), "linux/amd64");
        assert_eq!(app.media_type, "application/vnd.oci.image.manifest.v1+json");

        let multi = reader.tag_detail(&issuer, "team/multi", "v1").await.unwrap();
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
}

/// A catalog read is reused for its time to live: many pages asking within it walk the
/// registry once.
#[test]
fn reader_caches_the_catalog_briefly() {
    let registry = registry_trusting(&keys().cert);
    let issuer = issuer(keys());
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

/// Clear errors, never a panic: nothing listening, a registry that trusts another key
/// (401 on our token), and TLS with a certificate the reader does not trust.
#[test]
fn reader_errors_say_what_is_wrong() {
    let issuer = issuer(keys());
    let closed = format!("http://127.0.0.1:{}", crate::support::ports::free_port());
    let err = block_on(new_reader(&closed, None, ReaderLimits::default()).catalog(&issuer)).unwrap_err();
    assert!(matches!(err.kind(), ReadError::Unreachable(_)), "{err}");

    let other = Keys::new(KeyKind::EcP256);
    let registry = registry_trusting(&other.cert);
    let err = block_on(new_reader(&registry.url(), None, ReaderLimits::default()).catalog(&issuer)).unwrap_err();
    assert!(matches!(err.kind(), ReadError::Unauthorized(_)), "{err}");
    assert!(err.to_string().contains("invalid_token"), "{err}");

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
