use aett::{Aggregate, AggregateState, Apply};
use serde::{Deserialize, Serialize};

#[aett::event(topic = "opened")]
#[derive(Serialize, Deserialize)]
struct Opened {}

#[aett::event(topic = "closed")]
#[derive(Serialize, Deserialize)]
struct Closed {}

#[aett::event(topic = "renamed")]
#[derive(Serialize, Deserialize)]
struct Renamed {}

#[derive(aett::Aggregate, Default, Serialize, Deserialize)]
#[aggregate(events(Opened, Renamed))]
struct Account {
    #[serde(skip)]
    state: AggregateState,
}

impl Apply<Opened> for Account {
    fn apply(&mut self, _: &Opened) {}
}

impl Apply<Renamed> for Account {
    fn apply(&mut self, _: &Renamed) {}
}

impl Apply<Closed> for Account {
    fn apply(&mut self, _: &Closed) {}
}

fn main() {
    let mut account = Account::create("a");
    account.raise(Closed {});
}
