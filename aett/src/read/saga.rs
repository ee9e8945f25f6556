//! Sagas run from the log (a process manager), with an outbox for the commands they dispatch.

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use uuid::Uuid;

use crate::domain::{Saga, COMMANDS_ONLY_TOPIC};
use crate::error::{BoxError, StoreError};
use crate::model::{Commit, Correlation, EventMessage, Headers, LogFilter};
use crate::read::runner::{Consumer, Job, Settings};
use crate::read::stored;
use crate::read::{EventContext, RunnerError, RunningProjection};
use crate::repository::{RepositoryError, SagaRepository, UNDISPATCHED_HEADER_PREFIX};
use crate::store::{CheckpointStore, CommitLog, CommitStore, ReplayEntry, SharedStore};

pub use crate::model::{CAUSATION_HEADER, CORRELATION_HEADER};

/// Which saga instance an event of type `E` belongs to. Implement it for every event a saga
/// lists, and mark the saga `#[saga(correlated)]`, to run it with a [`SagaRunner`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` is `#[saga(correlated)]` but does not say which of its instances an event of type `{E}` goes to",
    label = "no `Correlate<{E}>` implementation",
    note = "add `impl aett::Correlate<{E}> for {Self} {{ fn correlation_id(event: &{E}, context: &aett::EventContext<'_>) -> Option<String> {{ ... }} }}`"
)]
pub trait Correlate<E> {
    /// The id (stream id) of the saga instance `event` goes to, from the event or its headers
    /// (`context.event_headers`, `context.commit_headers`); `None` when it concerns no instance.
    fn correlation_id(event: &E, context: &EventContext<'_>) -> Option<String>;
}

/// A saga that can be run from the log: `#[saga(correlated)]` implements it from the
/// [`Correlate`] impls, one per listed event.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be run from the log",
    note = "mark it `#[saga(events(...), correlated)]` and implement `aett::Correlate<E>` for each listed event"
)]
pub trait CorrelatedSaga: Saga {
    /// The saga instance a stored message goes to: `Ok(None)` for a topic the saga does not
    /// list, or an event its `Correlate` impl sends nowhere.
    #[doc(hidden)]
    fn correlate_message(
        message: &EventMessage,
        context: &EventContext<'_>,
    ) -> Result<Option<String>, crate::ApplyError>;
}

/// A command a saga dispatched, as the saga runner hands it to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DispatchedCommand {
    /// The command, its headers carrying [`CORRELATION_HEADER`] (the conversation of the event
    /// that led to it) and [`CAUSATION_HEADER`] (that event).
    pub message: EventMessage,
    /// The tenant of the saga.
    pub tenant_id: String,
    /// The saga instance that dispatched it (its stream id).
    pub saga_id: String,
    /// The saga's commit that stored it.
    pub commit_id: Uuid,
}

impl DispatchedCommand {
    /// Commit headers that carry the command's causation and correlation on, for the commit
    /// of the aggregate that handles it (`repository.save(&mut aggregate, command.causation_headers())`).
    pub fn causation_headers(&self) -> Headers {
        self.correlation()
            .map(|correlation| correlation.headers())
            .unwrap_or_default()
    }

    /// The command's correlation: the conversation, and the event that caused it. Pass it to
    /// [`crate::AggregateRepository::correlated`] to carry it on to the commit that handles
    /// the command.
    pub fn correlation(&self) -> Option<Correlation> {
        Correlation::from_headers(&self.message.headers)
    }

    /// Decodes the command into `C` if it has `C`'s topic.
    pub fn decode<C: crate::Event>(&self) -> Result<Option<C>, crate::ApplyError> {
        self.message.decode_event()
    }
}

/// Where a saga runner sends the commands sagas dispatch: the application's command bus.
///
/// ```
/// struct Bus;
/// impl aett::CommandDispatcher for Bus {
///     async fn dispatch(&self, command: &aett::DispatchedCommand) -> Result<(), aett::BoxError> {
///         println!("send {}", command.message.topic);
///         Ok(())
///     }
/// }
/// ```
pub trait CommandDispatcher: Send + Sync + 'static {
    /// Accepts one command. An error stops the runner before its checkpoint passes the event
    /// that led to the command, so the command is sent again on restart: a command can arrive
    /// more than once, never not at all.
    fn dispatch(
        &self,
        command: &DispatchedCommand,
    ) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// Runs sagas from the log: each event a saga lists goes to the instance its [`Correlate`]
/// impl names, which is loaded, handles it, and is saved (retrying on concurrency); the
/// commands it dispatched are then handed to the [`CommandDispatcher`].
///
/// **Commands are never lost.** They are saved in the saga's commit (its outbox, as
/// undispatched commands), and the runner's checkpoint passes the event only after the
/// dispatcher accepted every one. After a crash in between, the event is handed over again:
/// the saga's save is recognised as a duplicate (its commit id is derived from the event and
/// the saga), nothing is stored twice, and the stored commands are dispatched again. So a
/// command may be dispatched more than once; make its handling idempotent (its
/// [`CAUSATION_HEADER`] identifies it).
///
/// The saga's own streams (their stream type is [`Saga::NAME`]) hold copies of the events it
/// handled, and are never fed back to it. Options, checkpoints and leases are as for
/// [`crate::ProjectionRunner`]; the checkpoint is kept under `saga:{NAME}`.
pub struct SagaRunner<S: CorrelatedSaga, D: CommandDispatcher> {
    log: Arc<dyn CommitLog>,
    checkpoints: Arc<dyn CheckpointStore>,
    commits: Arc<dyn CommitStore>,
    dispatcher: D,
    settings: Settings,
    attempts: usize,
    saga: PhantomData<fn() -> S>,
}

impl<S: CorrelatedSaga, D: CommandDispatcher> std::fmt::Debug for SagaRunner<S, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SagaRunner")
            .field("saga", &S::NAME)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<S: CorrelatedSaga, D: CommandDispatcher> SagaRunner<S, D> {
    /// A runner of the saga type `S` over one store, sending commands to `dispatcher`.
    pub fn new(store: &impl SharedStore, dispatcher: D) -> Self {
        Self {
            log: store.commit_log(),
            checkpoints: store.checkpoint_store(),
            commits: store.commit_store(),
            dispatcher,
            settings: Settings::new(&format!("saga:{}", S::NAME)),
            attempts: 10,
            saga: PhantomData,
        }
    }

    /// Reads only the entries `filter` lets through (tenants, stream types, topics).
    pub fn filter(mut self, filter: LogFilter) -> Self {
        self.settings.filter = filter;
        self
    }

    /// How many times a saga is reloaded and the event handled again after a concurrency
    /// conflict (default 10).
    pub fn attempts(mut self, attempts: usize) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// How many log entries are handled between two checkpoint saves (default 100).
    pub fn batch_size(mut self, entries: usize) -> Self {
        self.settings.batch = entries.max(1);
        self
    }

    /// The longest the runner waits between two looks at the log when no signal wakes it.
    pub fn max_poll_interval(mut self, interval: std::time::Duration) -> Self {
        self.settings.max_poll = interval;
        self
    }

    fn job(self) -> Job<Routing<S, D>> {
        Job {
            log: self.log,
            checkpoints: self.checkpoints,
            consumer: Routing {
                commits: self.commits,
                dispatcher: self.dispatcher,
                attempts: self.attempts,
                saga: PhantomData,
            },
            settings: self.settings,
        }
    }

    /// Handles everything in the log up to its end, then stops; returns the dispatcher.
    pub async fn catch_up(self) -> Result<D, RunnerError> {
        self.job()
            .catch_up()
            .await
            .map(|routing| routing.dispatcher)
    }

    /// Catches up, then follows the log until `stop` completes; returns the dispatcher.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send) -> Result<D, RunnerError> {
        self.job()
            .run_until(stop)
            .await
            .map(|routing| routing.dispatcher)
    }

    /// Runs on a task of its own, following the log until the handle is stopped; stopping
    /// returns the dispatcher.
    pub fn spawn(self) -> RunningProjection<D> {
        self.job().spawn(|routing| routing.dispatcher)
    }
}

/// The saga runner as a consumer of the log.
struct Routing<S, D> {
    commits: Arc<dyn CommitStore>,
    dispatcher: D,
    attempts: usize,
    saga: PhantomData<fn() -> S>,
}

impl<S: CorrelatedSaga, D: CommandDispatcher> Consumer for Routing<S, D> {
    fn topics(&self) -> &'static [&'static str] {
        S::TOPICS
    }

    fn consume<'a>(
        &'a mut self,
        entry: &'a ReplayEntry,
        _: Option<&'a (dyn Any + Send + Sync)>,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), RunnerError>> {
        async move {
            let ReplayEntry::Commit(replayed) = entry else {
                return Ok(());
            };
            if replayed.stream_type.as_deref() == Some(S::NAME) {
                return Ok(());
            }
            let commit = &stored::to_commit(replayed).map_err(|source| RunnerError::Damaged {
                projection: name.to_owned(),
                source,
            })?;
            for (index, message) in commit.events.iter().enumerate() {
                if message.topic == COMMANDS_ONLY_TOPIC
                    || !S::TOPICS.contains(&message.topic.as_str())
                {
                    continue;
                }
                let context = EventContext::of_event(commit, index);
                let fail = |source: BoxError| RunnerError::Handler {
                    projection: name.to_owned(),
                    tenant: commit.tenant_id.clone(),
                    stream: commit.stream_id.clone(),
                    commit_sequence: commit.commit_sequence,
                    checkpoint: commit.checkpoint,
                    topic: message.topic.clone(),
                    source,
                };
                let saga_id = match S::correlate_message(message, &context) {
                    Ok(Some(id)) => id,
                    Ok(None) => continue,
                    Err(source) => {
                        return Err(RunnerError::Decode {
                            projection: name.to_owned(),
                            tenant: commit.tenant_id.clone(),
                            stream: commit.stream_id.clone(),
                            commit_sequence: commit.commit_sequence,
                            checkpoint: commit.checkpoint,
                            topic: message.topic.clone(),
                            source,
                        })
                    }
                };
                let commands = self
                    .handle(commit, index, message, &saga_id)
                    .await
                    .map_err(|e| fail(Box::new(e)))?;
                for command in &commands {
                    self.dispatcher.dispatch(command).await.map_err(fail)?;
                }
            }
            Ok(())
        }
        .boxed()
    }
}

impl<S: CorrelatedSaga, D: CommandDispatcher> Routing<S, D> {
    /// Loads the saga, hands it the event, saves it under the commit id derived from the event
    /// (retrying on concurrency), and returns the commands to dispatch: those just saved, or,
    /// when this event was handled before, those stored then.
    async fn handle(
        &self,
        commit: &Commit,
        index: usize,
        message: &EventMessage,
        saga_id: &str,
    ) -> Result<Vec<DispatchedCommand>, RepositoryError> {
        let repository =
            SagaRepository::from_commit_store(commit.tenant_id.clone(), self.commits.clone());
        let correlation = Correlation::caused_by(commit, index);
        let commit_id = Uuid::new_v5(
            &commit.commit_id,
            format!("{index}\u{0}{}\u{0}{saga_id}", S::NAME).as_bytes(),
        );
        let headers = correlation.headers();
        let mut tries = 0;
        loop {
            tries += 1;
            let mut saga: S = repository.get(saga_id).await?;
            saga.handle_message(message).map_err(|error| {
                RepositoryError::from_apply(
                    error,
                    &commit.tenant_id,
                    &commit.stream_id,
                    commit.commit_sequence,
                )
            })?;
            saga.state_mut().use_commit_id(commit_id);
            match repository.save(&mut saga, headers.clone()).await {
                Ok(commands) => {
                    return Ok(self.commands(commit, saga_id, commit_id, &correlation, commands));
                }
                Err(RepositoryError::Store(StoreError::DuplicateCommit {
                    commit_id: id, ..
                })) if id == commit_id => {
                    // Handled before, and its commands perhaps not dispatched: send the stored
                    // ones again.
                    return self
                        .stored_commands(commit, saga_id, commit_id, &correlation)
                        .await;
                }
                Err(error) if error.is_concurrency_conflict() && tries < self.attempts => continue,
                Err(error) => return Err(error),
            }
        }
    }

    fn commands(
        &self,
        commit: &Commit,
        saga_id: &str,
        commit_id: Uuid,
        correlation: &Correlation,
        commands: Vec<EventMessage>,
    ) -> Vec<DispatchedCommand> {
        commands
            .into_iter()
            .map(|mut message| DispatchedCommand {
                message: {
                    correlation.add_to(&mut message.headers);
                    message
                },
                tenant_id: commit.tenant_id.clone(),
                saga_id: saga_id.to_owned(),
                commit_id,
            })
            .collect()
    }

    async fn stored_commands(
        &self,
        commit: &Commit,
        saga_id: &str,
        commit_id: Uuid,
        correlation: &Correlation,
    ) -> Result<Vec<DispatchedCommand>, RepositoryError> {
        let mut stored = self.commits.get(&commit.tenant_id, saga_id, 0, u64::MAX);
        while let Some(saved) = stored.try_next().await? {
            if saved.commit_id != commit_id {
                continue;
            }
            let mut commands = Vec::new();
            for index in 0.. {
                let Some(value) = saved
                    .headers
                    .get(&format!("{UNDISPATCHED_HEADER_PREFIX}{index}"))
                else {
                    break;
                };
                let message: EventMessage =
                    serde_json::from_value(value.clone()).map_err(|source| {
                        RepositoryError::Decode {
                            tenant: commit.tenant_id.clone(),
                            stream: saga_id.to_owned(),
                            commit_sequence: saved.commit_sequence,
                            topic: format!("{UNDISPATCHED_HEADER_PREFIX}{index}"),
                            source,
                        }
                    })?;
                commands.push(message);
            }
            return Ok(self.commands(commit, saga_id, commit_id, correlation, commands));
        }
        Err(StoreError::DuplicateCommit {
            tenant: commit.tenant_id.clone(),
            stream: saga_id.to_owned(),
            commit_id,
            commit_sequence: 0,
        }
        .into())
    }
}
