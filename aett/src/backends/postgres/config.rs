//! Configuration of the PostgreSQL backend.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::conflict::ConflictDetector;

/// Whether and how connections use TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PostgresTls {
    /// Plain TCP (the default; for loopback and private networks).
    #[default]
    Disabled,
    /// TLS required, the server's certificate checked against Mozilla's root certificates and
    /// the PEM file given, if any (for a private CA, as managed services often use). Needs the
    /// `postgres-tls` feature.
    Required {
        /// Extra CA certificates (PEM) to trust.
        ca_file: Option<PathBuf>,
    },
}

/// How a PostgreSQL store connects and where its tables live.
///
/// ```
/// # #[cfg(feature = "postgres")] {
/// let config = aett::PostgresConfig::new("postgres://aett:secret@localhost:5432/app")
///     .schema("events")
///     .commits_table("bank_commits")
///     .pool_size(32);
/// # let _ = config; }
/// ```
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    pub(crate) url: String,
    pub(crate) schema: String,
    pub(crate) commits_table: String,
    pub(crate) snapshots_table: String,
    pub(crate) pool_size: usize,
    pub(crate) checkpoint_wait: Duration,
    pub(crate) tls: PostgresTls,
    pub(crate) detector: Arc<ConflictDetector>,
}

impl PostgresConfig {
    /// Defaults for the server at `url` (`postgres://user:password@host:port/database`, or a
    /// libpq key=value string): schema `public`, tables `commits` and `snapshots`, 16 pooled
    /// connections, no TLS, the default conflict detector. A URL with `sslmode=require` turns
    /// TLS on.
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        let tls = if url.contains("sslmode=require") || url.contains("sslmode=verify") {
            PostgresTls::Required { ca_file: None }
        } else {
            PostgresTls::Disabled
        };
        Self {
            url,
            schema: "public".to_owned(),
            commits_table: "commits".to_owned(),
            snapshots_table: "snapshots".to_owned(),
            pool_size: 16,
            checkpoint_wait: Duration::from_secs(5),
            tls,
            detector: Arc::default(),
        }
    }

    /// The schema holding aett's tables (created by `initialize` if missing).
    pub fn schema(mut self, name: impl Into<String>) -> Self {
        self.schema = name.into();
        self
    }

    /// The commits table's name.
    pub fn commits_table(mut self, name: impl Into<String>) -> Self {
        self.commits_table = name.into();
        self
    }

    /// The snapshots table's name.
    pub fn snapshots_table(mut self, name: impl Into<String>) -> Self {
        self.snapshots_table = name.into();
        self
    }

    /// The most connections the pool opens.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long [`crate::PersistenceManagement::get_from`] waits for in-flight writes that hold
    /// back already-visible later commits before it ends the stream at the last commit it can
    /// hand out without a gap (5 s by default; see the backend's documentation).
    pub fn checkpoint_wait(mut self, wait: Duration) -> Self {
        self.checkpoint_wait = wait;
        self
    }

    /// TLS settings.
    pub fn tls(mut self, tls: PostgresTls) -> Self {
        self.tls = tls;
        self
    }

    /// The conflict detector consulted when a commit loses a race.
    pub fn conflict_detector(mut self, detector: Arc<ConflictDetector>) -> Self {
        self.detector = detector;
        self
    }
}
