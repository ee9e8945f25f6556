//! Events, their topics, and the process-wide topic map.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A type with a topic: an event, or a command a saga dispatches.
///
/// Implement it with the attribute macro, which also registers the type in the
/// process-wide [`TopicMap`]:
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[aett::event(topic = "bank.deposited")]
/// #[derive(Serialize, Deserialize)]
/// struct Deposited { amount: u64 }
///
/// assert_eq!(<Deposited as aett::Event>::TOPIC, "bank.deposited");
/// ```
///
/// Without `topic = "..."` the type's name is its topic, as in the original aett.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an aett event",
    label = "not an event",
    note = "declare it with `#[aett::event(topic = \"...\")]`"
)]
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The topic stored with every message of this type; it selects the type on reading.
    const TOPIC: &'static str;
}

/// A type's entry in a [`TopicMap`].
#[derive(Debug, Clone, Copy)]
pub struct TopicEntry {
    /// The topic.
    pub topic: &'static str,
    /// The Rust type's path, as written where it was declared.
    pub type_name: &'static str,
    type_id: fn() -> TypeId,
}

impl TopicEntry {
    /// The entry of the event type `E`.
    pub fn of<E: Event>() -> Self {
        Self {
            topic: E::TOPIC,
            type_name: std::any::type_name::<E>(),
            type_id: TypeId::of::<E>,
        }
    }

    /// The entry's type id.
    pub fn type_id(&self) -> TypeId {
        (self.type_id)()
    }
}

/// Two different types declared the same topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "topic `{topic}` is declared by two types, `{first}` and `{second}`; topics must be unique"
)]
pub struct DuplicateTopic {
    /// The topic.
    pub topic: String,
    /// The type that declared it first.
    pub first: String,
    /// The type that declared it again.
    pub second: String,
}

/// Maps topics to types and types to topics.
///
/// [`TopicMap::global`] holds every `#[event]` type linked into the program, registered at
/// link time: tools and readers that do not know the aggregates use it to tell what a
/// stored topic is. Aggregates and sagas do not need it: their derive builds the topic
/// dispatch at compile time.
#[derive(Debug, Default, Clone)]
pub struct TopicMap {
    by_topic: HashMap<&'static str, TopicEntry>,
    by_type: HashMap<TypeId, &'static str>,
}

impl TopicMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The map of every `#[event]` type in the program, built on first use.
    ///
    /// Fails, on every call, if two types declared the same topic.
    pub fn global() -> Result<&'static TopicMap, DuplicateTopic> {
        static GLOBAL: OnceLock<Result<TopicMap, DuplicateTopic>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                let mut map = TopicMap::new();
                for registration in inventory::iter::<crate::__private::TopicRegistration> {
                    map.insert((registration.entry)())?;
                }
                Ok(map)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Adds the event type `E`. Adding the same type twice is harmless.
    pub fn add<E: Event>(&mut self) -> Result<&mut Self, DuplicateTopic> {
        self.insert(TopicEntry::of::<E>())?;
        Ok(self)
    }

    fn insert(&mut self, entry: TopicEntry) -> Result<(), DuplicateTopic> {
        if let Some(existing) = self.by_topic.get(entry.topic) {
            if existing.type_id() == entry.type_id() {
                return Ok(());
            }
            return Err(DuplicateTopic {
                topic: entry.topic.to_owned(),
                first: existing.type_name.to_owned(),
                second: entry.type_name.to_owned(),
            });
        }
        self.by_topic.insert(entry.topic, entry);
        self.by_type.insert(entry.type_id(), entry.topic);
        Ok(())
    }

    /// The entry registered for `topic`.
    pub fn get(&self, topic: &str) -> Option<&TopicEntry> {
        self.by_topic.get(topic)
    }

    /// The topic registered for the type `T`.
    pub fn get_from_type<T: 'static>(&self) -> Option<&'static str> {
        self.by_type.get(&TypeId::of::<T>()).copied()
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &TopicEntry> {
        self.by_topic.values()
    }

    /// How many topics the map holds.
    pub fn len(&self) -> usize {
        self.by_topic.len()
    }

    /// Whether the map holds no topic.
    pub fn is_empty(&self) -> bool {
        self.by_topic.is_empty()
    }
}
