use aett::{AggregateState, Apply};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Plain {}

#[derive(aett::Aggregate, Default, Serialize, Deserialize)]
#[aggregate(events(Plain))]
struct Account {
    #[serde(skip)]
    state: AggregateState,
}

impl Apply<Plain> for Account {
    fn apply(&mut self, _: &Plain) {}
}

fn main() {}
