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
    /// The revision of a snapshot the load found but could not use (a memento of another
    /// version, or one that no longer decodes), and so replayed from the start instead
    /// ([`SnapshotFallback::Replay`]).
    pub snapshot_discarded: Option<u64>,
}

/// What a load does with a snapshot it cannot use: one whose memento is of another version
/// than the aggregate's `#[aggregate(memento_version = N)]` (recorded in the snapshot's
/// [`MEMENTO_VERSION_HEADER`]), or one that no longer decodes into the aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SnapshotFallback {
    /// Replay the stream from the start as if there were no snapshot, and say so: a `tracing`
    /// warning (with the `tracing` feature) and [`LoadReport::snapshot_discarded`]. The
    /// default: events are the truth, a snapshot only a shortcut.
    #[default]
    Replay,
    /// Fail the load ([`crate::RepositoryError::StaleSnapshot`] or
    /// [`crate::RepositoryError::Memento`]).
    Error,
}

/// The snapshot header that records the version of its memento, written when the
/// aggregate's `memento_version` is above 1 (a snapshot without it is at version 1).
pub const MEMENTO_VERSION_HEADER: &str = "aett.memento_version";
