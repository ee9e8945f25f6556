//! Configuration of the DynamoDB backend.

use std::sync::Arc;
use std::time::Duration;

use crate::conflict::ConflictDetector;
use crate::error::StoreError;

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

    /// The configuration a store URL names: `dynamodb://TABLE`, with `?region=…` and
    /// `?endpoint=…` (percent-encoded) as options.
    ///
    /// ```
    /// # #[cfg(feature = "dynamodb")] {
    /// let config = aett::DynamoConfig::from_url(
    ///     "dynamodb://bank_events?region=eu-west-1&endpoint=http%3A%2F%2Flocalhost%3A8000",
    /// )?;
    /// # let _ = config; }
    /// # Ok::<(), aett::StoreError>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let invalid = |reason: &str| {
            StoreError::Configuration(format!(
                "`{url}`: {reason} (dynamodb://TABLE?region=…&endpoint=…)"
            ))
        };
        let parsed = url::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
        if parsed.scheme() != "dynamodb" {
            return Err(invalid("not a dynamodb:// URL"));
        }
        let table = parsed.host_str().unwrap_or_default();
        let extra =
            !parsed.username().is_empty() || parsed.password().is_some() || parsed.port().is_some();
        if table.is_empty() || extra || !matches!(parsed.path(), "" | "/") {
            return Err(invalid(
                "a dynamodb:// URL names a table and nothing else before `?`",
            ));
        }
        let mut config = Self::new(table);
        for (key, value) in parsed.query_pairs() {
            config = match key.as_ref() {
                "region" => config.region(value.into_owned()),
                "endpoint" => config.endpoint(value.into_owned()),
                other => {
                    return Err(invalid(&format!(
                        "unknown option `{other}` (known: region, endpoint)"
                    )))
                }
            };
        }
        Ok(config)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_a_table_region_and_endpoint() {
        let config = DynamoConfig::from_url(
            "dynamodb://bank_events?region=eu-west-1&endpoint=http%3A%2F%2F127.0.0.1%3A5049",
        )
        .unwrap();
        assert_eq!(config.table, "bank_events");
        assert_eq!(config.region.as_deref(), Some("eu-west-1"));
        assert_eq!(config.endpoint.as_deref(), Some("http://127.0.0.1:5049"));
        for bad in [
            "dynamodb://",
            "dynamodb://t/x",
            "dynamodb://key:secret@t",
            "dynamodb://table?colour=red",
            "s3://bucket",
        ] {
            assert!(
                matches!(
                    DynamoConfig::from_url(bad),
                    Err(StoreError::Configuration(_))
                ),
                "{bad}"
            );
        }
    }
}
