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
