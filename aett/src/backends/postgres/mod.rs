//! The PostgreSQL backend (feature `postgres`; TLS with `postgres-tls`).
//!
//! `tokio-postgres` behind a `deadpool-postgres` pool; statements are prepared once per
//! connection. One row per commit, its headers and events as JSON in `bytea` columns (see
//! the README for why `bytea` rather than `jsonb`).
//!
//! **Reading from a checkpoint never skips a commit.** A commit's checkpoint is the id of the
//! transaction that wrote it. [`CommitLog::get_from`] hands out a commit only once
//! every transaction with a lower id has finished (`pg_snapshot_xmin`), so a commit that
//! becomes visible later can never have a checkpoint below one already handed out. While an
//! older transaction is still writing, `get_from` waits for it (up to
//! [`PostgresConfig::checkpoint_wait`]) and otherwise ends the stream at the last commit it
//! can hand out without a gap; reading again from there continues. A long-running write
//! transaction elsewhere in the same cluster holds readers back the same way.

//! **No operation hangs forever.** Opening a connection, waiting for a pooled one, and every
//! statement have their own limit ([`PostgresConfig`]), and each that runs out is a typed
//! [`StoreError::Timeout`]. A connection that failed or timed out is taken out of the pool, never
//! handed to the next caller.

mod checkpoints;
mod config;
mod listen;
mod schema;
#[cfg(feature = "postgres-tls")]
mod tls;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use futures::stream::{self, BoxStream, StreamExt};
use futures::FutureExt;
use sha2::{Digest, Sha256};
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

pub use checkpoints::PostgresTransaction;
pub use config::{PostgresConfig, PostgresTls};

use self::schema::{Statements, SCHEMA_VERSION};
use crate::backends::kit::sql::{
    clamp, encode_payload, encode_snapshot_headers, validate_identifier, RawCommit,
};
use crate::backends::kit::sql::{
    decode_snapshot, replay_commit, replay_snapshot, why_refused, Refused,
};
use crate::backends::kit::sql::{notice_sequence, StoredId, StoredStamp};
use crate::backends::kit::{
    paged, paged_by_key, resolve_taken_sequence, CommitSignal, Page, PageBuilder, PageItem, Resume,
    PAGE_SIZE,
};
use crate::error::{Operation, Scope, StoreError};
use crate::model::{Commit, CommitAttempt, LogFilter, Snapshot};
use crate::store::{for_replay, keep_matching};
use crate::store::{
    CommitLog, CommitStore, CommitStream, LogStream, PersistenceManagement, ReplayLogStream,
    ReplaySnapshot, ReplayStream, SnapshotStore, StreamToSnapshot, StreamsToSnapshot, Wakeups,
};

/// An event store in a PostgreSQL database. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: PostgresConfig,
    sql: Statements,
    pool: Pool,
    /// The driver's configuration and TLS, for the connections that `LISTEN`.
    pg_config: tokio_postgres::Config,
    tls: PostgresTls,
    /// Raised after each commit and deletion made through this store.
    signal: CommitSignal,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.inner.config.schema)
            .field("commits_table", &self.inner.config.commits_table)
            .field("snapshots_table", &self.inner.config.snapshots_table)
            .finish_non_exhaustive()
    }
}

/// A stream's key in the unique indexes: the SHA-256 of its tenant and stream ids, length-
/// prefixed so that no two pairs of ids share a key.
fn stream_key(tenant_id: &str, stream_id: &str) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update((tenant_id.len() as u64).to_be_bytes());
    hasher.update(tenant_id.as_bytes());
    hasher.update(stream_id.as_bytes());
    hasher.finalize().to_vec()
}

fn tenant_key(tenant_id: &str) -> Vec<u8> {
    Sha256::digest(tenant_id.as_bytes()).to_vec()
}

/// The latest time `timestamptz` holds (294276 AD).
fn latest_timestamp() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(294_276, 12, 31)
        .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 999_999))
        .map_or(DateTime::<Utc>::MAX_UTC, |t| t.and_utc())
}

/// The earliest time `timestamptz` holds (4713 BC).
fn earliest_timestamp() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(-4712, 11, 24)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(DateTime::<Utc>::MIN_UTC, |t| t.and_utc())
}

/// A "stamped at or before" bound the server accepts: `None` when it lies before any time the
/// server can hold (nothing can be stamped before it), the latest time it holds when beyond it.
fn time_bound(max_time: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if max_time < earliest_timestamp() {
        None
    } else {
        Some(max_time.min(latest_timestamp()))
    }
}

impl PostgresStore {
    /// Connects as `config` says and checks that the server accepts the credentials, so a wrong
    /// address or password fails here. Call [`PersistenceManagement::initialize`] before first use.
    pub async fn connect(config: PostgresConfig) -> Result<Self, StoreError> {
        validate_identifier("schema", &config.schema)?;
        validate_identifier("commits table", &config.commits_table)?;
        validate_identifier("snapshots table", &config.snapshots_table)?;
        if config.commits_table == config.snapshots_table {
            return Err(StoreError::Configuration(
                "the commits and snapshots tables must have different names".to_owned(),
            ));
        }
        // `{commits}_streams` holds the stream heads and `{commits}_checkpoints` the projection
        // checkpoints; PostgreSQL cuts names at 63 bytes.
        for suffix in ["streams", "checkpoints"] {
            let table = format!("{}_{suffix}", config.commits_table);
            if table.len() > 63 || table == config.snapshots_table {
                return Err(StoreError::Configuration(format!(
                    "commits table name `{}` leaves no room for its table `{table}`: use at most 51 characters, and another snapshots table name",
                    config.commits_table
                )));
            }
        }
        let mut pg_config: tokio_postgres::Config = config.url.parse().map_err(|e| {
            StoreError::Configuration(format!("invalid PostgreSQL connection string: {e}"))
        })?;
        pg_config.connect_timeout(config.connect_timeout);
        pg_config.keepalives(true);
        let statement_timeout = format!(
            "-c statement_timeout={}",
            config.statement_timeout.as_millis().max(1)
        );
        let options = match pg_config.get_options() {
            Some(given) => format!("{given} {statement_timeout}"),
            None => statement_timeout,
        };
        pg_config.options(options);
        let tls = match (&config.tls, pg_config.get_ssl_mode()) {
            (Some(tls), _) => tls.clone(),
            (None, SslMode::Require) => PostgresTls::required(None),
            (None, _) => PostgresTls::Disabled,
        };
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &tls {
            PostgresTls::Disabled => {
                Manager::from_config(pg_config.clone(), tokio_postgres::NoTls, manager_config)
            }
            PostgresTls::Required {
                ca_file,
                system_roots,
            } => {
                pg_config.ssl_mode(SslMode::Require);
                Self::tls_manager(
                    pg_config.clone(),
                    ca_file.as_deref(),
                    *system_roots,
                    manager_config,
                )?
            }
        };
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(config.pool_wait_timeout))
            .create_timeout(Some(config.connect_timeout))
            .build()
            .map_err(|e| {
                StoreError::Configuration(format!("cannot build the connection pool: {e}"))
            })?;
        let sql = Statements::new(
            &config.schema,
            &config.commits_table,
            &config.snapshots_table,
        );
        let store = Self {
            inner: Arc::new(Inner {
                config,
                sql,
                pool,
                pg_config,
                tls,
                signal: CommitSignal::default(),
            }),
        };
        // Fail now on a wrong address or password; the connection goes back to the pool.
        drop(
            store
                .inner
                .session(Operation::Connect, Scope::Store)
                .await?,
        );
        store.notify_other_processes();
        Ok(store)
    }

    /// Turns this store's in-process commit signal into `NOTIFY`s for followers in other
    /// processes (see `listen.rs` for why outside the commit). The task ends with the store.
    fn notify_other_processes(&self) {
        let Some(interval) = self.inner.config.notify_interval else {
            return;
        };
        let mut wakes = self.inner.signal.wakeups();
        let pool = self.inner.pool.clone();
        let channel = self.inner.sql.channel.clone();
        tokio::spawn(async move {
            while wakes.next().await.is_some() {
                let Ok(client) = pool.get().await else {
                    continue;
                };
                // A lost notification only delays followers until their next poll.
                if let Err(error) = client
                    .execute("SELECT pg_notify($1, '')", &[&channel])
                    .await
                {
                    let _ = &error;
                    crate::trace::debug!(%error, "could not notify followers of the log");
                    drop(Object::take(client));
                }
                // Commits during this pause are told of by one notification after it.
                tokio::time::sleep(interval).await;
            }
        });
    }

    /// A `LISTEN`ing connection's notifications.
    async fn listen(
        inner: &Inner,
    ) -> Result<(tokio_postgres::Client, listen::Received), StoreError> {
        match &inner.tls {
            PostgresTls::Disabled => {
                listen::listen(&inner.pg_config, tokio_postgres::NoTls, &inner.sql.channel).await
            }
            #[cfg(feature = "postgres-tls")]
            PostgresTls::Required {
                ca_file,
                system_roots,
            } => {
                let connector = tls::connector(ca_file.as_deref(), *system_roots)?;
                listen::listen(&inner.pg_config, connector, &inner.sql.channel).await
            }
            #[cfg(not(feature = "postgres-tls"))]
            PostgresTls::Required { .. } => Err(StoreError::FeatureDisabled {
                scheme: "postgres with TLS".to_owned(),
                feature: "postgres-tls",
            }),
        }
    }

    /// The schema holding the store's tables.
    pub fn schema(&self) -> &str {
        &self.inner.config.schema
    }

    /// The commits table's name.
    pub fn commits_table(&self) -> &str {
        &self.inner.config.commits_table
    }

    #[cfg(feature = "postgres-tls")]
    fn tls_manager(
        pg_config: tokio_postgres::Config,
        ca_file: Option<&std::path::Path>,
        system_roots: bool,
        manager_config: ManagerConfig,
    ) -> Result<Manager, StoreError> {
        Ok(Manager::from_config(
            pg_config,
            tls::connector(ca_file, system_roots)?,
            manager_config,
        ))
    }

    #[cfg(not(feature = "postgres-tls"))]
    fn tls_manager(
        _: tokio_postgres::Config,
        _: Option<&std::path::Path>,
        _: bool,
        _: ManagerConfig,
    ) -> Result<Manager, StoreError> {
        Err(StoreError::FeatureDisabled {
            scheme: "postgres with TLS".to_owned(),
            feature: "postgres-tls",
        })
    }

    fn paged_query(&self, query: Query) -> CommitStream {
        let inner = self.inner.clone();
        let (operation, scope) = query.traced();
        let pages = paged(move |last, limit| {
            let inner = inner.clone();
            let query = query.clone();
            let after = match &query {
                Query::Stream { .. } | Query::StreamToTime { .. } => {
                    last.map_or(0, |r| clamp(r.commit_sequence))
                }
                Query::TenantToTime { .. } => last.map_or(0, |r| clamp(r.checkpoint)),
            };
            async move { inner.page(query, after, limit).await }.boxed()
        });
        crate::trace::read(operation, &scope, pages)
    }

    /// The log from `checkpoint`, as `select` chooses, each row decoded by `decode`.
    fn log<T: PageItem>(
        &self,
        checkpoint: u64,
        select: LogSelect,
        decode: fn(RawCommit) -> Result<T, StoreError>,
    ) -> BoxStream<'static, Result<T, StoreError>> {
        let inner = self.inner.clone();
        let (operation, scope) = select.traced();
        let pages = paged(move |last, page_limit| {
            let inner = inner.clone();
            let select = select.clone();
            let after = last.map_or(clamp(checkpoint), |r| clamp(r.checkpoint));
            async move {
                inner
                    .page_from_checkpoint(after, page_limit, &select, decode)
                    .await
            }
            .boxed()
        });
        crate::trace::read(operation, &scope, pages)
    }
}

/// Which entries of the log a read selects.
#[derive(Clone)]
enum LogSelect {
    All,
    Tenant {
        tenant: String,
        key: Vec<u8>,
    },
    /// Tenant keys and stream types (`None`: any).
    Filtered {
        scope: Scope,
        tenants: Option<Vec<Vec<u8>>>,
        types: Option<Vec<String>>,
    },
}

impl LogSelect {
    /// The tenants and stream types of `filter`, for the query.
    fn filtered(filter: &LogFilter) -> Self {
        let scope = match filter.tenants.as_slice() {
            [tenant] => Scope::tenant(tenant),
            _ => Scope::Store,
        };
        LogSelect::Filtered {
            scope,
            tenants: (!filter.tenants.is_empty())
                .then(|| filter.tenants.iter().map(|t| tenant_key(t)).collect()),
            types: (!filter.stream_types.is_empty()).then(|| filter.stream_types.clone()),
        }
    }

    fn traced(&self) -> (Operation, Scope) {
        match self {
            LogSelect::All => (Operation::ReadLog, Scope::Store),
            LogSelect::Tenant { tenant, .. } => (Operation::ReadTenantLog, Scope::tenant(tenant)),
            LogSelect::Filtered { scope, .. } => (Operation::ReadLog, scope.clone()),
        }
    }
}

/// The paged reads other than the log's.
#[derive(Clone)]
enum Query {
    Stream {
        scope: Scope,
        key: Vec<u8>,
        min: i64,
        max: i64,
    },
    StreamToTime {
        scope: Scope,
        key: Vec<u8>,
        max_time: DateTime<Utc>,
    },
    TenantToTime {
        scope: Scope,
        key: Vec<u8>,
        max_time: DateTime<Utc>,
    },
}

/// How much longer than the statement timeout the client waits for an answer.
const CLIENT_GRACE: Duration = Duration::from_secs(2);

/// One pooled connection used by one operation. Every statement runs under the statement
/// timeout; a connection on which a statement failed or timed out is taken out of the pool when
/// the session ends (a backend the server terminated still looks open for a moment, and a
/// statement cut off by the client timeout may still be running), never handed to the next
/// caller.
struct Session<'a> {
    inner: &'a Inner,
    client: Option<Object>,
    broken: AtomicBool,
    operation: Operation,
    scope: Scope,
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if self.broken.load(Ordering::Relaxed) {
            if let Some(client) = self.client.take() {
                crate::trace::debug!(
                    operation = %self.operation,
                    scope = %self.scope,
                    "discarding a PostgreSQL connection after a failed statement"
                );
                drop(Object::take(client));
            }
        }
    }
}

impl Session<'_> {
    fn client(&self) -> &Object {
        self.client
            .as_ref()
            .expect("a session holds its connection until it ends")
    }

    fn driver_error(&self, error: tokio_postgres::Error) -> StoreError {
        if error.code() == Some(&SqlState::QUERY_CANCELED) {
            return StoreError::Timeout {
                operation: self.operation,
                scope: self.scope.clone(),
                after: self.inner.config.statement_timeout,
            };
        }
        StoreError::storage(self.operation, self.scope.clone(), DriverError::from(error))
    }

    /// Runs `work` under the statement timeout; the inner result is the driver's, for the caller
    /// to judge (a unique violation is an answer, not a failure). The server cancels a statement
    /// at the timeout, so the outcome is known; the client gives it a grace period more before
    /// giving up on a server that does not answer at all.
    async fn try_run<T>(
        &self,
        work: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<Result<T, tokio_postgres::Error>, StoreError> {
        let limit = self.inner.config.statement_timeout + CLIENT_GRACE;
        match tokio::time::timeout(limit, work).await {
            Ok(result) => Ok(result),
            Err(_) => {
                self.broken.store(true, Ordering::Relaxed);
                Err(StoreError::Timeout {
                    operation: self.operation,
                    scope: self.scope.clone(),
                    after: self.inner.config.statement_timeout,
                })
            }
        }
    }

    /// Runs `work` under the statement timeout; any failure marks the connection broken.
    async fn run<T>(
        &self,
        work: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, StoreError> {
        self.try_run(work).await?.map_err(|error| self.fail(error))
    }

    fn fail(&self, error: tokio_postgres::Error) -> StoreError {
        self.broken.store(true, Ordering::Relaxed);
        self.driver_error(error)
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client();
        self.run(async {
            let statement = client.prepare_cached(sql).await?;
            client.query(&statement, params).await
        })
        .await
    }

    /// Runs a query and hands each row to `each` as the driver receives it, until `each` says
    /// it wants no more: a page is decoded while the rest of it is still arriving, and no row
    /// is kept after it is decoded. The rows `each` declines are still read to the end (a page
    /// is bounded by its `LIMIT`), so the connection goes back to the pool idle.
    async fn for_each_row(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        mut each: impl FnMut(Row) -> bool,
    ) -> Result<(), StoreError> {
        let client = self.client();
        self.run(async {
            let statement = client.prepare_cached(sql).await?;
            let rows = client
                .query_raw(&statement, params.iter().map(|p| *p as &dyn ToSql))
                .await?;
            futures::pin_mut!(rows);
            let mut wanted = true;
            while let Some(row) = rows.next().await.transpose()? {
                wanted = wanted && each(row);
            }
            Ok(())
        })
        .await
    }

    /// One page of at most `limit` items, each row decoded by `decode` as it arrives.
    async fn page<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        limit: usize,
        mut decode: impl FnMut(&Row) -> Result<T, StoreError>,
    ) -> Result<Page<T>, StoreError> {
        let mut page = PageBuilder::new(limit);
        self.for_each_row(sql, params, |row| page.push(decode(&row)))
            .await?;
        Ok(page.finish())
    }

    async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        let client = self.client();
        self.run(async {
            let statement = client.prepare_cached(sql).await?;
            client.query_opt(&statement, params).await
        })
        .await
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let client = self.client();
        self.run(async { client.execute(sql, params).await }).await
    }

    async fn batch(&self, sql: &str) -> Result<(), StoreError> {
        let client = self.client();
        self.run(async { client.batch_execute(sql).await }).await
    }

    /// Reads a column of a row this session read; a value that does not read back is damage.
    fn column<'r, T: tokio_postgres::types::FromSql<'r>>(
        &self,
        row: &'r Row,
        index: usize,
    ) -> Result<T, StoreError> {
        row.try_get(index).map_err(|e| StoreError::Corrupt {
            scope: self.scope.clone(),
            commit_sequence: None,
            checkpoint: None,
            reason: format!("a row does not read back: {e}"),
        })
    }
}

impl Query {
    /// The operation and scope a read is traced under.
    fn traced(&self) -> (Operation, Scope) {
        match self {
            Query::Stream { scope, .. } => (Operation::ReadStream, scope.clone()),
            Query::StreamToTime { scope, .. } => (Operation::ReadStreamToTime, scope.clone()),
            Query::TenantToTime { scope, .. } => (Operation::ReadTenantToTime, scope.clone()),
        }
    }
}

impl Inner {
    async fn session(&self, operation: Operation, scope: Scope) -> Result<Session<'_>, StoreError> {
        let client = self.pool.get().await.map_err(|error| match error {
            deadpool_postgres::PoolError::Timeout(kind) => StoreError::Timeout {
                operation,
                scope: scope.clone(),
                after: match kind {
                    deadpool_postgres::TimeoutType::Wait => self.config.pool_wait_timeout,
                    _ => self.config.connect_timeout,
                },
            },
            deadpool_postgres::PoolError::Backend(driver) => {
                StoreError::storage(operation, scope.clone(), DriverError::from(driver))
            }
            other => StoreError::storage(operation, scope.clone(), other),
        })?;
        Ok(Session {
            inner: self,
            client: Some(client),
            broken: AtomicBool::new(false),
            operation,
            scope,
        })
    }

    async fn query(
        &self,
        operation: Operation,
        scope: &Scope,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        self.session(operation, scope.clone())
            .await?
            .query(sql, params)
            .await
    }

    async fn page(&self, query: Query, after: i64, page_limit: usize) -> Result<Page, StoreError> {
        let limit = page_limit as i64;
        let (operation, sql, scope, mut params): (_, _, _, Vec<&(dyn ToSql + Sync)>) = match &query
        {
            Query::Stream {
                scope,
                key,
                min,
                max,
            } => (
                Operation::ReadStream,
                &self.sql.by_revision,
                scope,
                vec![key, min, max],
            ),
            Query::StreamToTime {
                scope,
                key,
                max_time,
            } => (
                Operation::ReadStreamToTime,
                &self.sql.by_time,
                scope,
                vec![key, max_time],
            ),
            Query::TenantToTime {
                scope,
                key,
                max_time,
            } => (
                Operation::ReadTenantToTime,
                &self.sql.tenant_by_time,
                scope,
                vec![key, max_time],
            ),
        };
        params.extend([&after as &(dyn ToSql + Sync), &limit]);
        self.session(operation, scope.clone())
            .await?
            .page(sql, &params, page_limit, |row| {
                raw_commit(row, scope).and_then(RawCommit::decode)
            })
            .await
    }

    /// One page of the log: the entries after `after` that `select` chooses whose
    /// transactions are below the horizon. Waits while only commits above it are visible.
    async fn page_from_checkpoint<T: PageItem>(
        &self,
        after: i64,
        page_limit: usize,
        select: &LogSelect,
        decode: fn(RawCommit) -> Result<T, StoreError>,
    ) -> Result<Page<T>, StoreError> {
        let limit = page_limit as i64;
        let deadline = Instant::now() + self.config.checkpoint_wait;
        let mut pause = Duration::from_millis(1);
        let (operation, scope) = select.traced();
        loop {
            let (sql, params): (&str, Vec<&(dyn ToSql + Sync)>) = match select {
                LogSelect::Tenant { key, .. } => {
                    (&self.sql.tenant_from_checkpoint, vec![key, &after, &limit])
                }
                LogSelect::All => (&self.sql.from_checkpoint, vec![&after, &limit]),
                LogSelect::Filtered { tenants, types, .. } => (
                    &self.sql.filtered_from_checkpoint,
                    vec![&after, tenants, types, &limit],
                ),
            };
            let mut page = PageBuilder::new(page_limit);
            let (mut rows, mut held_back) = (0, false);
            self.session(operation, scope.clone())
                .await?
                .for_each_row(sql, &params, |row| {
                    rows += 1;
                    // The horizon column follows the commit's columns.
                    let position = (row.try_get::<_, i64>(0), row.try_get::<_, i64>(10));
                    let final_commit = match position {
                        (Ok(checkpoint), Ok(horizon)) => checkpoint < horizon,
                        (Err(error), _) | (_, Err(error)) => {
                            return page.push(Err(StoreError::storage(
                                operation,
                                scope.clone(),
                                DriverError::from(error),
                            )));
                        }
                    };
                    if !final_commit {
                        held_back = true;
                        return false;
                    }
                    page.push(raw_commit(&row, &scope).and_then(decode))
                })
                .await?;
            if !held_back || !page.is_empty() {
                let full = rows >= page_limit;
                let mut page = page.finish();
                // Commits held back at the horizon follow once the transactions below it end.
                page.more = page.error.is_none() && (full || held_back);
                return Ok(page);
            }
            if Instant::now() >= deadline {
                // End at the horizon: what follows is handed out by a later read.
                crate::trace::debug!(
                    after,
                    "the log ends at the horizon: a transaction still running holds back later commits"
                );
                return Ok(Page::new(Vec::new(), 1));
            }
            crate::trace::debug!(
                after,
                ?pause,
                "waiting for a running transaction below the horizon"
            );
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

fn raw_commit(row: &Row, scope: &Scope) -> Result<RawCommit, StoreError> {
    let checkpoint: Option<i64> = row.try_get(0).ok();
    let corrupt = |e: tokio_postgres::Error| StoreError::Corrupt {
        scope: scope.clone(),
        commit_sequence: None,
        checkpoint: checkpoint.and_then(|c| u64::try_from(c).ok()),
        reason: format!("a commit row does not read back: {e}"),
    };
    Ok(RawCommit {
        checkpoint: row.try_get(0).map_err(corrupt)?,
        tenant_id: row.try_get(1).map_err(corrupt)?,
        stream_id: row.try_get(2).map_err(corrupt)?,
        stream_revision: row.try_get(3).map_err(corrupt)?,
        commit_id: StoredId::Uuid(row.try_get(4).map_err(corrupt)?),
        commit_sequence: row.try_get(5).map_err(corrupt)?,
        commit_stamp: StoredStamp::Time(row.try_get(6).map_err(corrupt)?),
        headers: row.try_get(7).map_err(corrupt)?,
        events: row.try_get(8).map_err(corrupt)?,
        stream_type: row.try_get(9).map_err(corrupt)?,
    })
}

/// A driver error that shows the server's own message and SQLSTATE, which tokio-postgres's
/// `Display` ("db error") leaves out.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
struct DriverError {
    message: String,
    #[source]
    source: tokio_postgres::Error,
}

impl From<tokio_postgres::Error> for DriverError {
    fn from(source: tokio_postgres::Error) -> Self {
        let message = match source.as_db_error() {
            Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
            None => match std::error::Error::source(&source) {
                Some(cause) => format!("{source}: {cause}"),
                None => source.to_string(),
            },
        };
        Self { message, source }
    }
}

fn is_unique_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

#[async_trait]
impl CommitStore for PostgresStore {
    fn get(
        &self,
        tenant_id: &str,
        stream_id: &str,
        min_revision: u64,
        max_revision: u64,
    ) -> CommitStream {
        self.paged_query(Query::Stream {
            scope: Scope::stream(tenant_id, stream_id),
            key: stream_key(tenant_id, stream_id),
            min: clamp(min_revision),
            max: clamp(max_revision),
        })
    }

    fn get_to(&self, tenant_id: &str, stream_id: &str, max_time: DateTime<Utc>) -> CommitStream {
        let Some(max_time) = time_bound(max_time) else {
            return stream::empty().boxed();
        };
        self.paged_query(Query::StreamToTime {
            scope: Scope::stream(tenant_id, stream_id),
            key: stream_key(tenant_id, stream_id),
            max_time,
        })
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
        let key = stream_key(tenant_id, stream_id);
        let (min, max) = (clamp(min_revision), clamp(max_revision));
        let pages = paged(move |last: Option<Resume>, page_limit| {
            let after = last.map_or(0, |r| clamp(r.commit_sequence));
            let (inner, scope, key) = (inner.clone(), scope.clone(), key.clone());
            async move {
                let limit = page_limit as i64;
                let session = inner.session(Operation::ReadStream, scope.clone()).await?;
                session
                    .page(
                        &inner.sql.replay_by_revision,
                        &[&key, &min, &max, &after, &limit],
                        page_limit,
                        |row| {
                            let items: i32 = session.column(row, 2)?;
                            replay_commit(
                                &scope,
                                session.column(row, 0)?,
                                session.column(row, 1)?,
                                i64::from(items),
                                session.column(row, 3)?,
                                session.column(row, 4)?,
                            )
                        },
                    )
                    .await
            }
            .boxed()
        });
        crate::trace::read(Operation::ReadStream, &traced, pages)
    }

    async fn commit(&self, attempt: CommitAttempt) -> Result<Commit, StoreError> {
        let span = crate::trace::commit_span(&attempt);
        let commit = crate::trace::in_span(span, self.commit_now(attempt)).await?;
        self.inner.signal.raise();
        Ok(commit)
    }
}

impl PostgresStore {
    async fn commit_now(&self, attempt: CommitAttempt) -> Result<Commit, StoreError> {
        attempt.validate()?;
        let scope = Scope::stream(&attempt.tenant_id, &attempt.stream_id);
        let items = i32::try_from(attempt.events.len()).map_err(|_| StoreError::InvalidCommit {
            tenant: attempt.tenant_id.clone(),
            stream: attempt.stream_id.clone(),
            commit_sequence: attempt.commit_sequence,
            reason: "more than i32::MAX events in one commit".to_owned(),
        })?;
        let (headers, events) = encode_payload(
            &attempt.tenant_id,
            &attempt.stream_id,
            &attempt.headers,
            &attempt.events,
        )?;
        let key = stream_key(&attempt.tenant_id, &attempt.stream_id);
        let tenant = tenant_key(&attempt.tenant_id);
        let (revision, sequence) = (
            clamp(attempt.stream_revision),
            clamp(attempt.commit_sequence),
        );
        let stamp = attempt.commit_stamp.trunc_subsecs(6);
        let session = self.inner.session(Operation::Commit, scope).await?;
        let client = session.client();
        let inserted = session
            .try_run(async {
                let insert = client.prepare_cached(&self.inner.sql.insert_commit).await?;
                client
                    .query_opt(
                        &insert,
                        &[
                            &key,
                            &tenant,
                            &attempt.tenant_id,
                            &attempt.stream_id,
                            &revision,
                            &items,
                            &attempt.commit_id,
                            &sequence,
                            &stamp,
                            &headers,
                            &events,
                            &attempt.stream_type,
                        ],
                    )
                    .await
            })
            .await?;
        match inserted {
            Ok(Some(row)) => {
                let checkpoint: i64 = row.try_get(0).map_err(|e| session.fail(e))?;
                return Ok(Commit::from_attempt(
                    attempt,
                    u64::try_from(checkpoint).unwrap_or_default(),
                ));
            }
            Ok(None) => {}
            Err(error) if is_unique_violation(&error) => {}
            Err(error) => return Err(session.fail(error)),
        }
        // Nothing went in: find out why.
        let duplicate = session
            .query_opt(&self.inner.sql.has_commit_id, &[&key, &attempt.commit_id])
            .await?
            .is_some();
        let head = match session.query_opt(&self.inner.sql.head, &[&key]).await? {
            Some(row) => (session.column(&row, 0)?, session.column(&row, 1)?),
            None => (0, 0),
        };
        match why_refused(&attempt, duplicate, head) {
            Refused::Answer(error) => Err(error),
            Refused::SequenceTaken => {
                let rows = session
                    .query(&self.inner.sql.later_commits, &[&key, &sequence])
                    .await?;
                let later = rows
                    .iter()
                    .map(|row| raw_commit(row, &session.scope).and_then(RawCommit::decode))
                    .collect::<Result<Vec<_>, _>>()?;
                Err(resolve_taken_sequence(
                    &attempt,
                    later,
                    &self.inner.config.detector,
                ))
            }
        }
    }
}

impl CommitLog for PostgresStore {
    fn get_from(&self, checkpoint: u64) -> LogStream {
        self.log(checkpoint, LogSelect::All, RawCommit::decode_entry)
    }

    fn get_tenant_from(&self, tenant_id: &str, checkpoint: u64) -> LogStream {
        self.log(
            checkpoint,
            LogSelect::Tenant {
                tenant: tenant_id.to_owned(),
                key: tenant_key(tenant_id),
            },
            RawCommit::decode_entry,
        )
    }

    fn get_filtered(&self, checkpoint: u64, filter: &LogFilter) -> LogStream {
        let entries = self.log(
            checkpoint,
            LogSelect::filtered(filter),
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
            LogSelect::filtered(filter),
            RawCommit::decode_replay_entry,
        )
    }

    /// Commits made through this store wake its followers at once; commits by other
    /// processes wake them through `LISTEN`/`NOTIFY`. A follower whose listening connection
    /// fails gets the error and falls back to polling.
    fn wakeups(&self) -> Option<Wakeups> {
        let inner = self.inner.clone();
        let local = self.inner.signal.wakeups();
        let remote = stream::once(async move { PostgresStore::listen(&inner).await }).flat_map(
            |listening| match listening {
                Ok((client, received)) => received
                    .map(move |wake| {
                        // The listening connection lives as long as the stream.
                        let _ = &client;
                        wake
                    })
                    .boxed(),
                Err(error) => stream::once(futures::future::ready(Err(error))).boxed(),
            },
        );
        Some(stream::select(local, remote).boxed())
    }

    fn get_all_to(&self, tenant_id: &str, max_time: DateTime<Utc>) -> CommitStream {
        let Some(max_time) = time_bound(max_time) else {
            return stream::empty().boxed();
        };
        self.paged_query(Query::TenantToTime {
            scope: Scope::tenant(tenant_id),
            key: tenant_key(tenant_id),
            max_time,
        })
    }
}

#[async_trait]
impl SnapshotStore for PostgresStore {
    async fn get_snapshot(
        &self,
        tenant_id: &str,
        stream_id: &str,
        max_revision: u64,
    ) -> Result<Option<Snapshot>, StoreError> {
        let session = self
            .inner
            .session(Operation::GetSnapshot, Scope::stream(tenant_id, stream_id))
            .await?;
        let row = session
            .query_opt(
                &self.inner.sql.get_snapshot,
                &[&stream_key(tenant_id, stream_id), &clamp(max_revision)],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        decode_snapshot(
            tenant_id.to_owned(),
            stream_id.to_owned(),
            session.column(&row, 0)?,
            session.column(&row, 1)?,
            session.column(&row, 2)?,
            session.column(&row, 3)?,
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
        let session = self
            .inner
            .session(Operation::GetSnapshot, scope.clone())
            .await?;
        let row = session
            .query_opt(
                &self.inner.sql.replay_snapshot,
                &[&stream_key(tenant_id, stream_id), &clamp(max_revision)],
            )
            .await?;
        row.map(|row| {
            replay_snapshot(
                &scope,
                session.column(&row, 0)?,
                session.column(&row, 1)?,
                session.column(&row, 2)?,
                &session.column::<Vec<u8>>(&row, 3)?,
            )
        })
        .transpose()
    }

    fn streams_to_snapshot(&self, tenant_id: &str, threshold: u64) -> StreamsToSnapshot {
        let inner = self.inner.clone();
        let tenant_id = tenant_id.to_owned();
        let key = tenant_key(&tenant_id);
        // Paged by stream id, which the heads table is indexed on within a tenant.
        paged_by_key(
            |stream: &StreamToSnapshot| &stream.stream_id,
            move |after| {
                let (inner, tenant_id, key) = (inner.clone(), tenant_id.clone(), key.clone());
                async move {
                    let session = inner
                        .session(Operation::StreamsToSnapshot, Scope::tenant(&tenant_id))
                        .await?;
                    let rows = session
                        .query(
                            &inner.sql.streams_to_snapshot,
                            &[&key, &clamp(threshold), &after, &(PAGE_SIZE as i64)],
                        )
                        .await?;
                    rows.iter()
                        .map(|row| {
                            let head: i64 = session.column(row, 1)?;
                            let snapshot: Option<i64> = session.column(row, 2)?;
                            Ok(StreamToSnapshot::new(
                                tenant_id.clone(),
                                session.column::<String>(row, 0)?,
                                u64::try_from(head).unwrap_or_default(),
                                snapshot.and_then(|s| u64::try_from(s).ok()),
                            ))
                        })
                        .collect()
                }
                .boxed()
            },
        )
    }

    async fn add_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let scope = Scope::stream(&snapshot.tenant_id, &snapshot.stream_id);
        let headers = encode_snapshot_headers(&snapshot)?;
        self.inner
            .query(
                Operation::AddSnapshot,
                &scope,
                &self.inner.sql.add_snapshot,
                &[
                    &stream_key(&snapshot.tenant_id, &snapshot.stream_id),
                    &tenant_key(&snapshot.tenant_id),
                    &snapshot.tenant_id,
                    &snapshot.stream_id,
                    &clamp(snapshot.stream_revision),
                    &clamp(snapshot.commit_sequence),
                    &snapshot.payload.get().as_bytes(),
                    &headers,
                ],
            )
            .await?;
        Ok(())
    }
}

#[async_trait]
impl PersistenceManagement for PostgresStore {
    async fn initialize(&self) -> Result<(), StoreError> {
        let session = self
            .inner
            .session(Operation::Initialize, Scope::Store)
            .await?;
        session.batch("BEGIN").await?;
        // Concurrent initialisations of one schema would race on CREATE ... IF NOT EXISTS.
        session
            .execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                &[&self.inner.sql.object],
            )
            .await?;
        self.check_shapes(&session).await?;
        session.batch(&self.inner.sql.create).await?;
        let version: Option<i32> = match session
            .query_opt(&self.inner.sql.read_version, &[&self.inner.sql.object])
            .await?
        {
            Some(row) => Some(session.column(&row, 0)?),
            None => None,
        };
        match version {
            None => {
                session
                    .execute(
                        &self.inner.sql.write_version,
                        &[&self.inner.sql.object, &SCHEMA_VERSION],
                    )
                    .await?;
            }
            Some(version) if version == SCHEMA_VERSION => {}
            // Version 2 writes deleted-stream notices (rows with negative sequences), which
            // version 1 cannot read, and fills the index of stream heads; version 3 records
            // each commit's stream type (older commits keep none). The version tells older
            // releases to keep away.
            Some(version @ (1 | 2)) => {
                if version == 1 {
                    session.execute(&self.inner.sql.backfill_heads, &[]).await?;
                }
                session.batch(&self.inner.sql.add_stream_type).await?;
                session
                    .execute(
                        &self.inner.sql.update_version,
                        &[&self.inner.sql.object, &SCHEMA_VERSION],
                    )
                    .await?;
            }
            Some(version) => {
                session.batch("ROLLBACK").await?;
                return Err(StoreError::Configuration(format!(
                    "`{}` has schema version {version}; this aett reads versions 1 to {SCHEMA_VERSION}",
                    self.inner.sql.object
                )));
            }
        }
        session.batch("COMMIT").await
    }

    async fn schema_version(&self) -> Result<Option<u32>, StoreError> {
        let session = self
            .inner
            .session(Operation::SchemaVersion, Scope::Store)
            .await?;
        match session
            .query_opt(&self.inner.sql.read_version, &[&self.inner.sql.object])
            .await?
        {
            Some(row) => {
                let version: i32 = session.column(&row, 0)?;
                Ok(u32::try_from(version).ok())
            }
            None => Ok(None),
        }
    }

    async fn drop_all(&self) -> Result<(), StoreError> {
        let session = self.inner.session(Operation::Drop, Scope::Store).await?;
        session.batch("BEGIN").await?;
        session
            .execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                &[&self.inner.sql.object],
            )
            .await?;
        // Refuses, dropping nothing, when either table is not aett's.
        self.check_shapes(&session).await?;
        session.batch(&self.inner.sql.drop).await?;
        let versions = format!("\"{}\".aett_schema_version", self.inner.config.schema);
        let row = session
            .query_opt("SELECT to_regclass($1) IS NOT NULL", &[&versions])
            .await?;
        let has_versions: bool = match row {
            Some(row) => session.column(&row, 0)?,
            None => false,
        };
        if has_versions {
            session
                .execute(
                    &format!("DELETE FROM {versions} WHERE object = $1"),
                    &[&self.inner.sql.object],
                )
                .await?;
        }
        session.batch("COMMIT").await
    }

    async fn purge(&self, tenant_id: &str) -> Result<(), StoreError> {
        let key = tenant_key(tenant_id);
        let session = self
            .inner
            .session(Operation::Purge, Scope::tenant(tenant_id))
            .await?;
        session.batch("BEGIN").await?;
        session
            .execute(&self.inner.sql.purge_commits, &[&key])
            .await?;
        session
            .execute(&self.inner.sql.purge_snapshots, &[&key])
            .await?;
        session
            .execute(&self.inner.sql.purge_heads, &[&key])
            .await?;
        session.batch("COMMIT").await
    }

    async fn truncate_stream(
        &self,
        tenant_id: &str,
        stream_id: &str,
        revision: u64,
    ) -> Result<(), StoreError> {
        let key = stream_key(tenant_id, stream_id);
        let session = self
            .inner
            .session(
                Operation::TruncateStream,
                Scope::stream(tenant_id, stream_id),
            )
            .await?;
        session.batch("BEGIN").await?;
        let covered = session
            .query_opt(&self.inner.sql.has_snapshot_from, &[&key, &clamp(revision)])
            .await?
            .is_some();
        if !covered {
            session.batch("ROLLBACK").await?;
            return Err(StoreError::TruncationRefused {
                tenant: tenant_id.to_owned(),
                stream: stream_id.to_owned(),
                revision,
            });
        }
        session
            .execute(&self.inner.sql.truncate, &[&key, &clamp(revision)])
            .await?;
        session.batch("COMMIT").await
    }

    async fn delete_stream(&self, tenant_id: &str, stream_id: &str) -> Result<(), StoreError> {
        let key = stream_key(tenant_id, stream_id);
        let session = self
            .inner
            .session(Operation::DeleteStream, Scope::stream(tenant_id, stream_id))
            .await?;
        session.batch("BEGIN").await?;
        let stream_type: Option<String> = match session
            .query_opt(&self.inner.sql.stream_type_of, &[&key])
            .await?
        {
            Some(row) => session.column(&row, 0)?,
            None => None,
        };
        let commits = session
            .execute(&self.inner.sql.delete_stream_commits, &[&key])
            .await?;
        let snapshots = session
            .execute(&self.inner.sql.delete_stream_snapshots, &[&key])
            .await?;
        session
            .execute(&self.inner.sql.delete_stream_head, &[&key])
            .await?;
        if commits + snapshots > 0 {
            // The notice takes this transaction's id as its checkpoint, like a commit.
            session
                .execute(
                    &self.inner.sql.insert_deletion_notice,
                    &[
                        &key,
                        &tenant_key(tenant_id),
                        &tenant_id,
                        &stream_id,
                        &notice_sequence(),
                        &stream_type,
                    ],
                )
                .await?;
        }
        session.batch("COMMIT").await?;
        drop(session);
        self.inner.signal.raise();
        Ok(())
    }
}

impl PostgresStore {
    /// Refuses (rolling back) when a table of the configured names exists with columns other
    /// than aett's: aett neither writes into nor drops a table it did not create.
    async fn check_shapes(&self, session: &Session<'_>) -> Result<(), StoreError> {
        let commits: &[&[&str]] = &[schema::COMMITS_SHAPE, schema::COMMITS_SHAPE_V2];
        for (table, what, shapes) in [
            (&self.inner.config.commits_table, "commits", commits),
            (
                &self.inner.config.snapshots_table,
                "snapshots",
                &[schema::SNAPSHOTS_SHAPE][..],
            ),
            (
                &format!("{}_streams", self.inner.config.commits_table),
                "stream heads",
                &[schema::HEADS_SHAPE][..],
            ),
            (
                &format!("{}_checkpoints", self.inner.config.commits_table),
                "projection checkpoints",
                &[schema::CHECKPOINTS_SHAPE][..],
            ),
        ] {
            let rows = session
                .query(
                    "SELECT column_name::text FROM information_schema.columns
                     WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                    &[&self.inner.config.schema, table],
                )
                .await?;
            let found = rows
                .iter()
                .map(|row| session.column::<String>(row, 0))
                .collect::<Result<Vec<_>, _>>()?;
            let known = shapes
                .iter()
                .any(|shape| found.iter().map(String::as_str).eq(shape.iter().copied()));
            if !found.is_empty() && !known {
                session.batch("ROLLBACK").await?;
                return Err(StoreError::Configuration(format!(
                    "table `{}.{table}` exists but is not an aett {what} table (its columns are {}); choose another table name",
                    self.inner.config.schema,
                    found.join(", ")
                )));
            }
        }
        Ok(())
    }
}
