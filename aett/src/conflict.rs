//! Conflict detection: is a commit that lost the race really in conflict with the winners?

use std::collections::HashMap;
use std::fmt;

use crate::commit::{Commit, CommitAttempt};
use crate::error::StoreError;
use crate::event::Event;
use crate::message::EventMessage;

type Delegate =
    Box<dyn Fn(&EventMessage, &EventMessage) -> Result<bool, DecodeFailure> + Send + Sync>;

struct DecodeFailure {
    topic: String,
    source: serde_json::Error,
}

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
        let erased: Delegate = Box::new(move |mine, theirs| {
            let mine: A = decode(mine)?;
            let theirs: B = decode(theirs)?;
            Ok(delegate(&mine, &theirs))
        });
        self.delegates.insert((A::TOPIC, B::TOPIC), erased);
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
                        delegate(mine, theirs).map_err(|failure| StoreError::ConflictDetection {
                            tenant: attempt.tenant_id.clone(),
                            stream: attempt.stream_id.clone(),
                            topic: failure.topic,
                            source: failure.source,
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

fn decode<E: Event>(message: &EventMessage) -> Result<E, DecodeFailure> {
    message.decode().map_err(|source| DecodeFailure {
        topic: message.topic.clone(),
        source,
    })
}
