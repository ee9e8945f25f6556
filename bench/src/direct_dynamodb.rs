//! The scenarios hand-written against `aws-sdk-dynamodb`: the limit aett's DynamoDB backend is
//! measured against. One table, a stream's commits keyed by (stream, sequence) and put on
//! condition that the key is free; the global order is a counter item raised with `ADD` before
//! each put (two requests a commit, and a reader of that order may skip a commit that becomes
//! visible late); reading everything is a `Scan`, in no order. What a hand-written program would
//! do, without aett's guarantees.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ScalarAttributeType,
};
use aws_sdk_dynamodb::Client;

use crate::direct::{encode, fold};
use crate::report::Measured;

/// A table of its own for the hand-written program, and the requests it has sent.
#[derive(Clone)]
pub struct DirectDynamo {
    client: Client,
    table: String,
    requests: Arc<AtomicU64>,
}

type Item = HashMap<String, AttributeValue>;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

impl DirectDynamo {
    /// Creates a fresh table (partition key `stream`, sort key `seq`, a number) with `client`.
    pub async fn new(client: Client) -> Self {
        let table = format!("direct_{}", uuid::Uuid::new_v4().simple());
        client
            .create_table()
            .table_name(&table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("stream")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("seq")
                    .attribute_type(ScalarAttributeType::N)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("stream")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("seq")
                    .key_type(KeyType::Range)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .expect("create the direct program's table");
        Self {
            client,
            table,
            requests: Arc::default(),
        }
    }

    /// Requests sent so far.
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn sent(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Puts a commit; `false` when another writer took the sequence.
    async fn insert(&self, stream: &str, revision: u64, sequence: u64, events: Vec<u8>) -> bool {
        self.sent();
        let counter = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("stream", s("~counter"))
            .key("seq", n(0))
            .update_expression("ADD #v :one")
            .expression_attribute_names("#v", "value")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .expect("the counter");
        let checkpoint = match counter.attributes.and_then(|mut a| a.remove("value")) {
            Some(AttributeValue::N(value)) => value,
            other => panic!("counter value {other:?}"),
        };
        self.sent();
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("stream", s(stream))
            .item("seq", n(sequence))
            .item("revision", n(revision))
            .item("checkpoint", AttributeValue::N(checkpoint))
            .item("commit_id", s(uuid::Uuid::new_v4().to_string()))
            .item("events", AttributeValue::B(Blob::new(events)))
            .condition_expression("attribute_not_exists(#s)")
            .expression_attribute_names("#s", "stream")
            .send()
            .await;
        match put {
            Ok(_) => true,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                false
            }
            Err(error) => panic!("{error:?}"),
        }
    }

    /// Single-event commits round-robin over 100 streams.
    pub async fn append_single(&self, round: u64, commits: u64) -> Measured {
        let start = Instant::now();
        for i in 0..commits {
            let sequence = i / 100 + 1;
            let stream = format!("single-{round}-{}", i % 100);
            assert!(self.insert(&stream, sequence, sequence, encode(i, 1)).await);
        }
        Measured::new(commits, start.elapsed())
    }

    /// 100-event commits round-robin over 10 streams.
    pub async fn append_batch(&self, round: u64, commits: u64) -> Measured {
        let start = Instant::now();
        for i in 0..commits {
            let sequence = i / 10 + 1;
            let stream = format!("batch-{round}-{}", i % 10);
            assert!(
                self.insert(&stream, sequence * 100, sequence, encode(i * 100, 100))
                    .await
            );
        }
        Measured::new(commits * 100, start.elapsed())
    }

    /// 8 tasks, each writing its own stream.
    pub async fn parallel(&self, round: u64, per_writer: u64) -> Measured {
        let start = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|index| {
                let this = self.clone();
                tokio::spawn(async move {
                    for sequence in 1..=per_writer {
                        let stream = format!("parallel-{round}-{index}");
                        assert!(
                            this.insert(&stream, sequence, sequence, encode(sequence, 1))
                                .await
                        );
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        Measured::new(8 * per_writer, start.elapsed())
    }

    /// The stream's highest sequence, read strongly consistent.
    async fn head(&self, stream: &str) -> u64 {
        self.sent();
        let last = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#s = :s")
            .expression_attribute_names("#s", "stream")
            .expression_attribute_values(":s", s(stream))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        match last
            .items
            .unwrap_or_default()
            .first()
            .and_then(|i| i.get("seq"))
        {
            Some(AttributeValue::N(seq)) => seq.parse().unwrap(),
            _ => 0,
        }
    }

    /// 8 tasks on one stream; a failed condition means another writer won: read the head,
    /// retry.
    pub async fn contended(&self, round: u64, per_writer: u64) -> Measured {
        let stream = format!("contended-{round}");
        let start = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let this = self.clone();
                let stream = stream.clone();
                tokio::spawn(async move {
                    let (mut head, mut attempts, mut lost) = (0u64, 0u64, 0u64);
                    for n in 0..per_writer {
                        loop {
                            attempts += 1;
                            if this.insert(&stream, head + 1, head + 1, encode(n, 1)).await {
                                head += 1;
                                break;
                            }
                            lost += 1;
                            head = this.head(&stream).await;
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
            assert!(
                self.insert(id, sequence * 10, sequence, encode(sequence * 10, 10))
                    .await
            );
        }
    }

    /// The stream's commits after `after_revision`, folded: (balance, events).
    async fn replay(&self, id: &str, after_revision: u64) -> (u64, u64) {
        let (mut balance, mut events) = (0, 0);
        let mut start: Option<Item> = None;
        loop {
            self.sent();
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#s = :s")
                .expression_attribute_names("#s", "stream")
                .expression_attribute_values(":s", s(id))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .unwrap();
            for item in page.items.unwrap_or_default() {
                let revision: u64 = match item.get("revision") {
                    Some(AttributeValue::N(r)) => r.parse().unwrap(),
                    _ => panic!("no revision"),
                };
                if revision <= after_revision {
                    continue;
                }
                if let Some(AttributeValue::B(bytes)) = item.get("events") {
                    events += fold(bytes.as_ref(), &mut balance);
                }
            }
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return (balance, events),
            }
        }
    }

    /// Loads the aggregate `times` times: its commits, each one's events decoded and folded.
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

    /// Stores a snapshot (the balance) 10 events below the head, under stream `~snap-ID` keyed
    /// by revision.
    pub async fn snapshot_near_head(&self, id: &str, events_total: u64) {
        let revision = events_total - 10;
        let (full, _) = self.replay(id, 0).await;
        let (tail, _) = self.replay(id, revision).await;
        self.sent();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("stream", s(format!("~snap-{id}")))
            .item("seq", n(revision))
            .item("balance", n(full - tail))
            .send()
            .await
            .unwrap();
    }

    /// Loads from the snapshot `times` times: the newest snapshot, then the events after it.
    pub async fn load_from_snapshot(&self, id: &str, times: u64) -> Measured {
        let start = Instant::now();
        for _ in 0..times {
            self.sent();
            let snapshot = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("#s = :s")
                .expression_attribute_names("#s", "stream")
                .expression_attribute_values(":s", s(format!("~snap-{id}")))
                .scan_index_forward(false)
                .limit(1)
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .items
                .unwrap_or_default()
                .pop()
                .expect("a snapshot");
            let number = |name: &str| match snapshot.get(name) {
                Some(AttributeValue::N(v)) => v.parse::<u64>().unwrap(),
                _ => panic!("no {name}"),
            };
            let (revision, balance) = (number("seq"), number("balance"));
            // Only the commits after the snapshot: their sequences follow its revision's.
            let (tail, _) = self.replay_after(id, revision).await;
            assert!(balance + tail > 0);
        }
        Measured::new(times, start.elapsed())
    }

    /// The commits after revision `revision` of a stream of 10-event commits, read from the
    /// sequence that follows it.
    async fn replay_after(&self, id: &str, revision: u64) -> (u64, u64) {
        self.sent();
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("#s = :s AND #q > :q")
            .expression_attribute_names("#s", "stream")
            .expression_attribute_names("#q", "seq")
            .expression_attribute_values(":s", s(id))
            .expression_attribute_values(":q", n(revision / 10))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        let (mut balance, mut events) = (0, 0);
        for item in page.items.unwrap_or_default() {
            if let Some(AttributeValue::B(bytes)) = item.get("events") {
                events += fold(bytes.as_ref(), &mut balance);
            }
        }
        (balance, events)
    }

    /// The same log as aett's: `events_total` events in commits of 100 over 50 streams.
    pub async fn prepare_log(&self, events_total: u64) {
        for i in 0..events_total / 100 {
            let sequence = i / 50 + 1;
            let stream = format!("log-{}", i % 50);
            assert!(
                self.insert(&stream, sequence * 100, sequence, encode(i * 100, 100))
                    .await
            );
        }
    }

    /// Reads every commit with a `Scan` (in no order), decoding every event.
    pub async fn read_all(&self) -> Measured {
        let start = Instant::now();
        let (mut count, mut sum) = (0, 0);
        let mut from: Option<Item> = None;
        loop {
            self.sent();
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(from)
                .send()
                .await
                .unwrap();
            for item in page.items.unwrap_or_default() {
                if let Some(AttributeValue::B(bytes)) = item.get("events") {
                    count += fold(bytes.as_ref(), &mut sum);
                }
            }
            match page.last_evaluated_key {
                Some(key) => from = Some(key),
                None => break,
            }
        }
        assert!(sum > 0);
        Measured::new(count, start.elapsed())
    }

    /// Deletes the table.
    pub async fn drop(self) {
        let _ = self
            .client
            .delete_table()
            .table_name(&self.table)
            .send()
            .await;
    }
}
