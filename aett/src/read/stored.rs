//! Reading a replayed commit's stored JSON in one pass: the events a projection lists decoded
//! straight into their types, the others skipped unread.

use std::any::Any;
use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use crate::domain::ApplyError;
use crate::error::{Scope, StoreError};
use crate::model::event::Dispatch;
use crate::model::wire::{BorrowedTopic, EventFailure, HeaderVersion, MessageKey};
use crate::model::{Commit, Headers};
use crate::read::Projection;
use crate::store::{ReplayEvents, ReplayHeaders, ReplayLogCommit};

static NO_HEADERS: Headers = Headers::new();

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

/// Checks that a commit holds between one event and as many as its revision allows.
fn check_count(commit: &ReplayLogCommit, count: usize) -> Result<(), StoreError> {
    if count == 0 || count as u64 > commit.stream_revision {
        return Err(damaged(
            commit,
            format!(
                "{count} events do not fit stream revision {}",
                commit.stream_revision
            ),
        ));
    }
    Ok(())
}

/// The whole commit, decoded (for the saga runner, which hands sagas owned messages).
pub(crate) fn to_commit(commit: &ReplayLogCommit) -> Result<Commit, StoreError> {
    let headers = headers(commit)?.into_owned();
    let events = match &commit.events {
        ReplayEvents::Messages(messages) => messages.clone(),
        ReplayEvents::Json(json) => serde_json::from_slice(json)
            .map_err(|e| damaged(commit, format!("events are not valid JSON: {e}")))?,
    };
    check_count(commit, events.len())?;
    Ok(Commit {
        tenant_id: commit.tenant_id.clone(),
        stream_id: commit.stream_id.clone(),
        stream_revision: commit.stream_revision,
        commit_id: commit.commit_id,
        commit_sequence: commit.commit_sequence,
        commit_stamp: commit.commit_stamp,
        headers,
        events,
        stream_type: commit.stream_type.clone(),
        checkpoint: commit.checkpoint,
    })
}

/// A listed event of a replayed commit, decoded into its type in the one pass over the stored
/// JSON, with its headers read.
pub(crate) struct Listed {
    pub index: usize,
    pub topic: &'static str,
    pub headers: Headers,
    pub event: Box<dyn Any + Send>,
}

/// Why the events of a commit could not be handed to a projection.
pub(crate) enum Fault {
    /// The stored data is damaged.
    Damaged(StoreError),
    /// A listed event's body does not decode into its type, or is at a version newer than
    /// its type knows.
    Decode { topic: String, source: ApplyError },
}

/// The fault an event's failure makes, given the serde error the read stopped with.
fn into_fault(failure: EventFailure, commit: &ReplayLogCommit, error: serde_json::Error) -> Fault {
    let decode = |source: ApplyError| Fault::Decode {
        topic: source.topic().to_owned(),
        source,
    };
    match failure {
        EventFailure::Decode(topic) => decode(ApplyError::Decode {
            topic,
            source: error,
        }),
        EventFailure::Newer {
            topic,
            stored,
            known,
        } => decode(ApplyError::NewerVersion {
            topic,
            stored,
            known,
        }),
        // A projection passes over topics it does not list; nothing reports one.
        EventFailure::UnknownTopic(topic) => decode(ApplyError::UnknownTopic {
            topic,
            target: "a projection",
        }),
        EventFailure::Corrupt(reason) => Fault::Damaged(damaged(commit, reason)),
    }
}

/// The events of `commit` that `P` lists, each decoded straight from the stored JSON into its
/// type in one pass (the others skipped unread), and how many events the commit holds.
pub(crate) fn decode_listed<P: Projection>(
    commit: &ReplayLogCommit,
) -> Result<(usize, Vec<Listed>), Fault> {
    let (count, listed) = match &commit.events {
        ReplayEvents::Messages(messages) => {
            let mut listed = Vec::new();
            for (index, message) in messages.iter().enumerate() {
                if !P::TOPICS.contains(&message.topic.as_str()) {
                    continue;
                }
                let fault = |source| Fault::Decode {
                    topic: message.topic.clone(),
                    source,
                };
                let version = message
                    .version()
                    .map_err(|error| Fault::Damaged(damaged(commit, error.to_string())))?;
                let mut body = serde_json::Deserializer::from_str(message.body.get());
                let event = match P::decode_body(&message.topic, version, &mut body) {
                    Ok(Dispatch::Done(event)) => event,
                    Ok(Dispatch::Newer { known }) => {
                        return Err(fault(ApplyError::NewerVersion {
                            topic: message.topic.clone(),
                            stored: version,
                            known,
                        }))
                    }
                    Ok(Dispatch::Unlisted) => {
                        return Err(Fault::Damaged(damaged(
                            commit,
                            "a listed topic was not decoded".into(),
                        )))
                    }
                    Err(source) => {
                        return Err(fault(ApplyError::Decode {
                            topic: message.topic.clone(),
                            source,
                        }))
                    }
                };
                listed.push(Listed {
                    index,
                    topic: listed_topic::<P>(&message.topic),
                    headers: message.headers.clone(),
                    event,
                });
            }
            (messages.len(), listed)
        }
        ReplayEvents::Json(json) => {
            let mut failure = None;
            let mut listed = Vec::new();
            let mut deserializer = serde_json::Deserializer::from_slice(json);
            let visited = deserializer
                .deserialize_seq(ListedVisitor::<P> {
                    listed: &mut listed,
                    failure: &mut failure,
                    projection: std::marker::PhantomData,
                })
                .and_then(|count| deserializer.end().map(|()| count));
            match (visited, failure) {
                (Ok(count), _) => (count, listed),
                (Err(source), Some(failure)) => return Err(into_fault(failure, commit, source)),
                (Err(error), None) => {
                    return Err(Fault::Damaged(damaged(
                        commit,
                        format!("events are not valid JSON: {error}"),
                    )))
                }
            }
        }
    };
    check_count(commit, count).map_err(Fault::Damaged)?;
    Ok((count, listed))
}

struct ListedVisitor<'a, P> {
    listed: &'a mut Vec<Listed>,
    /// Why the pass stopped, when the fault is an event's.
    failure: &'a mut Option<EventFailure>,
    projection: std::marker::PhantomData<fn() -> P>,
}

impl<'de, P: Projection> Visitor<'de> for ListedVisitor<'_, P> {
    /// How many events the array holds.
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of event messages")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<usize, S::Error> {
        let mut index = 0;
        while let Some(found) = seq.next_element_seed(MessageSeed::<P> {
            failure: &mut *self.failure,
            projection: std::marker::PhantomData,
        })? {
            if let Some((topic, headers, event)) = found {
                let headers = match headers {
                    Some(raw) => serde_json::from_str(raw.get()).map_err(de::Error::custom)?,
                    None => Headers::new(),
                };
                self.listed.push(Listed {
                    index,
                    topic,
                    headers,
                    event,
                });
            }
            index += 1;
        }
        Ok(index)
    }
}

/// One stored message: its listed event decoded (with its topic and raw headers), or `None`
/// for a topic the projection does not list.
type Found<'de> = Option<(&'static str, Option<&'de RawValue>, Box<dyn Any + Send>)>;

/// The projection's own copy of a listed topic.
fn listed_topic<P: Projection>(topic: &str) -> &'static str {
    P::TOPICS
        .iter()
        .find(|listed| **listed == topic)
        .copied()
        .unwrap_or_default()
}

struct MessageSeed<'a, P> {
    failure: &'a mut Option<EventFailure>,
    projection: std::marker::PhantomData<fn() -> P>,
}

impl<'de, P: Projection> DeserializeSeed<'de> for MessageSeed<'_, P> {
    type Value = Found<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, P: Projection> Visitor<'de> for MessageSeed<'_, P> {
    type Value = Found<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event message")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut topic: Option<Cow<'de, str>> = None;
        let mut headers: Option<&'de RawValue> = None;
        let mut early_body: Option<&'de RawValue> = None;
        let mut event: Option<Box<dyn Any + Send>> = None;
        let mut seen_body = false;
        while let Some(key) = map.next_key::<MessageKey>()? {
            match key {
                MessageKey::Topic => topic = Some(map.next_value::<BorrowedTopic<'de>>()?.0),
                MessageKey::Headers => {
                    let raw: &'de RawValue = map.next_value()?;
                    if seen_body && event.is_some() && version(raw, self.failure)? != 1 {
                        let reason = "the event's version header follows its body".to_owned();
                        return Err(EventFailure::Corrupt(reason).stop(self.failure));
                    }
                    headers = Some(raw);
                }
                MessageKey::Body => {
                    seen_body = true;
                    match &topic {
                        Some(topic) if P::TOPICS.contains(&topic.as_ref()) => {
                            let version = match headers {
                                Some(raw) => version(raw, self.failure)?,
                                None => 1,
                            };
                            event = map.next_value_seed(BodySeed::<P> {
                                topic,
                                version,
                                failure: &mut *self.failure,
                                projection: std::marker::PhantomData,
                            })?;
                        }
                        Some(_) => {
                            map.next_value::<IgnoredAny>()?;
                        }
                        // Written by something that put the body first: keep it for later.
                        None => early_body = Some(map.next_value()?),
                    }
                }
                MessageKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let topic = topic.ok_or_else(|| de::Error::missing_field("topic"))?;
        if !seen_body {
            return Err(de::Error::missing_field("body"));
        }
        if let (None, Some(body)) = (&event, early_body) {
            if P::TOPICS.contains(&topic.as_ref()) {
                let version = match headers {
                    Some(raw) => version(raw, self.failure)?,
                    None => 1,
                };
                let mut body = serde_json::Deserializer::from_str(body.get());
                event = BodySeed::<P> {
                    topic: &topic,
                    version,
                    failure: &mut *self.failure,
                    projection: std::marker::PhantomData,
                }
                .deserialize(&mut body)
                .map_err(de::Error::custom)?;
            }
        }
        Ok(event.map(|event| (listed_topic::<P>(&topic), headers, event)))
    }
}

/// The version a message's raw headers record; a header that is not a version stops the pass.
fn version<E: de::Error>(raw: &RawValue, failure: &mut Option<EventFailure>) -> Result<u32, E> {
    let parsed = serde_json::from_str::<HeaderVersion>(raw.get())
        .map_err(|e| format!("headers are not valid JSON: {e}"))
        .and_then(|version| version.0);
    parsed.map_err(|reason| EventFailure::Corrupt(reason).stop(failure))
}

struct BodySeed<'a, P> {
    topic: &'a str,
    version: u32,
    failure: &'a mut Option<EventFailure>,
    projection: std::marker::PhantomData<fn() -> P>,
}

impl<'de, P: Projection> DeserializeSeed<'de> for BodySeed<'_, P> {
    type Value = Option<Box<dyn Any + Send>>;

    fn deserialize<D: Deserializer<'de>>(self, body: D) -> Result<Self::Value, D::Error> {
        match P::decode_body(self.topic, self.version, body) {
            Ok(Dispatch::Done(event)) => Ok(Some(event)),
            Ok(Dispatch::Unlisted) => Ok(None),
            Ok(Dispatch::Newer { known }) => Err(EventFailure::Newer {
                topic: self.topic.to_owned(),
                stored: self.version,
                known,
            }
            .stop(self.failure)),
            Err(error) => {
                *self.failure = Some(EventFailure::Decode(self.topic.to_owned()));
                Err(error)
            }
        }
    }
}
