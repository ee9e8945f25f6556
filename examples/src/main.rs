//! aett's example application: a small bank on an event store.
//!
//! Run it with `cargo run -p aett-examples --bin bank`. It uses `sqlite://./bank.db` unless a
//! store URL is given as the first argument or in `AETT_STORE`; run it twice and the second run
//! continues from the file.

mod domain;

use std::collections::VecDeque;
use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;

use aett::{
    Aggregate, AggregateRepository, CommitLog, ConflictDetector, EventMessage, EventStore, Headers,
    RepositoryError, Saga, SagaRepository, StoreError,
};
use futures::TryStreamExt;
use serde_json::json;

use domain::{
    dollars, money, Account, BankError, DepositFunds, Transfer, TransferStarted, WithdrawFunds,
    Withdrawn,
};

const TENANT: &str = "bank";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

fn by(user: &str) -> Headers {
    Headers::from([("user".to_owned(), json!(user))])
}

/// How far past its newest snapshot an account may get before the snapshotter takes another.
const SNAPSHOT_EVERY: u64 = 5;

/// One pass of a background snapshotter: the store lists the streams whose head is
/// `SNAPSHOT_EVERY` or more revisions past their newest snapshot (from its index of stream
/// heads, not by reading commits), and each account among them gets a snapshot at its head. A
/// service would run this on a timer.
async fn snapshot_due_accounts(
    store: &Arc<dyn EventStore>,
    accounts: &AggregateRepository,
) -> Result<Vec<(String, u64)>, Box<dyn Error>> {
    let mut due = store.streams_to_snapshot(TENANT, SNAPSHOT_EVERY);
    let mut taken = Vec::new();
    while let Some(stream) = due.try_next().await? {
        // Transfers are sagas: a saga is its history and takes no snapshot.
        if stream.stream_id.starts_with("transfer-") {
            continue;
        }
        let snapshot = accounts
            .snapshot::<Account>(&stream.stream_id, stream.head_revision, by("snapshotter"))
            .await?;
        taken.push((stream.stream_id, snapshot.stream_revision));
    }
    Ok(taken)
}

async fn run() -> Result<(), Box<dyn Error>> {
    let url = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("AETT_STORE").ok())
        .unwrap_or_else(|| "sqlite://./bank.db".to_owned());

    // Two withdrawals from one account conflict: each was checked against a balance the other
    // changed. Anything else that races (a deposit and a withdrawal) is safe to retry.
    let mut detector = ConflictDetector::new();
    detector.register(|_: &Withdrawn, _: &Withdrawn| true);
    let store = aett::connect_with(&url, Arc::new(detector)).await?;
    let accounts = AggregateRepository::new(TENANT, &store);
    let transfers = SagaRepository::new(TENANT, &store);
    // Reporting reads the log through a handle that cannot purge or drop anything.
    let log: Arc<dyn CommitLog> = store.clone();

    println!("aett bank example, store: {url}\n");

    println!("1. Starting up");
    let alice: Account = accounts.get("alice").await?;
    if alice.is_open() {
        println!(
            "   alice's account already exists (version {}, balance {}): continuing from an earlier run.",
            alice.version(),
            money(alice.balance)
        );
    } else {
        println!("   No accounts yet: opening alice's and bob's.");
        for (id, owner, initial) in [
            ("alice", "Alice", dollars(100)),
            ("bob", "Bob", dollars(50)),
        ] {
            let mut account: Account = accounts.get(id).await?;
            account.open(owner)?;
            account.deposit(initial, None)?;
            let commit = accounts
                .save(&mut account, by("setup"))
                .await?
                .expect("events were raised");
            println!(
                "   {id}: commit {} holds {:?}",
                commit.commit_sequence,
                topics(&commit.events)
            );
        }
    }

    println!("\n2. Commands become events");
    let mut alice: Account = accounts.get("alice").await?;
    alice.deposit(dollars(40), None)?;
    let commit = accounts
        .save(&mut alice, by("teller"))
        .await?
        .expect("a deposit was raised");
    println!(
        "   deposit($40.00) on alice raised {:?}: commit {}, revision {}, balance now {}",
        topics(&commit.events),
        commit.commit_sequence,
        commit.stream_revision,
        money(alice.balance)
    );
    match alice.withdraw(dollars(1_000_000), None) {
        Err(refused) => {
            println!("   withdraw($1,000,000.00) was refused before any event: {refused}")
        }
        Ok(()) => unreachable!("alice is not that rich"),
    }

    println!("\n3. A transfer saga moves 30.00 from alice to bob");
    let transfer_id = format!("transfer-{}", alice.version());
    let mut transfer: Transfer = transfers.get(&transfer_id).await?;
    transfer.handle(TransferStarted {
        from: "alice".to_owned(),
        to: "bob".to_owned(),
        amount: dollars(30),
    });
    let mut commands: VecDeque<EventMessage> =
        transfers.save(&mut transfer, by("saga")).await?.into();
    while let Some(command) = commands.pop_front() {
        println!("   saga dispatched {}", command.topic);
        if let Some(WithdrawFunds {
            account,
            amount,
            transfer: id,
        }) = command.decode_event()?
        {
            let event = execute(&accounts, &account, |a| {
                a.withdraw(amount, Some(id.clone()))
            })
            .await?;
            println!("     {account} withdrew {}", money(amount));
            transfer.handle(event.decode_event::<Withdrawn>()?.expect("a withdrawal"));
        } else if let Some(DepositFunds {
            account,
            amount,
            transfer: id,
        }) = command.decode_event()?
        {
            let event =
                execute(&accounts, &account, |a| a.deposit(amount, Some(id.clone()))).await?;
            println!("     {account} received {}", money(amount));
            transfer.handle(
                event
                    .decode_event::<domain::Deposited>()?
                    .expect("a deposit"),
            );
        }
        commands.extend(transfers.save(&mut transfer, by("saga")).await?);
    }
    let transfer: Transfer = transfers.get(&transfer_id).await?;
    println!(
        "   {transfer_id} reloaded from its {} events: withdrawn={}, completed={}",
        transfer.version(),
        transfer.withdrawn,
        transfer.completed
    );

    println!("\n4. Snapshots");
    let snapshot = accounts
        .snapshot::<Account>("alice", u64::MAX, by("nightly"))
        .await?;
    println!(
        "   snapshot of alice taken at revision {}: {}",
        snapshot.stream_revision, snapshot.payload
    );
    let mut alice: Account = accounts.get("alice").await?;
    alice.deposit(dollars(1), None)?;
    accounts.save(&mut alice, by("teller")).await?;
    let reloaded: Account = accounts.get("alice").await?;
    println!(
        "   after one more deposit, loading alice starts from that snapshot and replays {} event(s): version {}, balance {}",
        reloaded.version() - snapshot.stream_revision,
        reloaded.version(),
        money(reloaded.balance)
    );

    println!("\n5. Two clerks change alice's account at the same time");
    let mut clerk_a: Account = accounts.get("alice").await?;
    let mut clerk_b: Account = accounts.get("alice").await?;
    clerk_a.deposit(dollars(10), None)?;
    accounts.save(&mut clerk_a, by("clerk-a")).await?;
    println!("   clerk A deposited 10.00 first");
    clerk_b.withdraw(dollars(5), None)?;
    match accounts.save(&mut clerk_b, by("clerk-b")).await {
        Err(RepositoryError::Store(StoreError::NonConflictingCommit { committed, .. })) => {
            println!(
                "   clerk B's withdrawal was overtaken by {} commit(s) that do not conflict with it: reload and retry",
                committed.len()
            );
            let mut retry: Account = accounts.get("alice").await?;
            retry.withdraw(dollars(5), None)?;
            let commit = accounts
                .save(&mut retry, by("clerk-b"))
                .await?
                .expect("raised");
            println!(
                "   retried as commit {}: balance {}",
                commit.commit_sequence,
                money(retry.balance)
            );
        }
        other => {
            return Err(
                format!("expected a non-conflicting concurrency error, got {other:?}").into(),
            )
        }
    }

    let mut clerk_a: Account = accounts.get("alice").await?;
    let mut clerk_b: Account = accounts.get("alice").await?;
    clerk_a.withdraw(dollars(5), None)?;
    accounts.save(&mut clerk_a, by("clerk-a")).await?;
    println!("   clerk A withdrew 5.00 first");
    clerk_b.withdraw(dollars(5), None)?;
    match accounts.save(&mut clerk_b, by("clerk-b")).await {
        Err(RepositoryError::Store(StoreError::ConflictingCommit { .. })) => {
            println!("   clerk B's withdrawal conflicts (two withdrawals race on one balance): rerun the command on fresh state");
            let ((), commit) = accounts
                .update("alice", by("clerk-b"), 3, |account: &mut Account| {
                    account.withdraw(dollars(5), None)
                })
                .await?;
            println!(
                "   the command passed its balance check again and was saved as commit {}",
                commit.expect("raised").commit_sequence
            );
        }
        other => {
            return Err(format!("expected a conflicting concurrency error, got {other:?}").into())
        }
    }

    println!("\n6. Where things stand");
    for id in ["alice", "bob"] {
        let account: Account = accounts.get(id).await?;
        println!(
            "   {id}: balance {}, version {}",
            money(account.balance),
            account.version()
        );
    }
    let (commits, events) = log
        .get_from(0)
        .try_fold((0, 0), |(c, e), entry| async move {
            // A deleted stream's notice would hold no events; this example deletes none.
            let events = entry.as_commit().map_or(0, |commit| commit.events.len());
            Ok((c + 1, e + events))
        })
        .await?;
    println!("   the store holds {commits} commits with {events} events, in checkpoint order");

    println!("\n7. A background snapshotter takes the snapshots that are due");
    let taken = snapshot_due_accounts(&store, &accounts).await?;
    if taken.is_empty() {
        println!("   no account is {SNAPSHOT_EVERY} or more events past its newest snapshot");
    }
    for (id, revision) in taken {
        println!("   {id} was {SNAPSHOT_EVERY}+ events past its newest snapshot: snapshot taken at revision {revision}");
    }
    if url.starts_with("sqlite://") {
        println!("\nRun it again: the next run continues from the same file.");
    }
    Ok(())
}

/// Runs a command on an account, reloading and retrying on a concurrency error, and returns the
/// one event it raised.
async fn execute(
    accounts: &AggregateRepository,
    id: &str,
    mut command: impl FnMut(&mut Account) -> Result<(), BankError>,
) -> Result<EventMessage, BankError> {
    let ((), commit) = accounts
        .update(id, by("saga"), 5, |account: &mut Account| command(account))
        .await?;
    let commit = commit.expect("the command raised an event");
    Ok(commit.events.into_iter().next().expect("one event"))
}

fn topics(events: &[EventMessage]) -> Vec<&str> {
    events.iter().map(|e| e.topic.as_str()).collect()
}
