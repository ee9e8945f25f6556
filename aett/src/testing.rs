//! Given / when / then for aggregates and sagas, without a store.
//!
//! A domain test states the history, runs one command (or hands a saga one event), and states
//! what should come of it: the events raised, the error, or the commands dispatched. A failure
//! prints the expected and the actual events side by side, each as its topic and JSON body.
//!
//! ```
//! use aett::testing::AggregateTest;
//! use aett::{Aggregate, AggregateState, Apply};
//! use serde::{Deserialize, Serialize};
//!
//! #[aett::event(topic = "bank.opened")]
//! #[derive(Serialize, Deserialize)]
//! struct Opened { owner: String }
//!
//! #[aett::event(topic = "bank.withdrawn")]
//! #[derive(Serialize, Deserialize)]
//! struct Withdrawn { amount: u64 }
//!
//! #[derive(Debug, PartialEq)]
//! enum AccountError { Insufficient { balance: u64 } }
//!
//! #[derive(Aggregate, Default, Serialize, Deserialize)]
//! #[aggregate(events(Opened, Withdrawn))]
//! struct Account { #[serde(skip)] state: AggregateState, balance: u64 }
//!
//! impl Apply<Opened> for Account { fn apply(&mut self, _: &Opened) { self.balance = 100; } }
//! impl Apply<Withdrawn> for Account { fn apply(&mut self, e: &Withdrawn) { self.balance -= e.amount; } }
//!
//! impl Account {
//!     fn withdraw(&mut self, amount: u64) -> Result<(), AccountError> {
//!         if amount > self.balance {
//!             return Err(AccountError::Insufficient { balance: self.balance });
//!         }
//!         self.raise(Withdrawn { amount });
//!         Ok(())
//!     }
//! }
//!
//! AggregateTest::<Account>::new("acc-1")
//!     .given(Opened { owner: "Ann".into() })
//!     .when(|account| account.withdraw(30))
//!     .then_raised(Withdrawn { amount: 30 });
//!
//! let error = AggregateTest::<Account>::new("acc-1")
//!     .given(Opened { owner: "Ann".into() })
//!     .given(Withdrawn { amount: 80 })
//!     .when(|account| account.withdraw(30))
//!     .then_nothing_raised()
//!     .then_error();
//! assert_eq!(error, AccountError::Insufficient { balance: 20 });
//! ```
//!
//! Several expected events are a tuple (`.then_raised((Withdrawn { .. }, Fee { .. }))`) or a
//! `Vec` of one type; `()` expects none.

use std::fmt::{self, Debug, Write as _};

use crate::domain::{Aggregate, Apply, Declares, PendingEvent, Saga, Transition};
use crate::model::event::Dispatch;
use crate::model::{Event, EventMessage};

/// One event a test expects: its topic and its body as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpectedEvent {
    /// The topic.
    pub topic: String,
    /// The body.
    pub body: serde_json::Value,
}

impl ExpectedEvent {
    /// The expectation of exactly `event`.
    pub fn of<E: Event>(event: &E) -> Self {
        let body = event
            .write_body()
            .and_then(|body| serde_json::from_str(body.get()))
            .unwrap_or_else(|e| {
                panic!(
                    "the expected `{}` event does not serialise: {e}",
                    event.topic()
                )
            });
        Self {
            topic: event.topic().to_owned(),
            body,
        }
    }

    fn of_pending(pending: &PendingEvent) -> Self {
        let value = pending.to_message_value().unwrap_or_else(|e| {
            panic!(
                "a raised `{}` event does not serialise: {e}",
                pending.topic()
            )
        });
        Self {
            topic: pending.topic().to_owned(),
            body: value.get("body").cloned().unwrap_or_default(),
        }
    }
}

impl fmt::Display for ExpectedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.topic, self.body)
    }
}

/// What a test can expect to have been raised or dispatched: one event, a tuple of events (of
/// any types), a `Vec` of events of one type, or `()` for none.
pub trait Expected {
    /// The events, in order.
    fn into_expected(self) -> Vec<ExpectedEvent>;
}

impl<E: Event> Expected for E {
    fn into_expected(self) -> Vec<ExpectedEvent> {
        vec![ExpectedEvent::of(&self)]
    }
}

impl<E: Event> Expected for Vec<E> {
    fn into_expected(self) -> Vec<ExpectedEvent> {
        self.iter().map(ExpectedEvent::of).collect()
    }
}

impl Expected for Vec<ExpectedEvent> {
    fn into_expected(self) -> Vec<ExpectedEvent> {
        self
    }
}

impl Expected for () {
    fn into_expected(self) -> Vec<ExpectedEvent> {
        Vec::new()
    }
}

macro_rules! expected_tuple {
    ($($name:ident),+) => {
        impl<$($name: Event),+> Expected for ($($name,)+) {
            #[allow(non_snake_case)]
            fn into_expected(self) -> Vec<ExpectedEvent> {
                let ($($name,)+) = self;
                vec![$(ExpectedEvent::of(&$name)),+]
            }
        }
    };
}

expected_tuple!(A);
expected_tuple!(A, B);
expected_tuple!(A, B, C);
expected_tuple!(A, B, C, D);
expected_tuple!(A, B, C, D, E);
expected_tuple!(A, B, C, D, E, F);
expected_tuple!(A, B, C, D, E, F, G);
expected_tuple!(A, B, C, D, E, F, G, H);

/// The events as a numbered list, for a failure message.
fn listing(events: &[ExpectedEvent]) -> String {
    if events.is_empty() {
        return "  (none)\n".to_owned();
    }
    let mut text = String::new();
    for (n, event) in events.iter().enumerate() {
        // Writing to a String cannot fail.
        let _ = writeln!(text, "  {}. {event}", n + 1);
    }
    text
}

#[track_caller]
fn compare(what: &str, expected: Vec<ExpectedEvent>, actual: &[ExpectedEvent]) {
    if expected != actual {
        panic!(
            "{what} other events than expected\nexpected:\n{}actual:\n{}",
            listing(&expected),
            listing(actual)
        );
    }
}

/// A test of an aggregate: its history (`given`), then one command (`when`).
pub struct AggregateTest<A: Aggregate> {
    aggregate: A,
}

impl<A: Aggregate> AggregateTest<A> {
    /// A fresh aggregate with the id `id`, with no history.
    pub fn new(id: &str) -> Self {
        Self {
            aggregate: A::create(id),
        }
    }

    /// An event of the aggregate's history: applied as loading applies it (the version
    /// advances; nothing is left to save).
    pub fn given<E>(mut self, event: E) -> Self
    where
        E: Event,
        A: Apply<E> + Declares<E>,
    {
        self.aggregate.apply(&event);
        self.committed();
        self
    }

    /// An event of the history as a stored message, decoded as loading decodes it. Panics if
    /// the aggregate does not list its topic or the body does not decode.
    #[track_caller]
    pub fn given_message(mut self, message: &EventMessage) -> Self {
        let version = match message.version() {
            Ok(version) => version,
            Err(e) => panic!("the given message: {e}"),
        };
        let mut body = serde_json::Deserializer::from_str(message.body.get());
        match self.aggregate.apply_body(&message.topic, version, &mut body) {
            Ok(Dispatch::Done(())) => {}
            Ok(Dispatch::Unlisted) => panic!(
                "`{}` does not list the topic `{}` of the given message",
                A::NAME,
                message.topic
            ),
            Ok(Dispatch::Newer { known }) => panic!(
                "the given `{}` message is at version {version}, newer than version {known} of its type",
                message.topic
            ),
            Err(e) => panic!("the given `{}` message does not decode: {e}", message.topic),
        }
        self.committed();
        self
    }

    /// Counts one event of history as loaded and saved.
    fn committed(&mut self) {
        let version = self.aggregate.version() + 1;
        let state = self.aggregate.state_mut();
        state.loaded(version, version, false);
    }

    /// Runs the command; what it raised and returned is then checked with the `then_` methods.
    pub fn when<T, Err>(
        self,
        command: impl FnOnce(&mut A) -> Result<T, Err>,
    ) -> AggregateOutcome<A, T, Err> {
        let mut aggregate = self.aggregate;
        let result = command(&mut aggregate);
        AggregateOutcome { aggregate, result }
    }
}

/// What a command did to an aggregate.
pub struct AggregateOutcome<A: Aggregate, T, Err> {
    aggregate: A,
    result: Result<T, Err>,
}

impl<A: Aggregate, T: Debug, Err: Debug> AggregateOutcome<A, T, Err> {
    fn raised(&self) -> Vec<ExpectedEvent> {
        self.aggregate
            .uncommitted()
            .iter()
            .map(ExpectedEvent::of_pending)
            .collect()
    }

    /// Checks that the command succeeded and raised exactly `expected`, in order.
    #[track_caller]
    pub fn then_raised(self, expected: impl Expected) -> Self {
        let expected = expected.into_expected();
        if let Err(error) = &self.result {
            panic!(
                "the command failed with {error:?}, where events were expected:\n{}",
                listing(&expected)
            );
        }
        compare("the command raised", expected, &self.raised());
        self
    }

    /// Checks that the command raised nothing (whether or not it failed).
    #[track_caller]
    pub fn then_nothing_raised(self) -> Self {
        compare("the command raised", Vec::new(), &self.raised());
        self
    }

    /// Checks that the command failed, and returns its error for a closer look.
    #[track_caller]
    pub fn then_error(self) -> Err {
        let raised = self.raised();
        match self.result {
            Ok(output) => panic!(
                "the command succeeded with {output:?}, where an error was expected; it raised:\n{}",
                listing(&raised)
            ),
            Err(error) => error,
        }
    }

    /// Checks that the command failed with an error that reads `message`.
    #[track_caller]
    pub fn then_error_message(self, message: &str) -> Self
    where
        Err: fmt::Display,
    {
        match &self.result {
            Ok(output) => panic!(
                "the command succeeded with {output:?}, where the error `{message}` was expected"
            ),
            Err(error) if error.to_string() != message => panic!(
                "the command failed with `{error}`, where the error `{message}` was expected"
            ),
            Err(_) => self,
        }
    }

    /// Checks that the command succeeded, and returns what it returned.
    #[track_caller]
    pub fn then_ok(self) -> T {
        match self.result {
            Ok(output) => output,
            Err(error) => panic!("the command failed with {error:?}"),
        }
    }

    /// The aggregate after the command, for checks of its state.
    pub fn aggregate(&self) -> &A {
        &self.aggregate
    }

    /// What the command returned.
    pub fn result(&self) -> &Result<T, Err> {
        &self.result
    }
}

/// A test of a saga: the events it has handled (`given`), then one more (`when`).
pub struct SagaTest<S: Saga> {
    saga: S,
}

impl<S: Saga> SagaTest<S> {
    /// A fresh saga with the id `id`, with no history.
    pub fn new(id: &str) -> Self {
        Self {
            saga: S::create(id),
        }
    }

    /// An event the saga has handled and saved: its commands were handed out then.
    pub fn given<E>(mut self, event: E) -> Self
    where
        E: Event,
        S: Transition<E> + Declares<E>,
    {
        self.saga.handle(event);
        self.saved();
        self
    }

    /// An event the saga has handled, as a stored message. Panics if the saga does not list its
    /// topic or the body does not decode.
    #[track_caller]
    pub fn given_message(mut self, message: &EventMessage) -> Self {
        if let Err(e) = self.saga.handle_message(message) {
            panic!("the given message: {e}");
        }
        self.saved();
        self
    }

    fn saved(&mut self) {
        let sequence = self.saga.state().commit_sequence() + 1;
        let version = self.saga.version();
        self.saga.state_mut().saved(sequence, version);
    }

    /// Hands the saga one more event; what it dispatched is then checked with the `then_`
    /// methods.
    pub fn when<E>(self, event: E) -> SagaOutcome<S>
    where
        E: Event,
        S: Transition<E> + Declares<E>,
    {
        let mut saga = self.saga;
        saga.handle(event);
        SagaOutcome { saga }
    }

    /// [`SagaTest::when`] with a stored message, as a saga runner hands it over.
    #[track_caller]
    pub fn when_message(self, message: &EventMessage) -> SagaOutcome<S> {
        let mut saga = self.saga;
        if let Err(e) = saga.handle_message(message) {
            panic!("the message the saga was handed: {e}");
        }
        SagaOutcome { saga }
    }
}

/// What an event made a saga do.
pub struct SagaOutcome<S: Saga> {
    saga: S,
}

impl<S: Saga> SagaOutcome<S> {
    fn dispatched(&self) -> Vec<ExpectedEvent> {
        self.saga
            .undispatched()
            .iter()
            .map(ExpectedEvent::of_pending)
            .collect()
    }

    /// Checks that the saga dispatched exactly `expected`, in order.
    #[track_caller]
    pub fn then_dispatched(self, expected: impl Expected) -> Self {
        compare(
            "the saga dispatched",
            expected.into_expected(),
            &self.dispatched(),
        );
        self
    }

    /// Checks that the saga dispatched nothing.
    #[track_caller]
    pub fn then_nothing_dispatched(self) -> Self {
        compare("the saga dispatched", Vec::new(), &self.dispatched());
        self
    }

    /// The saga after the event, for checks of its state.
    pub fn saga(&self) -> &S {
        &self.saga
    }
}
