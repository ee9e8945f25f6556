//! The plain data of an event store: commits, event messages, snapshots, and events with their
//! topics. Nothing here does I/O.

mod commit;
mod correlation;
pub(crate) mod event;
mod log;
mod message;
mod snapshot;
pub(crate) mod wire;

pub use commit::{Commit, CommitAttempt};
pub use correlation::{Correlation, CAUSATION_HEADER, CORRELATION_HEADER};
pub use event::{DuplicateTopic, Event, TopicEntry, TopicMap, VERSION_HEADER};
pub use log::{LogEntry, LogFilter, StreamDeleted};
pub use message::{EventMessage, Headers};
pub use snapshot::Snapshot;
