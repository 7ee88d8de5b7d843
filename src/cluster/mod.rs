//! The rqlite engine: the same store on a cluster of rqlite nodes. Nothing runs on the
//! calling thread (every call is a network hop): jobs are queued to one of two lanes,
//! each a thread. The write lane sends the writes that arrived together as one
//! transaction (one Raft entry), then the counts and listings queued with them as one
//! query; the read lane sends the point reads (`get`) that arrived together as one
//! query. Each outcome is delivered once rqlite has answered (for a write: once a
//! quorum has it). Two lanes, so that a `get` never waits behind a commit: a get and a
//! write that are both unanswered may take effect in either order (as on a file, where
//! a get reads what is committed), and one issued after another was answered is sent
//! after it. Counts and listings see every write issued before them.
//!
//! Tables are set up by the same thread before the first job that uses them, so
//! opening a store never waits for the network either. What a cluster has no use for
//! (the session cache, file checks, WAL upkeep) is simply absent.

mod client;
mod statements;
mod upkeep;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use client::{Client, Reply, Statement};
pub use client::{ClientOptions, Level};

use crate::database::TableOptions;
use crate::engine::{Counters, Engine, OnClosed, Outcomes};
use crate::error::{StoreError, StoreResult};
use crate::ops::{self, Op, Outcome, Table};
use crate::upkeep::PruneStats;
use crate::worker::{Completion, CompletionSink};

/// The ticket of a change in the cluster's reachability: `Ok` when it answers again,
/// the error when it stopped answering (the JS side emits 'connect' / 'disconnect').
pub const CONNECTION_TICKET: u32 = 0xffff_fffe;

/// Most jobs in one request: bounds a request's size and a Raft entry's.
const MAX_BATCH: usize = 512;

/// How often the cluster thread asks whether the cluster is back while it is not.
const PROBE_EVERY: Duration = Duration::from_millis(250);

/// A table on the cluster and whether its setup has run.
struct ClusterTable {
    table: Arc<Table>,
    create: bool,
    ready: AtomicBool,
}

enum Task {
    Jobs(Vec<(u32, u32, Op)>),
    /// Set the table up (again) before the next job.
    Prepare(u32),
    /// Finish what is queued, then stop.
    Stop,
}

/// A thread that sends one kind of job, and how to reach it.
struct Lane {
    tasks: Sender<Task>,
    thread: JoinHandle<()>,
}

pub struct Cluster {
    tables: Vec<Arc<ClusterTable>>,
    /// The write lane and the read lane, until closed.
    lanes: Option<[Lane; 2]>,
    /// The lanes learn of tables through this list, shared with them.
    shared_tables: Arc<std::sync::Mutex<Vec<Arc<ClusterTable>>>>,
    upkeep: Option<upkeep::Upkeep>,
    stats: Arc<PruneStats>,
}

impl Cluster {
    pub fn open(options: ClientOptions, sink: Arc<dyn CompletionSink>) -> StoreResult<Cluster> {
        let client = Arc::new(Client::new(options)?);
        let stats = Arc::new(PruneStats::default());
        let shared_tables = Arc::new(std::sync::Mutex::new(Vec::new()));
        let reachability = Arc::new(std::sync::Mutex::new(Reachability::default()));
        let lane = |name: &str, writes: bool| -> StoreResult<Lane> {
            let (tasks, receiver) = mpsc::channel();
            let lane = ClusterThread {
                client: Arc::clone(&client),
                sink: Arc::clone(&sink),
                tables: Arc::clone(&shared_tables),
                reachability: Arc::clone(&reachability),
                writes,
            };
            let thread = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || lane.run(receiver))
                .map_err(|e| StoreError::new("ERR_THREAD", format!("cannot start the cluster thread: {e}")))?;
            Ok(Lane { tasks, thread })
        };
        let lanes = [lane("rqlite-session-writes", true)?, lane("rqlite-session-reads", false)?];
        let upkeep = upkeep::Upkeep::start(client, sink, Arc::clone(&stats))?;
        Ok(Cluster { tables: Vec::new(), lanes: Some(lanes), shared_tables, upkeep: Some(upkeep), stats })
    }

    /// Sends a task to the write lane (0) or the read lane (1).
    fn send(&self, lane: usize, task: Task) -> StoreResult<()> {
        let lanes = self.lanes.as_ref().ok_or_else(StoreError::closed)?;
        lanes[lane].tasks.send(task).map_err(|_| StoreError::new("ERR_INTERNAL", "the cluster thread has stopped"))
    }

    /// Sets a table up again before either lane's next job.
    fn prepare(&self, table: u32) -> StoreResult<()> {
        self.send(0, Task::Prepare(table))?;
        self.send(1, Task::Prepare(table))
    }

    fn table(&self, id: u32) -> StoreResult<&Arc<ClusterTable>> {
        self.tables.get(id as usize).ok_or_else(|| StoreError::new("ERR_INTERNAL", "unknown table handle"))
    }

    fn upkeep(&self) -> StoreResult<&upkeep::Upkeep> {
        self.upkeep.as_ref().ok_or_else(StoreError::closed)
    }

    /// Tells the threads to finish what is queued and stop; their handles, to join.
    fn shut_down(&mut self) -> Option<(Vec<JoinHandle<()>>, upkeep::Upkeep)> {
        let lanes = self.lanes.take()?;
        let threads = lanes
            .into_iter()
            .map(|lane| {
                let _ = lane.tasks.send(Task::Stop);
                lane.thread
            })
            .collect();
        Some((threads, self.upkeep.take()?))
    }
}

impl Engine for Cluster {
    fn open_table(&mut self, options: &TableOptions) -> StoreResult<u32> {
        crate::sql::check_extra_columns(&options.extra_columns)
            .map_err(|m| StoreError::new("ERR_INVALID_ARG_VALUE", m))?;
        if options.import.is_some() {
            return Err(StoreError::new(
                "ERR_NOT_SUPPORTED",
                "importFrom reads another store's table in the same SQLite file; on a cluster, copy sessions with \
                 the copy-sessions command instead",
            ));
        }
        let table = Arc::new(Table::with_extra_columns(&options.name, options.max_lifetime_ms, &options.extra_columns));
        let entry = Arc::new(ClusterTable {
            table: Arc::clone(&table),
            create: options.create_table,
            ready: AtomicBool::new(false),
        });
        let id = self.tables.len() as u32;
        crate::lock(&self.shared_tables).push(Arc::clone(&entry));
        self.tables.push(entry);
        self.prepare(id)?;
        if let Some(interval) = options.prune_interval {
            self.upkeep()?.schedule(table, interval);
        }
        Ok(id)
    }

    fn sync_table(&self, table: u32) -> StoreResult<()> {
        self.table(table)?.ready.store(false, Ordering::Relaxed);
        self.prepare(table)
    }

    fn read_now(&self, _: u32, _: &Op) -> Option<StoreResult<Outcome>> {
        None
    }

    fn touch_is_current(&self, _: u32, _: &str, _: i64) -> bool {
        false
    }

    fn run(&self, _: &[(u32, Op)]) -> StoreResult<Option<Outcomes>> {
        Ok(None)
    }

    fn queue(&self, jobs: Vec<(u32, u32, Op)>) -> StoreResult<()> {
        for (_, table, _) in &jobs {
            self.table(*table)?;
        }
        // Point reads take the read lane. Counts and listings stay behind the writes queued
        // before them, as on a file: a `length` sees every write issued before it.
        let point_read = |op: &Op| matches!(op, Op::Get { .. } | Op::LastWrite { .. });
        let (reads, ordered): (Vec<_>, Vec<_>) = jobs.into_iter().partition(|(_, _, op)| point_read(op));
        if !ordered.is_empty() {
            self.send(0, Task::Jobs(ordered))?;
        }
        if !reads.is_empty() {
            self.send(1, Task::Jobs(reads))?;
        }
        Ok(())
    }

    fn prune(&self, ticket: u32, table: u32) -> StoreResult<()> {
        self.upkeep()?.request(ticket, Arc::clone(&self.table(table)?.table))
    }

    fn stop_pruning(&self, table: u32) -> StoreResult<()> {
        self.upkeep()?.unschedule(&self.table(table)?.table);
        Ok(())
    }

    fn backup(&self, ticket: u32, target: std::path::PathBuf) -> StoreResult<()> {
        self.upkeep()?.backup(ticket, target)
    }

    fn serialize(&self) -> StoreResult<Vec<u8>> {
        Err(StoreError::new(
            "ERR_NOT_SUPPORTED",
            "a cluster has no local image to serialize; backup(path) writes a copy of it to a file",
        ))
    }

    fn counters(&self) -> Counters {
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            prune_runs: load(&self.stats.runs),
            rows_pruned: load(&self.stats.rows),
            prunes_skipped: load(&self.stats.skipped),
            prune_errors: load(&self.stats.errors),
            ..Counters::default()
        }
    }

    fn is_memory(&self) -> bool {
        false
    }

    fn close_in_background(&mut self, done: OnClosed) -> StoreResult<()> {
        let Some((threads, mut upkeep)) = self.shut_down() else {
            done(Ok(()));
            return Ok(());
        };
        let spawned = std::thread::Builder::new().name("rqlite-session-close".into()).spawn(move || {
            upkeep.shutdown();
            let joined = threads.into_iter().map(JoinHandle::join).collect::<Result<Vec<_>, _>>();
            done(
                joined.map(drop).map_err(|_| StoreError::new("ERR_INTERNAL", "a cluster thread hit an internal error")),
            );
        });
        spawned.map(drop).map_err(|e| StoreError::new("ERR_THREAD", format!("cannot start the closing thread: {e}")))
    }
}

impl Drop for Cluster {
    /// Dropped without `close` (the process is exiting): the threads are told to stop
    /// and left to finish on their own; waiting here could mean waiting on the network.
    fn drop(&mut self) {
        drop(self.shut_down());
    }
}

/// Whether the cluster answers, shared by both lanes. While it does not, jobs fail at
/// once with the error that said so, rather than each waiting out the timeout again,
/// and the lanes ask `/readyz` every `PROBE_EVERY` until a node has a leader.
struct Reachability {
    down: Option<StoreError>,
    last_probe: std::time::Instant,
}

impl Default for Reachability {
    fn default() -> Self {
        Reachability { down: None, last_probe: std::time::Instant::now() }
    }
}

/// A lane's thread: talks to the cluster for the JS side's jobs of one kind.
struct ClusterThread {
    client: Arc<Client>,
    sink: Arc<dyn CompletionSink>,
    tables: Arc<std::sync::Mutex<Vec<Arc<ClusterTable>>>>,
    reachability: Arc<std::sync::Mutex<Reachability>>,
    /// The write lane (writes, counts, listings); else the read lane (point reads).
    writes: bool,
}

impl ClusterThread {
    fn run(mut self, tasks: Receiver<Task>) {
        loop {
            self.probe_if_down();
            let waited = if self.down().is_none() { tasks.recv().ok().map(Some) } else { recv_or_probe(&tasks) };
            let first = match waited {
                Some(Some(task)) => task,
                Some(None) => continue,
                None => return,
            };
            // Everything queued meanwhile goes in this round.
            let mut jobs = Vec::new();
            let mut stop = false;
            for task in std::iter::once(first).chain(std::iter::from_fn(|| tasks.try_recv().ok())) {
                match task {
                    Task::Jobs(more) => jobs.extend(more),
                    Task::Prepare(id) => {
                        if let Some(table) = crate::lock(&self.tables).get(id as usize) {
                            table.ready.store(false, Ordering::Relaxed);
                        }
                    }
                    Task::Stop => stop = true,
                }
                if jobs.len() >= MAX_BATCH {
                    break;
                }
            }
            for chunk in jobs.chunks(MAX_BATCH) {
                let completions = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run_jobs(chunk)))
                    .unwrap_or_else(|_| {
                        let failed = StoreError::new("ERR_INTERNAL", "the cluster thread hit an internal error");
                        chunk
                            .iter()
                            .map(|(ticket, ..)| Completion { ticket: *ticket, result: Err(failed.clone()) })
                            .collect()
                    });
                self.sink.deliver(completions);
            }
            if stop {
                return;
            }
        }
    }

    /// Runs the writes as one transaction, then the counts and listings as one query
    /// (the write lane), or the point reads as one query (the read lane). Reordering
    /// the writes before the reads of one round is safe: none of them has been
    /// answered yet, so each may take effect at any point until it is; a read issued
    /// after a write was answered comes in a later round.
    fn run_jobs(&mut self, jobs: &[(u32, u32, Op)]) -> Vec<Completion> {
        let (writes, reads): (Vec<_>, Vec<_>) = jobs.iter().cloned().partition(|(_, _, op)| op.writes());
        let mut completions = Vec::with_capacity(jobs.len());
        for (segment, writing) in [(writes, true), (reads, false)] {
            if segment.is_empty() {
                continue;
            }
            let outcomes = if writing { self.run_writes(&segment) } else { self.run_reads(&segment) };
            completions.extend(
                segment.iter().zip(outcomes).map(|((ticket, ..), result)| Completion { ticket: *ticket, result }),
            );
        }
        completions
    }

    /// Writes as one transaction; if it rolls back, each job alone.
    fn run_writes(&mut self, jobs: &[(u32, u32, Op)]) -> Outcomes {
        if let Some(down) = self.down() {
            return jobs.iter().map(|_| Err(down.clone())).collect();
        }
        let now = ops::now_ms();
        // Each table this segment uses, set up if it is not yet (once per table).
        let mut tables: HashMap<u32, StoreResult<Arc<Table>>> = HashMap::new();
        let mut statements: Vec<Option<Statement>> = Vec::with_capacity(jobs.len());
        let mut outcomes: Vec<Option<StoreResult<Outcome>>> = Vec::with_capacity(jobs.len());
        for (_, table, op) in jobs {
            let prepared = tables.entry(*table).or_insert_with(|| self.prepared(*table)).clone();
            match prepared.and_then(|table| statements::for_job(&table, op, now)) {
                Ok(statement) => {
                    statements.push(Some(statement));
                    outcomes.push(None);
                }
                Err(error) => {
                    statements.push(None);
                    outcomes.push(Some(Err(error)));
                }
            }
        }
        let sendable: Vec<Statement> = statements.iter().flatten().cloned().collect();
        if !sendable.is_empty() {
            let replies = self.client.execute(&sendable, true);
            let replies = match replies {
                Ok(replies) => {
                    self.answered();
                    replies
                }
                Err(error) => {
                    self.failed(&error);
                    return outcomes.into_iter().map(|o| o.unwrap_or_else(|| Err(error.clone()))).collect();
                }
            };
            let failed = replies.len() < sendable.len() || replies.iter().any(|r| matches!(r, Reply::Failed(_)));
            let mut replies = replies.into_iter();
            let pending =
                jobs.iter().zip(statements).zip(outcomes.iter_mut()).filter(|((_, s), o)| s.is_some() && o.is_none());
            if failed && sendable.len() > 1 {
                // The transaction rolled back: each job alone, so each outcome is its own.
                for (((_, _, op), statement), outcome) in pending {
                    *outcome = Some(match (self.down(), statement) {
                        (Some(down), _) => Err(down),
                        (None, Some(statement)) => self.alone(op, statement),
                        (None, None) => Err(StoreError::new("ERR_INTERNAL", "a job without a statement")),
                    });
                }
            } else {
                for (((_, _, op), _), outcome) in pending {
                    let reply =
                        replies.next().unwrap_or_else(|| Reply::Failed("the transaction was rolled back".into()));
                    *outcome = Some(statements::outcome(op, reply));
                }
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(StoreError::new("ERR_INTERNAL", "a job got no outcome"))))
            .collect()
    }

    /// Reads as one query, the gets of each table folded into one statement
    /// (`id IN (...)`): rqlite's cost is per statement, about twice a single lookup's
    /// for 64 of them measured on one node.
    fn run_reads(&mut self, jobs: &[(u32, u32, Op)]) -> Outcomes {
        /// Where a job's answer will be: its own statement, a table's gets statement, or
        /// nowhere (it failed before sending).
        enum Slot {
            Own(usize),
            Gets(usize),
            Failed(StoreError),
        }
        if let Some(down) = self.down() {
            return jobs.iter().map(|_| Err(down.clone())).collect();
        }
        let now = ops::now_ms();
        let mut tables: HashMap<u32, StoreResult<Arc<Table>>> = HashMap::new();
        let mut statements: Vec<Statement> = Vec::new();
        let mut gets: HashMap<u32, (usize, Arc<Table>, Vec<String>)> = HashMap::new();
        let mut slots = Vec::with_capacity(jobs.len());
        for (_, table_id, op) in jobs {
            let prepared = tables.entry(*table_id).or_insert_with(|| self.prepared(*table_id)).clone();
            slots.push(match (prepared, op) {
                (Err(error), _) => Slot::Failed(error),
                (Ok(table), Op::Get { sid }) => {
                    let (index, _, ids) = gets.entry(*table_id).or_insert_with(|| {
                        statements.push(Vec::new());
                        (statements.len() - 1, table, Vec::new())
                    });
                    ids.push(sid.clone());
                    Slot::Gets(*index)
                }
                (Ok(table), op) => match statements::for_job(&table, op, now) {
                    Ok(statement) => {
                        statements.push(statement);
                        Slot::Own(statements.len() - 1)
                    }
                    Err(error) => Slot::Failed(error),
                },
            });
        }
        for (index, table, ids) in gets.into_values() {
            statements[index] = statements::for_gets(&table, &ids, now);
        }
        let replies = if statements.is_empty() { Ok(Vec::new()) } else { self.client.query(&statements) };
        let mut replies = match replies {
            Ok(replies) => replies.into_iter().map(Some).collect::<Vec<_>>(),
            Err(error) => {
                self.failed(&error);
                return slots
                    .into_iter()
                    .map(|slot| Err(if let Slot::Failed(own) = slot { own } else { error.clone() }))
                    .collect();
            }
        };
        let mut found: HashMap<usize, StoreResult<statements::Sessions>> = HashMap::new();
        let missing = || Reply::Failed("no reply".into());
        jobs.iter()
            .zip(slots)
            .map(|((_, _, op), slot)| match slot {
                Slot::Failed(error) => Err(error),
                Slot::Own(index) => {
                    statements::outcome(op, replies.get_mut(index).and_then(Option::take).unwrap_or_else(missing))
                }
                Slot::Gets(index) => {
                    let sessions = found.entry(index).or_insert_with(|| {
                        statements::sessions(replies.get_mut(index).and_then(Option::take).unwrap_or_else(missing))
                    });
                    let Op::Get { sid } = op else { return Err(StoreError::new("ERR_INTERNAL", "not a get")) };
                    match sessions {
                        Ok(sessions) => Ok(sessions
                            .get(sid)
                            .map_or(Outcome::Missing, |(data, expires)| Outcome::Entry(data.clone(), *expires))),
                        Err(error) => Err(error.clone()),
                    }
                }
            })
            .collect()
    }

    /// One write in a transaction of its own.
    fn alone(&mut self, op: &Op, statement: Statement) -> StoreResult<Outcome> {
        match self.client.execute(&[statement], true) {
            Ok(mut replies) => statements::outcome(op, replies.pop().unwrap_or(Reply::Failed("no reply".into()))),
            Err(error) => {
                self.failed(&error);
                Err(error)
            }
        }
    }

    /// The table, set up on the cluster if that has not happened yet.
    fn prepared(&mut self, id: u32) -> StoreResult<Arc<Table>> {
        let entry = crate::lock(&self.tables)
            .get(id as usize)
            .cloned()
            .ok_or_else(|| StoreError::new("ERR_INTERNAL", "unknown table handle"))?;
        if !entry.ready.load(Ordering::Relaxed) {
            upkeep::set_up_table(&self.client, &entry.table, entry.create).inspect_err(|error| self.failed(error))?;
            entry.ready.store(true, Ordering::Relaxed);
        }
        Ok(Arc::clone(&entry.table))
    }

    /// Why the cluster is taken to be unreachable, if it is.
    fn down(&self) -> Option<StoreError> {
        crate::lock(&self.reachability).down.clone()
    }

    /// A call failed: if because no node answered, the cluster is down from now on
    /// (reported once) until a probe finds a leader.
    fn failed(&self, error: &StoreError) {
        if error.code != "ERR_CLUSTER_UNAVAILABLE" {
            return;
        }
        let mut reachability = crate::lock(&self.reachability);
        if reachability.down.is_none() {
            reachability.down = Some(error.clone());
            reachability.last_probe = std::time::Instant::now();
            self.sink.deliver(vec![Completion { ticket: CONNECTION_TICKET, result: Err(error.clone()) }]);
        }
    }

    /// A request was answered. Only the write lane's answers, or a probe, say the
    /// cluster is back: with `consistency: 'none'` a follower answers reads while no
    /// leader can take writes.
    fn answered(&self) {
        if self.writes {
            self.back_up();
        }
    }

    fn back_up(&self) {
        let mut reachability = crate::lock(&self.reachability);
        if reachability.down.take().is_some() {
            self.sink.deliver(vec![Completion { ticket: CONNECTION_TICKET, result: Ok(Outcome::Count(1)) }]);
        }
    }

    /// While down, asks whether a node has a leader again, at most every `PROBE_EVERY`.
    fn probe_if_down(&self) {
        {
            let mut reachability = crate::lock(&self.reachability);
            if reachability.down.is_none() || reachability.last_probe.elapsed() < PROBE_EVERY {
                return;
            }
            reachability.last_probe = std::time::Instant::now();
        }
        if self.client.ready() {
            self.back_up();
        }
    }
}

/// The next task, or None (Some(None)) after `PROBE_EVERY` without one, so that the
/// caller can probe; outer None when the store has gone.
fn recv_or_probe(tasks: &Receiver<Task>) -> Option<Option<Task>> {
    match tasks.recv_timeout(PROBE_EVERY) {
        Ok(task) => Some(Some(task)),
        Err(RecvTimeoutError::Timeout) => Some(None),
        Err(RecvTimeoutError::Disconnected) => None,
    }
}
