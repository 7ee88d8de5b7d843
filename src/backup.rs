//! Online backup: a consistent copy of a live database written to a file by a thread
//! of its own, so the JS thread never waits for the copy.
//!
//! - A file in WAL mode is copied in one `step(-1)`: one read transaction, one snapshot.
//!   In WAL mode a reader does not block writers, and a copy done in one step has no
//!   "between steps" in which another connection's write could restart it, so the copy
//!   always finishes, however steady the writes.
//! - A file in rollback-journal mode is copied a few pages at a time, because there a
//!   reader does block writers. Each write by another connection restarts the copy;
//!   after a few restarts the rest is copied in one step (writers then wait, up to
//!   their busy timeout, instead of the copy never finishing).
//! - An in-memory database has one connection, which the JS thread also reads on. It
//!   is serialized under its lock (one memory copy, about a millisecond per few MB)
//!   and the image is written to the file after the lock is released, so a `get`
//!   never waits for disk I/O. Copying with the backup API instead would hold that
//!   lock while writing the file.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::serialize::{Data, OwnedData};
use rusqlite::{Connection, OpenFlags};

use crate::error::{StoreError, StoreResult};
use crate::identity::with_suffix;
use crate::open::{open_connection, Location, OpenOptions};
use crate::ops::Outcome;
use crate::worker::{Completion, CompletionSink};
use crate::SharedConn;

/// Pages copied per step in rollback-journal mode; between steps writers get the lock.
const PAGES_PER_STEP: i32 = 256;

/// Restarts (in rollback-journal mode) after which the rest is copied in one step.
const RESTARTS_BEFORE_ONE_STEP: u32 = 3;

/// Where the copy reads from: its own connection to a file, or the one connection of
/// an in-memory database.
#[derive(Clone)]
pub enum BackupSource {
    File(Location, OpenOptions),
    Shared(SharedConn),
}

/// Creates `path` empty and private (0600: it holds every session). Created with the
/// mode rather than chmod-ed after, so that no other user can open it in between.
pub(crate) fn create_private(path: &Path) -> StoreResult<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|e| {
        let error = StoreError::from(e);
        StoreError::new(&error.code, format!("cannot create the backup file {}: {}", path.display(), error.message))
    })
}

/// The source file itself as target would replace the live database.
fn check_not_source(source: &BackupSource, target: &Path) -> StoreResult<()> {
    let BackupSource::File(Location::File(path), _) = source else { return Ok(()) };
    if let (Ok(a), Ok(b)) = (std::fs::canonicalize(path), std::fs::canonicalize(target)) {
        if a == b {
            return Err(StoreError::new("ERR_INVALID_ARG_VALUE", "the backup target is the database file itself"));
        }
    }
    Ok(())
}

fn copy(source: &BackupSource, target: &Path) -> StoreResult<i64> {
    check_not_source(source, target)?;
    write_atomically(target, |temporary| copy_to(source, temporary))
}

/// Has `write` fill a temporary file next to `target`, then renames it over `target`:
/// a failed copy leaves whatever was at `target` untouched and no partial file behind.
/// (Also the cluster engine's backups.)
pub(crate) fn write_atomically(target: &Path, write: impl FnOnce(&Path) -> StoreResult<i64>) -> StoreResult<i64> {
    remove_leftovers(target);
    let temporary = temporary_for(target);
    let result = write(&temporary);
    if result.is_ok() {
        // Journal files of whatever database was at `target` would be applied to the copy.
        for suffix in ["-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(with_suffix(target, suffix));
        }
        if let Err(e) = std::fs::rename(&temporary, target) {
            let _ = std::fs::remove_file(&temporary);
            return Err(e.into());
        }
        return result;
    }
    let _ = std::fs::remove_file(with_suffix(&temporary, "-journal"));
    let _ = std::fs::remove_file(&temporary);
    result
}

fn copy_to(source: &BackupSource, path: &Path) -> StoreResult<i64> {
    match source {
        BackupSource::File(location, options) => {
            let read_only = OpenOptions { readonly: true, ..options.clone() };
            let conn = open_connection(location, &read_only, &Arc::default())?;
            let journal_mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
            drop(create_private(path)?);
            let mut dest =
                Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
            let timeout = Duration::from_millis(u64::from(options.busy_timeout_ms));
            if journal_mode.eq_ignore_ascii_case("wal") {
                copy_in_one_step(&conn, &mut dest, timeout)
            } else {
                copy_in_steps(&conn, &mut dest, timeout)
            }
        }
        BackupSource::Shared(shared) => {
            let image = serialize(shared)?;
            let bytes: &[u8] = match &image {
                Ok(owned) => owned,
                Err(copied) => copied,
            };
            let mut file = create_private(path)?;
            file.write_all(bytes)?;
            // Reported done only once it is on disk, as the backup API's commit would be.
            file.sync_all()?;
            Ok(i64::try_from(bytes.len() / page_size(bytes)).unwrap_or(i64::MAX))
        }
    }
}

/// The database image, taken under the connection's lock: while the lock is held no
/// transaction is open on it (every user of the connection finishes its transaction
/// before releasing it), so the image is a committed state. The lock is released
/// before the image is written anywhere.
fn serialize(shared: &SharedConn) -> StoreResult<Result<OwnedData, Vec<u8>>> {
    let mut guard = crate::lock(shared);
    let image = match guard.serialize(rusqlite::MAIN_DB)? {
        // A private in-memory database: SQLite made the copy.
        Data::Owned(owned) => Ok(owned),
        // A Buffer-opened one: its memory belongs to the connection; copy it out.
        Data::Shared(shared) => Err(shared.to_vec()),
    };
    drop(guard);
    Ok(image)
}

/// The page size from the image's header (bytes 16-17, big-endian; 1 means 65536).
fn page_size(image: &[u8]) -> usize {
    match image.get(16..18) {
        Some([0, 1]) => 65536,
        Some(&[hi, lo]) if hi != 0 || lo != 0 => usize::from(u16::from_be_bytes([hi, lo])),
        _ => 4096,
    }
}

/// Runs `step` until it is not busy, for at most the busy timeout.
fn step_until_not_busy(backup: &Backup<'_, '_>, pages: i32, timeout: Duration) -> StoreResult<StepResult> {
    let started = Instant::now();
    loop {
        match backup.step(pages)? {
            StepResult::Busy | StepResult::Locked if started.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(5));
            }
            StepResult::Busy | StepResult::Locked => {
                return Err(StoreError::new(
                    "SQLITE_BUSY",
                    "the database stayed locked for longer than the busy timeout",
                ));
            }
            other => return Ok(other),
        }
    }
}

fn copy_in_one_step(source: &Connection, dest: &mut Connection, timeout: Duration) -> StoreResult<i64> {
    let backup = Backup::new(source, dest)?;
    loop {
        // Done at once, unless SQLite had to give up the step part way (it then says More).
        if step_until_not_busy(&backup, -1, timeout)? == StepResult::Done {
            return Ok(i64::from(backup.progress().pagecount));
        }
    }
}

fn copy_in_steps(source: &Connection, dest: &mut Connection, timeout: Duration) -> StoreResult<i64> {
    let backup = Backup::new(source, dest)?;
    let mut restarts = 0;
    let mut remaining = i32::MAX;
    loop {
        let pages = if restarts >= RESTARTS_BEFORE_ONE_STEP { -1 } else { PAGES_PER_STEP };
        if step_until_not_busy(&backup, pages, timeout)? == StepResult::Done {
            return Ok(i64::from(backup.progress().pagecount));
        }
        let now = backup.progress().remaining;
        if now > remaining {
            restarts += 1;
        }
        remaining = now;
    }
}

/// A request waiting for its copy: every ticket that asked for this target.
struct Request {
    target: PathBuf,
    tickets: Vec<u32>,
}

#[derive(Default)]
struct Queue {
    waiting: std::collections::VecDeque<Request>,
    /// Whether a thread is copying (it takes the next request when done).
    running: bool,
    closing: bool,
}

/// The backups of one database, one copy at a time on one thread. A flood of requests
/// costs one thread and one temporary file, never one per request; a request for a
/// target that is already waiting joins it (both callers get that copy's outcome).
#[derive(Default)]
pub struct Backups {
    queue: Arc<std::sync::Mutex<Queue>>,
    threads: std::sync::Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl Backups {
    /// Queues a copy of `source` to `target`; its page count (or error) is delivered
    /// under `ticket` once done.
    pub fn request(
        &self,
        source: BackupSource,
        target: PathBuf,
        ticket: u32,
        sink: Arc<dyn CompletionSink>,
    ) -> StoreResult<()> {
        let mut queue = crate::lock(&self.queue);
        if queue.closing {
            return Err(StoreError::closed());
        }
        match queue.waiting.iter_mut().find(|r| r.target == target) {
            Some(request) => request.tickets.push(ticket),
            None => queue.waiting.push_back(Request { target, tickets: vec![ticket] }),
        }
        if queue.running {
            return Ok(());
        }
        let shared = Arc::clone(&self.queue);
        let thread = std::thread::Builder::new()
            .name("sqlite-session-backup".into())
            .spawn(move || copy_until_done(&shared, &source, sink.as_ref()))
            .map_err(|e| StoreError::new("ERR_THREAD", format!("cannot start the backup thread: {e}")))?;
        queue.running = true;
        drop(queue);
        let mut threads = crate::lock(&self.threads);
        threads.retain(|t| !t.is_finished());
        threads.push(thread);
        Ok(())
    }

    /// Refuses new requests, lets the queued ones finish (each is answered), and waits.
    pub fn shutdown(&self) {
        crate::lock(&self.queue).closing = true;
        for thread in std::mem::take(&mut *crate::lock(&self.threads)) {
            let _ = thread.join();
        }
    }
}

fn copy_until_done(queue: &std::sync::Mutex<Queue>, source: &BackupSource, sink: &dyn CompletionSink) {
    loop {
        let request = {
            let mut queue = crate::lock(queue);
            match queue.waiting.pop_front() {
                Some(request) => request,
                None => {
                    queue.running = false;
                    return;
                }
            }
        };
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| copy(source, &request.target)))
            .unwrap_or_else(|_| Err(StoreError::new("ERR_INTERNAL", "the backup thread hit an internal error")));
        let completions = request
            .tickets
            .iter()
            .map(|&ticket| Completion { ticket, result: result.clone().map(Outcome::Count) })
            .collect();
        sink.deliver(completions);
    }
}

/// The temporary file a copy to `target` is written to before it is renamed over it.
/// Its name carries the process id, so that leftovers of a killed process can be told
/// from a copy under way in a live one (see `remove_leftovers`).
fn temporary_for(target: &Path) -> PathBuf {
    // Numbered too: two databases of one process may back up to the same target at once.
    static COPIES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COPIES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    with_suffix(target, &format!("{TEMPORARY_MARK}{}-{n}-partial", std::process::id()))
}

const TEMPORARY_MARK: &str = ".backup-";

/// Removes temporary copies next to `target` left by processes that no longer exist
/// (killed during a copy). Linux only: elsewhere there is no cheap way to ask whether
/// a process id is alive, and the leftovers stay (their names say what they are).
fn remove_leftovers(target: &Path) {
    #[cfg(target_os = "linux")]
    {
        let (Some(name), Some(parent)) = (target.file_name().and_then(|n| n.to_str()), target.parent()) else { return };
        let dir = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        let prefix = format!("{name}{TEMPORARY_MARK}");
        for entry in entries.flatten() {
            let file = entry.file_name();
            let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else { continue };
            // `<pid>-<n>-partial` (this version) or `<pid>-<n>` (earlier ones), maybe `-journal` after.
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
            if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = target;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{temp_dir, ChannelSink};
    use std::sync::Mutex;

    fn run(source: BackupSource, target: &Path) -> StoreResult<Outcome> {
        let (sink, rx) = ChannelSink::new();
        let backups = Backups::default();
        backups.request(source, target.to_path_buf(), 1, sink).expect("request");
        backups.shutdown();
        rx.try_iter().flatten().next().expect("one completion").result
    }

    fn rows(path: &Path) -> i64 {
        let conn = Connection::open(path).expect("open copy");
        let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("check");
        assert_eq!(check, "ok");
        conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).expect("count")
    }

    #[test]
    fn in_memory_image_is_a_valid_file() {
        let dir = temp_dir();
        let conn = open_connection(&Location::Memory(None), &OpenOptions::default(), &Arc::default()).expect("open");
        conn.execute_batch("CREATE TABLE t (x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) INSERT INTO t SELECT randomblob(100) FROM n;")
            .expect("fill");
        let target = dir.path().join("copy.db");
        let pages = run(BackupSource::Shared(Arc::new(Mutex::new(conn))), &target).expect("backup");
        assert!(matches!(pages, Outcome::Count(n) if n > 10));
        assert_eq!(rows(&target), 3000);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&target).expect("meta").permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn rollback_journal_file_is_copied_and_the_source_is_refused_as_target() {
        let dir = temp_dir();
        let path = dir.path().join("live.db");
        let location = Location::File(path.clone());
        let options = OpenOptions { wal: false, ..OpenOptions::default() };
        crate::open::prepare_location(&location, &options).expect("prepare");
        let conn = open_connection(&location, &options, &Arc::default()).expect("open");
        conn.execute_batch("CREATE TABLE t (x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) INSERT INTO t SELECT randomblob(500) FROM n;")
            .expect("fill");
        let target = dir.path().join("copy.db");
        run(BackupSource::File(location.clone(), options.clone()), &target).expect("backup");
        assert_eq!(rows(&target), 2000);
        let err = run(BackupSource::File(location, options), &path).unwrap_err();
        assert_eq!(err.code, "ERR_INVALID_ARG_VALUE");
        assert_eq!(conn.query_row("SELECT COUNT(*) FROM t", [], |r| r.get::<_, i64>(0)).expect("live"), 2000);
    }

    #[test]
    fn wal_file_copy_finishes_under_steady_writes() {
        let dir = temp_dir();
        let location = Location::File(dir.path().join("live.db"));
        let options = OpenOptions::default();
        crate::open::prepare_location(&location, &options).expect("prepare");
        let conn = open_connection(&location, &options, &Arc::default()).expect("open");
        conn.execute_batch("CREATE TABLE t (x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) INSERT INTO t SELECT randomblob(400) FROM n;")
            .expect("fill");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let written = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let writer = {
            let (stop, written) = (Arc::clone(&stop), Arc::clone(&written));
            std::thread::spawn(move || {
                // Each insert is its own commit: every one of them would restart a stepped copy.
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    conn.execute("INSERT INTO t VALUES (randomblob(400))", []).expect("insert");
                    written.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                conn
            })
        };
        while written.load(std::sync::atomic::Ordering::Relaxed) < 10 {
            std::thread::yield_now();
        }
        let before = 20_000 + written.load(std::sync::atomic::Ordering::Relaxed);
        let target = dir.path().join("copy.db");
        run(BackupSource::File(location, options), &target).expect("backup");
        let after = 20_000 + written.load(std::sync::atomic::Ordering::Relaxed);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(writer.join().expect("writer"));
        let copied = rows(&target);
        assert!(copied >= before && copied <= after, "{before} <= {copied} <= {after}");
    }

    #[test]
    fn failed_copy_leaves_the_target_as_it_was() {
        let dir = temp_dir();
        let target = dir.path().join("copy.db");
        std::fs::write(&target, b"an older backup").expect("write");
        let err = run(
            BackupSource::File(
                Location::File(dir.path().join("missing.db")),
                OpenOptions { readonly: true, ..OpenOptions::default() },
            ),
            &target,
        )
        .unwrap_err();
        assert_eq!(err.code, "SQLITE_CANTOPEN");
        assert_eq!(std::fs::read(&target).expect("read"), b"an older backup");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1, "no temporary file left");
    }
}
