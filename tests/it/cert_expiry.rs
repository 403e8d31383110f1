//! The signing certificate's expiry on the real binary: a log warning at start-up (then
//! hourly) within 30 days of it, none for a fresh certificate, and the gauge to alert on.
use std::process::Command;

use crate::auth_server::{binary, AuthServer};
use crate::observability::metric;
use crate::support::http::http_get;
use crate::support::ports::{wait_until, Probe};
use crate::support::temp_dir;

fn serve_with_days(days: &str) -> AuthServer {
    let dir = temp_dir("expiry-keys");
    let (cert, key) = (dir.path().join("s.pem"), dir.path().join("s.key"));
    let out = Command::new(binary())
        .args(["gen-cert", "--days", days, "--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let yaml = format!(
        "server:\n  addr: \"@ADDR@\"\ntoken:\n  issuer: x\n  expiration: 60\n  x5c: true\n  certificate: \"{}\"\n  key: \"{}\"\nusers:\n  \"\": {{}}\nacl: []\n",
        cert.display(),
        key.display()
    );
    let server = AuthServer::start(&yaml, false, &["serve"]);
    drop(dir); // the server has loaded the pair
    server
}

#[test]
fn expiring_signing_certificate_is_logged_at_start_and_exported() {
    let soon = serve_with_days("10");
    let logged = wait_until("expiry warning", std::time::Duration::from_secs(10), || {
        let stderr = soon.process.stderr();
        match stderr.lines().find(|l| l.contains("the token signing certificate expires on")) {
            Some(line) => Probe::Ready(line.to_owned()),
            None => Probe::NotYet(stderr),
        }
    })
    .unwrap();
    assert!(
        // The certificate was made for 10 days from (whole-second) now: a server that starts
        // within that same second sees exactly 10 days left, a later one 9 days and 23 hours.
        logged.contains("WARN")
            && (logged.contains("(in 9 days, 23 hours)") || logged.contains("(in 10 days, 0 hours)"))
            && logged.contains("rotate"),
        "{logged}"
    );
    let text = http_get(&soon.addr, "/metrics", &[]).unwrap().body_text();
    let seconds = metric(&text, "registry_auth_signing_certificate_expiry_seconds");
    assert!(seconds > 9.0 * 86400.0 && seconds <= 10.0 * 86400.0, "{seconds}");

    let fresh = serve_with_days("3650");
    // The first check runs as the server starts; a token answered means start-up is over.
    assert_eq!(http_get(&fresh.addr, "/auth", &[]).unwrap().status, 200);
    assert!(!fresh.process.stderr().contains("signing certificate"), "{}", fresh.process.stderr());
}
