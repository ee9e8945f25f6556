//! Configuration of the MongoDB backend.

use std::sync::Arc;
use std::time::Duration;

use crate::conflict::ConflictDetector;

/// How a MongoDB store connects and where its collections live.
///
/// ```
/// # #[cfg(feature = "mongodb")] {
/// let config = aett::MongoConfig::new("mongodb://localhost:27017/?replicaSet=rs0")
///     .database("bank")
///     .collection_prefix("ledger_");
/// # let _ = config; }
/// ```
#[derive(Debug, Clone)]
pub struct MongoConfig {
    pub(crate) url: String,
    pub(crate) database: Option<String>,
    pub(crate) prefix: String,
    pub(crate) commits_collection: String,
    pub(crate) snapshots_collection: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) operation_timeout: Duration,
    pub(crate) pool_size: u32,
    pub(crate) detector: Arc<ConflictDetector>,
}

impl MongoConfig {
    /// Defaults for the deployment at `url` (`mongodb://…` or `mongodb+srv://…`, read by the
    /// driver's own parser): the URL's database (`aett` when it names none), collections
    /// `commits` and `snapshots` (and `commits_streams`, `commits_checkpoints` beside them) with
    /// no prefix, a pool of 16 connections, the default conflict detector, and these timeouts:
    ///
    /// | timeout | default | what it bounds |
    /// |---|---|---|
    /// | [`connect_timeout`](Self::connect_timeout) | 10 s | opening a connection and finding a server to send an operation to |
    /// | [`operation_timeout`](Self::operation_timeout) | 30 s | each operation, in the client |
    ///
    /// Each that runs out is [`crate::StoreError::Timeout`].
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            database: None,
            prefix: String::new(),
            commits_collection: "commits".to_owned(),
            snapshots_collection: "snapshots".to_owned(),
            connect_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            pool_size: 16,
            detector: Arc::default(),
        }
    }

    /// The database holding aett's collections, overriding the URL's.
    pub fn database(mut self, name: impl Into<String>) -> Self {
        self.database = Some(name.into());
        self
    }

    /// A prefix put before every collection name (`bank_` gives `bank_commits`, …), so several
    /// stores can share one database.
    pub fn collection_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The commits collection's name (after the prefix); the stream heads and projection
    /// checkpoints live in `{commits}_streams` and `{commits}_checkpoints`.
    pub fn commits_collection(mut self, name: impl Into<String>) -> Self {
        self.commits_collection = name.into();
        self
    }

    /// The snapshots collection's name (after the prefix).
    pub fn snapshots_collection(mut self, name: impl Into<String>) -> Self {
        self.snapshots_collection = name.into();
        self
    }

    /// How long opening a connection, and finding a server to send an operation to, may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one operation may take before the client gives up on it.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// The most connections the driver opens to each server.
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// The conflict detector consulted when a commit loses a race.
    pub fn conflict_detector(mut self, detector: Arc<ConflictDetector>) -> Self {
        self.detector = detector;
        self
    }
}
