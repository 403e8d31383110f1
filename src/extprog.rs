//! Runs the external programs of `ext_auth` / `ext_authz`: writes the request to stdin,
//! collects a bounded stdout, logs stderr, and returns the exit code. Limits docker_auth
//! lacks: a per-call timeout that kills the child's whole process group, a cap on
//! concurrent children, and a cap on stdout so a flooding program cannot exhaust memory.
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;

use crate::config::ext::ExtConfig;

/// Largest stdout accepted (a labels object is a few KiB at most).
pub const MAX_STDOUT: usize = 64 * 1024;
/// How much stderr is kept for the log; the rest is read and dropped.
const MAX_STDERR_LOGGED: usize = 4 * 1024;

/// A finished run: the exit code (`None` when killed by a signal) and stdout.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cmd run error: {0}")]
    Spawn(std::io::Error),
    #[error("cmd run error: {0}")]
    Io(std::io::Error),
    #[error("command did not finish within {0:?} and was killed")]
    Timeout(Duration),
    #[error("command wrote more than {MAX_STDOUT} bytes to stdout and was killed")]
    StdoutTooLarge,
}

/// One configured program, shared by all requests of one loaded config.
#[derive(Debug)]
pub struct Runner {
    /// `ext_auth` or `ext_authz`, for the log.
    section: &'static str,
    command: PathBuf,
    args: Vec<String>,
    timeout: Duration,
    slots: Arc<Semaphore>,
}

impl Runner {
    pub fn new(section: &'static str, config: &ExtConfig) -> Runner {
        Runner {
            section,
            command: config.command.clone(),
            args: config.args.clone(),
            timeout: config.timeout,
            slots: Arc::new(Semaphore::new(config.max_concurrency)),
        }
    }

    /// Runs the program once with `input` on stdin. Waiting for a free slot counts against
    /// the timeout, so a backlog fails closed instead of queueing without bound.
    pub async fn run(&self, input: &[u8]) -> Result<Finished, RunError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let Ok(Ok(_permit)) = tokio::time::timeout_at(deadline, self.slots.acquire()).await else {
            return Err(RunError::Timeout(self.timeout));
        };
        let mut child = self.spawn()?;
        let pid = child.id();
        let result = match tokio::time::timeout_at(deadline, self.drive(&mut child, input)).await {
            Ok(result) => result,
            Err(_) => Err(RunError::Timeout(self.timeout)),
        };
        if result.is_err() {
            kill_group(pid, &mut child).await;
        }
        result
    }

    fn spawn(&self) -> Result<Child, RunError> {
        Command::new(&self.command)
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout also kills what a script started.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(RunError::Spawn)
    }

    async fn drive(&self, child: &mut Child, input: &[u8]) -> Result<Finished, RunError> {
        let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
        let write = async {
            if let Some(mut stdin) = stdin {
                // A program that exits without reading its stdin is not an error.
                let _ = stdin.write_all(input).await;
            }
            Ok::<(), RunError>(())
        };
        let (_, stdout, stderr) = tokio::try_join!(write, read_capped(stdout), read_stderr(stderr))?;
        let status = child.wait().await.map_err(RunError::Io)?;
        self.log_stderr(&stderr, status.code());
        Ok(Finished { code: status.code(), stdout })
    }

    fn log_stderr(&self, stderr: &[u8], code: Option<i32>) {
        let text = String::from_utf8_lossy(stderr);
        let text = text.trim();
        if !text.is_empty() {
            let command = self.command.display().to_string();
            tracing::warn!(section = self.section, %command, code = ?code, stderr = %text, "external program wrote to stderr");
        }
    }
}

/// Stdout, failing as soon as it exceeds [`MAX_STDOUT`].
async fn read_capped(stdout: Option<impl AsyncRead + Unpin>) -> Result<Vec<u8>, RunError> {
    let mut buffer = Vec::new();
    let Some(stdout) = stdout else { return Ok(buffer) };
    let limit = u64::try_from(MAX_STDOUT + 1).unwrap_or(u64::MAX);
    stdout.take(limit).read_to_end(&mut buffer).await.map_err(RunError::Io)?;
    if buffer.len() > MAX_STDOUT {
        return Err(RunError::StdoutTooLarge);
    }
    Ok(buffer)
}

/// The start of stderr; the rest is drained so the child never blocks on a full pipe.
async fn read_stderr(stderr: Option<impl AsyncRead + Unpin>) -> Result<Vec<u8>, RunError> {
    let mut kept = Vec::new();
    let Some(mut stderr) = stderr else { return Ok(kept) };
    let mut chunk = [0u8; 4096];
    loop {
        let n = stderr.read(&mut chunk).await.map_err(RunError::Io)?;
        if n == 0 {
            return Ok(kept);
        }
        let room = MAX_STDERR_LOGGED.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
    }
}

/// Kills the child's process group (the child and anything it started), then reaps it.
async fn kill_group(pid: Option<u32>, child: &mut Child) {
    let group = pid.and_then(|p| i32::try_from(p).ok()).and_then(rustix::process::Pid::from_raw);
    if let Some(group) = group {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
    let _ = child.kill().await;
}
