//! The cluster's upkeep thread (prunes, scheduled and requested, and backups) and the
//! setup of a table on the cluster. A scheduled prune takes the table's lease for its
//! whole interval, so that however many app servers share the cluster, one of them
//! prunes a table once per interval; the cutoff is a parameter of the statement.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::{Client, Reply};
use super::statements::sql_error;
use crate::error::{StoreError, StoreResult};
use crate::ops::{self, Outcome, Table};
use crate::schema::{SCHEMA_VERSION, VERSION_TABLE};
use crate::sql::quote_identifier;
use crate::upkeep::{jittered, PruneStats, LEASE_TABLE};
use crate::worker::{Completion, CompletionSink, BACKGROUND_TICKET};

enum Request {
    Schedule(Arc<Table>, Duration),
    Unschedule(Arc<Table>),
    Prune(u32, Arc<Table>),
    Backup(u32, PathBuf),
    Stop,
}

pub struct Upkeep {
    requests: Sender<Request>,
    thread: Option<JoinHandle<()>>,
}

impl Upkeep {
    pub fn start(client: Arc<Client>, sink: Arc<dyn CompletionSink>, stats: Arc<PruneStats>) -> StoreResult<Upkeep> {
        let (requests, receiver) = mpsc::channel();
        let owner = format!("{}-{:x}", std::process::id(), RandomState::new().build_hasher().finish());
        let thread = std::thread::Builder::new()
            .name("rqlite-session-upkeep".into())
            .spawn(move || {
                let mut schedules: Vec<(Arc<Table>, Duration, Instant)> = Vec::new();
                loop {
                    let next = schedules.iter().map(|(_, _, at)| *at).min();
                    let wait =
                        next.map_or(Duration::from_secs(3600), |at| at.saturating_duration_since(Instant::now()));
                    let request = match receiver.recv_timeout(wait) {
                        Ok(request) => Some(request),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => return,
                    };
                    let guarded = |work: &dyn Fn() -> StoreResult<i64>| {
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|_| {
                            Err(StoreError::new("ERR_INTERNAL", "the upkeep thread hit an internal error"))
                        })
                    };
                    match request {
                        Some(Request::Schedule(table, interval)) => {
                            schedules.push((table, interval, Instant::now() + jittered(interval)));
                        }
                        Some(Request::Unschedule(table)) => schedules.retain(|(t, ..)| !Arc::ptr_eq(t, &table)),
                        Some(Request::Prune(ticket, table)) => {
                            let result = guarded(&|| prune_now(&client, &stats, &table));
                            sink.deliver(vec![Completion { ticket, result: result.map(Outcome::Count) }]);
                        }
                        Some(Request::Backup(ticket, target)) => {
                            let result = guarded(&|| client.backup(&target));
                            sink.deliver(vec![Completion { ticket, result: result.map(Outcome::Count) }]);
                        }
                        Some(Request::Stop) => return,
                        None => {
                            let now = Instant::now();
                            for (table, interval, at) in schedules.iter_mut().filter(|(.., at)| *at <= now) {
                                *at = now + jittered(*interval);
                                let lease_ms = interval.as_millis().min(i64::MAX as u128) as i64;
                                let result = guarded(&|| prune_with_lease(&client, &stats, table, &owner, lease_ms));
                                if let Err(error) = result {
                                    stats.errors.fetch_add(1, Ordering::Relaxed);
                                    sink.deliver(vec![Completion { ticket: BACKGROUND_TICKET, result: Err(error) }]);
                                }
                            }
                        }
                    }
                }
            })
            .map_err(|e| StoreError::new("ERR_THREAD", format!("cannot start the upkeep thread: {e}")))?;
        Ok(Upkeep { requests, thread: Some(thread) })
    }

    fn send(&self, request: Request) -> StoreResult<()> {
        self.requests.send(request).map_err(|_| StoreError::closed())
    }

    pub fn schedule(&self, table: Arc<Table>, interval: Duration) {
        let _ = self.send(Request::Schedule(table, interval));
    }

    pub fn unschedule(&self, table: &Arc<Table>) {
        let _ = self.send(Request::Unschedule(Arc::clone(table)));
    }

    pub fn request(&self, ticket: u32, table: Arc<Table>) -> StoreResult<()> {
        self.send(Request::Prune(ticket, table))
    }

    pub fn backup(&self, ticket: u32, target: PathBuf) -> StoreResult<()> {
        self.send(Request::Backup(ticket, target))
    }

    /// Answers what was requested, then stops the thread.
    pub fn shutdown(&mut self) {
        let _ = self.requests.send(Request::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A scheduled prune: deletes a table's expired sessions unless another app server
/// holds the table's lease (then 0 rows), and keeps the lease for `lease_ms`, the
/// interval, so that the next of all the servers' schedules to come due after it
/// prunes again. The lease table is created in the same request: a prune may come
/// before any job has set the table up.
fn prune_with_lease(
    client: &Client,
    stats: &PruneStats,
    table: &Table,
    owner: &str,
    lease_ms: i64,
) -> StoreResult<i64> {
    let now = ops::now_ms();
    let take = vec![
        Value::from(format!(
            "INSERT INTO {LEASE_TABLE} (name, owner, until) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until \
             WHERE until < ?4 OR owner = excluded.owner"
        )),
        table.sql.table.as_str().into(),
        owner.into(),
        now.saturating_add(lease_ms).into(),
        now.into(),
    ];
    let mut replies = client.execute(&[vec![Value::from(lease_table_sql())], take], false)?;
    if changed(replies.drain(1..).collect())? != 1 {
        stats.skipped.fetch_add(1, Ordering::Relaxed);
        return Ok(0);
    }
    prune_now(client, stats, table)
}

const PRUNE_BATCH: i64 = 500;

/// Deletes a table's expired sessions in batches of `PRUNE_BATCH` (each a Raft entry of
/// its own, so writes of the app go in between). A prune asked for by `prune()` runs
/// at once, lease or not: deleting expired rows twice deletes nothing twice.
fn prune_now(client: &Client, stats: &PruneStats, table: &Table) -> StoreResult<i64> {
    let now = ops::now_ms();
    let batch = super::statements::for_job(table, &ops::Op::Prune { limit: PRUNE_BATCH }, now)?;
    let mut total = 0;
    let result = loop {
        match client.execute(std::slice::from_ref(&batch), false).and_then(changed) {
            Ok(deleted) => {
                total += deleted;
                if deleted < PRUNE_BATCH {
                    break Ok(total);
                }
            }
            // Not set up yet (no job has used it): nothing to prune.
            Err(error) if total == 0 && error.message.contains("no such table") => break Ok(0),
            Err(error) => break Err(error),
        }
    };
    stats.runs.fetch_add(1, Ordering::Relaxed);
    stats.rows.fetch_add(total.max(0) as u64, Ordering::Relaxed);
    result
}

fn lease_table_sql() -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {LEASE_TABLE} (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until INTEGER NOT NULL)"
    )
}

fn changed(replies: Vec<Reply>) -> StoreResult<i64> {
    match replies.into_iter().next() {
        Some(Reply::Changed(n)) => Ok(n),
        Some(Reply::Failed(message)) => Err(sql_error(&message)),
        _ => Err(StoreError::new("ERR_CLUSTER_REPLY", "rqlite answered a write without a row count")),
    }
}

/// Creates the table, its indexes and the store's bookkeeping tables on the cluster (or,
/// without `create`, checks that the table is there), and refuses a table set up by a
/// newer version of the store, as the local engine does.
pub fn set_up_table(client: &Client, table: &Table, create: bool) -> StoreResult<()> {
    let name = table.sql.table.as_str();
    let version_sql = format!("SELECT version FROM {VERSION_TABLE} WHERE name = ?1");
    let exists_sql = "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1 COLLATE NOCASE";
    let replies = client.query(&[vec![version_sql.into(), name.into()], vec![exists_sql.into(), name.into()]])?;
    let number = |reply: Option<&Reply>| match reply {
        Some(Reply::Rows(rows)) => rows.first().and_then(|row| row.first()).and_then(Value::as_i64),
        _ => None,
    };
    if let Some(version) = number(replies.first()) {
        if version > SCHEMA_VERSION {
            return Err(StoreError::new(
                "ERR_SCHEMA_TOO_NEW",
                format!(
                    "table {} was set up by a newer version of express-sqlite-native (table layout {version}; this \
                     version knows up to {SCHEMA_VERSION}): upgrade express-sqlite-native, or use another table",
                    quote_identifier(name)
                ),
            ));
        }
    }
    if !create {
        return match number(replies.get(1)) {
            Some(n) if n > 0 => Ok(()),
            _ => Err(StoreError::new(
                "ERR_NO_TABLE",
                format!("table {} does not exist on the cluster, and createTable is false", quote_identifier(name)),
            )),
        };
    }
    // The table first, then its columns checked (an index on a missing column would
    // fail with a less useful message), then the indexes and the version record.
    let sql = &table.sql;
    let version_table = format!(
        "CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (name TEXT PRIMARY KEY COLLATE NOCASE, version INTEGER NOT NULL)"
    );
    let plain = |texts: &[&str]| texts.iter().map(|text| vec![Value::from(*text)]).collect::<Vec<_>>();
    execute_all(client, &plain(&[&sql.create_table, &version_table, &lease_table_sql()]))?;
    add_missing_columns(client, table)?;
    let mut finish = plain(&[&sql.create_expires_index, &sql.create_user_index]);
    finish.push(vec![
        Value::from(format!(
            "INSERT INTO {VERSION_TABLE} (name, version) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET version = excluded.version"
        )),
        name.into(),
        SCHEMA_VERSION.into(),
    ]);
    execute_all(client, &finish)
}

/// Runs statements in one transaction; the first failure is the error.
fn execute_all(client: &Client, statements: &[Vec<Value>]) -> StoreResult<()> {
    for reply in client.execute(statements, true)? {
        if let Reply::Failed(message) = reply {
            return Err(sql_error(&message));
        }
    }
    Ok(())
}

/// A table that was already there (made by another app server with other extra
/// columns, or by something else) gets the extra columns this store declares; one
/// without the store's own columns is refused, as on a file.
fn add_missing_columns(client: &Client, table: &Table) -> StoreResult<()> {
    let sql = &table.sql;
    let columns =
        client.query(&[vec![Value::from("SELECT name FROM pragma_table_info(?1)"), sql.table.as_str().into()]])?;
    let names: Vec<String> = match columns.into_iter().next() {
        Some(Reply::Rows(rows)) => rows.iter().filter_map(|row| row.first()?.as_str().map(str::to_owned)).collect(),
        Some(Reply::Failed(message)) => return Err(sql_error(&message)),
        _ => Vec::new(),
    };
    let has = |wanted: &str| names.iter().any(|name| name.eq_ignore_ascii_case(wanted));
    if let Some(missing) = crate::sql::BUILT_IN_COLUMNS.iter().find(|c| !has(c)) {
        return Err(StoreError::new(
            "ERR_BAD_TABLE",
            format!(
                "table {} on the cluster has no {missing} column: it was not made by this store",
                quote_identifier(&sql.table)
            ),
        ));
    }
    let additions: Vec<Vec<Value>> = sql
        .extra_columns
        .iter()
        .filter(|column| !has(&column.name))
        .map(|column| {
            let add = format!(
                "ALTER TABLE {} ADD COLUMN {} {}",
                quote_identifier(&sql.table),
                quote_identifier(&column.name),
                column.sql_type
            );
            vec![Value::from(add)]
        })
        .collect();
    // One at a time: another app server may add the same column at the same moment.
    for addition in additions {
        match execute_all(client, &[addition]) {
            Err(error) if error.message.contains("duplicate column") => {}
            result => result?,
        }
    }
    Ok(())
}
