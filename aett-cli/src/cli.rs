//! The command line: commands, arguments, and their `--help`.

use clap::{Args, Parser, Subcommand};

/// Look into an aett event store, follow its log, copy it to another backend.
///
/// STORE URLs are those `aett::connect` takes: sqlite://PATH, postgres://USER:PASSWORD@HOST/DB
/// (?schema=NAME), mongodb://HOST/DB (?prefix=NAME_), dynamodb://TABLE (?endpoint=URL&region=R),
/// s3://BUCKET/PREFIX (?endpoint=URL&region=R). Passwords in URLs are never printed.
#[derive(Debug, Parser)]
#[command(name = "aett", version, about, long_about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Tenants, streams, commits, events, snapshots, the checkpoint range and the schema version.
    Info(InfoArgs),
    /// Every stream with its type, head revision, commit count and last stamp.
    Streams(StreamsArgs),
    /// The commits of one stream.
    Show(ShowArgs),
    /// The log as JSON lines, one entry per line; `--follow` keeps printing new commits.
    Tail(TailArgs),
    /// Copies every commit and snapshot to another store, resumably, and verifies the copy.
    Copy(CopyArgs),
    /// Imports a store written by the Python aett (PyPI `aett` 3.x, SQLite or PostgreSQL).
    ImportPython(ImportPythonArgs),
}

impl Command {
    /// Every URL the command was given (to keep their passwords out of messages).
    pub fn urls(&self) -> Vec<&str> {
        match self {
            Command::Info(a) => vec![&a.url],
            Command::Streams(a) => vec![&a.url],
            Command::Show(a) => vec![&a.url],
            Command::Tail(a) => vec![&a.url],
            Command::Copy(a) => vec![&a.from, &a.to],
            Command::ImportPython(a) => vec![&a.from, &a.to],
        }
    }
}

/// `aett info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// The store.
    pub url: String,
    /// Only this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `aett streams`.
#[derive(Debug, Args)]
pub struct StreamsArgs {
    /// The store.
    pub url: String,
    /// Only this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only streams written by this type (an aggregate's or saga's stream type).
    #[arg(long = "type", value_name = "TYPE")]
    pub stream_type: Option<String>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `aett show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The store.
    pub url: String,
    /// The tenant.
    pub tenant: String,
    /// The stream.
    pub stream: String,
    /// The first revision to show (commits holding it are shown whole).
    #[arg(long, value_name = "REV", default_value_t = 0)]
    pub from: u64,
    /// The last revision to show.
    #[arg(long, value_name = "REV", default_value_t = u64::MAX)]
    pub to: u64,
    /// Print JSON lines, one commit per line, instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `aett tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// The store.
    pub url: String,
    /// Start after this checkpoint (0: from the beginning).
    #[arg(long, value_name = "CHECKPOINT", default_value_t = 0)]
    pub from: u64,
    /// Keep running and print new commits as they are written (until interrupted).
    #[arg(long)]
    pub follow: bool,
    /// Only this tenant (repeatable).
    #[arg(long)]
    pub tenant: Vec<String>,
    /// Only streams of this type (repeatable).
    #[arg(long = "type", value_name = "TYPE")]
    pub stream_type: Vec<String>,
    /// Only commits holding an event of this topic (repeatable).
    #[arg(long)]
    pub topic: Vec<String>,
}

/// `aett copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// The store to copy from (read only).
    pub from: String,
    /// The store to copy into (created if need be; may hold a part-finished copy).
    pub to: String,
    /// Copy one tenant only.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `aett import-python`.
#[derive(Debug, Args)]
pub struct ImportPythonArgs {
    /// The Python aett store: sqlite://PATH or postgres://USER:PASSWORD@HOST/DB, with
    /// `?commits=TABLE&snapshots=TABLE` if it used other table names than `commits` and
    /// `snapshots`.
    pub from: String,
    /// The aett store to import into.
    pub to: String,
    /// Import one tenant only.
    #[arg(long)]
    pub tenant: Option<String>,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}
