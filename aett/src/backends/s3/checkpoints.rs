//! Projection checkpoints and leases. S3 has no compare-and-swap on an object's content, so a
//! projection's state is a chain of generations: generation `g + 1` is created (with
//! `If-None-Match: *`) only by a writer that read generation `g` as the newest, and checked
//! as the newest after its write. Of two writers that read `g`, one creates `g + 1` and the
//! other gets `412`; a writer that read a generation that is no longer the newest finds a newer
//! one first in the listing. Old generations are removed as new ones are written.
//!
//! S3 has no transaction across objects, so projections run at least once here:
//! [`CheckpointStore::begin_checkpoint_transaction`] is [`StoreError::Unsupported`].

use async_trait::async_trait;
use chrono::Utc;

use super::objects::ProjectionState;
use super::{Inner, S3Store};
use crate::backends::kit::sql::{encode_skipped, position};
use crate::backends::kit::{lease_check, stamp_from_micros, stamp_to_micros};
use crate::error::{Operation, Scope, StoreError};
use crate::store::{CheckpointStore, Lease, ProjectionPosition, SkippedCommit};

/// How many times a change of a projection's state that met another change is tried again.
const STATE_TRIES: usize = 20;

impl Inner {
    /// The projection's newest generation and state.
    async fn projection_state(
        &self,
        operation: Operation,
        projection: &str,
    ) -> Result<Option<(u64, ProjectionState)>, StoreError> {
        let scope = Scope::projection(projection);
        loop {
            let (found, _) = self
                .list(
                    operation,
                    &scope,
                    &self.layout.projection_prefix(projection),
                    None,
                    1,
                )
                .await?;
            let Some(key) = found.first() else {
                return Ok(None);
            };
            let corrupt = |reason: String| StoreError::Corrupt {
                scope: scope.clone(),
                commit_sequence: None,
                checkpoint: None,
                reason,
            };
            let generation = self
                .layout
                .parse_projection(projection, key)
                .ok_or_else(|| corrupt(format!("`{key}` is not a projection's key")))?;
            // Removed since the listing: a newer generation is there.
            let Some(bytes) = self.get(operation, &scope, key).await? else {
                continue;
            };
            let state: ProjectionState = serde_json::from_slice(&bytes)
                .map_err(|e| corrupt(format!("the projection's state is not JSON: {e}")))?;
            return Ok(Some((generation, state)));
        }
    }

    /// Writes `state` as the generation after `read` (0: none was read); `false` when another
    /// writer changed the state first.
    async fn write_state(
        &self,
        operation: Operation,
        projection: &str,
        read: u64,
        state: &ProjectionState,
    ) -> Result<bool, StoreError> {
        let scope = Scope::projection(projection);
        let bytes = serde_json::to_vec(state).map_err(|source| StoreError::Serialization {
            scope: scope.clone(),
            what: "projection state",
            source,
        })?;
        let generation = read + 1;
        let key = self.layout.projection(projection, generation);
        if !self.put_new(operation, &scope, &key, bytes).await? {
            return Ok(false);
        }
        // A writer that read a generation removed since creates a key that is not the newest.
        let (newest, _) = self
            .list(
                operation,
                &scope,
                &self.layout.projection_prefix(projection),
                None,
                1,
            )
            .await?;
        if newest.first() != Some(&key) {
            return Ok(false);
        }
        if read > 0 {
            let _ = self
                .delete(operation, &scope, &self.layout.projection(projection, read))
                .await;
        }
        Ok(true)
    }
}

fn position_of(
    state: &ProjectionState,
    projection: &str,
) -> Result<ProjectionPosition, StoreError> {
    let skipped: Vec<&str> = state.skipped.iter().map(|raw| raw.get()).collect();
    position(
        &Scope::projection(projection),
        i64::try_from(state.checkpoint).unwrap_or(-1),
        &format!("[{}]", skipped.join(",")),
    )
}

fn until(lease: &Lease) -> i64 {
    stamp_to_micros(Utc::now()).saturating_add(lease.ttl_micros())
}

fn holder(state: &ProjectionState) -> Option<(uuid::Uuid, chrono::DateTime<Utc>)> {
    state.owner.map(|owner| {
        (
            owner,
            stamp_from_micros(state.until).unwrap_or(chrono::DateTime::<Utc>::MAX_UTC),
        )
    })
}

#[async_trait]
impl CheckpointStore for S3Store {
    async fn load_checkpoint(
        &self,
        projection: &str,
    ) -> Result<Option<ProjectionPosition>, StoreError> {
        self.inner
            .projection_state(Operation::LoadCheckpoint, projection)
            .await?
            .map(|(_, state)| position_of(&state, projection))
            .transpose()
    }

    async fn acquire_lease(&self, lease: &Lease) -> Result<ProjectionPosition, StoreError> {
        let operation = Operation::AcquireLease;
        let projection = &lease.projection;
        for _ in 0..STATE_TRIES {
            let (read, mut state) = self
                .inner
                .projection_state(operation, projection)
                .await?
                .unwrap_or_default();
            lease_check(projection, lease.owner, holder(&state), Utc::now())?;
            state.owner = Some(lease.owner);
            state.until = until(lease);
            if self
                .inner
                .write_state(operation, projection, read, &state)
                .await?
            {
                return position_of(&state, projection);
            }
        }
        Err(StoreError::storage(
            operation,
            Scope::projection(projection),
            format!("the projection's state kept changing: tried {STATE_TRIES} times"),
        ))
    }

    async fn save_checkpoint(
        &self,
        lease: &Lease,
        checkpoint: u64,
        skipped: Option<SkippedCommit>,
    ) -> Result<(), StoreError> {
        let operation = Operation::SaveCheckpoint;
        let projection = &lease.projection;
        let skipped = encode_skipped(lease, skipped.as_ref())?
            .map(|json| {
                serde_json::value::RawValue::from_string(json).map_err(|source| {
                    StoreError::Serialization {
                        scope: Scope::projection(projection),
                        what: "skipped commit",
                        source,
                    }
                })
            })
            .transpose()?;
        let lost = || StoreError::LeaseLost {
            projection: projection.clone(),
        };
        for _ in 0..STATE_TRIES {
            let Some((read, mut state)) =
                self.inner.projection_state(operation, projection).await?
            else {
                return Err(lost());
            };
            if state.owner != Some(lease.owner) {
                return Err(lost());
            }
            state.checkpoint = checkpoint;
            state.skipped.extend(skipped.clone());
            state.until = until(lease);
            if self
                .inner
                .write_state(operation, projection, read, &state)
                .await?
            {
                return Ok(());
            }
        }
        Err(lost())
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let operation = Operation::ReleaseLease;
        let projection = &lease.projection;
        for _ in 0..STATE_TRIES {
            let Some((read, mut state)) =
                self.inner.projection_state(operation, projection).await?
            else {
                return Ok(());
            };
            // A lease that is not ours (any more) has nothing to release.
            if state.owner != Some(lease.owner) {
                return Ok(());
            }
            state.owner = None;
            state.until = 0;
            if self
                .inner
                .write_state(operation, projection, read, &state)
                .await?
            {
                return Ok(());
            }
        }
        Ok(())
    }
}
