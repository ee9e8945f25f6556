//! Projection checkpoints and leases in `{commits}_checkpoints`, and the transaction a
//! projection run exactly once writes its read model in.

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::Object;

use super::{DriverError, Inner, PostgresStore};
use crate::backends::kit::sql::{clamp, encode_skipped, position};
use crate::error::{Operation, Scope, StoreError};
use crate::store::{
    CheckpointStore, CheckpointTransaction, Lease, ProjectionPosition, SkippedCommit,
};

#[async_trait]
impl CheckpointStore for PostgresStore {
    async fn load_checkpoint(
        &self,
        projection: &str,
    ) -> Result<Option<ProjectionPosition>, StoreError> {
        let scope = Scope::projection(projection);
        let session = self
            .inner
            .session(Operation::LoadCheckpoint, scope.clone())
            .await?;
        let Some(row) = session
            .query_opt(&self.inner.sql.load_checkpoint, &[&projection])
            .await?
        else {
            return Ok(None);
        };
        position(
            &scope,
            session.column(&row, 0)?,
            &session.column::<String>(&row, 1)?,
        )
        .map(Some)
    }

    async fn acquire_lease(&self, lease: &Lease) -> Result<ProjectionPosition, StoreError> {
        let scope = Scope::projection(&lease.projection);
        let session = self
            .inner
            .session(Operation::AcquireLease, scope.clone())
            .await?;
        // The statement sees the table as it was when it started: when another runner created
        // the projection's row meanwhile, neither of its branches finds a row, and a second try
        // (with a fresh view) does.
        let mut row = None;
        for _ in 0..3 {
            row = session
                .query_opt(
                    &self.inner.sql.take_lease,
                    &[&lease.projection, &lease.owner, &lease.ttl_micros()],
                )
                .await?;
            if row.is_some() {
                break;
            }
        }
        let row = row.ok_or_else(|| StoreError::Corrupt {
            scope: scope.clone(),
            commit_sequence: None,
            checkpoint: None,
            reason: "the projection's row vanished while its lease was taken".to_owned(),
        })?;
        let checkpoint: Option<i64> = session.column(&row, 0)?;
        match checkpoint {
            Some(checkpoint) => position(&scope, checkpoint, &session.column::<String>(&row, 1)?),
            None => Err(StoreError::LeaseHeld {
                projection: lease.projection.clone(),
                until: session.column(&row, 2)?,
            }),
        }
    }

    async fn save_checkpoint(
        &self,
        lease: &Lease,
        checkpoint: u64,
        skipped: Option<SkippedCommit>,
    ) -> Result<(), StoreError> {
        let skipped = encode_skipped(lease, skipped.as_ref())?;
        let session = self
            .inner
            .session(
                Operation::SaveCheckpoint,
                Scope::projection(&lease.projection),
            )
            .await?;
        let client = session.client();
        let updated = session
            .run(client.execute(
                &self.inner.sql.save_checkpoint,
                &[
                    &lease.projection,
                    &lease.owner,
                    &clamp(checkpoint),
                    &lease.ttl_micros(),
                    &skipped,
                ],
            ))
            .await?;
        fenced(lease, updated)
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let session = self
            .inner
            .session(
                Operation::ReleaseLease,
                Scope::projection(&lease.projection),
            )
            .await?;
        session
            .execute(
                &self.inner.sql.release_lease,
                &[&lease.projection, &lease.owner],
            )
            .await?;
        Ok(())
    }

    async fn begin_checkpoint_transaction(
        &self,
        lease: &Lease,
    ) -> Result<Box<dyn CheckpointTransaction>, StoreError> {
        let mut session = self
            .inner
            .session(
                Operation::SaveCheckpoint,
                Scope::projection(&lease.projection),
            )
            .await?;
        session.batch("BEGIN").await?;
        let client = session.client.take();
        Ok(Box::new(PostgresTransaction {
            client,
            inner: self.inner.clone(),
            lease: lease.clone(),
        }))
    }
}

/// The transaction a projection run exactly once on PostgreSQL writes its read model in: the
/// handlers reach it through [`crate::EventContext::transaction`] and run their statements on
/// [`PostgresTransaction::client`], a connection inside an open transaction; the runner then
/// advances the checkpoint in the same transaction and commits.
///
/// ```no_run
/// # use aett::backends::postgres::PostgresTransaction;
/// # async fn demo(context: &aett::EventContext<'_>) -> Result<(), aett::BoxError> {
/// let tx = context.transaction::<PostgresTransaction>().ok_or("needs the PostgreSQL store")?;
/// tx.client().execute("UPDATE balances SET total = total + 1", &[]).await?;
/// # Ok(()) }
/// ```
pub struct PostgresTransaction {
    client: Option<Object>,
    inner: Arc<Inner>,
    lease: Lease,
}

impl std::fmt::Debug for PostgresTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresTransaction")
            .field("projection", &self.lease.projection)
            .finish_non_exhaustive()
    }
}

impl PostgresTransaction {
    /// The connection, inside the open transaction.
    pub fn client(&self) -> &tokio_postgres::Client {
        self.client
            .as_ref()
            .expect("the transaction holds its connection until it ends")
    }
}

/// A transaction dropped without committing takes its connection out of the pool: closing it
/// rolls the transaction back on the server, and no caller is handed a connection mid-transaction.
impl Drop for PostgresTransaction {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

#[async_trait]
impl CheckpointTransaction for PostgresTransaction {
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }

    async fn commit(
        mut self: Box<Self>,
        checkpoint: u64,
        skipped: Option<SkippedCommit>,
    ) -> Result<(), StoreError> {
        let skipped = encode_skipped(&self.lease, skipped.as_ref())?;
        let scope = Scope::projection(&self.lease.projection);
        let fail = |e| {
            StoreError::storage(
                Operation::SaveCheckpoint,
                scope.clone(),
                DriverError::from(e),
            )
        };
        let limit = self.inner.config.statement_timeout + super::CLIENT_GRACE;
        let client = self.client();
        let work = async {
            let updated = client
                .execute(
                    &self.inner.sql.save_checkpoint,
                    &[
                        &self.lease.projection,
                        &self.lease.owner,
                        &clamp(checkpoint),
                        &self.lease.ttl_micros(),
                        &skipped,
                    ],
                )
                .await
                .map_err(fail)?;
            fenced(&self.lease, updated)?;
            client.batch_execute("COMMIT").await.map_err(fail)
        };
        let outcome = match tokio::time::timeout(limit, work).await {
            Ok(outcome) => outcome,
            Err(_) => Err(StoreError::Timeout {
                operation: Operation::SaveCheckpoint,
                scope: scope.clone(),
                after: self.inner.config.statement_timeout,
            }),
        };
        if outcome.is_ok() {
            // Committed: the connection goes back to the pool.
            drop(self.client.take());
        }
        outcome
    }
}

fn fenced(lease: &Lease, updated: u64) -> Result<(), StoreError> {
    if updated == 0 {
        return Err(StoreError::LeaseLost {
            projection: lease.projection.clone(),
        });
    }
    Ok(())
}
