use aett::{BoxError, EventContext, Project};
use serde::{Deserialize, Serialize};

#[aett::event(topic = "opened")]
#[derive(Serialize, Deserialize)]
struct Opened {}

#[aett::event(topic = "closed")]
#[derive(Serialize, Deserialize)]
struct Closed {}

#[derive(aett::Projection, Default)]
#[projection(events(Opened, Closed))]
struct MissingHandler {}

impl Project<Opened> for MissingHandler {
    async fn project(&mut self, _: Opened, _: &EventContext<'_>) -> Result<(), BoxError> {
        Ok(())
    }
}

#[derive(aett::Projection, Default)]
struct NoList {}

#[derive(aett::Projection, Default)]
#[projection(events())]
struct EmptyList {}

#[derive(aett::Projection, Default)]
#[projection(events(Opened, Opened), name = " spaced")]
struct Twice {}

#[derive(aett::Projection, Default)]
#[projection(events(Opened), snapshot = 3)]
struct UnknownArgument {}

#[derive(aett::Projection, Default)]
#[projection(events(Opened), name = 7)]
struct NameNotAString {}

#[derive(aett::Projection)]
#[projection(events(Opened))]
struct Generic<T: Send + 'static> {
    value: T,
}

#[derive(aett::Projection, Default)]
#[projection(events(Opened), deletions)]
struct DeletionsWithoutHandler {}

impl Project<Opened> for DeletionsWithoutHandler {
    async fn project(&mut self, _: Opened, _: &EventContext<'_>) -> Result<(), BoxError> {
        Ok(())
    }
}

fn main() {}
