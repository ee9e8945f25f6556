use aett::{SagaState, Transition};
use serde::{Deserialize, Serialize};

#[aett::event(topic = "started")]
#[derive(Serialize, Deserialize)]
struct Started {}

#[derive(aett::Saga, Default)]
#[saga(events(Started))]
struct Plain {
    state: SagaState,
}

impl Transition<Started> for Plain {
    fn transition(&mut self, _: &Started) {}
}

struct Bus;

impl aett::CommandDispatcher for Bus {
    async fn dispatch(&self, _: &aett::DispatchedCommand) -> Result<(), aett::BoxError> {
        Ok(())
    }
}

fn main() {
    let store = aett::InMemoryStore::new();
    let _ = aett::SagaRunner::<Plain, Bus>::new(&std::sync::Arc::new(store), Bus);
}
