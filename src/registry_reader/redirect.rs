//! Following a registry's redirect of a blob read to its storage (S3, a CDN, distribution's
//! `redirect` middleware): where it points, whether our token may go there (only to the
//! registry's own origin: storage never sees it), and how a storage URL is named in errors
//! (without its query, which for a presigned URL is a signature).
use http::StatusCode;
use url::Url;

use super::http::Answer;
use super::ReadError;

/// Redirects followed for one read; past this the read fails (a loop, or a misconfiguration).
pub const MAX_HOPS: usize = 5;

pub fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// The `Location` of `answer`, resolved against `from` (the URL that answered); http(s) only.
pub fn target(from: &Url, answer: &Answer) -> Result<Url, ReadError> {
    let location = answer
        .header(http::header::LOCATION)
        .ok_or_else(|| ReadError::BadAnswer(format!("a redirect ({}) without a Location", answer.status.as_u16())))?;
    let to = from.join(location).map_err(|e| ReadError::BadAnswer(format!("a redirect to an unusable URL: {e}")))?;
    if !matches!(to.scheme(), "http" | "https") || to.host_str().is_none() {
        return Err(ReadError::BadAnswer(format!("a redirect to a {}: URL", to.scheme())));
    }
    Ok(to)
}

/// Our bearer token goes only where it came from: the registry's scheme, host and port.
pub fn may_carry_token(registry: &Url, to: &Url) -> bool {
    registry.origin() == to.origin()
}

/// `scheme://host[:port]/path`: no query (a presigned URL's signature) and no user info.
pub fn shown(url: &Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, location: Option<&str>) -> Answer {
        let mut headers = http::HeaderMap::new();
        if let Some(location) = location {
            headers.insert(http::header::LOCATION, location.parse().unwrap());
        }
        Answer { status: StatusCode::from_u16(status).unwrap(), headers, body: bytes::Bytes::new() }
    }

    #[test]
    fn targets_tokens_and_names() {
        let registry = Url::parse("https://registry.test:5000/").unwrap();
        let from = registry.join("/v2/a/blobs/sha256:1").unwrap();
        let relative = target(&from, &answer(307, Some("/other/path?x=1"))).unwrap();
        assert_eq!(relative.as_str(), "https://registry.test:5000/other/path?x=1");
        assert!(may_carry_token(&registry, &relative));
        let storage =
            target(&from, &answer(302, Some("https://bucket.s3.test/docker/blob?X-Amz-Signature=secret"))).unwrap();
        assert!(!may_carry_token(&registry, &storage));
        assert_eq!(shown(&storage), "https://bucket.s3.test/docker/blob");
        // Same host, another port or scheme: another origin.
        for other in ["https://registry.test:5001/x", "http://registry.test:5000/x", "https://registry.test/x"] {
            assert!(!may_carry_token(&registry, &Url::parse(other).unwrap()), "{other}");
        }
        assert!(target(&from, &answer(307, None)).is_err());
        assert!(target(&from, &answer(307, Some("file:///etc/passwd"))).is_err());
        assert!(target(&from, &answer(307, Some("javascript:alert(1)"))).is_err());
        assert!(is_redirect(StatusCode::TEMPORARY_REDIRECT) && !is_redirect(StatusCode::NOT_MODIFIED));
    }
}
