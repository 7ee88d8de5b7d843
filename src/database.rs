//! One open database: its connections, its writer thread and the tables stores use in it.
//!
//! Threading: point reads run on the JS thread (a read costs a few µs, far less than a
//! hop to another thread), on `write` when the writer thread is not using it, else on
//! `read`. The writes of one event-loop turn commit together on the JS thread on `write`
//! with fail-fast locking when they are few and nothing is queued; otherwise they go to
//! the writer thread, which owns `write` between batches and commits what arrived
//! together in one transaction.
//! An in-memory database has a single connection, so `read` and `write` are the same.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::backup::{BackupSource, Backups};
use crate::batch::{self, Job, Waiting};
use crate::cache::SessionCache;
use crate::error::{StoreError, StoreResult};
use crate::identity::FileIdentity;
use crate::open::{open_connection, prepare_location, Conn, Location, OpenOptions};
use crate::ops::{self, Op, Outcome, Table};
use crate::schema::{ensure_table, SchemaOptions};
use crate::upkeep::{PrunePace, PruneStats, Upkeep};
use crate::worker::{CompletionSink, WalRestart, Worker};
use crate::{lock, SharedConn};

pub struct TableOptions {
    pub name: String,
    pub create_table: bool,
    pub default_ttl_ms: i64,
    pub max_lifetime_ms: Option<i64>,
    /// Prune expired rows this often (jittered); None: only on request.
    pub prune_interval: Option<std::time::Duration>,
    pub extra_columns: Vec<crate::sql::ExtraColumn>,
    pub import: Option<crate::import::ImportSource>,
}

struct Open {
    read: SharedConn,
    write: SharedConn,
    worker: Worker,
    upkeep: Upkeep,
    /// Backups, one at a time; close waits for the queued ones so that each is answered.
    backups: Backups,
    /// Where results go. Held here (for backups) only while open: the JS side's sink
    /// refers to a JS function, and keeping it past close would keep the whole
    /// database object alive.
    sink: Arc<dyn CompletionSink>,
    /// The WAL's length (from the write connection's WAL hook) and whether a restart is due.
    wal: Arc<WalRestart>,
    /// Sessions served without a SQLite transaction while nobody else commits.
    cache: Arc<SessionCache>,
    /// The files opened, checked after each commit (None in memory).
    identity: Option<Arc<FileIdentity>>,
}

/// The write connection's page cache (negative: KiB). Every write descends the b-tree
/// interiors and the random id index (about 4.5 MiB at 100,000 sessions), kept here;
/// a table leaf that is not is read again from the OS's cache, a few µs. The read and
/// upkeep connections keep SQLite's default 2 MiB: the session cache answers most reads,
/// and a prune borrows 16 MiB only while it runs (`upkeep::PrunePace`). Was 32 MiB on each of the three: at
/// 100,000 sessions they held ~70 MB for no measured gain on writes.
pub const WRITE_PAGE_CACHE: &str = "PRAGMA cache_size = -8192";

/// WAL pages after which the writer asks the upkeep thread for a checkpoint
/// (SQLite's own auto-checkpoint default, moved off the writing threads; how often it
/// asks past them: `upkeep::CheckpointRequest`).
pub const CHECKPOINT_PAGES: i32 = 1000;

/// How far below a touch's new expiry the stored one may be for the touch to be skipped:
/// one second, the precision of a cookie's own expiry (`Expires` and `Max-Age` are whole
/// seconds), but never more than 1 % of the time left, so short test TTLs stay exact.
pub fn touch_tolerance_ms(remaining_ms: i64) -> i64 {
    (remaining_ms / 100).clamp(0, 1000)
}

/// A table stores use, with what `sync_table` needs to create it again.
struct OpenTable {
    table: Arc<Table>,
    default_ttl_ms: i64,
    import: Option<crate::import::ImportSource>,
}

pub struct Database {
    location: Location,
    options: OpenOptions,
    busy_retries: Arc<AtomicU64>,
    prune_stats: Arc<PruneStats>,
    open: Option<Open>,
    tables: Vec<OpenTable>,
}

impl Database {
    /// Opens (creating the file if allowed); a failed open leaves behind nothing it created.
    pub fn open(location: Location, options: OpenOptions, sink: Arc<dyn CompletionSink>) -> StoreResult<Database> {
        // Absolute once, as SQLite makes it: a later chdir of the process must not make
        // backups, sizes or checks look at another file.
        let location = match location {
            Location::File(path) => Location::File(std::path::absolute(&path).unwrap_or(path)),
            memory => memory,
        };
        let created = prepare_location(&location, &options)?;
        Database::open_prepared(location, options, sink).inspect_err(|_| created.undo())
    }

    fn open_prepared(location: Location, options: OpenOptions, sink: Arc<dyn CompletionSink>) -> StoreResult<Database> {
        let busy_retries = Arc::new(AtomicU64::new(0));
        let write: SharedConn = Arc::new(Mutex::new(open_connection(&location, &options, &busy_retries)?));
        lock(&write).execute_batch(WRITE_PAGE_CACHE)?;
        let (read, upkeep_conn) = if location.is_memory() {
            (Arc::clone(&write), Arc::clone(&write))
        } else {
            (
                Arc::new(Mutex::new(open_connection(&location, &options, &busy_retries)?)),
                Arc::new(Mutex::new(open_connection(&location, &options, &busy_retries)?)),
            )
        };
        let identity = match &location {
            Location::File(path) => Some(Arc::new(FileIdentity::capture(path, is_wal(&lock(&write))?)?)),
            Location::Memory(_) => None,
        };
        let prune_stats = Arc::new(PruneStats::default());
        let pace = if location.is_memory() { PrunePace::SHARED } else { PrunePace::FILE };
        let upkeep = Upkeep::start(upkeep_conn, Arc::clone(&sink), Arc::clone(&prune_stats), pace)?;
        let mut checkpoint = upkeep.checkpoint_request();
        let wal = Arc::new(WalRestart::default());
        let hook_wal = Arc::clone(&wal);
        let cache = Arc::new(SessionCache::new(options.session_cache_bytes));
        let hook_cache = Arc::clone(&cache);
        // Replaces SQLite's auto-checkpoint on the writing connection: the JS thread and
        // the writer thread only ask; the upkeep thread does the copying.
        lock(&write).wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
            hook_wal.record(i64::from(pages));
            hook_cache.count_commit();
            checkpoint.after_commit(pages);
            Ok(())
        }))?;
        let worker = Worker::start(
            Arc::clone(&write),
            Arc::clone(&sink),
            Arc::clone(&wal),
            Arc::clone(&cache),
            identity.clone(),
        )?;
        Ok(Database {
            location,
            options,
            busy_retries,
            prune_stats,
            open: Some(Open { read, write, worker, upkeep, backups: Backups::default(), sink, wal, cache, identity }),
            tables: Vec::new(),
        })
    }

    pub fn prune_stats(&self) -> &PruneStats {
        &self.prune_stats
    }

    fn open_parts(&self) -> StoreResult<&Open> {
        self.open.as_ref().ok_or_else(StoreError::closed)
    }

    fn table(&self, id: u32) -> StoreResult<&Arc<Table>> {
        self.tables
            .get(id as usize)
            .map(|t| &t.table)
            .ok_or_else(|| StoreError::new("ERR_INTERNAL", "unknown table handle"))
    }

    pub fn is_memory(&self) -> bool {
        self.location.is_memory()
    }

    pub fn is_closed(&self) -> bool {
        self.open.is_none()
    }

    /// Point reads answered from the session cache (see `cache`).
    pub fn cache_hits(&self) -> u64 {
        self.open.as_ref().map_or(0, |open| open.cache.hits())
    }

    #[cfg(test)]
    pub fn cache_bytes(&self) -> usize {
        self.open.as_ref().map_or(0, |open| open.cache.bytes())
    }

    pub fn busy_retries(&self) -> u64 {
        self.busy_retries.load(Ordering::Relaxed)
    }

    /// Creates or migrates a table and returns the handle stores use for it.
    pub fn open_table(&mut self, options: &TableOptions) -> StoreResult<u32> {
        crate::sql::check_extra_columns(&options.extra_columns)
            .map_err(|m| StoreError::new("ERR_INVALID_ARG_VALUE", m))?;
        let table = Arc::new(Table::with_extra_columns(&options.name, options.max_lifetime_ms, &options.extra_columns));
        let schema = SchemaOptions {
            create_table: options.create_table && !self.options.readonly,
            default_ttl_ms: options.default_ttl_ms,
            now_ms: ops::now_ms(),
            import: options.import.clone(),
        };
        self.prepare_table(&table.sql, &schema)?;
        let open = self.open_parts()?;
        if let (Some(interval), false) = (options.prune_interval, self.options.readonly) {
            open.upkeep.schedule(Arc::clone(&table), interval);
        }
        self.tables.push(OpenTable { table, default_ttl_ms: options.default_ttl_ms, import: options.import.clone() });
        Ok((self.tables.len() - 1) as u32)
    }

    /// Creates an open table again if it has gone (dropped by another connection), or
    /// adds what it lacks; the same handle keeps working and its pruning schedule is
    /// left as it is. Refused on a read-only database when there is something to create.
    pub fn sync_table(&self, id: u32) -> StoreResult<()> {
        let entry =
            self.tables.get(id as usize).ok_or_else(|| StoreError::new("ERR_INTERNAL", "unknown table handle"))?;
        let schema = SchemaOptions {
            create_table: !self.options.readonly,
            default_ttl_ms: entry.default_ttl_ms,
            now_ms: ops::now_ms(),
            import: entry.import.clone(),
        };
        self.prepare_table(&entry.table.sql, &schema)
    }

    /// Creates or brings a table up to date on the write connection, then lets the
    /// session cache find the file's shared memory (known once the file is set up).
    fn prepare_table(&self, sql: &crate::sql::TableSql, schema: &SchemaOptions) -> StoreResult<()> {
        let open = self.open_parts()?;
        let mut conn = lock(&open.write);
        ensure_table(&mut conn, sql, schema)?;
        open.cache.attach(&conn);
        Ok(())
    }

    /// The live session's data, or None when missing or expired.
    pub fn get(&self, table: u32, sid: &str) -> StoreResult<Option<String>> {
        Ok(self.get_entry(table, sid)?.map(|(data, _)| data))
    }

    /// The live session's data and its stored expiry (epoch ms), or None.
    pub fn get_entry(&self, table: u32, sid: &str) -> StoreResult<Option<(String, i64)>> {
        let table = self.table(table)?;
        let open = self.open_parts()?;
        open.verify_for_read()?;
        let cache = &open.cache;
        let now = ops::now_ms();
        if let Some(known) = cache.lookup(table, sid, now) {
            return Ok(known);
        }
        let before = cache.before_read();
        let found = ops::get_entry(&*self.reader()?, table, sid, now)?;
        cache.fill(before, table, sid, found.as_ref().map(|(data, expires)| (data.as_str(), *expires)));
        Ok(found)
    }

    pub fn last_write(&self, table: u32, sid: &str) -> StoreResult<Option<i64>> {
        let table = self.table(table)?;
        self.open_parts()?.verify_for_read()?;
        ops::last_write(&*self.reader()?, table, sid, ops::now_ms())
    }

    /// The connection a point read uses: the write connection when the writer thread is
    /// not using it, else the read connection. Every commit of this process goes through
    /// the write connection, which keeps its page cache; any other connection's cache is
    /// dropped at each of those commits and its next read goes back to the file.
    fn reader(&self) -> StoreResult<MutexGuard<'_, Conn>> {
        let open = self.open_parts()?;
        match open.write.try_lock() {
            Ok(conn) => Ok(conn),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Ok(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => Ok(lock(&open.read)),
        }
    }

    /// Whether a touch to `expires` would change nothing a client can tell: the session
    /// is live and its stored expiry is already within `touch_tolerance_ms` below it.
    /// Only known from the cache; false whenever in doubt.
    pub fn touch_is_current(&self, table: u32, sid: &str, expires: i64) -> StoreResult<bool> {
        let table = self.table(table)?;
        let now = ops::now_ms();
        let open = self.open_parts()?;
        if open.ensure_intact().is_err() {
            return Ok(false);
        }
        let Some(stored) = open.cache.live_expiry(table, sid, now) else { return Ok(false) };
        Ok(expires >= stored && expires - stored < touch_tolerance_ms(expires - now))
    }

    /// Runs a batch on the calling thread, in one transaction, and gives the outcomes
    /// in order; None when it cannot run without waiting (another connection holds
    /// the lock, or the WAL is due for the restart the writer thread does between
    /// batches), in which case nothing ran and the caller queues it (`queue`).
    /// Only called while nothing is queued, so the writer thread is idle.
    pub fn run(&self, jobs: &[(u32, Op)]) -> StoreResult<Option<Vec<StoreResult<Outcome>>>> {
        let open = self.open_parts()?;
        if open.wal.due() {
            return Ok(None);
        }
        let jobs = self.jobs(jobs)?;
        let mut conn = lock(&open.write);
        Ok(batch::run(&mut conn, open.batch_context(), &jobs, Waiting::Never))
    }

    /// One job now on the calling thread, for callers that never queue (tests, tools):
    /// like `run`, but without leaving the WAL's restart to the writer thread, and a
    /// lock held elsewhere is `SQLITE_BUSY`.
    pub fn run_one(&self, table: u32, op: &Op) -> StoreResult<Outcome> {
        let open = self.open_parts()?;
        let jobs = self.jobs(&[(table, op.clone())])?;
        let mut conn = lock(&open.write);
        match batch::run(&mut conn, open.batch_context(), &jobs, Waiting::Never) {
            Some(mut outcomes) => outcomes.pop().unwrap_or_else(|| Err(batch::busy())),
            None => Err(batch::busy()),
        }
    }

    /// Queues jobs for the writer thread, in order; each outcome goes to the sink under
    /// its ticket.
    pub fn queue(&self, jobs: Vec<(u32, u32, Op)>) -> StoreResult<()> {
        let open = self.open_parts()?;
        let jobs = jobs
            .into_iter()
            .map(|(ticket, table, op)| Ok((ticket, Job { table: Arc::clone(self.table(table)?), op })))
            .collect::<StoreResult<Vec<_>>>()?;
        open.worker.submit(jobs)
    }

    fn jobs(&self, jobs: &[(u32, Op)]) -> StoreResult<Vec<Job>> {
        jobs.iter().map(|(table, op)| Ok(Job { table: Arc::clone(self.table(*table)?), op: op.clone() })).collect()
    }

    /// Prunes a table now on the upkeep thread; the row count goes to the sink.
    pub fn prune(&self, ticket: u32, table: u32) -> StoreResult<()> {
        let table = Arc::clone(self.table(table)?);
        self.open_parts()?.upkeep.request(ticket, table)
    }

    /// Stops a table's scheduled prunes.
    pub fn stop_pruning(&self, table: u32) -> StoreResult<()> {
        let table = self.table(table)?;
        self.open_parts()?.upkeep.unschedule(table);
        Ok(())
    }

    /// Queues a copy of the live database to `target` (one copy at a time, off the JS
    /// thread); the page count goes to the sink under `ticket`. Refuses at once a target
    /// that is the database or one of its companion files: renaming the copy over it
    /// would replace the live file (or its WAL) under the store.
    pub fn backup(&self, ticket: u32, target: std::path::PathBuf) -> StoreResult<()> {
        let open = self.open_parts()?;
        if open.identity.as_ref().is_some_and(|identity| identity.is_database_or_companion(&target)) {
            return Err(StoreError::new(
                "ERR_INVALID_ARG_VALUE",
                "the backup target is the database file itself or one of its -wal, -shm or -journal files",
            ));
        }
        let source = match &self.location {
            Location::File(_) => BackupSource::File(self.location.clone(), self.options.clone()),
            Location::Memory(_) => BackupSource::Shared(Arc::clone(&open.write)),
        };
        open.backups.request(source, target, ticket, Arc::clone(&open.sink))
    }

    /// Size in bytes of the database file and of its WAL (0 for in-memory databases).
    pub fn file_sizes(&self) -> (u64, u64) {
        let Location::File(path) = &self.location else { return (0, 0) };
        let size = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        (size(path), size(std::path::Path::new(&wal)))
    }

    /// The whole database as one serialized image.
    pub fn serialize(&self) -> StoreResult<Vec<u8>> {
        let mut conn = lock(&self.open_parts()?.write);
        Ok(conn.serialize(rusqlite::MAIN_DB)?.to_vec())
    }

    /// Finishes queued work, stops the writer, checkpoints the WAL and closes the
    /// connections, on the calling thread. Closing twice is a no-op.
    pub fn close(&mut self) -> StoreResult<()> {
        match self.open.take() {
            Some(open) => shut_down(open, self.checkpoints_on_close()),
            None => Ok(()),
        }
    }

    /// `close` on a thread of its own: the database counts as closed at once (every
    /// later call fails with `ERR_STORE_CLOSED`), and `done` gets the outcome once the
    /// queued work has run and the file is closed. The JS thread never waits for it.
    pub fn close_in_background(&mut self, done: impl FnOnce(StoreResult<()>) + Send + 'static) -> StoreResult<()> {
        let checkpoint = self.checkpoints_on_close();
        let Some(open) = self.open.take() else {
            done(Ok(()));
            return Ok(());
        };
        let mut open = Some(open);
        let spawned = std::thread::Builder::new().name("sqlite-session-close".into()).spawn({
            let open = open.take();
            move || {
                let result = open.map_or(Ok(()), |open| {
                    std::panic::catch_unwind(AssertUnwindSafe(|| shut_down(open, checkpoint)))
                        .unwrap_or_else(|_| Err(StoreError::new("ERR_INTERNAL", "closing hit an internal error")))
                });
                done(result);
            }
        });
        spawned.map(drop).map_err(|e| StoreError::new("ERR_THREAD", format!("cannot start the closing thread: {e}")))
    }

    /// Whether closing truncates the WAL (a writable file database in WAL mode).
    fn checkpoints_on_close(&self) -> bool {
        matches!(self.location, Location::File(_)) && self.options.wal && !self.options.readonly
    }
}

/// Runs what is queued, stops the threads and closes the connections; with
/// `checkpoint`, copies the WAL into the file and truncates it first.
fn shut_down(open: Open, checkpoint: bool) -> StoreResult<()> {
    let Open { read, write, mut worker, mut upkeep, backups, sink, cache, identity, .. } = open;
    cache.detach();
    upkeep.shutdown();
    worker.shutdown();
    backups.shutdown();
    drop(upkeep);
    drop(worker);
    drop(sink);
    drop(read);
    // The hook holds the upkeep thread's handle; drop it before the last connection goes.
    let _ = lock(&write).wal_hook(None::<fn(&mut rusqlite::hooks::Wal, i32) -> rusqlite::Result<()>>);
    // Checked now, not only as of the last commit: the files may have gone since.
    let moved = identity.is_some_and(|identity| identity.verify().is_err());
    let mut result = Ok(());
    if let Ok(mutex) = Arc::try_unwrap(write) {
        let conn = mutex.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
        if moved {
            // The last connection to close deletes the -wal and -shm by name, and the
            // names may now belong to another database: keep them.
            keep_wal_on_close(&conn);
        } else if checkpoint {
            result = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").map_err(StoreError::from);
        }
        if let Err((_, e)) = conn.sqlite.close() {
            result = result.and(Err(e.into()));
        }
    }
    result
}

impl Open {
    fn batch_context(&self) -> batch::Context<'_> {
        batch::Context { cache: &self.cache, identity: self.identity.as_deref() }
    }

    fn ensure_intact(&self) -> StoreResult<()> {
        self.identity.as_ref().map_or(Ok(()), |identity| identity.ensure_intact())
    }

    fn verify_for_read(&self) -> StoreResult<()> {
        self.identity.as_ref().map_or(Ok(()), |identity| identity.verify_for_read())
    }
}

/// Tells SQLite not to delete the -wal and -shm files when this connection closes.
fn keep_wal_on_close(conn: &Conn) {
    let mut persist: std::os::raw::c_int = 1;
    // SAFETY: the handle is valid while `conn` lives; the file control reads and writes
    // one int through the pointer.
    unsafe {
        rusqlite::ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            rusqlite::ffi::SQLITE_FCNTL_PERSIST_WAL,
            (&mut persist as *mut std::os::raw::c_int).cast(),
        );
    }
}

/// Whether the connection's database is in WAL mode.
fn is_wal(conn: &Conn) -> StoreResult<bool> {
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
    Ok(mode.eq_ignore_ascii_case("wal"))
}

/// The local file (or in-memory database): reads and quiet-time writes on the calling
/// thread, the rest on the writer thread.
impl crate::engine::Engine for Database {
    fn open_table(&mut self, options: &TableOptions) -> StoreResult<u32> {
        Database::open_table(self, options)
    }

    fn sync_table(&self, table: u32) -> StoreResult<()> {
        Database::sync_table(self, table)
    }

    fn read_now(&self, table: u32, op: &Op) -> Option<StoreResult<Outcome>> {
        Some(match op {
            Op::Get { sid } => {
                self.get_entry(table, sid).map(|found| found.map_or(Outcome::Missing, |(d, e)| Outcome::Entry(d, e)))
            }
            Op::LastWrite { sid } => {
                self.last_write(table, sid).map(|found| found.map_or(Outcome::Missing, Outcome::Count))
            }
            _ => return None,
        })
    }

    fn touch_is_current(&self, table: u32, sid: &str, expires: i64) -> bool {
        Database::touch_is_current(self, table, sid, expires).unwrap_or(false)
    }

    fn run(&self, jobs: &[(u32, Op)]) -> StoreResult<Option<crate::engine::Outcomes>> {
        Database::run(self, jobs)
    }

    fn queue(&self, jobs: Vec<(u32, u32, Op)>) -> StoreResult<()> {
        Database::queue(self, jobs)
    }

    fn prune(&self, ticket: u32, table: u32) -> StoreResult<()> {
        Database::prune(self, ticket, table)
    }

    fn stop_pruning(&self, table: u32) -> StoreResult<()> {
        Database::stop_pruning(self, table)
    }

    fn backup(&self, ticket: u32, target: std::path::PathBuf) -> StoreResult<()> {
        Database::backup(self, ticket, target)
    }

    fn serialize(&self) -> StoreResult<Vec<u8>> {
        Database::serialize(self)
    }

    fn counters(&self) -> crate::engine::Counters {
        let stats = self.prune_stats();
        let (file_bytes, wal_bytes) = self.file_sizes();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        crate::engine::Counters {
            prune_runs: load(&stats.runs),
            rows_pruned: load(&stats.rows),
            prunes_skipped: load(&stats.skipped),
            prune_errors: load(&stats.errors),
            checkpoints: load(&stats.checkpoints),
            busy_retries: self.busy_retries(),
            cached_reads: self.cache_hits(),
            file_bytes,
            wal_bytes,
        }
    }

    fn is_memory(&self) -> bool {
        Database::is_memory(self)
    }

    fn close_in_background(&mut self, done: crate::engine::OnClosed) -> StoreResult<()> {
        Database::close_in_background(self, done)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{temp_dir, ChannelSink};

    #[test]
    fn sync_table_recreates_a_dropped_table_under_the_same_handle() {
        let dir = temp_dir();
        let path = dir.path().join("sessions.db");
        let mut db =
            Database::open(Location::File(path.clone()), OpenOptions::default(), ChannelSink::new().0).expect("open");
        let options = |create_table| TableOptions {
            name: "Sessions".into(),
            create_table,
            default_ttl_ms: 1000,
            max_lifetime_ms: None,
            prune_interval: None,
            extra_columns: vec![],
            import: None,
        };
        let refused = db.open_table(&options(false)).unwrap_err();
        assert_eq!(refused.code, "ERR_NO_TABLE", "createTable: false on a missing table");
        let handle = db.open_table(&options(true)).expect("table");
        rusqlite::Connection::open(&path).expect("other").execute_batch("DROP TABLE Sessions").expect("drop");
        let set = Op::Set {
            sid: "s".into(),
            data: "{}".into(),
            expires: ops::now_ms() + 60_000,
            user_key: None,
            extras: vec![],
        };
        assert!(db.run_one(handle, &set).is_err(), "no table to write to");
        db.sync_table(handle).expect("sync");
        db.run_one(handle, &set).expect("set after sync");
        assert_eq!(db.get(handle, "s").expect("get"), Some("{}".to_string()));
        assert_eq!(db.tables.len(), 1, "no new handle");
        db.close().expect("close");
    }
}
