//! A batch of jobs in one transaction, outcomes in order: the one way jobs reach
//! SQLite. The JS thread runs a batch now when it can do so without waiting for a lock
//! (else the batch goes to the writer thread), and the writer thread runs what was
//! queued; both come here. Around the transaction: the session cache's record of the
//! batch's changes, and, when it wrote, the check that the files are still the ones at
//! the path, before any outcome is reported.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::cache::SessionCache;
use crate::error::{StoreError, StoreResult};
use crate::identity::FileIdentity;
use crate::open::Conn;
use crate::ops::{self, Op, Outcome, Table};

/// An operation and the table it applies to.
#[derive(Debug, Clone)]
pub struct Job {
    pub table: Arc<Table>,
    pub op: Op,
}

/// What a batch runs against besides its connection.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub cache: &'a SessionCache,
    /// The files opened (None in memory).
    pub identity: Option<&'a FileIdentity>,
}

/// Whether a batch may wait for another connection's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// The writer thread: waits up to the busy timeout.
    Allowed,
    /// The JS thread: a held lock returns the batch untouched (`None`) at once.
    Never,
}

/// Runs `jobs` in one transaction; if one fails, the transaction is rolled back and
/// each job runs on its own, so each outcome is the job's own. Returns the outcomes in
/// order, or None (with `Waiting::Never`) when the lock was held elsewhere and nothing ran.
pub fn run(conn: &mut Conn, context: Context<'_>, jobs: &[Job], waiting: Waiting) -> Option<Vec<StoreResult<Outcome>>> {
    if let Some(Err(moved)) = context.identity.map(FileIdentity::ensure_intact) {
        return Some(jobs.iter().map(|_| Err(moved.clone())).collect());
    }
    let mut section = context.cache.begin();
    conn.fail_fast.store(waiting == Waiting::Never, Ordering::Relaxed);
    let ran = ops::run_batch(conn, jobs, ops::now_ms(), waiting == Waiting::Allowed);
    conn.fail_fast.store(false, Ordering::Relaxed);
    let outcomes = match ran {
        Ok(outcomes) => outcomes,
        Err(busy) if waiting == Waiting::Never && busy.code == "SQLITE_BUSY" => {
            context.cache.finish(section);
            return None;
        }
        Err(error) => jobs.iter().map(|_| Err(error.clone())).collect(),
    };
    let wrote = jobs.iter().zip(&outcomes).any(|(job, outcome)| job.op.writes() && outcome.is_ok());
    match context.identity {
        Some(identity) if wrote => {
            if let Err(moved) = identity.verify() {
                // Committed, but not to the file at the path: acknowledge none of it (and
                // keep nothing cached; every later call fails anyway).
                context.cache.clear();
                return Some(jobs.iter().map(|_| Err(moved.clone())).collect());
            }
        }
        // Nothing written, nothing to acknowledge: the reads' check, at most every
        // `identity::READ_CHECK_MS`, which still stops the calls after it once the files
        // have gone.
        // (Checking after every batch cost `length()` three `stat`s, a third of its time.)
        Some(identity) => {
            let _ = identity.verify_for_read();
        }
        None => {}
    }
    for (job, outcome) in jobs.iter().zip(&outcomes) {
        if let Ok(outcome) = outcome {
            section.record(&job.table, &job.op, outcome);
        }
    }
    context.cache.finish(section);
    Some(outcomes)
}

/// The error a caller that cannot wait gets for a job that could not run now.
pub fn busy() -> StoreError {
    StoreError::new("SQLITE_BUSY", "another connection holds the write lock")
}
