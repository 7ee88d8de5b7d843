//! Property test of the session cache: our writes (alone, grouped, rolled back, through
//! the writer thread) interleaved with another connection's commits on the same WAL
//! file, which is what another process is to SQLite. After every step, every read must
//! equal a plain map of what was committed. Run by `cargo test` (bounded case count).

use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use express_sqlite_native::database::{Database, TableOptions};
use express_sqlite_native::open::{Location, OpenOptions};
use express_sqlite_native::ops::{now_ms, Op};
use express_sqlite_native::worker::{Completion, CompletionSink};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    OurSet { sid: usize, data: u16 },
    OurDestroy { sid: usize },
    OurGroup { sets: Vec<(usize, u16)>, commit: bool },
    OurQueued { sid: usize, data: u16 },
    TheirSet { sid: usize, data: u16 },
    TheirDelete { sid: usize },
    TheirClear,
    Read,
}

const SIDS: usize = 4;

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..SIDS, any::<u16>()).prop_map(|(sid, data)| Step::OurSet { sid, data }),
        1 => (0..SIDS).prop_map(|sid| Step::OurDestroy { sid }),
        2 => (proptest::collection::vec((0..SIDS, any::<u16>()), 1..4), any::<bool>())
            .prop_map(|(sets, commit)| Step::OurGroup { sets, commit }),
        1 => (0..SIDS, any::<u16>()).prop_map(|(sid, data)| Step::OurQueued { sid, data }),
        2 => (0..SIDS, any::<u16>()).prop_map(|(sid, data)| Step::TheirSet { sid, data }),
        1 => (0..SIDS).prop_map(|sid| Step::TheirDelete { sid }),
        1 => Just(Step::TheirClear),
        6 => Just(Step::Read),
    ]
}

struct ChannelSink(Mutex<mpsc::Sender<Vec<Completion>>>);
impl CompletionSink for ChannelSink {
    fn deliver(&self, completions: Vec<Completion>) {
        let _ = self.0.lock().map(|tx| tx.send(completions));
    }
}

fn set(sid: usize, data: u16, expires: i64) -> Op {
    Op::Set { sid: format!("s{sid}"), data: format!("{{\"v\":{data}}}"), expires, user_key: None, extras: vec![] }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    #[test]
    fn reads_always_equal_what_was_committed(steps in proptest::collection::vec(step(), 1..50)) {
        // Removed when it goes out of scope, a failing case included.
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("sessions.db");
        let (tx, completions) = mpsc::channel();
        let mut db = Database::open(Location::File(path.clone()), OpenOptions::default(), Arc::new(ChannelSink(Mutex::new(tx))))
            .expect("open");
        let table = db
            .open_table(&TableOptions {
                name: "Sessions".into(),
                create_table: true,
                default_ttl_ms: 60_000,
                max_lifetime_ms: None,
                prune_interval: None,
                extra_columns: vec![],
                import: None,
            })
            .expect("table");
        let other = rusqlite::Connection::open(&path).expect("other");
        other.busy_timeout(Duration::from_secs(5)).expect("timeout");
        let expires = now_ms() + 3_600_000;
        let mut model: HashMap<String, String> = HashMap::new();
        let data = |d: u16| format!("{{\"v\":{d}}}");

        for step in &steps {
            match step {
                Step::OurSet { sid, data: d } => {
                    db.run_one(table, &set(*sid, *d, expires)).expect("set");
                    model.insert(format!("s{sid}"), data(*d));
                }
                Step::OurDestroy { sid } => {
                    db.run_one(table, &Op::Destroy { sid: format!("s{sid}") }).expect("destroy");
                    model.remove(&format!("s{sid}"));
                }
                Step::OurGroup { sets, commit } => {
                    // One transaction; without `commit`, a job that fails joins the batch,
                    // which is then rolled back and each job run alone.
                    let mut batch: Vec<(u32, Op)> = sets.iter().map(|(sid, d)| (table, set(*sid, *d, expires))).collect();
                    if !*commit {
                        batch.push((table, Op::Set { sid: "bad".into(), data: "{}".into(), expires, user_key: None, extras: vec![1.into()] }));
                    }
                    let outcomes = match db.run(&batch).expect("run") {
                        Some(outcomes) => outcomes,
                        // A failing batch is left to the writer thread, which runs each job alone.
                        None => {
                            let tickets = 0..batch.len() as u32;
                            db.queue(tickets.zip(batch).map(|(t, (table, op))| (t, table, op)).collect()).expect("queue");
                            let done = completions.recv_timeout(Duration::from_secs(10)).expect("completion");
                            done.into_iter().map(|c| c.result).collect()
                        }
                    };
                    prop_assert_eq!(outcomes.iter().filter(|o| o.is_err()).count(), usize::from(!*commit));
                    for (sid, d) in sets {
                        model.insert(format!("s{sid}"), data(*d));
                    }
                }
                Step::OurQueued { sid, data: d } => {
                    db.queue(vec![(1, table, set(*sid, *d, expires))]).expect("queue");
                    let done = completions.recv_timeout(Duration::from_secs(10)).expect("completion");
                    prop_assert!(done[0].result.is_ok());
                    model.insert(format!("s{sid}"), data(*d));
                }
                Step::TheirSet { sid, data: d } => {
                    other
                        .execute(
                            "INSERT INTO Sessions (id, data, expires, created, touched) VALUES (?1, ?2, ?3, 0, 0) \
                             ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                            rusqlite::params![format!("s{sid}"), data(*d), expires],
                        )
                        .expect("their set");
                    model.insert(format!("s{sid}"), data(*d));
                }
                Step::TheirDelete { sid } => {
                    other.execute("DELETE FROM Sessions WHERE id = ?1", [format!("s{sid}")]).expect("their delete");
                    model.remove(&format!("s{sid}"));
                }
                Step::TheirClear => {
                    other.execute("DELETE FROM Sessions", []).expect("their clear");
                    model.clear();
                }
                Step::Read => {}
            }
            // Every id, after every step: a stale entry anywhere would show.
            for sid in 0..SIDS {
                let key = format!("s{sid}");
                prop_assert_eq!(db.get(table, &key).expect("get"), model.get(&key).cloned(), "{} after {:?}", key, step);
            }
        }
        drop(other);
        db.close().expect("close");
    }
}
