//! `aett import-python`: a store written by the Python aett, into an aett store.

use crate::cli::ImportPythonArgs;
use crate::error::CliError;
use crate::open;
use crate::python::PythonSource;
use crate::transfer;

/// Runs `aett import-python`.
pub async fn run(args: ImportPythonArgs) -> Result<(), CliError> {
    let source = PythonSource::open(&args.from).await?;
    let target = open::target(&args.to).await?;
    let report = transfer::transfer(&source, &target, args.tenant.as_deref(), "importing").await?;
    super::finish(&report, source.shown(), &target.shown, args.json)
}
