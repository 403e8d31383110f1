//! bcrypt's own threads, one per core, fed by a bounded queue that takes clients in turns.
//!
//! Why a pool of our own: a semaphore in front of tokio's blocking pool measured 22 % fewer
//! uncached logins per second on 2 cores (every hand-over of a slot went through two
//! cross-thread wake-ups while a core sat idle); an unbounded blocking pool runs one thread
//! per waiting login, all fighting for the cores.
//!
//! Admission rules, so that a flood cannot stall everyone's logins (issue 17):
//! - at most `queue` jobs wait in total and `queue_per_client` per client IP; beyond,
//!   the job is refused at once (the caller answers 503 with `Retry-After`);
//! - clients with waiting jobs are served in turns, and one client runs on at most
//!   `threads_per_client` threads at a time, so the other threads stay free for others;
//! - a job whose caller has gone (the client closed its connection, so actix dropped the
//!   request) is taken out of the queue before it runs.
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Condvar, LazyLock, Mutex, MutexGuard};

use tokio::sync::oneshot;

use crate::metrics;

/// Who a job is for: the client IP (`None` for unix-socket peers, all one client).
pub type ClientKey = Option<IpAddr>;

/// The admission limits of one loaded config (see `limits:` in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolLimits {
    pub queue: usize,
    pub queue_per_client: usize,
    pub threads_per_client: usize,
}

impl PoolLimits {
    /// 64 waiting jobs per thread (at cost 10, about 2 s of work each), 16 per client, and
    /// half the threads per client (at least one).
    pub fn defaults() -> PoolLimits {
        let threads = thread_count();
        PoolLimits { queue: 64 * threads, queue_per_client: 16, threads_per_client: (threads / 2).max(1) }
    }
}

/// Why a job was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the bcrypt queue is full")]
    QueueFull,
    #[error("this client has too many password checks waiting")]
    ClientQueueFull,
    #[error("the bcrypt thread stopped")]
    Stopped,
}

/// The work of one job: a bcrypt verification (or the making of a decoy hash, which costs
/// the same); returns whether the password matched.
pub type Work = Box<dyn FnOnce() -> bool + Send>;

struct Job {
    id: u64,
    work: Work,
    reply: oneshot::Sender<bool>,
}

#[derive(Default)]
struct Client {
    waiting: VecDeque<Job>,
    running: usize,
    /// The share of the config that queued the newest job.
    threads_allowed: usize,
}

#[derive(Default)]
struct Queue {
    clients: HashMap<ClientKey, Client>,
    /// Clients with waiting jobs, in the order they get their next turn.
    turns: VecDeque<ClientKey>,
    waiting: usize,
    next_id: u64,
}

impl Queue {
    /// The next job a free thread may run: the first client in turn order that is below its
    /// share of threads. That client goes to the back of the line.
    fn next_runnable(&mut self) -> Option<(ClientKey, Job)> {
        for _ in 0..self.turns.len() {
            let key = self.turns.pop_front()?;
            let Some(client) = self.clients.get_mut(&key) else { continue };
            if client.running >= client.threads_allowed {
                self.turns.push_back(key);
                continue;
            }
            let Some(job) = client.waiting.pop_front() else { continue };
            client.running += 1;
            self.waiting -= 1;
            if !client.waiting.is_empty() {
                self.turns.push_back(key);
            }
            return Some((key, job));
        }
        None
    }

    fn finished(&mut self, key: ClientKey) {
        if let Some(client) = self.clients.get_mut(&key) {
            client.running -= 1;
            self.forget_if_idle(key);
        }
    }

    /// Takes a job out of the queue; false when a thread already took it.
    fn cancel(&mut self, key: ClientKey, id: u64) -> bool {
        let Some(client) = self.clients.get_mut(&key) else { return false };
        let Some(position) = client.waiting.iter().position(|job| job.id == id) else { return false };
        client.waiting.remove(position);
        self.waiting -= 1;
        if client.waiting.is_empty() {
            self.turns.retain(|k| *k != key);
        }
        self.forget_if_idle(key);
        true
    }

    /// Keeps the map as small as the set of clients with work.
    fn forget_if_idle(&mut self, key: ClientKey) {
        if self.clients.get(&key).is_some_and(|c| c.running == 0 && c.waiting.is_empty()) {
            self.clients.remove(&key);
        }
    }
}

pub struct BcryptPool {
    queue: Mutex<Queue>,
    work_ready: Condvar,
}

static POOL: LazyLock<BcryptPool> = LazyLock::new(|| {
    let pool = BcryptPool { queue: Mutex::new(Queue::default()), work_ready: Condvar::new() };
    for n in 0..thread_count() {
        let spawned = std::thread::Builder::new().name(format!("bcrypt-{n}")).spawn(move || POOL.work());
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a bcrypt thread");
        }
    }
    pool
});

fn thread_count() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// The process-wide pool (one per process: it is sized for the machine, not the config).
pub fn pool() -> &'static BcryptPool {
    &POOL
}

impl BcryptPool {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A thread's loop: run the next admissible job, or sleep until there is one.
    fn work(&self) {
        let mut queue = self.lock();
        loop {
            let Some((key, job)) = queue.next_runnable() else {
                queue = self.work_ready.wait(queue).unwrap_or_else(|poisoned| poisoned.into_inner());
                continue;
            };
            drop(queue);
            if job.reply.is_closed() {
                metrics::global().bcrypt_job("dropped");
            } else {
                metrics::global().bcrypt_job("run");
                let _ = job.reply.send((job.work)());
            }
            queue = self.lock();
            queue.finished(key);
            // The client may now be below its share, and its next job runnable.
            self.work_ready.notify_one();
        }
    }

    /// Runs `work` on a pool thread under `limits`, for `client`. Dropping the returned
    /// future before the job started takes it out of the queue.
    pub async fn run(&'static self, client: ClientKey, limits: PoolLimits, work: Work) -> Result<bool, Refusal> {
        let (reply, result) = oneshot::channel();
        let id = self.submit(client, limits, work, reply).inspect_err(|refusal| {
            metrics::global().bcrypt_job(match refusal {
                Refusal::ClientQueueFull => "refused_client_share",
                _ => "refused_queue_full",
            });
        })?;
        let mut pending = Pending { pool: self, client, id, answered: false };
        let verified = result.await.map_err(|_| Refusal::Stopped);
        pending.answered = true;
        verified
    }

    fn submit(
        &self,
        key: ClientKey,
        limits: PoolLimits,
        work: Work,
        reply: oneshot::Sender<bool>,
    ) -> Result<u64, Refusal> {
        let mut queue = self.lock();
        if queue.waiting >= limits.queue {
            return Err(Refusal::QueueFull);
        }
        let id = queue.next_id;
        queue.next_id += 1;
        let client = queue.clients.entry(key).or_default();
        if client.waiting.len() >= limits.queue_per_client {
            queue.forget_if_idle(key);
            return Err(Refusal::ClientQueueFull);
        }
        client.threads_allowed = limits.threads_per_client.max(1);
        client.waiting.push_back(Job { id, work, reply });
        let first_waiting = client.waiting.len() == 1;
        queue.waiting += 1;
        if first_waiting {
            queue.turns.push_back(key);
        }
        drop(queue);
        self.work_ready.notify_one();
        Ok(id)
    }
}

/// Removes the job from the queue when its caller goes away before the answer.
struct Pending {
    pool: &'static BcryptPool,
    client: ClientKey,
    id: u64,
    answered: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.answered && self.pool.lock().cancel(self.client, self.id) {
            metrics::global().bcrypt_job("dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64) -> Job {
        Job { id, work: Box::new(|| true), reply: oneshot::channel().0 }
    }

    fn queue_with(jobs: &[(u8, u64)], share: usize) -> Queue {
        let mut queue = Queue::default();
        for (client, id) in jobs {
            let key = Some(IpAddr::from([10, 0, 0, *client]));
            let entry = queue.clients.entry(key).or_default();
            entry.threads_allowed = share;
            entry.waiting.push_back(job(*id));
            if entry.waiting.len() == 1 {
                queue.turns.push_back(key);
            }
            queue.waiting += 1;
        }
        queue
    }

    #[test]
    fn clients_take_turns_and_stay_within_their_share() {
        // Client 1 queued three jobs before client 2 queued one: client 2 goes second.
        let mut queue = queue_with(&[(1, 0), (1, 1), (1, 2), (2, 3)], 1);
        let (first, job) = queue.next_runnable().unwrap();
        assert_eq!(job.id, 0);
        let (_, job) = queue.next_runnable().unwrap();
        assert_eq!(job.id, 3);
        // Client 1 is at its share of one thread: its next job waits until the first ends.
        assert!(queue.next_runnable().is_none());
        queue.finished(first);
        assert_eq!(queue.next_runnable().unwrap().1.id, 1);
    }

    #[test]
    fn a_cancelled_job_leaves_the_queue_and_idle_clients_are_forgotten() {
        let mut queue = queue_with(&[(1, 0), (2, 1)], 1);
        assert!(queue.cancel(Some(IpAddr::from([10, 0, 0, 1])), 0));
        assert_eq!((queue.waiting, queue.clients.len(), queue.turns.len()), (1, 1, 1));
        assert!(!queue.cancel(Some(IpAddr::from([10, 0, 0, 1])), 0));
        let (key, job) = queue.next_runnable().unwrap();
        assert_eq!(job.id, 1);
        queue.finished(key);
        assert!(queue.clients.is_empty());
    }
}
