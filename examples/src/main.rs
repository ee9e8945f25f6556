//! aett's example application: a small bank on an event store.
//!
//! Run it with `cargo run -p aett-examples --bin bank`. It uses `sqlite://./bank.db` unless a
//! store URL is given as the first argument or in `AETT_STORE`; run it twice and the second run
//! continues from the file.

mod domain;
mod ledger;

use std::error::Error;
use std::process::ExitCode;
use std::sync::Arc;

use aett::{
    Aggregate, AggregateRepository, CommandDispatcher, CommitAttempt, CommitLog, ConflictDetector,
    Delivery, DispatchedCommand, EventMessage, EventStore, Headers, LogFilter, Projection,
    ProjectionRunner, RepositoryError, Saga, SagaRepository, SagaRunner, SnapshotPolicy,
    StoreError,
};
use futures::TryStreamExt;
use serde_json::json;

use domain::{
    dollars, money, Account, BankError, DepositFunds, Transfer, WithdrawFunds, Withdrawn,
};
use ledger::Ledger;

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
            account.open(owner, "USD")?;
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

    let carol = load_carol(&store, &accounts).await?;
    println!(
        "   carol's account was opened by the bank's first release, which stored AccountOpened at version 1, without a currency: it loads through the upcaster as a {} account owned by {}",
        carol.currency, carol.owner
    );

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

    println!("\n3. A transfer saga, run from the log, moves 30.00 from alice to bob");
    let transfer_id = format!("transfer-{}", alice.version());
    accounts
        .update("alice", by("teller"), 3, |account: &mut Account| {
            account.start_transfer(&transfer_id, "bob", dollars(30))
        })
        .await?;
    println!("   alice asked for {transfer_id}: a TransferStarted event on her account");
    // The saga runner reads the accounts' events from its checkpoint on, routes each to the
    // transfer it names, saves the saga, and hands its commands to the teller; the teller's
    // commits are read in turn, until the log holds nothing new.
    let teller = SagaRunner::<Transfer, _>::new(&store, Teller::new(accounts.clone()))
        .filter(LogFilter::new().tenant(TENANT).stream_type("account"))
        .catch_up()
        .await?;
    for line in teller.lines() {
        println!("{line}");
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

    // Carol's teller saves through a repository that snapshots on its own, every 3 events
    // past the newest snapshot, the instance it has just saved.
    let snapshotting = accounts
        .clone()
        .with_snapshot_policy(SnapshotPolicy::EveryEvents(3));
    let mut carol: Account = accounts.get("carol").await?;
    for _ in 0..3 {
        carol.deposit(dollars(1), None)?;
        snapshotting.save(&mut carol, by("teller")).await?;
    }
    let (carol, report) = accounts.get_with_report::<Account>("carol").await?;
    println!(
        "   three deposits to carol through a repository with a snapshot policy (every 3 events): loading her starts from its snapshot at revision {} and replays {} event(s): version {}, balance {}",
        report.snapshot_revision.unwrap_or_default(),
        report.events_replayed,
        carol.version(),
        money(carol.balance)
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
            let updated = accounts
                .update("alice", by("clerk-b"), 3, |account: &mut Account| {
                    account.withdraw(dollars(5), None)
                })
                .await?;
            println!(
                "   the command passed its balance check again and was saved as commit {}",
                updated.commit.expect("raised").commit_sequence
            );
        }
        other => {
            return Err(format!("expected a conflicting concurrency error, got {other:?}").into())
        }
    }

    println!("\n6. Where things stand");
    for id in ["alice", "bob", "carol"] {
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
    println!("\n8. A read model: the ledger, kept by a projection");
    let delivery = if url.starts_with("memory://") || url.starts_with("s3://") {
        // In the projection's memory, or (S3, which has no transactions) in objects that
        // remember what they took in, so an event delivered again is not posted twice.
        Delivery::AtLeastOnce
    } else {
        // The ledger is a table in the store's database, written in the transaction that
        // advances the projection's checkpoint.
        Delivery::ExactlyOnce
    };
    let resumed_from = store
        .load_checkpoint(<Ledger as Projection>::NAME)
        .await?
        .map_or(0, |position| position.checkpoint);
    #[allow(unused_mut)]
    let mut projection = Ledger::default();
    #[cfg(feature = "s3")]
    if url.starts_with("s3://") {
        projection.s3 = Some(
            ledger::s3::S3Ledger::open(&url)
                .await
                .map_err(|e| -> Box<dyn Error> { e })?,
        );
    }
    let ledger = ProjectionRunner::new(&store, projection)
        .filter(LogFilter::new().tenant(TENANT).stream_type("account"))
        .delivery(delivery)
        // A DynamoDB transaction writes each item once: one event a batch, as two events of
        // one account would post to one ledger item.
        .batch_size(if url.starts_with("dynamodb://") {
            1
        } else {
            100
        })
        .catch_up()
        .await?;
    if resumed_from == 0 {
        println!(
            "   the ledger started from the beginning of the log and posted {} entries",
            ledger.posted
        );
    } else {
        println!(
            "   the ledger resumed from checkpoint {resumed_from} and posted {} new entries",
            ledger.posted
        );
    }
    let balances = match ledger::read(&url)
        .await
        .map_err(|e| -> Box<dyn Error> { e })?
    {
        Some(balances) => balances,
        None => ledger.in_memory.clone(),
    };
    for (account, balance) in &balances {
        let cents = u64::try_from(*balance).unwrap_or_default();
        let aggregate: Account = accounts.get(account).await?;
        let agrees = if aggregate.balance == cents {
            "agrees"
        } else {
            "DISAGREES"
        };
        println!(
            "   ledger: {account} {} ({agrees} with the account)",
            money(cents)
        );
    }

    if url.starts_with("sqlite://") {
        println!("\nRun it again: the next run continues from the same file.");
    }
    Ok(())
}

/// Carol's account, as the bank's first release opened it: `AccountOpened` at version 1,
/// `{"owner": "Carol"}` with no currency and no version header. Written here as that release
/// wrote it (on a store that does not hold it yet), then loaded as any account is.
async fn load_carol(
    store: &Arc<dyn EventStore>,
    accounts: &AggregateRepository,
) -> Result<Account, Box<dyn Error>> {
    let carol: Account = accounts.get("carol").await?;
    if carol.is_open() {
        return Ok(carol);
    }
    let opened = EventMessage::from_raw(
        "bank.account_opened",
        serde_json::value::to_raw_value(&json!({"owner": "Carol"}))?,
    );
    let attempt = CommitAttempt::new(TENANT, "carol", 1, 1, by("release-1"), vec![opened])
        .with_stream_type("account");
    store.commit(attempt).await?;
    Ok(accounts.get("carol").await?)
}

/// Carries out the commands the transfer saga dispatches, on the accounts, passing the
/// command's causation on in the commit's headers; and keeps what it did, to print.
struct Teller {
    accounts: AggregateRepository,
    lines: std::sync::Mutex<Vec<String>>,
}

impl Teller {
    fn new(accounts: AggregateRepository) -> Self {
        Self {
            accounts,
            lines: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|lines| lines.clone())
            .unwrap_or_default()
    }

    fn say(&self, line: String) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(line);
        }
    }
}

impl CommandDispatcher for Teller {
    async fn dispatch(&self, command: &DispatchedCommand) -> Result<(), aett::BoxError> {
        self.say(format!("   saga dispatched {}", command.message.topic));
        // The account's commit continues the transfer's conversation and names its cause.
        let accounts = match command.correlation() {
            Some(correlation) => self.accounts.correlated(correlation),
            None => self.accounts.clone(),
        };
        let headers = by("saga");
        if let Some(WithdrawFunds {
            account,
            amount,
            transfer,
        }) = command.decode()?
        {
            accounts
                .update(&account, headers.clone(), 5, |a: &mut Account| {
                    a.withdraw(amount, Some(transfer.clone()))
                })
                .await
                .map_err(|e: aett::UpdateError<BankError>| Box::new(e) as aett::BoxError)?;
            self.say(format!("     {account} withdrew {}", money(amount)));
        } else if let Some(DepositFunds {
            account,
            amount,
            transfer,
        }) = command.decode()?
        {
            accounts
                .update(&account, headers.clone(), 5, |a: &mut Account| {
                    a.deposit(amount, Some(transfer.clone()))
                })
                .await
                .map_err(|e: aett::UpdateError<BankError>| Box::new(e) as aett::BoxError)?;
            self.say(format!("     {account} received {}", money(amount)));
        }
        Ok(())
    }
}

fn topics(events: &[EventMessage]) -> Vec<&str> {
    events.iter().map(|e| e.topic.as_str()).collect()
}
