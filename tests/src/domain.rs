//! A small domain the contract suite loads and saves through the repositories.

use aett::{
    Aggregate, AggregateState, Apply, Correlate, EventContext, Memento, Saga, SagaState, Transition,
};
use serde::{Deserialize, Serialize};

/// Added to a counter.
#[aett::event(topic = "test.counter.incremented")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incremented {
    /// How much.
    pub by: i64,
}

/// A counter reset to zero.
#[aett::event(topic = "test.counter.reset")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reset {}

/// A note with awkward content: unicode, nesting, optional fields.
#[aett::event(topic = "test.note")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// Text.
    pub text: String,
    /// Nested data.
    pub tags: Vec<Tag>,
    /// Maybe a number.
    pub weight: Option<f64>,
}

/// Nested inside [`Note`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    /// Key.
    pub key: String,
    /// Value.
    pub value: serde_json::Value,
}

/// The aggregate the suite uses. `applied` counts the events replayed into this instance
/// (not part of the memento), so a test can tell how much a load replayed.
#[derive(Debug, Default, Aggregate, Serialize, Deserialize)]
#[aggregate(events(Incremented, Reset))]
pub struct Counter {
    #[serde(skip)]
    state: AggregateState,
    /// The running total.
    pub total: i64,
    /// Events applied to this instance since it was created or restored.
    #[serde(skip)]
    pub applied: u64,
}

impl Apply<Incremented> for Counter {
    fn apply(&mut self, event: &Incremented) {
        self.total += event.by;
        self.applied += 1;
    }
}

impl Apply<Reset> for Counter {
    fn apply(&mut self, _: &Reset) {
        self.total = 0;
        self.applied += 1;
    }
}

impl Counter {
    /// A command: refuses to add zero.
    pub fn add(&mut self, by: i64) -> Result<(), &'static str> {
        if by == 0 {
            return Err("zero");
        }
        self.raise(Incremented { by });
        Ok(())
    }
}

/// The same counter with a custom memento type.
#[derive(Debug, Default, Aggregate)]
#[aggregate(events(Incremented, Reset), memento = TallyMemento)]
pub struct Tally {
    state: AggregateState,
    /// The running total.
    pub total: i64,
}

/// [`Tally`]'s memento.
#[derive(Debug, Serialize, Deserialize)]
pub struct TallyMemento {
    /// The total at the snapshot.
    pub value: i64,
}

impl Memento<TallyMemento> for Tally {
    fn get_memento(&self) -> TallyMemento {
        TallyMemento { value: self.total }
    }

    fn apply_memento(&mut self, memento: TallyMemento) {
        self.total = memento.value;
    }
}

impl Apply<Incremented> for Tally {
    fn apply(&mut self, event: &Incremented) {
        self.total += event.by;
    }
}

impl Apply<Reset> for Tally {
    fn apply(&mut self, _: &Reset) {
        self.total = 0;
    }
}

/// An order was placed.
#[aett::event(topic = "test.order.placed")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderPlaced {
    /// Order id.
    pub order: String,
    /// Amount.
    pub amount: u64,
}

/// Payment was received.
#[aett::event(topic = "test.order.paid")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaymentReceived {
    /// Order id.
    pub order: String,
}

/// A command the saga dispatches.
#[aett::event(topic = "test.command.ship")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShipOrder {
    /// Order id.
    pub order: String,
}

/// A command the saga dispatches.
#[aett::event(topic = "test.command.bill")]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillCustomer {
    /// Order id.
    pub order: String,
    /// Amount.
    pub amount: u64,
}

/// Bills an order when placed, ships it when paid.
#[derive(Debug, Default, Saga)]
#[saga(events(OrderPlaced, PaymentReceived), correlated)]
pub struct Fulfilment {
    state: SagaState,
    /// Whether the order was placed.
    pub placed: bool,
    /// Whether it was paid.
    pub paid: bool,
}

impl Transition<OrderPlaced> for Fulfilment {
    fn transition(&mut self, event: &OrderPlaced) {
        self.placed = true;
        self.dispatch(BillCustomer {
            order: event.order.clone(),
            amount: event.amount,
        });
    }
}

impl Transition<PaymentReceived> for Fulfilment {
    fn transition(&mut self, event: &PaymentReceived) {
        self.paid = true;
        self.dispatch(ShipOrder {
            order: event.order.clone(),
        });
    }
}

/// One fulfilment per order.
impl Correlate<OrderPlaced> for Fulfilment {
    fn correlation_id(event: &OrderPlaced, _: &EventContext<'_>) -> Option<String> {
        Some(format!("fulfilment-{}", event.order))
    }
}

/// Payments go to the order's fulfilment.
impl Correlate<PaymentReceived> for Fulfilment {
    fn correlation_id(event: &PaymentReceived, _: &EventContext<'_>) -> Option<String> {
        Some(format!("fulfilment-{}", event.order))
    }
}
