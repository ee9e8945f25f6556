//! Snapshots in their stream's partition, and the stream heads that say which streams need one.

use async_trait::async_trait;
use futures::stream::{self, StreamExt, TryStreamExt};

use super::commits::put;
use super::items::{
    b, group_parts, head_sk, item_key, joined, n, part_sk, s, sk_number, snapshot_sk, split,
    stream_pk, tenant_pk, with_parts, Fields, Item, HEADS_END, MAX_COMMIT_BYTES,
};
use super::{DynamoStore, Inner};
use crate::backends::kit::sql::{decode_snapshot, encode_snapshot_headers, replay_snapshot};
use crate::error::{Operation, Scope, StoreError};
use crate::model::Snapshot;
use crate::store::{ReplaySnapshot, SnapshotStore, StreamToSnapshot, StreamsToSnapshot};

impl Inner {
    /// The newest snapshot at or below `max_revision`: its main item and parts.
    async fn newest_snapshot(
        &self,
        scope: &Scope,
        tenant_id: &str,
        stream_id: &str,
        max_revision: u64,
    ) -> Result<Option<(Item, Vec<Item>)>, StoreError> {
        let pk = stream_pk(tenant_id, stream_id);
        let (found, _) = self
            .query(
                Operation::GetSnapshot,
                scope,
                &pk,
                &snapshot_sk(0),
                &with_parts(&snapshot_sk(max_revision)),
                false,
                Some(1),
                None,
            )
            .await?;
        let Some(first) = found.into_iter().next() else {
            return Ok(None);
        };
        let sk = super::items::sk_of(&first).unwrap_or_default();
        let Some((revision, is_part)) = sk_number(sk) else {
            return Err(Fields::new(&first, scope).corrupt(format!("snapshot key `{sk}`")));
        };
        if !is_part && Fields::new(&first, scope).parts()? == 1 {
            return Ok(Some((first, Vec::new())));
        }
        // Read backwards, the newest snapshot's parts come first: read it forwards, whole.
        let main = snapshot_sk(revision);
        let items = self
            .query_all(
                Operation::GetSnapshot,
                scope,
                &pk,
                &main,
                &with_parts(&main),
            )
            .await?;
        Ok(group_parts(items).into_iter().next())
    }
}

#[async_trait]
impl SnapshotStore for DynamoStore {
    async fn get_snapshot(
        &self,
        tenant_id: &str,
        stream_id: &str,
        max_revision: u64,
    ) -> Result<Option<Snapshot>, StoreError> {
        let scope = Scope::stream(tenant_id, stream_id);
        let Some((main, parts)) = self
            .inner
            .newest_snapshot(&scope, tenant_id, stream_id, max_revision)
            .await?
        else {
            return Ok(None);
        };
        let fields = Fields::new(&main, &scope);
        decode_snapshot(
            tenant_id.to_owned(),
            stream_id.to_owned(),
            fields.i64("stream_revision")?,
            fields.i64("commit_sequence")?,
            joined(&main, &parts, "payload", &scope)?,
            fields.bytes("headers")?.to_vec(),
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
        let Some((main, parts)) = self
            .inner
            .newest_snapshot(&scope, tenant_id, stream_id, max_revision)
            .await?
        else {
            return Ok(None);
        };
        let fields = Fields::new(&main, &scope);
        replay_snapshot(
            &scope,
            fields.i64("stream_revision")?,
            fields.i64("commit_sequence")?,
            joined(&main, &parts, "payload", &scope)?,
            fields.bytes("headers")?,
        )
        .map(Some)
    }

    async fn add_snapshot(&self, snapshot: Snapshot) -> Result<(), StoreError> {
        let inner = &self.inner;
        let operation = Operation::AddSnapshot;
        let scope = Scope::stream(&snapshot.tenant_id, &snapshot.stream_id);
        let headers = encode_snapshot_headers(&snapshot)?;
        let payload = snapshot.payload.get().as_bytes().to_vec();
        let ids = snapshot.tenant_id.len() + snapshot.stream_id.len();
        if headers.len() + payload.len() > MAX_COMMIT_BYTES
            || headers.len() + ids > super::items::PIECE_BYTES
        {
            return Err(StoreError::storage(
                operation,
                scope,
                format!(
                    "the snapshot's memento and headers take {} bytes; a DynamoDB snapshot holds at most {MAX_COMMIT_BYTES}, its headers at most {} beside its ids",
                    headers.len() + payload.len(),
                    super::items::PIECE_BYTES
                ),
            ));
        }
        let pk = stream_pk(&snapshot.tenant_id, &snapshot.stream_id);
        let sk = snapshot_sk(snapshot.stream_revision);
        let (first, rest) = split(payload, headers.len() + ids);
        let mut main = item_key(&pk, &sk);
        main.insert("tenant_id".into(), s(&snapshot.tenant_id));
        main.insert("stream_id".into(), s(&snapshot.stream_id));
        main.insert("stream_revision".into(), n(snapshot.stream_revision));
        main.insert("commit_sequence".into(), n(snapshot.commit_sequence));
        main.insert("headers".into(), b(headers));
        main.insert("payload".into(), b(first));
        main.insert("parts".into(), n(rest.len() + 1));
        if rest.is_empty() {
            inner
                .call(
                    operation,
                    &scope,
                    inner
                        .client
                        .put_item()
                        .table_name(inner.table())
                        .set_item(Some(main))
                        .send(),
                )
                .await?;
        } else {
            let mut items = vec![put(inner.table(), main, false)?];
            for (index, piece) in rest.into_iter().enumerate() {
                let mut part = item_key(&pk, part_sk(&sk, index + 1));
                part.insert("payload".into(), b(piece));
                items.push(put(inner.table(), part, false)?);
            }
            if let Err(cancelled) = inner.transact(operation, &scope, items).await? {
                return Err(StoreError::storage(
                    operation,
                    scope,
                    format!(
                        "the snapshot's transaction was cancelled: {}",
                        cancelled.describe()
                    ),
                ));
            }
        }
        // The head says which snapshot is newest; a stream with only snapshots gets one too, so
        // a purge finds it.
        let moved = inner
            .try_call(
                operation,
                &scope,
                inner
                    .client
                    .update_item()
                    .table_name(inner.table())
                    .set_key(Some(item_key(
                        tenant_pk(&snapshot.tenant_id),
                        head_sk(&snapshot.stream_id),
                    )))
                    .update_expression("SET #snap = :rev, #stream = :stream")
                    .condition_expression("attribute_not_exists(#snap) OR #snap < :rev")
                    .expression_attribute_names("#snap", "snapshot_revision")
                    .expression_attribute_names("#stream", "stream_id")
                    .expression_attribute_values(":rev", n(snapshot.stream_revision))
                    .expression_attribute_values(":stream", s(&snapshot.stream_id))
                    .send(),
            )
            .await?;
        // Not moved: a newer snapshot is already the head's.
        inner.written(operation, &scope, moved)?;
        Ok(())
    }

    fn streams_to_snapshot(&self, tenant_id: &str, threshold: u64) -> StreamsToSnapshot {
        let inner = self.inner.clone();
        let tenant = tenant_id.to_owned();
        let scope = Scope::tenant(tenant_id);
        let pk = tenant_pk(tenant_id);
        // Pages of heads, read on from where the last one ended, until none follow.
        let pages = stream::try_unfold(Some(None), move |start: Option<Option<Item>>| {
            let (inner, tenant, scope, pk) =
                (inner.clone(), tenant.clone(), scope.clone(), pk.clone());
            async move {
                let Some(start) = start else {
                    return Ok(None);
                };
                let (heads, next) = inner
                    .query(
                        Operation::StreamsToSnapshot,
                        &scope,
                        &pk,
                        "g",
                        HEADS_END,
                        true,
                        Some(crate::backends::kit::PAGE_SIZE),
                        start,
                    )
                    .await?;
                let mut due = Vec::new();
                for head in &heads {
                    let fields = Fields::new(head, &scope);
                    let revision = fields.optional_i64("head_revision")?.unwrap_or(0);
                    if revision <= 0 {
                        continue;
                    }
                    let snapshot = fields.optional_i64("snapshot_revision")?;
                    let stream = StreamToSnapshot::new(
                        tenant.clone(),
                        fields.str("stream_id")?,
                        u64::try_from(revision).unwrap_or_default(),
                        snapshot.and_then(|s| u64::try_from(s).ok()),
                    );
                    if stream.revisions_behind() >= threshold {
                        due.push(Ok(stream));
                    }
                }
                Ok::<_, StoreError>(Some((stream::iter(due), next.map(Some))))
            }
        });
        pages.try_flatten().boxed()
    }
}
