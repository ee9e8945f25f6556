//! The contract suite against PostgreSQL, each test in a schema of its own.
#![cfg(feature = "postgres")]

use std::sync::Arc;

use aett::{ConflictDetector, PersistenceManagement, PostgresConfig, PostgresStore};
use aett_conformance::postgres::{raw_client, unique_schema, url};

struct PostgresHarness;

impl aett_conformance::Harness for PostgresHarness {
    type Store = PostgresStore;

    const EXACTLY_ONCE: bool = true;

    async fn store(&self, detector: ConflictDetector) -> Arc<PostgresStore> {
        let config = PostgresConfig::new(url())
            .schema(unique_schema())
            .pool_size(10)
            .conflict_detector(Arc::new(detector));
        let store = PostgresStore::connect(config)
            .await
            .expect("connect to the test server");
        store.initialize().await.expect("initialize");
        Arc::new(store)
    }

    async fn corrupt_events(
        &self,
        store: &PostgresStore,
        tenant: &str,
        stream: &str,
        commit_sequence: u64,
    ) -> bool {
        let sql = format!(
            "UPDATE \"{}\".\"{}\" SET events = '\\x7b6e6f74206a736f6e'::bytea
             WHERE tenant_id = $1 AND stream_id = $2 AND commit_sequence = $3",
            store.schema(),
            store.commits_table()
        );
        let changed = raw_client()
            .await
            .execute(&sql, &[&tenant, &stream, &(commit_sequence as i64)])
            .await
            .expect("damage a row");
        assert_eq!(changed, 1);
        true
    }
}

aett_conformance::contract_suite!(PostgresHarness);
