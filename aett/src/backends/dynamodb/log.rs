//! The log: pointers in checkpoint order (the whole store's, or one tenant's), each followed to
//! its commit.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::FutureExt;

use super::items::{item_key, pointer_sk, raw_commit, stream_pk, tenant_pk, Fields, Item, LOG_PK};
use super::{DynamoStore, Inner};
use crate::backends::kit::sql::{notice_sequence, RawCommit, StoredId, StoredStamp};
use crate::backends::kit::{paged, stamp_to_micros, Page, PageItem, Resume};
use crate::error::{Operation, Scope, StoreError};
use crate::model::LogFilter;
use crate::store::{
    for_replay, keep_matching, CommitLog, CommitStream, LogStream, ReplayLogStream, Wakeups,
};

/// The sort key after every pointer's.
const POINTERS_END: &str = "l~";

/// The most pointers followed at once: one `BatchGetItem`.
const POINTER_PAGE: usize = 100;

/// Which pointers a read keeps.
#[derive(Clone, Default)]
struct Keep {
    /// Tenants (empty: any).
    tenants: Vec<String>,
    /// Stream types (empty: any).
    types: Vec<String>,
    /// Only commits stamped at or before these microseconds (no deletion notices).
    up_to: Option<i64>,
}

impl Keep {
    fn keeps(&self, fields: &Fields<'_>) -> Result<bool, StoreError> {
        if !self.tenants.is_empty() {
            let tenant = fields.str("tenant_id")?;
            if !self.tenants.iter().any(|t| t == tenant) {
                return Ok(false);
            }
        }
        if !self.types.is_empty() {
            match fields.optional_str("stream_type")? {
                Some(t) if self.types.iter().any(|x| x == t) => {}
                _ => return Ok(false),
            }
        }
        if let Some(max) = self.up_to {
            if fields.optional_str("target")?.is_none() || fields.i64("stamp_micros")? > max {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl DynamoStore {
    /// The entries of the log in partition `pk` (the store's or a tenant's) after `checkpoint`
    /// that `keep` keeps, a page at a time, each decoded by `decode`.
    fn log<T: PageItem>(
        &self,
        operation: Operation,
        scope: Scope,
        pk: String,
        checkpoint: u64,
        keep: Keep,
        decode: fn(RawCommit) -> Result<T, StoreError>,
    ) -> BoxStream<'static, Result<T, StoreError>> {
        let inner = self.inner.clone();
        let traced = scope.clone();
        let pages = paged(move |last: Option<Resume>, limit| {
            let (inner, scope, pk, keep) = (inner.clone(), scope.clone(), pk.clone(), keep.clone());
            async move {
                let mut after = last.map_or(checkpoint, |last| last.checkpoint);
                loop {
                    let (pointers, next) = inner
                        .query(
                            operation,
                            &scope,
                            &pk,
                            &pointer_sk(after.saturating_add(1)),
                            POINTERS_END,
                            true,
                            Some(limit.min(POINTER_PAGE)),
                            None,
                        )
                        .await?;
                    let more = next.is_some();
                    if let Some(last) = pointers.last() {
                        let fields = Fields::new(last, &scope);
                        after = u64::try_from(fields.i64("checkpoint")?).unwrap_or(after);
                    }
                    let page = inner
                        .follow(operation, &scope, pointers, &keep, decode)
                        .await?;
                    if page.items.is_empty() && page.error.is_none() && more {
                        continue;
                    }
                    return Ok(Page {
                        more: more && page.error.is_none(),
                        ..page
                    });
                }
            }
            .boxed()
        });
        crate::trace::read(operation, &traced, pages)
    }
}

impl Inner {
    /// The entries `pointers` lead to, in their order: a pointer whose commit is gone (deleted
    /// or truncated since) leads nowhere.
    async fn follow<T>(
        &self,
        operation: Operation,
        scope: &Scope,
        pointers: Vec<Item>,
        keep: &Keep,
        decode: fn(RawCommit) -> Result<T, StoreError>,
    ) -> Result<Page<T>, StoreError> {
        let mut kept = Vec::with_capacity(pointers.len());
        let mut error = None;
        for pointer in &pointers {
            match keep.keeps(&Fields::new(pointer, scope)) {
                Ok(true) => kept.push(pointer),
                Ok(false) => {}
                Err(damaged) => {
                    error = Some(damaged);
                    break;
                }
            }
        }
        let targets = kept
            .iter()
            .filter_map(|pointer| {
                let fields = Fields::new(pointer, scope);
                let target = fields.optional_str("target").ok()??;
                let pk = stream_pk(fields.str("tenant_id").ok()?, fields.str("stream_id").ok()?);
                Some(item_key(pk, target))
            })
            .collect::<Vec<_>>();
        let mut bodies = self.batch_get(operation, scope, targets).await?;
        let mut items = Vec::with_capacity(kept.len());
        for pointer in kept {
            match self.entry(operation, scope, pointer, &mut bodies).await {
                Ok(Some(raw)) => match decode(raw) {
                    Ok(item) => items.push(item),
                    Err(damaged) => {
                        error = Some(damaged);
                        break;
                    }
                },
                Ok(None) => {}
                Err(damaged) => {
                    error = Some(damaged);
                    break;
                }
            }
        }
        Ok(Page {
            items,
            more: false,
            error,
        })
    }

    /// The commit or deletion notice a pointer leads to, `None` for a commit that is gone.
    async fn entry(
        &self,
        operation: Operation,
        scope: &Scope,
        pointer: &Item,
        bodies: &mut HashMap<(String, String), Item>,
    ) -> Result<Option<RawCommit>, StoreError> {
        let fields = Fields::new(pointer, scope);
        let tenant = fields.str("tenant_id")?;
        let stream = fields.str("stream_id")?;
        let checkpoint = fields.i64("checkpoint")?;
        let Some(target) = fields.optional_str("target")? else {
            return Ok(Some(RawCommit {
                checkpoint,
                tenant_id: tenant.to_owned(),
                stream_id: stream.to_owned(),
                stream_revision: 0,
                commit_id: StoredId::Bytes(Vec::new()),
                commit_sequence: notice_sequence(),
                commit_stamp: StoredStamp::Micros(fields.i64("stamp_micros")?),
                headers: Vec::new(),
                events: Vec::new(),
                stream_type: fields.optional_str("stream_type")?.map(str::to_owned),
            }));
        };
        let pk = stream_pk(tenant, stream);
        let Some(main) = bodies.remove(&(pk.clone(), target.to_owned())) else {
            return Ok(None);
        };
        let commit_scope = Scope::stream(tenant, stream);
        let main_fields = Fields::new(&main, &commit_scope);
        // A commit the stream holds at that key since a deletion is another commit.
        if main_fields.optional_i64("checkpoint")? != Some(checkpoint) {
            return Ok(None);
        }
        let mut parts = Vec::new();
        self.complete_parts(operation, &commit_scope, &pk, &main, &mut parts)
            .await?;
        let raw = raw_commit(&main, &parts, &commit_scope)?;
        if raw.tenant_id != tenant || raw.stream_id != stream {
            return Err(main_fields.corrupt(format!(
                "log pointer {checkpoint} leads to a commit of tenant `{}` stream `{}`",
                raw.tenant_id, raw.stream_id
            )));
        }
        Ok(Some(raw))
    }
}

impl CommitLog for DynamoStore {
    fn get_from(&self, checkpoint: u64) -> LogStream {
        self.log(
            Operation::ReadLog,
            Scope::Store,
            LOG_PK.to_owned(),
            checkpoint,
            Keep::default(),
            RawCommit::decode_entry,
        )
    }

    fn get_tenant_from(&self, tenant_id: &str, checkpoint: u64) -> LogStream {
        self.log(
            Operation::ReadTenantLog,
            Scope::tenant(tenant_id),
            tenant_pk(tenant_id),
            checkpoint,
            Keep::default(),
            RawCommit::decode_entry,
        )
    }

    fn get_filtered(&self, checkpoint: u64, filter: &LogFilter) -> LogStream {
        let entries = self.filtered(checkpoint, filter, RawCommit::decode_entry);
        keep_matching(entries, filter)
    }

    fn get_filtered_for_replay(&self, checkpoint: u64, filter: &LogFilter) -> ReplayLogStream {
        if !filter.topics.is_empty() {
            // Topics live inside the events: those are read to filter.
            return for_replay(self.get_filtered(checkpoint, filter));
        }
        self.filtered(checkpoint, filter, RawCommit::decode_replay_entry)
    }

    /// Commits made through this store wake its followers at once; followers of commits made
    /// elsewhere find them by polling.
    fn wakeups(&self) -> Option<Wakeups> {
        Some(self.inner.signal.wakeups())
    }

    fn get_all_to(&self, tenant_id: &str, max_time: DateTime<Utc>) -> CommitStream {
        self.log(
            Operation::ReadTenantToTime,
            Scope::tenant(tenant_id),
            tenant_pk(tenant_id),
            0,
            Keep {
                up_to: Some(stamp_to_micros(max_time)),
                ..Keep::default()
            },
            RawCommit::decode,
        )
    }
}

impl DynamoStore {
    /// The log as `filter`'s tenants and stream types select it: one tenant's from its own log,
    /// else the store's.
    fn filtered<T: PageItem>(
        &self,
        checkpoint: u64,
        filter: &LogFilter,
        decode: fn(RawCommit) -> Result<T, StoreError>,
    ) -> BoxStream<'static, Result<T, StoreError>> {
        let keep = Keep {
            tenants: filter.tenants.clone(),
            types: filter.stream_types.clone(),
            up_to: None,
        };
        match filter.tenants.as_slice() {
            [tenant] => self.log(
                Operation::ReadTenantLog,
                Scope::tenant(tenant),
                tenant_pk(tenant),
                checkpoint,
                Keep {
                    tenants: Vec::new(),
                    ..keep
                },
                decode,
            ),
            _ => self.log(
                Operation::ReadLog,
                Scope::Store,
                LOG_PK.to_owned(),
                checkpoint,
                keep,
                decode,
            ),
        }
    }
}
