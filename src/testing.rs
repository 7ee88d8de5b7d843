//! What the unit tests share: a completion sink that collects deliveries in a channel,
//! temporary directories that are removed even when a test panics, and the schema
//! options most tests open tables with.

use std::sync::{mpsc, Arc, Mutex};

use crate::schema::SchemaOptions;
use crate::worker::{Completion, CompletionSink};

/// Collects every delivery for the test to read from its receiver.
pub struct ChannelSink(Mutex<mpsc::Sender<Vec<Completion>>>);

impl ChannelSink {
    pub fn new() -> (Arc<ChannelSink>, mpsc::Receiver<Vec<Completion>>) {
        let (tx, rx) = mpsc::channel();
        (Arc::new(ChannelSink(Mutex::new(tx))), rx)
    }
}

impl CompletionSink for ChannelSink {
    fn deliver(&self, completions: Vec<Completion>) {
        let _ = crate::lock(&self.0).send(completions);
    }
}

/// A new empty directory, removed with everything in it when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("esn-test-").tempdir().expect("temporary directory")
}

/// Options that create the table, as of `now_ms`, with a default lifetime.
pub fn schema_options(now_ms: i64, default_ttl_ms: i64) -> SchemaOptions {
    SchemaOptions { create_table: true, default_ttl_ms, now_ms, import: None }
}
