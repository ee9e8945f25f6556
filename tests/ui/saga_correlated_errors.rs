use aett::{Correlate, EventContext, SagaState, Transition};
use serde::{Deserialize, Serialize};

#[aett::event(topic = "started")]
#[derive(Serialize, Deserialize)]
struct Started {
    id: String,
}

#[aett::event(topic = "finished")]
#[derive(Serialize, Deserialize)]
struct Finished {}

#[derive(aett::Saga, Default)]
#[saga(events(Started, Finished), correlated)]
struct MissingCorrelation {
    state: SagaState,
}

impl Transition<Started> for MissingCorrelation {
    fn transition(&mut self, _: &Started) {}
}

impl Transition<Finished> for MissingCorrelation {
    fn transition(&mut self, _: &Finished) {}
}

impl Correlate<Started> for MissingCorrelation {
    fn correlation_id(event: &Started, _: &EventContext<'_>) -> Option<String> {
        Some(event.id.clone())
    }
}

#[derive(aett::Saga, Default)]
#[saga(events(Started), name = "")]
struct EmptyName {
    state: SagaState,
}

impl Transition<Started> for EmptyName {
    fn transition(&mut self, _: &Started) {}
}

#[derive(aett::Aggregate, Default, Serialize, Deserialize)]
#[aggregate(events(Started), correlated)]
struct AggregatesAreNotCorrelated {
    #[serde(skip)]
    state: aett::AggregateState,
}

fn main() {}
