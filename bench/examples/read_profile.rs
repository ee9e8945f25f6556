//! Reads a log of 192,000 single-event commits through a projection runner and by hand, five
//! times each, for a profiler to watch (the benchmark's runs are too short to profile):
//!
//! ```sh
//! cargo build --release -p aett-bench --example read_profile
//! valgrind --tool=callgrind target/release/examples/read_profile /tmp/log.db   # ROUNDS=1 to shorten
//! RAW_ONLY=1 perf record -g target/release/examples/read_profile /tmp/log.db  # the store's stream alone
//! ```
//!
//! The first run writes the file (64 streams of 3,000 commits); later runs reuse it.

use std::sync::Arc;
use std::time::Instant;

use aett::{
    CommitAttempt, CommitLog, CommitStore, EventMessage, Headers, LogFilter, PersistenceManagement,
    ProjectionRunner, SqliteStore,
};
use aett_bench_workload::{deposit, Deposited, Sum};
use futures::TryStreamExt;

#[path = "../src/workload.rs"]
#[allow(dead_code)]
mod aett_bench_workload;

/// An event as stored, for the hand-written read.
#[derive(serde::Deserialize)]
struct Stored {
    body: Deposited,
}

async fn write_log(store: &Arc<SqliteStore>) {
    let tasks: Vec<_> = (0..64u64)
        .map(|writer| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..3_000u64 {
                    let event = EventMessage::from_event(&deposit(n)).expect("serialise");
                    let attempt = CommitAttempt::new(
                        "bench",
                        format!("s-{writer}"),
                        n + 1,
                        n + 1,
                        Headers::new(),
                        vec![event],
                    );
                    store.commit(attempt).await.expect("commit");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
}

#[tokio::main]
async fn main() {
    let path = std::path::PathBuf::from(std::env::args().nth(1).expect("a database file"));
    let rounds: usize = std::env::var("ROUNDS").map_or(5, |r| r.parse().expect("ROUNDS"));
    let fresh = !path.exists();
    let store = Arc::new(SqliteStore::open(&path).expect("open"));
    store.initialize().await.expect("initialize");
    if fresh {
        write_log(&store).await;
    }
    for _ in 0..rounds {
        if std::env::var("RAW_ONLY").is_ok() {
            let start = Instant::now();
            let mut entries = store.get_filtered_for_replay(0, &LogFilter::default());
            let mut read = 0u64;
            while entries.try_next().await.expect("read").is_some() {
                read += 1;
            }
            println!(
                "the store's log stream: {read} entries in {:?}",
                start.elapsed()
            );
            continue;
        }
        let start = Instant::now();
        let sum = ProjectionRunner::new(&store, Sum::default())
            .name(format!("profile-{}", uuid::Uuid::new_v4().simple()))
            .batch_size(1_000)
            .catch_up()
            .await
            .expect("project");
        let through_aett = start.elapsed();
        let start = Instant::now();
        let connection = rusqlite::Connection::open(&path).expect("open");
        let mut statement = connection
            .prepare("SELECT events FROM commits ORDER BY checkpoint")
            .expect("prepare");
        let mut rows = statement.query([]).expect("query");
        let (mut count, mut total) = (0u64, 0u64);
        while let Some(row) = rows.next().expect("row") {
            let bytes = row.get_ref(0).and_then(|v| Ok(v.as_blob()?)).expect("blob");
            let events: Vec<Stored> = serde_json::from_slice(bytes).expect("decode");
            for event in events {
                total = total.wrapping_add(event.body.amount);
                count += 1;
            }
        }
        let by_hand = start.elapsed();
        assert_eq!((sum.count, sum.sum), (count, total));
        println!(
            "aett: {count} events in {through_aett:?}; by hand: {by_hand:?}; ratio {:.2}",
            by_hand.as_secs_f64() / through_aett.as_secs_f64()
        );
    }
}
