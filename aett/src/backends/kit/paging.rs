//! Turning page-at-a-time reads into one stream of commits.

use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::error::StoreError;
use crate::model::{Commit, EventMessage, LogEntry};
use crate::store::{ReplayCommit, ReplayEntry, ReplayEvents};

/// The most commits a backend reads per round trip.
pub const PAGE_SIZE: usize = 1024;

/// How many commits the first page of a read asks for.
pub const FIRST_PAGE: usize = 128;

/// About how many stored bytes a page should hold: later pages ask for as many commits as fit,
/// judged by the commits read so far, so memory stays bounded whatever the size of a commit.
pub const PAGE_BYTES: usize = 4 << 20;

/// One page of commits (or of another item read a page at a time): the items decoded in order,
/// whether more may follow, and the error that stopped decoding, if one did.
#[derive(Debug)]
#[non_exhaustive]
pub struct Page<T = Commit> {
    /// The intact items of this page, in order, up to the first that failed.
    pub items: Vec<T>,
    /// Whether the backend may hold more after the last row of this page.
    pub more: bool,
    /// Why the row after `items` could not be decoded; the stream yields it after `items` and
    /// then ends.
    pub error: Option<StoreError>,
}

impl<T> Page<T> {
    /// A page of decoded items that is the last one when it holds fewer than the `limit` asked
    /// for.
    pub fn new(items: Vec<T>, limit: usize) -> Self {
        let more = items.len() >= limit;
        Self {
            items,
            more,
            error: None,
        }
    }

    /// Decodes `rows` in order with `decode`, stopping at the first failure: the rows before it
    /// are kept, so a reader receives every intact commit before a damaged one.
    pub fn decode<R>(
        rows: impl IntoIterator<Item = R>,
        limit: usize,
        mut decode: impl FnMut(R) -> Result<T, StoreError>,
    ) -> Self {
        let mut page = PageBuilder::new(limit);
        for row in rows {
            if !page.push(decode(row)) {
                break;
            }
        }
        page.finish()
    }
}

/// A page filled one row at a time, for a backend whose driver hands rows out as they arrive:
/// each row is decoded and dropped before the next is read, so a page is never held twice
/// (once as the driver's rows, once decoded).
#[derive(Debug)]
pub struct PageBuilder<T> {
    items: Vec<T>,
    error: Option<StoreError>,
    limit: usize,
}

impl<T> PageBuilder<T> {
    /// An empty page of at most `limit` items.
    pub fn new(limit: usize) -> Self {
        Self {
            // Sized for a typical page up front; growing a page of large entries copies them.
            items: Vec::with_capacity(limit.min(256)),
            error: None,
            limit,
        }
    }

    /// Adds the next row, decoded or not. Returns whether the page takes more rows: after the
    /// first failure it does not, so a reader receives every intact item before the damaged one.
    pub fn push(&mut self, decoded: Result<T, StoreError>) -> bool {
        if self.error.is_some() {
            return false;
        }
        match decoded {
            Ok(item) => self.items.push(item),
            Err(error) => self.error = Some(error),
        }
        self.error.is_none()
    }

    /// Whether the page holds no item.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The page: the last one when a row failed or it holds fewer than the limit asked for.
    pub fn finish(self) -> Page<T> {
        Page {
            more: self.error.is_none() && self.items.len() >= self.limit,
            items: self.items,
            error: self.error,
        }
    }
}

/// Where the previous page ended: a backend resumes after this item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resume {
    /// The last commit's sequence (for reads of one stream).
    pub commit_sequence: u64,
    /// The last commit's checkpoint (for reads across streams); 0 where not known.
    pub checkpoint: u64,
    /// The revision of the last commit's last event (for reads of one stream); 0 for a
    /// deleted-stream notice.
    pub stream_revision: u64,
}

/// An item read a page at a time.
pub trait PageItem: Send + 'static {
    /// Where a read resumes after this item.
    fn resume(&self) -> Resume;
    /// About how many bytes the item holds, for sizing the next page.
    fn stored_bytes(&self) -> usize;
}

impl PageItem for Commit {
    fn resume(&self) -> Resume {
        Resume {
            commit_sequence: self.commit_sequence,
            checkpoint: self.checkpoint,
            stream_revision: self.stream_revision,
        }
    }

    fn stored_bytes(&self) -> usize {
        messages_bytes(&self.events)
    }
}

impl PageItem for LogEntry {
    fn resume(&self) -> Resume {
        match self {
            LogEntry::Commit(commit) => commit.resume(),
            LogEntry::StreamDeleted(deleted) => Resume {
                commit_sequence: 0,
                checkpoint: deleted.checkpoint,
                stream_revision: 0,
            },
        }
    }

    fn stored_bytes(&self) -> usize {
        match self {
            LogEntry::Commit(commit) => commit.stored_bytes(),
            LogEntry::StreamDeleted(_) => 128,
        }
    }
}

impl PageItem for ReplayEntry {
    fn resume(&self) -> Resume {
        match self {
            ReplayEntry::Commit(commit) => Resume {
                commit_sequence: commit.commit_sequence,
                checkpoint: commit.checkpoint,
                stream_revision: commit.stream_revision,
            },
            ReplayEntry::StreamDeleted(deleted) => Resume {
                commit_sequence: 0,
                checkpoint: deleted.checkpoint,
                stream_revision: 0,
            },
        }
    }

    fn stored_bytes(&self) -> usize {
        match self {
            ReplayEntry::Commit(commit) => match &commit.events {
                ReplayEvents::Json(json) => json.len(),
                ReplayEvents::Messages(messages) => messages_bytes(messages),
            },
            ReplayEntry::StreamDeleted(_) => 128,
        }
    }
}

impl PageItem for ReplayCommit {
    fn resume(&self) -> Resume {
        Resume {
            commit_sequence: self.commit_sequence,
            checkpoint: 0,
            stream_revision: self.stream_revision,
        }
    }

    fn stored_bytes(&self) -> usize {
        match &self.events {
            ReplayEvents::Json(json) => json.len(),
            ReplayEvents::Messages(messages) => messages_bytes(messages),
        }
    }
}

fn messages_bytes(messages: &[EventMessage]) -> usize {
    messages
        .iter()
        .map(|m| m.body.get().len() + m.topic.len() + 32)
        .sum::<usize>()
        + 128
}

/// A `'static` stream that calls `fetch` with where the previous page ended (`None` first) and
/// how many items to read, until a page says there is no more. A page's error is yielded after
/// its intact items, and ends the stream.
pub fn paged<T, F>(fetch: F) -> BoxStream<'static, Result<T, StoreError>>
where
    T: PageItem,
    F: FnMut(Option<Resume>, usize) -> BoxFuture<'static, Result<Page<T>, StoreError>>
        + Send
        + 'static,
{
    struct State<F, T> {
        fetch: F,
        /// The next page, already being fetched while the reader handles the current one.
        next: Option<tokio::task::JoinHandle<Result<Page<T>, StoreError>>>,
        resume: Option<Resume>,
        limit: usize,
        done: bool,
    }
    let state = State {
        fetch,
        next: None,
        resume: None,
        limit: FIRST_PAGE,
        done: false,
    };
    stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        let fetched = match state.next.take() {
            Some(prefetched) => prefetched.await.unwrap_or_else(|error| {
                Err(StoreError::storage(
                    crate::error::Operation::ReadLog,
                    crate::error::Scope::Store,
                    error,
                ))
            }),
            None => (state.fetch)(state.resume, state.limit).await,
        };
        let page = fetched.unwrap_or_else(|error| Page {
            items: Vec::new(),
            more: false,
            error: Some(error),
        });
        state.done = !page.more || page.items.is_empty() || page.error.is_some();
        if let Some(last) = page.items.last() {
            state.resume = Some(last.resume());
            let bytes: usize = page.items.iter().map(PageItem::stored_bytes).sum();
            let average = (bytes / page.items.len()).max(1);
            state.limit = (PAGE_BYTES / average).clamp(1, PAGE_SIZE);
        }
        if !state.done {
            // Fetch the next page while the reader works through this one: reading and
            // handling overlap, and memory holds at most two pages.
            state.next = Some(tokio::spawn((state.fetch)(state.resume, state.limit)));
        }
        let results = page.items.into_iter().map(Ok).chain(page.error.map(Err));
        Some((stream::iter(results), state))
    })
    .flatten()
    .boxed()
}

/// A `'static` stream of items read a page of [`PAGE_SIZE`] at a time in the order of a string
/// key (a stream id): `fetch` gets the key of the last item read (`""` first) and returns the
/// next items after it, in key order; a page shorter than [`PAGE_SIZE`] is the last.
pub fn paged_by_key<T, F>(
    key: fn(&T) -> &str,
    fetch: F,
) -> BoxStream<'static, Result<T, StoreError>>
where
    T: Send + 'static,
    F: FnMut(String) -> BoxFuture<'static, Result<Vec<T>, StoreError>> + Send + 'static,
{
    stream::try_unfold(
        (Some(String::new()), fetch),
        move |(after, mut fetch)| async move {
            let Some(after) = after else {
                return Ok(None);
            };
            let page = fetch(after).await?;
            let next = (page.len() >= PAGE_SIZE)
                .then(|| page.last().map(|item| key(item).to_owned()))
                .flatten();
            Ok(Some((
                stream::iter(page.into_iter().map(Ok)),
                (next, fetch),
            )))
        },
    )
    .try_flatten()
    .boxed()
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;
    use crate::model::CommitAttempt;
    use futures::TryStreamExt;

    fn commit(sequence: u64, body_bytes: usize) -> Commit {
        let body = serde_json::value::to_raw_value(&"x".repeat(body_bytes)).unwrap();
        let event = crate::model::EventMessage::from_raw("t", body);
        Commit::from_attempt(
            CommitAttempt::new(
                "t",
                "s",
                sequence,
                sequence,
                Default::default(),
                vec![event],
            ),
            sequence,
        )
    }

    /// Serves commits 1..=total of `body_bytes` each, recording (resume point, limit) per call.
    async fn read(total: u64, body_bytes: usize) -> (Vec<u64>, Vec<(u64, usize)>) {
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let record = calls.clone();
        let all: Vec<Commit> = paged(move |resume, limit| {
            let after = resume.map_or(0, |r| r.commit_sequence);
            record.lock().unwrap().push((after, limit));
            let page = (after + 1..=(after + limit as u64).min(total))
                .map(|n| commit(n, body_bytes))
                .collect();
            async move { Ok(Page::new(page, limit)) }.boxed()
        })
        .try_collect()
        .await
        .unwrap();
        let calls = calls.lock().unwrap().clone();
        (all.iter().map(|c| c.commit_sequence).collect(), calls)
    }

    #[tokio::test]
    async fn pages_resume_after_the_last_commit_until_a_short_page() {
        let (sequences, calls) = read(2_000, 10).await;
        assert_eq!(sequences, (1..=2_000).collect::<Vec<_>>());
        assert_eq!(
            calls,
            vec![(0, FIRST_PAGE), (128, PAGE_SIZE), (1_152, PAGE_SIZE)]
        );
    }

    #[tokio::test]
    async fn large_commits_make_smaller_pages() {
        let (sequences, calls) = read(300, 64 << 10).await;
        assert_eq!(sequences, (1..=300).collect::<Vec<_>>());
        // After a first page of 64 KiB commits, a page asks for about 4 MiB of them.
        assert_eq!(calls[1].0, FIRST_PAGE as u64);
        assert!(
            calls[1..]
                .iter()
                .all(|&(_, limit)| (60..64).contains(&limit)),
            "{calls:?}"
        );
    }

    #[tokio::test]
    async fn a_damaged_row_comes_after_the_intact_rows_before_it_and_ends_the_stream() {
        let rows = vec![Ok(commit(1, 1)), Ok(commit(2, 1)), Err(3), Ok(commit(4, 1))];
        let read: Vec<Result<Commit, StoreError>> = paged(move |_, limit| {
            let page = Page::decode(rows.clone(), limit, |row| {
                row.map_err(|n| StoreError::Corrupt {
                    scope: crate::error::Scope::Store,
                    commit_sequence: Some(n),
                    checkpoint: Some(n),
                    reason: "damaged".into(),
                })
            });
            async move { Ok(page) }.boxed()
        })
        .collect()
        .await;
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].as_ref().unwrap().commit_sequence, 1);
        assert_eq!(read[1].as_ref().unwrap().commit_sequence, 2);
        assert_eq!(read[2].as_ref().unwrap_err().checkpoint(), Some(3));
    }

    #[tokio::test]
    async fn an_error_ends_the_stream_with_that_error() {
        let result: Result<Vec<Commit>, StoreError> = paged(|resume, _| {
            let first = resume.is_none();
            async move {
                if first {
                    Ok(Page::new(vec![commit(1, 1)], 1))
                } else {
                    Err(StoreError::Configuration("boom".into()))
                }
            }
            .boxed()
        })
        .try_collect()
        .await;
        assert!(matches!(result, Err(StoreError::Configuration(m)) if m == "boom"));
    }

    #[test]
    fn a_page_built_row_by_row_takes_nothing_after_a_damaged_row() {
        let mut page = PageBuilder::new(3);
        assert!(page.push(Ok(commit(1, 1))));
        assert!(!page.push(Err(StoreError::Configuration("damaged".into()))));
        assert!(!page.push(Ok(commit(3, 1))));
        let page = page.finish();
        assert_eq!(page.items.len(), 1);
        assert!(!page.more, "a page that met damage is the last");
        assert!(matches!(page.error, Some(StoreError::Configuration(m)) if m == "damaged"));

        let mut full = PageBuilder::new(2);
        assert!(full.push(Ok(commit(1, 1))) && full.push(Ok(commit(2, 1))));
        assert!(full.finish().more, "a full page may have more after it");
        assert!(!PageBuilder::<Commit>::new(2).finish().more);
    }
}
