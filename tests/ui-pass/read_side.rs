//! The read side's derives as a user writes them: a projection with a name and deletions, a
//! correlated saga with a stream type, and both run.

use aett::{BoxError, Correlate, EventContext, Project, SagaState, StreamDeleted, Transition};
use serde::{Deserialize, Serialize};

#[aett::event(topic = "shop.placed")]
#[derive(Serialize, Deserialize)]
struct Placed {
    order: String,
}

#[derive(aett::Projection, Default)]
#[projection(name = "orders", events(Placed), deletions)]
struct Orders {
    open: Vec<String>,
}

impl Project<Placed> for Orders {
    async fn project(&mut self, event: Placed, _: &EventContext<'_>) -> Result<(), BoxError> {
        self.open.push(event.order);
        Ok(())
    }
}

impl Project<StreamDeleted> for Orders {
    async fn project(&mut self, event: StreamDeleted, _: &EventContext<'_>) -> Result<(), BoxError> {
        self.open.retain(|order| *order != event.stream_id);
        Ok(())
    }
}

#[derive(aett::Saga, Default)]
#[saga(name = "fulfilment", events(Placed), correlated)]
struct Fulfilment {
    state: SagaState,
}

impl Transition<Placed> for Fulfilment {
    fn transition(&mut self, _: &Placed) {}
}

impl Correlate<Placed> for Fulfilment {
    fn correlation_id(event: &Placed, _: &EventContext<'_>) -> Option<String> {
        Some(event.order.clone())
    }
}

struct Bus;

impl aett::CommandDispatcher for Bus {
    async fn dispatch(&self, _: &aett::DispatchedCommand) -> Result<(), BoxError> {
        Ok(())
    }
}

fn main() {
    assert_eq!(<Orders as aett::Projection>::NAME, "orders");
    assert_eq!(<Fulfilment as aett::Saga>::NAME, "fulfilment");
    let store = std::sync::Arc::new(aett::InMemoryStore::new());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let orders = aett::ProjectionRunner::new(&store, Orders::default())
            .catch_up()
            .await
            .unwrap();
        assert!(orders.open.is_empty());
        aett::SagaRunner::<Fulfilment, _>::new(&store, Bus)
            .catch_up()
            .await
            .unwrap();
    });
}
