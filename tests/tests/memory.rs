//! The contract suite against the in-memory store.

use std::sync::Arc;

use aett::{ConflictDetector, InMemoryStore};

struct MemoryHarness;

impl aett_conformance::Harness for MemoryHarness {
    type Store = InMemoryStore;

    const EXACTLY_ONCE: bool = false;

    async fn store(&self, detector: ConflictDetector) -> Arc<InMemoryStore> {
        Arc::new(InMemoryStore::with_conflict_detector(Arc::new(detector)))
    }

    async fn corrupt_events(&self, _: &InMemoryStore, _: &str, _: &str, _: u64) -> bool {
        false
    }
}

aett_conformance::contract_suite!(MemoryHarness);
