//! `registry-auth check-config [--strict] CONFIG`: the same `config::load` and `app::build`
//! that `serve` runs (keys, certificates and backends constructed, nothing listening), then
//! the extra checks of [`crate::lint`]. Exit 0 ok, 1 errors, 2 warnings under `--strict`;
//! under `--strict` some warnings (duplicate keys) are errors.
use std::path::Path;
use std::process::ExitCode;

use crate::config::Diagnostic;
use crate::store::SharedStore;
use crate::{app, config, lint};

pub fn run(path: &Path, strict: bool) -> ExitCode {
    let (mut errors, mut warnings) = check(path);
    if strict {
        let (promoted, kept): (Vec<Diagnostic>, Vec<Diagnostic>) =
            warnings.into_iter().partition(|w| w.error_when_strict);
        warnings = kept;
        errors.extend(promoted);
    }
    for error in &errors {
        println!("error: {error}");
    }
    for warning in &warnings {
        println!("warning: {warning}");
    }
    let file = path.display();
    if !errors.is_empty() {
        println!("{file}: {} error(s), {} warning(s)", errors.len(), warnings.len());
        return ExitCode::from(1);
    }
    println!("{file}: OK, {} warning(s)", warnings.len());
    if strict && !warnings.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

/// Every error and warning, load first, then build, then lint (only for a config that built).
pub fn check(path: &Path) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
    let config = match config::load(path) {
        Ok(config) => config,
        Err(e) => return (e.diagnostics.errors, e.diagnostics.warnings),
    };
    let mut warnings = config.warnings.clone();
    match app::build(&config) {
        Ok(built) => {
            warnings.extend(built.warnings);
            warnings.extend(lint::lint(&config));
            let errors = check_store(&config, &built.state.service.store).into_iter().collect();
            if let Some(web) = &built.state.web {
                warnings.extend(check_providers(&config, web));
            }
            (errors, warnings)
        }
        Err(errors) => (errors, warnings),
    }
}

/// A warning for each web sign-in provider whose discovery cannot be fetched now (`serve`
/// logs the same at start and starts anyway).
fn check_providers(config: &config::Config, web: &crate::web::WebSignIn) -> Vec<Diagnostic> {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return Vec::new() };
    let sections = [&config.web_signin.google, &config.web_signin.oidc];
    runtime
        .block_on(web.check_providers())
        .into_iter()
        .map(|(section, why)| {
            let line = sections.iter().copied().flatten().find(|s| s.section == section).map_or(0, |s| s.line);
            Diagnostic {
                path: format!("{section}.issuer"),
                line,
                message: format!("{section}: the identity provider cannot be asked ({why}); its sign-ins fail until it answers"),
                hint: Some("check issuer: (its /.well-known/openid-configuration must answer from this machine) and http_timeout".to_string()),
                error_when_strict: false,
            }
        })
        .collect()
}

/// Connects to the store as `serve` would and says which one answered (Redis is only
/// reached lazily by `build`, so this is where an unreachable Redis shows).
fn check_store(config: &config::Config, store: &SharedStore) -> Option<Diagnostic> {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            return Some(Diagnostic {
                path: "store".into(),
                line: 0,
                message: e.to_string(),
                hint: None,
                error_when_strict: false,
            })
        }
    };
    match runtime.block_on(store.health()) {
        Ok(()) => {
            println!("store: {} answers", store.describe());
            if store.persistent() {
                let hasher = crate::identity::SecretHasher::for_store(&config.store, store.clone());
                println!("store: secrets are kept as HMAC-SHA256 under the key in {}", hasher.describe());
            }
            None
        }
        Err(e) => Some(app::store_diagnostic(&config.store, &e)),
    }
}
