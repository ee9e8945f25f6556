//! Event messages: one event as it travels through the store, its body kept as stored JSON.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::domain::ApplyError;
use crate::model::event::{read_event, stored_version, Dispatch, VERSION_HEADER};
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
    /// Serialises a typed event into a message under the event's topic, recording its version
    /// ([`crate::VERSION_HEADER`]) when it is above 1.
    pub fn from_event<E: Event>(event: &E) -> Result<Self, serde_json::Error> {
        let mut headers = Headers::new();
        if E::VERSION != 1 {
            headers.insert(VERSION_HEADER.to_owned(), E::VERSION.into());
        }
        Ok(Self {
            topic: event.topic().to_owned(),
            headers,
            body: event.write_body()?,
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

    /// Adds `headers` to this message's own and returns it (a key given here wins).
    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers.extend(headers);
        self
    }

    /// Decodes the body into `T`, straight from the stored JSON text.
    ///
    /// This does not check the topic; use [`EventMessage::decode_event`] for that.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.body.get())
    }

    /// Decodes the body into the event type `E` if, and only if, the message carries one of
    /// `E`'s topics or aliases, bringing an older stored version up to date with `E`'s
    /// upcasters.
    ///
    /// Returns `Ok(None)` for a message of another topic. A version newer than `E` knows is
    /// [`ApplyError::NewerVersion`].
    pub fn decode_event<E: Event>(&self) -> Result<Option<E>, ApplyError> {
        if !E::reads(&self.topic) {
            return Ok(None);
        }
        let version = self.version()?;
        let mut body = serde_json::Deserializer::from_str(self.body.get());
        match read_event::<E, _>(&self.topic, version, &mut body) {
            Ok(Dispatch::Done(event)) => Ok(Some(event)),
            Ok(Dispatch::Newer { known }) => Err(ApplyError::NewerVersion {
                topic: self.topic.clone(),
                stored: version,
                known,
            }),
            Ok(Dispatch::Unlisted) => Ok(None),
            Err(source) => Err(ApplyError::Decode {
                topic: self.topic.clone(),
                source,
            }),
        }
    }

    /// The version of the event's shape its headers record ([`crate::VERSION_HEADER`], 1
    /// without it).
    pub fn version(&self) -> Result<u32, ApplyError> {
        stored_version(&self.headers).map_err(|reason| ApplyError::InvalidVersion {
            topic: self.topic.clone(),
            reason,
        })
    }

    /// Whether this message carries one of the topics or aliases of `E`.
    pub fn is<E: Event>(&self) -> bool {
        E::reads(&self.topic)
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
