//! Free loopback ports and readiness polling (no fixed sleeps).

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::thread;
use std::time::{Duration, Instant};

/// Outcome of one readiness probe.
pub enum Probe<T> {
    /// Ready; polling stops with this value.
    Ready(T),
    /// Not ready yet; the reason is reported if the timeout expires.
    NotYet(String),
    /// Will never become ready; polling stops at once.
    Failed(String),
}

/// A port on 127.0.0.1 that was free a moment ago.
///
/// The listener is closed before returning, so another process may grab the
/// port before the caller binds it; fixtures retry on "address already in use".
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("cannot bind 127.0.0.1:0: {e}"));
    listener.local_addr().unwrap_or_else(|e| panic!("cannot read the bound port: {e}")).port()
}

/// Calls `probe` with a short, growing backoff until it is ready, fails, or
/// `timeout` expires. `what` names the awaited condition in the error.
pub fn wait_until<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Probe<T>) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    let mut backoff = Duration::from_millis(5);
    loop {
        let reason = match probe() {
            Probe::Ready(value) => return Ok(value),
            Probe::Failed(reason) => return Err(format!("{what}: {reason}")),
            Probe::NotYet(reason) => reason,
        };
        if Instant::now() >= deadline {
            return Err(format!("{what}: not ready after {timeout:?}: {reason}"));
        }
        thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_millis(100));
    }
}

/// Waits until a TCP connect to `addr` (e.g. "127.0.0.1:5000") succeeds.
pub fn wait_for_tcp(addr: &str, timeout: Duration) -> Result<(), String> {
    let target = resolve(addr)?;
    wait_until(&format!("TCP connect to {addr}"), timeout, || {
        match TcpStream::connect_timeout(&target, Duration::from_millis(250)) {
            Ok(_) => Probe::Ready(()),
            Err(e) => Probe::NotYet(e.to_string()),
        }
    })
}

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    addr.to_socket_addrs()
        .map_err(|e| format!("bad address {addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("address {addr} resolves to nothing"))
}
