//! rustls server configuration from docker_auth's TLS keys (parity.md §3.2, §8 item 68).
//! Go names and numbers are mapped to what rustls offers; what it lacks is a clear error.
//! The crypto is aws-lc-rs, the library that also signs the tokens. Sessions resume both
//! ways docker clients and Go offer: stateless tickets (rotating keys) and session IDs from
//! a bounded in-memory cache.
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::{aws_lc_rs, SupportedKxGroup};
use rustls::server::ServerSessionMemoryCache;
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

use crate::config::reader::parse_go_int;
use crate::config::{Diagnostics, ServerConfig, TlsVersion};

/// Makes aws-lc-rs the process-wide rustls provider. rustls is built with both ring (for
/// ldap3 and mongodb) and aws-lc-rs, so a library that asks for the process default (ldap3
/// without a config of ours, the Redis client's TLS) would otherwise panic. Idempotent.
pub fn install_process_provider() {
    let _ = aws_lc_rs::default_provider().install_default();
}

/// Builds the listener's TLS config; problems go to `diags` with the key's path and line.
pub fn server_tls(
    server: &ServerConfig,
    cert: &Path,
    key: &Path,
    diags: &mut Diagnostics,
) -> Option<rustls::ServerConfig> {
    let builder = builder(server, diags);
    let (certs, private_key) = read_pair(cert, key, diags)?;
    match builder?.with_single_cert(certs, private_key) {
        Ok(mut config) => {
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            listener_defaults(&mut config, diags)?;
            Some(config)
        }
        Err(e) => {
            diags
                .error("server.certificate", 0, format!("cannot use the TLS certificate and key: {e}"))
                .hint("server.certificate and server.key must be a matching PEM pair");
            None
        }
    }
}

/// The same listener settings with certificates from `server.letsencrypt` (swapped at run
/// time), answering TLS-ALPN-01 challenges on `acme-tls/1`.
pub fn acme_server_tls(
    server: &ServerConfig,
    resolver: Arc<crate::acme::AcmeResolver>,
    diags: &mut Diagnostics,
) -> Option<rustls::ServerConfig> {
    let mut config = builder(server, diags)?.with_cert_resolver(resolver);
    listener_defaults(&mut config, diags)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec(), crate::acme::ACME_TLS_ALPN.to_vec()];
    Some(config)
}

type Builder = rustls::ConfigBuilder<rustls::ServerConfig, rustls::server::WantsServerCert>;

/// The suite order docker_auth's Go server uses: AES-128-GCM first, whatever order the
/// client lists (Go's TLS 1.3 server picks from its own list). rustls follows the client
/// by default, and OpenSSL clients list AES-256-GCM-SHA384 first, whose SHA-384 key
/// schedule (no SHA-512 instructions on x86-64) was 13 % of a new connection's CPU; Go
/// clients (docker, containerd, skopeo) list AES-128-GCM first anyway. TLS 1.2 suites
/// keep an operator's `tls_cipher_suites` order (`tls12_too` false).
fn go_suite_order(suites: &mut [SupportedCipherSuite], tls12_too: bool) {
    use rustls::CipherSuite as S;
    suites.sort_by_key(|suite| match suite.suite() {
        S::TLS13_AES_128_GCM_SHA256 => 0,
        S::TLS13_AES_256_GCM_SHA384 => 1,
        S::TLS13_CHACHA20_POLY1305_SHA256 => 2,
        _ if !tls12_too => 3,
        S::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 | S::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => 3,
        S::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 | S::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => 4,
        _ => 5,
    });
}

fn builder(server: &ServerConfig, diags: &mut Diagnostics) -> Option<Builder> {
    let mut provider = aws_lc_rs::default_provider();
    if !server.tls_curve_preferences.is_empty() {
        provider.kx_groups = curves(server, diags)?;
    }
    if !server.tls_cipher_suites.is_empty() {
        provider.cipher_suites = cipher_suites(server, diags)?;
    }
    go_suite_order(&mut provider.cipher_suites, server.tls_cipher_suites.is_empty());
    let versions = versions(server, diags);
    match rustls::ServerConfig::builder_with_provider(Arc::new(provider)).with_protocol_versions(versions) {
        Ok(builder) => Some(builder.with_no_client_auth()),
        Err(e) => {
            diags.error("server.tls_cipher_suites", 0, format!("cannot set up TLS: {e}"));
            None
        }
    }
}

/// Session IDs kept for resumption; each entry is a few hundred bytes, so the cache stays
/// under ~2 MB however many clients connect (the oldest entries are evicted).
const SESSION_CACHE_ENTRIES: usize = 4096;

/// The server picks the suite (see [`go_suite_order`]) and sessions resume. A resumed
/// handshake skips the certificate signature and the key exchange's verification
/// work, which is most of a new connection's cost (docs/performance.md).
fn listener_defaults(config: &mut rustls::ServerConfig, diags: &mut Diagnostics) -> Option<()> {
    config.ignore_client_order = true; // see go_suite_order
                                       // One TLS 1.3 ticket per handshake, as Go sends (rustls' default is 2): a client
                                       // resumes with one, and most docker clients keep none, so the second was work for nothing.
    config.send_tls13_tickets = 1;
    config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
    match aws_lc_rs::Ticketer::new() {
        Ok(ticketer) => {
            config.ticketer = ticketer;
            Some(())
        }
        Err(e) => {
            diags.error("server.certificate", 0, format!("cannot set up TLS session tickets: {e}"));
            None
        }
    }
}

fn versions(server: &ServerConfig, diags: &mut Diagnostics) -> &'static [&'static SupportedProtocolVersion] {
    static BOTH: [&SupportedProtocolVersion; 2] = [&rustls::version::TLS13, &rustls::version::TLS12];
    static ONLY13: [&SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
    match server.tls_min_version {
        Some(TlsVersion::Tls13) => &ONLY13,
        Some(v) if v < TlsVersion::Tls12 => {
            diags
                .warn(
                    "server.tls_min_version",
                    0,
                    "TLS versions below 1.2 are not offered (rustls implements TLS 1.2 and 1.3)",
                )
                .hint("set tls_min_version: TLS12 to silence this");
            &BOTH
        }
        _ => &BOTH,
    }
}

fn curves(server: &ServerConfig, diags: &mut Diagnostics) -> Option<Vec<&'static dyn SupportedKxGroup>> {
    let mut groups = Vec::new();
    let mut ok = true;
    for (i, name) in server.tls_curve_preferences.iter().enumerate() {
        let group: Option<&'static dyn SupportedKxGroup> = match name.as_str() {
            "X25519" => Some(aws_lc_rs::kx_group::X25519),
            "P256" | "CurveP256" => Some(aws_lc_rs::kx_group::SECP256R1),
            "P384" | "CurveP384" => Some(aws_lc_rs::kx_group::SECP384R1),
            other => match parse_go_int(other) {
                Some(29) => Some(aws_lc_rs::kx_group::X25519),
                Some(23) => Some(aws_lc_rs::kx_group::SECP256R1),
                Some(24) => Some(aws_lc_rs::kx_group::SECP384R1),
                _ => None,
            },
        };
        match group {
            Some(g) => groups.push(g),
            None => {
                ok = false;
                diags
                    .error(
                        format!("server.tls_curve_preferences[{i}]"),
                        server.tls_lines.curves,
                        format!("curve {name:?} is not supported"),
                    )
                    .hint("use X25519, P256 or P384 (P521 is not offered by rustls)");
            }
        }
    }
    ok.then_some(groups)
}

/// Go cipher-suite names and IDs that rustls implements (TLS 1.2 ECDHE AEAD suites).
fn tls12_suite(name: &str) -> Option<SupportedCipherSuite> {
    use aws_lc_rs::cipher_suite::*;
    let by_id = parse_go_int(name);
    let suite = match (name, by_id) {
        ("TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", _) | (_, Some(0xc02b)) => TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        ("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", _) | (_, Some(0xc02c)) => TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", _)
        | (_, Some(0xcca9)) => TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", _) | (_, Some(0xc02f)) => TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", _) | (_, Some(0xc030)) => TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", _)
        | (_, Some(0xcca8)) => TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        _ => return None,
    };
    Some(suite)
}

fn is_tls13_suite(name: &str) -> bool {
    matches!(name, "TLS_AES_128_GCM_SHA256" | "TLS_AES_256_GCM_SHA384" | "TLS_CHACHA20_POLY1305_SHA256")
        || matches!(parse_go_int(name), Some(0x1301..=0x1303))
}

/// The listed TLS 1.2 suites, plus every TLS 1.3 suite (Go does not let 1.3 suites be chosen).
fn cipher_suites(server: &ServerConfig, diags: &mut Diagnostics) -> Option<Vec<SupportedCipherSuite>> {
    let mut suites: Vec<SupportedCipherSuite> =
        aws_lc_rs::DEFAULT_CIPHER_SUITES.iter().copied().filter(|s| s.tls13().is_some()).collect();
    let mut ok = true;
    for (i, name) in server.tls_cipher_suites.iter().enumerate() {
        let path = format!("server.tls_cipher_suites[{i}]");
        if let Some(suite) = tls12_suite(name) {
            suites.push(suite);
        } else if is_tls13_suite(name) {
            diags.warn(
                path,
                server.tls_lines.cipher_suites,
                format!("{name} is a TLS 1.3 suite; TLS 1.3 suites are always enabled"),
            );
        } else {
            ok = false;
            diags
                .error(path, server.tls_lines.cipher_suites, format!("cipher suite {name:?} is not supported"))
                .hint("rustls offers the ECDHE AES-GCM and CHACHA20-POLY1305 suites, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
        }
    }
    ok.then_some(suites)
}

type Pair = (Vec<rustls::pki_types::CertificateDer<'static>>, rustls::pki_types::PrivateKeyDer<'static>);

fn read_pair(cert: &Path, key: &Path, diags: &mut Diagnostics) -> Option<Pair> {
    let open = |path: &Path, what: &str, diags: &mut Diagnostics| match std::fs::File::open(path) {
        Ok(file) => Some(BufReader::new(file)),
        Err(e) => {
            diags.error(format!("server.{what}"), 0, format!("could not read {}: {e}", path.display()));
            None
        }
    };
    let certs: Vec<_> = rustls_pemfile::certs(&mut open(cert, "certificate", diags)?).filter_map(Result::ok).collect();
    if certs.is_empty() {
        diags.error("server.certificate", 0, format!("no PEM certificate found in {}", cert.display()));
        return None;
    }
    match rustls_pemfile::private_key(&mut open(key, "key", diags)?) {
        Ok(Some(private_key)) => Some((certs, private_key)),
        _ => {
            diags.error("server.key", 0, format!("no PEM private key found in {}", key.display()));
            None
        }
    }
}
