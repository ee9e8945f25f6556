//! Streams: reading one by revision or time, and committing to it in one transaction.

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use chrono::{DateTime, SubsecRound, Utc};
use futures::stream::{BoxStream, TryStreamExt};
use futures::FutureExt;

use super::items::{
    commit_sk, group_parts, head_sk, id_sk, item_key, joined, n, part_sk, pointer_item, raw_commit,
    s, stream_pk, tenant_pk, with_parts, CommitItems, Fields, Item, COUNTER_SK, LOG_PK,
};
use super::{pause, unbuilt, DynamoStore, Inner, TRANSACTION_TRIES};
use crate::backends::kit::sql::{replay_commit, why_refused, RawCommit, Refused};
use crate::backends::kit::{
    paged, resolve_taken_sequence, stamp_to_micros, Page, PageItem, Resume,
};
use crate::error::{Operation, Scope, StoreError};
use crate::model::{Commit, CommitAttempt};
use crate::store::{CommitStore, CommitStream, ReplayStream};

/// Where a read of a stream ends, besides its end.
#[derive(Clone, Copy)]
enum Until {
    /// At the first commit that begins after this revision.
    Revision(u64),
    /// Commits stamped after these microseconds are passed over.
    Time(i64),
}

/// The sort key after every commit's.
const COMMITS_END: &str = "c~";

impl Inner {
    /// Adds to `parts` the parts of `main` a page cut off.
    pub(super) async fn complete_parts(
        &self,
        operation: Operation,
        scope: &Scope,
        pk: &str,
        main: &Item,
        parts: &mut Vec<Item>,
    ) -> Result<(), StoreError> {
        let expected = Fields::new(main, scope).parts()?;
        if parts.len() + 1 >= expected {
            return Ok(());
        }
        let sk = super::items::sk_of(main).unwrap_or_default().to_owned();
        *parts = self
            .query_all(operation, scope, pk, &part_sk(&sk, 1), &with_parts(&sk))
            .await?;
        Ok(())
    }
}

impl DynamoStore {
    /// The commits of a stream from the one holding `min_revision`, a page at a time, each
    /// decoded by `decode`.
    fn stream_read<T: PageItem>(
        &self,
        operation: Operation,
        tenant: &str,
        stream: &str,
        min_revision: u64,
        until: Until,
        decode: fn(&Item, &[Item], &Scope) -> Result<T, StoreError>,
    ) -> BoxStream<'static, Result<T, StoreError>> {
        let inner = self.inner.clone();
        let scope = Scope::stream(tenant, stream);
        let traced = scope.clone();
        let pk = stream_pk(tenant, stream);
        let pages = paged(move |last: Option<Resume>, limit| {
            let (inner, scope, pk) = (inner.clone(), scope.clone(), pk.clone());
            async move {
                let mut after = match last {
                    Some(last) => last.stream_revision,
                    None => min_revision.max(1) - 1,
                };
                loop {
                    let (items, next) = inner
                        .query(
                            operation,
                            &scope,
                            &pk,
                            &commit_sk(after.saturating_add(1)),
                            COMMITS_END,
                            true,
                            Some(limit),
                            None,
                        )
                        .await?;
                    let more = next.is_some();
                    let mut kept = Vec::new();
                    let mut stopped = false;
                    for (main, mut parts) in group_parts(items) {
                        let fields = Fields::new(&main, &scope);
                        let judged = fields.i64("stream_revision").and_then(|revision| {
                            after = u64::try_from(revision).unwrap_or(after);
                            Ok(match until {
                                Until::Revision(max) => {
                                    let first = revision - fields.i64("items")? + 1;
                                    if first > i64::try_from(max).unwrap_or(i64::MAX) {
                                        None
                                    } else {
                                        Some(true)
                                    }
                                }
                                Until::Time(max) => Some(fields.i64("stamp_micros")? <= max),
                            })
                        });
                        let decoded = match judged {
                            Ok(None) => {
                                stopped = true;
                                break;
                            }
                            Ok(Some(false)) => continue,
                            Ok(Some(true)) => match inner
                                .complete_parts(operation, &scope, &pk, &main, &mut parts)
                                .await
                            {
                                Ok(()) => decode(&main, &parts, &scope),
                                Err(error) => Err(error),
                            },
                            Err(error) => Err(error),
                        };
                        match decoded {
                            Ok(item) => kept.push(item),
                            Err(error) => {
                                return Ok(Page {
                                    items: kept,
                                    more: false,
                                    error: Some(error),
                                })
                            }
                        }
                    }
                    let more = more && !stopped;
                    if kept.is_empty() && more {
                        continue;
                    }
                    return Ok(Page {
                        items: kept,
                        more,
                        error: None,
                    });
                }
            }
            .boxed()
        });
        crate::trace::read(operation, &traced, pages)
    }
}

fn decode_commit(main: &Item, parts: &[Item], scope: &Scope) -> Result<Commit, StoreError> {
    raw_commit(main, parts, scope).and_then(RawCommit::decode)
}

fn decode_replay(
    main: &Item,
    parts: &[Item],
    scope: &Scope,
) -> Result<crate::store::ReplayCommit, StoreError> {
    let fields = Fields::new(main, scope);
    replay_commit(
        scope,
        fields.i64("commit_sequence")?,
        fields.i64("stream_revision")?,
        fields.i64("items")?,
        joined(main, parts, "events", scope)?,
        fields.optional_str("stream_type")?.map(str::to_owned),
    )
}

#[async_trait]
impl CommitStore for DynamoStore {
    fn get(
        &self,
        tenant_id: &str,
        stream_id: &str,
        min_revision: u64,
        max_revision: u64,
    ) -> CommitStream {
        self.stream_read(
            Operation::ReadStream,
            tenant_id,
            stream_id,
            min_revision,
            Until::Revision(max_revision),
            decode_commit,
        )
    }

    fn get_to(&self, tenant_id: &str, stream_id: &str, max_time: DateTime<Utc>) -> CommitStream {
        self.stream_read(
            Operation::ReadStreamToTime,
            tenant_id,
            stream_id,
            0,
            Until::Time(stamp_to_micros(max_time)),
            decode_commit,
        )
    }

    fn get_for_replay(
        &self,
        tenant_id: &str,
        stream_id: &str,
        min_revision: u64,
        max_revision: u64,
    ) -> ReplayStream {
        self.stream_read(
            Operation::ReadStream,
            tenant_id,
            stream_id,
            min_revision,
            Until::Revision(max_revision),
            decode_replay,
        )
    }

    async fn commit(&self, attempt: CommitAttempt) -> Result<Commit, StoreError> {
        let span = crate::trace::commit_span(&attempt);
        let commit = crate::trace::in_span(span, self.commit_now(attempt)).await?;
        self.inner.signal.raise();
        Ok(commit)
    }
}

/// The positions of a commit transaction's items.
const HEAD: usize = 0;
const COMMIT: usize = 1;
const ID: usize = 2;
const COUNTER: usize = 3;
/// The parts of a large commit come after the two log pointers.
const PARTS: usize = 6;

/// A conditional put into the store's table.
pub(super) fn put(table: &str, item: Item, if_new: bool) -> Result<TransactWriteItem, StoreError> {
    let mut put = Put::builder().table_name(table).set_item(Some(item));
    if if_new {
        put = put
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", "pk");
    }
    let put = put.build().map_err(|e| unbuilt(Operation::Commit, e))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The update that moves the log's counter from `expected` to `expected + 1`.
pub(super) fn counter_update(table: &str, expected: u64) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .set_key(Some(item_key(LOG_PK, COUNTER_SK)))
        .update_expression("SET #n = :next")
        .condition_expression("#n = :expected")
        .expression_attribute_names("#n", "n")
        .expression_attribute_values(":next", n(expected + 1))
        .expression_attribute_values(":expected", n(expected))
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
        .build()
        .map_err(|e| unbuilt(Operation::Commit, e))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// The update that moves a stream's head to the attempt, on condition that it is where the
/// attempt found it.
fn head_update(table: &str, attempt: &CommitAttempt) -> Result<TransactWriteItem, StoreError> {
    let mut expression = "SET #stream = :stream, #hs = :seq, #hr = :rev".to_owned();
    let mut update = Update::builder()
        .table_name(table)
        .set_key(Some(item_key(
            tenant_pk(&attempt.tenant_id),
            head_sk(&attempt.stream_id),
        )))
        .expression_attribute_names("#stream", "stream_id")
        .expression_attribute_names("#hs", "head_sequence")
        .expression_attribute_values(":stream", s(&attempt.stream_id))
        .expression_attribute_values(":seq", n(attempt.commit_sequence))
        .expression_attribute_values(":rev", n(attempt.stream_revision));
    if let Some(stream_type) = &attempt.stream_type {
        expression.push_str(", #ty = :ty");
        update = update
            .expression_attribute_names("#ty", "stream_type")
            .expression_attribute_values(":ty", s(stream_type));
    }
    update = update
        .update_expression(expression)
        .expression_attribute_names("#hr", "head_revision");
    update = update
        .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
    update = if attempt.commit_sequence <= 1 {
        update.condition_expression("attribute_not_exists(#hs)")
    } else {
        update
            .condition_expression("#hs = :ps AND #hr = :pr")
            .expression_attribute_values(":ps", n(attempt.commit_sequence - 1))
            .expression_attribute_values(":pr", n(attempt.first_revision() - 1))
    };
    let update = update.build().map_err(|e| unbuilt(Operation::Commit, e))?;
    Ok(TransactWriteItem::builder().update(update).build())
}

impl DynamoStore {
    async fn commit_now(&self, mut attempt: CommitAttempt) -> Result<Commit, StoreError> {
        attempt.validate()?;
        attempt.commit_stamp = attempt.commit_stamp.trunc_subsecs(6);
        let inner = &self.inner;
        let table = inner.table();
        let scope = Scope::stream(&attempt.tenant_id, &attempt.stream_id);
        let encoded = CommitItems::new(&attempt)?;
        let pk = stream_pk(&attempt.tenant_id, &attempt.stream_id);
        let mut id = item_key(&pk, id_sk(attempt.commit_id));
        id.insert("commit_sequence".into(), n(attempt.commit_sequence));
        let head = head_update(table, &attempt)?;
        let micros = stamp_to_micros(attempt.commit_stamp);
        let tenant = tenant_pk(&attempt.tenant_id);
        let mut turn = Some(inner.counter_turn.lock().await);
        for tried in 0..TRANSACTION_TRIES {
            let expected = inner.counter.load(Ordering::Relaxed);
            let checkpoint = expected + 1;
            let mut main = encoded.main.clone();
            main.insert("checkpoint".into(), n(checkpoint));
            let pointer = |pk: &str| {
                pointer_item(
                    pk,
                    checkpoint,
                    &attempt.tenant_id,
                    &attempt.stream_id,
                    attempt.stream_type.as_deref(),
                    Some(&encoded.sk),
                    micros,
                )
            };
            let mut items = vec![
                head.clone(),
                put(table, main, true)?,
                put(table, id.clone(), true)?,
                counter_update(table, expected)?,
                put(table, pointer(LOG_PK), false)?,
                put(table, pointer(&tenant), false)?,
            ];
            for part in &encoded.parts {
                items.push(put(table, part.clone(), true)?);
            }
            let cancelled = match inner.transact(Operation::Commit, &scope, items).await? {
                Ok(()) => {
                    inner.counter.fetch_max(checkpoint, Ordering::Relaxed);
                    return Ok(Commit::from_attempt(attempt, checkpoint));
                }
                Err(cancelled) => cancelled,
            };
            let refused = cancelled.failed(HEAD)
                || cancelled.failed(COMMIT)
                || cancelled.failed(ID)
                || cancelled.failed_from(PARTS);
            if refused {
                // The reads that say why need not hold up this store's other writers.
                turn.take();
            }
            // The commit id is taken: a duplicate.
            if cancelled.failed(ID) {
                return Err(why_refused(&attempt, true, (0, 0)).into_answer(&attempt));
            }
            // The stream's head moved: the failure carries the head as it is.
            if cancelled.failed(HEAD) {
                let head = match cancelled.item(HEAD) {
                    Some(item) => Some(Head::of(item, &scope)?),
                    None => None,
                };
                return Err(self.judge(&attempt, head).await);
            }
            // A key the commit needs is taken while its head is free (what a deletion cut
            // short leaves).
            if cancelled.failed(COMMIT) || cancelled.failed_from(PARTS) {
                return Err(self.refused(&attempt, &scope).await);
            }
            if cancelled.failed(COUNTER) {
                // Another commit took the checkpoint: expect the counter where it is now.
                inner
                    .counter_after(&cancelled, COUNTER, Operation::Commit, &scope)
                    .await?;
                pause(tried).await;
                continue;
            }
            if cancelled.conflicted() {
                pause(tried).await;
                continue;
            }
            return Err(StoreError::storage(
                Operation::Commit,
                scope,
                format!(
                    "the commit's transaction was cancelled: {}",
                    cancelled.describe()
                ),
            ));
        }
        Err(StoreError::storage(
            Operation::Commit,
            scope,
            format!("the commit's transaction met concurrent writers {TRANSACTION_TRIES} times"),
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
        let pk = stream_pk(&attempt.tenant_id, &attempt.stream_id);
        let id = inner
            .get_item(Operation::Commit, scope, &pk, &id_sk(attempt.commit_id))
            .await?;
        if id.is_some() {
            return Ok(why_refused(attempt, true, (0, 0)).into_answer(attempt));
        }
        let head = inner
            .head(
                Operation::Commit,
                scope,
                &attempt.tenant_id,
                &attempt.stream_id,
            )
            .await?;
        Ok(self.judge(attempt, head).await)
    }

    /// Why an attempt that is not a duplicate by its id's item did not go in, given the
    /// stream's head.
    async fn judge(&self, attempt: &CommitAttempt, head: Option<Head>) -> StoreError {
        let head = head.map_or((0, 0), |head| (head.sequence, head.revision));
        match why_refused(attempt, false, head) {
            Refused::SequenceTaken => {
                // The commits from the attempt's first revision on are the ones its writer
                // had not seen.
                let later: Result<Vec<Commit>, StoreError> = self
                    .get(
                        &attempt.tenant_id,
                        &attempt.stream_id,
                        attempt.first_revision(),
                        u64::MAX,
                    )
                    .try_collect()
                    .await;
                match later {
                    // A duplicate whose id's item the transaction did not report.
                    Ok(later) if later.iter().any(|c| c.commit_id == attempt.commit_id) => {
                        why_refused(attempt, true, (0, 0)).into_answer(attempt)
                    }
                    Ok(later) => {
                        resolve_taken_sequence(attempt, later, &self.inner.config.detector)
                    }
                    Err(error) => error,
                }
            }
            refused => refused.into_answer(attempt),
        }
    }
}

/// A stream's head as stored.
pub(super) struct Head {
    pub sequence: i64,
    pub revision: i64,
    pub snapshot_revision: Option<i64>,
    pub stream_type: Option<String>,
}

impl Inner {
    /// The stream's head, `None` when it has none.
    pub(super) async fn head(
        &self,
        operation: Operation,
        scope: &Scope,
        tenant: &str,
        stream: &str,
    ) -> Result<Option<Head>, StoreError> {
        match self
            .get_item(operation, scope, &tenant_pk(tenant), &head_sk(stream))
            .await?
        {
            Some(item) => Head::of(&item, scope).map(Some),
            None => Ok(None),
        }
    }
}

impl Head {
    /// The head a head item holds.
    pub(super) fn of(item: &Item, scope: &Scope) -> Result<Head, StoreError> {
        let fields = Fields::new(item, scope);
        Ok(Head {
            sequence: fields.optional_i64("head_sequence")?.unwrap_or(0),
            revision: fields.optional_i64("head_revision")?.unwrap_or(0),
            snapshot_revision: fields.optional_i64("snapshot_revision")?,
            stream_type: fields.optional_str("stream_type")?.map(str::to_owned),
        })
    }
}
