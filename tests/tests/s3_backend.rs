//! What the contract suite does not cover about the S3 backend: long streams across listing
//! pages, racing writers, awkward ids in keys, slots a writer left undecided, the bucket shared
//! with other data, and URLs.
#![cfg(feature = "s3")]

use std::sync::Arc;

use aett::{
    CommitAttempt, CommitLog, CommitStore, EventMessage, Headers, LogEntry, PersistenceManagement,
    S3Config, S3Store, StoreError,
};
use aett_conformance::domain::Incremented;
use aett_conformance::s3::{commit_key, config, keys, open, store, unique_bucket, PREFIX};
use aws_sdk_s3::primitives::ByteStream;
use futures::TryStreamExt;
use uuid::Uuid;

fn increments(range: std::ops::Range<i64>) -> Vec<EventMessage> {
    range
        .map(|by| EventMessage::from_event(&Incremented { by }).unwrap())
        .collect()
}

fn attempt(tenant: &str, stream: &str, sequence: u64, events: Vec<EventMessage>) -> CommitAttempt {
    let revision = sequence - 1 + events.len() as u64;
    CommitAttempt::new(tenant, stream, revision, sequence, Headers::new(), events)
}

async fn read_all(store: &S3Store, tenant: &str, stream: &str) -> Vec<aett::Commit> {
    store
        .get(tenant, stream, 0, u64::MAX)
        .try_collect()
        .await
        .expect("read the stream")
}

async fn object(store: &S3Store, key: &str) -> Option<Vec<u8>> {
    match store
        .client()
        .get_object()
        .bucket(store.bucket())
        .key(key)
        .send()
        .await
    {
        Ok(found) => Some(found.body.collect().await.unwrap().to_vec()),
        Err(_) => None,
    }
}

async fn put(store: &S3Store, key: &str, bytes: Vec<u8>) {
    store
        .client()
        .put_object()
        .bucket(store.bucket())
        .key(key)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .expect("write an object");
}

/// A stream longer than a listing page (1,000 keys) reads completely, from the start and from
/// a revision in its second page.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_of_fifteen_hundred_commits_reads_completely() {
    let store = store().await;
    let total = 1_500u64;
    let writes = futures::stream::iter(1..=total).map(|sequence| {
        let store = store.clone();
        async move {
            // One event per commit: revision = sequence.
            store
                .commit(attempt("t", "long", sequence, increments(0..1)))
                .await
                .map(drop)
        }
    });
    // In order: each commit needs the one before it.
    use futures::StreamExt;
    writes
        .buffered(1)
        .try_collect::<Vec<()>>()
        .await
        .expect("1,500 commits");
    let all = read_all(&store, "t", "long").await;
    assert_eq!(all.len() as u64, total);
    assert!(all
        .iter()
        .zip(1..)
        .all(|(commit, sequence)| commit.commit_sequence == sequence));
    let tail: Vec<aett::Commit> = store
        .get("t", "long", 1_234, u64::MAX)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(tail.first().map(|c| c.stream_revision), Some(1_234));
    assert_eq!(tail.len(), 267);
    let log: Vec<LogEntry> = store.get_from(0).try_collect().await.unwrap();
    assert_eq!(log.len() as u64, total, "the log holds every commit once");
}

/// Eight writers race for one sequence of one stream: exactly one wins, every other learns of
/// its commit, and the stream holds it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn eight_writers_racing_for_one_sequence_have_one_winner() {
    let store = store().await;
    store
        .commit(attempt("t", "hot", 1, increments(0..1)))
        .await
        .unwrap();
    for round in 2..=4u64 {
        let racers: Vec<_> = (0..8)
            .map(|writer| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .commit(attempt("t", "hot", round, increments(writer..writer + 1)))
                        .await
                })
            })
            .collect();
        let mut won = Vec::new();
        for racer in racers {
            match racer.await.unwrap() {
                Ok(commit) => won.push(commit),
                Err(StoreError::ConflictingCommit { committed, .. })
                | Err(StoreError::NonConflictingCommit { committed, .. }) => {
                    assert!(
                        committed.iter().all(|c| c.commit_sequence == round),
                        "a loser is told of the winner's commit: {committed:?}"
                    );
                }
                Err(other) => panic!("a racer failed otherwise: {other}"),
            }
        }
        assert_eq!(won.len(), 1, "round {round}: exactly one winner");
        let stream = read_all(&store, "t", "hot").await;
        assert_eq!(stream.len() as u64, round);
        assert_eq!(stream.last().unwrap().commit_id, won[0].commit_id);
    }
    let log: Vec<LogEntry> = store.get_from(0).try_collect().await.unwrap();
    assert_eq!(log.len(), 4, "losers' slots are void: {log:?}");
    let checkpoints: Vec<u64> = log.iter().map(LogEntry::checkpoint).collect();
    assert!(checkpoints.windows(2).all(|w| w[0] < w[1]));
}

/// Ids with `/`, `%`, unicode, and ids too long for a key, stay apart and round-trip.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn awkward_ids_do_not_collide() {
    let store = store().await;
    let long = "λ/".repeat(200);
    let ids = ["a/b", "a%2Fb", "a", "a/", "ü/ö%25", "%", long.as_str()];
    for (n, tenant) in ids.iter().enumerate() {
        for (m, stream) in ids.iter().enumerate() {
            let events = increments(0..(1 + (n * ids.len() + m) as i64));
            store
                .commit(attempt(tenant, stream, 1, events))
                .await
                .unwrap_or_else(|e| panic!("({tenant:?}, {stream:?}): {e}"));
        }
    }
    for (n, tenant) in ids.iter().enumerate() {
        for (m, stream) in ids.iter().enumerate() {
            let read = read_all(&store, tenant, stream).await;
            assert_eq!(read.len(), 1, "({tenant:?}, {stream:?})");
            assert_eq!(
                read[0].events.len(),
                1 + n * ids.len() + m,
                "({tenant:?}, {stream:?}) holds its own commit"
            );
            assert_eq!(
                (&*read[0].tenant_id, &*read[0].stream_id),
                (*tenant, *stream)
            );
        }
    }
    assert!(keys(&store).await.iter().all(|key| key.len() <= 1024));
}

/// A writer that claimed a log slot and stopped before its stream key: the first reader of the
/// log finishes the commit (so no later commit can come before it); a slot whose commit lost
/// the race for its key is passed over and voided.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_decide_slots_a_writer_left_undecided() {
    let store = store().await;
    let first = store
        .commit(attempt("t", "s", 1, increments(0..1)))
        .await
        .unwrap();
    let stored = object(&store, &commit_key(&store, "t", "s", 1))
        .await
        .unwrap();
    let (meta, rest) = stored.split_at(stored.iter().position(|&b| b == b'\n').unwrap());
    let slot_with = |sequence: u64, checkpoint: u64, revision: u64| {
        let mut meta: serde_json::Value = serde_json::from_slice(meta).unwrap();
        meta["seq"] = sequence.into();
        meta["checkpoint"] = checkpoint.into();
        meta["revision"] = revision.into();
        meta["id"] = Uuid::new_v4().to_string().into();
        let mut bytes = serde_json::to_vec(&meta).unwrap();
        bytes.extend_from_slice(rest);
        bytes
    };
    let slot_key = |checkpoint: u64| format!("{}log/{checkpoint:020}", store.prefix());
    // A commit of sequence 2 that reached its slot only.
    put(
        &store,
        &slot_key(first.checkpoint + 1),
        slot_with(2, first.checkpoint + 1, 2),
    )
    .await;
    // And one of sequence 1 again, which can only lose.
    put(
        &store,
        &slot_key(first.checkpoint + 2),
        slot_with(1, first.checkpoint + 2, 1),
    )
    .await;
    assert_eq!(
        read_all(&store, "t", "s").await.len(),
        1,
        "not in the stream yet"
    );

    let log: Vec<LogEntry> = store.get_from(0).try_collect().await.unwrap();
    assert_eq!(
        log.iter().map(LogEntry::checkpoint).collect::<Vec<_>>(),
        vec![first.checkpoint, first.checkpoint + 1],
        "the unfinished commit is finished, the losing one passed over"
    );
    let stream = read_all(&store, "t", "s").await;
    assert_eq!(stream.len(), 2, "the reader finished the commit");
    assert_eq!(stream[1].checkpoint, first.checkpoint + 1);
    let void = object(&store, &slot_key(first.checkpoint + 2))
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&void).contains("void"));
    // The stream goes on after it, and the next slot follows.
    let next = store
        .commit(attempt("t", "s", 3, increments(0..1)))
        .await
        .unwrap();
    assert_eq!(next.checkpoint, first.checkpoint + 3);
}

/// A prefix holding someone else's objects is refused, never dropped; dropping a store removes
/// its prefix and nothing beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_bucket_is_shared_safely() {
    let bucket = unique_bucket();
    let store = open(config(&bucket)).await;
    store
        .commit(attempt("t", "s", 1, increments(0..1)))
        .await
        .unwrap();
    put(&store, "beside/other.txt", b"someone else's".to_vec()).await;
    put(
        &store,
        "events/testing.txt",
        b"not under the prefix".to_vec(),
    )
    .await;

    let foreign = S3Store::connect(config(&bucket).prefix("beside"))
        .await
        .unwrap();
    assert!(matches!(
        foreign.initialize().await,
        Err(StoreError::Configuration(_))
    ));
    assert!(matches!(
        foreign.drop_all().await,
        Err(StoreError::Configuration(_))
    ));
    assert!(object(&store, "beside/other.txt").await.is_some());

    store.drop_all().await.unwrap();
    assert!(
        keys(&store).await.is_empty(),
        "everything under the prefix is gone"
    );
    assert!(object(&store, "beside/other.txt").await.is_some());
    assert!(object(&store, "events/testing.txt").await.is_some());
    store.initialize().await.unwrap();
    let again = store
        .commit(attempt("t", "s", 1, increments(0..1)))
        .await
        .unwrap();
    assert_eq!(again.checkpoint, 1, "a dropped store starts afresh");
}

/// `s3://` URLs open the store; an unreachable endpoint is a clear error, not a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_open_the_store_and_an_unreachable_endpoint_fails() {
    let bucket = unique_bucket();
    let endpoint = aett_conformance::s3::endpoint();
    let url = format!(
        "s3://{bucket}/{PREFIX}?region=us-east-1&endpoint={}",
        url_encode(&endpoint)
    );
    let store = aett::connect(&url).await.expect("connect by URL");
    store
        .commit(attempt("t", "s", 1, increments(0..1)))
        .await
        .unwrap();
    let direct = open(config(&bucket)).await;
    assert_eq!(read_all(&direct, "t", "s").await.len(), 1, "the same store");

    let unreachable = S3Config::new("nowhere")
        .endpoint("http://127.0.0.1:9")
        .path_style(true)
        .credentials("test", "test")
        .connect_timeout(std::time::Duration::from_secs(2))
        .max_attempts(1);
    match S3Store::connect(unreachable).await {
        Err(StoreError::Storage { .. }) | Err(StoreError::Timeout { .. }) => {}
        other => panic!("an unreachable endpoint: {other:?}"),
    }
    let _: Arc<S3Store> = direct;
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A deletion whose process died after its `Deleted` object went in (before the next
/// incarnation began and the tombstones were written) is finished by deleting again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deletion_cut_short_is_finished_by_the_next() {
    let store = store().await;
    for sequence in 1..=2 {
        store
            .commit(attempt("t", "s", sequence, increments(0..1)))
            .await
            .unwrap();
    }
    // What the dead deletion left: its object at the key after the last commit, nothing else.
    let deleted = serde_json::json!({
        "kind": "deleted", "tenant": "t", "stream": "s", "inc": 0, "seq": 3,
        "checkpoint": 99, "stamp": 0, "next": 1
    });
    put(
        &store,
        &commit_key(&store, "t", "s", 3),
        serde_json::to_vec(&deleted).unwrap(),
    )
    .await;
    // A second store, as another process, knows nothing of it.
    let other =
        open(config(store.bucket()).prefix(store.prefix().trim_end_matches('/').to_owned())).await;
    assert!(matches!(
        other.commit(attempt("t", "s", 3, increments(0..1))).await,
        Err(StoreError::NonConflictingCommit { .. })
    ));
    other.delete_stream("t", "s").await.unwrap();
    assert!(read_all(&other, "t", "s").await.is_empty());
    assert!(read_all(&store, "t", "s").await.is_empty());
    let restarted = other
        .commit(attempt("t", "s", 1, increments(0..1)))
        .await
        .expect("the stream starts again at sequence 1");
    assert_eq!(read_all(&store, "t", "s").await, vec![restarted]);
    let log: Vec<LogEntry> = store.get_from(0).try_collect().await.unwrap();
    assert_eq!(log.len(), 1, "the deleted commits left the log: {log:?}");
}
