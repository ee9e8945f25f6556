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
