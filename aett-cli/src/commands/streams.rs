//! `aett streams`: every stream with its type, head, commit count and last stamp.

use std::io::Write;

use crate::cli::StreamsArgs;
use crate::error::CliError;
use crate::inventory::Inventory;
use crate::open;
use crate::output::{self, stamp};

/// Runs `aett streams`.
pub async fn run(args: StreamsArgs) -> Result<(), CliError> {
    let store = open::existing(&args.url).await?;
    let mut filter = super::tenant_filter(args.tenant.as_deref());
    if let Some(stream_type) = &args.stream_type {
        filter = filter.stream_type(stream_type);
    }
    let inventory = Inventory::of_log(store.store.get_filtered(0, &filter))
        .await
        .map_err(|e| store.error(e))?;
    let mut out = std::io::stdout().lock();
    let streams = inventory.streams.values().filter(|s| {
        // The log filter passes a stream's commits of the type; its last commit decides.
        args.stream_type.is_none() || s.stream_type == args.stream_type
    });
    if args.json {
        for summary in streams {
            output::json_line(&mut out, summary)?;
        }
        return Ok(());
    }
    writeln!(
        out,
        "{:<16} {:<28} {:<16} {:>9} {:>8}  LAST COMMIT",
        "TENANT", "STREAM", "TYPE", "REVISION", "COMMITS"
    )?;
    for s in streams {
        writeln!(
            out,
            "{:<16} {:<28} {:<16} {:>9} {:>8}  {}",
            s.tenant_id,
            s.stream_id,
            s.stream_type.as_deref().unwrap_or("-"),
            s.head_revision,
            s.commits,
            stamp(&s.last_stamp)
        )?;
    }
    Ok(())
}
