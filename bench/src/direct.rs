//! What a hand-written program stores per event: `{"topic": ..., "body": ...}` decoded in one
//! pass by an adjacently tagged enum, the cheapest typed encoding that still dispatches on topic.

use serde::{Deserialize, Serialize};

use crate::workload::{deposit, Deposited};

/// Every event type the hand-written program knows.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "topic", content = "body")]
pub enum StoredEvent {
    /// A deposit.
    #[serde(rename = "bench.deposited")]
    Deposited(Deposited),
}

/// The JSON of `count` deposits from `first` on.
pub fn encode(first: u64, count: u64) -> Vec<u8> {
    let events: Vec<StoredEvent> = (first..first + count)
        .map(|n| StoredEvent::Deposited(deposit(n)))
        .collect();
    serde_json::to_vec(&events).expect("serialise")
}

/// Folds a commit's events into a balance; returns how many events it held.
pub fn fold(bytes: &[u8], balance: &mut u64) -> u64 {
    let events: Vec<StoredEvent> = serde_json::from_slice(bytes).expect("decode");
    for event in &events {
        match event {
            StoredEvent::Deposited(deposit) => *balance += deposit.amount,
        }
    }
    events.len() as u64
}
