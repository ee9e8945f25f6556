//! The Python aett's PostgreSQL tables.

use tokio_postgres::{Client, NoTls, Row};

use super::{CommitRow, Query, SnapshotRow, Tables, PAGE};

/// Reads a Python aett PostgreSQL database (plain connection; it only reads).
pub struct Reader {
    client: Client,
    tables: Tables,
}

impl Reader {
    /// Connects; the commits table must exist.
    pub async fn open(url: &str, tables: Tables) -> Result<Self, String> {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        tokio::spawn(async move {
            // Its failure shows as the next query's error.
            let _ = connection.await;
        });
        let exists: bool = client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&tables.commits])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|e| format!("cannot read the schema: {e}"))?;
        if !exists {
            return Err(format!("the database has no table `{}`", tables.commits));
        }
        Ok(Self { client, tables })
    }

    /// A page of commits.
    pub async fn commits(&self, query: Query) -> Result<Vec<CommitRow>, String> {
        let table = &self.tables.commits;
        let columns =
            "TenantId, StreamIdOriginal, StreamRevision::int8, Items::int8, CommitId::text, \
                       CommitSequence::int8, CommitStamp, CheckpointNumber, Headers, Payload";
        let rows = match &query {
            Query::Log {
                tenant: None,
                after_checkpoint,
            } => {
                self.client
                    .query(
                        &format!(
                            "SELECT {columns} FROM {table} WHERE CheckpointNumber > $1 \
                             ORDER BY CheckpointNumber LIMIT $2"
                        ),
                        &[after_checkpoint, &PAGE],
                    )
                    .await
            }
            Query::Log {
                tenant: Some(tenant),
                after_checkpoint,
            } => {
                self.client
                    .query(
                        &format!(
                            "SELECT {columns} FROM {table} WHERE TenantId = $1 AND CheckpointNumber > $2 \
                             ORDER BY CheckpointNumber LIMIT $3"
                        ),
                        &[tenant, after_checkpoint, &PAGE],
                    )
                    .await
            }
            Query::Stream {
                tenant,
                stream,
                after_sequence,
            } => {
                self.client
                    .query(
                        &format!(
                            "SELECT {columns} FROM {table} WHERE TenantId = $1 AND StreamIdOriginal = $2 \
                             AND CommitSequence > $3 ORDER BY CommitSequence LIMIT $4"
                        ),
                        &[tenant, stream, &(*after_sequence as i32), &PAGE],
                    )
                    .await
            }
        }
        .map_err(|e| format!("cannot read `{table}`: {e}"))?;
        rows.iter().map(read_commit).collect()
    }

    /// Every snapshot (an absent snapshots table holds none).
    pub async fn snapshots(&self) -> Result<Vec<SnapshotRow>, String> {
        let table = &self.tables.snapshots;
        let exists: bool = self
            .client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[table])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|e| format!("cannot read the schema: {e}"))?;
        if !exists {
            return Ok(Vec::new());
        }
        let rows = self
            .client
            .query(
                &format!(
                    "SELECT TenantId, rtrim(StreamId), StreamRevision::int8, CommitSequence::int8, \
                     Payload, Headers FROM {table} ORDER BY TenantId, StreamId, StreamRevision"
                ),
                &[],
            )
            .await
            .map_err(|e| format!("cannot read `{table}`: {e}"))?;
        rows.iter()
            .map(|row| {
                let fail = |e: tokio_postgres::Error| format!("a row of `{table}`: {e}");
                Ok(SnapshotRow {
                    tenant_id: row.try_get(0).map_err(fail)?,
                    stream_id: row.try_get(1).map_err(fail)?,
                    stream_revision: row.try_get(2).map_err(fail)?,
                    commit_sequence: row.try_get(3).map_err(fail)?,
                    payload: row.try_get(4).map_err(fail)?,
                    headers: row.try_get(5).map_err(fail)?,
                })
            })
            .collect()
    }
}

/// One commit row; a value of the wrong kind is an error naming the row, never a panic.
fn read_commit(row: &Row) -> Result<CommitRow, String> {
    let checkpoint: i64 = row.try_get(7).map_err(|e| format!("a commit row: {e}"))?;
    let fail = |what: &str, e: &dyn std::fmt::Display| {
        format!("the commit at checkpoint {checkpoint}: its {what}: {e}")
    };
    let id: String = row.try_get(4).map_err(|e| fail("id", &e))?;
    let stamp: chrono::NaiveDateTime = row.try_get(6).map_err(|e| fail("stamp", &e))?;
    Ok(CommitRow {
        tenant_id: row.try_get(0).map_err(|e| fail("tenant", &e))?,
        stream_id: row.try_get(1).map_err(|e| fail("stream", &e))?,
        stream_revision: row.try_get(2).map_err(|e| fail("revision", &e))?,
        items: row.try_get(3).map_err(|e| fail("item count", &e))?,
        commit_id: uuid::Uuid::parse_str(&id).map_err(|e| fail("id", &e))?,
        commit_sequence: row.try_get(5).map_err(|e| fail("sequence", &e))?,
        // `timestamp` without a zone: the server wrote it in its `TimeZone`, UTC by default.
        commit_stamp: stamp.and_utc(),
        checkpoint,
        headers: row.try_get(8).map_err(|e| fail("headers", &e))?,
        payload: row.try_get(9).map_err(|e| fail("events", &e))?,
    })
}
