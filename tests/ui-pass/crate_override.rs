// A crate that re-exports aett under another name points the derives at it with `crate = ...`.
mod reexport {
    pub use ::aett as events;
}

use reexport::events::{Aggregate, AggregateState, Apply};
use serde::{Deserialize, Serialize};

#[reexport::events::event(topic = "opened", crate = reexport::events)]
#[derive(Serialize, Deserialize)]
struct Opened {}

#[derive(reexport::events::Aggregate, Default, Serialize, Deserialize)]
#[aggregate(events(Opened), crate = reexport::events)]
struct Account {
    #[serde(skip)]
    state: AggregateState,
    opened: bool,
}

impl Apply<Opened> for Account {
    fn apply(&mut self, _: &Opened) {
        self.opened = true;
    }
}

fn main() {
    let mut account = Account::create("a");
    account.raise(Opened {});
    assert!(account.opened);
}
