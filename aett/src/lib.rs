#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(missing_docs)]

// Lets the derives' `::aett::...` paths resolve inside this crate's own tests.
extern crate self as aett;

pub mod backends;
pub mod blocking;
mod conflict;
mod connect;
mod domain;
mod error;
mod model;
mod read;
mod repository;
pub mod store;
mod stream;
pub mod testing;
mod trace;

pub use aett_macros::{event, Aggregate, Projection, Saga};

#[cfg(feature = "dynamodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "dynamodb")))]
pub use backends::dynamodb::{DynamoConfig, DynamoStore, DynamoTransaction};
pub use backends::memory::InMemoryStore;
#[cfg(feature = "mongodb")]
#[cfg_attr(docsrs, doc(cfg(feature = "mongodb")))]
pub use backends::mongodb::{MongoConfig, MongoStore};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use backends::postgres::{PostgresConfig, PostgresStore, PostgresTls};
#[cfg(feature = "s3")]
#[cfg_attr(docsrs, doc(cfg(feature = "s3")))]
pub use backends::s3::{S3Config, S3Store};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use backends::sqlite::{SqliteConfig, SqliteStore};
pub use conflict::ConflictDetector;
pub use connect::{connect, connect_with};
pub use domain::{
    Aggregate, AggregateState, Apply, ApplyError, Declares, Memento, PendingEvent, Saga, SagaState,
    Transition, COMMANDS_ONLY_TOPIC,
};
pub use error::{BoxError, Operation, Scope, StoreError};
pub use model::{
    Commit, CommitAttempt, Correlation, DuplicateTopic, Event, EventMessage, Headers, LogEntry,
    LogFilter, Snapshot, StreamDeleted, TopicEntry, TopicMap, VERSION_HEADER,
};
pub use read::{
    CommandDispatcher, Correlate, CorrelatedSaga, Delivery, DispatchedCommand, EventContext,
    OnDamage, Project, Projection, ProjectionRunner, RunnerError, RunningProjection, SagaRunner,
    CAUSATION_HEADER, CORRELATION_HEADER,
};
pub use repository::{
    AggregateRepository, LoadReport, RepositoryError, SagaRepository, SnapshotCandidate,
    SnapshotFallback, SnapshotPolicy, UpdateError, Updated, MEMENTO_VERSION_HEADER,
    UNDISPATCHED_HEADER_PREFIX,
};
pub use store::{
    CheckpointStore, CheckpointTransaction, CommitLog, CommitStore, CommitStream, EventStore,
    Lease, LogStream, PersistenceManagement, ProjectionPosition, ReplayCommit, ReplayEntry,
    ReplayEvents, ReplayHeaders, ReplayLogCommit, ReplayLogStream, ReplaySnapshot, ReplayStream,
    SharedStore, SkippedCommit, SnapshotStore, StreamToSnapshot, StreamsToSnapshot, Wakeups,
};
pub use stream::EventStream;

/// The names a domain module needs: `use aett::prelude::*;`.
pub mod prelude {
    pub use crate::{
        event, Aggregate, AggregateRepository, AggregateState, Apply, Correlate, Event,
        EventContext, Headers, Project, Projection, ProjectionRunner, Saga, SagaRepository,
        SagaRunner, SagaState, Transition,
    };
}

/// Support for the code the macros generate. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use futures::future::BoxFuture;
    pub use inventory;
    pub use serde;
    pub use serde_json;

    pub use crate::model::event::{read_event, Dispatch};
    use crate::model::{Event, TopicEntry};

    /// One `#[event]` type, collected at link time into [`crate::TopicMap::global`].
    pub struct TopicRegistration {
        /// The entries of the registered type, one per topic and alias.
        pub entries: fn() -> Vec<TopicEntry>,
    }

    impl TopicRegistration {
        /// The registration of `E`.
        pub const fn of<E: Event>() -> Self {
            Self {
                entries: TopicEntry::all_of::<E>,
            }
        }
    }

    inventory::collect!(TopicRegistration);

    /// Byte-wise string equality usable in constants: the derives assert at compile time that
    /// no two listed events share a topic.
    pub const fn same_topic(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// How many topics the groups hold together.
    pub const fn topic_count(groups: &[&[&str]]) -> usize {
        let (mut count, mut group) = (0, 0);
        while group < groups.len() {
            count += groups[group].len();
            group += 1;
        }
        count
    }

    /// The groups' topics in one array, in order: a derive's topics and aliases, which log
    /// reads filter on.
    pub const fn concat_topics<const N: usize>(groups: &[&[&'static str]]) -> [&'static str; N] {
        let mut out = [""; N];
        let (mut at, mut group) = (0, 0);
        while group < groups.len() {
            let mut i = 0;
            while i < groups[group].len() {
                out[at] = groups[group][i];
                at += 1;
                i += 1;
            }
            group += 1;
        }
        out
    }

    /// Whether any topic of the groups `a` is also a topic of the groups `b`.
    pub const fn shares_topic(a: &[&[&str]], b: &[&[&str]]) -> bool {
        let mut ga = 0;
        while ga < a.len() {
            let mut ia = 0;
            while ia < a[ga].len() {
                let mut gb = 0;
                while gb < b.len() {
                    let mut ib = 0;
                    while ib < b[gb].len() {
                        if same_topic(a[ga][ia], b[gb][ib]) {
                            return true;
                        }
                        ib += 1;
                    }
                    gb += 1;
                }
                ia += 1;
            }
            ga += 1;
        }
        false
    }

    /// Runs a JSON upcaster on a body stored at `version`.
    pub fn upcast_json<E: std::fmt::Display>(
        upcaster: impl FnOnce(serde_json::Value) -> Result<serde_json::Value, E>,
        body: serde_json::Value,
        version: u32,
    ) -> Result<serde_json::Value, String> {
        upcaster(body)
            .map_err(|error| format!("the upcaster from version {version} failed: {error}"))
    }

    /// The stored body of an enum event with a topic per variant: its variant's content,
    /// without serde's variant tag.
    pub fn variant_body<T: serde::Serialize>(
        event: &T,
    ) -> Result<Box<serde_json::value::RawValue>, serde_json::Error> {
        use serde::ser::Error;
        match serde_json::to_value(event)? {
            serde_json::Value::Object(map) if map.len() == 1 => {
                serde_json::value::to_raw_value(map.values().next().unwrap_or_default())
            }
            // A unit variant.
            serde_json::Value::String(_) => serde_json::value::to_raw_value(&()),
            _ => Err(serde_json::Error::custom(
                "an enum event with a topic per variant must serialise in serde's default (externally tagged) form",
            )),
        }
    }

    /// Decodes the content of the variant at `index` of an enum event with a topic per
    /// variant, straight from the stored body.
    pub fn read_variant<'de, T: serde::Deserialize<'de>, D: serde::Deserializer<'de>>(
        index: u32,
        body: D,
    ) -> Result<T, D::Error> {
        T::deserialize(serde::de::value::MapAccessDeserializer::new(OneVariant {
            index: Some(index),
            body: Some(body),
        }))
    }

    /// A map of one entry, variant index to content: how serde reads an externally tagged enum.
    struct OneVariant<D> {
        index: Option<u32>,
        body: Option<D>,
    }

    impl<'de, D: serde::Deserializer<'de>> serde::de::MapAccess<'de> for OneVariant<D> {
        type Error = D::Error;

        fn next_key_seed<K: serde::de::DeserializeSeed<'de>>(
            &mut self,
            seed: K,
        ) -> Result<Option<K::Value>, D::Error> {
            match self.index.take() {
                Some(index) => seed
                    .deserialize(serde::de::IntoDeserializer::<D::Error>::into_deserializer(
                        index,
                    ))
                    .map(Some),
                None => Ok(None),
            }
        }

        fn next_value_seed<V: serde::de::DeserializeSeed<'de>>(
            &mut self,
            seed: V,
        ) -> Result<V::Value, D::Error> {
            match self.body.take() {
                Some(body) => seed.deserialize(body),
                None => Err(serde::de::Error::custom(
                    "the variant's content was read twice",
                )),
            }
        }
    }

    /// A type no aggregate or saga can raise: the derives implement `Declares<Unlisted>` and
    /// the handler trait for it, so that rustc never infers the event of `raise` or `handle`
    /// from a single listed event, and reports an unlisted one as not listed.
    pub enum Unlisted {}
}
