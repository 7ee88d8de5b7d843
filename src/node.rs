//! The Node-API layer: argument decoding, one error mapping, and the thread-safe
//! function that carries the writer thread's results back to JS. No store logic here.

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use std::sync::{Arc, Mutex};

use crate::cluster::{ClientOptions, Cluster, Level};
use crate::database::{Database, TableOptions};
use crate::engine::Engine;
use crate::error::StoreError;
use crate::import::{ImportSource, SourceKind};
use crate::open::{Location, OpenOptions, Synchronous};
use crate::ops::{self, Outcome};
use crate::worker::{Completion, CompletionSink};

/// A JS error code: SQLite's code name or one of ours, becomes `err.code` in JS.
pub struct ErrorCode(String);

impl AsRef<str> for ErrorCode {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<Status> for ErrorCode {
    fn from(status: Status) -> Self {
        ErrorCode(status.as_ref().to_string())
    }
}

fn to_js(error: StoreError) -> Error<ErrorCode> {
    Error::new(ErrorCode(error.code), error.message)
}

/// A failed operation, as the completion callback sees it (JS turns it into an Error).
#[napi(object)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

/// An outcome as JS sees it: a count, strings, a failure, a session's `[data, expires]`,
/// or null (no such session).
type JsOutcome = Either5<i64, Vec<String>, Failure, (String, i64), Null>;
type CompletionArgs = FnArgs<(Vec<u32>, Vec<JsOutcome>)>;
type CompletionFn = ThreadsafeFunction<Vec<Completion>, Unknown<'static>, CompletionArgs, Status, false, true>;

fn outcome_to_js(result: crate::error::StoreResult<Outcome>) -> JsOutcome {
    match result {
        Ok(Outcome::Count(n)) => Either5::A(n),
        Ok(Outcome::Strings(strings)) => Either5::B(strings),
        Err(e) => Either5::C(Failure { code: e.code, message: e.message }),
        Ok(Outcome::Entry(data, expires)) => Either5::D((data, expires)),
        Ok(Outcome::Missing) => Either5::E(Null),
    }
}

/// Shared by the writer thread (which calls it) and the JS thread (which refs and
/// unrefs it); napi-rs 3 offers no clone of a thread-safe function, hence the Mutex.
/// Emptied on close: the function refers back to the JS object that owns this one,
/// a cycle the garbage collector cannot see through, so it must be broken by hand.
type SharedCompletionFn = Arc<Mutex<Option<CompletionFn>>>;

struct JsSink(SharedCompletionFn);

impl CompletionSink for JsSink {
    fn deliver(&self, completions: Vec<Completion>) {
        let completions_fn = crate::lock(&self.0);
        if let Some(function) = completions_fn.as_ref() {
            // Non-blocking: the queue is unbounded, so this never waits on the JS thread.
            function.call(completions, ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

/// A value for an extra column: text, a number, or null.
type ExtraValue = Option<Either<String, f64>>;

fn extra_value(value: ExtraValue) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match value {
        None => Value::Null,
        Some(Either::A(text)) => Value::Text(text),
        // Whole numbers are stored as integers, as SQLite would from JS code.
        Some(Either::B(n)) if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 => Value::Integer(n as i64),
        Some(Either::B(n)) => Value::Real(n),
    }
}

/// What a job does; JS uses these names (`Op.Set`, ...) and never a number of its own.
#[napi]
pub enum Op {
    Set,
    Touch,
    Destroy,
    Clear,
    Length,
    Ids,
    All,
    IdsByUser,
    DestroyByUser,
    CountExpired,
    Get,
    LastWrite,
    Export,
}

/// One job as JS describes it: what it does, to which table handle, with what.
#[napi(object, js_name = "Job")]
pub struct JsJob {
    pub table: u32,
    pub op: Op,
    /// The session id (set, touch, destroy), or the one to keep (destroyByUser).
    pub sid: Option<String>,
    /// The session's JSON (set).
    pub data: Option<String>,
    /// Epoch ms (set, touch).
    pub expires: Option<i64>,
    /// The user key (set, idsByUser, destroyByUser).
    pub key: Option<String>,
    /// Values of the extra columns, in their order (set).
    pub extras: Option<Vec<ExtraValue>>,
}

fn missing(what: &str) -> Error<ErrorCode> {
    to_js(StoreError::new("ERR_INTERNAL", format!("the job needs {what}")))
}

impl JsJob {
    fn into_op(self) -> Result<(u32, ops::Op), ErrorCode> {
        let JsJob { table, op, sid, data, expires, key, extras } = self;
        let sid_or = |sid: Option<String>| sid.ok_or_else(|| missing("a sid"));
        let op = match op {
            Op::Set => ops::Op::Set {
                sid: sid_or(sid)?,
                data: data.ok_or_else(|| missing("data"))?,
                expires: expires.ok_or_else(|| missing("an expiry"))?,
                user_key: key,
                extras: extras.unwrap_or_default().into_iter().map(extra_value).collect(),
            },
            Op::Touch => ops::Op::Touch { sid: sid_or(sid)?, expires: expires.ok_or_else(|| missing("an expiry"))? },
            Op::Destroy => ops::Op::Destroy { sid: sid_or(sid)? },
            Op::Clear => ops::Op::Clear,
            Op::Length => ops::Op::Length,
            Op::Ids => ops::Op::Ids,
            Op::All => ops::Op::All,
            Op::IdsByUser => ops::Op::IdsByUser { key: key.ok_or_else(|| missing("a user key"))? },
            Op::DestroyByUser => ops::Op::DestroyByUser { key: key.ok_or_else(|| missing("a user key"))?, except: sid },
            Op::CountExpired => ops::Op::CountExpired,
            Op::Get => ops::Op::Get { sid: sid_or(sid)? },
            Op::LastWrite => ops::Op::LastWrite { sid: sid_or(sid)? },
            Op::Export => ops::Op::Export,
        };
        Ok((table, op))
    }
}

#[napi(object)]
pub struct NativeImportSource {
    /// "connect-session-knex" or "connect-session-sequelize".
    pub store: String,
    pub table: Option<String>,
    pub sid_column: Option<String>,
}

#[napi(object)]
pub struct NativeExtraColumn {
    pub name: String,
    pub sql_type: String,
}

#[napi(object)]
pub struct Counters {
    pub prune_runs: f64,
    pub rows_pruned: f64,
    pub prunes_skipped: f64,
    pub prune_errors: f64,
    pub checkpoints: f64,
    pub busy_retries: f64,
    pub cached_reads: f64,
    pub file_bytes: f64,
    pub wal_bytes: f64,
}

#[napi(object)]
pub struct NativeOpenOptions {
    /// MiB of sessions the read cache keeps (0: none).
    pub cache_size: u32,
    pub readonly: bool,
    pub file_must_exist: bool,
    pub timeout: u32,
    pub wal: bool,
    /// "NORMAL" or "FULL"; default NORMAL with WAL, FULL without.
    pub synchronous: Option<String>,
}

/// Where an rqlite cluster is and how to talk to it.
#[napi(object)]
pub struct NativeClusterOptions {
    /// `http(s)://host:port` of each node.
    pub nodes: Vec<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Read consistency: "none", "weak", "linearizable" or "strong".
    pub level: String,
    /// Milliseconds one call may take, retries included.
    pub timeout: u32,
    /// PEM certificates to trust for https nodes.
    pub ca: Option<String>,
}

/// A point read's answer now, null for no such session, or undefined: queue it.
type ReadNow<T> = Either3<T, Null, Undefined>;

fn read_now<T>(
    outcome: Option<crate::error::StoreResult<Outcome>>,
    hit: impl FnOnce(Outcome) -> Option<T>,
) -> Result<ReadNow<T>, ErrorCode> {
    match outcome {
        None => Ok(Either3::C(())),
        Some(Err(e)) => Err(to_js(e)),
        Some(Ok(Outcome::Missing)) => Ok(Either3::B(Null)),
        Some(Ok(found)) => hit(found)
            .map(Either3::A)
            .ok_or_else(|| to_js(StoreError::new("ERR_INTERNAL", "a point read gave an outcome of another kind"))),
    }
}

#[napi]
pub struct NativeDatabase {
    db: Box<dyn Engine>,
    completions: SharedCompletionFn,
}

/// The thread-safe function completions reach JS through, and the sink engines use.
fn completion_function(
    on_complete: Function<'_, CompletionArgs, Unknown<'static>>,
) -> Result<(SharedCompletionFn, Arc<dyn CompletionSink>), ErrorCode> {
    let completions_fn: CompletionFn = on_complete
        .build_threadsafe_function::<Vec<Completion>>()
        .callee_handled::<false>()
        .weak::<true>()
        .build_callback(|ctx| {
            let (tickets, outcomes): (Vec<u32>, Vec<JsOutcome>) =
                ctx.value.into_iter().map(|c| (c.ticket, outcome_to_js(c.result))).unzip();
            Ok(FnArgs::from((tickets, outcomes)))
        })
        .map_err(|e| to_js(StoreError::new("ERR_INTERNAL", e.reason.clone())))?;
    let completions = Arc::new(Mutex::new(Some(completions_fn)));
    let sink: Arc<dyn CompletionSink> = Arc::new(JsSink(Arc::clone(&completions)));
    Ok((completions, sink))
}

#[napi]
impl NativeDatabase {
    /// `location`: a file path, a serialized image (Buffer), an rqlite cluster, or null
    /// for a private in-memory database. `onComplete(tickets, outcomes)` receives
    /// queued results.
    #[napi(constructor, catch_unwind)]
    pub fn new(
        location: Option<Either3<String, Buffer, NativeClusterOptions>>,
        options: NativeOpenOptions,
        #[napi(
            ts_arg_type = "(tickets: number[], outcomes: Array<number | string[] | { code: string; message: string }>) => void"
        )]
        on_complete: Function<'_, CompletionArgs, Unknown<'static>>,
    ) -> Result<Self, ErrorCode> {
        let location = match location {
            None => Location::Memory(None),
            Some(Either3::A(path)) => Location::File(path.into()),
            Some(Either3::B(image)) => Location::Memory(Some(image.to_vec())),
            Some(Either3::C(cluster)) => {
                let level = Level::parse(&cluster.level).ok_or_else(|| {
                    to_js(StoreError::new(
                        "ERR_INVALID_ARG_VALUE",
                        format!("unknown consistency level {}", cluster.level),
                    ))
                })?;
                let options = ClientOptions {
                    nodes: cluster.nodes,
                    username: cluster.username,
                    password: cluster.password,
                    level,
                    timeout: std::time::Duration::from_millis(u64::from(cluster.timeout.max(1))),
                    ca_pem: cluster.ca,
                };
                let (completions, sink) = completion_function(on_complete)?;
                let db = Cluster::open(options, sink).map_err(to_js)?;
                return Ok(NativeDatabase { db: Box::new(db), completions });
            }
        };
        let synchronous = match options.synchronous.as_deref() {
            None => None,
            Some("NORMAL") => Some(Synchronous::Normal),
            Some("FULL") => Some(Synchronous::Full),
            Some(other) => {
                return Err(to_js(StoreError::new(
                    "ERR_INVALID_ARG_VALUE",
                    format!("unknown synchronous mode {other}"),
                )))
            }
        };
        let open_options = OpenOptions {
            readonly: options.readonly,
            file_must_exist: options.file_must_exist,
            busy_timeout_ms: options.timeout,
            wal: options.wal,
            synchronous,
            session_cache_bytes: options.cache_size as usize * 1024 * 1024,
        };
        let (completions, sink) = completion_function(on_complete)?;
        let db = Database::open(location, open_options, sink).map_err(to_js)?;
        Ok(NativeDatabase { db: Box::new(db), completions })
    }

    #[napi(catch_unwind)]
    /// `prune_interval_ms`: null for no scheduled prunes.
    #[allow(clippy::too_many_arguments)]
    pub fn open_table(
        &mut self,
        name: String,
        create_table: bool,
        default_ttl_ms: i64,
        max_lifetime_ms: Option<i64>,
        prune_interval_ms: Option<u32>,
        extra_columns: Option<Vec<NativeExtraColumn>>,
        import_from: Option<NativeImportSource>,
    ) -> Result<u32, ErrorCode> {
        let import = match import_from {
            None => None,
            Some(source) => {
                let kind = match source.store.as_str() {
                    "connect-session-knex" => SourceKind::Knex,
                    "connect-session-sequelize" => SourceKind::Sequelize,
                    other => {
                        return Err(to_js(StoreError::new(
                            "ERR_INVALID_ARG_VALUE",
                            format!("cannot import from {other}"),
                        )))
                    }
                };
                Some(ImportSource::new(kind, source.table, source.sid_column))
            }
        };
        let prune_interval = prune_interval_ms.map(|ms| std::time::Duration::from_millis(u64::from(ms)));
        let extra_columns = extra_columns
            .unwrap_or_default()
            .into_iter()
            .map(|c| crate::sql::ExtraColumn { name: c.name, sql_type: c.sql_type })
            .collect();
        self.db
            .open_table(&TableOptions {
                name,
                create_table,
                default_ttl_ms,
                max_lifetime_ms,
                prune_interval,
                extra_columns,
                import,
            })
            .map_err(to_js)
    }

    /// Creates the table of a handle again if it is missing (`sync()`).
    #[napi(catch_unwind)]
    pub fn sync_table(&self, table: u32) -> Result<(), ErrorCode> {
        self.db.sync_table(table).map_err(to_js)
    }

    /// Prunes a table now on the upkeep thread; the deleted count arrives at onComplete.
    #[napi(catch_unwind)]
    pub fn prune(&self, ticket: u32, table: u32) -> Result<(), ErrorCode> {
        self.db.prune(ticket, table).map_err(to_js)
    }

    #[napi(catch_unwind)]
    pub fn stop_pruning(&self, table: u32) -> Result<(), ErrorCode> {
        self.db.stop_pruning(table).map_err(to_js)
    }

    /// The live session's JSON and its stored expiry (epoch ms), null when there is
    /// none, or undefined when only a queued `Op.Get` can answer.
    #[napi(catch_unwind, ts_return_type = "[string, number] | null | undefined")]
    pub fn get(&self, table: u32, sid: String) -> Result<ReadNow<(String, i64)>, ErrorCode> {
        read_now(self.db.read_now(table, &ops::Op::Get { sid }), |found| match found {
            Outcome::Entry(data, expires) => Some((data, expires)),
            _ => None,
        })
    }

    /// Whether a touch to `expires` can be skipped (see Engine::touch_is_current).
    #[napi(catch_unwind)]
    pub fn touch_is_current(&self, table: u32, sid: String, expires: i64) -> bool {
        self.db.touch_is_current(table, &sid, expires)
    }

    /// When the live session was last written (epoch ms), null when missing or
    /// expired, or undefined when only a queued `Op.LastWrite` can answer.
    #[napi(catch_unwind, ts_return_type = "number | null | undefined")]
    pub fn last_write(&self, table: u32, sid: String) -> Result<ReadNow<i64>, ErrorCode> {
        read_now(self.db.read_now(table, &ops::Op::LastWrite { sid }), |found| match found {
            Outcome::Count(touched) => Some(touched),
            _ => None,
        })
    }

    /// Runs a batch now on the JS thread, in one transaction: the outcomes in order, or
    /// null when it cannot run without waiting (nothing ran: queue it).
    #[napi(catch_unwind, ts_return_type = "Array<number | string[] | { code: string; message: string }> | null")]
    pub fn run(&self, jobs: Vec<JsJob>) -> Result<Option<Vec<JsOutcome>>, ErrorCode> {
        let jobs = jobs.into_iter().map(JsJob::into_op).collect::<Result<Vec<_>, _>>()?;
        let outcomes = self.db.run(&jobs).map_err(to_js)?;
        Ok(outcomes.map(|outcomes| outcomes.into_iter().map(outcome_to_js).collect()))
    }

    /// Queues jobs for the writer thread, behind what is queued; each outcome arrives at
    /// onComplete under its ticket.
    #[napi(catch_unwind)]
    pub fn queue(&self, tickets: Vec<u32>, jobs: Vec<JsJob>) -> Result<(), ErrorCode> {
        if tickets.len() != jobs.len() {
            return Err(to_js(StoreError::new("ERR_INTERNAL", "one ticket per job")));
        }
        let jobs = tickets
            .into_iter()
            .zip(jobs)
            .map(|(ticket, job)| job.into_op().map(|(table, op)| (ticket, table, op)))
            .collect::<Result<Vec<_>, _>>()?;
        self.db.queue(jobs).map_err(to_js)
    }

    /// Keeps Node alive while queued work is outstanding (true), or lets it exit (false).
    #[napi(catch_unwind)]
    #[allow(deprecated)]
    pub fn keep_alive(&mut self, env: Env, active: bool) -> Result<(), ErrorCode> {
        let mut completions = crate::lock(&self.completions);
        let Some(completions) = completions.as_mut() else { return Ok(()) };
        let result = if active { completions.refer(&env) } else { completions.unref(&env) };
        result.map_err(|e| to_js(StoreError::new("ERR_INTERNAL", e.reason.clone())))
    }

    /// Copies the live database to a file; the page count arrives at onComplete.
    #[napi(catch_unwind)]
    pub fn backup(&self, ticket: u32, path: String) -> Result<(), ErrorCode> {
        self.db.backup(ticket, path.into()).map_err(to_js)
    }

    /// Counters and sizes that cost nothing to read (no SQL).
    #[napi(catch_unwind)]
    pub fn counters(&self) -> Counters {
        let c = self.db.counters();
        Counters {
            prune_runs: c.prune_runs as f64,
            rows_pruned: c.rows_pruned as f64,
            prunes_skipped: c.prunes_skipped as f64,
            prune_errors: c.prune_errors as f64,
            checkpoints: c.checkpoints as f64,
            busy_retries: c.busy_retries as f64,
            cached_reads: c.cached_reads as f64,
            file_bytes: c.file_bytes as f64,
            wal_bytes: c.wal_bytes as f64,
        }
    }

    #[napi(catch_unwind)]
    pub fn serialize(&self) -> Result<Buffer, ErrorCode> {
        self.db.serialize().map(Buffer::from).map_err(to_js)
    }

    #[napi(getter, catch_unwind)]
    pub fn memory(&self) -> bool {
        self.db.is_memory()
    }

    /// Closes on a thread of its own: runs what is queued, checkpoints, closes the file.
    /// The outcome arrives at onComplete under `ticket`; then the completion function is
    /// released (every delivery made before it still reaches JS).
    #[napi(catch_unwind)]
    pub fn close(&mut self, ticket: u32) -> Result<(), ErrorCode> {
        let completions = Arc::clone(&self.completions);
        let sink = JsSink(Arc::clone(&self.completions));
        self.db
            .close_in_background(Box::new(move |result| {
                sink.deliver(vec![Completion { ticket, result: result.map(|()| Outcome::Count(0)) }]);
                crate::lock(&completions).take();
            }))
            .map_err(to_js)
    }
}
