//! What DynamoDB needs beyond the contract suite: commits larger than an item and than a
//! transaction, keys that cannot collide, a reader beside writers, exactly once with a read
//! model written in the checkpoint's transaction, setup errors and URLs.
#![cfg(feature = "dynamodb")]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aett::{
    Commit, CommitAttempt, CommitLog, CommitStore, DynamoStore, EventMessage, Headers, LogEntry,
    PersistenceManagement, StoreError,
};
use aett_conformance::domain::Incremented;
use aett_conformance::dynamodb::{config, create_table, endpoint, store, unique_table};
use aws_sdk_dynamodb::types::{
    AttributeValue, KeyType, Put, ScalarAttributeType, TransactWriteItem,
};
use futures::TryStreamExt;

fn increment(by: i64) -> Vec<EventMessage> {
    vec![EventMessage::from_event(&Incremented { by }).unwrap()]
}

/// An event whose body is a string of `bytes` bytes.
fn large(bytes: usize) -> EventMessage {
    EventMessage::from_event(&aett_conformance::domain::Note {
        text: "x".repeat(bytes),
        tags: Vec::new(),
        weight: None,
    })
    .unwrap()
}

async fn append(
    store: &DynamoStore,
    tenant: &str,
    stream: &str,
    sequence: u64,
    revision: u64,
    events: Vec<EventMessage>,
) -> Result<Commit, StoreError> {
    store
        .commit(CommitAttempt::new(
            tenant,
            stream,
            revision,
            sequence,
            Headers::new(),
            events,
        ))
        .await
}

async fn read(store: &DynamoStore, tenant: &str, stream: &str) -> Vec<Commit> {
    store
        .get(tenant, stream, 0, u64::MAX)
        .try_collect()
        .await
        .unwrap()
}

/// How many items the table holds, all kinds together.
async fn item_count(store: &DynamoStore) -> usize {
    let mut count = 0;
    let mut start = None;
    loop {
        let page = store
            .client()
            .scan()
            .table_name(store.table())
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        count += page.items.unwrap_or_default().len();
        match page.last_evaluated_key {
            Some(key) => start = Some(key),
            None => return count,
        }
    }
}

/// A commit larger than DynamoDB's 400 KB item is split across items written in its one
/// transaction, and reads back whole from the stream, the log and a replay.
#[tokio::test]
async fn a_commit_larger_than_an_item_is_split_and_reads_back_whole() {
    let store = store().await;
    let events = vec![large(300_000), large(300_000), large(250_000)];
    let commit = append(&store, "t", "big", 1, 3, events).await.unwrap();
    let after = append(&store, "t", "big", 2, 4, increment(1))
        .await
        .unwrap();
    assert_eq!(
        read(&store, "t", "big").await,
        vec![commit.clone(), after.clone()]
    );
    let logged: Vec<LogEntry> = store.get_from(0).try_collect().await.unwrap();
    assert_eq!(
        logged,
        vec![LogEntry::Commit(commit.clone()), LogEntry::Commit(after)]
    );
    let replayed: Vec<_> = store
        .get_for_replay("t", "big", 1, 3)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].event_count, 3);
    // From a revision inside the large commit: the read starts at the commit holding it.
    let from_two: Vec<Commit> = store.get("t", "big", 2, 2).try_collect().await.unwrap();
    assert_eq!(from_two, vec![commit]);
}

/// A commit beyond what one transaction can write is refused, typed, before anything is
/// written: no item, no checkpoint used.
#[tokio::test]
async fn a_commit_too_large_for_one_transaction_is_refused_and_writes_nothing() {
    let store = store().await;
    let before = item_count(&store).await;
    let events: Vec<_> = (0..12).map(|_| large(350_000)).collect();
    match append(&store, "t", "huge", 1, 12, events).await {
        Err(StoreError::InvalidCommit { reason, .. }) => {
            assert!(reason.contains("at most"), "{reason}")
        }
        other => panic!("expected an invalid commit, got {other:?}"),
    }
    assert_eq!(item_count(&store).await, before, "nothing was written");
    assert!(read(&store, "t", "huge").await.is_empty());
    let next = append(&store, "t", "small", 1, 1, increment(1))
        .await
        .unwrap();
    assert_eq!(next.checkpoint, 1, "no checkpoint was used up");
}

/// Tenant "a" with stream "bc" and tenant "ab" with stream "c" are two streams, and ids too
/// long for a key (hashed) stay apart too.
#[tokio::test]
async fn keys_of_different_streams_never_collide() {
    let store = store().await;
    let long = "l".repeat(2100);
    let pairs = [
        ("a".to_owned(), "bc".to_owned()),
        ("ab".to_owned(), "c".to_owned()),
        (long.clone(), "s".to_owned()),
        (long.clone(), "t".to_owned()),
        ("x".to_owned(), long.clone()),
        ("x".to_owned(), format!("{long}y")),
    ];
    let mut written = Vec::new();
    for (index, (tenant, stream)) in pairs.iter().enumerate() {
        let commit = append(&store, tenant, stream, 1, 1, increment(index as i64))
            .await
            .unwrap();
        written.push(commit);
    }
    for ((tenant, stream), commit) in pairs.iter().zip(written) {
        assert_eq!(read(&store, tenant, stream).await, vec![commit]);
    }
}

/// Writers commit concurrently while a reader follows `get_from` from the last checkpoint it
/// saw: the reader sees every commit once, in order, and checkpoints are dense.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checkpoint_reader_running_beside_writers_sees_every_commit() {
    let all = aett_conformance::log_order::a_reader_beside_writers_sees_every_commit(
        store().await,
        8,
        15,
    )
    .await;
    let checkpoints: Vec<u64> = all.iter().map(|c| c.checkpoint).collect();
    assert_eq!(checkpoints, (1..=all.len() as u64).collect::<Vec<_>>());
}

/// Writes one item per event it handles into a table of the application's, through the
/// runner's transaction, and fails after pushing the event `fail_on`.
#[derive(aett::Projection)]
#[projection(name = "applied", events(Incremented))]
struct AppliedItems {
    table: String,
    fail_on: Option<i64>,
}

impl aett::Project<Incremented> for AppliedItems {
    async fn project(
        &mut self,
        event: Incremented,
        context: &aett::EventContext<'_>,
    ) -> Result<(), aett::BoxError> {
        let tx = context
            .transaction::<aett::DynamoTransaction>()
            .ok_or("exactly once on DynamoDB hands the handler a DynamoTransaction")?;
        let put = Put::builder()
            .table_name(&self.table)
            .item("id", AttributeValue::S(uuid::Uuid::new_v4().to_string()))
            .item("by", AttributeValue::N(event.by.to_string()))
            .build()?;
        tx.push(TransactWriteItem::builder().put(put).build());
        if self.fail_on == Some(event.by) {
            return Err("failing after the read model's write, before the checkpoint".into());
        }
        Ok(())
    }
}

/// Exactly once: the read model's writes go in the transaction that advances the checkpoint;
/// failed runs leave nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_once_keeps_the_read_model_and_the_checkpoint_together() {
    let store = store().await;
    let table = unique_table();
    create_table(
        store.client(),
        &table,
        &[("id", ScalarAttributeType::S, KeyType::Hash)],
    )
    .await;
    let runner_store = store.clone();
    let runner_table = table.clone();
    let round = move |fail_on: Option<i64>| {
        let (store, table) = (runner_store.clone(), runner_table.clone());
        async move {
            aett::ProjectionRunner::new(&store, AppliedItems { table, fail_on })
                .delivery(aett::Delivery::ExactlyOnce)
                .batch_size(16)
                .catch_up()
                .await
                .map(drop)
        }
    };
    let client = store.client().clone();
    let applied = || async move {
        let items = client
            .scan()
            .table_name(&table)
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .items
            .unwrap_or_default();
        let mut counts: HashMap<i64, u64> = HashMap::new();
        for item in items {
            let Some(AttributeValue::N(by)) = item.get("by") else {
                panic!("an applied item without `by`")
            };
            *counts.entry(by.parse().unwrap()).or_default() += 1;
        }
        counts
    };
    aett_conformance::read_side::exactly_once::check(store.clone(), round, applied).await;
}

/// A table of another key schema, or one holding items that are not aett's, is refused by
/// `initialize` and never dropped.
#[tokio::test]
async fn tables_that_are_not_aetts_are_refused_and_never_dropped() {
    let probe = store().await;
    let client = probe.client();
    // Another key schema.
    let other_shape = unique_table();
    create_table(
        client,
        &other_shape,
        &[("id", ScalarAttributeType::S, KeyType::Hash)],
    )
    .await;
    let store = DynamoStore::connect(config(&other_shape)).await.unwrap();
    match store.initialize().await {
        Err(StoreError::Configuration(reason)) => {
            assert!(reason.contains("key schema"), "{reason}")
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
    // aett's key schema, someone else's items.
    let foreign = unique_table();
    let store = DynamoStore::connect(config(&foreign)).await.unwrap();
    store.initialize().await.unwrap();
    store.drop_all().await.unwrap();
    create_table(
        client,
        &foreign,
        &[
            ("pk", ScalarAttributeType::S, KeyType::Hash),
            ("sk", ScalarAttributeType::S, KeyType::Range),
        ],
    )
    .await;
    client
        .put_item()
        .table_name(&foreign)
        .item("pk", AttributeValue::S("order".to_owned()))
        .item("sk", AttributeValue::S("1".to_owned()))
        .send()
        .await
        .unwrap();
    assert!(matches!(
        store.initialize().await,
        Err(StoreError::Configuration(_))
    ));
    assert!(matches!(
        store.drop_all().await,
        Err(StoreError::Configuration(_))
    ));
    let still = client
        .describe_table()
        .table_name(&foreign)
        .send()
        .await
        .expect("the foreign table is still there");
    assert!(still.table.is_some());
}

/// `aett::connect` opens a `dynamodb://` URL (credentials from the SDK's chain, which the test
/// command sets for the test server); an unreachable endpoint fails with a typed error.
#[tokio::test]
async fn store_urls_and_unreachable_endpoints() {
    let table = unique_table();
    let url = format!(
        "dynamodb://{table}?region=us-east-1&endpoint={}",
        endpoint().replace(':', "%3A").replace('/', "%2F")
    );
    let opened = aett::connect(&url).await.expect("open the URL");
    let commit = opened
        .commit(CommitAttempt::new(
            "t",
            "s",
            1,
            1,
            Headers::new(),
            increment(1),
        ))
        .await
        .unwrap();
    let direct = DynamoStore::connect(config(&table)).await.unwrap();
    assert_eq!(read(&direct, "t", "s").await, vec![commit]);

    let unreachable = config(&unique_table())
        .endpoint("http://127.0.0.1:9")
        .connect_timeout(Duration::from_secs(2))
        .max_attempts(1);
    let started = std::time::Instant::now();
    let error = DynamoStore::connect(unreachable)
        .await
        .expect_err("nothing listens there");
    assert!(
        matches!(
            error,
            StoreError::Timeout { .. } | StoreError::Storage { .. }
        ),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let _ = Arc::new(direct);
}
