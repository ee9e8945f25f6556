//! Repositories: load aggregates and sagas from a store, and save them as commits.

mod aggregate;
mod error;
mod policy;
mod replay;
mod saga;
mod update;

pub use aggregate::AggregateRepository;
pub use error::RepositoryError;
pub use policy::{
    LoadReport, SnapshotCandidate, SnapshotFallback, SnapshotPolicy, MEMENTO_VERSION_HEADER,
};
pub use saga::{SagaRepository, UNDISPATCHED_HEADER_PREFIX};
pub use update::{UpdateError, Updated};
