//! Child processes that cannot outlive their test, with captured output.

use std::env;
use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::ports::{wait_until, Probe};
use super::temp_dir;

/// Directories searched after `$PATH`: daemons such as slapd live in sbin,
/// which a non-root `$PATH` often lacks.
const EXTRA_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// How long stderr must stay the same size before [`ChildGuard::stderr`] reads it, and
/// the longest it waits for that.
const SETTLE: Duration = Duration::from_millis(40);
const SETTLE_MAX: Duration = Duration::from_secs(3);

fn file_size(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

/// How much of a log a panicking test prints, so failures stay readable.
const LOG_TAIL_ON_PANIC: usize = 8 * 1024;

/// Absolute path of the program `name`; panics if it is not installed.
pub fn require_program(name: &str) -> PathBuf {
    let path_dirs = env::var_os("PATH").map(|paths| env::split_paths(&paths).collect::<Vec<_>>()).unwrap_or_default();
    path_dirs
        .into_iter()
        .chain(EXTRA_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .unwrap_or_else(|| panic!("{name} not found: run scripts/install-deps.sh"))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// A running child that is killed and reaped on drop.
///
/// stdout and stderr go to `<log_dir>/<name>.stdout.log` / `.stderr.log`
/// (files, not pipes, so a chatty child can never block on a full pipe).
pub struct ChildGuard {
    name: String,
    child: Child,
    stdout_path: PathBuf,
    stderr_path: PathBuf,
    /// Set by `spawn_in_temp_dir`; removed after the child is killed.
    own_dir: Option<TempDir>,
}

impl ChildGuard {
    /// Starts `command` with its output captured in a temp dir of its own
    /// (for helpers that have no fixture dir to share).
    pub fn spawn_in_temp_dir(name: &str, command: Command) -> ChildGuard {
        let dir = temp_dir(name);
        let mut guard = Self::spawn(name, command, dir.path());
        guard.own_dir = Some(dir);
        guard
    }

    /// Starts `command` (stdin closed, output captured in `log_dir`).
    pub fn spawn(name: &str, mut command: Command, log_dir: &Path) -> ChildGuard {
        let stdout_path = log_dir.join(format!("{name}.stdout.log"));
        let stderr_path = log_dir.join(format!("{name}.stderr.log"));
        let create =
            |path: &Path| File::create(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        command.stdin(Stdio::null()).stdout(create(&stdout_path)).stderr(create(&stderr_path));
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        ChildGuard { name: name.to_owned(), child, stdout_path, stderr_path, own_dir: None }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Everything the child wrote to stdout so far.
    pub fn stdout(&self) -> String {
        read_lossy(&self.stdout_path)
    }

    /// Everything the child wrote to stderr so far, once it has stopped growing for a
    /// moment: registry-auth writes its log from a thread of its own, just after the
    /// answer that a line is about (its non-blocking log writer).
    pub fn stderr(&self) -> String {
        let deadline = std::time::Instant::now() + SETTLE_MAX;
        let mut size = file_size(&self.stderr_path);
        loop {
            std::thread::sleep(SETTLE);
            let now = file_size(&self.stderr_path);
            if now == size || std::time::Instant::now() > deadline {
                return read_lossy(&self.stderr_path);
            }
            size = now;
        }
    }

    /// Both streams, labelled, for assertion messages.
    pub fn log(&self) -> String {
        format!(
            "----- {name} stdout -----\n{}\n----- {name} stderr -----\n{}",
            self.stdout(),
            self.stderr(),
            name = self.name
        )
    }

    /// The exit status if the child has already exited.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Polls `probe` until ready. Fails early if the child exits, and the
    /// error carries the child's log.
    pub fn wait_ready<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut() -> Probe<T>,
    ) -> Result<T, String> {
        let name = self.name.clone();
        let child = &mut self.child;
        let outcome = wait_until(&format!("{name}: {what}"), timeout, || {
            if let Ok(Some(status)) = child.try_wait() {
                return Probe::Failed(format!("{name} exited early ({status})"));
            }
            probe()
        });
        outcome.map_err(|e| format!("{e}\n{}\n{}", process_state(self.id()), self.log()))
    }

    /// Kills the child (SIGKILL) and reaps it; a no-op once it has exited.
    pub fn kill(&mut self) {
        // Errors only mean the child is already gone.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
        // The test harness shows a failed test's captured output, so the
        // program's own view of the failure lands next to the panic message.
        if std::thread::panicking() {
            let log = self.log();
            let start = log.len().saturating_sub(LOG_TAIL_ON_PANIC);
            let start = (start..log.len()).find(|&i| log.is_char_boundary(i)).unwrap_or(0);
            eprintln!("{} (pid {}) log tail:\n{}", self.name, self.id(), &log[start..]);
        }
    }
}

fn read_lossy(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => format!("<cannot read {}: {e}>", path.display()),
    }
}

/// What the kernel says of a child that did not become ready: run state, and CPU time in
/// clock ticks (a node busy loading differs from one blocked on something).
fn process_state(pid: u32) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is the 1st, utime the
    // 12th, stime the 13th.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    match (fields.first(), fields.get(11), fields.get(12)) {
        (Some(state), Some(utime), Some(stime)) => {
            format!("pid {pid}: state {state}, utime {utime} ticks, stime {stime} ticks, wchan {wchan:?}")
        }
        _ => format!("pid {pid}: no /proc entry (exited)"),
    }
}
