//! MongoDB plumbing shared by `mongo_auth` and `acl_mongo`: one driver runtime for the
//! process, client options from `dial_info`, and one client per distinct `dial_info`.
//!
//! Why a runtime of its own: configs are built before (and outside) the HTTP runtime, and
//! actix runs one single-threaded runtime per worker. The driver's connection pools and
//! monitors live on one dedicated thread; requests hand their operations to it with
//! [`run`] and await the answer from whichever runtime they are on.
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use mongodb::options::{AuthMechanism, ClientOptions, Credential, ServerAddress, Tls, TlsOptions};
use mongodb::Client;
use tokio::runtime::Handle;

use crate::config::mongo::DialInfo;

static RUNTIME: OnceLock<Result<Handle, String>> = OnceLock::new();

/// The driver runtime, started on first use on a thread named `mongodb`.
pub fn runtime() -> Result<Handle, String> {
    RUNTIME.get_or_init(start_runtime).clone()
}

fn start_runtime() -> Result<Handle, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the MongoDB runtime: {e}"))?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("mongodb".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))
        .map_err(|e| format!("cannot start the MongoDB thread: {e}"))?;
    Ok(handle)
}

/// Runs `operation` on the driver runtime and waits for it from any runtime.
pub async fn run<T, F>(operation: F) -> Result<T, String>
where
    F: Future<Output = Result<T, mongodb::error::Error>> + Send + 'static,
    T: Send + 'static,
{
    let handle = runtime()?;
    match handle.spawn(operation).await {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(e) => Err(format!("MongoDB operation was interrupted: {e}")),
    }
}

/// Runs `operation` on the driver runtime from synchronous code (start-up), waiting at
/// most `limit`. Safe to call from inside another runtime's thread.
pub fn run_blocking<T, F>(operation: F, limit: Duration) -> Result<T, String>
where
    F: Future<Output = Result<T, String>> + Send + 'static,
    T: Send + 'static,
{
    let handle = runtime()?;
    let (sender, receiver) = std::sync::mpsc::channel();
    handle.spawn(async move {
        let _ = sender.send(operation.await);
    });
    receiver.recv_timeout(limit).map_err(|_| format!("no answer from MongoDB within {limit:?}"))?
}

/// Clients made for one config, so `mongo_auth` and `acl_mongo` with the same `dial_info`
/// share a connection pool.
#[derive(Default)]
pub struct Clients {
    made: Vec<(DialInfo, Client)>,
}

impl Clients {
    pub fn get(&mut self, dial: &DialInfo) -> Result<Client, String> {
        if let Some((_, client)) = self.made.iter().find(|(d, _)| d == dial) {
            return Ok(client.clone());
        }
        let options = client_options(dial)?;
        let handle = runtime()?;
        // The driver starts its monitors on the current runtime: make that ours.
        let _entered = handle.enter();
        let client = Client::with_options(options).map_err(|e| e.to_string())?;
        self.made.push((dial.clone(), client.clone()));
        Ok(client)
    }
}

fn client_options(dial: &DialInfo) -> Result<ClientOptions, String> {
    let hosts = dial
        .addrs
        .iter()
        .map(|a| ServerAddress::parse(a).map_err(|e| format!("invalid address {a:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut options = ClientOptions::default();
    options.hosts = hosts;
    options.app_name = Some("registry-auth".into());
    options.connect_timeout = Some(dial.timeout);
    options.server_selection_timeout = Some(dial.timeout);
    options.direct_connection = dial.direct.then_some(true);
    options.tls = dial.enable_tls.then(|| Tls::Enabled(TlsOptions::default()));
    options.credential = credential(dial)?;
    Ok(options)
}

fn credential(dial: &DialInfo) -> Result<Option<Credential>, String> {
    let Some(username) = &dial.username else { return Ok(None) };
    let mut credential = Credential::default();
    credential.username = Some(username.clone());
    credential.password = dial.password.as_ref().map(|p| p.expose().to_string());
    credential.source = Some(dial.source.clone());
    if let Some(name) = &dial.mechanism {
        credential.mechanism = Some(name.parse::<AuthMechanism>().map_err(|e| e.to_string())?);
    }
    Ok(Some(credential))
}
