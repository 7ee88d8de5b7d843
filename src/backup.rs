//! Online backup: a consistent copy of a live database written to a file by a thread
//! of its own, a few pages at a time, so neither the JS thread nor the writer waits.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::error::{StoreError, StoreResult};
use crate::open::{open_connection, Location, OpenOptions};
use crate::ops::Outcome;
use crate::worker::{Completion, CompletionSink};
use crate::SharedConn;

/// Pages copied per step; between steps other connections may write (and the copy
/// restarts from the changed pages, as SQLite's backup does).
const PAGES_PER_STEP: i32 = 256;

/// Where the copy reads from: its own connection to a file, or the one connection of
/// an in-memory database (taken for one step at a time).
pub enum BackupSource {
    File(Location, OpenOptions),
    Shared(SharedConn),
}

fn copy(source: &BackupSource, target: &PathBuf) -> StoreResult<i64> {
    let _ = std::fs::remove_file(target);
    let mut dest = Connection::open_with_flags(
        target,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o600))?;
    }
    match source {
        BackupSource::File(location, options) => {
            let read_only = OpenOptions { readonly: true, ..options.clone() };
            let conn = open_connection(location, &read_only, &Arc::default())?;
            run_steps(&conn, &mut dest)
        }
        BackupSource::Shared(shared) => {
            let guard = shared.lock().unwrap_or_else(|p| p.into_inner());
            // An in-memory database is small and has no other process writing: copy it whole.
            run_steps(&guard, &mut dest)
        }
    }
}

fn run_steps(source: &Connection, dest: &mut Connection) -> StoreResult<i64> {
    let backup = Backup::new(source, dest)?;
    loop {
        match backup.step(PAGES_PER_STEP)? {
            StepResult::Done => break,
            StepResult::More => {}
            StepResult::Busy | StepResult::Locked => std::thread::sleep(Duration::from_millis(5)),
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    Ok(i64::from(backup.progress().pagecount))
}

/// Starts the copy; its page count (or error) is delivered under `ticket`.
pub fn start(
    source: BackupSource,
    target: PathBuf,
    ticket: u32,
    sink: Arc<dyn CompletionSink>,
) -> StoreResult<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("sqlite-session-backup".into())
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| copy(&source, &target)))
                .unwrap_or_else(|_| Err(StoreError::new("ERR_INTERNAL", "the backup thread hit an internal error")));
            sink.deliver(vec![Completion { ticket, result: result.map(Outcome::Count) }]);
        })
        .map_err(|e| StoreError::new("ERR_THREAD", format!("cannot start the backup thread: {e}")))
}
