//! `multipart/form-data` token requests: the text fields of the body, as Go's
//! `Request.ParseMultipartForm` gives them to docker_auth's `FormValue` (any method).
//! Parsing is multer's; the body was already read within the handler's size limit.
use actix_web::http::header::{self, HeaderMap};
use actix_web::web::Bytes;

use super::body::MAX_BODY_BYTES;

/// The `name=value` pairs of the non-file parts, in body order. Empty when the request is
/// not multipart or the body is malformed: Go then drops the whole multipart form, and
/// docker_auth (which ignores that error) carries on with the query values alone.
pub async fn text_fields(headers: &HeaderMap, body: &[u8]) -> Vec<(String, String)> {
    let Some(boundary) = boundary(headers) else { return Vec::new() };
    match read_fields(boundary, Bytes::copy_from_slice(body)).await {
        Ok(fields) => fields,
        Err(e) => {
            tracing::debug!(error = %e, "malformed multipart body ignored");
            Vec::new()
        }
    }
}

fn boundary(headers: &HeaderMap) -> Option<String> {
    let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    multer::parse_boundary(content_type).ok()
}

async fn read_fields(boundary: String, body: Bytes) -> Result<Vec<(String, String)>, multer::Error> {
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let limits = multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(MAX_BODY_BYTES as u64));
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, limits);
    let mut fields = Vec::new();
    while let Some(field) = multipart.next_field().await? {
        // Go keeps parts without a name out of the form, and files out of `Form`.
        let name = field.name().filter(|n| !n.is_empty()).map(str::to_string);
        let is_file = field.file_name().is_some();
        let value = field.bytes().await?;
        if let (Some(name), false) = (name, is_file) {
            fields.push((name, String::from_utf8_lossy(&value).into_owned()));
        }
    }
    Ok(fields)
}
