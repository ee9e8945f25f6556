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
    Commit, CommitAttempt, DuplicateTopic, Event, EventMessage, Headers, LogEntry, LogFilter,
    Snapshot, StreamDeleted, TopicEntry, TopicMap,
};
pub use read::{
    CommandDispatcher, Correlate, CorrelatedSaga, Delivery, DispatchedCommand, EventContext,
    OnDamage, Project, Projection, ProjectionRunner, RunnerError, RunningProjection, SagaRunner,
    CAUSATION_HEADER, CORRELATION_HEADER,
};
pub use repository::{
    AggregateRepository, LoadReport, RepositoryError, SagaRepository, SnapshotCandidate,
    SnapshotPolicy, UpdateError, Updated, UNDISPATCHED_HEADER_PREFIX,
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

    use crate::model::{Event, TopicEntry};

    /// One `#[event]` type, collected at link time into [`crate::TopicMap::global`].
    pub struct TopicRegistration {
        /// The entry of the registered type.
        pub entry: fn() -> TopicEntry,
    }

    impl TopicRegistration {
        /// The registration of `E`.
        pub const fn of<E: Event>() -> Self {
            Self {
                entry: TopicEntry::of::<E>,
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

    /// Whether `topics[index]` equals any topic before it.
    pub const fn repeats_earlier_topic(topics: &[&str], index: usize) -> bool {
        let mut earlier = 0;
        while earlier < index {
            if same_topic(topics[earlier], topics[index]) {
                return true;
            }
            earlier += 1;
        }
        false
    }

    /// A type no aggregate or saga can raise: the derives implement `Declares<Unlisted>` and
    /// the handler trait for it, so that rustc never infers the event of `raise` or `handle`
    /// from a single listed event, and reports an unlisted one as not listed.
    pub enum Unlisted {}
}
