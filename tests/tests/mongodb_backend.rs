//! What MongoDB needs beyond the contract suite: gap-free reading from a checkpoint while
//! writers run, a commit cut off by a dropped connection, events stored as BSON documents,
//! exactly once with a read model in the database, setup errors and URLs.
#![cfg(feature = "mongodb")]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aett::{
    Commit, CommitAttempt, CommitLog, CommitStore, EventMessage, Headers, LogEntry, MongoConfig,
    MongoStore, Operation, PersistenceManagement, StoreError,
};
use aett_conformance::domain::Incremented;
use aett_conformance::mongodb::{raw_client, single_host, unique_database, url, url_with_database};
use futures::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn store_at(url: &str, database: &str) -> Arc<MongoStore> {
    let store = MongoStore::connect(MongoConfig::new(url).database(database))
        .await
        .expect("connect");
    store.initialize().await.expect("initialize");
    Arc::new(store)
}

async fn store() -> Arc<MongoStore> {
    store_at(&url(), &unique_database()).await
}

fn increment(by: i64) -> Vec<EventMessage> {
    vec![EventMessage::from_event(&Incremented { by }).unwrap()]
}

/// Writers commit concurrently while a reader follows `get_from` from the last checkpoint it
/// saw: the reader sees every commit once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checkpoint_reader_running_beside_writers_sees_every_commit() {
    let all = aett_conformance::log_order::a_reader_beside_writers_sees_every_commit(
        store().await,
        8,
        60,
    )
    .await;
    let checkpoints: Vec<u64> = all.iter().map(|c| c.checkpoint).collect();
    assert_eq!(
        checkpoints,
        (1..=all.len() as u64).collect::<Vec<_>>(),
        "checkpoints are dense: every number from 1 on, each once"
    );
}

/// A TCP proxy in front of the test server that, once armed, cuts every connection after a
/// few more kilobytes from the client: a message in flight arrives at the server cut short.
struct CuttingProxy {
    address: String,
    armed: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
}

impl CuttingProxy {
    async fn start(server: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let armed = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicUsize::new(0));
        let (armed_task, cuts_task) = (armed.clone(), cuts.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let Ok(upstream) = TcpStream::connect(&server).await else {
                    continue;
                };
                let (armed, cuts) = (armed_task.clone(), cuts_task.clone());
                tokio::spawn(async move {
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = upstream.into_split();
                    let back = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
                    });
                    let mut buffer = vec![0u8; 8192];
                    let mut sent_armed = 0usize;
                    loop {
                        let read = match client_read.read(&mut buffer).await {
                            Ok(0) | Err(_) => break,
                            Ok(read) => read,
                        };
                        if armed.load(Ordering::SeqCst) {
                            sent_armed += read;
                            if sent_armed > 32 * 1024 {
                                // Part of this chunk goes through, then both sides are dropped.
                                let _ = server_write.write_all(&buffer[..read / 2]).await;
                                cuts.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                        }
                        if server_write.write_all(&buffer[..read]).await.is_err() {
                            break;
                        }
                    }
                    back.abort();
                });
            }
        });
        Self {
            address,
            armed,
            cuts,
        }
    }
}

/// A commit whose connection is cut while its insert is on the wire leaves nothing behind, and
/// the store goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_cut_off_by_a_dropped_connection_leaves_no_partial_commit() {
    let direct_url = url();
    let server = single_host();
    let proxy = CuttingProxy::start(server).await;
    let database = unique_database();
    let proxied = store_at(
        &format!(
            "mongodb://{}/?directConnection=true&retryWrites=false",
            proxy.address
        ),
        &database,
    )
    .await;
    let direct = store_at(&direct_url, &database).await;
    proxied
        .commit(CommitAttempt::new(
            "t",
            "s",
            1,
            1,
            Headers::new(),
            increment(1),
        ))
        .await
        .expect("first commit");

    // Ten thousand events: far more than the proxy lets through once armed.
    let events: Vec<EventMessage> = (0..10_000).flat_map(increment).collect();
    let attempt = CommitAttempt::new("t", "s", 10_001, 2, Headers::new(), events);
    proxy.armed.store(true, Ordering::SeqCst);
    match proxied.commit(attempt.clone()).await {
        Err(StoreError::Storage {
            operation: Operation::Commit,
            ..
        }) => {}
        other => panic!("expected a storage error from the cut commit, got {other:?}"),
    }
    assert!(
        proxy.cuts.load(Ordering::SeqCst) >= 1,
        "the proxy cut a connection"
    );
    proxy.armed.store(false, Ordering::SeqCst);

    let commits: Vec<Commit> = direct
        .get("t", "s", 0, u64::MAX)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(commits.len(), 1, "nothing of the cut-off commit was stored");
    let retried = proxied
        .commit(attempt)
        .await
        .expect("the same commit, again");
    assert_eq!(retried.events.len(), 10_000);
    let commits: Vec<Commit> = direct
        .get("t", "s", 0, u64::MAX)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(commits.len(), 2);
    assert_eq!(commits[1].events.len(), 10_000);
}

/// Events are BSON documents a person can query in the shell, not strings: topics, nested
/// bodies, 64-bit integers as `Int64`, key order as written.
#[tokio::test]
async fn events_are_bson_documents_that_queries_can_reach() {
    let store = store().await;
    let body =
        r#"{"zeta":9007199254740993,"alpha":{"list":[1,"ü",null]},"neg":-9223372036854775808}"#;
    let message = EventMessage::from_raw(
        "shop.order.placed",
        serde_json::value::RawValue::from_string(body.to_owned()).unwrap(),
    );
    let written = store
        .commit(CommitAttempt::new(
            "t",
            "order-1",
            1,
            1,
            Headers::new(),
            vec![message],
        ))
        .await
        .unwrap();
    let commits = store
        .database()
        .collection::<Document>(store.commits_collection());
    let found = commits
        .find_one(
            doc! {"events.topic": "shop.order.placed", "events.body.zeta": 9007199254740993_i64},
        )
        .await
        .unwrap()
        .expect("the shell's kind of query finds the commit");
    let event = found.get_array("events").unwrap()[0]
        .as_document()
        .unwrap()
        .clone();
    let stored = event.get_document("body").unwrap();
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        vec!["zeta", "alpha", "neg"],
        "key order as written"
    );
    assert_eq!(stored.get("zeta"), Some(&Bson::Int64(9007199254740993)));
    assert_eq!(stored.get("neg"), Some(&Bson::Int64(i64::MIN)));
    let read: Vec<Commit> = store
        .get("t", "order-1", 0, u64::MAX)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(read, vec![written]);
    assert_eq!(
        read[0].events[0].body.get(),
        body,
        "the body reads back exactly"
    );

    // An integer BSON cannot hold is refused before anything is written.
    let too_big = EventMessage::from_raw(
        "t",
        serde_json::value::RawValue::from_string("18446744073709551615".to_owned()).unwrap(),
    );
    match store
        .commit(CommitAttempt::new(
            "t",
            "order-2",
            1,
            1,
            Headers::new(),
            vec![too_big],
        ))
        .await
    {
        Err(StoreError::InvalidCommit { reason, .. }) => {
            assert!(reason.contains("64-bit"), "{reason}")
        }
        other => panic!("expected an invalid commit, got {other:?}"),
    }
    assert!(store
        .get("t", "order-2", 0, u64::MAX)
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .is_empty());
}

/// Writes one document per event it handles into a collection, in the runner's transaction,
/// and fails after writing the event `fail_on`.
#[derive(aett::Projection)]
#[projection(name = "applied", events(Incremented))]
struct AppliedDocuments {
    fail_on: Option<i64>,
}

impl aett::Project<Incremented> for AppliedDocuments {
    async fn project(
        &mut self,
        event: Incremented,
        context: &aett::EventContext<'_>,
    ) -> Result<(), aett::BoxError> {
        let tx = context
            .transaction::<aett::backends::mongodb::MongoTransaction>()
            .ok_or("exactly once on MongoDB hands the handler a MongoTransaction")?;
        let mut session = tx.session().await;
        tx.database()
            .collection::<Document>("applied")
            .insert_one(doc! {"by": event.by})
            .session(&mut *session)
            .await?;
        if self.fail_on == Some(event.by) {
            return Err("failing after the read model's write, before the checkpoint".into());
        }
        Ok(())
    }
}

/// Exactly once: the read model is a collection of the store's database, written in the
/// transaction that advances the checkpoint; failed runs leave nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_once_keeps_the_read_model_and_the_checkpoint_together() {
    let store = store().await;
    let runner_store = store.clone();
    let round = move |fail_on: Option<i64>| {
        let store = runner_store.clone();
        async move {
            aett::ProjectionRunner::new(&store, AppliedDocuments { fail_on })
                .delivery(aett::Delivery::ExactlyOnce)
                .batch_size(16)
                .catch_up()
                .await
                .map(drop)
        }
    };
    let database = store.database().clone();
    let applied = || async move {
        let documents: Vec<Document> = database
            .collection::<Document>("applied")
            .find(doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let mut counts: HashMap<i64, u64> = HashMap::new();
        for document in documents {
            *counts.entry(document.get_i64("by").unwrap()).or_default() += 1;
        }
        counts
    };
    aett_conformance::read_side::exactly_once::check(store.clone(), round, applied).await;
}

/// A collection of the configured name that holds other documents is refused by `initialize`
/// and never dropped; an index of aett's name with other keys is refused too.
#[tokio::test]
async fn collections_that_are_not_aetts_are_refused_and_never_dropped() {
    let database = unique_database();
    let client = raw_client().await;
    let foreign = client.database(&database).collection::<Document>("commits");
    foreign.insert_one(doc! {"order": 1}).await.unwrap();
    let store = MongoStore::connect(MongoConfig::new(url()).database(&database))
        .await
        .unwrap();
    for outcome in [store.initialize().await, store.drop_all().await] {
        match outcome {
            Err(StoreError::Configuration(message)) => {
                assert!(message.contains("not an aett store"), "{message}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(
        foreign.count_documents(doc! {}).await.unwrap(),
        1,
        "nothing dropped"
    );

    let other = unique_database();
    client
        .database(&other)
        .collection::<Document>("snapshots")
        .create_index(
            mongodb::IndexModel::builder()
                .keys(doc! {"something": 1})
                .options(
                    mongodb::options::IndexOptions::builder()
                        .name("stream_revision".to_owned())
                        .build(),
                )
                .build(),
        )
        .await
        .unwrap();
    let store = MongoStore::connect(MongoConfig::new(url()).database(&other))
        .await
        .unwrap();
    match store.initialize().await {
        Err(StoreError::Configuration(message)) => {
            assert!(message.contains("not aett's"), "{message}")
        }
        other => panic!("expected the index to be refused, got {other:?}"),
    }
}

/// Bad collection names are configuration errors before anything is sent; an address where no
/// server answers is a typed timeout.
#[tokio::test]
async fn bad_names_and_unreachable_servers_are_typed_errors() {
    for config in [
        MongoConfig::new(url()).commits_collection("a$b"),
        MongoConfig::new(url()).snapshots_collection(""),
        MongoConfig::new(url()).collection_prefix("system."),
        MongoConfig::new(url())
            .commits_collection("x")
            .snapshots_collection("x_streams"),
        MongoConfig::new("not a url"),
    ] {
        match MongoStore::connect(config).await {
            Err(StoreError::Configuration(_)) => {}
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }
    // Nothing listens on port 9 of the loopback address.
    let config = MongoConfig::new("mongodb://127.0.0.1:9/?directConnection=true")
        .connect_timeout(Duration::from_millis(300));
    match MongoStore::connect(config).await {
        Err(StoreError::Timeout {
            operation: Operation::Connect,
            ..
        }) => {}
        other => panic!("expected a connect timeout, got {other:?}"),
    }
}

/// `aett::connect` opens MongoDB URLs, with the database from the path and a collection
/// prefix from `prefix=`.
#[tokio::test]
async fn store_urls_reach_mongodb() {
    let database = unique_database();
    let separator = if url().contains('?') { '&' } else { '?' };
    let store = aett::connect(&format!(
        "{}{separator}prefix=bank_",
        url_with_database(&database)
    ))
    .await
    .expect("connect by URL");
    store
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
    let names = raw_client()
        .await
        .database(&database)
        .list_collection_names()
        .await
        .unwrap();
    for expected in ["bank_commits", "bank_snapshots", "bank_commits_streams"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
}

/// A purge that removes the newest commits does not give their checkpoints out again: a reader
/// that had passed them would skip the commits that took them.
#[tokio::test]
async fn checkpoints_removed_by_a_purge_are_not_handed_out_again() {
    let store = store().await;
    let kept = store
        .commit(CommitAttempt::new(
            "kept",
            "s",
            1,
            1,
            Headers::new(),
            increment(1),
        ))
        .await
        .unwrap();
    let purged = store
        .commit(CommitAttempt::new(
            "purged",
            "s",
            1,
            1,
            Headers::new(),
            increment(2),
        ))
        .await
        .unwrap();
    assert_eq!((kept.checkpoint, purged.checkpoint), (1, 2));
    store.purge("purged").await.unwrap();
    // A store of its own, as another process would be, knows nothing of what this one saw.
    let other = store_at(&url(), store.database().name()).await;
    let next = other
        .commit(CommitAttempt::new(
            "kept",
            "s",
            2,
            2,
            Headers::new(),
            increment(3),
        ))
        .await
        .unwrap();
    assert_eq!(next.checkpoint, 3, "checkpoint 2 is not given out again");
    let after_two: Vec<LogEntry> = store.get_from(2).try_collect().await.unwrap();
    assert_eq!(
        after_two.len(),
        1,
        "a reader that had passed 2 sees the new commit"
    );
}
