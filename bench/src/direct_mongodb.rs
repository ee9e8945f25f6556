//! The scenarios hand-written against the `mongodb` driver: the limit aett's MongoDB backend is
//! measured against. Events are BSON documents (typed, through serde), the stream's sequence is
//! unique, and the global order is a counter document taken with `$inc` before each insert:
//! what a hand-written program would do, without aett's guarantee that a reader of that order
//! never skips a commit that becomes visible late.

use std::time::Instant;

use futures::TryStreamExt;
use mongodb::bson::{doc, Document};
use mongodb::options::{IndexOptions, ReturnDocument};
use mongodb::{Client, Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};

use crate::direct::StoredEvent;
use crate::report::Measured;
use crate::workload::deposit;

/// A database of its own for the hand-written program.
pub struct DirectMongo {
    database: Database,
}

#[derive(Serialize, Deserialize)]
struct StoredCommit {
    tenant_id: String,
    stream_id: String,
    stream_revision: i64,
    commit_id: mongodb::bson::Uuid,
    commit_sequence: i64,
    commit_stamp: mongodb::bson::DateTime,
    checkpoint: i64,
    events: Vec<StoredEvent>,
}

/// Only the events, for reads.
#[derive(Deserialize)]
struct Events {
    events: Vec<StoredEvent>,
}

fn events(first: u64, count: u64) -> Vec<StoredEvent> {
    (first..first + count)
        .map(|n| StoredEvent::Deposited(deposit(n)))
        .collect()
}

fn fold(commit: &Events, balance: &mut u64) -> u64 {
    for event in &commit.events {
        match event {
            StoredEvent::Deposited(deposit) => *balance += deposit.amount,
        }
    }
    commit.events.len() as u64
}

fn is_duplicate(error: &mongodb::error::Error) -> bool {
    matches!(
        error.kind.as_ref(),
        mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(write))
            if write.code == 11000
    )
}

impl DirectMongo {
    /// Creates a fresh database with the hand-written collections and indexes.
    pub async fn new(url: &str) -> Self {
        let client = Client::with_uri_str(url).await.expect("connect");
        let database = client.database(&format!("direct_{}", uuid::Uuid::new_v4().simple()));
        let unique = |keys: Document| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().unique(true).build())
                .build()
        };
        database
            .collection::<Document>("commits")
            .create_indexes([
                unique(doc! {"tenant_id": 1, "stream_id": 1, "commit_sequence": 1}),
                unique(doc! {"checkpoint": 1}),
                IndexModel::builder()
                    .keys(doc! {"tenant_id": 1, "stream_id": 1, "stream_revision": 1})
                    .build(),
            ])
            .await
            .expect("indexes");
        database
            .collection::<Document>("snapshots")
            .create_index(unique(
                doc! {"tenant_id": 1, "stream_id": 1, "stream_revision": 1},
            ))
            .await
            .expect("index");
        Self { database }
    }

    fn commits(&self) -> Collection<StoredCommit> {
        self.database.collection("commits")
    }

    async fn insert(
        &self,
        stream: &str,
        revision: u64,
        sequence: u64,
        events: Vec<StoredEvent>,
    ) -> Result<(), mongodb::error::Error> {
        let counter = self
            .database
            .collection::<Document>("counter")
            .find_one_and_update(doc! {"_id": "checkpoint"}, doc! {"$inc": {"value": 1_i64}})
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await?
            .expect("the counter");
        let commit = StoredCommit {
            tenant_id: "bench".to_owned(),
            stream_id: stream.to_owned(),
            stream_revision: revision as i64,
            commit_id: mongodb::bson::Uuid::new(),
            commit_sequence: sequence as i64,
            commit_stamp: mongodb::bson::DateTime::now(),
            checkpoint: counter.get_i64("value").expect("a counter value"),
            events,
        };
        self.commits().insert_one(commit).await.map(drop)
    }

    /// Single-event commits round-robin over 100 streams.
    pub async fn append_single(&self, round: u64, commits: u64) -> Measured {
        let start = Instant::now();
        for i in 0..commits {
            let sequence = i / 100 + 1;
            self.insert(
                &format!("single-{round}-{}", i % 100),
                sequence,
                sequence,
                events(i, 1),
            )
            .await
            .unwrap();
        }
        Measured::new(commits, start.elapsed())
    }

    /// 100-event commits round-robin over 10 streams.
    pub async fn append_batch(&self, round: u64, commits: u64) -> Measured {
        let start = Instant::now();
        for i in 0..commits {
            let sequence = i / 10 + 1;
            self.insert(
                &format!("batch-{round}-{}", i % 10),
                sequence * 100,
                sequence,
                events(i * 100, 100),
            )
            .await
            .unwrap();
        }
        Measured::new(commits * 100, start.elapsed())
    }

    /// 8 tasks, each writing its own stream.
    pub async fn parallel(&self, round: u64, per_writer: u64) -> Measured {
        let start = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|index| {
                let this = Self {
                    database: self.database.clone(),
                };
                tokio::spawn(async move {
                    for n in 1..=per_writer {
                        this.insert(&format!("parallel-{round}-{index}"), n, n, events(n, 1))
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        Measured::new(8 * per_writer, start.elapsed())
    }

    /// 8 tasks on one stream; a duplicate key means another writer won: read the head, retry.
    pub async fn contended(&self, round: u64, per_writer: u64) -> Measured {
        let stream = format!("contended-{round}");
        let start = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let this = Self {
                    database: self.database.clone(),
                };
                let stream = stream.clone();
                tokio::spawn(async move {
                    let (mut head, mut attempts, mut lost) = (0u64, 0u64, 0u64);
                    for n in 0..per_writer {
                        loop {
                            attempts += 1;
                            match this.insert(&stream, head + 1, head + 1, events(n, 1)).await {
                                Ok(()) => {
                                    head += 1;
                                    break;
                                }
                                Err(e) if is_duplicate(&e) => {
                                    lost += 1;
                                    let last = this
                                        .database
                                        .collection::<Document>("commits")
                                        .find_one(doc! {"tenant_id": "bench", "stream_id": &stream})
                                        .sort(doc! {"commit_sequence": -1})
                                        .projection(doc! {"commit_sequence": 1})
                                        .await
                                        .unwrap();
                                    head = last.map_or(0, |d| {
                                        d.get_i64("commit_sequence").unwrap() as u64
                                    });
                                }
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                    (attempts, lost)
                })
            })
            .collect();
        let (mut attempts, mut lost) = (0, 0);
        for task in tasks {
            let (a, l) = task.await.unwrap();
            attempts += a;
            lost += l;
        }
        Measured::new(8 * per_writer, start.elapsed())
            .with_conflict_rate(lost as f64 / attempts as f64)
    }

    /// The same aggregate as aett's: `events_total` events in commits of 10.
    pub async fn prepare_aggregate(&self, id: &str, events_total: u64) {
        for sequence in 1..=events_total / 10 {
            self.insert(id, sequence * 10, sequence, events(sequence * 10, 10))
                .await
                .unwrap();
        }
    }

    async fn replay(&self, id: &str, after_revision: u64) -> (u64, u64) {
        let commits: Vec<Events> = self
            .database
            .collection::<Events>("commits")
            .find(doc! {"tenant_id": "bench", "stream_id": id, "stream_revision": {"$gt": after_revision as i64}})
            .sort(doc! {"stream_revision": 1})
            .projection(doc! {"events": 1, "_id": 0})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let (mut balance, mut events) = (0, 0);
        for commit in &commits {
            events += fold(commit, &mut balance);
        }
        (balance, events)
    }

    /// Loads the aggregate `times` times: one query, each commit's events decoded and folded.
    pub async fn load(&self, id: &str, times: u64) -> Measured {
        let start = Instant::now();
        let mut replayed = 0;
        for _ in 0..times {
            let (balance, events) = self.replay(id, 0).await;
            assert!(balance > 0);
            replayed += events;
        }
        Measured::new(replayed, start.elapsed())
    }

    /// Stores a snapshot (the balance) 10 events below the head.
    pub async fn snapshot_near_head(&self, id: &str, events_total: u64) {
        let revision = events_total - 10;
        let (full, _) = self.replay(id, 0).await;
        let (tail, _) = self.replay(id, revision).await;
        self.database
            .collection::<Document>("snapshots")
            .insert_one(doc! {
                "tenant_id": "bench", "stream_id": id, "stream_revision": revision as i64,
                "payload": {"balance": (full - tail) as i64},
            })
            .await
            .unwrap();
    }

    /// Loads from the snapshot `times` times: the snapshot, then the events after it.
    pub async fn load_from_snapshot(&self, id: &str, times: u64) -> Measured {
        let snapshots = self.database.collection::<Document>("snapshots");
        let start = Instant::now();
        for _ in 0..times {
            let snapshot = snapshots
                .find_one(doc! {"tenant_id": "bench", "stream_id": id})
                .sort(doc! {"stream_revision": -1})
                .await
                .unwrap()
                .expect("a snapshot");
            let revision = snapshot.get_i64("stream_revision").unwrap();
            let balance = snapshot
                .get_document("payload")
                .unwrap()
                .get_i64("balance")
                .unwrap();
            let (tail, _) = self.replay(id, revision as u64).await;
            assert!(balance as u64 + tail > 0);
        }
        Measured::new(times, start.elapsed())
    }

    /// The same log as aett's: `events_total` events in commits of 100 over 50 streams.
    pub async fn prepare_log(&self, events_total: u64) {
        for i in 0..events_total / 100 {
            let sequence = i / 50 + 1;
            self.insert(
                &format!("log-{}", i % 50),
                sequence * 100,
                sequence,
                events(i * 100, 100),
            )
            .await
            .unwrap();
        }
    }

    /// Reads everything in checkpoint order with one cursor, decoding every event.
    pub async fn read_all(&self) -> Measured {
        let start = Instant::now();
        let mut cursor = self
            .database
            .collection::<Events>("commits")
            .find(doc! {})
            .sort(doc! {"checkpoint": 1})
            .projection(doc! {"events": 1, "_id": 0})
            .batch_size(1024)
            .await
            .unwrap();
        let (mut count, mut sum) = (0, 0);
        while let Some(commit) = cursor.try_next().await.unwrap() {
            count += fold(&commit, &mut sum);
        }
        assert!(sum > 0);
        Measured::new(count, start.elapsed())
    }

    /// Drops the database.
    pub async fn drop(self) {
        let _ = self.database.drop().await;
    }
}
