//! Process-wide metrics in the Prometheus text format (version 0.0.4).
//!
//! Hand-written rather than a metrics crate: a handful of counters and histograms with
//! fixed label sets, rendered on scrape. The registry is global so that counts survive
//! config reloads (each reload builds a new state, not new metrics).
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// Latency buckets in seconds: bcrypt at cost 10 takes ~50-100 ms, signing well under 1 ms.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bucket, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bucket {
                *count += 1;
            }
        }
        self.sum += seconds;
        self.count += 1;
    }
}

/// Label values in the order of the metric's label names.
type Labels = Vec<String>;

/// Keys are static strings (and the status code) so that an observation allocates nothing;
/// they become label texts only when scraped.
#[derive(Default)]
struct Inner {
    requests: BTreeMap<(&'static str, u16), u64>,
    authn: BTreeMap<(&'static str, &'static str), Histogram>,
    authn_denied: u64,
    authz: BTreeMap<&'static str, u64>,
    signing: Histogram,
    reloads: BTreeMap<&'static str, u64>,
    credential_cache: BTreeMap<&'static str, u64>,
    /// Brute-force protection, by scope (`ip`/`account`) or store operation.
    lockout_refused: BTreeMap<&'static str, u64>,
    lockouts: BTreeMap<&'static str, u64>,
    lockout_store_errors: BTreeMap<&'static str, u64>,
    bcrypt_jobs: BTreeMap<&'static str, u64>,
    /// Identity tokens by outcome (`issued`, `exchanged`), refusals by reason, and tokens
    /// the server revoked itself, by why; robot logins by result. No account label.
    identity_tokens: BTreeMap<&'static str, u64>,
    identity_tokens_refused: BTreeMap<&'static str, u64>,
    identity_tokens_revoked: BTreeMap<&'static str, u64>,
    robot_logins: BTreeMap<&'static str, u64>,
    /// Audit events for the store's recent-events list: `stored`, `superseded` (fell out
    /// of the in-process ring before a write, as the list would have trimmed it), `dropped_store_error`.
    recent_events: BTreeMap<&'static str, u64>,
}

/// The metrics registry. Cheap to update: one short mutex section per observation, no allocation.
#[derive(Default)]
pub struct Metrics(Mutex<Inner>);

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// The process-wide registry.
pub fn global() -> &'static Metrics {
    &GLOBAL
}

impl Metrics {
    fn with(&self, f: impl FnOnce(&mut Inner)) {
        let mut guard = match self.0.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard);
    }

    /// One HTTP request: `route` is a fixed name (never the raw path), `code` the status.
    pub fn request(&self, route: &'static str, code: u16) {
        self.with(|m| *m.requests.entry((route, code)).or_default() += 1);
    }

    /// One run of the authentication chain that let the client in (`allow`) or broke
    /// (`error`); `backend` is the one that decided. Refusals go to [`Metrics::authn_denied`].
    pub fn authn(&self, backend: &'static str, outcome: &'static str, elapsed: Duration) {
        self.with(|m| m.authn.entry((backend, outcome)).or_default().observe(elapsed.as_secs_f64()));
    }

    /// One refused login, wrong password and unknown account alike: no backend, no
    /// latency, so that a client reading `/metrics` cannot tell whether an account exists.
    pub fn authn_denied(&self) {
        self.with(|m| m.authn_denied += 1);
    }

    /// One scope decision: `allowed` (some action granted) or `denied`.
    pub fn authz(&self, outcome: &'static str) {
        self.with(|m| *m.authz.entry(outcome).or_default() += 1);
    }

    pub fn signing(&self, elapsed: Duration) {
        self.with(|m| m.signing.observe(elapsed.as_secs_f64()));
    }

    /// One config reload: `ok` or `failed`.
    pub fn reload(&self, result: &'static str) {
        self.with(|m| *m.reloads.entry(result).or_default() += 1);
    }

    /// One verified login against a stored hash: `hit` (remembered, bcrypt skipped) or
    /// `miss` (bcrypt ran). Refused logins are not counted.
    pub fn credential_cache(&self, result: &'static str) {
        self.with(|m| *m.credential_cache.entry(result).or_default() += 1);
    }

    /// `n` audit events kept in (`stored`) or not kept in (`superseded`,
    /// `dropped_store_error`) the store's recent-events list.
    pub fn recent_events(&self, result: &'static str, n: u64) {
        self.with(|m| *m.recent_events.entry(result).or_default() += n);
    }

    /// A login refused by brute-force protection; `scope` is `ip` or `account`.
    pub fn lockout_refused(&self, scope: &'static str) {
        self.with(|m| *m.lockout_refused.entry(scope).or_default() += 1);
    }

    /// A count reached its limit (one per lockout).
    pub fn lockout(&self, scope: &'static str) {
        self.with(|m| *m.lockouts.entry(scope).or_default() += 1);
    }

    /// Brute-force counting skipped because the store did not answer (`check` or `count`).
    pub fn lockout_store_error(&self, operation: &'static str) {
        self.with(|m| *m.lockout_store_errors.entry(operation).or_default() += 1);
    }

    /// One job offered to the bcrypt pool: `run`, `dropped` (its client went away before
    /// it ran), `refused_queue_full` or `refused_client_share` (503). Decoy checks count as
    /// `run` like real ones, so the counts tell nothing about which accounts exist.
    pub fn bcrypt_job(&self, result: &'static str) {
        self.with(|m| *m.bcrypt_jobs.entry(result).or_default() += 1);
    }

    /// An identity token `issued` (password login with offline access) or `exchanged`.
    pub fn identity_token(&self, outcome: &'static str) {
        self.with(|m| *m.identity_tokens.entry(outcome).or_default() += 1);
    }

    /// A refresh grant refused: `malformed`, `unknown_or_revoked`, `expired`, `idle`,
    /// `account_gone` (400 invalid_grant) or `store_unavailable` (500).
    pub fn identity_token_refused(&self, reason: &'static str) {
        self.with(|m| *m.identity_tokens_refused.entry(reason).or_default() += 1);
    }

    /// A token the server removed itself: `idle` or `over_limit` (CLI revocations are
    /// audit events of the CLI process; the next use is `refused{reason="unknown_or_revoked"}`).
    pub fn identity_token_revoked(&self, why: &'static str) {
        self.with(|m| *m.identity_tokens_revoked.entry(why).or_default() += 1);
    }

    /// A robot login: `allowed`, `refused` (unknown, expired, revoked or wrong secret,
    /// deliberately alike) or `store_unavailable`.
    pub fn robot_login(&self, result: &'static str) {
        self.with(|m| *m.robot_logins.entry(result).or_default() += 1);
    }

    /// The text exposition; `cert_expiry` is seconds until the signing certificate expires.
    pub fn render(&self, cert_expiry: Option<i64>) -> String {
        let mut out = String::new();
        self.with(|m| {
            counter(
                &mut out,
                "registry_auth_http_requests_total",
                "HTTP requests by route and status code.",
                &["route", "code"],
                &labelled(&m.requests, |(route, code)| vec![route.to_string(), code.to_string()]),
            );
            histograms(
                &mut out,
                "registry_auth_authn_duration_seconds",
                "Authentication latency of accepted logins (allow) and backend failures (error), by backend.",
                &["backend", "outcome"],
                &labelled(&m.authn, |(backend, outcome)| vec![backend.to_string(), outcome.to_string()]),
            );
            counter(
                &mut out,
                "registry_auth_authn_denied_total",
                "Refused logins: wrong password or unknown account, deliberately not told apart.",
                &[],
                &BTreeMap::from([(Vec::new(), m.authn_denied)]),
            );
            counter(
                &mut out,
                "registry_auth_authz_decisions_total",
                "Authorization decisions per requested scope.",
                &["outcome"],
                &labelled(&m.authz, |outcome| vec![outcome.to_string()]),
            );
            let signing = BTreeMap::from([(Vec::new(), m.signing.clone())]);
            histograms(&mut out, "registry_auth_signing_duration_seconds", "Token signing latency.", &[], &signing);
            let mut reloads = m.reloads.clone();
            let mut cache = m.credential_cache.clone();
            let mut bcrypt = m.bcrypt_jobs.clone();
            for result in ["run", "dropped", "refused_queue_full", "refused_client_share"] {
                bcrypt.entry(result).or_default();
            }
            for result in ["ok", "failed"] {
                reloads.entry(result).or_default();
            }
            for result in ["hit", "miss"] {
                cache.entry(result).or_default();
            }
            let reloads = labelled(&reloads, |result| vec![result.to_string()]);
            counter(&mut out, "registry_auth_config_reloads_total", "Config reloads by result.", &["result"], &reloads);
            counter(
                &mut out,
                "registry_auth_credential_cache_total",
                "Verified logins against a stored hash: hit (remembered, bcrypt skipped) or miss (bcrypt ran); refused logins are not counted.",
                &["result"],
                &labelled(&cache, |result| vec![result.to_string()]),
            );
            render_lockout(&mut out, m);
            let mut recent = m.recent_events.clone();
            for result in ["stored", "superseded", "dropped_store_error"] {
                recent.entry(result).or_default();
            }
            counter(
                &mut out,
                "registry_auth_recent_events_total",
                "Audit events for the console's recent-events list: stored, or dropped because the queue was full or the store failed (the log line is written either way).",
                &["result"],
                &labelled(&recent, |result| vec![result.to_string()]),
            );
            render_stored_credentials(&mut out, m);
            counter(
                &mut out,
                "registry_auth_bcrypt_jobs_total",
                "Password checks offered to the bcrypt pool: run, dropped (client gone before it ran), refused_queue_full, refused_client_share.",
                &["result"],
                &labelled(&bcrypt, |result| vec![result.to_string()]),
            );
        });
        if let Some(seconds) = cert_expiry {
            header(
                &mut out,
                "registry_auth_signing_certificate_expiry_seconds",
                "Seconds until the signing certificate expires.",
                "gauge",
            );
            let _ = writeln!(out, "registry_auth_signing_certificate_expiry_seconds {seconds}");
        }
        out
    }
}

fn render_lockout(out: &mut String, m: &Inner) {
    let (mut refused, mut locks, mut errors) =
        (m.lockout_refused.clone(), m.lockouts.clone(), m.lockout_store_errors.clone());
    for scope in ["ip", "account"] {
        refused.entry(scope).or_default();
        locks.entry(scope).or_default();
    }
    for operation in ["check", "count"] {
        errors.entry(operation).or_default();
    }
    let by = |map: &BTreeMap<&'static str, u64>| labelled(map, |k| vec![k.to_string()]);
    counter(
        out,
        "registry_auth_lockout_refused_total",
        "Logins refused (429) by brute-force protection, by the counter that refused.",
        &["scope"],
        &by(&refused),
    );
    counter(
        out,
        "registry_auth_lockouts_total",
        "Lockouts started (a count reached its limit).",
        &["scope"],
        &by(&locks),
    );
    counter(
        out,
        "registry_auth_lockout_store_errors_total",
        "Brute-force checks or counts skipped because the store did not answer.",
        &["operation"],
        &by(&errors),
    );
}

fn render_stored_credentials(out: &mut String, m: &Inner) {
    let with = |map: &BTreeMap<&'static str, u64>, keys: &[&'static str]| {
        let mut map = map.clone();
        for k in keys {
            map.entry(k).or_default();
        }
        labelled(&map, |k| vec![k.to_string()])
    };
    counter(
        out,
        "registry_auth_identity_tokens_total",
        "Identity tokens issued (password login asking for offline access) and exchanged (refresh grant accepted).",
        &["outcome"],
        &with(&m.identity_tokens, &["issued", "exchanged"]),
    );
    let reasons = ["malformed", "unknown_or_revoked", "expired", "idle", "account_gone", "store_unavailable"];
    counter(
        out,
        "registry_auth_identity_tokens_refused_total",
        "Refresh grants refused, by reason.",
        &["reason"],
        &with(&m.identity_tokens_refused, &reasons),
    );
    counter(
        out,
        "registry_auth_identity_tokens_revoked_total",
        "Identity tokens the server removed itself: idle too long, or an account's oldest beyond its limit.",
        &["reason"],
        &with(&m.identity_tokens_revoked, &["idle", "over_limit"]),
    );
    counter(
        out,
        "registry_auth_robot_logins_total",
        "Robot logins: allowed, refused (unknown, expired, revoked or wrong secret alike), store_unavailable.",
        &["result"],
        &with(&m.robot_logins, &["allowed", "refused", "store_unavailable"]),
    );
}

/// The store gauge, rendered at scrape time from a health check of the running store.
pub fn render_store_up(out: &mut String, engine: &str, up: bool) {
    header(out, "registry_auth_store_up", "Whether the store answers (1) or not (0), by engine.", "gauge");
    let _ = writeln!(out, "registry_auth_store_up{{engine=\"{}\"}} {}", escape(engine), u8::from(up));
}

/// A map with static keys as one with label-value lists, for rendering.
fn labelled<K, V: Clone>(map: &BTreeMap<K, V>, labels: impl Fn(&K) -> Labels) -> BTreeMap<Labels, V> {
    map.iter().map(|(k, v)| (labels(k), v.clone())).collect()
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn label_text(names: &[&str], values: &[String], extra: Option<(&str, &str)>) -> String {
    let mut pairs: Vec<String> = names.iter().zip(values).map(|(n, v)| format!("{n}=\"{}\"", escape(v))).collect();
    if let Some((n, v)) = extra {
        pairs.push(format!("{n}=\"{v}\""));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn counter(out: &mut String, name: &str, help: &str, names: &[&str], values: &BTreeMap<Labels, u64>) {
    header(out, name, help, "counter");
    for (labels, value) in values {
        let _ = writeln!(out, "{name}{} {value}", label_text(names, labels, None));
    }
}

fn histograms(out: &mut String, name: &str, help: &str, names: &[&str], values: &BTreeMap<Labels, Histogram>) {
    header(out, name, help, "histogram");
    for (labels, h) in values {
        for (bucket, count) in BUCKETS.iter().zip(h.counts) {
            let le = bucket.to_string();
            let _ = writeln!(out, "{name}_bucket{} {count}", label_text(names, labels, Some(("le", &le))));
        }
        let _ = writeln!(out, "{name}_bucket{} {}", label_text(names, labels, Some(("le", "+Inf"))), h.count);
        let _ = writeln!(out, "{name}_sum{} {}", label_text(names, labels, None), h.sum);
        let _ = writeln!(out, "{name}_count{} {}", label_text(names, labels, None), h.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.request("token", 200);
        m.request("token", 200);
        m.authn("static", "allow", Duration::from_millis(30));
        m.signing(Duration::from_micros(300));
        let text = m.render(Some(86400));
        assert!(text.contains("registry_auth_http_requests_total{route=\"token\",code=\"200\"} 2\n"), "{text}");
        assert!(
            text.contains(
                "registry_auth_authn_duration_seconds_bucket{backend=\"static\",outcome=\"allow\",le=\"0.05\"} 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "registry_auth_authn_duration_seconds_bucket{backend=\"static\",outcome=\"allow\",le=\"0.025\"} 0\n"
            ),
            "{text}"
        );
        assert!(text.contains("registry_auth_signing_duration_seconds_count 1\n"), "{text}");
        assert!(text.contains("registry_auth_authn_denied_total 0\n"), "{text}");
        assert!(text.contains("registry_auth_config_reloads_total{result=\"failed\"} 0\n"), "{text}");
        assert!(text.contains("registry_auth_signing_certificate_expiry_seconds 86400\n"), "{text}");
    }
}
