//! `aett`: look into an aett event store, follow its log, copy it to another backend, and import
//! a store written by the Python aett.
//!
//! Every command takes the store URLs `aett::connect` takes. Exit codes: 0 when the command did
//! what it was asked, 1 when it failed (one line on stderr, with the cause), 2 for a usage error.

mod cli;
mod commands;
mod error;
mod inventory;
mod open;
mod output;
mod progress;
mod python;
mod transfer;
mod urls;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};
use crate::error::CliError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let secrets = cli
        .command
        .urls()
        .iter()
        .flat_map(|url| urls::secrets(url))
        .collect::<Vec<_>>();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(&CliError::Runtime(e), &secrets),
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of the output went away (`aett tail | head`): nothing is wrong.
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => fail(&e, &secrets),
    }
}

async fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Info(args) => commands::info::run(args).await,
        Command::Streams(args) => commands::streams::run(args).await,
        Command::Show(args) => commands::show::run(args).await,
        Command::Tail(args) => commands::tail::run(args).await,
        Command::Copy(args) => commands::copy::run(args).await,
        Command::ImportPython(args) => commands::import_python::run(args).await,
    }
}

/// Prints the error on one line, without any password the URLs held, and picks the exit code.
fn fail(error: &CliError, secrets: &[(String, String)]) -> ExitCode {
    let line = urls::scrub(&error::one_line(error), secrets);
    let mut stderr = std::io::stderr().lock();
    // Nothing more can be done if stderr itself is gone.
    let _ = writeln!(stderr, "{}{line}", progress::error_prefix());
    ExitCode::from(error.exit_code())
}
