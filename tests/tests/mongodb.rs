//! The contract suite against MongoDB, each test in a database of its own.
#![cfg(feature = "mongodb")]

use std::sync::Arc;

use aett::{ConflictDetector, MongoConfig, MongoStore, PersistenceManagement};
use aett_conformance::mongodb::{unique_database, url};
use mongodb::bson::{doc, Document};

struct MongoHarness;

impl aett_conformance::Harness for MongoHarness {
    type Store = MongoStore;

    const EXACTLY_ONCE: bool = true;

    async fn store(&self, detector: ConflictDetector) -> Arc<MongoStore> {
        let config = MongoConfig::new(url())
            .database(unique_database())
            .conflict_detector(Arc::new(detector));
        let store = MongoStore::connect(config)
            .await
            .expect("connect to the test server");
        store.initialize().await.expect("initialize");
        Arc::new(store)
    }

    async fn corrupt_events(
        &self,
        store: &MongoStore,
        tenant: &str,
        stream: &str,
        commit_sequence: u64,
    ) -> bool {
        let changed = store
            .database()
            .collection::<Document>(store.commits_collection())
            .update_one(
                doc! {"tenant_id": tenant, "stream_id": stream, "commit_sequence": commit_sequence as i64},
                doc! {"$set": {"events": "not json"}},
            )
            .await
            .expect("damage a document");
        assert_eq!(changed.modified_count, 1);
        true
    }
}

aett_conformance::contract_suite!(MongoHarness);
