//! Commits: the atomic unit of writing, and what a store hands back when reading.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::StoreError;
use crate::model::{EventMessage, Headers};

/// What a writer asks the store to append: one atomic batch of events on one stream.
///
/// The numbers follow the original aett and NEventStore: `commit_sequence` counts the
/// commits of the stream from 1, and `stream_revision` is the revision of the commit's
/// *last* event (a commit of 3 events on a stream at revision 4 has revision 7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitAttempt {
    /// The tenant the stream belongs to.
    pub tenant_id: String,
    /// The stream written to (an aggregate's or saga's id).
    pub stream_id: String,
    /// Revision of the last event of this commit.
    pub stream_revision: u64,
    /// The writer's id for this commit; storing the same id twice is a duplicate commit.
    pub commit_id: Uuid,
    /// Position of this commit in its stream, from 1.
    pub commit_sequence: u64,
    /// When the commit was made (stores keep microsecond precision).
    pub commit_stamp: DateTime<Utc>,
    /// Headers of the whole commit.
    pub headers: Headers,
    /// The events, in order; never empty.
    pub events: Vec<EventMessage>,
    /// The type of what writes the stream: an aggregate's or saga's stream type (its
    /// `Aggregate::NAME` or `Saga::NAME`), which repositories set. `None` for a commit written
    /// without one; readers of the log can filter on it (see [`crate::LogFilter`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_type: Option<String>,
}

impl CommitAttempt {
    /// An attempt stamped now with a fresh commit id.
    pub fn new(
        tenant_id: impl Into<String>,
        stream_id: impl Into<String>,
        stream_revision: u64,
        commit_sequence: u64,
        headers: Headers,
        events: Vec<EventMessage>,
    ) -> Self {
        Self {
            tenant_id: tenant_id.into(),
            stream_id: stream_id.into(),
            stream_revision,
            commit_id: Uuid::new_v4(),
            commit_sequence,
            commit_stamp: Utc::now(),
            headers,
            events,
            stream_type: None,
        }
    }

    /// Sets the type of what writes the stream (see [`CommitAttempt::stream_type`]).
    pub fn with_stream_type(mut self, stream_type: impl Into<String>) -> Self {
        self.stream_type = Some(stream_type.into());
        self
    }

    /// Revision of the first event of this commit.
    pub fn first_revision(&self) -> u64 {
        first_revision(self.stream_revision, self.events.len())
    }

    /// Checks what any store checks before writing: ids present, at least one event,
    /// sequence from 1, and a revision that leaves room for every event.
    pub fn validate(&self) -> Result<(), StoreError> {
        let invalid = |reason: &str| {
            Err(StoreError::InvalidCommit {
                tenant: self.tenant_id.clone(),
                stream: self.stream_id.clone(),
                commit_sequence: self.commit_sequence,
                reason: reason.to_owned(),
            })
        };
        if self.tenant_id.is_empty() {
            return invalid("the tenant id is empty");
        }
        if self.stream_id.is_empty() {
            return invalid("the stream id is empty");
        }
        if self.events.is_empty() {
            return invalid("a commit needs at least one event");
        }
        if self.commit_sequence == 0 {
            return invalid("commit sequences start at 1");
        }
        if self.stream_revision < self.events.len() as u64 {
            return invalid("the stream revision is lower than the number of events in the commit");
        }
        if self
            .stream_type
            .as_deref()
            .is_some_and(|t| t.is_empty() || t.trim() != t)
        {
            return invalid("the stream type is empty or has leading or trailing whitespace");
        }
        if i64::try_from(self.stream_revision).is_err()
            || i64::try_from(self.commit_sequence).is_err()
        {
            return invalid("revision or sequence exceeds i64::MAX");
        }
        Ok(())
    }
}

/// A stored commit: the attempt as written, plus the global checkpoint the store gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    /// The tenant the stream belongs to.
    pub tenant_id: String,
    /// The stream this commit belongs to.
    pub stream_id: String,
    /// Revision of the last event of this commit.
    pub stream_revision: u64,
    /// The writer's id for this commit.
    pub commit_id: Uuid,
    /// Position of this commit in its stream, from 1.
    pub commit_sequence: u64,
    /// When the commit was made, in UTC, at microsecond precision.
    pub commit_stamp: DateTime<Utc>,
    /// Headers of the whole commit.
    pub headers: Headers,
    /// The events, in order.
    pub events: Vec<EventMessage>,
    /// The type of what wrote the stream (see [`CommitAttempt::stream_type`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_type: Option<String>,
    /// Position in the store's global order (the log): strictly increasing across all tenants
    /// and streams, never reused.
    pub checkpoint: u64,
}

/// The attempt that writes this commit again, identical but for the checkpoint (which the
/// store it is written to gives): the same ids, numbers, stamp, type, headers and events. For
/// copying a stream into another store; writing it twice is a duplicate commit.
impl From<Commit> for CommitAttempt {
    fn from(commit: Commit) -> Self {
        Self {
            tenant_id: commit.tenant_id,
            stream_id: commit.stream_id,
            stream_revision: commit.stream_revision,
            commit_id: commit.commit_id,
            commit_sequence: commit.commit_sequence,
            commit_stamp: commit.commit_stamp,
            headers: commit.headers,
            events: commit.events,
            stream_type: commit.stream_type,
        }
    }
}

impl Commit {
    /// The stored form of `attempt` at `checkpoint`, with the stamp cut to microseconds
    /// (the precision every backend keeps) so that what is returned equals what is read back.
    pub fn from_attempt(attempt: CommitAttempt, checkpoint: u64) -> Self {
        Self {
            tenant_id: attempt.tenant_id,
            stream_id: attempt.stream_id,
            stream_revision: attempt.stream_revision,
            commit_id: attempt.commit_id,
            commit_sequence: attempt.commit_sequence,
            commit_stamp: attempt.commit_stamp.trunc_subsecs(6),
            headers: attempt.headers,
            events: attempt.events,
            stream_type: attempt.stream_type,
            checkpoint,
        }
    }

    /// Revision of the first event of this commit.
    pub fn first_revision(&self) -> u64 {
        first_revision(self.stream_revision, self.events.len())
    }

    /// The events with the stream revision of each.
    pub fn events_with_revisions(&self) -> impl Iterator<Item = (u64, &EventMessage)> {
        let first = self.first_revision();
        self.events
            .iter()
            .enumerate()
            .map(move |(i, event)| (first + i as u64, event))
    }
}

fn first_revision(last: u64, count: usize) -> u64 {
    (last + 1).saturating_sub(count as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(n: usize) -> Vec<EventMessage> {
        (0..n)
            .map(|i| EventMessage::from_raw("t", serde_json::value::to_raw_value(&i).unwrap()))
            .collect()
    }

    #[test]
    fn revisions_count_back_from_the_last_event() {
        let commit = Commit::from_attempt(
            CommitAttempt::new("t", "s", 7, 2, Headers::new(), events(3)),
            9,
        );
        assert_eq!(commit.first_revision(), 5);
        let revisions: Vec<u64> = commit.events_with_revisions().map(|(r, _)| r).collect();
        assert_eq!(revisions, vec![5, 6, 7]);
    }

    #[test]
    fn stamps_are_cut_to_microseconds() {
        let mut attempt = CommitAttempt::new("t", "s", 1, 1, Headers::new(), events(1));
        attempt.commit_stamp = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        let commit = Commit::from_attempt(attempt, 1);
        assert_eq!(commit.commit_stamp.timestamp_subsec_nanos(), 123_456_000);
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let ok = CommitAttempt::new("t", "s", 3, 1, Headers::new(), events(3));
        ok.validate().unwrap();
        let cases = [
            (
                CommitAttempt {
                    tenant_id: String::new(),
                    ..ok.clone()
                },
                "tenant id is empty",
            ),
            (
                CommitAttempt {
                    stream_id: String::new(),
                    ..ok.clone()
                },
                "stream id is empty",
            ),
            (
                CommitAttempt {
                    events: Vec::new(),
                    ..ok.clone()
                },
                "at least one event",
            ),
            (
                CommitAttempt {
                    commit_sequence: 0,
                    ..ok.clone()
                },
                "start at 1",
            ),
            (
                CommitAttempt {
                    stream_revision: 2,
                    ..ok.clone()
                },
                "lower than the number of events",
            ),
            (
                CommitAttempt {
                    stream_revision: u64::MAX,
                    ..ok.clone()
                },
                "exceeds i64::MAX",
            ),
        ];
        for (attempt, expected) in cases {
            let error = attempt.validate().expect_err(expected).to_string();
            assert!(
                error.contains(expected) && error.contains("stream `"),
                "{error}"
            );
        }
    }
}
