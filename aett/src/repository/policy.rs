//! When the aggregate repository snapshots an aggregate by itself, and what a load did.

use std::fmt;
use std::sync::Arc;

/// When [`crate::AggregateRepository`] takes a snapshot on its own: right after a save, of the
/// instance just saved (its state is in hand, nothing is reloaded).
///
/// A snapshot that fails to store does not fail the save (the commit is stored; a snapshot only
/// makes loads shorter): it is reported as a `tracing` warning with the `tracing` feature, and
/// the next save tries again.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum SnapshotPolicy {
    /// Never: snapshots are taken only when asked for (the default).
    #[default]
    Never,
    /// When the saved aggregate is at least this many events past its newest snapshot (the one
    /// it was loaded from or the last one taken of it), or past the start if it has none.
    EveryEvents(u64),
    /// When the function says so.
    When(Arc<dyn Fn(&SnapshotCandidate<'_>) -> bool + Send + Sync>),
}

impl SnapshotPolicy {
    /// A policy that asks `decide` after every save.
    pub fn when(decide: impl Fn(&SnapshotCandidate<'_>) -> bool + Send + Sync + 'static) -> Self {
        SnapshotPolicy::When(Arc::new(decide))
    }

    /// Whether to snapshot `candidate`.
    pub(crate) fn wants(&self, candidate: &SnapshotCandidate<'_>) -> bool {
        match self {
            SnapshotPolicy::Never => false,
            SnapshotPolicy::EveryEvents(events) => {
                candidate.events_since_snapshot >= (*events).max(1)
            }
            SnapshotPolicy::When(decide) => decide(candidate),
        }
    }
}

impl fmt::Debug for SnapshotPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotPolicy::Never => f.write_str("Never"),
            SnapshotPolicy::EveryEvents(events) => write!(f, "EveryEvents({events})"),
            SnapshotPolicy::When(_) => f.write_str("When(..)"),
        }
    }
}

/// An aggregate just saved, as a [`SnapshotPolicy`] sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SnapshotCandidate<'a> {
    /// The aggregate's stream type ([`crate::Aggregate::NAME`]).
    pub stream_type: &'static str,
    /// Its id.
    pub stream_id: &'a str,
    /// Its version after the save.
    pub version: u64,
    /// How many events the save stored.
    pub events_saved: u64,
    /// How many events it is past its newest snapshot (or the start).
    pub events_since_snapshot: u64,
}

/// What a load did: where it started and how much it replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct LoadReport {
    /// The revision of the snapshot the load started from; `None` when it replayed from the
    /// start.
    pub snapshot_revision: Option<u64>,
    /// How many events it replayed after that.
    pub events_replayed: u64,
}
