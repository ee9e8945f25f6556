//! Measures the PostgreSQL payload column types aett could use for events: `bytea` (JSON bytes
//! as written) against `jsonb` (parsed and stored in binary form by the server).

use std::time::Instant;

use tokio_postgres::NoTls;

use crate::direct::encode;

/// One column type's figures.
#[derive(Debug, serde::Serialize)]
pub struct PayloadFigures {
    /// The column type.
    pub column: &'static str,
    /// Commits of 10 events inserted per second.
    pub insert_commits_per_second: f64,
    /// Events read back (and decoded) per second.
    pub read_events_per_second: f64,
    /// Table size on disk, bytes.
    pub table_bytes: i64,
    /// Whether the stored JSON text comes back byte for byte.
    pub byte_exact: bool,
}

/// Inserts `commits` commits of 10 events into a `bytea` and a `jsonb` table, then reads them
/// back, alternating the two so that drift on a noisy machine hits both alike.
pub async fn measure(url: &str, commits: u64) -> Vec<PayloadFigures> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let schema = format!("payload_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!(
            "CREATE SCHEMA {schema};
             CREATE TABLE {schema}.as_bytea (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, events bytea NOT NULL);
             CREATE TABLE {schema}.as_jsonb (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, events jsonb NOT NULL);"
        ))
        .await
        .expect("schema");
    let insert_bytea = client
        .prepare(&format!(
            "INSERT INTO {schema}.as_bytea (events) VALUES ($1)"
        ))
        .await
        .unwrap();
    let insert_jsonb = client
        .prepare(&format!(
            "INSERT INTO {schema}.as_jsonb (events) VALUES ($1::text::jsonb)"
        ))
        .await
        .unwrap();
    let payloads: Vec<Vec<u8>> = (0..commits).map(|i| encode(i * 10, 10)).collect();

    let (mut bytea_insert, mut jsonb_insert) = (0.0, 0.0);
    for payload in &payloads {
        let start = Instant::now();
        client.execute(&insert_bytea, &[payload]).await.unwrap();
        bytea_insert += start.elapsed().as_secs_f64();
        let text = std::str::from_utf8(payload).unwrap();
        let start = Instant::now();
        client.execute(&insert_jsonb, &[&text]).await.unwrap();
        jsonb_insert += start.elapsed().as_secs_f64();
    }

    let read = |seconds: &mut f64, rows: Vec<tokio_postgres::Row>, as_text: bool| -> (u64, bool) {
        let start = Instant::now();
        let mut events = 0;
        let mut exact = true;
        for (row, written) in rows.iter().zip(&payloads) {
            let bytes: &[u8] = if as_text {
                row.get::<_, &str>(0).as_bytes()
            } else {
                row.get::<_, &[u8]>(0)
            };
            let decoded: Vec<crate::direct::StoredEvent> = serde_json::from_slice(bytes).unwrap();
            events += decoded.len() as u64;
            exact &= bytes == written.as_slice();
        }
        *seconds += start.elapsed().as_secs_f64();
        (events, exact)
    };
    let (mut bytea_read, mut jsonb_read) = (0.0, 0.0);
    let start = Instant::now();
    let rows = client
        .query(
            &format!("SELECT events FROM {schema}.as_bytea ORDER BY id"),
            &[],
        )
        .await
        .unwrap();
    bytea_read += start.elapsed().as_secs_f64();
    let (bytea_events, bytea_exact) = read(&mut bytea_read, rows, false);
    let start = Instant::now();
    let rows = client
        .query(
            &format!("SELECT events::text FROM {schema}.as_jsonb ORDER BY id"),
            &[],
        )
        .await
        .unwrap();
    jsonb_read += start.elapsed().as_secs_f64();
    let (jsonb_events, jsonb_exact) = read(&mut jsonb_read, rows, true);

    let size = |table: &'static str| {
        let client = &client;
        let schema = schema.clone();
        async move {
            client
                .query_one(
                    &format!("SELECT pg_total_relation_size('{schema}.{table}')"),
                    &[],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    let figures = vec![
        PayloadFigures {
            column: "bytea",
            insert_commits_per_second: commits as f64 / bytea_insert,
            read_events_per_second: bytea_events as f64 / bytea_read,
            table_bytes: size("as_bytea").await,
            byte_exact: bytea_exact,
        },
        PayloadFigures {
            column: "jsonb",
            insert_commits_per_second: commits as f64 / jsonb_insert,
            read_events_per_second: jsonb_events as f64 / jsonb_read,
            table_bytes: size("as_jsonb").await,
            byte_exact: jsonb_exact,
        },
    ];
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    figures
}
