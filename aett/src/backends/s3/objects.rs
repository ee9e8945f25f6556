//! What the objects hold. A commit is one object of three lines: a line of JSON that says what
//! and where it is ([`Meta`]), the headers' JSON, then the events' JSON. The same bytes are
//! written to the commit's log slot and to its key in the stream, so whoever finds a slot
//! undecided can finish the commit from the slot alone. Tombstones, deletions and voided slots
//! are the first line only.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::backends::kit::sql::{replay_commit, RawCommit, StoredId, StoredStamp};
use crate::backends::kit::stamp_from_micros;
use crate::error::{Scope, StoreError};
use crate::model::{Commit, CommitAttempt, LogEntry, StreamDeleted};
use crate::store::{ReplayCommit, ReplayEntry};

/// What an object at a stream's key (or a slot of the log) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Kind {
    /// A commit.
    Commit,
    /// A deletion of the stream: the key after its last commit, which ends the incarnation
    /// (no commit can follow), and the log's notice of it.
    Deleted,
    /// A commit of a deleted stream; `next` is the sequence of the deletion.
    Gone,
    /// A commit truncated away; `next` is the sequence of the first commit kept.
    Truncated,
    /// A log slot whose commit never went in, or was deleted since.
    Void,
    /// The first key of an incarnation after a deletion: says where the stream lives now.
    Begin,
}

/// The first line of every object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Meta {
    pub kind: Kind,
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub stream: String,
    #[serde(default)]
    pub inc: u64,
    #[serde(default)]
    pub seq: u64,
    #[serde(default)]
    pub checkpoint: u64,
    #[serde(default)]
    pub revision: u64,
    #[serde(default)]
    pub count: u64,
    #[serde(default)]
    pub id: Option<Uuid>,
    #[serde(default)]
    pub stamp: i64,
    #[serde(default)]
    pub stream_type: Option<String>,
    #[serde(default)]
    pub next: u64,
}

impl Meta {
    /// A marker object of `kind` with nothing but `next`.
    pub fn marker(kind: Kind, next: u64) -> Self {
        Self {
            kind,
            tenant: String::new(),
            stream: String::new(),
            inc: 0,
            seq: 0,
            checkpoint: 0,
            revision: 0,
            count: 0,
            id: None,
            stamp: 0,
            stream_type: None,
            next,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a meta line always serialises")
    }
}

/// The first line of `attempt`'s object at `checkpoint`.
pub(super) fn commit_meta(attempt: &CommitAttempt, inc: u64, checkpoint: u64, stamp: i64) -> Meta {
    Meta {
        kind: Kind::Commit,
        tenant: attempt.tenant_id.clone(),
        stream: attempt.stream_id.clone(),
        inc,
        seq: attempt.commit_sequence,
        checkpoint,
        revision: attempt.stream_revision,
        count: attempt.events.len() as u64,
        id: Some(attempt.commit_id),
        stamp,
        stream_type: attempt.stream_type.clone(),
        next: 0,
    }
}

/// A commit's object, as written to its slot and its stream key.
pub(super) fn commit_object(
    attempt: &CommitAttempt,
    inc: u64,
    checkpoint: u64,
    stamp: i64,
) -> Result<Vec<u8>, StoreError> {
    let meta = commit_meta(attempt, inc, checkpoint, stamp);
    let (headers, events) = crate::backends::kit::sql::encode_payload(
        &attempt.tenant_id,
        &attempt.stream_id,
        &attempt.headers,
        &attempt.events,
    )?;
    let mut bytes = meta.to_bytes();
    bytes.reserve(headers.len() + events.len() + 2);
    bytes.push(b'\n');
    bytes.extend_from_slice(&headers);
    bytes.push(b'\n');
    bytes.extend_from_slice(&events);
    Ok(bytes)
}

/// Whether `bytes`, read at a stream key, are the object of log slot `checkpoint` (of `kind`):
/// checkpoints are unique, so this says the slot's commit or deletion went in.
pub(super) fn holds_slot(bytes: &[u8], kind: Kind, checkpoint: u64) -> bool {
    Object::parse(bytes.to_vec())
        .is_ok_and(|held| held.meta.kind == kind && held.meta.checkpoint == checkpoint)
}

/// An object read back: its first line parsed, the rest kept as stored.
#[derive(Debug, Clone)]
pub(super) struct Object {
    pub meta: Meta,
    pub bytes: Vec<u8>,
    /// Where the headers' line starts (the end of the meta line plus one), when there is one.
    body: Option<usize>,
}

impl Object {
    /// Parses the first line of `bytes`; `Err` says what is wrong with it.
    pub fn parse(bytes: Vec<u8>) -> Result<Self, String> {
        let end = bytes
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(bytes.len());
        let meta: Meta = serde_json::from_slice(&bytes[..end])
            .map_err(|e| format!("the object's first line is not aett's JSON: {e}"))?;
        let body = (end < bytes.len()).then_some(end + 1);
        Ok(Self { meta, bytes, body })
    }

    /// The headers' and events' JSON, as stored.
    fn payload(&self) -> Result<(&[u8], &[u8]), String> {
        let rest = &self.bytes[self.body.ok_or("the commit holds no events")?..];
        let split = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("the commit's headers are not followed by its events")?;
        Ok((&rest[..split], &rest[split + 1..]))
    }

    fn corrupt(&self, scope: Scope, reason: String) -> StoreError {
        StoreError::Corrupt {
            scope,
            commit_sequence: Some(self.meta.seq),
            checkpoint: Some(self.meta.checkpoint),
            reason,
        }
    }

    fn scope(&self) -> Scope {
        Scope::stream(&self.meta.tenant, &self.meta.stream)
    }

    fn raw(&self) -> Result<RawCommit, StoreError> {
        let (headers, events) = self
            .payload()
            .map_err(|reason| self.corrupt(self.scope(), reason))?;
        let meta = &self.meta;
        let signed = |value: u64| i64::try_from(value).unwrap_or(-1);
        Ok(RawCommit {
            checkpoint: signed(meta.checkpoint),
            tenant_id: meta.tenant.clone(),
            stream_id: meta.stream.clone(),
            stream_revision: signed(meta.revision),
            commit_id: StoredId::Uuid(meta.id.ok_or_else(|| {
                self.corrupt(self.scope(), "the commit has no commit id".to_owned())
            })?),
            commit_sequence: signed(meta.seq),
            commit_stamp: StoredStamp::Micros(meta.stamp),
            headers: headers.to_vec(),
            events: events.to_vec(),
            stream_type: meta.stream_type.clone(),
        })
    }

    /// The commit this object holds.
    pub fn commit(&self) -> Result<Commit, StoreError> {
        let commit = self.raw()?.decode()?;
        if commit.events.len() as u64 != self.meta.count {
            return Err(self.corrupt(
                self.scope(),
                format!(
                    "{} events stored where the commit says {}",
                    commit.events.len(),
                    self.meta.count
                ),
            ));
        }
        Ok(commit)
    }

    /// The commit in the form replay needs: events left as stored JSON.
    pub fn replay(&self) -> Result<ReplayCommit, StoreError> {
        let scope = self.scope();
        let (_, events) = self
            .payload()
            .map_err(|reason| self.corrupt(scope.clone(), reason))?;
        let signed = |value: u64| i64::try_from(value).unwrap_or(-1);
        replay_commit(
            &scope,
            signed(self.meta.seq),
            signed(self.meta.revision),
            signed(self.meta.count),
            events.to_vec(),
            self.meta.stream_type.clone(),
        )
    }

    /// The log entry this object holds (a commit, or a deletion's notice) at `checkpoint`.
    pub fn entry(&self) -> Result<LogEntry, StoreError> {
        match self.meta.kind {
            Kind::Deleted => self.notice().map(LogEntry::StreamDeleted),
            _ => self.commit().map(LogEntry::Commit),
        }
    }

    /// The log entry in the form a projection runner replays.
    pub fn replay_entry(&self) -> Result<ReplayEntry, StoreError> {
        match self.meta.kind {
            Kind::Deleted => self.notice().map(LogEntry::StreamDeleted).map(Into::into),
            _ => self.raw()?.decode_replay_entry(),
        }
    }

    fn notice(&self) -> Result<StreamDeleted, StoreError> {
        let stamp = stamp_from_micros(self.meta.stamp).ok_or_else(|| {
            self.corrupt(
                self.scope(),
                format!("deletion stamp {} is out of range", self.meta.stamp),
            )
        })?;
        Ok(StreamDeleted::new(
            self.meta.tenant.clone(),
            self.meta.stream.clone(),
            self.meta.checkpoint,
            stamp,
        )
        .with_stream_type(self.meta.stream_type.clone()))
    }
}

/// A snapshot's object: its headers' JSON on the first line, the memento's JSON after it.
pub(super) fn snapshot_object(snapshot: &crate::model::Snapshot) -> Result<Vec<u8>, StoreError> {
    let mut bytes = crate::backends::kit::sql::encode_snapshot_headers(snapshot)?;
    bytes.push(b'\n');
    bytes.extend_from_slice(snapshot.payload.get().as_bytes());
    Ok(bytes)
}

/// A snapshot object's headers' and memento's JSON.
pub(super) fn split_snapshot(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let split = bytes.iter().position(|&b| b == b'\n')?;
    Some((&bytes[..split], &bytes[split + 1..]))
}

/// A projection's checkpoint, skipped commits and lease, one object per generation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct ProjectionState {
    pub checkpoint: u64,
    #[serde(default)]
    pub skipped: Vec<Box<serde_json::value::RawValue>>,
    #[serde(default)]
    pub owner: Option<Uuid>,
    #[serde(default)]
    pub until: i64,
}
