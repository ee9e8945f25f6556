//! Event messages: one event as it travels through the store, its body kept as stored JSON.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::model::Event;

/// Headers of a commit, an event message or a snapshot: string keys, JSON values.
///
/// A `BTreeMap` so that headers serialise in a stable order.
pub type Headers = BTreeMap<String, serde_json::Value>;

/// One event inside a commit: its topic, its own headers, and its body as JSON text.
///
/// The body stays exactly as it was stored. Reading a commit never needs the Rust event
/// types; [`EventMessage::decode`] turns the body into a typed event on demand, going
/// straight from the stored JSON text to the type, with no untyped `serde_json::Value`
/// in between.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventMessage {
    /// The event's topic (see [`Event::TOPIC`]); it selects the type to decode into.
    pub topic: String,
    /// Headers of this one event.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: Headers,
    /// The event's body, as JSON text.
    pub body: Box<RawValue>,
}

impl EventMessage {
    /// Serialises a typed event into a message under the event's topic.
    pub fn from_event<E: Event>(event: &E) -> Result<Self, serde_json::Error> {
        Ok(Self {
            topic: E::TOPIC.to_owned(),
            headers: Headers::new(),
            body: serde_json::value::to_raw_value(event)?,
        })
    }

    /// Builds a message from a topic and a JSON body that is already serialised.
    pub fn from_raw(topic: impl Into<String>, body: Box<RawValue>) -> Self {
        Self {
            topic: topic.into(),
            headers: Headers::new(),
            body,
        }
    }

    /// Adds one header to this message and returns it, for building messages in one expression.
    pub fn with_header(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.headers.insert(key.into(), value.into());
        self
    }

    /// Decodes the body into `T`, straight from the stored JSON text.
    ///
    /// This does not check the topic; use [`EventMessage::decode_event`] for that.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.body.get())
    }

    /// Decodes the body into the event type `E` if, and only if, the message carries `E`'s topic.
    ///
    /// Returns `Ok(None)` for a message of another topic.
    pub fn decode_event<E: Event>(&self) -> Result<Option<E>, serde_json::Error> {
        if self.topic == E::TOPIC {
            self.decode().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Whether this message carries the topic of `E`.
    pub fn is<E: Event>(&self) -> bool {
        self.topic == E::TOPIC
    }
}

/// Two messages are equal when topic, headers and the body's JSON text are equal.
impl PartialEq for EventMessage {
    fn eq(&self, other: &Self) -> bool {
        self.topic == other.topic
            && self.headers == other.headers
            && self.body.get() == other.body.get()
    }
}

impl Eq for EventMessage {}
