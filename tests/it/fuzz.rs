//! Randomised bad input (seeded, so a failure reproduces): the token endpoint never
//! answers 5xx or panics on what a client sends, and the config loader never panics on
//! what an operator writes.
use actix_web::test::{self, TestRequest};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::*;

const ALPHABET: &[u8] = b"ab:/,() %+=&;*?[]\\$.{}-_0123456789Rrepositoryregistrycatalogpullpush\"'\t\n";
const FRAGMENTS: &[&str] = &[
    "scope=",
    "repository:",
    "registry:catalog:*",
    "account=",
    "service=",
    "username=",
    "password=",
    "grant_type=",
    "refresh_token",
    "%",
    "%zz",
    "%3A",
    "+",
    "&",
    ";",
    ":pull,push",
    "(plugin)",
    "\u{fffd}",
    "%00",
    "%ff",
];

fn noise(rng: &mut StdRng, max: usize) -> String {
    let len = rng.gen_range(0..max);
    let mut out = String::new();
    while out.len() < len {
        if rng.gen_bool(0.3) {
            out.push_str(FRAGMENTS[rng.gen_range(0..FRAGMENTS.len())]);
        } else {
            out.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
        }
    }
    out
}

fn header_safe(s: &str) -> String {
    s.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').collect()
}

#[actix_web::test]
async fn token_endpoint_never_fails_on_client_input() {
    let keys = Keys::new(KeyKind::EcP256);
    let app = app_for(&standard_yaml(&keys, "")).await;
    let seed: u64 = rand::random();
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..1500 {
        // Only what an HTTP client can put in a request target; the rest is for bodies.
        let query: String =
            noise(&mut rng, 120).chars().filter(|c| c.is_ascii_graphic() && !"#\"<>\\^`{|}".contains(*c)).collect();
        let mut req = if rng.gen_bool(0.5) { TestRequest::get() } else { TestRequest::post() };
        req = req.uri(&format!("/auth?{query}"));
        if rng.gen_bool(0.5) {
            req = req
                .insert_header(("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"))
                .set_payload(noise(&mut rng, 200));
        }
        if rng.gen_bool(0.4) {
            let raw = if rng.gen_bool(0.5) { noise(&mut rng, 40) } else { format!("test:{}", noise(&mut rng, 10)) };
            let value = match rng.gen_range(0..3) {
                0 => format!("Basic {}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw)),
                1 => format!("Basic {}", header_safe(&raw)),
                _ => header_safe(&raw),
            };
            req = req.insert_header(("Authorization", value));
        }
        let resp = test::call_service(&app, req.to_request()).await;
        let status = resp.status().as_u16();
        assert!(matches!(status, 200 | 400 | 401 | 413), "seed {seed}, case {i}: {query} -> {status}");
    }
}

#[test]
fn config_loader_never_panics() {
    let seed: u64 = rand::random();
    let mut rng = StdRng::seed_from_u64(seed);
    let pieces = [
        "server:",
        "  addr: ",
        "token:",
        "  issuer: ",
        "  expiration: ",
        "users:",
        "acl:",
        "  - match: {",
        "account:",
        "}",
        "    actions: [",
        "]",
        "labels:",
        "ip: ",
        "'/(/'",
        "\"${account}\"",
        "&a",
        "*a",
        "- ",
        "\n",
        "  ",
        "{",
        "[",
        "? ",
        "!!str ",
        "%YAML 1.1\n",
        "---\n",
        "...\n",
        "|\n",
        "yes",
        "~",
        "0x10",
        "-1",
        "\t",
        "#",
        "\"\\u00e9\"",
    ];
    for i in 0..3000 {
        let text: String = (0..rng.gen_range(0..40)).map(|_| pieces[rng.gen_range(0..pieces.len())]).collect();
        let outcome = std::panic::catch_unwind(|| {
            let _ = registry_auth::config::load_str(&text, "fuzz.yml");
        });
        assert!(outcome.is_ok(), "seed {seed}, case {i}: loader panicked on {text:?}");
    }
}
