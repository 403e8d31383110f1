//! docker_auth's `level_token_db`: a LevelDB directory (goleveldb; snappy-compressed
//! tables) whose keys are `t:<account>` and whose values are the token DB's JSON
//! (`TokenRecord`), read and written with rusty-leveldb (pure Rust, reads snappy blocks).
//!
//! Two uses, as `level_token_db.mode` says: [`read_records`] reads a copy of the directory
//! for the one-time import (docker_auth's files are never written, so a rollback to
//! docker_auth still finds them as they were); [`LevelDir::open`] owns the directory for
//! direct use, on a thread of its own (the LevelDB handle is not `Send`), reached through
//! a bounded queue. Both respect docker_auth's lock: goleveldb holds an exclusive `flock`
//! on `LOCK` while it runs, and so do we.
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use rusty_leveldb::{LdbIterator as _, Options, DB};
use tokio::sync::{mpsc, oneshot};

/// docker_auth's key prefix (`tokenDBPrefix`).
pub const KEY_PREFIX: &str = "t:";
/// Requests waiting for the direct-mode thread; beyond, callers wait (bounded memory).
const QUEUE: usize = 64;

/// Why the directory cannot be used. The message names the directory; [`LevelError::hint`]
/// says what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LevelError {
    #[error("{path} does not exist")]
    Missing { path: String },
    #[error("{path} is locked by another process (docker_auth, or another registry-auth, still uses it)")]
    Locked { path: String },
    #[error("{path} is not a readable LevelDB: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
}

impl LevelError {
    pub fn hint(&self) -> &'static str {
        match self {
            LevelError::Missing { .. } => {
                "point path: at docker_auth's token DB directory (it holds CURRENT, MANIFEST-* and *.ldb files)"
            }
            LevelError::Locked { .. } => {
                "stop docker_auth (or the other server) first: one process at a time may use a LevelDB directory"
            }
            LevelError::Corrupt { .. } => {
                "restore the directory from a backup, or drop level_token_db (its users then sign in once more)"
            }
            LevelError::Io { .. } => "check that the directory and its files are readable and writable by this user",
        }
    }
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> LevelError {
    LevelError::Io { path: path.display().to_string(), reason: e.to_string() }
}

fn corrupt(path: &Path, reason: impl std::fmt::Display) -> LevelError {
    LevelError::Corrupt { path: path.display().to_string(), reason: reason.to_string() }
}

/// Holds docker_auth's lock (`flock` on `LOCK`) while we copy; `None` without a LOCK file.
fn take_lock(dir: &Path) -> Result<Option<File>, LevelError> {
    let lock = dir.join("LOCK");
    let file = match File::open(&lock) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&lock, e)),
    };
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(LevelError::Locked { path: dir.display().to_string() }),
        Err(e) => Err(io_error(&lock, e)),
    }
}

/// A private copy of the directory's data files, removed on drop.
struct Copy(PathBuf);

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_dir(dir: &Path) -> Result<Copy, LevelError> {
    let name = format!("registry-auth-leveldb-{}-{:x}", std::process::id(), rand::random::<u64>());
    let copy = Copy(std::env::temp_dir().join(name));
    std::fs::create_dir(&copy.0).map_err(|e| io_error(&copy.0, e))?;
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let name = entry.file_name();
        // The lock and the info log are not data.
        if matches!(name.to_str(), Some("LOCK" | "LOG" | "LOG.old")) || !entry.path().is_file() {
            continue;
        }
        std::fs::copy(entry.path(), copy.0.join(&name)).map_err(|e| io_error(&entry.path(), e))?;
    }
    Ok(copy)
}

fn options(create: bool) -> Options {
    Options { create_if_missing: create, paranoid_checks: true, ..Options::default() }
}

/// Every `t:` record: `(account, value)`, in key order. Runs on a thread of its own so
/// that a reader bug on damaged files ends that thread, never the server.
fn scan(db: &mut DB, path: &Path) -> Result<Vec<(String, Vec<u8>)>, LevelError> {
    let mut iter = db.new_iter().map_err(|e| corrupt(path, e))?;
    let mut records = Vec::new();
    while let Some((key, value)) = iter.next() {
        let Some(account) = key.strip_prefix(KEY_PREFIX.as_bytes()) else { continue };
        let account = String::from_utf8(account.to_vec())
            .map_err(|_| corrupt(path, format!("a key is not UTF-8: {:?}", String::from_utf8_lossy(&key))))?;
        records.push((account, value));
    }
    Ok(records)
}

fn on_thread<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> Result<T, LevelError> + Send + 'static,
) -> Result<T, LevelError> {
    let handle =
        std::thread::Builder::new().name("level_token_db".into()).spawn(work).map_err(|e| io_error(path, e))?;
    handle.join().unwrap_or_else(|_| Err(corrupt(path, "the LevelDB reader stopped on damaged data")))
}

/// The directory's records, read from a copy taken under docker_auth's lock.
pub fn read_records(dir: &Path) -> Result<Vec<(String, Vec<u8>)>, LevelError> {
    if !dir.exists() {
        return Err(LevelError::Missing { path: dir.display().to_string() });
    }
    if !dir.join("CURRENT").is_file() {
        return Err(corrupt(dir, "no CURRENT file"));
    }
    let lock = take_lock(dir)?;
    let copy = copy_dir(dir)?;
    drop(lock);
    super::level_tables::check_dir(&copy.0).map_err(|e| corrupt(dir, e))?;
    let (copied, shown) = (copy.0.clone(), dir.to_path_buf());
    on_thread(dir, move || {
        let _copy = copy;
        let mut db = DB::open(&copied, options(false)).map_err(|e| corrupt(&shown, e))?;
        scan(&mut db, &shown)
    })
}

enum Request {
    Get(String, oneshot::Sender<Option<Vec<u8>>>),
    /// Written to the log and flushed before the answer.
    Put(String, Vec<u8>, oneshot::Sender<Result<(), String>>),
}

/// A directory owned by this process for direct use: one per path and process, shared by
/// every config that names it (a reload reopens nothing, and keeps docker_auth's lock).
pub struct LevelDir {
    path: PathBuf,
    requests: mpsc::Sender<Request>,
}

static OPEN: Mutex<Vec<(PathBuf, Weak<LevelDir>)>> = Mutex::new(Vec::new());

impl LevelDir {
    /// Opens (creating it, as docker_auth does, when its parent exists) and checks that
    /// every record reads; or returns this process's handle on it.
    pub fn open(dir: &Path) -> Result<Arc<LevelDir>, LevelError> {
        if !dir.exists() && !dir.parent().is_some_and(|p| p.as_os_str().is_empty() || p.is_dir()) {
            return Err(LevelError::Missing { path: dir.display().to_string() });
        }
        let key = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|(_, weak)| weak.strong_count() > 0);
        if let Some(existing) = open.iter().find(|(path, _)| *path == key).and_then(|(_, weak)| weak.upgrade()) {
            return Ok(existing);
        }
        let dir_shown = dir.to_path_buf();
        let (requests, queue) = mpsc::channel(QUEUE);
        let (opened_tx, opened_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("level_token_db".into())
            .spawn(move || serve(&dir_shown, queue, opened_tx))
            .map_err(|e| io_error(dir, e))?;
        opened_rx.recv().unwrap_or_else(|_| Err(corrupt(dir, "the LevelDB reader stopped on damaged data")))?;
        let handle = Arc::new(LevelDir { path: dir.to_path_buf(), requests });
        let key = std::fs::canonicalize(dir).unwrap_or(key);
        open.push((key, Arc::downgrade(&handle)));
        Ok(handle)
    }

    pub fn describe(&self) -> String {
        format!("level_token_db {}", self.path.display())
    }

    /// The record's JSON, `None` if there is none.
    pub async fn get(&self, account: &str) -> Result<Option<Vec<u8>>, String> {
        let (tx, rx) = oneshot::channel();
        self.send(Request::Get(account.to_string(), tx)).await?;
        rx.await.map_err(|_| self.stopped())
    }

    pub async fn put(&self, account: &str, value: Vec<u8>) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.send(Request::Put(account.to_string(), value, tx)).await?;
        rx.await.map_err(|_| self.stopped())?
    }

    async fn send(&self, request: Request) -> Result<(), String> {
        self.requests.send(request).await.map_err(|_| self.stopped())
    }

    fn stopped(&self) -> String {
        format!("{}: the LevelDB thread stopped", self.describe())
    }
}

/// The direct-mode thread: opens the DB, reads every record once (damage shows at start,
/// not at some user's login), answers until every handle is gone, then closes (and unlocks).
fn serve(dir: &Path, mut queue: mpsc::Receiver<Request>, opened: std::sync::mpsc::Sender<Result<(), LevelError>>) {
    let db = DB::open(dir, options(true)).map_err(|e| match e.code {
        rusty_leveldb::StatusCode::LockError => LevelError::Locked { path: dir.display().to_string() },
        rusty_leveldb::StatusCode::IOError | rusty_leveldb::StatusCode::PermissionDenied => io_error(dir, e),
        _ => corrupt(dir, e),
    });
    // Checked once the lock is ours (no writer can be half-way through a table).
    let checked = db.and_then(|db| super::level_tables::check_dir(dir).map(|()| db).map_err(|e| corrupt(dir, e)));
    let mut db = match checked.and_then(|mut db| scan(&mut db, dir).map(|_| db)) {
        Ok(db) => db,
        Err(e) => {
            let _ = opened.send(Err(e));
            return;
        }
    };
    let _ = opened.send(Ok(()));
    while let Some(request) = queue.blocking_recv() {
        match request {
            Request::Get(account, reply) => {
                let value = db.get(format!("{KEY_PREFIX}{account}").as_bytes()).map(|b| b.to_vec());
                let _ = reply.send(value);
            }
            Request::Put(account, value, reply) => {
                let key = format!("{KEY_PREFIX}{account}");
                let result = db.put(key.as_bytes(), &value).and_then(|()| db.flush()).map_err(|e| e.to_string());
                let _ = reply.send(result);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, records: &[(&str, &str)]) {
        let mut db = DB::open(dir, options(true)).unwrap();
        for (k, v) in records {
            db.put(k.as_bytes(), v.as_bytes()).unwrap();
        }
        db.flush().unwrap();
    }

    #[test]
    fn reads_t_records_from_a_copy_and_refuses_missing_or_locked_directories() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tokens.ldb");
        write(&db, &[("t:alice", "{\"docker_password\":\"x\"}"), ("other", "y"), ("t:bob", "{}")]);
        let records = read_records(&db).unwrap();
        assert_eq!(records.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>(), ["alice", "bob"]);
        assert_eq!(records[0].1, b"{\"docker_password\":\"x\"}");

        let missing = read_records(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(missing, LevelError::Missing { .. }), "{missing}");
        let held = DB::open(&db, options(false)).unwrap();
        let locked = read_records(&db).unwrap_err();
        assert!(matches!(locked, LevelError::Locked { .. }), "{locked}");
        drop(held);
        std::fs::write(db.join("CURRENT"), "MANIFEST-999999\n").unwrap();
        let damaged = read_records(&db).unwrap_err();
        assert!(matches!(damaged, LevelError::Corrupt { .. }), "{damaged}");
    }

    #[test]
    fn direct_use_is_one_handle_per_directory_and_writes_survive_reopening() {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("new.ldb");
        let a = LevelDir::open(&db).unwrap();
        let b = LevelDir::open(&db).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        runtime.block_on(a.put("carol", b"{}".to_vec())).unwrap();
        assert_eq!(runtime.block_on(b.get("carol")).unwrap().as_deref(), Some(&b"{}"[..]));
        assert!(matches!(read_records(&db), Err(LevelError::Locked { .. })));
        drop((a, b));
        // The thread closes the DB once the last handle is gone.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let records = loop {
            match read_records(&db) {
                Err(LevelError::Locked { .. }) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                other => break other.unwrap(),
            }
        };
        assert_eq!(records, [("carol".to_string(), b"{}".to_vec())]);
        let nested = LevelDir::open(&dir.path().join("no/such/parent")).err().unwrap();
        assert!(matches!(nested, LevelError::Missing { .. }), "{nested}");
    }
}
