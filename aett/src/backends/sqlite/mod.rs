//! The SQLite backend, aett's embedded default (feature `sqlite`, on by default).
//!
//! One row per commit, its headers and events as JSON. The file runs in WAL mode: readers
//! never block the writer nor each other. A commit is one `INSERT … SELECT` that adds the row
//! only if the attempt follows the stream's head, so the happy path is a single statement that
//! takes the write lock when it starts. Writes from this process go through one writer thread
//! that owns the write connection; commits that queue while it is busy are written together in
//! one transaction, each still checked and answered on its own (group commit, see `writer`).
//! Writes from other processes wait on SQLite's lock for up to the busy timeout. Reads run on
//! tokio's blocking pool; no SQLite call runs on the async worker threads.

mod config;
mod schema;
mod writer;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::FutureExt;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior};
use tokio::sync::Semaphore;

pub use config::SqliteConfig;

use self::schema::{
    Statements, CHECKPOINTS_SHAPE, COMMITS_SHAPE, COMMITS_SHAPE_V2, HEADS_SHAPE, SCHEMA_VERSION,
    SNAPSHOTS_SHAPE, VERSION_TABLE,
};
use self::writer::Writer;
use crate::backends::kit::sql::notice_sequence;
use crate::backends::kit::sql::{clamp, encode_snapshot_headers, validate_identifier, RawCommit};
use crate::backends::kit::sql::{decode_snapshot, replay_commit, replay_snapshot};
use crate::backends::kit::sql::{encode_skipped, position};
use crate::backends::kit::sql::{StoredId, StoredStamp};
use crate::backends::kit::{
    lease_check, paged, paged_by_key, stamp_from_micros, stamp_to_micros, CommitSignal, Page,
    PageItem, Resume, PAGE_SIZE,
};
use crate::error::{Operation, Scope, StoreError};
use crate::model::{Commit, CommitAttempt, LogFilter, Snapshot};
use crate::store::{for_replay, keep_matching};
use crate::store::{
    CheckpointStore, CheckpointTransaction, CommitLog, CommitStore, CommitStream, Lease, LogStream,
    PersistenceManagement, ProjectionPosition, ReplayLogStream, ReplaySnapshot, ReplayStream,
    SkippedCommit, SnapshotStore, StreamToSnapshot, StreamsToSnapshot, Wakeups,
};

/// An event store in a SQLite database file.
///
/// Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: SqliteConfig,
    sql: Statements,
    /// The queue to the thread that owns the write connection.
    writer: Writer,
    /// Idle reader connections.
    readers: Mutex<Vec<Connection>>,
    /// One permit per reader connection that may be open.
    reader_permits: Arc<Semaphore>,
    /// Raised after each commit and deletion made through this store.
    signal: CommitSignal,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` with the default configuration.
    /// Call [`PersistenceManagement::initialize`] before first use.
    pub fn open(path: impl Into<std::path::PathBuf>) -> Result<Self, StoreError> {
        Self::with_config(SqliteConfig::new(path))
    }

    /// Opens a store as `config` says. The file is opened here, so a path that cannot be opened
    /// fails now, not at the first commit.
    pub fn with_config(config: SqliteConfig) -> Result<Self, StoreError> {
        validate_identifier("commits table", &config.commits_table)?;
        validate_identifier("snapshots table", &config.snapshots_table)?;
        if config.commits_table == config.snapshots_table {
            return Err(StoreError::Configuration(
                "the commits and snapshots tables must have different names".to_owned(),
            ));
        }
        for (suffix, holds) in [
            ("streams", "the heads of the streams"),
            ("checkpoints", "the projection checkpoints"),
        ] {
            if config.snapshots_table == format!("{}_{suffix}", config.commits_table) {
                return Err(StoreError::Configuration(format!(
                    "`{}_{suffix}` holds {holds} of `{}`: choose another snapshots table name",
                    config.commits_table, config.commits_table
                )));
            }
        }
        for table in [&config.commits_table, &config.snapshots_table] {
            if table.eq_ignore_ascii_case(VERSION_TABLE) {
                return Err(StoreError::Configuration(format!(
                    "`{VERSION_TABLE}` is aett's schema-version table and cannot hold commits or snapshots"
                )));
            }
        }
        refuse_in_memory(&config.path)?;
        let connection = open_connection(&config)?;
        let sql = Statements::new(&config.commits_table, &config.snapshots_table);
        let reader_permits = Arc::new(Semaphore::new(config.max_readers));
        let (writer, queue) = Writer::new();
        let inner = Arc::new(Inner {
            config,
            sql,
            writer,
            readers: Mutex::new(Vec::new()),
            reader_permits,
            signal: CommitSignal::default(),
        });
        writer::start(connection, queue, Arc::downgrade(&inner))?;
        Ok(Self { inner })
    }

    /// Runs `work` on the writer thread, with the write connection.
    async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner, &mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.inner.writer.run(work).await
    }

    /// Runs `work` with a reader connection on the blocking pool, once one of the bounded
    /// number of reader connections is free.
    fn read<T: Send + 'static>(
        inner: Arc<Inner>,
        work: impl FnOnce(&Inner, &Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        async move {
            let permit = inner
                .reader_permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| StoreError::storage(Operation::Connect, Scope::Store, e))?;
            blocking(move || {
                let pooled = inner
                    .readers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .pop();
                let connection = match pooled {
                    Some(connection) => connection,
                    None => open_connection(&inner.config)?,
                };
                let result = work(&inner, &connection);
                inner
                    .readers
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(connection);
                drop(permit);
                result
            })
            .await
        }
        .boxed()
    }

    /// A stream of commits read a page at a time with `query`, whose last two parameters are the
    /// resume position (from `resume`) and the page size. A damaged row ends the stream after
    /// the intact rows before it.
    fn paged_query<T: PageItem>(
        &self,
        operation: Operation,
        scope: Scope,
        query: fn(&Statements) -> &str,
        params: Vec<rusqlite::types::Value>,
        resume: ResumeAfter,
        decode: fn(RawCommit) -> Result<T, StoreError>,
    ) -> BoxStream<'static, Result<T, StoreError>> {
        let inner = self.inner.clone();
        let traced = scope.clone();
        let pages = paged(move |last, limit| {
            let mut params = params.clone();
            params.push(rusqlite::types::Value::Integer(resume.position(last)));
            params.push(rusqlite::types::Value::Integer(limit as i64));
            let scope = scope.clone();
            Self::read(inner.clone(), move |inner, connection| {
                let fail = |e| StoreError::storage(operation, scope.clone(), e);
                let mut statement = connection.prepare_cached(query(&inner.sql)).map_err(fail)?;
                let rows = statement
                    .query_map(rusqlite::params_from_iter(params), raw_commit)
                    .map_err(fail)?;
                Ok(Page::decode(rows, limit, |row| decode(row.map_err(fail)?)))
            })
        });
        crate::trace::read(operation, &traced, pages)
    }
}

impl SqliteStore {
    /// The log after `checkpoint` of the tenants and stream types `filter` names (as JSON
    /// arrays; NULL for any), each row decoded by `decode`. Topics are left to the caller.
    fn filtered<T: PageItem>(
        &self,
        checkpoint: u64,
        filter: &LogFilter,
        decode: fn(RawCommit) -> Result<T, StoreError>,
    ) -> BoxStream<'static, Result<T, StoreError>> {
        let list = |values: &[String]| {
            if values.is_empty() {
                rusqlite::types::Value::Null
            } else {
                text(&serde_json::to_string(values).expect("strings serialise"))
            }
        };
        let scope = match filter.tenants.as_slice() {
            [tenant] => Scope::tenant(tenant),
            _ => Scope::Store,
        };
        self.paged_query(
            Operation::ReadLog,
            scope,
            |sql| &sql.filtered_from_checkpoint,
            vec![list(&filter.tenants), list(&filter.stream_types)],
            ResumeAfter::Checkpoint(checkpoint),
            decode,
        )
    }
}

/// SQLite's in-memory databases are private to one connection: the writer and each reader would
/// see a database of their own, and commits would vanish from reads.
fn refuse_in_memory(path: &std::path::Path) -> Result<(), StoreError> {
    let text = path.to_string_lossy();
    let in_memory = text.is_empty()
        || text == ":memory:"
        || (text.starts_with("file:")
            && (text.contains(":memory:") || text.contains("mode=memory")));
    if in_memory {
        return Err(StoreError::Configuration(format!(
            "`{text}` is an SQLite in-memory database, which each connection of the store would see as a database of its own; use `memory://` (aett::InMemoryStore) for a store in memory, or a file path"
        )));
    }
    Ok(())
}

/// Opens one connection. Several processes opening a new file at once race to switch it to WAL,
/// which SQLite answers with "database is locked" without consulting the busy timeout, so
/// opening retries until the busy timeout has passed.
fn open_connection(config: &SqliteConfig) -> Result<Connection, StoreError> {
    let fail = |e: rusqlite::Error| StoreError::storage(Operation::Open, Scope::Store, e);
    let deadline = Instant::now() + config.busy_timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        match try_open(config) {
            Ok(connection) => return Ok(connection),
            Err(error) if is_busy(&error) && Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(error) => return Err(fail(error)),
        }
    }
}

fn try_open(config: &SqliteConfig) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        &config.path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    connection.busy_timeout(config.busy_timeout)?;
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "the database refused WAL mode (journal mode `{mode}`)"
        )));
    }
    let synchronous = if config.synchronous_full {
        "FULL"
    } else {
        "NORMAL"
    };
    connection.pragma_update(None, "synchronous", synchronous)?;
    connection.set_prepared_statement_cache_capacity(32);
    Ok(connection)
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// The column names of `table`, in order; empty when there is no such table.
fn columns(connection: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut statement =
        connection.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
    let names = statement.query_map([table], |r| r.get(0))?;
    names.collect()
}

/// Checks that `table`, if it exists, has aett's `shape`: aett neither writes into nor drops a
/// table it did not create.
fn check_shape(
    connection: &Connection,
    table: &str,
    what: &str,
    shapes: &[&[&str]],
    operation: Operation,
) -> Result<(), StoreError> {
    let found =
        columns(connection, table).map_err(|e| StoreError::storage(operation, Scope::Store, e))?;
    let known = shapes
        .iter()
        .any(|shape| found.iter().map(String::as_str).eq(shape.iter().copied()));
    if !found.is_empty() && !known {
        return Err(StoreError::Configuration(format!(
            "table `{table}` exists but is not an aett {what} table (its columns are {}); choose another table name",
            found.join(", ")
        )));
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|join_error| {
            Err(StoreError::storage(
                Operation::Connect,
                Scope::Store,
                join_error,
            ))
        })
}

fn raw_commit(row: &Row<'_>) -> rusqlite::Result<RawCommit> {
    Ok(RawCommit {
        checkpoint: row.get(0)?,
        tenant_id: row.get(1)?,
        stream_id: row.get(2)?,
        stream_revision: row.get(3)?,
        commit_id: stored_id(row.get_ref(4)?)?,
        commit_sequence: row.get(5)?,
        commit_stamp: StoredStamp::Micros(row.get(6)?),
        headers: row.get(7)?,
        events: row.get(8)?,
        stream_type: row.get(9)?,
    })
}

/// A commit id as stored: read in place when it is a UUID's 16 bytes (as aett writes it), kept
/// as bytes otherwise so that the decode names the damage.
fn stored_id(value: rusqlite::types::ValueRef<'_>) -> rusqlite::Result<StoredId> {
    let bytes = value.as_blob()?;
    Ok(match uuid::Uuid::from_slice(bytes) {
        Ok(id) => StoredId::Uuid(id),
        Err(_) => StoredId::Bytes(bytes.to_vec()),
    })
}

fn text(value: &str) -> rusqlite::types::Value {
    rusqlite::types::Value::Text(value.to_owned())
}

fn integer(value: i64) -> rusqlite::types::Value {
    rusqlite::types::Value::Integer(value)
}

/// A row read for replay: sequence, revision, event count, events, stream type.
type ReplayRow = (i64, i64, i64, Vec<u8>, Option<String>);

/// Where a paged read resumes: after the last commit's sequence (stream reads) or checkpoint
/// (tenant and store reads), starting from the given position.
#[derive(Clone, Copy)]
enum ResumeAfter {
    Sequence,
    Checkpoint(u64),
}

impl ResumeAfter {
    fn position(self, last: Option<Resume>) -> i64 {
        match (self, last) {
            (ResumeAfter::Sequence, last) => last.map_or(0, |r| clamp(r.commit_sequence)),
            (ResumeAfter::Checkpoint(start), None) => clamp(start),
            (ResumeAfter::Checkpoint(_), Some(r)) => clamp(r.checkpoint),
        }
    }
}

#[async_trait]
impl CommitStore for SqliteStore {
    fn get(
        &self,
        tenant_id: &str,
        stream_id: &str,
        min_revision: u64,
        max_revision: u64,
    ) -> CommitStream {
        self.paged_query(
            Operation::ReadStream,
            Scope::stream(tenant_id, stream_id),
            |sql| &sql.by_revision,
            vec![
                text(tenant_id),
                text(stream_id),
                integer(clamp(min_revision)),
                integer(clamp(max_revision)),
            ],
            ResumeAfter::Sequence,
            RawCommit::decode,
        )
    }

    fn get_to(&self, tenant_id: &str, stream_id: &str, max_time: DateTime<Utc>) -> CommitStream {
        self.paged_query(
            Operation::ReadStreamToTime,
            Scope::stream(tenant_id, stream_id),
            |sql| &sql.by_time,
            vec![
                text(tenant_id),
                text(stream_id),
                integer(stamp_to_micros(max_time)),
            ],
            ResumeAfter::Sequence,
            RawCommit::decode,
        )
    }

    fn get_for_replay(
        &self,
        tenant_id: &str,
        stream_id: &str,
        min_revision: u64,
        max_revision: u64,
    ) -> ReplayStream {
        let inner = self.inner.clone();
        let scope = Scope::stream(tenant_id, stream_id);
        let traced = scope.clone();
        let (tenant_id, stream_id) = (tenant_id.to_owned(), stream_id.to_owned());
        let pages = paged(move |last: Option<Resume>, limit| {
            let after = last.map_or(0, |r| clamp(r.commit_sequence));
            let (tenant_id, stream_id, scope) =
                (tenant_id.clone(), stream_id.clone(), scope.clone());
            Self::read(inner.clone(), move |inner, connection| {
                let fail = |e| StoreError::storage(Operation::ReadStream, scope.clone(), e);
                let mut statement = connection
                    .prepare_cached(&inner.sql.replay_by_revision)
                    .map_err(fail)?;
                let rows = statement
                    .query_map(
                        params![
                            tenant_id,
                            stream_id,
                            clamp(min_revision),
                            clamp(max_revision),
                            after,
                            limit as i64
                        ],
                        |row| -> rusqlite::Result<ReplayRow> {
                            Ok((
                                row.get(0)?,
                                row.get(1)?,
                                row.get(2)?,
                                row.get(3)?,
                                row.get(4)?,
                            ))
                        },
                    )
                    .map_err(fail)?;
                Ok(Page::decode(rows, limit, |row| {
                    let (sequence, revision, items, events, stream_type) = row.map_err(fail)?;
                    replay_commit(&scope, sequence, revision, items, events, stream_type)
                }))
            })
        });
        crate::trace::read(Operation::ReadStream, &traced, pages)
    }

    async fn commit(&self, attempt: CommitAttempt) -> Result<Commit, StoreError> {
        attempt.validate()?;
        let span = crate::trace::commit_span(&attempt);
        crate::trace::in_span(span, self.inner.writer.commit(attempt)).await
    }
}

impl CommitLog for SqliteStore {
    fn get_from(&self, checkpoint: u64) -> LogStream {
        self.paged_query(
            Operation::ReadLog,
            Scope::Store,
            |sql| &sql.from_checkpoint,
            Vec::new(),
            ResumeAfter::Checkpoint(checkpoint),
            RawCommit::decode_entry,
        )
    }

    fn get_tenant_from(&self, tenant_id: &str, checkpoint: u64) -> LogStream {
        self.paged_query(
            Operation::ReadTenantLog,
            Scope::tenant(tenant_id),
            |sql| &sql.tenant_from_checkpoint,
            vec![text(tenant_id)],
            ResumeAfter::Checkpoint(checkpoint),
            RawCommit::decode_entry,
        )
    }

    fn get_all_to(&self, tenant_id: &str, max_time: DateTime<Utc>) -> CommitStream {
        self.paged_query(
            Operation::ReadTenantToTime,
            Scope::tenant(tenant_id),
            |sql| &sql.tenant_by_time,
            vec![text(tenant_id), integer(stamp_to_micros(max_time))],
            ResumeAfter::Checkpoint(0),
            RawCommit::decode,
        )
    }

    fn get_filtered(&self, checkpoint: u64, filter: &LogFilter) -> LogStream {
        let entries = self.filtered(checkpoint, filter, RawCommit::decode_entry);
        keep_matching(entries, filter)
    }

    fn get_filtered_for_replay(&self, checkpoint: u64, filter: &LogFilter) -> ReplayLogStream {
        if !filter.topics.is_empty() {
            // Topics live inside the events: those are read to filter.
            return for_replay(self.get_filtered(checkpoint, filter));
        }
        self.filtered(checkpoint, filter, RawCommit::decode_replay_entry)
    }

    /// Commits made through this store (in this process) wake followers at once; commits by
    /// other processes are found by the followers' polling.
    fn wakeups(&self) -> Option<Wakeups> {
        Some(self.inner.signal.wakeups())
    }
}

#[async_trait]
impl SnapshotStore for SqliteStore {
    async fn get_snapshot(
        &self,
        tenant_id: &str,
        stream_id: &str,
        max_revision: u64,
    ) -> Result<Option<Snapshot>, StoreError> {
        let (tenant_id, stream_id) = (tenant_id.to_owned(), stream_id.to_owned());
        Self::read(self.inner.clone(), move |inner, connection| {
            let scope = Scope::stream(&tenant_id, &stream_id);
            let fail = |e| StoreError::storage(Operation::GetSnapshot, scope.clone(), e);
            let row: Option<(i64, i64, Vec<u8>, Vec<u8>)> = connection
                .prepare_cached(&inner.sql.get_snapshot)
                .and_then(|mut s| {
                    s.query_row(params![tenant_id, stream_id, clamp(max_revision)], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .optional()
                })
                .map_err(fail)?;
            let Some((revision, sequence, payload, headers)) = row else {
                return Ok(None);
            };
            decode_snapshot(tenant_id, stream_id, revision, sequence, payload, headers).map(Some)
        })
        .await
    }

    async fn get_snapshot_for_replay(
        &self,
        tenant_id: &str,
        stream_id: &str,
        max_revision: u64,
    ) -> Result<Option<ReplaySnapshot>, StoreError> {
        let (tenant_id, stream_id) = (tenant_id.to_owned(), stream_id.to_owned());
        Self::read(self.inner.clone(), move |inner, connection| {
            let scope = Scope::stream(&tenant_id, &stream_id);
            let fail = |e| StoreError::storage(Operation::GetSnapshot, scope.clone(), e);
            let row: Option<(i64, i64, Vec<u8>, Vec<u8>)> = connection
                .prepare_cached(&inner.sql.replay_snapshot)
                .and_then(|mut s| {
                    s.query_row(params![tenant_id, stream_id, clamp(max_revision)], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .optional()
                })
                .map_err(fail)?;
            row.map(|(revision, sequence, payload, headers)| {
                replay_snapshot(&scope, revision, sequence, payload, &headers)
            })
            .transpose()
        })
        .await
    }

    fn streams_to_snapshot(&self, tenant_id: &str, threshold: u64) -> StreamsToSnapshot {
        let inner = self.inner.clone();
        let tenant_id = tenant_id.to_owned();
        // Paged by stream id, which the heads table is keyed on.
        paged_by_key(
            |stream: &StreamToSnapshot| &stream.stream_id,
            move |after| {
                let tenant_id = tenant_id.clone();
                Self::read(inner.clone(), move |inner, connection| {
                    let scope = Scope::tenant(&tenant_id);
                    let fail =
                        |e| StoreError::storage(Operation::StreamsToSnapshot, scope.clone(), e);
                    let mut statement = connection
                        .prepare_cached(&inner.sql.streams_to_snapshot)
                        .map_err(fail)?;
                    let rows = statement
                        .query_map(
                            params![tenant_id, clamp(threshold), after, PAGE_SIZE as i64],
                            |r| {
                                Ok((
                                    r.get::<_, String>(0)?,
                                    r.get::<_, i64>(1)?,
                                    r.get::<_, Option<i64>>(2)?,
                                ))
                            },
                        )
                        .map_err(fail)?;
                    rows.map(|row| {
                        let (stream, head, snapshot) = row.map_err(fail)?;
                        Ok(StreamToSnapshot::new(
                            tenant_id.clone(),
                            stream,
                            u64::try_from(head).unwrap_or_default(),
                            snapshot.and_then(|s| u64::try_from(s).ok()),
                        ))
                    })
                    .collect()
                })
            },
        )
    }

    async fn add_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let scope = Scope::stream(&snapshot.tenant_id, &snapshot.stream_id);
        let headers = encode_snapshot_headers(&snapshot)?;
        self.write(move |inner, connection| {
            connection
                .prepare_cached(&inner.sql.add_snapshot)
                .and_then(|mut s| {
                    s.execute(params![
                        snapshot.tenant_id,
                        snapshot.stream_id,
                        clamp(snapshot.stream_revision),
                        clamp(snapshot.commit_sequence),
                        snapshot.payload.get().as_bytes(),
                        headers,
                    ])
                })
                .map_err(|e| StoreError::storage(Operation::AddSnapshot, scope, e))?;
            Ok(())
        })
        .await
    }
}

/// The schema version recorded for the store whose commits table is `commits_table`.
fn stored_version(connection: &Connection, commits_table: &str) -> rusqlite::Result<Option<i64>> {
    connection
        .query_row(
            &format!("SELECT version FROM {VERSION_TABLE} WHERE object = ?1"),
            params![commits_table],
            |r| r.get(0),
        )
        .optional()
}

#[async_trait]
impl PersistenceManagement for SqliteStore {
    async fn initialize(&self) -> Result<(), StoreError> {
        self.write(|inner, connection| {
            let fail = |e| StoreError::storage(Operation::Initialize, Scope::Store, e);
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(fail)?;
            check_shapes(&tx, &inner.sql, Operation::Initialize)?;
            tx.execute_batch(&inner.sql.create).map_err(fail)?;
            let version = stored_version(&tx, &inner.sql.commits_table).map_err(fail)?;
            match version {
                None => {
                    tx.execute(
                        &format!("INSERT INTO {VERSION_TABLE} (object, version) VALUES (?1, ?2)"),
                        params![inner.sql.commits_table, SCHEMA_VERSION],
                    )
                    .map_err(fail)?;
                }
                Some(version) if version == SCHEMA_VERSION => {}
                // Version 2 writes deleted-stream notices (rows with negative sequences), which
                // version 1 cannot read, and fills the index of stream heads; version 3 records
                // each commit's stream type (older commits keep none). The version tells older
                // releases to keep away.
                Some(version @ (1 | 2)) => {
                    if version == 1 {
                        tx.execute(&inner.sql.backfill_heads, []).map_err(fail)?;
                    }
                    let found = columns(&tx, &inner.sql.commits_table).map_err(fail)?;
                    if !found.iter().any(|column| column == "stream_type") {
                        tx.execute(&inner.sql.add_stream_type, []).map_err(fail)?;
                    }
                    tx.execute(
                        &format!("UPDATE {VERSION_TABLE} SET version = ?2 WHERE object = ?1"),
                        params![inner.sql.commits_table, SCHEMA_VERSION],
                    )
                    .map_err(fail)?;
                }
                Some(version) => {
                    return Err(StoreError::Configuration(format!(
                        "table `{}` has schema version {version}; this aett reads versions 1 to {SCHEMA_VERSION}",
                        inner.sql.commits_table
                    )))
                }
            }
            tx.commit().map_err(fail)
        })
        .await
    }

    async fn schema_version(&self) -> Result<Option<u32>, StoreError> {
        Self::read(self.inner.clone(), |inner, connection| {
            let fail = |e| StoreError::storage(Operation::SchemaVersion, Scope::Store, e);
            let version = stored_version(connection, &inner.sql.commits_table).map_err(fail)?;
            Ok(version.and_then(|v| u32::try_from(v).ok()))
        })
        .await
    }

    async fn drop_all(&self) -> Result<(), StoreError> {
        self.write(|inner, connection| {
            let fail = |e| StoreError::storage(Operation::Drop, Scope::Store, e);
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(fail)?;
            // Refuses, dropping nothing, when either table is not aett's.
            check_shapes(&tx, &inner.sql, Operation::Drop)?;
            tx.execute_batch(&inner.sql.drop).map_err(fail)?;
            let versions_exist = !columns(&tx, VERSION_TABLE).map_err(fail)?.is_empty();
            if versions_exist {
                tx.execute(
                    &format!("DELETE FROM {VERSION_TABLE} WHERE object = ?1"),
                    params![inner.sql.commits_table],
                )
                .map_err(fail)?;
            }
            tx.commit().map_err(fail)
        })
        .await
    }

    async fn purge(&self, tenant_id: &str) -> Result<(), StoreError> {
        let tenant_id = tenant_id.to_owned();
        self.write(move |inner, connection| {
            let fail = |e| StoreError::storage(Operation::Purge, Scope::tenant(&tenant_id), e);
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(fail)?;
            tx.execute(&inner.sql.purge_commits, params![tenant_id])
                .map_err(fail)?;
            tx.execute(&inner.sql.purge_snapshots, params![tenant_id])
                .map_err(fail)?;
            tx.execute(&inner.sql.purge_heads, params![tenant_id])
                .map_err(fail)?;
            tx.commit().map_err(fail)
        })
        .await
    }

    async fn truncate_stream(
        &self,
        tenant_id: &str,
        stream_id: &str,
        revision: u64,
    ) -> Result<(), StoreError> {
        let (tenant_id, stream_id) = (tenant_id.to_owned(), stream_id.to_owned());
        self.write(move |inner, connection| {
            let scope = Scope::stream(&tenant_id, &stream_id);
            let fail = |e| StoreError::storage(Operation::TruncateStream, scope.clone(), e);
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(fail)?;
            let covered = tx
                .query_row(
                    &inner.sql.has_snapshot_from,
                    params![tenant_id, stream_id, clamp(revision)],
                    |_| Ok(()),
                )
                .optional()
                .map_err(fail)?
                .is_some();
            if !covered {
                return Err(StoreError::TruncationRefused {
                    tenant: tenant_id,
                    stream: stream_id,
                    revision,
                });
            }
            tx.execute(
                &inner.sql.truncate,
                params![tenant_id, stream_id, clamp(revision)],
            )
            .map_err(fail)?;
            tx.commit().map_err(fail)
        })
        .await
    }

    async fn delete_stream(&self, tenant_id: &str, stream_id: &str) -> Result<(), StoreError> {
        let (tenant_id, stream_id) = (tenant_id.to_owned(), stream_id.to_owned());
        self.write(move |inner, connection| {
            let scope = Scope::stream(&tenant_id, &stream_id);
            let fail = |e| StoreError::storage(Operation::DeleteStream, scope.clone(), e);
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(fail)?;
            let stream_type: Option<String> = tx
                .query_row(
                    &inner.sql.stream_type_of,
                    params![tenant_id, stream_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(fail)?
                .flatten();
            let commits = tx
                .execute(
                    &inner.sql.delete_stream_commits,
                    params![tenant_id, stream_id],
                )
                .map_err(fail)?;
            let snapshots = tx
                .execute(
                    &inner.sql.delete_stream_snapshots,
                    params![tenant_id, stream_id],
                )
                .map_err(fail)?;
            tx.execute(&inner.sql.delete_stream_head, params![tenant_id, stream_id])
                .map_err(fail)?;
            if commits + snapshots > 0 {
                tx.execute(
                    &inner.sql.insert_deletion_notice,
                    params![
                        tenant_id,
                        stream_id,
                        uuid::Uuid::new_v4().as_bytes(),
                        notice_sequence(),
                        stamp_to_micros(Utc::now()),
                        stream_type,
                    ],
                )
                .map_err(fail)?;
            }
            tx.commit().map_err(fail)
        })
        .await?;
        self.inner.signal.raise();
        Ok(())
    }
}

/// Both tables, if they exist, are aett's.
fn check_shapes(
    connection: &Connection,
    sql: &Statements,
    operation: Operation,
) -> Result<(), StoreError> {
    check_shape(
        connection,
        &sql.commits_table,
        "commits",
        // A table of schema version 1 or 2 is migrated by `initialize`.
        &[COMMITS_SHAPE, COMMITS_SHAPE_V2],
        operation,
    )?;
    check_shape(
        connection,
        &sql.snapshots_table,
        "snapshots",
        &[SNAPSHOTS_SHAPE],
        operation,
    )?;
    check_shape(
        connection,
        &sql.heads_table,
        "stream heads",
        &[HEADS_SHAPE],
        operation,
    )?;
    check_shape(
        connection,
        &sql.checkpoints_table,
        "projection checkpoints",
        &[CHECKPOINTS_SHAPE],
        operation,
    )?;
    Ok(())
}

#[async_trait]
impl CheckpointStore for SqliteStore {
    async fn load_checkpoint(
        &self,
        projection: &str,
    ) -> Result<Option<ProjectionPosition>, StoreError> {
        let projection = projection.to_owned();
        Self::read(self.inner.clone(), move |inner, connection| {
            let scope = Scope::projection(&projection);
            let row: Option<(i64, String)> = connection
                .prepare_cached(&inner.sql.load_checkpoint)
                .and_then(|mut s| {
                    s.query_row(params![projection], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(|e| StoreError::storage(Operation::LoadCheckpoint, scope.clone(), e))?;
            row.map(|(checkpoint, skipped)| position(&scope, checkpoint, &skipped))
                .transpose()
        })
        .await
    }

    async fn acquire_lease(&self, lease: &Lease) -> Result<ProjectionPosition, StoreError> {
        let lease = lease.clone();
        self.write(move |inner, connection| {
            let scope = Scope::projection(&lease.projection);
            let fail = |e| StoreError::storage(Operation::AcquireLease, scope.clone(), e);
            let tx = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(fail)?;
            let now = Utc::now();
            let holder = lease_holder(&tx, &inner.sql, &lease.projection).map_err(fail)?;
            lease_check(&lease.projection, lease.owner, holder, now)?;
            tx.execute(
                &inner.sql.take_lease,
                params![
                    lease.projection,
                    lease.owner.as_bytes(),
                    stamp_to_micros(now).saturating_add(lease.ttl_micros())
                ],
            )
            .map_err(fail)?;
            let (checkpoint, skipped): (i64, String) = tx
                .query_row(&inner.sql.load_checkpoint, params![lease.projection], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(fail)?;
            tx.commit().map_err(fail)?;
            position(&scope, checkpoint, &skipped)
        })
        .await
    }

    async fn save_checkpoint(
        &self,
        lease: &Lease,
        checkpoint: u64,
        skipped: Option<SkippedCommit>,
    ) -> Result<(), StoreError> {
        let lease = lease.clone();
        let skipped = encode_skipped(&lease, skipped.as_ref())?;
        self.write(move |inner, connection| {
            save_fenced(connection, &inner.sql, &lease, checkpoint, skipped)
        })
        .await
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let lease = lease.clone();
        self.write(move |inner, connection| {
            connection
                .execute(
                    &inner.sql.release_lease,
                    params![lease.projection, lease.owner.as_bytes()],
                )
                .map_err(|e| {
                    StoreError::storage(
                        Operation::ReleaseLease,
                        Scope::projection(&lease.projection),
                        e,
                    )
                })?;
            Ok(())
        })
        .await
    }

    /// A transaction on a connection of its own, holding SQLite's write lock from its start:
    /// commits by other writers wait (up to the busy timeout) until the batch is done.
    async fn begin_checkpoint_transaction(
        &self,
        lease: &Lease,
    ) -> Result<Box<dyn CheckpointTransaction>, StoreError> {
        let inner = self.inner.clone();
        let lease = lease.clone();
        blocking(move || {
            let connection = open_connection(&inner.config)?;
            connection.execute_batch("BEGIN IMMEDIATE").map_err(|e| {
                StoreError::storage(
                    Operation::SaveCheckpoint,
                    Scope::projection(&lease.projection),
                    e,
                )
            })?;
            Ok(Box::new(SqliteTransaction {
                connection: Mutex::new(Some(connection)),
                inner,
                lease,
            }) as Box<dyn CheckpointTransaction>)
        })
        .await
    }
}

/// The transaction a projection run exactly once on SQLite writes its read model in: the
/// handlers reach it through [`crate::EventContext::transaction`] and run their statements with
/// [`SqliteTransaction::with`]; the runner then advances the checkpoint in the same
/// transaction and commits.
///
/// ```no_run
/// # use aett::backends::sqlite::SqliteTransaction;
/// # fn demo(context: &aett::EventContext<'_>) -> Result<(), aett::BoxError> {
/// let tx = context.transaction::<SqliteTransaction>().ok_or("needs the SQLite store")?;
/// tx.with(|db| db.execute("UPDATE balances SET total = total + 1", []))?;
/// # Ok(()) }
/// ```
pub struct SqliteTransaction {
    connection: Mutex<Option<Connection>>,
    inner: Arc<Inner>,
    lease: Lease,
}

impl std::fmt::Debug for SqliteTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteTransaction")
            .field("projection", &self.lease.projection)
            .finish_non_exhaustive()
    }
}

impl SqliteTransaction {
    /// Runs `work` with the transaction's connection (inside the open transaction). It runs
    /// on the calling thread: keep it to a few statements.
    pub fn with<T>(
        &self,
        work: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let guard = self.connection.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(connection) => work(connection),
            None => Err(rusqlite::Error::InvalidQuery),
        }
    }
}

#[async_trait]
impl CheckpointTransaction for SqliteTransaction {
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }

    async fn commit(
        self: Box<Self>,
        checkpoint: u64,
        skipped: Option<SkippedCommit>,
    ) -> Result<(), StoreError> {
        let skipped = encode_skipped(&self.lease, skipped.as_ref())?;
        blocking(move || {
            let connection = self
                .connection
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            let Some(connection) = connection else {
                return Err(StoreError::LeaseLost {
                    projection: self.lease.projection.clone(),
                });
            };
            // Dropping the connection with the transaction open rolls it back.
            save_fenced(
                &connection,
                &self.inner.sql,
                &self.lease,
                checkpoint,
                skipped,
            )?;
            connection.execute_batch("COMMIT").map_err(|e| {
                StoreError::storage(
                    Operation::SaveCheckpoint,
                    Scope::projection(&self.lease.projection),
                    e,
                )
            })
        })
        .await
    }
}

/// Moves the checkpoint if, and only if, `lease` is still held; renews it.
fn save_fenced(
    connection: &Connection,
    sql: &Statements,
    lease: &Lease,
    checkpoint: u64,
    skipped: Option<String>,
) -> Result<(), StoreError> {
    let updated = connection
        .prepare_cached(&sql.save_checkpoint)
        .and_then(|mut s| {
            s.execute(params![
                lease.projection,
                lease.owner.as_bytes(),
                clamp(checkpoint),
                stamp_to_micros(Utc::now()).saturating_add(lease.ttl_micros()),
                skipped,
            ])
        })
        .map_err(|e| {
            StoreError::storage(
                Operation::SaveCheckpoint,
                Scope::projection(&lease.projection),
                e,
            )
        })?;
    if updated == 0 {
        return Err(StoreError::LeaseLost {
            projection: lease.projection.clone(),
        });
    }
    Ok(())
}

fn lease_holder(
    connection: &Connection,
    sql: &Statements,
    projection: &str,
) -> rusqlite::Result<Option<(uuid::Uuid, DateTime<Utc>)>> {
    let row: Option<(Option<Vec<u8>>, Option<i64>)> = connection
        .query_row(&sql.lease_holder, params![projection], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    Ok(match row {
        Some((Some(owner), Some(until))) => uuid::Uuid::from_slice(&owner)
            .ok()
            .zip(stamp_from_micros(until)),
        _ => None,
    })
}
