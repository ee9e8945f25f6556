#[aett::event(topic = "wrapped")]
#[derive(serde::Serialize, serde::Deserialize)]
struct Wrapped<T> {
    inner: T,
}

fn main() {}
