//! The test kit (`aett::testing`): given / when / then for aggregates and sagas, and what its
//! failures say.

use std::panic::{catch_unwind, AssertUnwindSafe};

use aett::testing::{AggregateTest, ExpectedEvent, SagaTest};
use aett::{Aggregate, EventMessage};
use aett_conformance::domain::{
    BillCustomer, Counter, Fulfilment, Incremented, OrderPlaced, PaymentReceived, Reset, ShipOrder,
};
use serde_json::json;

/// The message of the panic `f` raises (it must raise one).
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("the check should have failed");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn a_command_raises_what_its_history_allows() {
    let outcome = AggregateTest::<Counter>::new("c-1")
        .given(Incremented { by: 2 })
        .given(Reset {})
        .given(Incremented { by: 5 })
        .when(|counter| counter.add(3))
        .then_raised(Incremented { by: 3 });
    assert_eq!(outcome.aggregate().total, 8);
    assert_eq!(
        outcome.aggregate().version(),
        4,
        "three past events and the new one"
    );
    assert_eq!(
        outcome.aggregate().uncommitted().len(),
        1,
        "the history is not to be saved"
    );
    outcome.then_ok();
}

#[test]
fn several_events_are_a_tuple_or_a_vec() {
    AggregateTest::<Counter>::new("c-1")
        .when(|counter| {
            counter.add(1)?;
            counter.add(2)
        })
        .then_raised((Incremented { by: 1 }, Incremented { by: 2 }))
        .then_raised(vec![Incremented { by: 1 }, Incremented { by: 2 }]);
    AggregateTest::<Counter>::new("c-1")
        .when(|_| Ok::<_, &str>(()))
        .then_raised(())
        .then_nothing_raised();
}

#[test]
fn a_refused_command_is_its_error() {
    let error = AggregateTest::<Counter>::new("c-1")
        .given(Incremented { by: 1 })
        .when(|counter| counter.add(0))
        .then_nothing_raised()
        .then_error();
    assert_eq!(error, "zero");
    AggregateTest::<Counter>::new("c-1")
        .when(|counter| counter.add(0).map_err(|e| format!("refused: {e}")))
        .then_error_message("refused: zero");
}

#[test]
fn stored_messages_are_history_too() {
    let message = EventMessage::from_event(&Incremented { by: 40 }).unwrap();
    AggregateTest::<Counter>::new("c-1")
        .given_message(&message)
        .when(|counter| counter.add(2))
        .then_raised(Incremented { by: 2 });
    let stranger = EventMessage::from_event(&OrderPlaced {
        order: "o".into(),
        amount: 1,
    })
    .unwrap();
    let message = panic_message(|| {
        AggregateTest::<Counter>::new("c-1").given_message(&stranger);
    });
    assert!(
        message.contains("does not list the topic `test.order.placed`"),
        "{message}"
    );
}

#[test]
fn a_failed_expectation_shows_both_lists() {
    let message = panic_message(|| {
        AggregateTest::<Counter>::new("c-1")
            .when(|counter| counter.add(3))
            .then_raised((Incremented { by: 3 }, Reset {}));
    });
    assert_eq!(
        message,
        "the command raised other events than expected\n\
         expected:\n  1. test.counter.incremented {\"by\":3}\n  2. test.counter.reset {}\n\
         actual:\n  1. test.counter.incremented {\"by\":3}\n"
    );
    let message = panic_message(|| {
        AggregateTest::<Counter>::new("c-1")
            .when(|counter| counter.add(0))
            .then_raised(Incremented { by: 3 });
    });
    assert!(
        message.starts_with("the command failed with \"zero\", where events were expected"),
        "{message}"
    );
    let message = panic_message(|| {
        AggregateTest::<Counter>::new("c-1")
            .when(|counter| counter.add(4))
            .then_error();
    });
    assert!(
        message.contains(
            "where an error was expected; it raised:\n  1. test.counter.incremented {\"by\":4}"
        ),
        "{message}"
    );
    let message = panic_message(|| {
        AggregateTest::<Counter>::new("c-1")
            .when(|counter| counter.add(0))
            .then_error_message("something else");
    });
    assert!(message.contains("failed with `zero`"), "{message}");
}

#[test]
fn a_saga_dispatches_commands_for_the_event_it_is_handed() {
    let outcome = SagaTest::<Fulfilment>::new("fulfilment-o-1")
        .given(OrderPlaced {
            order: "o-1".into(),
            amount: 30,
        })
        .when(PaymentReceived {
            order: "o-1".into(),
        })
        .then_dispatched(ShipOrder {
            order: "o-1".into(),
        });
    assert!(outcome.saga().placed && outcome.saga().paid);
    // The commands of the history were handed out when it was saved.
    SagaTest::<Fulfilment>::new("fulfilment-o-2")
        .when(OrderPlaced {
            order: "o-2".into(),
            amount: 5,
        })
        .then_dispatched(vec![BillCustomer {
            order: "o-2".into(),
            amount: 5,
        }]);
    let message = EventMessage::from_event(&PaymentReceived {
        order: "o-3".into(),
    })
    .unwrap();
    let failure = panic_message(|| {
        SagaTest::<Fulfilment>::new("fulfilment-o-3")
            .when_message(&message)
            .then_nothing_dispatched();
    });
    assert_eq!(
        failure,
        "the saga dispatched other events than expected\nexpected:\n  (none)\nactual:\n  1. test.command.ship {\"order\":\"o-3\"}\n"
    );
    // An expectation can also be written out as topic and JSON.
    SagaTest::<Fulfilment>::new("fulfilment-o-3")
        .when_message(&message)
        .then_dispatched(vec![ExpectedEvent {
            topic: "test.command.ship".into(),
            body: json!({"order": "o-3"}),
        }]);
}
