//! Configuration of the PostgreSQL backend.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::conflict::ConflictDetector;

/// Whether and how connections use TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PostgresTls {
    /// Plain TCP (for loopback and private networks).
    #[default]
    Disabled,
    /// TLS required, the server's certificate checked against Mozilla's root certificates, the
    /// operating system's if asked for, and the PEM file given, if any (for a private CA, as
    /// managed services often use). Needs the `postgres-tls` feature.
    Required {
        /// Extra CA certificates (PEM) to trust.
        ca_file: Option<PathBuf>,
        /// Also trust the operating system's root certificates.
        system_roots: bool,
    },
}

impl PostgresTls {
    /// TLS required, trusting Mozilla's roots and the CA certificates in `ca_file`, if given.
    pub fn required(ca_file: Option<PathBuf>) -> Self {
        Self::Required {
            ca_file,
            system_roots: false,
        }
    }
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
    pub(crate) connect_timeout: Duration,
    pub(crate) pool_wait_timeout: Duration,
    pub(crate) statement_timeout: Duration,
    /// `None`: as the URL's `sslmode` says.
    pub(crate) tls: Option<PostgresTls>,
    pub(crate) detector: Arc<ConflictDetector>,
    pub(crate) notify_interval: Option<Duration>,
}

impl PostgresConfig {
    /// Defaults for the server at `url` (`postgres://user:password@host:port/database`, or a
    /// libpq key=value string): schema `public`, tables `commits` and `snapshots`, 16 pooled
    /// connections, TLS as the URL's `sslmode` says (read by the driver's own parser:
    /// `require` turns it on), the default conflict detector, and these timeouts:
    ///
    /// | timeout | default | what it bounds |
    /// |---|---|---|
    /// | [`connect_timeout`](Self::connect_timeout) | 10 s | opening one connection, TLS and login included |
    /// | [`pool_wait_timeout`](Self::pool_wait_timeout) | 30 s | waiting for a pooled connection to come free |
    /// | [`statement_timeout`](Self::statement_timeout) | 30 s | each statement, on the server and in the client |
    ///
    /// Each that runs out is [`crate::StoreError::Timeout`].
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            schema: "public".to_owned(),
            commits_table: "commits".to_owned(),
            snapshots_table: "snapshots".to_owned(),
            pool_size: 16,
            checkpoint_wait: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
            pool_wait_timeout: Duration::from_secs(30),
            statement_timeout: Duration::from_secs(30),
            tls: None,
            detector: Arc::default(),
            notify_interval: Some(Duration::from_millis(5)),
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

    /// How long [`crate::CommitLog::get_from`] waits for in-flight writes that hold
    /// back already-visible later commits before it ends the stream at the last commit it can
    /// hand out without a gap (5 s by default; see the backend's documentation).
    pub fn checkpoint_wait(mut self, wait: Duration) -> Self {
        self.checkpoint_wait = wait;
        self
    }

    /// How long opening one connection (TCP, TLS, login) may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long an operation waits for a pooled connection when all are busy.
    pub fn pool_wait_timeout(mut self, timeout: Duration) -> Self {
        self.pool_wait_timeout = timeout;
        self
    }

    /// How long one statement may run: set as the server's `statement_timeout` and enforced in
    /// the client too, so a server that stops answering cannot hold a caller forever.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// TLS settings, overriding the URL's `sslmode`.
    pub fn tls(mut self, tls: PostgresTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// How often, at most, the store tells followers of the log in other processes (projection
    /// runners on stores of their own) that it committed: one `NOTIFY` after a burst of commits,
    /// then none for this long (5 ms by default), so a busy writer does not pay a statement per
    /// commit and a follower elsewhere wakes within about this long. `None` sends none: such
    /// followers then find new commits by polling.
    pub fn notify_interval(mut self, interval: Option<Duration>) -> Self {
        self.notify_interval = interval;
        self
    }

    /// The conflict detector consulted when a commit loses a race.
    pub fn conflict_detector(mut self, detector: Arc<ConflictDetector>) -> Self {
        self.detector = detector;
        self
    }
}
