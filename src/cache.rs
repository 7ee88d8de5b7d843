//! Sessions this process has read or written, answered without a SQLite transaction
//! while nobody else has committed to the database.
//!
//! Why: in WAL mode every read transaction takes and drops a lock on the shared-memory
//! wal-index with two `fcntl` calls, which cost more than the read itself (measured:
//! ~45 % of a point read's time on the JS thread). A session is read on every request
//! and changes far less often.
//!
//! How it stays correct with other connections and other processes: every commit to a
//! WAL database writes the wal-index header in shared memory, and that header carries a
//! counter SQLite increments once per commit (`iChange`). The cache remembers the header
//! it is valid for (`version`); a lookup first reads the current header the way SQLite
//! itself does without a lock (two copies, a memory barrier between, equal and
//! initialised) and serves nothing unless it is byte for byte the remembered one. Our
//! own commits (on the write connection, counted by its WAL hook) carry the version
//! forward only when the counter moved by exactly our commits: anyone else's commit in
//! between makes it move further, and everything is dropped. The header layout is part
//! of SQLite's documented file format ("The WAL-Index Header").
//!
//! Off (every lookup misses) for in-memory and rollback-journal databases, and for
//! tables with an absolute lifetime cap, whose stored expiry SQL computes.

use std::collections::HashMap;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;

use crate::ops::{Op, Outcome, Table};
use crate::popularity::{self, Popularity};

/// Session bytes kept at most by default (ids and data): ~13,000 sessions of ~0.5 KB,
/// the active users of a large app rather than every session it ever issued, so that
/// the process stays small (measured with 100,000 sessions: RSS 107-113 MB without the
/// cache, 112-124 MB with 8 MiB, 134-144 MB with 16). Past the capacity, a quarter is
/// dropped, the sessions asked for least often lately first (see `Inner::shrink`).
pub const DEFAULT_CAPACITY_BYTES: usize = 8 * 1024 * 1024;

/// Bookkeeping charged per entry on top of its strings.
const ENTRY_OVERHEAD: usize = 72;

/// What a typical session costs the cache (~0.5 KB of JSON, its id, the bookkeeping):
/// sizes the popularity sketch.
const TYPICAL_CHARGE: usize = 640;

/// What an entry counts against the capacity.
fn charge(sid: &str, data: &Option<String>) -> usize {
    sid.len() + data.as_ref().map_or(0, String::len) + ENTRY_OVERHEAD
}

/// One copy of the wal-index header (the shared memory keeps two, 48 bytes each).
type Header = [u8; 48];

fn change_counter(header: &Header) -> u32 {
    u32::from_ne_bytes([header[8], header[9], header[10], header[11]])
}

/// The wal-index header in this process's mapping of the `-shm` file.
struct WalIndex {
    header: *const Header,
}

// SAFETY: the pointer is into a shared mapping that stays in place while any of the
// database's connections is open (the cache is detached before they close); it is only
// read, with volatile reads, as SQLite's own readers do.
unsafe impl Send for WalIndex {}

impl WalIndex {
    /// The mapping of a connection in WAL mode that has already run a transaction.
    fn of(conn: &Connection) -> Option<WalIndex> {
        let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).ok()?;
        if !mode.eq_ignore_ascii_case("wal") {
            return None;
        }
        let mut file: *mut rusqlite::ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: the handle is valid while `conn` is; the file control writes one pointer.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_file_control(
                conn.handle(),
                c"main".as_ptr(),
                rusqlite::ffi::SQLITE_FCNTL_FILE_POINTER,
                (&mut file as *mut *mut rusqlite::ffi::sqlite3_file).cast(),
            )
        };
        if rc != rusqlite::ffi::SQLITE_OK || file.is_null() {
            return None;
        }
        let mut region: *mut std::os::raw::c_void = std::ptr::null_mut();
        // SAFETY: `file` is the open main database file; region 0 of its shared memory is
        // already mapped (the connection is in WAL mode and has read), so with
        // bExtend = 0 this only returns the existing mapping.
        let rc = unsafe {
            let methods = (*file).pMethods;
            if methods.is_null() || (*methods).iVersion < 2 {
                return None;
            }
            let map = (*methods).xShmMap?;
            map(file, 0, 32768, 0, &mut region)
        };
        if rc != rusqlite::ffi::SQLITE_OK || region.is_null() {
            return None;
        }
        Some(WalIndex { header: region.cast::<Header>().cast_const() })
    }

    /// A consistent copy of the header, or None while a writer is changing it.
    fn read(&self) -> Option<Header> {
        // SAFETY: see `unsafe impl Send`; both copies lie within the mapped first region.
        let (first, second) = unsafe {
            let first = std::ptr::read_volatile(self.header);
            fence(Ordering::SeqCst);
            (first, std::ptr::read_volatile(self.header.add(1)))
        };
        // Byte 12 is isInit: 0 while the index is being rebuilt.
        (first == second && first[12] != 0).then_some(first)
    }
}

struct Entry {
    /// None: no live session with that id.
    data: Option<String>,
    expires: i64,
    /// `popularity::hash` of the id, kept for `shrink`.
    hash: u64,
}

/// What one committed operation did to the sessions the cache may hold.
enum Change {
    Put {
        table: Arc<str>,
        sid: String,
        data: String,
        expires: i64,
    },
    Expires {
        table: Arc<str>,
        sid: String,
        expires: i64,
    },
    Forget {
        table: Arc<str>,
        sid: String,
    },
    /// Deleted: known to be missing.
    Gone {
        table: Arc<str>,
        sid: String,
    },
    ForgetTable {
        table: Arc<str>,
    },
}

struct Inner {
    capacity: usize,
    /// How often each id was asked for lately (all tables; hits and misses).
    popularity: Popularity,
    wal_index: Option<WalIndex>,
    /// The file cannot be written here: a touch must fail as the write would.
    read_only: bool,
    /// The header the entries are valid for; None: no entries.
    version: Option<Header>,
    /// Per table (lowercase name, as SQLite compares names), sid -> entry.
    tables: Vec<(Arc<str>, HashMap<String, Entry>)>,
    bytes: usize,
}

impl Inner {
    fn clear(&mut self) {
        self.version = None;
        self.tables.clear();
        self.bytes = 0;
    }

    /// The header as it is now, if it can be read.
    fn current(&self) -> Option<Header> {
        self.wal_index.as_ref().and_then(WalIndex::read)
    }

    /// A table's entry for `sid`, if the entries are valid for the database as it is now.
    fn valid_entry(&self, table: &Table, sid: &str) -> Option<&Entry> {
        if !table.cacheable() || self.version.is_none() || self.version != self.current() {
            return None;
        }
        let (_, map) = self.tables.iter().find(|(n, _)| *n == table.cache_name)?;
        map.get(sid)
    }

    fn table_mut(&mut self, name: &Arc<str>) -> &mut HashMap<String, Entry> {
        let index = match self.tables.iter().position(|(n, _)| n == name) {
            Some(index) => index,
            None => {
                self.tables.push((Arc::clone(name), HashMap::new()));
                self.tables.len() - 1
            }
        };
        &mut self.tables[index].1
    }

    fn put(&mut self, table: &Arc<str>, sid: &str, data: Option<String>, expires: i64) {
        let added = charge(sid, &data);
        let map = self.table_mut(table);
        let removed = match map.get_mut(sid) {
            Some(entry) => {
                let old = charge(sid, &entry.data);
                entry.data = data;
                entry.expires = expires;
                old
            }
            None => {
                map.insert(sid.to_owned(), Entry { data, expires, hash: popularity::hash(sid) });
                0
            }
        };
        self.bytes = self.bytes + added - removed;
        if self.bytes > self.capacity {
            self.shrink();
        }
    }

    fn forget(&mut self, table: &str, sid: &str) {
        if let Some((_, map)) = self.tables.iter_mut().find(|(n, _)| &**n == table) {
            if let Some(entry) = map.remove(sid) {
                self.bytes -= charge(sid, &entry.data);
            }
        }
    }

    /// Drops entries down to three quarters of capacity, those asked for least often
    /// lately first (ties in the maps' arbitrary order). Why: most requests come from a
    /// small share of the users. With 100,000 sessions, 8 MiB and Zipf-distributed reads
    /// (exponent 1), dropping an arbitrary quarter answered 59 % of reads from the
    /// cache, sparing those read since the last shrink 67 %, and this 77.6 % (at best, the
    /// 13,000 most asked-for sessions, 83 %).
    fn shrink(&mut self) {
        let target = self.capacity / 4 * 3;
        let excess = self.bytes.saturating_sub(target);
        let popularity = &self.popularity;
        // Bytes per estimate; `cut`: the lowest estimate whose entries, with all below
        // it, cover the excess.
        let mut by_estimate = [0usize; 256];
        for (_, map) in &self.tables {
            for (sid, entry) in map {
                by_estimate[usize::from(popularity.estimate(entry.hash))] += charge(sid, &entry.data);
            }
        }
        let (mut cut, mut below) = (0, 0);
        while cut < 255 && below + by_estimate[cut] < excess {
            below += by_estimate[cut];
            cut += 1;
        }
        let mut at_cut = excess.saturating_sub(below);
        let mut bytes = self.bytes;
        for (_, map) in &mut self.tables {
            map.retain(|sid, entry| {
                let estimate = usize::from(popularity.estimate(entry.hash));
                let drop = estimate < cut || (estimate == cut && at_cut > 0);
                if drop {
                    let charged = charge(sid, &entry.data);
                    bytes -= charged;
                    if estimate == cut {
                        at_cut = at_cut.saturating_sub(charged);
                    }
                }
                !drop
            });
        }
        self.bytes = bytes;
    }

    fn apply(&mut self, change: Change) {
        match change {
            Change::Put { table, sid, data, expires } => self.put(&table, &sid, Some(data), expires),
            Change::Expires { table, sid, expires } => {
                let map = self.table_mut(&table);
                match map.get_mut(&sid) {
                    Some(Entry { data: Some(_), expires: e, .. }) => *e = expires,
                    _ => self.forget(&table, &sid),
                }
            }
            Change::Forget { table, sid } => self.forget(&table, &sid),
            Change::Gone { table, sid } => self.put(&table, &sid, None, i64::MAX),
            Change::ForgetTable { table } => {
                if let Some(index) = self.tables.iter().position(|(n, _)| *n == table) {
                    let (_, map) = self.tables.swap_remove(index);
                    self.bytes -= map.iter().map(|(sid, e)| charge(sid, &e.data)).sum::<usize>();
                }
            }
        }
    }
}

/// Writes made on the write connection between `SessionCache::begin` and `finish`.
pub struct Section {
    before: Option<Header>,
    commits_before: u64,
    changes: Vec<Change>,
}

impl Section {
    /// Records what a successful operation changed (reads change nothing).
    pub fn record(&mut self, table: &Table, op: &Op, outcome: &Outcome) {
        let name = Arc::clone(&table.cache_name);
        // With a lifetime cap the stored expiry is SQL's MIN(...): forget rather than guess.
        let exact = table.cacheable();
        let change = match op {
            Op::Set { sid, data, expires, .. } if exact => {
                Change::Put { table: name, sid: sid.clone(), data: data.clone(), expires: *expires }
            }
            Op::Touch { sid, expires } if exact && *outcome == Outcome::Count(1) => {
                Change::Expires { table: name, sid: sid.clone(), expires: *expires }
            }
            Op::Destroy { sid } => Change::Gone { table: name, sid: sid.clone() },
            Op::Set { sid, .. } | Op::Touch { sid, .. } => Change::Forget { table: name, sid: sid.clone() },
            Op::Clear | Op::DestroyByUser { .. } | Op::Prune { .. } => Change::ForgetTable { table: name },
            Op::Length
            | Op::Ids
            | Op::All
            | Op::IdsByUser { .. }
            | Op::CountExpired
            | Op::Get { .. }
            | Op::LastWrite { .. }
            | Op::Export => return,
        };
        self.changes.push(change);
    }

    /// The transaction rolled back: none of its changes happened.
    pub fn discard(&mut self) {
        self.changes.clear();
    }
}

pub struct SessionCache {
    inner: Mutex<Inner>,
    /// Commits made by the write connection (its WAL hook counts them).
    own_commits: AtomicU64,
    /// Lookups answered from the cache (for stats()).
    hits: AtomicU64,
}

impl SessionCache {
    /// A cache of at most `capacity` bytes of session ids and data (0: it keeps nothing).
    pub fn new(capacity: usize) -> SessionCache {
        SessionCache {
            inner: Mutex::new(Inner {
                capacity,
                popularity: Popularity::new(capacity / TYPICAL_CHARGE),
                wal_index: None,
                read_only: false,
                version: None,
                tables: Vec::new(),
                bytes: 0,
            }),
            own_commits: AtomicU64::new(0),
            hits: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        crate::lock(&self.inner)
    }

    /// Starts serving from the database `conn` is open on, if it is a WAL file.
    pub fn attach(&self, conn: &Connection) {
        let mut inner = self.lock();
        if inner.wal_index.is_none() && inner.capacity > 0 {
            inner.wal_index = WalIndex::of(conn);
        }
        inner.read_only = conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(true);
        inner.clear();
    }

    /// Stops serving and forgets everything (before the connections close).
    pub fn detach(&self) {
        let mut inner = self.lock();
        inner.wal_index = None;
        inner.clear();
    }

    /// Forgets everything (schema changes, imports).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Called by the write connection's WAL hook, once per commit. Only that connection
    /// may count: SQLite calls the hook after the commit has moved the header, and a
    /// count stays in step with its header only because every section and every counted
    /// commit runs under the write connection's lock. A connection counting outside it
    /// (the upkeep thread's, tried for prunes) lets a section take in a commit made
    /// before its `before` header, and so carry the cache over another process's commit.
    pub fn count_commit(&self) {
        self.own_commits.fetch_add(1, Ordering::SeqCst);
    }

    /// Reads answered without SQLite since the database was opened.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Bytes of session ids and data held.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// The session as the database holds it now, if known: Some(None) for "no live
    /// session", None when SQLite must be asked.
    pub fn lookup(&self, table: &Table, sid: &str, now: i64) -> Option<Option<(String, i64)>> {
        if !table.cacheable() {
            return None;
        }
        let hash = popularity::hash(sid);
        let mut inner = self.lock();
        inner.popularity.count(hash);
        let entry = inner.valid_entry(table, sid)?;
        let known = match &entry.data {
            Some(data) if entry.expires > now => Some((data.clone(), entry.expires)),
            Some(_) => return None,
            None => None,
        };
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(known)
    }

    /// The stored expiry of a live session, if known and the file can be written.
    pub fn live_expiry(&self, table: &Table, sid: &str, now: i64) -> Option<i64> {
        let inner = self.lock();
        if inner.read_only {
            return None;
        }
        match inner.valid_entry(table, sid)? {
            Entry { data: Some(_), expires, .. } if *expires > now => Some(*expires),
            _ => None,
        }
    }

    /// Header before a read from SQLite, for `fill`.
    pub fn before_read(&self) -> Option<Header> {
        self.lock().current()
    }

    /// Keeps a session read from SQLite (data and stored expiry), when nobody committed
    /// around the read. Misses are not kept: ids that do not exist are as many as
    /// clients care to invent, and would push real sessions out. After another writer's
    /// commit the entries are stale and the cache starts again from this read: before,
    /// it stayed empty until this process's next write, so where several processes
    /// share a file it served little more than each one's own last writes.
    pub fn fill(&self, before: Option<Header>, table: &Table, sid: &str, found: Option<(&str, i64)>) {
        let (true, Some(before), Some((data, expires))) = (table.cacheable(), before, found) else { return };
        let mut inner = self.lock();
        if inner.current() != Some(before) {
            return;
        }
        if inner.version != Some(before) {
            inner.clear();
            inner.version = Some(before);
        }
        inner.put(&table.cache_name, sid, Some(data.to_owned()), expires);
    }

    pub fn begin(&self) -> Section {
        Section {
            before: self.before_read(),
            commits_before: self.own_commits.load(Ordering::SeqCst),
            changes: Vec::new(),
        }
    }

    /// Carries the cache over our own commits, or drops it if anyone else committed.
    pub fn finish(&self, section: Section) {
        let own = self.own_commits.load(Ordering::SeqCst).wrapping_sub(section.commits_before);
        let mut inner = self.lock();
        let Some(after) = inner.current() else {
            inner.clear();
            return;
        };
        let ours_only = match section.before {
            Some(before) if own == 0 => after == before,
            Some(before) => change_counter(&after) == change_counter(&before).wrapping_add(own as u32),
            None => false,
        };
        if !ours_only {
            inner.clear();
            return;
        }
        // Entries from before someone else's earlier commit are dropped; what we just
        // wrote is current either way.
        if inner.version.is_some() && inner.version != section.before {
            inner.clear();
        } else if own == 0 && section.changes.is_empty() {
            return;
        }
        inner.version = Some(after);
        for change in section.changes {
            inner.apply(change);
        }
    }
}

#[cfg(test)]
mod tests_support {
    use std::sync::mpsc;
    use std::time::Duration;

    use crate::database::{Database, TableOptions};
    use crate::open::{Location, OpenOptions};
    use crate::ops::{now_ms, Op};
    use crate::testing::{temp_dir, ChannelSink};
    use crate::worker::Completion;

    pub struct Fixture {
        pub db: Database,
        pub table: u32,
        pub path: std::path::PathBuf,
        pub completions: mpsc::Receiver<Vec<Completion>>,
        /// Removed after the database is closed (fields drop after `drop`).
        _dir: tempfile::TempDir,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = self.db.close();
        }
    }

    pub fn table_options(name: &str, max_lifetime_ms: Option<i64>) -> TableOptions {
        TableOptions {
            name: name.into(),
            create_table: true,
            default_ttl_ms: 60_000,
            max_lifetime_ms,
            prune_interval: None,
            extra_columns: vec![],
            import: None,
        }
    }

    pub fn fixture(max_lifetime_ms: Option<i64>) -> Fixture {
        let dir = temp_dir();
        let path = dir.path().join("sessions.db");
        let (sink, completions) = ChannelSink::new();
        let mut db = Database::open(Location::File(path.clone()), OpenOptions::default(), sink).expect("open");
        let table = db.open_table(&table_options("Sessions", max_lifetime_ms)).expect("table");
        Fixture { db, table, path, completions, _dir: dir }
    }

    pub fn set(sid: &str, data: &str, expires: i64) -> Op {
        Op::Set { sid: sid.into(), data: data.into(), expires, user_key: None, extras: vec![] }
    }

    pub fn far() -> i64 {
        now_ms() + 3_600_000
    }

    /// A second connection on the file: to SQLite it is what another process is.
    pub fn other(f: &Fixture) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(&f.path).expect("other connection");
        conn.busy_timeout(Duration::from_secs(5)).expect("timeout");
        conn
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::tests_support::*;
    use crate::database::Database;
    use crate::open::{Location, OpenOptions};
    use crate::ops::{now_ms, Op, Outcome};
    use crate::testing::ChannelSink;

    #[test]
    fn reads_after_our_own_writes_come_from_the_cache_and_are_current() {
        let f = fixture(None);
        f.db.run_one(f.table, &set("a", "{\"v\":1}", far())).expect("set");
        assert_eq!(f.db.get(f.table, "a").expect("get"), Some("{\"v\":1}".into()));
        assert_eq!(f.db.cache_hits(), 1, "the write was remembered");

        // A batch of this turn's writes in one transaction, then a read.
        let batch = [
            (f.table, set("a", "{\"v\":2}", far())),
            (f.table, set("b", "{\"v\":3}", far())),
            (f.table, Op::Destroy { sid: "b".into() }),
        ];
        let outcomes = f.db.run(&batch).expect("run").expect("not busy");
        assert!(outcomes.iter().all(Result::is_ok));
        assert_eq!(f.db.get(f.table, "a").expect("get"), Some("{\"v\":2}".into()));
        assert_eq!(f.db.get(f.table, "b").expect("get"), None);
        assert_eq!(f.db.cache_hits(), 3);

        // A batch with a job that fails: the JS thread leaves it to the writer thread
        // (nothing ran), which rolls it back and runs each job alone; the cache follows
        // what was kept.
        let bad =
            Op::Set { sid: "c".into(), data: "{}".into(), expires: far(), user_key: None, extras: vec![1.into()] };
        let batch = [(f.table, set("a", "{\"v\":9}", far())), (f.table, bad.clone())];
        assert!(f.db.run(&batch).expect("run").is_none(), "left to the writer thread");
        f.db.queue(vec![(7, f.table, set("a", "{\"v\":9}", far())), (8, f.table, bad)]).expect("queue");
        let done = f.completions.recv_timeout(Duration::from_secs(10)).expect("completion");
        assert!(done[0].result.is_ok() && done[1].result.is_err());
        assert_eq!(f.db.get(f.table, "a").expect("get"), Some("{\"v\":9}".into()));
        assert_eq!(f.db.get(f.table, "c").expect("get"), None);
        assert_eq!(f.db.cache_hits(), 4);

        // Through the writer thread.
        f.db.queue(vec![(1, f.table, set("a", "{\"v\":4}", far()))]).expect("queue");
        let done = f.completions.recv_timeout(Duration::from_secs(10)).expect("completion");
        assert_eq!(done[0].result, Ok(Outcome::Count(1)));
        assert_eq!(f.db.get(f.table, "a").expect("get"), Some("{\"v\":4}".into()));
        assert_eq!(f.db.cache_hits(), 5);
    }

    #[test]
    fn touch_moves_the_cached_expiry_and_expiry_is_exact() {
        let f = fixture(None);
        f.db.run_one(f.table, &set("a", "{}", now_ms() + 40)).expect("set");
        f.db.run_one(f.table, &Op::Touch { sid: "a".into(), expires: far() }).expect("touch");
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(f.db.get(f.table, "a").expect("get"), Some("{}".into()), "touched: still live");
        assert_eq!(f.db.cache_hits(), 1);

        f.db.run_one(f.table, &set("b", "{}", now_ms() + 40)).expect("set");
        assert_eq!(f.db.get(f.table, "b").expect("get"), Some("{}".into()));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(f.db.get(f.table, "b").expect("get"), None, "expired while cached");
    }

    #[test]
    fn another_connections_commit_is_seen_by_the_next_read() {
        let f = fixture(None);
        f.db.run_one(f.table, &set("a", "{\"v\":1}", far())).expect("set");
        assert_eq!(f.db.get(f.table, "missing").expect("get"), None);
        assert_eq!(f.db.get(f.table, "a").expect("get"), Some("{\"v\":1}".into()));
        assert_eq!(f.db.get(f.table, "missing").expect("get"), None);
        let hits = f.db.cache_hits();
        assert_eq!(hits, 1, "the hit was cached, the miss was not");

        let other = other(&f);
        other.execute("UPDATE Sessions SET data = '{\"v\":2}' WHERE id = 'a'", []).expect("update");
        assert_eq!(f.db.get(f.table, "a").expect("get"), Some("{\"v\":2}".into()), "changed elsewhere");
        other
            .execute(
                "INSERT INTO Sessions (id, data, expires, created, touched) VALUES ('missing', '{}', ?1, 0, 0)",
                [far()],
            )
            .expect("insert");
        assert_eq!(f.db.get(f.table, "missing").expect("get"), Some("{}".into()), "created elsewhere");
        other.execute("DELETE FROM Sessions WHERE id = 'a'", []).expect("delete");
        assert_eq!(f.db.get(f.table, "a").expect("get"), None, "destroyed elsewhere");
        assert_eq!(f.db.cache_hits(), hits, "nothing stale was served");

        // Their commit between two of ours: ours cannot carry the cache over it.
        f.db.run_one(f.table, &set("b", "{\"v\":1}", far())).expect("set");
        other.execute("UPDATE Sessions SET data = '{\"v\":5}' WHERE id = 'missing'", []).expect("update");
        f.db.run_one(f.table, &set("c", "{}", far())).expect("set");
        assert_eq!(f.db.get(f.table, "missing").expect("get"), Some("{\"v\":5}".into()));
        // A transaction of theirs open across ours: SQLite makes ours wait or fail, never mix.
        let tx = other.unchecked_transaction().expect("begin");
        tx.execute("UPDATE Sessions SET data = '{\"v\":6}' WHERE id = 'b'", []).expect("update");
        assert_eq!(f.db.get(f.table, "b").expect("get"), Some("{\"v\":1}".into()), "uncommitted is invisible");
        tx.commit().expect("commit");
        assert_eq!(f.db.get(f.table, "b").expect("get"), Some("{\"v\":6}".into()));
    }

    #[test]
    fn after_another_writers_commit_the_cache_starts_again_from_reads() {
        let f = fixture(None);
        f.db.run_one(f.table, &set("a", "{\"v\":1}", far())).expect("set");
        f.db.run_one(f.table, &set("b", "{\"v\":1}", far())).expect("set");
        let other = other(&f);
        for v in 2..5 {
            other.execute(&format!("UPDATE Sessions SET data = '{{\"v\":{v}}}'"), []).expect("update");
            let now = format!("{{\"v\":{v}}}");
            let hits = f.db.cache_hits();
            assert_eq!(f.db.get(f.table, "a").expect("get"), Some(now.clone()), "read from SQLite");
            assert_eq!(f.db.get(f.table, "b").expect("get"), Some(now.clone()));
            assert_eq!(f.db.cache_hits(), hits, "nothing stale was served");
            assert_eq!(f.db.get(f.table, "a").expect("get"), Some(now.clone()));
            assert_eq!(f.db.get(f.table, "b").expect("get"), Some(now));
            assert_eq!(f.db.cache_hits(), hits + 2, "then from the cache, without a write of ours");
        }
    }

    #[test]
    fn two_handles_on_one_table_share_what_they_know() {
        let mut f = fixture(None);
        let second = f.db.open_table(&table_options("SESSIONS", None)).expect("second handle");
        f.db.run_one(f.table, &set("a", "{\"v\":1}", far())).expect("set");
        assert_eq!(f.db.get(second, "a").expect("get"), Some("{\"v\":1}".into()));
        f.db.run_one(second, &set("a", "{\"v\":2}", far())).expect("set");
        assert_eq!(f.db.get(f.table, "a").expect("get"), Some("{\"v\":2}".into()));
        f.db.run_one(f.table, &Op::Clear).expect("clear");
        assert_eq!(f.db.get(second, "a").expect("get"), None);
    }

    #[test]
    fn tables_with_a_lifetime_cap_are_always_read_from_sqlite() {
        let f = fixture(Some(50));
        f.db.run_one(f.table, &set("a", "{}", far())).expect("set");
        assert_eq!(f.db.get(f.table, "a").expect("get"), Some("{}".into()));
        std::thread::sleep(Duration::from_millis(80));
        assert_eq!(f.db.get(f.table, "a").expect("get"), None, "capped by the lifetime, not the cookie");
        assert_eq!(f.db.cache_hits(), 0);
    }

    #[test]
    fn memory_databases_do_not_cache() {
        let mut db =
            Database::open(Location::Memory(None), OpenOptions::default(), ChannelSink::new().0).expect("open");
        let table = db.open_table(&table_options("Sessions", None)).expect("table");
        db.run_one(table, &set("a", "{}", far())).expect("set");
        assert_eq!(db.get(table, "a").expect("get"), Some("{}".into()));
        assert_eq!(db.cache_hits(), 0);
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let f = fixture(None);
        let data = format!("{{\"pad\":\"{}\"}}", "x".repeat(100_000));
        for i in 0..(super::DEFAULT_CAPACITY_BYTES / 100_000 + 50) {
            f.db.run_one(f.table, &set(&format!("s{i}"), &data, far())).expect("set");
        }
        let open = f.db.cache_bytes();
        assert!(open <= super::DEFAULT_CAPACITY_BYTES, "{open} bytes cached");
        assert!(open > super::DEFAULT_CAPACITY_BYTES / 2, "{open} bytes cached");
    }

    #[test]
    fn sessions_read_from_the_cache_outlast_those_only_written() {
        let f = fixture(None);
        let data = format!("{{\"pad\":\"{}\"}}", "x".repeat(100_000));
        let fit = super::DEFAULT_CAPACITY_BYTES / (100_000 + 100);
        for i in 0..fit - 4 {
            f.db.run_one(f.table, &set(&format!("s{i}"), &data, far())).expect("set");
        }
        for i in 0..20 {
            assert!(f.db.get(f.table, &format!("s{i}")).expect("get").is_some());
        }
        assert_eq!(f.db.cache_hits(), 20);
        // Past the capacity once: a quarter goes, none of it read. (Dropped in the
        // maps' arbitrary order instead, all 20 would stay about once in 1,000 runs.)
        for i in fit - 4..fit + 4 {
            f.db.run_one(f.table, &set(&format!("s{i}"), &data, far())).expect("set");
        }
        assert!(f.db.cache_bytes() < super::DEFAULT_CAPACITY_BYTES * 7 / 8, "a shrink happened");
        for i in 0..20 {
            assert!(f.db.get(f.table, &format!("s{i}")).expect("get").is_some());
        }
        assert_eq!(f.db.cache_hits(), 40, "every session read before the shrink is still cached");
    }
}

#[cfg(test)]
mod touch_tests {
    use super::tests_support::*;
    use crate::database::touch_tolerance_ms;
    use crate::ops::{now_ms, Op};

    #[test]
    fn a_touch_within_a_cookies_precision_is_current_and_nothing_else_is() {
        let f = fixture(None);
        let stored = now_ms() + 3_600_000;
        f.db.run_one(f.table, &set("a", "{}", stored)).expect("set");
        assert!(f.db.touch_is_current(f.table, "a", stored).expect("check"));
        assert!(f.db.touch_is_current(f.table, "a", stored + 999).expect("check"));
        assert!(!f.db.touch_is_current(f.table, "a", stored + 1000).expect("check"), "a second later: written");
        assert!(!f.db.touch_is_current(f.table, "a", stored - 1).expect("check"), "earlier: written");
        assert!(!f.db.touch_is_current(f.table, "b", stored).expect("check"), "unknown session");
        // Another connection's commit: unknown again until read or written here.
        other(&f).execute("UPDATE Sessions SET expires = expires - 5000 WHERE id = 'a'", []).expect("update");
        assert!(!f.db.touch_is_current(f.table, "a", stored).expect("check"));
        // Short lifetimes keep exact touches: 1 % of what is left.
        assert_eq!(touch_tolerance_ms(50_000), 500);
        assert_eq!(touch_tolerance_ms(3_600_000), 1000);
        assert_eq!(touch_tolerance_ms(-5), 0);
        let soon = now_ms() + 2_000;
        f.db.run_one(f.table, &set("c", "{}", soon)).expect("set");
        assert!(!f.db.touch_is_current(f.table, "c", soon + 100).expect("check"), "100 ms > 1 % of 2 s");
        f.db.run_one(f.table, &Op::Touch { sid: "c".into(), expires: soon + 10 }).expect("touch");
        assert!(f.db.touch_is_current(f.table, "c", soon + 15).expect("check"));
    }
}
