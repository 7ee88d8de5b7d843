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
        let up = Arc::new(std::sync::Mutex::new(true));
        let lane = |name: &str| -> StoreResult<Lane> {
            let (tasks, receiver) = mpsc::channel();
            let lane = ClusterThread {
                client: Arc::clone(&client),
                sink: Arc::clone(&sink),
                tables: Arc::clone(&shared_tables),
                up: Arc::clone(&up),
            };
            let thread = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || lane.run(receiver))
                .map_err(|e| StoreError::new("ERR_THREAD", format!("cannot start the cluster thread: {e}")))?;
            Ok(Lane { tasks, thread })
        };
        let lanes = [lane("rqlite-session-writes")?, lane("rqlite-session-reads")?];
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
    fn drop(&mut self) {
        if let Some((threads, mut upkeep)) = self.shut_down() {
            upkeep.shutdown();
            for thread in threads {
                let _ = thread.join();
            }
        }
    }
}

/// A lane's thread: talks to the cluster for the JS side's jobs of one kind.
struct ClusterThread {
    client: Arc<Client>,
    sink: Arc<dyn CompletionSink>,
    tables: Arc<std::sync::Mutex<Vec<Arc<ClusterTable>>>>,
    /// Whether the cluster answered last time, for both lanes (reported on change only).
    up: Arc<std::sync::Mutex<bool>>,
}

impl ClusterThread {
    fn run(mut self, tasks: Receiver<Task>) {
        loop {
            let first = if *crate::lock(&self.up) {
                match tasks.recv() {
                    Ok(task) => task,
                    Err(_) => return,
                }
            } else {
                match tasks.recv_timeout(PROBE_EVERY) {
                    Ok(task) => task,
                    Err(RecvTimeoutError::Timeout) => {
                        if self.client.ready() {
                            self.reachable(Ok(()));
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            };
            // Everything queued meanwhile goes in this round: one request per kind.
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

    /// Runs the writes as one transaction, then the reads as one query: two requests
    /// for everything queued together. Reordering them is safe: none of these jobs has
    /// been answered yet, so each may take effect at any point until it is (a read queued
    /// before a write may see it), and the writes keep their order among themselves, as
    /// do the reads. A read queued after a write sees it: the write is acknowledged first.
    fn run_jobs(&mut self, jobs: &[(u32, u32, Op)]) -> Vec<Completion> {
        let (writes, reads): (Vec<_>, Vec<_>) = jobs.iter().cloned().partition(|(_, _, op)| op.writes());
        let mut completions = Vec::with_capacity(jobs.len());
        for (segment, writing) in [(writes, true), (reads, false)] {
            if segment.is_empty() {
                continue;
            }
            let outcomes = self.run_segment(&segment, writing);
            completions.extend(
                segment.iter().zip(outcomes).map(|((ticket, ..), result)| Completion { ticket: *ticket, result }),
            );
        }
        completions
    }

    fn run_segment(&mut self, jobs: &[(u32, u32, Op)], writes: bool) -> Outcomes {
        let now = ops::now_ms();
        // Tables first set up (or their setup's error, for the jobs that use them).
        let mut statements: Vec<Option<Statement>> = Vec::with_capacity(jobs.len());
        let mut outcomes: Vec<Option<StoreResult<Outcome>>> = Vec::with_capacity(jobs.len());
        for (_, table, op) in jobs {
            let prepared = self.prepared(*table).and_then(|table| statements::for_job(&table, op, now));
            match prepared {
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
        let replies = if writes { self.client.execute(&sendable, true) } else { self.client.query(&sendable) };
        let replies = match replies {
            Ok(replies) => {
                self.reachable(Ok(()));
                replies
            }
            Err(error) => {
                self.reachable(Err(&error));
                return outcomes.into_iter().map(|o| o.unwrap_or_else(|| Err(error.clone()))).collect();
            }
        };
        let failed = replies.len() < sendable.len() || replies.iter().any(|r| matches!(r, Reply::Failed(_)));
        let mut replies = replies.into_iter();
        let pending =
            jobs.iter().zip(statements).zip(outcomes.iter_mut()).filter(|((_, s), o)| s.is_some() && o.is_none());
        if writes && failed && jobs.len() > 1 {
            // The transaction rolled back: each job alone, so each outcome is its own.
            for (((_, _, op), statement), outcome) in pending {
                let alone = statement.map(|s| self.client.execute(&[s], true)).unwrap_or_else(|| Ok(Vec::new()));
                *outcome =
                    Some(alone.and_then(|mut r| {
                        statements::outcome(op, r.pop().unwrap_or(Reply::Failed("no reply".into())))
                    }));
            }
        } else {
            for (((_, _, op), _), outcome) in pending {
                let reply = replies.next().unwrap_or_else(|| Reply::Failed("the transaction was rolled back".into()));
                *outcome = Some(statements::outcome(op, reply));
            }
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err(StoreError::new("ERR_INTERNAL", "a job got no outcome"))))
            .collect()
    }

    /// The table, set up on the cluster if that has not happened yet.
    fn prepared(&mut self, id: u32) -> StoreResult<Arc<Table>> {
        let entry = crate::lock(&self.tables)
            .get(id as usize)
            .cloned()
            .ok_or_else(|| StoreError::new("ERR_INTERNAL", "unknown table handle"))?;
        if !entry.ready.load(Ordering::Relaxed) {
            let result = upkeep::set_up_table(&self.client, &entry.table, entry.create);
            if let Err(error) = &result {
                if error.code == "ERR_CLUSTER_UNAVAILABLE" {
                    self.reachable(Err(error));
                }
            }
            result?;
            entry.ready.store(true, Ordering::Relaxed);
        }
        Ok(Arc::clone(&entry.table))
    }

    /// Reports a change in whether the cluster answers.
    fn reachable(&mut self, result: Result<(), &StoreError>) {
        let up = match result {
            Ok(()) => true,
            Err(error) if error.code == "ERR_CLUSTER_UNAVAILABLE" => false,
            Err(_) => return,
        };
        let mut known = crate::lock(&self.up);
        if up == *known {
            return;
        }
        *known = up;
        let result = match result {
            Ok(()) => Ok(Outcome::Count(1)),
            Err(error) => Err(error.clone()),
        };
        self.sink.deliver(vec![Completion { ticket: CONNECTION_TICKET, result }]);
    }
}
