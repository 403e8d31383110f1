//! The `casbin_authz:` section: docker_auth's `model_path` and `policy_path`. The files are
//! read and compiled when the state is built (`crate::authz::casbin`), so `check-config`
//! and reload see their errors too.
use std::path::PathBuf;

use super::diag::Diagnostics;
use super::reader::Section;

const KNOWN: &[&str] = &["model_path", "policy_path"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasbinConfig {
    /// The casbin model (`.conf`), e.g. docker_auth's `casbin_authz_model.conf`.
    pub model_path: PathBuf,
    /// The policy (`.csv`), read with Go's CSV rules as docker_auth's casbin does.
    pub policy_path: PathBuf,
    /// Line of the section, for errors found when the files are read.
    pub line: usize,
}

/// Reads `casbin_authz`. `None` when absent or invalid.
pub fn read(root: &mut Section<'_>, diags: &mut Diagnostics) -> Option<CasbinConfig> {
    let node = root.node("casbin_authz")?;
    let mut s = Section::of(node, "casbin_authz", diags)?;
    let model_path = required_path(&mut s, "model_path", "the casbin model, e.g. /config/casbin_model.conf", diags);
    let policy_path = required_path(&mut s, "policy_path", "the policy CSV, e.g. /config/casbin_policy.csv", diags);
    s.warn_unknown(KNOWN, diags);
    Some(CasbinConfig { model_path: model_path?, policy_path: policy_path?, line: node.line })
}

fn required_path(s: &mut Section<'_>, key: &str, what: &str, diags: &mut Diagnostics) -> Option<PathBuf> {
    match s.string(key, diags).filter(|p| !p.is_empty()) {
        Some(path) => Some(PathBuf::from(path)),
        None => {
            diags
                .error(s.child_path(key), s.line, format!("casbin_authz.{key} is required"))
                .hint(format!("set {key}: to {what}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse;

    fn read_text(text: &str) -> (Option<CasbinConfig>, Diagnostics) {
        let root = parse(text).unwrap();
        let mut diags = Diagnostics::default();
        let mut top = Section::of(&root, "", &mut diags).unwrap();
        (read(&mut top, &mut diags), diags)
    }

    #[test]
    fn both_paths_are_required() {
        let (c, diags) = read_text("casbin_authz:\n  model_path: m.conf\n  policy_path: p.csv\n");
        assert_eq!(c.unwrap().policy_path, PathBuf::from("p.csv"));
        assert!(diags.errors.is_empty());
        let (c, diags) = read_text("casbin_authz:\n  model_path: m.conf\n");
        assert!(c.is_none());
        assert_eq!(diags.errors[0].path, "casbin_authz.policy_path");
        assert_eq!(diags.errors[0].message, "casbin_authz.policy_path is required");
    }
}
