//! Configuration of the DynamoDB backend.

use std::sync::Arc;
use std::time::Duration;

use crate::conflict::ConflictDetector;

/// Where a DynamoDB store lives and how it reaches it.
///
/// Credentials and, unless given here, the region come from the AWS SDK's standard chain
/// (environment, shared config and credentials files, SSO, web identity, container and instance
/// roles), unless [`credentials`](Self::credentials) sets them.
///
/// ```
/// # #[cfg(feature = "dynamodb")] {
/// let config = aett::DynamoConfig::new("bank_events")
///     .region("eu-west-1")
///     .endpoint("http://localhost:8000");
/// # let _ = config; }
/// ```
#[derive(Debug, Clone)]
pub struct DynamoConfig {
    pub(crate) table: String,
    pub(crate) region: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) credentials: Option<(String, String)>,
    pub(crate) connect_timeout: Duration,
    pub(crate) operation_timeout: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) detector: Arc<ConflictDetector>,
}

impl DynamoConfig {
    /// Defaults for the table `table` (3 to 255 characters: letters, digits, `_`, `-`, `.`):
    /// the SDK's region and endpoint, the default conflict detector, 5 attempts per request
    /// (the SDK's standard retry mode, which retries throttling and transient errors with
    /// backoff), and these timeouts:
    ///
    /// | timeout | default | what it bounds |
    /// |---|---|---|
    /// | [`connect_timeout`](Self::connect_timeout) | 10 s | opening a connection, and the check that the service answers |
    /// | [`operation_timeout`](Self::operation_timeout) | 30 s | each operation, retries included |
    ///
    /// Each that runs out is [`crate::StoreError::Timeout`].
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            region: None,
            endpoint: None,
            credentials: None,
            connect_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            max_attempts: 5,
            detector: Arc::default(),
        }
    }

    /// The AWS region, overriding the SDK's chain (`AWS_REGION`, the profile's region).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Another endpoint than AWS's, for a local server (`http://127.0.0.1:8000`).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Fixed credentials instead of the SDK's chain (a local server accepts any).
    pub fn credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        self.credentials = Some((access_key_id.into(), secret_access_key.into()));
        self
    }

    /// How long opening a connection may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one operation, retries included, may take.
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.operation_timeout = timeout;
        self
    }

    /// How many times the SDK sends a request that meets throttling or a transient error
    /// (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The conflict detector consulted when a commit loses a race.
    pub fn conflict_detector(mut self, detector: Arc<ConflictDetector>) -> Self {
        self.detector = detector;
        self
    }
}
