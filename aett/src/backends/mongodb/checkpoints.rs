//! Projection checkpoints and leases in `{commits}_checkpoints`, one document per projection,
//! and the transaction a projection run exactly once writes its read model in.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongodb::bson::{doc, Bson, DateTime as BsonDateTime, Document, RawDocumentBuf};
use mongodb::options::ReturnDocument;
use mongodb::ClientSession;

use super::documents::{json_to_bson, uuid_bson, Fields};
use super::{duplicate_index, Inner, MongoStore};
use crate::backends::kit::sql::{clamp, encode_skipped, position};
use crate::error::{Operation, Scope, StoreError};
use crate::store::{
    CheckpointStore, CheckpointTransaction, Lease, ProjectionPosition, SkippedCommit,
};

fn bson_time(time: DateTime<Utc>) -> BsonDateTime {
    BsonDateTime::from_millis(time.timestamp_millis())
}

/// A stored projection document's position.
fn position_of(document: &RawDocumentBuf, scope: &Scope) -> Result<ProjectionPosition, StoreError> {
    let fields = Fields::new(document, scope);
    let skipped = String::from_utf8(fields.json("skipped")?)
        .map_err(|e| fields.corrupt(format!("skipped commits are not UTF-8: {e}")))?;
    position(scope, fields.i64("checkpoint")?, &skipped)
}

/// The update that stores `checkpoint` (and `skipped`) and renews the lease.
fn save_update(
    lease: &Lease,
    checkpoint: u64,
    skipped: Option<&SkippedCommit>,
) -> Result<Document, StoreError> {
    let until = Utc::now() + lease.ttl;
    let mut update =
        doc! {"$set": {"checkpoint": clamp(checkpoint), "lease_until": bson_time(until)}};
    if let Some(json) = encode_skipped(lease, skipped)? {
        let scope = Scope::projection(&lease.projection);
        let skipped = json_to_bson(json.as_bytes())
            .map_err(|reason| StoreError::storage(Operation::SaveCheckpoint, scope, reason))?;
        update.insert("$push", doc! {"skipped": skipped});
    }
    Ok(update)
}

/// The projection's document, if its lease is `lease`'s.
fn held_by(lease: &Lease) -> Document {
    doc! {"_id": &lease.projection, "owner": uuid_bson(lease.owner)}
}

fn fenced(lease: &Lease, matched: u64) -> Result<(), StoreError> {
    if matched == 0 {
        return Err(StoreError::LeaseLost {
            projection: lease.projection.clone(),
        });
    }
    Ok(())
}

#[async_trait]
impl CheckpointStore for MongoStore {
    async fn load_checkpoint(
        &self,
        projection: &str,
    ) -> Result<Option<ProjectionPosition>, StoreError> {
        let scope = Scope::projection(projection);
        let inner = &self.inner;
        let checkpoints = inner.checkpoints.clone_with_type::<RawDocumentBuf>();
        let found = inner
            .run(
                Operation::LoadCheckpoint,
                &scope,
                checkpoints.find_one(doc! {"_id": projection}),
            )
            .await?;
        found
            .map(|document| position_of(&document, &scope))
            .transpose()
    }

    async fn acquire_lease(&self, lease: &Lease) -> Result<ProjectionPosition, StoreError> {
        let scope = Scope::projection(&lease.projection);
        let inner = &self.inner;
        let checkpoints = inner.checkpoints.clone_with_type::<RawDocumentBuf>();
        for _ in 0..3 {
            let now = Utc::now();
            let take = checkpoints
                .find_one_and_update(
                    doc! {
                        "_id": &lease.projection,
                        "$or": [
                            {"owner": Bson::Null},
                            {"owner": uuid_bson(lease.owner)},
                            {"lease_until": {"$lte": bson_time(now)}},
                        ],
                    },
                    doc! {
                        "$set": {"owner": uuid_bson(lease.owner), "lease_until": bson_time(now + lease.ttl)},
                        "$setOnInsert": {"checkpoint": 0_i64, "skipped": []},
                    },
                )
                .upsert(true)
                .return_document(ReturnDocument::After);
            match inner.try_run(Operation::AcquireLease, &scope, take).await? {
                Ok(Some(document)) => return position_of(&document, &scope),
                Ok(None) => {}
                // The document exists and another runner's lease on it has not run out (or it
                // was created meanwhile): look at it.
                Err(error) if duplicate_index(&error).is_some() => {
                    let held = inner
                        .run(
                            Operation::AcquireLease,
                            &scope,
                            checkpoints.find_one(doc! {"_id": &lease.projection}),
                        )
                        .await?;
                    if let Some(held) = held {
                        if let Ok(until) = held.get_datetime("lease_until") {
                            let until =
                                DateTime::<Utc>::from_timestamp_millis(until.timestamp_millis())
                                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                            if until > Utc::now() {
                                return Err(StoreError::LeaseHeld {
                                    projection: lease.projection.clone(),
                                    until,
                                });
                            }
                        }
                    }
                }
                Err(error) => {
                    return Err(inner.driver_error(Operation::AcquireLease, &scope, error))
                }
            }
        }
        Err(StoreError::Corrupt {
            scope,
            commit_sequence: None,
            checkpoint: None,
            reason: "the projection's document changed under every attempt to take its lease"
                .to_owned(),
        })
    }

    async fn save_checkpoint(
        &self,
        lease: &Lease,
        checkpoint: u64,
        skipped: Option<SkippedCommit>,
    ) -> Result<(), StoreError> {
        let scope = Scope::projection(&lease.projection);
        let update = save_update(lease, checkpoint, skipped.as_ref())?;
        let inner = &self.inner;
        let result = inner
            .run(
                Operation::SaveCheckpoint,
                &scope,
                inner.checkpoints.update_one(held_by(lease), update),
            )
            .await?;
        fenced(lease, result.matched_count)
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let scope = Scope::projection(&lease.projection);
        let inner = &self.inner;
        inner
            .run(
                Operation::ReleaseLease,
                &scope,
                inner.checkpoints.update_one(
                    held_by(lease),
                    doc! {"$set": {"owner": Bson::Null, "lease_until": Bson::Null}},
                ),
            )
            .await?;
        Ok(())
    }

    async fn begin_checkpoint_transaction(
        &self,
        lease: &Lease,
    ) -> Result<Box<dyn CheckpointTransaction>, StoreError> {
        let scope = Scope::projection(&lease.projection);
        let session = self.inner.begin(Operation::SaveCheckpoint, &scope).await?;
        Ok(Box::new(MongoTransaction {
            session: tokio::sync::Mutex::new(session),
            inner: self.inner.clone(),
            lease: lease.clone(),
        }))
    }
}

/// The transaction a projection run exactly once on MongoDB writes its read model in: the
/// handlers reach it through [`crate::EventContext::transaction`] and pass
/// [`MongoTransaction::session`] to each operation; the runner then advances the checkpoint
/// in the same transaction and commits. Needs a replica set (Atlas is one).
///
/// ```no_run
/// # use aett::backends::mongodb::MongoTransaction;
/// # async fn demo(context: &aett::EventContext<'_>) -> Result<(), aett::BoxError> {
/// use mongodb::bson::doc;
/// let tx = context.transaction::<MongoTransaction>().ok_or("needs the MongoDB store")?;
/// let totals = tx.database().collection::<mongodb::bson::Document>("totals");
/// let mut session = tx.session().await;
/// totals
///     .update_one(doc! {"_id": "all"}, doc! {"$inc": {"count": 1}})
///     .upsert(true)
///     .session(&mut *session)
///     .await?;
/// # Ok(()) }
/// ```
pub struct MongoTransaction {
    session: tokio::sync::Mutex<ClientSession>,
    inner: Arc<Inner>,
    lease: Lease,
}

impl std::fmt::Debug for MongoTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoTransaction")
            .field("projection", &self.lease.projection)
            .finish_non_exhaustive()
    }
}

impl MongoTransaction {
    /// The store's database, where the read model's collections may live.
    pub fn database(&self) -> &mongodb::Database {
        &self.inner.database
    }

    /// The session with the open transaction: pass it to each operation (`.session(&mut
    /// *session)`). Held by one handler at a time.
    pub async fn session(&self) -> tokio::sync::MutexGuard<'_, ClientSession> {
        self.session.lock().await
    }
}

#[async_trait]
impl CheckpointTransaction for MongoTransaction {
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }

    /// A transaction dropped without committing is rolled back by the driver.
    async fn commit(
        self: Box<Self>,
        checkpoint: u64,
        skipped: Option<SkippedCommit>,
    ) -> Result<(), StoreError> {
        let scope = Scope::projection(&self.lease.projection);
        let update = save_update(&self.lease, checkpoint, skipped.as_ref())?;
        let MongoTransaction {
            session,
            inner,
            lease,
        } = *self;
        let mut session = session.into_inner();
        let outcome = inner
            .run(
                Operation::SaveCheckpoint,
                &scope,
                inner
                    .checkpoints
                    .update_one(held_by(&lease), update)
                    .session(&mut session),
            )
            .await
            .and_then(|result| fenced(&lease, result.matched_count));
        match inner
            .finish(Operation::SaveCheckpoint, &scope, session, outcome)
            .await?
        {
            Some(()) => Ok(()),
            // A concurrent writer of the read model: nothing was kept, the runner retries.
            None => Err(StoreError::storage(
                Operation::SaveCheckpoint,
                scope,
                "the transaction met a concurrent writer and was rolled back",
            )),
        }
    }
}
