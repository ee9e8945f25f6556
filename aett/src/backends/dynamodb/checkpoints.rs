//! Projection checkpoints and leases, one item per projection, and the transaction a
//! projection run exactly once writes its read model in.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use chrono::{DateTime, Utc};

use super::items::{b, item_key, n, projection_pk, s, Fields, Item, PROJECTION_SK};
use super::{unbuilt, DynamoStore, Inner};
use crate::backends::kit::sql::{encode_skipped, position};
use crate::backends::kit::{stamp_from_micros, stamp_to_micros};
use crate::error::{Operation, Scope, StoreError};
use crate::store::{
    CheckpointStore, CheckpointTransaction, Lease, ProjectionPosition, SkippedCommit,
};

/// The most items a read model may write beside the checkpoint in one exactly-once batch:
/// `TransactWriteItems` takes 100.
pub const MAX_READ_MODEL_ITEMS: usize = 99;

fn position_of(item: &Item, scope: &Scope) -> Result<ProjectionPosition, StoreError> {
    let fields = Fields::new(item, scope);
    let skipped = match item.get("skipped") {
        None => Vec::new(),
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|entry| match entry {
                AttributeValue::S(json) => Ok(json.as_str()),
                _ => Err(fields.corrupt("a skipped commit is not a string".to_owned())),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(fields.corrupt("skipped commits are not a list".to_owned())),
    };
    position(
        scope,
        fields.i64("checkpoint")?,
        &format!("[{}]", skipped.join(",")),
    )
}

fn owner(lease: &Lease) -> AttributeValue {
    b(lease.owner.as_bytes().to_vec())
}

fn micros_until(lease: &Lease) -> i64 {
    stamp_to_micros(Utc::now()).saturating_add(lease.ttl_micros())
}

/// The expression, names and values that save `checkpoint` (and `skipped`) and extend the
/// lease, on condition that `lease` still holds it.
struct Save {
    expression: String,
    values: Vec<(&'static str, AttributeValue)>,
}

impl Save {
    fn new(
        lease: &Lease,
        checkpoint: u64,
        skipped: Option<&SkippedCommit>,
    ) -> Result<Self, StoreError> {
        let mut expression = "SET #cp = :cp, #until = :until".to_owned();
        let mut values = vec![
            (":cp", n(checkpoint)),
            (":until", n(micros_until(lease))),
            (":me", owner(lease)),
        ];
        if let Some(json) = encode_skipped(lease, skipped)? {
            expression.push_str(", #skipped = list_append(#skipped, :skipped)");
            values.push((":skipped", AttributeValue::L(vec![s(json)])));
        }
        Ok(Self { expression, values })
    }

    fn names(&self) -> Vec<(&'static str, &'static str)> {
        let mut names = vec![
            ("#cp", "checkpoint"),
            ("#until", "lease_until"),
            ("#owner", "owner"),
        ];
        if self.expression.contains("#skipped") {
            names.push(("#skipped", "skipped"));
        }
        names
    }

    fn update_item(self, request: UpdateItemFluentBuilder) -> UpdateItemFluentBuilder {
        let mut request = request
            .update_expression(&self.expression)
            .condition_expression("#owner = :me");
        for (name, attribute) in self.names() {
            request = request.expression_attribute_names(name, attribute);
        }
        for (name, value) in self.values {
            request = request.expression_attribute_values(name, value);
        }
        request
    }

    fn transact_item(self, table: &str, key: Item) -> Result<TransactWriteItem, StoreError> {
        let mut update = Update::builder()
            .table_name(table)
            .set_key(Some(key))
            .update_expression(&self.expression)
            .condition_expression("#owner = :me");
        for (name, attribute) in self.names() {
            update = update.expression_attribute_names(name, attribute);
        }
        for (name, value) in self.values {
            update = update.expression_attribute_values(name, value);
        }
        let update = update
            .build()
            .map_err(|e| unbuilt(Operation::SaveCheckpoint, e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

fn projection_key(projection: &str) -> Item {
    item_key(projection_pk(projection), PROJECTION_SK)
}

#[async_trait]
impl CheckpointStore for DynamoStore {
    async fn load_checkpoint(
        &self,
        projection: &str,
    ) -> Result<Option<ProjectionPosition>, StoreError> {
        let scope = Scope::projection(projection);
        let found = self
            .inner
            .get_item(
                Operation::LoadCheckpoint,
                &scope,
                &projection_pk(projection),
                PROJECTION_SK,
            )
            .await?;
        found.map(|item| position_of(&item, &scope)).transpose()
    }

    async fn acquire_lease(&self, lease: &Lease) -> Result<ProjectionPosition, StoreError> {
        let scope = Scope::projection(&lease.projection);
        let inner = &self.inner;
        let now = stamp_to_micros(Utc::now());
        let taken = inner
            .try_call(
                Operation::AcquireLease,
                &scope,
                inner
                    .client
                    .update_item()
                    .table_name(inner.table())
                    .set_key(Some(projection_key(&lease.projection)))
                    .update_expression(
                        "SET #owner = :me, #until = :until, #name = :name, #cp = if_not_exists(#cp, :zero), #skipped = if_not_exists(#skipped, :empty)",
                    )
                    .condition_expression(
                        "attribute_not_exists(#owner) OR #owner = :me OR #until <= :now",
                    )
                    .expression_attribute_names("#owner", "owner")
                    .expression_attribute_names("#until", "lease_until")
                    .expression_attribute_names("#name", "projection")
                    .expression_attribute_names("#cp", "checkpoint")
                    .expression_attribute_names("#skipped", "skipped")
                    .expression_attribute_values(":me", owner(lease))
                    .expression_attribute_values(":until", n(now.saturating_add(lease.ttl_micros())))
                    .expression_attribute_values(":name", s(&lease.projection))
                    .expression_attribute_values(":zero", n(0))
                    .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
                    .expression_attribute_values(":now", n(now))
                    .return_values(ReturnValue::AllNew)
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .send(),
            )
            .await?;
        match taken {
            Ok(output) => position_of(&output.attributes.unwrap_or_default(), &scope),
            Err(error) => {
                let held = match error.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(held)) => held.clone(),
                    _ => return Err(inner.sdk_error(Operation::AcquireLease, &scope, error)),
                };
                let until = held
                    .item()
                    .and_then(|item| Fields::new(item, &scope).i64("lease_until").ok())
                    .and_then(stamp_from_micros)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC);
                Err(StoreError::LeaseHeld {
                    projection: lease.projection.clone(),
                    until,
                })
            }
        }
    }

    async fn save_checkpoint(
        &self,
        lease: &Lease,
        checkpoint: u64,
        skipped: Option<SkippedCommit>,
    ) -> Result<(), StoreError> {
        let scope = Scope::projection(&lease.projection);
        let inner = &self.inner;
        let save = Save::new(lease, checkpoint, skipped.as_ref())?;
        let request = inner
            .client
            .update_item()
            .table_name(inner.table())
            .set_key(Some(projection_key(&lease.projection)));
        let saved = inner
            .try_call(
                Operation::SaveCheckpoint,
                &scope,
                save.update_item(request).send(),
            )
            .await?;
        if inner.written(Operation::SaveCheckpoint, &scope, saved)? {
            Ok(())
        } else {
            Err(StoreError::LeaseLost {
                projection: lease.projection.clone(),
            })
        }
    }

    async fn release_lease(&self, lease: &Lease) -> Result<(), StoreError> {
        let scope = Scope::projection(&lease.projection);
        let inner = &self.inner;
        let released = inner
            .try_call(
                Operation::ReleaseLease,
                &scope,
                inner
                    .client
                    .update_item()
                    .table_name(inner.table())
                    .set_key(Some(projection_key(&lease.projection)))
                    .update_expression("REMOVE #owner, #until")
                    .condition_expression("#owner = :me")
                    .expression_attribute_names("#owner", "owner")
                    .expression_attribute_names("#until", "lease_until")
                    .expression_attribute_values(":me", owner(lease))
                    .send(),
            )
            .await?;
        // A lease that is not ours (any more) has nothing to release.
        inner.written(Operation::ReleaseLease, &scope, released)?;
        Ok(())
    }

    async fn begin_checkpoint_transaction(
        &self,
        lease: &Lease,
    ) -> Result<Box<dyn CheckpointTransaction>, StoreError> {
        Ok(Box::new(DynamoTransaction {
            inner: self.inner.clone(),
            lease: lease.clone(),
            items: Mutex::new(Vec::new()),
        }))
    }
}

/// The writes a projection run exactly once makes to its read model, sent with its checkpoint
/// in one `TransactWriteItems`: all of them take effect, or none and the checkpoint stays.
///
/// A handler reaches it through its context
/// (`context.transaction::<DynamoTransaction>()`) and [`push`](Self::push)es its writes, to any
/// table of the account. A batch holds at most [`MAX_READ_MODEL_ITEMS`] writes (DynamoDB's
/// limit of 100 items per transaction, one of them the checkpoint), each to another item; run
/// the projection with a batch size that keeps within it.
pub struct DynamoTransaction {
    inner: Arc<Inner>,
    lease: Lease,
    items: Mutex<Vec<TransactWriteItem>>,
}

impl std::fmt::Debug for DynamoTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoTransaction")
            .field("projection", &self.lease.projection)
            .finish_non_exhaustive()
    }
}

impl DynamoTransaction {
    /// Adds a write (a put, update, delete or condition check) to the batch.
    pub fn push(&self, item: TransactWriteItem) {
        self.items
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(item);
    }

    /// The store's SDK client, for reads of the read model.
    pub fn client(&self) -> &aws_sdk_dynamodb::Client {
        &self.inner.client
    }

    /// The store's table (a read model's table may be named after it).
    pub fn table(&self) -> &str {
        self.inner.table()
    }
}

#[async_trait]
impl CheckpointTransaction for DynamoTransaction {
    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }

    /// A transaction dropped without committing writes nothing.
    async fn commit(
        self: Box<Self>,
        checkpoint: u64,
        skipped: Option<SkippedCommit>,
    ) -> Result<(), StoreError> {
        let scope = Scope::projection(&self.lease.projection);
        let operation = Operation::SaveCheckpoint;
        let mut items = std::mem::take(
            &mut *self
                .items
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if items.len() > MAX_READ_MODEL_ITEMS {
            return Err(StoreError::storage(
                operation,
                scope,
                format!(
                    "the read model's batch holds {} writes; one DynamoDB transaction takes {MAX_READ_MODEL_ITEMS} beside the checkpoint: run the projection with a smaller batch size",
                    items.len()
                ),
            ));
        }
        let save = Save::new(&self.lease, checkpoint, skipped.as_ref())?;
        items.push(save.transact_item(self.inner.table(), projection_key(&self.lease.projection))?);
        let last = items.len() - 1;
        match self.inner.transact(operation, &scope, items).await? {
            Ok(()) => Ok(()),
            Err(cancelled) if cancelled.failed(last) => Err(StoreError::LeaseLost {
                projection: self.lease.projection.clone(),
            }),
            Err(cancelled) => Err(StoreError::storage(
                operation,
                scope,
                format!(
                    "the read model's transaction was cancelled: {}",
                    cancelled.describe()
                ),
            )),
        }
    }
}
