//! `aett copy`: every commit and snapshot from one store into another, resumable, verified.

use crate::cli::CopyArgs;
use crate::error::CliError;
use crate::open;
use crate::transfer::{self, StoreSource};

/// Runs `aett copy`.
pub async fn run(args: CopyArgs) -> Result<(), CliError> {
    if args.from == args.to {
        return Err(CliError::Usage(
            "the source and the target are the same store".to_owned(),
        ));
    }
    let source = open::existing(&args.from).await?;
    let target = open::target(&args.to).await?;
    let report = transfer::transfer(
        &StoreSource::new(&source),
        &target,
        args.tenant.as_deref(),
        "copying",
    )
    .await?;
    super::finish(&report, &source.shown, &target.shown, args.json)
}
