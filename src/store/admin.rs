//! The admin socket: how the CLI acts on an embedded store that a running server owns.
//!
//! The server listens on `<store.path>/admin.sock` (mode 0600 in a 0700 directory, and
//! only peers with the server's own uid or root are served) and answers one JSON request
//! per line with one JSON reply per line; [`AdminClient`] is a [`Store`] that forwards
//! every call there. Values travel base64-encoded. Requests are bounded in size and
//! connections in number, and nothing but the [`Store`] operations is offered.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::{Count, SharedStore, Store, StoreError, MAX_KEY_BYTES, MAX_VALUE_BYTES};

pub const SOCKET_NAME: &str = "admin.sock";
/// Longest request line: two base64 values and the keys.
const MAX_LINE: u64 = (2 * MAX_VALUE_BYTES * 4 / 3 + 4 * MAX_KEY_BYTES + 1024) as u64;
/// Longest reply line the CLI reads: a list read of [`super::MAX_LIST_ITEMS`] small
/// records (the server is trusted; this only stops a runaway read).
const MAX_REPLY: u64 = 64 * 1024 * 1024;
const MAX_CONNECTIONS: usize = 16;
/// A CLI call waits this long for the server; an idle connection is closed after it.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Get { key: String },
    Put { key: String, value: String, ttl_ms: Option<u64> },
    PutIfAbsent { key: String, value: String, ttl_ms: Option<u64> },
    CompareAndSwap { key: String, current: String, value: String, ttl_ms: Option<u64> },
    Delete { key: String },
    Increment { key: String, window_ms: u64 },
    Count { key: String },
    IndexAdd { index: String, member: String, ttl_ms: Option<u64> },
    IndexRemove { index: String, member: String },
    IndexMembers { index: String, limit: usize },
    ResetCount { key: String },
    ListPush { key: String, items: Vec<String>, cap: usize },
    ListRecent { key: String, limit: usize },
    Health,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reply {
    Value(Option<String>),
    Done,
    Flag(bool),
    Count(Option<(u64, u64)>),
    Members(Vec<String>),
    Items(Vec<String>),
    Error { kind: String, reason: String },
}

pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join(SOCKET_NAME)
}

/// Serves `store` on the socket under `dir` until the runtime stops. Call inside the
/// server's runtime, after this process took the store's lock (so a leftover socket file
/// is stale and can be replaced).
pub fn serve(dir: &Path, store: SharedStore) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = socket_path(dir);
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let Ok(permit) = slots.clone().try_acquire_owned() else { continue };
            let store = store.clone();
            tokio::spawn(async move {
                if let Err(e) = serve_connection(stream, store).await {
                    tracing::debug!("admin socket connection ended: {e}");
                }
                drop(permit);
            });
        }
    });
    tracing::info!(socket = %path.display(), "store admin socket ready (the CLI reaches the store through it)");
    Ok(())
}

async fn serve_connection(stream: UnixStream, store: SharedStore) -> std::io::Result<()> {
    let own = rustix::process::geteuid().as_raw();
    let peer = stream.peer_cred()?.uid();
    if peer != own && peer != 0 {
        tracing::warn!(peer_uid = peer, "refused an admin socket client of another user");
        return Ok(());
    }
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = Vec::new();
        let mut limited = (&mut reader).take(MAX_LINE);
        match tokio::time::timeout(TIMEOUT, limited.read_until(b'\n', &mut line)).await {
            Ok(Ok(0)) | Err(_) => return Ok(()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
        if !line.ends_with(b"\n") {
            return Ok(());
        }
        let reply = match serde_json::from_slice::<Request>(&line) {
            Ok(request) => answer(&*store, request).await,
            Err(e) => Reply::Error { kind: "invalid".into(), reason: format!("bad request: {e}") },
        };
        let mut out = serde_json::to_vec(&reply).unwrap_or_default();
        out.push(b'\n');
        write.write_all(&out).await?;
    }
}

fn decode(store: &str, text: &str) -> Result<Vec<u8>, StoreError> {
    B64.decode(text).map_err(|e| StoreError::Invalid { store: store.to_string(), reason: format!("bad base64: {e}") })
}

fn ttl(ms: Option<u64>) -> Option<Duration> {
    ms.map(Duration::from_millis)
}

async fn answer(store: &dyn Store, request: Request) -> Reply {
    let name = store.describe().to_string();
    let result = async {
        Ok(match request {
            Request::Get { key } => Reply::Value(store.get(&key).await?.map(|v| B64.encode(v))),
            Request::Put { key, value, ttl_ms } => {
                store.put(&key, &decode(&name, &value)?, ttl(ttl_ms)).await?;
                Reply::Done
            }
            Request::PutIfAbsent { key, value, ttl_ms } => {
                Reply::Flag(store.put_if_absent(&key, &decode(&name, &value)?, ttl(ttl_ms)).await?)
            }
            Request::CompareAndSwap { key, current, value, ttl_ms } => Reply::Flag(
                store.compare_and_swap(&key, &decode(&name, &current)?, &decode(&name, &value)?, ttl(ttl_ms)).await?,
            ),
            Request::Delete { key } => Reply::Flag(store.delete(&key).await?),
            Request::Increment { key, window_ms } => {
                let count = store.increment(&key, Duration::from_millis(window_ms)).await?;
                Reply::Count(Some((count.count, count.resets_in.as_millis() as u64)))
            }
            Request::Count { key } => {
                Reply::Count(store.count(&key).await?.map(|c| (c.count, c.resets_in.as_millis() as u64)))
            }
            Request::IndexAdd { index, member, ttl_ms } => {
                store.index_add(&index, &member, ttl(ttl_ms)).await?;
                Reply::Done
            }
            Request::IndexRemove { index, member } => {
                store.index_remove(&index, &member).await?;
                Reply::Done
            }
            Request::IndexMembers { index, limit } => Reply::Members(store.index_members(&index, limit).await?),
            Request::ResetCount { key } => Reply::Flag(store.reset_count(&key).await?),
            Request::ListPush { key, items, cap } => {
                let items = items.iter().map(|i| decode(&name, i)).collect::<Result<Vec<_>, _>>()?;
                store.list_push(&key, &items, cap).await?;
                Reply::Done
            }
            Request::ListRecent { key, limit } => {
                Reply::Items(store.list_recent(&key, limit).await?.iter().map(|i| B64.encode(i)).collect())
            }
            Request::Health => {
                store.health().await?;
                Reply::Done
            }
        })
    };
    result.await.unwrap_or_else(|e: StoreError| {
        let kind = match e {
            StoreError::Unavailable { .. } => "unavailable",
            StoreError::Locked { .. } => "locked",
            StoreError::Invalid { .. } => "invalid",
            StoreError::Corrupt { .. } => "corrupt",
        };
        Reply::Error { kind: kind.into(), reason: e.to_string() }
    })
}

/// A [`Store`] that forwards each call to the server owning the embedded file.
pub struct AdminClient {
    socket: PathBuf,
    describe: String,
}

impl AdminClient {
    pub fn new(dir: &Path) -> AdminClient {
        let socket = socket_path(dir);
        let describe = format!(
            "embedded {} (through the running server's {})",
            super::embedded::EmbeddedStore::file(dir).display(),
            socket.display()
        );
        AdminClient { socket, describe }
    }

    fn unavailable(&self, reason: String) -> StoreError {
        StoreError::Unavailable { store: self.describe.clone(), reason }
    }

    async fn call(&self, request: Request) -> Result<Reply, StoreError> {
        let exchange = async {
            let mut stream = UnixStream::connect(&self.socket).await?;
            let mut line = serde_json::to_vec(&request).map_err(std::io::Error::other)?;
            line.push(b'\n');
            stream.write_all(&line).await?;
            let mut reply = Vec::new();
            BufReader::new(stream).take(MAX_REPLY).read_until(b'\n', &mut reply).await?;
            Ok::<_, std::io::Error>(reply)
        };
        let reply = match tokio::time::timeout(TIMEOUT, exchange).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                return Err(self.unavailable(format!(
                    "the file is locked by another process and its admin socket does not answer ({e}); is the server running?"
                )))
            }
            Err(_) => return Err(self.unavailable(format!("no answer within {TIMEOUT:?}"))),
        };
        match serde_json::from_slice::<Reply>(&reply) {
            Ok(Reply::Error { kind, reason }) => Err(match kind.as_str() {
                "invalid" => StoreError::Invalid { store: self.describe.clone(), reason },
                "locked" => StoreError::Locked { store: self.describe.clone(), reason },
                _ => self.unavailable(reason),
            }),
            Ok(reply) => Ok(reply),
            Err(e) => Err(self.unavailable(format!("unreadable reply: {e}"))),
        }
    }

    fn unexpected(&self, reply: Reply) -> StoreError {
        self.unavailable(format!("unexpected reply {reply:?}"))
    }

    async fn flag(&self, request: Request) -> Result<bool, StoreError> {
        match self.call(request).await? {
            Reply::Flag(flag) => Ok(flag),
            other => Err(self.unexpected(other)),
        }
    }

    async fn done(&self, request: Request) -> Result<(), StoreError> {
        match self.call(request).await? {
            Reply::Done => Ok(()),
            other => Err(self.unexpected(other)),
        }
    }

    async fn counter(&self, request: Request) -> Result<Option<Count>, StoreError> {
        match self.call(request).await? {
            Reply::Count(count) => Ok(count.map(|(count, ms)| Count { count, resets_in: Duration::from_millis(ms) })),
            other => Err(self.unexpected(other)),
        }
    }
}

fn ms(ttl: Option<Duration>) -> Option<u64> {
    ttl.map(|t| t.as_millis().min(u64::MAX as u128) as u64)
}

#[async_trait]
impl Store for AdminClient {
    fn describe(&self) -> &str {
        &self.describe
    }

    fn engine(&self) -> &'static str {
        "embedded"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.call(Request::Get { key: key.to_string() }).await? {
            Reply::Value(None) => Ok(None),
            Reply::Value(Some(text)) => decode(&self.describe, &text).map(Some),
            other => Err(self.unexpected(other)),
        }
    }

    async fn put(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), StoreError> {
        self.done(Request::Put { key: key.to_string(), value: B64.encode(value), ttl_ms: ms(ttl) }).await
    }

    async fn put_if_absent(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool, StoreError> {
        self.flag(Request::PutIfAbsent { key: key.to_string(), value: B64.encode(value), ttl_ms: ms(ttl) }).await
    }

    async fn compare_and_swap(
        &self,
        key: &str,
        current: &[u8],
        new: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, StoreError> {
        let request = Request::CompareAndSwap {
            key: key.to_string(),
            current: B64.encode(current),
            value: B64.encode(new),
            ttl_ms: ms(ttl),
        };
        self.flag(request).await
    }

    async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.flag(Request::Delete { key: key.to_string() }).await
    }

    async fn increment(&self, key: &str, window: Duration) -> Result<Count, StoreError> {
        let window_ms = window.as_millis().min(u64::MAX as u128) as u64;
        let count = self.counter(Request::Increment { key: key.to_string(), window_ms }).await?;
        count.ok_or_else(|| self.unavailable("increment returned no count".to_string()))
    }

    async fn count(&self, key: &str) -> Result<Option<Count>, StoreError> {
        self.counter(Request::Count { key: key.to_string() }).await
    }

    async fn index_add(&self, index: &str, member: &str, ttl: Option<Duration>) -> Result<(), StoreError> {
        self.done(Request::IndexAdd { index: index.to_string(), member: member.to_string(), ttl_ms: ms(ttl) }).await
    }

    async fn index_remove(&self, index: &str, member: &str) -> Result<(), StoreError> {
        self.done(Request::IndexRemove { index: index.to_string(), member: member.to_string() }).await
    }

    async fn index_members(&self, index: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        match self.call(Request::IndexMembers { index: index.to_string(), limit }).await? {
            Reply::Members(members) => Ok(members),
            other => Err(self.unexpected(other)),
        }
    }

    async fn reset_count(&self, key: &str) -> Result<bool, StoreError> {
        self.flag(Request::ResetCount { key: key.to_string() }).await
    }

    async fn list_push(&self, key: &str, items: &[Vec<u8>], cap: usize) -> Result<(), StoreError> {
        super::check_push(&self.describe, key, items, cap)?;
        let items = items.iter().map(|i| B64.encode(i)).collect();
        self.done(Request::ListPush { key: key.to_string(), items, cap }).await
    }

    async fn list_recent(&self, key: &str, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        match self.call(Request::ListRecent { key: key.to_string(), limit }).await? {
            Reply::Items(items) => items.iter().map(|i| decode(&self.describe, i)).collect(),
            other => Err(self.unexpected(other)),
        }
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.done(Request::Health).await
    }
}
