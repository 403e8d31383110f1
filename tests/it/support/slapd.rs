//! A throwaway OpenLDAP `slapd` on 127.0.0.1: its own cn=config (slapd.d made with
//! `slapadd -n0`), an mdb database in a temp dir, the memberOf overlay, `ldap://` with
//! StartTLS and `ldaps://` with a certificate from a CA generated here. Never touches
//! /etc/ldap's database or a system slapd.
//!
//! Directory (base `dc=example,dc=com`, password of each user `<uid>-pw`):
//! - `uid=alice`: member of `cn=Devs` and `cn=ops`, `mail: Alice@Example.com`, `description: team`
//! - `uid=bob`: member of `cn=Devs`, `description: team`
//! - `uid=carol`: no group
//! - `uid=dave`: member of `cn=registry-admins`
//! - `cn=reader`: the service account, password [`READER_PASSWORD`]
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use super::ports::{free_port, Probe};
use super::process::{require_program, ChildGuard};
use super::temp_dir;

pub const BASE: &str = "dc=example,dc=com";
pub const READER_DN: &str = "cn=reader,dc=example,dc=com";
pub const READER_PASSWORD: &str = "reader-secret";
const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
const ADMIN_PASSWORD: &str = "admin-secret";

pub struct Slapd {
    dir: TempDir,
    pub ldap_port: u16,
    pub ldaps_port: u16,
    /// The PEM of the CA that signed the server certificate.
    pub ca_path: PathBuf,
    process: Option<ChildGuard>,
}

impl Slapd {
    /// Configures, starts and fills a directory; returns once it answers binds.
    pub fn start() -> Slapd {
        let dir = temp_dir("slapd");
        let ca_path = write_tls_files(dir.path());
        write_config(dir.path());
        let mut slapd = Slapd { ldap_port: free_port(), ldaps_port: free_port(), ca_path, process: None, dir };
        slapd.run();
        slapd.ldapadd(&directory_ldif());
        slapd
    }

    /// `127.0.0.1:<port>` of plain LDAP (and StartTLS).
    pub fn ldap_addr(&self) -> String {
        format!("127.0.0.1:{}", self.ldap_port)
    }

    pub fn ldaps_addr(&self) -> String {
        format!("127.0.0.1:{}", self.ldaps_port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills slapd (the data stays on disk).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// Starts slapd again on the same ports and data, after [`Slapd::stop`].
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    fn run(&mut self) {
        let urls = format!("ldap://127.0.0.1:{}/ ldaps://127.0.0.1:{}/", self.ldap_port, self.ldaps_port);
        let mut command = Command::new(require_program("slapd"));
        command.arg("-h").arg(&urls).arg("-F").arg(self.dir.path().join("slapd.d")).args(["-d", "stats"]);
        let mut process = ChildGuard::spawn("slapd", command, self.dir.path());
        let url = format!("ldap://{}", self.ldap_addr());
        process
            .wait_ready("anonymous whoami answers", Duration::from_secs(20), || match whoami(&url) {
                Ok(()) => Probe::Ready(()),
                Err(e) => Probe::NotYet(e),
            })
            .unwrap_or_else(|e| panic!("{e}"));
        self.process = Some(process);
    }

    /// How many connections slapd has accepted so far (from its `stats` log on stderr).
    pub fn accepted_connections(&self) -> usize {
        self.process.as_ref().map_or(0, |p| p.stderr().matches(" ACCEPT from ").count())
    }

    /// Adds entries through the running server, so the memberOf overlay sees them.
    pub fn ldapadd(&self, ldif: &str) {
        let file = self.dir.path().join("add.ldif");
        fs::write(&file, ldif).unwrap();
        let output = Command::new(require_program("ldapadd"))
            .args(["-x", "-H", &format!("ldap://{}", self.ldap_addr()), "-D", ADMIN_DN, "-w", ADMIN_PASSWORD, "-f"])
            .arg(&file)
            .output()
            .unwrap_or_else(|e| panic!("cannot run ldapadd: {e}"));
        assert!(output.status.success(), "ldapadd failed: {}", String::from_utf8_lossy(&output.stderr));
    }
}

fn whoami(url: &str) -> Result<(), String> {
    let output = Command::new(require_program("ldapwhoami"))
        .args(["-x", "-H", url, "-o", "nettimeout=2"])
        .output()
        .map_err(|e| format!("cannot run ldapwhoami: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// A CA and a server certificate for 127.0.0.1 and localhost signed by it.
fn write_tls_files(dir: &Path) -> PathBuf {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "registry-auth test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let server_key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    params.distinguished_name.push(rcgen::DnType::CommonName, "127.0.0.1");
    let server = params.signed_by(&server_key, &ca, &ca_key).unwrap();
    let ca_path = dir.join("ca.pem");
    fs::write(&ca_path, ca.pem()).unwrap();
    fs::write(dir.join("server.pem"), server.pem()).unwrap();
    fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    ca_path
}

/// cn=config for one mdb database with memberOf, loaded with `slapadd -n0`.
fn write_config(dir: &Path) {
    let d = dir.display();
    fs::create_dir_all(dir.join("slapd.d")).unwrap();
    fs::create_dir_all(dir.join("db")).unwrap();
    let schema = |name: &str| format!("include: file:///etc/ldap/schema/{name}.ldif\n\n");
    let ldif = format!(
        "dn: cn=config\nobjectClass: olcGlobal\ncn: config\nolcPidFile: {d}/slapd.pid\n\
         olcTLSCACertificateFile: {d}/ca.pem\nolcTLSCertificateFile: {d}/server.pem\n\
         olcTLSCertificateKeyFile: {d}/server.key\n\n\
         dn: cn=module{{0}},cn=config\nobjectClass: olcModuleList\ncn: module{{0}}\n\
         olcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\nolcModuleLoad: memberof\n\n\
         dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n\
         {}{}{}{}\
         dn: olcDatabase={{-1}}frontend,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcFrontendConfig\n\
         olcDatabase: {{-1}}frontend\n\n\
         dn: olcDatabase={{0}}config,cn=config\nobjectClass: olcDatabaseConfig\nolcDatabase: {{0}}config\n\
         olcAccess: {{0}}to * by * none\n\n\
         dn: olcDatabase={{1}}mdb,cn=config\nobjectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n\
         olcDatabase: {{1}}mdb\nolcSuffix: {BASE}\nolcRootDN: {ADMIN_DN}\nolcRootPW: {ADMIN_PASSWORD}\n\
         olcDbDirectory: {d}/db\n\
         olcAccess: {{0}}to attrs=userPassword by self write by anonymous auth by * none\n\
         olcAccess: {{1}}to * by * read\n\n\
         dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config\nobjectClass: olcOverlayConfig\n\
         objectClass: olcMemberOf\nolcOverlay: {{0}}memberof\nolcMemberOfGroupOC: groupOfNames\n\
         olcMemberOfMemberAD: member\nolcMemberOfMemberOfAD: memberOf\n",
        schema("core"),
        schema("cosine"),
        schema("inetorgperson"),
        schema("nis"),
    );
    let file = dir.join("config.ldif");
    fs::write(&file, ldif).unwrap();
    let output = Command::new(require_program("slapadd"))
        .args(["-n0", "-F"])
        .arg(dir.join("slapd.d"))
        .arg("-l")
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run slapadd: {e}"));
    assert!(output.status.success(), "slapadd -n0 failed: {}", String::from_utf8_lossy(&output.stderr));
}

fn person(uid: &str, cn: &str, extra: &str) -> String {
    format!(
        "dn: uid={uid},ou=people,{BASE}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {cn}\nsn: {cn}\n\
         userPassword: {uid}-pw\n{extra}\n"
    )
}

fn directory_ldif() -> String {
    let people = [
        person("alice", "Alice", "mail: Alice@Example.com\ndescription: team\n"),
        person("bob", "Bob", "description: team\n"),
        person("carol", "Carol", ""),
        person("dave", "Dave", ""),
    ];
    format!(
        "dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: ou=people,{BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: {READER_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: reader\n\
         userPassword: {READER_PASSWORD}\n\n\
         {}\
         dn: cn=Devs,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: Devs\n\
         member: uid=alice,ou=people,{BASE}\nmember: uid=bob,ou=people,{BASE}\n\n\
         dn: cn=ops,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: ops\nmember: uid=alice,ou=people,{BASE}\n\n\
         dn: cn=registry-admins,ou=groups,{BASE}\nobjectClass: groupOfNames\ncn: registry-admins\n\
         member: uid=dave,ou=people,{BASE}\n",
        people.join("\n"),
    )
}
