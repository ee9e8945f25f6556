//! `aett info`: what a store holds, counted.

use std::io::Write;

use serde::Serialize;

use crate::cli::InfoArgs;
use crate::error::CliError;
use crate::inventory::{self, Inventory};
use crate::open;
use crate::output::{self, count};

/// What `info` prints.
#[derive(Serialize)]
struct Info {
    store: String,
    backend: String,
    schema_version: Option<u32>,
    tenants: u64,
    streams: u64,
    commits: u64,
    events: u64,
    snapshots: u64,
    streams_with_snapshots: u64,
    deleted_streams: u64,
    first_checkpoint: Option<u64>,
    last_checkpoint: Option<u64>,
}

/// Runs `aett info`.
pub async fn run(args: InfoArgs) -> Result<(), CliError> {
    let store = open::existing(&args.url).await?;
    let filter = super::tenant_filter(args.tenant.as_deref());
    let inventory = Inventory::of_log(store.store.get_filtered(0, &filter))
        .await
        .map_err(|e| store.error(e))?;
    let with = inventory::streams_with_snapshots(&*store.store, inventory.tenants())
        .await
        .map_err(|e| store.error(e))?;
    let mut snapshots = 0;
    for (tenant, stream) in &with {
        snapshots += inventory::snapshots_of(&*store.store, tenant, stream)
            .await
            .map_err(|e| store.error(e))?
            .len() as u64;
    }
    let schema_version = store
        .store
        .schema_version()
        .await
        .map_err(|e| store.error(e))?;
    let info = Info {
        backend: args.url.split("://").next().unwrap_or("").to_owned(),
        store: store.shown.clone(),
        schema_version,
        tenants: inventory.tenants().len() as u64,
        streams: inventory.streams.len() as u64,
        commits: inventory.commits,
        events: inventory.events,
        snapshots,
        streams_with_snapshots: with.len() as u64,
        deleted_streams: inventory.deletions,
        first_checkpoint: inventory.checkpoints.map(|(first, _)| first),
        last_checkpoint: inventory.checkpoints.map(|(_, last)| last),
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        return output::json_line(&mut out, &info);
    }
    let checkpoints = match inventory.checkpoints {
        Some((first, last)) => format!("{first} .. {last}"),
        None => "none (the log is empty)".to_owned(),
    };
    let schema = info.schema_version.map_or_else(
        || "not versioned by this backend".to_owned(),
        |v| v.to_string(),
    );
    writeln!(out, "store            {}", info.store)?;
    writeln!(out, "backend          {}", info.backend)?;
    writeln!(out, "schema version   {schema}")?;
    writeln!(out, "tenants          {}", count(info.tenants))?;
    writeln!(out, "streams          {}", count(info.streams))?;
    writeln!(out, "commits          {}", count(info.commits))?;
    writeln!(out, "events           {}", count(info.events))?;
    let streams = match info.streams_with_snapshots {
        1 => "stream",
        _ => "streams",
    };
    writeln!(
        out,
        "snapshots        {} (in {} {streams})",
        count(info.snapshots),
        count(info.streams_with_snapshots)
    )?;
    writeln!(out, "deleted streams  {}", count(info.deleted_streams))?;
    writeln!(out, "checkpoints      {checkpoints}")?;
    Ok(())
}
