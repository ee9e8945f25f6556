//! The `aett` binary, end to end, on real stores of every backend.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aett::{CommitAttempt, EventMessage, EventStore, Headers, LogEntry};
use futures::TryStreamExt;
use serde_json::value::RawValue;
use serde_json::Value;

use common::*;

/// Every commit of a store's log: (tenant, stream, id, sequence, event count), in log order.
async fn log_of(store: &Arc<dyn EventStore>) -> Vec<(String, String, String, u64, usize)> {
    store
        .get_from(0)
        .try_filter_map(|entry| async move {
            Ok(match entry {
                LogEntry::Commit(c) => Some((
                    c.tenant_id,
                    c.stream_id,
                    c.commit_id.to_string(),
                    c.commit_sequence,
                    c.events.len(),
                )),
                _ => None,
            })
        })
        .try_collect()
        .await
        .expect("the log")
}

#[tokio::test]
async fn info_streams_show_and_tail_read_a_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir, "shop.db");
    let store = aett::connect(&url).await.unwrap();
    fill(&store, &["north", "south"], 3, 4, 2).await;
    store.delete_stream("south", "stream-2").await.unwrap();

    let info = json_lines(&success(&["info", &url, "--json"])).remove(0);
    assert_eq!(info["tenants"], 2);
    assert_eq!(info["streams"], 5);
    assert_eq!(info["commits"], 20);
    assert_eq!(info["events"], 40);
    assert_eq!(info["snapshots"], 4);
    assert_eq!(info["streams_with_snapshots"], 2);
    assert_eq!(info["deleted_streams"], 1);
    assert_eq!(info["first_checkpoint"], 1);
    assert_eq!(info["last_checkpoint"], 25);
    assert_eq!(info["schema_version"], 3);
    let text = success(&["info", &url, "--tenant", "north"]);
    assert!(text.contains("streams          3\n"), "{text}");
    assert!(text.contains("events           24\n"), "{text}");

    let streams = json_lines(&success(&["streams", &url, "--json", "--type", "Order"]));
    let names: Vec<_> = streams
        .iter()
        .map(|s| {
            format!(
                "{}/{}",
                s["tenant_id"].as_str().unwrap(),
                s["stream_id"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names, ["north/stream-1", "south/stream-1"]);
    assert_eq!(streams[0]["head_revision"], 8);
    assert_eq!(streams[0]["commits"], 4);
    let table = success(&["streams", &url, "--tenant", "south"]);
    assert_eq!(
        table.lines().count(),
        3,
        "a header and two streams: {table}"
    );

    let shown = json_lines(&success(&[
        "show", &url, "north", "stream-1", "--json", "--from", "3", "--to", "6",
    ]));
    let sequences: Vec<_> = shown
        .iter()
        .map(|c| c["commit_sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, [2, 3], "the commits holding revisions 3 to 6");
    assert_eq!(shown[0]["headers"]["by"], "writer 2");
    assert_eq!(
        shown[0]["events"][1]["body"],
        serde_json::json!({"amount": 1, "note": "é \"2\""})
    );
    assert_eq!(shown[0]["stream_type"], "Order");
    let text = success(&["show", &url, "north", "stream-1"]);
    assert!(text.contains("commit 4  revisions 7..8"), "{text}");
    assert!(
        text.contains(r#"Deposited  {"amount":1,"note":"é \"4\""}  headers {"n":1}"#),
        "{text}"
    );

    let all = json_lines(&success(&["tail", &url]));
    assert_eq!(
        all.len(),
        21,
        "20 commits and the notice (the deleted commits are gone)"
    );
    assert_eq!(
        all.iter().filter(|e| e["kind"] == "stream_deleted").count(),
        1
    );
    let checkpoints: Vec<u64> = all
        .iter()
        .map(|e| e["checkpoint"].as_u64().unwrap())
        .collect();
    assert!(
        checkpoints.windows(2).all(|w| w[0] < w[1]),
        "in checkpoint order"
    );
    let later = json_lines(&success(&[
        "tail", &url, "--from", "20", "--tenant", "north",
    ]));
    assert!(later
        .iter()
        .all(|e| e["tenant_id"] == "north" && e["checkpoint"].as_u64().unwrap() > 20));
    let opened = json_lines(&success(&[
        "tail", &url, "--topic", "Opened", "--type", "Account",
    ]));
    let commits = opened.iter().filter(|e| e["kind"] == "commit").count();
    assert_eq!(
        commits, 3,
        "first commits of the Account streams still stored: {opened:?}"
    );
    // A deletion notice has no events: a topic filter lets it through (the read side's rule).
    assert_eq!(opened.len(), 4, "{opened:?}");
}

#[tokio::test]
async fn a_failure_is_one_line_on_stderr_and_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = sqlite_url(&dir, "missing.db");
    let cases = [
        (vec!["info", missing.as_str()], "no such file"),
        (vec!["streams", "nosuch://x"], "unknown store URL scheme"),
        (
            vec!["info", "postgres://aett:hunter2secret@127.0.0.1:1/aett"],
            "postgres://aett:***@127.0.0.1:1/aett",
        ),
        (vec!["copy", missing.as_str(), "memory://"], "no such file"),
        (
            vec!["import-python", "mysql://py", "memory://"],
            "a Python aett store is sqlite://PATH or postgres://",
        ),
    ];
    for (args, expected) in cases {
        let stderr = failure(&args, 1);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(
            stderr.contains(expected),
            "`{}` should say `{expected}`: {stderr}",
            args.join(" ")
        );
        assert!(
            !stderr.contains("hunter2secret"),
            "a password was printed: {stderr}"
        );
    }
    // Nothing was created at the mistyped path.
    assert!(!dir.path().join("missing.db").exists());
    // Usage errors are exit code 2.
    failure(&["info"], 2);
    failure(
        &["show", "memory://", "t", "s", "--from", "9", "--to", "1"],
        2,
    );
    failure(&["frobnicate"], 2);
    // Every command has its help.
    for command in ["info", "streams", "show", "tail", "copy", "import-python"] {
        let help = success(&[command, "--help"]);
        assert!(help.contains("Usage: aett"), "{help}");
    }
}

#[tokio::test]
async fn tail_follow_prints_a_commit_written_after_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir, "live.db");
    let store = aett::connect(&url).await.unwrap();
    fill(&store, &["t"], 1, 1, 1).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_aett"))
        .args(["tail", &url, "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let first = received
        .recv_timeout(Duration::from_secs(30))
        .expect("the existing commit");
    assert!(first.contains(r#""stream_id":"stream-0""#), "{first}");
    // Written by another process's store after the follower printed what there was.
    let body = RawValue::from_string(r#"{"late":true}"#.into()).unwrap();
    let attempt = CommitAttempt::new(
        "t",
        "late",
        1,
        1,
        Headers::new(),
        vec![EventMessage::from_raw("Late", body)],
    );
    let written = aett::connect(&url)
        .await
        .unwrap()
        .commit(attempt)
        .await
        .unwrap();
    let line = received
        .recv_timeout(Duration::from_secs(30))
        .expect("the new commit, followed");
    child.kill().unwrap();
    child.wait().unwrap();
    let entry: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(entry["commit_id"], written.commit_id.to_string());
    assert_eq!(entry["events"][0]["body"]["late"], true);
}

/// The issue's scenario: 100,000 events across tenants, copied from SQLite to PostgreSQL, the
/// copy killed part way, run again, and verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_100k_events_from_sqlite_to_postgres_survives_being_killed() {
    let dir = tempfile::tempdir().unwrap();
    let from = sqlite_url(&dir, "big.db");
    let source = aett::connect(&from).await.unwrap();
    // 4 tenants x 25 streams x 100 commits x 10 events: 100,000 events in 10,000 commits.
    fill(&source, &["north", "south", "west", "east"], 25, 100, 10).await;
    let wanted = log_of(&source).await;
    assert_eq!(wanted.iter().map(|c| c.4).sum::<usize>(), 100_000);

    let to = postgres_url();
    let target = aett::connect(&to).await.unwrap();
    let mut copy = Command::new(env!("CARGO_BIN_EXE_aett"))
        .args(["copy", &from, &to])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let copied = log_of(&target).await.len();
        if copied >= 2_000 {
            break;
        }
        assert!(
            copy.try_wait().unwrap().is_none(),
            "the copy ended before it was killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the copy does not progress"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    copy.kill().unwrap();
    copy.wait().unwrap();
    let part = log_of(&target).await.len();
    assert!(
        part < wanted.len(),
        "killed part way ({part} commits copied)"
    );

    let report = json_lines(&success(&["copy", &from, &to, "--json"])).remove(0);
    assert_eq!(report["differences"], serde_json::json!([]));
    assert_eq!(report["commits"], 10_000);
    assert_eq!(report["events"], 100_000);
    assert_eq!(
        report["present_commits"].as_u64().unwrap() + report["written_commits"].as_u64().unwrap(),
        10_000
    );
    assert!(report["present_commits"].as_u64().unwrap() >= part as u64);
    assert_eq!(report["snapshots"], 8);
    // Nothing doubled, nothing lost, the order kept.
    assert_eq!(log_of(&target).await, wanted);
    // A third run finds everything there.
    let again = json_lines(&success(&["copy", &from, &to, "--json"])).remove(0);
    assert_eq!(again["written_commits"], 0);
    assert_eq!(again["present_commits"], 10_000);
}

/// `info`'s figures without those that differ between copies of one store.
fn without_varying(mut info: Value) -> Value {
    for varying in [
        "store",
        "backend",
        "schema_version",
        "first_checkpoint",
        "last_checkpoint",
    ] {
        info.as_object_mut().unwrap().remove(varying);
    }
    info
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_copies_to_and_from_every_backend() {
    let dir = tempfile::tempdir().unwrap();
    let from = sqlite_url(&dir, "origin.db");
    let source = aett::connect(&from).await.unwrap();
    fill(&source, &["a", "b"], 2, 3, 2).await;
    let wanted = log_of(&source).await;
    let expected_info = without_varying(json_lines(&success(&["info", &from, "--json"])).remove(0));
    let targets = [
        (postgres_url(), Value::from(3)),
        (mongodb_url(), Value::from(1)),
        (dynamodb_url(), Value::from(1)),
        (s3_url(), Value::Null),
    ];
    for (i, (to, schema_version)) in targets.into_iter().enumerate() {
        let report = json_lines(&success(&["copy", &from, &to, "--json"])).remove(0);
        assert_eq!(report["written_commits"], 12, "{to}: {report}");
        assert_eq!(report["differences"], serde_json::json!([]), "{to}");
        let info = json_lines(&success(&["info", &to, "--json"])).remove(0);
        assert_eq!(info["schema_version"], schema_version, "{to}");
        assert_eq!(without_varying(info), expected_info, "{to}");
        let without_checkpoints = |text: String| {
            json_lines(&text)
                .into_iter()
                .map(|mut commit| {
                    commit.as_object_mut().unwrap().remove("checkpoint");
                    commit
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            without_checkpoints(success(&["show", &to, "b", "stream-1", "--json"])),
            without_checkpoints(success(&["show", &from, "b", "stream-1", "--json"])),
            "{to}"
        );
        // And back: the round trip holds the same commits in the same order.
        let back = sqlite_url(&dir, &format!("back-{i}.db"));
        success(&["copy", &to, &back]);
        assert_eq!(
            log_of(&aett::connect(&back).await.unwrap()).await,
            wanted,
            "{to}"
        );
    }
}

#[tokio::test]
async fn a_copy_that_cannot_be_completed_exits_with_1() {
    let dir = tempfile::tempdir().unwrap();
    let from = sqlite_url(&dir, "from.db");
    let source = aett::connect(&from).await.unwrap();
    fill(&source, &["t"], 2, 3, 1).await;
    // A truncated stream starts past sequence 1: no store can be given it in sequence.
    source.truncate_stream("t", "stream-0", 3).await.unwrap();
    let to = sqlite_url(&dir, "to.db");
    let output = aett(&["copy", &from, &to]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("verification failed") && stderr.contains("truncated"),
        "{stderr}"
    );
    // A target that holds other commits under the same names is refused, typed.
    let other = sqlite_url(&dir, "other.db");
    let target = aett::connect(&other).await.unwrap();
    fill(&target, &["t"], 2, 1, 1).await;
    let stderr = failure(&["copy", &sqlite_url(&dir, "to.db"), &other], 1);
    assert!(
        stderr.contains("verification failed") || stderr.contains("cannot write commit"),
        "{stderr}"
    );
}

/// Runs the Python aett's writer script; returns the commits it wrote.
fn write_python_store(args: &[&str]) -> Vec<Value> {
    let python = std::env::var("AETT_PYTHON").unwrap_or_else(|_| {
        panic!(
            "AETT_PYTHON is not set, so there is no Python aett to write a store with. Run \
             scripts/test-all.sh, or set AETT_PYTHON=$(scripts/python-aett-env.sh)"
        )
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/write_store.py");
    let output = Command::new(&python)
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the Python aett failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Imports a Python store and checks every commit against what Python wrote.
async fn import_and_compare(from: &str, written: &[Value], dir: &tempfile::TempDir) {
    let to = sqlite_url(dir, "imported.db");
    let report = json_lines(&success(&["import-python", from, &to, "--json"])).remove(0);
    assert_eq!(report["differences"], serde_json::json!([]));
    assert_eq!(
        report["written_commits"].as_u64().unwrap() as usize,
        written.len()
    );
    assert_eq!(report["snapshots"], 2);
    for wanted in written {
        let tenant = wanted["tenant_id"].as_str().unwrap();
        let stream = wanted["stream_id"].as_str().unwrap();
        let sequence = wanted["commit_sequence"].as_u64().unwrap();
        let commits = json_lines(&success(&["show", &to, tenant, stream, "--json"]));
        let found = commits
            .iter()
            .find(|c| c["commit_sequence"] == sequence)
            .unwrap_or_else(|| panic!("{tenant}/{stream} commit {sequence} was not imported"));
        assert_eq!(found["commit_id"], wanted["commit_id"]);
        assert_eq!(found["stream_revision"], wanted["stream_revision"]);
        let stamp =
            chrono::DateTime::parse_from_rfc3339(wanted["commit_stamp"].as_str().unwrap()).unwrap();
        let imported =
            chrono::DateTime::parse_from_rfc3339(found["commit_stamp"].as_str().unwrap()).unwrap();
        assert_eq!(imported, stamp, "{tenant}/{stream} commit {sequence}");
        let events = found["events"].as_array().unwrap();
        let wanted_events = wanted["events"].as_array().unwrap();
        assert_eq!(events.len(), wanted_events.len());
        for (event, wanted) in events.iter().zip(wanted_events) {
            assert_eq!(event["topic"], wanted["topic"]);
            assert_eq!(event["body"], wanted["body"]);
        }
    }
    // The snapshots hold the memento, no longer wrapped in a JSON string.
    let store = aett::connect(&to).await.unwrap();
    let snapshot = store
        .get_snapshot("north", "account-0", u64::MAX >> 1)
        .await
        .unwrap()
        .expect("a snapshot");
    let memento: Value = serde_json::from_str(snapshot.payload.get()).unwrap();
    assert_eq!(memento["payload"]["balance"], 63);
    assert_eq!(memento["version"], 7);
    assert_eq!(snapshot.stream_revision, 7);
    // Importing again writes nothing twice.
    let again = json_lines(&success(&["import-python", from, &to, "--json"])).remove(0);
    assert_eq!(again["written_commits"], 0);
    assert_eq!(
        again["present_commits"].as_u64().unwrap() as usize,
        written.len()
    );
}

#[tokio::test]
async fn a_store_written_by_the_python_aett_on_sqlite_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("python.db");
    let written = write_python_store(&["sqlite", path.to_str().unwrap()]);
    assert_eq!(written.len(), 24);
    import_and_compare(&format!("sqlite://{}", path.display()), &written, &dir).await;
}

#[tokio::test]
async fn a_store_written_by_the_python_aett_on_postgres_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    // The Python library names its indexes the same for every table, so each store needs a
    // schema of its own.
    let schema = format!("python_{}", uuid::Uuid::new_v4().simple());
    let client = aett_conformance::postgres::raw_client().await;
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let url = aett_conformance::postgres::url();
    let python_url = format!("{url}?options=-csearch_path%3D{schema}");
    let written = write_python_store(&["postgres", &python_url, "commits", "snapshots"]);
    assert_eq!(written.len(), 24);
    let from = format!("{url}?commits={schema}.commits&snapshots={schema}.snapshots");
    import_and_compare(&from, &written, &dir).await;
}
