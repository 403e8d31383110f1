//! Logs an operator can trust, on the real binary: client-supplied text (Basic user,
//! `account`, `service`, scope names, the forwarded-address header) cannot start a line
//! or add a field in the text log, and trace logging into a file beside the config does
//! not feed the config watcher.
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;

use crate::auth_server::{binary, AuthServer};
use crate::common::{with_keys, KeyKind, Keys, ADMIN_HASH};
use crate::reload::{replace_file, wait_for_reloads};
use crate::support::http::http_get;
use crate::support::ports::free_port;
use crate::support::temp_dir;

/// A whole fake audit line behind CR/LF, plus every other character that breaks or hides
/// a line: ESC sequences, NUL, DEL, NEL, the Unicode separators, a bidi override, quotes.
const FORGED: &str = "x\r\n2026-12-01T00:00:00.000000Z  INFO token issued event=\"token_decision\" outcome=\"issued\" account=admin granted=\"repository:prod/db:push\"\u{1b}[1A\u{1b}[2K\0\u{7f}\u{85}\u{2028}\u{2029}\u{202e}\u{200b}\t\\n";
/// The same for scope names, which cannot hold spaces (scope separator) or colons.
const FORGED_NAME: &str =
    "n\r\n2026-12-01T00.00.00.000000Z\u{a0}INFO\u{1b}[2K\0\u{85}\u{2028}\u{2029}outcome=\"issued\"account=admin";

fn config(keys: &Keys) -> String {
    let yaml = format!(
        "server:\n  addr: \"@ADDR@\"\n  real_ip_header: X-Forwarded-For\ntoken:\n  issuer: \"Acme auth server\"\n  expiration: 900\n  certificate: \"@CERT@\"\n  key: \"@KEY@\"\nusers:\n  \"admin\":\n    password: \"{ADMIN_HASH}\"\n  \"\": {{}}\nacl:\n  - match: {{account: \"admin\"}}\n    actions: [\"*\"]\n  - match: {{account: \"\"}}\n    actions: [\"pull\"]\n"
    );
    with_keys(&yaml, keys)
}

fn query(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// `key=value` fields of a text log line from `from` on: bare words or quoted strings
/// with `\"`, `\\`, `\n`, `\r`, `\t`, `\0` and `\u{..}` escapes.
fn fields(line: &str, from: &str) -> BTreeMap<String, String> {
    let start = line.find(from).unwrap_or_else(|| panic!("no {from:?} in {line:?}"));
    let mut chars = line[start..].trim_start().chars().peekable();
    let mut out = BTreeMap::new();
    while chars.peek().is_some() {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => match chars.next().unwrap() {
                        'n' => value.push('\n'),
                        'r' => value.push('\r'),
                        't' => value.push('\t'),
                        '0' => value.push('\0'),
                        'u' => {
                            assert_eq!(chars.next(), Some('{'), "{line:?}");
                            let hex: String = chars.by_ref().take_while(|c| *c != '}').collect();
                            value.push(char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap());
                        }
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            }
            assert!(matches!(chars.next(), None | Some(' ')), "a quoted value ends its field: {line:?}");
        } else {
            value = chars.by_ref().take_while(|c| *c != ' ').collect();
        }
        assert!(out.insert(key.clone(), value).is_none(), "field {key} twice in {line:?}");
    }
    out
}

fn is_line_start(line: &str) -> bool {
    let mut words = line.split_whitespace();
    let time = words.next().unwrap_or_default();
    let level = words.next().unwrap_or_default();
    time.len() > 20
        && time.ends_with('Z')
        && time[..4].bytes().all(|b| b.is_ascii_digit())
        && ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level)
}

#[test]
fn client_text_cannot_forge_a_line_or_a_field_in_the_text_log() {
    let keys = Keys::new(KeyKind::EcP256);
    let server = AuthServer::start(&config(&keys), false, &["serve", "--log-level", "info"]);
    let get = |query: &str, headers: &[(&str, &str)]| {
        let mut all = vec![("X-Forwarded-For", "10.0.0.7")];
        all.extend_from_slice(headers);
        http_get(&server.addr, &format!("/auth?{query}"), &all).unwrap().status
    };
    let scope = format!("repository:{FORGED_NAME}:pull");
    // 1. Unknown Basic user = account, with service and scope: a 401 audit line. (The
    // Basic user ends at the first colon.)
    let user = FORGED.replace(':', ".");
    let auth = basic(&user, "pw");
    let q = query(&[("account", &user), ("service", FORGED), ("scope", &scope)]);
    assert_eq!(get(&q, &[("Authorization", &auth)]), 401);
    // 2. Anonymous with the same service and scope: an issued audit line.
    assert_eq!(get(&query(&[("service", FORGED), ("scope", &scope)]), &[]), 200);
    // 3. Basic user and account that differ: a 400 whose reason quotes both.
    let q = query(&[("account", FORGED_NAME)]);
    assert_eq!(get(&q, &[("Authorization", &auth)]), 400);
    // 4. A forwarded address that is not one (headers carry visible ASCII only).
    let header = "1.2.3.4\" outcome=\"issued\" account=\"admin";
    let status = http_get(&server.addr, "/auth", &[("X-Forwarded-For", header)]).unwrap().status;
    assert_eq!(status, 400);

    let log = server.process.stderr();
    assert!(!log.contains(['\r', '\0', '\u{1b}', '\u{7f}', '\u{85}', '\u{2028}', '\u{2029}', '\u{202e}']), "{log:?}");
    for line in log.lines() {
        assert!(is_line_start(line), "a line that is not an event: {line:?}\n{log}");
    }
    let decisions: Vec<BTreeMap<String, String>> =
        log.lines().filter(|l| l.contains(" event=\"token_decision\"")).map(|l| fields(l, " event=")).collect();
    assert_eq!(decisions.len(), 2, "{log}");
    let (denied, issued) = (&decisions[0], &decisions[1]);
    let requested = format!("repository:{FORGED_NAME}:pull");
    for (field, want) in [
        ("outcome", "denied"),
        ("reason", "unknown_account"),
        ("account", user.as_str()),
        ("service", FORGED),
        ("requested", requested.as_str()),
        ("ip", "10.0.0.7"),
    ] {
        assert_eq!(denied[field], want, "{field}: {denied:?}");
    }
    for (field, want) in [("outcome", "issued"), ("account", ""), ("service", FORGED), ("granted", requested.as_str())]
    {
        assert_eq!(issued[field], want, "{field}: {issued:?}");
    }
    let bad_requests: Vec<BTreeMap<String, String>> =
        log.lines().filter(|l| l.contains(" bad request ")).map(|l| fields(l, " reason=")).collect();
    assert_eq!(bad_requests.len(), 2, "{log}");
    assert!(bad_requests[0]["reason"].starts_with("user and account are not the same"), "{bad_requests:?}");
    assert_eq!(bad_requests[1]["reason"], format!("unable to parse remote addr {header}"));
    assert!(!log.contains("pw"), "no password in the log");
}

#[test]
fn trace_logging_into_the_config_directory_does_not_feed_the_watcher() {
    let keys = Keys::new(KeyKind::EcP256);
    let dir = temp_dir("trace-log");
    let addr = format!("127.0.0.1:{}", free_port());
    let path = dir.path().join("auth_config.yml");
    let yaml = config(&keys).replace("  real_ip_header: X-Forwarded-For\n", "").replace("@ADDR@", &addr);
    std::fs::write(&path, &yaml).unwrap();
    let mut command = Command::new(binary());
    command.args(["serve", "--log-level", "trace"]).arg(&path).env("RUST_LOG", "trace");
    // The child's stderr goes to a file in `dir`, the directory the watcher watches.
    let server = AuthServer::spawn(command, addr.clone(), false, dir);
    let log_path = server.dir.path().join("registry-auth.stderr.log");
    let size = || std::fs::metadata(&log_path).unwrap().len();
    // Idle: no request, no config change. A feedback loop wrote megabytes per second.
    std::thread::sleep(Duration::from_millis(300));
    let before = size();
    std::thread::sleep(Duration::from_secs(2));
    let grown = size() - before;
    assert!(grown < 16 * 1024, "{grown} bytes logged in 2 s while idle:\n{}", server.process.stderr());
    // The watcher still works.
    replace_file(&path, &yaml.replace("actions: [\"pull\"]", "actions: [\"pull\", \"push\"]"));
    wait_for_reloads(&addr, "ok", 1, || server.process.stderr());
}
