//! The benchmark still runs end to end (at tiny sizes: this measures nothing).

use std::process::Command;

#[test]
fn the_benchmark_runs_and_writes_its_table_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let mut backends = vec!["memory", "sqlite"];
    if cfg!(feature = "postgres") {
        assert!(
            std::env::var("AETT_POSTGRES_URL").is_ok(),
            "AETT_POSTGRES_URL is not set: run scripts/test-all.sh, which starts a PostgreSQL server for the tests"
        );
        backends.push("postgres");
    }
    if cfg!(feature = "mongodb") {
        assert!(
            std::env::var("AETT_MONGODB_URL").is_ok(),
            "AETT_MONGODB_URL is not set: run scripts/test-all.sh, which starts a MongoDB-compatible server for the tests"
        );
        backends.push("mongodb");
    }
    if cfg!(feature = "dynamodb") {
        assert!(
            std::env::var("AETT_DYNAMODB_ENDPOINT").is_ok(),
            "AETT_DYNAMODB_ENDPOINT is not set: run scripts/test-all.sh, which starts a DynamoDB-compatible server for the tests"
        );
        backends.push("dynamodb");
    }
    if cfg!(feature = "s3") {
        assert!(
            std::env::var("AETT_S3_ENDPOINT").is_ok(),
            "AETT_S3_ENDPOINT is not set: run scripts/test-all.sh, which starts an S3-compatible server for the tests"
        );
        backends.push("s3");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_aett-bench"))
        .args([
            "--size",
            "smoke",
            "--backends",
            &backends.join(","),
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for backend in &backends {
        assert!(
            stdout.contains(&format!(
                "| {backend} | read everything from checkpoint 0 |"
            )),
            "{stdout}"
        );
    }
    if cfg!(feature = "dynamodb") {
        assert!(
            stdout.contains("single-event commit: 1.00 /"),
            "a commit is one DynamoDB request:\n{stdout}"
        );
    }
    if cfg!(feature = "s3") {
        let line = stdout
            .lines()
            .skip_while(|line| !line.starts_with("S3 requests per operation"))
            .find(|line| line.contains("single-event commit:"))
            .unwrap_or_else(|| panic!("no S3 request count:\n{stdout}"));
        let aett: f64 = line
            .split_whitespace()
            .nth(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        assert!(
            aett <= 7.0,
            "a single-event commit to an S3 stream this store wrote last is 7 requests: {line}"
        );
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["rows"].as_array().unwrap().len(), 8 * backends.len());
    // The same store for every backend, a store of its own for those with a database.
    assert_eq!(
        report["latency"].as_array().unwrap().len(),
        2 * backends.len() - 1
    );
    assert!(report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|row| row["aett_per_second"].as_f64().unwrap() > 0.0));
}

/// The backends the growth and schema-cost measurements run on here.
fn sql_backends() -> String {
    if cfg!(feature = "postgres") {
        assert!(
            std::env::var("AETT_POSTGRES_URL").is_ok(),
            "AETT_POSTGRES_URL is not set: run scripts/test-all.sh, which starts a PostgreSQL server for the tests"
        );
        "sqlite,postgres".to_owned()
    } else {
        "sqlite".to_owned()
    }
}

fn run(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_aett-bench"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_growth_measurement_runs_and_prints_both_sizes() {
    let backends = sql_backends();
    let stdout = run(&[
        "growth",
        "--backends",
        &backends,
        "--grow-from",
        "2000",
        "--grow-to",
        "6000",
        "--rounds",
        "1",
    ]);
    for backend in backends.split(',') {
        for size in ["2000", "6000", "ratio 6000 / 2000"] {
            assert!(
                stdout.contains(&format!("| {backend} | {size} |")),
                "{stdout}"
            );
        }
    }
}

#[test]
fn the_schema_cost_measurement_runs_and_reads_back_what_it_wrote() {
    let backends = sql_backends();
    let stdout = run(&[
        "schema-cost",
        "--backends",
        &backends,
        "--size",
        "smoke",
        "--rounds",
        "1",
    ]);
    for backend in backends.split(',') {
        for program in [
            "hand-written, its own table",
            "hand-written, aett's tables and statement",
            "aett",
        ] {
            assert!(
                stdout.contains(&format!("| {backend} | {program} |")),
                "{stdout}"
            );
        }
    }
}
