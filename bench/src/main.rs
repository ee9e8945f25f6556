//! aett's benchmark: each backend through aett beside the same work hand-written against the
//! backend's own driver, in one run, with the ratio aett / direct as the headline.
//!
//! ```text
//! cargo run --release -p aett-bench --features postgres,mongodb -- [--size smoke|quick|full]
//!     [--rounds N] [--rss-events N] [--backends memory,sqlite,postgres,mongodb] [--json FILE]
//!     [--only SCENARIO]   (run only the scenarios whose name contains SCENARIO)
//!     [--postgres-url URL] [--mongodb-url URL] [--dynamodb-endpoint URL] [--s3-endpoint URL]
//! cargo run --release -p aett-bench --features postgres -- pg-payload [--postgres-url URL]
//! cargo run --release -p aett-bench --features postgres -- growth [--backends sqlite,postgres]
//!     [--grow-from EVENTS] [--grow-to EVENTS] [--rounds N] [--postgres-url URL] [--json FILE]
//! cargo run --release -p aett-bench --features postgres -- schema-cost [--backends sqlite,postgres]
//!     [--size smoke|quick|full] [--rounds N] [--postgres-url URL]
//! ```
//!
//! PostgreSQL needs a server: `--postgres-url`, or `AETT_POSTGRES_URL`
//! (`scripts/postgres-test-server.sh start` runs one on 127.0.0.1:54329). MongoDB likewise:
//! `--mongodb-url` or `AETT_MONGODB_URL` (`scripts/mongodb-test-server.sh start`). DynamoDB:
//! `--dynamodb-endpoint` or `AETT_DYNAMODB_ENDPOINT` (`scripts/aws-test-server.sh start`), in
//! region us-east-1 with the test server's credentials; S3 likewise: `--s3-endpoint` or
//! `AETT_S3_ENDPOINT` (the same server).

mod aett_side;
mod direct;
#[cfg(feature = "dynamodb")]
mod direct_dynamodb;
#[cfg(feature = "mongodb")]
mod direct_mongodb;
#[cfg(feature = "postgres")]
mod direct_postgres;
#[cfg(feature = "s3")]
mod direct_s3;
#[cfg(feature = "sqlite")]
mod direct_sqlite;
mod growth;
#[cfg(feature = "postgres")]
mod payload;
mod report;
mod rss;
mod schema_cost;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use aett::EventStore;
use std::sync::Arc;

/// One store in every role, as `aett::connect` hands it out.
pub(crate) type Stores = Arc<dyn EventStore>;

/// A commit-to-handler latency measurement: backend, where the runner runs, (p50, p99, max).
type Latency = (
    String,
    &'static str,
    (
        std::time::Duration,
        std::time::Duration,
        std::time::Duration,
    ),
);
use report::{Measured, Row};
use workload::Sizes;

struct Options {
    sizes: Sizes,
    rounds: u64,
    size_name: String,
    backends: Vec<String>,
    json: Option<PathBuf>,
    postgres_url: Option<String>,
    mongodb_url: Option<String>,
    dynamodb_endpoint: Option<String>,
    s3_endpoint: Option<String>,
    /// Run only the scenarios whose name contains this.
    only: Option<String>,
    /// The growth measurement's store sizes, in events: measured at the first, then the second.
    grow_from: u64,
    grow_to: u64,
}

impl Options {
    fn selected(&self, scenario: &str) -> bool {
        self.only
            .as_deref()
            .is_none_or(|only| scenario.contains(only))
    }
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        sizes: Sizes::QUICK,
        rounds: 3,
        size_name: "quick".to_owned(),
        backends: vec!["memory".to_owned(), "sqlite".to_owned()],
        json: None,
        postgres_url: std::env::var("AETT_POSTGRES_URL").ok(),
        mongodb_url: std::env::var("AETT_MONGODB_URL").ok(),
        dynamodb_endpoint: std::env::var("AETT_DYNAMODB_ENDPOINT").ok(),
        s3_endpoint: std::env::var("AETT_S3_ENDPOINT").ok(),
        only: None,
        grow_from: 100_000,
        grow_to: 10_000_000,
    };
    if cfg!(feature = "postgres") {
        options.backends.push("postgres".to_owned());
    }
    if cfg!(feature = "mongodb") {
        options.backends.push("mongodb".to_owned());
    }
    if cfg!(feature = "s3") {
        options.backends.push("s3".to_owned());
    }
    if cfg!(feature = "dynamodb") {
        options.backends.push("dynamodb".to_owned());
    }
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--size" => {
                let name = value()?;
                options.sizes = match name.as_str() {
                    "smoke" => Sizes::SMOKE,
                    "quick" => Sizes::QUICK,
                    "full" => Sizes::FULL,
                    other => return Err(format!("unknown size `{other}` (smoke, quick, full)")),
                };
                options.size_name = name;
            }
            "--only" => options.only = Some(value()?),
            "--rounds" => {
                options.rounds = value()?.parse().map_err(|e| format!("--rounds: {e}"))?;
                if options.rounds == 0 {
                    return Err("--rounds must be at least 1".to_owned());
                }
            }
            "--rss-events" => {
                options.sizes.rss_events =
                    value()?.parse().map_err(|e| format!("--rss-events: {e}"))?;
            }
            "--grow-from" => {
                options.grow_from = value()?.parse().map_err(|e| format!("--grow-from: {e}"))?
            }
            "--grow-to" => {
                options.grow_to = value()?.parse().map_err(|e| format!("--grow-to: {e}"))?
            }
            "--backends" => options.backends = value()?.split(',').map(str::to_owned).collect(),
            "--json" => options.json = Some(value()?.into()),
            "--postgres-url" => options.postgres_url = Some(value()?),
            "--mongodb-url" => options.mongodb_url = Some(value()?),
            "--dynamodb-endpoint" => options.dynamodb_endpoint = Some(value()?),
            "--s3-endpoint" => options.s3_endpoint = Some(value()?),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("rss-child") if args.len() == 3 => {
            rss::child(&args[1], &args[2]).await;
            return ExitCode::SUCCESS;
        }
        Some("pg-payload") => return pg_payload(&args[1..]).await,
        Some("growth") => return growth(&args[1..]).await,
        Some("schema-cost") => return schema_cost(&args[1..]).await,
        _ => {}
    }
    let options = match parse(&args) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("aett-bench: {message}");
            return ExitCode::from(2);
        }
    };
    let mut rows = Vec::new();
    let mut memory = Vec::new();
    let mut latencies = Vec::new();
    for backend in &options.backends {
        eprintln!("== {backend}");
        match run_backend(backend, &options, &mut rows, &mut memory, &mut latencies).await {
            Ok(()) => {}
            Err(message) => {
                eprintln!("aett-bench: {message}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("\nMachine: {}; size `{}`.\n", machine(), options.size_name);
    report::print_table(&rows);
    println!(
        "\nCommit-to-handler latency: one writer appends {} single-event commits 2 ms apart; a projection runner follows.\n",
        options.sizes.latency_commits
    );
    println!("| backend | runner on | p50 ms | p99 ms | max ms |");
    println!("|---|---|---:|---:|---:|");
    for (backend, runner, (p50, p99, max)) in &latencies {
        println!(
            "| {backend} | {runner} | {:.2} | {:.2} | {:.2} |",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    }
    println!();
    for (backend, events, before, peak) in &memory {
        println!(
            "Peak RSS replaying {events} events on {backend}: {:.1} MiB (the process held {:.1} MiB before the replay).",
            *peak as f64 / 1024.0,
            *before as f64 / 1024.0
        );
    }
    if let Some(path) = &options.json {
        let json = serde_json::json!({
            "machine": machine(),
            "size": options.size_name,
            "sizes": options.sizes,
            "rows": rows.iter().map(|row| serde_json::json!({
                "backend": row.backend, "scenario": row.scenario, "unit": row.unit,
                "aett": row.aett, "direct": row.direct,
                "aett_per_second": row.aett.rate(),
                "direct_per_second": row.direct.map(|d| d.rate()),
                "ratio": row.ratio(),
            })).collect::<Vec<_>>(),
            "latency": latencies.iter().map(|(backend, runner, (p50, p99, max))| serde_json::json!({
                "backend": backend, "runner": runner,
                "p50_ms": p50.as_secs_f64() * 1e3, "p99_ms": p99.as_secs_f64() * 1e3,
                "max_ms": max.as_secs_f64() * 1e3,
            })).collect::<Vec<_>>(),
            "peak_rss": memory.iter().map(|(backend, events, before, peak)| serde_json::json!({
                "backend": backend, "events": events, "before_kib": before, "peak_kib": peak,
            })).collect::<Vec<_>>(),
        });
        if let Err(error) = std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()) {
            eprintln!("aett-bench: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// The stores for one backend, the direct program beside them, and the URL a child process
/// can open the same stores with.
enum Direct {
    None,
    #[cfg(feature = "sqlite")]
    Sqlite(direct_sqlite::DirectSqlite),
    #[cfg(feature = "postgres")]
    Postgres(direct_postgres::DirectPostgres),
    #[cfg(feature = "mongodb")]
    Mongo(direct_mongodb::DirectMongo),
    #[cfg(feature = "dynamodb")]
    Dynamo(direct_dynamodb::DirectDynamo),
    #[cfg(feature = "s3")]
    S3(direct_s3::DirectS3),
}

async fn run_backend(
    backend: &str,
    options: &Options,
    rows: &mut Vec<Row>,
    memory: &mut Vec<(String, u64, u64, u64)>,
    latencies: &mut Vec<Latency>,
) -> Result<(), String> {
    let sizes = options.sizes;
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    #[cfg(feature = "dynamodb")]
    let mut dynamo_store = None;
    #[cfg(feature = "s3")]
    let mut s3_store = None;
    let (url, direct) = match backend {
        "memory" => ("memory://".to_owned(), Direct::None),
        #[cfg(feature = "sqlite")]
        "sqlite" => (
            format!("sqlite://{}", dir.path().join("aett.db").display()),
            Direct::Sqlite(direct_sqlite::DirectSqlite::new(
                dir.path().join("direct.db"),
            )),
        ),
        #[cfg(feature = "postgres")]
        "postgres" => {
            let url = options.postgres_url.clone().ok_or(
                "the postgres backend needs a server: pass --postgres-url or set AETT_POSTGRES_URL \
                 (scripts/postgres-test-server.sh start runs one on 127.0.0.1:54329)",
            )?;
            (
                in_schema(&url, &fresh_schema("bench")),
                Direct::Postgres(direct_postgres::DirectPostgres::new(&url).await),
            )
        }
        #[cfg(feature = "mongodb")]
        "mongodb" => {
            let url = options.mongodb_url.clone().ok_or(
                "the mongodb backend needs a server: pass --mongodb-url or set AETT_MONGODB_URL \
                 (scripts/mongodb-test-server.sh start runs one on 127.0.0.1:27019)",
            )?;
            let (base, query) = url.split_once('?').unwrap_or((&url, ""));
            let (scheme, rest) = base.split_once("://").ok_or("a mongodb:// URL")?;
            let hosts = rest.split('/').next().unwrap_or(rest);
            let database = format!("bench_{}", uuid::Uuid::new_v4().simple());
            (
                format!("{scheme}://{hosts}/{database}?{query}"),
                Direct::Mongo(direct_mongodb::DirectMongo::new(&url).await),
            )
        }
        #[cfg(feature = "dynamodb")]
        "dynamodb" => {
            let endpoint = options.dynamodb_endpoint.clone().ok_or(
                "the dynamodb backend needs a server: pass --dynamodb-endpoint or set AETT_DYNAMODB_ENDPOINT \
                 (scripts/aws-test-server.sh start runs one on 127.0.0.1:5049)",
            )?;
            let table = format!("bench_{}", uuid::Uuid::new_v4().simple());
            let store = dynamodb_store(&endpoint, &table).await?;
            let direct = direct_dynamodb::DirectDynamo::new(store.client().clone()).await;
            dynamo_store = Some(store);
            let encoded = endpoint.replace(':', "%3A").replace('/', "%2F");
            (
                format!("dynamodb://{table}?region=us-east-1&endpoint={encoded}"),
                Direct::Dynamo(direct),
            )
        }
        #[cfg(feature = "s3")]
        "s3" => {
            let endpoint = options.s3_endpoint.clone().ok_or(
                "the s3 backend needs a server: pass --s3-endpoint or set AETT_S3_ENDPOINT \
                 (scripts/aws-test-server.sh start runs one on 127.0.0.1:5049)",
            )?;
            let bucket = format!("aett-bench-{}", uuid::Uuid::new_v4().simple());
            let store = s3_store_at(&endpoint, &bucket).await?;
            let direct = direct_s3::DirectS3::new(store.client().clone(), &bucket);
            s3_store = Some(store);
            let encoded = endpoint.replace(':', "%3A").replace('/', "%2F");
            (
                format!("s3://{bucket}/aett?region=us-east-1&endpoint={encoded}"),
                Direct::S3(direct),
            )
        }
        other => return Err(format!("unknown or disabled backend `{other}`")),
    };
    // The backends that count requests are measured through their own type.
    #[allow(unused_mut)]
    let mut own: Option<Stores> = None;
    #[cfg(feature = "dynamodb")]
    if let Some(store) = &dynamo_store {
        own = Some(store.clone());
    }
    #[cfg(feature = "s3")]
    if let Some(store) = &s3_store {
        own = Some(store.clone());
    }
    let stores: Stores = match own {
        Some(store) => store,
        None => aett::connect(&url)
            .await
            .map_err(|e| format!("{backend}: {e}"))?,
    };
    let name = backend.to_owned();
    let mut push = |scenario: &str, unit: &str, aett: Measured, direct: Option<Measured>| {
        rows.push(Row {
            backend: name.clone(),
            scenario: scenario.to_owned(),
            unit: unit.to_owned(),
            aett,
            direct,
        });
    };
    // Each scenario runs `rounds` times, aett and the direct program taking turns to go
    // first; the median of each side is reported, so drift on a noisy machine hits both alike.
    let rounds = options.rounds;
    macro_rules! both {
        // Write scenarios name their streams after the round, so each round writes fresh ones.
        ($label:expr, $unit:expr, $method:ident ( $($arg:expr),* ), $round:ident) => {if options.selected($label) {
            eprintln!("   {}", $label);
            let (mut aett, mut direct_runs) = (Vec::new(), Vec::new());
            for $round in 0..rounds {
                let aett_first = $round % 2 == 0;
                if aett_first {
                    aett.push(aett_side::$method(&stores, $round, $($arg),*).await);
                }
                match &direct {
                    Direct::None => {}
                    #[cfg(feature = "sqlite")]
                    Direct::Sqlite(d) => direct_runs.push(d.$method($round, $($arg),*).await),
                    #[cfg(feature = "postgres")]
                    Direct::Postgres(d) => direct_runs.push(d.$method($round, $($arg),*).await),
                    #[cfg(feature = "mongodb")]
                    Direct::Mongo(d) => direct_runs.push(d.$method($round, $($arg),*).await),
                    #[cfg(feature = "dynamodb")]
                    Direct::Dynamo(d) => direct_runs.push(d.$method($round, $($arg),*).await),
                    #[cfg(feature = "s3")]
                    Direct::S3(d) => direct_runs.push(d.$method($round, $($arg),*).await),
                }
                if !aett_first {
                    aett.push(aett_side::$method(&stores, $round, $($arg),*).await);
                }
            }
            push($label, $unit, median(aett).expect("at least one round"), median(direct_runs));
        }};
        // Read scenarios read the same data every round.
        ($label:expr, $unit:expr, $method:ident ( $($arg:expr),* )) => {if options.selected($label) {
            eprintln!("   {}", $label);
            let (mut aett, mut direct_runs) = (Vec::new(), Vec::new());
            for round in 0..rounds {
                let aett_first = round % 2 == 0;
                if aett_first {
                    aett.push(aett_side::$method(&stores, $($arg),*).await);
                }
                match &direct {
                    Direct::None => {}
                    #[cfg(feature = "sqlite")]
                    Direct::Sqlite(d) => direct_runs.push(d.$method($($arg),*).await),
                    #[cfg(feature = "postgres")]
                    Direct::Postgres(d) => direct_runs.push(d.$method($($arg),*).await),
                    #[cfg(feature = "mongodb")]
                    Direct::Mongo(d) => direct_runs.push(d.$method($($arg),*).await),
                    #[cfg(feature = "dynamodb")]
                    Direct::Dynamo(d) => direct_runs.push(d.$method($($arg),*).await),
                    #[cfg(feature = "s3")]
                    Direct::S3(d) => direct_runs.push(d.$method($($arg),*).await),
                }
                if !aett_first {
                    aett.push(aett_side::$method(&stores, $($arg),*).await);
                }
            }
            push($label, $unit, median(aett).expect("at least one round"), median(direct_runs));
        }};
    }
    macro_rules! prepare {
        ($needed:expr, $method:ident ( $($arg:expr),* )) => {if $needed {
            aett_side::$method(&stores, $($arg),*).await;
            match &direct {
                Direct::None => {}
                #[cfg(feature = "sqlite")]
                Direct::Sqlite(d) => d.$method($($arg),*).await,
                #[cfg(feature = "postgres")]
                Direct::Postgres(d) => d.$method($($arg),*).await,
                #[cfg(feature = "mongodb")]
                Direct::Mongo(d) => d.$method($($arg),*).await,
                #[cfg(feature = "dynamodb")]
                Direct::Dynamo(d) => d.$method($($arg),*).await,
                #[cfg(feature = "s3")]
                Direct::S3(d) => d.$method($($arg),*).await,
            }
        }};
    }

    aett_side::warm_up(&stores).await;
    // First, while the log holds only what this scenario writes (and the warm-up's commits).
    prepare!(
        options.selected("read everything from checkpoint 0"),
        prepare_log(sizes.read_all_events)
    );
    both!("read everything from checkpoint 0", "events", read_all());
    both!(
        "append: 1-event commits, 100 streams",
        "commits",
        append_single(sizes.single_commits),
        round
    );
    both!(
        "append: 100-event commits",
        "events",
        append_batch(sizes.batch_commits),
        round
    );
    both!(
        "8 writers, 8 streams",
        "commits",
        parallel(sizes.parallel_commits),
        round
    );
    both!(
        "8 writers, 1 stream, retry on conflict",
        "commits",
        contended(sizes.contended_commits),
        round
    );
    let loads = options.selected("load aggregate of 10,000 events")
        || options.selected("load with snapshot 10 events from head");
    prepare!(loads, prepare_aggregate("aggregate", sizes.load_events));
    both!(
        "load aggregate of 10,000 events",
        "events replayed",
        load("aggregate", 5)
    );
    prepare!(
        options.selected("load with snapshot 10 events from head"),
        snapshot_near_head("aggregate", sizes.load_events)
    );
    both!(
        "load with snapshot 10 events from head",
        "loads",
        load_from_snapshot("aggregate", 200)
    );
    // The whole log as the scenarios above left it: their commits, most of them of one event.
    both!(
        "read everything: the whole log, mostly 1-event commits",
        "events",
        read_all()
    );

    if options.selected("latency") {
        eprintln!("   commit-to-handler latency");
        let same = aett_side::latency(&stores, &stores, sizes.latency_commits).await;
        latencies.push((backend.to_owned(), "the same store", same));
        if backend != "memory" {
            // A projection in another process: a store of its own on the same database, woken by
            // what crosses processes (LISTEN/NOTIFY on PostgreSQL, polling on SQLite).
            let other: Stores = aett::connect(&url)
                .await
                .map_err(|e| format!("{backend}: {e}"))?;
            let apart = aett_side::latency(&stores, &other, sizes.latency_commits).await;
            latencies.push((
                backend.to_owned(),
                "a store of its own (as another process)",
                apart,
            ));
        }
    }

    #[cfg(feature = "dynamodb")]
    if let (Some(store), Direct::Dynamo(d)) = (&dynamo_store, &direct) {
        if options.selected("requests") {
            eprintln!("   DynamoDB requests per commit and per load");
            requests_per_operation(store, d).await;
        }
    }

    #[cfg(feature = "s3")]
    if let (Some(store), Direct::S3(d)) = (&s3_store, &direct) {
        if options.selected("requests") {
            eprintln!("   S3 requests per commit and per load");
            let endpoint = options.s3_endpoint.as_deref().unwrap_or_default();
            s3_requests_per_operation(store, d, endpoint).await;
        }
    }

    // Not on DynamoDB or S3: a million events is hours of requests on the test server.
    if !matches!(backend, "memory" | "dynamodb" | "s3") && options.selected("peak memory") {
        eprintln!("   peak memory while replaying {} events", sizes.rss_events);
        aett_side::prepare_big(&stores, "big", sizes.rss_events).await;
        let (events, before, peak) = rss::measure(&url, "big");
        memory.push((backend.to_owned(), events, before, peak));
    }
    match direct {
        #[cfg(feature = "postgres")]
        Direct::Postgres(d) => d.drop().await,
        #[cfg(feature = "mongodb")]
        Direct::Mongo(d) => d.drop().await,
        #[cfg(feature = "dynamodb")]
        Direct::Dynamo(d) => d.drop().await,
        #[cfg(feature = "s3")]
        Direct::S3(d) => d.drop().await,
        _ => {}
    }
    Ok(())
}

/// The run with the median rate.
fn median(mut runs: Vec<Measured>) -> Option<Measured> {
    runs.sort_by(|a, b| a.rate().total_cmp(&b.rate()));
    runs.get(runs.len() / 2).copied()
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

/// A fresh PostgreSQL schema name: `prefix_` and a random id.
fn fresh_schema(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// The store URL for `schema` on the PostgreSQL server at `url`.
fn in_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}schema={schema}")
}

/// The options of a measurement that runs on the SQL backends: SQLite and PostgreSQL unless
/// `--backends` says otherwise.
fn sql_options(command: &str, args: &[String]) -> Result<Options, ExitCode> {
    let mut options = parse(args).map_err(|message| {
        eprintln!("aett-bench {command}: {message}");
        ExitCode::from(2)
    })?;
    if !args.iter().any(|a| a == "--backends") {
        options
            .backends
            .retain(|b| b == "sqlite" || b == "postgres");
    }
    Ok(options)
}

/// The growth measurement on each backend asked for (SQLite and PostgreSQL by default).
async fn growth(args: &[String]) -> ExitCode {
    let options = match sql_options("growth", args) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let mut all = Vec::new();
    for backend in &options.backends {
        eprintln!(
            "== {backend}: growth from {} to {} events",
            options.grow_from, options.grow_to
        );
        let dir = match tempfile::tempdir() {
            Ok(dir) => dir,
            Err(error) => {
                eprintln!("aett-bench growth: {error}");
                return ExitCode::FAILURE;
            }
        };
        let mut stores: Vec<(u64, Stores)> = Vec::new();
        for size in [options.grow_from, options.grow_to] {
            let url = match backend.as_str() {
                "sqlite" => format!(
                    "sqlite://{}",
                    dir.path().join(format!("growth-{size}.db")).display()
                ),
                "postgres" => match &options.postgres_url {
                    Some(url) => in_schema(url, &fresh_schema(&format!("growth_{size}"))),
                    None => {
                        eprintln!(
                            "aett-bench growth: pass --postgres-url or set AETT_POSTGRES_URL"
                        );
                        return ExitCode::from(2);
                    }
                },
                other => {
                    eprintln!("aett-bench growth: measures sqlite and postgres, not `{other}`");
                    return ExitCode::from(2);
                }
            };
            match aett::connect(&url).await {
                Ok(store) => stores.push((size, store)),
                Err(error) => {
                    eprintln!("aett-bench growth: {backend}: {error}");
                    return ExitCode::FAILURE;
                }
            }
        }
        let results = growth::measure(&stores, options.rounds).await;
        for (_, store) in &stores {
            if let Err(error) = store.drop_all().await {
                eprintln!("aett-bench growth: {backend}: dropping a store: {error}");
            }
        }
        all.push((backend.clone(), results));
    }
    println!("\nMachine: {}.\n", machine());
    growth::print(&all);
    if let Some(path) = &options.json {
        let json = serde_json::json!({
            "machine": machine(),
            "growth": all.iter().map(|(backend, results)| serde_json::json!({
                "backend": backend, "sizes": results,
            })).collect::<Vec<_>>(),
        });
        if let Err(error) = std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()) {
            eprintln!("aett-bench: cannot write {}: {error}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// Where a single-event commit's cost goes, on SQLite and PostgreSQL (see `schema_cost`).
async fn schema_cost(args: &[String]) -> ExitCode {
    let options = match sql_options("schema-cost", args) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let commits = options.sizes.single_commits;
    println!(
        "\nMachine: {}; {} rounds of {commits} commits each.\n",
        machine(),
        options.rounds
    );
    println!("| backend | program | commits/s | beside the first | WAL bytes per commit |");
    println!("|---|---|---:|---:|---:|");
    for backend in &options.backends {
        eprintln!("== {backend}: schema cost");
        let sides = match backend.as_str() {
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                let dir = tempfile::tempdir().expect("temporary directory");
                let aett_db = dir.path().join("aett.db");
                let stores: Stores = aett::connect(&format!("sqlite://{}", aett_db.display()))
                    .await
                    .expect("open the SQLite store");
                aett_side::warm_up(&stores).await;
                let direct = direct_sqlite::DirectSqlite::new(dir.path().join("direct.db"));
                schema_cost::sqlite::measure(&stores, aett_db, &direct, options.rounds, commits)
                    .await
            }
            #[cfg(feature = "postgres")]
            "postgres" => {
                let Some(url) = options.postgres_url.clone() else {
                    eprintln!(
                        "aett-bench schema-cost: pass --postgres-url or set AETT_POSTGRES_URL"
                    );
                    return ExitCode::from(2);
                };
                let aett_url = in_schema(&url, "schema_cost");
                let schema = aett_url
                    .rsplit("schema=")
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let stores: Stores = aett::connect(&aett_url)
                    .await
                    .expect("open the PostgreSQL store");
                aett_side::warm_up(&stores).await;
                let direct = direct_postgres::DirectPostgres::new(&url).await;
                let sides = schema_cost::postgres::measure(
                    &stores,
                    &url,
                    &schema,
                    &direct,
                    options.rounds,
                    commits,
                )
                .await;
                direct.drop().await;
                if let Err(error) = stores.drop_all().await {
                    eprintln!("aett-bench schema-cost: dropping the store: {error}");
                }
                sides
            }
            other => {
                eprintln!("aett-bench schema-cost: measures sqlite and postgres, not `{other}`");
                return ExitCode::from(2);
            }
        };
        schema_cost::print(backend, &sides);
    }
    ExitCode::SUCCESS
}

async fn pg_payload(args: &[String]) -> ExitCode {
    #[cfg(feature = "postgres")]
    {
        let url = match args {
            [flag, url] if flag == "--postgres-url" => url.clone(),
            [] => match std::env::var("AETT_POSTGRES_URL") {
                Ok(url) => url,
                Err(_) => {
                    eprintln!(
                        "aett-bench pg-payload: pass --postgres-url or set AETT_POSTGRES_URL"
                    );
                    return ExitCode::from(2);
                }
            },
            _ => {
                eprintln!("usage: aett-bench pg-payload [--postgres-url URL]");
                return ExitCode::from(2);
            }
        };
        let figures = payload::measure(&url, 3_000).await;
        println!("| column | inserts (commits of 10 events) /s | reads (events) /s | table size | byte-exact |");
        println!("|---|---:|---:|---:|---|");
        for f in &figures {
            println!(
                "| {} | {:.0} | {:.0} | {:.1} MiB | {} |",
                f.column,
                f.insert_commits_per_second,
                f.read_events_per_second,
                f.table_bytes as f64 / 1_048_576.0,
                f.byte_exact
            );
        }
        ExitCode::SUCCESS
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = args;
        eprintln!("aett-bench pg-payload needs the `postgres` feature");
        ExitCode::from(2)
    }
}

/// A DynamoDB store in `table` on the test server at `endpoint`, initialised.
#[cfg(feature = "dynamodb")]
async fn dynamodb_store(endpoint: &str, table: &str) -> Result<Arc<aett::DynamoStore>, String> {
    use aett::PersistenceManagement;
    let config = aett::DynamoConfig::new(table)
        .endpoint(endpoint)
        .region("us-east-1")
        .credentials("test", "test");
    let store = aett::DynamoStore::connect(config)
        .await
        .map_err(|e| format!("dynamodb: {e}"))?;
    store
        .initialize()
        .await
        .map_err(|e| format!("dynamodb: {e}"))?;
    Ok(Arc::new(store))
}

/// Requests per single-event commit and per load of a 100-event aggregate (10 commits), through
/// `$store` (a backend type with `requests_sent`) and the hand-written `$direct`:
/// `(aett commit, direct commit, aett load, direct load)`.
#[cfg(any(feature = "dynamodb", feature = "s3"))]
macro_rules! requests_per_operation {
    ($store:expr, $direct:expr) => {{
        const COMMITS: u64 = 50;
        const LOADS: u64 = 20;
        let (store, direct) = ($store, $direct);
        let stores: Stores = store.clone();
        let per = |before: u64, after: u64, count: u64| (after - before) as f64 / count as f64;
        let before = store.requests_sent();
        aett_side::append_single(&stores, 1_000, COMMITS).await;
        let aett_commit = per(before, store.requests_sent(), COMMITS);
        let before = direct.requests_sent();
        direct.append_single(1_000, COMMITS).await;
        let direct_commit = per(before, direct.requests_sent(), COMMITS);
        aett_side::prepare_aggregate(&stores, "requests", 100).await;
        direct.prepare_aggregate("requests", 100).await;
        let before = store.requests_sent();
        aett_side::load(&stores, "requests", LOADS).await;
        let aett_load = per(before, store.requests_sent(), LOADS);
        let before = direct.requests_sent();
        direct.load("requests", LOADS).await;
        let direct_load = per(before, direct.requests_sent(), LOADS);
        (aett_commit, direct_commit, aett_load, direct_load)
    }};
}

/// Prints what [`requests_per_operation!`] measured on `service`, with `note` after the load.
#[cfg(any(feature = "dynamodb", feature = "s3"))]
fn print_requests(
    service: &str,
    (aett_commit, direct_commit, aett_load, direct_load): (f64, f64, f64, f64),
    note: &str,
) {
    println!("\n{service} requests per operation (aett / hand-written):");
    println!("  single-event commit: {aett_commit:.2} / {direct_commit:.2}");
    println!(
        "  load of a 100-event aggregate (10 commits): {aett_load:.2} / {direct_load:.2}{note}"
    );
}

/// Prints how many DynamoDB requests aett and the hand-written program send per single-event
/// commit and per load of a 100-event aggregate (10 commits).
#[cfg(feature = "dynamodb")]
async fn requests_per_operation(
    store: &Arc<aett::DynamoStore>,
    direct: &direct_dynamodb::DirectDynamo,
) {
    print_requests("DynamoDB", requests_per_operation!(store, direct), "");
}

/// An S3 store in `bucket` (created) under the prefix `aett` on the test server at `endpoint`,
/// initialised.
#[cfg(feature = "s3")]
async fn s3_store_at(endpoint: &str, bucket: &str) -> Result<Arc<aett::S3Store>, String> {
    use aett::PersistenceManagement;
    let config = aett::S3Config::new(bucket)
        .prefix("aett")
        .endpoint(endpoint)
        .path_style(true)
        .region("us-east-1")
        .credentials("test", "test");
    let store = aett::S3Store::connect(config)
        .await
        .map_err(|e| format!("s3: {e}"))?;
    store.initialize().await.map_err(|e| format!("s3: {e}"))?;
    Ok(Arc::new(store))
}

/// Prints how many S3 requests aett and the hand-written program send per single-event commit
/// and per load of a 100-event aggregate (10 commits), and what the load costs a store that has
/// not read the aggregate yet.
#[cfg(feature = "s3")]
async fn s3_requests_per_operation(
    store: &Arc<aett::S3Store>,
    direct: &direct_s3::DirectS3,
    endpoint: &str,
) {
    let measured = requests_per_operation!(store, direct);
    // A store of its own, as another process: it has read none of the commits yet.
    let fresh = s3_store_at(endpoint, store.bucket())
        .await
        .expect("a second store on the same bucket");
    let fresh_stores: Stores = fresh.clone();
    let before = fresh.requests_sent();
    aett_side::load(&fresh_stores, "requests", 1).await;
    let first_load = (fresh.requests_sent() - before) as f64;
    print_requests(
        "S3",
        measured,
        &format!(" (a store that has not read it yet: {first_load:.2})"),
    );
}
