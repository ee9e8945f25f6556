//! Two types with one topic anywhere in the program: a clear error when the map is first used.

#[aett::event(topic = "clash")]
#[derive(serde::Serialize, serde::Deserialize)]
struct First {}

mod elsewhere {
    #[aett::event(topic = "clash")]
    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct Second {}
}

#[test]
fn duplicate_topics_are_reported_on_first_use_and_every_use_after() {
    for _ in 0..2 {
        let error = aett::TopicMap::global().expect_err("two types declare `clash`");
        assert_eq!(error.topic, "clash");
        let names = [error.first.as_str(), error.second.as_str()];
        assert!(names.iter().any(|n| n.ends_with("First")), "{error}");
        assert!(
            names.iter().any(|n| n.ends_with("elsewhere::Second")),
            "{error}"
        );
        assert!(
            error
                .to_string()
                .contains("topic `clash` is declared by two types"),
            "{error}"
        );
    }
    let _ = (First {}, elsewhere::Second {});
}

#[test]
fn a_local_map_adds_types_and_refuses_a_second_type_for_a_topic() {
    let mut map = aett::TopicMap::new();
    assert!(map.is_empty());
    map.add::<First>().unwrap().add::<First>().unwrap();
    assert_eq!(map.len(), 1, "adding a type twice is harmless");
    let error = map
        .add::<elsewhere::Second>()
        .expect_err("same topic, other type");
    assert_eq!(error.topic, "clash");
    assert!(
        error.first.ends_with("First") && error.second.ends_with("Second"),
        "{error}"
    );
}

/// An aggregate listing a topic that another type declares too.
#[derive(Default, aett::Aggregate, serde::Serialize, serde::Deserialize)]
#[aggregate(events(First))]
struct Clashing {
    #[serde(skip)]
    state: aett::AggregateState,
}

impl aett::Apply<First> for Clashing {
    fn apply(&mut self, _: &First) {}
}

#[derive(Default, aett::Projection)]
#[projection(events(elsewhere::Second))]
struct SeesClash;

impl aett::Project<elsewhere::Second> for SeesClash {
    async fn project(
        &mut self,
        _: elsewhere::Second,
        _: &aett::EventContext<'_>,
    ) -> Result<(), aett::BoxError> {
        Ok(())
    }
}

#[tokio::test]
async fn repositories_and_runners_refuse_a_topic_two_types_declare() {
    use aett::Aggregate;
    let store = std::sync::Arc::new(aett::InMemoryStore::new());
    let repo = aett::AggregateRepository::new("t", &store);
    match repo.get::<Clashing>("c").await {
        Err(aett::RepositoryError::DuplicateTopic(duplicate)) => {
            assert_eq!(duplicate.topic, "clash")
        }
        other => panic!("expected a duplicate topic, got {:?}", other.map(|_| ())),
    }
    let mut clashing = Clashing::create("c");
    clashing.raise(First {});
    assert!(matches!(
        repo.save(&mut clashing, aett::Headers::new()).await,
        Err(aett::RepositoryError::DuplicateTopic(_))
    ));
    let written: Vec<_> = futures::TryStreamExt::try_collect(aett::CommitLog::get_from(&*store, 0))
        .await
        .unwrap();
    assert!(written.is_empty(), "nothing written");
    match aett::ProjectionRunner::new(&store, SeesClash)
        .catch_up()
        .await
    {
        Err(aett::RunnerError::DuplicateTopic { source, .. }) => assert_eq!(source.topic, "clash"),
        other => panic!("expected a duplicate topic, got {:?}", other.map(|_| ())),
    }
    // The other topics of the program are unaffected.
    let counter: aett_conformance::domain::Counter =
        repo.get("other").await.expect("no clash here");
    assert_eq!(counter.version(), 0);
}
