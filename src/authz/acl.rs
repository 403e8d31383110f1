//! The static ACL (docker_auth `authz/acl.go`): ordered entries, the first whose `match`
//! conditions all hold decides the granted actions; no match passes to the next authorizer.
//!
//! Everything is compiled at load; a request only substitutes placeholders. It also only
//! tries the entries whose required literal prefixes its values have (`acl_index`), so a
//! long ACL costs little more than a short one. Capture-group placeholders are found with
//! docker_auth's own scan of the four string fields, so its quirks (and which placeholders
//! stay literal) carry over unchanged.

use std::cell::OnceCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use async_trait::async_trait;
use ipnet::{IpNet, Ipv4Net};
use regex::Regex;

use super::acl_index::PrefixIndex;
use super::pattern::{capture_refs, go_regex, quote_meta, Pattern};
use super::{Authorizer, AuthzError, AuthzOutcome, MatchedRule};
use crate::request::AuthzRequest;

/// The `match` block of one entry. Absent fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchSpec {
    pub account: Option<String>,
    /// YAML key `type`.
    pub resource_type: Option<String>,
    pub name: Option<String>,
    pub service: Option<String>,
    pub ip: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
}

/// One ACL entry as configured.
#[derive(Debug, Clone, PartialEq)]
pub struct AclEntrySpec {
    pub matcher: MatchSpec,
    pub actions: Vec<String>,
    pub comment: Option<String>,
}

/// One invalid entry; `field` is the path inside the entry, e.g. "match.name", "match.ip",
/// "match.labels.group".
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid ACL: entry {index}, invalid match conditions: {detail}")]
pub struct AclError {
    pub index: usize,
    pub field: String,
    pub detail: String,
}

/// A compiled ACL. Safe to share between requests.
#[derive(Debug)]
pub struct Acl {
    entries: Vec<Entry>,
    index: PrefixIndex,
}

#[derive(Debug)]
struct Entry {
    actions: Vec<String>,
    comment: Option<String>,
    ip: Option<IpNet>,
    /// Conditions without placeholders, checked before any placeholder value is computed.
    fixed: Conditions,
    /// Conditions that need per-request placeholder values.
    templated: Conditions,
    /// Value slots after the four basic variables.
    captures: Vec<Capture>,
}

/// String-field and label conditions; all must hold.
#[derive(Debug)]
struct Conditions {
    /// (field number, pattern) for the present string fields.
    fields: Vec<(usize, Pattern)>,
    labels: Vec<(String, Pattern)>,
}

/// `${<field>:<n>}`: group `n` of the entry's raw `/regex/` in `field`.
#[derive(Debug)]
struct Capture {
    source: Option<Regex>,
    field: usize,
    group: usize,
}

/// The string fields, in docker_auth's order; also the basic variables' names.
const FIELDS: [&str; 4] = ["account", "type", "name", "service"];
/// The basic placeholders, in the order of [`Pattern::is_match`]'s first value slots.
pub const VAR_KEYS: [&str; 4] = ["${account}", "${type}", "${name}", "${service}"];

fn field_value<'r>(req: &AuthzRequest<'r>, field: usize) -> &'r str {
    match field {
        0 => req.account,
        1 => req.resource_type,
        2 => req.name,
        _ => req.service,
    }
}

impl Acl {
    /// Compiles every entry; returns ALL invalid entries, not just the first.
    pub fn compile(entries: Vec<AclEntrySpec>) -> Result<Acl, Vec<AclError>> {
        let mut compiled = Vec::with_capacity(entries.len());
        let mut errors = Vec::new();
        for (index, spec) in entries.into_iter().enumerate() {
            match Entry::compile(index, spec) {
                Ok(entry) => compiled.push(entry),
                Err(mut e) => errors.append(&mut e),
            }
        }
        if errors.is_empty() {
            let index = PrefixIndex::new(compiled.iter().map(Entry::index_key));
            Ok(Acl { entries: compiled, index })
        } else {
            Err(errors)
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// First match wins; returns NoMatch when no entry matches. Entries the index rules
    /// out cannot match, so trying only the candidates, in order, gives the same answer.
    pub fn decide(&self, req: &AuthzRequest<'_>) -> AuthzOutcome {
        let quoted = OnceCell::new();
        let candidates = self.index.candidates([0, 1, 2, 3].map(|f| field_value(req, f)));
        let mut tried = candidates.into_iter().map(|i| (i, &self.entries[i]));
        outcome(tried.find(|(_, e)| e.matches(req, &quoted)), req)
    }

    /// docker_auth's plain scan of every entry, to check `decide` against.
    #[cfg(test)]
    fn decide_linear(&self, req: &AuthzRequest<'_>) -> AuthzOutcome {
        let quoted = OnceCell::new();
        outcome(self.entries.iter().enumerate().find(|(_, e)| e.matches(req, &quoted)), req)
    }
}

/// The decision of the first matching entry, if any.
fn outcome(hit: Option<(usize, &Entry)>, req: &AuthzRequest<'_>) -> AuthzOutcome {
    let Some((index, entry)) = hit else {
        return AuthzOutcome::NoMatch;
    };
    AuthzOutcome::Decided {
        actions: grant(&entry.actions, req.actions),
        rule: Some(MatchedRule { index, comment: entry.comment.clone() }),
    }
}

#[async_trait]
impl Authorizer for Acl {
    fn name(&self) -> &'static str {
        "acl"
    }

    async fn authorize(&self, req: &AuthzRequest<'_>) -> Result<AuthzOutcome, AuthzError> {
        Ok(self.decide(req))
    }
}

/// `["*"]` grants the request as is; any other list the sorted, deduplicated intersection.
fn grant(allowed: &[String], requested: &[String]) -> Vec<String> {
    if matches!(allowed, [only] if only == "*") {
        return requested.to_vec();
    }
    let allowed: BTreeSet<&str> = allowed.iter().map(String::as_str).collect();
    let granted: BTreeSet<&str> = requested.iter().map(String::as_str).filter(|a| allowed.contains(a)).collect();
    granted.into_iter().map(str::to_owned).collect()
}

impl Entry {
    fn compile(index: usize, spec: AclEntrySpec) -> Result<Entry, Vec<AclError>> {
        let m = &spec.matcher;
        let raw = [&m.account, &m.resource_type, &m.name, &m.service].map(Option::as_deref);
        let (capture_keys, captures) = register_captures(raw);
        let keys = VAR_KEYS.iter().copied().chain(capture_keys.iter().map(String::as_str));
        let mut c = EntryCompiler { index, keys: keys.collect(), errors: Vec::new() };
        let fields = c.fields(raw);
        let ip = c.ip(m.ip.as_deref());
        let labels = c.labels(m.labels.as_ref());
        if !c.errors.is_empty() {
            return Err(c.errors);
        }
        let (fixed, templated) = Conditions::split(fields, labels);
        let (actions, comment) = (spec.actions, spec.comment);
        Ok(Entry { actions, comment, ip, fixed, templated, captures })
    }

    /// Cheapest first: the address, then patterns without placeholders, and only then the
    /// quoted variables and capture groups that templates need. All checks are pure, so
    /// the order does not change the answer.
    fn matches(&self, req: &AuthzRequest<'_>, quoted: &OnceCell<[String; 4]>) -> bool {
        if self.ip.as_ref().is_some_and(|net| !ip_matches(net, req.ip)) {
            return false;
        }
        self.fixed.hold(req, &[]) && (self.templated.is_empty() || self.templated.hold(req, &self.vars(req, quoted)))
    }

    /// The string field to file the entry under, with its required prefix; None when no
    /// field requires one. Account and name come first: a server sees only a few types
    /// and usually one service, so a prefix there rules out almost nothing. Then the
    /// longest prefix, then the first field.
    fn index_key(&self) -> Option<(usize, &str)> {
        let fields = self.fixed.fields.iter().chain(&self.templated.fields);
        let keyed = fields.map(|(f, p)| (*f, p.literal_prefix())).filter(|(_, p)| !p.is_empty());
        keyed.min_by_key(|&(f, p)| (matches!(f, 1 | 3), Reverse(p.len()), f))
    }

    /// Placeholder values: the regex-quoted basic variables, then the capture groups.
    fn vars<'r>(&self, req: &AuthzRequest<'r>, quoted: &'r OnceCell<[String; 4]>) -> Vec<Option<&'r str>> {
        let quoted = quoted.get_or_init(|| [0, 1, 2, 3].map(|f| quote_meta(field_value(req, f))));
        let basic = quoted.iter().map(|q| Some(q.as_str()));
        basic.chain(self.captures.iter().map(|c| c.value(field_value(req, c.field)))).collect()
    }
}

impl Conditions {
    /// (without placeholders, with placeholders), each in configured order.
    fn split(fields: Vec<(usize, Pattern)>, labels: Vec<(String, Pattern)>) -> (Conditions, Conditions) {
        let (templated_fields, fields) = fields.into_iter().partition(|(_, p)| p.is_template());
        let (templated_labels, labels) = labels.into_iter().partition(|(_, p)| p.is_template());
        (Conditions { fields, labels }, Conditions { fields: templated_fields, labels: templated_labels })
    }

    fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.labels.is_empty()
    }

    /// A label condition holds when any of the request's values for the label matches.
    fn hold(&self, req: &AuthzRequest<'_>, vars: &[Option<&str>]) -> bool {
        self.fields.iter().all(|(f, p)| p.is_match(field_value(req, *f), vars, req.labels))
            && self.labels.iter().all(|(key, p)| {
                let values = req.labels.get(key).map_or(&[][..], Vec::as_slice);
                values.iter().any(|v| p.is_match(v, vars, req.labels))
            })
    }
}

/// Compiles the parts of one entry, collecting every invalid field.
struct EntryCompiler<'k> {
    index: usize,
    /// Placeholder texts of the value slots: basic variables, then capture groups.
    keys: Vec<&'k str>,
    errors: Vec<AclError>,
}

impl EntryCompiler<'_> {
    fn fail(&mut self, field: String, detail: String) {
        self.errors.push(AclError { index: self.index, field, detail });
    }

    fn fields(&mut self, raw: [Option<&str>; 4]) -> Vec<(usize, Pattern)> {
        let mut fields = Vec::new();
        for (f, p) in raw.into_iter().enumerate() {
            let Some(p) = p else { continue };
            match Pattern::compile(p, &self.keys, true) {
                Ok(pattern) => fields.push((f, pattern)),
                Err(e) => self.fail(format!("match.{}", FIELDS[f]), format!("invalid pattern {p:?}: {e}")),
            }
        }
        fields
    }

    fn ip(&mut self, raw: Option<&str>) -> Option<IpNet> {
        let p = raw?;
        parse_ip(p).map_err(|e| self.fail("match.ip".into(), format!("invalid IP pattern: {e}"))).ok()
    }

    /// Label conditions get the basic and capture placeholders, never `${labels:..}`.
    fn labels(&mut self, raw: Option<&BTreeMap<String, String>>) -> Vec<(String, Pattern)> {
        let mut labels = Vec::new();
        for (k, p) in raw.into_iter().flatten() {
            match Pattern::compile(p, &self.keys, false) {
                Ok(pattern) => labels.push((k.clone(), pattern)),
                Err(e) => {
                    self.fail(format!("match.labels.{k}"), format!("invalid match pattern {p:?} for label {k}: {e}"))
                }
            }
        }
        labels
    }
}

impl Capture {
    /// The group's text, or None (placeholder stays literal) when the field is not a
    /// regex, it does not match, or `n` is out of range (including 0).
    fn value<'t>(&self, text: &'t str) -> Option<&'t str> {
        let caps = self.source.as_ref()?.captures(text)?;
        if self.group == 0 || self.group >= caps.len() {
            return None;
        }
        Some(caps.get(self.group).map_or("", |m| m.as_str()))
    }
}

/// docker_auth registers `${<field>:<n>}` found in the four string fields (field name
/// lower-case or capitalised); everything else it finds stays literal.
fn register_captures(raw: [Option<&str>; 4]) -> (Vec<String>, Vec<Capture>) {
    let (mut keys, mut captures) = (Vec::new(), Vec::new());
    for (whole, name, digits) in raw.iter().flatten().flat_map(|p| capture_refs(p)) {
        let Some(field) = FIELDS.iter().position(|f| name == *f || name == capitalise(f)) else {
            continue;
        };
        if keys.iter().any(|k| k == whole) {
            continue;
        }
        // docker_auth only requires two slashes here, so `//` is the empty regex.
        let source = raw[field]
            .filter(|r| r.len() >= 2 && r.starts_with('/') && r.ends_with('/'))
            .and_then(|r| go_regex(&r[1..r.len() - 1]).ok());
        keys.push(whole.to_owned());
        captures.push(Capture { source, field, group: digits.parse().unwrap_or(0) });
    }
    (keys, captures)
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|h| h.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
}

/// Go: `net.ParseIP`, else `net.ParseCIDR` (decimal prefix, non-canonical allowed).
/// A network inside `::ffff:0:0/96` behaves as the IPv4 network it maps, as in Go.
fn parse_ip(s: &str) -> Result<IpNet, String> {
    let net = match s.parse::<IpAddr>() {
        Ok(ip) => IpNet::from(ip),
        Err(_) => parse_cidr(s).ok_or_else(|| format!("invalid CIDR address: {s}"))?,
    };
    let IpNet::V6(v6) = net else { return Ok(net) };
    let mapped = v6.network().to_ipv4_mapped().zip(v6.prefix_len().checked_sub(96));
    Ok(match mapped.and_then(|(ip, len)| Ipv4Net::new(ip, len).ok()) {
        Some(v4) => IpNet::V4(v4),
        None => net,
    })
}

fn parse_cidr(s: &str) -> Option<IpNet> {
    let (addr, bits) = s.split_once('/')?;
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    IpNet::new(addr.parse().ok()?, bits.parse().ok()?).ok()
}

/// A v4-mapped request address counts as IPv4; families never match across.
fn ip_matches(net: &IpNet, ip: Option<IpAddr>) -> bool {
    ip.is_some_and(|ip| net.contains(&ip.to_canonical()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::authz::test_rng::Rng;
    use crate::authz::AuthzChain;
    use crate::request::Labels;

    /// A match block from `(key, value)` pairs; `labels.<k>` adds a label condition.
    fn spec(pairs: &[(&str, &str)]) -> MatchSpec {
        let mut m = MatchSpec::default();
        for &(key, value) in pairs {
            let v = Some(value.to_owned());
            match key {
                "account" => m.account = v,
                "type" => m.resource_type = v,
                "name" => m.name = v,
                "service" => m.service = v,
                "ip" => m.ip = v,
                _ => {
                    let label = key.strip_prefix("labels.").unwrap().to_owned();
                    m.labels.get_or_insert_with(BTreeMap::new).insert(label, value.to_owned());
                }
            }
        }
        m
    }

    fn entry(matcher: MatchSpec, actions: &[&str]) -> AclEntrySpec {
        let actions = actions.iter().map(|a| a.to_string()).collect();
        AclEntrySpec { matcher, actions, comment: None }
    }

    #[derive(Clone, Default)]
    struct Req {
        account: String,
        ty: String,
        name: String,
        service: String,
        ip: Option<IpAddr>,
        labels: Labels,
        actions: Vec<String>,
    }

    impl Req {
        fn get(&self) -> AuthzRequest<'_> {
            AuthzRequest {
                account: &self.account,
                resource_type: &self.ty,
                name: &self.name,
                service: &self.service,
                ip: self.ip,
                actions: &self.actions,
                labels: &self.labels,
            }
        }
        fn name(mut self, name: &str) -> Req {
            self.name = name.to_owned();
            self
        }
        fn ip(mut self, ip: &str) -> Req {
            self.ip = Some(ip.parse().unwrap());
            self
        }
        fn labels(mut self, pairs: &[(&str, &[&str])]) -> Req {
            for (k, v) in pairs {
                self.labels.insert(k.to_string(), v.iter().map(|s| s.to_string()).collect());
            }
            self
        }
        fn actions(mut self, actions: &[&str]) -> Req {
            self.actions = actions.iter().map(|s| s.to_string()).collect();
            self
        }
    }

    fn req(account: &str, ty: &str, name: &str, service: &str) -> Req {
        let s = |v: &str| v.to_owned();
        Req { account: s(account), ty: s(ty), name: s(name), service: s(service), ..Req::default() }
    }

    fn acct_name(account: &str, name: &str) -> Req {
        req(account, "", name, "")
    }

    fn ip(addr: &str) -> Req {
        Req::default().ip(addr)
    }

    // parity.md §4.7 request shorthands.
    fn r1() -> Req {
        req("foo", "bar", "baz", "notary")
    }
    fn r2() -> Req {
        r1().labels(&[("group", &["admins", "VIP"])])
    }
    fn r3() -> Req {
        r2().name("admins/foo")
    }
    fn r4() -> Req {
        r2().name("VIP/api").labels(&[("project", &["api", "frontend"])])
    }
    fn r5() -> Req {
        r4().name("devs/api")
    }

    fn matches(m: MatchSpec, r: &Req) -> bool {
        let acl = Acl::compile(vec![entry(m, &["*"])]).unwrap();
        acl.decide(&r.get()) != AuthzOutcome::NoMatch
    }

    fn loads(m: MatchSpec) -> bool {
        Acl::compile(vec![entry(m, &["*"])]).is_ok()
    }

    /// parity.md §4.7, validation vectors 1–27.
    #[test]
    fn validation_vectors() {
        let mut cases: Vec<(&str, MatchSpec, bool)> = vec![("1", MatchSpec::default(), true)];
        for field in FIELDS {
            cases.push(("2-5", spec(&[(field, "foo")]), true));
            cases.push(("6-9", spec(&[(field, "foo?*")]), true));
            cases.push(("10-13", spec(&[(field, "/foo.*/")]), true));
            cases.push(("19-22", spec(&[(field, "/foo?*/")]), false));
        }
        cases.extend([
            ("14", spec(&[("ip", "192.168.0.1")]), true),
            ("15", spec(&[("ip", "192.168.0.0/16")]), true),
            ("16", spec(&[("ip", "2001:db8::1")]), true),
            ("17", spec(&[("ip", "2001:db8::/48")]), true),
            ("18", spec(&[("labels.foo", "bar")]), true),
            ("23", spec(&[("ip", "192.168.0.1/100")]), false),
            ("24", spec(&[("ip", "192.168.0.*")]), false),
            ("25", spec(&[("ip", "foo")]), false),
            ("26", spec(&[("ip", "2001:db8::/222")]), false),
            ("27", spec(&[("labels.foo", "/bar?*/")]), false),
        ]);
        assert_eq!(cases.len(), 27);
        for (no, m, want) in cases {
            assert_eq!(loads(m.clone()), want, "vector {no}: {m:?}");
        }
    }

    /// parity.md §4.7, matching vectors 1–43.
    #[test]
    fn matching_vectors() {
        let smith = "john.smith@test.com";
        let cases: Vec<(u32, MatchSpec, Req, bool)> = vec![
            (1, spec(&[]), r1(), true),
            (2, spec(&[("account", "foo")]), r1(), true),
            (3, spec(&[("account", "foo"), ("type", "bar")]), r1(), true),
            (4, spec(&[("account", "foo"), ("type", "baz")]), r1(), false),
            (5, spec(&[("account", "fo?"), ("type", "b*"), ("name", "/z$/")]), r1(), true),
            (6, spec(&[("account", "fo?"), ("type", "b*"), ("name", "/^z/")]), r1(), false),
            (7, spec(&[("name", "${account}")]), acct_name("foo", "foo"), true),
            (8, spec(&[("name", "/${account}_.*/")]), acct_name("foo", "foo_x"), true),
            (9, spec(&[("name", "/${account}_.*/")]), acct_name(".*", "foo_x"), false),
            (
                10,
                spec(&[("account", r"/^(.+)@test\.com$/"), ("name", "${account:1}/*")]),
                acct_name(smith, "john.smith/test"),
                true,
            ),
            (
                11,
                spec(&[("account", r"/^(.+)@test\.com$/"), ("name", "${account:3}/*")]),
                acct_name(smith, "john.smith/test"),
                false,
            ),
            (
                12,
                spec(&[("account", r"/^(.+)@(.+?).test\.com$/"), ("name", "${account:1}-${account:2}/*")]),
                acct_name("john.smith@it.test.com", "john.smith-it/test"),
                true,
            ),
            (13, spec(&[("service", "notary"), ("type", "bar")]), r1(), true),
            (14, spec(&[("service", "notary"), ("type", "baz")]), r1(), false),
            (15, spec(&[("service", "notary1"), ("type", "bar")]), r1(), false),
            (16, spec(&[("ip", "127.0.0.1")]), Req::default(), false),
            (17, spec(&[("ip", "127.0.0.1")]), ip("127.0.0.1"), true),
            (18, spec(&[("ip", "127.0.0.1")]), ip("127.0.0.2"), false),
            (19, spec(&[("ip", "127.0.0.2")]), ip("127.0.0.1"), false),
            (20, spec(&[("ip", "127.0.0.0/8")]), ip("127.0.0.1"), true),
            (21, spec(&[("ip", "127.0.0.0/8")]), ip("127.0.0.2"), true),
            (22, spec(&[("ip", "2001:db8::1")]), Req::default(), false),
            (23, spec(&[("ip", "2001:db8::1")]), ip("2001:db8::1"), true),
            (24, spec(&[("ip", "2001:db8::1")]), ip("2001:db8::2"), false),
            (25, spec(&[("ip", "2001:db8::2")]), ip("2001:db8::1"), false),
            (26, spec(&[("ip", "2001:db8::/48")]), ip("2001:db8::1"), true),
            (27, spec(&[("ip", "2001:db8::/48")]), ip("2001:db8::2"), true),
            (28, spec(&[("labels.foo", "bar")]), r1(), false),
            (29, spec(&[("labels.foo", "bar")]), r2(), false),
            (30, spec(&[("labels.group", "admins")]), r2(), true),
            (31, spec(&[("labels.foo", "bar"), ("labels.group", "admins")]), r2(), false),
            (32, spec(&[("labels.group", "VIP")]), r2(), true),
            (33, spec(&[("labels.group", "a*")]), r2(), true),
            (34, spec(&[("labels.group", "/(admins|VIP)/")]), r2(), true),
            (35, spec(&[("name", "${labels:group}/*")]), r1(), false),
            (36, spec(&[("name", "${labels:noexist}/*")]), r2(), false),
            (37, spec(&[("name", "${labels:group}/*")]), r3(), true),
            (38, spec(&[("name", "${labels:noexist}/*")]), r3(), false),
            (39, spec(&[("name", "${labels:group}/${labels:project}")]), r4(), true),
            (40, spec(&[("name", "${labels:group}/${labels:noexist}")]), r4(), false),
            (41, spec(&[("name", "${labels:group}/${labels:project}")]), r4(), true),
            (42, spec(&[("name", "${labels:group}/${labels:noexist}")]), r4(), false),
            (43, spec(&[("name", "${labels:group}/${labels:project}")]), r5(), false),
        ];
        assert_eq!(cases.len(), 43);
        for (no, m, r, want) in cases {
            assert_eq!(matches(m.clone(), &r), want, "vector {no}: {m:?}");
        }
    }

    /// parity.md §4.8 (the two chain rows are in `deny_stops_the_chain_and_no_match_passes`).
    #[test]
    fn action_table() {
        let cases: &[(&[&str], &[&str], &[&str])] = &[
            (&["*"], &["pull", "push"], &["pull", "push"]),
            (&["*"], &["", "pull", "pull"], &["", "pull", "pull"]),
            (&["pull", "*"], &["pull", "push"], &["pull"]),
            (&["pull"], &["*"], &[]),
            (&["*"], &["*"], &["*"]),
            (&["pull", "*"], &["*"], &["*"]),
            (&["push", "pull", "delete"], &["pull", "pull", "push"], &["pull", "push"]),
            (&[], &["pull"], &[]),
        ];
        for (allowed, requested, want) in cases {
            let acl = Acl::compile(vec![entry(MatchSpec::default(), allowed)]).unwrap();
            let outcome = acl.decide(&r1().actions(requested).get());
            let AuthzOutcome::Decided { actions, .. } = outcome else {
                panic!("{allowed:?} did not decide");
            };
            assert_eq!(actions, *want, "{allowed:?} with {requested:?}");
        }
    }

    /// A second authorizer that grants everything, to see whether the chain reaches it.
    struct GrantAll;

    #[async_trait]
    impl Authorizer for GrantAll {
        fn name(&self) -> &'static str {
            "grant-all"
        }
        async fn authorize(&self, req: &AuthzRequest<'_>) -> Result<AuthzOutcome, AuthzError> {
            Ok(AuthzOutcome::Decided { actions: req.actions.to_vec(), rule: None })
        }
    }

    #[tokio::test]
    async fn deny_stops_the_chain_and_no_match_passes() {
        let deny_then_all =
            Acl::compile(vec![entry(spec(&[("account", "foo")]), &[]), entry(MatchSpec::default(), &["*"])]).unwrap();
        let chain = AuthzChain::new(vec![Arc::new(deny_then_all), Arc::new(GrantAll)]);
        let r = r1().actions(&["pull"]);
        let denied = chain.authorize(&r.get()).await.unwrap();
        assert_eq!(denied.actions, Vec::<String>::new());
        let rule = MatchedRule { index: 0, comment: None };
        assert_eq!(denied.decided_by, Some((0, "acl", Some(rule))));

        let unmatched = Acl::compile(vec![entry(spec(&[("account", "bar")]), &["*"])]).unwrap();
        assert_eq!(unmatched.decide(&r.get()), AuthzOutcome::NoMatch);
        let chain = AuthzChain::new(vec![Arc::new(unmatched)]);
        let default_deny = chain.authorize(&r.get()).await.unwrap();
        assert_eq!((default_deny.actions.len(), default_deny.decided_by), (0, None));
    }

    #[tokio::test]
    async fn first_match_wins_and_reports_its_rule() {
        let mut second = entry(spec(&[("account", "foo")]), &["pull"]);
        second.comment = Some("foo pulls".into());
        let acl =
            Acl::compile(vec![entry(spec(&[("account", "bar")]), &["*"]), second, entry(MatchSpec::default(), &["*"])])
                .unwrap();
        assert_eq!((acl.len(), acl.is_empty(), acl.name()), (3, false, "acl"));
        let r = r1().actions(&["pull", "push"]);
        let want = AuthzOutcome::Decided {
            actions: vec!["pull".into()],
            rule: Some(MatchedRule { index: 1, comment: Some("foo pulls".into()) }),
        };
        assert_eq!(acl.authorize(&r.get()).await.unwrap(), want);
        assert!(Acl::compile(vec![]).unwrap().is_empty());
    }

    #[test]
    fn every_invalid_field_of_every_entry_is_reported() {
        let errors = Acl::compile(vec![
            entry(spec(&[("name", "/(/")]), &["*"]),
            entry(spec(&[("account", "ok")]), &["*"]),
            entry(spec(&[("ip", "1.2.3.*"), ("labels.group", "/bar?*/")]), &["*"]),
        ])
        .err()
        .unwrap();
        let fields: Vec<_> = errors.iter().map(|e| (e.index, e.field.as_str())).collect();
        assert_eq!(fields, [(0, "match.name"), (2, "match.ip"), (2, "match.labels.group")]);
        assert!(errors[0]
            .detail
            .starts_with(r#"invalid pattern "/(/": invalid regex pattern: error parsing regexp: "#));
        assert_eq!(errors[1].detail, "invalid IP pattern: invalid CIDR address: 1.2.3.*");
        assert_eq!(
            errors[1].to_string(),
            "invalid ACL: entry 2, invalid match conditions: \
             invalid IP pattern: invalid CIDR address: 1.2.3.*"
        );
        assert_eq!(
            errors[2].detail,
            "invalid match pattern \"/bar?*/\" for label group: invalid regex pattern: \
             error parsing regexp: invalid nested repetition operator: `?*`"
        );
    }

    #[test]
    fn ip_patterns() {
        let cases = [
            ("127.0.0.0/8", "::ffff:127.0.0.1", true),
            ("127.0.0.1", "::ffff:127.0.0.1", true),
            ("::ffff:127.0.0.1", "127.0.0.1", true),
            ("::ffff:0:0/96", "8.8.8.8", true),
            ("::ffff:10.0.0.0/104", "10.1.2.3", true),
            ("::ffff:10.0.0.0/104", "11.1.2.3", false),
            ("::/0", "127.0.0.1", false),
            ("::/0", "::ffff:127.0.0.1", false),
            ("::/0", "::1", true),
            ("0.0.0.0/0", "::1", false),
            ("0.0.0.0/0", "::ffff:1.2.3.4", true),
            ("10.1.2.3/8", "10.9.9.9", true),
            ("10.0.0.0/08", "10.9.9.9", true),
            ("2001:db8::/48", "2001:db9::1", false),
        ];
        for (pattern, addr, want) in cases {
            assert_eq!(matches(spec(&[("ip", pattern)]), &ip(addr)), want, "{pattern} vs {addr}");
        }
        for bad in [
            " 10.0.0.1",
            "10.0.0.1 ",
            "/100",
            "/222",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/33",
            "fe80::1%eth0",
            "127.1",
            "01.2.3.4",
        ] {
            assert!(!loads(spec(&[("ip", bad)])), "{bad:?} loaded");
        }
    }

    #[test]
    fn capture_group_edge_cases() {
        let acct = r"/^(.+)@(x)?test\.com$/";
        let r = acct_name("jo@test.com", "jo/app");
        let cases = [
            ("${account:1}/*", true),
            ("${Account:1}/*", true),
            ("${account:01}/*", true),
            ("${account:0}/*", false),
            ("${account:3}/*", false),
            ("${ACCOUNT:1}/*", false),
            // A group that did not take part is the empty string.
            ("${account:2}jo/*", true),
            // docker_auth's lazy scan swallows a capture after another placeholder.
            ("${name}${account:1}/*", false),
        ];
        for (name, want) in cases {
            assert_eq!(matches(spec(&[("account", acct), ("name", name)]), &r), want, "{name}");
        }
        // Group 0 (the whole match) is out of range, as in docker_auth.
        let whole = spec(&[("account", acct), ("name", "${account:0}/*")]);
        assert!(!matches(whole, &acct_name("jo@test.com", "jo@test.com/app")));
        let not_regex = spec(&[("account", "jo@test.com"), ("name", "${account:1}/*")]);
        assert!(!matches(not_regex, &r));
        let literal = spec(&[("account", "x"), ("name", "${account:1}")]);
        assert!(matches(literal, &acct_name("x", "${account:1}")));
        // Capture values are inserted raw and also reach label conditions.
        let raw = spec(&[("account", r"/^(.+)@/"), ("name", "${account:1}"), ("labels.t", "${account:1}")]);
        let r = acct_name("a*@x", "abc").labels(&[("t", &["a-team"])]);
        assert!(matches(raw, &r));
    }

    #[test]
    fn substitution_quirks() {
        // An account named `/o/` turns `${account}` into a regex (the `/o/` quirk).
        assert!(matches(spec(&[("name", "${account}")]), &acct_name("/o/", "foo")));
        assert!(!matches(spec(&[("name", "${account}")]), &acct_name("/x/", "foo")));
        // Quoted values match literally in globs too.
        assert!(matches(spec(&[("name", "${account}")]), &acct_name("a*b", "a*b")));
        assert!(!matches(spec(&[("name", "${account}")]), &acct_name("a*b", "axb")));
        let all_vars = spec(&[("name", "${account}-${type}-${service}-*")]);
        assert!(matches(all_vars, &req("u", "repository", "u-repository-reg-x", "reg")));
        assert!(matches(spec(&[("account", "${name}")]), &acct_name("n.1", "n.1")));
        assert!(!matches(spec(&[("name", "${foo}")]), &acct_name("foo", "foo")));
    }

    #[test]
    fn empty_and_star_patterns() {
        let anonymous = acct_name("", "x");
        assert!(matches(spec(&[("account", "")]), &anonymous));
        assert!(!matches(spec(&[("account", "")]), &acct_name("a", "x")));
        assert!(matches(spec(&[("account", "*")]), &anonymous));
        assert!(!matches(spec(&[("account", "/.+/")]), &anonymous));
        assert!(!matches(spec(&[("name", "[")]), &acct_name("a", "[")));
    }

    #[test]
    fn label_conditions() {
        let r = r1().labels(&[("empty", &[]), ("owner", &["foo"]), ("t", &["${labels:owner}"])]);
        let cases = [
            (spec(&[("labels.missing", "*")]), false),
            (spec(&[("labels.empty", "*")]), false),
            (spec(&[("labels.owner", "${account}")]), true),
            (spec(&[("labels.owner", "/^f/"), ("labels.missing", "*")]), false),
            // `${labels:..}` is not expanded inside a label condition.
            (spec(&[("labels.t", "${labels:owner}")]), true),
            (spec(&[("labels.owner", "${labels:owner}")]), false),
        ];
        for (m, want) in cases {
            assert_eq!(matches(m.clone(), &r), want, "{m:?}");
        }
    }

    /// Field patterns for random ACLs: globs, anchored and plain regexes, templates with
    /// variables, captures and labels, most with a literal prefix the index files them by.
    #[rustfmt::skip]
    const ACCOUNTS: &[&str] = &[
        "foo", "fo*", "f?o", "/^fo+/", r"/^(.+)@test\.com$/", "/^([a-z]+)-(x)?/", "${account}", "*", "",
        "/o/", r"a\*b", "${labels:g}", "team1-*", "/^svc-1-[a-z]+$/", "${name}", "john@*",
    ];
    const TYPES: &[&str] = &["repository", "repo*", "/^re/", "${type}", "registry", "/^(re)po/"];
    #[rustfmt::skip]
    const NAMES: &[&str] = &[
        "foo/*", "${account}/*", "${account:1}/*", "${account:2}x/*", "${Account:1}-${account:2}/*",
        "ns1/${account}/*", "${labels:g}/*", "${labels:g}/${labels:p}", "bench/app", "bench/*",
        "/^bench/.+/", r"b\ench/*", "/^be?nch/", "team1/*", "*/*", "${name}", "/${account}_.*/",
        r"ab\${account}", "john/${type}", "te${labels:g}*", "/^j(.+)/", "${name:1}/*", "${type:1}*",
    ];
    const SERVICES: &[&str] = &["registry", "reg*", "/^r/", "${service}", "notary", "${type:1}gistry"];
    const IPS: &[&str] = &["127.0.0.1", "10.0.0.0/8", "::1", "127.0.0.0/8"];
    const LABEL_PATTERNS: &[&str] = &["admins", "a*", "/^V/", "${account}", "${account:1}", "${labels:g}", "te"];

    /// Request values, chosen to match some of the patterns above and miss others.
    #[rustfmt::skip]
    const REQ_ACCOUNTS: &[&str] = &[
        "", "foo", "fooo", "john@test.com", "abc-x", "abc-", "team1-a", "svc-1-abc", "a*b", "/o/", "admins", "john",
    ];
    #[rustfmt::skip]
    const REQ_NAMES: &[&str] = &[
        "bench/app", "foo/x", "john/x", "john/repository", "admins/x", "VIP/api", "ns1/foo/x", "team1/a",
        "abc-x/x", "abcx/x", "abc/x", "a*b", "foo_x", "/o/", r"ab\foo", "abfoo", "teadmins", "team1/", "é/x",
        "bnch/x", "repoX",
    ];

    fn random_entry(rng: &mut Rng) -> AclEntrySpec {
        let mut pairs = Vec::new();
        for (field, pool) in [("account", ACCOUNTS), ("type", TYPES), ("name", NAMES), ("service", SERVICES)] {
            if rng.chance(40) {
                pairs.push((field, *rng.pick(pool)));
            }
        }
        if rng.chance(15) {
            pairs.push(("ip", *rng.pick(IPS)));
        }
        if rng.chance(20) {
            pairs.push((*rng.pick(&["labels.g", "labels.p"]), *rng.pick(LABEL_PATTERNS)));
        }
        let actions = if rng.chance(50) { &["*"][..] } else { &["pull"][..] };
        entry(spec(&pairs), actions)
    }

    fn random_request(rng: &mut Rng) -> Req {
        let (account, name) = (*rng.pick(REQ_ACCOUNTS), *rng.pick(REQ_NAMES));
        let ty = *rng.pick(&["repository", "registry", "", "repo"]);
        let service = *rng.pick(&["registry", "notary", "", "regi"]);
        let mut r = req(account, ty, name, service).actions(&["pull", "push"]);
        if let Some(addr) = rng.pick(&[None, Some("127.0.0.1"), Some("10.1.2.3"), Some("::1")]) {
            r = r.ip(addr);
        }
        for (key, values) in [("g", &["admins", "VIP", "a*", "te"][..]), ("p", &["api", "x"][..])] {
            if rng.chance(60) {
                let picked: Vec<&str> = values.iter().copied().filter(|_| rng.chance(50)).collect();
                r = r.labels(&[(key, &picked)]);
            }
        }
        r
    }

    /// Seeded random ACLs and requests: the indexed `decide` answers exactly as the plain
    /// scan of every entry does, and no entry that matches is ever left out of the
    /// candidates (a stricter check than first-match agreement).
    #[test]
    fn decide_equals_a_linear_scan() {
        let mut rng = Rng::new(0x61_63_6c);
        let (mut decided, mut later, mut pruned, mut total) = (0, 0, 0, 0);
        for _ in 0..300 {
            let len = rng.below(25) + 1;
            let acl = Acl::compile((0..len).map(|_| random_entry(&mut rng)).collect()).unwrap();
            for _ in 0..40 {
                let r = random_request(&mut rng);
                let (req, want) = (r.get(), acl.decide_linear(&r.get()));
                assert_eq!(acl.decide(&req), want, "{:#?}\n{req:?}", acl.entries);
                if let AuthzOutcome::Decided { rule: Some(rule), .. } = want {
                    decided += 1;
                    later += usize::from(rule.index > 0);
                }
                let candidates = acl.index.candidates([req.account, req.resource_type, req.name, req.service]);
                for (i, e) in acl.entries.iter().enumerate() {
                    let matched = e.matches(&req, &OnceCell::new());
                    assert!(!matched || candidates.contains(&i), "entry {i} left out: {e:#?}\n{req:?}");
                }
                pruned += acl.len() - candidates.len();
                total += acl.len();
            }
        }
        assert!(decided > 4000 && later > 2000, "{decided} decided, {later} past the first entry");
        assert!(pruned * 4 > total, "the index ruled out only {pruned} of {total} entry checks");
    }

    #[test]
    fn entries_are_filed_by_account_or_name_before_type_or_service() {
        let acl = Acl::compile(vec![
            entry(spec(&[("type", "repository"), ("name", "team1/*")]), &["*"]),
            entry(spec(&[("service", "registry"), ("account", "svc-*")]), &["*"]),
            entry(spec(&[("type", "repository"), ("name", "*/app")]), &["*"]),
            entry(spec(&[("account", "ab*"), ("name", "abc/*")]), &["*"]),
        ])
        .unwrap();
        let keys: Vec<_> = acl.entries.iter().map(Entry::index_key).collect();
        assert_eq!(keys, [Some((2, "team1/")), Some((0, "svc-")), Some((1, "repository")), Some((2, "abc/"))]);
    }

    /// bench/run.sh's 1000-entry ACL: the anonymous request tries only the last entry,
    /// which is what keeps its cost close to a 10-entry ACL's.
    #[test]
    fn the_bench_acl_tries_only_the_matching_entry() {
        let mut entries: Vec<AclEntrySpec> = (0..999)
            .map(|i| {
                let m = match i % 4 {
                    0 => spec(&[("account", &format!("team{i}-*")), ("name", &format!("team{i}/*"))]),
                    1 => spec(&[("account", &format!("/^svc-{i}-[a-z]+$/")), ("name", &format!("/^svc{i}/.+/"))]),
                    2 => spec(&[("account", "${account}"), ("name", &format!("ns{i}/${{account}}/*"))]),
                    _ => spec(&[("ip", &format!("10.{}.0.0/16", i % 250)), ("name", &format!("lab{i}/*"))]),
                };
                entry(m, &["pull"])
            })
            .collect();
        entries.push(entry(spec(&[("type", "repository")]), &["pull", "push"]));
        let acl = Acl::compile(entries).unwrap();
        let r = req("", "repository", "bench/app", "registry").ip("127.0.0.1").actions(&["pull"]);
        assert_eq!(acl.index.candidates(["", "repository", "bench/app", "registry"]), [999]);
        let rule = Some(MatchedRule { index: 999, comment: None });
        assert_eq!(acl.decide(&r.get()), AuthzOutcome::Decided { actions: vec!["pull".into()], rule });
    }
}
