#[aett::event(topic = "")]
#[derive(serde::Serialize, serde::Deserialize)]
struct Empty {}

#[aett::event(topic = " padded ")]
#[derive(serde::Serialize, serde::Deserialize)]
struct Padded {}

#[aett::event(topic = 5)]
#[derive(serde::Serialize, serde::Deserialize)]
struct NotAString {}

fn main() {}
