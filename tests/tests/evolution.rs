//! Event evolution beyond the contract suite: projections, sagas, the test kit, the conflict
//! detector and the topic map read old shapes and old topics; bad versions are typed errors.

use std::sync::Arc;

use aett::testing::AggregateTest;
use aett::{
    Aggregate, ApplyError, CommitAttempt, CommitStore, ConflictDetector, Event, EventContext,
    EventMessage, Headers, InMemoryStore, PersistenceManagement, Project, Projection,
    ProjectionRunner, RepositoryError, RunnerError, SqliteConfig, SqliteStore, StoreError,
    TopicMap, VERSION_HEADER,
};
use aett_conformance::evolution::{Account, Deposited, Hold, Withdrawn};
use serde_json::{json, Value};

fn raw(topic: &str, version: Option<u32>, body: Value) -> EventMessage {
    let message = EventMessage::from_raw(topic, serde_json::value::to_raw_value(&body).unwrap());
    match version {
        Some(version) => message.with_header(VERSION_HEADER, version),
        None => message,
    }
}

fn old_history() -> Vec<EventMessage> {
    vec![
        raw("test.account.credited", None, json!({"amount": 5})),
        raw("test.account.deposited", Some(2), json!({"cents": 250})),
        raw("test.account.withdrawn", None, json!({"amount": 1})),
        raw("test.account.frozen", None, json!({"why": "audit"})),
        raw("test.account.hold_extended", Some(2), json!(3)),
    ]
}

/// The first commit of a stream.
async fn commit(store: &dyn CommitStore, stream: &str, events: Vec<EventMessage>) {
    let revision = events.len() as u64;
    let attempt = CommitAttempt::new("t", stream, revision, 1, Headers::new(), events);
    store.commit(attempt).await.expect("commit");
}

/// Both read paths: messages (memory) and stored JSON read in one pass (SQLite).
async fn stores() -> Vec<(Arc<dyn aett::EventStore>, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::with_config(SqliteConfig::new(dir.path().join("s.db"))).unwrap();
    sqlite.initialize().await.unwrap();
    vec![
        (Arc::new(InMemoryStore::new()), None),
        (Arc::new(sqlite), Some(dir)),
    ]
}

#[derive(Debug, Default, Projection)]
#[projection(name = "evolution.balances", events(Deposited, Withdrawn, Hold))]
struct Balances {
    cents: i64,
    holds: Vec<String>,
}

impl Project<Deposited> for Balances {
    async fn project(&mut self, e: Deposited, _: &EventContext<'_>) -> Result<(), aett::BoxError> {
        self.cents += e.cents as i64;
        Ok(())
    }
}

impl Project<Withdrawn> for Balances {
    async fn project(&mut self, e: Withdrawn, _: &EventContext<'_>) -> Result<(), aett::BoxError> {
        self.cents -= e.cents as i64;
        Ok(())
    }
}

impl Project<Hold> for Balances {
    async fn project(&mut self, e: Hold, _: &EventContext<'_>) -> Result<(), aett::BoxError> {
        self.holds.push(format!("{e:?}"));
        Ok(())
    }
}

#[tokio::test]
async fn projections_read_old_shapes_and_old_topics_and_refuse_newer_versions() {
    for (store, _dir) in stores().await {
        commit(&*store, "a", old_history()).await;
        let balances = ProjectionRunner::new(&store, Balances::default())
            .catch_up()
            .await
            .expect("old shapes project");
        assert_eq!(balances.cents, 650);
        assert_eq!(
            balances.holds,
            ["Placed { reason: \"audit\" }", "Extended(3)"]
        );

        commit(
            &*store,
            "b",
            vec![raw("test.account.withdrawn", Some(7), json!({}))],
        )
        .await;
        match ProjectionRunner::new(&store, Balances::default())
            .catch_up()
            .await
        {
            Err(RunnerError::Decode {
                stream,
                topic,
                source:
                    ApplyError::NewerVersion {
                        stored: 7,
                        known: 2,
                        ..
                    },
                ..
            }) => assert_eq!(
                (stream.as_str(), topic.as_str()),
                ("b", "test.account.withdrawn")
            ),
            other => panic!("expected a newer-version error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_version_header_that_is_not_a_version_is_damage_and_a_failing_upcaster_a_decode_error() {
    for (store, _dir) in stores().await {
        commit(
            &*store,
            "bad-version",
            vec![raw(
                "test.account.deposited",
                None,
                json!({"cents": 1, "currency": "EUR"}),
            )
            .with_header(VERSION_HEADER, "two")],
        )
        .await;
        let repo = aett::AggregateRepository::new("t", &store);
        match repo.get::<Account>("bad-version").await {
            Err(RepositoryError::Store(StoreError::Corrupt { reason, .. })) => {
                assert!(reason.contains("aett.version"), "{reason}")
            }
            other => panic!("expected damage, got {other:?}"),
        }

        commit(
            &*store,
            "no-amount",
            vec![raw("test.account.withdrawn", None, json!({"cents": 3}))],
        )
        .await;
        match repo.get::<Account>("no-amount").await {
            Err(RepositoryError::Decode { topic, source, .. }) => {
                assert_eq!(topic, "test.account.withdrawn");
                let message = source.to_string();
                assert!(
                    message.contains("upcaster from version 1 failed")
                        && message.contains("a version-1 withdrawal has no amount"),
                    "{message}"
                );
            }
            other => panic!("expected a decode error, got {other:?}"),
        }
    }
}

#[test]
fn messages_decode_through_aliases_and_upcasters() {
    let credited = raw("test.account.credited", None, json!({"amount": 2}));
    assert!(credited.is::<Deposited>());
    assert_eq!(
        credited.decode_event::<Deposited>().unwrap(),
        Some(Deposited {
            cents: 200,
            currency: "EUR".into()
        })
    );
    assert_eq!(credited.decode_event::<Withdrawn>().unwrap(), None);
    let newer = raw("test.account.hold_lifted", Some(3), json!(null));
    match newer.decode_event::<Hold>() {
        Err(ApplyError::NewerVersion {
            topic,
            stored: 3,
            known: 2,
        }) => assert_eq!(topic, "test.account.hold_lifted"),
        other => panic!("expected a newer-version error, got {other:?}"),
    }
    // Written: the variant's topic, its content, the version.
    let placed = EventMessage::from_event(&Hold::Extended(4)).unwrap();
    assert_eq!(placed.topic, "test.account.hold_extended");
    assert_eq!(placed.body.get(), "4");
    assert_eq!(placed.headers.get(VERSION_HEADER), Some(&json!(2)));
    assert_eq!(
        placed.decode_event::<Hold>().unwrap(),
        Some(Hold::Extended(4))
    );
    let lifted = EventMessage::from_event(&Hold::Lifted).unwrap();
    assert_eq!(lifted.body.get(), "null");
    assert_eq!(lifted.decode_event::<Hold>().unwrap(), Some(Hold::Lifted));
}

#[test]
fn the_event_trait_describes_topics_aliases_and_versions() {
    assert_eq!(Deposited::TOPIC, "test.account.deposited");
    assert_eq!(Deposited::ALIASES, ["test.account.credited"]);
    assert_eq!(Deposited::VERSION, 3);
    assert_eq!(
        Hold::TOPICS,
        [
            "test.account.hold_placed",
            "test.account.hold_extended",
            "test.account.hold_lifted"
        ]
    );
    assert_eq!(Hold::ALIASES, ["test.account.frozen"]);
    assert_eq!(Hold::Lifted.topic(), "test.account.hold_lifted");
    assert!(Hold::reads("test.account.frozen") && !Hold::reads("test.account.deposited"));
    assert_eq!(
        <Account as aett::Aggregate>::TOPICS.len(),
        7,
        "the aggregate reads every topic and alias of its events"
    );

    let map = TopicMap::global().unwrap();
    let alias = map
        .get("test.account.frozen")
        .expect("aliases are in the map");
    assert!(alias.alias && alias.type_name.ends_with("Hold"));
    assert!(!map.get("test.account.hold_lifted").unwrap().alias);
    assert_eq!(
        map.get_from_type::<Deposited>(),
        Some("test.account.deposited")
    );
}

#[test]
fn the_test_kit_gives_stored_messages_through_the_upcasters() {
    let tested = AggregateTest::<Account>::new("a")
        .given_message(&raw("test.account.credited", None, json!({"amount": 1})))
        .given(Hold::Placed {
            reason: "kyc".into(),
        })
        .when(|account| {
            account.raise(Hold::Lifted);
            Ok::<_, String>(())
        })
        .then_raised(Hold::Lifted);
    let account = tested.aggregate();
    assert_eq!((account.balance, account.hold.as_deref()), (100, None));
}

#[test]
fn the_conflict_detector_matches_old_topics_and_old_shapes() {
    let mut detector = ConflictDetector::new();
    detector.register(|mine: &Withdrawn, theirs: &Deposited| mine.cents > theirs.cents);
    let attempt = CommitAttempt::new(
        "t",
        "s",
        2,
        2,
        Headers::new(),
        vec![EventMessage::from_event(&Withdrawn {
            cents: 150,
            reason: "rent".into(),
        })
        .unwrap()],
    );
    let theirs = |body: Value| aett::Commit {
        tenant_id: "t".into(),
        stream_id: "s".into(),
        stream_revision: 1,
        commit_id: uuid::Uuid::new_v4(),
        commit_sequence: 1,
        commit_stamp: chrono::Utc::now(),
        headers: Headers::new(),
        events: vec![raw("test.account.credited", None, body)],
        stream_type: None,
        checkpoint: 1,
    };
    // 1 unit = 100 cents < 150: conflicting; 2 units = 200: not.
    assert!(detector
        .conflicts(&attempt, &[theirs(json!({"amount": 1}))])
        .unwrap());
    assert!(!detector
        .conflicts(&attempt, &[theirs(json!({"amount": 2}))])
        .unwrap());
    match detector.conflicts(&attempt, &[theirs(json!({"nothing": 0}))]) {
        Err(StoreError::ConflictDetection { topic, .. }) => {
            assert_eq!(topic, "test.account.credited")
        }
        other => panic!("expected a decode failure, got {other:?}"),
    }
}
