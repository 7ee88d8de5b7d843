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
use crate::upkeep::{jittered, PruneStats, LEASE_TABLE, PRUNE_BATCH};
use crate::worker::{Completion, CompletionSink, BACKGROUND_TICKET};

/// How long a requested prune's lease lasts if its holder dies mid-prune.
const REQUEST_LEASE_MS: i64 = 60_000;

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
                            let result =
                                guarded(&|| prune_with_lease(&client, &stats, &table, &owner, REQUEST_LEASE_MS, true));
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
                                let result =
                                    guarded(&|| prune_with_lease(&client, &stats, table, &owner, lease_ms, false));
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

/// Deletes a table's expired sessions in batches unless another app server holds the
/// table's lease (then 0 rows). `release`: give the lease back afterwards (a requested
/// prune); a scheduled prune keeps it for `lease_ms`, its interval.
fn prune_with_lease(
    client: &Client,
    stats: &PruneStats,
    table: &Table,
    owner: &str,
    lease_ms: i64,
    release: bool,
) -> StoreResult<i64> {
    let now = ops::now_ms();
    let name = table.sql.table.as_str();
    let take = vec![
        Value::from(format!(
            "INSERT INTO {LEASE_TABLE} (name, owner, until) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until \
             WHERE until < ?4 OR owner = excluded.owner"
        )),
        name.into(),
        owner.into(),
        now.saturating_add(lease_ms).into(),
        now.into(),
    ];
    if changed(client.execute(&[take], false)?)? != 1 {
        stats.skipped.fetch_add(1, Ordering::Relaxed);
        return Ok(0);
    }
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
            Err(error) => break Err(error),
        }
    };
    if release {
        let give_back = vec![
            Value::from(format!("DELETE FROM {LEASE_TABLE} WHERE name = ?1 AND owner = ?2")),
            name.into(),
            owner.into(),
        ];
        let _ = client.execute(&[give_back], false);
    }
    stats.runs.fetch_add(1, Ordering::Relaxed);
    stats.rows.fetch_add(total.max(0) as u64, Ordering::Relaxed);
    result
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
    let sql = &table.sql;
    let statements: Vec<Vec<Value>> = [
        sql.create_table.as_str(),
        sql.create_expires_index.as_str(),
        sql.create_user_index.as_str(),
        &format!("CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (name TEXT PRIMARY KEY COLLATE NOCASE, version INTEGER NOT NULL)"),
        &format!("CREATE TABLE IF NOT EXISTS {LEASE_TABLE} (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until INTEGER NOT NULL)"),
    ]
    .iter()
    .map(|text| vec![Value::from(*text)])
    .chain(std::iter::once(vec![
        Value::from(format!(
            "INSERT INTO {VERSION_TABLE} (name, version) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET version = excluded.version"
        )),
        name.into(),
        SCHEMA_VERSION.into(),
    ]))
    .collect();
    for reply in client.execute(&statements, true)? {
        if let Reply::Failed(message) = reply {
            return Err(sql_error(&message));
        }
    }
    Ok(())
}
