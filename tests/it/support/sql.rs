//! Real SQL servers for the `xorm_auth` / `acl_xorm` tests, each in a temp dir on a random
//! loopback port, never touching a system database:
//! - PostgreSQL: `initdb` (scram-sha-256, a password for the test user) and `postgres`
//!   (`-k <dir> -h 127.0.0.1 -p <port>`). Both refuse root, so as root they run as `nobody`
//!   through `setpriv`, with the temp dir handed to that user.
//! - MariaDB: `mariadb-install-db` into a temp datadir and `mariadbd` with its own socket
//!   and port (`--user=root` when the tests run as root, which mariadbd otherwise refuses).
//! - SQLite: a temp file.
//!
//! Each server is stopped gracefully (SIGINT/SIGTERM) and can be restarted on the same
//! port and data, to stage an outage. The test side talks to it through sqlx.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::Connection;
use tempfile::TempDir;

use super::ports::{free_port, Probe};
use super::process::{require_program, ChildGuard};
use super::temp_dir;

const START_TIMEOUT: Duration = Duration::from_secs(90);
/// The account the auth server uses (a password with characters that need escaping).
pub const DB_USER: &str = "registry";
pub const DB_PASSWORD: &str = "p@ss:w rd";
pub const DB_NAME: &str = "auth";

enum Client {
    Postgres(PgPool),
    MySql(MySqlPool),
    Sqlite(SqlitePool),
}

enum Server {
    Postgres { bin: PathBuf },
    MariaDb,
    Sqlite,
}

/// One database server (or file) and an admin connection to it.
pub struct SqlDb {
    // Declared first so the server stops before its data dir is removed.
    process: Option<ChildGuard>,
    server: Server,
    pub port: u16,
    pub dir: TempDir,
    runtime: tokio::runtime::Runtime,
    client: Option<Client>,
}

impl SqlDb {
    pub fn postgres() -> SqlDb {
        let bin = postgres_bin_dir();
        let mut db = SqlDb::new(Server::Postgres { bin: bin.clone() }, "postgres");
        let data = db.dir.path().join("data");
        let pwfile = db.dir.path().join("pwfile");
        std::fs::write(&pwfile, "admin-pw\n").unwrap();
        hand_to_unprivileged_user(db.dir.path());
        let mut initdb = unprivileged(&bin.join("initdb"));
        initdb.arg("-D").arg(&data).args(["-U", "postgres", "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"]);
        initdb.arg(format!("--pwfile={}", pwfile.display()));
        run_to_end("initdb", initdb, db.dir.path());
        db.restart();
        db.admin(&format!("CREATE USER {DB_USER} PASSWORD '{DB_PASSWORD}'"));
        db.admin(&format!("CREATE DATABASE {DB_NAME} OWNER {DB_USER}"));
        db
    }

    pub fn mariadb() -> SqlDb {
        let mut db = SqlDb::new(Server::MariaDb, "mariadb");
        let mut install = Command::new(require_program("mariadb-install-db"));
        install.arg("--no-defaults").arg(format!("--datadir={}", db.dir.path().join("data").display()));
        install.args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        install.args(root_user_flag());
        run_to_end("mariadb-install-db", install, db.dir.path());
        db.restart();
        db.admin(&format!("CREATE DATABASE {DB_NAME}"));
        db.admin(&format!("CREATE USER '{DB_USER}'@'%' IDENTIFIED BY '{DB_PASSWORD}'"));
        db.admin(&format!("GRANT ALL ON {DB_NAME}.* TO '{DB_USER}'@'%'"));
        db
    }

    pub fn sqlite() -> SqlDb {
        let mut db = SqlDb::new(Server::Sqlite, "sqlite");
        db.restart();
        db
    }

    fn new(server: Server, label: &str) -> SqlDb {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        SqlDb { process: None, server, port: free_port(), dir: temp_dir(label), runtime, client: None }
    }

    /// docker_auth's `database_type`.
    pub fn database_type(&self) -> &'static str {
        match self.server {
            Server::Postgres { .. } => "postgres",
            Server::MariaDb => "mysql",
            Server::Sqlite => "sqlite3",
        }
    }

    /// A `conn_string` for the auth server in the driver's usual form.
    pub fn conn_string(&self) -> String {
        match self.server {
            Server::Postgres { .. } => format!(
                "postgres://{DB_USER}:{}@127.0.0.1:{}/{DB_NAME}?sslmode=disable",
                DB_PASSWORD.replace('@', "%40").replace(':', "%3A").replace(' ', "%20"),
                self.port
            ),
            Server::MariaDb => format!("{DB_USER}:{DB_PASSWORD}@tcp(127.0.0.1:{})/{DB_NAME}?charset=utf8", self.port),
            Server::Sqlite => self.sqlite_path().display().to_string(),
        }
    }

    /// The other spelling of the same connection: lib/pq `key=value`, a MySQL unix socket.
    pub fn alternate_conn_string(&self) -> String {
        match self.server {
            Server::Postgres { .. } => format!(
                "host=127.0.0.1 port={} user={DB_USER} password='{DB_PASSWORD}' dbname={DB_NAME} sslmode=disable",
                self.port
            ),
            Server::MariaDb => format!("{DB_USER}:{DB_PASSWORD}@unix({})/{DB_NAME}", self.socket().display()),
            Server::Sqlite => format!("file:{}?_busy_timeout=2000", self.sqlite_path().display()),
        }
    }

    fn sqlite_path(&self) -> PathBuf {
        self.dir.path().join("auth.db")
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("mysqld.sock")
    }

    /// Runs statements (`;`-separated) in the auth database as its owner.
    pub fn exec(&self, sql: &str) {
        let client = self.client.as_ref().expect("the database is stopped");
        let done = self.runtime.block_on(async {
            match client {
                Client::Postgres(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
                Client::MySql(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
                Client::Sqlite(p) => sqlx::raw_sql(sql).execute(p).await.map(drop),
            }
        });
        done.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Runs one statement as the server's superuser (outside the auth database).
    fn admin(&self, sql: &str) {
        let done = self.runtime.block_on(async {
            match &self.server {
                Server::Postgres { .. } => {
                    let mut conn = PgConnection::connect_with(&self.pg_admin()).await?;
                    sqlx::raw_sql(sql).execute(&mut conn).await.map(drop)
                }
                Server::MariaDb => {
                    let mut conn = MySqlConnection::connect_with(&self.maria_root()).await?;
                    sqlx::raw_sql(sql).execute(&mut conn).await.map(drop)
                }
                Server::Sqlite => unreachable!("SQLite has no server"),
            }
        });
        done.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn pg_admin(&self) -> PgConnectOptions {
        self.pg_options("postgres", "admin-pw", "postgres")
    }

    fn pg_options(&self, user: &str, password: &str, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .host("127.0.0.1")
            .port(self.port)
            .username(user)
            .password(password)
            .database(database)
            .ssl_mode(PgSslMode::Disable)
    }

    fn maria_root(&self) -> MySqlConnectOptions {
        MySqlConnectOptions::new().socket(self.socket()).username("root")
    }

    /// Stops the server gracefully; its data stays.
    pub fn stop(&mut self) {
        self.client = None;
        if let Some(mut process) = self.process.take() {
            let signal = match self.server {
                Server::Postgres { .. } => rustix::process::Signal::INT,
                _ => rustix::process::Signal::TERM,
            };
            if let Some(pid) = rustix::process::Pid::from_raw(process.id() as i32) {
                let _ = rustix::process::kill_process(pid, signal);
            }
            let _ = process.wait_ready("exits", Duration::from_secs(30), || Probe::<()>::NotYet("running".into()));
            process.kill();
        }
    }

    /// (Re)starts the server on the same port and data; returns once it answers.
    pub fn restart(&mut self) {
        self.stop();
        if let Some((name, command)) = self.server_command() {
            let mut process = ChildGuard::spawn(name, command, self.dir.path());
            let (pg, maria) = (self.pg_admin(), self.maria_root());
            let runtime = &self.runtime;
            let server = &self.server;
            process
                .wait_ready("accepts connections", START_TIMEOUT, || {
                    let answered = runtime.block_on(async {
                        match server {
                            Server::Postgres { .. } => PgConnection::connect_with(&pg).await.map(drop),
                            _ => MySqlConnection::connect_with(&maria).await.map(drop),
                        }
                    });
                    match answered {
                        Ok(()) => Probe::Ready(()),
                        Err(e) => Probe::NotYet(e.to_string()),
                    }
                })
                .unwrap_or_else(|e| panic!("{e}"));
            self.process = Some(process);
        }
        // Lazy: the auth database of a fresh server exists only once `admin` made it.
        let _entered = self.runtime.enter();
        self.client = Some(match self.server {
            Server::Postgres { .. } => {
                Client::Postgres(PgPoolOptions::new().max_connections(2).connect_lazy_with(self.pg_options(
                    DB_USER,
                    DB_PASSWORD,
                    DB_NAME,
                )))
            }
            Server::MariaDb => Client::MySql(
                MySqlPoolOptions::new().max_connections(2).connect_lazy_with(self.maria_root().database(DB_NAME)),
            ),
            Server::Sqlite => {
                let options = SqliteConnectOptions::new().filename(self.sqlite_path()).create_if_missing(true);
                Client::Sqlite(SqlitePoolOptions::new().max_connections(1).connect_lazy_with(options))
            }
        });
    }

    fn server_command(&self) -> Option<(&'static str, Command)> {
        let dir = self.dir.path();
        match &self.server {
            Server::Postgres { bin } => {
                let mut command = unprivileged(&bin.join("postgres"));
                command.arg("-D").arg(dir.join("data")).arg("-k").arg(dir);
                command.args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-F", "-c", "max_connections=40"]);
                Some(("postgres", command))
            }
            Server::MariaDb => {
                let mut command = Command::new(require_program("mariadbd"));
                command.arg("--no-defaults").arg(format!("--datadir={}", dir.join("data").display()));
                command.arg(format!("--socket={}", self.socket().display()));
                command.arg(format!("--pid-file={}", dir.join("mariadbd.pid").display()));
                command.arg(format!("--tmpdir={}", dir.display()));
                command.args(["--bind-address=127.0.0.1", &format!("--port={}", self.port), "--skip-name-resolve"]);
                command.args(["--innodb-buffer-pool-size=16M", "--innodb-flush-log-at-trx-commit=0"]);
                command.args(root_user_flag());
                Some(("mariadbd", command))
            }
            Server::Sqlite => None,
        }
    }
}

impl Drop for SqlDb {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where Debian's PostgreSQL keeps `initdb` and `postgres` (not on `$PATH`).
fn postgres_bin_dir() -> PathBuf {
    if let Ok(found) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = found.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        if let Some(bin) = versions.into_iter().rev().find(|bin| bin.join("postgres").is_file()) {
            return bin;
        }
    }
    require_program("initdb").parent().unwrap().to_path_buf()
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// `--user=root` for mariadbd run by root (it refuses root otherwise).
fn root_user_flag() -> Vec<String> {
    if is_root() {
        vec!["--user=root".into()]
    } else {
        Vec::new()
    }
}

/// `program`, run as `nobody` when we are root (initdb and postgres refuse root).
fn unprivileged(program: &Path) -> Command {
    if !is_root() {
        return Command::new(program);
    }
    let mut command = Command::new(require_program("setpriv"));
    command.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]).arg(program);
    command
}

/// Gives `dir` (and what is in it) to `nobody` when we are root.
fn hand_to_unprivileged_user(dir: &Path) {
    if !is_root() {
        return;
    }
    let status = Command::new("chown").args(["-R", "nobody:nogroup"]).arg(dir).status().unwrap();
    assert!(status.success(), "chown {} failed", dir.display());
}

fn run_to_end(name: &str, command: Command, log_dir: &Path) {
    let mut child = ChildGuard::spawn(name, command, log_dir);
    let status =
        child.wait_ready("finishes", START_TIMEOUT, || Probe::<()>::NotYet("running".into())).err().unwrap_or_default();
    let exit = child.exit_status();
    assert!(exit.is_some_and(|s| s.success()), "{name} failed: {exit:?} {status}\n{}", child.log());
}
