//! The floor: the SQLite work the store does for each write, and nothing else. No
//! Node-API, no JavaScript, no session cache, no writer thread: the store's own opening
//! (pragmas, busy handler), its own table and statements (`ops::run`), on a fresh file,
//! with batches of 1 in autocommit (a write awaited before the next, as at concurrency 1)
//! and of 64 in one BEGIN IMMEDIATE ... COMMIT (as the store groups 64 writes in flight).
//! What a perfect binding would pay; bench/run.js reports ours ÷ this per write.
//!
//!   cargo run --release --example floor -- --n 10000 [--budget 400] [--cool-kib 1024]
//!
//! `--cool-kib K` writes to K KiB of other memory before each batch, outside the time
//! measured: the CPU caches then come to SQLite as cooled as the JavaScript between two
//! of the store's writes leaves them (bench/README.md, "Where the time goes").
//! Prints one JSON object: { n, coolKib, phases: { "<phase> c<1|64>": { opsPerSec, p50us, p99us } } }.

use std::time::{Duration, Instant};

use express_sqlite_native::database::{CHECKPOINT_PAGES, WRITE_PAGE_CACHE};
use express_sqlite_native::open::{open_connection, prepare_location, Location, OpenOptions};
use express_sqlite_native::ops::{self, Op, Table};
use express_sqlite_native::schema::{ensure_table, SchemaOptions};
use rusqlite::Connection;

const DAY_MS: i64 = 86_400_000;

/// A random-looking 32-character id (base64url alphabet), as express-session makes.
fn sid(prefix: u64, k: u64) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut state = prefix.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k.wrapping_add(1).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (0..32)
        .map(|_| {
            // splitmix64
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ALPHABET[((z ^ (z >> 31)) % 64) as usize] as char
        })
        .collect()
}

/// The bench's session (bench/lib/session-data.js): express-session's Cookie and a
/// user, 528 bytes of JSON for small k.
fn session_json(k: u64, expires: i64) -> String {
    let iso = iso_time(expires);
    format!(
        concat!(
            r#"{{"cookie":{{"originalMaxAge":86400000,"expires":"{iso}","httpOnly":true,"path":"/","sameSite":"lax"}},"#,
            r#""user":{{"id":{id},"name":"Bench User {k}","email":"bench.user.{k}@example.com","roles":["reader","commenter"],"#,
            r#""preferences":{{"theme":"dark","language":"en-GB","timezone":"Europe/London"}}}},"#,
            r#""csrfSecret":"Zm9yIGJlbmNobWFya2luZyBvbmx5LCBub3QgYSBzZWNyZXQ","#,
            r#""cart":[{{"sku":"SKU-1001","qty":1,"price":1999}},{{"sku":"SKU-2002","qty":3,"price":450}}],"#,
            r#""returnTo":"/account/orders?page=2","lastSeen":{seen},"flash":{{}}}}"#
        ),
        iso = iso,
        id = 100_000 + k,
        k = k,
        seen = 1_700_000_000_000 + k,
    )
}

/// Milliseconds since the epoch as `Date.prototype.toISOString` writes them.
fn iso_time(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(DAY_MS), ms.rem_euclid(DAY_MS));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (h, m, s, milli) = (rest / 3_600_000, rest / 60_000 % 60, rest / 1000 % 60, rest % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

fn set(sid: String, k: u64, now: i64) -> Op {
    let expires = now + DAY_MS;
    Op::Set { sid, data: session_json(k, expires), expires, user_key: None, extras: vec![] }
}

/// Runs one batch as the store does: one job alone in autocommit, more in one transaction.
fn run_batch(conn: &Connection, table: &Table, ops: &[Op]) {
    let now = ops::now_ms();
    if let [op] = ops {
        ops::run(conn, table, op, now).expect("write");
        return;
    }
    conn.execute_batch("BEGIN IMMEDIATE").expect("begin");
    for op in ops {
        ops::run(conn, table, op, now).expect("write");
    }
    conn.execute_batch("COMMIT").expect("commit");
}

/// WAL pages written since the WAL last restarted, from the connection's WAL hook.
type WalPages = std::sync::Arc<std::sync::atomic::AtomicI64>;

/// As the store (src/database.rs): SQLite's auto-checkpoint is replaced by a WAL hook,
/// and the checkpoint runs elsewhere (the store's upkeep thread; here, between batches
/// and outside the time measured), so no write pays for one.
fn checkpoint_between_batches(conn: &mut Connection) -> WalPages {
    let pages = WalPages::default();
    let hook_pages = pages.clone();
    conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, wal_pages: i32| {
        hook_pages.store(i64::from(wal_pages), std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }))
    .expect("WAL hook");
    pages
}

thread_local! {
    /// Memory written before each batch (`--cool-kib`); empty by default.
    static COOLING: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Writes one byte per cache line of the `--cool-kib` buffer.
fn cool_caches() {
    COOLING.with_borrow_mut(|memory| {
        for byte in memory.iter_mut().step_by(64) {
            *byte = byte.wrapping_add(1);
        }
        std::hint::black_box(&memory);
    });
}

struct Measured {
    ops: u64,
    /// Time inside the batches only: making the ops (ids, JSON) is not SQLite's work.
    busy: Duration,
    latencies_us: Vec<f64>,
}

/// Batches of `size` made by `make(k)` until `budget` has passed or `max_ops` are done.
fn measure(
    conn: &Connection,
    wal_pages: &WalPages,
    table: &Table,
    size: u64,
    budget: Duration,
    max_ops: u64,
    mut make: impl FnMut(u64) -> Op,
) -> Measured {
    let started = Instant::now();
    let mut k = 0;
    let mut busy = Duration::ZERO;
    let mut latencies_us = Vec::new();
    while started.elapsed() < budget && k < max_ops {
        let batch: Vec<Op> = (k..(k + size).min(max_ops)).map(&mut make).collect();
        cool_caches();
        let t = Instant::now();
        run_batch(conn, table, &batch);
        let took = t.elapsed();
        busy += took;
        let us = took.as_secs_f64() * 1e6;
        latencies_us.extend(std::iter::repeat_n(us, batch.len()));
        k += batch.len() as u64;
        if wal_pages.load(std::sync::atomic::Ordering::Relaxed) >= i64::from(CHECKPOINT_PAGES) {
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).expect("checkpoint");
        }
    }
    Measured { ops: k, busy, latencies_us }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number")))
    };
    let n = flag("--n", 10_000);
    let budget = Duration::from_millis(flag("--budget", 400));
    let cool_kib = usize::try_from(flag("--cool-kib", 0)).expect("--cool-kib fits in memory");
    COOLING.with_borrow_mut(|memory| *memory = vec![0; cool_kib * 1024]);

    let dir = tempfile::tempdir().expect("temp dir");
    let location = Location::File(dir.path().join("floor.db"));
    let options = OpenOptions::default();
    prepare_location(&location, &options).expect("prepare");
    let mut conn = open_connection(&location, &options, &Default::default()).expect("open");
    // As the store's write connection.
    conn.execute_batch(WRITE_PAGE_CACHE).expect("page cache");
    let wal_pages = checkpoint_between_batches(&mut conn);
    let table = Table::new("Sessions", None);
    let schema = SchemaOptions { create_table: true, default_ttl_ms: DAY_MS, now_ms: ops::now_ms(), import: None };
    ensure_table(&mut conn, &table.sql, &schema).expect("table");

    let sids: Vec<String> = (0..n).map(|k| sid(1, k)).collect();
    // k * 7919 mod n walks the population in a scattered order, as the bench does.
    let existing = |k: u64| sids[((k * 7919) % n) as usize].clone();
    measure(&conn, &wal_pages, &table, 64, Duration::MAX, n, |k| set(sids[k as usize].clone(), k, ops::now_ms()));

    let mut phases = serde_json::Map::new();
    let mut record = |name: String, m: Measured| {
        let mut sorted = m.latencies_us;
        sorted.sort_by(f64::total_cmp);
        phases.insert(
            name,
            serde_json::json!({
                "ops": m.ops,
                "opsPerSec": (m.ops as f64 / m.busy.as_secs_f64()).round(),
                "p50us": (percentile(&sorted, 0.5) * 10.0).round() / 10.0,
                "p99us": (percentile(&sorted, 0.99) * 10.0).round() / 10.0,
            }),
        );
    };
    for size in [1, 64] {
        let m = measure(&conn, &wal_pages, &table, size, budget, u64::MAX, |k| set(existing(k), k, ops::now_ms()));
        record(format!("set-overwrite c{size}"), m);
    }
    // Each touch moves the expiry 2 s or more past the stored one (a new offset per
    // phase and per pass over the population), as the bench's touch rows do.
    for (size, base) in [(1, 2), (64, 20)] {
        let m = measure(&conn, &wal_pages, &table, size, budget, u64::MAX, |k| Op::Touch {
            sid: existing(k),
            expires: ops::now_ms() + DAY_MS + (base + (k / n) as i64) * 2000,
        });
        record(format!("touch c{size}"), m);
    }
    for size in [1, 64] {
        let m =
            measure(&conn, &wal_pages, &table, size, budget, u64::MAX, |k| set(sid(100 + size, k), k, ops::now_ms()));
        record(format!("set-new c{size}"), m);
    }
    // Destroy existing sessions, on disjoint quarters so every call deletes a row.
    let quarter = n / 4;
    for (size, first) in [(1, 0), (64, 2 * quarter)] {
        let m = measure(&conn, &wal_pages, &table, size, budget, quarter, |k| Op::Destroy {
            sid: sids[(first + k) as usize].clone(),
        });
        record(format!("destroy c{size}"), m);
    }
    println!("{}", serde_json::json!({ "n": n, "coolKib": cool_kib, "phases": phases }));
}
