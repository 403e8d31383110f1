//! The `server:` section: listener, TLS and client-address options.
use std::path::PathBuf;

use super::diag::Diagnostics;
use super::letsencrypt::LetsEncryptConfig;
use super::reader::{parse_go_int, Section};
use super::yaml::Node;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Net {
    Tcp,
    Unix,
}

/// TLS protocol versions as docker_auth names them (`TLS10` … `TLS13`, or 0x0301 …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Ssl30,
    Tls10,
    Tls11,
    Tls12,
    Tls13,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub addr: String,
    pub net: Net,
    pub path_prefix: String,
    pub real_ip_header: Option<String>,
    pub real_ip_pos: i64,
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub hsts: bool,
    pub tls_min_version: Option<TlsVersion>,
    /// Go names or numbers, checked against what rustls offers when the listener is built.
    pub tls_curve_preferences: Vec<String>,
    pub tls_cipher_suites: Vec<String>,
    /// Line of each TLS list, so that build-time errors can still point into the file.
    pub tls_lines: TlsLines,
    /// The listener's certificate from an ACME CA; only without `certificate`/`key`.
    pub letsencrypt: Option<LetsEncryptConfig>,
    /// Ours: open client connections at most; more wait in the listen backlog.
    pub max_connections: usize,
}

/// 256 connections per core (at least 512), within the open-files limit (less a reserve
/// for the log, config, LDAP and MongoDB). An idle connection costs a few KiB, one whose
/// request is being read up to ~55 KiB of buffers (the bodies themselves are bounded
/// separately, in `http::body`): on 2 cores the 512 connections of a flood of 64 KB bodies
/// keep RSS under 100 MB (issue 17; 1,024 took 115 MB).
pub fn default_max_connections() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let by_cores = (256 * cores).max(512);
    match rustix::process::getrlimit(rustix::process::Resource::Nofile).current {
        Some(files) => by_cores.min((files as usize).saturating_sub(FD_RESERVE).max(MIN_CONNECTIONS)),
        None => by_cores,
    }
}

const FD_RESERVE: usize = 64;
const MIN_CONNECTIONS: usize = 16;
const MAX_CONNECTIONS: i64 = 1_000_000;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsLines {
    pub curves: usize,
    pub cipher_suites: usize,
}

const KNOWN: &[&str] = &[
    "addr",
    "net",
    "path_prefix",
    "real_ip_header",
    "real_ip_pos",
    "certificate",
    "key",
    "hsts",
    "tls_min_version",
    "tls_curve_preferences",
    "tls_cipher_suites",
    "letsencrypt",
    "max_connections",
];

/// Reads `server:`, reporting docker_auth's checks 1–4 (§3.3) in their order.
pub fn read(root: &mut Section<'_>, diags: &mut Diagnostics) -> Option<ServerConfig> {
    let node = root.node("server");
    let line = node.map_or(0, |n| n.line);
    let empty = Node { line, kind: super::yaml::NodeKind::Map(Vec::new()) };
    let mut s = Section::of(node.unwrap_or(&empty), "server", diags)?;

    let addr = s.string("addr", diags).unwrap_or_default();
    if addr.is_empty() {
        diags
            .error("server.addr", s.line, "server.addr is required")
            .hint("set server.addr to the listen address, e.g. \":5001\" or \"127.0.0.1:5001\"");
    }
    let net = match s.string("net", diags).as_deref() {
        None | Some("") | Some("tcp") => Net::Tcp,
        Some("unix") => Net::Unix,
        Some(_) => {
            let line = s.node("net").map_or(s.line, |n| n.line);
            diags
                .error("server.net", line, "server.net must be unix or tcp")
                .hint("use net: tcp (default) or net: unix");
            Net::Tcp
        }
    };
    let path_prefix = s.string("path_prefix", diags).unwrap_or_default();
    if !path_prefix.is_empty() && !path_prefix.starts_with('/') {
        let line = s.node("path_prefix").map_or(s.line, |n| n.line);
        diags
            .error("server.path_prefix", line, "server.path_prefix must be an absolute path")
            .hint(format!("start it with a slash, e.g. \"/{path_prefix}\""));
    }
    let tls_min_version = read_tls_version(&mut s, diags);
    let tls_curve_preferences = s.string_list("tls_curve_preferences", diags).unwrap_or_default();
    let tls_cipher_suites = s.string_list("tls_cipher_suites", diags).unwrap_or_default();
    let tls_lines = TlsLines {
        curves: s.node("tls_curve_preferences").map_or(0, |n| n.line),
        cipher_suites: s.node("tls_cipher_suites").map_or(0, |n| n.line),
    };
    if tls_min_version == Some(TlsVersion::Tls13) && !tls_cipher_suites.is_empty() {
        diags
            .error("server.tls_cipher_suites", tls_lines.cipher_suites, "TLS 1.3 ciphersuites are not configurable")
            .hint("remove tls_cipher_suites, or lower tls_min_version to TLS12");
    }
    let certificate = s.string("certificate", diags).filter(|p| !p.is_empty()).map(PathBuf::from);
    let key = s.string("key", diags).filter(|p| !p.is_empty()).map(PathBuf::from);
    let letsencrypt = match (s.node("letsencrypt"), &certificate, &key) {
        (Some(le), Some(_), Some(_)) => {
            // docker_auth uses Let's Encrypt only without a certificate pair.
            diags
                .warn(
                    "server.letsencrypt",
                    le.line,
                    "server.letsencrypt is ignored: server.certificate and server.key are set",
                )
                .hint("remove certificate and key to get the certificate from the ACME server, or remove letsencrypt");
            None
        }
        _ => super::letsencrypt::read(&mut s, diags),
    };
    let max_connections = read_max_connections(&mut s, diags);
    let config = ServerConfig {
        addr,
        net,
        path_prefix,
        real_ip_header: s.string("real_ip_header", diags).filter(|h| !h.is_empty()),
        real_ip_pos: s.int("real_ip_pos", diags).unwrap_or(0),
        certificate,
        key,
        hsts: s.bool("hsts", diags).unwrap_or(false),
        tls_min_version,
        tls_curve_preferences,
        tls_cipher_suites,
        tls_lines,
        letsencrypt,
        max_connections,
    };
    check_tls_pair(&mut s, &config, diags);
    s.warn_unknown(KNOWN, diags);
    Some(config)
}

fn read_max_connections(s: &mut Section<'_>, diags: &mut Diagnostics) -> usize {
    let line = s.node("max_connections").map_or(s.line, |n| n.line);
    match s.int("max_connections", diags) {
        None => default_max_connections(),
        Some(n) if (MIN_CONNECTIONS as i64..=MAX_CONNECTIONS).contains(&n) => n as usize,
        Some(n) => {
            diags
                .error(
                    "server.max_connections",
                    line,
                    format!("server.max_connections must be {MIN_CONNECTIONS} to {MAX_CONNECTIONS}, got {n}"),
                )
                .hint(format!("leave it out for the default ({} on this machine)", default_max_connections()));
            default_max_connections()
        }
    }
}

/// One of `certificate`/`key` without the other means TLS was meant: docker_auth refuses
/// to start, and so do we (serving plain HTTP instead would send passwords in clear).
fn check_tls_pair(s: &mut Section<'_>, config: &ServerConfig, diags: &mut Diagnostics) {
    let (given, missing) = match (&config.certificate, &config.key) {
        (Some(_), None) => ("certificate", "key"),
        (None, Some(_)) => ("key", "certificate"),
        _ => return,
    };
    let line = s.node(given).map_or(s.line, |n| n.line);
    diags
        .error(format!("server.{given}"), line, "failed to load server cert and key: both were not provided")
        .hint(format!("set server.{missing} too (HTTPS), or remove server.{given} to serve plain HTTP"));
}

fn read_tls_version(s: &mut Section<'_>, diags: &mut Diagnostics) -> Option<TlsVersion> {
    let text = s.string("tls_min_version", diags).filter(|t| !t.is_empty())?;
    let parsed = match text.as_str() {
        "SSL30" => Some(TlsVersion::Ssl30),
        "TLS10" => Some(TlsVersion::Tls10),
        "TLS11" => Some(TlsVersion::Tls11),
        "TLS12" => Some(TlsVersion::Tls12),
        "TLS13" => Some(TlsVersion::Tls13),
        other => match parse_go_int(other) {
            Some(0x0300) => Some(TlsVersion::Ssl30),
            Some(0x0301) => Some(TlsVersion::Tls10),
            Some(0x0302) => Some(TlsVersion::Tls11),
            Some(0x0303) => Some(TlsVersion::Tls12),
            Some(0x0304) => Some(TlsVersion::Tls13),
            _ => None,
        },
    };
    if parsed.is_none() {
        let line = s.node("tls_min_version").map_or(s.line, |n| n.line);
        diags
            .error("server.tls_min_version", line, format!("unknown TLS version {text:?}"))
            .hint("use TLS12 or TLS13 (or 0x0303 / 0x0304)");
    }
    parsed
}
