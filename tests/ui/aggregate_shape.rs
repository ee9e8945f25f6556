#[aett::event(topic = "opened")]
#[derive(serde::Serialize, serde::Deserialize)]
struct Opened {}

#[derive(aett::Aggregate)]
#[aggregate(events(Opened))]
enum NotAStruct {
    A,
}

#[derive(aett::Aggregate)]
#[aggregate(events(Opened))]
struct Tuple(aett::AggregateState);

#[derive(aett::Aggregate, Default)]
#[aggregate(events(Opened))]
struct Generic<T> {
    state: aett::AggregateState,
    value: T,
}

fn main() {}
