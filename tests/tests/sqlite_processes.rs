//! Two processes writing one SQLite file: each commit succeeds or is a typed concurrency
//! error that the writer retries — never "database is locked" — and nothing is lost.

use std::collections::HashSet;
use std::process::Command;

use aett::{CommitStore, PersistenceManagement, SqliteStore};
use aett_conformance::domain::Incremented;
use futures::TryStreamExt;

#[tokio::test]
async fn two_processes_on_one_file_lose_and_duplicate_nothing() {
    const COMMITS: i64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let store = SqliteStore::open(&path).unwrap();
    store.initialize().await.unwrap();

    let writers: Vec<_> = (1..=2)
        .map(|writer| {
            Command::new(env!("CARGO_BIN_EXE_sqlite-writer"))
                .arg(&path)
                .arg(writer.to_string())
                .arg(COMMITS.to_string())
                .spawn()
                .expect("start writer process")
        })
        .collect();
    for mut writer in writers {
        let status = writer.wait().unwrap();
        assert!(status.success(), "a writer process failed: {status}");
    }

    let commits: Vec<_> = store
        .get("tenant", "shared", 0, u64::MAX)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(commits.len(), 2 * COMMITS as usize);
    let mut seen = HashSet::new();
    for (index, commit) in commits.iter().enumerate() {
        assert_eq!(
            (commit.commit_sequence, commit.stream_revision),
            (index as u64 + 1, index as u64 + 1)
        );
        let by = commit.events[0].decode::<Incremented>().unwrap().by;
        assert!(seen.insert(by), "event {by} stored twice");
    }
    for writer in 1..=2 {
        for n in 1..=COMMITS {
            assert!(
                seen.contains(&(writer * 1_000_000 + n)),
                "writer {writer} commit {n} lost"
            );
        }
    }
}
