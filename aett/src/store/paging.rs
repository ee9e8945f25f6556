//! Turning page-at-a-time reads into one stream of commits.

use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::commit::Commit;
use crate::error::StoreError;

use super::CommitStream;

/// How many commits a backend reads per round trip.
pub const PAGE_SIZE: usize = 512;

/// One page of commits (or of another item read a page at a time), and whether more may follow.
#[derive(Debug)]
pub struct Page<T = Commit> {
    /// The items of this page, in order.
    pub commits: Vec<T>,
    /// Whether the backend may hold more after the last item of this page.
    pub more: bool,
}

impl<T> Page<T> {
    /// A page that is the last one when it holds fewer than `page_size` items.
    pub fn new(commits: Vec<T>, page_size: usize) -> Self {
        let more = commits.len() >= page_size;
        Self { commits, more }
    }
}

/// A stream that calls `fetch` with the last commit of the previous page (`None` first) until a
/// page says there is no more; a backend resumes after that commit's sequence or checkpoint.
pub fn paged<'a, F>(fetch: F) -> CommitStream<'a>
where
    F: FnMut(Option<&Commit>) -> BoxFuture<'a, Result<Page, StoreError>> + Send + 'a,
{
    paged_items(fetch)
}

/// [`paged`] for any item type.
pub fn paged_items<'a, T, F>(fetch: F) -> BoxStream<'a, Result<T, StoreError>>
where
    T: Clone + Send + 'a,
    F: FnMut(Option<&T>) -> BoxFuture<'a, Result<Page<T>, StoreError>> + Send + 'a,
{
    struct State<F, T> {
        fetch: F,
        last: Option<T>,
        done: bool,
    }
    let state = State {
        fetch,
        last: None,
        done: false,
    };
    stream::try_unfold(state, |mut state| async move {
        if state.done {
            return Ok(None);
        }
        let page = (state.fetch)(state.last.as_ref()).await?;
        state.done = !page.more || page.commits.is_empty();
        if let Some(last) = page.commits.last() {
            state.last = Some(last.clone());
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

    fn commit(sequence: u64) -> Commit {
        let event =
            crate::EventMessage::from_raw("t", serde_json::value::to_raw_value(&sequence).unwrap());
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

    #[tokio::test]
    async fn pages_resume_after_the_last_commit_until_a_short_page() {
        let mut calls = Vec::new();
        let all: Vec<Commit> = paged(|last| {
            let after = last.map_or(0, |c| c.commit_sequence);
            calls.push(after);
            async move {
                Ok(Page::new(
                    (after + 1..=(after + 2).min(5)).map(commit).collect(),
                    2,
                ))
            }
            .boxed()
        })
        .try_collect()
        .await
        .unwrap();
        assert_eq!(
            all.iter().map(|c| c.commit_sequence).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(calls, vec![0, 2, 4]);
    }

    #[tokio::test]
    async fn an_error_ends_the_stream_with_that_error() {
        let result: Result<Vec<Commit>, StoreError> = paged(|last| {
            let first = last.is_none();
            async move {
                if first {
                    Ok(Page::new(vec![commit(1)], 1))
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
