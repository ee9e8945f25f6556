//! The domain layer: aggregates and sagas, and the traits their derives implement.

mod aggregate;
mod apply_error;
mod pending;
mod saga;

pub use aggregate::{Aggregate, AggregateState, Apply, Declares, Memento};
pub use apply_error::ApplyError;
pub use pending::PendingEvent;
pub use saga::{Saga, SagaState, Transition, COMMANDS_ONLY_TOPIC};
