//! The upkeep thread: deletes expired rows on a jittered schedule or on request, and
//! checkpoints the WAL when the writer reports it has grown, all on a connection of its
//! own so that the JS thread and the writer thread never do this work.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::database::CHECKPOINT_PAGES;
use crate::error::{StoreError, StoreResult};
use crate::ops::{self, Outcome, Table};
use crate::worker::{Completion, CompletionSink, BACKGROUND_TICKET};
use crate::{lock, SharedConn};

/// Each prune transaction of a file is sized to take about this long. Every batch
/// touches pages all over the id index (ids are random), so the index is rewritten once
/// per batch: 100,000 expired rows in batches of 500 (with equal pauses) took 4.1 s
/// here, in one DELETE 0.9 s. Sized by time, a backlog goes in a few large batches
/// (0.8-1.05 s) while a routine prune of a few thousand rows is one short one.
/// Meanwhile other writers wait about this long for the write lock (a batch after a
/// fast one may overshoot: it at most doubles); ours hand their writes to the writer
/// thread, so the event loop never waits.
const PRUNE_BATCH_TIME: Duration = Duration::from_millis(100);

/// The same for an in-memory database, whose one connection the JS thread shares: it
/// waits for the batch, so batches stay as short as a single write.
const PRUNE_BATCH_TIME_SHARED: Duration = Duration::from_millis(2);

/// While a prune of a file runs, its connection's page cache is raised to this (KiB),
/// then put back and emptied. A batch deletes rows all over the id index (~4.5 MiB at
/// 100,000 sessions) and the table; in SQLite's default 2 MiB the dirty pages spill to
/// the WAL before the commit and are read and written again: 100,000 expired rows took
/// 1.42-1.66 s with 2 MiB and 0.99-1.26 s with 16 MiB (64 MiB: no better). The memory is
/// held only for the prune's length, so the store's resting footprint is unchanged.
const PRUNE_PAGE_CACHE_KIB: u32 = 16 * 1024;

/// A prune that deleted at least this many rows also hands freed memory back to the OS
/// when it ends (`release_free_memory`); a routine prune fits SQLite's default cache
/// and does not pay for the trim.
const TRIM_AFTER_ROWS: i64 = 10_000;

/// How a prune goes about its tables, by whose connection it uses.
#[derive(Debug, Clone, Copy)]
pub struct PrunePace {
    /// How long one prune transaction may hold the write lock.
    pub batch_time: Duration,
    /// The page cache (KiB) the connection borrows for the prune's length; None leaves
    /// it alone (a connection shared with the JS thread keeps the cache it was given).
    pub page_cache_kib: Option<u32>,
}

impl PrunePace {
    /// A file: the upkeep thread has a connection of its own.
    pub const FILE: PrunePace = PrunePace { batch_time: PRUNE_BATCH_TIME, page_cache_kib: Some(PRUNE_PAGE_CACHE_KIB) };
    /// An in-memory database, whose one connection the JS thread shares.
    pub const SHARED: PrunePace = PrunePace { batch_time: PRUNE_BATCH_TIME_SHARED, page_cache_kib: None };
}

/// Rows in the first transaction of a prune, per ms of the batch time (1,000 for a
/// file, the floor in memory); later ones are sized by the time it took.
const PRUNE_FIRST_ROWS_PER_MS: i64 = 10;
const PRUNE_BATCH_LIMITS: (i64, i64) = (100, 100_000);

/// The next batch size: scaled towards `target`, at most doubling or halving.
fn next_batch(rows: i64, took: Duration, target: Duration) -> i64 {
    let target = target.as_secs_f64();
    let scaled = rows as f64 * target / took.as_secs_f64().max(1e-6);
    (scaled as i64).clamp(rows / 2, rows * 2).clamp(PRUNE_BATCH_LIMITS.0, PRUNE_BATCH_LIMITS.1)
}

/// How long a prune lease lasts if its holder dies mid-prune.
const LEASE_MS: i64 = 5 * 60 * 1000;

pub const LEASE_TABLE: &str = "express_sqlite_native_leases";

/// Counters for stats; written by the upkeep thread, read from any thread.
#[derive(Debug, Default)]
pub struct PruneStats {
    pub runs: AtomicU64,
    pub rows: AtomicU64,
    pub skipped: AtomicU64,
    pub checkpoints: AtomicU64,
    /// Scheduled prunes that failed (each also delivered as a background error).
    pub errors: AtomicU64,
}

struct Schedule {
    table: Arc<Table>,
    interval: Duration,
    next: Instant,
}

#[derive(Default)]
struct State {
    schedules: Vec<Schedule>,
    requests: Vec<(u32, Arc<Table>)>,
    checkpoint_wanted: bool,
    closing: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    stopping: AtomicBool,
    stats: Arc<PruneStats>,
    owner: String,
    pace: PrunePace,
}

/// Past `CHECKPOINT_PAGES`, the pages written since the last ask before the next one.
/// A passive checkpoint rarely empties a WAL that is being written to (a commit lands
/// while it syncs; the writer thread's RESTART empties it, `worker::WAL_HARD_LIMIT_PAGES`),
/// so the WAL stays past the mark. Asking at every commit then meant, one write at a
/// time, a checkpoint (two fsyncs) every ~10 writes and a wake-up syscall at every
/// commit. Measured with the bench's API phases (10,000 sessions, four interleaved runs
/// per setting), against asking at every commit: one write at a time +7-30 % (touch
/// most), 64 in flight +8 %, and the p99 of sets at a steady 4k/s unchanged (0.55-1.0 ms
/// against 0.64-0.97). A step of 100 gained as much one at a time but took that p99 to
/// 2.4-4.0 ms; with it the writer thread's RESTART took ~7 ms, and every write arriving
/// meanwhile waited for it (the RESTART's time with a step of 30 was not measured).
const CHECKPOINT_STEP_PAGES: i32 = 30;

/// When the writer asks for a checkpoint, from the WAL's length after each commit.
#[derive(Debug, Clone, Copy)]
struct CheckpointPacing {
    next_ask_at: i32,
}

impl CheckpointPacing {
    const START: CheckpointPacing = CheckpointPacing { next_ask_at: CHECKPOINT_PAGES };

    /// Whether a commit that left `pages` in the WAL should ask for a checkpoint.
    fn ask(&mut self, pages: i32) -> bool {
        if pages < CHECKPOINT_PAGES {
            // Restarted (or not grown yet): the first ask is at the mark again.
            *self = Self::START;
            return false;
        }
        if pages < self.next_ask_at {
            return false;
        }
        self.next_ask_at = pages.saturating_add(CHECKPOINT_STEP_PAGES);
        true
    }
}

/// Lets the writer connection ask for a checkpoint without waiting for it.
pub struct CheckpointRequest {
    shared: Arc<Shared>,
    pacing: CheckpointPacing,
}

impl CheckpointRequest {
    /// From the write connection's WAL hook: `pages` in the WAL after a commit.
    pub fn after_commit(&mut self, pages: i32) {
        if !self.pacing.ask(pages) {
            return;
        }
        let mut state = lock(&self.shared.state);
        if !state.checkpoint_wanted {
            state.checkpoint_wanted = true;
            self.shared.wake.notify_one();
        }
    }
}

pub struct Upkeep {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

fn random_u64() -> u64 {
    RandomState::new().build_hasher().finish()
}

/// `interval` ± 50 %, so that processes started together do not prune together.
pub fn jittered(interval: Duration) -> Duration {
    let factor = 0.5 + (random_u64() % 10_001) as f64 / 10_000.0;
    interval.mul_f64(factor)
}

impl Upkeep {
    /// `pace`: `PrunePace::FILE`, or `PrunePace::SHARED` when the JS thread shares `conn`.
    pub fn start(
        conn: SharedConn,
        sink: Arc<dyn CompletionSink>,
        stats: Arc<PruneStats>,
        pace: PrunePace,
    ) -> StoreResult<Upkeep> {
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            stats,
            owner: format!("{}-{:x}", std::process::id(), random_u64()),
            pace,
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("sqlite-session-upkeep".into())
            .spawn(move || upkeep_loop(&thread_shared, &conn, sink.as_ref()))
            .map_err(|e| StoreError::new("ERR_THREAD", format!("cannot start the upkeep thread: {e}")))?;
        Ok(Upkeep { shared, thread: Some(thread) })
    }

    pub fn checkpoint_request(&self) -> CheckpointRequest {
        CheckpointRequest { shared: Arc::clone(&self.shared), pacing: CheckpointPacing::START }
    }

    /// Prunes `table` every `interval` (jittered) from now on.
    pub fn schedule(&self, table: Arc<Table>, interval: Duration) {
        let mut state = lock(&self.shared.state);
        state.schedules.push(Schedule { table, interval, next: Instant::now() + jittered(interval) });
        self.shared.wake.notify_one();
    }

    /// Stops scheduled prunes of `table` (requests already made still run).
    pub fn unschedule(&self, table: &Arc<Table>) {
        lock(&self.shared.state).schedules.retain(|s| !Arc::ptr_eq(&s.table, table));
    }

    /// One prune now; its row count is delivered under `ticket`.
    pub fn request(&self, ticket: u32, table: Arc<Table>) -> StoreResult<()> {
        let mut state = lock(&self.shared.state);
        if state.closing {
            return Err(StoreError::closed());
        }
        state.requests.push((ticket, table));
        self.shared.wake.notify_one();
        Ok(())
    }

    /// Interrupts a prune between batches, answers pending requests, joins the thread.
    pub fn shutdown(&mut self) {
        self.shared.stopping.store(true, Ordering::Relaxed);
        {
            let mut state = lock(&self.shared.state);
            state.closing = true;
            self.shared.wake.notify_one();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Upkeep {
    fn drop(&mut self) {
        self.shutdown();
    }
}

enum Work {
    Requests(Vec<(u32, Arc<Table>)>),
    Scheduled(Arc<Table>),
    Checkpoint,
}

/// Waits for the next piece of work; None once closing with nothing left to answer.
fn next_work(shared: &Shared) -> Option<Work> {
    let mut state = lock(&shared.state);
    loop {
        if !state.requests.is_empty() {
            return Some(Work::Requests(std::mem::take(&mut state.requests)));
        }
        if state.closing {
            return None;
        }
        if state.checkpoint_wanted {
            state.checkpoint_wanted = false;
            return Some(Work::Checkpoint);
        }
        let now = Instant::now();
        if let Some(due) = state.schedules.iter_mut().find(|s| s.next <= now) {
            due.next = now + jittered(due.interval);
            return Some(Work::Scheduled(Arc::clone(&due.table)));
        }
        let wait = state.schedules.iter().map(|s| s.next - now).min();
        state = match wait {
            Some(timeout) => shared.wake.wait_timeout(state, timeout).unwrap_or_else(|p| p.into_inner()).0,
            None => shared.wake.wait(state).unwrap_or_else(|p| p.into_inner()),
        };
    }
}

fn upkeep_loop(shared: &Shared, conn: &SharedConn, sink: &dyn CompletionSink) {
    while let Some(work) = next_work(shared) {
        match work {
            Work::Requests(requests) => {
                let completions = requests
                    .into_iter()
                    .map(|(ticket, table)| Completion {
                        ticket,
                        result: guarded(|| prune_with_lease(conn, shared, &table)).map(Outcome::Count),
                    })
                    .collect();
                sink.deliver(completions);
            }
            Work::Scheduled(table) => {
                // Nobody waits for a scheduled prune, so a failure is reported on its own:
                // left silent, expired sessions would pile up unseen.
                if let Err(error) = guarded(|| prune_with_lease(conn, shared, &table)) {
                    shared.stats.errors.fetch_add(1, Ordering::Relaxed);
                    let message = format!("the scheduled prune of table {} failed: {}", table.sql.table, error.message);
                    let result = Err(StoreError::new(&error.code, message));
                    sink.deliver(vec![Completion { ticket: BACKGROUND_TICKET, result }]);
                }
            }
            Work::Checkpoint => {
                if guarded(|| checkpoint(conn)).is_ok() {
                    shared.stats.checkpoints.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// A passive checkpoint: copies what it can without making anyone wait. Under sustained
/// writes it may never catch up; the writer thread then restarts the WAL itself (see
/// `worker::WAL_HARD_LIMIT_PAGES`).
fn checkpoint(conn: &SharedConn) -> StoreResult<()> {
    lock(conn).query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0))?;
    Ok(())
}

fn guarded<T>(work: impl FnOnce() -> StoreResult<T>) -> StoreResult<T> {
    catch_unwind(AssertUnwindSafe(work))
        .unwrap_or_else(|_| Err(StoreError::new("ERR_INTERNAL", "the upkeep thread hit an internal error")))
}

/// Prunes one table unless another process holds its lease (then 0 rows: it skips
/// its turn instead of waiting). Batches hold the connection one at a time, so an
/// in-memory database shared with the JS thread is never held for long.
fn prune_with_lease(conn: &SharedConn, shared: &Shared, table: &Table) -> StoreResult<i64> {
    let now = ops::now_ms();
    if !acquire_lease(&lock(conn), &table.sql.table, &shared.owner, now)? {
        shared.stats.skipped.fetch_add(1, Ordering::Relaxed);
        return Ok(0);
    }
    let statement = match ops::prune_statement(&lock(conn), table) {
        Ok(statement) => statement,
        Err(e) => {
            let _ = release_lease(&lock(conn), &table.sql.table, &shared.owner);
            return Err(e);
        }
    };
    let mut page_cache = shared.pace.page_cache_kib.map(|kib| PageCacheLoan::take(conn, kib));
    let mut total = 0;
    let batch_ms = i64::try_from(shared.pace.batch_time.as_millis()).unwrap_or(i64::MAX);
    let mut rows = batch_ms.saturating_mul(PRUNE_FIRST_ROWS_PER_MS).clamp(PRUNE_BATCH_LIMITS.0, PRUNE_BATCH_LIMITS.1);
    let result = loop {
        if shared.stopping.load(Ordering::Relaxed) {
            break Ok(total);
        }
        let batch = {
            let conn = lock(conn);
            let started = Instant::now();
            ops::prune_batch(&conn, &statement, now, rows).map(|deleted| (deleted, started.elapsed()))
        };
        let took = match batch {
            Ok((deleted, took)) => {
                total += deleted;
                if deleted < rows {
                    break Ok(total);
                }
                took
            }
            Err(e) => break Err(e),
        };
        rows = next_batch(rows, took, shared.pace.batch_time);
        // A gap after each transaction, long enough for a writer backing off in its busy
        // handler (steps of 1-25 ms over its first 150 ms) to find the lock free.
        std::thread::sleep((took / 4).clamp(Duration::from_millis(1), Duration::from_millis(25)));
    };
    if let Some(loan) = page_cache.as_mut() {
        loan.rows = total;
    }
    drop(page_cache);
    let _ = release_lease(&lock(conn), &table.sql.table, &shared.owner);
    shared.stats.runs.fetch_add(1, Ordering::Relaxed);
    shared.stats.rows.fetch_add(total.max(0) as u64, Ordering::Relaxed);
    result
}

/// A larger page cache for one prune (see `PRUNE_PAGE_CACHE_KIB`), put back when the
/// loan is dropped, also when the prune failed or panicked. Failing to raise it or to
/// put it back only costs speed or memory, never a row: errors are ignored.
struct PageCacheLoan<'a> {
    conn: &'a SharedConn,
    /// `PRAGMA cache_size` as it was (pages if positive, KiB if negative).
    before: i64,
    /// Rows the prune deleted under the loan (see `TRIM_AFTER_ROWS`).
    rows: i64,
}

impl<'a> PageCacheLoan<'a> {
    fn take(conn: &'a SharedConn, kib: u32) -> PageCacheLoan<'a> {
        let guard = lock(conn);
        let before = guard.query_row("PRAGMA cache_size", [], |row| row.get(0)).unwrap_or(-2000);
        let _ = guard.execute_batch(&format!("PRAGMA cache_size = -{kib}"));
        PageCacheLoan { conn, before, rows: 0 }
    }
}

impl Drop for PageCacheLoan<'_> {
    /// Restores the size and frees the pages the prune left in the cache; after a large
    /// prune, hands the memory back to the OS once the connection is let go (glibc keeps
    /// freed memory in its arenas: without the trim, RSS stayed ~14 MB higher after a
    /// prune of 100,000 rows).
    fn drop(&mut self) {
        {
            let conn = lock(self.conn);
            let _ = conn.execute_batch(&format!("PRAGMA cache_size = {}; PRAGMA shrink_memory", self.before));
        }
        if self.rows >= TRIM_AFTER_ROWS {
            release_free_memory();
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    extern "C" {
        /// glibc: returns the free pages of every arena to the OS. It walks each arena
        /// under that arena's lock, so a thread allocating meanwhile (the JS thread) can
        /// wait a few ms: hence only after a large prune, not after every routine one.
        fn malloc_trim(pad: usize) -> std::os::raw::c_int;
    }
    // SAFETY: malloc_trim takes no pointers and is thread-safe (it locks each arena).
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

fn acquire_lease(conn: &Connection, name: &str, owner: &str, now: i64) -> StoreResult<bool> {
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {LEASE_TABLE} (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until INTEGER NOT NULL)"
    ))?;
    let taken = conn.execute(
        &format!(
            "INSERT INTO {LEASE_TABLE} (name, owner, until) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until \
             WHERE until < ?4 OR owner = excluded.owner"
        ),
        rusqlite::params![name, owner, now + LEASE_MS, now],
    )?;
    Ok(taken == 1)
}

fn release_lease(conn: &Connection, name: &str, owner: &str) -> StoreResult<()> {
    conn.execute(&format!("DELETE FROM {LEASE_TABLE} WHERE name = ?1 AND owner = ?2"), [name, owner])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_grow_and_shrink_towards_the_target_time_at_most_twofold() {
        let target = PRUNE_BATCH_TIME;
        let next = |rows, took| next_batch(rows, took, target);
        assert_eq!(next(1000, target), 1000, "on target");
        assert_eq!(next(1000, target / 10), 2000, "fast: at most doubled");
        assert_eq!(next(1000, target * 10), 500, "slow: at most halved");
        assert!((790..=810).contains(&next(1000, target * 5 / 4)), "in between: scaled");
        assert_eq!(next(150, target * 10), PRUNE_BATCH_LIMITS.0, "never below the floor");
        assert_eq!(next(90_000, Duration::ZERO), PRUNE_BATCH_LIMITS.1, "never above the ceiling");
    }

    #[test]
    fn checkpoints_are_asked_for_past_the_mark_then_once_per_step() {
        let mut pacing = CheckpointPacing::START;
        let asks =
            |pacing: &mut CheckpointPacing, pages: std::ops::Range<i32>| pages.filter(|&p| pacing.ask(p)).count();
        assert_eq!(asks(&mut pacing, 0..CHECKPOINT_PAGES), 0, "below the mark: never");
        assert!(pacing.ask(CHECKPOINT_PAGES), "at the mark");
        assert!(!pacing.ask(CHECKPOINT_PAGES + 1), "one commit later: not again");
        let from = CHECKPOINT_PAGES + 2;
        assert_eq!(asks(&mut pacing, from..from + 10 * CHECKPOINT_STEP_PAGES), 10, "one commit a page: once per step");
        assert!(pacing.ask(5 * CHECKPOINT_PAGES), "a large commit asks at once");
        assert!(pacing.ask(5 * CHECKPOINT_PAGES + CHECKPOINT_STEP_PAGES), "and so does each one a step long");
        assert!(!pacing.ask(3), "restarted: quiet");
        assert!(pacing.ask(CHECKPOINT_PAGES), "past the mark again: asks at once");
    }

    #[test]
    fn jitter_stays_within_half_either_side() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(100));
            assert!(d >= Duration::from_secs(50) && d <= Duration::from_secs(150), "{d:?}");
        }
    }

    /// The bound above also holds with no jitter at all; this is what fails without it.
    /// The spread must reach well past ±25 % on both sides and fill every quarter of the
    /// range: a uniform ±50 % puts a quarter of the samples in each, so a quarter bin
    /// under 150 of 1000 (or no sample beyond ±25 % either side) cannot happen by chance.
    #[test]
    fn jitter_spreads_across_the_whole_range() {
        let mut quarters = [0u32; 4];
        let (mut low, mut high) = (Duration::MAX, Duration::ZERO);
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(100));
            low = low.min(d);
            high = high.max(d);
            let quarter = ((d.as_secs_f64() - 50.0) / 25.0).floor().clamp(0.0, 3.0) as usize;
            quarters[quarter] += 1;
        }
        assert!(low < Duration::from_secs(70), "shortest {low:?}: nothing below -30 %");
        assert!(high > Duration::from_secs(130), "longest {high:?}: nothing above +30 %");
        assert!(quarters.iter().all(|&n| n >= 150), "samples per quarter of 50..150 s: {quarters:?}");
    }

    #[test]
    fn a_prune_borrows_the_page_cache_and_puts_it_back() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("PRAGMA cache_size = 300").expect("size");
        let conn: SharedConn = Arc::new(Mutex::new(crate::open::Conn { sqlite: conn, fail_fast: Arc::default() }));
        let size = || lock(&conn).query_row("PRAGMA cache_size", [], |row| row.get::<_, i64>(0)).expect("read");
        let mut loan = PageCacheLoan::take(&conn, PRUNE_PAGE_CACHE_KIB);
        assert_eq!(size(), -i64::from(PRUNE_PAGE_CACHE_KIB));
        loan.rows = TRIM_AFTER_ROWS;
        drop(loan);
        assert_eq!(size(), 300, "the size the connection had, in its own unit");
    }

    #[test]
    fn a_held_lease_is_skipped_and_an_expired_one_taken_over() {
        let conn = Connection::open_in_memory().expect("open");
        assert!(acquire_lease(&conn, "Sessions", "a", 1000).expect("a"));
        assert!(!acquire_lease(&conn, "Sessions", "b", 2000).expect("b"), "held by a");
        assert!(acquire_lease(&conn, "Other", "b", 2000).expect("other table"), "leases are per table");
        assert!(acquire_lease(&conn, "Sessions", "b", 1000 + LEASE_MS + 1).expect("expired"), "a died");
        release_lease(&conn, "Sessions", "b").expect("release");
        assert!(acquire_lease(&conn, "Sessions", "c", 0).expect("free again"));
    }
}
