//! A real browser: Debian's `chromium` (headless) driven through WebDriver by `fantoccini`,
//! with a `chromedriver` of its own on a random port and a fresh profile; both killed on
//! drop. Screenshots go to `target/screenshots/<test>-<page>.png` for reviewers.
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use tempfile::TempDir;

use super::ports::{free_port, Probe};
use super::process::{require_program, ChildGuard};
use super::temp_dir;

const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a page element is waited for.
const WAIT: Duration = Duration::from_secs(20);

pub struct Browser {
    pub client: Client,
    _driver: ChildGuard,
    _profile: TempDir,
    test: String,
}

/// Where screenshots go (created on first use).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("screenshots")
}

impl Browser {
    /// Starts chromedriver and a headless chromium session; `test` names the screenshots.
    pub async fn start(test: &str) -> Browser {
        let chromium = require_program("chromium");
        let chromedriver = require_program("chromedriver");
        let profile = temp_dir("chromium-profile");
        let port = free_port();
        let mut command = Command::new(chromedriver);
        command.arg(format!("--port={port}")).arg("--allowed-ips=127.0.0.1");
        let mut driver = ChildGuard::spawn("chromedriver", command, profile.path());
        let addr = format!("127.0.0.1:{port}");
        driver
            // chromedriver keeps connections open: a client that reads one answer (ureq).
            .wait_ready("GET /status", READY_TIMEOUT, || {
                match ureq::get(&format!("http://{addr}/status")).timeout(Duration::from_secs(2)).call() {
                    Ok(r) => match r.into_string() {
                        Ok(body) if body.contains("\"ready\":true") => Probe::Ready(()),
                        Ok(body) => Probe::NotYet(body),
                        Err(e) => Probe::NotYet(e.to_string()),
                    },
                    Err(e) => Probe::NotYet(e.to_string()),
                }
            })
            .unwrap_or_else(|e| panic!("{e}"));
        let data_dir = profile.path().join("profile");
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".to_string(),
            "--disable-gpu".to_string(),
            "--disable-quic".to_string(),
            "--no-first-run".to_string(),
            "--disable-background-networking".to_string(),
            "--disable-component-update".to_string(),
            "--disable-sync".to_string(),
            "--disable-dev-shm-usage".to_string(),
            "--window-size=1000,800".to_string(),
            format!("--user-data-dir={}", data_dir.display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_string(),
            serde_json::json!({"binary": chromium.display().to_string(), "args": args}),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://{addr}"))
            .await
            .unwrap_or_else(|e| panic!("cannot start a chromium session: {e}\n{}", driver.log()));
        Browser { client, _driver: driver, _profile: profile, test: test.to_string() }
    }

    /// Saves the current page as `target/screenshots/<test>-<page>.png`.
    pub async fn screenshot(&self, page: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{}-{page}.png", self.test));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The element `css`, waiting up to 20 s for it to appear.
    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on this page: {e}"))
    }

    /// The text of the element `css`, waiting for it to appear. An element found on the
    /// page a click is leaving goes stale before it is read: it is looked up again.
    pub async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.find(css).await.text().await {
                Ok(text) => return text,
                Err(e) if e.is_stale_element_reference() && Instant::now() < deadline => continue,
                Err(e) => panic!("cannot read {css}: {e}"),
            }
        }
    }

    /// The text of `css` once it reads `expected`, or what it last read after 20 s. For an
    /// element the page before a click had too (`#shown` on every list page): until the
    /// next page has loaded, the old one answers.
    pub async fn text_becomes(&self, css: &str, expected: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                match element.text().await {
                    Ok(text) if text == expected => return text,
                    Ok(text) => last = text,
                    Err(_) => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        last
    }

    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.find(css).await.click().await {
                Ok(()) => return,
                Err(e) if e.is_stale_element_reference() && Instant::now() < deadline => continue,
                Err(e) => panic!("cannot click {css}: {e}"),
            }
        }
    }

    pub async fn fill(&self, css: &str, value: &str) {
        self.find(css).await.send_keys(value).await.unwrap_or_else(|e| panic!("cannot fill {css}: {e}"));
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
