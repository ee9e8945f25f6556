//! Loading and saving sagas.

use crate::model::event::check_topics;
use std::sync::Arc;

use futures::TryStreamExt;

use crate::domain::{Saga, COMMANDS_ONLY_TOPIC};
use crate::model::{CommitAttempt, EventMessage, Headers};
use crate::repository::aggregate::commit_once;
use crate::repository::replay::{replay_commit, Transitioned};
use crate::repository::RepositoryError;
use crate::store::{CommitStore, SharedStore};

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
    /// A repository for `tenant` over one store: what [`crate::connect`] returns, or an `Arc`
    /// of a backend.
    pub fn new(tenant: impl Into<String>, store: &impl SharedStore) -> Self {
        Self::from_commit_store(tenant, store.commit_store())
    }

    /// A repository for `tenant` over a commit store.
    pub fn from_commit_store(tenant: impl Into<String>, commits: Arc<dyn CommitStore>) -> Self {
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
        let span = crate::trace::replay_span(&self.tenant, id, S::NAME);
        let saga: S = crate::trace::in_span(span.clone(), self.load(id)).await?;
        crate::trace::record_replayed(&span, saga.version());
        Ok(saga)
    }

    async fn load<S: Saga>(&self, id: &str) -> Result<S, RepositoryError> {
        check_topics(S::TOPICS)?;
        let mut saga = S::create(id);
        let mut commits = self.commits.get_for_replay(&self.tenant, id, 1, u64::MAX);
        let mut version = 0;
        let mut sequence = 0;
        while let Some(commit) = commits.try_next().await? {
            let first = (commit.stream_revision + 1).saturating_sub(commit.event_count);
            if first > version + 1 {
                // A saga is its whole history: with part of it truncated away it cannot load.
                return Err(RepositoryError::HistoryTruncated {
                    tenant: self.tenant.clone(),
                    stream: id.to_owned(),
                    version: version + 1,
                    available_from: first,
                });
            }
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
    ///
    /// Dispatched commands are always saved: when the saga dispatched commands without
    /// handling an event since its last save, the commit carries one event of topic
    /// [`crate::COMMANDS_ONLY_TOPIC`], which loading skips. As for aggregates, a save retried
    /// after an unknown outcome reuses its commit id and never stores twice.
    pub async fn save<S: Saga>(
        &self,
        saga: &mut S,
        headers: Headers,
    ) -> Result<Vec<EventMessage>, RepositoryError> {
        let state = saga.state();
        if state.uncommitted().is_empty() && state.undispatched().is_empty() {
            return Ok(Vec::new());
        }
        check_topics(S::TOPICS)?;
        let commit_id = saga.state_mut().commit_id_for_save();
        let state = saga.state();
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
        let mut events = state
            .uncommitted()
            .iter()
            .map(|pending| encode("an event", pending))
            .collect::<Result<Vec<_>, _>>()?;
        if events.is_empty() {
            let marker = serde_json::value::to_raw_value(&serde_json::Map::new())
                .expect("an empty object serialises");
            events.push(EventMessage::from_raw(COMMANDS_ONLY_TOPIC, marker));
        }
        let commands = state
            .undispatched()
            .iter()
            .map(|pending| encode("a command", pending))
            .collect::<Result<Vec<_>, _>>()?;
        let mut headers = headers;
        for (index, pending) in state.undispatched().iter().enumerate() {
            // Straight from the typed command into the header's value, not through its text.
            let value = pending.to_message_value().map_err(|source| {
                RepositoryError::encode(
                    &self.tenant,
                    id,
                    format!("a command of topic `{}`", pending.topic()),
                    source,
                )
            })?;
            headers.insert(format!("{UNDISPATCHED_HEADER_PREFIX}{index}"), value);
        }
        let revision = state.version() - state.uncommitted().len() as u64 + events.len() as u64;
        let mut attempt = CommitAttempt::new(
            self.tenant.clone(),
            id,
            revision,
            state.commit_sequence() + 1,
            headers,
            events,
        )
        .with_stream_type(S::NAME);
        attempt.commit_id = commit_id;
        let commit = commit_once(&*self.commits, attempt).await?;
        saga.state_mut()
            .saved(commit.commit_sequence, commit.stream_revision);
        Ok(commands)
    }

    /// Loads the saga `id`, runs `command` on it (typically [`Saga::handle`]) and saves it;
    /// on a concurrency error it reloads and runs the command again, up to `attempts` times in
    /// all. Returns the command's output and the commands the saga dispatched.
    pub async fn update<S, T, E, F>(
        &self,
        id: &str,
        headers: Headers,
        attempts: usize,
        mut command: F,
    ) -> Result<(T, Vec<EventMessage>), E>
    where
        S: Saga,
        F: FnMut(&mut S) -> Result<T, E>,
        E: From<RepositoryError>,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            let mut saga: S = self.get(id).await?;
            let output = command(&mut saga)?;
            match self.save(&mut saga, headers.clone()).await {
                Ok(commands) => return Ok((output, commands)),
                Err(error) if error.is_concurrency_conflict() && tries < attempts.max(1) => {
                    crate::trace::debug!(id, tries, %error, "concurrency conflict: reloading the saga and running the command again");
                    continue;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }
}
