use aett::{AggregateState, Apply};
use serde::{Deserialize, Serialize};

#[aett::event(topic = "bank.deposited", aliases("bank.credited"))]
#[derive(Serialize, Deserialize)]
struct Deposited {}

// An old name of `Deposited` reused as the topic of another event of the same aggregate.
#[aett::event(topic = "bank.credited")]
#[derive(Serialize, Deserialize)]
struct Credited {}

#[derive(aett::Aggregate, Default, Serialize, Deserialize)]
#[aggregate(events(Deposited, Credited))]
struct Account {
    #[serde(skip)]
    state: AggregateState,
}

impl Apply<Deposited> for Account {
    fn apply(&mut self, _: &Deposited) {}
}

impl Apply<Credited> for Account {
    fn apply(&mut self, _: &Credited) {}
}

fn main() {}
