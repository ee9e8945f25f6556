use serde::{Deserialize, Serialize};

#[aett::event(topic = "both")]
#[derive(Serialize, Deserialize)]
enum Both {
    #[event(topic = "both.a")]
    A,
}

#[aett::event]
#[derive(Serialize, Deserialize)]
enum Missing {
    #[event(topic = "missing.a")]
    A,
    B,
    #[event(aliases("missing.old"))]
    C,
}

#[aett::event]
#[derive(Serialize, Deserialize)]
#[serde(tag = "type")]
enum Tagged {
    #[event(topic = "tagged.a")]
    A,
}

#[aett::event(aliases("repeat.a"))]
#[derive(Serialize, Deserialize)]
enum Repeats {
    #[event(topic = "repeat.a")]
    A,
    #[event(topic = "repeat.b", aliases("repeat.b"))]
    B,
}

#[aett::event]
#[derive(Serialize, Deserialize)]
enum VariantArgs {
    #[event(topic = "variant.args", version = 2)]
    A,
}

#[aett::event]
#[derive(Serialize, Deserialize)]
enum Skipped {
    #[event(topic = "skipped.a")]
    #[serde(skip)]
    A,
    #[event(topic = "skipped.b")]
    B,
}

fn main() {}
