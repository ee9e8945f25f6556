//! Runners: catch up from a stored checkpoint, then follow the log live, handing each entry to
//! a projection (or the saga runner) and saving the checkpoint after it.

use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::{self, BoxFuture, Either};
use futures::{FutureExt, StreamExt, TryStreamExt};
use tokio::sync::watch;

use crate::error::StoreError;
use crate::model::LogFilter;
use crate::read::stored;
use crate::read::{EventContext, Projection, RunnerError};
use crate::store::{
    CheckpointStore, CommitLog, Lease, ReplayEntry, SharedStore, SkippedCommit, Wakeups,
};

/// When a runner's handlers' work and its checkpoint are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Delivery {
    /// The checkpoint is saved after the handlers ran (every batch, and before idling): after
    /// a crash the events since the last save are handed over again. Handlers must be
    /// idempotent, or the read model must tolerate a repeat. Works on every store.
    #[default]
    AtLeastOnce,
    /// Each batch's handlers run inside a transaction of the store's own database that also
    /// advances the checkpoint: a read model kept in that database sees every event exactly
    /// once. Handlers write through [`EventContext::transaction`]. SQLite and PostgreSQL only;
    /// elsewhere the runner stops at once with [`StoreError::Unsupported`].
    ExactlyOnce,
}

/// What a runner does with a commit it cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnDamage {
    /// Stop with [`RunnerError::Damaged`]; the checkpoint stays before the damaged commit.
    #[default]
    Stop,
    /// Skip it, recording it with the checkpoint ([`crate::ProjectionPosition::skipped`]), and
    /// go on.
    Skip,
}

/// How a runner runs: filters, delivery, batch size, lease and polling.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub name: String,
    pub filter: LogFilter,
    pub delivery: Delivery,
    pub on_damage: OnDamage,
    pub batch: usize,
    pub lease_ttl: Duration,
    pub max_poll: Duration,
}

impl Settings {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            filter: LogFilter::new(),
            delivery: Delivery::AtLeastOnce,
            on_damage: OnDamage::Stop,
            batch: 100,
            lease_ttl: Duration::from_secs(30),
            max_poll: Duration::from_secs(1),
        }
    }
}

/// What a runner does with each entry of the log it reads.
pub(crate) trait Consumer: Send + 'static {
    /// Handles one entry; `transaction` is the store's transaction when running exactly once.
    /// A damaged commit is [`RunnerError::Damaged`], which the runner may skip.
    fn consume<'a>(
        &'a mut self,
        entry: &'a ReplayEntry,
        transaction: Option<&'a (dyn Any + Send + Sync)>,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), RunnerError>>;

    /// The topics (and aliases) the consumer decodes, checked for program-wide duplicates
    /// before the runner starts.
    fn topics(&self) -> &'static [&'static str];
}

/// A projection as a consumer of the log.
pub(crate) struct Projecting<P>(pub P);

impl<P: Projection> Consumer for Projecting<P> {
    fn topics(&self) -> &'static [&'static str] {
        P::TOPICS
    }

    fn consume<'a>(
        &'a mut self,
        entry: &'a ReplayEntry,
        transaction: Option<&'a (dyn Any + Send + Sync)>,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), RunnerError>> {
        async move {
            match entry {
                ReplayEntry::Commit(commit) => {
                    let damaged = |source| RunnerError::Damaged {
                        projection: name.to_owned(),
                        source,
                    };
                    // Everything that could be damaged is read before any handler runs, so a
                    // damaged commit that is skipped leaves nothing half handled.
                    let commit_headers = stored::headers(commit).map_err(damaged)?;
                    let (count, listed) = match stored::decode_listed::<P>(commit) {
                        Ok(decoded) => decoded,
                        Err(stored::Fault::Damaged(source)) => return Err(damaged(source)),
                        Err(stored::Fault::Decode { topic, source }) => {
                            return Err(RunnerError::Decode {
                                projection: name.to_owned(),
                                tenant: commit.tenant_id.clone(),
                                stream: commit.stream_id.clone(),
                                commit_sequence: commit.commit_sequence,
                                checkpoint: commit.checkpoint,
                                topic,
                                source,
                            })
                        }
                    };
                    for stored::Listed {
                        index,
                        topic,
                        headers,
                        event,
                    } in listed
                    {
                        let mut context = EventContext::of_replayed(
                            commit,
                            &commit_headers,
                            index,
                            count,
                            &headers,
                        );
                        if let Some(transaction) = transaction {
                            context = context.in_transaction(transaction);
                        }
                        if let Err(source) = self.0.project_decoded(topic, event, &context).await {
                            return Err(RunnerError::Handler {
                                projection: name.to_owned(),
                                tenant: commit.tenant_id.clone(),
                                stream: commit.stream_id.clone(),
                                commit_sequence: commit.commit_sequence,
                                checkpoint: commit.checkpoint,
                                topic: topic.to_owned(),
                                source,
                            });
                        }
                    }
                    Ok(())
                }
                ReplayEntry::StreamDeleted(deleted) => {
                    let mut context = EventContext::of_deletion(deleted);
                    if let Some(transaction) = transaction {
                        context = context.in_transaction(transaction);
                    }
                    let Some(handler) = self.0.project_deletion(deleted, &context) else {
                        return Ok(());
                    };
                    handler.await.map_err(|source| RunnerError::Handler {
                        projection: name.to_owned(),
                        tenant: deleted.tenant_id.clone(),
                        stream: deleted.stream_id.clone(),
                        commit_sequence: 0,
                        checkpoint: deleted.checkpoint,
                        topic: String::new(),
                        source,
                    })
                }
            }
        }
        .boxed()
    }
}

/// Runs a projection: catches up from its stored checkpoint, then follows the log as new
/// commits are written, until stopped.
///
/// ```
/// # #[aett::event(topic = "bank.deposited")]
/// # #[derive(serde::Serialize, serde::Deserialize)]
/// # struct Deposited { amount: u64 }
/// #[derive(aett::Projection, Default)]
/// #[projection(name = "deposits", events(Deposited))]
/// struct Deposits { total: u64 }
///
/// impl aett::Project<Deposited> for Deposits {
///     async fn project(&mut self, e: Deposited, _: &aett::EventContext<'_>) -> Result<(), aett::BoxError> {
///         self.total += e.amount;
///         Ok(())
///     }
/// }
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let store = aett::connect("memory://").await?;
/// // Everything up to the end of the log, then stop (a service would `spawn` it instead).
/// let deposits = aett::ProjectionRunner::new(&store, Deposits::default()).catch_up().await?;
/// assert_eq!(deposits.total, 0);
/// # Ok(()) }
/// # tokio::runtime::Runtime::new().unwrap().block_on(demo()).unwrap();
/// ```
///
/// **Checkpoints.** The store keeps the projection's checkpoint (under [`Projection::NAME`]),
/// saved after every batch of entries and whenever the runner idles or stops, never past an
/// entry whose handlers did not all succeed. A restarted runner resumes from it.
///
/// **One runner per projection.** The runner takes the projection's lease in the store first;
/// a second runner of the same projection fails with [`StoreError::LeaseHeld`] until the first
/// stops (or its lease expires, 30 s after it was last renewed, by default). A runner whose
/// lease was taken over stops with [`StoreError::LeaseLost`] at its next save.
///
/// **Waking up.** New commits wake the runner at once where the store signals them (the
/// in-memory store; SQLite for commits made through the same store; PostgreSQL through
/// `LISTEN`/`NOTIFY`); it also polls, with backoff up to once a second, for what no signal
/// reaches.
pub struct ProjectionRunner<P: Projection> {
    log: Arc<dyn CommitLog>,
    checkpoints: Arc<dyn CheckpointStore>,
    projection: P,
    settings: Settings,
}

impl<P: Projection> std::fmt::Debug for ProjectionRunner<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionRunner")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<P: Projection> ProjectionRunner<P> {
    /// A runner of `projection` over one store (what [`crate::connect`] returns, or an `Arc` of
    /// a backend), which keeps its checkpoint.
    pub fn new(store: &impl SharedStore, projection: P) -> Self {
        Self::from_roles(store.commit_log(), store.checkpoint_store(), projection)
    }

    /// A runner over a log and a checkpoint store given separately.
    pub fn from_roles(
        log: Arc<dyn CommitLog>,
        checkpoints: Arc<dyn CheckpointStore>,
        projection: P,
    ) -> Self {
        Self {
            log,
            checkpoints,
            projection,
            settings: Settings::new(P::NAME),
        }
    }

    /// Keeps the checkpoint under `name` instead of [`Projection::NAME`] (to run one projection
    /// type as several read models).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.settings.name = name.into();
        self
    }

    /// Reads only the entries `filter` lets through (tenants, stream types, topics). Events of
    /// topics the projection does not list are skipped either way.
    pub fn filter(mut self, filter: LogFilter) -> Self {
        self.settings.filter = filter;
        self
    }

    /// At least once (the default) or exactly once.
    pub fn delivery(mut self, delivery: Delivery) -> Self {
        self.settings.delivery = delivery;
        self
    }

    /// Stop at a damaged commit (the default) or skip it.
    pub fn on_damage(mut self, on_damage: OnDamage) -> Self {
        self.settings.on_damage = on_damage;
        self
    }

    /// How many log entries are handled between two checkpoint saves (default 100; at least 1).
    pub fn batch_size(mut self, entries: usize) -> Self {
        self.settings.batch = entries.max(1);
        self
    }

    /// How long the lease lasts after each renewal (default 30 s). A runner renews it at every
    /// save and, while idle, every third of this.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.settings.lease_ttl = ttl;
        self
    }

    /// The longest the runner waits between two looks at the log when no signal wakes it
    /// (default 1 s).
    pub fn max_poll_interval(mut self, interval: Duration) -> Self {
        self.settings.max_poll = interval;
        self
    }

    fn job(self) -> Job<Projecting<P>> {
        Job {
            log: self.log,
            checkpoints: self.checkpoints,
            consumer: Projecting(self.projection),
            settings: self.settings,
        }
    }

    /// Handles everything in the log up to its end, saves the checkpoint, and returns the
    /// projection.
    pub async fn catch_up(self) -> Result<P, RunnerError> {
        self.job().catch_up().await.map(|projecting| projecting.0)
    }

    /// Catches up, then follows the log until `stop` completes; finishes the batch in hand,
    /// saves the checkpoint and returns the projection.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send,
    ) -> Result<P, RunnerError> {
        self.job()
            .run_until(stop)
            .await
            .map(|projecting| projecting.0)
    }

    /// Runs on a task of its own: catches up, then follows the log until the handle is
    /// stopped.
    pub fn spawn(self) -> RunningProjection<P> {
        self.job().spawn(|projecting| projecting.0)
    }
}

/// A consumer of the log with what it runs on: the common part of every runner.
pub(crate) struct Job<C> {
    pub log: Arc<dyn CommitLog>,
    pub checkpoints: Arc<dyn CheckpointStore>,
    pub consumer: C,
    pub settings: Settings,
}

impl<C: Consumer> Job<C> {
    /// Runs to the end of the log.
    pub async fn catch_up(self) -> Result<C, RunnerError> {
        let (_stop, stopped) = watch::channel(false);
        run(self, stopped, Until::End, watch::channel(0).0).await
    }

    /// Runs until `stop` completes.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send,
    ) -> Result<C, RunnerError> {
        let (stopping, stopped) = watch::channel(false);
        let running = run(self, stopped, Until::Stopped, watch::channel(0).0);
        let stop = stop.map(move |()| {
            let _ = stopping.send(true);
        });
        match future::select(Box::pin(running), Box::pin(stop)).await {
            Either::Left((outcome, _)) => outcome,
            Either::Right(((), running)) => running.await,
        }
    }

    /// Runs on a task of its own until stopped; `map` turns the consumer into what stopping
    /// returns.
    pub fn spawn<T: Send + 'static>(
        self,
        map: impl FnOnce(C) -> T + Send + 'static,
    ) -> RunningProjection<T> {
        let name = self.settings.name.clone();
        let (stopping, stopped) = watch::channel(false);
        let (progress, watched) = watch::channel(0);
        let task = tokio::spawn(run(self, stopped, Until::Stopped, progress));
        RunningProjection::from_task(name, stopping, watched, task, map)
    }
}

/// A runner running on a task of its own ([`ProjectionRunner::spawn`]). Dropping the handle
/// stops the runner after the batch in hand, without waiting for it.
pub struct RunningProjection<T> {
    name: String,
    stopping: watch::Sender<bool>,
    progress: watch::Receiver<u64>,
    task: Option<BoxFuture<'static, Result<T, RunnerError>>>,
}

impl<T> std::fmt::Debug for RunningProjection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningProjection")
            .field("name", &self.name)
            .field("checkpoint", &*self.progress.borrow())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> RunningProjection<T> {
    /// The handle of a runner's spawned `task`, whose result `map` turns into what `stop`
    /// returns.
    pub(crate) fn from_task<C: Send + 'static>(
        name: String,
        stopping: watch::Sender<bool>,
        progress: watch::Receiver<u64>,
        task: tokio::task::JoinHandle<Result<C, RunnerError>>,
        map: impl FnOnce(C) -> T + Send + 'static,
    ) -> Self {
        let projection = name.clone();
        let task = async move {
            match task.await {
                Ok(outcome) => outcome.map(map),
                Err(error) => Err(RunnerError::Aborted {
                    projection,
                    reason: error.to_string(),
                }),
            }
        }
        .boxed();
        Self {
            name,
            stopping,
            progress,
            task: Some(task),
        }
    }
}

impl<T> RunningProjection<T> {
    /// The projection's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The checkpoint the runner saved last.
    pub fn checkpoint(&self) -> u64 {
        *self.progress.borrow()
    }

    /// Waits until the runner has saved a checkpoint at or past `checkpoint` (the checkpoint
    /// of a commit it handles: read your writes). Fails if the runner stops first, with its
    /// error if it failed.
    pub async fn wait_for(&mut self, checkpoint: u64) -> Result<(), RunnerError> {
        loop {
            if *self.progress.borrow_and_update() >= checkpoint {
                return Ok(());
            }
            if self.progress.changed().await.is_err() {
                return Err(RunnerError::Aborted {
                    projection: self.name.clone(),
                    reason: format!(
                        "the runner stopped before reaching checkpoint {checkpoint} (stop it to see its error)"
                    ),
                });
            }
        }
    }

    /// Stops the runner after the batch in hand, and returns what it ran (or why it had
    /// stopped already).
    pub async fn stop(mut self) -> Result<T, RunnerError> {
        let _ = self.stopping.send(true);
        match self.task.take() {
            Some(task) => task.await,
            None => Err(RunnerError::Aborted {
                projection: self.name.clone(),
                reason: "stopped twice".to_owned(),
            }),
        }
    }
}

impl<T> Drop for RunningProjection<T> {
    fn drop(&mut self) {
        let _ = self.stopping.send(true);
    }
}

/// Whether a run ends at the end of the log or when stopped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    End,
    Stopped,
}

/// The one loop every runner runs, inside its span.
async fn run<C: Consumer>(
    job: Job<C>,
    stopped: watch::Receiver<bool>,
    until: Until,
    progress: watch::Sender<u64>,
) -> Result<C, RunnerError> {
    let span = crate::trace::runner_span(&job.settings.name);
    crate::trace::in_span(span, run_in_span(job, stopped, until, progress)).await
}

async fn run_in_span<C: Consumer>(
    job: Job<C>,
    stopped: watch::Receiver<bool>,
    until: Until,
    progress: watch::Sender<u64>,
) -> Result<C, RunnerError> {
    let Job {
        log,
        checkpoints,
        mut consumer,
        settings,
    } = job;
    let name = settings.name.clone();
    let store_error = |source: StoreError| RunnerError::Store {
        projection: name.clone(),
        source,
    };
    crate::model::event::check_topics(consumer.topics()).map_err(|source| {
        RunnerError::DuplicateTopic {
            projection: name.clone(),
            source,
        }
    })?;
    let lease = Lease::new(settings.name.clone(), settings.lease_ttl);
    let position = checkpoints
        .acquire_lease(&lease)
        .await
        .map_err(store_error)?;
    crate::trace::debug!(
        checkpoint = position.checkpoint,
        "runner started from its checkpoint"
    );
    progress.send_replace(position.checkpoint);
    let mut keeper = Keeper {
        checkpoints: &*checkpoints,
        lease: &lease,
        settings: &settings,
        progress: &progress,
        saved: position.checkpoint,
        renewed: Instant::now(),
    };
    let outcome = follow(
        &*log,
        &mut keeper,
        &mut consumer,
        stopped,
        until,
        position.checkpoint,
    )
    .await;
    // The lease is given up either way, so another runner can start at once.
    let released = checkpoints.release_lease(&lease).await;
    if let Err(error) = &outcome {
        let _ = error;
        crate::trace::debug!(%error, "runner stopped");
    }
    outcome?;
    released.map_err(store_error)?;
    Ok(consumer)
}

/// Saves checkpoints and renews the lease.
struct Keeper<'a> {
    checkpoints: &'a dyn CheckpointStore,
    lease: &'a Lease,
    settings: &'a Settings,
    progress: &'a watch::Sender<u64>,
    saved: u64,
    renewed: Instant,
}

impl Keeper<'_> {
    fn store_error(&self, source: StoreError) -> RunnerError {
        RunnerError::Store {
            projection: self.settings.name.clone(),
            source,
        }
    }

    async fn save(
        &mut self,
        checkpoint: u64,
        skipped: Option<SkippedCommit>,
    ) -> Result<(), RunnerError> {
        self.checkpoints
            .save_checkpoint(self.lease, checkpoint, skipped)
            .await
            .map_err(|e| self.store_error(e))?;
        self.saved(checkpoint);
        Ok(())
    }

    fn saved(&mut self, checkpoint: u64) {
        crate::trace::debug!(checkpoint, "checkpoint saved");
        self.saved = checkpoint;
        self.renewed = Instant::now();
        self.progress.send_replace(checkpoint);
    }

    /// Renews the lease while idle, before a third of its time is gone.
    async fn renew_if_due(&mut self) -> Result<(), RunnerError> {
        if self.renewed.elapsed() >= self.settings.lease_ttl / 3 {
            let checkpoint = self.saved;
            self.save(checkpoint, None).await?;
        }
        Ok(())
    }
}

/// A batch's open transaction, when running exactly once.
type Open = Option<Box<dyn crate::store::CheckpointTransaction>>;

async fn follow<C: Consumer>(
    log: &dyn CommitLog,
    keeper: &mut Keeper<'_>,
    consumer: &mut C,
    mut stopped: watch::Receiver<bool>,
    until: Until,
    start: u64,
) -> Result<(), RunnerError> {
    let settings = keeper.settings;
    let name = settings.name.as_str();
    let exactly_once = settings.delivery == Delivery::ExactlyOnce;
    let mut wakeups: Option<Wakeups> = log.wakeups();
    let mut checkpoint = start;
    let mut pause = Duration::from_millis(5);
    loop {
        let mut entries = log.get_filtered_for_replay(checkpoint, &settings.filter);
        let mut open: Open = None;
        let mut in_batch = 0usize;
        let mut handled_any = false;
        let mut skipped = None;
        let read_to_end = loop {
            if *stopped.borrow() {
                break false;
            }
            let next = entries.try_next().await;
            let entry = match next {
                Ok(Some(entry)) => entry,
                Ok(None) => break true,
                Err(error @ StoreError::Corrupt { .. }) => {
                    let at = error.checkpoint();
                    match (settings.on_damage, at) {
                        (OnDamage::Skip, Some(at)) => {
                            skipped = Some(skip_record(at, &error));
                            checkpoint = at;
                            break false;
                        }
                        _ => {
                            finish(keeper, open.take(), checkpoint, in_batch, None).await?;
                            return Err(RunnerError::Damaged {
                                projection: name.to_owned(),
                                source: error,
                            });
                        }
                    }
                }
                Err(error) => {
                    finish(keeper, open.take(), checkpoint, in_batch, None).await?;
                    return Err(keeper.store_error(error));
                }
            };
            if exactly_once && open.is_none() {
                open = Some(
                    keeper
                        .checkpoints
                        .begin_checkpoint_transaction(keeper.lease)
                        .await
                        .map_err(|e| keeper.store_error(e))?,
                );
            }
            let transaction = open.as_ref().map(|open| open.as_any());
            match consumer.consume(&entry, transaction, name).await {
                Ok(()) => {}
                // A commit found damaged as it is read: skipped like one the store could not
                // read at all, recorded with the batch's checkpoint.
                Err(RunnerError::Damaged { source, .. })
                    if settings.on_damage == OnDamage::Skip =>
                {
                    checkpoint = entry.checkpoint();
                    handled_any = true;
                    skipped = Some(skip_record(checkpoint, &source));
                    finish(keeper, open.take(), checkpoint, in_batch, skipped.take()).await?;
                    in_batch = 0;
                    continue;
                }
                // On failure an open transaction is dropped, which rolls the batch back;
                // without one, the checkpoint is saved up to the last entry handled whole.
                Err(error) => {
                    if open.is_none() && in_batch > 0 {
                        keeper.save(checkpoint, None).await?;
                    }
                    return Err(error);
                }
            }
            checkpoint = entry.checkpoint();
            in_batch += 1;
            handled_any = true;
            if in_batch >= settings.batch {
                finish(keeper, open.take(), checkpoint, in_batch, None).await?;
                in_batch = 0;
            }
        };
        let skipped_now = skipped.is_some();
        finish(keeper, open.take(), checkpoint, in_batch, skipped).await?;
        if skipped_now {
            continue;
        }
        if !read_to_end || (until == Until::End && !handled_any) {
            return Ok(());
        }
        if until == Until::End {
            // Read again from where the last read ended: the end is where a read finds nothing.
            continue;
        }
        if handled_any {
            pause = Duration::from_millis(5);
            continue;
        }
        keeper.renew_if_due().await?;
        // A signal cuts the wait short; polling, backing off while nothing comes, finds what no
        // signal reaches (an SQLite file written by another process).
        crate::trace::debug!(?pause, "runner idle: waiting for new commits");
        if idle(&mut wakeups, &mut stopped, pause).await {
            pause = Duration::from_millis(5);
        } else {
            pause = (pause * 2).min(settings.max_poll);
        }
    }
}

/// Ends a batch: commits its transaction with the checkpoint, or saves the checkpoint, when
/// anything was handled (or a damaged commit skipped) since the last save.
async fn finish(
    keeper: &mut Keeper<'_>,
    open: Open,
    checkpoint: u64,
    in_batch: usize,
    skipped: Option<SkippedCommit>,
) -> Result<(), RunnerError> {
    if in_batch == 0 && skipped.is_none() {
        return Ok(());
    }
    match open {
        Some(transaction) => {
            transaction
                .commit(checkpoint, skipped)
                .await
                .map_err(|e| keeper.store_error(e))?;
            keeper.saved(checkpoint);
            Ok(())
        }
        None => keeper.save(checkpoint, skipped).await,
    }
}

fn skip_record(checkpoint: u64, error: &StoreError) -> SkippedCommit {
    crate::trace::debug!(checkpoint, %error, "damaged commit skipped");
    let (tenant, stream) = match error {
        StoreError::Corrupt { scope, .. } => (
            scope.tenant_id().map(str::to_owned),
            scope.stream_id().map(str::to_owned),
        ),
        _ => (None, None),
    };
    SkippedCommit::new(checkpoint, tenant, stream, error.to_string())
}

/// Waits for a wake-up, the stop signal, or `limit`; whether a wake-up came.
async fn idle(
    wakeups: &mut Option<Wakeups>,
    stopped: &mut watch::Receiver<bool>,
    limit: Duration,
) -> bool {
    let wake = async {
        match wakeups.as_mut() {
            Some(stream) => match stream.next().await {
                Some(Ok(())) => true,
                // The signal failed or ended: fall back to polling.
                Some(Err(_)) | None => {
                    crate::trace::debug!("the store's commit signal failed; polling instead");
                    *wakeups = None;
                    false
                }
            },
            None => future::pending().await,
        }
    };
    let stop = async {
        let _ = stopped.changed().await;
        false
    };
    let timer = tokio::time::sleep(limit).map(|()| false);
    let (woke, _, _) = future::select_all([wake.boxed(), stop.boxed(), timer.boxed()]).await;
    woke
}
