//! The example application runs, tells its story, and continues from its file on a second run.

use std::process::Command;

fn run(url: &str, dir: &std::path::Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_bank"))
        .arg(url)
        .current_dir(dir)
        .output()
        .expect("start the example");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the example failed on {url}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn assert_story(out: &str) {
    for expected in [
        "2. Commands become events",
        "was refused before any event",
        "saga dispatched bank.command.withdraw",
        "saga dispatched bank.command.deposit",
        "withdrawn=true, completed=true",
        "starts from that snapshot and replays 1 event(s)",
        "stored AccountOpened at version 1, without a currency: it loads through the upcaster as a USD account owned by Carol",
        "through a repository with a snapshot policy (every 3 events): loading her starts from its snapshot at revision",
        "ledger: carol",
        "do not conflict with it: reload and retry",
        "conflicts (two withdrawals race on one balance)",
        "passed its balance check again",
        "7. A background snapshotter takes the snapshots that are due",
        "alice was 5+ events past its newest snapshot: snapshot taken at revision",
        "8. A read model: the ledger, kept by a projection",
        "ledger: alice",
        "ledger: bob",
    ] {
        assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
    }
    assert!(
        !out.contains("DISAGREES"),
        "the ledger must agree with the accounts:\n{out}"
    );
}

#[test]
fn runs_on_memory() {
    let dir = tempfile::tempdir().unwrap();
    let out = run("memory://", dir.path());
    assert_story(&out);
    assert!(out.contains("No accounts yet"));
}

#[test]
fn runs_on_the_default_sqlite_file_and_continues_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = run("sqlite://./bank.db", dir.path());
    assert_story(&first);
    assert!(
        first.contains("No accounts yet") && first.contains("alice: balance $106.00, version 10"),
        "{first}"
    );
    assert!(dir.path().join("bank.db").exists());
    let second = run("sqlite://./bank.db", dir.path());
    assert_story(&second);
    assert!(
        second.contains(
            "already exists (version 10, balance $106.00): continuing from an earlier run"
        ),
        "{second}"
    );
    assert!(
        second.contains("alice: balance $112.00, version 18"),
        "{second}"
    );
    assert!(
        second
            .contains("loading her starts from its snapshot at revision 6 and replays 1 event(s)"),
        "the policy snapshots carol again on the second run:\n{second}"
    );
    assert!(
        first.contains("the ledger started from the beginning of the log and posted 13 entries"),
        "{first}"
    );
    assert!(
        second.contains("the ledger resumed from checkpoint")
            && second.contains("posted 11 new entries")
            && second.contains("ledger: alice $112.00 (agrees with the account)"),
        "the ledger resumes on the second run and posts only what is new:\n{second}"
    );
}

#[cfg(feature = "postgres")]
#[test]
fn runs_on_postgres() {
    let url = std::env::var("AETT_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("AETT_POSTGRES_URL is not set: run scripts/test-all.sh, which starts a PostgreSQL server for the tests")
    });
    let dir = tempfile::tempdir().unwrap();
    let out = run(&url, dir.path());
    assert_story(&out);
}

/// Runs the example twice on `url`: the second run continues from the first, and the ledger,
/// kept exactly once in the store's database, resumes from its checkpoint.
#[cfg(any(feature = "mongodb", feature = "dynamodb", feature = "s3"))]
fn runs_twice_and_the_ledger_resumes(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let first = run(url, dir.path());
    assert_story(&first);
    assert!(
        first.contains("alice: balance $106.00, version 10"),
        "{first}"
    );
    let second = run(url, dir.path());
    assert_story(&second);
    assert!(
        second.contains("the ledger resumed from checkpoint")
            && second.contains("posted 11 new entries")
            && second.contains("ledger: alice $112.00 (agrees with the account)"),
        "the ledger resumes on the second run and posts only what is new:\n{second}"
    );
}

#[cfg(feature = "mongodb")]
#[test]
fn runs_on_mongodb_and_continues_after_a_restart() {
    let url = std::env::var("AETT_MONGODB_URL").unwrap_or_else(|_| {
        panic!("AETT_MONGODB_URL is not set: run scripts/test-all.sh, which starts a MongoDB-compatible server for the tests")
    });
    // A database of its own: the URL's path names it.
    let (base, options) = url.split_once('?').unwrap_or((&url, ""));
    let (scheme, rest) = base.split_once("://").expect("a mongodb:// URL");
    let hosts = rest.split('/').next().unwrap_or(rest);
    let database = format!("aett_bank_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{scheme}://{hosts}/{database}?{options}");
    runs_twice_and_the_ledger_resumes(&url);
}

#[cfg(feature = "dynamodb")]
#[test]
fn runs_on_dynamodb_and_continues_after_a_restart() {
    let endpoint = std::env::var("AETT_DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
        panic!("AETT_DYNAMODB_ENDPOINT is not set: run scripts/test-all.sh, which starts a DynamoDB-compatible server for the tests")
    });
    // A table of its own; credentials come from the environment the test command sets.
    let table = format!("aett_bank_{}", uuid::Uuid::new_v4().simple());
    let endpoint = endpoint.replace(':', "%3A").replace('/', "%2F");
    let url = format!("dynamodb://{table}?region=us-east-1&endpoint={endpoint}");
    runs_twice_and_the_ledger_resumes(&url);
}

#[cfg(feature = "s3")]
#[test]
fn runs_on_s3_and_continues_after_a_restart() {
    let endpoint = std::env::var("AETT_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!("AETT_S3_ENDPOINT is not set: run scripts/test-all.sh, which starts an S3-compatible server for the tests")
    });
    // A bucket of its own (created by the store); credentials come from the environment the
    // test command sets.
    let bucket = format!("aett-bank-{}", uuid::Uuid::new_v4().simple());
    let endpoint = endpoint.replace(':', "%3A").replace('/', "%2F");
    let url = format!("s3://{bucket}/bank?region=us-east-1&endpoint={endpoint}");
    runs_twice_and_the_ledger_resumes(&url);
}
