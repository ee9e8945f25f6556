use aett::{AggregateState, Apply};
use serde::{Deserialize, Serialize};

#[aett::event(topic = "opened")]
#[derive(Serialize, Deserialize)]
struct Opened {}

#[derive(aett::Aggregate, Default, Serialize, Deserialize)]
#[aggregate(events())]
struct Empty {
    #[serde(skip)]
    state: AggregateState,
}

#[derive(aett::Aggregate, Default, Serialize, Deserialize)]
#[aggregate(events(Opened, Opened))]
struct Twice {
    #[serde(skip)]
    state: AggregateState,
}

#[derive(aett::Aggregate, Default, Serialize, Deserialize)]
#[aggregate(events(Opened))]
#[aggregate(events(Opened))]
struct TwoLists {
    #[serde(skip)]
    state: AggregateState,
}

#[derive(aett::Aggregate, Default, Serialize, Deserialize)]
#[aggregate(events(Opened), snapshot = true)]
struct UnknownArg {
    #[serde(skip)]
    state: AggregateState,
}

impl Apply<Opened> for Twice {
    fn apply(&mut self, _: &Opened) {}
}

fn main() {}
