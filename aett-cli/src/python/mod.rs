//! Reading a store written by the Python aett (PyPI `aett` 3.x) on SQLite or PostgreSQL.
//!
//! Its `commits` table holds one row per commit (`TenantId`, `StreamIdOriginal`,
//! `StreamRevision`, `Items`, `CommitId`, `CommitSequence`, `CommitStamp`, `CheckpointNumber`,
//! `Headers`, `Payload`), the events a JSON array of `{"body": …, "headers": {"topic": …}}`;
//! its `snapshots` table one row per snapshot, the memento JSON encoded once more as a JSON
//! string. What its layout loses, and what the import does about it:
//!
//! - **Stamps.** PostgreSQL keeps them as `timestamp` without a zone, converted by the server
//!   to its `TimeZone` when written; SQLite as text, with the offset if the Python stamp had one.
//!   A stamp without an offset is read as UTC (the Python library stamps in UTC).
//! - **Padded ids.** PostgreSQL's `StreamId` is `char(64)` (`char(40)` in `snapshots`), padded
//!   with spaces. Commits are read by `StreamIdOriginal`, which holds the id as given; a
//!   snapshot's stream id is its `StreamId` without the trailing spaces (so an id that really
//!   ended in spaces is not told from one that did not).
//! - **Commit ids.** SQLite keeps them as 16 bytes in Python's `bytes_le` order, turned back into
//!   the same UUID.
//! - **Topics.** An event's topic is its `topic` header (or, failing that, a `$type` in its
//!   body, as the Python library reads it); it becomes the message's topic and leaves the
//!   headers. Bodies are copied as stored.
//! - **Stream types** did not exist: imported commits have none.

// Built without one of the two readers, parts of what they share go unused.
#![cfg_attr(
    not(all(feature = "sqlite", feature = "postgres")),
    allow(dead_code, unused_variables)
)]

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;

use std::sync::Arc;

use aett::{Commit, CommitAttempt, EventMessage, Headers, Snapshot};
use chrono::{DateTime, NaiveDateTime, Utc};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use uuid::Uuid;

use crate::error::CliError;
use crate::transfer::{Commits, Source};
use crate::urls;

/// Rows read per query.
const PAGE: i64 = 1000;

/// One row of the Python `commits` table, its columns as stored.
#[derive(Debug)]
pub struct CommitRow {
    tenant_id: String,
    stream_id: String,
    stream_revision: i64,
    items: i64,
    commit_id: Uuid,
    commit_sequence: i64,
    commit_stamp: DateTime<Utc>,
    checkpoint: i64,
    headers: Option<Vec<u8>>,
    payload: Vec<u8>,
}

/// One row of the Python `snapshots` table.
#[derive(Debug)]
pub struct SnapshotRow {
    tenant_id: String,
    stream_id: String,
    stream_revision: i64,
    commit_sequence: i64,
    payload: Vec<u8>,
    headers: Option<Vec<u8>>,
}

/// Which commits to read.
#[derive(Debug, Clone)]
pub enum Query {
    /// Of every stream (of one tenant), in checkpoint order, after a checkpoint.
    Log {
        tenant: Option<String>,
        after_checkpoint: i64,
    },
    /// Of one stream, in sequence order, after a sequence.
    Stream {
        tenant: String,
        stream: String,
        after_sequence: i64,
    },
}

/// The table names a Python store used.
#[derive(Debug, Clone)]
pub struct Tables {
    commits: String,
    snapshots: String,
}

enum Reader {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlite::Reader),
    #[cfg(feature = "postgres")]
    Postgres(postgres::Reader),
    /// Built without either: no reader can be opened.
    #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
    #[allow(dead_code)]
    Unavailable(std::convert::Infallible),
}

impl Reader {
    async fn commits(&self, query: Query) -> Result<Vec<CommitRow>, String> {
        match self {
            #[cfg(feature = "sqlite")]
            Reader::Sqlite(reader) => reader.commits(query).await,
            #[cfg(feature = "postgres")]
            Reader::Postgres(reader) => reader.commits(query).await,
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Reader::Unavailable(never) => match *never {},
        }
    }

    async fn snapshots(&self) -> Result<Vec<SnapshotRow>, String> {
        match self {
            #[cfg(feature = "sqlite")]
            Reader::Sqlite(reader) => reader.snapshots().await,
            #[cfg(feature = "postgres")]
            Reader::Postgres(reader) => reader.snapshots().await,
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Reader::Unavailable(never) => match *never {},
        }
    }
}

/// A Python aett store as the source of an import.
pub struct PythonSource {
    reader: Arc<Reader>,
    shown: String,
}

impl PythonSource {
    /// Opens the store a URL names: `sqlite://PATH` or `postgres://…`, with
    /// `?commits=TABLE&snapshots=TABLE` for other table names.
    pub async fn open(url: &str) -> Result<Self, CliError> {
        let shown = urls::redact(url);
        let fail = |message: String| CliError::Python {
            url: shown.clone(),
            message,
        };
        let (base, tables) = split_tables(url).map_err(&fail)?;
        let reader = if let Some(path) = urls::sqlite_path(&base) {
            open_sqlite(path, tables).map_err(&fail)?
        } else if base.starts_with("postgres://") || base.starts_with("postgresql://") {
            open_postgres(&base, tables).await.map_err(&fail)?
        } else {
            return Err(fail(
                "a Python aett store is sqlite://PATH or postgres://USER:PASSWORD@HOST/DATABASE"
                    .to_owned(),
            ));
        };
        Ok(Self {
            reader: Arc::new(reader),
            shown,
        })
    }

    /// The URL without a password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn rows(&self, query: Query) -> Commits {
        let reader = self.reader.clone();
        let shown = self.shown.clone();
        futures::stream::try_unfold(Some(query), move |next| {
            let reader = reader.clone();
            let shown = shown.clone();
            async move {
                let Some(query) = next else {
                    return Ok::<_, CliError>(None);
                };
                let rows =
                    reader
                        .commits(query.clone())
                        .await
                        .map_err(|message| CliError::Python {
                            url: shown.clone(),
                            message,
                        })?;
                let following = match rows.last() {
                    Some(last) if rows.len() as i64 == PAGE => Some(match query {
                        Query::Log { tenant, .. } => Query::Log {
                            tenant,
                            after_checkpoint: last.checkpoint,
                        },
                        Query::Stream { tenant, stream, .. } => Query::Stream {
                            tenant,
                            stream,
                            after_sequence: last.commit_sequence,
                        },
                    }),
                    _ => None,
                };
                let commits = rows
                    .into_iter()
                    .map(|row| {
                        to_commit(row).map_err(|message| CliError::Python {
                            url: shown.clone(),
                            message,
                        })
                    })
                    .collect::<Vec<_>>();
                Ok(Some((futures::stream::iter(commits), following)))
            }
        })
        .try_flatten()
        .boxed()
    }
}

impl Source for PythonSource {
    fn commits(&self, tenant: Option<&str>) -> Commits {
        self.rows(Query::Log {
            tenant: tenant.map(str::to_owned),
            after_checkpoint: 0,
        })
    }

    fn stream(&self, tenant: &str, stream: &str) -> Commits {
        self.rows(Query::Stream {
            tenant: tenant.to_owned(),
            stream: stream.to_owned(),
            after_sequence: 0,
        })
    }

    fn snapshots(
        &self,
        streams: Vec<(String, String)>,
    ) -> BoxFuture<'_, Result<Vec<Snapshot>, CliError>> {
        Box::pin(async move {
            let fail = |message: String| CliError::Python {
                url: self.shown.clone(),
                message,
            };
            let rows = self.reader.snapshots().await.map_err(fail)?;
            let mut snapshots = Vec::new();
            for row in rows {
                // The stream ids of snapshots may be padded (PostgreSQL's `char(40)`).
                let stream = row.stream_id.trim_end_matches(' ');
                let Some((tenant, stream)) = streams
                    .iter()
                    .find(|(t, s)| *t == row.tenant_id && s.trim_end_matches(' ') == stream)
                else {
                    continue;
                };
                snapshots.push(to_snapshot(row, tenant, stream).map_err(fail)?);
            }
            Ok(snapshots)
        })
    }
}

#[cfg(feature = "sqlite")]
fn open_sqlite(path: String, tables: Tables) -> Result<Reader, String> {
    Ok(Reader::Sqlite(sqlite::Reader::open(&path, tables)?))
}

#[cfg(not(feature = "sqlite"))]
fn open_sqlite(_: String, _: Tables) -> Result<Reader, String> {
    Err("this aett was built without the `sqlite` feature".to_owned())
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str, tables: Tables) -> Result<Reader, String> {
    Ok(Reader::Postgres(postgres::Reader::open(url, tables).await?))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_: &str, _: Tables) -> Result<Reader, String> {
    Err("this aett was built without the `postgres` feature".to_owned())
}

/// Takes `commits=` and `snapshots=` out of the URL's query.
fn split_tables(url: &str) -> Result<(String, Tables), String> {
    let mut tables = Tables {
        commits: "commits".to_owned(),
        snapshots: "snapshots".to_owned(),
    };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), tables));
    };
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("commits", name)) => tables.commits = table_name(name)?,
            Some(("snapshots", name)) => tables.snapshots = table_name(name)?,
            _ => rest.push(pair),
        }
    }
    let base = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((base, tables))
}

/// A table name goes into SQL text: letters, digits, `_`, and one `.` for a schema.
fn table_name(name: &str) -> Result<String, String> {
    let valid = !name.is_empty()
        && name.split('.').count() <= 2
        && name.split('.').all(|part| {
            !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        });
    if valid {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "`{name}` is not a table name (letters, digits and `_`, optionally `schema.table`)"
        ))
    }
}

/// An event message as the Python library stores it.
#[derive(Deserialize)]
struct PythonMessage {
    body: Box<RawValue>,
    #[serde(default)]
    headers: Option<Headers>,
}

/// Reads a `$type` from a body, where the Python library also looks for a topic.
#[derive(Deserialize)]
struct TypedBody {
    #[serde(rename = "$type")]
    topic: Option<String>,
}

/// A Python commit row as an aett commit, numbers, id, stamp and bytes kept.
fn to_commit(row: CommitRow) -> Result<Commit, String> {
    let place = format!(
        "commit {} of stream `{}` of tenant `{}` (checkpoint {})",
        row.commit_sequence, row.stream_id, row.tenant_id, row.checkpoint
    );
    let messages: Vec<PythonMessage> = serde_json::from_slice(&row.payload)
        .map_err(|e| format!("{place}: its events are not a JSON array of messages: {e}"))?;
    if messages.len() as i64 != row.items {
        return Err(format!(
            "{place}: it counts {} events but holds {}",
            row.items,
            messages.len()
        ));
    }
    let mut events = Vec::with_capacity(messages.len());
    for (index, message) in messages.into_iter().enumerate() {
        let mut headers = message.headers.unwrap_or_default();
        let topic = match headers.remove("topic") {
            Some(serde_json::Value::String(topic)) => Some(topic),
            Some(other) => {
                headers.insert("topic".to_owned(), other);
                None
            }
            None => None,
        };
        let topic = match topic {
            Some(topic) => topic,
            None => serde_json::from_str::<TypedBody>(message.body.get())
                .ok()
                .and_then(|body| body.topic)
                .ok_or_else(|| {
                    format!("{place}: event {index} has neither a `topic` header nor a `$type`")
                })?,
        };
        let mut event = EventMessage::from_raw(topic, message.body);
        event.headers = headers;
        events.push(event);
    }
    let headers = headers(row.headers.as_deref(), &place)?;
    let number = |value: i64, what: &str| number(value, what, &place);
    let mut attempt = CommitAttempt::new(
        row.tenant_id,
        row.stream_id,
        number(row.stream_revision, "revision")?,
        number(row.commit_sequence, "sequence")?,
        headers,
        events,
    );
    attempt.commit_id = row.commit_id;
    attempt.commit_stamp = row.commit_stamp;
    attempt.validate().map_err(|e| format!("{place}: {e}"))?;
    Ok(Commit::from_attempt(
        attempt,
        number(row.checkpoint, "checkpoint")?,
    ))
}

/// Stored headers: a JSON object, or nothing (`NULL`, empty, `null`).
fn headers(stored: Option<&[u8]>, place: &str) -> Result<Headers, String> {
    match stored {
        None | Some(b"") | Some(b"null") => Ok(Headers::new()),
        Some(bytes) => serde_json::from_slice(bytes)
            .map_err(|e| format!("{place}: its headers are not a JSON object: {e}")),
    }
}

/// A stored number that aett keeps unsigned.
fn number(value: i64, what: &str, place: &str) -> Result<u64, String> {
    u64::try_from(value).map_err(|_| format!("{place}: its {what} {value} is negative"))
}

/// A Python snapshot row as an aett snapshot of `stream` (the id as its commits hold it).
fn to_snapshot(row: SnapshotRow, tenant: &str, stream: &str) -> Result<Snapshot, String> {
    let place = format!(
        "snapshot at revision {} of stream `{stream}` of tenant `{tenant}`",
        row.stream_revision
    );
    // The Python library stores the memento's JSON text as a JSON string.
    let payload = match serde_json::from_slice::<serde_json::Value>(&row.payload) {
        Ok(serde_json::Value::String(inner)) => RawValue::from_string(inner)
            .map_err(|e| format!("{place}: its memento is not JSON: {e}"))?,
        Ok(_) => RawValue::from_string(String::from_utf8_lossy(&row.payload).into_owned())
            .map_err(|e| format!("{place}: its memento is not JSON: {e}"))?,
        Err(e) => return Err(format!("{place}: its payload is not JSON: {e}")),
    };
    let headers = headers(row.headers.as_deref(), &place)?;
    let number = |value: i64, what: &str| number(value, what, &place);
    Ok(Snapshot {
        tenant_id: tenant.to_owned(),
        stream_id: stream.to_owned(),
        stream_revision: number(row.stream_revision, "revision")?,
        commit_sequence: number(row.commit_sequence, "commit sequence")?,
        payload,
        headers,
    })
}

/// A stamp as the Python library's SQLite adapter writes it (`2026-11-29 12:00:12.303755+00:00`),
/// with or without fractions, offset, or a `T`; without an offset it is UTC.
pub fn parse_stamp(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    for format in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%:z"] {
        if let Ok(stamp) = DateTime::parse_from_str(text, format) {
            return Ok(stamp.with_timezone(&Utc));
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(stamp) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(stamp.and_utc());
        }
    }
    Err(format!("`{text}` is not a time stamp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_parse_as_python_writes_them() {
        let utc = parse_stamp("2026-11-29 12:00:12.303755+00:00").unwrap();
        assert_eq!(utc.to_rfc3339(), "2026-11-29T12:00:12.303755+00:00");
        let offset = parse_stamp("2026-11-29 13:00:12+01:00").unwrap();
        assert_eq!(offset.to_rfc3339(), "2026-11-29T12:00:12+00:00");
        let naive = parse_stamp("2026-11-29 12:00:12.5").unwrap();
        assert_eq!(naive.to_rfc3339(), "2026-11-29T12:00:12.500+00:00");
        assert!(parse_stamp("yesterday").is_err());
    }

    #[test]
    fn table_names_are_checked() {
        let (base, tables) =
            split_tables("postgres://u:p@h/db?commits=py.commits&sslmode=disable").unwrap();
        assert_eq!(base, "postgres://u:p@h/db?sslmode=disable");
        assert_eq!(tables.commits, "py.commits");
        assert_eq!(tables.snapshots, "snapshots");
        assert!(split_tables("sqlite://x.db?commits=a;drop").is_err());
    }

    #[test]
    fn a_python_commit_becomes_an_aett_commit() {
        let row = CommitRow {
            tenant_id: "t".into(),
            stream_id: "s".into(),
            stream_revision: 2,
            items: 2,
            commit_id: Uuid::nil(),
            commit_sequence: 1,
            commit_stamp: parse_stamp("2026-11-29 12:00:00+00:00").unwrap(),
            checkpoint: 7,
            headers: Some(b"{}".to_vec()),
            payload: br#"[{"body":{"a":1},"headers":{"topic":"A","x":"y"}},{"body":{"$type":"B"},"headers":null}]"#.to_vec(),
        };
        let commit = to_commit(row).unwrap();
        assert_eq!(commit.checkpoint, 7);
        assert_eq!(commit.events[0].topic, "A");
        assert_eq!(commit.events[0].body.get(), r#"{"a":1}"#);
        assert_eq!(
            commit.events[0].headers.get("x"),
            Some(&serde_json::json!("y"))
        );
        assert!(!commit.events[0].headers.contains_key("topic"));
        assert_eq!(commit.events[1].topic, "B");
    }
}
