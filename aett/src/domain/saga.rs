//! Sagas: long-running processes that react to events and dispatch commands.

use std::fmt;

use crate::domain::{ApplyError, Declares, PendingEvent};
use crate::event::Event;
use crate::message::EventMessage;

/// A saga's bookkeeping: id, version, commit sequence, uncommitted events and commands
/// dispatched but not yet saved.
///
/// Every `#[derive(Saga)]` struct has exactly one field of this type.
#[derive(Default, Clone)]
pub struct SagaState {
    id: String,
    version: u64,
    commit_sequence: u64,
    uncommitted: Vec<PendingEvent>,
    undispatched: Vec<PendingEvent>,
}

impl SagaState {
    /// The saga's id: the id of its stream.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The number of events the saga has handled.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The sequence of the last commit the saga was loaded from or saved in.
    pub fn commit_sequence(&self) -> u64 {
        self.commit_sequence
    }

    /// Events handled since the last save.
    pub fn uncommitted(&self) -> &[PendingEvent] {
        &self.uncommitted
    }

    /// Commands dispatched since the last save.
    pub fn undispatched(&self) -> &[PendingEvent] {
        &self.undispatched
    }

    /// Sets the id of a fresh saga (used by the generated `create`).
    #[doc(hidden)]
    pub fn set_id(&mut self, id: &str) {
        id.clone_into(&mut self.id);
    }

    /// After replay: commands dispatched while replaying were handed out when first saved.
    pub(crate) fn replayed(&mut self, version: u64, commit_sequence: u64) {
        self.version = version;
        self.commit_sequence = commit_sequence;
        self.undispatched.clear();
    }

    pub(crate) fn saved(&mut self, commit_sequence: u64) {
        self.commit_sequence = commit_sequence;
        self.uncommitted.clear();
        self.undispatched.clear();
    }
}

impl fmt::Debug for SagaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SagaState")
            .field("id", &self.id)
            .field("version", &self.version)
            .field("commit_sequence", &self.commit_sequence)
            .field("uncommitted", &self.uncommitted)
            .field("undispatched", &self.undispatched)
            .finish()
    }
}

/// How a saga moves on when it receives an event of type `E`. Inside, the saga may
/// [`Saga::dispatch`] commands.
#[diagnostic::on_unimplemented(
    message = "`{Self}` lists `{E}` as an event but does not implement `Transition<{E}>`",
    label = "no `Transition<{E}>` implementation",
    note = "add `impl aett::Transition<{E}> for {Self} {{ fn transition(&mut self, event: &{E}) {{ ... }} }}`"
)]
pub trait Transition<E> {
    /// Moves the saga on after `event`.
    fn transition(&mut self, event: &E);
}

/// A saga (process manager). Implement it with `#[derive(Saga)]` and `#[saga(events(...))]`.
///
/// A saga is its event history: loading replays every event through its transitions, with
/// commands dispatched during replay discarded (they were handed out when first saved).
pub trait Saga: Sized + Send + Sync + 'static {
    /// The type's name, for error messages.
    const NAME: &'static str;

    /// The topics of the listed events, in list order.
    const TOPICS: &'static [&'static str];

    /// A fresh saga with the given id.
    fn create(id: &str) -> Self;

    /// The bookkeeping field.
    fn state(&self) -> &SagaState;

    /// The bookkeeping field, mutably.
    fn state_mut(&mut self) -> &mut SagaState;

    /// Decodes a stored message into its listed event type and runs its transition.
    fn transition_message(&mut self, message: &EventMessage) -> Result<(), ApplyError>;

    /// Deserialises an event body of `topic` straight from `body` into its listed event type
    /// and runs its transition: the one-pass replay path. `Ok(false)` for a topic the type does
    /// not list.
    fn transition_body<'de, D: serde::Deserializer<'de>>(
        &mut self,
        topic: &str,
        body: D,
    ) -> Result<bool, D::Error>;

    /// The saga's id.
    fn id(&self) -> &str {
        self.state().id()
    }

    /// The number of events handled.
    fn version(&self) -> u64 {
        self.state().version()
    }

    /// Runs the transition for `event` and records the event for the next save.
    fn handle<E>(&mut self, event: E)
    where
        E: Event,
        Self: Transition<E> + Declares<E>,
    {
        self.transition(&event);
        let state = self.state_mut();
        state.version += 1;
        state.uncommitted.push(PendingEvent::new(event));
    }

    /// Records a command to hand out when the saga is saved. Commands are declared like
    /// events (`#[aett::event(topic = "...")]`).
    fn dispatch<C: Event>(&mut self, command: C) {
        self.state_mut()
            .undispatched
            .push(PendingEvent::new(command));
    }

    /// Commands dispatched since the last save.
    fn undispatched(&self) -> &[PendingEvent] {
        self.state().undispatched()
    }
}
