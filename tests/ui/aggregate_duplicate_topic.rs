use aett::{AggregateState, Apply};
use serde::{Deserialize, Serialize};

#[aett::event(topic = "bank.moved")]
#[derive(Serialize, Deserialize)]
struct Deposited {}

#[aett::event(topic = "bank.moved")]
#[derive(Serialize, Deserialize)]
struct Withdrawn {}

#[derive(aett::Aggregate, Default, Serialize, Deserialize)]
#[aggregate(events(Deposited, Withdrawn))]
struct Account {
    #[serde(skip)]
    state: AggregateState,
}

impl Apply<Deposited> for Account {
    fn apply(&mut self, _: &Deposited) {}
}

impl Apply<Withdrawn> for Account {
    fn apply(&mut self, _: &Withdrawn) {}
}

fn main() {}
