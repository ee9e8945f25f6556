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

fn main() {}
