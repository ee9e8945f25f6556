//! The read side: projections kept from the log, the runners that feed them (catch up from a
//! stored checkpoint, then follow live), and the saga runner.
//!
//! - [`Projection`] and [`Project`]: what `#[derive(Projection)]` implements, and the handler
//!   per event.
//! - [`EventContext`]: where a handled event comes from.
//! - [`ProjectionRunner`]: runs a projection; [`RunningProjection`] is its handle.
//! - [`SagaRunner`]: runs sagas from the log, with an outbox for their commands.

mod context;
mod error;
mod projection;
mod runner;
mod saga;
mod stored;

pub use context::EventContext;
pub use error::RunnerError;
pub use projection::{Project, Projection};
pub use runner::{Delivery, OnDamage, ProjectionRunner, RunningProjection};
pub use saga::{
    CommandDispatcher, Correlate, CorrelatedSaga, DispatchedCommand, SagaRunner, CAUSATION_HEADER,
    CORRELATION_HEADER,
};
