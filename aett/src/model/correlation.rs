//! Correlation and causation: which conversation a message belongs to, and what caused it.

use uuid::Uuid;

use crate::model::{Commit, Headers};

/// The header naming the conversation a message belongs to: the id of the request or command
/// that started it, carried unchanged by every message that follows from it.
pub const CORRELATION_HEADER: &str = "aett.correlation_id";

/// The header naming what directly caused a message: a request's or command's id, or an
/// event's (`"{commit id}/{event index}"`, see [`Correlation::event_id`]).
pub const CAUSATION_HEADER: &str = "aett.causation_id";

/// Where a message belongs and what caused it, as commits and commands carry them in
/// [`CORRELATION_HEADER`] and [`CAUSATION_HEADER`].
///
/// A conversation starts at a request ([`Correlation::start`]); every commit and command that
/// follows from it keeps its correlation id, and names its own cause. The saga runner does
/// this by itself for sagas and their commands; an application passes it on to a repository
/// with [`crate::AggregateRepository::correlated`] (or the headers given to `save`).
///
/// ```
/// use aett::Correlation;
///
/// let request = Correlation::start("request-17");
/// let headers = request.headers();
/// assert_eq!(Correlation::from_headers(&headers), Some(request));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Correlation {
    /// The conversation: the id of the request or command that started it.
    pub correlation_id: String,
    /// The message that directly caused this one.
    pub causation_id: String,
}

impl Correlation {
    /// A correlation from its two ids.
    pub fn new(correlation_id: impl Into<String>, causation_id: impl Into<String>) -> Self {
        Self {
            correlation_id: correlation_id.into(),
            causation_id: causation_id.into(),
        }
    }

    /// The start of a conversation: a request or command with id `id`, caused by nothing
    /// before it (both ids are `id`).
    pub fn start(id: impl Into<String>) -> Self {
        let id = id.into();
        Self::new(id.clone(), id)
    }

    /// What `headers` carry: `None` without a [`CORRELATION_HEADER`] (a causation id missing
    /// beside it is taken to be the correlation id). Ids that are not strings are read as
    /// their JSON text.
    pub fn from_headers(headers: &Headers) -> Option<Self> {
        let text = |value: &serde_json::Value| match value {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let correlation = text(headers.get(CORRELATION_HEADER)?);
        let causation = headers
            .get(CAUSATION_HEADER)
            .map_or_else(|| correlation.clone(), text);
        Some(Self::new(correlation, causation))
    }

    /// For what the event at `index` of a commit causes: the conversation of the event (its own
    /// headers, else its commit's; an event that carries none starts one, under its own id),
    /// and the event as the cause.
    pub fn caused_by_event(
        commit_id: Uuid,
        index: usize,
        commit_headers: &Headers,
        event_headers: &Headers,
    ) -> Self {
        let event_id = Self::event_id(commit_id, index);
        let correlation = Self::from_headers(event_headers)
            .or_else(|| Self::from_headers(commit_headers))
            .map_or_else(|| event_id.clone(), |found| found.correlation_id);
        Self::new(correlation, event_id)
    }

    /// [`Correlation::caused_by_event`] for the event at `index` of `commit`.
    ///
    /// # Panics
    /// When `commit` has no event at `index`.
    pub fn caused_by(commit: &Commit, index: usize) -> Self {
        Self::caused_by_event(
            commit.commit_id,
            index,
            &commit.headers,
            &commit.events[index].headers,
        )
    }

    /// The id of the event at `index` of the commit `commit_id`: `"{commit id}/{index}"`.
    pub fn event_id(commit_id: Uuid, index: usize) -> String {
        format!("{commit_id}/{index}")
    }

    /// The two headers.
    pub fn headers(&self) -> Headers {
        let mut headers = Headers::new();
        self.add_to(&mut headers);
        headers
    }

    /// Adds the two headers to `headers`, keeping any already there.
    pub fn add_to(&self, headers: &mut Headers) {
        headers
            .entry(CORRELATION_HEADER.to_owned())
            .or_insert_with(|| self.correlation_id.clone().into());
        headers
            .entry(CAUSATION_HEADER.to_owned())
            .or_insert_with(|| self.causation_id.clone().into());
    }
}
