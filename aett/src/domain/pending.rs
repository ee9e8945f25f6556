//! Events raised but not yet committed, kept typed until they are saved.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::model::Event;
use crate::model::{EventMessage, Headers};

trait ErasedEvent: Send + Sync {
    fn topic(&self) -> &'static str;
    fn to_message(&self) -> Result<EventMessage, serde_json::Error>;
    fn to_message_value(&self, headers: &Headers) -> Result<serde_json::Value, serde_json::Error>;
    fn as_any(&self) -> &dyn Any;
}

impl<E: Event> ErasedEvent for E {
    fn topic(&self) -> &'static str {
        Event::topic(self)
    }

    fn to_message(&self) -> Result<EventMessage, serde_json::Error> {
        EventMessage::from_event(self)
    }

    fn to_message_value(&self, headers: &Headers) -> Result<serde_json::Value, serde_json::Error> {
        let mut message = EventMessage::from_event(self)?;
        message
            .headers
            .extend(headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        serde_json::to_value(message)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An event (or command) raised by an aggregate or saga and not yet saved.
///
/// A typed event stays typed until the repository saves it: raising never fails, and
/// serialisation errors surface from `save`, where they can be handled. An event a saga
/// received as a stored message ([`crate::Saga::handle_message`]) is kept as that message.
#[derive(Clone)]
pub struct PendingEvent {
    event: Pending,
    /// Headers of this one event, stored with it.
    headers: Headers,
}

#[derive(Clone)]
enum Pending {
    Typed(Arc<dyn ErasedEvent>),
    Message(Arc<EventMessage>),
}

impl PendingEvent {
    /// Wraps a typed event.
    pub fn new<E: Event>(event: E) -> Self {
        Self {
            event: Pending::Typed(Arc::new(event)),
            headers: Headers::new(),
        }
    }

    /// Wraps an event that is already a message; it is saved as it is.
    pub fn from_message(message: EventMessage) -> Self {
        Self {
            event: Pending::Message(Arc::new(message)),
            headers: Headers::new(),
        }
    }

    /// The same event with `headers` of its own (added to a message's own headers; a key
    /// given here wins).
    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers.extend(headers);
        self
    }

    /// The headers given to this one event.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The event's topic.
    pub fn topic(&self) -> &str {
        match &self.event {
            Pending::Typed(event) => event.topic(),
            Pending::Message(message) => &message.topic,
        }
    }

    /// The event as `E`, if it is one (a message is decoded only by [`PendingEvent::decode`]).
    pub fn downcast_ref<E: Event>(&self) -> Option<&E> {
        match &self.event {
            Pending::Typed(event) => event.as_any().downcast_ref(),
            Pending::Message(_) => None,
        }
    }

    /// The event as `E` if it carries `E`'s topic, typed or decoded from its message.
    pub fn decode<E: Event + Clone>(&self) -> Result<Option<E>, crate::ApplyError> {
        match &self.event {
            Pending::Typed(event) => Ok(event.as_any().downcast_ref::<E>().cloned()),
            Pending::Message(message) => message.decode_event(),
        }
    }

    /// The event as the JSON value of its message (`{"topic": …, "body": …}`), serialised
    /// straight from the typed event: how a saga's commands are stored in its commit's headers.
    pub fn to_message_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        match &self.event {
            Pending::Typed(event) => event.to_message_value(&self.headers),
            Pending::Message(_) => serde_json::to_value(self.to_message()?),
        }
    }

    /// Serialises the event into a message.
    pub fn to_message(&self) -> Result<EventMessage, serde_json::Error> {
        let mut message = match &self.event {
            Pending::Typed(event) => event.to_message()?,
            Pending::Message(message) => EventMessage::clone(message),
        };
        message
            .headers
            .extend(self.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(message)
    }
}

impl fmt::Debug for PendingEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PendingEvent").field(&self.topic()).finish()
    }
}
