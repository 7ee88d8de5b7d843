//! The seam between the store and where its sessions live. The Node layer talks to one
//! `Engine` and never asks which: `Database` (a local SQLite file or an in-memory
//! database) and `Cluster` (an rqlite cluster over HTTP) implement it.
//!
//! The contract both keep: jobs run in the order they arrive, the writes that arrive
//! together commit together, each job gets its own outcome, and a job's outcome is
//! given only once what it wrote is durable. A caller first offers work to be done now
//! (`run`, `read_now`); an engine that cannot do it without waiting (a lock held
//! elsewhere, a network hop) says so and the caller queues it (`queue`), to be
//! answered through the completion sink under its ticket.

use std::path::PathBuf;

use crate::database::TableOptions;
use crate::error::StoreResult;
use crate::ops::{Op, Outcome};

/// Counters and sizes an engine reports for `stats()`; none of them costs a query.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub prune_runs: u64,
    pub rows_pruned: u64,
    pub prunes_skipped: u64,
    pub prune_errors: u64,
    pub checkpoints: u64,
    pub busy_retries: u64,
    pub cached_reads: u64,
    pub file_bytes: u64,
    pub wal_bytes: u64,
}

/// What a closing engine calls once its queued work has run and it has let go of
/// everything it held.
pub type OnClosed = Box<dyn FnOnce(StoreResult<()>) + Send + 'static>;

/// Outcomes of a batch, in the order of its jobs.
pub type Outcomes = Vec<StoreResult<Outcome>>;

pub trait Engine: Send {
    /// Creates or migrates a table (or, with `create_table` false, refuses a missing one
    /// with `ERR_NO_TABLE`) and returns the handle jobs name it by. An engine that must
    /// not block the caller may do this behind the queue: jobs then wait for it, and
    /// fail with its error if it fails.
    fn open_table(&mut self, options: &TableOptions) -> StoreResult<u32>;

    /// Creates an open table again if it has gone; the handle stays valid.
    fn sync_table(&self, table: u32) -> StoreResult<()>;

    /// A point read (`Get`, `LastWrite`) answered on the calling thread, or None when
    /// only a queued job can answer it.
    fn read_now(&self, table: u32, op: &Op) -> Option<StoreResult<Outcome>>;

    /// Whether a touch to `expires` would change nothing a client can tell (known only
    /// from a cache; false whenever in doubt).
    fn touch_is_current(&self, table: u32, sid: &str, expires: i64) -> bool;

    /// Runs a batch on the calling thread in one transaction, or returns None at once
    /// (nothing ran) when that would mean waiting: the caller then queues it.
    fn run(&self, jobs: &[(u32, Op)]) -> StoreResult<Option<Outcomes>>;

    /// Queues `(ticket, table, op)` jobs behind what is queued; each outcome reaches the
    /// sink under its ticket.
    fn queue(&self, jobs: Vec<(u32, u32, Op)>) -> StoreResult<()>;

    /// Prunes a table's expired sessions now, off the calling thread; the row count
    /// reaches the sink under `ticket`.
    fn prune(&self, ticket: u32, table: u32) -> StoreResult<()>;

    /// Stops a table's scheduled prunes.
    fn stop_pruning(&self, table: u32) -> StoreResult<()>;

    /// Copies the sessions to a local file, off the calling thread; a count reaches the
    /// sink under `ticket`.
    fn backup(&self, ticket: u32, target: PathBuf) -> StoreResult<()>;

    /// The whole database as a serialized SQLite image.
    fn serialize(&self) -> StoreResult<Vec<u8>>;

    fn counters(&self) -> Counters;

    /// Whether the sessions live only in this process's memory.
    fn is_memory(&self) -> bool;

    /// Counts as closed at once; runs what is queued and lets go of files, threads and
    /// connections on a thread of its own, then calls `done`.
    fn close_in_background(&mut self, done: OnClosed) -> StoreResult<()>;
}
