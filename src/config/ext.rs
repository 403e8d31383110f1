//! The `ext_auth:` and `ext_authz:` sections: an external program, its arguments, and our
//! safety limits (per-call timeout, concurrent children). The command is resolved in PATH
//! here, at load, as docker_auth does (`exec.LookPath`), so a typo stops the start.
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::diag::Diagnostics;
use super::reader::Section;

const KNOWN: &[&str] = &["command", "args", "timeout", "max_concurrency"];
/// A hung program must not hold a token request (and a client) forever.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_MAX_CONCURRENCY: usize = 16;

/// One external-program backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtConfig {
    /// The resolved path of `command`.
    pub command: PathBuf,
    pub args: Vec<String>,
    /// Our addition: the child is killed after this long and the request fails closed.
    pub timeout: Duration,
    /// Our addition: at most this many children run at once; others wait (within `timeout`).
    pub max_concurrency: usize,
}

/// Reads `ext_auth` or `ext_authz` (`section`). `None` when absent or invalid.
pub fn read(root: &mut Section<'_>, section: &str, diags: &mut Diagnostics) -> Option<ExtConfig> {
    let node = root.node(section)?;
    let mut s = Section::of(node, section, diags)?;
    let command_line = s.node("command").map_or(s.line, |n| n.line);
    let command = s.string("command", diags).unwrap_or_default();
    let args = s.string_list("args", diags).unwrap_or_default();
    let timeout = read_timeout(&mut s, diags);
    let max_concurrency = read_max_concurrency(&mut s, diags);
    s.warn_unknown(KNOWN, diags);
    let command = resolve_checked(&command, (&s.child_path("command"), command_line), section, diags)?;
    Some(ExtConfig { command, args, timeout: timeout?, max_concurrency: max_concurrency? })
}

/// `at` is the YAML path and line of `command` (of the section when it is missing).
fn resolve_checked(command: &str, at: (&str, usize), section: &str, diags: &mut Diagnostics) -> Option<PathBuf> {
    let (path, line) = at;
    if command.is_empty() {
        diags
            .error(path, line, format!("bad {section} config: command is not set"))
            .hint("set command: to the program to run, e.g. /usr/local/bin/registry-auth-hook");
        return None;
    }
    match resolve_command(command) {
        Ok(resolved) => Some(resolved),
        Err(reason) => {
            diags
                .error(path, line, format!("bad {section} config: invalid command {command:?}: {reason}"))
                .hint("give an absolute path to an executable file, or a program name found in PATH");
            None
        }
    }
}

fn read_timeout(s: &mut Section<'_>, diags: &mut Diagnostics) -> Option<Duration> {
    if !s.has_value("timeout") {
        return Some(DEFAULT_TIMEOUT);
    }
    let line = s.line;
    let nanos = s.duration_nanos("timeout", diags)?;
    if nanos <= 0 {
        diags
            .error(s.child_path("timeout"), line, "timeout must be positive")
            .hint("set timeout: to how long one call may take, e.g. \"10s\"");
        return None;
    }
    Some(Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
}

fn read_max_concurrency(s: &mut Section<'_>, diags: &mut Diagnostics) -> Option<usize> {
    let Some(value) = s.int("max_concurrency", diags) else {
        return (!s.has_value("max_concurrency")).then_some(DEFAULT_MAX_CONCURRENCY);
    };
    match usize::try_from(value) {
        Ok(n) if (1..=4096).contains(&n) => Some(n),
        _ => {
            diags
                .error(
                    s.child_path("max_concurrency"),
                    s.line,
                    format!("max_concurrency must be 1 to 4096, got {value}"),
                )
                .hint("set how many copies of the program may run at once, e.g. 16");
            None
        }
    }
}

/// Go's `exec.LookPath`: a name with a slash is used as is, others are searched in PATH.
pub fn resolve_command(command: &str) -> Result<PathBuf, String> {
    if command.contains('/') {
        let path = Path::new(command);
        return if is_executable(path) {
            Ok(path.to_path_buf())
        } else {
            Err(format!("{command} is not an executable file"))
        };
    }
    let search = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&search)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(command))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| "executable file not found in $PATH".to_string())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse;

    fn read_text(text: &str) -> (Option<ExtConfig>, Diagnostics) {
        let root = parse(text).unwrap();
        let mut diags = Diagnostics::default();
        let mut top = Section::of(&root, "", &mut diags).unwrap();
        (read(&mut top, "ext_auth", &mut diags), diags)
    }

    #[test]
    fn command_is_found_in_path_with_defaults() {
        let (ext, diags) = read_text("ext_auth:\n  command: sh\n  args: [\"-c\", \"exit 0\"]\n");
        let ext = ext.unwrap();
        assert!(diags.errors.is_empty(), "{diags:?}");
        assert!(ext.command.is_absolute() && ext.command.ends_with("sh"));
        assert_eq!(ext.args, ["-c", "exit 0"]);
        assert_eq!((ext.timeout, ext.max_concurrency), (DEFAULT_TIMEOUT, DEFAULT_MAX_CONCURRENCY));
    }

    #[test]
    fn missing_and_unknown_commands_are_errors_with_docker_auth_text() {
        let (ext, diags) = read_text("ext_auth:\n  args: []\n");
        assert!(ext.is_none());
        assert_eq!(diags.errors[0].message, "bad ext_auth config: command is not set");
        let (_, diags) = read_text("ext_auth:\n  command: no-such-program-xyz\n");
        assert!(diags.errors[0].message.starts_with("bad ext_auth config: invalid command \"no-such-program-xyz\""));
        assert_eq!(diags.errors[0].line, 2);
        let (_, diags) = read_text("ext_auth:\n  command: /etc/passwd\n");
        assert!(diags.errors[0].message.contains("is not an executable file"));
    }

    #[test]
    fn limits_are_validated() {
        let (ext, _) = read_text("ext_auth:\n  command: sh\n  timeout: 1500ms\n  max_concurrency: 2\n");
        let ext = ext.unwrap();
        assert_eq!((ext.timeout, ext.max_concurrency), (Duration::from_millis(1500), 2));
        let (ext, diags) = read_text("ext_auth:\n  command: sh\n  timeout: 0s\n");
        assert!(ext.is_none());
        assert_eq!(diags.errors[0].path, "ext_auth.timeout");
        let (ext, diags) = read_text("ext_auth:\n  command: sh\n  max_concurrency: 0\n");
        assert!(ext.is_none());
        assert_eq!(diags.errors[0].path, "ext_auth.max_concurrency");
    }
}
