//! Opens and initialises a SQLite store through `aett::connect` at a given moment, from its own
//! process; used by the test of many processes opening one new file at once. Exits non-zero,
//! printing the error, when opening fails.
//!
//! Usage: sqlite-opener URL START_AT_UNIX_MILLIS

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, start] = args.as_slice() else {
        eprintln!("usage: sqlite-opener URL START_AT_UNIX_MILLIS");
        return ExitCode::from(2);
    };
    let Ok(start) = start.parse::<u64>() else {
        eprintln!("START_AT_UNIX_MILLIS must be a number");
        return ExitCode::from(2);
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    if let Some(wait) = Duration::from_millis(start).checked_sub(now) {
        std::thread::sleep(wait);
    }
    match aett::connect(url).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
