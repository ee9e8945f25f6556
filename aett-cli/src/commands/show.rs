//! `aett show`: the commits of one stream.

use futures::TryStreamExt;

use crate::cli::ShowArgs;
use crate::error::CliError;
use crate::open;
use crate::output;

/// Runs `aett show`.
pub async fn run(args: ShowArgs) -> Result<(), CliError> {
    if args.from > args.to {
        return Err(CliError::Usage(format!(
            "--from {} is past --to {}",
            args.from, args.to
        )));
    }
    let store = open::existing(&args.url).await?;
    let to = args.to.min(crate::inventory::MAX_REVISION);
    let mut commits = store.store.get(&args.tenant, &args.stream, args.from, to);
    let mut out = std::io::stdout().lock();
    let mut shown = 0;
    while let Some(commit) = commits.try_next().await.map_err(|e| store.error(e))? {
        if args.json {
            output::commit_json(&mut out, &commit)?;
        } else {
            output::commit_text(&mut out, &commit)?;
        }
        shown += 1;
    }
    if shown == 0 && !args.json {
        eprintln!(
            "stream `{}` of tenant `{}` has no commits in revisions {}..={}",
            args.stream, args.tenant, args.from, args.to
        );
    }
    Ok(())
}
