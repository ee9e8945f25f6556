//! The scenarios hand-written against `aws-sdk-s3`: the limit aett's S3 backend is measured
//! against. A commit is one object at `{stream}/{sequence}`, created with `If-None-Match: *`
//! (one request: optimistic concurrency and nothing else: no duplicate detection by commit id,
//! no global order); a load lists the stream and reads each commit; reading everything lists
//! the whole prefix, in key order rather than commit order. What a hand-written program would
//! do, without aett's guarantees.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

use crate::direct::{encode, fold};
use crate::report::Measured;

/// A prefix of its own for the hand-written program, and the requests it has sent.
#[derive(Clone)]
pub struct DirectS3 {
    client: Client,
    bucket: String,
    prefix: String,
    requests: Arc<AtomicU64>,
}

impl DirectS3 {
    /// A fresh prefix in `bucket` (which exists).
    pub fn new(client: Client, bucket: &str) -> Self {
        Self {
            client,
            bucket: bucket.to_owned(),
            prefix: format!("direct-{}/", uuid::Uuid::new_v4().simple()),
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

    fn key(&self, stream: &str, sequence: u64) -> String {
        format!("{}c/{stream}/{sequence:020}", self.prefix)
    }

    /// Creates a commit's object; `false` when another writer took the sequence.
    async fn insert(&self, stream: &str, sequence: u64, events: Vec<u8>) -> bool {
        self.sent();
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(self.key(stream, sequence))
            .if_none_match("*")
            .body(ByteStream::from(events))
            .send()
            .await;
        match put {
            Ok(_) => true,
            Err(error)
                if error
                    .raw_response()
                    .is_some_and(|r| r.status().as_u16() == 412) =>
            {
                false
            }
            Err(error) => panic!("{error:?}"),
        }
    }

    /// Every key under `prefix` after `start_after`, in order.
    async fn list(&self, prefix: &str, start_after: Option<String>) -> Vec<String> {
        let mut keys = Vec::new();
        let mut after = start_after;
        loop {
            self.sent();
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_start_after(after.clone())
                .send()
                .await
                .unwrap();
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            if !page.is_truncated().unwrap_or(false) {
                return keys;
            }
            after = keys.last().cloned();
        }
    }

    async fn get(&self, key: &str) -> Vec<u8> {
        self.sent();
        self.client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .to_vec()
    }

    /// Single-event commits round-robin over 100 streams.
    pub async fn append_single(&self, round: u64, commits: u64) -> Measured {
        let start = Instant::now();
        for i in 0..commits {
            let sequence = i / 100 + 1;
            let stream = format!("single-{round}-{}", i % 100);
            assert!(self.insert(&stream, sequence, encode(i, 1)).await);
        }
        Measured::new(commits, start.elapsed())
    }

    /// 100-event commits round-robin over 10 streams.
    pub async fn append_batch(&self, round: u64, commits: u64) -> Measured {
        let start = Instant::now();
        for i in 0..commits {
            let sequence = i / 10 + 1;
            let stream = format!("batch-{round}-{}", i % 10);
            assert!(self.insert(&stream, sequence, encode(i * 100, 100)).await);
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
                        assert!(this.insert(&stream, sequence, encode(sequence, 1)).await);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        Measured::new(8 * per_writer, start.elapsed())
    }

    /// 8 tasks on one stream; a lost race means another writer won: list the stream for its
    /// head, retry.
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
                            if this.insert(&stream, head + 1, encode(n, 1)).await {
                                head += 1;
                                break;
                            }
                            lost += 1;
                            let prefix = format!("{}c/{stream}/", this.prefix);
                            let after = Some(this.key(&stream, head));
                            head += this.list(&prefix, after).await.len() as u64;
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
            assert!(self.insert(id, sequence, encode(sequence * 10, 10)).await);
        }
    }

    /// The stream's commits after sequence `after`, folded: (balance, events).
    async fn replay(&self, id: &str, after: u64) -> (u64, u64) {
        let (mut balance, mut events) = (0, 0);
        let prefix = format!("{}c/{id}/", self.prefix);
        let start = (after > 0).then(|| self.key(id, after));
        for key in self.list(&prefix, start).await {
            events += fold(&self.get(&key).await, &mut balance);
        }
        (balance, events)
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

    /// Stores a snapshot (the balance) 10 events below the head, keyed by inverted revision.
    pub async fn snapshot_near_head(&self, id: &str, events_total: u64) {
        let revision = events_total - 10;
        let (full, _) = self.replay(id, 0).await;
        let (tail, _) = self.replay(id, revision / 10).await;
        self.sent();
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(format!(
                "{}s/{id}/{:020}-{revision}",
                self.prefix,
                u64::MAX - revision
            ))
            .body(ByteStream::from((full - tail).to_string().into_bytes()))
            .send()
            .await
            .unwrap();
    }

    /// Loads from the snapshot `times` times: the newest snapshot (first in a listing), then
    /// the commits after it.
    pub async fn load_from_snapshot(&self, id: &str, times: u64) -> Measured {
        let start = Instant::now();
        for _ in 0..times {
            self.sent();
            let listed = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(format!("{}s/{id}/", self.prefix))
                .max_keys(1)
                .send()
                .await
                .unwrap();
            let key = listed.contents()[0].key().unwrap().to_owned();
            let revision: u64 = key.rsplit('-').next().unwrap().parse().unwrap();
            let balance: u64 = String::from_utf8(self.get(&key).await)
                .unwrap()
                .parse()
                .unwrap();
            let (tail, _) = self.replay(id, revision / 10).await;
            assert!(balance + tail > 0);
        }
        Measured::new(times, start.elapsed())
    }

    /// The same log as aett's: `events_total` events in commits of 100 over 50 streams.
    pub async fn prepare_log(&self, events_total: u64) {
        for i in 0..events_total / 100 {
            let sequence = i / 50 + 1;
            let stream = format!("log-{}", i % 50);
            assert!(self.insert(&stream, sequence, encode(i * 100, 100)).await);
        }
    }

    /// Reads every commit: the whole prefix listed, each object read and decoded.
    pub async fn read_all(&self) -> Measured {
        let start = Instant::now();
        let (mut count, mut sum) = (0, 0);
        for key in self.list(&format!("{}c/", self.prefix), None).await {
            count += fold(&self.get(&key).await, &mut sum);
        }
        assert!(sum > 0);
        Measured::new(count, start.elapsed())
    }

    /// Deletes the program's objects.
    pub async fn drop(self) {
        let keys = self.list(&self.prefix, None).await;
        for key in keys {
            let _ = self
                .client
                .delete_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await;
        }
    }
}
