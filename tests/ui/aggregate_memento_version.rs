use aett::AggregateState;
use serde::{Deserialize, Serialize};

#[derive(aett::Aggregate, Default, Serialize, Deserialize)]
#[aggregate(events(), memento_version = 0)]
struct Zero {
    #[serde(skip)]
    state: AggregateState,
}

fn main() {}
