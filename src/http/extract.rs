//! Reads a token request the way docker_auth does (parity.md §1.2): form values (body
//! first, then query), Basic credentials as Go's `Request.BasicAuth`, and the client IP.
use std::net::{IpAddr, SocketAddr};

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::Method;
use base64::Engine as _;

use super::error::HttpError;

/// Form values in Go's `Request.Form` order: POST body values first, then query values.
#[derive(Debug, Default)]
pub struct Form {
    values: Vec<(String, String)>,
}

impl Form {
    /// Parses the query, and the body when the request is a POST/PUT/PATCH with a
    /// `application/x-www-form-urlencoded` content type (charset parameters allowed).
    /// Pairs that do not decode are skipped, as Go's `url.ParseQuery` does.
    pub fn parse(method: &Method, headers: &HeaderMap, query: &str, body: &[u8]) -> Form {
        let mut values = Vec::new();
        let body_is_form = matches!(*method, Method::POST | Method::PUT | Method::PATCH) && is_form_content(headers);
        if body_is_form {
            parse_urlencoded(body, &mut values);
        }
        parse_urlencoded(query.as_bytes(), &mut values);
        Form { values }
    }

    /// Adds values read after the query, as Go's `ParseMultipartForm` appends them.
    pub fn extend(&mut self, values: Vec<(String, String)>) {
        self.values.extend(values);
    }

    /// The first value for `key`, or "" (Go's `FormValue`).
    pub fn first(&self, key: &str) -> &str {
        self.values.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
    }

    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.values.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn is_form_content(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// Go's `url.ParseQuery`: `&`-separated pairs; a pair containing `;` or a bad `%` escape
/// is skipped (Go records an error that docker_auth never sees) and the rest are kept.
fn parse_urlencoded(input: &[u8], out: &mut Vec<(String, String)>) {
    for pair in input.split(|b| *b == b'&') {
        if pair.is_empty() || pair.contains(&b';') || !valid_escapes(pair) {
            continue;
        }
        out.extend(form_urlencoded::parse(pair).into_owned());
    }
}

/// Every `%` is followed by two hex digits (what Go's unescaping requires).
fn valid_escapes(input: &[u8]) -> bool {
    let mut i = 0;
    while let Some(pos) = input[i..].iter().position(|b| *b == b'%') {
        let at = i + pos;
        match input.get(at + 1..at + 3) {
            Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => i = at + 3,
            _ => return false,
        }
    }
    true
}

/// The request path percent-decoded, as Go's `URL.Path` (docker_auth routes on it); `None`
/// when an escape is malformed (Go's server answers 400 before any handler runs).
pub fn decoded_path(raw: &str) -> Option<std::borrow::Cow<'_, str>> {
    valid_escapes(raw.as_bytes()).then(|| percent_encoding::percent_decode_str(raw).decode_utf8_lossy())
}

/// Credentials from `Authorization: Basic` (scheme case-insensitive, split at the first
/// colon, empty parts allowed). A malformed header counts as absent, as in Go.
pub fn basic_auth(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, encoded) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8_lossy(&decoded);
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// Where the client address comes from.
#[derive(Debug, Clone, Default)]
pub struct RealIp {
    pub header: Option<String>,
    pub position: i64,
}

/// The client IP: the peer address, or element `position` of the configured header.
/// `Ok(None)` when there is no IP to know (a unix-socket peer).
pub fn client_ip(real_ip: &RealIp, headers: &HeaderMap, peer: Option<SocketAddr>) -> Result<Option<IpAddr>, HttpError> {
    let Some(name) = &real_ip.header else {
        return Ok(peer.map(|p| p.ip()));
    };
    let not_provided = || HttpError::BadRequest("client address not provided".into());
    let value = headers.get(name.as_str()).and_then(|v| v.to_str().ok()).unwrap_or("");
    if value.is_empty() {
        return Err(not_provided());
    }
    let parts: Vec<&str> = value.split(',').collect();
    let len = parts.len() as i64;
    let index = if real_ip.position < 0 { (len + real_ip.position).max(0) } else { real_ip.position };
    // docker_auth panics past the end; we answer as for a missing address.
    let raw = parts.get(index as usize).map(|p| p.trim()).ok_or_else(not_provided)?;
    if raw.is_empty() {
        return Err(not_provided());
    }
    parse_addr(raw).map(Some).ok_or_else(|| HttpError::BadRequest(format!("unable to parse remote addr {raw}")))
}

/// `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1` and `[2001:db8::1]:443`; not `[2001:db8::1]`.
fn parse_addr(raw: &str) -> Option<IpAddr> {
    if let Ok(addr) = raw.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    raw.parse::<IpAddr>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn basic_auth_like_go() {
        let enc = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let h = headers(&[("authorization", &format!("bAsIc {}", enc("u:p:with:colons")))]);
        assert_eq!(basic_auth(&h), Some(("u".into(), "p:with:colons".into())));
        assert_eq!(
            basic_auth(&headers(&[("authorization", &format!("Basic {}", enc(":")))])),
            Some((String::new(), String::new()))
        );
        assert_eq!(basic_auth(&headers(&[("authorization", "Bearer abc")])), None);
        assert_eq!(basic_auth(&headers(&[("authorization", "Basic !!!")])), None);
        assert_eq!(basic_auth(&headers(&[("authorization", &format!("Basic {}", enc("nocolon")))])), None);
    }

    #[test]
    fn form_body_comes_before_query_and_needs_form_content_type() {
        let h = headers(&[("content-type", "application/x-www-form-urlencoded; charset=utf-8")]);
        let f = Form::parse(&Method::POST, &h, "account=q&scope=b", b"account=body&scope=a");
        assert_eq!(f.first("account"), "body");
        assert_eq!(f.all("scope").collect::<Vec<_>>(), ["a", "b"]);
        let f = Form::parse(&Method::GET, &h, "account=q", b"account=body");
        assert_eq!(f.first("account"), "q");
        let f = Form::parse(&Method::POST, &headers(&[("content-type", "text/plain")]), "", b"account=body");
        assert_eq!(f.first("account"), "");
    }

    #[test]
    fn undecodable_pairs_are_skipped_and_plus_is_space() {
        let f = Form::parse(&Method::GET, &HeaderMap::new(), "scope=%zz&account=a&x%=1&b=%4&c=1;d=2&&e", b"");
        assert_eq!(f.values, [("account".to_string(), "a".to_string()), ("e".to_string(), String::new())]);
        let f = Form::parse(&Method::GET, &HeaderMap::new(), "scope=a+b%20c", b"");
        assert_eq!(f.first("scope"), "a b c");
    }

    #[test]
    fn client_ip_from_header_positions() {
        let real = |pos| RealIp { header: Some("X-Forwarded-For".into()), position: pos };
        let h = headers(&[("x-forwarded-for", "1.1.1.1, 2.2.2.2:80 ,[2001:db8::1]:443")]);
        let ip = |pos| client_ip(&real(pos), &h, None);
        assert_eq!(ip(0).unwrap(), Some("1.1.1.1".parse().unwrap()));
        assert_eq!(ip(1).unwrap(), Some("2.2.2.2".parse().unwrap()));
        assert_eq!(ip(-1).unwrap(), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(ip(-9).unwrap(), Some("1.1.1.1".parse().unwrap()));
        assert!(ip(3).is_err());
        assert!(client_ip(&real(0), &HeaderMap::new(), None).is_err());
        let bad = headers(&[("x-forwarded-for", "[2001:db8::1]")]);
        assert!(client_ip(&real(0), &bad, None).is_err());
    }

    #[test]
    fn peer_address_without_header_config() {
        let peer: SocketAddr = "[::ffff:127.0.0.1]:5000".parse().unwrap();
        assert_eq!(client_ip(&RealIp::default(), &HeaderMap::new(), Some(peer)).unwrap(), Some(peer.ip()));
        assert_eq!(client_ip(&RealIp::default(), &HeaderMap::new(), None).unwrap(), None);
    }
}
