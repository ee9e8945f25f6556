//! Configuration of the SQLite backend.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::conflict::ConflictDetector;

/// How a SQLite store is opened.
///
/// ```
/// use std::time::Duration;
/// let config = aett::SqliteConfig::new("bank.db")
///     .commits_table("bank_commits")
///     .snapshots_table("bank_snapshots")
///     .busy_timeout(Duration::from_secs(10))
///     .synchronous_full(false);
/// # let _ = config;
/// ```
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    pub(crate) path: PathBuf,
    pub(crate) commits_table: String,
    pub(crate) snapshots_table: String,
    pub(crate) busy_timeout: Duration,
    pub(crate) synchronous_full: bool,
    pub(crate) max_readers: usize,
    pub(crate) detector: Arc<ConflictDetector>,
}

impl SqliteConfig {
    /// Defaults for the database file at `path`: tables `commits` and `snapshots`, a 30 s busy
    /// timeout, `synchronous = FULL`, at most 8 reader connections, the default conflict
    /// detector.
    ///
    /// The path is a file: SQLite's `:memory:` databases are refused when the store opens
    /// (each connection would see a database of its own); use [`crate::InMemoryStore`].
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            commits_table: "commits".to_owned(),
            snapshots_table: "snapshots".to_owned(),
            busy_timeout: Duration::from_secs(30),
            synchronous_full: true,
            max_readers: 8,
            detector: Arc::default(),
        }
    }

    /// The commits table's name (letters, digits and `_` only; checked when the store opens).
    pub fn commits_table(mut self, name: impl Into<String>) -> Self {
        self.commits_table = name.into();
        self
    }

    /// The snapshots table's name (letters, digits and `_` only; checked when the store opens).
    pub fn snapshots_table(mut self, name: impl Into<String>) -> Self {
        self.snapshots_table = name.into();
        self
    }

    /// How long a writer (or a connection being opened) waits for another process's lock
    /// before failing.
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// `true` (the default): every commit is synced to disk before it returns
    /// (`PRAGMA synchronous = FULL`), so a power loss loses no acknowledged commit. `false`:
    /// `synchronous = NORMAL`, faster; in WAL mode a crash of the process loses nothing, a power
    /// loss may lose the latest commits (never corrupts the file).
    pub fn synchronous_full(mut self, full: bool) -> Self {
        self.synchronous_full = full;
        self
    }

    /// The most reader connections open at once (at least 1). Reads beyond it wait for a
    /// connection to come free.
    pub fn max_readers(mut self, readers: usize) -> Self {
        self.max_readers = readers.max(1);
        self
    }

    /// The conflict detector consulted when a commit loses a race.
    pub fn conflict_detector(mut self, detector: Arc<ConflictDetector>) -> Self {
        self.detector = detector;
        self
    }
}
