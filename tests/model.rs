//! Property test of the core against a model: arbitrary table names, session ids, data
//! and operation sequences, run on real SQLite and on a plain map with the same rules.
//! No panic, and no divergence, is allowed. Run by `cargo test` (bounded case count).

use std::collections::BTreeMap;
use std::sync::Arc;

use express_sqlite_native::ops::{self, Op, Outcome, Table};
use express_sqlite_native::schema::{ensure_table, SchemaOptions};
use proptest::prelude::*;
use rusqlite::Connection;

#[derive(Debug, Clone)]
enum Step {
    Set { sid: usize, data: String, ttl: i64 },
    Touch { sid: usize, ttl: i64 },
    Destroy { sid: usize },
    Get { sid: usize },
    Length,
    Ids,
    All,
    Clear,
    Prune,
    Advance { ms: i64 },
}

fn any_text() -> impl Strategy<Value = String> {
    // Any Unicode scalar values, NUL included.
    proptest::collection::vec(any::<char>(), 0..12).prop_map(|chars| chars.into_iter().collect())
}

fn step(sids: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..sids, any_text(), -50i64..500).prop_map(|(sid, data, ttl)| Step::Set { sid, data, ttl }),
        2 => (0..sids, -50i64..500).prop_map(|(sid, ttl)| Step::Touch { sid, ttl }),
        1 => (0..sids).prop_map(|sid| Step::Destroy { sid }),
        3 => (0..sids).prop_map(|sid| Step::Get { sid }),
        1 => Just(Step::Length),
        1 => Just(Step::Ids),
        1 => Just(Step::All),
        1 => Just(Step::Clear),
        1 => Just(Step::Prune),
        2 => (1i64..200).prop_map(|ms| Step::Advance { ms }),
    ]
}

/// The rules the store promises, as plainly as they can be written.
#[derive(Default)]
struct Model {
    rows: BTreeMap<String, (String, i64)>,
}

impl Model {
    fn live(&self, now: i64) -> impl Iterator<Item = (&String, &(String, i64))> {
        self.rows.iter().filter(move |(_, (_, expires))| *expires > now)
    }
}

fn table_name() -> impl Strategy<Value = String> {
    any_text().prop_filter("SQLite reserves sqlite_ names; empty names are refused in JS", |name| {
        !name.is_empty() && !name.to_ascii_lowercase().starts_with("sqlite_") && !name.contains('\0')
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn core_matches_the_model(
        name in table_name(),
        sids in proptest::collection::vec(any_text().prop_filter("non-empty", |s| !s.is_empty()), 1..6),
        steps in proptest::collection::vec(step(6), 1..60),
    ) {
        let mut conn = Connection::open_in_memory().expect("open");
        let table = Arc::new(Table::new(&name, None));
        // Just before the edge of an expiry bucket (see sql::EXPIRY_BUCKET_SHIFT), so that
        // expiries and the clock cross it: the bucketed queries must not care.
        let bucket = 1i64 << express_sqlite_native::sql::EXPIRY_BUCKET_SHIFT;
        let mut now = (1_800_000_000_000i64 / bucket + 1) * bucket - 250;
        ensure_table(&mut conn, &table.sql, &SchemaOptions { create_table: true, default_ttl_ms: 1000, now_ms: now, import: None })
            .expect("schema");
        let mut model = Model::default();
        for step in steps {
            let sid_of = |i: usize| sids[i % sids.len()].clone();
            match step {
                Step::Set { sid, data, ttl } => {
                    let sid = sid_of(sid);
                    let op = Op::Set { sid: sid.clone(), data: data.clone(), expires: now + ttl, user_key: None, extras: vec![] };
                    prop_assert_eq!(ops::run(&conn, &table, &op, now).expect("set"), Outcome::Count(1));
                    model.rows.insert(sid, (data, now + ttl));
                }
                Step::Touch { sid, ttl } => {
                    let sid = sid_of(sid);
                    let got = ops::run(&conn, &table, &Op::Touch { sid: sid.clone(), expires: now + ttl }, now).expect("touch");
                    let expected = match model.rows.get_mut(&sid) {
                        Some((_, expires)) if *expires > now => { *expires = now + ttl; 1 }
                        _ => 0,
                    };
                    prop_assert_eq!(got, Outcome::Count(expected));
                }
                Step::Destroy { sid } => {
                    let sid = sid_of(sid);
                    let got = ops::run(&conn, &table, &Op::Destroy { sid: sid.clone() }, now).expect("destroy");
                    prop_assert_eq!(got, Outcome::Count(i64::from(model.rows.remove(&sid).is_some())));
                }
                Step::Get { sid } => {
                    let sid = sid_of(sid);
                    let expected = model.rows.get(&sid).filter(|(_, e)| *e > now).map(|(d, _)| d.clone());
                    prop_assert_eq!(ops::get(&conn, &table, &sid, now).expect("get"), expected);
                }
                Step::Length => {
                    let got = ops::run(&conn, &table, &Op::Length, now).expect("length");
                    prop_assert_eq!(got, Outcome::Count(model.live(now).count() as i64));
                }
                Step::Ids => {
                    let got = ops::run(&conn, &table, &Op::Ids, now).expect("ids");
                    prop_assert_eq!(got, Outcome::Strings(model.live(now).map(|(id, _)| id.clone()).collect()));
                }
                Step::All => {
                    let got = ops::run(&conn, &table, &Op::All, now).expect("all");
                    let expected = model.live(now).flat_map(|(id, (d, _))| [id.clone(), d.clone()]).collect();
                    prop_assert_eq!(got, Outcome::Strings(expected));
                }
                Step::Clear => {
                    let got = ops::run(&conn, &table, &Op::Clear, now).expect("clear");
                    prop_assert_eq!(got, Outcome::Count(model.rows.len() as i64));
                    model.rows.clear();
                }
                Step::Prune => {
                    let mut got = 0;
                    loop {
                        let statement = ops::prune_statement(&conn, &table).expect("statement");
                        let batch = ops::prune_batch(&conn, &statement, now, 3).expect("prune");
                        got += batch;
                        if batch < 3 {
                            break;
                        }
                    }
                    let before = model.rows.len();
                    model.rows.retain(|_, (_, expires)| *expires > now);
                    prop_assert_eq!(got, (before - model.rows.len()) as i64);
                }
                Step::Advance { ms } => now += ms,
            }
        }
    }

    #[test]
    fn any_table_name_is_one_identifier(name in table_name()) {
        let mut conn = Connection::open_in_memory().expect("open");
        conn.execute_batch("CREATE TABLE canary (x)").expect("canary");
        let table = Table::new(&name, None);
        ensure_table(&mut conn, &table.sql, &SchemaOptions { create_table: true, default_ttl_ms: 1, now_ms: 0, import: None }).expect("schema");
        let found: i64 = conn
            .query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [&name], |r| r.get(0))
            .expect("lookup");
        prop_assert_eq!(found, 1);
        let canary: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE name = 'canary'", [], |r| r.get(0)).expect("c");
        prop_assert_eq!(canary, 1);
    }
}
