//! Opening connections: where the database lives, file and directory modes, pragmas,
//! and the busy handler. Pragmas run outside any transaction.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{StoreError, StoreResult};

/// Where a database lives.
#[derive(Debug, Clone)]
pub enum Location {
    File(PathBuf),
    /// A private in-memory database, optionally filled from a serialized image.
    Memory(Option<Vec<u8>>),
}

impl Location {
    pub fn is_memory(&self) -> bool {
        matches!(self, Location::Memory(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    Normal,
    Full,
}

#[derive(Debug, Clone)]
pub struct OpenOptions {
    pub readonly: bool,
    pub file_must_exist: bool,
    /// How long a connection waits for another connection's lock, in ms.
    pub busy_timeout_ms: u32,
    pub wal: bool,
    pub synchronous: Option<Synchronous>,
    /// Most bytes of session ids and data the session cache keeps (0: no cache).
    pub session_cache_bytes: usize,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            readonly: false,
            file_must_exist: false,
            busy_timeout_ms: 5000,
            wal: true,
            synchronous: None,
            session_cache_bytes: crate::cache::DEFAULT_CAPACITY_BYTES,
        }
    }
}

/// A connection with its busy switch: while `fail_fast` is set, a lock held by another
/// connection fails at once with `SQLITE_BUSY` instead of sleeping (the JS thread must
/// never sleep on a lock; it hands such work to the writer thread instead).
#[derive(Debug)]
pub struct Conn {
    pub sqlite: Connection,
    pub fail_fast: Arc<AtomicBool>,
}

impl std::ops::Deref for Conn {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.sqlite
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.sqlite
    }
}

/// SQLite's own back-off schedule (ms) for its busy timeout.
const BACKOFF_MS: [u64; 12] = [1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100];

/// Sleeps before retry number `count` unless the timeout has been used up.
fn wait_for_lock(count: i32, timeout_ms: u64) -> bool {
    let count = count.max(0) as usize;
    let waited: u64 = if count < BACKOFF_MS.len() {
        BACKOFF_MS[..count].iter().sum()
    } else {
        BACKOFF_MS.iter().sum::<u64>() + (count - BACKOFF_MS.len()) as u64 * 100
    };
    let next = BACKOFF_MS.get(count).copied().unwrap_or(100);
    if waited >= timeout_ms {
        return false;
    }
    std::thread::sleep(Duration::from_millis(next.min(timeout_ms - waited)));
    true
}

/// What `prepare_location` created, so that a failed open can take it back.
#[derive(Debug, Default)]
pub struct Created {
    /// Directories created, outermost first.
    dirs: Vec<PathBuf>,
    file: Option<PathBuf>,
    /// `-wal` and `-shm` paths that did not exist before the open.
    companions: Vec<PathBuf>,
}

impl Created {
    /// Removes what the failed open left behind: the empty database file it created,
    /// with the -wal/-shm SQLite made for it while they hold nothing (a -shm's index is
    /// 32 KiB once written; a WAL with a transaction in it is larger still), and the
    /// directories it created. Beside a database that existed, the companions are left:
    /// another process may have opened it meanwhile and be using them.
    pub fn undo(self) {
        let new_and_empty = self.file.as_ref().is_some_and(|file| std::fs::metadata(file).is_ok_and(|m| m.len() == 0));
        for path in self.companions.iter().filter(|_| new_and_empty) {
            if std::fs::metadata(path).is_ok_and(|m| m.len() < 32 * 1024) {
                let _ = std::fs::remove_file(path);
            }
        }
        if let Some(file) = &self.file {
            if std::fs::metadata(file).is_ok_and(|m| m.len() == 0) {
                let _ = std::fs::remove_file(file);
            }
        }
        for dir in self.dirs.iter().rev() {
            // Only while empty: another process may have put something there meanwhile.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Creates the directories leading to `path` (mode 0700: they hold session secrets);
/// returns those it created, outermost first.
fn create_parent_dirs(path: &Path) -> StoreResult<Vec<PathBuf>> {
    let Some(parent) = path.parent() else { return Ok(Vec::new()) };
    let mut missing: Vec<PathBuf> =
        parent.ancestors().take_while(|p| !p.as_os_str().is_empty() && !p.exists()).map(Path::to_path_buf).collect();
    missing.reverse();
    if missing.is_empty() {
        return Ok(missing);
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(parent).map_err(|e| {
        for dir in missing.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
        StoreError::new("SQLITE_CANTOPEN", format!("cannot create directory {}: {e}", parent.display()))
    })?;
    Ok(missing)
}

/// Creates an empty database file readable and writable by its owner only, so that
/// SQLite (which gives -wal and -shm files the mode of the database) never exposes it.
/// False when another process created it first.
fn create_private_file(path: &Path) -> StoreResult<bool> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => {
            Err(StoreError::new("SQLITE_CANTOPEN", format!("cannot create database file {}: {e}", path.display())))
        }
    }
}

/// Prepares the file system for the first connection to a file database; returns what
/// it created (see `Created::undo`).
pub fn prepare_location(location: &Location, options: &OpenOptions) -> StoreResult<Created> {
    let Location::File(path) = location else { return Ok(Created::default()) };
    let companions = ["-wal", "-shm"]
        .iter()
        .map(|suffix| crate::identity::with_suffix(path, suffix))
        .filter(|p| !p.exists())
        .collect();
    if path.exists() {
        return Ok(Created { companions, ..Created::default() });
    }
    if options.file_must_exist || options.readonly {
        return Err(StoreError::new("SQLITE_CANTOPEN", format!("database file does not exist: {}", path.display())));
    }
    let dirs = create_parent_dirs(path)?;
    let created = Created { dirs, file: None, companions };
    match create_private_file(path) {
        Ok(true) => Ok(Created { file: Some(path.clone()), ..created }),
        Ok(false) => Ok(created),
        Err(e) => {
            created.undo();
            Err(e)
        }
    }
}

/// Adds the operating system's reason to a failure SQLite reports only by its kind
/// ("disk I/O error"), and calls a full file system by its name (`SQLITE_FULL`), as a
/// write on a full disk is: SQLite says IOERR when the -shm file cannot be grown.
fn with_os_cause(conn: &Connection, error: StoreError) -> StoreError {
    if !matches!(error.code.as_str(), "SQLITE_IOERR" | "SQLITE_CANTOPEN" | "SQLITE_FULL") {
        return error;
    }
    // SAFETY: the handle is valid while `conn` lives; the call only reads its state.
    let errno = unsafe { rusqlite::ffi::sqlite3_system_errno(conn.handle()) };
    if errno == 0 {
        return error;
    }
    let os = std::io::Error::from_raw_os_error(errno);
    let code = if os.kind() == std::io::ErrorKind::StorageFull { "SQLITE_FULL" } else { error.code.as_str() };
    StoreError::new(code, format!("{} ({os})", error.message))
}

/// Opens one connection with the store's settings. The first connection to a file
/// database also sets its journal mode (persistent in the file).
/// `busy_retries` counts every wait for a lock, across the connections that share it.
pub fn open_connection(location: &Location, options: &OpenOptions, busy_retries: &Arc<AtomicU64>) -> StoreResult<Conn> {
    let mut conn = match location {
        Location::File(path) => {
            let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX;
            flags |=
                if options.readonly { OpenFlags::SQLITE_OPEN_READ_ONLY } else { OpenFlags::SQLITE_OPEN_READ_WRITE };
            Connection::open_with_flags(path, flags)?
        }
        Location::Memory(image) => {
            let mut conn = Connection::open_in_memory()?;
            if let Some(bytes) = image {
                if !bytes.is_empty() {
                    conn.deserialize_read_exact(rusqlite::MAIN_DB, &bytes[..], bytes.len(), options.readonly)?;
                }
            }
            conn
        }
    };
    let fail_fast = Arc::new(AtomicBool::new(false));
    set_up(&mut conn, location, options, &fail_fast, busy_retries).map_err(|e| with_os_cause(&conn, e))?;
    Ok(Conn { sqlite: conn, fail_fast })
}

fn set_up(
    conn: &mut Connection,
    location: &Location,
    options: &OpenOptions,
    fail_fast: &Arc<AtomicBool>,
    busy_retries: &Arc<AtomicU64>,
) -> StoreResult<()> {
    install_busy_handler(conn, options.busy_timeout_ms, fail_fast, busy_retries)?;
    conn.set_prepared_statement_cache_capacity(64);
    // Reading the schema is the first real access: a file that is not a database fails here.
    conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |row| row.get::<_, i64>(0))?;
    if let Location::File(_) = location {
        apply_file_pragmas(conn, options)?;
    }
    Ok(())
}

fn install_busy_handler(
    conn: &mut Connection,
    timeout_ms: u32,
    fail_fast: &Arc<AtomicBool>,
    retries: &Arc<AtomicU64>,
) -> StoreResult<()> {
    let fail_fast = Arc::clone(fail_fast);
    let retries = Arc::clone(retries);
    let timeout_ms = u64::from(timeout_ms);
    conn.busy_handler(Some(move |count: i32| {
        if fail_fast.load(Ordering::Relaxed) {
            return false;
        }
        retries.fetch_add(1, Ordering::Relaxed);
        wait_for_lock(count, timeout_ms)
    }))?;
    Ok(())
}

fn apply_file_pragmas(conn: &Connection, options: &OpenOptions) -> StoreResult<()> {
    // A file the OS will not let us write (read-only media, permissions) opens
    // read-only: reads work and writes fail with SQLITE_READONLY, like `readonly`.
    if options.readonly || conn.is_readonly(rusqlite::MAIN_DB)? {
        return Ok(());
    }
    // `wal: false` leaves the file's journal mode as it is (a file someone else put in
    // WAL mode stays in it); `wal: true` switches it.
    let pragma = if options.wal { "PRAGMA journal_mode = WAL" } else { "PRAGMA journal_mode" };
    let mode: String = conn.query_row(pragma, [], |row| row.get(0))?;
    let in_wal = mode.eq_ignore_ascii_case("wal");
    if options.wal && !in_wal {
        return Err(StoreError::new("SQLITE_ERROR", format!("could not switch to WAL mode (journal_mode is {mode})")));
    }
    if in_wal {
        // Truncate the WAL back to this size whenever a checkpoint lets it restart.
        conn.execute_batch("PRAGMA journal_size_limit = 8388608")?;
    }
    // With WAL, NORMAL survives any process crash; FULL adds durability across power loss.
    let synchronous = options.synchronous.unwrap_or(if in_wal { Synchronous::Normal } else { Synchronous::Full });
    conn.execute_batch(match synchronous {
        Synchronous::Normal => "PRAGMA synchronous = NORMAL",
        Synchronous::Full => "PRAGMA synchronous = FULL",
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::temp_dir;

    #[test]
    fn creates_missing_dirs_and_private_file() {
        let base = temp_dir();
        let dir = base.path().join("d");
        let path = dir.join("a/b/sessions.db");
        let location = Location::File(path.clone());
        let options = OpenOptions::default();
        prepare_location(&location, &options).expect("prepare");
        let conn = open_connection(&location, &options, &Arc::default()).expect("open");
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("mode");
        assert_eq!(mode, "wal");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let file_mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(file_mode, 0o600);
            let dir_mode = std::fs::metadata(dir.join("a/b")).expect("meta").permissions().mode() & 0o777;
            assert_eq!(dir_mode, 0o700);
        }
    }

    #[test]
    fn file_must_exist_gives_cantopen() {
        let base = temp_dir();
        let dir = base.path().join("d");
        let location = Location::File(dir.join("nope.db"));
        let options = OpenOptions { file_must_exist: true, ..OpenOptions::default() };
        let err = prepare_location(&location, &options).unwrap_err();
        assert_eq!(err.code, "SQLITE_CANTOPEN");
        assert!(!dir.exists(), "nothing is created");
    }

    #[test]
    fn garbage_is_not_a_database() {
        let base = temp_dir();
        let dir = base.path().join("d");
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("junk.db");
        std::fs::write(&path, vec![b'x'; 4096]).expect("write");
        let err = open_connection(&Location::File(path), &OpenOptions::default(), &Arc::default()).unwrap_err();
        assert_eq!(err.code, "SQLITE_NOTADB");
        let err = open_connection(&Location::Memory(Some(vec![7u8; 1000])), &OpenOptions::default(), &Arc::default())
            .unwrap_err();
        assert_eq!(err.code, "SQLITE_NOTADB");
    }

    #[test]
    fn a_failed_open_takes_back_what_it_created() {
        let base = temp_dir();
        let path = base.path().join("a/b/sessions.db");
        let created = prepare_location(&Location::File(path.clone()), &OpenOptions::default()).expect("prepare");
        assert!(path.exists());
        created.undo();
        assert!(!base.path().join("a").exists(), "file and directories removed");
        // An existing database keeps everything, the companions too (another process
        // may be using them).
        std::fs::write(base.path().join("kept.db"), b"").expect("db");
        let kept = base.path().join("kept.db");
        let created = prepare_location(&Location::File(kept.clone()), &OpenOptions::default()).expect("prepare");
        std::fs::write(crate::identity::with_suffix(&kept, "-shm"), b"abc").expect("shm");
        created.undo();
        assert!(kept.exists(), "an existing file is never removed");
        assert!(crate::identity::with_suffix(&kept, "-shm").exists());
    }

    #[test]
    fn busy_wait_honours_timeout() {
        assert!(!wait_for_lock(0, 0));
        assert!(wait_for_lock(0, 5));
        assert!(!wait_for_lock(12, 300));
    }
}
