//! Conflict detection: is a commit that lost the race really in conflict with the winners?

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use crate::domain::ApplyError;
use crate::error::StoreError;
use crate::model::Event;
use crate::model::EventMessage;
use crate::model::{Commit, CommitAttempt};

type Delegate = Arc<dyn Fn(&EventMessage, &EventMessage) -> Result<bool, ApplyError> + Send + Sync>;

/// Decides whether a commit that lost an optimistic-concurrency race conflicts with the
/// commits that won it.
///
/// When a writer's commit sequence is taken, the store compares the writer's events with the
/// events of the commits the writer had **not** seen (never the whole history). For each pair
/// (uncommitted event, committed event) it asks the delegate registered for that pair of types:
///
/// ```
/// # use serde::{Deserialize, Serialize};
/// #[aett::event(topic = "bank.withdrawn")]
/// #[derive(Serialize, Deserialize)]
/// struct Withdrawn { account: String, amount: u64 }
///
/// let mut detector = aett::ConflictDetector::new();
/// detector.register(|mine: &Withdrawn, theirs: &Withdrawn| mine.account == theirs.account);
/// ```
///
/// Any delegate answering `true` makes the commit conflicting. A pair without a delegate:
///
/// - in the default mode ([`ConflictDetector::new`], as the original aett) never conflicts;
/// - in strict mode ([`ConflictDetector::strict`], as NEventStore) conflicts when both events
///   have the same topic, and never otherwise.
///
/// Only events for which a delegate is registered are decoded.
#[derive(Default)]
pub struct ConflictDetector {
    delegates: HashMap<(&'static str, &'static str), Delegate>,
    strict: bool,
}

impl fmt::Debug for ConflictDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut pairs: Vec<_> = self.delegates.keys().collect();
        pairs.sort();
        f.debug_struct("ConflictDetector")
            .field("strict", &self.strict)
            .field("delegates", &pairs)
            .finish()
    }
}

impl ConflictDetector {
    /// A detector in the default mode: no delegate for a pair means no conflict.
    pub fn new() -> Self {
        Self::default()
    }

    /// A detector in strict mode: two events of the same topic without a delegate conflict.
    pub fn strict() -> Self {
        Self {
            strict: true,
            ..Self::default()
        }
    }

    /// Whether this detector is in strict mode.
    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// Registers the delegate for an uncommitted event of type `A` against a committed event
    /// of type `B`; it returns `true` when the two conflict. Registering a pair again replaces
    /// its delegate.
    pub fn register<A, B, F>(&mut self, delegate: F) -> &mut Self
    where
        A: Event,
        B: Event,
        F: Fn(&A, &B) -> bool + Send + Sync + 'static,
    {
        let erased: Delegate = Arc::new(move |mine, theirs| {
            let mine: A = decode(mine)?;
            let theirs: B = decode(theirs)?;
            Ok(delegate(&mine, &theirs))
        });
        // Under every topic either type is read from, aliases included.
        let topics = |topics: &'static [&'static str], aliases: &'static [&'static str]| {
            topics.iter().chain(aliases).copied()
        };
        for mine in topics(A::TOPICS, A::ALIASES) {
            for theirs in topics(B::TOPICS, B::ALIASES) {
                self.delegates.insert((mine, theirs), erased.clone());
            }
        }
        self
    }

    /// Whether `attempt` conflicts with `committed`, the commits it had not seen.
    pub fn conflicts(
        &self,
        attempt: &CommitAttempt,
        committed: &[Commit],
    ) -> Result<bool, StoreError> {
        for mine in &attempt.events {
            for theirs in committed.iter().flat_map(|commit| &commit.events) {
                let conflict = match self
                    .delegates
                    .get(&(mine.topic.as_str(), theirs.topic.as_str()))
                {
                    Some(delegate) => {
                        delegate(mine, theirs).map_err(|source| StoreError::ConflictDetection {
                            tenant: attempt.tenant_id.clone(),
                            stream: attempt.stream_id.clone(),
                            topic: source.topic().to_owned(),
                            source: Box::new(source),
                        })?
                    }
                    None => self.strict && mine.topic == theirs.topic,
                };
                if conflict {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }
}

fn decode<E: Event>(message: &EventMessage) -> Result<E, ApplyError> {
    message
        .decode_event()?
        .ok_or_else(|| ApplyError::UnknownTopic {
            topic: message.topic.clone(),
            target: std::any::type_name::<E>(),
        })
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;

    #[crate::event(topic = "unit.withdrawn")]
    #[derive(Serialize, Deserialize)]
    struct Withdrawn {
        account: String,
    }

    #[crate::event(topic = "unit.renamed")]
    #[derive(Serialize, Deserialize)]
    struct Renamed {}

    fn attempt(events: Vec<EventMessage>) -> CommitAttempt {
        CommitAttempt::new("t", "s", 2, 2, Default::default(), events)
    }

    fn committed(events: Vec<EventMessage>) -> Vec<Commit> {
        vec![Commit::from_attempt(
            CommitAttempt::new("t", "s", 1, 1, Default::default(), events),
            1,
        )]
    }

    fn withdrawn(account: &str) -> EventMessage {
        EventMessage::from_event(&Withdrawn {
            account: account.into(),
        })
        .unwrap()
    }

    fn garbage(topic: &str) -> EventMessage {
        EventMessage::from_raw(
            topic,
            serde_json::value::to_raw_value(&"not an object").unwrap(),
        )
    }

    #[test]
    fn delegates_decide_per_pair_of_types() {
        let mut detector = ConflictDetector::new();
        detector.register(|mine: &Withdrawn, theirs: &Withdrawn| mine.account == theirs.account);
        let theirs = committed(vec![withdrawn("a")]);
        assert!(detector
            .conflicts(&attempt(vec![withdrawn("a")]), &theirs)
            .unwrap());
        assert!(!detector
            .conflicts(&attempt(vec![withdrawn("b")]), &theirs)
            .unwrap());
        assert!(
            detector
                .conflicts(&attempt(vec![withdrawn("b"), withdrawn("a")]), &theirs)
                .unwrap(),
            "any pair conflicting is enough"
        );
    }

    #[test]
    fn default_mode_without_delegate_never_conflicts_strict_mode_conflicts_on_same_topic() {
        let renamed = || EventMessage::from_event(&Renamed {}).unwrap();
        let theirs = committed(vec![renamed()]);
        assert!(!ConflictDetector::new()
            .conflicts(&attempt(vec![renamed()]), &theirs)
            .unwrap());
        assert!(ConflictDetector::strict()
            .conflicts(&attempt(vec![renamed()]), &theirs)
            .unwrap());
        assert!(!ConflictDetector::strict()
            .conflicts(&attempt(vec![withdrawn("a")]), &theirs)
            .unwrap());
        assert!(ConflictDetector::strict().is_strict() && !ConflictDetector::new().is_strict());
    }

    #[test]
    fn only_events_a_delegate_asks_for_are_decoded() {
        let mut detector = ConflictDetector::new();
        detector.register(|_: &Withdrawn, _: &Withdrawn| false);
        // Bodies that would not decode, under topics no delegate asks for: never touched.
        let theirs = committed(vec![garbage("other.topic")]);
        assert!(!detector
            .conflicts(&attempt(vec![garbage("unit.renamed")]), &theirs)
            .unwrap());
        // The same damage under a topic a delegate asks for is a typed error naming the stream.
        let theirs = committed(vec![garbage(Withdrawn::TOPIC)]);
        match detector.conflicts(&attempt(vec![withdrawn("a")]), &theirs) {
            Err(StoreError::ConflictDetection {
                tenant,
                stream,
                topic,
                ..
            }) => {
                assert_eq!(
                    (tenant.as_str(), stream.as_str(), topic.as_str()),
                    ("t", "s", Withdrawn::TOPIC)
                );
            }
            other => panic!("expected ConflictDetection, got {other:?}"),
        }
        assert!(format!("{detector:?}").contains("unit.withdrawn"));
    }
}
