//! What a store holds, gathered in one pass over its log (the traits every backend implements
//! have no catalogue of tenants and streams; the log names every stream that has a commit).

use std::collections::{BTreeMap, BTreeSet};

use aett::{Commit, LogEntry, LogStream, Snapshot, SnapshotStore, StoreError, StreamDeleted};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use serde::Serialize;

/// The highest revision every backend accepts in a query (they keep revisions as `i64`).
pub const MAX_REVISION: u64 = i64::MAX as u64;

/// One stream, as the log shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StreamSummary {
    /// The tenant.
    pub tenant_id: String,
    /// The stream.
    pub stream_id: String,
    /// The type of what wrote its last commit.
    pub stream_type: Option<String>,
    /// The sequence of its first commit still stored (above 1 for a truncated stream).
    pub first_sequence: u64,
    /// The sequence of its last commit.
    pub head_sequence: u64,
    /// The revision of its last event.
    pub head_revision: u64,
    /// How many commits it holds.
    pub commits: u64,
    /// How many events those commits hold.
    pub events: u64,
    /// When its last commit was made.
    pub last_stamp: DateTime<Utc>,
}

/// Everything the log holds, counted.
#[derive(Debug, Default)]
pub struct Inventory {
    /// Every stream, by tenant and stream id.
    pub streams: BTreeMap<(String, String), StreamSummary>,
    /// Commits.
    pub commits: u64,
    /// Events.
    pub events: u64,
    /// Notices of deleted streams.
    pub deletions: u64,
    /// The first and last checkpoint of the entries read.
    pub checkpoints: Option<(u64, u64)>,
}

impl Inventory {
    /// Reads a log to its end and counts what it holds.
    pub async fn of_log(mut log: LogStream) -> Result<Self, StoreError> {
        let mut inventory = Inventory::default();
        while let Some(entry) = log.try_next().await? {
            inventory.add_entry(&entry);
        }
        Ok(inventory)
    }

    /// Counts one entry of the log.
    pub fn add_entry(&mut self, entry: &LogEntry) {
        let checkpoint = entry.checkpoint();
        self.checkpoints = Some(match self.checkpoints {
            Some((first, _)) => (first, checkpoint),
            None => (checkpoint, checkpoint),
        });
        match entry {
            LogEntry::Commit(commit) => self.add_commit(commit),
            LogEntry::StreamDeleted(deleted) => self.add_deletion(deleted),
            // A kind of entry this tool does not know yet holds nothing it counts.
            _ => {}
        }
    }

    /// Counts one commit.
    pub fn add_commit(&mut self, commit: &Commit) {
        let events = commit.events.len() as u64;
        self.commits += 1;
        self.events += events;
        let key = (commit.tenant_id.clone(), commit.stream_id.clone());
        let summary = self.streams.entry(key).or_insert_with(|| StreamSummary {
            tenant_id: commit.tenant_id.clone(),
            stream_id: commit.stream_id.clone(),
            stream_type: None,
            first_sequence: commit.commit_sequence,
            head_sequence: 0,
            head_revision: 0,
            commits: 0,
            events: 0,
            last_stamp: commit.commit_stamp,
        });
        summary.stream_type = commit.stream_type.clone();
        summary.head_sequence = commit.commit_sequence;
        summary.head_revision = commit.stream_revision;
        summary.commits += 1;
        summary.events += events;
        summary.last_stamp = commit.commit_stamp;
    }

    /// Counts a deletion: whatever the stream held before it is gone.
    pub fn add_deletion(&mut self, deleted: &StreamDeleted) {
        self.deletions += 1;
        let key = (deleted.tenant_id.clone(), deleted.stream_id.clone());
        if let Some(gone) = self.streams.remove(&key) {
            self.commits -= gone.commits;
            self.events -= gone.events;
        }
    }

    /// The tenants that have a stream.
    pub fn tenants(&self) -> BTreeSet<&str> {
        self.streams
            .keys()
            .map(|(tenant, _)| tenant.as_str())
            .collect()
    }
}

/// Every snapshot of one stream, newest first.
pub async fn snapshots_of(
    store: &dyn SnapshotStore,
    tenant: &str,
    stream: &str,
) -> Result<Vec<Snapshot>, StoreError> {
    let mut found = Vec::new();
    let mut below = MAX_REVISION;
    while let Some(snapshot) = store.get_snapshot(tenant, stream, below).await? {
        let revision = snapshot.stream_revision;
        found.push(snapshot);
        match revision.checked_sub(1) {
            Some(next) => below = next,
            None => break,
        }
    }
    Ok(found)
}

/// The streams of `tenants` that have at least one snapshot, from the index of stream heads
/// every backend keeps (no scan of the commits).
pub async fn streams_with_snapshots(
    store: &dyn SnapshotStore,
    tenants: impl IntoIterator<Item = &str>,
) -> Result<Vec<(String, String)>, StoreError> {
    let mut found = Vec::new();
    for tenant in tenants {
        let mut streams = store.streams_to_snapshot(tenant, 0);
        while let Some(stream) = streams.try_next().await? {
            if stream.snapshot_revision.is_some() {
                found.push((stream.tenant_id, stream.stream_id));
            }
        }
    }
    Ok(found)
}
