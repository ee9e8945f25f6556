#[aett::event(name = "x")]
#[derive(serde::Serialize, serde::Deserialize)]
struct Unknown {}

#[aett::event(topic = "a", topic = "b")]
#[derive(serde::Serialize, serde::Deserialize)]
struct Twice {}

fn main() {}
