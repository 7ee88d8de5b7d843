//! Creating the sessions table, and bringing older tables up to date: a table made by
//! `express-sqlite` (only `id` and `data`) gains the expiry, creation, last-write and
//! user columns, filled from what its rows already say. Safe to run twice and from
//! two processes at once: the work happens in an immediate transaction that
//! re-reads the columns it finds.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::error::{StoreError, StoreResult};
use crate::sql::{quote_identifier, TableSql, EXPIRY_BUCKET_SHIFT};

#[derive(Debug, Clone)]
pub struct SchemaOptions {
    /// Create or alter the table; when false a missing or outdated table is an error.
    pub create_table: bool,
    /// Lifetime given to migrated rows whose cookie has no expiry, in ms.
    pub default_ttl_ms: i64,
    pub now_ms: i64,
    /// Another store's table to take the live sessions of, once (see `import`).
    pub import: Option<crate::import::ImportSource>,
}

fn table_exists(conn: &Connection, table: &str) -> StoreResult<bool> {
    let found = conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [table],
            |_| Ok(()),
        )
        .optional()?;
    Ok(found.is_some())
}

fn column_names(conn: &Connection, table: &str) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt.query_map([table], |row| row.get::<_, String>(0))?;
    Ok(names.collect::<Result<Vec<_>, _>>()?)
}

/// The columns a table lacks, in the order they are added: the store's own, then the
/// user's extra columns.
fn missing_columns(columns: &[String], sql: &TableSql) -> Vec<String> {
    ["expires", "created", "touched", "user_key", "expiry_bucket"]
        .into_iter()
        .map(str::to_string)
        .chain(sql.extra_columns.iter().map(|c| c.name.clone()))
        .filter(|wanted| !columns.iter().any(|c| c.eq_ignore_ascii_case(wanted)))
        .collect()
}

/// Makes sure the table exists with every column and index the store uses.
pub fn ensure_table(conn: &mut Connection, sql: &TableSql, options: &SchemaOptions) -> StoreResult<()> {
    if let (Some(source), true) = (&options.import, options.create_table) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        crate::import::import(&tx, source, sql, options.now_ms, options.default_ttl_ms, |c| {
            c.execute_batch(&sql.create_table)?;
            // Our table may be one of an earlier version: it gets every column the
            // import writes before the rows go in.
            check_key_columns(c, &sql.table)?;
            add_missing_columns(c, sql, options)
        })?;
        tx.commit()?;
    }
    // A quick look first, so that an up-to-date table costs no write lock at all.
    if table_exists(conn, &sql.table)? && missing_columns(&column_names(conn, &sql.table)?, sql).is_empty() {
        check_key_columns(conn, &sql.table)?;
        return if options.create_table { ensure_indexes(conn, sql) } else { Ok(()) };
    }
    if !options.create_table {
        return Err(StoreError::new(
            "ERR_NO_TABLE",
            format!("table {} does not exist or lacks the store's columns, and createTable is false", quote_identifier(&sql.table)),
        ));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !table_exists(&tx, &sql.table)? {
        tx.execute_batch(&sql.create_table)?;
    } else {
        check_key_columns(&tx, &sql.table)?;
        add_missing_columns(&tx, sql, options)?;
    }
    ensure_indexes(&tx, sql)?;
    tx.commit()?;
    Ok(())
}

fn check_key_columns(conn: &Connection, table: &str) -> StoreResult<()> {
    let columns = column_names(conn, table)?;
    for wanted in ["id", "data"] {
        if !columns.iter().any(|c| c.eq_ignore_ascii_case(wanted)) {
            return Err(StoreError::new(
                "ERR_BAD_TABLE",
                format!("table {} has no {wanted} column, so it is not a sessions table", quote_identifier(table)),
            ));
        }
    }
    Ok(())
}

fn ensure_indexes(conn: &Connection, sql: &TableSql) -> StoreResult<()> {
    conn.execute_batch(&sql.create_expires_index)?;
    conn.execute_batch(&sql.drop_old_expires_indexes)?;
    conn.execute_batch(&sql.create_user_index)?;
    Ok(())
}

fn add_missing_columns(conn: &Connection, sql: &TableSql, options: &SchemaOptions) -> StoreResult<()> {
    let t = quote_identifier(&sql.table);
    for column in missing_columns(&column_names(conn, &sql.table)?, sql) {
        match column.as_str() {
            "expires" => {
                conn.execute_batch(&format!("ALTER TABLE {t} ADD COLUMN expires INTEGER NOT NULL DEFAULT 0"))?;
                // The cookie's own expiry when the row has one (express-session stores it as
                // an ISO string), else the default lifetime from now.
                conn.execute(
                    &format!(
                        "UPDATE {t} SET expires = COALESCE(\
                         CASE WHEN json_valid(data) THEN CAST(ROUND((julianday(json_extract(data, '$.cookie.expires')) \
                         - 2440587.5) * 86400000.0) AS INTEGER) END, ?1 + ?2)"
                    ),
                    [options.now_ms, options.default_ttl_ms],
                )?;
            }
            "created" => {
                conn.execute_batch(&format!("ALTER TABLE {t} ADD COLUMN created INTEGER NOT NULL DEFAULT 0"))?;
                conn.execute(&format!("UPDATE {t} SET created = ?1"), [options.now_ms])?;
            }
            // Zero: the last write is unknown, so the first touch writes.
            "touched" => conn.execute_batch(&format!("ALTER TABLE {t} ADD COLUMN touched INTEGER NOT NULL DEFAULT 0"))?,
            "user_key" => conn.execute_batch(&format!("ALTER TABLE {t} ADD COLUMN user_key TEXT"))?,
            "expiry_bucket" => {
                conn.execute_batch(&format!("ALTER TABLE {t} ADD COLUMN expiry_bucket INTEGER NOT NULL DEFAULT 0"))?;
                conn.execute_batch(&format!("UPDATE {t} SET expiry_bucket = expires >> {EXPIRY_BUCKET_SHIFT}"))?;
            }
            extra => {
                let sql_type = sql.extra_columns.iter().find(|c| c.name == extra).map_or("TEXT", |c| &c.sql_type);
                conn.execute_batch(&format!("ALTER TABLE {t} ADD COLUMN {} {sql_type}", quote_identifier(extra)))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const DAY: i64 = 86_400_000;

    /// The first column of every row of `query`, as text.
    fn texts(conn: &Connection, query: &str) -> Vec<String> {
        let mut stmt = conn.prepare(query).expect("prepare");
        let rows = stmt.query_map([], |r| r.get(0)).expect("query");
        rows.collect::<Result<_, _>>().expect("rows")
    }

    /// The sessions table as the previous version made it: no `expiry_bucket` column.
    fn previous_version_table(name: &str) -> String {
        format!(
            "CREATE TABLE {name} (id TEXT PRIMARY KEY NOT NULL, data TEXT NOT NULL, expires INTEGER NOT NULL, \
             created INTEGER NOT NULL, touched INTEGER NOT NULL, user_key TEXT)"
        )
    }

    fn options() -> SchemaOptions {
        SchemaOptions { create_table: true, default_ttl_ms: DAY, now_ms: NOW, import: None }
    }

    #[test]
    fn creates_table_and_indexes_once() {
        let mut conn = Connection::open_in_memory().expect("open");
        let sql = TableSql::new("Sessions");
        ensure_table(&mut conn, &sql, &options()).expect("first");
        ensure_table(&mut conn, &sql, &options()).expect("second");
        let columns = column_names(&conn, "Sessions").expect("columns");
        assert_eq!(columns, ["id", "data", "expires", "created", "touched", "user_key", "expiry_bucket"]);
        let indexes: i64 = conn
            .query_row("SELECT COUNT(*) FROM sqlite_master WHERE type='index' AND tbl_name='Sessions' AND sql IS NOT NULL", [], |r| r.get(0))
            .expect("indexes");
        assert_eq!(indexes, 2);
    }

    #[test]
    fn replaces_the_plain_expires_index_of_earlier_versions() {
        let mut conn = Connection::open_in_memory().expect("open");
        let sql = TableSql::new("Sessions");
        conn.execute_batch(&sql.create_table).expect("table");
        conn.execute_batch("CREATE INDEX \"Sessions.expires\" ON Sessions (expires)").expect("old index");
        ensure_table(&mut conn, &sql, &options()).expect("open");
        let names = texts(&conn, "SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL ORDER BY name");
        assert_eq!(names, ["Sessions.expiry", "Sessions.user_key"]);
    }

    /// A table of the previous version: no `expiry_bucket` column, an index on
    /// `expires >> 20`. Opening adds and fills the column and swaps the index.
    #[test]
    fn moves_the_expression_index_of_the_previous_version_to_a_column() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(&previous_version_table("Sessions")).expect("previous version");
        conn.execute_batch(
            "CREATE INDEX \"Sessions.expiry_bucket\" ON Sessions ((expires >> 20));
             INSERT INTO Sessions VALUES ('a', '{}', 1800000000000, 0, 0, NULL), ('b', '{}', 1900000000000, 0, 0, 'u');",
        )
        .expect("its index and rows");
        ensure_table(&mut conn, &TableSql::new("Sessions"), &options()).expect("open");
        let buckets: Vec<(i64, i64)> = conn
            .prepare("SELECT expires, expiry_bucket FROM Sessions ORDER BY id")
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(buckets, [(1_800_000_000_000, 1_800_000_000_000 >> EXPIRY_BUCKET_SHIFT), (1_900_000_000_000, 1_900_000_000_000 >> EXPIRY_BUCKET_SHIFT)]);
        let indexes = texts(&conn, "SELECT sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL ORDER BY name");
        assert_eq!(indexes.len(), 2, "{indexes:?}");
        assert!(indexes[0].contains("\"Sessions.expiry\" ON \"Sessions\" (expiry_bucket)"), "{indexes:?}");
    }

    /// importFrom on a file whose own table is of the previous version (no
    /// `expiry_bucket`): the table is brought up to date before the rows are copied.
    #[test]
    fn imports_into_a_table_of_the_previous_version() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch(&previous_version_table("Store")).expect("previous version");
        conn.execute_batch(
            "INSERT INTO Store VALUES ('ours', '{\"cookie\":{}}', 1900000000000, 0, 0, NULL);
             CREATE TABLE sessions (sid varchar(255) PRIMARY KEY, sess json NOT NULL, expired datetime NOT NULL);
             INSERT INTO sessions VALUES ('theirs', '{\"cookie\":{}}', 1800000100000);",
        )
        .expect("previous version and a knex table");
        let source = crate::import::ImportSource::new(crate::import::SourceKind::Knex, None, None);
        ensure_table(&mut conn, &TableSql::new("Store"), &SchemaOptions { import: Some(source), ..options() }).expect("open");
        let rows = texts(&conn, "SELECT id || ' ' || (expiry_bucket = expires >> 20) FROM Store ORDER BY id");
        assert_eq!(rows, ["ours 1", "theirs 1"]);
    }

    #[test]
    fn migrates_an_express_sqlite_table() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE Sessions (id TEXT PRIMARY KEY, data TEXT NOT NULL)").expect("old");
        let later = "2027-01-15T08:00:00.000Z";
        conn.execute(
            "INSERT INTO Sessions VALUES ('with-cookie', ?1), ('no-expiry', '{\"cookie\":{\"expires\":null}}'), ('junk', 'not json')",
            [format!("{{\"cookie\":{{\"expires\":\"{later}\"}},\"user\":1}}")],
        )
        .expect("rows");
        let sql = TableSql::new("Sessions");
        ensure_table(&mut conn, &sql, &options()).expect("migrate");
        let expires = |conn: &Connection, id: &str| -> i64 {
            conn.query_row("SELECT expires FROM Sessions WHERE id = ?1", [id], |r| r.get(0)).expect("row")
        };
        assert_eq!(expires(&conn, "with-cookie"), 1_800_000_000_000); // 2027-01-15T08:00:00Z in ms
        assert_eq!(expires(&conn, "no-expiry"), NOW + DAY);
        assert_eq!(expires(&conn, "junk"), NOW + DAY);
        let created: i64 = conn.query_row("SELECT created FROM Sessions WHERE id='junk'", [], |r| r.get(0)).expect("c");
        assert_eq!(created, NOW);
        // Running again changes nothing.
        ensure_table(&mut conn, &TableSql::new("Sessions"), &SchemaOptions { now_ms: NOW + 5, ..options() }).expect("again");
        assert_eq!(expires(&conn, "no-expiry"), NOW + DAY);
    }

    #[test]
    fn missing_table_without_create_is_an_error_and_writes_nothing() {
        let mut conn = Connection::open_in_memory().expect("open");
        let err = ensure_table(&mut conn, &TableSql::new("nope"), &SchemaOptions { create_table: false, ..options() })
            .unwrap_err();
        assert_eq!(err.code, "ERR_NO_TABLE");
        assert!(err.message.contains("\"nope\""));
        assert!(!table_exists(&conn, "nope").expect("exists"));
    }

    #[test]
    fn foreign_table_is_refused() {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE Sessions (sid TEXT, sess TEXT)").expect("other");
        let err = ensure_table(&mut conn, &TableSql::new("Sessions"), &options()).unwrap_err();
        assert_eq!(err.code, "ERR_BAD_TABLE");
    }
}
