//! The log: slots `log/{checkpoint}`, each created by the one writer that claimed it, and
//! decided by the race for the stream key its commit names.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use futures::FutureExt;

use super::commits::PARALLEL_READS;
use super::objects::{holds_slot, Kind, Meta, Object};
use super::{Fetched, Inner, S3Store};
use crate::backends::kit::{paged, stamp_to_micros, Page, PageItem, Resume};
use crate::error::{Operation, Scope, StoreError};
use crate::model::{Commit, LogEntry, LogFilter};
use crate::store::{
    for_replay, keep_matching, CommitLog, CommitStream, LogStream, ReplayEntry, ReplayLogStream,
};

/// What a read of the log keeps of an entry: `None` passes it over.
type Keep<T> = Arc<dyn Fn(&Object) -> Option<Result<T, StoreError>> + Send + Sync>;

impl S3Store {
    /// Claims the next free slot of the log for the object `make` builds for a checkpoint, and
    /// returns the checkpoint and the object written.
    pub(super) async fn claim_slot(
        &self,
        scope: &Scope,
        make: impl Fn(u64) -> Result<Vec<u8>, StoreError>,
    ) -> Result<(u64, Vec<u8>), StoreError> {
        let inner = &self.inner;
        let _turn = inner.slot_turn.lock().await;
        let mut checkpoint = inner.next_slot.load(Ordering::Relaxed).max(1);
        loop {
            let bytes = make(checkpoint)?;
            let slot = inner.layout.slot(checkpoint);
            if inner
                .put_new(Operation::Commit, scope, &slot, bytes.clone())
                .await?
            {
                inner.next_slot.store(checkpoint + 1, Ordering::Relaxed);
                return Ok((checkpoint, bytes));
            }
            checkpoint = inner.log_end(scope, checkpoint).await? + 1;
        }
    }

    /// Overwrites a slot whose commit did not go in (or was deleted since) with a void one.
    /// Safe only once the slot is decided: its stream key holds something else for good.
    pub(super) async fn void_slot(&self, scope: &Scope, checkpoint: u64) -> Result<(), StoreError> {
        let inner = &self.inner;
        inner
            .put(
                Operation::Commit,
                scope,
                &inner.layout.slot(checkpoint),
                Meta::marker(Kind::Void, 0).to_bytes(),
            )
            .await
    }
}

impl Inner {
    /// The last slot of the log, knowing that `taken` is taken: slots are taken in order, so
    /// a search that doubles its step and then halves it finds the end in a few requests.
    async fn log_end(&self, scope: &Scope, taken: u64) -> Result<u64, StoreError> {
        let operation = Operation::Commit;
        let mut low = taken;
        let mut step = 1;
        let mut high = loop {
            let probe = low + step;
            if self
                .exists(operation, scope, &self.layout.slot(probe))
                .await?
            {
                low = probe;
                step *= 2;
            } else {
                break probe;
            }
        };
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            if self
                .exists(operation, scope, &self.layout.slot(middle))
                .await?
            {
                low = middle;
            } else {
                high = middle;
            }
        }
        Ok(low)
    }

    /// Decides slot `checkpoint` holding `object`: `true` if its commit (or deletion) is in the
    /// stream, `false` if it never will be. An undecided slot is decided here, by finishing its
    /// commit from the slot: the same race for the stream key its writer runs.
    async fn decide(
        &self,
        operation: Operation,
        checkpoint: u64,
        object: &Object,
    ) -> Result<bool, StoreError> {
        let meta = &object.meta;
        let scope = Scope::stream(&meta.tenant, &meta.stream);
        let key = self
            .layout
            .stream(&meta.tenant, &meta.stream)
            .commit(meta.inc, meta.seq);
        let holds_it = |bytes: &[u8]| holds_slot(bytes, meta.kind, checkpoint);
        let live = match self.get(operation, &scope, &key).await? {
            Some(held) => holds_it(&held),
            None => {
                self.put_new(operation, &scope, &key, object.bytes.clone())
                    .await?
                    || self
                        .get(operation, &scope, &key)
                        .await?
                        .is_some_and(|held| holds_it(&held))
            }
        };
        // Spare later readers the question (a failure only leaves it to them).
        let marker = if live {
            self.put(
                operation,
                &scope,
                &self.layout.decided(checkpoint),
                Vec::new(),
            )
            .await
        } else {
            self.put(
                operation,
                &scope,
                &self.layout.slot(checkpoint),
                Meta::marker(Kind::Void, 0).to_bytes(),
            )
            .await
        };
        drop(marker);
        Ok(live)
    }

    /// One page of the log after `after`: the entries `keep` keeps, in checkpoint order,
    /// each decided first.
    async fn log_page<T: Send + 'static>(
        self: Arc<Self>,
        operation: Operation,
        tenant: Option<String>,
        mut after: u64,
        limit: usize,
        keep: Keep<T>,
    ) -> Result<Page<T>, StoreError> {
        let scope = match &tenant {
            Some(tenant) => Scope::tenant(tenant),
            None => Scope::Store,
        };
        let mut items = Vec::new();
        loop {
            let start = (after > 0).then(|| self.layout.decided(after));
            let (listed, more) = self
                .list_tagged(
                    operation,
                    &scope,
                    &self.layout.log_prefix(),
                    start.as_deref(),
                    limit.saturating_mul(2),
                )
                .await?;
            // The slots listed (with their ETags), each with whether it is marked decided.
            let mut slots: Vec<(u64, Option<String>, bool)> = Vec::new();
            let ends_on_a_slot = listed
                .last()
                .and_then(|(key, _)| self.layout.parse_slot(key))
                .is_some_and(|(_, decided)| !decided);
            for (key, etag) in listed {
                match self.layout.parse_slot(&key) {
                    Some((checkpoint, true)) => {
                        if let Some(last) = slots.last_mut().filter(|(c, _, _)| *c == checkpoint) {
                            last.2 = true;
                        }
                    }
                    Some((checkpoint, false)) => slots.push((checkpoint, etag, false)),
                    None => {}
                }
            }
            // A page that ends on a slot may have cut its marker off: leave the slot to the
            // next page, which lists from it.
            if more && ends_on_a_slot && slots.len() > 1 {
                slots.pop();
            }
            let fetched: Vec<(u64, bool, Fetched)> = stream::iter(slots)
                .map(|(checkpoint, etag, decided)| {
                    let inner = self.clone();
                    let scope = scope.clone();
                    async move {
                        let got = inner
                            .get_listed(
                                operation,
                                &scope,
                                &inner.layout.slot(checkpoint),
                                etag.as_deref(),
                            )
                            .await;
                        (checkpoint, decided, got)
                    }
                })
                .buffered(PARALLEL_READS)
                .collect()
                .await;
            let read_to = fetched.last().map(|(checkpoint, _, _)| *checkpoint);
            for (checkpoint, decided, got) in fetched {
                let Some(bytes) = got? else { continue };
                let object = match Object::parse(bytes) {
                    Ok(object) => object,
                    Err(reason) => {
                        let error = StoreError::Corrupt {
                            scope: scope.clone(),
                            commit_sequence: None,
                            checkpoint: Some(checkpoint),
                            reason,
                        };
                        return Ok(Page {
                            items,
                            more: false,
                            error: Some(error),
                        });
                    }
                };
                if !matches!(object.meta.kind, Kind::Commit | Kind::Deleted) {
                    continue;
                }
                if tenant.as_ref().is_some_and(|t| *t != object.meta.tenant) {
                    continue;
                }
                if object.meta.checkpoint != checkpoint {
                    let error = StoreError::Corrupt {
                        scope: Scope::stream(&object.meta.tenant, &object.meta.stream),
                        commit_sequence: Some(object.meta.seq),
                        checkpoint: Some(checkpoint),
                        reason: format!(
                            "log slot {checkpoint} holds a commit of checkpoint {}",
                            object.meta.checkpoint
                        ),
                    };
                    return Ok(Page {
                        items,
                        more: false,
                        error: Some(error),
                    });
                }
                if !decided && !self.decide(operation, checkpoint, &object).await? {
                    continue;
                }
                match keep(&object) {
                    None => {}
                    Some(Ok(item)) => items.push(item),
                    Some(Err(error)) => {
                        return Ok(Page {
                            items,
                            more: false,
                            error: Some(error),
                        })
                    }
                }
            }
            match read_to {
                Some(last) if more => {
                    after = last;
                    if !items.is_empty() {
                        return Ok(Page {
                            items,
                            more: true,
                            error: None,
                        });
                    }
                }
                _ => {
                    return Ok(Page {
                        items,
                        more: false,
                        error: None,
                    })
                }
            }
        }
    }
}

impl S3Store {
    /// The log after `checkpoint` (one tenant's, or every tenant's), a page at a time.
    fn read_log<T: PageItem>(
        &self,
        operation: Operation,
        tenant: Option<&str>,
        checkpoint: u64,
        keep: Keep<T>,
    ) -> BoxStream<'static, Result<T, StoreError>> {
        let inner = self.inner.clone();
        let tenant = tenant.map(str::to_owned);
        let scope = match &tenant {
            Some(tenant) => Scope::tenant(tenant),
            None => Scope::Store,
        };
        let pages = paged(move |last: Option<Resume>, limit| {
            let after = last.map_or(checkpoint, |last| last.checkpoint);
            inner
                .clone()
                .log_page(operation, tenant.clone(), after, limit, keep.clone())
                .boxed()
        });
        crate::trace::read(operation, &scope, pages)
    }
}

fn entries() -> Keep<LogEntry> {
    Arc::new(|object: &Object| Some(object.entry()))
}

impl CommitLog for S3Store {
    fn get_from(&self, checkpoint: u64) -> LogStream {
        self.read_log(Operation::ReadLog, None, checkpoint, entries())
    }

    fn get_tenant_from(&self, tenant_id: &str, checkpoint: u64) -> LogStream {
        self.read_log(
            Operation::ReadTenantLog,
            Some(tenant_id),
            checkpoint,
            entries(),
        )
    }

    fn get_all_to(&self, tenant_id: &str, max_time: DateTime<Utc>) -> CommitStream {
        let max = stamp_to_micros(max_time);
        let keep: Keep<Commit> = Arc::new(move |object: &Object| {
            (object.meta.kind == Kind::Commit && object.meta.stamp <= max).then(|| object.commit())
        });
        self.read_log(Operation::ReadTenantToTime, Some(tenant_id), 0, keep)
    }

    fn get_filtered_for_replay(&self, checkpoint: u64, filter: &LogFilter) -> ReplayLogStream {
        if !filter.topics.is_empty() {
            // Topics live inside the events: those are read to filter.
            return for_replay(self.get_filtered(checkpoint, filter));
        }
        let tenant = match filter.tenants.as_slice() {
            [tenant] => Some(tenant.as_str()),
            _ => None,
        };
        let (tenants, types) = (filter.tenants.clone(), filter.stream_types.clone());
        let keep: Keep<ReplayEntry> = Arc::new(move |object: &Object| {
            let meta = &object.meta;
            let tenant_ok = tenants.is_empty() || tenants.contains(&meta.tenant);
            let type_ok = types.is_empty()
                || meta
                    .stream_type
                    .as_ref()
                    .is_some_and(|found| types.contains(found));
            (tenant_ok && type_ok).then(|| object.replay_entry())
        });
        self.read_log(Operation::ReadLog, tenant, checkpoint, keep)
    }

    fn get_filtered(&self, checkpoint: u64, filter: &LogFilter) -> LogStream {
        let tenant = match filter.tenants.as_slice() {
            [tenant] => Some(tenant.as_str()),
            _ => None,
        };
        let entries = self.read_log(Operation::ReadLog, tenant, checkpoint, entries());
        keep_matching(entries, filter)
    }

    fn wakeups(&self) -> Option<crate::store::Wakeups> {
        Some(self.inner.signal.wakeups())
    }
}
