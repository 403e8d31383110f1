//! Listeners and lifecycle: TCP (plain or rustls) or a unix socket, client timeouts, and a
//! graceful drain on SIGTERM/SIGINT (actix stops accepting and waits for requests in flight).
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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

/// Counts open connections to say so in the log when `server.max_connections` is reached
/// (actix then stops accepting: new connections wait in the kernel's listen backlog).
struct OpenConnections {
    open: AtomicUsize,
    limit: usize,
    /// Unix second of the last warning, so that a flood writes one line per minute.
    warned_at: AtomicU64,
}

const WARN_EVERY_SECS: u64 = 60;

impl OpenConnections {
    fn new(limit: usize) -> OpenConnections {
        OpenConnections { open: AtomicUsize::new(0), limit, warned_at: AtomicU64::new(0) }
    }

    fn opened(self: &Arc<Self>) -> ConnectionGuard {
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        if open >= self.limit {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let last = self.warned_at.load(Ordering::Relaxed);
            let due = now >= last + WARN_EVERY_SECS;
            if due && self.warned_at.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
                tracing::warn!(
                    open,
                    limit = self.limit,
                    "connection limit reached (server.max_connections = {}): new connections wait until others close",
                    self.limit
                );
            }
        }
        ConnectionGuard(self.clone())
    }
}

/// Lives in the connection's data; dropped when the connection closes.
struct ConnectionGuard(Arc<OpenConnections>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
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
    let factory = move || {
        // Called once on each worker thread, whose runtime lasts as long as the thread.
        crate::store::runtime::this_thread_keeps_its_runtime();
        http::app(handle.clone())
    };
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let connections = Arc::new(OpenConnections::new(server.max_connections));
    let builder = HttpServer::new(factory)
        .workers(workers)
        // actix counts per worker; the total is what the operator configured.
        .max_connections(server.max_connections.div_ceil(workers))
        .on_connect(move |_, extensions| {
            extensions.insert(connections.opened());
        })
        // A client that closes its side has gone: drop its request (and its queued bcrypt
        // job) instead of finishing it for nobody. Token clients never half-close.
        .h1_allow_half_closed(false)
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
    // The workers are started (and ready) once `run` returns: what start-up alone needed
    // (its heap garbage, the code pages of config parsing and key loading) goes back now.
    let running = bound.run();
    crate::heap_trim::after_start_up();
    running.await.map_err(ServeError::Run)?;
    tracing::info!("Server stopped");
    Ok(())
}
