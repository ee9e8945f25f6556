//! What the AWS backends (DynamoDB, S3) share: loading the SDK's configuration, and SDK errors
//! as [`StoreError`]s.

use std::time::Duration;

#[cfg(feature = "dynamodb")]
use aws_sdk_dynamodb::{
    config::Credentials,
    error::{ProvideErrorMetadata, SdkError},
};
#[cfg(all(feature = "s3", not(feature = "dynamodb")))]
use aws_sdk_s3::{
    config::Credentials,
    error::{ProvideErrorMetadata, SdkError},
};

use crate::error::{Operation, Scope, StoreError};

/// How a backend reaches AWS: what its configuration says, the rest from the SDK's chain.
pub(crate) struct AwsSettings<'a> {
    pub region: Option<&'a str>,
    /// The region when neither the settings nor the SDK's chain name one (S3-compatible
    /// servers take any).
    pub fallback_region: Option<&'static str>,
    pub endpoint: Option<&'a str>,
    pub credentials: Option<(&'a str, &'a str)>,
    pub connect_timeout: Duration,
    pub operation_timeout: Duration,
    pub max_attempts: u32,
    /// Where the region can be set, for the error when there is none.
    pub region_hint: &'static str,
}

/// The SDK's configuration as `settings` say: the standard retry mode, the timeouts, and the
/// region, endpoint and credentials given, else the SDK's standard chain.
pub(crate) async fn load_config(
    settings: AwsSettings<'_>,
) -> Result<aws_config::SdkConfig, StoreError> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(
            aws_config::retry::RetryConfig::standard().with_max_attempts(settings.max_attempts),
        )
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(settings.connect_timeout)
                .operation_timeout(settings.operation_timeout)
                .build(),
        );
    if let Some(region) = settings.region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    } else if let Some(fallback) = settings.fallback_region {
        loader = loader.region(
            aws_config::meta::region::RegionProviderChain::default_provider().or_else(fallback),
        );
    }
    if let Some(endpoint) = settings.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some((key, secret)) = settings.credentials {
        loader = loader.credentials_provider(Credentials::new(key, secret, None, None, "aett"));
    }
    let config = tokio::time::timeout(settings.connect_timeout, loader.load())
        .await
        .map_err(|_| StoreError::Timeout {
            operation: Operation::Connect,
            scope: Scope::Store,
            after: settings.connect_timeout,
        })?;
    if config.region().is_none() {
        return Err(StoreError::Configuration(format!(
            "no AWS region: set one with {}, `?region=` in the URL, or AWS_REGION",
            settings.region_hint
        )));
    }
    Ok(config)
}

/// An SDK error that shows the service's own code and message.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct ServiceError {
    message: String,
    #[source]
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// An SDK error as a [`StoreError`]: a timeout as [`StoreError::Timeout`] (after `after`), the
/// rest as [`StoreError::Storage`] with the service's code and message.
pub(crate) fn sdk_error<E, R>(
    operation: Operation,
    scope: &Scope,
    after: Duration,
    error: SdkError<E, R>,
) -> StoreError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if let SdkError::TimeoutError(_) = &error {
        return StoreError::Timeout {
            operation,
            scope: scope.clone(),
            after,
        };
    }
    let message = match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_owned(),
        _ => {
            // The error and its causes, on one line.
            let mut message = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                message.push_str(": ");
                message.push_str(&cause.to_string());
                source = cause.source();
            }
            message
        }
    };
    StoreError::storage(
        operation,
        scope.clone(),
        ServiceError {
            message,
            source: Box::new(error),
        },
    )
}
