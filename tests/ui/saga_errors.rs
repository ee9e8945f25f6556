use aett::{SagaState, Transition};
use serde::{Deserialize, Serialize};

#[aett::event(topic = "started")]
#[derive(Serialize, Deserialize)]
struct Started {}

#[aett::event(topic = "finished")]
#[derive(Serialize, Deserialize)]
struct Finished {}

#[derive(aett::Saga, Default)]
#[saga(events(Started, Finished))]
struct MissingTransition {
    state: SagaState,
}

impl Transition<Started> for MissingTransition {
    fn transition(&mut self, _: &Started) {}
}

#[derive(aett::Saga, Default)]
#[saga(events(Started), memento = Started)]
struct NoMementoForSagas {
    state: SagaState,
}

#[derive(aett::Saga, Default)]
#[saga(events(Started))]
struct NoState {
    done: bool,
}

#[derive(aett::Saga, Default)]
struct NoList {
    state: SagaState,
}

fn main() {}
