//! Which files the store opened, and whether the paths still lead to them.
//!
//! SQLite keeps writing through the descriptors it opened, whatever happens to the
//! names: after the database, its `-wal` or its `-shm` is deleted or replaced, commits
//! land in a file nobody can open again (or, for the `-shm`, beside another process's
//! view of the WAL), and SQLite itself notices only some of these cases, late. The store
//! records the device and inode of each file once, when it opens the database, and
//! compares them with what the paths hold now after every commit, before the commit is
//! acknowledged. The first mismatch is kept: from then on every operation fails with
//! `ERR_DATABASE_MOVED`, so no later write is acknowledged either. The store never
//! reopens the path: what is there now may be another application's database or a
//! restored backup, and writing to it silently would split the sessions in two.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use crate::error::{StoreError, StoreResult};

/// The error code of a store whose files are no longer the ones at its path.
pub const MOVED: &str = "ERR_DATABASE_MOVED";

/// Reads check the files at most this often (ms): a read acknowledges nothing, so a
/// stale read in between costs no data, and a `stat` per read would be a third of it.
const READ_CHECK_MS: u64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

/// The file at `path`; None when there is none. Any other failure to look (a
/// permission changed, an I/O error) is `Err`: it says nothing about the file.
fn file_id(path: &Path) -> std::io::Result<Option<FileId>> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok(Some(FileId { dev: meta.dev(), ino: meta.ino() }))
    }
    #[cfg(not(unix))]
    {
        // No inode numbers to compare: only a missing file is noticed.
        let _ = meta;
        Ok(Some(FileId { dev: 0, ino: 0 }))
    }
}

/// `path` with `suffix` appended to its last component (`sessions.db` -> `sessions.db-wal`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// The files behind one open database: the path the store was given, and the database,
/// `-wal` and `-shm` files found when it opened.
#[derive(Debug)]
pub struct FileIdentity {
    /// The path as given, made absolute (as SQLite does when it opens: a later
    /// `chdir` of the process changes nothing); a symbolic link is followed at each
    /// check, as SQLite followed it.
    path: PathBuf,
    /// Where SQLite keeps the companions: beside the file the link leads to.
    real: PathBuf,
    db: FileId,
    /// In WAL mode: the `-wal` and `-shm` files, which exist while any connection is open.
    companions: Vec<(&'static str, FileId)>,
    broken: OnceLock<StoreError>,
    started: Instant,
    last_read_check_ms: AtomicU64,
}

impl FileIdentity {
    /// Records the files now at `path`; call once the first connection has read the
    /// database (in WAL mode that read creates the `-wal` and `-shm` files).
    pub fn capture(path: &Path, wal: bool) -> StoreResult<FileIdentity> {
        let gone = || {
            StoreError::new(
                MOVED,
                format!("the database file {} disappeared while it was being opened", path.display()),
            )
        };
        let real = std::fs::canonicalize(path).map_err(|_| gone())?;
        let db = file_id(path).ok().flatten().ok_or_else(gone)?;
        let mut companions = Vec::new();
        if wal {
            for suffix in ["-wal", "-shm"] {
                // A read-only open can run without them (SQLite then reads the file alone).
                if let Ok(Some(id)) = file_id(&with_suffix(&real, suffix)) {
                    companions.push((suffix, id));
                }
            }
        }
        Ok(FileIdentity {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
            real,
            db,
            companions,
            broken: OnceLock::new(),
            started: Instant::now(),
            last_read_check_ms: AtomicU64::new(0),
        })
    }

    /// Fails if a check has ever failed; no system call.
    pub fn ensure_intact(&self) -> StoreResult<()> {
        match self.broken.get() {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// Compares every recorded file with what its path holds now (one `stat` each).
    /// Called after each commit and before its outcome is reported. Only a missing
    /// file or another file trips it; a `stat` that fails otherwise proves nothing
    /// and is let pass.
    pub fn verify(&self) -> StoreResult<()> {
        self.ensure_intact()?;
        let differs = |path: &Path, id: FileId| matches!(file_id(path), Ok(found) if found != Some(id));
        if differs(&self.path, self.db) {
            return Err(self.trip(""));
        }
        for (suffix, id) in &self.companions {
            if differs(&with_suffix(&self.real, suffix), *id) {
                return Err(self.trip(suffix));
            }
        }
        Ok(())
    }

    /// `verify` for reads: at most every `READ_CHECK_MS`, else only the kept outcome.
    pub fn verify_for_read(&self) -> StoreResult<()> {
        self.ensure_intact()?;
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.last_read_check_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < READ_CHECK_MS {
            return Ok(());
        }
        self.last_read_check_ms.store(now, Ordering::Relaxed);
        self.verify()
    }

    fn trip(&self, suffix: &str) -> StoreError {
        let what = if suffix.is_empty() { "database file".to_string() } else { format!("database's {suffix} file") };
        let error = StoreError::new(
            MOVED,
            format!(
                "the {what} at {} was deleted or replaced while the store had it open; the store refuses \
                 every operation from now on, since its writes would go to a file nobody can open again \
                 (open a new store on the path to go on)",
                self.path.display()
            ),
        );
        let mut first = false;
        let kept = self.broken.get_or_init(|| {
            first = true;
            error
        });
        if first && suffix.is_empty() {
            self.remove_stale_companions();
        }
        kept.clone()
    }

    /// With the database file gone or replaced, our `-wal` and `-shm`, still at their
    /// paths, belong to the orphaned file: left there, the next connection to the path
    /// would apply our WAL's pages to whatever database now sits there. Removes each
    /// one that is still ours (same inode); something else at the path is left alone.
    fn remove_stale_companions(&self) {
        for (suffix, id) in &self.companions {
            let path = with_suffix(&self.real, suffix);
            if matches!(file_id(&path), Ok(Some(found)) if found == *id) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }

    /// Whether `target` is the database or one of its companion files, by device and
    /// inode (a hard link or another name for it counts) or by name (a companion that
    /// does not exist yet, such as the `-journal`).
    pub fn is_database_or_companion(&self, target: &Path) -> bool {
        if let Ok(Some(id)) = file_id(target) {
            if id == self.db || self.companions.iter().any(|(_, c)| *c == id) {
                return true;
            }
        }
        let (Some(name), Some(parent)) = (target.file_name(), target.parent()) else { return false };
        let parent = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
        let Ok(parent) = std::fs::canonicalize(parent) else { return false };
        let candidate = parent.join(name);
        ["", "-wal", "-shm", "-journal"].iter().any(|suffix| candidate == with_suffix(&self.real, suffix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_db(dir: &Path) -> (PathBuf, rusqlite::Connection) {
        let path = dir.join("s.db");
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)).expect("wal");
        conn.execute_batch("CREATE TABLE t (x)").expect("table");
        (path, conn)
    }

    #[test]
    fn a_deleted_or_replaced_file_trips_for_good() {
        for victim in ["", "-wal", "-shm"] {
            let dir = crate::testing::temp_dir();
            let (path, _conn) = wal_db(dir.path());
            let identity = FileIdentity::capture(&path, true).expect("capture");
            assert_eq!(identity.companions.len(), 2);
            identity.verify().expect("intact");
            let file = with_suffix(&path, victim);
            std::fs::remove_file(&file).expect("rm");
            let error = identity.verify().unwrap_err();
            assert_eq!(error.code, MOVED, "{victim}");
            if victim.is_empty() {
                // Our WAL would otherwise be applied to whatever is put at the path.
                assert!(!with_suffix(&path, "-wal").exists() && !with_suffix(&path, "-shm").exists());
            } else {
                // The database is intact: its other companion (the WAL's committed pages) stays.
                let other = if victim == "-wal" { "-shm" } else { "-wal" };
                assert!(with_suffix(&path, other).exists(), "{victim}");
            }
            // Put a file back at the path: still refused, and with the first cause.
            std::fs::write(&file, b"").expect("recreate");
            assert_eq!(identity.verify().unwrap_err(), error);
            assert_eq!(identity.ensure_intact().unwrap_err(), error);
        }
    }

    #[test]
    fn recognises_the_database_and_its_companions_by_inode_and_by_name() {
        let dir = crate::testing::temp_dir();
        let (path, _conn) = wal_db(dir.path());
        let identity = FileIdentity::capture(&path, true).expect("capture");
        let link = dir.path().join("hard-link.db");
        std::fs::hard_link(with_suffix(&path, "-wal"), &link).expect("link");
        for target in
            [path.clone(), with_suffix(&path, "-wal"), with_suffix(&path, "-shm"), with_suffix(&path, "-journal"), link]
        {
            assert!(identity.is_database_or_companion(&target), "{}", target.display());
        }
        let other = dir.path().join("backup.db");
        assert!(!identity.is_database_or_companion(&other));
        std::fs::write(&other, b"x").expect("write");
        assert!(!identity.is_database_or_companion(&other));
    }
}
