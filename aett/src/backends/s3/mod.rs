//! The S3 backend (feature `s3`).
//!
//! The official AWS SDK (`aws-sdk-s3`), one bucket and key prefix per store, and nothing else:
//! no table, no lock service. It needs a store with strongly consistent reads and listings and
//! conditional creation (`PutObject` with `If-None-Match: *`): AWS S3 (since 2024), MinIO, Ceph,
//! Cloudflare R2. `keys.rs` has the key layout, `objects.rs` what the objects hold.
//!
//! **Why no two writers can both win.** Every decision is the creation of one key with
//! `If-None-Match: *`, which S3 lets exactly one writer make (the others get `412`):
//!
//! - *Optimistic concurrency*: a commit is the object at `(tenant, stream, incarnation,
//!   sequence)`; two writers of one sequence race for one key. A writer first reads the commit
//!   before its own (so a sequence cannot skip ahead and the revision must follow it).
//! - *Duplicate commit ids*: each commit's id is indexed under the stream, and a writer makes
//!   sure the id of the commit before its own is indexed (writing it if its writer did not get
//!   that far) before it looks its own id up. So when commit `n` goes in, the ids of commits
//!   `1..n-1` were all indexed before its writer looked: a second commit with a stored id can
//!   only race for the same key, and loses.
//! - *The log*: checkpoint `n` is the key `log/n`, created only by a writer that has seen
//!   `log/n-1`, so the log is dense and ordered. A writer claims its slot (writing the whole
//!   commit into it) *before* it races for the stream key, and a slot holds a commit exactly
//!   when the stream key holds that commit with that checkpoint. A reader that meets a slot
//!   whose commit has not reached the stream key yet finishes it (creates the stream key from
//!   the slot, the same race) and so decides it: once a reader has passed checkpoint `n`, no
//!   commit can appear below it. A slot whose commit lost is voided.
//! - *Deletion*: a stream is deleted by a `Deleted` object at the key after its last commit,
//!   raced like a commit (with its log slot, the notice): once it is there no commit can follow
//!   in that incarnation, and the stream starts again in the next one. The deleted commits'
//!   keys are overwritten with small tombstones rather than removed, so no late writer or reader
//!   can create them again; their slots are voided.
//!
//! What it costs: a commit is about 8 requests (read the previous commit, index its id, look
//! its own id up, claim a slot, create the commit, then index the id and head and mark the slot
//! decided), a read of `n` commits is a listing and `n` reads. Reads of one tenant's log, and of
//! a tenant's commits up to a time, read the whole log and keep the tenant's. A store has no
//! transactions across objects: projections run at least once, not exactly once.

mod cache;
mod checkpoints;
mod commits;
mod config;
mod keys;
mod log;
mod manage;
mod objects;
mod snapshots;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use aws_sdk_s3::Client;

use crate::backends::kit::aws::{load_config, sdk_error, AwsSettings};

pub use config::S3Config;

use self::keys::Layout;
use crate::backends::kit::CommitSignal;
use crate::error::{Operation, Scope, StoreError};

/// An event store in an S3 bucket, under a key prefix. Cheap to clone; clones share the SDK
/// client.
#[derive(Clone)]
pub struct S3Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store")
            .field("bucket", &self.inner.config.bucket)
            .field("prefix", &self.inner.config.prefix)
            .finish_non_exhaustive()
    }
}

struct Inner {
    client: Client,
    config: S3Config,
    layout: Layout,
    /// Raised after each commit and deletion made through this store.
    signal: CommitSignal,
    /// Requests sent to S3 (each once, however often the SDK retried it).
    requests: AtomicU64,
    /// The log slot this store tries next: one past the last it saw taken.
    next_slot: AtomicU64,
    /// Taken while claiming a slot, so this store's writers queue for the log's end instead of
    /// racing each other for it.
    slot_turn: tokio::sync::Mutex<()>,
    /// The incarnation each stream was last seen in (a stream starts a new one when deleted).
    incarnations: Mutex<HashMap<(String, String), u64>>,
    /// The last commit this store wrote or read of each stream: the next commit need not read
    /// it again (nor index its id, when this store did).
    heads: Mutex<HashMap<(String, String), Known>>,
    /// Objects read and written, served again while a listing shows them unchanged.
    cache: Mutex<cache::ObjectCache>,
}

/// A stream's last commit as this store last saw it.
#[derive(Debug, Clone)]
struct Known {
    inc: u64,
    head: objects::Meta,
    /// Whether its commit id is indexed.
    indexed: bool,
}

/// Bucket names S3 accepts (the common rules; a provider may be stricter).
fn validate_bucket(name: &str) -> Result<(), StoreError> {
    let ok = (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.'))
        && !name.starts_with(['-', '.'])
        && !name.ends_with(['-', '.']);
    if ok {
        Ok(())
    } else {
        Err(StoreError::Configuration(format!(
            "S3 bucket name `{name}` is not allowed: use 3 to 63 lowercase letters, digits, `-` or `.`"
        )))
    }
}

impl S3Store {
    /// Builds the SDK client as `config` says and checks that the service answers, so a wrong
    /// endpoint or credentials fail here. Call
    /// [`PersistenceManagement::initialize`](crate::PersistenceManagement::initialize) before
    /// first use (it creates the bucket if there is none).
    pub async fn connect(config: S3Config) -> Result<Self, StoreError> {
        validate_bucket(&config.bucket)?;
        if config.prefix.len() > 256 {
            return Err(StoreError::Configuration(
                "an S3 store's key prefix takes at most 256 bytes".to_owned(),
            ));
        }
        let sdk_config = load_config(AwsSettings {
            region: config.region.as_deref(),
            // S3-compatible servers take any region; spare their users the setting.
            fallback_region: config.endpoint.is_some().then_some("us-east-1"),
            endpoint: config.endpoint.as_deref(),
            credentials: config
                .credentials
                .as_ref()
                .map(|(key, secret)| (key.as_str(), secret.as_str())),
            connect_timeout: config.connect_timeout,
            operation_timeout: config.operation_timeout,
            max_attempts: config.max_attempts,
            region_hint: "S3Config::region",
        })
        .await?;
        let s3_config = aws_sdk_s3::config::Builder::from(&sdk_config)
            .force_path_style(config.path_style)
            // Checksums only where S3 requires them (DeleteObjects): S3-compatible stores differ
            // in what else they accept, and TLS already guards the bytes.
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .response_checksum_validation(
                aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
            )
            .build();
        let layout = Layout::new(&config.prefix);
        let cache_bytes = config.cache_bytes;
        let store = Self {
            inner: Arc::new(Inner {
                client: Client::from_conf(s3_config),
                config,
                layout,
                signal: CommitSignal::default(),
                requests: AtomicU64::new(0),
                next_slot: AtomicU64::new(1),
                slot_turn: tokio::sync::Mutex::new(()),
                incarnations: Mutex::new(HashMap::new()),
                heads: Mutex::new(HashMap::new()),
                cache: Mutex::new(cache::ObjectCache::new(cache_bytes)),
            }),
        };
        let inner = &store.inner;
        let timeout = inner.config.connect_timeout;
        let answer = tokio::time::timeout(
            timeout,
            inner
                .client
                .head_bucket()
                .bucket(&inner.config.bucket)
                .send(),
        )
        .await
        .map_err(|_| StoreError::Timeout {
            operation: Operation::Connect,
            scope: Scope::Store,
            after: timeout,
        })?;
        match answer {
            // A missing bucket is `initialize`'s to create.
            Err(error) if status(&error) == Some(404) => Ok(store),
            Err(error) => Err(sdk_error(Operation::Connect, &Scope::Store, timeout, error)),
            Ok(_) => Ok(store),
        }
    }

    /// The SDK client, for work of the application's own in the same account.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.inner.config.bucket
    }

    /// The key prefix everything of this store lies under (empty: the whole bucket).
    pub fn prefix(&self) -> &str {
        self.inner.layout.all()
    }

    /// How many requests this store (and its clones) has sent to S3: each operation once,
    /// however often the SDK retried it.
    pub fn requests_sent(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }
}

/// The HTTP status S3 answered with, if it answered.
fn status<E, R>(error: &SdkError<E, R>) -> Option<u16>
where
    R: HttpStatus,
{
    error.raw_response().map(HttpStatus::status_code)
}

/// The status of an SDK response.
trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_sdk_s3::config::http::HttpResponse {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

type Response = aws_sdk_s3::config::http::HttpResponse;

/// An object read, or `None` when there was none.
type Fetched = Result<Option<Vec<u8>>, StoreError>;

/// How many times a conditional write that met another in progress (`409`) is tried again.
const CONFLICT_TRIES: usize = 20;

impl Inner {
    fn bucket(&self) -> &str {
        &self.config.bucket
    }

    /// Runs `work` under the operation timeout, counted as one request.
    async fn send<T, E>(
        &self,
        operation: Operation,
        scope: &Scope,
        work: impl Future<Output = Result<T, SdkError<E, Response>>>,
    ) -> Result<Result<T, SdkError<E, Response>>, StoreError> {
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

    fn sdk_error<E>(
        &self,
        operation: Operation,
        scope: &Scope,
        error: SdkError<E, Response>,
    ) -> StoreError
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    {
        sdk_error(operation, scope, self.config.operation_timeout, error)
    }

    /// The object at `key`, or `None` when there is none.
    async fn get(
        &self,
        operation: Operation,
        scope: &Scope,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let found = self.get_tagged(operation, scope, key).await?;
        Ok(found.map(|(bytes, etag)| {
            if let Some(etag) = etag {
                self.remember_object(key, &etag, &bytes);
            }
            bytes
        }))
    }

    /// The object at `key` that a listing showed with `etag`: from the cache when it holds
    /// that version.
    async fn get_listed(
        &self,
        operation: Operation,
        scope: &Scope,
        key: &str,
        etag: Option<&str>,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(etag) = etag {
            let cached = self
                .cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(key, etag);
            if let Some(bytes) = cached {
                return Ok(Some(bytes.as_ref().clone()));
            }
        }
        self.get(operation, scope, key).await
    }

    fn remember_object(&self, key: &str, etag: &str, bytes: &[u8]) {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).put(
            key,
            etag,
            Arc::new(bytes.to_vec()),
        );
    }

    /// The object at `key` and its ETag, or `None` when there is none.
    async fn get_tagged(
        &self,
        operation: Operation,
        scope: &Scope,
        key: &str,
    ) -> Result<Option<(Vec<u8>, Option<String>)>, StoreError> {
        let answer = self
            .send(
                operation,
                scope,
                self.client
                    .get_object()
                    .bucket(self.bucket())
                    .key(key)
                    .send(),
            )
            .await?;
        let output = match answer {
            Ok(output) => output,
            Err(error) if status(&error) == Some(404) => return Ok(None),
            Err(error) => return Err(self.sdk_error(operation, scope, error)),
        };
        let etag = output.e_tag().map(str::to_owned);
        let bytes = tokio::time::timeout(self.config.operation_timeout, output.body.collect())
            .await
            .map_err(|_| StoreError::Timeout {
                operation,
                scope: scope.clone(),
                after: self.config.operation_timeout,
            })?
            .map_err(|error| StoreError::storage(operation, scope.clone(), error))?;
        Ok(Some((bytes.into_bytes().to_vec(), etag)))
    }

    /// Creates `key` with `bytes` unless it exists: `false` when it did (S3's `412`).
    async fn put_new(
        &self,
        operation: Operation,
        scope: &Scope,
        key: &str,
        bytes: Vec<u8>,
    ) -> Result<bool, StoreError> {
        for tried in 0..CONFLICT_TRIES {
            let answer = self
                .send(
                    operation,
                    scope,
                    self.client
                        .put_object()
                        .bucket(self.bucket())
                        .key(key)
                        .if_none_match("*")
                        .body(ByteStream::from(bytes.clone()))
                        .send(),
                )
                .await?;
            match answer {
                Ok(output) => {
                    if let Some(etag) = output.e_tag() {
                        self.remember_object(key, etag, &bytes);
                    }
                    return Ok(true);
                }
                Err(error) if status(&error) == Some(412) => return Ok(false),
                // Another conditional write of the key is in progress: S3 answers `409`, and
                // the one that finishes decides.
                Err(error) if status(&error) == Some(409) => pause(tried).await,
                Err(error) => return Err(self.sdk_error(operation, scope, error)),
            }
        }
        Err(StoreError::storage(
            operation,
            scope.clone(),
            format!("creating `{key}` met a concurrent write {CONFLICT_TRIES} times"),
        ))
    }

    /// Writes `bytes` at `key`, replacing what is there.
    async fn put(
        &self,
        operation: Operation,
        scope: &Scope,
        key: &str,
        bytes: Vec<u8>,
    ) -> Result<(), StoreError> {
        let answer = self
            .send(
                operation,
                scope,
                self.client
                    .put_object()
                    .bucket(self.bucket())
                    .key(key)
                    .body(ByteStream::from(bytes.clone()))
                    .send(),
            )
            .await?;
        let output = answer.map_err(|error| self.sdk_error(operation, scope, error))?;
        if let Some(etag) = output.e_tag() {
            self.remember_object(key, etag, &bytes);
        }
        Ok(())
    }

    /// Removes `key`; removing a missing key is no error.
    async fn delete(
        &self,
        operation: Operation,
        scope: &Scope,
        key: &str,
    ) -> Result<(), StoreError> {
        let answer = self
            .send(
                operation,
                scope,
                self.client
                    .delete_object()
                    .bucket(self.bucket())
                    .key(key)
                    .send(),
            )
            .await?;
        answer
            .map(|_| ())
            .map_err(|error| self.sdk_error(operation, scope, error))
    }

    /// Removes `keys`, 1,000 a request (S3's limit).
    async fn delete_keys(
        &self,
        operation: Operation,
        scope: &Scope,
        keys: Vec<String>,
    ) -> Result<(), StoreError> {
        for batch in keys.chunks(1000) {
            let objects = batch
                .iter()
                .map(|key| ObjectIdentifier::builder().key(key).build())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| StoreError::storage(operation, scope.clone(), e))?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| StoreError::storage(operation, scope.clone(), e))?;
            let output = self
                .send(
                    operation,
                    scope,
                    self.client
                        .delete_objects()
                        .bucket(self.bucket())
                        .delete(delete)
                        .send(),
                )
                .await?
                .map_err(|error| self.sdk_error(operation, scope, error))?;
            if let Some(failed) = output.errors().first() {
                return Err(StoreError::storage(
                    operation,
                    scope.clone(),
                    format!(
                        "S3 did not delete `{}`: {} {}",
                        failed.key().unwrap_or_default(),
                        failed.code().unwrap_or_default(),
                        failed.message().unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Up to `max` keys under `prefix` after `start_after`, in order, and whether more follow.
    async fn list(
        &self,
        operation: Operation,
        scope: &Scope,
        prefix: &str,
        start_after: Option<&str>,
        max: usize,
    ) -> Result<(Vec<String>, bool), StoreError> {
        let (listed, more) = self
            .list_tagged(operation, scope, prefix, start_after, max)
            .await?;
        Ok((listed.into_iter().map(|(key, _)| key).collect(), more))
    }

    /// [`Inner::list`] with each key's ETag, which says whether a cached object is current.
    async fn list_tagged(
        &self,
        operation: Operation,
        scope: &Scope,
        prefix: &str,
        start_after: Option<&str>,
        max: usize,
    ) -> Result<(Vec<(String, Option<String>)>, bool), StoreError> {
        let output = self
            .send(
                operation,
                scope,
                self.client
                    .list_objects_v2()
                    .bucket(self.bucket())
                    .prefix(prefix)
                    .set_start_after(start_after.map(str::to_owned))
                    .max_keys(i32::try_from(max.min(1000)).unwrap_or(1000))
                    .send(),
            )
            .await?
            .map_err(|error| self.sdk_error(operation, scope, error))?;
        let keys: Vec<(String, Option<String>)> = output
            .contents()
            .iter()
            .filter_map(|object| {
                let key = object.key()?.to_owned();
                Some((key, object.e_tag().map(str::to_owned)))
            })
            .collect();
        let more = output.is_truncated().unwrap_or(false) && !keys.is_empty();
        Ok((keys, more))
    }

    /// Every key under `prefix` after `start_after`, in order, a page of 1,000 at a time.
    async fn list_all(
        &self,
        operation: Operation,
        scope: &Scope,
        prefix: &str,
        start_after: Option<String>,
    ) -> Result<Vec<String>, StoreError> {
        let mut all = Vec::new();
        let mut after = start_after;
        loop {
            let (keys, more) = self
                .list(operation, scope, prefix, after.as_deref(), 1000)
                .await?;
            after = keys.last().cloned();
            all.extend(keys);
            if !more {
                return Ok(all);
            }
        }
    }

    /// Whether an object exists at `key`.
    async fn exists(
        &self,
        operation: Operation,
        scope: &Scope,
        key: &str,
    ) -> Result<bool, StoreError> {
        let answer = self
            .send(
                operation,
                scope,
                self.client
                    .head_object()
                    .bucket(self.bucket())
                    .key(key)
                    .send(),
            )
            .await?;
        match answer {
            Ok(_) => Ok(true),
            Err(error) if status(&error) == Some(404) => Ok(false),
            Err(error) => Err(self.sdk_error(operation, scope, error)),
        }
    }

    /// The incarnation this store last saw `(tenant, stream)` in (0 if never).
    fn cached_incarnation(&self, tenant: &str, stream: &str) -> u64 {
        self.incarnations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(tenant.to_owned(), stream.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    fn remember_incarnation(&self, tenant: &str, stream: &str, inc: u64) {
        let mut cache = self
            .incarnations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = cache
            .entry((tenant.to_owned(), stream.to_owned()))
            .or_insert(0);
        *entry = (*entry).max(inc);
    }

    /// The stream's current incarnation: the last whose first key exists (one listing, from the
    /// one this store last saw).
    async fn incarnation(
        &self,
        operation: Operation,
        tenant: &str,
        stream: &str,
    ) -> Result<u64, StoreError> {
        let keys = self.layout.stream(tenant, stream);
        let scope = Scope::stream(tenant, stream);
        let mut inc = self.cached_incarnation(tenant, stream);
        loop {
            // After every key of incarnation `inc`: the first key of a later one, if any.
            let after = format!("{}~", keys.commits(inc));
            let (found, _) = self
                .list(operation, &scope, &keys.commits_root(), Some(&after), 1)
                .await?;
            match found.first().and_then(|key| keys.parse_commit(key)) {
                Some((later, _)) if later > inc => inc = later,
                _ => break,
            }
        }
        self.remember_incarnation(tenant, stream, inc);
        Ok(inc)
    }
}

/// A short pause before a write that met another is tried again: random, so writers of
/// several processes do not meet again in step, and longer as the tries add up.
async fn pause(tried: usize) {
    let random = u64::from(uuid::Uuid::new_v4().as_bytes()[0]);
    let micros = (random * 8 + 200) * (tried.min(16) as u64 + 1);
    tokio::time::sleep(Duration::from_micros(micros)).await;
}
