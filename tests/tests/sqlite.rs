//! The contract suite against SQLite, each test on its own database file.

use std::sync::Arc;

use aett::{ConflictDetector, PersistenceManagement, SqliteConfig, SqliteStore};

struct SqliteHarness {
    dir: tempfile::TempDir,
}

impl SqliteHarness {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("store.db")
    }
}

impl aett_conformance::Harness for SqliteHarness {
    type Store = SqliteStore;

    const EXACTLY_ONCE: bool = true;

    async fn store(&self, detector: ConflictDetector) -> Arc<SqliteStore> {
        let config = SqliteConfig::new(self.path()).conflict_detector(Arc::new(detector));
        let store = SqliteStore::with_config(config).expect("open store");
        store.initialize().await.expect("initialize");
        Arc::new(store)
    }

    async fn corrupt_events(
        &self,
        _: &SqliteStore,
        tenant: &str,
        stream: &str,
        commit_sequence: u64,
    ) -> bool {
        let connection = rusqlite::Connection::open(self.path()).expect("open file");
        let changed = connection
            .execute(
                "UPDATE commits SET events = x'7b6e6f74206a736f6e' WHERE tenant_id = ?1 AND stream_id = ?2 AND commit_sequence = ?3",
                rusqlite::params![tenant, stream, commit_sequence as i64],
            )
            .expect("damage a row");
        assert_eq!(changed, 1);
        true
    }
}

aett_conformance::contract_suite!(SqliteHarness::new());
