//! The Operators overview: the signing certificate's expiry (what `expiry_watch` warns
//! about) and the `check-config` findings of the running config (the load's and build's
//! warnings and the lint checks), with whether the store answers now.
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use askama::Template;

use super::{utc, Operator, SubNav};
use crate::web::console::page::{self, Layout};
use crate::web::console::ConsoleError;

#[derive(Template)]
#[template(path = "console/operators/overview.html")]
struct OverviewPage {
    layout: Layout,
    subnav: SubNav,
    not_after: String,
    days_left: i64,
    /// The expiry watch's warning, when within its window or past.
    expiry_warning: Option<String>,
    store: String,
    store_error: Option<String>,
    findings: Vec<String>,
}

/// GET `/operators`.
pub async fn page(op: Operator) -> Result<HttpResponse, ConsoleError> {
    let not_after = op.ctx.service().issuer.key().not_after_unix();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ops = &op.ctx.console().ops;
    let mut findings: Vec<String> = Vec::new();
    if let Some(config) = ops.config() {
        findings.extend(config.warnings.iter().map(ToString::to_string));
        findings.extend(ops.build_warnings().iter().map(ToString::to_string));
        let linted = crate::lint::lint(config);
        findings.extend(linted.iter().map(ToString::to_string));
    }
    findings.dedup();
    let store = op.ctx.service().store.clone();
    let store_error = store.health().await.err().map(|e| {
        tracing::warn!(error = %e, "console overview: the store does not answer");
        "the store does not answer (the log names the error)".to_string()
    });
    let page = OverviewPage {
        layout: Layout::new(&op.session, "operators"),
        subnav: SubNav { current: "overview" },
        not_after: utc(not_after),
        days_left: (not_after - now).div_euclid(86_400),
        expiry_warning: crate::expiry_watch::warning(not_after, now),
        store: store.describe().to_string(),
        store_error,
        findings,
    };
    Ok(page::html(StatusCode::OK, page.render()))
}
