//! A session store for express-session over SQLite. The core (everything but `node`)
//! is plain Rust and tested with `cargo test`; `node` is the thin Node-API layer.

pub mod backup;
pub mod cache;
pub mod database;
pub mod error;
pub mod import;
pub mod ops;
pub mod open;
pub mod schema;
pub mod sql;
pub mod upkeep;
pub mod worker;

/// A connection that more than one thread may use, one at a time.
pub type SharedConn = std::sync::Arc<std::sync::Mutex<open::Conn>>;
pub mod node;
