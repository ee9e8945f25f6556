//! Reading a replayed commit's stored JSON in one pass: its events borrowed from the stored
//! bytes (topic, headers, body), nothing decoded that no handler asks for.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{Scope, StoreError};
use crate::model::{Commit, EventMessage, Headers};
use crate::store::{ReplayEvents, ReplayHeaders, ReplayLogCommit};

static NO_HEADERS: Headers = Headers::new();

/// One stored event, borrowed from the commit's JSON.
#[derive(Deserialize)]
struct StoredEvent<'a> {
    #[serde(borrow)]
    topic: Cow<'a, str>,
    #[serde(default, borrow)]
    headers: Option<&'a RawValue>,
    #[serde(borrow)]
    body: &'a RawValue,
}

/// An event of a replayed commit: its topic and body as stored, its headers read on demand.
pub(crate) struct Event<'a> {
    pub topic: &'a str,
    pub body: &'a str,
    headers: EventHeaders<'a>,
}

enum EventHeaders<'a> {
    Parsed(&'a Headers),
    Json(Option<&'a RawValue>),
}

/// A replayed commit's events, read in one pass.
pub(crate) struct Events<'a> {
    stored: Vec<StoredEvent<'a>>,
    messages: &'a [EventMessage],
}

fn damaged(commit: &ReplayLogCommit, reason: String) -> StoreError {
    StoreError::Corrupt {
        scope: Scope::stream(&commit.tenant_id, &commit.stream_id),
        commit_sequence: Some(commit.commit_sequence),
        checkpoint: Some(commit.checkpoint),
        reason,
    }
}

/// The commit's headers; damage is [`StoreError::Corrupt`] naming the commit.
pub(crate) fn headers(commit: &ReplayLogCommit) -> Result<Cow<'_, Headers>, StoreError> {
    match &commit.headers {
        ReplayHeaders::Parsed(headers) => Ok(Cow::Borrowed(headers)),
        ReplayHeaders::Json(json) if json.as_slice() == b"{}" => Ok(Cow::Borrowed(&NO_HEADERS)),
        ReplayHeaders::Json(json) => serde_json::from_slice(json)
            .map(Cow::Owned)
            .map_err(|e| damaged(commit, format!("headers are not valid JSON: {e}"))),
    }
}

/// The commit's events, each borrowed from the stored JSON; damage (not JSON, no events, more
/// events than the revision allows) is [`StoreError::Corrupt`] naming the commit.
pub(crate) fn events(commit: &ReplayLogCommit) -> Result<Events<'_>, StoreError> {
    let events = match &commit.events {
        ReplayEvents::Messages(messages) => Events {
            stored: Vec::new(),
            messages,
        },
        ReplayEvents::Json(json) => Events {
            stored: serde_json::from_slice(json)
                .map_err(|e| damaged(commit, format!("events are not valid JSON: {e}")))?,
            messages: &[],
        },
    };
    let count = events.len() as u64;
    if count == 0 || count > commit.stream_revision {
        return Err(damaged(
            commit,
            format!(
                "{count} events do not fit stream revision {}",
                commit.stream_revision
            ),
        ));
    }
    Ok(events)
}

impl<'a> Events<'a> {
    pub fn len(&self) -> usize {
        self.stored.len() + self.messages.len()
    }

    /// The events, in order.
    pub fn iter(&self) -> impl Iterator<Item = Event<'_>> {
        let stored = self.stored.iter().map(|event| Event {
            topic: &event.topic,
            body: event.body.get(),
            headers: EventHeaders::Json(event.headers),
        });
        let messages = self.messages.iter().map(|message| Event {
            topic: &message.topic,
            body: message.body.get(),
            headers: EventHeaders::Parsed(&message.headers),
        });
        stored.chain(messages)
    }
}

impl Event<'_> {
    /// The event's headers; damage is [`StoreError::Corrupt`] naming the commit.
    pub fn headers(&self, commit: &ReplayLogCommit) -> Result<Cow<'_, Headers>, StoreError> {
        match self.headers {
            EventHeaders::Parsed(headers) => Ok(Cow::Borrowed(headers)),
            EventHeaders::Json(None) => Ok(Cow::Borrowed(&NO_HEADERS)),
            EventHeaders::Json(Some(json)) => serde_json::from_str(json.get())
                .map(Cow::Owned)
                .map_err(|e| damaged(commit, format!("event headers are not valid JSON: {e}"))),
        }
    }

    /// The event as an owned message.
    pub fn to_message(&self, commit: &ReplayLogCommit) -> Result<EventMessage, StoreError> {
        let body = RawValue::from_string(self.body.to_owned())
            .map_err(|e| damaged(commit, format!("an event body is not valid JSON: {e}")))?;
        let mut message = EventMessage::from_raw(self.topic, body);
        message.headers = self.headers(commit)?.into_owned();
        Ok(message)
    }
}

/// The whole commit, decoded (for the saga runner, which hands sagas owned messages).
pub(crate) fn to_commit(commit: &ReplayLogCommit) -> Result<Commit, StoreError> {
    let headers = headers(commit)?.into_owned();
    let events = events(commit)?;
    let messages = events
        .iter()
        .map(|event| event.to_message(commit))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Commit {
        tenant_id: commit.tenant_id.clone(),
        stream_id: commit.stream_id.clone(),
        stream_revision: commit.stream_revision,
        commit_id: commit.commit_id,
        commit_sequence: commit.commit_sequence,
        commit_stamp: commit.commit_stamp,
        headers,
        events: messages,
        stream_type: commit.stream_type.clone(),
        checkpoint: commit.checkpoint,
    })
}
