//! Where the cost of a single-event commit goes: the hand-written program on its own two-index
//! table, the same hand-written loop writing aett's rows into aett's tables with aett's own
//! statement, and aett itself. The first step is the price of aett's schema (the indexes and the
//! stream-head table its features read); the second is the price of aett's code.
//!
//! The statements below are copies of the backends' insert statements. After the runs, every
//! stream the hand-written loop wrote is read back through aett, so a copy that drifts from the
//! real schema fails here instead of measuring something else.

use std::time::Instant;

use futures::TryStreamExt;

use crate::report::Measured;
use crate::{aett_side, median, Stores};

/// One program's figures.
#[derive(Debug, serde::Serialize)]
pub struct Side {
    /// Which program.
    pub program: &'static str,
    /// Single-event commits round-robin over 100 streams (median of the rounds).
    pub appends: Measured,
    /// Write-ahead log written per commit (PostgreSQL only), median bytes.
    pub wal_bytes_per_commit: Option<f64>,
}

/// The three programs' labels, in the order the table shows them.
pub const PROGRAMS: [&str; 3] = [
    "hand-written, its own table",
    "hand-written, aett's tables and statement",
    "aett",
];

/// Checks that the streams the hand-written loop wrote into aett's tables read back through
/// aett with every commit in place.
async fn check_readable(stores: &Stores, rounds: u64, commits: u64) {
    for round in 0..rounds {
        let stream = format!("schema-{round}-0");
        let read: Vec<_> = stores
            .get("bench", &stream, 0, u64::MAX)
            .try_collect()
            .await
            .expect("the rows written with aett's statement read back through aett");
        assert_eq!(
            read.len() as u64,
            commits.div_ceil(100),
            "stream {stream}: the copied statement no longer writes what aett reads"
        );
    }
}

#[cfg(feature = "sqlite")]
pub mod sqlite {
    //! SQLite: WAL, `synchronous = FULL` on every connection.

    use super::*;
    use crate::direct_sqlite::DirectSqlite;

    /// aett's SQLite insert statement (`backends/sqlite/schema.rs`, `insert_commit`).
    const INSERT: &str = "INSERT INTO \"commits\" (tenant_id, stream_id, stream_revision, items, commit_id, commit_sequence, commit_stamp, headers, events, stream_type)
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
         WHERE COALESCE((SELECT commit_sequence = ?6 - 1 AND stream_revision = ?3 - ?4 FROM \"commits\"
                         WHERE tenant_id = ?1 AND stream_id = ?2 AND commit_sequence > 0
                         ORDER BY commit_sequence DESC LIMIT 1),
                        ?6 = 1 AND ?3 = ?4)";

    fn hand_written_on_aett(path: &std::path::Path, round: u64, commits: u64) -> Measured {
        let connection = rusqlite::Connection::open(path).expect("open");
        connection
            .busy_timeout(std::time::Duration::from_secs(30))
            .unwrap();
        connection
            .pragma_update(None, "synchronous", "FULL")
            .unwrap();
        let start = Instant::now();
        for i in 0..commits {
            let sequence = (i / 100 + 1) as i64;
            let inserted = connection
                .prepare_cached(INSERT)
                .unwrap()
                .execute(rusqlite::params![
                    "bench",
                    format!("schema-{round}-{}", i % 100),
                    sequence,
                    1,
                    uuid::Uuid::new_v4().as_bytes(),
                    sequence,
                    chrono::Utc::now().timestamp_micros(),
                    b"{}".as_slice(),
                    crate::direct::encode(i, 1),
                    None::<String>,
                ])
                .unwrap();
            assert_eq!(inserted, 1, "the commit follows its stream's head");
        }
        Measured::new(commits, start.elapsed())
    }

    /// Measures the three programs `rounds` times each, taking turns to go first.
    pub async fn measure(
        stores: &Stores,
        aett_db: std::path::PathBuf,
        direct: &DirectSqlite,
        rounds: u64,
        commits: u64,
    ) -> Vec<Side> {
        let mut runs: [Vec<Measured>; 3] = Default::default();
        for round in 0..rounds {
            for turn in 0..3 {
                let program = (turn + round as usize) % 3;
                let measured = match program {
                    0 => direct.append_single(10_000 + round, commits).await,
                    1 => {
                        let path = aett_db.clone();
                        tokio::task::spawn_blocking(move || {
                            hand_written_on_aett(&path, round, commits)
                        })
                        .await
                        .expect("hand-written loop")
                    }
                    _ => aett_side::append_single(stores, 10_000 + round, commits).await,
                };
                runs[program].push(measured);
            }
        }
        check_readable(stores, rounds, commits).await;
        runs.into_iter()
            .zip(PROGRAMS)
            .map(|(runs, program)| Side {
                program,
                appends: median(runs).expect("at least one round"),
                wal_bytes_per_commit: None,
            })
            .collect()
    }
}

#[cfg(feature = "postgres")]
pub mod postgres {
    //! PostgreSQL: server defaults, `synchronous_commit = on`.

    use super::*;
    use crate::direct_postgres::DirectPostgres;
    use tokio_postgres::{Client, NoTls};

    /// aett's PostgreSQL insert statement (`backends/postgres/schema.rs`, `insert_commit`), with
    /// the stream and tenant keys computed by the server the way aett computes them.
    fn insert(schema: &str) -> String {
        let c = format!("\"{schema}\".\"commits\"");
        let h = format!("\"{schema}\".\"commits_streams\"");
        format!(
            "WITH keys AS (
               SELECT sha256(int8send(octet_length($1::text)) || convert_to($1::text, 'UTF8') || convert_to($2::text, 'UTF8')) AS stream_key,
                      sha256(convert_to($1::text, 'UTF8')) AS tenant_key),
             inserted AS (
             INSERT INTO {c} (checkpoint, stream_key, tenant_key, tenant_id, stream_id, stream_revision, items,
                              commit_id, commit_sequence, commit_stamp, headers, events, stream_type)
             SELECT pg_current_xact_id()::text::bigint, keys.stream_key, keys.tenant_key, $1::text, $2::text, $3::bigint,
                    1, $4::uuid, $3::bigint, now(), '\\x7b7d'::bytea, $5::bytea, NULL FROM keys
             WHERE COALESCE((SELECT commit_sequence = $3::bigint - 1 AND stream_revision = $3::bigint - 1
                             FROM {c} WHERE stream_key = keys.stream_key AND commit_sequence > 0
                             ORDER BY commit_sequence DESC LIMIT 1),
                            $3::bigint = 1)
             RETURNING checkpoint, stream_key, tenant_key),
             head AS (
             INSERT INTO {h} (stream_key, tenant_key, tenant_id, stream_id, head_revision, head_sequence)
             SELECT stream_key, tenant_key, $1::text, $2::text, $3::bigint, $3::bigint FROM inserted
             ON CONFLICT (stream_key) DO UPDATE
             SET head_revision = EXCLUDED.head_revision, head_sequence = EXCLUDED.head_sequence)
             SELECT checkpoint FROM inserted"
        )
    }

    async fn connect(url: &str) -> Client {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    async fn wal_position(client: &Client) -> i64 {
        client
            .query_one(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint",
                &[],
            )
            .await
            .expect("WAL position")
            .get(0)
    }

    async fn hand_written_on_aett(url: &str, schema: &str, round: u64, commits: u64) -> Measured {
        let client = connect(url).await;
        let statement = client.prepare(&insert(schema)).await.expect("prepare");
        let start = Instant::now();
        for i in 0..commits {
            let sequence = (i / 100 + 1) as i64;
            let row = client
                .query_opt(
                    &statement,
                    &[
                        &"bench",
                        &format!("schema-{round}-{}", i % 100),
                        &sequence,
                        &uuid::Uuid::new_v4(),
                        &crate::direct::encode(i, 1),
                    ],
                )
                .await
                .expect("insert");
            assert!(row.is_some(), "the commit follows its stream's head");
        }
        Measured::new(commits, start.elapsed())
    }

    /// Measures the three programs `rounds` times each, taking turns to go first, with the WAL
    /// each writes. `url` is the server, `schema` aett's schema on it.
    pub async fn measure(
        stores: &Stores,
        url: &str,
        schema: &str,
        direct: &DirectPostgres,
        rounds: u64,
        commits: u64,
    ) -> Vec<Side> {
        let observer = connect(url).await;
        let mut runs: [Vec<Measured>; 3] = Default::default();
        let mut wal: [Vec<f64>; 3] = Default::default();
        for round in 0..rounds {
            for turn in 0..3 {
                let program = (turn + round as usize) % 3;
                let before = wal_position(&observer).await;
                let measured = match program {
                    0 => direct.append_single(10_000 + round, commits).await,
                    1 => hand_written_on_aett(url, schema, round, commits).await,
                    _ => aett_side::append_single(stores, 10_000 + round, commits).await,
                };
                let written = wal_position(&observer).await - before;
                runs[program].push(measured);
                wal[program].push(written as f64 / commits as f64);
            }
        }
        check_readable(stores, rounds, commits).await;
        runs.into_iter()
            .zip(wal)
            .zip(PROGRAMS)
            .map(|((runs, mut wal), program)| {
                wal.sort_by(f64::total_cmp);
                Side {
                    program,
                    appends: median(runs).expect("at least one round"),
                    wal_bytes_per_commit: wal.get(wal.len() / 2).copied(),
                }
            })
            .collect()
    }
}

/// Prints one backend's three programs, each beside the hand-written program on its own table.
pub fn print(backend: &str, sides: &[Side]) {
    let base = sides.first().map_or(1.0, |s| s.appends.rate());
    for side in sides {
        println!(
            "| {backend} | {} | {:.0} | {:.2} | {} |",
            side.program,
            side.appends.rate(),
            side.appends.rate() / base,
            side.wal_bytes_per_commit
                .map_or("–".to_owned(), |b| format!("{b:.0}"))
        );
    }
}
