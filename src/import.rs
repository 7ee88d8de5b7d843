//! Taking over the sessions of another store's table, once: connect-session-knex
//! (`sid`, `sess` JSON text, `expired` as an ISO string or epoch ms) and
//! connect-session-sequelize (`sid`, `data` JSON text, `expires` as
//! 'YYYY-MM-DD HH:MM:SS.SSS +00:00', `createdAt`). Live sessions are copied with the
//! same ids, data and expiry; the old table is renamed (kept, never read again), so a
//! restart cannot bring back a session that was destroyed since.

use rusqlite::{Connection, OptionalExtension};

use crate::error::{StoreError, StoreResult};
use crate::sql::{quote_identifier, TableSql, EXPIRY_BUCKET_SHIFT};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    Knex,
    Sequelize,
}

#[derive(Debug, Clone)]
pub struct ImportSource {
    pub kind: SourceKind,
    pub table: String,
    /// The id column (connect-session-knex's `sidfieldname`).
    pub sid_column: String,
}

impl ImportSource {
    pub fn new(kind: SourceKind, table: Option<String>, sid_column: Option<String>) -> Self {
        let default_table = match kind {
            SourceKind::Knex => "sessions",
            SourceKind::Sequelize => "Sessions",
        };
        ImportSource {
            kind,
            table: table.unwrap_or_else(|| default_table.to_string()),
            sid_column: sid_column.unwrap_or_else(|| "sid".to_string()),
        }
    }

    fn data_column(&self) -> &'static str {
        match self.kind {
            SourceKind::Knex => "sess",
            SourceKind::Sequelize => "data",
        }
    }

    fn expiry_column(&self) -> &'static str {
        match self.kind {
            SourceKind::Knex => "expired",
            SourceKind::Sequelize => "expires",
        }
    }
}

/// Epoch ms from a date stored as a number (ms) or as text SQLite's date functions read
/// (ISO 8601 with `T` and `Z`, or sequelize's `YYYY-MM-DD HH:MM:SS.SSS +00:00`).
fn epoch_ms_sql(column: &str) -> String {
    format!(
        "(CASE WHEN typeof({column}) IN ('integer', 'real') THEN CAST({column} AS INTEGER) \
         WHEN typeof({column}) = 'text' THEN CAST(ROUND((julianday({column}) - 2440587.5) * 86400000.0) AS INTEGER) END)"
    )
}

fn columns_of(conn: &Connection, table: &str) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt.query_map([table], |row| row.get::<_, String>(0))?;
    Ok(names.collect::<Result<Vec<_>, _>>()?)
}

/// The source table's exact name, if a table of that name (any case) has its columns.
fn find_source(conn: &Connection, source: &ImportSource) -> StoreResult<Option<String>> {
    let name: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?1 COLLATE NOCASE",
            [&source.table],
            |r| r.get(0),
        )
        .optional()?;
    let Some(name) = name else { return Ok(None) };
    let columns = columns_of(conn, &name)?;
    let has = |wanted: &str| columns.iter().any(|c| c.eq_ignore_ascii_case(wanted));
    if has(&source.sid_column) && has(source.data_column()) && has(source.expiry_column()) {
        Ok(Some(name))
    } else {
        Ok(None)
    }
}

fn free_name(conn: &Connection, base: &str) -> StoreResult<String> {
    for n in 0..1000 {
        let candidate = if n == 0 { format!("{base}_imported") } else { format!("{base}_imported_{n}") };
        let taken: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = ?1 COLLATE NOCASE)",
            [&candidate],
            |r| r.get(0),
        )?;
        if !taken {
            return Ok(candidate);
        }
    }
    Err(StoreError::new("ERR_IMPORT", format!("no free name to keep table {base} under")))
}

/// Copies the live sessions of `source` into the store's table, which `create` makes
/// (it runs after the old table is out of the way: both stores default to a table
/// named "sessions" in some case). Returns the rows copied, or None when there was no
/// such table (already imported, or never there). Runs inside the caller's transaction.
pub fn import(
    conn: &Connection,
    source: &ImportSource,
    ours: &TableSql,
    now_ms: i64,
    default_ttl_ms: i64,
    create: impl FnOnce(&Connection) -> StoreResult<()>,
) -> StoreResult<Option<(usize, String)>> {
    let Some(found) = find_source(conn, source)? else {
        create(conn)?;
        return Ok(None);
    };
    let kept = free_name(conn, &found)?;
    conn.execute_batch(&format!("ALTER TABLE {} RENAME TO {}", quote_identifier(&found), quote_identifier(&kept)))?;
    create(conn)?;
    let old = quote_identifier(&kept);
    let sid = quote_identifier(&source.sid_column);
    let data = quote_identifier(source.data_column());
    let expiry = epoch_ms_sql(&quote_identifier(source.expiry_column()));
    let created = match source.kind {
        SourceKind::Sequelize if columns_of(conn, &kept)?.iter().any(|c| c == "createdAt") => {
            format!("COALESCE({}, ?1)", epoch_ms_sql("\"createdAt\""))
        }
        _ => "?1".to_string(),
    };
    let copied = conn.execute(
        &format!(
            "INSERT OR IGNORE INTO {ours} (id, data, expires, created, touched, expiry_bucket) \
             SELECT id, data, expires, created, 0, expires >> {EXPIRY_BUCKET_SHIFT} FROM \
             (SELECT CAST({sid} AS TEXT) AS id, CAST({data} AS TEXT) AS data, COALESCE({expiry}, ?1 + ?2) AS expires, \
             {created} AS created FROM {old} WHERE {sid} IS NOT NULL AND json_valid({data})) WHERE expires > ?1",
            ours = quote_identifier(&ours.table),
        ),
        [now_ms, default_ttl_ms],
    )?;
    Ok(Some((copied, kept)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000; // 2027-01-15T08:00:00Z

    fn create(sql: &TableSql) -> impl FnOnce(&Connection) -> StoreResult<()> + '_ {
        move |conn| Ok(conn.execute_batch(&sql.create_table)?)
    }

    #[test]
    fn knex_rows_with_iso_and_numeric_dates() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(
            "CREATE TABLE sessions (sid varchar(255) PRIMARY KEY, sess json NOT NULL, expired datetime NOT NULL);
             INSERT INTO sessions VALUES ('iso', '{\"cookie\":{},\"u\":1}', '2027-01-15T09:00:00.000Z');
             INSERT INTO sessions VALUES ('ms', '{\"cookie\":{},\"u\":2}', 1800000100000);
             INSERT INTO sessions VALUES ('old', '{\"cookie\":{}}', '2027-01-15T07:00:00.000Z');
             INSERT INTO sessions VALUES ('junk', 'not json', '2030-01-01T00:00:00.000Z');",
        )
        .expect("knex table");
        let ours = TableSql::new("Sessions");
        let source = ImportSource::new(SourceKind::Knex, None, None);
        let (copied, kept) = import(&conn, &source, &ours, NOW, 1000, create(&ours)).expect("import").expect("found");
        assert_eq!((copied, kept.as_str()), (2, "sessions_imported"));
        let rows: Vec<(String, i64)> = conn
            .prepare("SELECT id, expires FROM Sessions ORDER BY id")
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(rows, vec![("iso".into(), NOW + 3_600_000), ("ms".into(), 1_800_000_100_000)]);
        // Run again: the old table is gone under its name, nothing is copied twice.
        assert!(import(&conn, &source, &ours, NOW, 1000, create(&ours)).expect("again").is_none());
    }

    #[test]
    fn sequelize_rows_with_offset_dates() {
        let conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(
            "CREATE TABLE `Sessions` (`sid` VARCHAR(36) PRIMARY KEY, `expires` DATETIME, `data` TEXT,
               `createdAt` DATETIME NOT NULL, `updatedAt` DATETIME NOT NULL);
             INSERT INTO Sessions VALUES ('a', '2027-01-15 10:00:00.000 +00:00', '{\"cookie\":{}}', '2027-01-14 08:00:00.000 +00:00', '2027-01-14 08:00:00.000 +00:00');
             INSERT INTO Sessions VALUES ('b', NULL, '{\"cookie\":{}}', '2027-01-14 08:00:00.000 +00:00', '2027-01-14 08:00:00.000 +00:00');
             INSERT INTO Sessions VALUES ('gone', '2027-01-15 07:59:59.999 +00:00', '{\"cookie\":{}}', '2027-01-14 08:00:00.000 +00:00', '2027-01-14 08:00:00.000 +00:00');",
        )
        .expect("sequelize table");
        let ours = TableSql::new("Sessions");
        let source = ImportSource::new(SourceKind::Sequelize, None, None);
        let (copied, kept) = import(&conn, &source, &ours, NOW, 5000, create(&ours)).expect("import").expect("found");
        assert_eq!((copied, kept.as_str()), (2, "Sessions_imported"));
        let a: (i64, i64) = conn
            .query_row("SELECT expires, created FROM Sessions WHERE id = 'a'", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("a");
        assert_eq!(a, (NOW + 7_200_000, NOW - 86_400_000));
        let b: i64 = conn.query_row("SELECT expires FROM Sessions WHERE id = 'b'", [], |r| r.get(0)).expect("b");
        assert_eq!(b, NOW + 5000, "no expiry: the default lifetime from now");
    }
}
