use aett::{Aggregate, AggregateState, Apply};
use serde::{Deserialize, Serialize};

#[aett::event(topic = "opened")]
#[derive(Serialize, Deserialize)]
struct Opened {}

// One mistake, one error: the fallback impl keeps every use below from failing too.
#[derive(aett::Aggregate, Default, Serialize, Deserialize)]
#[aggregate(events(Opened))]
struct Generic<T> {
    #[serde(skip)]
    state: AggregateState,
    value: T,
}

impl<T> Apply<Opened> for Generic<T> {
    fn apply(&mut self, _: &Opened) {}
}

async fn load(repo: &aett::AggregateRepository) {
    let mut account: Generic<u8> = repo.get("a").await.unwrap();
    account.raise(Opened {});
    repo.save(&mut account, aett::Headers::new()).await.unwrap();
    let _ = (account.id(), account.version(), account.value);
}

fn main() {
    let _ = load;
}
