//! Setting a store up in its bucket, and removing data: a whole store, a tenant, a stream's
//! past, a stream.

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use chrono::Utc;
use futures::stream::{self, StreamExt, TryStreamExt};

use super::commits::{corrupt_object, PARALLEL_READS};
use super::objects::{holds_slot, Kind, Meta, Object};
use super::{status, Inner, S3Store};
use crate::backends::kit::stamp_to_micros;
use crate::error::{Operation, Scope, StoreError};
use crate::store::PersistenceManagement;

/// What the marker object holds.
const MARKER_TEXT: &[u8] = b"aett event store, layout 1\n";

/// How many times a deletion that met a new commit starts again.
const DELETE_TRIES: usize = 20;

impl Inner {
    /// Whether the store's marker is there: `Err` when the prefix holds objects that are not
    /// an aett store's.
    async fn owned(&self, operation: Operation) -> Result<bool, StoreError> {
        let scope = Scope::Store;
        match self.get(operation, &scope, &self.layout.marker()).await? {
            Some(text) if text == MARKER_TEXT => return Ok(true),
            Some(_) => return Err(self.foreign()),
            None => {}
        }
        let (found, _) = self
            .list(operation, &scope, self.layout.all(), None, 1)
            .await?;
        if found.is_empty() {
            Ok(false)
        } else {
            Err(self.foreign())
        }
    }

    fn foreign(&self) -> StoreError {
        StoreError::Configuration(format!(
            "the objects under `{}` in bucket `{}` are not an aett store (no `{}` marker): choose another bucket or prefix",
            self.layout.all(),
            self.bucket(),
            super::keys::MARKER
        ))
    }

    /// Every stored object of a stream's incarnation, read in order.
    async fn objects_of(
        &self,
        operation: Operation,
        scope: &Scope,
        keys: &super::keys::StreamKeys,
        inc: u64,
    ) -> Result<Vec<(u64, Object)>, StoreError> {
        let listed = self
            .list_all(operation, scope, &keys.commits(inc), None)
            .await?;
        let read: Vec<Result<Option<(u64, Object)>, StoreError>> = stream::iter(listed)
            .map(|key| async move {
                let Some((_, sequence)) = keys.parse_commit(&key) else {
                    return Ok(None);
                };
                match self.get(operation, scope, &key).await? {
                    None => Ok(None),
                    Some(bytes) => Object::parse(bytes)
                        .map(|object| Some((sequence, object)))
                        .map_err(|reason| corrupt_object(scope, sequence, reason)),
                }
            })
            .buffered(PARALLEL_READS)
            .collect()
            .await;
        read.into_iter().filter_map(Result::transpose).collect()
    }

    /// Replaces the objects at `keys` by `object`, and voids `slots`, several at a time.
    async fn overwrite(
        &self,
        operation: Operation,
        scope: &Scope,
        keys: Vec<String>,
        object: Vec<u8>,
        slots: Vec<u64>,
    ) -> Result<(), StoreError> {
        let void = Meta::marker(Kind::Void, 0).to_bytes();
        let writes = slots
            .into_iter()
            .map(|checkpoint| (self.layout.slot(checkpoint), void.clone()))
            .chain(keys.into_iter().map(|key| (key, object.clone())));
        stream::iter(writes)
            .map(|(key, bytes)| async move { self.put(operation, scope, &key, bytes).await })
            .buffer_unordered(PARALLEL_READS)
            .try_collect::<Vec<()>>()
            .await
            .map(drop)
    }
}

impl S3Store {
    /// What follows the `Deleted` object at `end` of incarnation `inc`: the next incarnation's
    /// first key, then tombstones at the deleted commits' keys (which stay taken), their slots
    /// voided, and their ids, snapshots and index entries removed. Running it again is harmless.
    async fn finish_deletion(
        &self,
        scope: &Scope,
        tenant_id: &str,
        stream_id: &str,
        inc: u64,
        end: u64,
        objects: &[(u64, Object)],
    ) -> Result<(), StoreError> {
        let inner = &self.inner;
        let operation = Operation::DeleteStream;
        let keys = inner.layout.stream(tenant_id, stream_id);
        // The stream now lives in the next incarnation; its first key says so.
        inner
            .put_new(
                operation,
                scope,
                &keys.commit(inc + 1, 0),
                Meta::marker(Kind::Begin, inc + 1).to_bytes(),
            )
            .await?;
        inner.remember_incarnation(tenant_id, stream_id, inc + 1);
        inner
            .heads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(tenant_id.to_owned(), stream_id.to_owned()));
        inner
            .put(
                operation,
                scope,
                &keys.head_deleted(inc + 1),
                stream_id.as_bytes().to_vec(),
            )
            .await?;
        let mut gone = Vec::new();
        let mut slots = Vec::new();
        for (sequence, object) in objects {
            if *sequence > 0 && *sequence < end && object.meta.kind != Kind::Gone {
                gone.push(keys.commit(inc, *sequence));
                if object.meta.kind == Kind::Commit {
                    slots.push(object.meta.checkpoint);
                }
            }
        }
        inner
            .overwrite(
                operation,
                scope,
                gone,
                Meta::marker(Kind::Gone, end).to_bytes(),
                slots,
            )
            .await?;
        for prefix in [keys.ids(inc), keys.snapshots(inc), keys.heads(inc)] {
            let listed = inner.list_all(operation, scope, &prefix, None).await?;
            inner.delete_keys(operation, scope, listed).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl PersistenceManagement for S3Store {
    async fn initialize(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        let operation = Operation::Initialize;
        let scope = Scope::Store;
        let found = inner
            .send(
                operation,
                &scope,
                inner.client.head_bucket().bucket(inner.bucket()).send(),
            )
            .await?;
        match found {
            Ok(_) => {}
            Err(error) if status(&error) == Some(404) => {
                let mut create = inner.client.create_bucket().bucket(inner.bucket());
                let region = inner
                    .client
                    .config()
                    .region()
                    .map(|r| r.as_ref().to_owned());
                if let Some(region) = region.filter(|r| r != "us-east-1") {
                    create = create.create_bucket_configuration(
                        CreateBucketConfiguration::builder()
                            .location_constraint(BucketLocationConstraint::from(region.as_str()))
                            .build(),
                    );
                }
                let created = inner.send(operation, &scope, create.send()).await?;
                match created {
                    Ok(_) => {}
                    // Made meanwhile by another process.
                    Err(error) if status(&error) == Some(409) => {}
                    Err(error) => return Err(inner.sdk_error(operation, &scope, error)),
                }
            }
            Err(error) => return Err(inner.sdk_error(operation, &scope, error)),
        }
        if !inner.owned(operation).await? {
            inner
                .put_new(
                    operation,
                    &scope,
                    &inner.layout.marker(),
                    MARKER_TEXT.to_vec(),
                )
                .await?;
        }
        Ok(())
    }

    async fn drop_all(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        let operation = Operation::Drop;
        let scope = Scope::Store;
        if !inner.owned(operation).await? {
            return Ok(());
        }
        let marker = inner.layout.marker();
        let keys: Vec<String> = inner
            .list_all(operation, &scope, inner.layout.all(), None)
            .await?
            .into_iter()
            .filter(|key| *key != marker)
            .collect();
        inner.delete_keys(operation, &scope, keys).await?;
        // The marker last: a drop cut short can be run again.
        inner.delete(operation, &scope, &marker).await?;
        inner.next_slot.store(1, Ordering::Relaxed);
        inner
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        inner
            .incarnations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        inner
            .heads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(())
    }

    async fn purge(&self, tenant_id: &str) -> Result<(), StoreError> {
        let inner = &self.inner;
        let operation = Operation::Purge;
        let scope = Scope::tenant(tenant_id);
        let [commits, ids, snapshots, heads] = inner.layout.tenant_prefixes(tenant_id);
        let commit_keys = inner.list_all(operation, &scope, &commits, None).await?;
        // The log's slots of the tenant's commits and deletions are voided (never removed: a
        // checkpoint is never handed out twice); their checkpoints are in the objects.
        let scope_ref = &scope;
        let slots: Vec<u64> = stream::iter(commit_keys.clone())
            .map(|key| async move {
                let scope = scope_ref;
                let object = inner.get(operation, scope, &key).await?;
                Ok::<_, StoreError>(object.and_then(|bytes| Object::parse(bytes).ok()).and_then(
                    |object| {
                        matches!(object.meta.kind, Kind::Commit | Kind::Deleted)
                            .then_some(object.meta.checkpoint)
                    },
                ))
            })
            .buffered(PARALLEL_READS)
            .try_filter_map(|slot| async move { Ok(slot) })
            .try_collect()
            .await?;
        inner
            .overwrite(operation, &scope, Vec::new(), Vec::new(), slots)
            .await?;
        inner.delete_keys(operation, &scope, commit_keys).await?;
        for prefix in [ids, snapshots, heads] {
            let keys = inner.list_all(operation, &scope, &prefix, None).await?;
            inner.delete_keys(operation, &scope, keys).await?;
        }
        inner
            .heads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(tenant, _), _| tenant != tenant_id);
        Ok(())
    }

    async fn truncate_stream(
        &self,
        tenant_id: &str,
        stream_id: &str,
        revision: u64,
    ) -> Result<(), StoreError> {
        let inner = &self.inner;
        let operation = Operation::TruncateStream;
        let scope = Scope::stream(tenant_id, stream_id);
        let keys = inner.layout.stream(tenant_id, stream_id);
        let inc = inner.incarnation(operation, tenant_id, stream_id).await?;
        let refused = || StoreError::TruncationRefused {
            tenant: tenant_id.to_owned(),
            stream: stream_id.to_owned(),
            revision,
        };
        // The newest snapshot comes first.
        let (newest, _) = inner
            .list(operation, &scope, &keys.snapshots(inc), None, 1)
            .await?;
        let covered = newest
            .first()
            .and_then(|key| keys.parse_snapshot(inc, key))
            .is_some_and(|(snapshot, _)| snapshot >= revision);
        if !covered {
            return Err(refused());
        }
        let commits: Vec<(u64, Meta)> = inner
            .objects_of(operation, &scope, &keys, inc)
            .await?
            .into_iter()
            .filter(|(_, object)| object.meta.kind == Kind::Commit)
            .map(|(sequence, object)| (sequence, object.meta))
            .collect();
        // The last commit always stays, so that the sequence goes on.
        let Some(((last, _), earlier)) = commits.split_last() else {
            return Ok(());
        };
        let cut: Vec<&(u64, Meta)> = earlier
            .iter()
            .filter(|(_, meta)| meta.revision < revision)
            .collect();
        let kept = commits
            .iter()
            .map(|(sequence, _)| *sequence)
            .find(|sequence| cut.iter().all(|(c, _)| c != sequence))
            .unwrap_or(*last);
        inner
            .overwrite(
                operation,
                &scope,
                cut.iter()
                    .map(|(sequence, _)| keys.commit(inc, *sequence))
                    .collect(),
                Meta::marker(Kind::Truncated, kept).to_bytes(),
                cut.iter().map(|(_, meta)| meta.checkpoint).collect(),
            )
            .await
    }

    async fn delete_stream(&self, tenant_id: &str, stream_id: &str) -> Result<(), StoreError> {
        let inner = &self.inner;
        let operation = Operation::DeleteStream;
        let scope = Scope::stream(tenant_id, stream_id);
        let keys = inner.layout.stream(tenant_id, stream_id);
        for _ in 0..DELETE_TRIES {
            let inc = inner.incarnation(operation, tenant_id, stream_id).await?;
            let objects = inner.objects_of(operation, &scope, &keys, inc).await?;
            // A deletion cut short (its process died after the `Deleted` object went in):
            // finish it, then look at the next incarnation.
            if let Some((end, _)) = objects
                .last()
                .filter(|(_, object)| object.meta.kind == Kind::Deleted)
            {
                self.finish_deletion(&scope, tenant_id, stream_id, inc, *end, &objects)
                    .await?;
                continue;
            }
            let Some((head, last)) = objects
                .iter()
                .rev()
                .find(|(_, object)| object.meta.kind == Kind::Commit)
            else {
                return Ok(());
            };
            let end = head + 1;
            let stream_type = last.meta.stream_type.clone();
            let stamp = stamp_to_micros(Utc::now());
            let deletion = |checkpoint| {
                Ok(Meta {
                    kind: Kind::Deleted,
                    tenant: tenant_id.to_owned(),
                    stream: stream_id.to_owned(),
                    inc,
                    seq: end,
                    checkpoint,
                    stamp,
                    stream_type: stream_type.clone(),
                    next: inc + 1,
                    ..Meta::marker(Kind::Deleted, inc + 1)
                }
                .to_bytes())
            };
            let (checkpoint, bytes) = self.claim_slot(&scope, deletion).await?;
            let key = keys.commit(inc, end);
            if !inner.put_new(operation, &scope, &key, bytes).await? {
                let ours = inner
                    .get(operation, &scope, &key)
                    .await?
                    .is_some_and(|bytes| holds_slot(&bytes, Kind::Deleted, checkpoint));
                if !ours {
                    // A commit came first: delete up to it.
                    self.void_slot(&scope, checkpoint).await?;
                    continue;
                }
            }
            let _ = inner
                .put(
                    operation,
                    &scope,
                    &inner.layout.decided(checkpoint),
                    Vec::new(),
                )
                .await;
            self.finish_deletion(&scope, tenant_id, stream_id, inc, end, &objects)
                .await?;
            self.inner.signal.raise();
            return Ok(());
        }
        Err(StoreError::storage(
            operation,
            scope,
            format!("new commits kept coming: the deletion was tried {DELETE_TRIES} times"),
        ))
    }
}
