//! Helpers shared by the backends that store rows (SQLite, PostgreSQL) or documents (MongoDB):
//! validated table names, and stored commits turned back into commits.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::stamp_from_micros;
use crate::error::{Scope, StoreError};
use crate::model::{
    Commit, CommitAttempt, EventMessage, Headers, LogEntry, Snapshot, StreamDeleted,
};
use crate::store::{
    Lease, ProjectionPosition, ReplayCommit, ReplayEntry, ReplayLogCommit, ReplaySnapshot,
    SkippedCommit,
};

/// Checks that a configured table or schema name is a plain SQL identifier, so it can be placed in
/// SQL text (quoted as well) without any chance of injection.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
pub(crate) fn validate_identifier(kind: &str, name: &str) -> Result<(), StoreError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && name.len() <= 63 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(StoreError::Configuration(format!(
            "{kind} name `{name}` is not allowed: use 1 to 63 ASCII letters, digits or underscores, not starting with a digit"
        )))
    }
}

/// A commit id as a backend's driver reads it: already a UUID (PostgreSQL) or its bytes
/// (SQLite). Either way it is turned into the final type once.
pub(crate) enum StoredId {
    #[cfg_attr(not(any(feature = "postgres", feature = "s3")), allow(dead_code))]
    Uuid(Uuid),
    #[cfg_attr(not(any(feature = "sqlite", feature = "dynamodb")), allow(dead_code))]
    Bytes(Vec<u8>),
}

/// A commit stamp as a backend's driver reads it: already a time (PostgreSQL) or microseconds
/// since the epoch (SQLite).
pub(crate) enum StoredStamp {
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Time(DateTime<Utc>),
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "dynamodb", feature = "s3")),
        allow(dead_code)
    )]
    Micros(i64),
}

/// A commit row as read from a SQL backend, before its columns are checked.
pub(crate) struct RawCommit {
    pub checkpoint: i64,
    pub tenant_id: String,
    pub stream_id: String,
    pub stream_revision: i64,
    pub commit_id: StoredId,
    pub commit_sequence: i64,
    pub commit_stamp: StoredStamp,
    pub headers: Vec<u8>,
    pub events: Vec<u8>,
    pub stream_type: Option<String>,
}

/// A deleted stream's notice is a row of the commits table with a negative commit sequence (and
/// no events): it takes its checkpoint from the same order as commits, and no read of a stream
/// (which asks for sequences above 0) ever meets it.
#[cfg_attr(
    not(any(
        feature = "sqlite",
        feature = "postgres",
        feature = "mongodb",
        feature = "dynamodb"
    )),
    allow(dead_code)
)]
pub(crate) fn notice_sequence() -> i64 {
    // Unique per stream among notices, so a stream deleted again gets a notice of its own.
    -((Uuid::new_v4().as_u64_pair().0 >> 1) as i64) - 1
}

impl RawCommit {
    /// A row of the log: a commit, or the notice that a stream was deleted.
    pub fn decode_entry(self) -> Result<LogEntry, StoreError> {
        if self.commit_sequence >= 0 {
            return self.decode().map(LogEntry::Commit);
        }
        let scope = Scope::stream(&self.tenant_id, &self.stream_id);
        let corrupt = |reason: String| StoreError::Corrupt {
            scope: scope.clone(),
            commit_sequence: None,
            checkpoint: u64::try_from(self.checkpoint).ok(),
            reason,
        };
        let checkpoint = u64::try_from(self.checkpoint)
            .map_err(|_| corrupt(format!("negative checkpoint {}", self.checkpoint)))?;
        let deleted_at = match self.commit_stamp {
            StoredStamp::Time(stamp) => stamp,
            StoredStamp::Micros(micros) => stamp_from_micros(micros)
                .ok_or_else(|| corrupt(format!("deletion stamp {micros} is out of range")))?,
        };
        Ok(LogEntry::StreamDeleted(
            StreamDeleted::new(self.tenant_id, self.stream_id, checkpoint, deleted_at)
                .with_stream_type(self.stream_type),
        ))
    }

    /// A row of the log for replay: its place and identity checked, its headers and events left
    /// as the stored JSON (the runner reads them in one pass, and reports damage there).
    pub fn decode_replay_entry(self) -> Result<ReplayEntry, StoreError> {
        if self.commit_sequence < 0 {
            return self.decode_entry().map(ReplayEntry::from);
        }
        let (row, headers, events) = self.checked()?;
        Ok(ReplayEntry::Commit(ReplayLogCommit::from_json(
            row.tenant_id,
            row.stream_id,
            row.stream_type,
            row.commit_id,
            row.commit_sequence,
            row.stream_revision,
            row.commit_stamp,
            row.checkpoint,
            headers,
            events,
        )))
    }

    /// Checks and decodes every column; damaged data is [`StoreError::Corrupt`] naming the row.
    pub fn decode(self) -> Result<Commit, StoreError> {
        let (row, headers, events) = self.checked()?;
        let corrupt = |reason: String| StoreError::Corrupt {
            scope: Scope::stream(&row.tenant_id, &row.stream_id),
            commit_sequence: Some(row.commit_sequence),
            checkpoint: Some(row.checkpoint),
            reason,
        };
        let headers: Headers = serde_json::from_slice(&headers)
            .map_err(|error| corrupt(format!("headers are not valid JSON: {error}")))?;
        let events: Vec<EventMessage> = serde_json::from_slice(&events)
            .map_err(|error| corrupt(format!("events are not valid JSON: {error}")))?;
        if events.is_empty() || (events.len() as u64) > row.stream_revision {
            return Err(corrupt(format!(
                "{} events do not fit stream revision {}",
                events.len(),
                row.stream_revision
            )));
        }
        Ok(Commit {
            tenant_id: row.tenant_id,
            stream_id: row.stream_id,
            stream_revision: row.stream_revision,
            commit_id: row.commit_id,
            commit_sequence: row.commit_sequence,
            commit_stamp: row.commit_stamp,
            headers,
            events,
            stream_type: row.stream_type,
            checkpoint: row.checkpoint,
        })
    }

    /// The row's place and identity checked; its headers and events handed back as stored.
    fn checked(self) -> Result<(CheckedRow, Vec<u8>, Vec<u8>), StoreError> {
        let sequence = u64::try_from(self.commit_sequence).ok();
        let checkpoint = u64::try_from(self.checkpoint).ok();
        // The scope is built only for an error: this runs for every row read.
        let corrupt = |reason: String| StoreError::Corrupt {
            scope: Scope::stream(&self.tenant_id, &self.stream_id),
            commit_sequence: sequence,
            checkpoint,
            reason,
        };
        let checkpoint = checkpoint
            .ok_or_else(|| corrupt(format!("negative checkpoint {}", self.checkpoint)))?;
        let commit_sequence = sequence
            .ok_or_else(|| corrupt(format!("negative commit sequence {}", self.commit_sequence)))?;
        let stream_revision = u64::try_from(self.stream_revision)
            .map_err(|_| corrupt(format!("negative stream revision {}", self.stream_revision)))?;
        let commit_id = match self.commit_id {
            StoredId::Uuid(id) => id,
            StoredId::Bytes(bytes) => Uuid::from_slice(&bytes)
                .map_err(|error| corrupt(format!("commit id is not a UUID: {error}")))?,
        };
        let commit_stamp = match self.commit_stamp {
            StoredStamp::Time(stamp) => stamp,
            StoredStamp::Micros(micros) => stamp_from_micros(micros)
                .ok_or_else(|| corrupt(format!("commit stamp {micros} is out of range")))?,
        };
        let row = CheckedRow {
            tenant_id: self.tenant_id,
            stream_id: self.stream_id,
            stream_type: self.stream_type,
            commit_id,
            commit_sequence,
            stream_revision,
            commit_stamp,
            checkpoint,
        };
        Ok((row, self.headers, self.events))
    }
}

/// A commit row whose place and identity are checked.
struct CheckedRow {
    tenant_id: String,
    stream_id: String,
    stream_type: Option<String>,
    commit_id: Uuid,
    commit_sequence: u64,
    stream_revision: u64,
    commit_stamp: DateTime<Utc>,
    checkpoint: u64,
}

/// Serialises a commit's headers and events for storage.
pub(crate) fn encode_payload(
    tenant_id: &str,
    stream_id: &str,
    headers: &Headers,
    events: &[EventMessage],
) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
    let scope = || Scope::stream(tenant_id, stream_id);
    let headers = serde_json::to_vec(headers).map_err(|source| StoreError::Serialization {
        scope: scope(),
        what: "commit headers",
        source,
    })?;
    let events = serde_json::to_vec(events).map_err(|source| StoreError::Serialization {
        scope: scope(),
        what: "events",
        source,
    })?;
    Ok((headers, events))
}

/// Serialises a snapshot's headers for storage.
pub(crate) fn encode_snapshot_headers(snapshot: &Snapshot) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(&snapshot.headers).map_err(|source| StoreError::Serialization {
        scope: Scope::stream(&snapshot.tenant_id, &snapshot.stream_id),
        what: "snapshot headers",
        source,
    })
}

/// Clamps a revision or checkpoint bound into SQL's signed 64-bit range.
#[cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mongodb")),
    allow(dead_code)
)]
pub(crate) fn clamp(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A row read for replay: position checked, events left as the stored JSON.
pub(crate) fn replay_commit(
    scope: &Scope,
    sequence: i64,
    revision: i64,
    items: i64,
    events: Vec<u8>,
    stream_type: Option<String>,
) -> Result<ReplayCommit, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        scope: scope.clone(),
        commit_sequence: u64::try_from(sequence).ok(),
        checkpoint: None,
        reason,
    };
    let commit_sequence = u64::try_from(sequence)
        .map_err(|_| corrupt(format!("negative commit sequence {sequence}")))?;
    let stream_revision = u64::try_from(revision)
        .map_err(|_| corrupt(format!("negative stream revision {revision}")))?;
    let event_count = u64::try_from(items)
        .ok()
        .filter(|count| (1..=stream_revision).contains(count))
        .ok_or_else(|| {
            corrupt(format!(
                "{items} events do not fit stream revision {revision}"
            ))
        })?;
    Ok(
        ReplayCommit::from_json(commit_sequence, stream_revision, event_count, events)
            .with_stream_type(stream_type),
    )
}

/// What a backend learns after its insert put nothing in.
#[cfg_attr(
    not(any(
        feature = "sqlite",
        feature = "postgres",
        feature = "mongodb",
        feature = "dynamodb"
    )),
    allow(dead_code)
)]
pub(crate) enum Refused {
    /// The answer: a duplicate, an invalid attempt, or (rows deleted in between) reload and retry.
    Answer(StoreError),
    /// Another writer took the sequence: read the commits from it on and ask the detector.
    SequenceTaken,
}

impl Refused {
    /// The answer, for a backend that has already read the commits that took the sequence
    /// and found none: a writer took it just now, so the attempt's writer reloads.
    #[cfg_attr(not(any(feature = "mongodb", feature = "dynamodb")), allow(dead_code))]
    pub fn into_answer(self, attempt: &CommitAttempt) -> StoreError {
        match self {
            Refused::Answer(error) => error,
            Refused::SequenceTaken => StoreError::NonConflictingCommit {
                tenant: attempt.tenant_id.clone(),
                stream: attempt.stream_id.clone(),
                commit_sequence: attempt.commit_sequence,
                committed: Vec::new(),
            },
        }
    }
}

/// Why an attempt did not go in, from whether its commit id is stored and the stream's head
/// (`(0, 0)` for an empty stream) as read afterwards.
#[cfg_attr(
    not(any(
        feature = "sqlite",
        feature = "postgres",
        feature = "mongodb",
        feature = "dynamodb"
    )),
    allow(dead_code)
)]
pub(crate) fn why_refused(attempt: &CommitAttempt, duplicate: bool, head: (i64, i64)) -> Refused {
    if duplicate {
        return Refused::Answer(StoreError::DuplicateCommit {
            tenant: attempt.tenant_id.clone(),
            stream: attempt.stream_id.clone(),
            commit_id: attempt.commit_id,
            commit_sequence: attempt.commit_sequence,
        });
    }
    let head = (
        u64::try_from(head.0).unwrap_or_default(),
        u64::try_from(head.1).unwrap_or_default(),
    );
    if let Err(invalid) = super::check_follows_head(attempt, head) {
        return Refused::Answer(invalid);
    }
    if attempt.commit_sequence <= head.0 {
        return Refused::SequenceTaken;
    }
    // The attempt fits now: the stream lost commits in between (a purge). The caller reloads.
    Refused::Answer(StoreError::NonConflictingCommit {
        tenant: attempt.tenant_id.clone(),
        stream: attempt.stream_id.clone(),
        commit_sequence: attempt.commit_sequence,
        committed: Vec::new(),
    })
}

/// A snapshot row read for loading: position checked, the memento left as the stored JSON.
pub(crate) fn replay_snapshot(
    scope: &Scope,
    revision: i64,
    sequence: i64,
    payload: Vec<u8>,
    headers: &[u8],
) -> Result<ReplaySnapshot, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        scope: scope.clone(),
        commit_sequence: u64::try_from(sequence).ok(),
        checkpoint: None,
        reason,
    };
    let stream_revision = u64::try_from(revision)
        .map_err(|_| corrupt(format!("negative snapshot revision {revision}")))?;
    let commit_sequence = u64::try_from(sequence)
        .map_err(|_| corrupt(format!("negative commit sequence {sequence}")))?;
    let headers = if headers == b"{}" {
        Headers::new()
    } else {
        serde_json::from_slice(headers)
            .map_err(|e| corrupt(format!("snapshot headers are not JSON: {e}")))?
    };
    Ok(ReplaySnapshot::new(stream_revision, commit_sequence, payload).with_headers(headers))
}

/// A snapshot row's columns checked and decoded; damaged data is [`StoreError::Corrupt`].
pub(crate) fn decode_snapshot(
    tenant_id: String,
    stream_id: String,
    revision: i64,
    sequence: i64,
    payload: Vec<u8>,
    headers: Vec<u8>,
) -> Result<Snapshot, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        scope: Scope::stream(&tenant_id, &stream_id),
        commit_sequence: u64::try_from(sequence).ok(),
        checkpoint: None,
        reason,
    };
    let payload = String::from_utf8(payload)
        .map_err(|e| corrupt(format!("snapshot payload is not UTF-8: {e}")))
        .and_then(|text| {
            serde_json::value::RawValue::from_string(text)
                .map_err(|e| corrupt(format!("snapshot payload is not JSON: {e}")))
        })?;
    let headers = serde_json::from_slice(&headers)
        .map_err(|e| corrupt(format!("snapshot headers are not JSON: {e}")))?;
    let stream_revision = u64::try_from(revision)
        .map_err(|_| corrupt(format!("negative snapshot revision {revision}")))?;
    let commit_sequence = u64::try_from(sequence)
        .map_err(|_| corrupt(format!("negative commit sequence {sequence}")))?;
    Ok(Snapshot {
        tenant_id,
        stream_id,
        stream_revision,
        commit_sequence,
        payload,
        headers,
    })
}

/// A skipped commit as the SQL backends store it with a projection's checkpoint (JSON).
pub(crate) fn encode_skipped(
    lease: &Lease,
    skipped: Option<&SkippedCommit>,
) -> Result<Option<String>, StoreError> {
    skipped
        .map(serde_json::to_string)
        .transpose()
        .map_err(|source| StoreError::Serialization {
            scope: Scope::projection(&lease.projection),
            what: "skipped commit",
            source,
        })
}

/// A projection's stored checkpoint and skipped commits (JSON), checked.
pub(crate) fn position(
    scope: &Scope,
    checkpoint: i64,
    skipped: &str,
) -> Result<ProjectionPosition, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        scope: scope.clone(),
        commit_sequence: None,
        checkpoint: None,
        reason,
    };
    let checkpoint = u64::try_from(checkpoint)
        .map_err(|_| corrupt(format!("negative projection checkpoint {checkpoint}")))?;
    let skipped = serde_json::from_str(skipped)
        .map_err(|e| corrupt(format!("skipped commits are not readable: {e}")))?;
    Ok(ProjectionPosition::new(checkpoint, skipped))
}
