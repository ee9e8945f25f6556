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
