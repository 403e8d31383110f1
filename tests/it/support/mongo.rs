//! A real MongoDB wire-protocol server: SecantusDB (`secantusd-py`, PyPI `secantusdb`,
//! installed by scripts/install-deps.sh) on a random loopback port, its data in a temp dir
//! so it can be stopped and restarted mid-test with its documents intact. Readiness is a
//! driver `ping`, and the test side talks to it with the same official `mongodb` crate.

use std::future::IntoFuture;
use std::process::Command;
use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::options::ClientOptions;
use mongodb::Client;
use tempfile::TempDir;

use super::ports::{free_port, Probe};
use super::process::{require_program, ChildGuard};
use super::temp_dir;

const PROGRAM: &str = "secantusd-py";
const START_TIMEOUT: Duration = Duration::from_secs(60);
pub const DATABASE: &str = "docker_auth";

pub struct Mongo {
    // Declared first so the server stops before its data dir is removed.
    process: Option<ChildGuard>,
    pub port: u16,
    dir: TempDir,
    runtime: tokio::runtime::Runtime,
    client: Client,
}

impl Mongo {
    /// Starts the server; returns once it answers `ping`.
    pub fn start() -> Mongo {
        let dir = temp_dir("mongo");
        let port = free_port();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut options = ClientOptions::default();
        options.hosts = vec![format!("127.0.0.1:{port}").parse().unwrap()];
        options.server_selection_timeout = Some(Duration::from_millis(500));
        let client = {
            let _entered = runtime.enter();
            Client::with_options(options).unwrap()
        };
        let mut mongo = Mongo { process: None, port, dir, runtime, client };
        mongo.restart();
        mongo
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL); its data stays in the temp dir.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// (Re)starts the server on the same port and data dir and waits for `ping`.
    pub fn restart(&mut self) {
        self.stop();
        let program = require_program(PROGRAM);
        let mut command = Command::new(program);
        let data = self.dir.path().join("data");
        command.args(["--host", "127.0.0.1", "--port", &self.port.to_string(), "--storage-path"]).arg(&data);
        let mut process = ChildGuard::spawn(PROGRAM, command, self.dir.path());
        let (client, runtime) = (&self.client, &self.runtime);
        process
            .wait_ready("answers ping", START_TIMEOUT, || {
                match runtime.block_on(client.database("admin").run_command(doc! {"ping": 1}).into_future()) {
                    Ok(_) => Probe::Ready(()),
                    Err(e) => Probe::NotYet(e.to_string()),
                }
            })
            .unwrap_or_else(|e| panic!("{e}"));
        self.process = Some(process);
    }

    pub fn insert(&self, collection: &str, docs: Vec<Document>) {
        let coll = self.client.database(DATABASE).collection::<Document>(collection);
        self.runtime
            .block_on(coll.insert_many(docs).into_future())
            .unwrap_or_else(|e| panic!("insert into {collection}: {e}"));
    }

    pub fn delete(&self, collection: &str, filter: Document) {
        let coll = self.client.database(DATABASE).collection::<Document>(collection);
        self.runtime
            .block_on(coll.delete_many(filter).into_future())
            .unwrap_or_else(|e| panic!("delete in {collection}: {e}"));
    }

    /// The names of the indexes on `collection`.
    pub fn index_names(&self, collection: &str) -> Vec<String> {
        let coll = self.client.database(DATABASE).collection::<Document>(collection);
        self.runtime
            .block_on(coll.list_index_names().into_future())
            .unwrap_or_else(|e| panic!("indexes of {collection}: {e}"))
    }
}
