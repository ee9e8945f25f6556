//! `aett tail`: the log as JSON lines, and with `--follow`, new commits as they come.
//!
//! It reads the log directly rather than through a projection runner: a runner keeps its
//! checkpoint in the store, and looking at a store must not write to it.

use std::io::Write;
use std::time::Duration;

use aett::LogFilter;
use futures::{StreamExt, TryStreamExt};

use crate::cli::TailArgs;
use crate::error::CliError;
use crate::open;
use crate::output;

/// The longest a follower waits before it looks again without a signal.
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// The first wait after a read that found something.
const MIN_PAUSE: Duration = Duration::from_millis(20);

/// Runs `aett tail`.
pub async fn run(args: TailArgs) -> Result<(), CliError> {
    let store = open::existing(&args.url).await?;
    let mut filter = LogFilter::new();
    for tenant in &args.tenant {
        filter = filter.tenant(tenant);
    }
    for stream_type in &args.stream_type {
        filter = filter.stream_type(stream_type);
    }
    for topic in &args.topic {
        filter = filter.topic(topic);
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut after = args.from;
    let mut wakeups = if args.follow {
        store.store.wakeups()
    } else {
        None
    };
    let mut pause = MIN_PAUSE;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let mut entries = store.store.get_filtered(after, &filter);
        let mut found = false;
        while let Some(entry) = entries.try_next().await.map_err(|e| store.error(e))? {
            output::entry_json(&mut out, &entry)?;
            after = entry.checkpoint();
            found = true;
        }
        out.flush()?;
        if !args.follow {
            return Ok(());
        }
        pause = if found {
            MIN_PAUSE
        } else {
            (pause * 2).min(MAX_PAUSE)
        };
        // A signal from the store cuts the wait short; polling finds what no signal announced
        // (another process's commits, on a backend whose signal is in-process only).
        let signal = async {
            match wakeups.as_mut() {
                Some(signal) => match signal.next().await {
                    Some(Ok(())) => {}
                    // The signal failed or ended: poll from now on.
                    _ => {
                        wakeups = None;
                        tokio::time::sleep(pause).await;
                    }
                },
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut interrupted => return Ok(()),
            _ = signal => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}
