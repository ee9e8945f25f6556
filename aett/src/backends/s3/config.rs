//! Configuration of the S3 backend.

use std::sync::Arc;
use std::time::Duration;

use crate::conflict::ConflictDetector;
use crate::error::StoreError;

/// Where an S3 store lives and how it reaches it.
///
/// Credentials and, unless given here, the region come from the AWS SDK's standard chain
/// (environment, shared config and credentials files, SSO, web identity, container and instance
/// roles), unless [`credentials`](Self::credentials) sets them. With an
/// [`endpoint`](Self::endpoint) (an S3-compatible store) and no region anywhere, the region is
/// `us-east-1`.
///
/// ```
/// # #[cfg(feature = "s3")] {
/// let config = aett::S3Config::new("bank-events")
///     .prefix("production")
///     .endpoint("http://localhost:9000")
///     .path_style(true);
/// # let _ = config; }
/// ```
#[derive(Debug, Clone)]
pub struct S3Config {
    pub(crate) bucket: String,
    pub(crate) prefix: String,
    pub(crate) region: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) path_style: bool,
    pub(crate) credentials: Option<(String, String)>,
    pub(crate) connect_timeout: Duration,
    pub(crate) operation_timeout: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) cache_bytes: usize,
    pub(crate) detector: Arc<ConflictDetector>,
}

impl S3Config {
    /// Defaults for the bucket `bucket`: no key prefix (the store is the whole bucket), the
    /// SDK's region and endpoint, virtual-hosted addressing, the default conflict detector,
    /// 5 attempts per request (the SDK's standard retry mode, which retries throttling and
    /// transient errors with backoff), and these timeouts:
    ///
    /// | timeout | default | what it bounds |
    /// |---|---|---|
    /// | [`connect_timeout`](Self::connect_timeout) | 10 s | opening a connection, and the check that the service answers |
    /// | [`operation_timeout`](Self::operation_timeout) | 30 s | each request, retries included |
    ///
    /// Each that runs out is [`crate::StoreError::Timeout`]. It keeps up to 64 MiB of objects
    /// in memory ([`cache_bytes`](Self::cache_bytes)).
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            prefix: String::new(),
            region: None,
            endpoint: None,
            path_style: false,
            credentials: None,
            connect_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            max_attempts: 5,
            cache_bytes: 64 << 20,
            detector: Arc::default(),
        }
    }

    /// The configuration a store URL names: `s3://BUCKET` or `s3://BUCKET/PREFIX`, with
    /// `?region=…` and `?endpoint=…` (percent-encoded) as options. An endpoint turns path-style
    /// addressing on (what S3-compatible servers expect); `?path_style=false` turns it off.
    ///
    /// ```
    /// # #[cfg(feature = "s3")] {
    /// let config = aett::S3Config::from_url(
    ///     "s3://bank-events/production?region=eu-west-1&endpoint=http%3A%2F%2Flocalhost%3A9000",
    /// )?;
    /// # let _ = config; }
    /// # Ok::<(), aett::StoreError>(())
    /// ```
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let invalid = |reason: &str| {
            StoreError::Configuration(format!(
                "`{url}`: {reason} (s3://BUCKET/PREFIX?region=…&endpoint=…)"
            ))
        };
        let parsed = url::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
        if parsed.scheme() != "s3" {
            return Err(invalid("not an s3:// URL"));
        }
        let bucket = parsed.host_str().unwrap_or_default();
        let extra =
            !parsed.username().is_empty() || parsed.password().is_some() || parsed.port().is_some();
        if bucket.is_empty() || extra {
            return Err(invalid(
                "an s3:// URL names a bucket and, after it, a key prefix",
            ));
        }
        let prefix = percent_encoding::percent_decode_str(parsed.path())
            .decode_utf8()
            .map_err(|e| invalid(&format!("the prefix is not UTF-8: {e}")))?;
        let mut config = Self::new(bucket).prefix(prefix.trim_matches('/'));
        let mut path_style = None;
        for (key, value) in parsed.query_pairs() {
            config = match key.as_ref() {
                "region" => config.region(value.into_owned()),
                "endpoint" => config.endpoint(value.into_owned()),
                "path_style" => {
                    path_style = Some(match value.as_ref() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid("path_style is true or false")),
                    });
                    config
                }
                other => {
                    return Err(invalid(&format!(
                        "unknown option `{other}` (known: region, endpoint, path_style)"
                    )))
                }
            };
        }
        let path_style = path_style.unwrap_or(config.endpoint.is_some());
        Ok(config.path_style(path_style))
    }

    /// The key prefix the store keeps everything under (`production` puts it under
    /// `production/`), so one bucket holds several stores, or other data beside one.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The AWS region, overriding the SDK's chain (`AWS_REGION`, the profile's region).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Another endpoint than AWS's, for an S3-compatible store (`http://127.0.0.1:9000`).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Path-style addressing (`ENDPOINT/BUCKET/KEY` rather than `BUCKET.ENDPOINT/KEY`), which
    /// most S3-compatible stores need.
    pub fn path_style(mut self, path_style: bool) -> Self {
        self.path_style = path_style;
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

    /// How long one request, retries included, may take.
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

    /// How many bytes of objects the store keeps in memory (default 64 MiB; 0 keeps none).
    /// Commits never change, so a read of a stream or of the log fetches only the objects it
    /// has not seen; each listing says (by ETag) whether a kept object is still current.
    pub fn cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_bytes = bytes;
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
    fn urls_name_a_bucket_prefix_region_and_endpoint() {
        let config = S3Config::from_url(
            "s3://bank-events/prod/eu?region=eu-west-1&endpoint=http%3A%2F%2F127.0.0.1%3A5049",
        )
        .unwrap();
        assert_eq!(config.bucket, "bank-events");
        assert_eq!(config.prefix, "prod/eu");
        assert_eq!(config.region.as_deref(), Some("eu-west-1"));
        assert_eq!(config.endpoint.as_deref(), Some("http://127.0.0.1:5049"));
        assert!(config.path_style);
        let plain = S3Config::from_url("s3://bank-events").unwrap();
        assert_eq!((plain.prefix.as_str(), plain.path_style), ("", false));
        for bad in [
            "s3://",
            "s3://key:secret@bucket",
            "s3://bucket?colour=red",
            "s3://bucket?path_style=maybe",
            "dynamodb://table",
        ] {
            assert!(
                matches!(S3Config::from_url(bad), Err(StoreError::Configuration(_))),
                "{bad}"
            );
        }
    }
}
