//! What each job sends to rqlite and how its reply becomes an outcome. The SQL is the
//! local engine's (`sql::TableSql`), so both engines keep the same schema. Every value
//! a statement depends on, the clock included, is a bound parameter: rqlite replicates
//! statements, and a statement that read the clock would give each node its own answer.

use serde_json::Value;

use super::client::{Reply, Statement};
use crate::error::{StoreError, StoreResult};
use crate::ops::{Op, Outcome, Table};

fn statement(sql: &str, params: Vec<Value>) -> Statement {
    let mut statement = Vec::with_capacity(params.len() + 1);
    statement.push(Value::from(sql));
    statement.extend(params);
    statement
}

fn sql_value(value: &rusqlite::types::Value) -> Value {
    use rusqlite::types::Value as V;
    match value {
        V::Null => Value::Null,
        V::Integer(n) => Value::from(*n),
        V::Real(x) => Value::from(*x),
        V::Text(text) => Value::from(text.as_str()),
        // JS never sends bytes for an extra column.
        V::Blob(_) => Value::Null,
    }
}

/// The statement of one job at `now`. Sets and touches always write the expiry bucket
/// (the local engine's second statement): the single-statement form keeps a job one
/// statement, and saving a rewritten index entry matters little behind a network hop.
pub fn for_job(table: &Table, op: &Op, now: i64) -> StoreResult<Statement> {
    let sql = &table.sql;
    let lifetime = table.max_lifetime_ms;
    Ok(match op {
        Op::Set { sid, data, expires, user_key, extras } => {
            if extras.len() != sql.extra_columns.len() {
                return Err(StoreError::new("ERR_INTERNAL", "wrong number of extra column values"));
            }
            let mut params =
                vec![sid.as_str().into(), data.as_str().into(), (*expires).into(), now.into(), lifetime.into()];
            params.push(user_key.as_deref().map_or(Value::Null, Value::from));
            params.extend(extras.iter().map(sql_value));
            statement(&sql.upsert_moving_bucket, params)
        }
        Op::Touch { sid, expires } => statement(
            &sql.touch_moving_bucket,
            vec![sid.as_str().into(), (*expires).into(), now.into(), lifetime.into()],
        ),
        Op::Destroy { sid } => statement(&sql.destroy, vec![sid.as_str().into()]),
        Op::Clear => statement(&sql.clear, vec![]),
        Op::Length => statement(&sql.length, vec![now.into()]),
        Op::Ids => statement(&sql.ids, vec![now.into()]),
        Op::All => statement(&sql.all, vec![now.into()]),
        Op::IdsByUser { key } => statement(&sql.ids_by_user, vec![key.as_str().into(), now.into()]),
        Op::DestroyByUser { key, except } => statement(
            &sql.destroy_by_user,
            vec![key.as_str().into(), now.into(), except.as_deref().map_or(Value::Null, Value::from)],
        ),
        Op::Prune { limit } => statement(&sql.prune_batch, vec![now.into(), (*limit).into()]),
        Op::CountExpired => statement(&sql.count_expired, vec![now.into()]),
        Op::Get { sid } => statement(&sql.get, vec![sid.as_str().into(), now.into()]),
        Op::LastWrite { sid } => statement(&sql.touch_state, vec![sid.as_str().into(), now.into()]),
        Op::Export => statement(&sql.export, vec![now.into()]),
    })
}

/// One statement for the gets of several sessions of one table: the live ones among
/// `ids`, with their data and expiry (`sessions` reads the reply).
pub fn for_gets(table: &Table, ids: &[String], now: i64) -> Statement {
    let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("?{}", i + 2)).collect();
    let sql = format!(
        "SELECT id, data, expires FROM {} WHERE expires > ?1 AND id IN ({})",
        crate::sql::quote_identifier(&table.sql.table),
        placeholders.join(", ")
    );
    let mut params = Vec::with_capacity(ids.len() + 1);
    params.push(Value::from(now));
    params.extend(ids.iter().map(|id| Value::from(id.as_str())));
    statement(&sql, params)
}

/// Live sessions by id: data and stored expiry.
pub type Sessions = std::collections::HashMap<String, (String, i64)>;

/// The reply to a `for_gets` statement.
pub fn sessions(reply: Reply) -> StoreResult<Sessions> {
    let rows = match reply {
        Reply::Failed(message) => return Err(sql_error(&message)),
        Reply::Changed(_) => Vec::new(),
        Reply::Rows(rows) => rows,
    };
    rows.iter()
        .map(|row| match row.as_slice() {
            [id, data, expires, ..] => match (id.as_str(), data.as_str(), expires.as_i64()) {
                (Some(id), Some(data), Some(expires)) => Ok((id.to_owned(), (data.to_owned(), expires))),
                _ => Err(unexpected()),
            },
            _ => Err(unexpected()),
        })
        .collect()
}

/// The outcome of a job from its statement's reply.
pub fn outcome(op: &Op, reply: Reply) -> StoreResult<Outcome> {
    let rows = match reply {
        Reply::Failed(message) => return Err(sql_error(&message)),
        Reply::Changed(n) if op.writes() => return Ok(Outcome::Count(n)),
        Reply::Changed(_) => Vec::new(),
        Reply::Rows(rows) => rows,
    };
    let text = |value: &Value| value.as_str().map(str::to_owned).ok_or_else(unexpected);
    let number = |value: &Value| value.as_i64().ok_or_else(unexpected);
    let first = rows.first();
    Ok(match op {
        Op::Get { .. } => match first.map(Vec::as_slice) {
            Some([data, expires, ..]) => Outcome::Entry(text(data)?, number(expires)?),
            _ => Outcome::Missing,
        },
        Op::LastWrite { .. } => match first.and_then(|row| row.first()) {
            Some(touched) => Outcome::Count(number(touched)?),
            None => Outcome::Missing,
        },
        Op::Length | Op::CountExpired => Outcome::Count(first.and_then(|row| row.first()).map_or(Ok(0), number)?),
        Op::Ids | Op::IdsByUser { .. } => Outcome::Strings(
            rows.iter().map(|row| row.first().map_or_else(|| Err(unexpected()), text)).collect::<StoreResult<_>>()?,
        ),
        Op::Export => {
            let mut strings = Vec::with_capacity(rows.len() * 3);
            for row in &rows {
                let [id, data, expires, ..] = row.as_slice() else { return Err(unexpected()) };
                strings.extend([text(id)?, text(data)?, number(expires)?.to_string()]);
            }
            Outcome::Strings(strings)
        }
        Op::All => {
            let mut strings = Vec::with_capacity(rows.len() * 2);
            for row in &rows {
                let [id, data, ..] = row.as_slice() else { return Err(unexpected()) };
                strings.push(text(id)?);
                strings.push(text(data)?);
            }
            Outcome::Strings(strings)
        }
        _ => Outcome::Count(0),
    })
}

fn unexpected() -> StoreError {
    StoreError::new("ERR_CLUSTER_REPLY", "rqlite answered with values of an unexpected type")
}

/// A failed statement as SQLite would have reported it (rqlite passes SQLite's message on).
pub fn sql_error(message: &str) -> StoreError {
    let code = if message.contains("constraint failed") { "SQLITE_CONSTRAINT" } else { "SQLITE_ERROR" };
    StoreError::new(code, format!("rqlite: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_a_parameter_and_the_clock_is_one_of_them() {
        let table = Table::new("Sessions", None);
        let set = Op::Set { sid: "s".into(), data: "{}".into(), expires: 99, user_key: None, extras: vec![] };
        let statement = for_job(&table, &set, 42).expect("statement");
        assert_eq!(
            statement[1..],
            [
                Value::from("s"),
                Value::from("{}"),
                Value::from(99),
                Value::from(42),
                Value::from(crate::ops::NO_LIFETIME_LIMIT_MS),
                Value::Null
            ]
        );
        let sql = statement[0].as_str().expect("sql");
        assert!(!sql.to_ascii_lowercase().contains("now") && !sql.contains("random"), "{sql}");
    }

    #[test]
    fn the_gets_of_a_round_are_one_statement_and_their_reply_is_read_by_id() {
        let table = Table::new("Sessions", None);
        let ids = vec!["a".to_string(), "b".to_string(), "a".to_string()];
        let statement = for_gets(&table, &ids, 42);
        assert_eq!(
            statement[0],
            Value::from("SELECT id, data, expires FROM \"Sessions\" WHERE expires > ?1 AND id IN (?2, ?3, ?4)")
        );
        assert_eq!(statement[1..], [Value::from(42), Value::from("a"), Value::from("b"), Value::from("a")]);
        let reply = Reply::Rows(vec![vec![Value::from("b"), Value::from("{}"), Value::from(99)]]);
        let found = sessions(reply).expect("read");
        assert_eq!(found.get("b"), Some(&("{}".to_string(), 99)));
        assert_eq!(found.get("a"), None);
        assert_eq!(sessions(Reply::Failed("no such table: Sessions".into())).unwrap_err().code, "SQLITE_ERROR");
    }

    #[test]
    fn replies_become_the_outcomes_of_their_ops() {
        let get = Op::Get { sid: "s".into() };
        let row = Reply::Rows(vec![vec![Value::from("{}"), Value::from(5)]]);
        assert_eq!(outcome(&get, row).expect("hit"), Outcome::Entry("{}".into(), 5));
        assert_eq!(outcome(&get, Reply::Rows(vec![])).expect("miss"), Outcome::Missing);
        let all = Reply::Rows(vec![vec![Value::from("a"), Value::from("1")], vec![Value::from("b"), Value::from("2")]]);
        assert_eq!(
            outcome(&Op::All, all).expect("all"),
            Outcome::Strings(vec!["a".into(), "1".into(), "b".into(), "2".into()])
        );
        assert_eq!(outcome(&Op::Destroy { sid: "s".into() }, Reply::Changed(1)).expect("destroy"), Outcome::Count(1));
        assert_eq!(
            outcome(&Op::Clear, Reply::Failed("UNIQUE constraint failed: t.id".into())).unwrap_err().code,
            "SQLITE_CONSTRAINT"
        );
        assert_eq!(
            outcome(&get, Reply::Rows(vec![vec![Value::from(1), Value::from(5)]])).unwrap_err().code,
            "ERR_CLUSTER_REPLY"
        );
    }
}
