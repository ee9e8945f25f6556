//! The DynamoDB backend (feature `dynamodb`).
//!
//! The official AWS SDK (`aws-sdk-dynamodb`), one table per store, no secondary index: every
//! read is a strongly consistent `GetItem`, `Query` or `BatchGetItem`. `items.rs` has the
//! layout.
//!
//! **A commit is one `TransactWriteItems`**, all of it or nothing:
//!
//! 1. the stream's head, updated on condition that it is still the head the writer saw
//!    (optimistic concurrency on the commit sequence: of two writers of one sequence, one
//!    transaction fails its condition);
//! 2. the commit, and its commit id, each put on condition that the key is free (a duplicate
//!    commit id fails here, without a race);
//! 3. the log's counter, raised from `n` to `n + 1` on condition that it is `n`;
//! 4. the pointers `n + 1` in the log and in the tenant's log;
//! 5. the rest of a commit larger than one item.
//!
//! **The checkpoint order.** Checkpoint `n + 1` is written only by the transaction that moved
//! the counter from `n`, which commits after the one that wrote `n`: the log is dense and a
//! reader never meets a commit that a slower one with a lower checkpoint overtakes. The cost:
//! every commit of the store updates one item, so commits are ordered one at a time (DynamoDB
//! allows about 1,000 writes a second on one item, and a transaction writes each of its items
//! twice: expect a few hundred commits a second per table, and fewer under contention, where
//! transactions on the counter fail and are retried). A store keeps the counter's last value and
//! learns the current one from a failed condition, so a commit is one request; its own writers
//! take turns at the counter rather than race for it, so only writers of other processes meet
//! there.
//!
//! **Deletion** of a stream removes its head and writes its notice in one transaction, then
//! deletes its items in batches: a process that dies in between leaves items that a second
//! `delete_stream` removes. Truncation and purges delete in batches too.

mod checkpoints;
mod commits;
mod config;
mod items;
mod log;
mod manage;
mod snapshots;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::backends::kit::aws::{load_config, sdk_error, AwsSettings};
use aws_sdk_dynamodb::types::{
    CancellationReason, DeleteRequest, KeysAndAttributes, TransactWriteItem, WriteRequest,
};
use aws_sdk_dynamodb::Client;

pub use checkpoints::{DynamoTransaction, MAX_READ_MODEL_ITEMS};
pub use config::DynamoConfig;

use self::items::{item_key, key_part, s, Fields, Item, COUNTER_SK, LOG_PK};
use crate::backends::kit::CommitSignal;
use crate::error::{Operation, Scope, StoreError};

/// An event store in a DynamoDB table. Cheap to clone; clones share the SDK client.
#[derive(Clone)]
pub struct DynamoStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.inner.config.table)
            .finish_non_exhaustive()
    }
}

struct Inner {
    client: Client,
    config: DynamoConfig,
    /// Raised after each commit and deletion made through this store.
    signal: CommitSignal,
    /// The log counter's value when this store last saw it: the next commit expects it.
    counter: AtomicU64,
    /// Requests sent to DynamoDB (each once, however often the SDK retried it).
    requests: AtomicU64,
    /// Taken by a commit or deletion while it moves the log's counter. The counter lets one
    /// transaction at a time through, so this store's writers queue here (in order) instead of
    /// racing for it and failing; only writers of other processes still meet at the counter.
    counter_turn: tokio::sync::Mutex<()>,
}

/// Table names DynamoDB accepts.
fn validate_table(name: &str) -> Result<(), StoreError> {
    let ok = (3..=255).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::Configuration(format!(
            "DynamoDB table name `{name}` is not allowed: use 3 to 255 ASCII letters, digits, `_`, `-` or `.`"
        )))
    }
}

impl DynamoStore {
    /// Builds the SDK client as `config` says and checks that the service answers, so a wrong
    /// endpoint or credentials fail here. Call
    /// [`PersistenceManagement::initialize`](crate::PersistenceManagement::initialize) before
    /// first use.
    pub async fn connect(config: DynamoConfig) -> Result<Self, StoreError> {
        validate_table(&config.table)?;
        let sdk_config = load_config(AwsSettings {
            region: config.region.as_deref(),
            fallback_region: None,
            endpoint: config.endpoint.as_deref(),
            credentials: config
                .credentials
                .as_ref()
                .map(|(key, secret)| (key.as_str(), secret.as_str())),
            connect_timeout: config.connect_timeout,
            operation_timeout: config.operation_timeout,
            max_attempts: config.max_attempts,
            region_hint: "DynamoConfig::region",
        })
        .await?;
        let store = Self {
            inner: Arc::new(Inner {
                client: Client::new(&sdk_config),
                config,
                signal: CommitSignal::default(),
                counter: AtomicU64::new(0),
                requests: AtomicU64::new(0),
                counter_turn: tokio::sync::Mutex::new(()),
            }),
        };
        let inner = &store.inner;
        let timeout = inner.config.connect_timeout;
        tokio::time::timeout(timeout, inner.client.list_tables().limit(1).send())
            .await
            .map_err(|_| StoreError::Timeout {
                operation: Operation::Connect,
                scope: Scope::Store,
                after: timeout,
            })?
            .map_err(|error| sdk_error(Operation::Connect, &Scope::Store, timeout, error))?;
        Ok(store)
    }

    /// The SDK client, for work of the application's own in the same account.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.inner.config.table
    }

    /// How many requests this store (and its clones) has sent to DynamoDB: each operation
    /// once, however often the SDK retried it. A commit under 400 KB is one request.
    pub fn requests_sent(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }
}

/// A cancelled transaction: why each of its items failed, in order (code `None`: it did not).
/// A condition failed, or the transaction met another on one of its items.
struct Cancelled(Vec<CancellationReason>);

impl Cancelled {
    fn reasons(&self) -> &[CancellationReason] {
        &self.0
    }

    /// Whether item `index`'s condition failed.
    fn failed(&self, index: usize) -> bool {
        self.reasons()
            .get(index)
            .and_then(CancellationReason::code)
            .is_some_and(|code| code == "ConditionalCheckFailed")
    }

    /// Whether any item's condition from `index` on failed.
    fn failed_from(&self, index: usize) -> bool {
        (index..self.reasons().len()).any(|i| self.failed(i))
    }

    /// Whether the transaction only met another one and may simply be tried again.
    fn conflicted(&self) -> bool {
        self.reasons().iter().any(|reason| {
            matches!(
                reason.code(),
                Some("TransactionConflict") | Some("ThrottlingError")
            )
        })
    }

    /// The item returned with item `index`'s failed condition.
    fn item(&self, index: usize) -> Option<&Item> {
        self.reasons().get(index).and_then(CancellationReason::item)
    }

    fn describe(&self) -> String {
        self.reasons()
            .iter()
            .enumerate()
            .filter_map(|(index, reason)| match reason.code() {
                None | Some("None") => None,
                Some(code) => Some(format!(
                    "item {index}: {code}{}",
                    reason
                        .message()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default()
                )),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// How many times a transaction that met another is tried again.
const TRANSACTION_TRIES: usize = 100;

impl Inner {
    fn table(&self) -> &str {
        &self.config.table
    }

    /// Runs `work` under the operation timeout, its SDK error mapped.
    async fn call<T, E, R>(
        &self,
        operation: Operation,
        scope: &Scope,
        work: impl Future<Output = Result<T, SdkError<E, R>>>,
    ) -> Result<T, StoreError>
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        self.try_call(operation, scope, work)
            .await?
            .map_err(|error| self.sdk_error(operation, scope, error))
    }

    /// Runs `work` under the operation timeout; the SDK's result is the caller's to judge (a
    /// failed condition is an answer, not a failure).
    async fn try_call<T, E, R>(
        &self,
        operation: Operation,
        scope: &Scope,
        work: impl Future<Output = Result<T, SdkError<E, R>>>,
    ) -> Result<Result<T, SdkError<E, R>>, StoreError> {
        let after = self.config.operation_timeout;
        self.requests.fetch_add(1, Ordering::Relaxed);
        tokio::time::timeout(after, work)
            .await
            .map_err(|_| StoreError::Timeout {
                operation,
                scope: scope.clone(),
                after,
            })
    }

    fn sdk_error<E, R>(
        &self,
        operation: Operation,
        scope: &Scope,
        error: SdkError<E, R>,
    ) -> StoreError
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        sdk_error(operation, scope, self.config.operation_timeout, error)
    }

    /// Whether a conditional write was made: `false` when its condition failed, an error for
    /// any other failure.
    fn written<T, E, R>(
        &self,
        operation: Operation,
        scope: &Scope,
        result: Result<T, SdkError<E, R>>,
    ) -> Result<bool, StoreError>
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        match result {
            Ok(_) => Ok(true),
            Err(error) if error.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(error) => Err(self.sdk_error(operation, scope, error)),
        }
    }

    /// One item, read strongly consistent.
    async fn get_item(
        &self,
        operation: Operation,
        scope: &Scope,
        pk: &str,
        sk: &str,
    ) -> Result<Option<Item>, StoreError> {
        let output = self
            .call(
                operation,
                scope,
                self.client
                    .get_item()
                    .table_name(self.table())
                    .set_key(Some(item_key(pk, sk)))
                    .consistent_read(true)
                    .send(),
            )
            .await?;
        Ok(output.item)
    }

    /// One page of a partition's items whose sort keys lie in `from..=to`, strongly consistent,
    /// and the key to go on from when more may follow.
    #[allow(clippy::too_many_arguments)]
    async fn query(
        &self,
        operation: Operation,
        scope: &Scope,
        pk: &str,
        from: &str,
        to: &str,
        forward: bool,
        limit: Option<usize>,
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let request = self
            .client
            .query()
            .table_name(self.table())
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :from AND :to")
            .expression_attribute_names("#pk", "pk")
            .expression_attribute_names("#sk", "sk")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":from", s(from))
            .expression_attribute_values(":to", s(to))
            .consistent_read(true)
            .scan_index_forward(forward)
            .set_limit(limit.map(|limit| i32::try_from(limit).unwrap_or(i32::MAX)))
            .set_exclusive_start_key(start);
        let output = self.call(operation, scope, request.send()).await?;
        Ok((output.items.unwrap_or_default(), output.last_evaluated_key))
    }

    /// Every item of a partition whose sort key lies in `from..=to`, in order.
    async fn query_all(
        &self,
        operation: Operation,
        scope: &Scope,
        pk: &str,
        from: &str,
        to: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let (items, next) = self
                .query(operation, scope, pk, from, to, true, None, start)
                .await?;
            all.extend(items);
            match next {
                Some(next) => start = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// The items at `keys`, read strongly consistent, by `(pk, sk)`; a key with no item is
    /// absent from the answer.
    async fn batch_get(
        &self,
        operation: Operation,
        scope: &Scope,
        keys: Vec<Item>,
    ) -> Result<HashMap<(String, String), Item>, StoreError> {
        let mut found = HashMap::with_capacity(keys.len());
        for batch in keys.chunks(100) {
            let mut pending = batch.to_vec();
            let mut rounds = 0u32;
            while !pending.is_empty() {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| unbuilt(operation, e))?;
                let output = self
                    .call(
                        operation,
                        scope,
                        self.client
                            .batch_get_item()
                            .request_items(self.table(), request)
                            .send(),
                    )
                    .await?;
                for item in output
                    .responses
                    .and_then(|mut r| r.remove(self.table()))
                    .unwrap_or_default()
                {
                    let key = (key_part(&item, "pk"), key_part(&item, "sk"));
                    found.insert(key, item);
                }
                pending = output
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(self.table()))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                rounds += 1;
                if !pending.is_empty() {
                    throttled(rounds).await;
                }
            }
        }
        Ok(found)
    }

    /// Deletes the items at `keys`, 25 a request; deleting a missing item is no error.
    async fn batch_delete(
        &self,
        operation: Operation,
        scope: &Scope,
        mut keys: Vec<Item>,
    ) -> Result<(), StoreError> {
        // A request may not name one key twice.
        let mut seen = std::collections::HashSet::new();
        keys.retain(|key| seen.insert((key_part(key, "pk"), key_part(key, "sk"))));
        for batch in keys.chunks(25) {
            let mut pending = batch
                .iter()
                .map(|key| {
                    DeleteRequest::builder()
                        .set_key(Some(key.clone()))
                        .build()
                        .map(|delete| WriteRequest::builder().delete_request(delete).build())
                        .map_err(|e| unbuilt(operation, e))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut rounds = 0u32;
            while !pending.is_empty() {
                let output = self
                    .call(
                        operation,
                        scope,
                        self.client
                            .batch_write_item()
                            .request_items(self.table(), pending)
                            .send(),
                    )
                    .await?;
                pending = output
                    .unprocessed_items
                    .and_then(|mut u| u.remove(self.table()))
                    .unwrap_or_default();
                rounds += 1;
                if !pending.is_empty() {
                    throttled(rounds).await;
                }
            }
        }
        Ok(())
    }

    /// Sends one transaction. `Err(Cancelled)` when a condition failed or it met another.
    async fn transact(
        &self,
        operation: Operation,
        scope: &Scope,
        items: Vec<TransactWriteItem>,
    ) -> Result<Result<(), Cancelled>, StoreError> {
        let sent = self
            .try_call(
                operation,
                scope,
                self.client
                    .transact_write_items()
                    .set_transact_items(Some(items))
                    .send(),
            )
            .await?;
        match sent {
            Ok(_) => Ok(Ok(())),
            Err(error) => match error.as_service_error() {
                Some(
                    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(
                        cancelled,
                    ),
                ) => Ok(Err(Cancelled(cancelled.cancellation_reasons().to_vec()))),
                Some(
                    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionInProgressException(_),
                ) => Ok(Err(Cancelled(vec![CancellationReason::builder()
                    .code("TransactionConflict")
                    .build()]))),
                _ => Err(self.sdk_error(operation, scope, error)),
            },
        }
    }

    /// The log counter's current value, read strongly consistent.
    async fn read_counter(&self, operation: Operation, scope: &Scope) -> Result<u64, StoreError> {
        let item = self
            .get_item(operation, scope, LOG_PK, COUNTER_SK)
            .await?
            .ok_or_else(|| not_initialized(self.table()))?;
        counter_value(&item, scope)
    }

    /// After a transaction whose counter condition failed: takes in the counter's current
    /// value, from the failure when it carries the item, else read. Called with the counter's
    /// turn held, so no other writer of this store moves the value meanwhile.
    async fn counter_after(
        &self,
        cancelled: &Cancelled,
        index: usize,
        operation: Operation,
        scope: &Scope,
    ) -> Result<(), StoreError> {
        let value = match cancelled.item(index) {
            Some(item) => counter_value(item, scope)?,
            None => self.read_counter(operation, scope).await?,
        };
        // What the table says, also when lower (the table was dropped and made again).
        self.counter.store(value, Ordering::Relaxed);
        Ok(())
    }
}

/// Items a batch request left unprocessed (throttled): back off before sending them again, as
/// the SDK does with a throttled request.
async fn throttled(rounds: u32) {
    tokio::time::sleep(Duration::from_millis(10 << rounds.min(6))).await;
}

/// A request aett built without a field the SDK requires: a bug in aett, reported as a storage
/// error of the operation rather than a panic.
fn unbuilt(operation: Operation, error: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::storage(operation, Scope::Store, error)
}

/// The value of the log counter's item.
fn counter_value(item: &Item, scope: &Scope) -> Result<u64, StoreError> {
    let fields = Fields::new(item, scope);
    let value = fields.i64("n")?;
    u64::try_from(value).map_err(|_| fields.corrupt(format!("log counter {value}")))
}

/// A short pause before a transaction that met another is tried again: random, so writers of
/// several processes do not meet again in step, and longer as the tries add up.
async fn pause(tried: usize) {
    let random = u64::from(uuid::Uuid::new_v4().as_bytes()[0]);
    let micros = (random * 4 + 100) * (tried.min(16) as u64 + 1);
    tokio::time::sleep(Duration::from_micros(micros)).await;
}

/// The table holds no log counter: `initialize` has not run.
fn not_initialized(table: &str) -> StoreError {
    StoreError::Configuration(format!(
        "DynamoDB table `{table}` is not an initialised aett store (no log counter): call initialize first"
    ))
}
