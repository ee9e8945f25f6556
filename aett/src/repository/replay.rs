//! Replaying stored events into an aggregate or saga. Events a backend hands over as stored JSON
//! are decoded in one pass: each body goes straight from the stored bytes into its typed event,
//! with no `EventMessage`, no untyped value and no second parse.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::domain::ApplyError;
use crate::domain::{Aggregate, Saga, COMMANDS_ONLY_TOPIC};
use crate::error::{Scope, StoreError};
use crate::model::event::Dispatch;
use crate::model::wire::{BorrowedTopic, EventFailure, HeaderVersion, MessageKey};
use crate::repository::RepositoryError;
use crate::store::{ReplayCommit, ReplayEvents};

/// What events are replayed into: an aggregate (apply) or a saga (transition).
pub(crate) trait Target {
    const NAME: &'static str;
    fn apply_body<'de, D: Deserializer<'de>>(
        &mut self,
        topic: &str,
        version: u32,
        body: D,
    ) -> Result<Dispatch, D::Error>;
}

pub(crate) struct Applied<'a, A>(pub &'a mut A);

impl<A: Aggregate> Target for Applied<'_, A> {
    const NAME: &'static str = A::NAME;

    fn apply_body<'de, D: Deserializer<'de>>(
        &mut self,
        topic: &str,
        version: u32,
        body: D,
    ) -> Result<Dispatch, D::Error> {
        self.0.apply_body(topic, version, body)
    }
}

pub(crate) struct Transitioned<'a, S>(pub &'a mut S);

impl<S: Saga> Target for Transitioned<'_, S> {
    const NAME: &'static str = S::NAME;

    fn apply_body<'de, D: Deserializer<'de>>(
        &mut self,
        topic: &str,
        version: u32,
        body: D,
    ) -> Result<Dispatch, D::Error> {
        if topic == COMMANDS_ONLY_TOPIC {
            // Carried only the commands of a save without an event: nothing to transition.
            de::Deserialize::deserialize(body).map(|IgnoredAny| Dispatch::Done(()))
        } else {
            self.0.transition_body(topic, version, body)
        }
    }
}

/// Applies the events of `commit` whose revisions are in `from..=to`, and returns the revision
/// of the last one applied (`None` when none was).
pub(crate) fn replay_commit<T: Target>(
    target: &mut T,
    commit: &ReplayCommit,
    from: u64,
    to: u64,
    tenant: &str,
    stream: &str,
) -> Result<Option<u64>, RepositoryError> {
    if let Some(found) = commit.stream_type.as_deref() {
        if found != T::NAME {
            return Err(RepositoryError::WrongStreamType {
                tenant: tenant.to_owned(),
                stream: stream.to_owned(),
                commit_sequence: commit.commit_sequence,
                expected: T::NAME,
                found: found.to_owned(),
            });
        }
    }
    let first = (commit.stream_revision + 1).saturating_sub(commit.event_count);
    match &commit.events {
        ReplayEvents::Messages(messages) => {
            // The same dispatcher as for stored JSON, each body going straight from its JSON
            // text into its type.
            let mut last = None;
            for (revision, message) in (first..).zip(messages) {
                if revision < from {
                    continue;
                }
                if revision > to {
                    break;
                }
                let fail = |error| {
                    RepositoryError::from_apply(error, tenant, stream, commit.commit_sequence)
                };
                let version = message.version().map_err(fail)?;
                let mut body = serde_json::Deserializer::from_str(message.body.get());
                match target.apply_body(&message.topic, version, &mut body) {
                    Ok(Dispatch::Done(())) => {}
                    Ok(Dispatch::Unlisted) => {
                        return Err(fail(ApplyError::UnknownTopic {
                            topic: message.topic.clone(),
                            target: T::NAME,
                        }))
                    }
                    Ok(Dispatch::Newer { known }) => {
                        return Err(fail(ApplyError::NewerVersion {
                            topic: message.topic.clone(),
                            stored: version,
                            known,
                        }))
                    }
                    Err(source) => {
                        return Err(fail(ApplyError::Decode {
                            topic: message.topic.clone(),
                            source,
                        }))
                    }
                }
                last = Some(revision);
            }
            Ok(last)
        }
        ReplayEvents::Json(json) => {
            let mut failure = None;
            let mut deserializer = serde_json::Deserializer::from_slice(json);
            let visitor = EventsVisitor {
                target,
                revision: first,
                from,
                to,
                failure: &mut failure,
            };
            let result = deserializer
                .deserialize_seq(visitor)
                .and_then(|outcome| deserializer.end().map(|()| outcome));
            let corrupt = |reason: String| StoreError::Corrupt {
                scope: Scope::stream(tenant, stream),
                commit_sequence: Some(commit.commit_sequence),
                checkpoint: None,
                reason,
            };
            match (result, failure) {
                (Ok((count, last)), _) if count == commit.event_count => Ok(last),
                (Ok((count, _)), _) => Err(corrupt(format!(
                    "the commit holds {count} events where {} were recorded",
                    commit.event_count
                ))
                .into()),
                (Err(_), Some(EventFailure::UnknownTopic(topic))) => {
                    Err(RepositoryError::UnknownTopic {
                        tenant: tenant.to_owned(),
                        stream: stream.to_owned(),
                        commit_sequence: commit.commit_sequence,
                        topic,
                        target: T::NAME,
                    })
                }
                (Err(source), Some(EventFailure::Decode(topic))) => Err(RepositoryError::Decode {
                    tenant: tenant.to_owned(),
                    stream: stream.to_owned(),
                    commit_sequence: commit.commit_sequence,
                    topic,
                    source,
                }),
                (
                    Err(_),
                    Some(EventFailure::Newer {
                        topic,
                        stored,
                        known,
                    }),
                ) => Err(RepositoryError::NewerEventVersion {
                    tenant: tenant.to_owned(),
                    stream: stream.to_owned(),
                    commit_sequence: commit.commit_sequence,
                    topic,
                    stored,
                    known,
                }),
                (Err(_), Some(EventFailure::Corrupt(reason))) => Err(corrupt(reason).into()),
                (Err(error), None) => {
                    Err(corrupt(format!("events are not valid JSON: {error}")).into())
                }
            }
        }
    }
}

struct EventsVisitor<'a, T> {
    target: &'a mut T,
    revision: u64,
    from: u64,
    to: u64,
    failure: &'a mut Option<EventFailure>,
}

impl<'de, T: Target> Visitor<'de> for EventsVisitor<'_, T> {
    /// (events seen, revision of the last applied).
    type Value = (u64, Option<u64>);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of event messages")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
        let (mut count, mut last) = (0, None);
        loop {
            let revision = self.revision + count;
            let wanted = revision >= self.from && revision <= self.to;
            let present = if wanted {
                let seed = EventSeed {
                    target: &mut *self.target,
                    failure: &mut *self.failure,
                };
                seq.next_element_seed(seed)?.is_some()
            } else {
                seq.next_element::<IgnoredAny>()?.is_some()
            };
            if !present {
                return Ok((count, last));
            }
            if wanted {
                last = Some(revision);
            }
            count += 1;
        }
    }
}

struct EventSeed<'a, T> {
    target: &'a mut T,
    failure: &'a mut Option<EventFailure>,
}

impl<'de, T: Target> DeserializeSeed<'de> for EventSeed<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: Target> Visitor<'de> for EventSeed<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event message")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        let mut topic: Option<Cow<'de, str>> = None;
        let mut version = 1;
        let mut early_body: Option<Box<serde_json::value::RawValue>> = None;
        let mut applied = false;
        while let Some(key) = map.next_key::<MessageKey>()? {
            match key {
                MessageKey::Topic => topic = Some(map.next_value::<BorrowedTopic<'de>>()?.0),
                MessageKey::Headers => match map.next_value::<HeaderVersion>()?.0 {
                    Ok(stored) if applied && stored != version => {
                        let reason = format!(
                            "the event's version header ({stored}) follows a body read as version {version}"
                        );
                        return Err(EventFailure::Corrupt(reason).stop(self.failure));
                    }
                    Ok(stored) => version = stored,
                    Err(reason) => return Err(EventFailure::Corrupt(reason).stop(self.failure)),
                },
                // Written by something that put the body before the headers: keep it for later.
                MessageKey::Body if early_body.is_none() && topic.is_none() => {
                    early_body = Some(map.next_value()?)
                }
                MessageKey::Body => match &topic {
                    Some(topic) if !applied => {
                        map.next_value_seed(BodySeed {
                            target: &mut *self.target,
                            topic,
                            version,
                            failure: &mut *self.failure,
                        })?;
                        applied = true;
                    }
                    _ => return Err(de::Error::duplicate_field("body")),
                },
                MessageKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let topic = topic.ok_or_else(|| de::Error::missing_field("topic"))?;
        if applied {
            return Ok(());
        }
        let body = early_body.ok_or_else(|| de::Error::missing_field("body"))?;
        let mut body = serde_json::Deserializer::from_str(body.get());
        BodySeed {
            target: self.target,
            topic: &topic,
            version,
            failure: self.failure,
        }
        .deserialize(&mut body)
        .map_err(de::Error::custom)
    }
}

struct BodySeed<'a, T> {
    target: &'a mut T,
    topic: &'a str,
    version: u32,
    failure: &'a mut Option<EventFailure>,
}

impl<'de, T: Target> DeserializeSeed<'de> for BodySeed<'_, T> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, body: D) -> Result<(), D::Error> {
        match self.target.apply_body(self.topic, self.version, body) {
            Ok(Dispatch::Done(())) => Ok(()),
            Ok(Dispatch::Newer { known }) => Err(EventFailure::Newer {
                topic: self.topic.to_owned(),
                stored: self.version,
                known,
            }
            .stop(self.failure)),
            Ok(Dispatch::Unlisted) => {
                Err(EventFailure::UnknownTopic(self.topic.to_owned()).stop(self.failure))
            }
            Err(error) => {
                *self.failure = Some(EventFailure::Decode(self.topic.to_owned()));
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::{AggregateState, Apply};

    #[crate::event(topic = "replay.added")]
    #[derive(Serialize, Deserialize)]
    struct Added {
        n: u64,
    }

    #[derive(Default, crate::Aggregate, Serialize, Deserialize)]
    #[aggregate(events(Added))]
    struct Sum {
        #[serde(skip)]
        state: AggregateState,
        total: u64,
        seen: Vec<u64>,
    }

    impl Apply<Added> for Sum {
        fn apply(&mut self, event: &Added) {
            self.total += event.n;
            self.seen.push(event.n);
        }
    }

    fn commit(json: &str, count: u64) -> ReplayCommit {
        ReplayCommit::from_json(3, 10, count, json.as_bytes().to_vec())
    }

    fn replay(
        json: &str,
        count: u64,
        from: u64,
        to: u64,
    ) -> (Sum, Result<Option<u64>, RepositoryError>) {
        let mut sum = Sum::default();
        let result = replay_commit(
            &mut Applied(&mut sum),
            &commit(json, count),
            from,
            to,
            "t",
            "s",
        );
        (sum, result)
    }

    const THREE: &str = r#"[{"topic":"replay.added","body":{"n":1}},{"topic":"replay.added","headers":{"h":[1,{"x":2}]},"body":{"n":2}},{"topic":"replay.added","body":{"n":3}}]"#;

    #[test]
    fn only_events_in_the_revision_window_are_applied() {
        // Three events ending at revision 10: revisions 8, 9, 10.
        let (sum, last) = replay(THREE, 3, 9, 9);
        assert_eq!((sum.seen, last.unwrap()), (vec![2], Some(9)));
        let (sum, last) = replay(THREE, 3, 0, u64::MAX);
        assert_eq!((sum.seen, last.unwrap()), (vec![1, 2, 3], Some(10)));
        let (sum, last) = replay(THREE, 3, 11, u64::MAX);
        assert_eq!((sum.seen.len(), last.unwrap()), (0, None));
    }

    #[test]
    fn a_body_written_before_its_topic_still_applies() {
        let (sum, last) = replay(
            r#"[{"body":{"n":7},"headers":{},"topic":"replay.added"}]"#,
            1,
            0,
            u64::MAX,
        );
        assert_eq!((sum.total, last.unwrap()), (7, Some(10)));
    }

    #[test]
    fn escaped_topics_are_compared_unescaped() {
        let (sum, _) = replay(
            r#"[{"topic":"replay\u002eadded","body":{"n":4}}]"#,
            1,
            0,
            u64::MAX,
        );
        assert_eq!(sum.total, 4);
    }

    #[test]
    fn an_unknown_topic_names_the_commit_and_the_type() {
        match replay(r#"[{"topic":"other","body":{}}]"#, 1, 0, u64::MAX).1 {
            Err(RepositoryError::UnknownTopic {
                commit_sequence: 3,
                topic,
                target: "Sum",
                ..
            }) => assert_eq!(topic, "other"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_body_of_the_wrong_shape_is_a_decode_error() {
        match replay(
            r#"[{"topic":"replay.added","body":{"n":"x"}}]"#,
            1,
            0,
            u64::MAX,
        )
        .1
        {
            Err(RepositoryError::Decode {
                commit_sequence: 3,
                topic,
                ..
            }) => assert_eq!(topic, "replay.added"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn damaged_json_and_wrong_counts_are_corrupt_data() {
        for (json, count) in [
            ("[{\"topic\":\"replay.added\",\"body\":{\"n\":1}", 1),
            ("not json", 1),
            ("[{\"body\":{\"n\":1}}]", 1),
            ("[{\"topic\":\"replay.added\"}]", 1),
            (THREE, 2),
            (&format!("{THREE} trailing"), 3),
        ] {
            match replay(json, count, 0, u64::MAX).1 {
                Err(RepositoryError::Store(StoreError::Corrupt {
                    commit_sequence: Some(3),
                    scope,
                    ..
                })) => {
                    assert_eq!(scope, Scope::stream("t", "s"));
                }
                other => panic!("{json}: {other:?}"),
            }
        }
    }
}
