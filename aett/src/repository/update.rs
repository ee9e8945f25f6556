//! What `AggregateRepository::update` returns.

use std::fmt;

use crate::model::Commit;
use crate::repository::RepositoryError;

/// An aggregate updated by a command: the aggregate as saved, what the command returned, and
/// the commit.
#[derive(Debug)]
#[non_exhaustive]
pub struct Updated<A, T> {
    /// The aggregate after the save.
    pub aggregate: A,
    /// What the command returned; `None` when the update found its idempotency key already
    /// stored and did not run the command again.
    pub output: Option<T>,
    /// The commit; `None` when the command raised nothing.
    pub commit: Option<Commit>,
    /// How many times the command ran (more than once after concurrency conflicts).
    pub attempts: usize,
}

/// Why an update failed: the command refused, or the repository could not load or save.
///
/// The command's error type needs no conversion from [`RepositoryError`].
#[derive(Debug)]
pub enum UpdateError<E> {
    /// The command refused (its own error).
    Command(E),
    /// Loading or saving failed (after the retries a concurrency conflict gets).
    Repository(RepositoryError),
}

impl<E> UpdateError<E> {
    /// The command's error, if that is what this is.
    pub fn command(self) -> Option<E> {
        match self {
            UpdateError::Command(error) => Some(error),
            UpdateError::Repository(_) => None,
        }
    }
}

impl<E> From<RepositoryError> for UpdateError<E> {
    fn from(error: RepositoryError) -> Self {
        UpdateError::Repository(error)
    }
}

impl<E: fmt::Display> fmt::Display for UpdateError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::Command(error) => write!(f, "the command refused: {error}"),
            UpdateError::Repository(error) => error.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for UpdateError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpdateError::Command(error) => Some(error),
            UpdateError::Repository(error) => error.source(),
        }
    }
}
