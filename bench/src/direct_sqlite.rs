//! The scenarios hand-written against rusqlite: the limit aett's SQLite backend is measured against.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, ErrorCode, OptionalExtension};

use crate::direct::{encode, fold};
use crate::report::Measured;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS direct_commits (
        checkpoint INTEGER PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        stream_id TEXT NOT NULL,
        stream_revision INTEGER NOT NULL,
        commit_id BLOB NOT NULL,
        commit_sequence INTEGER NOT NULL,
        commit_stamp INTEGER NOT NULL,
        events BLOB NOT NULL,
        UNIQUE (tenant_id, stream_id, commit_sequence)
    );
    CREATE TABLE IF NOT EXISTS direct_snapshots (
        tenant_id TEXT NOT NULL,
        stream_id TEXT NOT NULL,
        stream_revision INTEGER NOT NULL,
        payload BLOB NOT NULL,
        PRIMARY KEY (tenant_id, stream_id, stream_revision)
    );";

const INSERT: &str = "INSERT INTO direct_commits (tenant_id, stream_id, stream_revision, commit_id, commit_sequence, commit_stamp, events)
                      VALUES ('bench', ?1, ?2, ?3, ?4, ?5, ?6)";

/// A database file for the hand-written program.
#[derive(Clone)]
pub struct DirectSqlite {
    path: Arc<PathBuf>,
}

fn open(path: &Path) -> Connection {
    let connection = Connection::open(path).expect("open");
    connection.busy_timeout(Duration::from_secs(30)).unwrap();
    connection
        .pragma_update(None, "journal_mode", "WAL")
        .unwrap();
    // The same durability as aett's default.
    connection
        .pragma_update(None, "synchronous", "FULL")
        .unwrap();
    connection
}

fn insert(
    connection: &Connection,
    stream: &str,
    revision: u64,
    sequence: u64,
    events: &[u8],
) -> rusqlite::Result<usize> {
    connection.prepare_cached(INSERT)?.execute(params![
        stream,
        revision as i64,
        uuid::Uuid::new_v4().as_bytes(),
        sequence as i64,
        chrono::Utc::now().timestamp_micros(),
        events
    ])
}

impl DirectSqlite {
    /// Creates the schema in `path`.
    pub fn new(path: PathBuf) -> Self {
        open(&path).execute_batch(SCHEMA).expect("schema");
        Self {
            path: Arc::new(path),
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Path) -> T + Send + 'static,
    ) -> T {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || work(&path))
            .await
            .expect("blocking")
    }

    /// Single-event commits round-robin over 100 streams.
    pub async fn append_single(&self, round: u64, commits: u64) -> Measured {
        self.blocking(move |path| {
            let connection = open(path);
            let start = Instant::now();
            for i in 0..commits {
                let sequence = i / 100 + 1;
                insert(
                    &connection,
                    &format!("single-{round}-{}", i % 100),
                    sequence,
                    sequence,
                    &encode(i, 1),
                )
                .unwrap();
            }
            Measured::new(commits, start.elapsed())
        })
        .await
    }

    /// 100-event commits round-robin over 10 streams.
    pub async fn append_batch(&self, round: u64, commits: u64) -> Measured {
        self.blocking(move |path| {
            let connection = open(path);
            let start = Instant::now();
            for i in 0..commits {
                let sequence = i / 10 + 1;
                insert(
                    &connection,
                    &format!("batch-{round}-{}", i % 10),
                    sequence * 100,
                    sequence,
                    &encode(i * 100, 100),
                )
                .unwrap();
            }
            Measured::new(commits * 100, start.elapsed())
        })
        .await
    }

    /// 8 threads, each with its own connection and stream.
    pub async fn parallel(&self, round: u64, per_writer: u64) -> Measured {
        self.blocking(move |path| {
            let start = Instant::now();
            std::thread::scope(|scope| {
                for writer in 0..8 {
                    scope.spawn(move || {
                        let connection = open(path);
                        for n in 1..=per_writer {
                            insert(
                                &connection,
                                &format!("parallel-{round}-{writer}"),
                                n,
                                n,
                                &encode(n, 1),
                            )
                            .unwrap();
                        }
                    });
                }
            });
            Measured::new(8 * per_writer, start.elapsed())
        })
        .await
    }

    /// 8 threads on one stream; a unique violation means another writer won: read the head, retry.
    pub async fn contended(&self, round: u64, per_writer: u64) -> Measured {
        self.blocking(move |path| {
            let stream = format!("contended-{round}");
            let stream = stream.as_str();
            let start = Instant::now();
            let results: Vec<(u64, u64, Duration)> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        scope.spawn(move || {
                            let connection = open(path);
                            let (mut head, mut attempts, mut lost) = (0u64, 0u64, 0u64);
                            for n in 0..per_writer {
                                loop {
                                    attempts += 1;
                                    match insert(&connection, stream, head + 1, head + 1, &encode(n, 1)) {
                                        Ok(_) => {
                                            head += 1;
                                            break;
                                        }
                                        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::ConstraintViolation => {
                                            lost += 1;
                                            head = connection
                                                .query_row(
                                                    "SELECT max(commit_sequence) FROM direct_commits WHERE tenant_id = 'bench' AND stream_id = ?1",
                                                    [stream],
                                                    |r| r.get::<_, i64>(0),
                                                )
                                                .unwrap() as u64;
                                        }
                                        Err(other) => panic!("{other}"),
                                    }
                                }
                            }
                            (attempts, lost, start.elapsed())
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let (attempts, lost) = results.iter().fold((0, 0), |(a, l), (x, y, _)| (a + x, l + y));
            let finished: Vec<Duration> = results.iter().map(|(_, _, done)| *done).collect();
            Measured::new(8 * per_writer, start.elapsed())
                .with_conflict_rate(lost as f64 / attempts as f64)
                .with_first_done(&finished)
        })
        .await
    }

    /// The same aggregate as aett's: `events_total` events in commits of 10.
    pub async fn prepare_aggregate(&self, id: &str, events_total: u64) {
        let id = id.to_owned();
        self.blocking(move |path| {
            let connection = open(path);
            connection.execute_batch("BEGIN").unwrap();
            for sequence in 1..=events_total / 10 {
                insert(
                    &connection,
                    &id,
                    sequence * 10,
                    sequence,
                    &encode(sequence * 10, 10),
                )
                .unwrap();
            }
            connection.execute_batch("COMMIT").unwrap();
        })
        .await
    }

    /// Loads the aggregate `times` times: one query, each commit's events decoded and folded.
    pub async fn load(&self, id: &str, times: u64) -> Measured {
        let id = id.to_owned();
        self.blocking(move |path| {
            let connection = open(path);
            let start = Instant::now();
            let mut replayed = 0;
            for _ in 0..times {
                let (balance, events) = replay(&connection, &id, 0);
                assert!(balance > 0);
                replayed += events;
            }
            Measured::new(replayed, start.elapsed())
        })
        .await
    }

    /// Stores a snapshot (the balance) 10 events below the head.
    pub async fn snapshot_near_head(&self, id: &str, events_total: u64) {
        let id = id.to_owned();
        self.blocking(move |path| {
            let connection = open(path);
            let revision = events_total - 10;
            let mut balance = 0;
            let mut statement = connection
                .prepare("SELECT events FROM direct_commits WHERE tenant_id = 'bench' AND stream_id = ?1 AND stream_revision <= ?2 ORDER BY commit_sequence")
                .unwrap();
            let mut rows = statement.query(params![id, revision as i64]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                fold(row.get_ref(0).unwrap().as_blob().unwrap(), &mut balance);
            }
            connection
                .execute(
                    "INSERT INTO direct_snapshots VALUES ('bench', ?1, ?2, ?3)",
                    params![id, revision as i64, serde_json::to_vec(&serde_json::json!({ "balance": balance })).unwrap()],
                )
                .unwrap();
        })
        .await
    }

    /// Loads from the snapshot `times` times: the snapshot, then the events after it.
    pub async fn load_from_snapshot(&self, id: &str, times: u64) -> Measured {
        let id = id.to_owned();
        self.blocking(move |path| {
            let connection = open(path);
            let start = Instant::now();
            for _ in 0..times {
                let (revision, payload): (i64, Vec<u8>) = connection
                    .prepare_cached("SELECT stream_revision, payload FROM direct_snapshots WHERE tenant_id = 'bench' AND stream_id = ?1 ORDER BY stream_revision DESC LIMIT 1")
                    .unwrap()
                    .query_row(params![id], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()
                    .unwrap()
                    .expect("a snapshot");
                let memento: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&payload).unwrap();
                let (tail, _) = replay(&connection, &id, revision as u64);
                assert!(memento["balance"].as_u64().unwrap() + tail > 0);
            }
            Measured::new(times, start.elapsed())
        })
        .await
    }

    /// The same log as aett's: `events_total` events in commits of 100 over 50 streams.
    pub async fn prepare_log(&self, events_total: u64) {
        self.blocking(move |path| {
            let connection = open(path);
            connection.execute_batch("BEGIN").unwrap();
            for i in 0..events_total / 100 {
                let sequence = i / 50 + 1;
                insert(
                    &connection,
                    &format!("log-{}", i % 50),
                    sequence * 100,
                    sequence,
                    &encode(i * 100, 100),
                )
                .unwrap();
            }
            connection.execute_batch("COMMIT").unwrap();
        })
        .await
    }

    /// Reads everything in checkpoint order in one query, decoding every event.
    pub async fn read_all(&self) -> Measured {
        self.blocking(move |path| {
            let connection = open(path);
            let start = Instant::now();
            let (mut count, mut sum) = (0, 0);
            let mut statement = connection
                .prepare("SELECT events FROM direct_commits ORDER BY checkpoint")
                .unwrap();
            let mut rows = statement.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                count += fold(row.get_ref(0).unwrap().as_blob().unwrap(), &mut sum);
            }
            assert!(sum > 0);
            Measured::new(count, start.elapsed())
        })
        .await
    }
}

/// Folds the events of `id` after `after_revision`; returns (balance, events folded).
fn replay(connection: &Connection, id: &str, after_revision: u64) -> (u64, u64) {
    let mut statement = connection
        .prepare_cached("SELECT events FROM direct_commits WHERE tenant_id = 'bench' AND stream_id = ?1 AND stream_revision > ?2 ORDER BY commit_sequence")
        .unwrap();
    let mut rows = statement.query(params![id, after_revision as i64]).unwrap();
    let (mut balance, mut events) = (0, 0);
    while let Some(row) = rows.next().unwrap() {
        events += fold(row.get_ref(0).unwrap().as_blob().unwrap(), &mut balance);
    }
    (balance, events)
}
