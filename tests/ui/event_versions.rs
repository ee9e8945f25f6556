use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct OldV1 {}

#[derive(Deserialize)]
struct OldV2 {}

#[aett::event(topic = "zero", version = 0)]
#[derive(Serialize, Deserialize)]
struct Zero {}

#[aett::event(topic = "too.new", version = 2, upcast(2 = OldV1, 3 = json(up)))]
#[derive(Serialize, Deserialize)]
struct TooNew {}

#[aett::event(topic = "twice", version = 3, upcast(1 = OldV1, 1 = json(up)))]
#[derive(Serialize, Deserialize)]
struct Twice {}

#[aett::event(topic = "json.after.typed", version = 3, upcast(1 = OldV1, 2 = json(up)))]
#[derive(Serialize, Deserialize)]
struct JsonAfterTyped {}

#[aett::event(version = 2, upcast(1 = OldV2))]
#[derive(Serialize, Deserialize)]
enum PerVariant {
    #[event(topic = "per.variant.a")]
    A,
}

#[aett::event(topic = "bad.list", upcast(1 => OldV1))]
#[derive(Serialize, Deserialize)]
struct BadList {}

fn up(body: serde_json::Value) -> Result<serde_json::Value, String> {
    Ok(body)
}

fn main() {}
