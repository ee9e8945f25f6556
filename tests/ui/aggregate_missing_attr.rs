#[derive(aett::Aggregate, Default)]
struct Account {
    state: aett::AggregateState,
}

fn main() {}
