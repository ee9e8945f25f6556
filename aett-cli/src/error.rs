//! What can go wrong, one variant per kind of failure, each naming what it was about.

use std::error::Error as _;

use aett::StoreError;

/// A command's failure.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The async runtime could not start.
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// A store could not be opened, read or written.
    #[error("{url}")]
    Store {
        /// The store's URL, password removed.
        url: String,
        /// What the store said.
        #[source]
        source: Box<StoreError>,
    },
    /// A `sqlite://` URL to read names no file.
    #[error("{url}: no such file `{path}` (only `aett copy` and `aett import-python` create a store, as their target)")]
    NoSuchFile {
        /// The URL, password removed.
        url: String,
        /// The path it names.
        path: String,
    },
    /// A commit could not be written to the target store.
    #[error("{url}: cannot write commit {sequence} of stream `{stream}` of tenant `{tenant}`")]
    Write {
        /// The target's URL, password removed.
        url: String,
        /// The tenant.
        tenant: String,
        /// The stream.
        stream: String,
        /// The commit's sequence.
        sequence: u64,
        /// What the target said.
        #[source]
        source: Box<StoreError>,
    },
    /// A store of the Python aett could not be read.
    #[error("Python aett store {url}: {message}")]
    Python {
        /// The store's URL, password removed.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The arguments make no sense together (exit code 2, as for a usage error).
    #[error("{0}")]
    Usage(String),
    /// Output could not be written (a closed pipe ends the command quietly, see `main`).
    #[error("cannot write the output")]
    Output(#[from] std::io::Error),
    /// A copy or import finished, but the target does not hold what the source holds.
    #[error("verification failed: {0}")]
    Verification(String),
}

impl CliError {
    /// The process's exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }

    /// A store error, with the store's URL.
    pub fn store(url: &str, source: StoreError) -> Self {
        CliError::Store {
            url: crate::urls::redact(url),
            source: Box::new(source),
        }
    }
}

/// The error and its causes on one line (`what: why: why`), skipping a cause whose text the
/// line already holds.
pub fn one_line(error: &CliError) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = e.source();
    }
    line.replace('\n', " ")
}
