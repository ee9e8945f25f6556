//! Events, their topics, and the process-wide topic map.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;
use serde::{Deserializer, Serialize};
use serde_json::value::RawValue;

/// The per-event header that records the version of an event's shape, written only when the
/// version is above 1 (an event without it is at version 1).
pub const VERSION_HEADER: &str = "aett.version";

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
/// The macro's documentation ([`macro@crate::event`]) shows versions with upcasters, topic
/// aliases and enums with a topic per variant; the items below are what it generates.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an aett event",
    label = "not an event",
    note = "declare it with `#[aett::event(topic = \"...\")]`"
)]
pub trait Event: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The topic stored with every message of this type; it selects the type on reading. For an
    /// enum with a topic per variant, the first variant's topic ([`Event::topic`] gives an
    /// event's own, [`Event::TOPICS`] all of them).
    const TOPIC: &'static str;

    /// Every topic events of this type are written under: [`Event::TOPIC`] alone, or one per
    /// variant of an enum with a topic per variant.
    const TOPICS: &'static [&'static str] = &[Self::TOPIC];

    /// Topics this type was stored under before a rename, still read as this type
    /// (`aliases("...")`); never written.
    const ALIASES: &'static [&'static str] = &[];

    /// The version of the type's current shape (`version = N`, default 1). Events are written
    /// with it ([`VERSION_HEADER`]); older stored versions are brought up to date by the type's
    /// upcasters when read, and a newer stored version is a typed error.
    const VERSION: u32 = 1;

    /// The topic this event is written under.
    fn topic(&self) -> &'static str {
        Self::TOPIC
    }

    /// Whether a stored event of `topic` is read as this type: one of its topics or aliases.
    fn reads(topic: &str) -> bool {
        Self::TOPICS.contains(&topic) || Self::ALIASES.contains(&topic)
    }

    /// The event's stored body (for an enum with a topic per variant, its variant's content).
    #[doc(hidden)]
    fn write_body(&self) -> Result<Box<RawValue>, serde_json::Error> {
        serde_json::value::to_raw_value(self)
    }

    /// Decodes a body of `topic` stored at `version` (at most [`Event::VERSION`]), running the
    /// upcasters from that version on.
    #[doc(hidden)]
    fn read_body<'de, D: Deserializer<'de>>(
        topic: &str,
        version: u32,
        body: D,
    ) -> Result<Self, D::Error> {
        let _ = (topic, version);
        Self::deserialize(body)
    }
}

/// What a generated dispatcher did with one stored event.
#[doc(hidden)]
#[derive(Debug)]
pub enum Dispatch<T = ()> {
    /// Decoded (and applied, for a dispatcher that applies).
    Done(T),
    /// The topic is not one the dispatcher lists.
    Unlisted,
    /// The stored version is newer than the listed type's [`Event::VERSION`].
    Newer {
        /// The newest version the program knows.
        known: u32,
    },
}

/// Decodes a stored event of `topic` at `version` into `E`, or says the version is too new.
#[doc(hidden)]
pub fn read_event<'de, E: Event, D: Deserializer<'de>>(
    topic: &str,
    version: u32,
    body: D,
) -> Result<Dispatch<E>, D::Error> {
    if version > E::VERSION {
        return Ok(Dispatch::Newer { known: E::VERSION });
    }
    E::read_body(topic, version, body).map(Dispatch::Done)
}

/// The version an event's headers record: [`VERSION_HEADER`], or 1 without it.
pub(crate) fn stored_version(headers: &crate::model::Headers) -> Result<u32, String> {
    match headers.get(VERSION_HEADER) {
        None => Ok(1),
        Some(value) => parse_version(value),
    }
}

pub(crate) fn parse_version(value: &serde_json::Value) -> Result<u32, String> {
    value
        .as_u64()
        .and_then(|version| u32::try_from(version).ok())
        .filter(|version| *version >= 1)
        .ok_or_else(|| format!("the `{VERSION_HEADER}` header is {value}, not a version from 1"))
}

/// One topic of a type in a [`TopicMap`].
#[derive(Debug, Clone, Copy)]
pub struct TopicEntry {
    /// The topic.
    pub topic: &'static str,
    /// Whether the topic is an alias (read as the type, never written).
    pub alias: bool,
    /// The Rust type's path, as written where it was declared.
    pub type_name: &'static str,
    type_id: fn() -> TypeId,
}

impl TopicEntry {
    /// The entry of the event type `E`'s main topic ([`Event::TOPIC`]).
    pub fn of<E: Event>() -> Self {
        Self::topic_of::<E>(E::TOPIC, false)
    }

    /// The entries of every topic `E` is read from: its topics, then its aliases.
    pub fn all_of<E: Event>() -> Vec<Self> {
        let topics = E::TOPICS
            .iter()
            .map(|topic| Self::topic_of::<E>(topic, false));
        let aliases = E::ALIASES
            .iter()
            .map(|topic| Self::topic_of::<E>(topic, true));
        topics.chain(aliases).collect()
    }

    fn topic_of<E: Event>(topic: &'static str, alias: bool) -> Self {
        Self {
            topic,
            alias,
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

/// Every topic two types of the program declare, found once from the types registered at link
/// time.
fn duplicates() -> &'static [DuplicateTopic] {
    static DUPLICATES: OnceLock<Vec<DuplicateTopic>> = OnceLock::new();
    DUPLICATES.get_or_init(|| {
        let mut map = TopicMap::new();
        let mut found = Vec::new();
        for registration in inventory::iter::<crate::__private::TopicRegistration> {
            for entry in (registration.entries)() {
                if let Err(duplicate) = map.insert(entry) {
                    found.push(duplicate);
                }
            }
        }
        found
    })
}

/// Refuses `topics` (an aggregate's, saga's or projection's) when another type of the program
/// declares one of them too: such a topic would decode as whichever type was listed, so
/// repositories and runners check before they read or write.
pub(crate) fn check_topics(topics: &[&str]) -> Result<(), DuplicateTopic> {
    match duplicates()
        .iter()
        .find(|duplicate| topics.contains(&duplicate.topic.as_str()))
    {
        Some(duplicate) => Err(duplicate.clone()),
        None => Ok(()),
    }
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
                    for entry in (registration.entries)() {
                        map.insert(entry)?;
                    }
                }
                Ok(map)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Adds the event type `E` under each of its topics and aliases. Adding the same type
    /// twice is harmless.
    pub fn add<E: Event>(&mut self) -> Result<&mut Self, DuplicateTopic> {
        for entry in TopicEntry::all_of::<E>() {
            self.insert(entry)?;
        }
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
        if !entry.alias {
            self.by_type.entry(entry.type_id()).or_insert(entry.topic);
        }
        Ok(())
    }

    /// The entry registered for `topic`.
    pub fn get(&self, topic: &str) -> Option<&TopicEntry> {
        self.by_topic.get(topic)
    }

    /// The main topic registered for the type `T`.
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
