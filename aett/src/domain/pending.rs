//! Events raised but not yet committed, kept typed until they are saved.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::event::Event;
use crate::message::EventMessage;

trait ErasedEvent: Send + Sync {
    fn topic(&self) -> &'static str;
    fn to_message(&self) -> Result<EventMessage, serde_json::Error>;
    fn as_any(&self) -> &dyn Any;
}

impl<E: Event> ErasedEvent for E {
    fn topic(&self) -> &'static str {
        E::TOPIC
    }

    fn to_message(&self) -> Result<EventMessage, serde_json::Error> {
        EventMessage::from_event(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An event (or command) raised by an aggregate or saga and not yet saved.
///
/// It stays typed until the repository saves it: raising never fails, and serialisation
/// errors surface from `save`, where they can be handled.
#[derive(Clone)]
pub struct PendingEvent(Arc<dyn ErasedEvent>);

impl PendingEvent {
    /// Wraps a typed event.
    pub fn new<E: Event>(event: E) -> Self {
        Self(Arc::new(event))
    }

    /// The event's topic.
    pub fn topic(&self) -> &'static str {
        self.0.topic()
    }

    /// The event as `E`, if it is one.
    pub fn downcast_ref<E: Event>(&self) -> Option<&E> {
        self.0.as_any().downcast_ref()
    }

    /// Serialises the event into a message.
    pub fn to_message(&self) -> Result<EventMessage, serde_json::Error> {
        self.0.to_message()
    }
}

impl fmt::Debug for PendingEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PendingEvent").field(&self.topic()).finish()
    }
}
