//! Copying commits and snapshots from a source into an aett store: the part `copy` and
//! `import-python` share.
//!
//! The target store is the only record of progress. A run first learns each target stream's
//! head from the target's log, then writes, in the source's checkpoint order, every commit past
//! it, so a re-run after an interruption goes on where the last one stopped and never writes a
//! commit twice (a commit that was written but not acknowledged comes back as a duplicate commit
//! id, which counts as copied). At the end every stream is read on both sides and compared:
//! counts and a SHA-256 of every commit's id, sequence, revision, stamp, type, headers and
//! event bytes, and every snapshot.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use aett::{Commit, CommitAttempt, EventStore, LogEntry, LogFilter, Snapshot, StoreError};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::CliError;
use crate::inventory::{self, Inventory, MAX_REVISION};
use crate::open::Store;
use crate::progress::Progress;

/// Commits read from a source, in order.
pub type Commits = BoxStream<'static, Result<Commit, CliError>>;

/// Where a copy reads from.
pub trait Source: Send + Sync {
    /// Every commit (of `tenant`, if given) in the order they were written.
    fn commits(&self, tenant: Option<&str>) -> Commits;

    /// The commits of one stream, in order.
    fn stream(&self, tenant: &str, stream: &str) -> Commits;

    /// Every snapshot of the given streams.
    fn snapshots(
        &self,
        streams: Vec<(String, String)>,
    ) -> futures::future::BoxFuture<'_, Result<Vec<Snapshot>, CliError>>;
}

/// An aett store as a source.
pub struct StoreSource {
    store: Arc<dyn EventStore>,
    shown: String,
}

impl StoreSource {
    /// Reads from `store`.
    pub fn new(store: &Store) -> Self {
        Self {
            store: store.store.clone(),
            shown: store.shown.clone(),
        }
    }
}

impl Source for StoreSource {
    fn commits(&self, tenant: Option<&str>) -> Commits {
        let filter = tenant.map_or_else(LogFilter::new, |t| LogFilter::new().tenant(t));
        let url = self.shown.clone();
        self.store
            .get_filtered(0, &filter)
            .map_err(move |e| store_error(&url, e))
            .try_filter_map(|entry| async move {
                // A deletion notice announces commits that are gone from the source: there is
                // nothing to copy, and replaying the deletion would remove what a resumed copy
                // already wrote of the stream's new incarnation.
                Ok(match entry {
                    LogEntry::Commit(commit) => Some(commit),
                    _ => None,
                })
            })
            .boxed()
    }

    fn stream(&self, tenant: &str, stream: &str) -> Commits {
        let url = self.shown.clone();
        self.store
            .get(tenant, stream, 0, MAX_REVISION)
            .map_err(move |e| store_error(&url, e))
            .boxed()
    }

    fn snapshots(
        &self,
        streams: Vec<(String, String)>,
    ) -> futures::future::BoxFuture<'_, Result<Vec<Snapshot>, CliError>> {
        Box::pin(async move {
            let wanted: BTreeSet<(String, String)> = streams.into_iter().collect();
            let tenants: BTreeSet<&str> = wanted.iter().map(|(t, _)| t.as_str()).collect();
            let with = inventory::streams_with_snapshots(&*self.store, tenants)
                .await
                .map_err(|e| store_error(&self.shown, e))?;
            let mut found = Vec::new();
            for (tenant, stream) in with.into_iter().filter(|key| wanted.contains(key)) {
                let snapshots = inventory::snapshots_of(&*self.store, &tenant, &stream)
                    .await
                    .map_err(|e| store_error(&self.shown, e))?;
                found.extend(snapshots);
            }
            Ok(found)
        })
    }
}

fn store_error(url: &str, source: StoreError) -> CliError {
    CliError::Store {
        url: url.to_owned(),
        source: Box::new(source),
    }
}

/// What a copy did and found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Streams in the source.
    pub streams: u64,
    /// Commits in the source.
    pub commits: u64,
    /// Events in the source.
    pub events: u64,
    /// Commits this run wrote.
    pub written_commits: u64,
    /// Events this run wrote.
    pub written_events: u64,
    /// Commits the target held already (from an earlier, interrupted run).
    pub present_commits: u64,
    /// Snapshots written (a snapshot the target held already is written again, unchanged).
    pub snapshots: u64,
    /// How long the copy of the commits took, in seconds.
    pub seconds: f64,
    /// Events written per second.
    pub events_per_second: f64,
    /// Streams that differ after the copy, each with what differs.
    pub differences: Vec<String>,
}

/// Copies everything `source` holds (of `tenant`) into `target`, then verifies the copy.
pub async fn transfer(
    source: &dyn Source,
    target: &Store,
    tenant: Option<&str>,
    label: &'static str,
) -> Result<Report, CliError> {
    let mut wanted = Inventory::default();
    let mut commits = source.commits(tenant);
    while let Some(commit) = commits.try_next().await? {
        wanted.add_commit(&commit);
    }
    let filter = tenant.map_or_else(LogFilter::new, |t| LogFilter::new().tenant(t));
    let present = Inventory::of_log(target.store.get_filtered(0, &filter))
        .await
        .map_err(|e| target.error(e))?;
    let mut heads: HashMap<(String, String), u64> = present
        .streams
        .into_iter()
        .map(|(key, summary)| (key, summary.head_sequence))
        .collect();

    let mut report = Report {
        streams: wanted.streams.len() as u64,
        commits: wanted.commits,
        events: wanted.events,
        ..Report::default()
    };
    let mut progress = Progress::new(label, wanted.events);
    let mut cannot = Vec::new();
    let mut commits = source.commits(tenant);
    while let Some(commit) = commits.try_next().await? {
        let events = commit.events.len() as u64;
        let key = (commit.tenant_id.clone(), commit.stream_id.clone());
        let head = heads.get(&key).copied().unwrap_or(0);
        if commit.commit_sequence <= head {
            report.present_commits += 1;
        } else if commit.commit_sequence != head + 1 {
            // A truncated stream starts past sequence 1; a store writes a stream's commits only
            // in sequence, so its remaining commits cannot be copied (reported below).
            if !cannot.contains(&key) {
                cannot.push(key);
            }
        } else {
            write(target, commit, &mut report).await?;
            heads.insert(key, head + 1);
        }
        progress.advance(events);
    }
    progress.finish();
    report.seconds = progress.elapsed().as_secs_f64();
    report.events_per_second = report.written_events as f64 / report.seconds.max(1e-9);

    let streams: Vec<(String, String)> = wanted.streams.keys().cloned().collect();
    // Read once: copied now, and compared with the target's in the verification.
    let snapshots = source.snapshots(streams.clone()).await?;
    for snapshot in &snapshots {
        target
            .store
            .add_snapshot(snapshot.clone())
            .await
            .map_err(|e| target.error(e))?;
        report.snapshots += 1;
    }

    report.differences = verify(source, target, &streams, &snapshots, &cannot).await?;
    Ok(report)
}

/// Writes one commit as the source holds it: same ids, numbers, stamp, headers and bytes.
async fn write(target: &Store, commit: Commit, report: &mut Report) -> Result<(), CliError> {
    let events = commit.events.len() as u64;
    let (tenant, stream, sequence) = (
        commit.tenant_id.clone(),
        commit.stream_id.clone(),
        commit.commit_sequence,
    );
    let attempt = CommitAttempt::from(commit);
    match target.store.commit(attempt).await {
        Ok(_) => {
            report.written_commits += 1;
            report.written_events += events;
            Ok(())
        }
        // Written by a run that was interrupted before it heard back.
        Err(StoreError::DuplicateCommit { .. }) => {
            report.present_commits += 1;
            Ok(())
        }
        Err(source) => Err(CliError::Write {
            url: target.shown.clone(),
            tenant,
            stream,
            sequence,
            source: Box::new(source),
        }),
    }
}

/// Compares every stream and its snapshots (`wanted`, as the source holds them) on both sides;
/// returns what differs.
async fn verify(
    source: &dyn Source,
    target: &Store,
    streams: &[(String, String)],
    wanted: &[Snapshot],
    cannot: &[(String, String)],
) -> Result<Vec<String>, CliError> {
    let target_source = StoreSource::new(target);
    let mut differences = Vec::new();
    for (tenant, stream) in streams {
        let wanted = Fingerprint::of(source.stream(tenant, stream)).await?;
        let found = Fingerprint::of(target_source.stream(tenant, stream)).await?;
        if wanted != found {
            let why = if cannot.contains(&(tenant.clone(), stream.clone())) {
                " (the source stream was truncated: its first commit is past sequence 1, and a store writes a stream's commits only in sequence)"
            } else {
                ""
            };
            differences.push(format!(
                "stream `{stream}` of tenant `{tenant}`: source {} commits, {} events, digest {}; target {} commits, {} events, digest {}{why}",
                wanted.commits, wanted.events, wanted.short(), found.commits, found.events, found.short()
            ));
        }
    }
    let found = target_source.snapshots(streams.to_vec()).await?;
    let key = |s: &Snapshot| {
        (
            s.tenant_id.clone(),
            s.stream_id.clone(),
            s.stream_revision,
            s.commit_sequence,
            s.payload.get().to_owned(),
        )
    };
    let wanted: BTreeSet<_> = wanted.iter().map(key).collect();
    let found: BTreeSet<_> = found.iter().map(key).collect();
    for (tenant, stream, revision, ..) in wanted.difference(&found) {
        differences.push(format!(
            "snapshot at revision {revision} of stream `{stream}` of tenant `{tenant}` is missing or differs in the target"
        ));
    }
    Ok(differences)
}

/// Counts and a digest of a stream's commits.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    commits: u64,
    events: u64,
    digest: [u8; 32],
}

impl Fingerprint {
    async fn of(mut commits: Commits) -> Result<Self, CliError> {
        let mut hasher = Sha256::new();
        let (mut count, mut events) = (0, 0);
        while let Some(commit) = commits.try_next().await? {
            count += 1;
            events += commit.events.len() as u64;
            let mut field = |bytes: &[u8]| {
                hasher.update((bytes.len() as u64).to_le_bytes());
                hasher.update(bytes);
            };
            field(commit.commit_id.as_bytes());
            field(&commit.commit_sequence.to_le_bytes());
            field(&commit.stream_revision.to_le_bytes());
            field(&commit.commit_stamp.timestamp_micros().to_le_bytes());
            field(commit.stream_type.as_deref().unwrap_or("").as_bytes());
            field(&serde_json::to_vec(&commit.headers).unwrap_or_default());
            for event in &commit.events {
                field(event.topic.as_bytes());
                field(&serde_json::to_vec(&event.headers).unwrap_or_default());
                field(event.body.get().as_bytes());
            }
        }
        Ok(Self {
            commits: count,
            events,
            digest: hasher.finalize().into(),
        })
    }

    fn short(&self) -> String {
        self.digest[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
