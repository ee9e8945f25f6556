//! Sagas: long-running processes that react to events and dispatch commands.

use std::fmt;

use uuid::Uuid;

use crate::domain::{ApplyError, Declares, PendingEvent};
use crate::model::event::Dispatch;
use crate::model::{Event, EventMessage, Headers};

/// The topic of the event a saga's commit carries when the saga dispatched commands without
/// handling an event since its last save: a commit needs an event, and the commands must be
/// saved. Loading a saga skips it.
pub const COMMANDS_ONLY_TOPIC: &str = "aett.saga.commands_dispatched";

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
    /// As for aggregates: the commit id of a save whose outcome is unknown, and how many events
    /// and commands it carried.
    pending_commit: Option<(Uuid, usize, usize)>,
}

impl SagaState {
    /// The saga's id: the id of its stream.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The revision of the saga's stream: the number of events it has handled (plus one per
    /// commit that carried only commands).
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

    pub(crate) fn saved(&mut self, commit_sequence: u64, stream_revision: u64) {
        self.commit_sequence = commit_sequence;
        self.version = stream_revision;
        self.uncommitted.clear();
        self.undispatched.clear();
        self.pending_commit = None;
    }

    /// The commit id for saving: an earlier attempt's whose outcome is unknown if it carried
    /// exactly these events and commands, else a fresh one.
    pub(crate) fn commit_id_for_save(&mut self) -> Uuid {
        let counts = (self.uncommitted.len(), self.undispatched.len());
        match self.pending_commit {
            Some((id, events, commands)) if (events, commands) == counts => id,
            _ => {
                let id = Uuid::new_v4();
                self.pending_commit = Some((id, counts.0, counts.1));
                id
            }
        }
    }

    /// Saves the pending events and commands under `commit_id` (a saga run from the log saves
    /// each event's handling under an id derived from the event, so a repeat is a duplicate).
    pub(crate) fn use_commit_id(&mut self, commit_id: Uuid) {
        self.pending_commit = Some((commit_id, self.uncommitted.len(), self.undispatched.len()));
    }

    pub(crate) fn record(&mut self, event: PendingEvent) {
        self.version += 1;
        self.uncommitted.push(event);
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
///
/// Feed it typed events with [`Saga::handle`], or messages read from the store (a projection,
/// a subscription) with [`Saga::handle_message`]; either records the event, so saving stores it
/// with the commands it dispatched.
pub trait Saga: Sized + Send + Sync + 'static {
    /// The stream type: the stable name every commit of this saga's streams records
    /// ([`crate::Commit::stream_type`]), which readers of the log filter on and loading checks.
    /// `#[saga(name = "...")]` sets it; by default it is the type's name as written, so
    /// renaming the type changes it unless `name` is given.
    const NAME: &'static str;

    /// The topics and aliases of the listed events, in list order.
    #[doc(hidden)]
    const TOPICS: &'static [&'static str];

    /// A fresh saga with the given id.
    fn create(id: &str) -> Self;

    /// The bookkeeping field.
    #[doc(hidden)]
    fn state(&self) -> &SagaState;

    /// The bookkeeping field, mutably.
    #[doc(hidden)]
    fn state_mut(&mut self) -> &mut SagaState;

    /// The one dispatcher: deserialises an event body of `topic` stored at `version` straight
    /// from `body` into its listed event type (through its upcasters) and runs its transition.
    #[doc(hidden)]
    fn transition_body<'de, D: serde::Deserializer<'de>>(
        &mut self,
        topic: &str,
        version: u32,
        body: D,
    ) -> Result<crate::__private::Dispatch, D::Error>;

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
        self.state_mut().record(PendingEvent::new(event));
    }

    /// Decodes a stored message into the listed event of its topic, runs its transition, and
    /// records the message for the next save (as [`Saga::handle`] does for a typed event).
    ///
    /// A topic the saga does not list is [`ApplyError::UnknownTopic`]; a body that does not
    /// decode is [`ApplyError::Decode`]; a version newer than the event type knows is
    /// [`ApplyError::NewerVersion`]. Either way the saga is left unchanged.
    fn handle_message(&mut self, message: &EventMessage) -> Result<(), ApplyError> {
        let version = message.version()?;
        let mut body = serde_json::Deserializer::from_str(message.body.get());
        match self.transition_body(&message.topic, version, &mut body) {
            Ok(Dispatch::Done(())) => {
                self.state_mut()
                    .record(PendingEvent::from_message(message.clone()));
                Ok(())
            }
            Ok(Dispatch::Unlisted) => Err(ApplyError::UnknownTopic {
                topic: message.topic.clone(),
                target: Self::NAME,
            }),
            Ok(Dispatch::Newer { known }) => Err(ApplyError::NewerVersion {
                topic: message.topic.clone(),
                stored: version,
                known,
            }),
            Err(source) => Err(ApplyError::Decode {
                topic: message.topic.clone(),
                source,
            }),
        }
    }

    /// Records a command to hand out when the saga is saved. Commands are declared like
    /// events (`#[aett::event(topic = "...")]`).
    fn dispatch<C: Event>(&mut self, command: C) {
        self.dispatch_with_headers(command, Headers::new());
    }

    /// [`Saga::dispatch`], with headers of this one command (handed out with it).
    fn dispatch_with_headers<C: Event>(&mut self, command: C, headers: Headers) {
        self.state_mut()
            .undispatched
            .push(PendingEvent::new(command).with_headers(headers));
    }

    /// Commands dispatched since the last save.
    fn undispatched(&self) -> &[PendingEvent] {
        self.state().undispatched()
    }
}
