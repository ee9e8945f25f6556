// The bookkeeping field need not be `#[serde(skip)]`: it serialises as `null` and is never part
// of the memento.
use aett::{Aggregate, AggregateState, Apply};
use serde::{Deserialize, Serialize};

#[aett::event(topic = "opened")]
#[derive(Serialize, Deserialize)]
struct Opened {}

#[derive(aett::Aggregate, Default, Serialize, Deserialize)]
#[aggregate(events(Opened))]
struct Account {
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
    let memento = serde_json::to_string(&account).unwrap();
    assert_eq!(memento, r#"{"state":null,"opened":true}"#);
    let restored: Account = serde_json::from_str(&memento).unwrap();
    assert!(restored.opened && restored.version() == 0);
}
