//! The stored shape of an event message, read field by field without allocating: the
//! one-pass decoders of aggregate loads and projections share it.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};

/// A stored message's field name.
pub(crate) enum MessageKey {
    Topic,
    Headers,
    Body,
    Other,
}

impl<'de> de::Deserialize<'de> for MessageKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = MessageKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<MessageKey, E> {
                Ok(match key {
                    "topic" => MessageKey::Topic,
                    "headers" => MessageKey::Headers,
                    "body" => MessageKey::Body,
                    _ => MessageKey::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// A topic, borrowed from the stored bytes when it has no escapes.
pub(crate) struct BorrowedTopic<'de>(pub Cow<'de, str>);

impl<'de> de::Deserialize<'de> for BorrowedTopic<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TopicVisitor;
        impl<'de> Visitor<'de> for TopicVisitor {
            type Value = BorrowedTopic<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a topic string")
            }
            fn visit_borrowed_str<E: de::Error>(
                self,
                topic: &'de str,
            ) -> Result<BorrowedTopic<'de>, E> {
                Ok(BorrowedTopic(Cow::Borrowed(topic)))
            }
            fn visit_str<E: de::Error>(self, topic: &str) -> Result<BorrowedTopic<'de>, E> {
                Ok(BorrowedTopic(Cow::Owned(topic.to_owned())))
            }
        }
        deserializer.deserialize_str(TopicVisitor)
    }
}

/// The version an event message's headers record ([`crate::VERSION_HEADER`]), read without
/// keeping the other headers: `Err` with the reason when the header is not a version.
pub(crate) struct HeaderVersion(pub Result<u32, String>);

impl<'de> de::Deserialize<'de> for HeaderVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeadersVisitor;
        impl<'de> Visitor<'de> for HeadersVisitor {
            type Value = HeaderVersion;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of headers")
            }
            fn visit_map<M: de::MapAccess<'de>>(
                self,
                mut map: M,
            ) -> Result<HeaderVersion, M::Error> {
                let mut version = Ok(1);
                while let Some(key) = map.next_key::<BorrowedTopic<'de>>()? {
                    if key.0 == crate::VERSION_HEADER {
                        let value: serde_json::Value = map.next_value()?;
                        version = crate::model::event::parse_version(&value);
                    } else {
                        map.next_value::<de::IgnoredAny>()?;
                    }
                }
                Ok(HeaderVersion(version))
            }
        }
        deserializer.deserialize_map(HeadersVisitor)
    }
}

/// Why a one-pass read of a commit's events stopped, when the fault is an event's and not the
/// JSON's: the serde error that stops the pass cannot carry it, so the reader keeps it aside.
pub(crate) enum EventFailure {
    /// The topic is not one the reader lists.
    UnknownTopic(String),
    /// The body of an event of this topic does not decode (the serde error says why).
    Decode(String),
    /// The event is at a version newer than its type knows.
    Newer {
        topic: String,
        stored: u32,
        known: u32,
    },
    /// The event's stored data is damaged (a version header that is not a version).
    Corrupt(String),
}

impl EventFailure {
    /// Keeps the failure in `slot` and returns the error that stops the pass.
    pub(crate) fn stop<E: de::Error>(self, slot: &mut Option<EventFailure>) -> E {
        let error = match &self {
            EventFailure::UnknownTopic(topic) => E::custom(format_args!("unknown topic `{topic}`")),
            EventFailure::Decode(topic) => {
                E::custom(format_args!("the `{topic}` body does not decode"))
            }
            EventFailure::Newer { stored, known, .. } => E::custom(format_args!(
                "event version {stored} is newer than version {known}, the newest known"
            )),
            EventFailure::Corrupt(reason) => E::custom(reason),
        };
        *slot = Some(self);
        error
    }
}
