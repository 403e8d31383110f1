//! The stylesheet, compiled into the binary (no frontend build chain, no second server).
use actix_web::http::header;
use actix_web::HttpResponse;

const CONSOLE_CSS: &str = include_str!("../templates/console/console.css");

/// GET `/static/console.css`.
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(CONSOLE_CSS)
}
