//! registry-auth binary: parse the command line, set up logging, dispatch, exit code.
#![forbid(unsafe_code)]
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use registry_auth::cli::{self, Cli, Command};
use registry_auth::{app, certgen, config, expiry_watch, http, ops, recent_events, reload, server, store, telemetry};

fn main() -> ExitCode {
    registry_auth::tls::install_process_provider();
    let normalized = cli::normalize(std::env::args().collect());
    let cli = Cli::parse_from(normalized.args);
    let level = cli.log_level.as_deref().unwrap_or(telemetry::level_for_verbosity(normalized.verbosity.unwrap_or(0)));
    // The server's lines go through a bounded queue and a thread of their own (a request
    // waits for stderr only when the queue is full); the guard, dropped when `main`
    // returns, writes what is still queued.
    let writer = match cli.command {
        Command::Serve { .. } => telemetry::LogWriter::Background,
        _ => telemetry::LogWriter::Direct,
    };
    let _log_guard = telemetry::init(level, cli.log_format, writer);
    for note in &normalized.notes {
        tracing::warn!("{note}");
    }
    match cli.command {
        Command::Serve { config } => serve(&config),
        Command::GenCert(args) => ops::gen_cert::run(&args),
        Command::HashPassword(args) => ops::hash_password::run(&args),
        Command::CheckConfig { strict, config } => ops::check_config::run(&config, strict),
        Command::Explain(args) => ops::explain::run(&args),
        Command::IdentityTokens(command) => ops::identity_tokens::run(&command),
        Command::Robot(command) => ops::robot::run(&command),
        Command::Lockout(command) => ops::lockout::run(&command),
        Command::Jwks { config } => ops::publish::run(&config, ops::publish::Format::Jwks),
        Command::Bundle { config } => ops::publish::run(&config, ops::publish::Format::Bundle),
    }
}

fn serve(path: &Path) -> ExitCode {
    let config = match config::load(path) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!("Failed to load config: {e}");
            return ExitCode::FAILURE;
        }
    };
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if is_default_config(path) {
        if let Err(e) = ensure_default_certificates(&config) {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    }
    let store = match store::open_owned(&config.store) {
        Ok(store) => store,
        Err(e) => {
            tracing::error!("Failed to open the store: {}", app::store_diagnostic(&config.store, &e));
            return ExitCode::FAILURE;
        }
    };
    let built = match app::build_with(&config, store.clone()) {
        Ok(built) => built,
        Err(errors) => {
            for e in &errors {
                tracing::error!("Failed to load config: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    for warning in &built.warnings {
        tracing::warn!("{warning}");
    }
    tracing::info!(
        "Config from {} ({} users, {} ACL static entries)",
        path.display(),
        config.users.as_ref().map_or(0, |u| u.len()),
        config.acl.as_ref().map_or(0, |a| a.entries.len())
    );
    let web = built.state.web.clone();
    let handle = actix_web::web::Data::new(http::StateHandle::new(built.state));
    tracing::info!(store = %store.describe(), "store opened");
    let reloader =
        reload::Reloader::new(path, handle.clone().into_inner(), config.server.clone(), config.store.clone());
    // Kept alive until the server stops; without it, SIGHUP still reloads.
    let _watcher = reload::watch(reloader.clone())
        .inspect_err(|e| tracing::warn!("not watching {} for changes ({e}); reload with SIGHUP", path.display()))
        .ok();
    let watched = handle.clone().into_inner();
    let result = actix_web::rt::System::new().block_on(async move {
        expiry_watch::spawn(watched, expiry_watch::PERIOD);
        recent_events::recorder::start(store.clone());
        if let Some(web) = web {
            // In the background: a slow issuer does not delay the start.
            actix_web::rt::spawn(async move {
                for (section, why) in web.check_providers().await {
                    tracing::warn!(section, "{section}: the identity provider cannot be asked ({why}); its sign-ins fail until it answers (each sign-in tries again)");
                }
            });
        }
        if let Err(e) = reload::spawn_sighup(reloader) {
            tracing::warn!("cannot handle SIGHUP ({e}); config changes need a restart");
        }
        if let config::StoreConfig::Embedded(embedded) = &config.store {
            if let Err(e) = store::admin::serve(&embedded.path, store) {
                tracing::warn!(path = %embedded.path.display(), "cannot open the store's admin socket ({e}); the CLI cannot change the store while this server runs");
            }
        }
        if let Some(acme) = built.acme {
            actix_web::rt::spawn(acme.run());
        }
        let result = server::run(&config.server, built.tls, handle).await;
        // The events of the last moments into the store's list, so that a restart keeps them.
        recent_events::recorder::written().await;
        result
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(255)
        }
    }
}

fn is_default_config(path: &Path) -> bool {
    let default = Path::new(cli::DEFAULT_CONFIG);
    path == default || matches!((path.canonicalize(), default.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// First run of the default config: create the self-signed pairs it names, so that
/// `cargo run --release` works out of the box. Existing files are never touched.
fn ensure_default_certificates(config: &config::Config) -> Result<(), certgen::CertGenError> {
    let pairs: [(&Option<PathBuf>, &Option<PathBuf>); 2] =
        [(&config.server.certificate, &config.server.key), (&config.token.certificate, &config.token.key)];
    let names: Vec<String> = ["localhost", "127.0.0.1", "::1", "registry-auth"].map(String::from).to_vec();
    for (cert, key) in pairs {
        let (Some(cert), Some(key)) = (cert, key) else { continue };
        if !cert.exists() && !key.exists() {
            certgen::write_self_signed(cert, key, &names)?;
            tracing::info!(certificate = %cert.display(), key = %key.display(), "generated a self-signed certificate for the default config");
        }
    }
    Ok(())
}
