//! The writer thread: takes every job queued since it last looked, runs them as one
//! transaction (group commit), and hands all results back in one delivery. A job's
//! result is delivered only after its transaction has committed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::batch::{self, Job, Waiting};
use crate::cache::SessionCache;
use crate::error::{StoreError, StoreResult};
use crate::identity::FileIdentity;
use crate::ops::Outcome;
use crate::{lock, SharedConn};

/// WAL pages past which the writer thread, between two batches, restarts the WAL with a
/// RESTART checkpoint. A checkpoint from another thread cannot do it under sustained
/// writes: it waits for the write lock with sleeps and the writer, which never sleeps,
/// always takes the lock back first. RESTART rather than TRUNCATE: the next commit
/// writes over the same file from its start (pages the OS already holds), where a
/// truncated file has to be grown again block by block; `journal_size_limit` still
/// trims a WAL that grew past it. Done before the batch's results are delivered, so
/// the JS thread (which only writes itself when nothing is outstanding) never waits.
///
/// A RESTART cannot finish while a reader (another process's report query, a backup)
/// holds an older snapshot, and SQLite would wait for that reader while holding the
/// write lock, stalling every writer. So SQLite's busy handler is off for it (the
/// connection's fail-fast switch); it is tried `RESTART_TRIES` times 1 ms apart, and
/// after that not again for `RESTART_RETRY_MS`: the WAL grows meanwhile and is
/// restarted once the reader lets go.
pub const WAL_HARD_LIMIT_PAGES: i64 = 2000;

/// How long after a RESTART that found a reader in the way the next one is tried.
const RESTART_RETRY_MS: u64 = 50;

/// Tries of a RESTART, 1 ms apart, before it waits `RESTART_RETRY_MS`. Our own upkeep
/// thread's passive checkpoints, asked for past 1,000 pages (`database::CHECKPOINT_PAGES`),
/// hold the checkpoint lock a moment at a time: a single try met one nearly every time (measured
/// at one write at a time: 20 of 20 failed, the WAL grew to 34 MB, and 9,200 of 13,000
/// writes went through the writer thread, since the JS thread leaves writes to it while
/// a restart is due). With the tries, restarts succeed at the 2nd or 3rd (1-2 ms, the
/// frames already copied by those checkpoints), and sets one at a time run twice as fast.
const RESTART_TRIES: u32 = 10;

/// Most jobs in one transaction: bounds how long the write lock is held, so other
/// processes on the same file get their turn.
const MAX_BATCH: usize = 512;

/// The WAL's length as the write connection's hook last saw it, and whether the writer
/// thread is due to restart it; shared by the hook, the JS thread and the writer thread.
#[derive(Debug)]
pub struct WalRestart {
    pages: AtomicI64,
    /// Before this (ms since `epoch`) no restart is tried: the last one found a reader
    /// or a checkpoint in the way.
    retry_at_ms: AtomicU64,
    epoch: Instant,
}

impl Default for WalRestart {
    fn default() -> Self {
        WalRestart { pages: AtomicI64::new(0), retry_at_ms: AtomicU64::new(0), epoch: Instant::now() }
    }
}

impl WalRestart {
    /// From the write connection's WAL hook: pages in the WAL after a commit.
    pub fn record(&self, pages: i64) {
        self.pages.store(pages, Ordering::Relaxed);
    }

    /// Whether the writer thread restarts the WAL after its next batch: it has grown
    /// past `WAL_HARD_LIMIT_PAGES` and no failed try is waiting out `RESTART_RETRY_MS`.
    /// The JS thread hands its writes to the writer thread only then, not for as long
    /// as the WAL is long: while a restart waits for a reader, writes one at a time
    /// went the slow way round (measured: 1 write in 10 at 100,000 sessions, p99 540 us).
    pub fn due(&self) -> bool {
        self.pages.load(Ordering::Relaxed) > WAL_HARD_LIMIT_PAGES
            && self.now_ms() >= self.retry_at_ms.load(Ordering::Relaxed)
    }

    fn restarted(&self) {
        self.pages.store(0, Ordering::Relaxed);
    }

    fn failed(&self) {
        self.retry_at_ms.store(self.now_ms().saturating_add(RESTART_RETRY_MS), Ordering::Relaxed);
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// The ticket of a completion nobody asked for: a failure of background work (a
/// scheduled prune), for the JS side to report as an event.
pub const BACKGROUND_TICKET: u32 = 0;

pub struct Completion {
    pub ticket: u32,
    pub result: StoreResult<Outcome>,
}

/// Where results go (a thread-safe JS function in the addon, a channel in tests).
pub trait CompletionSink: Send + Sync + 'static {
    fn deliver(&self, completions: Vec<Completion>);
}

#[derive(Default)]
struct Queue {
    /// Jobs and their tickets, in the order they were queued.
    jobs: Vec<(u32, Job)>,
    closing: bool,
    /// The thread sleeps on the condvar; only then is a wake-up worth a syscall.
    idle: bool,
}

pub struct Worker {
    queue: Arc<(Mutex<Queue>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// `wal` is kept current by the write connection's WAL hook.
    pub fn start(
        conn: SharedConn,
        sink: Arc<dyn CompletionSink>,
        wal: Arc<WalRestart>,
        cache: Arc<SessionCache>,
        identity: Option<Arc<FileIdentity>>,
    ) -> StoreResult<Worker> {
        let queue: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
        let thread_queue = Arc::clone(&queue);
        let thread = std::thread::Builder::new()
            .name("sqlite-session-writer".into())
            .spawn(move || {
                let context = Context { conn, sink, wal, cache, identity };
                writer_loop(&thread_queue, &context)
            })
            .map_err(|e| StoreError::new("ERR_THREAD", format!("cannot start the writer thread: {e}")))?;
        Ok(Worker { queue, thread: Some(thread) })
    }

    /// Queues jobs (with their tickets) behind those already queued.
    pub fn submit(&self, jobs: Vec<(u32, Job)>) -> StoreResult<()> {
        let (mutex, condvar) = &*self.queue;
        let mut queue = lock(mutex);
        if queue.closing {
            return Err(StoreError::closed());
        }
        queue.jobs.extend(jobs);
        if queue.idle {
            queue.idle = false;
            condvar.notify_one();
        }
        Ok(())
    }

    /// Runs what is queued, then stops the thread and waits for it.
    pub fn shutdown(&mut self) {
        {
            let (mutex, condvar) = &*self.queue;
            lock(mutex).closing = true;
            condvar.notify_one();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn next_batch(queue: &(Mutex<Queue>, Condvar)) -> Option<Vec<(u32, Job)>> {
    let (mutex, condvar) = queue;
    let mut state = lock(mutex);
    while state.jobs.is_empty() {
        if state.closing {
            return None;
        }
        state.idle = true;
        state = condvar.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
    }
    state.idle = false;
    if state.jobs.len() <= MAX_BATCH {
        Some(std::mem::take(&mut state.jobs))
    } else {
        Some(state.jobs.drain(..MAX_BATCH).collect())
    }
}

/// What the writer thread works with.
struct Context {
    conn: SharedConn,
    sink: Arc<dyn CompletionSink>,
    /// Kept current by the write connection's WAL hook.
    wal: Arc<WalRestart>,
    cache: Arc<SessionCache>,
    /// The files opened (None in memory): a batch is acknowledged only if they are
    /// still the ones at the path after its commit.
    identity: Option<Arc<FileIdentity>>,
}

/// Copies the whole WAL into the database so that the next commit starts it over.
/// Never waits in SQLite's busy handler: a reader on an older snapshot or another
/// checkpoint under way makes a try return at once; false after `RESTART_TRIES`.
fn restart_wal(conn: &crate::open::Conn) -> bool {
    conn.fail_fast.store(true, Ordering::Relaxed);
    let restart = || conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0));
    let mut restarted = restart();
    for _ in 1..RESTART_TRIES {
        // 1: SQLITE_BUSY, a checkpoint under way or a reader on an older snapshot.
        if !matches!(restarted, Ok(1)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
        restarted = restart();
    }
    conn.fail_fast.store(false, Ordering::Relaxed);
    matches!(restarted, Ok(0))
}

fn writer_loop(queue: &(Mutex<Queue>, Condvar), context: &Context) {
    while let Some(queued) = next_batch(queue) {
        let (tickets, jobs): (Vec<u32>, Vec<Job>) = queued.into_iter().unzip();
        let outcomes = catch_unwind(AssertUnwindSafe(|| {
            let mut conn = lock(&context.conn);
            let batch_context = batch::Context { cache: &context.cache, identity: context.identity.as_deref() };
            let outcomes = batch::run(&mut conn, batch_context, &jobs, Waiting::Allowed)
                .unwrap_or_else(|| jobs.iter().map(|_| Err(batch::busy())).collect());
            if context.wal.due() {
                if restart_wal(&conn) {
                    context.wal.restarted();
                } else {
                    context.wal.failed();
                }
            }
            outcomes
        }))
        .unwrap_or_else(|_| {
            jobs.iter()
                .map(|_| Err(StoreError::new("ERR_INTERNAL", "the writer thread hit an internal error")))
                .collect()
        });
        let completions =
            tickets.into_iter().zip(outcomes).map(|(ticket, result)| Completion { ticket, result }).collect();
        context.sink.deliver(completions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Op, Table};
    use crate::schema::ensure_table;
    use crate::testing::{schema_options, ChannelSink};

    #[test]
    fn queued_jobs_complete_in_order_and_after_shutdown_are_refused() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("open");
        let table = Arc::new(Table::new("Sessions", None));
        ensure_table(&mut conn, &table.sql, &schema_options(0, 0)).expect("schema");
        let conn = crate::open::Conn { sqlite: conn, fail_fast: Arc::default() };
        let (sink, rx) = ChannelSink::new();
        let mut worker =
            Worker::start(Arc::new(Mutex::new(conn)), sink, Arc::default(), Arc::new(SessionCache::new(0)), None)
                .expect("start");
        let far = crate::ops::now_ms() + 60_000;
        for i in 0..1000u32 {
            let op = Op::Set {
                sid: format!("s{}", i % 10),
                data: format!("{{\"n\":{i}}}"),
                expires: far,
                user_key: None,
                extras: vec![],
            };
            worker.submit(vec![(i, Job { table: table.clone(), op })]).expect("submit");
        }
        worker.submit(vec![(1000, Job { table: table.clone(), op: Op::Length })]).expect("submit");
        worker.shutdown();
        let tickets: Vec<(u32, Outcome)> = rx.try_iter().flatten().map(|c| (c.ticket, c.result.expect("ok"))).collect();
        assert_eq!(tickets.len(), 1001);
        assert!(tickets.windows(2).all(|w| w[0].0 < w[1].0), "delivered in submission order");
        assert_eq!(tickets[1000].1, Outcome::Count(10));
        let err = worker.submit(vec![(1, Job { table, op: Op::Clear })]).unwrap_err();
        assert_eq!(err.code, "ERR_STORE_CLOSED");
    }
}
