use aett::{Aggregate, AggregateState, Apply};
use serde::{Deserialize, Serialize};

#[aett::event(topic = "opened")]
#[derive(Serialize, Deserialize)]
struct Opened {}

#[aett::event(topic = "closed")]
#[derive(Serialize, Deserialize)]
struct Closed {}

// One listed event: rustc must not infer `raise`'s event from the only impl.
#[derive(aett::Aggregate, Default, Serialize, Deserialize)]
#[aggregate(events(Opened))]
struct Account {
    #[serde(skip)]
    state: AggregateState,
}

impl Apply<Opened> for Account {
    fn apply(&mut self, _: &Opened) {}
}

impl Apply<Closed> for Account {
    fn apply(&mut self, _: &Closed) {}
}

fn main() {
    let mut account = Account::create("a");
    account.raise(Closed {});
}
