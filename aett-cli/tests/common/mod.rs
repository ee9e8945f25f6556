//! Running the `aett` binary and building stores for it to look at.

#![allow(dead_code)]

use std::process::{Command, Output};
use std::sync::Arc;

use aett::{CommitAttempt, EventMessage, EventStore, Headers, Snapshot};
use serde_json::value::RawValue;
use serde_json::Value;

/// Runs `aett` with `args` and waits for it.
pub fn aett(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aett"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the aett binary runs")
}

/// Runs `aett`, requires success, and returns its stdout.
pub fn success(args: &[&str]) -> String {
    let output = aett(args);
    assert!(
        output.status.success(),
        "`aett {}` failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Runs `aett`, requires exit code `code`, and returns its stderr.
pub fn failure(args: &[&str], code: i32) -> String {
    let output = aett(args);
    assert_eq!(
        output.status.code(),
        Some(code),
        "`aett {}`: stdout {}, stderr {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stderr).expect("UTF-8 errors")
}

/// Every line of `text` as JSON.
pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("`{line}`: {e}")))
        .collect()
}

/// The stream type of stream number `n`.
pub fn stream_type(n: usize) -> &'static str {
    if n.is_multiple_of(2) {
        "Account"
    } else {
        "Order"
    }
}

/// Writes `commits` commits of `events` events to each of `streams` streams of each tenant,
/// interleaved across streams as an application would; every tenant's stream 0 gets a snapshot.
pub async fn fill(
    store: &Arc<dyn EventStore>,
    tenants: &[&str],
    streams: usize,
    commits: usize,
    events: usize,
) {
    for c in 1..=commits {
        for tenant in tenants {
            for s in 0..streams {
                let messages = (0..events)
                    .map(|e| {
                        let topic = if c == 1 && e == 0 {
                            "Opened"
                        } else {
                            "Deposited"
                        };
                        let body = format!(r#"{{"amount":{e},"note":"é \"{c}\""}}"#);
                        EventMessage::from_raw(topic, RawValue::from_string(body).unwrap())
                            .with_header("n", e as u64)
                    })
                    .collect();
                let mut headers = Headers::new();
                headers.insert("by".into(), Value::from(format!("writer {c}")));
                let attempt = CommitAttempt::new(
                    *tenant,
                    format!("stream-{s}"),
                    (c * events) as u64,
                    c as u64,
                    headers,
                    messages,
                )
                .with_stream_type(stream_type(s));
                store.commit(attempt).await.expect("a commit");
            }
        }
    }
    for tenant in tenants {
        for revision in [events as u64, (commits * events) as u64] {
            let snapshot = Snapshot {
                tenant_id: tenant.to_string(),
                stream_id: "stream-0".into(),
                stream_revision: revision,
                commit_sequence: revision / events as u64,
                payload: RawValue::from_string(format!(r#"{{"balance":{revision}}}"#)).unwrap(),
                headers: Headers::new(),
            };
            store.add_snapshot(snapshot).await.expect("a snapshot");
        }
    }
}

/// A PostgreSQL URL whose tables live in a schema of their own.
pub fn postgres_url() -> String {
    format!(
        "{}?schema={}",
        aett_conformance::postgres::url(),
        aett_conformance::postgres::unique_schema()
    )
}

/// A MongoDB URL of a database of its own.
pub fn mongodb_url() -> String {
    aett_conformance::mongodb::url_with_database(&aett_conformance::mongodb::unique_database())
}

/// A DynamoDB URL of a table of its own, on the test server.
pub fn dynamodb_url() -> String {
    format!(
        "dynamodb://{}?endpoint={}&region=us-east-1",
        aett_conformance::dynamodb::unique_table(),
        aett_conformance::dynamodb::endpoint()
    )
}

/// An S3 URL of a bucket of its own, on the test server.
pub fn s3_url() -> String {
    format!(
        "s3://{}/cli?endpoint={}&region=us-east-1",
        aett_conformance::s3::unique_bucket(),
        aett_conformance::s3::endpoint()
    )
}

/// A SQLite URL in `dir`.
pub fn sqlite_url(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite://{}", dir.path().join(name).display())
}
