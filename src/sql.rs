//! Every SQL text the store runs, built once per table. The only thing ever spliced
//! into SQL is a table name, and only through `quote_identifier`; all values are bound.

/// Quotes an SQLite identifier: wrapped in double quotes, inner quotes doubled.
/// Any string (spaces, quotes, semicolons, SQL keywords) becomes one identifier.
pub fn quote_identifier(name: &str) -> String {
    let mut quoted = String::with_capacity(name.len() + 2);
    quoted.push('"');
    for ch in name.chars() {
        if ch == '"' {
            quoted.push('"');
        }
        quoted.push(ch);
    }
    quoted.push('"');
    quoted
}

/// A column of the user's own, filled from the session on every set
/// (`extraColumns` / `extendDefaultFields`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraColumn {
    pub name: String,
    /// One of SQLite's type names: TEXT, INTEGER, REAL, NUMERIC, BLOB.
    pub sql_type: String,
}

/// Expiry is indexed by bucket: `expiry_bucket` holds `expires >> 20`, about 17.5
/// minutes of milliseconds. It is a column of its own, not an index on an expression of
/// `expires`: SQLite rewrites an index entry whenever a column it is computed from is
/// set, even to the same key (measured: 94 WAL pages for 64 overwrites against 64
/// without the index). A touch or set moves a session's expiry by seconds or minutes,
/// so it mostly stays in its bucket: the common statements leave `expiry_bucket` alone
/// and apply only while the bucket is unchanged, and a second statement that also sets
/// the bucket runs when they changed nothing.
///
/// Every query compares `expires` itself; the bucket only narrows the range, which is
/// safe as long as no row's bucket is later than its expiry's (`expires <= now` then
/// implies `expiry_bucket <= bucket(now)`). Rows inserted by something that leaves the
/// column at its default (0: an older version of this store, another program) are
/// therefore still found. An older version that updates a row leaves its bucket as it
/// was: if it shortens the expiry by more than a bucket, the row is counted by `length`
/// and left by prune until that bucket passes or this version writes the row again
/// (`get` never returns it). Only while both versions write one file.
pub const EXPIRY_BUCKET_SHIFT: u32 = 20;

pub const BUILT_IN_COLUMNS: [&str; 7] = ["id", "data", "expires", "created", "touched", "user_key", "expiry_bucket"];
pub const COLUMN_TYPES: [&str; 5] = ["TEXT", "INTEGER", "REAL", "NUMERIC", "BLOB"];

/// The statements for one sessions table. Times are epoch milliseconds; `?now` is the
/// caller's clock so that expiry is decided at millisecond precision in one place.
#[derive(Debug, Clone)]
pub struct TableSql {
    pub table: String,
    pub create_table: String,
    pub create_expires_index: String,
    /// The expiry indexes of earlier versions (on `expires`, then on `expires >> 20`),
    /// dropped when a table is opened.
    pub drop_old_expires_indexes: String,
    pub create_user_index: String,
    pub get: String,
    /// Applies unless an existing row's expiry bucket would change; then `upsert_moving_bucket`.
    pub upsert: String,
    pub upsert_moving_bucket: String,
    /// Applies unless the expiry bucket would change; then `touch_moving_bucket`.
    pub touch: String,
    pub touch_moving_bucket: String,
    pub touch_state: String,
    pub destroy: String,
    pub clear: String,
    pub length: String,
    pub ids: String,
    pub all: String,
    /// Every live session with its expiry, for copying sessions to another store.
    pub export: String,
    /// Deletes up to ?2 expired rows, found and deleted by id (any table).
    pub prune_batch: String,
    pub ids_by_user: String,
    pub destroy_by_user: String,
    pub count_expired: String,
    pub extra_columns: Vec<ExtraColumn>,
}

/// `prune_batch` keyed by `key`: `id`, or a name of the rowid (see `TableSql::prune_batch_by_rowid`).
fn prune_batch_by(quoted_table: &str, key: &str) -> String {
    let expired = expired_condition();
    format!("DELETE FROM {quoted_table} WHERE {key} IN (SELECT {key} FROM {quoted_table} WHERE {expired} LIMIT ?2)")
}

/// Expired at ?1 (ms): the bucket narrows the range through the index (see `EXPIRY_BUCKET_SHIFT`).
fn expired_condition() -> String {
    format!("expiry_bucket <= (?1 >> {EXPIRY_BUCKET_SHIFT}) AND expires <= ?1")
}

/// The names SQLite gives the rowid; a column of that name hides it.
pub const ROWID_NAMES: [&str; 3] = ["rowid", "_rowid_", "oid"];

impl TableSql {
    /// `prune_batch` for a rowid table: the rows are found and deleted by rowid, without
    /// a descent of the id index for each. `rowid` must be one of `ROWID_NAMES` that no
    /// column of the table, as it is in the file, is named.
    pub fn prune_batch_by_rowid(&self, rowid: &str) -> String {
        prune_batch_by(&quote_identifier(&self.table), rowid)
    }

    pub fn new(table: &str) -> Self {
        Self::with_extra_columns(table, &[])
    }

    /// `extra` must already be valid (see `check_extra_columns`).
    pub fn with_extra_columns(table: &str, extra: &[ExtraColumn]) -> Self {
        let t = quote_identifier(table);
        let extra_defs: String =
            extra.iter().map(|c| format!(", {} {}", quote_identifier(&c.name), c.sql_type)).collect();
        let extra_names: String = extra.iter().map(|c| format!(", {}", quote_identifier(&c.name))).collect();
        let extra_params: String = (0..extra.len()).map(|i| format!(", ?{}", i + 7)).collect();
        let extra_updates: String =
            extra.iter().map(|c| format!(", {0} = excluded.{0}", quote_identifier(&c.name))).collect();
        let old_expires_indexes = [format!("{table}.expires"), format!("{table}.expiry_bucket")];
        let expires_index = quote_identifier(&format!("{table}.expiry"));
        let expired = expired_condition();
        let expired_count = format!("SELECT COUNT(*) FROM {t} WHERE {expired}");
        let user_index = quote_identifier(&format!("{table}.user_key"));
        // An expired row that is set again starts a new life: its creation time resets.
        // ?3 is the cookie expiry, ?5 the absolute lifetime in ms (capped by created + ?5).
        let set_created = "CASE WHEN expires <= ?4 THEN ?4 ELSE created END";
        let set_expires = format!("MIN(?3, {set_created} + ?5)");
        let upsert = |on_update: &str| {
            format!(
                "INSERT INTO {t} (id, data, expires, created, touched, user_key, expiry_bucket{extra_names}) \
                 VALUES (?1, ?2, MIN(?3, ?4 + ?5), ?4, ?4, ?6, MIN(?3, ?4 + ?5) >> {EXPIRY_BUCKET_SHIFT}{extra_params}) \
                 ON CONFLICT (id) DO UPDATE SET \
                 data = excluded.data, \
                 created = {set_created}, \
                 expires = {set_expires}, \
                 touched = ?4, \
                 user_key = excluded.user_key{extra_updates}{on_update}"
            )
        };
        let touch_expires = "MIN(?2, created + ?4)";
        let touch = |also_set: &str, also_where: &str| {
            format!("UPDATE {t} SET expires = {touch_expires}, touched = ?3{also_set} WHERE id = ?1 AND expires > ?3{also_where}")
        };
        TableSql {
            table: table.to_string(),
            // A rowid table, not WITHOUT ROWID: sessions are ~0.5 KB, seven to a page,
            // and a new random id then lands in the middle of full leaf pages and splits
            // them (an insert measured 43 µs a row in a group commit, against 15 µs when
            // rows append to the rowid tree and only the small id index takes the random
            // insert). A get pays one more b-tree step, ~0.2 µs. Tables made WITHOUT ROWID
            // by earlier versions keep working: every statement reads the same on both.
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 id TEXT PRIMARY KEY NOT NULL, \
                 data TEXT NOT NULL, \
                 expires INTEGER NOT NULL, \
                 created INTEGER NOT NULL, \
                 touched INTEGER NOT NULL, \
                 user_key TEXT, \
                 expiry_bucket INTEGER NOT NULL DEFAULT 0{extra_defs})"
            ),
            create_expires_index: format!("CREATE INDEX IF NOT EXISTS {expires_index} ON {t} (expiry_bucket)"),
            drop_old_expires_indexes: old_expires_indexes
                .iter()
                .map(|name| format!("DROP INDEX IF EXISTS {};", quote_identifier(name)))
                .collect(),
            // Partial: sessions without a user cost nothing in this index.
            create_user_index: format!(
                "CREATE INDEX IF NOT EXISTS {user_index} ON {t} (user_key) WHERE user_key IS NOT NULL"
            ),
            get: format!("SELECT data, expires FROM {t} WHERE id = ?1 AND expires > ?2"),
            upsert: upsert(&format!(" WHERE expiry_bucket = {set_expires} >> {EXPIRY_BUCKET_SHIFT}")),
            upsert_moving_bucket: upsert(&format!(", expiry_bucket = {set_expires} >> {EXPIRY_BUCKET_SHIFT}")),
            touch: touch("", &format!(" AND expiry_bucket = {touch_expires} >> {EXPIRY_BUCKET_SHIFT}")),
            touch_moving_bucket: touch(&format!(", expiry_bucket = {touch_expires} >> {EXPIRY_BUCKET_SHIFT}"), ""),
            touch_state: format!("SELECT touched FROM {t} WHERE id = ?1 AND expires > ?2"),
            destroy: format!("DELETE FROM {t} WHERE id = ?1"),
            clear: format!("DELETE FROM {t}"),
            // All rows (SQLite counts them from b-tree page headers without reading
            // the rows) minus the expired ones, found through the bucket index. Expired
            // rows are few (pruning removes them), so this reads far less than counting
            // the live rows one by one.
            length: format!("SELECT (SELECT COUNT(*) FROM {t}) - ({expired_count})"),
            ids: format!("SELECT id FROM {t} WHERE expires > ?1 ORDER BY id"),
            all: format!("SELECT id, data FROM {t} WHERE expires > ?1 ORDER BY id"),
            export: format!("SELECT id, data, expires FROM {t} WHERE expires > ?1 ORDER BY id"),
            prune_batch: prune_batch_by(&t, "id"),
            ids_by_user: format!("SELECT id FROM {t} WHERE user_key = ?1 AND expires > ?2 ORDER BY id"),
            destroy_by_user: format!("DELETE FROM {t} WHERE user_key = ?1 AND expires > ?2 AND id IS NOT ?3"),
            count_expired: expired_count,
            extra_columns: extra.to_vec(),
        }
    }
}

/// Extra columns must have unique, non-empty names that are not the store's own, and
/// one of SQLite's type names.
pub fn check_extra_columns(extra: &[ExtraColumn]) -> Result<(), String> {
    for (i, column) in extra.iter().enumerate() {
        if column.name.is_empty() || column.name.contains('\0') {
            return Err("extra column names must be non-empty and without NUL".into());
        }
        if BUILT_IN_COLUMNS.iter().any(|b| b.eq_ignore_ascii_case(&column.name)) {
            return Err(format!("extra column {:?} is one of the store's own columns", column.name));
        }
        if extra[..i].iter().any(|c| c.name.eq_ignore_ascii_case(&column.name)) {
            return Err(format!("extra column {:?} is declared twice", column.name));
        }
        if !COLUMN_TYPES.contains(&column.sql_type.as_str()) {
            return Err(format!(
                "extra column {:?} has type {:?}; use one of {:?}",
                column.name, column.sql_type, COLUMN_TYPES
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_identifiers() {
        assert_eq!(quote_identifier("Sessions"), "\"Sessions\"");
        assert_eq!(quote_identifier("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_identifier("x\"; DROP TABLE y; --"), "\"x\"\"; DROP TABLE y; --\"");
    }

    /// The bucketed queries against plain comparisons, at and around bucket edges.
    #[test]
    fn bucketed_expiry_counts_exactly_and_uses_the_index() {
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        let sql = TableSql::new("S");
        conn.execute_batch(&sql.create_table).expect("create");
        conn.execute_batch(&sql.create_expires_index).expect("index");
        let bucket: i64 = 1 << EXPIRY_BUCKET_SHIFT;
        let base = 1_800_000_000_000 / bucket * bucket;
        let mut expiries = Vec::new();
        for k in -3..=3i64 {
            for offset in [-2, -1, 0, 1, 2, bucket / 2] {
                expiries.push(base + k * bucket + offset);
            }
        }
        // Each expiry twice: with its bucket, as this store writes it, and with the
        // column's default, as an older version of the store or another program leaves it.
        for (i, expires) in expiries.iter().enumerate() {
            conn.execute(
                "INSERT INTO S (id, data, expires, created, touched, expiry_bucket) VALUES (?1, '{}', ?2, 0, 0, ?2 >> ?3)",
                rusqlite::params![format!("s{i}"), expires, EXPIRY_BUCKET_SHIFT],
            )
            .expect("insert");
            conn.execute(
                "INSERT INTO S (id, data, expires, created, touched) VALUES (?1, '{}', ?2, 0, 0)",
                rusqlite::params![format!("default-bucket-{i}"), expires],
            )
            .expect("insert");
        }
        let count = |text: &str, now: i64| conn.query_row(text, [now], |r| r.get::<_, i64>(0)).expect("count");
        for now in expiries.iter().flat_map(|e| [e - 1, *e, e + 1]) {
            let live = 2 * expiries.iter().filter(|e| **e > now).count() as i64;
            assert_eq!(count(&sql.length, now), live, "length at {now}");
            assert_eq!(count(&sql.count_expired, now), 2 * expiries.len() as i64 - live, "expired at {now}");
        }
        let plan = |text: &str| -> String {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {text}")).expect("plan");
            let rows = stmt.query_map([0i64, 1], |r| r.get::<_, String>(3)).expect("rows");
            rows.map(|r| r.expect("row")).collect::<Vec<_>>().join("; ")
        };
        assert!(plan(&sql.prune_batch).contains("expiry_bucket"), "prune uses the index: {}", plan(&sql.prune_batch));
        let now = base + 2;
        conn.execute(&sql.prune_batch, rusqlite::params![now, 1000]).expect("prune");
        assert_eq!(count("SELECT COUNT(*) FROM S WHERE expires <= ?1", now), 0);
        assert_eq!(
            count("SELECT COUNT(*) FROM S WHERE expires > ?1", now),
            2 * expiries.iter().filter(|e| **e > now).count() as i64
        );
    }

    #[test]
    fn hostile_table_names_are_one_identifier() {
        let conn = rusqlite::Connection::open_in_memory().expect("open");
        conn.execute("CREATE TABLE victim (x)", []).expect("victim");
        for name in ["x\"; DROP TABLE victim; --", "with space", "select", "'single'", "\"", "ü ☃ 表"] {
            let sql = TableSql::new(name);
            conn.execute(&sql.create_table, []).expect("create");
            conn.execute(&sql.create_expires_index, []).expect("index");
            conn.execute(&sql.create_user_index, []).expect("user index");
            let exists: i64 = conn
                .query_row("SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name=?1", [name], |r| r.get(0))
                .expect("lookup");
            assert_eq!(exists, 1, "table {name:?} exists under its exact name");
        }
        let victim: i64 =
            conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name='victim'", [], |r| r.get(0)).expect("lookup");
        assert_eq!(victim, 1);
    }
}
