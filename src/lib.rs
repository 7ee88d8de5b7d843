//! A session store for express-session over SQLite. The core (everything but `node`)
//! is plain Rust and tested with `cargo test`; `node` is the thin Node-API layer.

pub mod backup;
pub mod cache;
pub mod database;
pub mod error;
pub mod identity;
pub mod import;
pub mod open;
pub mod ops;
pub mod schema;
pub mod sql;
pub mod upkeep;
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
pub mod node;
