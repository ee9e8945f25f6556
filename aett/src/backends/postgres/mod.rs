//! The PostgreSQL backend (feature `postgres`; TLS with `postgres-tls`).
//!
//! `tokio-postgres` behind a `deadpool-postgres` pool; statements are prepared once per
//! connection. One row per commit, its headers and events as JSON in `bytea` columns (see
//! the README for why `bytea` rather than `jsonb`).
//!
//! **Reading from a checkpoint never skips a commit.** A commit's checkpoint is the id of the
//! transaction that wrote it. [`PersistenceManagement::get_from`] hands out a commit only once
//! every transaction with a lower id has finished (`pg_snapshot_xmin`), so a commit that
//! becomes visible later can never have a checkpoint below one already handed out. While an
//! older transaction is still writing, `get_from` waits for it (up to
//! [`PostgresConfig::checkpoint_wait`]) and otherwise ends the stream at the last commit it
//! can hand out without a gap; reading again from there continues. A long-running write
//! transaction elsewhere in the same cluster holds readers back the same way.

mod config;
mod schema;
#[cfg(feature = "postgres-tls")]
mod tls;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use futures::FutureExt;
use sha2::{Digest, Sha256};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

pub use config::{PostgresConfig, PostgresTls};

use self::schema::{Statements, SCHEMA_VERSION};
use crate::backends::sql::{clamp, encode_payload, validate_identifier, RawCommit};
use crate::backends::sql::{decode_snapshot, replay_commit, why_refused, Refused};
use crate::commit::{Commit, CommitAttempt};
use crate::error::{Scope, StoreError};
use crate::snapshot::Snapshot;
use crate::store::{
    paged, paged_items, resolve_taken_sequence, CommitStore, CommitStream, Page,
    PersistenceManagement, ReplayStream, Resume, SnapshotStore,
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
        let mut pg_config: tokio_postgres::Config = config.url.parse().map_err(|e| {
            StoreError::Configuration(format!("invalid PostgreSQL connection string: {e}"))
        })?;
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &config.tls {
            PostgresTls::Disabled => {
                Manager::from_config(pg_config, tokio_postgres::NoTls, manager_config)
            }
            PostgresTls::Required { ca_file } => {
                pg_config.ssl_mode(tokio_postgres::config::SslMode::Require);
                Self::tls_manager(pg_config, ca_file.as_deref(), manager_config)?
            }
        };
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(60)))
            .create_timeout(Some(Duration::from_secs(15)))
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
            inner: Arc::new(Inner { config, sql, pool }),
        };
        // Fail now on a wrong address or password; the connection goes back to the pool.
        drop(store.client("connect", Scope::Store).await?);
        Ok(store)
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
        manager_config: ManagerConfig,
    ) -> Result<Manager, StoreError> {
        Ok(Manager::from_config(
            pg_config,
            tls::connector(ca_file)?,
            manager_config,
        ))
    }

    #[cfg(not(feature = "postgres-tls"))]
    fn tls_manager(
        _: tokio_postgres::Config,
        _: Option<&std::path::Path>,
        _: ManagerConfig,
    ) -> Result<Manager, StoreError> {
        Err(StoreError::FeatureDisabled {
            scheme: "postgres with TLS".to_owned(),
            feature: "postgres-tls",
        })
    }

    async fn client(&self, operation: &'static str, scope: Scope) -> Result<Object, StoreError> {
        self.inner.client(operation, scope).await
    }

    fn paged_query<'a>(&self, query: Query) -> CommitStream<'a> {
        let inner = self.inner.clone();
        paged(move |last, limit| {
            let inner = inner.clone();
            let query = query.clone();
            let after = match &query {
                Query::Stream { .. } | Query::StreamToTime { .. } => {
                    last.map_or(0, |r| clamp(r.commit_sequence))
                }
                Query::TenantToTime { .. } => last.map_or(0, |r| clamp(r.checkpoint)),
            };
            async move { inner.page(query, after, limit).await }.boxed()
        })
    }
}

/// The paged reads other than `get_from`.
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

impl Inner {
    async fn client(&self, operation: &'static str, scope: Scope) -> Result<Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::storage(operation, scope, pool_error(e)))
    }

    async fn query(
        &self,
        operation: &'static str,
        scope: &Scope,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let fail = |e| StoreError::storage(operation, scope.clone(), DriverError::from(e));
        let client = self.client(operation, scope.clone()).await?;
        let result = match client.prepare_cached(sql).await {
            Ok(statement) => client.query(&statement, params).await,
            Err(error) => Err(error),
        };
        result.map_err(|error| {
            discard(client);
            fail(error)
        })
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
                "read stream",
                &self.sql.by_revision,
                scope,
                vec![key, min, max],
            ),
            Query::StreamToTime {
                scope,
                key,
                max_time,
            } => (
                "read stream to time",
                &self.sql.by_time,
                scope,
                vec![key, max_time],
            ),
            Query::TenantToTime {
                scope,
                key,
                max_time,
            } => (
                "read tenant to time",
                &self.sql.tenant_by_time,
                scope,
                vec![key, max_time],
            ),
        };
        params.extend([&after as &(dyn ToSql + Sync), &limit]);
        let rows = self.query(operation, scope, sql, &params).await?;
        let commits = rows
            .iter()
            .map(|row| raw_commit(row, scope).and_then(RawCommit::decode))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::new(commits, page_limit))
    }

    /// One page of `get_from`: the commits after `after` whose transactions are below the
    /// horizon. Waits while only commits above it are visible.
    async fn page_from_checkpoint(
        &self,
        after: i64,
        page_limit: usize,
    ) -> Result<Page, StoreError> {
        let limit = page_limit as i64;
        let deadline = Instant::now() + self.config.checkpoint_wait;
        let mut pause = Duration::from_millis(1);
        loop {
            let rows = self
                .query(
                    "read from checkpoint",
                    &Scope::Store,
                    &self.sql.from_checkpoint,
                    &[&after, &limit],
                )
                .await?;
            let full = rows.len() >= page_limit;
            let mut commits = Vec::with_capacity(rows.len());
            let mut held_back = false;
            for row in &rows {
                let horizon: i64 = row.try_get("horizon").map_err(|e| {
                    StoreError::storage("read from checkpoint", Scope::Store, DriverError::from(e))
                })?;
                let raw = raw_commit(row, &Scope::Store)?;
                if raw.checkpoint >= horizon {
                    held_back = true;
                    break;
                }
                commits.push(raw.decode()?);
            }
            if !held_back {
                return Ok(Page {
                    commits,
                    more: full,
                });
            }
            if !commits.is_empty() {
                return Ok(Page {
                    commits,
                    more: true,
                });
            }
            if Instant::now() >= deadline {
                // End at the horizon: what follows is handed out by a later read.
                return Ok(Page {
                    commits,
                    more: false,
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

fn raw_commit(row: &Row, scope: &Scope) -> Result<RawCommit, StoreError> {
    let corrupt = |e: tokio_postgres::Error| StoreError::Corrupt {
        scope: scope.clone(),
        commit_sequence: None,
        checkpoint: None,
        reason: format!("a commit row does not read back: {e}"),
    };
    let commit_id: Uuid = row.try_get(4).map_err(corrupt)?;
    let stamp: DateTime<Utc> = row.try_get(6).map_err(corrupt)?;
    Ok(RawCommit {
        checkpoint: row.try_get(0).map_err(corrupt)?,
        tenant_id: row.try_get(1).map_err(corrupt)?,
        stream_id: row.try_get(2).map_err(corrupt)?,
        stream_revision: row.try_get(3).map_err(corrupt)?,
        commit_id: commit_id.as_bytes().to_vec(),
        commit_sequence: row.try_get(5).map_err(corrupt)?,
        commit_stamp_micros: stamp.timestamp_micros(),
        headers: row.try_get(7).map_err(corrupt)?,
        events: row.try_get(8).map_err(corrupt)?,
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

fn pool_error(error: deadpool_postgres::PoolError) -> crate::error::BoxError {
    match error {
        deadpool_postgres::PoolError::Backend(driver) => Box::new(DriverError::from(driver)),
        other => Box::new(other),
    }
}

/// Takes a connection out of the pool after an error that may have left it broken: a backend
/// the server terminated still looks open for a moment, and must not serve the next caller.
fn discard(client: Object) {
    drop(Object::take(client));
}

fn is_unique_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

#[async_trait]
impl CommitStore for PostgresStore {
    fn get<'a>(
        &'a self,
        tenant_id: &'a str,
        stream_id: &'a str,
        min_revision: u64,
        max_revision: u64,
    ) -> CommitStream<'a> {
        self.paged_query(Query::Stream {
            scope: Scope::stream(tenant_id, stream_id),
            key: stream_key(tenant_id, stream_id),
            min: clamp(min_revision),
            max: clamp(max_revision),
        })
    }

    fn get_to<'a>(
        &'a self,
        tenant_id: &'a str,
        stream_id: &'a str,
        max_time: DateTime<Utc>,
    ) -> CommitStream<'a> {
        self.paged_query(Query::StreamToTime {
            scope: Scope::stream(tenant_id, stream_id),
            key: stream_key(tenant_id, stream_id),
            max_time,
        })
    }

    fn get_all_to<'a>(&'a self, tenant_id: &'a str, max_time: DateTime<Utc>) -> CommitStream<'a> {
        self.paged_query(Query::TenantToTime {
            scope: Scope::tenant(tenant_id),
            key: tenant_key(tenant_id),
            max_time,
        })
    }

    fn get_for_replay<'a>(
        &'a self,
        tenant_id: &'a str,
        stream_id: &'a str,
        min_revision: u64,
        max_revision: u64,
    ) -> ReplayStream<'a> {
        let inner = self.inner.clone();
        let scope = Scope::stream(tenant_id, stream_id);
        let key = stream_key(tenant_id, stream_id);
        let (min, max) = (clamp(min_revision), clamp(max_revision));
        paged_items(move |last: Option<Resume>, page_limit| {
            let after = last.map_or(0, |r| clamp(r.commit_sequence));
            let (inner, scope, key) = (inner.clone(), scope.clone(), key.clone());
            async move {
                let limit = page_limit as i64;
                let rows = inner
                    .query(
                        "read stream",
                        &scope,
                        &inner.sql.replay_by_revision,
                        &[&key, &min, &max, &after, &limit],
                    )
                    .await?;
                let column = |e: tokio_postgres::Error| StoreError::Corrupt {
                    scope: scope.clone(),
                    commit_sequence: None,
                    checkpoint: None,
                    reason: format!("a commit row does not read back: {e}"),
                };
                let mut commits = Vec::with_capacity(rows.len());
                for row in &rows {
                    let items: i32 = row.try_get(2).map_err(column)?;
                    commits.push(replay_commit(
                        &scope,
                        row.try_get(0).map_err(column)?,
                        row.try_get(1).map_err(column)?,
                        i64::from(items),
                        row.try_get(3).map_err(column)?,
                    )?);
                }
                Ok(Page::new(commits, page_limit))
            }
            .boxed()
        })
    }

    async fn commit(&self, attempt: CommitAttempt) -> Result<Commit, StoreError> {
        attempt.validate()?;
        let scope = Scope::stream(&attempt.tenant_id, &attempt.stream_id);
        let fail = |e| StoreError::storage("commit", scope.clone(), DriverError::from(e));
        let items = i32::try_from(attempt.events.len()).map_err(|_| StoreError::InvalidCommit {
            tenant: attempt.tenant_id.clone(),
            stream: attempt.stream_id.clone(),
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
        let client = self.client("commit", scope.clone()).await?;
        let insert = client
            .prepare_cached(&self.inner.sql.insert_commit)
            .await
            .map_err(fail)?;
        let inserted = client
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
                ],
            )
            .await;
        match inserted {
            Ok(Some(row)) => {
                let checkpoint: i64 = row.try_get(0).map_err(fail)?;
                return Ok(Commit::from_attempt(
                    attempt,
                    u64::try_from(checkpoint).unwrap_or_default(),
                ));
            }
            Ok(None) => {}
            Err(error) if is_unique_violation(&error) => {}
            Err(error) => {
                discard(client);
                return Err(fail(error));
            }
        }
        // Nothing went in: find out why.
        let duplicate = client
            .query_opt(
                &client
                    .prepare_cached(&self.inner.sql.has_commit_id)
                    .await
                    .map_err(fail)?,
                &[&key, &attempt.commit_id],
            )
            .await
            .map_err(fail)?
            .is_some();
        let head = match client
            .query_opt(
                &client
                    .prepare_cached(&self.inner.sql.head)
                    .await
                    .map_err(fail)?,
                &[&key],
            )
            .await
            .map_err(fail)?
        {
            Some(row) => (row.try_get(0).map_err(fail)?, row.try_get(1).map_err(fail)?),
            None => (0, 0),
        };
        match why_refused(&attempt, duplicate, head) {
            Refused::Answer(error) => Err(error),
            Refused::SequenceTaken => {
                let rows = client
                    .query(
                        &client
                            .prepare_cached(&self.inner.sql.later_commits)
                            .await
                            .map_err(fail)?,
                        &[&key, &sequence],
                    )
                    .await
                    .map_err(fail)?;
                let later = rows
                    .iter()
                    .map(|row| raw_commit(row, &scope).and_then(RawCommit::decode))
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

#[async_trait]
impl SnapshotStore for PostgresStore {
    async fn get_snapshot(
        &self,
        tenant_id: &str,
        stream_id: &str,
        max_revision: u64,
    ) -> Result<Option<Snapshot>, StoreError> {
        let scope = Scope::stream(tenant_id, stream_id);
        let rows = self
            .inner
            .query(
                "get snapshot",
                &scope,
                &self.inner.sql.get_snapshot,
                &[&stream_key(tenant_id, stream_id), &clamp(max_revision)],
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let column = |e: tokio_postgres::Error| StoreError::Corrupt {
            scope: scope.clone(),
            commit_sequence: None,
            checkpoint: None,
            reason: format!("a snapshot row does not read back: {e}"),
        };
        decode_snapshot(
            tenant_id.to_owned(),
            stream_id.to_owned(),
            row.try_get(0).map_err(column)?,
            row.try_get(1).map_err(column)?,
            row.try_get(2).map_err(column)?,
            row.try_get(3).map_err(column)?,
        )
        .map(Some)
    }

    async fn add_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let scope = Scope::stream(&snapshot.tenant_id, &snapshot.stream_id);
        let headers =
            serde_json::to_vec(&snapshot.headers).map_err(|source| StoreError::Serialization {
                scope: scope.clone(),
                what: "snapshot headers",
                source,
            })?;
        self.inner
            .query(
                "add snapshot",
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
        let fail = |e| StoreError::storage("initialize", Scope::Store, DriverError::from(e));
        let mut client = self.client("initialize", Scope::Store).await?;
        let tx = client.transaction().await.map_err(fail)?;
        // Concurrent initialisations of one schema would race on CREATE ... IF NOT EXISTS.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&self.inner.sql.object],
        )
        .await
        .map_err(fail)?;
        tx.batch_execute(&self.inner.sql.create)
            .await
            .map_err(fail)?;
        let version: Option<i32> = tx
            .query_opt(&self.inner.sql.read_version, &[&self.inner.sql.object])
            .await
            .map_err(fail)?
            .map(|row| row.try_get(0))
            .transpose()
            .map_err(fail)?;
        match version {
            None => {
                tx.execute(
                    &self.inner.sql.write_version,
                    &[&self.inner.sql.object, &SCHEMA_VERSION],
                )
                .await
                .map_err(fail)?;
            }
            Some(version) if version == SCHEMA_VERSION => {}
            Some(version) => {
                return Err(StoreError::Configuration(format!(
                    "`{}` has schema version {version}; this aett reads version {SCHEMA_VERSION}",
                    self.inner.sql.object
                )))
            }
        }
        tx.commit().await.map_err(fail)
    }

    async fn drop_all(&self) -> Result<(), StoreError> {
        let fail = |e| StoreError::storage("drop", Scope::Store, DriverError::from(e));
        let mut client = self.client("drop", Scope::Store).await?;
        let tx = client.transaction().await.map_err(fail)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&self.inner.sql.object],
        )
        .await
        .map_err(fail)?;
        tx.batch_execute(&self.inner.sql.drop).await.map_err(fail)?;
        let versions = format!("\"{}\".aett_schema_version", self.inner.config.schema);
        let has_versions: bool = tx
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&versions])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(fail)?;
        if has_versions {
            tx.execute(
                &format!("DELETE FROM {versions} WHERE object = $1"),
                &[&self.inner.sql.object],
            )
            .await
            .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)
    }

    async fn purge(&self, tenant_id: &str) -> Result<(), StoreError> {
        let fail = |e| StoreError::storage("purge", Scope::tenant(tenant_id), DriverError::from(e));
        let key = tenant_key(tenant_id);
        let mut client = self.client("purge", Scope::tenant(tenant_id)).await?;
        let tx = client.transaction().await.map_err(fail)?;
        tx.execute(&self.inner.sql.purge_commits, &[&key])
            .await
            .map_err(fail)?;
        tx.execute(&self.inner.sql.purge_snapshots, &[&key])
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)
    }

    fn get_from(&self, checkpoint: u64) -> CommitStream<'_> {
        let inner = self.inner.clone();
        paged(move |last, page_limit| {
            let inner = inner.clone();
            let after = last.map_or(clamp(checkpoint), |r| clamp(r.checkpoint));
            async move { inner.page_from_checkpoint(after, page_limit).await }.boxed()
        })
    }
}
