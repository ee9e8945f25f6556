//! What PostgreSQL needs beyond the contract suite: gap-free reading from a checkpoint while
//! writers run, a commit cut off by a dropped connection, setup errors, TLS.
#![cfg(feature = "postgres")]

use std::sync::Arc;
use std::time::Duration;

use aett::{
    Commit, CommitAttempt, CommitStore, EventMessage, Headers, Operation, PersistenceManagement,
    PostgresConfig, PostgresStore, SnapshotStore, StoreError,
};
use aett_conformance::domain::Incremented;
use aett_conformance::postgres::{raw_client, unique_schema, url};
use futures::TryStreamExt;

async fn store(pool_size: usize) -> Arc<PostgresStore> {
    let config = PostgresConfig::new(url())
        .schema(unique_schema())
        .pool_size(pool_size);
    let store = PostgresStore::connect(config).await.expect("connect");
    store.initialize().await.expect("initialize");
    Arc::new(store)
}

/// Commits sequence 1 of stream `s` of tenant `t`, then takes sequence 2 in a transaction of
/// another session that stays open, so that the store's own commit of sequence 2 waits on the
/// unique index. `ROLLBACK` on the returned session releases it.
async fn commit_first_and_hold_the_second(store: &PostgresStore) -> tokio_postgres::Client {
    store
        .commit(CommitAttempt::new(
            "t",
            "s",
            1,
            1,
            Headers::new(),
            increment(1),
        ))
        .await
        .expect("first commit");
    let blocker = raw_client().await;
    blocker
        .batch_execute(&format!(
            "BEGIN; INSERT INTO \"{}\".\"{}\" SELECT 1, stream_key, tenant_key, tenant_id, stream_id, 2, 1, gen_random_uuid(), 2, now(), headers, events FROM \"{0}\".\"{1}\" WHERE commit_sequence = 1",
            store.schema(),
            store.commits_table()
        ))
        .await
        .expect("hold sequence 2");
    blocker
}

fn increment(by: i64) -> Vec<EventMessage> {
    vec![EventMessage::from_event(&Incremented { by }).unwrap()]
}

/// Writers commit concurrently while a reader follows `get_from` from the last checkpoint it
/// saw. With plain sequence checkpoints a commit whose number was drawn earlier but that became
/// visible later would be skipped forever; here the reader must see every commit, once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_checkpoint_reader_running_beside_writers_sees_every_commit() {
    aett_conformance::log_order::a_reader_beside_writers_sees_every_commit(store(12).await, 8, 150)
        .await;
}

/// A commit whose connection dies while it waits leaves nothing behind, and the store goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_cut_off_by_a_dropped_connection_leaves_no_partial_commit() {
    let store = store(4).await;
    // Another session takes sequence 2 without committing, so the store's insert blocks on the
    // unique index; then that blocked backend is terminated.
    let blocker = commit_first_and_hold_the_second(&store).await;

    let attempt = CommitAttempt::new("t", "s", 2, 2, Headers::new(), increment(2));
    let commit_id = attempt.commit_id;
    let pending = {
        let store = store.clone();
        tokio::spawn(async move { store.commit(attempt).await })
    };
    let killer = raw_client().await;
    let mut killed = 0;
    for _ in 0..200 {
        killed = killer
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO%' AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get::<_, i64>(0);
        if killed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        killed, 1,
        "the blocked commit's backend was found and terminated"
    );
    match pending.await.unwrap() {
        Err(StoreError::Storage {
            operation: Operation::Commit,
            ..
        }) => {}
        other => panic!("expected a storage error from the commit, got {other:?}"),
    }
    blocker.batch_execute("ROLLBACK").await.unwrap();

    let commits: Vec<Commit> = store
        .get("t", "s", 0, u64::MAX)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(commits.len(), 1, "nothing of the cut-off commit was stored");
    assert!(commits.iter().all(|c| c.commit_id != commit_id));
    // The pool replaces the dead connection; the same commit now succeeds.
    let retried = store
        .commit(CommitAttempt::new(
            "t",
            "s",
            2,
            2,
            Headers::new(),
            increment(2),
        ))
        .await
        .expect("retry");
    assert_eq!(retried.commit_sequence, 2);
}

#[tokio::test]
async fn a_wrong_password_fails_at_connect() {
    let good = url();
    let bad = good.replacen("aett:aett@", "aett:wrong@", 1);
    assert_ne!(
        good, bad,
        "the test server URL has the form postgres://aett:aett@…"
    );
    match PostgresStore::connect(PostgresConfig::new(bad)).await {
        Err(
            error @ StoreError::Storage {
                operation: Operation::Connect,
                ..
            },
        ) => {
            assert!(error.to_string().contains("password"), "{error}");
            assert!(
                !error.to_string().contains("wrong"),
                "the password is not echoed: {error}"
            );
        }
        other => panic!("expected a connect error, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_names_and_urls_are_configuration_errors() {
    for config in [
        PostgresConfig::new(url()).schema("bad-schema"),
        PostgresConfig::new(url()).commits_table("commits; DROP TABLE x"),
        PostgresConfig::new(url())
            .commits_table("same")
            .snapshots_table("same"),
        PostgresConfig::new("postgres://[not a url"),
    ] {
        match PostgresStore::connect(config).await {
            Err(StoreError::Configuration(_)) => {}
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn store_urls_reach_postgres() {
    let store = aett::connect(&url()).await.expect("connect by URL");
    store.initialize().await.expect("initialize again");
    let stream = format!("url-{}", uuid::Uuid::new_v4());
    let commit = store
        .commit(CommitAttempt::new(
            "t",
            &stream,
            1,
            1,
            Headers::new(),
            increment(1),
        ))
        .await
        .unwrap();
    let read: Vec<Commit> = store
        .get("t", &stream, 0, u64::MAX)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(read, vec![commit]);
}

#[cfg(feature = "postgres-tls")]
#[tokio::test]
async fn tls_connections_verify_the_server_against_the_given_ca() {
    let ca_file = std::env::var(aett_conformance::postgres::CA_VARIABLE)
        .unwrap_or_else(|_| panic!("{} is not set: the TLS test needs the test server's CA certificate; run scripts/test-all.sh", aett_conformance::postgres::CA_VARIABLE));
    let config = PostgresConfig::new(url())
        .schema(unique_schema())
        .tls(aett::PostgresTls::required(Some(ca_file.into())));
    let store = PostgresStore::connect(config).await.expect("TLS connect");
    store.initialize().await.expect("initialize over TLS");
    let commit = store
        .commit(CommitAttempt::new(
            "t",
            "tls",
            1,
            1,
            Headers::new(),
            increment(1),
        ))
        .await
        .expect("commit over TLS");
    assert_eq!(commit.commit_sequence, 1);

    // Without the CA the server's certificate is not trusted, and the connection is refused.
    let untrusted = PostgresConfig::new(url()).tls(aett::PostgresTls::required(None));
    match PostgresStore::connect(untrusted).await {
        Err(StoreError::Storage {
            operation: Operation::Connect,
            ..
        }) => {}
        other => panic!("an untrusted certificate must be refused, got {other:?}"),
    }
}

/// A statement that waits longer than the statement timeout ends with a typed timeout, and the
/// store goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_past_its_timeout_is_a_typed_timeout() {
    let config = PostgresConfig::new(url())
        .schema(unique_schema())
        .pool_size(2)
        .statement_timeout(Duration::from_millis(300));
    let store = PostgresStore::connect(config).await.expect("connect");
    store.initialize().await.expect("initialize");
    // Another session holds the stream's next sequence, so the commit waits on the index.
    let blocker = commit_first_and_hold_the_second(&store).await;
    let started = std::time::Instant::now();
    match store
        .commit(CommitAttempt::new(
            "t",
            "s",
            2,
            2,
            Headers::new(),
            increment(2),
        ))
        .await
    {
        Err(StoreError::Timeout {
            operation: Operation::Commit,
            after,
            ..
        }) => assert_eq!(after, Duration::from_millis(300)),
        other => panic!("expected a commit timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    blocker.batch_execute("ROLLBACK").await.unwrap();
    store
        .commit(CommitAttempt::new(
            "t",
            "s",
            2,
            2,
            Headers::new(),
            increment(2),
        ))
        .await
        .expect("the store goes on after a timeout");
}

/// A server that accepts the connection and then never answers cannot hold `connect` forever.
#[tokio::test]
async fn a_server_that_never_answers_is_a_typed_connect_timeout() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let config = PostgresConfig::new(format!("postgres://aett:aett@127.0.0.1:{port}/aett"))
        .connect_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    match PostgresStore::connect(config).await {
        Err(StoreError::Timeout {
            operation: Operation::Connect,
            ..
        }) => {}
        other => panic!("expected a connect timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    drop(silent);
}

/// A connection on which a statement failed leaves the pool: the next operation runs on a new
/// server backend, never on the one that failed (whatever the operation; commits run their
/// follow-up queries through the same guard).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_whose_statement_failed_is_not_reused() {
    let name = format!("aett-discard-{}", uuid::Uuid::new_v4().simple());
    let separator = if url().contains('?') { '&' } else { '?' };
    let config = PostgresConfig::new(format!("{}{separator}application_name={name}", url()))
        .schema(unique_schema())
        .pool_size(1);
    let store = PostgresStore::connect(config).await.expect("connect");
    store.initialize().await.expect("initialize");
    let observer = raw_client().await;
    let backends = || async {
        observer
            .query(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1",
                &[&name],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<_, i32>(0))
            .collect::<Vec<_>>()
    };
    store.get_snapshot("t", "s", u64::MAX).await.expect("read");
    let before = backends().await;
    assert_eq!(before.len(), 1, "one pooled connection: {before:?}");

    // The snapshots table disappears under the store: its next statement fails.
    observer
        .batch_execute(&format!("DROP TABLE \"{}\".\"snapshots\"", store.schema()))
        .await
        .unwrap();
    match store.get_snapshot("t", "s", u64::MAX).await {
        Err(StoreError::Storage {
            operation: Operation::GetSnapshot,
            ..
        }) => {}
        other => panic!("expected the read to fail, got {other:?}"),
    }
    store
        .commit(CommitAttempt::new(
            "t",
            "s",
            1,
            1,
            Headers::new(),
            increment(1),
        ))
        .await
        .expect("the store goes on");
    let mut after = backends().await;
    for _ in 0..50 {
        if !after.contains(&before[0]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        after = backends().await;
    }
    assert!(
        !after.contains(&before[0]),
        "the failed connection (backend {}) is still in use: {after:?}",
        before[0]
    );
}

/// A store written by the first release (schema version 1) keeps working: `initialize`
/// migrates it to the current version, its commits read back, and deletion notices can be
/// written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_schema_version_1_is_migrated_by_initialize() {
    migrates_a_store_of_version(1).await;
}

/// A store written by the previous release (schema version 2: the index of stream heads,
/// commits without a stream type) keeps working the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_schema_version_2_is_migrated_by_initialize() {
    migrates_a_store_of_version(2).await;
}

async fn migrates_a_store_of_version(written: i32) {
    let schema = unique_schema();
    let client = raw_client().await;
    // The first release's schema, and a commit as it wrote it (keys: SHA-256 of the ids, the
    // stream's prefixed with the tenant id's length).
    client
        .batch_execute(&format!(
            r#"CREATE SCHEMA "{schema}";
               CREATE TABLE "{schema}".aett_schema_version (object text PRIMARY KEY, version integer NOT NULL);
               CREATE TABLE "{schema}"."commits" (
                   checkpoint bigint PRIMARY KEY, stream_key bytea NOT NULL, tenant_key bytea NOT NULL,
                   tenant_id text NOT NULL, stream_id text NOT NULL, stream_revision bigint NOT NULL,
                   items integer NOT NULL, commit_id uuid NOT NULL, commit_sequence bigint NOT NULL,
                   commit_stamp timestamptz NOT NULL, headers bytea NOT NULL, events bytea NOT NULL,
                   CONSTRAINT "commits_sequence" UNIQUE (stream_key, commit_sequence),
                   CONSTRAINT "commits_commit_id" UNIQUE (stream_key, commit_id));
               CREATE INDEX "commits_by_revision" ON "{schema}"."commits" (stream_key, stream_revision);
               CREATE INDEX "commits_by_tenant" ON "{schema}"."commits" (tenant_key, checkpoint);
               CREATE TABLE "{schema}"."snapshots" (
                   stream_key bytea NOT NULL, tenant_key bytea NOT NULL, tenant_id text NOT NULL,
                   stream_id text NOT NULL, stream_revision bigint NOT NULL, commit_sequence bigint NOT NULL,
                   payload bytea NOT NULL, headers bytea NOT NULL, PRIMARY KEY (stream_key, stream_revision));
               CREATE INDEX "snapshots_by_tenant" ON "{schema}"."snapshots" (tenant_key);
               INSERT INTO "{schema}".aett_schema_version VALUES ('{schema}.commits', 1);
               INSERT INTO "{schema}"."commits" VALUES (
                   pg_current_xact_id()::text::bigint, sha256(int8send(1) || 't'::bytea || 's'::bytea),
                   sha256('t'::bytea), 't', 's', 1, 1, gen_random_uuid(), 1, now(), convert_to('{{}}', 'UTF8'),
                   convert_to('[{{"topic":"test.counter.incremented","body":{{"by":5}}}}]', 'UTF8'));"#
        ))
        .await
        .expect("write a version 1 store");
    if written == 2 {
        // What version 2 added: the index of stream heads.
        client
            .batch_execute(&format!(
                r#"CREATE TABLE "{schema}"."commits_streams" (
                       stream_key bytea PRIMARY KEY, tenant_key bytea NOT NULL, tenant_id text NOT NULL,
                       stream_id text NOT NULL, head_revision bigint NOT NULL, head_sequence bigint NOT NULL,
                       snapshot_revision bigint);
                   CREATE INDEX "commits_streams_by_tenant" ON "{schema}"."commits_streams" (tenant_key, stream_id);
                   INSERT INTO "{schema}"."commits_streams"
                   SELECT stream_key, tenant_key, tenant_id, stream_id, stream_revision, commit_sequence, NULL
                   FROM "{schema}"."commits";
                   UPDATE "{schema}".aett_schema_version SET version = 2;"#
            ))
            .await
            .expect("write a version 2 store");
    }

    let store = PostgresStore::connect(PostgresConfig::new(url()).schema(&schema))
        .await
        .expect("connect");
    store
        .initialize()
        .await
        .expect("initialize migrates the old version");
    let version: i32 = client
        .query_one(
            &format!(r#"SELECT version FROM "{schema}".aett_schema_version"#),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, 3);
    aett_conformance::migration::check_migrated_store(&store).await;

    client
        .execute(
            &format!(r#"UPDATE "{schema}".aett_schema_version SET version = 4"#),
            &[],
        )
        .await
        .unwrap();
    match store.initialize().await {
        Err(StoreError::Configuration(message)) => assert!(message.contains("version 4")),
        other => panic!("expected version 4 to be refused, got {other:?}"),
    }
}

/// Writes one row per event it handles into its table, in the runner's transaction, and fails
/// after writing the event `fail_on`.
#[derive(aett::Projection)]
#[projection(name = "applied", events(Incremented))]
struct AppliedRows {
    table: String,
    fail_on: Option<i64>,
}

impl aett::Project<Incremented> for AppliedRows {
    async fn project(
        &mut self,
        event: Incremented,
        context: &aett::EventContext<'_>,
    ) -> Result<(), aett::BoxError> {
        let tx = context
            .transaction::<aett::backends::postgres::PostgresTransaction>()
            .ok_or("exactly once on PostgreSQL hands the handler a PostgresTransaction")?;
        tx.client()
            .execute(
                &format!("INSERT INTO {} (by) VALUES ($1)", self.table),
                &[&event.by],
            )
            .await?;
        if self.fail_on == Some(event.by) {
            return Err("failing after the read model's write, before the checkpoint".into());
        }
        Ok(())
    }
}

/// Exactly once: the read model lives in the store's database and is written in the
/// transaction that advances the checkpoint. Runs that fail after a handler's write and before
/// the checkpoint leave nothing behind; with eight writers appending meanwhile, every event
/// ends up applied exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_once_keeps_the_read_model_and_the_checkpoint_together() {
    let store = store(16).await;
    let table = format!("\"{}\".applied", store.schema());
    raw_client()
        .await
        .batch_execute(&format!("CREATE TABLE {table} (by bigint NOT NULL)"))
        .await
        .unwrap();
    let (runner_store, runner_table) = (store.clone(), table.clone());
    let round = move |fail_on: Option<i64>| {
        let (store, table) = (runner_store.clone(), runner_table.clone());
        async move {
            aett::ProjectionRunner::new(&store, AppliedRows { table, fail_on })
                .delivery(aett::Delivery::ExactlyOnce)
                .batch_size(16)
                .catch_up()
                .await
                .map(drop)
        }
    };
    let applied = || async {
        raw_client()
            .await
            .query(
                &format!("SELECT by, count(*) FROM {table} GROUP BY by"),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get::<_, i64>(0), row.get::<_, i64>(1) as u64))
            .collect()
    };
    aett_conformance::read_side::exactly_once::check(store.clone(), round, applied).await;
}

/// Sums the increments it handles.
#[derive(Default, aett::Projection)]
#[projection(name = "listening", events(Incremented))]
struct Listening {
    seen: Vec<i64>,
}

impl aett::Project<Incremented> for Listening {
    async fn project(
        &mut self,
        event: Incremented,
        _: &aett::EventContext<'_>,
    ) -> Result<(), aett::BoxError> {
        self.seen.push(event.by);
        Ok(())
    }
}

/// A runner on a store of its own (as in another process) is woken by `NOTIFY` when another
/// store commits. Idle for three seconds, the runner's polling has backed off to one look every
/// 2.5 s or so: only the notification can wake it within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_runner_elsewhere_is_woken_by_notify() {
    let schema = unique_schema();
    let writer = PostgresStore::connect(PostgresConfig::new(url()).schema(&schema))
        .await
        .expect("connect the writer");
    writer.initialize().await.unwrap();
    let follower = Arc::new(
        PostgresStore::connect(PostgresConfig::new(url()).schema(&schema))
            .await
            .expect("connect the follower"),
    );
    let mut running = aett::ProjectionRunner::new(&follower, Listening::default())
        .max_poll_interval(Duration::from_secs(60))
        .spawn();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let commit = writer
        .commit(CommitAttempt::new(
            "t",
            "s",
            1,
            1,
            Headers::new(),
            increment(7),
        ))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(1), running.wait_for(commit.checkpoint))
        .await
        .expect("the notification wakes the runner long before its next poll")
        .expect("the runner runs");
    let listening = running.stop().await.unwrap();
    assert_eq!(listening.seen, vec![7]);
}
