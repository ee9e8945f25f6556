//! Streams: reading one by revision or time, and committing to it (see the module above for
//! why no two writers can both win).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, SubsecRound, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use futures::FutureExt;

use super::objects::{commit_meta, commit_object, holds_slot, Kind, Meta, Object};
use super::{Fetched, Inner, Known, S3Store};
use crate::backends::kit::{
    check_follows_head, paged, resolve_taken_sequence, stamp_to_micros, Page, PageItem,
};
use crate::error::{Operation, Scope, StoreError};
use crate::model::{Commit, CommitAttempt};
use crate::store::{CommitStore, CommitStream, ReplayCommit, ReplayStream};

/// Where a read of a stream starts.
#[derive(Clone, Copy)]
pub(super) enum Start {
    /// At the commit that holds this revision (a snapshot below it says where to look).
    Revision(u64),
    /// At this sequence of this incarnation.
    Sequence(u64, u64),
}

/// Where a read of a stream ends, besides its end.
#[derive(Clone, Copy)]
pub(super) enum Until {
    /// At the first commit that begins after this revision.
    Revision(u64),
    /// Commits stamped after these microseconds are passed over.
    Time(i64),
}

/// How many objects a read fetches at once.
pub(super) const PARALLEL_READS: usize = 16;

/// The error for an object that is not what its key says.
pub(super) fn corrupt_object(scope: &Scope, sequence: u64, reason: String) -> StoreError {
    StoreError::Corrupt {
        scope: scope.clone(),
        commit_sequence: Some(sequence),
        checkpoint: None,
        reason,
    }
}

/// A read's position, carried from page to page.
struct Position {
    inc: u64,
    /// The next sequence to read; `None` before the first page (the start is still to find).
    next: Option<u64>,
}

impl Inner {
    /// The sequence a read from `min_revision` starts at in incarnation `inc`: that of the
    /// newest snapshot below it (its commit holds the snapshot's revision, so none before it
    /// holds `min_revision`), or 1.
    async fn start_sequence(
        &self,
        operation: Operation,
        scope: &Scope,
        tenant: &str,
        stream: &str,
        inc: u64,
        min_revision: u64,
    ) -> Result<u64, StoreError> {
        if min_revision <= 1 {
            return Ok(1);
        }
        let keys = self.layout.stream(tenant, stream);
        let after = keys.snapshots_after(inc, min_revision - 1);
        let (found, _) = self
            .list(operation, scope, &keys.snapshots(inc), after.as_deref(), 1)
            .await?;
        Ok(found
            .first()
            .and_then(|key| keys.parse_snapshot(inc, key))
            .map_or(1, |(_, sequence)| sequence.max(1)))
    }

    /// One page of a stream's commits from `position`, decoded by `decode`; moves `position`
    /// on past what it read, across tombstones and into the next incarnation after a deletion.
    #[allow(clippy::too_many_arguments)]
    async fn stream_page<T>(
        self: Arc<Self>,
        operation: Operation,
        scope: Scope,
        tenant: String,
        stream: String,
        position: Arc<Mutex<Position>>,
        from: Start,
        until: Until,
        limit: usize,
        decode: fn(&Object) -> Result<T, StoreError>,
    ) -> Result<Page<T>, StoreError> {
        let keys = self.layout.stream(&tenant, &stream);
        let (mut inc, next) = {
            let position = position.lock().unwrap_or_else(|e| e.into_inner());
            (position.inc, position.next)
        };
        let mut next = match (next, from) {
            (Some(next), _) => next,
            (None, Start::Sequence(start_inc, sequence)) => {
                inc = start_inc;
                sequence
            }
            (None, Start::Revision(min)) => {
                // Where this store last saw the stream; a deletion since is followed below.
                inc = self.cached_incarnation(&tenant, &stream);
                self.start_sequence(operation, &scope, &tenant, &stream, inc, min)
                    .await?
            }
        };
        let min_revision = match from {
            Start::Revision(min) => min,
            Start::Sequence(..) => 0,
        };
        let mut items = Vec::new();
        let mut more = true;
        let mut error = None;
        // The last commit read, and whether the read went on to the stream's end.
        let mut last = None;
        let mut to_the_end = true;
        'pages: while items.is_empty() && more && error.is_none() {
            let start_after = (next > 0).then(|| keys.commit(inc, next - 1));
            let (listed, listed_more) = self
                .list_tagged(
                    operation,
                    &scope,
                    &keys.commits(inc),
                    start_after.as_deref(),
                    limit,
                )
                .await?;
            let fetched: Vec<(String, Fetched)> = stream::iter(listed)
                .map(|(key, etag)| {
                    let inner = self.clone();
                    let scope = scope.clone();
                    async move {
                        let got = inner
                            .get_listed(operation, &scope, &key, etag.as_deref())
                            .await;
                        (key, got)
                    }
                })
                .buffered(PARALLEL_READS)
                .collect()
                .await;
            more = listed_more;
            for (key, got) in fetched {
                let Some((_, sequence)) = keys.parse_commit(&key) else {
                    continue;
                };
                next = sequence + 1;
                // Removed between the listing and the read (a purge).
                let Some(bytes) = got? else { continue };
                let object = match Object::parse(bytes) {
                    Ok(object) => object,
                    Err(reason) => {
                        error = Some(corrupt_object(&scope, sequence, reason));
                        more = false;
                        break 'pages;
                    }
                };
                match object.meta.kind {
                    Kind::Commit => {
                        if object.meta.tenant != tenant || object.meta.stream != stream {
                            error = Some(corrupt_object(
                                &scope,
                                sequence,
                                format!(
                                    "the object at `{key}` belongs to stream `{}` of tenant `{}`",
                                    object.meta.stream, object.meta.tenant
                                ),
                            ));
                            more = false;
                            break 'pages;
                        }
                        let meta = &object.meta;
                        last = Some(meta.clone());
                        if meta.revision < min_revision {
                            continue;
                        }
                        match until {
                            Until::Revision(max) => {
                                if meta.revision.saturating_sub(meta.count) >= max {
                                    more = false;
                                    to_the_end = false;
                                    break 'pages;
                                }
                            }
                            Until::Time(max) => {
                                if meta.stamp > max {
                                    continue;
                                }
                            }
                        }
                        match decode(&object) {
                            Ok(item) => items.push(item),
                            Err(failed) => {
                                error = Some(failed);
                                more = false;
                                break 'pages;
                            }
                        }
                    }
                    // Truncated away, or deleted: the stream goes on at `next`.
                    Kind::Truncated | Kind::Gone => {
                        next = object.meta.next.max(sequence + 1);
                        more = true;
                        continue 'pages;
                    }
                    // The incarnation ends here: the stream starts again in the next.
                    Kind::Deleted => {
                        inc += 1;
                        next = 1;
                        self.remember_incarnation(&tenant, &stream, inc);
                        more = true;
                        continue 'pages;
                    }
                    Kind::Begin | Kind::Void => {}
                }
            }
        }
        if let Some(last) = last.filter(|_| !more && to_the_end && error.is_none()) {
            self.remember_head(inc, &last, false);
        }
        *position.lock().unwrap_or_else(|e| e.into_inner()) = Position {
            inc,
            next: Some(next),
        };
        Ok(Page { items, more, error })
    }
}

impl S3Store {
    /// The commits of a stream, a page at a time, each decoded by `decode`.
    pub(super) fn stream_read<T: PageItem>(
        &self,
        operation: Operation,
        tenant: &str,
        stream: &str,
        from: Start,
        until: Until,
        decode: fn(&Object) -> Result<T, StoreError>,
    ) -> BoxStream<'static, Result<T, StoreError>> {
        let inner = self.inner.clone();
        let scope = Scope::stream(tenant, stream);
        let traced = scope.clone();
        let (tenant, stream) = (tenant.to_owned(), stream.to_owned());
        let position = Arc::new(Mutex::new(Position { inc: 0, next: None }));
        let pages = paged(move |_, limit| {
            inner
                .clone()
                .stream_page(
                    operation,
                    scope.clone(),
                    tenant.clone(),
                    stream.clone(),
                    position.clone(),
                    from,
                    until,
                    limit,
                    decode,
                )
                .boxed()
        });
        crate::trace::read(operation, &traced, pages)
    }
}

fn decode_commit(object: &Object) -> Result<Commit, StoreError> {
    object.commit()
}

fn decode_replay(object: &Object) -> Result<ReplayCommit, StoreError> {
    object.replay()
}

#[async_trait]
impl CommitStore for S3Store {
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
            Start::Revision(min_revision),
            Until::Revision(max_revision),
            decode_commit,
        )
    }

    fn get_to(&self, tenant_id: &str, stream_id: &str, max_time: DateTime<Utc>) -> CommitStream {
        self.stream_read(
            Operation::ReadStreamToTime,
            tenant_id,
            stream_id,
            Start::Revision(0),
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
            Start::Revision(min_revision),
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

/// What a writer found before its own commit.
enum Before {
    /// The stream's commit before the attempt's (none for sequence 1), in incarnation `inc`;
    /// `wrote_previous` when this store wrote it (and indexed its id) itself.
    Found {
        inc: u64,
        previous: Option<Meta>,
        wrote_previous: bool,
    },
    /// The answer already: the attempt cannot go in.
    Refused(StoreError),
}

impl S3Store {
    async fn commit_now(&self, mut attempt: CommitAttempt) -> Result<Commit, StoreError> {
        attempt.validate()?;
        attempt.commit_stamp = attempt.commit_stamp.trunc_subsecs(6);
        let inner = &self.inner;
        let operation = Operation::Commit;
        let scope = Scope::stream(&attempt.tenant_id, &attempt.stream_id);
        let keys = inner.layout.stream(&attempt.tenant_id, &attempt.stream_id);
        let (inc, previous, wrote_previous) = match self.before(&attempt, &scope).await? {
            Before::Found {
                inc,
                previous,
                wrote_previous,
            } => (inc, previous, wrote_previous),
            Before::Refused(answer) => return Err(answer),
        };
        let sequence = attempt.commit_sequence;
        let key = keys.commit(inc, sequence);
        let own_id = keys.id(inc, attempt.commit_id);
        // Whether the id is stored already. The ids of every commit before this one are
        // indexed once the previous one's is.
        let look_up_id = async {
            let Some(previous) = &previous else {
                return Ok(None);
            };
            let index_previous = async {
                match previous.id {
                    Some(id) if !wrote_previous => inner
                        .put_new(
                            operation,
                            &scope,
                            &keys.id(inc, id),
                            previous.seq.to_string().into_bytes(),
                        )
                        .await
                        .map(drop),
                    _ => Ok(()),
                }
            };
            let (indexed, found) =
                futures::join!(index_previous, inner.get(operation, &scope, &own_id));
            indexed?;
            found
        };
        // A writer whose view is stale learns it here, before it claims a slot of the log. A
        // store that wrote the previous commit itself skips the question: the race for the
        // key answers it all the same.
        let holder = async {
            if wrote_previous {
                Ok(None)
            } else {
                inner.get(operation, &scope, &key).await
            }
        };
        let (holder, found) = futures::join!(holder, look_up_id);
        if let Some(holder) = holder? {
            return Err(self.taken(&attempt, &scope, inc, Some(holder)).await);
        }
        if found?.is_some() {
            return Err(duplicate(&attempt));
        }
        let stamp = stamp_to_micros(attempt.commit_stamp);
        let (checkpoint, bytes) = self
            .claim_slot(&scope, |checkpoint| {
                commit_object(&attempt, inc, checkpoint, stamp)
            })
            .await?;
        if !inner.put_new(operation, &scope, &key, bytes).await? {
            // A reader may have finished this very commit from its slot.
            let holder = inner.get(operation, &scope, &key).await?;
            let ours = holder
                .as_ref()
                .is_some_and(|bytes| holds_slot(bytes, Kind::Commit, checkpoint));
            if !ours {
                self.void_slot(&scope, checkpoint).await?;
                return Err(self.taken(&attempt, &scope, inc, holder).await);
            }
        }
        // The commit is in. What follows only helps later work along (the decided slot spares
        // readers a check, the indexes are repaired by the next writer or are a hint), so a
        // failure here does not make the commit fail.
        let index_head = async {
            let _ = inner
                .put(
                    operation,
                    &scope,
                    &keys.head(inc, attempt.stream_revision),
                    attempt.stream_id.clone().into_bytes(),
                )
                .await;
            if let Some(previous) = &previous {
                if previous.revision != attempt.stream_revision {
                    let _ = inner
                        .delete(operation, &scope, &keys.head(inc, previous.revision))
                        .await;
                }
            }
        };
        let decided = inner.layout.decided(checkpoint);
        let (_, id_indexed, _) = futures::join!(
            inner.put(operation, &scope, &decided, Vec::new()),
            inner.put_new(
                operation,
                &scope,
                &own_id,
                sequence.to_string().into_bytes(),
            ),
            index_head,
        );
        let head = commit_meta(&attempt, inc, checkpoint, stamp);
        inner.remember_head(inc, &head, id_indexed.is_ok());
        inner.remember_incarnation(&attempt.tenant_id, &attempt.stream_id, inc);
        Ok(Commit::from_attempt(attempt, checkpoint))
    }

    /// Finds the stream's commit before the attempt's and checks that the attempt follows it.
    async fn before(&self, attempt: &CommitAttempt, scope: &Scope) -> Result<Before, StoreError> {
        let inner = &self.inner;
        let operation = Operation::Commit;
        let (tenant, stream) = (&attempt.tenant_id, &attempt.stream_id);
        let keys = inner.layout.stream(tenant, stream);
        let sequence = attempt.commit_sequence;
        if sequence == 1 {
            let inc = inner.incarnation(operation, tenant, stream).await?;
            if let Err(invalid) = check_follows_head(attempt, (0, 0)) {
                return Ok(Before::Refused(
                    self.taken_or(attempt, scope, inc, invalid).await?,
                ));
            }
            return Ok(Before::Found {
                inc,
                previous: None,
                wrote_previous: false,
            });
        }
        if let Some(known) = inner.known(tenant, stream, sequence - 1) {
            return self
                .follows(attempt, scope, known.inc, known.head, known.indexed)
                .await;
        }
        let mut inc = inner.cached_incarnation(tenant, stream);
        loop {
            let found = inner
                .get(operation, scope, &keys.commit(inc, sequence - 1))
                .await?;
            let Some(bytes) = found else {
                let current = inner.incarnation(operation, tenant, stream).await?;
                if current != inc {
                    inc = current;
                    continue;
                }
                return Ok(Before::Refused(StoreError::InvalidCommit {
                    tenant: tenant.clone(),
                    stream: stream.clone(),
                    commit_sequence: sequence,
                    reason: format!(
                        "commit sequence {sequence} skips ahead: the stream holds no commit {}",
                        sequence - 1
                    ),
                }));
            };
            let object = Object::parse(bytes)
                .map_err(|reason| corrupt_object(scope, sequence - 1, reason))?;
            match object.meta.kind {
                Kind::Commit => return self.follows(attempt, scope, inc, object.meta, false).await,
                // Deleted since the writer read it: it reloads (and finds the stream new).
                Kind::Gone | Kind::Deleted => {
                    let current = inner.incarnation(operation, tenant, stream).await?;
                    if current > inc {
                        inc = current;
                        continue;
                    }
                    inner.remember_incarnation(tenant, stream, inc + 1);
                    return Ok(Before::Refused(reload(attempt)));
                }
                // Only commits before the last are truncated: the attempt's sequence is taken.
                Kind::Truncated => {
                    let holder = inner
                        .get(operation, scope, &keys.commit(inc, sequence))
                        .await?;
                    return Ok(Before::Refused(
                        self.taken(attempt, scope, inc, holder).await,
                    ));
                }
                Kind::Begin | Kind::Void => {
                    return Err(corrupt_object(
                        scope,
                        sequence - 1,
                        format!("a {:?} object where a commit belongs", object.meta.kind),
                    ))
                }
            }
        }
    }

    /// Whether the attempt follows `previous`, the stream's commit before it in incarnation
    /// `inc`: a duplicate of it, a stale view, an invalid attempt, or found.
    async fn follows(
        &self,
        attempt: &CommitAttempt,
        scope: &Scope,
        inc: u64,
        previous: Meta,
        wrote_previous: bool,
    ) -> Result<Before, StoreError> {
        if previous.id == Some(attempt.commit_id) {
            return Ok(Before::Refused(duplicate(attempt)));
        }
        if let Err(invalid) = check_follows_head(attempt, (previous.seq, previous.revision)) {
            return Ok(Before::Refused(
                self.taken_or(attempt, scope, inc, invalid).await?,
            ));
        }
        Ok(Before::Found {
            inc,
            previous: Some(previous),
            wrote_previous,
        })
    }

    /// The answer to an attempt that does not follow the commit before it: a concurrency
    /// conflict when its own sequence is taken (the writer's view was stale), else `invalid`.
    async fn taken_or(
        &self,
        attempt: &CommitAttempt,
        scope: &Scope,
        inc: u64,
        invalid: StoreError,
    ) -> Result<StoreError, StoreError> {
        let key = self
            .inner
            .layout
            .stream(&attempt.tenant_id, &attempt.stream_id)
            .commit(inc, attempt.commit_sequence);
        Ok(
            match self.inner.get(Operation::Commit, scope, &key).await? {
                Some(holder) => self.taken(attempt, scope, inc, Some(holder)).await,
                None => invalid,
            },
        )
    }

    /// The answer to an attempt whose key `holder` holds: a duplicate, a deleted stream, or
    /// commits the writer had not seen, judged by the conflict detector.
    async fn taken(
        &self,
        attempt: &CommitAttempt,
        scope: &Scope,
        inc: u64,
        holder: Option<Vec<u8>>,
    ) -> StoreError {
        let holder = match holder.map(Object::parse) {
            Some(Ok(object)) => object,
            Some(Err(reason)) => return corrupt_object(scope, attempt.commit_sequence, reason),
            None => return reload(attempt),
        };
        match holder.meta.kind {
            Kind::Commit if holder.meta.id == Some(attempt.commit_id) => duplicate(attempt),
            Kind::Commit | Kind::Truncated => {
                let later: Result<Vec<Commit>, StoreError> = self
                    .stream_read(
                        Operation::Commit,
                        &attempt.tenant_id,
                        &attempt.stream_id,
                        Start::Sequence(inc, attempt.commit_sequence),
                        Until::Revision(u64::MAX),
                        decode_commit,
                    )
                    .collect::<Vec<_>>()
                    .await
                    .into_iter()
                    .collect();
                match later {
                    Err(error) => error,
                    Ok(later) if later.iter().any(|c| c.commit_id == attempt.commit_id) => {
                        duplicate(attempt)
                    }
                    Ok(later) if later.is_empty() => reload(attempt),
                    Ok(later) => {
                        resolve_taken_sequence(attempt, later, &self.inner.config.detector)
                    }
                }
            }
            _ => reload(attempt),
        }
    }
}

fn duplicate(attempt: &CommitAttempt) -> StoreError {
    StoreError::DuplicateCommit {
        tenant: attempt.tenant_id.clone(),
        stream: attempt.stream_id.clone(),
        commit_id: attempt.commit_id,
        commit_sequence: attempt.commit_sequence,
    }
}

/// The stream changed under the writer in a way no commit explains (it was deleted): the writer
/// reloads and tries again.
fn reload(attempt: &CommitAttempt) -> StoreError {
    StoreError::NonConflictingCommit {
        tenant: attempt.tenant_id.clone(),
        stream: attempt.stream_id.clone(),
        commit_sequence: attempt.commit_sequence,
        committed: Vec::new(),
    }
}

impl Inner {
    /// The commit at `sequence` of the stream, if this store knows it as the stream's last:
    /// its place and whether its id is indexed.
    fn known(&self, tenant: &str, stream: &str, sequence: u64) -> Option<Known> {
        self.heads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(tenant.to_owned(), stream.to_owned()))
            .filter(|known| known.head.seq == sequence)
            .cloned()
    }

    /// Remembers the stream's last commit (a commit is never changed, only made a tombstone,
    /// and a tombstone or deletion holds the key after it, so a writer that trusts this loses
    /// the race for its own key rather than writing after a deleted commit).
    pub(super) fn remember_head(&self, inc: u64, head: &Meta, indexed: bool) {
        let mut heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        let key = (head.tenant.clone(), head.stream.clone());
        let newer = heads
            .get(&key)
            .is_none_or(|known| (known.inc, known.head.seq) <= (inc, head.seq));
        if newer {
            let indexed = indexed
                || heads
                    .get(&key)
                    .is_some_and(|k| k.indexed && (k.inc, k.head.seq) == (inc, head.seq));
            heads.insert(
                key,
                Known {
                    inc,
                    head: head.clone(),
                    indexed,
                },
            );
        }
    }
}
