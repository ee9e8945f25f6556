//! The Python aett's SQLite tables.

use std::sync::{Arc, Mutex};

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, Row};
use uuid::Uuid;

use super::{parse_stamp, CommitRow, Query, SnapshotRow, Tables, PAGE};

/// Reads a Python aett SQLite file (opened read-only).
pub struct Reader {
    connection: Arc<Mutex<Connection>>,
    tables: Tables,
}

impl Reader {
    /// Opens the file; it must exist and hold the commits table.
    pub fn open(path: &str, tables: Tables) -> Result<Self, String> {
        if !std::path::Path::new(path).is_file() {
            return Err(format!("no such file `{path}`"));
        }
        let connection = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("cannot open `{path}`: {e}"))?;
        let exists: bool = connection
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                [&tables.commits],
                |row| row.get(0),
            )
            .map_err(|e| format!("cannot read `{path}`: {e}"))?;
        if !exists {
            return Err(format!("`{path}` has no table `{}`", tables.commits));
        }
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
            tables,
        })
    }

    /// A page of commits.
    pub async fn commits(&self, query: Query) -> Result<Vec<CommitRow>, String> {
        let connection = self.connection.clone();
        let table = self.tables.commits.clone();
        blocking(move || {
            let connection = connection.lock().map_err(|_| "a reader panicked".to_owned())?;
            let columns = "TenantId, StreamIdOriginal, StreamRevision, Items, CommitId, \
                           CommitSequence, CommitStamp, CheckpointNumber, Headers, Payload";
            let mut rows = Vec::new();
            let mut collect = |row: &Row<'_>| -> rusqlite::Result<()> {
                rows.push(read_commit(row));
                Ok(())
            };
            let result = match &query {
                Query::Log {
                    tenant: None,
                    after_checkpoint,
                } => connection
                    .prepare(&format!(
                        "SELECT {columns} FROM {table} WHERE CheckpointNumber > ?1 \
                         ORDER BY CheckpointNumber LIMIT ?2"
                    ))
                    .and_then(|mut s| {
                        s.query(params![after_checkpoint, PAGE])?
                            .and_then(|row| collect(row))
                            .collect::<rusqlite::Result<Vec<()>>>()
                    }),
                Query::Log {
                    tenant: Some(tenant),
                    after_checkpoint,
                } => connection
                    .prepare(&format!(
                        "SELECT {columns} FROM {table} WHERE TenantId = ?1 AND CheckpointNumber > ?2 \
                         ORDER BY CheckpointNumber LIMIT ?3"
                    ))
                    .and_then(|mut s| {
                        s.query(params![tenant, after_checkpoint, PAGE])?
                            .and_then(|row| collect(row))
                            .collect::<rusqlite::Result<Vec<()>>>()
                    }),
                Query::Stream {
                    tenant,
                    stream,
                    after_sequence,
                } => connection
                    .prepare(&format!(
                        "SELECT {columns} FROM {table} WHERE TenantId = ?1 AND StreamIdOriginal = ?2 \
                         AND CommitSequence > ?3 ORDER BY CommitSequence LIMIT ?4"
                    ))
                    .and_then(|mut s| {
                        s.query(params![tenant, stream, after_sequence, PAGE])?
                            .and_then(|row| collect(row))
                            .collect::<rusqlite::Result<Vec<()>>>()
                    }),
            };
            result.map_err(|e| format!("cannot read `{table}`: {e}"))?;
            rows.into_iter().collect()
        })
        .await
    }

    /// Every snapshot (an absent snapshots table holds none).
    pub async fn snapshots(&self) -> Result<Vec<SnapshotRow>, String> {
        let connection = self.connection.clone();
        let table = self.tables.snapshots.clone();
        blocking(move || {
            let connection = connection.lock().map_err(|_| "a reader panicked".to_owned())?;
            let exists: bool = connection
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                    [&table],
                    |row| row.get(0),
                )
                .map_err(|e| format!("cannot read the schema: {e}"))?;
            if !exists {
                return Ok(Vec::new());
            }
            let mut statement = connection
                .prepare(&format!(
                    "SELECT TenantId, StreamId, StreamRevision, CommitSequence, Payload FROM {table} \
                     ORDER BY TenantId, StreamId, StreamRevision"
                ))
                .map_err(|e| format!("cannot read `{table}`: {e}"))?;
            let rows = statement
                .query_map([], |row| {
                    Ok(SnapshotRow {
                        tenant_id: row.get(0)?,
                        stream_id: row.get(1)?,
                        stream_revision: row.get(2)?,
                        commit_sequence: row.get(3)?,
                        payload: bytes(row.get_ref(4)?),
                        headers: None,
                    })
                })
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(|e| format!("cannot read `{table}`: {e}"))?;
            Ok(rows)
        })
        .await
    }
}

/// One commit row; a value of the wrong kind is an error naming the row, never a panic.
fn read_commit(row: &Row<'_>) -> Result<CommitRow, String> {
    let checkpoint: i64 = row.get(7).map_err(|e| format!("a commit row: {e}"))?;
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        format!("the commit at checkpoint {checkpoint}: its {what}: {e}")
    };
    let commit_id = match row.get_ref(4).map_err(|e| fail("id", &e))? {
        // `uuid.bytes_le`, as the Python library binds it.
        ValueRef::Blob(b) if b.len() == 16 => {
            Uuid::from_bytes_le(b.try_into().expect("16 bytes, checked above"))
        }
        ValueRef::Text(t) => {
            Uuid::parse_str(&String::from_utf8_lossy(t)).map_err(|e| fail("id", &e))?
        }
        other => {
            return Err(fail(
                "id",
                &format!("{:?} is not a UUID", other.data_type()),
            ))
        }
    };
    let commit_stamp = match row.get_ref(6).map_err(|e| fail("stamp", &e))? {
        ValueRef::Text(t) => {
            parse_stamp(&String::from_utf8_lossy(t)).map_err(|e| fail("stamp", &e))?
        }
        other => {
            return Err(fail(
                "stamp",
                &format!("{:?} is not text", other.data_type()),
            ))
        }
    };
    let headers = match row.get_ref(8).map_err(|e| fail("headers", &e))? {
        ValueRef::Null => None,
        value => Some(bytes(value)),
    };
    Ok(CommitRow {
        tenant_id: row.get(0).map_err(|e| fail("tenant", &e))?,
        stream_id: row.get(1).map_err(|e| fail("stream", &e))?,
        stream_revision: row.get(2).map_err(|e| fail("revision", &e))?,
        items: row.get(3).map_err(|e| fail("item count", &e))?,
        commit_id,
        commit_sequence: row.get(5).map_err(|e| fail("sequence", &e))?,
        commit_stamp,
        checkpoint,
        headers,
        payload: bytes(row.get_ref(9).map_err(|e| fail("events", &e))?),
    })
}

/// The bytes of a text or blob value (others as their text).
fn bytes(value: ValueRef<'_>) -> Vec<u8> {
    match value {
        ValueRef::Blob(b) | ValueRef::Text(b) => b.to_vec(),
        ValueRef::Null => Vec::new(),
        ValueRef::Integer(i) => i.to_string().into_bytes(),
        ValueRef::Real(r) => r.to_string().into_bytes(),
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("the reading thread failed: {e}"))?
}
