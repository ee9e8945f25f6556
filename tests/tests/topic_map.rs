//! The process-wide topic map holds every `#[event]` type linked into the program.

use aett::{Event, TopicMap};
use aett_conformance::domain::{Incremented, Note, ShipOrder};

#[test]
fn global_map_holds_every_declared_event() {
    let map = TopicMap::global().expect("no topic is declared twice in this program");
    let entry = map
        .get(Incremented::TOPIC)
        .expect("registered at link time");
    assert!(
        entry.type_name.ends_with("Incremented"),
        "{}",
        entry.type_name
    );
    assert_eq!(entry.type_id(), std::any::TypeId::of::<Incremented>());
    assert_eq!(map.get_from_type::<Note>(), Some("test.note"));
    assert_eq!(
        map.get_from_type::<ShipOrder>(),
        Some(ShipOrder::TOPIC),
        "commands are registered too"
    );
    assert_eq!(map.get_from_type::<String>(), None);
    assert!(map.get("no.such.topic").is_none());
    assert_eq!(
        map.len(),
        14,
        "the 7 events of aett_conformance::domain, the 7 topics and aliases of aett_conformance::evolution"
    );
    assert_eq!(map.entries().count(), map.len());
}
