use aett::AggregateState;
use serde::{Deserialize, Serialize};

#[aett::event(topic = "opened")]
#[derive(Serialize, Deserialize)]
struct Opened {}

#[derive(aett::Aggregate, Default)]
#[aggregate(events(Opened))]
struct NoState {
    balance: u64,
}

#[derive(aett::Aggregate, Default)]
#[aggregate(events(Opened))]
struct TwoStates {
    state: AggregateState,
    other: AggregateState,
}

// Its serde form is its memento: the bookkeeping must stay out of it.
#[derive(aett::Aggregate, Default, Serialize, Deserialize)]
#[aggregate(events(Opened))]
struct NotSkipped {
    state: AggregateState,
}

impl aett::Apply<Opened> for NotSkipped {
    fn apply(&mut self, _: &Opened) {}
}

fn main() {}
