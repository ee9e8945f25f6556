//! The MongoDB backend (feature `mongodb`).
//!
//! The official `mongodb` driver, standard operations only, so the same code runs on a single
//! server, a replica set and Atlas. One document per commit, its headers and events stored as
//! BSON documents (see `documents.rs` for how JSON maps to BSON and back).
//!
//! **The checkpoint order.** A commit's checkpoint is one more than the highest checkpoint in
//! the commits collection, read just before its insert; a unique index on `checkpoint` lets
//! one insert win each number, and a loser reads the highest again and retries. So checkpoint
//! `n + 1` is only ever written by a writer that saw `n` stored: a reader of the log never
//! meets a commit that a slower one with a lower checkpoint overtakes, and never skips one.
//! No transaction is needed, so commits work on a standalone server too. The cost: commits
//! across the whole store are ordered one at a time, each paying a read of the highest
//! checkpoint, and concurrent writers that pick the same number retry (BENCHMARKS.md has the
//! figures). A purge that removes the newest commits records the highest checkpoint it removed
//! in the collection's marker document, so numbers are never handed out twice.
//!
//! **Transactions** (a replica set, which Atlas and the test server are) are used where one
//! operation changes several documents: deleting, truncating and purging, and projections run
//! exactly once ([`MongoTransaction`]). A commit is one insert and needs none; its stream's
//! head (for [`SnapshotStore::streams_to_snapshot`]) is written just after it, so a process
//! that dies in between leaves that one head behind until the stream's next commit.

mod checkpoints;
mod config;
mod documents;

use std::future::IntoFuture;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use futures::stream::{BoxStream, TryStreamExt};
use futures::FutureExt;
use mongodb::bson::{doc, Bson, Document, RawBsonRef, RawDocument, RawDocumentBuf};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{ClientSession, Collection, IndexModel};

pub use checkpoints::MongoTransaction;
pub use config::MongoConfig;

use self::documents::{
    commit_document, json_to_bson, raw_commit, uuid_bson, Fields, MARKER_ID, SCHEMA_VERSION,
};
use crate::backends::kit::sql::{
    clamp, decode_snapshot, encode_snapshot_headers, notice_sequence, replay_commit,
    replay_snapshot, why_refused, RawCommit,
};
use crate::backends::kit::{
    check_follows_head, paged, paged_by_key, resolve_taken_sequence, stamp_to_micros, CommitSignal,
    Page, PageItem, Resume, PAGE_SIZE,
};
use crate::error::{Operation, Scope, StoreError};
use crate::model::{Commit, CommitAttempt, LogFilter, Snapshot};
use crate::store::{for_replay, keep_matching};
use crate::store::{
    CommitLog, CommitStore, CommitStream, LogStream, PersistenceManagement, ReplayLogStream,
    ReplaySnapshot, ReplayStream, SnapshotStore, StreamToSnapshot, StreamsToSnapshot, Wakeups,
};

/// An event store in a MongoDB database. Cheap to clone; clones share the driver's pool.
#[derive(Clone)]
pub struct MongoStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoStore")
            .field("database", &self.inner.database.name())
            .field("commits", &self.inner.names.commits)
            .field("snapshots", &self.inner.names.snapshots)
            .finish_non_exhaustive()
    }
}

/// The collections' names.
#[derive(Debug, Clone)]
struct Names {
    commits: String,
    snapshots: String,
    heads: String,
    checkpoints: String,
}

struct Inner {
    config: MongoConfig,
    client: mongodb::Client,
    database: mongodb::Database,
    names: Names,
    commits: Collection<Document>,
    snapshots: Collection<Document>,
    heads: Collection<Document>,
    checkpoints: Collection<Document>,
    /// Raised after each commit and deletion made through this store.
    signal: CommitSignal,
    /// The highest checkpoint this store has seen: the next one is found by reading forward
    /// from here, which every server does fast (some scan a whole index backwards).
    highest_seen: AtomicI64,
}

/// Collection names MongoDB accepts: not empty, no `$` or NUL, not `system.`, and short enough
/// for a namespace (database and collection) of 255 bytes.
fn validate_collection(kind: &str, name: &str) -> Result<(), StoreError> {
    if name.is_empty()
        || name.contains(['$', '\0'])
        || name.starts_with("system.")
        || name.len() > 200
    {
        return Err(StoreError::Configuration(format!(
            "{kind} collection name `{name}` is not allowed: use 1 to 200 bytes, no `$` or NUL, not starting with `system.`"
        )));
    }
    Ok(())
}

impl MongoStore {
    /// Connects as `config` says and checks that the deployment answers, so a wrong address or
    /// credentials fail here. Call [`PersistenceManagement::initialize`] before first use.
    pub async fn connect(config: MongoConfig) -> Result<Self, StoreError> {
        let names = Names {
            commits: format!("{}{}", config.prefix, config.commits_collection),
            snapshots: format!("{}{}", config.prefix, config.snapshots_collection),
            heads: format!("{}{}_streams", config.prefix, config.commits_collection),
            checkpoints: format!("{}{}_checkpoints", config.prefix, config.commits_collection),
        };
        for (kind, name) in [
            ("commits", &names.commits),
            ("snapshots", &names.snapshots),
            ("stream heads", &names.heads),
            ("checkpoints", &names.checkpoints),
        ] {
            validate_collection(kind, name)?;
        }
        if [&names.heads, &names.checkpoints].contains(&&names.snapshots)
            || names.commits == names.snapshots
        {
            return Err(StoreError::Configuration(format!(
                "the snapshots collection `{}` must differ from the commits collection and its `_streams` and `_checkpoints` collections",
                names.snapshots
            )));
        }
        let connect = |reason: String| {
            StoreError::Configuration(format!("invalid MongoDB connection string: {reason}"))
        };
        let mut options =
            tokio::time::timeout(config.connect_timeout, ClientOptions::parse(&config.url))
                .await
                .map_err(|_| StoreError::Timeout {
                    operation: Operation::Connect,
                    scope: Scope::Store,
                    after: config.connect_timeout,
                })?
                .map_err(|e| connect(DriverError::from(e).message))?;
        options.connect_timeout = Some(config.connect_timeout);
        options.server_selection_timeout = Some(config.connect_timeout);
        options.max_pool_size = Some(config.pool_size);
        options.app_name.get_or_insert_with(|| "aett".to_owned());
        let database_name = config
            .database
            .clone()
            .or_else(|| options.default_database.clone())
            .unwrap_or_else(|| "aett".to_owned());
        let client = mongodb::Client::with_options(options)
            .map_err(|e| connect(DriverError::from(e).message))?;
        let database = client.database(&database_name);
        let store = Self {
            inner: Arc::new(Inner {
                commits: database.collection(&names.commits),
                snapshots: database.collection(&names.snapshots),
                heads: database.collection(&names.heads),
                checkpoints: database.collection(&names.checkpoints),
                config,
                client,
                database,
                names,
                signal: CommitSignal::default(),
                highest_seen: AtomicI64::new(0),
            }),
        };
        let inner = &store.inner;
        inner
            .run(
                Operation::Connect,
                &Scope::Store,
                inner.database.run_command(doc! {"ping": 1}),
            )
            .await?;
        Ok(store)
    }

    /// The database holding the store's collections.
    pub fn database(&self) -> &mongodb::Database {
        &self.inner.database
    }

    /// The commits collection's name.
    pub fn commits_collection(&self) -> &str {
        &self.inner.names.commits
    }

    /// The snapshots collection's name.
    pub fn snapshots_collection(&self) -> &str {
        &self.inner.names.snapshots
    }

    fn paged_query(&self, query: Query) -> CommitStream {
        let (operation, scope, shape) = query.into_parts();
        self.read(operation, scope, shape, None, |document, scope| {
            raw_commit(document, scope).and_then(RawCommit::decode)
        })
    }

    /// The log from `checkpoint`, as `select` chooses, each document decoded by `decode`.
    fn log<T: PageItem>(
        &self,
        checkpoint: u64,
        select: LogSelect,
        decode: fn(RawCommit) -> Result<T, StoreError>,
    ) -> BoxStream<'static, Result<T, StoreError>> {
        let (operation, scope) = (select.operation(), select.scope());
        let shape = select.shape(clamp(checkpoint));
        self.read(operation, scope, shape, None, move |document, scope| {
            raw_commit(document, scope).and_then(decode)
        })
    }

    /// A paged read of the commits collection in the order of `shape`, each document kept by
    /// it decoded by `decode`.
    fn read<T: PageItem>(
        &self,
        operation: Operation,
        scope: Scope,
        shape: Shape,
        projection: Option<Document>,
        decode: impl Fn(&RawDocument, &Scope) -> Result<T, StoreError> + Clone + Send + Sync + 'static,
    ) -> BoxStream<'static, Result<T, StoreError>> {
        let inner = self.inner.clone();
        let traced = scope.clone();
        let pages = paged(move |last: Option<Resume>, limit| {
            let (inner, shape, scope) = (inner.clone(), shape.clone(), scope.clone());
            let (projection, decode) = (projection.clone(), decode.clone());
            async move {
                let after = shape.after(last);
                let (documents, more) = inner
                    .residual_page(operation, &scope, &shape, after, limit, projection)
                    .await?;
                let mut page = Page::decode(&documents, limit, |document| decode(document, &scope));
                if page.error.is_none() {
                    page.more = more;
                }
                Ok(page)
            }
            .boxed()
        });
        crate::trace::read(operation, &traced, pages)
    }
}

/// A read of the commits collection: an equality prefix and one range on `key` (the shape every
/// server, however simple its planner, answers from an index), in `key` order, and what is
/// checked of each document here rather than in the query.
#[derive(Clone)]
struct Shape {
    equal: Document,
    key: &'static str,
    /// The key's value before the first document wanted.
    start: i64,
    residual: Residual,
}

#[derive(Clone)]
enum Residual {
    None,
    /// Tenants and stream types (empty: any).
    Log {
        tenants: Vec<String>,
        types: Vec<String>,
    },
    /// Commits stamped at or before these microseconds.
    UpToTime(i64),
    /// Commits that begin at or before this revision; the first that does not ends the read.
    BeginningBy(i64),
}

/// What becomes of a document read.
enum Verdict {
    Keep,
    Skip,
    Stop,
}

impl Shape {
    fn new(equal: Document, key: &'static str, start: i64, residual: Residual) -> Self {
        Self {
            equal,
            key,
            start,
            residual,
        }
    }

    /// Where the page after `last` starts.
    fn after(&self, last: Option<Resume>) -> i64 {
        let Some(last) = last else {
            return self.start;
        };
        clamp(match self.key {
            "checkpoint" => last.checkpoint,
            "stream_revision" => last.stream_revision,
            _ => last.commit_sequence,
        })
    }

    fn filter(&self, after: i64) -> Document {
        let mut filter = self.equal.clone();
        filter.insert(self.key, doc! {"$gt": after});
        filter
    }

    fn verdict(&self, document: &RawDocument) -> Verdict {
        // The collection's marker is not an entry of the log.
        if document.get_str("_id") == Ok(MARKER_ID) {
            return Verdict::Skip;
        }
        // A field that does not read is kept: decoding reports the damage.
        let kept = |keep: bool| if keep { Verdict::Keep } else { Verdict::Skip };
        match &self.residual {
            Residual::None => Verdict::Keep,
            Residual::Log { tenants, types } => {
                let tenant_ok = tenants.is_empty()
                    || document
                        .get_str("tenant_id")
                        .map_or(true, |t| tenants.iter().any(|x| x == t));
                let type_ok = types.is_empty()
                    || match document.get("stream_type") {
                        Ok(Some(RawBsonRef::String(t))) => types.iter().any(|x| x == t),
                        Ok(Some(RawBsonRef::Null)) | Ok(None) => false,
                        _ => true,
                    };
                kept(tenant_ok && type_ok)
            }
            Residual::UpToTime(max) => kept(
                document.get_i64("commit_sequence").map_or(true, |s| s > 0)
                    && document.get_i64("stamp_micros").map_or(true, |t| t <= *max),
            ),
            Residual::BeginningBy(max) => match document.get_i64("first_revision") {
                Ok(first) if first > *max => Verdict::Stop,
                _ => Verdict::Keep,
            },
        }
    }
}

/// Which entries of the log a read selects.
#[derive(Clone)]
enum LogSelect {
    All,
    Tenant(String),
    /// Tenants and stream types (empty: any).
    Filtered {
        tenants: Vec<String>,
        types: Vec<String>,
    },
}

impl LogSelect {
    fn operation(&self) -> Operation {
        match self {
            LogSelect::Tenant(_) => Operation::ReadTenantLog,
            _ => Operation::ReadLog,
        }
    }

    fn scope(&self) -> Scope {
        match self {
            LogSelect::Tenant(tenant) => Scope::tenant(tenant),
            LogSelect::Filtered { tenants, .. } if tenants.len() == 1 => Scope::tenant(&tenants[0]),
            _ => Scope::Store,
        }
    }

    /// The read from `after`: one tenant's on the (tenant, checkpoint) index, else the whole
    /// log's on the checkpoint index, filtered as it is read.
    fn shape(&self, after: i64) -> Shape {
        let one_tenant = |tenant: &str, residual| {
            Shape::new(doc! {"tenant_id": tenant}, "checkpoint", after, residual)
        };
        match self {
            LogSelect::All => Shape::new(doc! {}, "checkpoint", after, Residual::None),
            LogSelect::Tenant(tenant) => one_tenant(tenant, Residual::None),
            LogSelect::Filtered { tenants, types } => match tenants.as_slice() {
                [tenant] => one_tenant(
                    tenant,
                    Residual::Log {
                        tenants: Vec::new(),
                        types: types.clone(),
                    },
                ),
                _ => Shape::new(
                    doc! {},
                    "checkpoint",
                    after,
                    Residual::Log {
                        tenants: tenants.clone(),
                        types: types.clone(),
                    },
                ),
            },
        }
    }
}

/// The paged reads other than the log's.
#[derive(Clone)]
enum Query {
    Stream {
        scope: Scope,
        tenant: String,
        stream: String,
        min: i64,
        max: i64,
    },
    StreamToTime {
        scope: Scope,
        tenant: String,
        stream: String,
        max_micros: i64,
    },
    TenantToTime {
        scope: Scope,
        tenant: String,
        max_micros: i64,
    },
}

impl Query {
    fn into_parts(self) -> (Operation, Scope, Shape) {
        match self {
            Query::Stream {
                scope,
                tenant,
                stream,
                min,
                max,
            } => (
                Operation::ReadStream,
                scope,
                stream_range(&tenant, &stream, min, max),
            ),
            Query::StreamToTime {
                scope,
                tenant,
                stream,
                max_micros,
            } => (
                Operation::ReadStreamToTime,
                scope,
                Shape::new(
                    doc! {"tenant_id": tenant, "stream_id": stream},
                    "commit_sequence",
                    0,
                    Residual::UpToTime(max_micros),
                ),
            ),
            Query::TenantToTime {
                scope,
                tenant,
                max_micros,
            } => (
                Operation::ReadTenantToTime,
                scope,
                Shape::new(
                    doc! {"tenant_id": tenant},
                    "checkpoint",
                    0,
                    Residual::UpToTime(max_micros),
                ),
            ),
        }
    }
}

/// The commits of a stream that hold a revision in `min..=max`, read on the `stream_revision`
/// index from the first revision wanted: a load from a snapshot touches only the commits after
/// it. (Deleted-stream notices have revision 0, below every commit's.)
fn stream_range(tenant: &str, stream: &str, min: i64, max: i64) -> Shape {
    Shape::new(
        doc! {"tenant_id": tenant, "stream_id": stream},
        "stream_revision",
        min.max(1) - 1,
        Residual::BeginningBy(max),
    )
}

/// Runs `$work` (which uses the transaction's `$session`) in a transaction of its own, tried
/// again while it meets concurrent writers. A macro, because a closure that borrows the session
/// for an `.await` cannot promise the `Send` future the store's methods need.
macro_rules! in_transaction {
    ($store:expr, $operation:expr, $scope:expr, |$session:ident| $work:expr) => {{
        let mut done = None;
        for _ in 0..TRANSACTION_TRIES {
            let mut $session = $store.inner.begin($operation, $scope).await?;
            let outcome = $work.await;
            if let Some(value) = $store
                .inner
                .finish($operation, $scope, $session, outcome)
                .await?
            {
                done = Some(value);
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        done.ok_or_else(|| $store.busy($operation, $scope))
    }};
}

/// How often a transaction that met a concurrent writer is tried again.
const TRANSACTION_TRIES: usize = 50;

impl Inner {
    /// Runs `work` under the operation timeout, its driver error mapped.
    async fn run<T>(
        &self,
        operation: Operation,
        scope: &Scope,
        work: impl IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<T, StoreError> {
        self.try_run(operation, scope, work)
            .await?
            .map_err(|error| self.driver_error(operation, scope, error))
    }

    /// Runs `work` under the operation timeout; the driver's result is the caller's to judge (a
    /// duplicate key is an answer, not a failure).
    async fn try_run<T>(
        &self,
        operation: Operation,
        scope: &Scope,
        work: impl IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> Result<mongodb::error::Result<T>, StoreError> {
        tokio::time::timeout(self.config.operation_timeout, work)
            .await
            .map_err(|_| StoreError::Timeout {
                operation,
                scope: scope.clone(),
                after: self.config.operation_timeout,
            })
    }

    fn driver_error(
        &self,
        operation: Operation,
        scope: &Scope,
        error: mongodb::error::Error,
    ) -> StoreError {
        if matches!(*error.kind, ErrorKind::ServerSelection { .. }) {
            return StoreError::Timeout {
                operation,
                scope: scope.clone(),
                after: self.config.connect_timeout,
            };
        }
        StoreError::storage(operation, scope.clone(), DriverError::from(error))
    }

    /// The documents after `after` that `shape` keeps, a page at a time: pages whose every
    /// document is filtered out are read past, so an empty result means the end. The flag says
    /// whether more may follow.
    async fn residual_page(
        &self,
        operation: Operation,
        scope: &Scope,
        shape: &Shape,
        mut after: i64,
        limit: usize,
        projection: Option<Document>,
    ) -> Result<(Vec<RawDocumentBuf>, bool), StoreError> {
        loop {
            let documents = self
                .find(
                    operation,
                    scope,
                    shape.filter(after),
                    doc! {shape.key: 1},
                    limit,
                    projection.clone(),
                )
                .await?;
            let full = documents.len() >= limit;
            let last = documents
                .last()
                .and_then(|document| document.get_i64(shape.key).ok());
            let mut kept = Vec::with_capacity(documents.len());
            for document in documents {
                match shape.verdict(&document) {
                    Verdict::Keep => kept.push(document),
                    Verdict::Skip => {}
                    Verdict::Stop => return Ok((kept, false)),
                }
            }
            match last {
                Some(last) if full && kept.is_empty() => after = last,
                _ => return Ok((kept, full)),
            }
        }
    }

    /// One page of raw documents of the commits collection.
    async fn find(
        &self,
        operation: Operation,
        scope: &Scope,
        filter: Document,
        sort: Document,
        limit: usize,
        projection: Option<Document>,
    ) -> Result<Vec<RawDocumentBuf>, StoreError> {
        let commits = self.commits.clone_with_type::<RawDocumentBuf>();
        self.run(operation, scope, async {
            let mut find = commits
                .find(filter)
                .sort(sort)
                .limit(limit as i64)
                .batch_size(limit.min(PAGE_SIZE) as u32);
            if let Some(projection) = projection {
                find = find.projection(projection);
            }
            let cursor = find.await?;
            cursor.try_collect().await
        })
        .await
    }

    /// The stream's head `(sequence, revision)`, `(0, 0)` for an empty stream, read forward
    /// from sequence `from` when the stream reaches it.
    async fn head(
        &self,
        scope: &Scope,
        tenant: &str,
        stream: &str,
        from: i64,
    ) -> Result<(i64, i64), StoreError> {
        let projection = doc! {"commit_sequence": 1, "stream_revision": 1, "_id": 0};
        let near = self
            .find(
                Operation::Commit,
                scope,
                doc! {"tenant_id": tenant, "stream_id": stream, "commit_sequence": {"$gte": from.max(1)}},
                doc! {"commit_sequence": 1},
                PAGE_SIZE,
                Some(projection.clone()),
            )
            .await?;
        let last = match near.last() {
            Some(last) => Some(last.clone()),
            // Shorter than `from`: its last commit, read backwards.
            None => {
                let commits = self.commits.clone_with_type::<RawDocumentBuf>();
                self.run(
                    Operation::Commit,
                    scope,
                    commits
                        .find_one(doc! {"tenant_id": tenant, "stream_id": stream, "commit_sequence": {"$gt": 0}})
                        .sort(doc! {"commit_sequence": -1})
                        .projection(projection),
                )
                .await?
            }
        };
        match last {
            None => Ok((0, 0)),
            Some(document) => {
                let fields = Fields::new(&document, scope);
                Ok((
                    fields.i64("commit_sequence")?,
                    fields.i64("stream_revision")?,
                ))
            }
        }
    }

    /// The checkpoint the next entry of the log takes: one past the highest stored (or
    /// recorded by a purge in the marker).
    async fn next_checkpoint(&self, scope: &Scope) -> Result<i64, StoreError> {
        let from = self.highest_seen.load(Ordering::Relaxed);
        let highest = if from > 0 {
            // The highest checkpoint never goes down, so it is at or after one seen before.
            let newer = self
                .find(
                    Operation::Commit,
                    scope,
                    doc! {"checkpoint": {"$gte": from}},
                    doc! {"checkpoint": 1},
                    usize::MAX >> 1,
                    Some(doc! {"checkpoint": 1, "_id": 0}),
                )
                .await?;
            match newer.last() {
                Some(last) => Some(Fields::new(last, scope).i64("checkpoint")?),
                None => None,
            }
        } else {
            None
        };
        let highest = match highest {
            Some(highest) => highest,
            None => {
                let commits = self.commits.clone_with_type::<RawDocumentBuf>();
                let found = self
                    .run(
                        Operation::Commit,
                        scope,
                        commits
                            .find_one(doc! {})
                            .sort(doc! {"checkpoint": -1})
                            .projection(doc! {"checkpoint": 1, "_id": 0}),
                    )
                    .await?;
                match found {
                    Some(document) => Fields::new(&document, scope).i64("checkpoint")?,
                    None => 0,
                }
            }
        };
        self.saw_checkpoint(highest);
        Ok(highest + 1)
    }

    fn saw_checkpoint(&self, checkpoint: i64) {
        self.highest_seen.fetch_max(checkpoint, Ordering::Relaxed);
    }

    /// [`Inner::next_checkpoint`] inside a transaction.
    async fn next_checkpoint_in(
        &self,
        operation: Operation,
        scope: &Scope,
        session: &mut ClientSession,
    ) -> Result<i64, StoreError> {
        let commits = self.commits.clone_with_type::<RawDocumentBuf>();
        let found = self
            .run(
                operation,
                scope,
                commits
                    .find_one(doc! {})
                    .sort(doc! {"checkpoint": -1})
                    .projection(doc! {"checkpoint": 1, "_id": 0})
                    .session(session),
            )
            .await?;
        match found {
            Some(document) => Ok(Fields::new(&document, scope).i64("checkpoint")? + 1),
            None => Ok(1),
        }
    }

    /// Keeps the stream's head current after a commit. A failure is not the commit's: the
    /// commit is stored, and the stream's next commit moves the head on.
    async fn advance_head(&self, attempt: &CommitAttempt, scope: &Scope) {
        let filter = doc! {"tenant_id": &attempt.tenant_id, "stream_id": &attempt.stream_id};
        let update = doc! {"$max": {
            "head_revision": clamp(attempt.stream_revision),
            "head_sequence": clamp(attempt.commit_sequence),
        }};
        for _ in 0..2 {
            // Two first commits' upserts may race on the unique index; the loser updates.
            match self
                .try_run(
                    Operation::Commit,
                    scope,
                    self.heads
                        .update_one(filter.clone(), update.clone())
                        .upsert(true),
                )
                .await
            {
                Ok(Err(error)) if duplicate_index(&error).is_some() => continue,
                Ok(Ok(_)) => return,
                Ok(Err(error)) => {
                    let _ = &error;
                    crate::trace::debug!(%error, "could not move a stream's head");
                    return;
                }
                Err(_) => return,
            }
        }
    }

    /// Starts a session with a transaction open.
    async fn begin(
        &self,
        operation: Operation,
        scope: &Scope,
    ) -> Result<ClientSession, StoreError> {
        let mut session = self
            .run(operation, scope, self.client.start_session())
            .await?;
        self.run(operation, scope, session.start_transaction())
            .await?;
        Ok(session)
    }

    /// Commits the transaction `outcome` was worked out in. `None`: it met a concurrent writer
    /// and was rolled back, to be tried again.
    async fn finish<T>(
        &self,
        operation: Operation,
        scope: &Scope,
        mut session: ClientSession,
        outcome: Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let value = match outcome {
            Ok(value) => value,
            Err(error) => {
                let _ = session.abort_transaction().await;
                return if transient(&error) {
                    Ok(None)
                } else {
                    Err(error)
                };
            }
        };
        loop {
            match self
                .try_run(operation, scope, session.commit_transaction())
                .await?
            {
                Ok(()) => return Ok(Some(value)),
                Err(error)
                    if error.contains_label(mongodb::error::UNKNOWN_TRANSACTION_COMMIT_RESULT) =>
                {
                    continue
                }
                Err(error) if error.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR) => {
                    return Ok(None)
                }
                Err(error) => return Err(self.driver_error(operation, scope, error)),
            }
        }
    }
}

/// Whether a transaction failed only because a concurrent writer got there first.
fn transient(error: &StoreError) -> bool {
    let StoreError::Storage { source, .. } = error else {
        return false;
    };
    source.downcast_ref::<DriverError>().is_some_and(|driver| {
        driver
            .source
            .contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR)
            || duplicate_index(&driver.source) == Some("checkpoint")
    })
}

/// The unique index an insert or update violated (code 11000), by name.
fn duplicate_index(error: &mongodb::error::Error) -> Option<&str> {
    let message = match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(write)) if write.code == 11000 => &write.message,
        ErrorKind::Command(command) if command.code == 11000 => &command.message,
        _ => return None,
    };
    // "E11000 duplicate key error collection: db.commits index: NAME dup key: { … }"
    message
        .split(" index: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
}

/// A driver error that shows the server's own message and code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct DriverError {
    message: String,
    #[source]
    source: mongodb::error::Error,
}

impl From<mongodb::error::Error> for DriverError {
    fn from(source: mongodb::error::Error) -> Self {
        let message = match source.kind.as_ref() {
            ErrorKind::Write(WriteFailure::WriteError(write)) => {
                format!("{} (code {})", write.message, write.code)
            }
            ErrorKind::Write(WriteFailure::WriteConcernError(concern)) => format!(
                "{} (write concern, code {} {})",
                concern.message, concern.code, concern.code_name
            ),
            ErrorKind::Command(command) => format!(
                "{} (code {} {})",
                command.message, command.code, command.code_name
            ),
            other => other.to_string(),
        };
        Self { message, source }
    }
}

#[async_trait]
impl CommitStore for MongoStore {
    fn get(
        &self,
        tenant_id: &str,
        stream_id: &str,
        min_revision: u64,
        max_revision: u64,
    ) -> CommitStream {
        self.paged_query(Query::Stream {
            scope: Scope::stream(tenant_id, stream_id),
            tenant: tenant_id.to_owned(),
            stream: stream_id.to_owned(),
            min: clamp(min_revision),
            max: clamp(max_revision),
        })
    }

    fn get_to(&self, tenant_id: &str, stream_id: &str, max_time: DateTime<Utc>) -> CommitStream {
        self.paged_query(Query::StreamToTime {
            scope: Scope::stream(tenant_id, stream_id),
            tenant: tenant_id.to_owned(),
            stream: stream_id.to_owned(),
            max_micros: stamp_to_micros(max_time),
        })
    }

    fn get_for_replay(
        &self,
        tenant_id: &str,
        stream_id: &str,
        min_revision: u64,
        max_revision: u64,
    ) -> ReplayStream {
        let shape = stream_range(
            tenant_id,
            stream_id,
            clamp(min_revision),
            clamp(max_revision),
        );
        let projection = doc! {
            "commit_sequence": 1, "stream_revision": 1, "first_revision": 1, "items": 1,
            "events": 1, "stream_type": 1, "_id": 0,
        };
        self.read(
            Operation::ReadStream,
            Scope::stream(tenant_id, stream_id),
            shape,
            Some(projection),
            |document, scope| {
                let fields = Fields::new(document, scope);
                replay_commit(
                    scope,
                    fields.i64("commit_sequence")?,
                    fields.i64("stream_revision")?,
                    fields.i64("items")?,
                    fields.json("events")?,
                    fields.optional_str("stream_type")?.map(str::to_owned),
                )
            },
        )
    }

    async fn commit(&self, attempt: CommitAttempt) -> Result<Commit, StoreError> {
        let span = crate::trace::commit_span(&attempt);
        let commit = crate::trace::in_span(span, self.commit_now(attempt)).await?;
        self.inner.signal.raise();
        Ok(commit)
    }
}

impl MongoStore {
    async fn commit_now(&self, mut attempt: CommitAttempt) -> Result<Commit, StoreError> {
        attempt.validate()?;
        attempt.commit_stamp = attempt.commit_stamp.trunc_subsecs(6);
        let inner = &self.inner;
        let scope = Scope::stream(&attempt.tenant_id, &attempt.stream_id);
        let mut document = commit_document(&attempt)?;
        // An insert cannot check what precedes it, so a later commit first checks that it
        // follows the stream's head; a writer that takes the sequence meanwhile makes the
        // insert fail on the unique index.
        let mut checkpoint = if attempt.commit_sequence > 1 {
            let (head, checkpoint) = futures::try_join!(
                inner.head(
                    &scope,
                    &attempt.tenant_id,
                    &attempt.stream_id,
                    clamp(attempt.commit_sequence) - 1
                ),
                inner.next_checkpoint(&scope),
            )?;
            let head = (
                u64::try_from(head.0).unwrap_or_default(),
                u64::try_from(head.1).unwrap_or_default(),
            );
            check_follows_head(&attempt, head)?;
            if attempt.commit_sequence <= head.0 {
                return Err(self.refused(&attempt, &scope).await);
            }
            checkpoint
        } else {
            inner.next_checkpoint(&scope).await?
        };
        loop {
            document.insert("checkpoint", checkpoint);
            match inner
                .try_run(
                    Operation::Commit,
                    &scope,
                    inner.commits.insert_one(&document),
                )
                .await?
            {
                Ok(_) => break,
                Err(error) => match duplicate_index(&error) {
                    // Another writer took this checkpoint first: take the next free one.
                    Some("checkpoint") => {
                        checkpoint = inner.next_checkpoint(&scope).await?;
                    }
                    Some(_) => return Err(self.refused(&attempt, &scope).await),
                    None => return Err(inner.driver_error(Operation::Commit, &scope, error)),
                },
            }
        }
        inner.saw_checkpoint(checkpoint);
        inner.advance_head(&attempt, &scope).await;
        Ok(Commit::from_attempt(
            attempt,
            u64::try_from(checkpoint).unwrap_or_default(),
        ))
    }

    /// Why an attempt did not go in: a duplicate, an invalid attempt, or a taken sequence
    /// judged by the conflict detector.
    async fn refused(&self, attempt: &CommitAttempt, scope: &Scope) -> StoreError {
        match self.why_refused(attempt, scope).await {
            Ok(answer) | Err(answer) => answer,
        }
    }

    async fn why_refused(
        &self,
        attempt: &CommitAttempt,
        scope: &Scope,
    ) -> Result<StoreError, StoreError> {
        let inner = &self.inner;
        let stream = doc! {"tenant_id": &attempt.tenant_id, "stream_id": &attempt.stream_id};
        let mut by_id = stream.clone();
        by_id.insert("commit_id", uuid_bson(attempt.commit_id));
        let duplicate = inner
            .run(
                Operation::Commit,
                scope,
                inner.commits.count_documents(by_id).limit(1),
            )
            .await?
            > 0;
        if duplicate {
            return Ok(why_refused(attempt, true, (0, 0)).into_answer(attempt));
        }
        // The commits from the attempt's sequence on are the ones its writer had not seen.
        let mut later = stream;
        later.insert(
            "commit_sequence",
            doc! {"$gte": clamp(attempt.commit_sequence)},
        );
        let documents = inner
            .find(
                Operation::Commit,
                scope,
                later,
                doc! {"commit_sequence": 1},
                PAGE_SIZE,
                None,
            )
            .await?;
        if documents.is_empty() {
            // Nothing took the sequence: the attempt is invalid, or the stream lost commits.
            let head = inner
                .head(
                    scope,
                    &attempt.tenant_id,
                    &attempt.stream_id,
                    clamp(attempt.commit_sequence) - 1,
                )
                .await?;
            return Ok(why_refused(attempt, false, head).into_answer(attempt));
        }
        let later = documents
            .iter()
            .map(|document| raw_commit(document, scope).and_then(RawCommit::decode))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(resolve_taken_sequence(
            attempt,
            later,
            &inner.config.detector,
        ))
    }
}

impl CommitLog for MongoStore {
    fn get_from(&self, checkpoint: u64) -> LogStream {
        self.log(checkpoint, LogSelect::All, RawCommit::decode_entry)
    }

    fn get_tenant_from(&self, tenant_id: &str, checkpoint: u64) -> LogStream {
        self.log(
            checkpoint,
            LogSelect::Tenant(tenant_id.to_owned()),
            RawCommit::decode_entry,
        )
    }

    fn get_filtered(&self, checkpoint: u64, filter: &LogFilter) -> LogStream {
        let entries = self.log(
            checkpoint,
            LogSelect::Filtered {
                tenants: filter.tenants.clone(),
                types: filter.stream_types.clone(),
            },
            RawCommit::decode_entry,
        );
        keep_matching(entries, filter)
    }

    fn get_filtered_for_replay(&self, checkpoint: u64, filter: &LogFilter) -> ReplayLogStream {
        if !filter.topics.is_empty() {
            // Topics live inside the events: those are read to filter.
            return for_replay(self.get_filtered(checkpoint, filter));
        }
        self.log(
            checkpoint,
            LogSelect::Filtered {
                tenants: filter.tenants.clone(),
                types: filter.stream_types.clone(),
            },
            RawCommit::decode_replay_entry,
        )
    }

    /// Commits made through this store wake its followers at once; followers of commits made
    /// elsewhere find them by polling.
    fn wakeups(&self) -> Option<Wakeups> {
        Some(self.inner.signal.wakeups())
    }

    fn get_all_to(&self, tenant_id: &str, max_time: DateTime<Utc>) -> CommitStream {
        self.paged_query(Query::TenantToTime {
            scope: Scope::tenant(tenant_id),
            tenant: tenant_id.to_owned(),
            max_micros: stamp_to_micros(max_time),
        })
    }
}

/// A snapshot document's filter.
fn snapshot_key(tenant_id: &str, stream_id: &str, revision: i64) -> Document {
    doc! {"tenant_id": tenant_id, "stream_id": stream_id, "stream_revision": revision}
}

impl MongoStore {
    /// The newest snapshot at or below `max_revision`, as stored.
    async fn newest_snapshot(
        &self,
        scope: &Scope,
        tenant_id: &str,
        stream_id: &str,
        max_revision: u64,
        projection: Document,
    ) -> Result<Option<RawDocumentBuf>, StoreError> {
        let snapshots = self.inner.snapshots.clone_with_type::<RawDocumentBuf>();
        self.inner
            .run(
                Operation::GetSnapshot,
                scope,
                snapshots
                    .find_one(doc! {
                        "tenant_id": tenant_id,
                        "stream_id": stream_id,
                        "stream_revision": {"$lte": clamp(max_revision)},
                    })
                    .sort(doc! {"stream_revision": -1})
                    .projection(projection),
            )
            .await
    }
}

#[async_trait]
impl SnapshotStore for MongoStore {
    async fn get_snapshot(
        &self,
        tenant_id: &str,
        stream_id: &str,
        max_revision: u64,
    ) -> Result<Option<Snapshot>, StoreError> {
        let scope = Scope::stream(tenant_id, stream_id);
        let Some(document) = self
            .newest_snapshot(&scope, tenant_id, stream_id, max_revision, doc! {"_id": 0})
            .await?
        else {
            return Ok(None);
        };
        let fields = Fields::new(&document, &scope);
        decode_snapshot(
            tenant_id.to_owned(),
            stream_id.to_owned(),
            fields.i64("stream_revision")?,
            fields.i64("commit_sequence")?,
            fields.json("payload")?,
            fields.json("headers")?,
        )
        .map(Some)
    }

    async fn get_snapshot_for_replay(
        &self,
        tenant_id: &str,
        stream_id: &str,
        max_revision: u64,
    ) -> Result<Option<ReplaySnapshot>, StoreError> {
        let scope = Scope::stream(tenant_id, stream_id);
        let Some(document) = self
            .newest_snapshot(&scope, tenant_id, stream_id, max_revision, doc! {"_id": 0})
            .await?
        else {
            return Ok(None);
        };
        let fields = Fields::new(&document, &scope);
        replay_snapshot(
            &scope,
            fields.i64("stream_revision")?,
            fields.i64("commit_sequence")?,
            fields.json("payload")?,
            &fields.json("headers")?,
        )
        .map(Some)
    }

    async fn add_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let scope = Scope::stream(&snapshot.tenant_id, &snapshot.stream_id);
        let headers = encode_snapshot_headers(&snapshot)?;
        let unstorable = |what: &str, reason: String| {
            StoreError::storage(
                Operation::AddSnapshot,
                scope.clone(),
                format!("the snapshot's {what} cannot be stored as BSON: {reason}"),
            )
        };
        let payload = json_to_bson(snapshot.payload.get().as_bytes())
            .map_err(|e| unstorable("memento", e))?;
        let headers = json_to_bson(&headers).map_err(|e| unstorable("headers", e))?;
        let revision = clamp(snapshot.stream_revision);
        let key = snapshot_key(&snapshot.tenant_id, &snapshot.stream_id, revision);
        let mut document = key.clone();
        document.insert("commit_sequence", clamp(snapshot.commit_sequence));
        document.insert("payload", payload);
        document.insert("headers", headers);
        let inner = &self.inner;
        for tried in 1.. {
            // Two writers of one snapshot may race on the unique index; the loser replaces.
            match inner
                .try_run(
                    Operation::AddSnapshot,
                    &scope,
                    inner
                        .snapshots
                        .replace_one(key.clone(), document.clone())
                        .upsert(true),
                )
                .await?
            {
                Ok(_) => break,
                Err(error) if duplicate_index(&error).is_some() && tried < 3 => continue,
                Err(error) => {
                    return Err(inner.driver_error(Operation::AddSnapshot, &scope, error))
                }
            }
        }
        inner
            .run(
                Operation::AddSnapshot,
                &scope,
                inner.heads.update_one(
                    doc! {"tenant_id": &snapshot.tenant_id, "stream_id": &snapshot.stream_id},
                    doc! {"$max": {"snapshot_revision": revision}},
                ),
            )
            .await?;
        Ok(())
    }

    fn streams_to_snapshot(&self, tenant_id: &str, threshold: u64) -> StreamsToSnapshot {
        let inner = self.inner.clone();
        let tenant_id = tenant_id.to_owned();
        paged_by_key(
            |stream: &StreamToSnapshot| &stream.stream_id,
            move |after| {
                let (inner, tenant_id) = (inner.clone(), tenant_id.clone());
                async move {
                    let scope = Scope::tenant(&tenant_id);
                    let heads = inner.heads.clone_with_type::<RawDocumentBuf>();
                    let documents: Vec<RawDocumentBuf> = inner
                        .run(Operation::StreamsToSnapshot, &scope, async {
                            heads
                                .find(doc! {
                                    "tenant_id": &tenant_id,
                                    "stream_id": {"$gt": after},
                                    "$expr": {"$gte": [
                                        {"$subtract": ["$head_revision", {"$ifNull": ["$snapshot_revision", 0]}]},
                                        clamp(threshold),
                                    ]},
                                })
                                .sort(doc! {"stream_id": 1})
                                .limit(PAGE_SIZE as i64)
                                .await?
                                .try_collect()
                                .await
                        })
                        .await?;
                    documents
                        .iter()
                        .map(|document| {
                            let fields = Fields::new(document, &scope);
                            let snapshot = match document.get("snapshot_revision") {
                                Ok(None) | Ok(Some(mongodb::bson::RawBsonRef::Null)) => None,
                                _ => Some(fields.i64("snapshot_revision")?),
                            };
                            Ok(StreamToSnapshot::new(
                                tenant_id.clone(),
                                fields.str("stream_id")?,
                                u64::try_from(fields.i64("head_revision")?).unwrap_or_default(),
                                snapshot.and_then(|s| u64::try_from(s).ok()),
                            ))
                        })
                        .collect()
                }
                .boxed()
            },
        )
    }
}

/// An index `initialize` creates.
struct Index {
    name: &'static str,
    keys: Document,
    unique: bool,
}

impl Index {
    fn new(name: &'static str, keys: Document, unique: bool) -> Self {
        Self { name, keys, unique }
    }

    fn model(self) -> IndexModel {
        IndexModel::builder()
            .keys(self.keys)
            .options(
                IndexOptions::builder()
                    .name(self.name.to_owned())
                    .unique(self.unique)
                    .build(),
            )
            .build()
    }
}

impl Inner {
    /// The indexes `initialize` creates, by collection.
    fn indexes(&self) -> [(&Collection<Document>, Vec<Index>); 3] {
        [
            (
                &self.commits,
                vec![
                    // Optimistic concurrency: one commit per sequence of a stream.
                    Index::new(
                        "stream_sequence",
                        doc! {"tenant_id": 1, "stream_id": 1, "commit_sequence": 1},
                        true,
                    ),
                    // Duplicate commits: one commit id per stream.
                    Index::new(
                        "stream_commit_id",
                        doc! {"tenant_id": 1, "stream_id": 1, "commit_id": 1},
                        true,
                    ),
                    // The global log: one entry per checkpoint.
                    Index::new("checkpoint", doc! {"checkpoint": 1}, true),
                    // Reads of a stream by revision: loads from a snapshot start at it.
                    Index::new(
                        "stream_revision",
                        doc! {"tenant_id": 1, "stream_id": 1, "stream_revision": 1},
                        false,
                    ),
                    // A tenant's log, and its commits up to a time.
                    Index::new(
                        "tenant_checkpoint",
                        doc! {"tenant_id": 1, "checkpoint": 1},
                        false,
                    ),
                ],
            ),
            (
                &self.snapshots,
                vec![Index::new(
                    "stream_revision",
                    doc! {"tenant_id": 1, "stream_id": 1, "stream_revision": 1},
                    true,
                )],
            ),
            (
                &self.heads,
                vec![Index::new(
                    "stream",
                    doc! {"tenant_id": 1, "stream_id": 1},
                    true,
                )],
            ),
        ]
    }
}

#[async_trait]
impl PersistenceManagement for MongoStore {
    async fn schema_version(&self) -> Result<Option<u32>, StoreError> {
        let version = self.marker_version(Operation::SchemaVersion).await?;
        Ok(version.and_then(|v| u32::try_from(v).ok()))
    }

    async fn initialize(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        let scope = Scope::Store;
        let operation = Operation::Initialize;
        self.check_ownership(operation).await?;
        for (collection, wanted) in inner.indexes() {
            let models = wanted.into_iter().map(Index::model);
            inner
                .try_run(operation, &scope, collection.create_indexes(models))
                .await?
                .map_err(|error| match error.kind.as_ref() {
                    // IndexOptionsConflict, IndexKeySpecsConflict: an index of that name that is
                    // not aett's.
                    ErrorKind::Command(command) if matches!(command.code, 85 | 86) => {
                        StoreError::Configuration(format!(
                            "collection `{}` has an index that is not aett's: {}",
                            collection.name(),
                            command.message
                        ))
                    }
                    _ => inner.driver_error(operation, &scope, error),
                })?;
        }
        // The marker; concurrent initialisations race on its `_id`, and the loser finds it.
        let inserted = inner
            .try_run(
                operation,
                &scope,
                inner.commits.update_one(
                    doc! {"_id": MARKER_ID},
                    doc! {"$setOnInsert": {"checkpoint": 0_i64, "schema_version": SCHEMA_VERSION}},
                ).upsert(true),
            )
            .await?;
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if duplicate_index(&error).is_some() => Ok(()),
            Err(error) => Err(inner.driver_error(operation, &scope, error)),
        }
    }

    async fn drop_all(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        // Refuses, dropping nothing, when the collections are not aett's.
        self.check_ownership(Operation::Drop).await?;
        for collection in [
            &inner.commits,
            &inner.snapshots,
            &inner.heads,
            &inner.checkpoints,
        ] {
            inner
                .run(Operation::Drop, &Scope::Store, collection.drop())
                .await?;
        }
        Ok(())
    }

    async fn purge(&self, tenant_id: &str) -> Result<(), StoreError> {
        let scope = Scope::tenant(tenant_id);
        in_transaction!(self, Operation::Purge, &scope, |session| self.purge_in(
            &mut session,
            &scope,
            tenant_id
        ))
    }

    async fn truncate_stream(
        &self,
        tenant_id: &str,
        stream_id: &str,
        revision: u64,
    ) -> Result<(), StoreError> {
        let scope = Scope::stream(tenant_id, stream_id);
        let covered = in_transaction!(self, Operation::TruncateStream, &scope, |session| self
            .truncate_in(&mut session, &scope, tenant_id, stream_id, revision))?;
        if covered {
            Ok(())
        } else {
            Err(StoreError::TruncationRefused {
                tenant: tenant_id.to_owned(),
                stream: stream_id.to_owned(),
                revision,
            })
        }
    }

    async fn delete_stream(&self, tenant_id: &str, stream_id: &str) -> Result<(), StoreError> {
        let scope = Scope::stream(tenant_id, stream_id);
        in_transaction!(self, Operation::DeleteStream, &scope, |session| self
            .delete_in(&mut session, &scope, tenant_id, stream_id))?;
        self.inner.signal.raise();
        Ok(())
    }
}

impl MongoStore {
    fn busy(&self, operation: Operation, scope: &Scope) -> StoreError {
        StoreError::storage(
            operation,
            scope.clone(),
            format!("concurrent writers made the transaction fail {TRANSACTION_TRIES} times"),
        )
    }

    /// The schema version aett's marker records; `None` when the collection has no marker.
    async fn marker_version(&self, operation: Operation) -> Result<Option<i64>, StoreError> {
        let scope = Scope::Store;
        let commits = self.inner.commits.clone_with_type::<RawDocumentBuf>();
        let marker = self
            .inner
            .run(operation, &scope, commits.find_one(doc! {"_id": MARKER_ID}))
            .await?;
        match marker {
            Some(marker) => Ok(Some(Fields::new(&marker, &scope).i64("schema_version")?)),
            None => Ok(None),
        }
    }

    /// Refuses when the commits collection holds documents but not aett's marker, or the marker
    /// is of another schema version: aett neither writes into nor drops what it did not create.
    async fn check_ownership(&self, operation: Operation) -> Result<(), StoreError> {
        let inner = &self.inner;
        let scope = Scope::Store;
        match self.marker_version(operation).await? {
            Some(version) => {
                if version != i64::from(SCHEMA_VERSION) {
                    return Err(StoreError::Configuration(format!(
                        "collection `{}` has schema version {version}; this aett reads version {SCHEMA_VERSION}",
                        inner.names.commits
                    )));
                }
                Ok(())
            }
            None => {
                for collection in [
                    &inner.commits,
                    &inner.snapshots,
                    &inner.heads,
                    &inner.checkpoints,
                ] {
                    let any = inner
                        .run(operation, &scope, collection.find_one(doc! {}))
                        .await?;
                    if any.is_some() {
                        return Err(StoreError::Configuration(format!(
                            "collection `{}` holds documents but is not an aett store's (aett's marker is missing from `{}`); choose other collection names",
                            collection.name(),
                            inner.names.commits
                        )));
                    }
                }
                Ok(())
            }
        }
    }

    async fn purge_in(
        &self,
        session: &mut ClientSession,
        scope: &Scope,
        tenant_id: &str,
    ) -> Result<(), StoreError> {
        let inner = &self.inner;
        let op = Operation::Purge;
        let commits = inner.commits.clone_with_type::<RawDocumentBuf>();
        let newest = inner
            .run(
                op,
                scope,
                commits
                    .find_one(doc! {"_id": {"$ne": MARKER_ID}})
                    .sort(doc! {"checkpoint": -1})
                    .projection(doc! {"checkpoint": 1, "tenant_id": 1})
                    .session(&mut *session),
            )
            .await?;
        let tenant = doc! {"tenant_id": tenant_id};
        for collection in [&inner.commits, &inner.snapshots, &inner.heads] {
            inner
                .run(
                    op,
                    scope,
                    collection
                        .delete_many(tenant.clone())
                        .session(&mut *session),
                )
                .await?;
        }
        if let Some(newest) = newest {
            let fields = Fields::new(&newest, scope);
            if fields.str("tenant_id")? == tenant_id {
                // The newest commits are gone: the marker keeps their numbers from coming back.
                inner
                    .run(
                        op,
                        scope,
                        inner
                            .commits
                            .update_one(
                                doc! {"_id": MARKER_ID},
                                doc! {"$max": {"checkpoint": fields.i64("checkpoint")?}},
                            )
                            .session(&mut *session),
                    )
                    .await?;
            }
        }
        Ok(())
    }

    /// Whether a snapshot covers `revision`; if so, the commits before it are removed.
    async fn truncate_in(
        &self,
        session: &mut ClientSession,
        scope: &Scope,
        tenant_id: &str,
        stream_id: &str,
        revision: u64,
    ) -> Result<bool, StoreError> {
        let inner = &self.inner;
        let op = Operation::TruncateStream;
        let covered = inner
            .run(
                op,
                scope,
                inner
                    .snapshots
                    .find_one(doc! {
                        "tenant_id": tenant_id,
                        "stream_id": stream_id,
                        "stream_revision": {"$gte": clamp(revision)},
                    })
                    .projection(doc! {"_id": 1})
                    .session(&mut *session),
            )
            .await?
            .is_some();
        if !covered {
            return Ok(false);
        }
        let commits = inner.commits.clone_with_type::<RawDocumentBuf>();
        let last = inner
            .run(
                op,
                scope,
                commits
                    .find_one(doc! {"tenant_id": tenant_id, "stream_id": stream_id, "commit_sequence": {"$gt": 0}})
                    .sort(doc! {"commit_sequence": -1})
                    .projection(doc! {"commit_sequence": 1, "_id": 0})
                    .session(&mut *session),
            )
            .await?;
        let Some(last) = last else {
            return Ok(true);
        };
        let last = Fields::new(&last, scope).i64("commit_sequence")?;
        inner
            .run(
                op,
                scope,
                inner
                    .commits
                    .delete_many(doc! {
                        "tenant_id": tenant_id,
                        "stream_id": stream_id,
                        "commit_sequence": {"$gt": 0, "$lt": last},
                        "stream_revision": {"$lt": clamp(revision)},
                    })
                    .session(&mut *session),
            )
            .await?;
        Ok(true)
    }

    async fn delete_in(
        &self,
        session: &mut ClientSession,
        scope: &Scope,
        tenant_id: &str,
        stream_id: &str,
    ) -> Result<(), StoreError> {
        let inner = &self.inner;
        let op = Operation::DeleteStream;
        let commits = inner.commits.clone_with_type::<RawDocumentBuf>();
        let stream = doc! {"tenant_id": tenant_id, "stream_id": stream_id};
        let mut stream_commits = stream.clone();
        stream_commits.insert("commit_sequence", doc! {"$gt": 0});
        let last = inner
            .run(
                op,
                scope,
                commits
                    .find_one(stream_commits.clone())
                    .sort(doc! {"commit_sequence": -1})
                    .projection(doc! {"stream_type": 1, "_id": 0})
                    .session(&mut *session),
            )
            .await?;
        let stream_type = match &last {
            Some(last) => Fields::new(last, scope)
                .optional_str("stream_type")?
                .map(str::to_owned),
            None => None,
        };
        // Read before the deletion, which may remove the highest checkpoint.
        let checkpoint = inner.next_checkpoint_in(op, scope, &mut *session).await?;
        let removed_commits = inner
            .run(
                op,
                scope,
                inner
                    .commits
                    .delete_many(stream_commits)
                    .session(&mut *session),
            )
            .await?
            .deleted_count;
        let removed_snapshots = inner
            .run(
                op,
                scope,
                inner
                    .snapshots
                    .delete_many(stream.clone())
                    .session(&mut *session),
            )
            .await?
            .deleted_count;
        inner
            .run(
                op,
                scope,
                inner.heads.delete_one(stream).session(&mut *session),
            )
            .await?;
        if removed_commits + removed_snapshots == 0 {
            return Ok(());
        }
        let micros = stamp_to_micros(Utc::now().trunc_subsecs(6));
        let notice = doc! {
            "tenant_id": tenant_id,
            "stream_id": stream_id,
            "stream_type": stream_type.map_or(Bson::Null, Bson::from),
            "commit_id": uuid_bson(uuid::Uuid::new_v4()),
            "commit_sequence": notice_sequence(),
            "stream_revision": 0_i64,
            "first_revision": 0_i64,
            "items": 0_i32,
            "commit_stamp": mongodb::bson::DateTime::from_millis(micros.div_euclid(1000)),
            "stamp_micros": micros,
            "headers": {},
            "events": [],
            "checkpoint": checkpoint,
        };
        inner
            .run(
                op,
                scope,
                inner.commits.insert_one(notice).session(&mut *session),
            )
            .await?;
        Ok(())
    }
}
