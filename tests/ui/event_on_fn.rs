#[aett::event(topic = "x")]
fn not_a_type() {}

fn main() {}
