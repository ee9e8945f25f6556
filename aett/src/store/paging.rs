//! Turning page-at-a-time reads into one stream of commits.

use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::commit::Commit;
use crate::error::StoreError;

use super::{CommitStream, ReplayCommit, ReplayEvents};

/// The most commits a backend reads per round trip.
pub const PAGE_SIZE: usize = 1024;

/// How many commits the first page of a read asks for.
pub const FIRST_PAGE: usize = 128;

/// About how many stored bytes a page should hold: later pages ask for as many commits as fit,
/// judged by the commits read so far, so memory stays bounded whatever the size of a commit.
pub const PAGE_BYTES: usize = 4 << 20;

/// One page of commits (or of another item read a page at a time), and whether more may follow.
#[derive(Debug)]
pub struct Page<T = Commit> {
    /// The items of this page, in order.
    pub commits: Vec<T>,
    /// Whether the backend may hold more after the last item of this page.
    pub more: bool,
}

impl<T> Page<T> {
    /// A page that is the last one when it holds fewer items than the `limit` asked for.
    pub fn new(commits: Vec<T>, limit: usize) -> Self {
        let more = commits.len() >= limit;
        Self { commits, more }
    }
}

/// Where the previous page ended: a backend resumes after this commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// The last commit's sequence (for reads of one stream).
    pub commit_sequence: u64,
    /// The last commit's checkpoint (for reads across streams); 0 where not known.
    pub checkpoint: u64,
}

/// An item read a page at a time.
pub trait PageItem: Send {
    /// Where a read resumes after this item.
    fn resume(&self) -> Resume;
    /// About how many bytes the item holds, for sizing the next page.
    fn stored_bytes(&self) -> usize;
}

impl PageItem for Commit {
    fn resume(&self) -> Resume {
        Resume {
            commit_sequence: self.commit_sequence,
            checkpoint: self.checkpoint_token,
        }
    }

    fn stored_bytes(&self) -> usize {
        messages_bytes(&self.events)
    }
}

impl PageItem for ReplayCommit {
    fn resume(&self) -> Resume {
        Resume {
            commit_sequence: self.commit_sequence,
            checkpoint: 0,
        }
    }

    fn stored_bytes(&self) -> usize {
        match &self.events {
            ReplayEvents::Json(json) => json.len(),
            ReplayEvents::Messages(messages) => messages_bytes(messages),
        }
    }
}

fn messages_bytes(messages: &[crate::EventMessage]) -> usize {
    messages
        .iter()
        .map(|m| m.body.get().len() + m.topic.len() + 32)
        .sum::<usize>()
        + 128
}

/// A stream that calls `fetch` with where the previous page ended (`None` first) and how many
/// commits to read, until a page says there is no more.
pub fn paged<'a, F>(fetch: F) -> CommitStream<'a>
where
    F: FnMut(Option<Resume>, usize) -> BoxFuture<'a, Result<Page, StoreError>> + Send + 'a,
{
    paged_items(fetch)
}

/// [`paged`] for any item type.
pub fn paged_items<'a, T, F>(fetch: F) -> BoxStream<'a, Result<T, StoreError>>
where
    T: PageItem + 'a,
    F: FnMut(Option<Resume>, usize) -> BoxFuture<'a, Result<Page<T>, StoreError>> + Send + 'a,
{
    struct State<F> {
        fetch: F,
        resume: Option<Resume>,
        limit: usize,
        done: bool,
    }
    let state = State {
        fetch,
        resume: None,
        limit: FIRST_PAGE,
        done: false,
    };
    stream::try_unfold(state, |mut state| async move {
        if state.done {
            return Ok(None);
        }
        let page = (state.fetch)(state.resume, state.limit).await?;
        state.done = !page.more || page.commits.is_empty();
        if let Some(last) = page.commits.last() {
            state.resume = Some(last.resume());
            let bytes: usize = page.commits.iter().map(PageItem::stored_bytes).sum();
            let average = (bytes / page.commits.len()).max(1);
            state.limit = (PAGE_BYTES / average).clamp(1, PAGE_SIZE);
        }
        Ok(Some((
            stream::iter(page.commits.into_iter().map(Ok)),
            state,
        )))
    })
    .try_flatten()
    .boxed()
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;
    use crate::commit::CommitAttempt;

    fn commit(sequence: u64, body_bytes: usize) -> Commit {
        let body = serde_json::value::to_raw_value(&"x".repeat(body_bytes)).unwrap();
        let event = crate::EventMessage::from_raw("t", body);
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
        let mut calls = Vec::new();
        let all: Vec<Commit> = paged(|resume, limit| {
            let after = resume.map_or(0, |r| r.commit_sequence);
            calls.push((after, limit));
            let page = (after + 1..=(after + limit as u64).min(total))
                .map(|n| commit(n, body_bytes))
                .collect();
            async move { Ok(Page::new(page, limit)) }.boxed()
        })
        .try_collect()
        .await
        .unwrap();
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
}
