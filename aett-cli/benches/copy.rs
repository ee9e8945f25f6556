//! How fast `aett copy` moves a store from SQLite to PostgreSQL, beside the same commits written
//! by one aett writer in a loop (what the copy cannot beat: it writes commit by commit, in
//! checkpoint order).
//!
//! ```sh
//! AETT_POSTGRES_URL=postgres://aett:aett@127.0.0.1:54329/aett \
//!     cargo bench -p aett-cli --bench copy -- --events 100000 --rounds 3
//! ```
//!
//! Prints the events per second of each (medians of rounds that take turns at going first),
//! and their ratio.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::time::Instant;

use aett::{CommitAttempt, LogEntry};
use futures::TryStreamExt;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut events = 100_000usize;
    let mut rounds = 3usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--events" => {
                events = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--events takes a number")
            }
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--rounds takes a number")
            }
            // `cargo bench` passes `--bench`.
            "--bench" => {}
            other => panic!("unknown argument `{other}` (known: --events N, --rounds N)"),
        }
    }
    const PER_COMMIT: usize = 10;
    const TENANTS: [&str; 4] = ["north", "south", "west", "east"];
    const STREAMS: usize = 25;
    let commits = (events / PER_COMMIT / TENANTS.len() / STREAMS).max(1);
    let dir = tempfile::tempdir().unwrap();
    let from = common::sqlite_url(&dir, "source.db");
    let source = aett::connect(&from).await.unwrap();
    common::fill(&source, &TENANTS, STREAMS, commits, PER_COMMIT).await;
    let total = TENANTS.len() * STREAMS * commits * PER_COMMIT;
    println!(
        "source: SQLite, {total} events in {} commits of {PER_COMMIT} events",
        total / PER_COMMIT
    );

    let log: Vec<_> = source
        .get_from(0)
        .try_filter_map(|e| async move {
            Ok(match e {
                LogEntry::Commit(c) => Some(c),
                _ => None,
            })
        })
        .try_collect()
        .await
        .unwrap();

    // Rounds taking turns at going first, each into fresh PostgreSQL schemas; medians.
    let (mut copies, mut wholes, mut agains, mut loops) = (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        for side in [round % 2, 1 - round % 2] {
            if side == 0 {
                let (rate, whole, again) = copy(&from).await;
                copies.push(rate);
                wholes.push(whole);
                agains.push(again);
            } else {
                loops.push(writer_loop(&log, total).await);
            }
        }
    }
    let copy_rate = median(&mut copies);
    let loop_rate = median(&mut loops);
    println!("medians of {rounds} rounds:");
    println!(
        "aett copy:   {copy_rate:>9.0} events/s writing; {:.1} s in all with reading, snapshots and verification",
        median(&mut wholes)
    );
    println!(
        "aett copy again (everything present): {:.1} s",
        median(&mut agains)
    );
    println!("writer loop: {loop_rate:>9.0} events/s (one aett writer, the same commits)");
    println!("ratio copy / writer loop: {:.2}", copy_rate / loop_rate);
}

/// `aett copy` as a user runs it, into a fresh schema: its writing rate, the whole run's
/// seconds, and the seconds of a second run that finds everything present.
async fn copy(from: &str) -> (f64, f64, f64) {
    let to = common::postgres_url();
    let run = || {
        let started = Instant::now();
        let output = Command::new(env!("CARGO_BIN_EXE_aett"))
            .args(["copy", from, &to, "--json"])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        (report, started.elapsed().as_secs_f64())
    };
    let (report, whole) = run();
    let (_, again) = run();
    (report["events_per_second"].as_f64().unwrap(), whole, again)
}

/// The same commits written by one aett writer in a loop, into a fresh schema: events/s.
async fn writer_loop(log: &[aett::Commit], total: usize) -> f64 {
    let target = aett::connect(&common::postgres_url()).await.unwrap();
    let started = Instant::now();
    for commit in log.iter().cloned() {
        target.commit(CommitAttempt::from(commit)).await.unwrap();
    }
    total as f64 / started.elapsed().as_secs_f64()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
