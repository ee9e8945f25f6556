//! Appends to one stream of a SQLite store from its own process, reloading and retrying on
//! concurrency errors; used by the two-process test. Exits non-zero on any other error.
//!
//! Usage: sqlite-writer DATABASE_PATH WRITER_ID COMMITS

use std::process::ExitCode;

use aett::{AggregateRepository, Headers, RepositoryError, SqliteStore};
use aett_conformance::domain::Counter;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, writer, commits] = args.as_slice() else {
        eprintln!("usage: sqlite-writer DATABASE_PATH WRITER_ID COMMITS");
        return ExitCode::from(2);
    };
    let (Ok(writer), Ok(commits)) = (writer.parse::<i64>(), commits.parse::<i64>()) else {
        eprintln!("WRITER_ID and COMMITS must be numbers");
        return ExitCode::from(2);
    };
    let store = match SqliteStore::open(path) {
        Ok(store) => std::sync::Arc::new(store),
        Err(error) => {
            eprintln!("writer {writer}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let repo = AggregateRepository::new("tenant", &store);
    for n in 0..commits {
        let result = repo
            .update(
                "shared",
                Headers::new(),
                usize::MAX,
                |counter: &mut Counter| -> Result<(), RepositoryError> {
                    counter.add(writer * 1_000_000 + n + 1).expect("never zero");
                    Ok(())
                },
            )
            .await;
        if let Err(error) = result {
            eprintln!("writer {writer}, commit {n}: {error}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
