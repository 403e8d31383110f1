//! Config problems: each names its YAML path and line, says what is wrong and how to fix it.
use std::fmt;

/// One problem found while loading a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The YAML path, e.g. `acl[3].match.name`; empty for the whole file.
    pub path: String,
    /// 1-based line, 0 when unknown (e.g. a missing top-level section).
    pub line: usize,
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub hint: Option<String>,
    /// A warning that `check-config --strict` reports as an error (e.g. a duplicate key).
    pub error_when_strict: bool,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match (self.path.is_empty(), self.line) {
            (true, 0) => {}
            (true, line) => write!(f, " (line {line})")?,
            (false, 0) => write!(f, " (at {})", self.path)?,
            (false, line) => write!(f, " (at {}, line {line})", self.path)?,
        }
        if let Some(hint) = &self.hint {
            write!(f, "; fix: {hint}")?;
        }
        Ok(())
    }
}

/// Errors and warnings collected over one whole load, so all are reported at once.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn error(&mut self, path: impl Into<String>, line: usize, message: impl Into<String>) -> &mut Diagnostic {
        push(
            &mut self.errors,
            Diagnostic { path: path.into(), line, message: message.into(), hint: None, error_when_strict: false },
        )
    }

    pub fn warn(&mut self, path: impl Into<String>, line: usize, message: impl Into<String>) -> &mut Diagnostic {
        push(
            &mut self.warnings,
            Diagnostic { path: path.into(), line, message: message.into(), hint: None, error_when_strict: false },
        )
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

impl Diagnostic {
    pub fn hint(&mut self, hint: impl Into<String>) {
        self.hint = Some(hint.into());
    }

    /// Marks a warning as an error under `check-config --strict`.
    pub fn error_when_strict(&mut self) {
        self.error_when_strict = true;
    }
}

fn push(list: &mut Vec<Diagnostic>, diag: Diagnostic) -> &mut Diagnostic {
    let index = list.len();
    list.push(diag);
    &mut list[index]
}

/// The error returned by a failed load: every problem, in docker_auth's check order.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub diagnostics: Diagnostics,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.diagnostics.errors.len();
        write!(f, "invalid config {}: {count} error{}", self.file, if count == 1 { "" } else { "s" })?;
        for diag in &self.diagnostics.errors {
            write!(f, "\n  - {diag}")?;
        }
        Ok(())
    }
}
