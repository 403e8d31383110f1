//! Let's Encrypt's test ACME server (Debian `pebble`) on 127.0.0.1, with
//! `pebble-challtestsrv` as its DNS (every name resolves to 127.0.0.1), HTTPS from a CA the
//! test makes, and challenges validated against the port the test's server listens on.
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use tempfile::TempDir;

use super::ports::{free_port, wait_for_tcp};
use super::process::{require_program, ChildGuard};
use super::temp_dir;

pub struct PebbleOptions {
    /// pebble's `certificateValidityPeriod` (seconds); its default is years.
    pub validity_secs: Option<u64>,
    /// Names pebble refuses to issue for (`domainBlocklist`).
    pub blocklist: Vec<String>,
}

pub struct Pebble {
    pebble: ChildGuard,
    _dns: ChildGuard,
    pub dir: TempDir,
    pub directory_url: String,
    /// The CA of pebble's own HTTPS (our `directory_ca_certificate`).
    pub https_ca: PathBuf,
    management: String,
}

impl Pebble {
    /// Starts pebble; its TLS-ALPN-01 validations connect to 127.0.0.1:`tls_port`.
    pub fn start(tls_port: u16, options: PebbleOptions) -> Pebble {
        let (pebble_bin, dns_bin) = (require_program("pebble"), require_program("pebble-challtestsrv"));
        let dir = temp_dir("pebble");
        let https_ca = write_https_pair(&dir);
        let (dns, dns_management) = (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
        let mut command = Command::new(dns_bin);
        command.args(["-dns01", &dns, "-management", &dns_management, "-defaultIPv6", ""]);
        command.args(["-http01", "", "-https01", "", "-tlsalpn01", ""]);
        let dns_guard = ChildGuard::spawn("pebble-challtestsrv", command, dir.path());
        wait_for_tcp(&dns_management, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}\n{}", dns_guard.log()));
        let (listen, management) = (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
        let mut settings = serde_json::json!({
            "listenAddress": listen,
            "managementListenAddress": management,
            "certificate": dir.path().join("https.pem"),
            "privateKey": dir.path().join("https.key"),
            "httpPort": free_port(),
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
            "domainBlocklist": options.blocklist,
        });
        if let Some(secs) = options.validity_secs {
            settings["certificateValidityPeriod"] = secs.into();
        }
        let config = dir.path().join("pebble-config.json");
        std::fs::write(&config, serde_json::json!({ "pebble": settings }).to_string()).unwrap();
        let mut command = Command::new(pebble_bin);
        command.arg("-config").arg(&config).args(["-dnsserver", &dns]);
        command.env("PEBBLE_VA_NOSLEEP", "1").env("PEBBLE_WFE_NONCEREJECT", "0").env("PEBBLE_AUTHZREUSE", "0");
        let pebble = ChildGuard::spawn("pebble", command, dir.path());
        wait_for_tcp(&listen, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}\n{}", pebble.log()));
        let directory_url = format!("https://{listen}/dir");
        Pebble { pebble, _dns: dns_guard, dir, directory_url, https_ca, management }
    }

    /// The root that pebble's issued certificates chain to (made fresh at each start).
    pub fn issuing_root_pem(&self) -> String {
        let agent = crate::auth_server::AuthServer::client(&self.https_ca);
        let url = format!("https://{}/roots/0", self.management);
        agent.get(&url).call().unwrap_or_else(|e| panic!("GET {url}: {e}")).into_string().unwrap()
    }

    /// How many certificates pebble has issued, from its log.
    pub fn issued(&self) -> usize {
        self.pebble.log().matches("Issued certificate serial").count()
    }

    pub fn log(&self) -> String {
        self.pebble.log()
    }
}

/// A CA and a certificate for 127.0.0.1 signed by it, for pebble's HTTPS.
fn write_https_pair(dir: &TempDir) -> PathBuf {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "registry-auth test ACME CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let leaf = params.signed_by(&key, &ca, &ca_key).unwrap();
    std::fs::write(dir.path().join("https.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.path().join("https.key"), key.serialize_pem()).unwrap();
    let ca_path = dir.path().join("https-ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    ca_path
}
