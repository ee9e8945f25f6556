//! The contract suite against DynamoDB, each test in a table of its own.
#![cfg(feature = "dynamodb")]

use std::collections::HashMap;
use std::sync::Arc;

use aett::{ConflictDetector, DynamoStore};
use aett_conformance::dynamodb::store_with;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

struct DynamoHarness;

impl aett_conformance::Harness for DynamoHarness {
    type Store = DynamoStore;

    const EXACTLY_ONCE: bool = true;

    async fn store(&self, detector: ConflictDetector) -> Arc<DynamoStore> {
        store_with(detector).await
    }

    async fn corrupt_events(
        &self,
        store: &DynamoStore,
        tenant: &str,
        stream: &str,
        commit_sequence: u64,
    ) -> bool {
        // The stream's partition key, as the layout documents it (short ids).
        let pk = format!("S{}:{tenant}{stream}", tenant.len());
        let items = store
            .client()
            .query()
            .table_name(store.table())
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk))
            .consistent_read(true)
            .send()
            .await
            .expect("query the stream")
            .items
            .unwrap_or_default();
        let wanted = AttributeValue::N(commit_sequence.to_string());
        let mut item: HashMap<String, AttributeValue> = items
            .into_iter()
            .find(|item| {
                matches!(item.get("sk"), Some(AttributeValue::S(sk)) if sk.starts_with('c'))
                    && item.get("commit_sequence") == Some(&wanted)
            })
            .expect("the commit to damage");
        item.insert(
            "events".to_owned(),
            AttributeValue::B(Blob::new(b"not json".to_vec())),
        );
        store
            .client()
            .put_item()
            .table_name(store.table())
            .set_item(Some(item))
            .send()
            .await
            .expect("damage an item");
        true
    }
}

aett_conformance::contract_suite!(DynamoHarness);
