//! Reaching the DynamoDB-compatible server the tests run against.

use std::sync::Arc;

use aett::{ConflictDetector, DynamoConfig, DynamoStore, PersistenceManagement};

/// The variable that holds the test server's endpoint.
pub const ENDPOINT_VARIABLE: &str = "AETT_DYNAMODB_ENDPOINT";

/// The test server's endpoint. Panics, saying how to provide one, when it is not set: a
/// DynamoDB test never passes without a server.
pub fn endpoint() -> String {
    std::env::var(ENDPOINT_VARIABLE).unwrap_or_else(|_| {
        panic!(
            "{ENDPOINT_VARIABLE} is not set, so there is no DynamoDB server to test against. \
             Run scripts/test-all.sh, which starts a throwaway server (scripts/aws-test-server.sh), \
             or start one yourself and set {ENDPOINT_VARIABLE}=http://127.0.0.1:5049"
        )
    })
}

/// A table name no other test uses.
pub fn unique_table() -> String {
    format!("aett_test_{}", uuid::Uuid::new_v4().simple())
}

/// The configuration of a store in `table` on the test server (any credentials work there).
pub fn config(table: &str) -> DynamoConfig {
    DynamoConfig::new(table)
        .endpoint(endpoint())
        .region("us-east-1")
        .credentials("test", "test")
}

/// A fresh, initialised store in a table of its own that decides conflicts with `detector`.
pub async fn store_with(detector: ConflictDetector) -> Arc<DynamoStore> {
    let config = config(&unique_table()).conflict_detector(Arc::new(detector));
    let store = DynamoStore::connect(config).await.unwrap_or_else(|e| {
        panic!(
            "cannot reach the DynamoDB test server at {} ({e}); start it with scripts/aws-test-server.sh start",
            endpoint()
        )
    });
    store.initialize().await.expect("initialize");
    Arc::new(store)
}

/// A fresh, initialised store in a table of its own.
pub async fn store() -> Arc<DynamoStore> {
    store_with(ConflictDetector::default()).await
}

/// Creates a table of another program's on the test server, keyed by `keys`: (attribute,
/// type, hash or range).
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    keys: &[(
        &str,
        aws_sdk_dynamodb::types::ScalarAttributeType,
        aws_sdk_dynamodb::types::KeyType,
    )],
) {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement};
    let mut request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest);
    for (name, kind, role) in keys {
        request = request
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(*name)
                    .attribute_type(kind.clone())
                    .build()
                    .expect("an attribute definition"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(*name)
                    .key_type(role.clone())
                    .build()
                    .expect("a key schema element"),
            );
    }
    request.send().await.expect("create a table");
}
