use aett::{AggregateState, Apply};
use serde::{Deserialize, Serialize};

#[aett::event(topic = "opened")]
#[derive(Serialize, Deserialize)]
struct Opened {}

#[aett::event(topic = "closed")]
#[derive(Serialize, Deserialize)]
struct Closed {}

#[derive(aett::Aggregate, Default, Serialize, Deserialize)]
#[aggregate(events(Opened, Closed))]
struct Account {
    #[serde(skip)]
    state: AggregateState,
}

impl Apply<Opened> for Account {
    fn apply(&mut self, _: &Opened) {}
}

fn main() {}
