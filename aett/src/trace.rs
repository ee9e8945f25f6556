//! Instrumentation through `tracing` (feature `tracing`). Without the feature every helper here
//! compiles to nothing, so the hot paths pay nothing for it.
//!
//! Spans: `aett.commit` (tenant, stream, sequence, events), `aett.read` (operation, scope; the
//! number of commits read is recorded when the read ends), `aett.replay` (tenant, stream, type),
//! `aett.runner` (a projection or saga runner's whole run, by name).
//! Events: retries in `update`, checkpoint waits, discarded connections, loads without a usable
//! snapshot; a runner's start position, saved checkpoints, skipped damaged commits, idle waits and
//! the error it stops with.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::stream::{BoxStream, Stream, StreamExt};

#[cfg(feature = "tracing")]
pub(crate) use tracing::Span;

/// Without the feature: a span that is nothing.
#[cfg(not(feature = "tracing"))]
#[derive(Clone)]
pub(crate) struct Span;

/// An event at debug level, or nothing without the feature.
macro_rules! debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "tracing")]
        ::tracing::debug!($($arg)*);
    }};
}
pub(crate) use debug;

/// An event at warning level, or nothing without the feature.
macro_rules! warning {
    ($($arg:tt)*) => {{
        #[cfg(feature = "tracing")]
        ::tracing::warn!($($arg)*);
    }};
}
pub(crate) use warning;

/// The span of one commit.
pub(crate) fn commit_span(attempt: &crate::model::CommitAttempt) -> Span {
    #[cfg(feature = "tracing")]
    {
        tracing::debug_span!(
            "aett.commit",
            tenant = %attempt.tenant_id,
            stream = %attempt.stream_id,
            commit_sequence = attempt.commit_sequence,
            events = attempt.events.len(),
        )
    }
    #[cfg(not(feature = "tracing"))]
    {
        let _ = attempt;
        Span
    }
}

/// The span of one load of an aggregate or saga.
pub(crate) fn replay_span(tenant: &str, stream: &str, target: &'static str) -> Span {
    #[cfg(feature = "tracing")]
    {
        tracing::debug_span!(
            "aett.replay",
            tenant,
            stream,
            target,
            events = tracing::field::Empty
        )
    }
    #[cfg(not(feature = "tracing"))]
    {
        let _ = (tenant, stream, target);
        Span
    }
}

/// The span of one run of a projection or saga runner.
pub(crate) fn runner_span(name: &str) -> Span {
    #[cfg(feature = "tracing")]
    {
        tracing::debug_span!("aett.runner", projection = name)
    }
    #[cfg(not(feature = "tracing"))]
    {
        let _ = name;
        Span
    }
}

/// Records how many events a replay applied.
pub(crate) fn record_replayed(span: &Span, events: u64) {
    #[cfg(feature = "tracing")]
    span.record("events", events);
    #[cfg(not(feature = "tracing"))]
    let _ = (span, events);
}

/// Runs `future` inside `span`.
pub(crate) async fn in_span<F: Future>(span: Span, future: F) -> F::Output {
    #[cfg(feature = "tracing")]
    {
        tracing::Instrument::instrument(future, span).await
    }
    #[cfg(not(feature = "tracing"))]
    {
        let _ = span;
        future.await
    }
}

/// A read as one span: every page is fetched inside it, and when the read ends it records how
/// many items were read and whether it failed.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn read<T: Send + 'static, E: std::fmt::Display + Send + 'static>(
    operation: crate::error::Operation,
    scope: &crate::error::Scope,
    stream: BoxStream<'static, Result<T, E>>,
) -> BoxStream<'static, Result<T, E>> {
    #[cfg(feature = "tracing")]
    {
        let span = tracing::debug_span!("aett.read", %operation, %scope);
        Traced {
            stream,
            span,
            count: 0,
        }
        .boxed()
    }
    #[cfg(not(feature = "tracing"))]
    {
        let _ = (operation, scope);
        stream
    }
}

/// A stream polled inside its span.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
struct Traced<S> {
    stream: S,
    span: Span,
    count: u64,
}

impl<T, E: std::fmt::Display, S: Stream<Item = Result<T, E>> + Unpin> Stream for Traced<S> {
    type Item = Result<T, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        #[cfg(feature = "tracing")]
        let span = self.span.clone();
        #[cfg(feature = "tracing")]
        let _entered = span.enter();
        let polled = self.stream.poll_next_unpin(cx);
        match &polled {
            Poll::Ready(Some(Ok(_))) => self.count += 1,
            Poll::Ready(Some(Err(error))) => {
                debug!(read = self.count, %error, "read failed");
                let _ = error;
            }
            Poll::Ready(None) => debug!(read = self.count, "read finished"),
            Poll::Pending => {}
        }
        polled
    }
}
