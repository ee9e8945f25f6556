//! Cost growth: appends and loads measured on a small store and, side by side, on one two orders
//! of magnitude larger. Both should stay flat: every write and read aett makes goes through an
//! index on the stream or the checkpoint, never a scan of the log.

use std::time::Instant;

use crate::aett_side;
use crate::report::Measured;
use crate::{median, Stores};

/// The aggregate loaded at each size: 1,000 events in 100 commits.
const AGGREGATE: &str = "growth-aggregate";
const AGGREGATE_EVENTS: u64 = 1_000;

/// What one store size measured.
#[derive(Debug, serde::Serialize)]
pub struct AtSize {
    /// Events in the store when measured.
    pub events: u64,
    /// Single-event commits round-robin over 100 fresh streams (median of the rounds).
    pub appends: Measured,
    /// Loads of a 1,000-event aggregate written when the store was small (median).
    pub loads: Measured,
}

/// Fills one store per size (each store to its own size), lets the machine write back what the
/// fills left in its page cache, then measures the stores side by side: each round visits every
/// store, the first one in turn, so drift on a noisy machine hits every size alike.
pub async fn measure(stores: &[(u64, Stores)], rounds: u64) -> Vec<AtSize> {
    for (size, store) in stores {
        aett_side::warm_up(store).await;
        aett_side::prepare_aggregate(store, AGGREGATE, AGGREGATE_EVENTS).await;
        let started = Instant::now();
        let held = fill(store, 24 + AGGREGATE_EVENTS, *size).await;
        eprintln!(
            "   {held} events in a store (filled in {:.0} s)",
            started.elapsed().as_secs_f64()
        );
    }
    settle().await;
    let mut runs: Vec<(Vec<Measured>, Vec<Measured>)> =
        stores.iter().map(|_| Default::default()).collect();
    for round in 0..rounds {
        for turn in 0..stores.len() {
            let index = (turn + round as usize) % stores.len();
            let store = &stores[index].1;
            runs[index]
                .0
                .push(aett_side::append_single(store, 1_000 + round, 2_000).await);
            runs[index]
                .1
                .push(aett_side::load(store, AGGREGATE, 20).await);
        }
    }
    stores
        .iter()
        .zip(runs)
        .map(|((size, _), (appends, loads))| AtSize {
            events: *size,
            appends: median(appends).expect("at least one round"),
            loads: median(loads).expect("at least one round"),
        })
        .collect()
}

/// Waits until the fills' dirty pages are written back (`sync`, then a pause for the database's
/// own background writes), so that the first measurement does not share the disk with them.
async fn settle() {
    let _ = tokio::task::spawn_blocking(|| std::process::Command::new("sync").status()).await;
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
}

/// Writes 100-event commits from 8 concurrent writers (each stream takes 100 commits, 10,000
/// events) until the store holds at least `target` events; returns how many it holds.
async fn fill(stores: &Stores, held: u64, target: u64) -> u64 {
    const WRITERS: u64 = 8;
    let commits = target.saturating_sub(held).div_ceil(100);
    let per_writer = commits.div_ceil(WRITERS);
    let tasks: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let stores = stores.clone();
            tokio::spawn(async move {
                for n in 0..per_writer {
                    let stream = format!("fill-{writer}-{}", n / 100);
                    let sequence = n % 100 + 1;
                    aett_side::commit_events(&stores, &stream, sequence, sequence * 100, n, 100)
                        .await
                        .expect("fill");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("fill writer");
    }
    held + per_writer * WRITERS * 100
}

/// Prints the table: each backend's sizes, then its largest size beside its smallest.
pub fn print(all: &[(String, Vec<AtSize>)]) {
    println!(
        "| backend | events in the store | appends (commits/s) | loads of 1,000 events (/s) |"
    );
    println!("|---|---:|---:|---:|");
    for (backend, results) in all {
        for at in results {
            println!(
                "| {backend} | {} | {:.0} | {:.1} |",
                at.events,
                at.appends.rate(),
                at.loads.rate() / AGGREGATE_EVENTS as f64
            );
        }
        if let (Some(first), Some(last)) = (results.first(), results.last()) {
            println!(
                "| {backend} | ratio {} / {} | {:.2} | {:.2} |",
                last.events,
                first.events,
                last.appends.rate() / first.appends.rate(),
                last.loads.rate() / first.loads.rate()
            );
        }
    }
}
