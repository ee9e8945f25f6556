//! Snapshots, one object each, keyed so that the newest at or below a revision is the first
//! of a listing; and the index of stream heads that says which streams need one.

use async_trait::async_trait;
use futures::stream::{self, StreamExt, TryStreamExt};

use super::keys::{parse_head, segment_id, HeadKey};
use super::objects::{snapshot_object, split_snapshot};
use super::S3Store;
use crate::backends::kit::sql::{decode_snapshot, replay_snapshot};
use crate::error::{Operation, Scope, StoreError};
use crate::model::Snapshot;
use crate::store::{ReplaySnapshot, SnapshotStore, StreamToSnapshot, StreamsToSnapshot};

impl S3Store {
    /// The newest snapshot of the stream at or below `max_revision`: its revision, commit
    /// sequence and object.
    async fn newest_snapshot(
        &self,
        tenant: &str,
        stream: &str,
        max_revision: u64,
    ) -> Result<Option<(u64, u64, Vec<u8>)>, StoreError> {
        let inner = &self.inner;
        let operation = Operation::GetSnapshot;
        let scope = Scope::stream(tenant, stream);
        let inc = inner.incarnation(operation, tenant, stream).await?;
        let keys = inner.layout.stream(tenant, stream);
        let after = keys.snapshots_after(inc, max_revision);
        let (found, _) = inner
            .list(operation, &scope, &keys.snapshots(inc), after.as_deref(), 1)
            .await?;
        let Some(key) = found.first() else {
            return Ok(None);
        };
        let Some((revision, sequence)) = keys.parse_snapshot(inc, key) else {
            return Err(StoreError::Corrupt {
                scope,
                commit_sequence: None,
                checkpoint: None,
                reason: format!("`{key}` is not the key of a snapshot"),
            });
        };
        // Replaced or removed since the listing: look again.
        match inner.get(operation, &scope, key).await? {
            Some(bytes) => Ok(Some((revision, sequence, bytes))),
            None => Box::pin(self.newest_snapshot(tenant, stream, max_revision)).await,
        }
    }
}

fn corrupt_snapshot(scope: Scope, sequence: u64) -> StoreError {
    StoreError::Corrupt {
        scope,
        commit_sequence: Some(sequence),
        checkpoint: None,
        reason: "the snapshot object has no headers line".to_owned(),
    }
}

fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(-1)
}

#[async_trait]
impl SnapshotStore for S3Store {
    async fn get_snapshot(
        &self,
        tenant_id: &str,
        stream_id: &str,
        max_revision: u64,
    ) -> Result<Option<Snapshot>, StoreError> {
        let Some((revision, sequence, bytes)) = self
            .newest_snapshot(tenant_id, stream_id, max_revision)
            .await?
        else {
            return Ok(None);
        };
        let (headers, payload) = split_snapshot(&bytes)
            .ok_or_else(|| corrupt_snapshot(Scope::stream(tenant_id, stream_id), sequence))?;
        decode_snapshot(
            tenant_id.to_owned(),
            stream_id.to_owned(),
            signed(revision),
            signed(sequence),
            payload.to_vec(),
            headers.to_vec(),
        )
        .map(Some)
    }

    async fn get_snapshot_for_replay(
        &self,
        tenant_id: &str,
        stream_id: &str,
        max_revision: u64,
    ) -> Result<Option<ReplaySnapshot>, StoreError> {
        let Some((revision, sequence, bytes)) = self
            .newest_snapshot(tenant_id, stream_id, max_revision)
            .await?
        else {
            return Ok(None);
        };
        let scope = Scope::stream(tenant_id, stream_id);
        let (headers, payload) =
            split_snapshot(&bytes).ok_or_else(|| corrupt_snapshot(scope.clone(), sequence))?;
        replay_snapshot(
            &scope,
            signed(revision),
            signed(sequence),
            payload.to_vec(),
            headers,
        )
        .map(Some)
    }

    async fn add_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let inner = &self.inner;
        let operation = Operation::AddSnapshot;
        let (tenant, stream) = (&snapshot.tenant_id, &snapshot.stream_id);
        let scope = Scope::stream(tenant, stream);
        let inc = inner.incarnation(operation, tenant, stream).await?;
        let keys = inner.layout.stream(tenant, stream);
        let bytes = snapshot_object(&snapshot)?;
        inner
            .put(
                operation,
                &scope,
                &keys.snapshot(inc, snapshot.stream_revision, snapshot.commit_sequence),
                bytes,
            )
            .await?;
        inner
            .put(
                operation,
                &scope,
                &keys.head_snapshot(inc, snapshot.stream_revision),
                stream.clone().into_bytes(),
            )
            .await
    }

    fn streams_to_snapshot(&self, tenant_id: &str, threshold: u64) -> StreamsToSnapshot {
        let inner = self.inner.clone();
        let tenant = tenant_id.to_owned();
        let prefix = inner.layout.heads_prefix(&tenant);
        let scope = Scope::tenant(&tenant);
        // A listing's pages may split a stream's keys: the last stream of a page waits for the
        // next one.
        struct State {
            after: Option<String>,
            pending: Option<Group>,
            done: bool,
        }
        let start = State {
            after: None,
            pending: None,
            done: false,
        };
        stream::try_unfold(start, move |mut state| {
            let (inner, prefix, scope, tenant) =
                (inner.clone(), prefix.clone(), scope.clone(), tenant.clone());
            async move {
                if state.done {
                    return Ok(None);
                }
                let operation = Operation::StreamsToSnapshot;
                let (listed, more) = inner
                    .list(operation, &scope, &prefix, state.after.as_deref(), 1000)
                    .await?;
                state.after = listed.last().cloned().or(state.after);
                let mut finished = Vec::new();
                for key in listed {
                    let Some((segment, inc, entry)) = parse_head(&prefix, &key) else {
                        continue;
                    };
                    match &mut state.pending {
                        Some(group) if group.segment == segment => group.add(inc, entry, key),
                        pending => {
                            finished.extend(pending.take());
                            let mut group = Group::new(segment);
                            group.add(inc, entry, key);
                            *pending = Some(group);
                        }
                    }
                }
                if !more {
                    finished.extend(state.pending.take());
                    state.done = true;
                }
                let mut page = Vec::new();
                for group in finished {
                    let Some((head_revision, snapshot_revision, head_key)) = group.head() else {
                        continue;
                    };
                    if head_revision - snapshot_revision.unwrap_or(0).min(head_revision) < threshold
                    {
                        continue;
                    }
                    let stream_id = match segment_id(&group.segment) {
                        Some(id) => id,
                        // A hashed id: the index entry holds the id itself.
                        None => match inner.get(operation, &scope, &head_key).await? {
                            Some(bytes) => {
                                String::from_utf8(bytes).map_err(|_| StoreError::Corrupt {
                                    scope: scope.clone(),
                                    commit_sequence: None,
                                    checkpoint: None,
                                    reason: format!("`{head_key}` does not hold a stream id"),
                                })?
                            }
                            None => continue,
                        },
                    };
                    page.push(StreamToSnapshot::new(
                        tenant.clone(),
                        stream_id,
                        head_revision,
                        snapshot_revision,
                    ));
                }
                Ok(Some((stream::iter(page.into_iter().map(Ok)), state)))
            }
        })
        .try_flatten()
        .boxed()
    }
}

/// The index entries of one stream.
struct Group {
    segment: String,
    inc: u64,
    head: Option<(u64, String)>,
    snapshot: Option<u64>,
}

impl Group {
    fn new(segment: String) -> Self {
        Self {
            segment,
            inc: 0,
            head: None,
            snapshot: None,
        }
    }

    fn add(&mut self, inc: u64, entry: HeadKey, key: String) {
        if inc > self.inc {
            // A later incarnation: what the earlier ones said no longer holds.
            *self = Self {
                segment: std::mem::take(&mut self.segment),
                inc,
                head: None,
                snapshot: None,
            };
        } else if inc < self.inc {
            return;
        }
        match entry {
            HeadKey::Revision(revision) => {
                if self.head.as_ref().is_none_or(|(r, _)| revision > *r) {
                    self.head = Some((revision, key));
                }
            }
            HeadKey::Snapshot(revision) => {
                self.snapshot = Some(self.snapshot.map_or(revision, |r| r.max(revision)));
            }
            HeadKey::Deleted => {}
        }
    }

    /// The head revision, the newest snapshot's revision and the head's index key: `None` for
    /// a stream deleted and not written since.
    fn head(&self) -> Option<(u64, Option<u64>, String)> {
        let (revision, key) = self.head.clone()?;
        Some((revision, self.snapshot, key))
    }
}
