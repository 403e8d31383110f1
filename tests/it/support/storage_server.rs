//! A static HTTP server over a registry's filesystem storage (`tests/storage-server/serve.py`):
//! what distribution's `redirect` storage middleware sends blob reads to, as S3 would be.
//! It records each request's headers (so a test can prove no token reached storage) and
//! can be told to misbehave (loop, too big, wrong bytes, a refused presigned URL).
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::ports::Probe;
use super::process::{require_program, ChildGuard};
use super::temp_dir;

/// How the server answers, from the next request on.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Serve,
    Loop,
    Big,
    Wrong,
    Signed,
}

/// The query the `Signed` mode adds (a stand-in for a presigned URL's secret).
pub const SIGNATURE: &str = "X-Amz-Signature=storage-secret-signature";

pub struct StorageServer {
    // Before `dir`: the server stops before its files vanish.
    process: ChildGuard,
    port: u16,
    dir: TempDir,
}

/// One recorded request.
#[derive(Debug, serde::Deserialize)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Lower-case header names, each with its values.
    pub headers: std::collections::HashMap<String, Vec<String>>,
}

impl StorageServer {
    /// Serves `root` (a registry's `rootdirectory`) on 127.0.0.1 and a free port, also under
    /// `/<prefix>/` when `prefix` is not empty.
    pub fn start(root: &Path, prefix: &str) -> StorageServer {
        let dir = temp_dir("storage-server");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/storage-server/serve.py");
        let mut command = Command::new(require_program("python3"));
        command
            .arg(script)
            .arg("--directory")
            .arg(root)
            .arg("--log")
            .arg(dir.path().join("requests.jsonl"))
            .arg("--mode-file")
            .arg(dir.path().join("mode"))
            .arg("--strip-prefix")
            .arg(prefix)
            .env("PYTHONDONTWRITEBYTECODE", "1");
        let mut process = ChildGuard::spawn("storage-server", command, dir.path());
        let port = process
            .wait_ready("prints its port", Duration::from_secs(20), || {
                let out = process_stdout(dir.path());
                match out.lines().find_map(|l| l.strip_prefix("PORT ")) {
                    Some(port) => port.trim().parse().map_or_else(|e| Probe::Failed(format!("{e}")), Probe::Ready),
                    None => Probe::NotYet("no PORT line yet".into()),
                }
            })
            .unwrap_or_else(|e| panic!("{e}"));
        StorageServer { process, port, dir }
    }

    /// `http://127.0.0.1:<port>/`, the middleware's `baseurl`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    pub fn set_mode(&self, mode: Mode) {
        let word = format!("{mode:?}").to_ascii_lowercase();
        std::fs::write(self.dir.path().join("mode"), word).unwrap();
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("requests.jsonl")
    }

    pub fn log(&self) -> String {
        self.process.log()
    }
}

fn process_stdout(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("storage-server.stdout.log")).unwrap_or_default()
}
