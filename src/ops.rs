//! What the store does to a table. Each function takes a connection and is used by both
//! entry points (the JS thread's fast path and the writer thread): only the caller differs.

use rusqlite::{Connection, OptionalExtension};

use crate::batch::Job;
use crate::error::{StoreError, StoreResult};
use crate::sql::{TableSql, ROWID_NAMES};

/// Lifetime used when no absolute lifetime is set: ~31,000 years, small enough that
/// `created + lifetime` never overflows SQLite's 64-bit integers.
pub const NO_LIFETIME_LIMIT_MS: i64 = 1_000_000_000_000_000;

/// A sessions table as the store uses it.
#[derive(Debug)]
pub struct Table {
    pub sql: TableSql,
    /// Absolute lifetime since creation, in ms (`NO_LIFETIME_LIMIT_MS` when unset).
    pub max_lifetime_ms: i64,
    /// The name as SQLite compares it (ASCII case folded): two handles on one table
    /// share their cached sessions.
    pub cache_name: std::sync::Arc<str>,
}

impl Table {
    pub fn new(name: &str, max_lifetime_ms: Option<i64>) -> Self {
        Self::with_extra_columns(name, max_lifetime_ms, &[])
    }

    pub fn with_extra_columns(name: &str, max_lifetime_ms: Option<i64>, extra: &[crate::sql::ExtraColumn]) -> Self {
        Table {
            sql: TableSql::with_extra_columns(name, extra),
            max_lifetime_ms: max_lifetime_ms.unwrap_or(NO_LIFETIME_LIMIT_MS),
            cache_name: name.to_ascii_lowercase().into(),
        }
    }

    /// Whether the session cache may keep this table's sessions: with a lifetime cap
    /// the stored expiry is computed in SQL (MIN of two values), so it is not known
    /// from the write alone.
    pub fn cacheable(&self) -> bool {
        self.max_lifetime_ms == NO_LIFETIME_LIMIT_MS
    }
}

/// A change or a bulk read, in the order the caller issued it.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Set {
        sid: String,
        data: String,
        expires: i64,
        user_key: Option<String>,
        extras: Vec<rusqlite::types::Value>,
    },
    Touch {
        sid: String,
        expires: i64,
    },
    Destroy {
        sid: String,
    },
    Clear,
    Length,
    Ids,
    All,
    IdsByUser {
        key: String,
    },
    DestroyByUser {
        key: String,
        except: Option<String>,
    },
    Prune {
        limit: i64,
    },
    /// Rows expired but not yet pruned.
    CountExpired,
    /// The live session's data and stored expiry (`Entry`, or `Missing`). Answered on
    /// the calling thread where the engine can (`Engine::read_now`), else queued.
    Get {
        sid: String,
    },
    /// When the live session was last written (`Count` of epoch ms, or `Missing`).
    LastWrite {
        sid: String,
    },
    /// Every live session as id, data and expiry (epoch ms, as text), for copying them
    /// to another store (`Strings`, three per session).
    Export,
}

impl Op {
    /// Whether the operation changes rows; the others only read and need no write lock.
    pub fn writes(&self) -> bool {
        !matches!(
            self,
            Op::Length
                | Op::Ids
                | Op::All
                | Op::IdsByUser { .. }
                | Op::CountExpired
                | Op::Get { .. }
                | Op::LastWrite { .. }
                | Op::Export
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Rows changed or counted.
    Count(i64),
    /// Ids, or for `All` id and data alternating.
    Strings(Vec<String>),
    /// A session's data and stored expiry (`Get`).
    Entry(String, i64),
    /// No such live session (`Get`, `LastWrite`).
    Missing,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The live session's data, or None when missing or expired.
pub fn get(conn: &Connection, table: &Table, sid: &str, now: i64) -> StoreResult<Option<String>> {
    Ok(get_entry(conn, table, sid, now)?.map(|(data, _)| data))
}

/// The live session's data and stored expiry, or None when missing or expired.
pub fn get_entry(conn: &Connection, table: &Table, sid: &str, now: i64) -> StoreResult<Option<(String, i64)>> {
    let mut stmt = conn.prepare_cached(&table.sql.get)?;
    Ok(stmt
        .query_row(rusqlite::params![sid, now], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))
        .optional()?)
}

/// When the live session was last written (ms), or None when missing or expired.
pub fn last_write(conn: &Connection, table: &Table, sid: &str, now: i64) -> StoreResult<Option<i64>> {
    let mut stmt = conn.prepare_cached(&table.sql.touch_state)?;
    Ok(stmt.query_row(rusqlite::params![sid, now], |row| row.get::<_, i64>(0)).optional()?)
}

fn strings(conn: &Connection, sql: &str, params: impl rusqlite::Params, columns: usize) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        for i in 0..columns {
            out.push(row.get::<_, String>(i)?);
        }
    }
    Ok(out)
}

/// Runs one operation at `now`.
pub fn run(conn: &Connection, table: &Table, op: &Op, now: i64) -> StoreResult<Outcome> {
    let sql = &table.sql;
    let changed = |text: &str, params: &[&dyn rusqlite::ToSql]| -> StoreResult<Outcome> {
        let mut stmt = conn.prepare_cached(text)?;
        Ok(Outcome::Count(stmt.execute(params)? as i64))
    };
    // The common statement changes nothing when the expiry bucket would move (see
    // `sql::EXPIRY_BUCKET_SHIFT`); the second one then does the same and moves it.
    let changed_else =
        |common: &str, moving_bucket: &str, params: &[&dyn rusqlite::ToSql]| match changed(common, params)? {
            Outcome::Count(0) => changed(moving_bucket, params),
            done => Ok(done),
        };
    match op {
        Op::Set { sid, data, expires, user_key, extras } => {
            if extras.len() != sql.extra_columns.len() {
                return Err(StoreError::new("ERR_INTERNAL", "wrong number of extra column values"));
            }
            let mut params: Vec<&dyn rusqlite::ToSql> =
                vec![sid, data, expires, &now, &table.max_lifetime_ms, user_key];
            params.extend(extras.iter().map(|v| v as &dyn rusqlite::ToSql));
            changed_else(&sql.upsert, &sql.upsert_moving_bucket, &params)
        }
        Op::Touch { sid, expires } => {
            changed_else(&sql.touch, &sql.touch_moving_bucket, &[sid, expires, &now, &table.max_lifetime_ms])
        }
        Op::Destroy { sid } => changed(&sql.destroy, &[sid]),
        Op::Clear => changed(&sql.clear, &[]),
        Op::Length => {
            let mut stmt = conn.prepare_cached(&sql.length)?;
            Ok(Outcome::Count(stmt.query_row([now], |row| row.get(0))?))
        }
        Op::Ids => Ok(Outcome::Strings(strings(conn, &sql.ids, [now], 1)?)),
        Op::All => Ok(Outcome::Strings(strings(conn, &sql.all, [now], 2)?)),
        Op::IdsByUser { key } => Ok(Outcome::Strings(strings(conn, &sql.ids_by_user, rusqlite::params![key, now], 1)?)),
        Op::DestroyByUser { key, except } => changed(&sql.destroy_by_user, &[key, &now, except]),
        Op::Prune { limit } => changed(&sql.prune_batch, &[&now, limit]),
        Op::CountExpired => {
            let mut stmt = conn.prepare_cached(&sql.count_expired)?;
            Ok(Outcome::Count(stmt.query_row([now], |row| row.get(0))?))
        }
        Op::Get { sid } => {
            Ok(get_entry(conn, table, sid, now)?.map_or(Outcome::Missing, |(d, e)| Outcome::Entry(d, e)))
        }
        Op::LastWrite { sid } => Ok(last_write(conn, table, sid, now)?.map_or(Outcome::Missing, Outcome::Count)),
        Op::Export => {
            let mut stmt = conn.prepare_cached(&sql.export)?;
            let mut rows = stmt.query([now])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.extend([row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)?.to_string()]);
            }
            Ok(Outcome::Strings(out))
        }
    }
}

/// Runs jobs that arrived together as one transaction (one commit for all of them).
/// If any of them fails, the transaction is rolled back and each job runs on its own,
/// so that one bad job cannot fail the others and each result is the job's own.
/// `Err` only when nothing was kept because the lock was held elsewhere (`SQLITE_BUSY`).
/// A caller that may not wait (`may_wait` false) also gets `Err` when anything fails
/// after the transaction began: running each job alone could meet the lock again
/// half-way (a reader holding back a rollback-journal COMMIT, another process taking
/// the lock after the rollback), so the whole batch goes to a thread that may wait.
pub fn run_batch(conn: &Connection, jobs: &[Job], now: i64, may_wait: bool) -> StoreResult<Vec<StoreResult<Outcome>>> {
    // A transaction left open (by a panic part way through an earlier batch) would
    // swallow this batch's writes: end it first.
    if !conn.is_autocommit() {
        conn.execute_batch("ROLLBACK")?;
    }
    if let [job] = jobs {
        // Alone, in autocommit: a busy lock means nothing was written.
        return match run(conn, &job.table, &job.op, now) {
            Err(busy) if busy.code == "SQLITE_BUSY" => Err(busy),
            outcome => Ok(vec![outcome]),
        };
    }
    // Reads alone share one snapshot without asking for the write lock, so another
    // process's write transaction never makes them wait.
    let begin = if jobs.iter().any(|job| job.op.writes()) { "BEGIN IMMEDIATE" } else { "BEGIN DEFERRED" };
    if let Err(e) = conn.execute_batch(begin) {
        let error = StoreError::from(e);
        if error.code == "SQLITE_BUSY" {
            return Err(error);
        }
        return Ok(jobs.iter().map(|job| run(conn, &job.table, &job.op, now)).collect());
    }
    let together = jobs.iter().map(|job| run(conn, &job.table, &job.op, now)).collect::<StoreResult<Vec<_>>>();
    if let Ok(outcomes) = together {
        if conn.execute_batch("COMMIT").is_ok() {
            return Ok(outcomes.into_iter().map(Ok).collect());
        }
    }
    // One failed (or the commit did): nothing of the batch was kept.
    if !conn.is_autocommit() {
        conn.execute_batch("ROLLBACK")?;
    }
    if !may_wait {
        return Err(StoreError::new("SQLITE_BUSY", "the batch is left to a thread that may wait for locks"));
    }
    Ok(jobs.iter().map(|job| run(conn, &job.table, &job.op, now)).collect())
}

/// The statement `prune_batch` runs on this table as the file has it: by rowid when the
/// table has one that no column hides (a table of an earlier version may be WITHOUT
/// ROWID, and a column may be named `rowid`: one from an `extraColumns` since removed,
/// or another program's), else by id. Looked up once per prune, not per batch.
pub fn prune_statement(conn: &Connection, table: &Table) -> StoreResult<String> {
    let sql = &table.sql;
    Ok(match rowid_name(conn, &sql.table)? {
        Some(rowid) => sql.prune_batch_by_rowid(rowid),
        None => sql.prune_batch.clone(),
    })
}

/// Deletes up to `limit` expired rows in one transaction with `statement` (from
/// `prune_statement`); returns how many.
pub fn prune_batch(conn: &Connection, statement: &str, now: i64, limit: i64) -> StoreResult<i64> {
    Ok(conn.prepare_cached(statement)?.execute(rusqlite::params![now, limit])? as i64)
}

/// A name of the table's rowid that none of its columns (in the file) hides; None for a
/// WITHOUT ROWID table, or when every name is taken.
fn rowid_name(conn: &Connection, table: &str) -> StoreResult<Option<&'static str>> {
    let without_rowid: Option<i64> = conn
        .prepare_cached("SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1 COLLATE NOCASE")?
        .query_row([table], |row| row.get(0))
        .optional()?;
    if without_rowid != Some(0) {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached("SELECT name FROM pragma_table_xinfo(?1)")?;
    let columns = stmt.query_map([table], |row| row.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    Ok(ROWID_NAMES.into_iter().find(|name| !columns.iter().any(|c| c.eq_ignore_ascii_case(name))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ensure_table;
    use crate::testing::{schema_options, temp_dir};
    use std::sync::Arc;

    const NOW: i64 = 1_800_000_000_000;

    fn setup(lifetime: Option<i64>) -> (Connection, Arc<Table>) {
        let mut conn = Connection::open_in_memory().expect("open");
        let table = Arc::new(Table::new("Sessions", lifetime));
        ensure_table(&mut conn, &table.sql, &schema_options(NOW, 1000)).expect("schema");
        (conn, table)
    }

    fn set(sid: &str, data: &str, expires: i64) -> Op {
        Op::Set { sid: sid.into(), data: data.into(), expires, user_key: None, extras: vec![] }
    }

    #[test]
    fn expiry_is_exact_to_the_millisecond() {
        let (conn, table) = setup(None);
        run(&conn, &table, &set("a", "{}", NOW + 10), NOW).expect("set");
        assert_eq!(get(&conn, &table, "a", NOW + 9).expect("get"), Some("{}".into()));
        assert_eq!(get(&conn, &table, "a", NOW + 10).expect("get"), None);
        assert_eq!(run(&conn, &table, &Op::Length, NOW + 9).expect("len"), Outcome::Count(1));
        assert_eq!(run(&conn, &table, &Op::Length, NOW + 10).expect("len"), Outcome::Count(0));
        assert_eq!(run(&conn, &table, &Op::Ids, NOW + 10).expect("ids"), Outcome::Strings(vec![]));
    }

    #[test]
    fn touch_moves_expiry_but_never_revives() {
        let (conn, table) = setup(None);
        run(&conn, &table, &set("a", "{\"x\":1}", NOW + 10), NOW).expect("set");
        let touch = |expires, now| run(&conn, &table, &Op::Touch { sid: "a".into(), expires }, now).expect("touch");
        assert_eq!(touch(NOW + 100, NOW + 5), Outcome::Count(1));
        assert_eq!(get(&conn, &table, "a", NOW + 50).expect("get"), Some("{\"x\":1}".into()));
        assert_eq!(touch(NOW + 1000, NOW + 100), Outcome::Count(0), "expired: not revived");
        assert_eq!(get(&conn, &table, "a", NOW + 101).expect("get"), None);
    }

    /// Every write leaves `expiry_bucket` equal to `expires >> 20`, whether it kept the
    /// bucket (the common statement) or moved it (the second one), with and without a
    /// lifetime cap, and for a row an older version left at bucket 0.
    #[test]
    fn writes_keep_the_expiry_bucket_of_their_expiry() {
        use crate::sql::EXPIRY_BUCKET_SHIFT;
        let bucket = 1i64 << EXPIRY_BUCKET_SHIFT;
        for lifetime in [None, Some(3 * bucket)] {
            let (conn, table) = setup(lifetime);
            let stored = |sid: &str| -> (i64, i64) {
                conn.query_row("SELECT expires, expiry_bucket FROM Sessions WHERE id = ?1", [sid], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .expect("row")
            };
            let check = |sid: &str, expected_expires: i64, what: &str| {
                let (expires, expiry_bucket) = stored(sid);
                assert_eq!(expires, expected_expires, "{what}: expires ({lifetime:?})");
                assert_eq!(expiry_bucket, expires >> EXPIRY_BUCKET_SHIFT, "{what}: bucket ({lifetime:?})");
            };
            let touch = |expires, now| run(&conn, &table, &Op::Touch { sid: "a".into(), expires }, now).expect("touch");
            assert_eq!(run(&conn, &table, &set("a", "{}", NOW + 10), NOW).expect("new"), Outcome::Count(1));
            check("a", NOW + 10, "new");
            assert_eq!(run(&conn, &table, &set("a", "{}", NOW + 20), NOW).expect("same bucket"), Outcome::Count(1));
            check("a", NOW + 20, "overwrite, same bucket");
            assert_eq!(run(&conn, &table, &set("a", "{}", NOW + bucket + 20), NOW).expect("next"), Outcome::Count(1));
            check("a", NOW + bucket + 20, "overwrite, next bucket");
            assert_eq!(touch(NOW + bucket + 30, NOW + 1), Outcome::Count(1));
            check("a", NOW + bucket + 30, "touch, same bucket");
            assert_eq!(touch(NOW + 2 * bucket + 30, NOW + 2), Outcome::Count(1));
            check("a", NOW + 2 * bucket + 30, "touch, next bucket");
            conn.execute("UPDATE Sessions SET expiry_bucket = 0", []).expect("as an older version left it");
            assert_eq!(touch(NOW + 2 * bucket + 40, NOW + 3), Outcome::Count(1));
            check("a", NOW + 2 * bucket + 40, "touch of a row at bucket 0");
            let capped = lifetime.map_or(NOW + 5 * bucket, |l| NOW + l);
            assert_eq!(run(&conn, &table, &set("a", "{}", NOW + 5 * bucket), NOW + 4).expect("far"), Outcome::Count(1));
            check("a", capped, "overwrite, capped by the lifetime when there is one");
            assert_eq!(
                touch(NOW + 9 * bucket, NOW + 6 * bucket),
                Outcome::Count(0),
                "missing or expired: nothing written"
            );
        }
    }

    #[test]
    fn max_lifetime_caps_set_and_touch_and_resets_on_rebirth() {
        let (conn, table) = setup(Some(1000));
        run(&conn, &table, &set("a", "{}", NOW + 50_000), NOW).expect("set");
        assert_eq!(get(&conn, &table, "a", NOW + 999).expect("get"), Some("{}".into()));
        assert_eq!(get(&conn, &table, "a", NOW + 1000).expect("get"), None);
        run(&conn, &table, &set("b", "{}", NOW + 50_000), NOW).expect("set");
        run(&conn, &table, &Op::Touch { sid: "b".into(), expires: NOW + 90_000 }, NOW + 500).expect("touch");
        run(&conn, &table, &set("b", "{}", NOW + 90_000), NOW + 600).expect("set again");
        assert_eq!(get(&conn, &table, "b", NOW + 1000).expect("get"), None, "touch and set cannot extend");
        // Set after expiry: a new session with a new creation time.
        run(&conn, &table, &set("a", "{\"new\":1}", NOW + 50_000), NOW + 2000).expect("reborn");
        assert_eq!(get(&conn, &table, "a", NOW + 2999).expect("get"), Some("{\"new\":1}".into()));
    }

    #[test]
    fn unicode_and_nul_round_trip() {
        let (conn, table) = setup(None);
        let sid = "s\u{0}id-ü-☃-𝄞";
        let data = "{\"k\":\"\u{0}v\u{1F600}\"}";
        run(&conn, &table, &set(sid, data, NOW + 10), NOW).expect("set");
        assert_eq!(get(&conn, &table, sid, NOW).expect("get"), Some(data.into()));
        assert_eq!(get(&conn, &table, "s", NOW).expect("get"), None, "NUL does not truncate the key");
    }

    #[test]
    fn batch_falls_back_to_single_jobs_on_error() {
        let (conn, table) = setup(None);
        let broken = Arc::new(Table::new("missing", None));
        let jobs = vec![
            Job { table: table.clone(), op: set("a", "{}", NOW + 10_000_000_000) },
            Job { table: broken, op: Op::Destroy { sid: "a".into() } },
            Job { table: table.clone(), op: Op::Length },
        ];
        let results = run_batch(&conn, &jobs, NOW, true).expect("ran");
        assert_eq!(results[0], Ok(Outcome::Count(1)));
        assert_eq!(results[1].as_ref().unwrap_err().code, "SQLITE_ERROR");
        assert_eq!(results[2], Ok(Outcome::Count(1)));
    }

    /// A batch of reads alone never asks for the write lock: another connection's open
    /// write transaction does not make it wait (its busy handler is never called).
    #[test]
    fn a_batch_of_reads_does_not_ask_for_the_write_lock() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static BUSY_CALLS: AtomicUsize = AtomicUsize::new(0);
        fn count_and_give_up(_: i32) -> bool {
            BUSY_CALLS.fetch_add(1, Ordering::SeqCst);
            false
        }
        let dir = temp_dir();
        let path = dir.path().join("s.db");
        let mut ours = Connection::open(&path).expect("open");
        ours.execute_batch("PRAGMA journal_mode = WAL").expect("wal");
        let table = Arc::new(Table::new("Sessions", None));
        ensure_table(&mut ours, &table.sql, &schema_options(NOW, 1000)).expect("schema");
        run(&ours, &table, &set("a", "{}", i64::MAX), NOW).expect("set");
        let other = Connection::open(&path).expect("other");
        other.execute_batch("BEGIN IMMEDIATE; DELETE FROM Sessions;").expect("other holds the write lock");
        ours.busy_handler(Some(count_and_give_up)).expect("handler");
        let reads = [Op::Length, Op::Ids, Op::CountExpired];
        let jobs: Vec<Job> = reads.into_iter().map(|op| Job { table: table.clone(), op }).collect();
        let results = run_batch(&ours, &jobs, NOW, true).expect("ran");
        assert_eq!(results, [Ok(Outcome::Count(1)), Ok(Outcome::Strings(vec!["a".into()])), Ok(Outcome::Count(0))]);
        assert_eq!(BUSY_CALLS.load(Ordering::SeqCst), 0, "the reads waited for the write lock");
        // A batch with a write in it does ask, and (here told to give up) runs nothing:
        // the caller gets SQLITE_BUSY for the whole batch, to queue it or report it.
        let mixed =
            [Job { table: table.clone(), op: Op::Length }, Job { table: table.clone(), op: set("b", "{}", i64::MAX) }];
        let busy = run_batch(&ours, &mixed, NOW, true).unwrap_err();
        assert_eq!(busy.code, "SQLITE_BUSY");
        assert!(BUSY_CALLS.load(Ordering::SeqCst) > 0);
        other.execute_batch("ROLLBACK").expect("rollback");
        drop((ours, other));
    }

    /// On the three shapes a table can have: this version's (by rowid), one whose extra
    /// columns hide every name of the rowid, and a WITHOUT ROWID table of an earlier
    /// version (both by id).
    #[test]
    fn prune_deletes_exactly_the_expired_rows() {
        use crate::sql::ExtraColumn;
        let column = |name: &str| ExtraColumn { name: name.into(), sql_type: "TEXT".into() };
        let shapes = [
            ("rowid", vec![], false, false),
            ("a column named rowid", vec![column("RowId")], false, false),
            ("a leftover column named rowid", vec![], false, true),
            ("every rowid name hidden", vec![column("rowid"), column("_rowid_"), column("oid")], false, false),
            ("without rowid", vec![], true, false),
        ];
        for (shape, extra, without_rowid, leftover) in shapes {
            let mut conn = Connection::open_in_memory().expect("open");
            let table = Table::with_extra_columns("Sessions", None, &extra);
            // A column the store no longer declares (an extraColumns option since removed,
            // another program's) hides the rowid all the same: every row gets one value,
            // so a prune that took it for the rowid would delete the live rows too.
            if without_rowid {
                let create = table.sql.create_table.replace("DEFAULT 0)", "DEFAULT 0) WITHOUT ROWID");
                conn.execute_batch(&create).expect("create without rowid");
            }
            if leftover {
                let earlier = crate::sql::TableSql::with_extra_columns("Sessions", &[column("ROWID")]);
                conn.execute_batch(&earlier.create_table).expect("created with a column named rowid");
            }
            ensure_table(&mut conn, &table.sql, &schema_options(NOW, 1000)).expect("schema");
            for i in 0..1050 {
                let expires = if i % 3 == 0 { NOW + 1_000_000 } else { NOW - i };
                let extras = vec![rusqlite::types::Value::Null; extra.len()];
                let op = Op::Set { sid: format!("s{i}"), data: "{}".into(), expires, user_key: None, extras };
                run(&conn, &table, &op, NOW - 10_000).expect("set");
            }
            if leftover {
                conn.execute_batch("UPDATE Sessions SET rowid = 'same'").expect("one value in the leftover column");
            }
            let mut deleted = 0;
            let last = loop {
                let statement = prune_statement(&conn, &table).expect("statement");
                let batch = prune_batch(&conn, &statement, NOW, 100).expect("prune");
                deleted += batch;
                if batch < 100 {
                    break batch;
                }
            };
            assert_eq!((deleted, last), (700, 0), "{shape}: 700 expired rows, in batches of at most 100");
            assert_eq!(run(&conn, &table, &Op::Length, NOW).expect("len"), Outcome::Count(350), "{shape}");
            let remaining: i64 = conn.query_row("SELECT COUNT(*) FROM Sessions", [], |r| r.get(0)).expect("count");
            assert_eq!(remaining, 350, "{shape}");
        }
    }

    /// A full disk, made real and deterministic: `max_page_count` caps the file of a
    /// real WAL database (as the store opens it), so this never depends on root or on
    /// mounting a small filesystem and never skips.
    #[test]
    fn disk_full_fails_with_sqlite_full_reads_go_on_and_writes_recover() {
        use crate::open::{open_connection, prepare_location, Location, OpenOptions};
        let dir = temp_dir();
        let location = Location::File(dir.path().join("full.db"));
        let options = OpenOptions::default();
        prepare_location(&location, &options).expect("prepare");
        let retries = Arc::default();
        let mut writer = open_connection(&location, &options, &retries).expect("writer");
        let reader = open_connection(&location, &options, &retries).expect("reader");
        let table = Arc::new(Table::new("Sessions", None));
        ensure_table(&mut writer, &table.sql, &schema_options(NOW, 1000)).expect("schema");
        // Far past both NOW and the real clock (run_batch reads the real one).
        let expires = 4_000_000_000_000;
        let data = format!("{{\"pad\":\"{}\"}}", "x".repeat(2000));
        let pages: i64 = writer.query_row("PRAGMA page_count", [], |r| r.get(0)).expect("page_count");
        // Room for a handful of 2 KB sessions beyond the empty table, then no more.
        let limit: i64 =
            writer.query_row(&format!("PRAGMA max_page_count = {}", pages + 6), [], |r| r.get(0)).expect("limit");
        assert_eq!(limit, pages + 6, "the limit took");

        let mut written = 0;
        let mut first_error = None;
        for i in 0..1000 {
            match run(&writer, &table, &set(&format!("s{i}"), &data, expires), NOW) {
                Ok(outcome) => {
                    assert_eq!(outcome, Outcome::Count(1));
                    written += 1;
                }
                Err(e) => {
                    first_error = Some(e);
                    break;
                }
            }
        }
        let error = first_error.expect("writes hit the page limit");
        assert_eq!(error.code, "SQLITE_FULL", "{error}");
        assert!(written >= 3, "some sessions fit before the limit ({written})");
        // The group-commit path: the transaction fails, each job is retried alone and
        // each reports SQLITE_FULL itself.
        let jobs: Vec<Job> =
            (0..3).map(|j| Job { table: Arc::clone(&table), op: set(&format!("batch{j}"), &data, expires) }).collect();
        for result in run_batch(&writer, &jobs, now_ms(), true).expect("ran") {
            assert_eq!(result.map_err(|e| e.code), Err("SQLITE_FULL".to_string()));
        }

        // Reads keep working, on the full connection and on another one.
        assert_eq!(get(&reader, &table, "s0", NOW).expect("read while full"), Some(data.clone()));
        assert_eq!(get(&writer, &table, &format!("s{}", written - 1), NOW).expect("read"), Some(data.clone()));
        assert_eq!(run(&reader, &table, &Op::Length, NOW).expect("length"), Outcome::Count(written));
        assert_eq!(
            get(&reader, &table, &format!("s{written}"), NOW).expect("read"),
            None,
            "the failed write left nothing"
        );

        // Space comes back: the same writes now succeed, on both paths.
        writer.execute_batch("PRAGMA max_page_count = 1000000").expect("raise");
        assert_eq!(run(&writer, &table, &set(&format!("s{written}"), &data, expires), NOW), Ok(Outcome::Count(1)));
        for result in run_batch(&writer, &jobs, now_ms(), true).expect("ran") {
            assert_eq!(result, Ok(Outcome::Count(1)));
        }
        assert_eq!(run(&reader, &table, &Op::Length, NOW).expect("length"), Outcome::Count(written + 4));
        assert_eq!(get(&reader, &table, "batch2", NOW).expect("read"), Some(data));
        let integrity: String = reader.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity");
        assert_eq!(integrity, "ok");
        drop(reader);
        drop(writer);
    }
}
