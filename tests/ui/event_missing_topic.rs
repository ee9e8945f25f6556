// Every event names its topic: a default from the type's name would let two `Placed` types in
// different modules share one silently.
#[aett::event]
#[derive(serde::Serialize, serde::Deserialize)]
struct Placed {}

#[aett::event(version = 2)]
#[derive(serde::Serialize, serde::Deserialize)]
enum Changed {
    Raised(u64),
    Lowered(u64),
}

fn main() {}
