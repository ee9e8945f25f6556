//! Correlation and causation: a conversation started by a request is carried by every commit
//! and command that follows from it, each naming its own cause.

use std::sync::{Arc, Mutex};

use aett::{
    Aggregate, AggregateRepository, BoxError, CommandDispatcher, Commit, CommitLog, Correlation,
    DispatchedCommand, EventContext, Headers, InMemoryStore, Project, Projection, ProjectionRunner,
    SagaRunner, CAUSATION_HEADER, CORRELATION_HEADER,
};
use aett_conformance::domain::{Counter, Incremented};
use futures::TryStreamExt;
use serde_json::json;

async fn log(store: &InMemoryStore) -> Vec<Commit> {
    store
        .get_from(0)
        .map_ok(|entry| entry.into_commit().expect("no deletion"))
        .try_collect()
        .await
        .unwrap()
}

#[test]
fn correlations_read_and_write_their_headers() {
    let request = Correlation::start("req-1");
    assert_eq!(request, Correlation::new("req-1", "req-1"));
    let headers = request.headers();
    assert_eq!(headers[CORRELATION_HEADER], json!("req-1"));
    assert_eq!(headers[CAUSATION_HEADER], json!("req-1"));
    assert_eq!(Correlation::from_headers(&headers), Some(request));
    assert_eq!(Correlation::from_headers(&Headers::new()), None);
    let only = Headers::from([(CORRELATION_HEADER.to_owned(), json!(42))]);
    assert_eq!(
        Correlation::from_headers(&only),
        Some(Correlation::new("42", "42")),
        "a missing causation is the correlation; a number is read as its text"
    );
    let mut given = Headers::from([(CAUSATION_HEADER.to_owned(), json!("mine"))]);
    Correlation::new("c", "d").add_to(&mut given);
    assert_eq!(
        Correlation::from_headers(&given),
        Some(Correlation::new("c", "mine")),
        "headers already there are kept"
    );
}

#[tokio::test]
async fn a_correlated_repository_stamps_its_commits_and_handlers_see_the_event_as_cause() {
    let store = Arc::new(InMemoryStore::new());
    let repo = AggregateRepository::new("t", &store);
    let mut counter = Counter::create("c");
    counter.add(1).unwrap();
    repo.correlated(Correlation::start("req-7"))
        .save(
            &mut counter,
            Headers::from([("user".to_owned(), json!("ann"))]),
        )
        .await
        .unwrap();
    counter.add(2).unwrap();
    let explicit = Correlation::new("req-8", "cmd-3").headers();
    repo.correlated(Correlation::start("ignored"))
        .save(&mut counter, explicit)
        .await
        .unwrap();
    counter.add(3).unwrap();
    repo.save(&mut counter, Headers::new()).await.unwrap();

    let commits = log(&store).await;
    assert_eq!(
        Correlation::from_headers(&commits[0].headers),
        Some(Correlation::start("req-7"))
    );
    assert_eq!(commits[0].headers["user"], json!("ann"));
    assert_eq!(
        Correlation::from_headers(&commits[1].headers),
        Some(Correlation::new("req-8", "cmd-3")),
        "the headers given to the save win"
    );
    assert_eq!(Correlation::from_headers(&commits[2].headers), None);

    #[derive(Default, Projection)]
    #[projection(events(Incremented))]
    struct Causes(Vec<Correlation>);

    impl Project<Incremented> for Causes {
        async fn project(&mut self, _: Incremented, c: &EventContext<'_>) -> Result<(), BoxError> {
            self.0.push(c.correlation());
            Ok(())
        }
    }

    let causes = ProjectionRunner::new(&store, Causes::default())
        .catch_up()
        .await
        .unwrap();
    assert_eq!(
        causes.0,
        [
            Correlation::new("req-7", format!("{}/0", commits[0].commit_id)),
            Correlation::new("req-8", format!("{}/0", commits[1].commit_id)),
            // No conversation yet: the event starts one.
            Correlation::start(format!("{}/0", commits[2].commit_id)),
        ]
    );
    assert_eq!(
        Correlation::caused_by(&commits[1], 0),
        causes.0[1],
        "from a commit in hand, the same"
    );
}

#[derive(Clone, Default)]
struct Bus(Arc<Mutex<Vec<DispatchedCommand>>>);

impl CommandDispatcher for Bus {
    async fn dispatch(&self, command: &DispatchedCommand) -> Result<(), BoxError> {
        self.0.lock().unwrap().push(command.clone());
        Ok(())
    }
}

#[tokio::test]
async fn a_conversation_runs_from_a_request_through_a_saga_to_the_commit_its_command_makes() {
    use aett_conformance::domain::{Fulfilment, OrderPlaced, ShipOrder};

    let store = Arc::new(InMemoryStore::new());
    // The request places an order: the order's commit starts the conversation.
    let placed = aett::CommitAttempt::new(
        "t",
        "order-1",
        1,
        1,
        Correlation::start("req-1").headers(),
        vec![aett::EventMessage::from_event(&OrderPlaced {
            order: "1".into(),
            amount: 5,
        })
        .unwrap()],
    );
    let placed = aett::CommitStore::commit(&*store, placed).await.unwrap();
    let bus = Bus::default();
    SagaRunner::<Fulfilment, _>::new(&store, bus.clone())
        .catch_up()
        .await
        .unwrap();
    let command = bus.0.lock().unwrap()[0].clone();
    assert_eq!(
        command.correlation(),
        Some(Correlation::new("req-1", format!("{}/0", placed.commit_id)))
    );
    assert!(
        command.decode::<ShipOrder>().unwrap().is_none(),
        "a bill first"
    );

    // The command's handler saves through a repository correlated by the command.
    let repo = AggregateRepository::new("t", &store).correlated(command.correlation().unwrap());
    let mut counter = Counter::create("billing");
    counter.add(5).unwrap();
    let billed = repo
        .save(&mut counter, Headers::new())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        Correlation::from_headers(&billed.headers),
        command.correlation(),
        "the conversation reaches the commit the command made"
    );
}
