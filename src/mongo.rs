//! MongoDB plumbing shared by `mongo_auth` and `acl_mongo`: client options from
//! `dial_info`, and one client per distinct `dial_info`. The driver runs on the shared
//! database runtime (`crate::driver_runtime`).
use mongodb::options::{AuthMechanism, ClientOptions, Credential, ServerAddress, Tls, TlsOptions};
use mongodb::Client;

use crate::config::mongo::DialInfo;
pub use crate::driver_runtime::{run, run_blocking, runtime};

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
