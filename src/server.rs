//! Listeners and lifecycle: TCP (plain or rustls) or a unix socket, client timeouts, and a
//! graceful drain on SIGTERM/SIGINT (actix stops accepting and waits for requests in flight).
use std::time::Duration;

use actix_web::{web, HttpServer};

use crate::config::{Net, ServerConfig};
use crate::http::{self, StateHandle};

/// Time allowed for the request head; slow clients cannot hold a worker longer.
const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// How long a shutdown waits for requests in flight.
const SHUTDOWN_TIMEOUT_SECS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("TLS on a unix socket is not supported; remove server.certificate/key or use net: tcp")]
    TlsOnUnix,
    #[error("server stopped with an error: {0}")]
    Run(std::io::Error),
}

/// Go accepts ":5001" for all interfaces; so do we.
pub fn listen_addr(addr: &str) -> String {
    match addr.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => addr.to_string(),
    }
}

/// Binds and serves until a shutdown signal; returns after the drain.
pub async fn run(
    server: &ServerConfig,
    tls: Option<rustls::ServerConfig>,
    handle: web::Data<StateHandle>,
) -> Result<(), ServeError> {
    let factory = move || http::app(handle.clone());
    let builder = HttpServer::new(factory)
        .client_request_timeout(CLIENT_REQUEST_TIMEOUT)
        .client_disconnect_timeout(Duration::from_secs(1))
        .keep_alive(KEEP_ALIVE)
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS);
    let listen_err = |source| ServeError::Listen { addr: server.addr.clone(), source };
    let bound = match (server.net, tls) {
        (Net::Unix, Some(_)) => return Err(ServeError::TlsOnUnix),
        (Net::Unix, None) => {
            // A stale socket from an earlier run would make bind fail.
            let _ = std::fs::remove_file(&server.addr);
            tracing::warn!("Running without TLS");
            builder.bind_uds(&server.addr).map_err(listen_err)?
        }
        (Net::Tcp, Some(tls)) => builder.bind_rustls_0_23(listen_addr(&server.addr), tls).map_err(listen_err)?,
        (Net::Tcp, None) => {
            tracing::warn!("Running without TLS");
            builder.bind(listen_addr(&server.addr)).map_err(listen_err)?
        }
    };
    for addr in bound.addrs() {
        tracing::info!(%addr, "Serving");
    }
    if server.net == Net::Unix {
        tracing::info!(path = %server.addr, "Serving on unix socket");
    }
    bound.run().await.map_err(ServeError::Run)?;
    tracing::info!("Server stopped");
    Ok(())
}
