//! Creating the sessions table, and bringing older tables up to date through an ordered
//! list of migrations (`MIGRATIONS`): a table made by `express-sqlite` (only `id` and
//! `data`) gains the expiry, creation, last-write and user columns, filled from what its
//! rows already say, then the expiry bucket. Safe to run twice and from two processes at
//! once: the work happens in an immediate transaction that re-reads what it finds.
//!
//! Each table's layout version is recorded in `express_sqlite_native_schema`, one row
//! per table, not in `PRAGMA user_version`: the file may be the application's own
//! database (a better-sqlite3 handle passed in), whose `user_version` is the
//! application's. A table recorded at a newer version than this build knows is refused
//! (`ERR_SCHEMA_TOO_NEW`) rather than written in a layout this build does not know.
//! A table without a record (made by `express-sqlite`, by versions before the record
//! existed, or by the import of another store) is placed by its columns, once, and
//! recorded when it is brought up to date.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use crate::error::{StoreError, StoreResult};
use crate::sql::{quote_identifier, TableSql, EXPIRY_BUCKET_SHIFT};

/// The layout this build writes: the version of the last entry of `MIGRATIONS`.
pub const SCHEMA_VERSION: i64 = 2;

/// Where each sessions table's layout version is recorded (see the module comment).
pub const VERSION_TABLE: &str = "express_sqlite_native_schema";

/// A step from the version before it to its own; each adds only what is missing, so
/// that a table half-way between two versions (no record) is still brought up right.
type Migration = fn(&Connection, &TableSql, &SchemaOptions) -> StoreResult<()>;

/// In order. 1: `expires`, `created`, `touched`, `user_key` (the first layout of this
/// store). 2: `expiry_bucket`, which the expiry index is on.
const MIGRATIONS: [(i64, Migration); 2] = [(1, add_store_columns), (2, add_expiry_bucket)];

/// The columns each version added, for placing a table that has no record.
const STORE_COLUMNS: [&str; 4] = ["expires", "created", "touched", "user_key"];
const BUCKET_COLUMN: &str = "expiry_bucket";

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
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |_| Ok(()))
        .optional()?;
    Ok(found.is_some())
}

fn column_names(conn: &Connection, table: &str) -> StoreResult<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt.query_map([table], |row| row.get::<_, String>(0))?;
    Ok(names.collect::<Result<Vec<_>, _>>()?)
}

fn has_column(columns: &[String], wanted: &str) -> bool {
    columns.iter().any(|c| c.eq_ignore_ascii_case(wanted))
}

/// The user's extra columns the table lacks.
fn missing_extra_columns<'a>(columns: &[String], sql: &'a TableSql) -> Vec<&'a crate::sql::ExtraColumn> {
    sql.extra_columns.iter().filter(|c| !has_column(columns, &c.name)).collect()
}

/// The recorded layout version of an existing table, or (no record) the version its
/// columns show.
fn table_version(conn: &Connection, table: &str) -> StoreResult<i64> {
    if table_exists(conn, VERSION_TABLE)? {
        let recorded = conn
            .query_row(&format!("SELECT version FROM {VERSION_TABLE} WHERE name = ?1"), [table], |row| row.get(0))
            .optional()?;
        if let Some(version) = recorded {
            return Ok(version);
        }
    }
    let columns = column_names(conn, table)?;
    Ok(match (STORE_COLUMNS.iter().all(|c| has_column(&columns, c)), has_column(&columns, BUCKET_COLUMN)) {
        (true, true) => 2,
        (true, false) => 1,
        _ => 0,
    })
}

fn is_recorded(conn: &Connection, table: &str) -> StoreResult<bool> {
    if !table_exists(conn, VERSION_TABLE)? {
        return Ok(false);
    }
    let found =
        conn.query_row(&format!("SELECT 1 FROM {VERSION_TABLE} WHERE name = ?1"), [table], |_| Ok(())).optional()?;
    Ok(found.is_some())
}

fn record_version(conn: &Connection, table: &str) -> StoreResult<()> {
    // NOCASE: SQLite's table names ignore ASCII case, so 'Sessions' and 'SESSIONS' are one table.
    conn.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (name TEXT PRIMARY KEY COLLATE NOCASE, version INTEGER NOT NULL)"
    ))?;
    conn.execute(
        &format!(
            "INSERT INTO {VERSION_TABLE} (name, version) VALUES (?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET version = excluded.version"
        ),
        rusqlite::params![table, SCHEMA_VERSION],
    )?;
    Ok(())
}

fn refuse_newer(table: &str, version: i64) -> StoreResult<()> {
    if version <= SCHEMA_VERSION {
        return Ok(());
    }
    Err(StoreError::new(
        "ERR_SCHEMA_TOO_NEW",
        format!(
            "table {} was set up by a newer version of express-sqlite-native (table layout {version}; this \
             version knows up to {SCHEMA_VERSION}): upgrade express-sqlite-native, or use another table",
            quote_identifier(table)
        ),
    ))
}

/// Makes sure the table exists with every column and index the store uses, at
/// `SCHEMA_VERSION`, and records that version.
pub fn ensure_table(conn: &mut Connection, sql: &TableSql, options: &SchemaOptions) -> StoreResult<()> {
    if table_exists(conn, &sql.table)? {
        refuse_newer(&sql.table, table_version(conn, &sql.table)?)?;
    }
    if let (Some(source), true) = (&options.import, options.create_table) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        crate::import::import(&tx, source, sql, options.now_ms, options.default_ttl_ms, |c| {
            // Our table may be one of an earlier version: it gets every column the
            // import writes before the rows go in.
            bring_up_to_date(c, sql, options)
        })?;
        tx.commit()?;
    }
    // A quick look first, so that an up-to-date table costs no write lock at all.
    if table_exists(conn, &sql.table)?
        && table_version(conn, &sql.table)? == SCHEMA_VERSION
        && missing_extra_columns(&column_names(conn, &sql.table)?, sql).is_empty()
        && (!options.create_table || is_recorded(conn, &sql.table)?)
    {
        check_key_columns(conn, &sql.table)?;
        return if options.create_table { ensure_indexes(conn, sql) } else { Ok(()) };
    }
    if !options.create_table {
        return Err(StoreError::new(
            "ERR_NO_TABLE",
            format!(
                "table {} does not exist or lacks the store's columns, and createTable is false",
                quote_identifier(&sql.table)
            ),
        ));
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    bring_up_to_date(&tx, sql, options)?;
    tx.commit()?;
    Ok(())
}

/// Creates the table, or runs the migrations it has not had (read again here, inside
/// the caller's write transaction, in case another process did them meanwhile); then
/// the user's extra columns and the indexes; then records the version.
fn bring_up_to_date(conn: &Connection, sql: &TableSql, options: &SchemaOptions) -> StoreResult<()> {
    if !table_exists(conn, &sql.table)? {
        conn.execute_batch(&sql.create_table)?;
    } else {
        check_key_columns(conn, &sql.table)?;
        let version = table_version(conn, &sql.table)?;
        refuse_newer(&sql.table, version)?;
        for (_, migrate) in MIGRATIONS.iter().filter(|(to, _)| *to > version) {
            migrate(conn, sql, options)?;
        }
        add_extra_columns(conn, sql)?;
    }
    ensure_indexes(conn, sql)?;
    record_version(conn, &sql.table)
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

/// Migration 1: the columns of this store's first layout, those still missing.
fn add_store_columns(conn: &Connection, sql: &TableSql, options: &SchemaOptions) -> StoreResult<()> {
    let t = quote_identifier(&sql.table);
    let columns = column_names(conn, &sql.table)?;
    for column in STORE_COLUMNS.into_iter().filter(|c| !has_column(&columns, c)) {
        match column {
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
            "touched" => {
                conn.execute_batch(&format!("ALTER TABLE {t} ADD COLUMN touched INTEGER NOT NULL DEFAULT 0"))?
            }
            _ => conn.execute_batch(&format!("ALTER TABLE {t} ADD COLUMN user_key TEXT"))?,
        }
    }
    Ok(())
}

/// Migration 2: the expiry bucket the expiry index is on (see `sql::EXPIRY_BUCKET_SHIFT`).
fn add_expiry_bucket(conn: &Connection, sql: &TableSql, _: &SchemaOptions) -> StoreResult<()> {
    if has_column(&column_names(conn, &sql.table)?, BUCKET_COLUMN) {
        return Ok(());
    }
    let t = quote_identifier(&sql.table);
    conn.execute_batch(&format!("ALTER TABLE {t} ADD COLUMN {BUCKET_COLUMN} INTEGER NOT NULL DEFAULT 0"))?;
    conn.execute_batch(&format!("UPDATE {t} SET {BUCKET_COLUMN} = expires >> {EXPIRY_BUCKET_SHIFT}"))?;
    Ok(())
}

/// The user's extra columns (not part of the versioned layout: they follow the options).
fn add_extra_columns(conn: &Connection, sql: &TableSql) -> StoreResult<()> {
    let t = quote_identifier(&sql.table);
    for column in missing_extra_columns(&column_names(conn, &sql.table)?, sql) {
        conn.execute_batch(&format!(
            "ALTER TABLE {t} ADD COLUMN {} {}",
            quote_identifier(&column.name),
            column.sql_type
        ))?;
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
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type='index' AND tbl_name='Sessions' AND sql IS NOT NULL",
                [],
                |r| r.get(0),
            )
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
        assert_eq!(
            buckets,
            [
                (1_800_000_000_000, 1_800_000_000_000 >> EXPIRY_BUCKET_SHIFT),
                (1_900_000_000_000, 1_900_000_000_000 >> EXPIRY_BUCKET_SHIFT)
            ]
        );
        let indexes =
            texts(&conn, "SELECT sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL ORDER BY name");
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
        ensure_table(&mut conn, &TableSql::new("Store"), &SchemaOptions { import: Some(source), ..options() })
            .expect("open");
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
        ensure_table(&mut conn, &TableSql::new("Sessions"), &SchemaOptions { now_ms: NOW + 5, ..options() })
            .expect("again");
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

    fn recorded(conn: &Connection, table: &str) -> Option<i64> {
        conn.query_row(&format!("SELECT version FROM {VERSION_TABLE} WHERE name = ?1"), [table], |r| r.get(0))
            .optional()
            .expect("version")
    }

    #[test]
    fn records_the_version_of_new_and_migrated_tables_and_reads_it_back_without_a_write() {
        let mut conn = Connection::open_in_memory().expect("open");
        ensure_table(&mut conn, &TableSql::new("Fresh"), &options()).expect("new");
        assert_eq!(recorded(&conn, "Fresh"), Some(SCHEMA_VERSION));
        // A table of the first layout (no record): migrated to the current one, recorded.
        conn.execute_batch(&previous_version_table("Older")).expect("older");
        assert_eq!(table_version(&conn, "Older").expect("placed"), 1);
        ensure_table(&mut conn, &TableSql::new("Older"), &options()).expect("migrate");
        assert_eq!(recorded(&conn, "Older"), Some(SCHEMA_VERSION));
        assert!(column_names(&conn, "Older").expect("columns").contains(&BUCKET_COLUMN.to_string()));
        // Up to date and recorded: opening again writes nothing.
        let changes_before = conn.total_changes();
        ensure_table(&mut conn, &TableSql::new("Older"), &options()).expect("again");
        assert_eq!(conn.total_changes(), changes_before, "nothing written");
        // Names ignore ASCII case, as SQLite's do: one table, one record.
        ensure_table(&mut conn, &TableSql::new("OLDER"), &options()).expect("same table");
        let rows: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM {VERSION_TABLE}"), [], |r| r.get(0)).expect("n");
        assert_eq!(rows, 2);
    }

    #[test]
    fn a_table_of_a_newer_version_is_refused_and_left_alone() {
        let mut conn = Connection::open_in_memory().expect("open");
        let sql = TableSql::new("Sessions");
        ensure_table(&mut conn, &sql, &options()).expect("new");
        conn.execute(&format!("UPDATE {VERSION_TABLE} SET version = ?1"), [SCHEMA_VERSION + 1]).expect("newer");
        conn.execute_batch("ALTER TABLE Sessions ADD COLUMN from_the_future TEXT").expect("future column");
        for create_table in [true, false] {
            let err = ensure_table(&mut conn, &sql, &SchemaOptions { create_table, ..options() }).unwrap_err();
            assert_eq!(err.code, "ERR_SCHEMA_TOO_NEW");
            assert!(err.message.contains(&format!("layout {}", SCHEMA_VERSION + 1)), "{}", err.message);
        }
        assert_eq!(recorded(&conn, "Sessions"), Some(SCHEMA_VERSION + 1), "the record is not rolled back");
    }

    #[test]
    fn migrations_are_in_order_and_end_at_the_current_version() {
        let versions: Vec<i64> = MIGRATIONS.iter().map(|(v, _)| *v).collect();
        assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    }
}
