//! A session store for express-session over SQLite. The core (everything but `node`)
//! is plain Rust and tested with `cargo test`; `node` is the thin Node-API layer.
//!
//! Where a `set` goes: JS validates and serializes it and gives it, with the other
//! writes of its event-loop turn, to the engine (`engine::Engine`): `run` now, on the JS
//! thread, when that needs no waiting, else `queue`. The local engine (`database`) ends
//! both in `batch::run`: one transaction for the batch, each job alone if one fails,
//! the session cache told what changed, the files checked, outcomes in order (on the JS
//! thread or the writer thread, `worker`). The rqlite engine (`cluster`) queues every
//! job and sends each batch as one HTTP request. See ARCHITECTURE.md.

// Public: what node.rs and the integration tests (tests/) use. The rest is private, so
// that the compiler reports what nothing uses.

/// Online backups, one at a time.
mod backup;
/// A batch of jobs in one transaction, outcomes in order: every job goes through it.
mod batch;
/// Sessions answered from memory while nobody else commits.
mod cache;
/// The rqlite engine: the same store on a cluster.
mod cluster;
/// One open database: its connections, threads, tables and the entry points above.
pub mod database;
/// The interface every engine (local file, cluster) implements.
mod engine;
/// Errors as users see them: a code and a message without session data.
pub mod error;
/// Whether the files at the path are still the ones opened.
mod identity;
/// Copying the live sessions of another store's table (`importFrom`).
mod import;
/// Opening a file: creating it privately, pragmas, the busy handler.
pub mod open;
/// What each operation does to a table (the SQL, run on a connection it is given).
pub mod ops;
/// How often each session was asked for lately: what the session cache keeps.
mod popularity;
/// Creating tables and migrating older ones; the recorded layout version.
pub mod schema;
/// The SQL text of one sessions table.
pub mod sql;
/// The upkeep thread: scheduled and requested prunes, WAL checkpoints.
mod upkeep;
/// The writer thread: group commit of what JS queued.
pub mod worker;

#[cfg(test)]
mod testing;

/// Locks a mutex even when a panic on another thread poisoned it. Every value the crate
/// guards stays usable: SQLite rolls back a half-done transaction itself, and queues,
/// caches and handles are changed whole under the lock.
pub fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A connection that more than one thread may use, one at a time.
pub type SharedConn = std::sync::Arc<std::sync::Mutex<open::Conn>>;

/// The Node-API layer: argument decoding, the one error mapping, completions to JS.
pub mod node;
