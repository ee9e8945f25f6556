//! Aggregates: consistency boundaries whose state is folded from their events.

use std::fmt;

use serde_json::value::RawValue;
use uuid::Uuid;

use crate::domain::PendingEvent;
use crate::model::{Event, Headers};

/// An aggregate's bookkeeping: id, version, commit sequence and uncommitted events.
///
/// Every `#[derive(Aggregate)]` struct has exactly one field of this type. It is never part of
/// the aggregate's memento: mark it `#[serde(skip)]`, or leave it, and it serialises as `null`.
#[derive(Default, Clone)]
pub struct AggregateState {
    id: String,
    version: u64,
    commit_sequence: u64,
    uncommitted: Vec<PendingEvent>,
    /// The commit id of a save whose outcome is unknown, and how many of the uncommitted events
    /// it carried: a retried save reuses it, so the store can recognise a commit it already has.
    pending_commit: Option<(Uuid, usize)>,
    /// Whether the aggregate was loaded up to a version inside a commit of several events, so
    /// it has applied only part of its last commit.
    partial: bool,
    /// The revision of its newest snapshot known: the one it was loaded from, or the last one
    /// taken of it (0: none), for a snapshot policy.
    snapshot_revision: u64,
}

impl AggregateState {
    /// The aggregate's id: the id of its stream.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The revision of the last event applied, committed or not.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The sequence of the last commit the aggregate was loaded from or saved in.
    pub fn commit_sequence(&self) -> u64 {
        self.commit_sequence
    }

    /// Events raised since the last save, in order.
    pub fn uncommitted(&self) -> &[PendingEvent] {
        &self.uncommitted
    }

    /// Sets the id of a fresh aggregate (used by the generated `create`).
    #[doc(hidden)]
    pub fn set_id(&mut self, id: &str) {
        id.clone_into(&mut self.id);
    }

    pub(crate) fn loaded(&mut self, version: u64, commit_sequence: u64, partial: bool) {
        self.version = version;
        self.commit_sequence = commit_sequence;
        self.partial = partial;
    }

    /// The sequence the next save asks for. An aggregate that applied only part of its last
    /// commit has not seen that commit's later events: its save races for that commit's
    /// sequence, and is answered as the concurrency case it is.
    pub(crate) fn next_sequence(&self) -> u64 {
        if self.partial {
            self.commit_sequence
        } else {
            self.commit_sequence + 1
        }
    }

    /// The revision of the newest snapshot the aggregate was loaded from or taken at (0: none).
    pub(crate) fn snapshot_revision(&self) -> u64 {
        self.snapshot_revision
    }

    pub(crate) fn snapshotted(&mut self, revision: u64) {
        self.snapshot_revision = revision;
    }

    pub(crate) fn saved(&mut self, commit_sequence: u64) {
        self.commit_sequence = commit_sequence;
        self.uncommitted.clear();
        self.pending_commit = None;
        self.partial = false;
    }

    /// The commit id for saving the uncommitted events: the one of an earlier attempt whose
    /// outcome is unknown if it carried exactly these events, else a fresh one, remembered until
    /// a save succeeds.
    pub(crate) fn commit_id_for_save(&mut self) -> Uuid {
        let count = self.uncommitted.len();
        match self.pending_commit {
            Some((id, carried)) if carried == count => id,
            _ => {
                let id = Uuid::new_v4();
                self.pending_commit = Some((id, count));
                id
            }
        }
    }
}

/// The bookkeeping never belongs in a memento: it serialises as `null` and deserialises from
/// anything as empty, so an aggregate whose serde form is its memento works whether or not the
/// field is marked `#[serde(skip)]` (which keeps even the `null` out).
impl serde::Serialize for AggregateState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

impl<'de> serde::Deserialize<'de> for AggregateState {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Self::default())
    }
}

impl fmt::Debug for AggregateState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AggregateState")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("commit_sequence", &self.commit_sequence)
            .field("uncommitted", &self.uncommitted)
            .field("pending_commit", &self.pending_commit)
            .field("partial", &self.partial)
            .field("snapshot_revision", &self.snapshot_revision)
            .finish()
    }
}

/// How an aggregate changes when an event of type `E` is applied. Write one per event the
/// aggregate lists; the derive dispatches stored events to them.
#[diagnostic::on_unimplemented(
    message = "`{Self}` lists `{E}` as an event but does not implement `Apply<{E}>`",
    label = "no `Apply<{E}>` implementation",
    note = "add `impl aett::Apply<{E}> for {Self} {{ fn apply(&mut self, event: &{E}) {{ ... }} }}`"
)]
pub trait Apply<E> {
    /// Folds `event` into the state. Applying must not fail: validation belongs in the command
    /// method that raises the event.
    fn apply(&mut self, event: &E);
}

/// Marks `E` as one of the events an aggregate or saga lists. The derives implement it; it
/// lets `raise` and `handle` refuse, at compile time, an event the type could not replay.
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not list `{E}` among its events",
    label = "not listed",
    note = "add `{E}` to the `events(...)` list of `{Self}`'s `#[aggregate]` or `#[saga]` attribute"
)]
pub trait Declares<E> {}

/// Converts an aggregate to and from a custom memento type for snapshots, when the
/// aggregate's own serialised form should not be the snapshot (`#[aggregate(memento = M)]`).
pub trait Memento<M> {
    /// The memento of the current state.
    fn get_memento(&self) -> M;
    /// Restores the state from a memento.
    fn apply_memento(&mut self, memento: M);
}

/// An event-sourced aggregate. Implement it with `#[derive(Aggregate)]`:
///
/// ```
/// use aett::{Aggregate, AggregateState, Apply};
/// use serde::{Deserialize, Serialize};
///
/// #[aett::event(topic = "counter.incremented")]
/// #[derive(Serialize, Deserialize)]
/// struct Incremented { by: u64 }
///
/// #[derive(Aggregate, Default, Serialize, Deserialize)]
/// #[aggregate(events(Incremented))]
/// struct Counter {
///     #[serde(skip)]
///     state: AggregateState,
///     total: u64,
/// }
///
/// impl Apply<Incremented> for Counter {
///     fn apply(&mut self, e: &Incremented) { self.total += e.by; }
/// }
///
/// let mut counter = Counter::create("counter-1");
/// counter.raise(Incremented { by: 2 });
/// assert_eq!((counter.total, counter.version(), counter.uncommitted().len()), (2, 1, 1));
/// ```
///
/// By default the aggregate's own serde form is its memento; `#[aggregate(memento = M)]` uses
/// the type `M` through an `impl Memento<M>` instead.
pub trait Aggregate: Sized + Send + Sync + 'static {
    /// The stream type: the stable name every commit of this aggregate's streams records
    /// ([`crate::Commit::stream_type`]), which readers of the log filter on and loading checks.
    /// `#[aggregate(name = "...")]` sets it; by default it is the type's name as written, so
    /// renaming the type changes it unless `name` is given.
    const NAME: &'static str;

    /// The topics and aliases of the listed events, in list order.
    #[doc(hidden)]
    const TOPICS: &'static [&'static str];

    /// The version of the memento's shape (`#[aggregate(memento_version = N)]`, default 1),
    /// recorded with every snapshot; a load that finds a snapshot of another version does not
    /// use it (see [`crate::SnapshotFallback`]). Raise it whenever the memento's shape changes.
    const MEMENTO_VERSION: u32 = 1;

    /// A fresh aggregate with the given id, at version 0.
    fn create(id: &str) -> Self;

    /// The bookkeeping field.
    #[doc(hidden)]
    fn state(&self) -> &AggregateState;

    /// The bookkeeping field, mutably.
    #[doc(hidden)]
    fn state_mut(&mut self) -> &mut AggregateState;

    /// The one dispatcher: deserialises an event body of `topic` stored at `version` straight
    /// from `body` into its listed event type (through its upcasters) and applies it.
    #[doc(hidden)]
    fn apply_body<'de, D: serde::Deserializer<'de>>(
        &mut self,
        topic: &str,
        version: u32,
        body: D,
    ) -> Result<crate::__private::Dispatch, D::Error>;

    /// The memento of the current state, as JSON text.
    #[doc(hidden)]
    fn get_memento_json(&self) -> Result<Box<RawValue>, serde_json::Error>;

    /// Restores the state from a memento's stored JSON, parsed once straight into the type,
    /// leaving the bookkeeping as it is.
    #[doc(hidden)]
    fn apply_memento_json(&mut self, memento: &[u8]) -> Result<(), serde_json::Error>;

    /// The aggregate's id.
    fn id(&self) -> &str {
        self.state().id()
    }

    /// The revision of the last event applied, committed or not.
    fn version(&self) -> u64 {
        self.state().version()
    }

    /// The sequence of the last commit the aggregate was loaded from or saved in (see
    /// [`AggregateState::commit_sequence`]).
    fn commit_sequence(&self) -> u64 {
        self.state().commit_sequence()
    }

    /// Events raised since the last save.
    fn uncommitted(&self) -> &[PendingEvent] {
        self.state().uncommitted()
    }

    /// Applies `event`, bumps the version and records the event for the next save.
    fn raise<E>(&mut self, event: E)
    where
        E: Event,
        Self: Apply<E> + Declares<E>,
    {
        self.raise_with_headers(event, Headers::new());
    }

    /// [`Aggregate::raise`], with headers of this one event, stored with it (beside the
    /// commit's own headers, which every event of the commit shares).
    fn raise_with_headers<E>(&mut self, event: E, headers: Headers)
    where
        E: Event,
        Self: Apply<E> + Declares<E>,
    {
        self.apply(&event);
        let state = self.state_mut();
        state.version += 1;
        state
            .uncommitted
            .push(PendingEvent::new(event).with_headers(headers));
    }
}
