//! Reaching the S3-compatible server the tests run against.

use std::sync::Arc;

use aett::{ConflictDetector, PersistenceManagement, S3Config, S3Store};

/// The variable that holds the test server's endpoint.
pub const ENDPOINT_VARIABLE: &str = "AETT_S3_ENDPOINT";

/// The key prefix the tests' stores live under.
pub const PREFIX: &str = "events/test";

/// The test server's endpoint. Panics, saying how to provide one, when it is not set: an S3
/// test never passes without a server.
pub fn endpoint() -> String {
    std::env::var(ENDPOINT_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{ENDPOINT_VARIABLE} is not set, so there is no S3 server to test against. \
             Run scripts/test-all.sh, which starts a throwaway server (scripts/aws-test-server.sh), \
             or start one yourself and set {ENDPOINT_VARIABLE}=http://127.0.0.1:5049"
        )
    })
}

/// A bucket name no other test uses.
pub fn unique_bucket() -> String {
    format!("aett-test-{}", uuid::Uuid::new_v4().simple())
}

/// The configuration of a store in `bucket` under [`PREFIX`] on the test server (any
/// credentials work there).
pub fn config(bucket: &str) -> S3Config {
    S3Config::new(bucket)
        .prefix(PREFIX)
        .endpoint(endpoint())
        .path_style(true)
        .region("us-east-1")
        .credentials("test", "test")
}

/// A store as `config` says, connected and initialised.
pub async fn open(config: S3Config) -> Arc<S3Store> {
    let store = S3Store::connect(config).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach the S3 test server at {} ({e}); start it with scripts/aws-test-server.sh start",
            endpoint()
        )
    });
    store.initialize().await.expect("initialize");
    Arc::new(store)
}

/// A fresh, initialised store in a bucket of its own that decides conflicts with `detector`.
pub async fn store_with(detector: ConflictDetector) -> Arc<S3Store> {
    open(config(&unique_bucket()).conflict_detector(Arc::new(detector))).await
}

/// A fresh, initialised store in a bucket of its own.
pub async fn store() -> Arc<S3Store> {
    store_with(ConflictDetector::default()).await
}

/// An id as a segment of a key, as the layout documents it (ids up to 160 bytes).
pub fn segment(id: &str) -> String {
    let hex: String = id.bytes().map(|b| format!("{b:02x}")).collect();
    format!("x{hex}")
}

/// The key of a commit of a stream never deleted, as the layout documents it.
pub fn commit_key(store: &S3Store, tenant: &str, stream: &str, sequence: u64) -> String {
    format!(
        "{}c/{}/{}/{:010}/{sequence:020}",
        store.prefix(),
        segment(tenant),
        segment(stream),
        0
    )
}

/// Every key under the store's prefix.
pub async fn keys(store: &S3Store) -> Vec<String> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = store
            .client()
            .list_objects_v2()
            .bucket(store.bucket())
            .prefix(store.prefix())
            .set_continuation_token(token)
            .send()
            .await
            .expect("list the store's keys");
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|object| object.key().map(str::to_owned)),
        );
        token = page.next_continuation_token().map(str::to_owned);
        if token.is_none() {
            return keys;
        }
    }
}
