//! The Node-API layer: argument decoding, one error mapping, and the thread-safe
//! function that carries the writer thread's results back to JS. No store logic here.

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use std::sync::{Arc, Mutex};

use crate::database::{Database, TableOptions};
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

type JsOutcome = Either3<i64, Vec<String>, Failure>;
type CompletionArgs = FnArgs<(Vec<u32>, Vec<JsOutcome>)>;
type CompletionFn = ThreadsafeFunction<Vec<Completion>, Unknown<'static>, CompletionArgs, Status, false, true>;

fn outcome_to_js(result: crate::error::StoreResult<Outcome>) -> JsOutcome {
    match result {
        Ok(Outcome::Count(n)) => Either3::A(n),
        Ok(Outcome::Strings(strings)) => Either3::B(strings),
        Err(e) => Either3::C(Failure { code: e.code, message: e.message }),
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

#[napi]
pub struct NativeDatabase {
    db: Database,
    completions: SharedCompletionFn,
}

#[napi]
impl NativeDatabase {
    /// `location`: a file path, a serialized image (Buffer), or null for a private
    /// in-memory database. `onComplete(tickets, outcomes)` receives queued results.
    #[napi(constructor, catch_unwind)]
    pub fn new(
        location: Option<Either<String, Buffer>>,
        options: NativeOpenOptions,
        #[napi(
            ts_arg_type = "(tickets: number[], outcomes: Array<number | string[] | { code: string; message: string }>) => void"
        )]
        on_complete: Function<'_, CompletionArgs, Unknown<'static>>,
    ) -> Result<Self, ErrorCode> {
        let location = match location {
            None => Location::Memory(None),
            Some(Either::A(path)) => Location::File(path.into()),
            Some(Either::B(image)) => Location::Memory(Some(image.to_vec())),
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
        let sink = Arc::new(JsSink(Arc::clone(&completions)));
        let db = Database::open(location, open_options, sink).map_err(to_js)?;
        Ok(NativeDatabase { db, completions })
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

    #[napi(catch_unwind)]
    pub fn has_table(&self, name: String) -> Result<bool, ErrorCode> {
        self.db.has_table(&name).map_err(to_js)
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

    /// The live session's JSON and its stored expiry (epoch ms), or null.
    #[napi(catch_unwind, ts_return_type = "[string, number] | null")]
    pub fn get(&self, table: u32, sid: String) -> Result<Option<(String, i64)>, ErrorCode> {
        self.db.get_entry(table, &sid).map_err(to_js)
    }

    /// Whether a touch to `expires` can be skipped (see Database::touch_is_current).
    #[napi(catch_unwind)]
    pub fn touch_is_current(&self, table: u32, sid: String, expires: i64) -> bool {
        self.db.touch_is_current(table, &sid, expires).unwrap_or(false)
    }

    /// When the live session was last written (epoch ms), or null when missing or expired.
    #[napi(catch_unwind)]
    pub fn last_write(&self, table: u32, sid: String) -> Result<Option<i64>, ErrorCode> {
        self.db.last_write(table, &sid).map_err(to_js)
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
        let stats = self.db.prune_stats();
        let (file_bytes, wal_bytes) = self.db.file_sizes();
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed) as f64;
        Counters {
            prune_runs: load(&stats.runs),
            rows_pruned: load(&stats.rows),
            prunes_skipped: load(&stats.skipped),
            prune_errors: load(&stats.errors),
            checkpoints: load(&stats.checkpoints),
            busy_retries: self.db.busy_retries() as f64,
            cached_reads: self.db.cache_hits() as f64,
            file_bytes: file_bytes as f64,
            wal_bytes: wal_bytes as f64,
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
            .close_in_background(move |result| {
                sink.deliver(vec![Completion { ticket, result: result.map(|()| Outcome::Count(0)) }]);
                crate::lock(&completions).take();
            })
            .map_err(to_js)
    }
}
