//! Creating and dropping the table, purging a tenant, deleting and truncating a stream.

use std::sync::atomic::Ordering;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, Delete, KeySchemaElement, KeyType, ScalarAttributeType,
    TableDescription, TableStatus, TransactWriteItem,
};
use chrono::{SubsecRound, Utc};

use super::commits::{counter_update, put};
use super::items::{
    commit_sk, head_sk, id_sk, is_part, item_key, key_part, n, pointer_item, pointer_sk,
    snapshot_sk, stream_pk, tenant_pk, with_parts, Fields, Item, COUNTER_SK, HEADS_END, LOG_PK,
    MARKER_PK, MARKER_SK, SCHEMA_VERSION,
};
use super::{pause, unbuilt, DynamoStore, Inner, TRANSACTION_TRIES};
use crate::backends::kit::stamp_to_micros;
use crate::error::{Operation, Scope, StoreError};
use crate::store::PersistenceManagement;

/// Sort keys of every item of a partition lie between these.
const FIRST_SK: &str = "a";
const LAST_SK: &str = "~";

impl Inner {
    /// The table's description, `None` when there is no such table.
    async fn describe(&self, operation: Operation) -> Result<Option<TableDescription>, StoreError> {
        let described = self
            .try_call(
                operation,
                &Scope::Store,
                self.client.describe_table().table_name(self.table()).send(),
            )
            .await?;
        match described {
            Ok(output) => Ok(output.table),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(error) => Err(self.sdk_error(operation, &Scope::Store, error)),
        }
    }

    /// Waits until the table is active (`true`) or gone (`false`), as `active` asks.
    async fn wait_for_table(&self, operation: Operation, active: bool) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + self.config.operation_timeout * 4;
        loop {
            let table = self.describe(operation).await?;
            let done = match &table {
                None => !active,
                Some(table) => active && table.table_status() == Some(&TableStatus::Active),
            };
            if done {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(StoreError::Timeout {
                    operation,
                    scope: Scope::Store,
                    after: self.config.operation_timeout * 4,
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Refuses a table whose keys are not aett's (`pk` and `sk`, both strings).
    fn check_shape(&self, table: &TableDescription) -> Result<(), StoreError> {
        let key = |name: &str, kind: KeyType| {
            table
                .key_schema()
                .iter()
                .any(|k| k.attribute_name() == name && *k.key_type() == kind)
        };
        let string = |name: &str| {
            table.attribute_definitions().iter().any(|a| {
                a.attribute_name() == name && *a.attribute_type() == ScalarAttributeType::S
            })
        };
        if table.key_schema().len() == 2
            && key("pk", KeyType::Hash)
            && key("sk", KeyType::Range)
            && string("pk")
            && string("sk")
        {
            Ok(())
        } else {
            Err(StoreError::Configuration(format!(
                "DynamoDB table `{}` exists with another key schema than aett's (partition key `pk` and sort key `sk`, both strings); choose another table name",
                self.table()
            )))
        }
    }

    /// The schema version aett's marker records; `None` when the table has no marker.
    async fn marker_version(&self, operation: Operation) -> Result<Option<i64>, StoreError> {
        let scope = Scope::Store;
        match self
            .get_item(operation, &scope, MARKER_PK, MARKER_SK)
            .await?
        {
            Some(marker) => Ok(Some(Fields::new(&marker, &scope).i64("schema_version")?)),
            None => Ok(None),
        }
    }

    /// Refuses a table that holds items but not aett's marker, or a marker of another schema
    /// version: aett neither writes into nor drops what it did not create.
    async fn check_ownership(&self, operation: Operation) -> Result<(), StoreError> {
        let scope = Scope::Store;
        if let Some(version) = self.marker_version(operation).await? {
            if version != SCHEMA_VERSION {
                return Err(StoreError::Configuration(format!(
                    "DynamoDB table `{}` has schema version {version}; this aett reads version {SCHEMA_VERSION}",
                    self.table()
                )));
            }
            return Ok(());
        }
        let any = self
            .call(
                operation,
                &scope,
                self.client.scan().table_name(self.table()).limit(1).send(),
            )
            .await?;
        if any.items.is_some_and(|items| !items.is_empty()) {
            return Err(StoreError::Configuration(format!(
                "DynamoDB table `{}` holds items but is not an aett store (its marker item is missing); choose another table name",
                self.table()
            )));
        }
        Ok(())
    }

    /// Puts `item` unless its key is taken.
    async fn put_if_new(&self, operation: Operation, item: Item) -> Result<(), StoreError> {
        let put = self
            .try_call(
                operation,
                &Scope::Store,
                self.client
                    .put_item()
                    .table_name(self.table())
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(#pk)")
                    .expression_attribute_names("#pk", "pk")
                    .send(),
            )
            .await?;
        self.written(operation, &Scope::Store, put)?;
        Ok(())
    }

    /// The keys of `items` of the stream, with the log pointers and commit ids of its commits.
    fn keys_with_pointers(&self, tenant: &str, scope: &Scope, items: &[Item]) -> Vec<Item> {
        let mut keys = Vec::with_capacity(items.len() * 2);
        let tenant_pk = tenant_pk(tenant);
        for item in items {
            let (pk, sk) = (key_part(item, "pk"), key_part(item, "sk"));
            if sk.starts_with('c') && !is_part(item) {
                let fields = Fields::new(item, scope);
                if let Ok(checkpoint) = fields.i64("checkpoint") {
                    let checkpoint = u64::try_from(checkpoint).unwrap_or_default();
                    keys.push(item_key(LOG_PK, pointer_sk(checkpoint)));
                    keys.push(item_key(&tenant_pk, pointer_sk(checkpoint)));
                }
                if let Some(id) = fields
                    .bytes("commit_id")
                    .ok()
                    .and_then(|id| uuid::Uuid::from_slice(id).ok())
                {
                    keys.push(item_key(&pk, id_sk(id)));
                }
            }
            keys.push(item_key(pk, sk));
        }
        keys
    }
}

#[async_trait]
impl PersistenceManagement for DynamoStore {
    async fn schema_version(&self) -> Result<Option<u32>, StoreError> {
        let version = self.inner.marker_version(Operation::SchemaVersion).await?;
        Ok(version.and_then(|v| u32::try_from(v).ok()))
    }

    async fn initialize(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        let operation = Operation::Initialize;
        match inner.describe(operation).await? {
            Some(table) => inner.check_shape(&table)?,
            None => {
                let attribute = |name: &str| {
                    AttributeDefinition::builder()
                        .attribute_name(name)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                };
                let key = |name: &str, kind| {
                    KeySchemaElement::builder()
                        .attribute_name(name)
                        .key_type(kind)
                        .build()
                };
                let build = |e| unbuilt(operation, e);
                let created = inner
                    .try_call(
                        operation,
                        &Scope::Store,
                        inner
                            .client
                            .create_table()
                            .table_name(inner.table())
                            .billing_mode(BillingMode::PayPerRequest)
                            .attribute_definitions(attribute("pk").map_err(build)?)
                            .attribute_definitions(attribute("sk").map_err(build)?)
                            .key_schema(key("pk", KeyType::Hash).map_err(build)?)
                            .key_schema(key("sk", KeyType::Range).map_err(build)?)
                            .send(),
                    )
                    .await?;
                match created {
                    Ok(_) => {}
                    // Created meanwhile by a concurrent initialisation.
                    Err(error)
                        if error
                            .as_service_error()
                            .is_some_and(|e| e.is_resource_in_use_exception()) => {}
                    Err(error) => return Err(inner.sdk_error(operation, &Scope::Store, error)),
                }
            }
        }
        inner.wait_for_table(operation, true).await?;
        inner.check_ownership(operation).await?;
        let mut marker = item_key(MARKER_PK, MARKER_SK);
        marker.insert("schema_version".into(), n(SCHEMA_VERSION));
        inner.put_if_new(operation, marker).await?;
        let mut counter = item_key(LOG_PK, COUNTER_SK);
        counter.insert("n".into(), n(0));
        inner.put_if_new(operation, counter).await
    }

    async fn drop_all(&self) -> Result<(), StoreError> {
        let inner = &self.inner;
        let operation = Operation::Drop;
        if inner.describe(operation).await?.is_none() {
            return Ok(());
        }
        // Refuses, dropping nothing, when the table is not aett's.
        inner.check_ownership(operation).await?;
        let deleted = inner
            .try_call(
                operation,
                &Scope::Store,
                inner.client.delete_table().table_name(inner.table()).send(),
            )
            .await?;
        match deleted {
            Ok(_) => {}
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(error) => return Err(inner.sdk_error(operation, &Scope::Store, error)),
        }
        inner.wait_for_table(operation, false).await?;
        inner.counter.store(0, Ordering::Relaxed);
        Ok(())
    }

    async fn purge(&self, tenant_id: &str) -> Result<(), StoreError> {
        let inner = &self.inner;
        let operation = Operation::Purge;
        let scope = Scope::tenant(tenant_id);
        let tenant = tenant_pk(tenant_id);
        let listed = inner
            .query_all(operation, &scope, &tenant, FIRST_SK, LAST_SK)
            .await?;
        // Streams first, then the log's pointers, then the heads: a purge cut short finds what
        // is left through the heads when run again.
        for head in listed
            .iter()
            .filter(|item| key_part(item, "sk").as_str() < HEADS_END)
        {
            let stream = Fields::new(head, &scope).str("stream_id")?;
            let stream_scope = Scope::stream(tenant_id, stream);
            let pk = stream_pk(tenant_id, stream);
            let items = inner
                .query_all(operation, &stream_scope, &pk, FIRST_SK, LAST_SK)
                .await?;
            let keys = items
                .iter()
                .map(|item| item_key(key_part(item, "pk"), key_part(item, "sk")))
                .collect();
            inner.batch_delete(operation, &stream_scope, keys).await?;
        }
        let mut keys = Vec::with_capacity(listed.len() * 2);
        for item in listed
            .iter()
            .filter(|item| key_part(item, "sk").as_str() > HEADS_END)
        {
            keys.push(item_key(LOG_PK, key_part(item, "sk")));
        }
        inner.batch_delete(operation, &scope, keys).await?;
        let keys = listed
            .iter()
            .map(|item| item_key(&tenant, key_part(item, "sk")))
            .collect();
        inner.batch_delete(operation, &scope, keys).await
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
        let pk = stream_pk(tenant_id, stream_id);
        let (covering, _) = inner
            .query(
                operation,
                &scope,
                &pk,
                &snapshot_sk(revision),
                "s~",
                true,
                Some(1),
                None,
            )
            .await?;
        if covering.is_empty() {
            return Err(StoreError::TruncationRefused {
                tenant: tenant_id.to_owned(),
                stream: stream_id.to_owned(),
                revision,
            });
        }
        if revision <= 1 {
            return Ok(());
        }
        let Some(head) = inner.head(operation, &scope, tenant_id, stream_id).await? else {
            return Ok(());
        };
        let before = inner
            .query_all(
                operation,
                &scope,
                &pk,
                &commit_sk(0),
                &with_parts(&commit_sk(revision - 1)),
            )
            .await?;
        // The stream's last commit stays, whatever its revision: it is the stream's head.
        let mut doomed = Vec::with_capacity(before.len());
        let mut last_kept = false;
        for item in before {
            if !is_part(&item) {
                let sequence = Fields::new(&item, &scope).i64("commit_sequence")?;
                last_kept = sequence >= head.sequence;
            }
            if !last_kept {
                doomed.push(item);
            }
        }
        let keys = inner.keys_with_pointers(tenant_id, &scope, &doomed);
        inner.batch_delete(operation, &scope, keys).await
    }

    async fn delete_stream(&self, tenant_id: &str, stream_id: &str) -> Result<(), StoreError> {
        let inner = &self.inner;
        let operation = Operation::DeleteStream;
        let scope = Scope::stream(tenant_id, stream_id);
        let pk = stream_pk(tenant_id, stream_id);
        let tenant = tenant_pk(tenant_id);
        let table = inner.table();
        let mut tries = 0;
        let turn = inner.counter_turn.lock().await;
        let items = loop {
            tries += 1;
            if tries > TRANSACTION_TRIES {
                return Err(StoreError::storage(
                    operation,
                    scope,
                    format!("the deletion met concurrent writers {TRANSACTION_TRIES} times"),
                ));
            }
            // What the stream holds now; the transaction below holds only while its head is
            // unchanged, so nothing is added to it in between.
            let head = inner.head(operation, &scope, tenant_id, stream_id).await?;
            let items = inner
                .query_all(operation, &scope, &pk, FIRST_SK, LAST_SK)
                .await?;
            let Some(head) = head else {
                // No head: nothing, or what a deletion cut short left, to be swept.
                break items;
            };
            // On condition that the head is as read: its sequence and its snapshot.
            let mut delete = Delete::builder()
                .table_name(table)
                .set_key(Some(item_key(&tenant, head_sk(stream_id))))
                .expression_attribute_names("#hs", "head_sequence")
                .expression_attribute_names("#snap", "snapshot_revision");
            let mut condition = if head.sequence > 0 {
                delete = delete.expression_attribute_values(":seq", n(head.sequence));
                "#hs = :seq".to_owned()
            } else {
                "attribute_not_exists(#hs)".to_owned()
            };
            match head.snapshot_revision {
                Some(snapshot) => {
                    delete = delete.expression_attribute_values(":snap", n(snapshot));
                    condition.push_str(" AND #snap = :snap");
                }
                None => condition.push_str(" AND attribute_not_exists(#snap)"),
            }
            let delete = delete.condition_expression(condition);
            let delete = delete.build().map_err(|e| unbuilt(operation, e))?;
            let expected = inner.counter.load(Ordering::Relaxed);
            let checkpoint = expected + 1;
            let micros = stamp_to_micros(Utc::now().trunc_subsecs(6));
            let notice = |pk: &str| {
                pointer_item(
                    pk,
                    checkpoint,
                    tenant_id,
                    stream_id,
                    head.stream_type.as_deref(),
                    None,
                    micros,
                )
            };
            let transaction = vec![
                TransactWriteItem::builder().delete(delete).build(),
                counter_update(table, expected)?,
                put(table, notice(LOG_PK), false)?,
                put(table, notice(&tenant), false)?,
            ];
            match inner.transact(operation, &scope, transaction).await? {
                Ok(()) => {
                    inner.counter.fetch_max(checkpoint, Ordering::Relaxed);
                    break items;
                }
                Err(cancelled) if cancelled.failed(0) => continue,
                Err(cancelled) if cancelled.failed(1) => {
                    inner
                        .counter_after(&cancelled, 1, operation, &scope)
                        .await?;
                    pause(tries).await;
                }
                Err(cancelled) if cancelled.conflicted() => pause(tries).await,
                Err(cancelled) => {
                    return Err(StoreError::storage(
                        operation,
                        scope,
                        format!(
                            "the deletion's transaction was cancelled: {}",
                            cancelled.describe()
                        ),
                    ))
                }
            }
        };
        drop(turn);
        let keys = inner.keys_with_pointers(tenant_id, &scope, &items);
        inner.batch_delete(operation, &scope, keys).await?;
        inner.signal.raise();
        Ok(())
    }
}
