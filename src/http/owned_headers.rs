//! Request header values get their own bytes, so that a finished request does not keep its
//! connection's read buffer alive.
//!
//! actix-http parses header values as slices of the connection's read buffer (no copy), and
//! actix-web keeps up to 128 finished `HttpRequest`s per worker in a pool *with their head*
//! until a later request reuses the entry (last in, first out: under light load the bottom
//! entries are never reused). The read buffer grows with what arrives before the head is
//! parsed: a head sent together with a 64 KB body (issue 17's flood), pipelined requests or
//! oversized headers leave it at 64-256 KiB, and one header value is enough to pin all of
//! it. After a flood of 15,000 such bodies, 2 workers × 128 pooled heads held ~20 MB this
//! way for the life of the process (massif: all of it allocated in the
//! dispatcher's `read_available`). Copying the values (a few short strings per request,
//! ~300 bytes for a token request) bounds what the pools keep to those copies.
//!
//! The pools keep the header maps too. A head made when its pool was empty gets a map
//! with room for 16 headers (6.5 KiB); made during a flood, between the bodies' buffers,
//! each such map pinned its pages after the buffers were given back (heaptrack after
//! issue 17's flood: 388 of them live, 2.5 MB, ~5 MB resident). A map with far more room
//! than its request's headers is therefore rebuilt at their size, once per new head: a
//! pooled head keeps the small map, grown only as far as later requests need.
use actix_web::dev::ServiceRequest;
use actix_web::http::header::{HeaderMap, HeaderValue};

/// A map with room for more than this many headers beyond twice its own is rebuilt.
const SPARE_ROOM: usize = 8;

/// Replaces every header value by a copy that owns its bytes, in a map sized to them.
/// Called first thing for each request, while actix-web still holds the only reference to
/// it (so `headers_mut` cannot panic).
pub fn own_header_values(req: &mut ServiceRequest) {
    own_values(req.headers_mut());
}

fn own_values(headers: &mut HeaderMap) {
    if headers.capacity() > 2 * headers.len() + SPARE_ROOM {
        let names = headers.len_keys();
        let parsed = std::mem::replace(headers, HeaderMap::with_capacity(names));
        for (name, value) in parsed {
            headers.append(name, owned(&value));
        }
        return;
    }
    headers.retain(|_, value| {
        *value = owned(value);
        true
    });
}

/// A copy of `value` with bytes of its own and the same sensitivity.
fn owned(value: &HeaderValue) -> HeaderValue {
    // `from_bytes` copies; it accepts every value the parser does (else the value, which
    // cannot happen, stays as it was).
    match HeaderValue::from_bytes(value.as_bytes()) {
        Ok(mut owned) => {
            owned.set_sensitive(value.is_sensitive());
            owned
        }
        Err(_) => value.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderName;
    use bytes::Bytes;

    #[test]
    fn values_are_copied_unchanged_and_stop_sharing_the_buffer() {
        let buffer = Bytes::from(vec![b'x'; 64 * 1024]);
        let mut headers = HeaderMap::new();
        let name = HeaderName::from_static("authorization");
        let mut secret = HeaderValue::from_maybe_shared(buffer.slice(0..10)).unwrap();
        secret.set_sensitive(true);
        headers.append(name.clone(), secret);
        headers.append(name.clone(), HeaderValue::from_maybe_shared(buffer.slice(10..12)).unwrap());
        headers.append(HeaderName::from_static("host"), HeaderValue::from_maybe_shared(buffer.slice(20..25)).unwrap());
        let range = buffer.as_ptr_range();
        own_values(&mut headers);
        assert_eq!(headers.len(), 3);
        let values: Vec<_> = headers.get_all(&name).collect();
        assert_eq!(values[0].as_bytes(), b"xxxxxxxxxx");
        assert!(values[0].is_sensitive());
        assert_eq!(values[1].as_bytes(), b"xx");
        assert!(!values[1].is_sensitive());
        for (_, value) in headers.iter() {
            assert!(!range.contains(&value.as_bytes().as_ptr()), "a value still points into the read buffer");
        }
    }

    #[test]
    fn a_new_heads_roomy_map_is_rebuilt_at_its_size_in_order() {
        // What actix-http gives a head made when its pool was empty.
        let mut headers = HeaderMap::with_capacity(16);
        let cookie = HeaderName::from_static("cookie");
        headers.append(HeaderName::from_static("host"), HeaderValue::from_static("registry.example"));
        headers.append(cookie.clone(), HeaderValue::from_static("a=1"));
        headers.append(cookie.clone(), HeaderValue::from_static("b=2"));
        let mut secret = HeaderValue::from_static("Basic eDp5");
        secret.set_sensitive(true);
        headers.append(HeaderName::from_static("authorization"), secret);
        let roomy = headers.capacity();
        own_values(&mut headers);
        assert!(headers.capacity() < roomy / 2, "{} of {roomy}", headers.capacity());
        assert_eq!(headers.len(), 4);
        let cookies: Vec<_> = headers.get_all(&cookie).map(|v| v.as_bytes()).collect();
        assert_eq!(cookies, [&b"a=1"[..], b"b=2"]);
        assert_eq!(headers.get("host").unwrap().as_bytes(), b"registry.example");
        assert!(headers.get("authorization").unwrap().is_sensitive());
        // A map already about its size is kept: no allocation per request once pooled.
        let small = headers.capacity();
        own_values(&mut headers);
        assert_eq!(headers.capacity(), small);
    }
}
