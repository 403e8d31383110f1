//! The `ldap_auth:` section: docker_auth's keys (parity.md §5.3) plus our group search,
//! timeouts and pool size. Files it names (`bind_password_file`, `ca_certificate`) are read
//! here, at load and on every reload, so a broken file stops start-up instead of every login.
use std::path::PathBuf;
use std::time::Duration;

use super::diag::Diagnostics;
use super::reader::{parse_go_duration, Section};
use crate::secret::Secret;

/// How the connection is protected (`tls:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdapTls {
    /// `""` or `none`: plain LDAP.
    None,
    /// `starttls`: plain connect, then the StartTLS upgrade before any bind.
    StartTls,
    /// `always`: LDAPS.
    Always,
}

/// One `labels:` entry: a label filled from a user attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapLabel {
    pub name: String,
    pub attribute: String,
    pub parse_cn: bool,
    pub lower_case: bool,
}

/// Our group search (not in docker_auth): groups whose `group_filter` matches the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSearch {
    pub base: String,
    /// With `${dn}` (the user's DN) and `${account}`, both filter-escaped.
    pub filter: String,
    /// The group attribute whose values become label values (default `cn`).
    pub attribute: String,
    /// The label the values go to (default `groups`).
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct LdapConfig {
    pub line: usize,
    /// `host:port` as written.
    pub addr: String,
    pub tls: LdapTls,
    pub insecure_tls_skip_verify: bool,
    /// PEM text of `ca_certificate`; `None` means the system roots.
    pub ca_certificate: Option<Vec<u8>>,
    pub bind_dn: Option<String>,
    /// The trimmed contents of `bind_password_file`.
    pub bind_password: Option<Secret>,
    pub initial_bind_as_user: bool,
    pub base: String,
    pub filter: String,
    pub labels: Vec<LdapLabel>,
    pub groups: Option<GroupSearch>,
    pub connect_timeout: Duration,
    pub operation_timeout: Duration,
    /// Idle service-account connections kept for reuse.
    pub pool_size: usize,
}

const KEYS: &[&str] = &[
    "addr",
    "tls",
    "insecure_tls_skip_verify",
    "ca_certificate",
    "bind_dn",
    "bind_password_file",
    "initial_bind_as_user",
    "base",
    "filter",
    "labels",
    "group_base",
    "group_filter",
    "group_attribute",
    "group_label",
    "connect_timeout",
    "operation_timeout",
    "pool_size",
];
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_POOL_SIZE: i64 = 4;
pub const DEFAULT_GROUP_FILTER: &str = "(member=${dn})";

/// Reads `ldap_auth:`; `None` when absent or null (not configured) or when it has errors.
pub fn read(root: &mut Section<'_>, diags: &mut Diagnostics) -> Option<LdapConfig> {
    let node = root.node("ldap_auth")?;
    let mut s = Section::of(node, "ldap_auth", diags)?;
    let errors_before = diags.errors.len();
    let addr = required(&mut s, "addr", "set addr: ldap.example.com:389 (host:port)", diags);
    let tls = read_tls(&mut s, addr.as_deref().unwrap_or(""), diags);
    let insecure_tls_skip_verify = s.bool("insecure_tls_skip_verify", diags).unwrap_or(false);
    let ca_certificate = read_ca(&mut s, diags);
    let bind_dn = s.string("bind_dn", diags).filter(|dn| !dn.is_empty());
    let initial_bind_as_user = s.bool("initial_bind_as_user", diags).unwrap_or(false);
    let bind_password = read_password(&mut s, bind_dn.is_some() && !initial_bind_as_user, diags);
    let base = s.string("base", diags).unwrap_or_default();
    let filter = required(&mut s, "filter", "set filter: (&(uid=${account})(objectClass=person))", diags);
    let labels = read_labels(&mut s, diags);
    let groups = read_groups(&mut s, diags);
    let connect_timeout = read_duration(&mut s, "connect_timeout", DEFAULT_CONNECT_TIMEOUT, diags);
    let operation_timeout = read_duration(&mut s, "operation_timeout", DEFAULT_OPERATION_TIMEOUT, diags);
    let pool_size = read_pool_size(&mut s, diags);
    check_initial_bind(initial_bind_as_user, bind_dn.as_deref(), s.line, diags);
    s.warn_unknown(KEYS, diags);
    if diags.errors.len() > errors_before {
        return None;
    }
    Some(LdapConfig {
        line: s.line,
        addr: addr?,
        tls,
        insecure_tls_skip_verify,
        ca_certificate,
        bind_dn,
        bind_password,
        initial_bind_as_user,
        base,
        filter: filter?,
        labels,
        groups,
        connect_timeout,
        operation_timeout,
        pool_size,
    })
}

/// Without `${account}` every user would bind as the same DN: surely a mistake.
fn check_initial_bind(initial_bind_as_user: bool, bind_dn: Option<&str>, line: usize, diags: &mut Diagnostics) {
    if initial_bind_as_user && !bind_dn.is_some_and(|dn| dn.contains("${account}")) {
        diags
            .error("ldap_auth.bind_dn", line, "initial_bind_as_user needs a bind_dn with ${account}")
            .hint("e.g. bind_dn: \"uid=${account},ou=people,dc=example,dc=com\"");
    }
}

fn required(s: &mut Section<'_>, key: &str, hint: &str, diags: &mut Diagnostics) -> Option<String> {
    let value = s.string(key, diags).filter(|v| !v.is_empty());
    if value.is_none() {
        diags.error(s.child_path(key), s.line, format!("ldap_auth.{key} is required")).hint(hint);
    }
    value
}

/// docker_auth: an unset or empty `tls` with an address ending in `:636` means LDAPS.
fn read_tls(s: &mut Section<'_>, addr: &str, diags: &mut Diagnostics) -> LdapTls {
    let line = s.node("tls").map_or(s.line, |n| n.line);
    match s.string("tls", diags).unwrap_or_default().as_str() {
        "" if addr.ends_with(":636") => LdapTls::Always,
        "" | "none" => LdapTls::None,
        "starttls" => LdapTls::StartTls,
        "always" => LdapTls::Always,
        other => {
            diags
                .error(
                    "ldap_auth.tls",
                    line,
                    format!("ldap_auth.tls must be \"\", none, starttls or always, found {other:?}"),
                )
                .hint(
                    "use tls: always for LDAPS (port 636), starttls to upgrade a plain connection, none for plain LDAP",
                );
            LdapTls::None
        }
    }
}

fn read_ca(s: &mut Section<'_>, diags: &mut Diagnostics) -> Option<Vec<u8>> {
    let line = s.node("ca_certificate").map_or(s.line, |n| n.line);
    let path = PathBuf::from(s.string("ca_certificate", diags).filter(|p| !p.is_empty())?);
    let pem = match std::fs::read(&path) {
        Ok(pem) => pem,
        Err(e) => {
            diags
                .error("ldap_auth.ca_certificate", line, format!("Error loading CA File: {}: {e}", path.display()))
                .hint("point ca_certificate at a readable PEM file with the directory's CA certificate");
            return None;
        }
    };
    let certs = rustls_pemfile::certs(&mut pem.as_slice()).filter(Result::is_ok).count();
    if certs == 0 {
        diags
            .error(
                "ldap_auth.ca_certificate",
                line,
                format!("Error loading CA File: {} has no PEM certificate", path.display()),
            )
            .hint("the file must contain -----BEGIN CERTIFICATE----- blocks");
        return None;
    }
    Some(pem)
}

/// The service password, trimmed as docker_auth does; only required when it will be used.
fn read_password(s: &mut Section<'_>, needed: bool, diags: &mut Diagnostics) -> Option<Secret> {
    let line = s.node("bind_password_file").map_or(s.line, |n| n.line);
    let Some(path) = s.string("bind_password_file", diags).filter(|p| !p.is_empty()) else {
        if needed {
            diags
                .error("ldap_auth.bind_password_file", line, "bind_dn is set but bind_password_file is not")
                .hint("put the service account's password in a file (mode 0600) and name it in bind_password_file");
        }
        return None;
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(Secret::new(text.trim())),
        Err(e) => {
            diags
                .error("ldap_auth.bind_password_file", line, format!("cannot read bind_password_file {path}: {e}"))
                .hint("check the path and that the file is readable by this user");
            None
        }
    }
}

fn read_labels(s: &mut Section<'_>, diags: &mut Diagnostics) -> Vec<LdapLabel> {
    let mut labels = Vec::new();
    let Some(node) = s.node("labels") else { return labels };
    let Some(mut section) = Section::of(node, "ldap_auth.labels", diags) else { return labels };
    for (name, label_node) in section.entries() {
        let path = format!("ldap_auth.labels.{name}");
        let Some(mut label) = Section::of(label_node, &path, diags) else { continue };
        let attribute = label.string("attribute", diags).filter(|a| !a.is_empty());
        let parse_cn = label.bool("parse_cn", diags).unwrap_or(false);
        let lower_case = label.bool("lower_case", diags).unwrap_or(false);
        label.warn_unknown(&["attribute", "parse_cn", "lower_case"], diags);
        match attribute {
            Some(attribute) => labels.push(LdapLabel { name: name.clone(), attribute, parse_cn, lower_case }),
            None => {
                diags
                    .error(&path, label_node.line, format!("Label {name} is missing 'attribute' to map from"))
                    .hint("e.g. attribute: memberOf");
            }
        }
    }
    labels
}

/// Group search is on when `group_base` is set; the other keys have defaults.
fn read_groups(s: &mut Section<'_>, diags: &mut Diagnostics) -> Option<GroupSearch> {
    let base = s.string("group_base", diags).filter(|b| !b.is_empty());
    let filter = s.string("group_filter", diags).filter(|f| !f.is_empty());
    let attribute = s.string("group_attribute", diags).filter(|a| !a.is_empty());
    let label = s.string("group_label", diags).filter(|l| !l.is_empty());
    if base.is_none() && (filter.is_some() || attribute.is_some() || label.is_some()) {
        diags
            .error("ldap_auth.group_base", s.line, "group_filter, group_attribute or group_label need group_base")
            .hint("set group_base: ou=groups,dc=example,dc=com to turn the group search on");
    }
    Some(GroupSearch {
        base: base?,
        filter: filter.unwrap_or_else(|| DEFAULT_GROUP_FILTER.to_string()),
        attribute: attribute.unwrap_or_else(|| "cn".to_string()),
        label: label.unwrap_or_else(|| "groups".to_string()),
    })
}

fn read_duration(s: &mut Section<'_>, key: &str, default: Duration, diags: &mut Diagnostics) -> Duration {
    let line = s.node(key).map_or(s.line, |n| n.line);
    let Some(text) = s.string(key, diags) else { return default };
    match parse_go_duration(&text) {
        Some(d) if !d.is_zero() => d,
        _ => {
            diags
                .error(s.child_path(key), line, format!("ldap_auth.{key} must be a positive duration, found {text:?}"))
                .hint("write a Go duration such as 5s, 500ms or 1m");
            default
        }
    }
}

fn read_pool_size(s: &mut Section<'_>, diags: &mut Diagnostics) -> usize {
    let line = s.node("pool_size").map_or(s.line, |n| n.line);
    let size = s.int("pool_size", diags).unwrap_or(DEFAULT_POOL_SIZE);
    match usize::try_from(size) {
        Ok(size) if (1..=64).contains(&size) => size,
        _ => {
            diags
                .error("ldap_auth.pool_size", line, format!("ldap_auth.pool_size must be 1 to 64, found {size}"))
                .hint("the default, 4, suits most directories");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::yaml::parse;

    fn load(yaml: &str) -> (Option<LdapConfig>, Diagnostics) {
        let root = parse(yaml).unwrap();
        let mut diags = Diagnostics::default();
        let mut top = Section::of(&root, "", &mut diags).unwrap();
        (read(&mut top, &mut diags), diags)
    }

    const BASE: &str = "ldap_auth:\n  addr: ldap.example.com:389\n  filter: (uid=${account})\n";

    #[test]
    fn tls_modes_and_port_636() {
        let tls = |extra: &str, addr: &str| {
            let yaml = format!("ldap_auth:\n  addr: {addr}\n  filter: (uid=${{account}})\n{extra}");
            load(&yaml).0.map(|c| c.tls)
        };
        assert_eq!(tls("", "h:389"), Some(LdapTls::None));
        assert_eq!(tls("", "h:636"), Some(LdapTls::Always));
        assert_eq!(tls("  tls: \"\"\n", "h:636"), Some(LdapTls::Always));
        assert_eq!(tls("  tls: none\n", "h:636"), Some(LdapTls::None));
        assert_eq!(tls("  tls: starttls\n", "h:389"), Some(LdapTls::StartTls));
        assert_eq!(tls("  tls: always\n", "h:389"), Some(LdapTls::Always));
        let (config, diags) = load(&format!("{BASE}  tls: ssl\n"));
        assert!(config.is_none());
        assert_eq!(diags.errors[0].path, "ldap_auth.tls");
        assert_eq!(diags.errors[0].line, 4);
    }

    #[test]
    fn defaults_and_required_keys() {
        let (config, _) = load(BASE);
        let config = config.unwrap();
        assert_eq!(config.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(config.pool_size, 4);
        assert!(config.groups.is_none() && config.bind_dn.is_none());
        let (config, diags) = load("ldap_auth:\n  base: dc=x\n");
        assert!(config.is_none());
        let paths: Vec<&str> = diags.errors.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(paths, ["ldap_auth.addr", "ldap_auth.filter"]);
        let (config, diags) = load(&format!("{BASE}  initial_bind_as_user: true\n  bind_dn: cn=fixed\n"));
        assert!(config.is_none());
        assert_eq!(diags.errors[0].path, "ldap_auth.bind_dn");
    }

    #[test]
    fn label_without_attribute_bad_duration_and_missing_password_are_errors() {
        let yaml = format!(
            "{BASE}  bind_dn: cn=r\n  operation_timeout: 10\n  labels:\n    title: {{parse_cn: true}}\n  group_label: g\n"
        );
        let (config, diags) = load(&yaml);
        assert!(config.is_none());
        let messages: Vec<String> = diags.errors.iter().map(|d| d.message.clone()).collect();
        assert!(messages.iter().any(|m| m.contains("bind_password_file is not")), "{messages:?}");
        assert!(messages.iter().any(|m| m == "Label title is missing 'attribute' to map from"), "{messages:?}");
        assert!(messages.iter().any(|m| m.contains("positive duration")), "{messages:?}");
        assert!(messages.iter().any(|m| m.contains("need group_base")), "{messages:?}");
    }

    #[test]
    fn password_file_is_trimmed_and_group_defaults_apply() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "  s3cret\n").unwrap();
        let yaml = format!(
            "{BASE}  bind_dn: cn=r\n  bind_password_file: {}\n  group_base: ou=g\n  connect_timeout: 1m30s\n",
            file.display()
        );
        let (config, diags) = load(&yaml);
        let config = config.unwrap_or_else(|| panic!("{:?}", diags.errors));
        assert_eq!(config.bind_password.unwrap().expose(), "s3cret");
        assert_eq!(config.connect_timeout, Duration::from_secs(90));
        let groups = config.groups.unwrap();
        assert_eq!(
            (groups.filter.as_str(), groups.attribute.as_str(), groups.label.as_str()),
            (DEFAULT_GROUP_FILTER, "cn", "groups")
        );
    }
}
