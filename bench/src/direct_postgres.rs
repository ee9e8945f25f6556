//! The scenarios hand-written against tokio-postgres: the limit aett's PostgreSQL backend is
//! measured against.

use std::time::Instant;

use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

use crate::direct::{encode, fold};
use crate::report::Measured;

/// A schema of its own for the hand-written program.
pub struct DirectPostgres {
    url: String,
    schema: String,
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

impl DirectPostgres {
    /// Creates a fresh schema with the hand-written tables.
    pub async fn new(url: &str) -> Self {
        let schema = format!("direct_{}", uuid::Uuid::new_v4().simple());
        connect(url)
            .await
            .batch_execute(&format!(
                "CREATE SCHEMA {schema};
                 CREATE TABLE {schema}.commits (
                     checkpoint bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     tenant_id text NOT NULL,
                     stream_id text NOT NULL,
                     stream_revision bigint NOT NULL,
                     commit_id uuid NOT NULL,
                     commit_sequence bigint NOT NULL,
                     commit_stamp timestamptz NOT NULL,
                     events bytea NOT NULL,
                     UNIQUE (tenant_id, stream_id, commit_sequence)
                 );
                 CREATE TABLE {schema}.snapshots (
                     tenant_id text NOT NULL,
                     stream_id text NOT NULL,
                     stream_revision bigint NOT NULL,
                     payload bytea NOT NULL,
                     PRIMARY KEY (tenant_id, stream_id, stream_revision)
                 );"
            ))
            .await
            .expect("schema");
        Self {
            url: url.to_owned(),
            schema,
        }
    }

    async fn client(&self) -> Writer {
        let client = connect(&self.url).await;
        let insert = client
            .prepare(&format!(
                "INSERT INTO {}.commits (tenant_id, stream_id, stream_revision, commit_id, commit_sequence, commit_stamp, events)
                 VALUES ('bench', $1, $2, $3, $4, now(), $5)",
                self.schema
            ))
            .await
            .expect("prepare");
        Writer { client, insert }
    }

    /// Single-event commits round-robin over 100 streams.
    pub async fn append_single(&self, round: u64, commits: u64) -> Measured {
        let writer = self.client().await;
        let start = Instant::now();
        for i in 0..commits {
            let sequence = i / 100 + 1;
            writer
                .insert(
                    &format!("single-{round}-{}", i % 100),
                    sequence,
                    sequence,
                    &encode(i, 1),
                )
                .await
                .unwrap();
        }
        Measured::new(commits, start.elapsed())
    }

    /// 100-event commits round-robin over 10 streams.
    pub async fn append_batch(&self, round: u64, commits: u64) -> Measured {
        let writer = self.client().await;
        let start = Instant::now();
        for i in 0..commits {
            let sequence = i / 10 + 1;
            writer
                .insert(
                    &format!("batch-{round}-{}", i % 10),
                    sequence * 100,
                    sequence,
                    &encode(i * 100, 100),
                )
                .await
                .unwrap();
        }
        Measured::new(commits * 100, start.elapsed())
    }

    /// 8 connections, each writing its own stream.
    pub async fn parallel(&self, round: u64, per_writer: u64) -> Measured {
        let mut writers = Vec::new();
        for _ in 0..8 {
            writers.push(self.client().await);
        }
        let start = Instant::now();
        let tasks: Vec<_> = writers
            .into_iter()
            .enumerate()
            .map(|(index, writer)| {
                tokio::spawn(async move {
                    for n in 1..=per_writer {
                        writer
                            .insert(&format!("parallel-{round}-{index}"), n, n, &encode(n, 1))
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

    /// 8 connections on one stream; a unique violation means another writer won: read the
    /// head, retry.
    pub async fn contended(&self, round: u64, per_writer: u64) -> Measured {
        let mut writers = Vec::new();
        for _ in 0..8 {
            writers.push(self.client().await);
        }
        let stream = format!("contended-{round}");
        let head_sql = format!(
            "SELECT max(commit_sequence) FROM {}.commits WHERE tenant_id = 'bench' AND stream_id = $1",
            self.schema
        );
        let start = Instant::now();
        let tasks: Vec<_> = writers
            .into_iter()
            .map(|writer| {
                let head_sql = head_sql.clone();
                let stream = stream.clone();
                tokio::spawn(async move {
                    let (mut head, mut attempts, mut lost) = (0u64, 0u64, 0u64);
                    for n in 0..per_writer {
                        loop {
                            attempts += 1;
                            match writer
                                .insert(&stream, head + 1, head + 1, &encode(n, 1))
                                .await
                            {
                                Ok(_) => {
                                    head += 1;
                                    break;
                                }
                                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                                    lost += 1;
                                    head = writer
                                        .client
                                        .query_one(&head_sql, &[&stream])
                                        .await
                                        .unwrap()
                                        .get::<_, i64>(0)
                                        as u64;
                                }
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                    (attempts, lost, start.elapsed())
                })
            })
            .collect();
        let (mut attempts, mut lost, mut finished) = (0, 0, Vec::new());
        for task in tasks {
            let (a, l, done) = task.await.unwrap();
            attempts += a;
            lost += l;
            finished.push(done);
        }
        Measured::new(8 * per_writer, start.elapsed())
            .with_conflict_rate(lost as f64 / attempts as f64)
            .with_first_done(&finished)
    }

    /// The same aggregate as aett's: `events_total` events in commits of 10.
    pub async fn prepare_aggregate(&self, id: &str, events_total: u64) {
        let writer = self.client().await;
        for sequence in 1..=events_total / 10 {
            writer
                .insert(id, sequence * 10, sequence, &encode(sequence * 10, 10))
                .await
                .unwrap();
        }
    }

    async fn replay(&self, client: &Client, id: &str, after_revision: u64) -> (u64, u64) {
        let statement = client
            .prepare(&format!(
                "SELECT events FROM {}.commits WHERE tenant_id = 'bench' AND stream_id = $1 AND stream_revision > $2 ORDER BY commit_sequence",
                self.schema
            ))
            .await
            .unwrap();
        let rows = client
            .query(&statement, &[&id, &(after_revision as i64)])
            .await
            .unwrap();
        let (mut balance, mut events) = (0, 0);
        for row in &rows {
            events += fold(row.get::<_, &[u8]>(0), &mut balance);
        }
        (balance, events)
    }

    /// Loads the aggregate `times` times: one query, each commit's events decoded and folded.
    pub async fn load(&self, id: &str, times: u64) -> Measured {
        let client = connect(&self.url).await;
        let start = Instant::now();
        let mut replayed = 0;
        for _ in 0..times {
            let (balance, events) = self.replay(&client, id, 0).await;
            assert!(balance > 0);
            replayed += events;
        }
        Measured::new(replayed, start.elapsed())
    }

    /// Stores a snapshot (the balance) 10 events below the head.
    pub async fn snapshot_near_head(&self, id: &str, events_total: u64) {
        let client = connect(&self.url).await;
        let revision = events_total - 10;
        let rows = client
            .query(
                &format!("SELECT events FROM {}.commits WHERE tenant_id = 'bench' AND stream_id = $1 AND stream_revision <= $2 ORDER BY commit_sequence", self.schema),
                &[&id, &(revision as i64)],
            )
            .await
            .unwrap();
        let mut balance = 0;
        for row in &rows {
            fold(row.get::<_, &[u8]>(0), &mut balance);
        }
        let payload = serde_json::to_vec(&serde_json::json!({ "balance": balance })).unwrap();
        client
            .execute(
                &format!(
                    "INSERT INTO {}.snapshots VALUES ('bench', $1, $2, $3)",
                    self.schema
                ),
                &[&id, &(revision as i64), &payload],
            )
            .await
            .unwrap();
    }

    /// Loads from the snapshot `times` times: the snapshot, then the events after it.
    pub async fn load_from_snapshot(&self, id: &str, times: u64) -> Measured {
        let client = connect(&self.url).await;
        let statement = client
            .prepare(&format!(
                "SELECT stream_revision, payload FROM {}.snapshots WHERE tenant_id = 'bench' AND stream_id = $1 ORDER BY stream_revision DESC LIMIT 1",
                self.schema
            ))
            .await
            .unwrap();
        let start = Instant::now();
        for _ in 0..times {
            let row = client.query_one(&statement, &[&id]).await.unwrap();
            let revision: i64 = row.get(0);
            let memento: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(row.get::<_, &[u8]>(1)).unwrap();
            let (tail, _) = self.replay(&client, id, revision as u64).await;
            assert!(memento["balance"].as_u64().unwrap() + tail > 0);
        }
        Measured::new(times, start.elapsed())
    }

    /// The same log as aett's: `events_total` events in commits of 100 over 50 streams.
    pub async fn prepare_log(&self, events_total: u64) {
        let writer = self.client().await;
        for i in 0..events_total / 100 {
            let sequence = i / 50 + 1;
            writer
                .insert(
                    &format!("log-{}", i % 50),
                    sequence * 100,
                    sequence,
                    &encode(i * 100, 100),
                )
                .await
                .unwrap();
        }
    }

    /// Reads everything in checkpoint order in one query, decoding every event.
    pub async fn read_all(&self) -> Measured {
        let client = connect(&self.url).await;
        let start = Instant::now();
        let rows = client
            .query(
                &format!(
                    "SELECT events FROM {}.commits ORDER BY checkpoint",
                    self.schema
                ),
                &[],
            )
            .await
            .unwrap();
        let (mut count, mut sum) = (0, 0);
        for row in &rows {
            count += fold(row.get::<_, &[u8]>(0), &mut sum);
        }
        assert!(sum > 0);
        Measured::new(count, start.elapsed())
    }

    /// Drops the schema.
    pub async fn drop(self) {
        let _ = connect(&self.url)
            .await
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .await;
    }
}

struct Writer {
    client: Client,
    insert: tokio_postgres::Statement,
}

impl Writer {
    async fn insert(
        &self,
        stream: &str,
        revision: u64,
        sequence: u64,
        events: &[u8],
    ) -> Result<u64, tokio_postgres::Error> {
        self.client
            .execute(
                &self.insert,
                &[
                    &stream,
                    &(revision as i64),
                    &uuid::Uuid::new_v4(),
                    &(sequence as i64),
                    &events,
                ],
            )
            .await
    }
}
