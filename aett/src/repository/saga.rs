//! Loading and saving sagas.

use std::sync::Arc;

use futures::TryStreamExt;

use crate::commit::CommitAttempt;
use crate::domain::Saga;
use crate::message::{EventMessage, Headers};
use crate::repository::replay::{replay_commit, Transitioned};
use crate::repository::RepositoryError;
use crate::store::CommitStore;

/// Prefix of the commit headers that carry a saga's dispatched commands:
/// `UndispatchedMessage.0`, `UndispatchedMessage.1`, … as in the original aett.
pub const UNDISPATCHED_HEADER_PREFIX: &str = "UndispatchedMessage.";

/// Loads and saves the sagas of one tenant.
#[derive(Clone)]
pub struct SagaRepository {
    tenant: String,
    commits: Arc<dyn CommitStore>,
}

impl std::fmt::Debug for SagaRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaRepository")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl SagaRepository {
    /// A repository for `tenant` over `commits`.
    pub fn new(tenant: impl Into<String>, commits: Arc<dyn CommitStore>) -> Self {
        Self {
            tenant: tenant.into(),
            commits,
        }
    }

    /// The tenant this repository works for.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The saga `id`, its whole history replayed; a fresh one if its stream does not exist.
    pub async fn get<S: Saga>(&self, id: &str) -> Result<S, RepositoryError> {
        let mut saga = S::create(id);
        let mut commits = self.commits.get_for_replay(&self.tenant, id, 1, u64::MAX);
        let mut version = 0;
        let mut sequence = 0;
        while let Some(commit) = commits.try_next().await? {
            replay_commit(
                &mut Transitioned(&mut saga),
                &commit,
                1,
                u64::MAX,
                &self.tenant,
                id,
            )?;
            version = commit.stream_revision;
            sequence = commit.commit_sequence;
        }
        saga.state_mut().replayed(version, sequence);
        Ok(saga)
    }

    /// Saves the saga's uncommitted events as one commit, with its dispatched commands in the
    /// commit's headers, and returns those commands for the caller to send on. Nothing to save
    /// returns no commands and writes no commit.
    pub async fn save<S: Saga>(
        &self,
        saga: &mut S,
        headers: Headers,
    ) -> Result<Vec<EventMessage>, RepositoryError> {
        let state = saga.state();
        if state.uncommitted().is_empty() && state.undispatched().is_empty() {
            return Ok(Vec::new());
        }
        let id = state.id();
        let encode = |what: &str, pending: &crate::domain::PendingEvent| {
            pending.to_message().map_err(|source| {
                RepositoryError::encode(
                    &self.tenant,
                    id,
                    format!("{what} of topic `{}`", pending.topic()),
                    source,
                )
            })
        };
        let events = state
            .uncommitted()
            .iter()
            .map(|pending| encode("an event", pending))
            .collect::<Result<Vec<_>, _>>()?;
        let commands = state
            .undispatched()
            .iter()
            .map(|pending| encode("a command", pending))
            .collect::<Result<Vec<_>, _>>()?;
        let mut headers = headers;
        for (index, command) in commands.iter().enumerate() {
            let value = serde_json::to_value(command).map_err(|source| {
                RepositoryError::encode(
                    &self.tenant,
                    id,
                    format!("a command of topic `{}`", command.topic),
                    source,
                )
            })?;
            headers.insert(format!("{UNDISPATCHED_HEADER_PREFIX}{index}"), value);
        }
        let attempt = CommitAttempt::new(
            self.tenant.clone(),
            id,
            state.version(),
            state.commit_sequence() + 1,
            headers,
            events,
        );
        let commit = self.commits.commit(attempt).await?;
        saga.state_mut().saved(commit.commit_sequence);
        Ok(commands)
    }
}
