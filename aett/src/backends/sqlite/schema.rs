//! The SQLite schema and statements, built once per store from the validated table names.

/// The schema version this release writes and reads.
pub(crate) const SCHEMA_VERSION: i64 = 3;

/// The table that records each store's schema version.
pub(crate) const VERSION_TABLE: &str = "aett_schema_version";

/// The columns of aett's commits table, in order: `initialize` refuses a table of this name
/// with other columns.
pub(crate) const COMMITS_SHAPE: &[&str] = &[
    "checkpoint",
    "tenant_id",
    "stream_id",
    "stream_revision",
    "items",
    "commit_id",
    "commit_sequence",
    "commit_stamp",
    "headers",
    "events",
    "stream_type",
];

/// The columns of the commits table of schema versions 1 and 2, before commits recorded their
/// stream type: `initialize` migrates such a table.
// Every column but the last, `stream_type`.
pub(crate) const COMMITS_SHAPE_V2: &[&str] = COMMITS_SHAPE.split_at(COMMITS_SHAPE.len() - 1).0;

/// The columns of aett's projection checkpoints table (`{commits}_checkpoints`), in order.
pub(crate) const CHECKPOINTS_SHAPE: &[&str] = &[
    "projection",
    "checkpoint",
    "skipped",
    "owner",
    "lease_until",
];

/// The columns of aett's stream heads table (`{commits}_streams`), in order.
pub(crate) const HEADS_SHAPE: &[&str] = &[
    "tenant_id",
    "stream_id",
    "head_revision",
    "head_sequence",
    "snapshot_revision",
];

/// The columns of aett's snapshots table, in order.
pub(crate) const SNAPSHOTS_SHAPE: &[&str] = &[
    "tenant_id",
    "stream_id",
    "stream_revision",
    "commit_sequence",
    "payload",
    "headers",
];

const COMMIT_COLUMNS: &str = "checkpoint, tenant_id, stream_id, stream_revision, commit_id, commit_sequence, commit_stamp, headers, events, stream_type";

/// Every SQL text the store runs.
#[derive(Debug)]
pub(crate) struct Statements {
    pub commits_table: String,
    pub snapshots_table: String,
    pub heads_table: String,
    pub checkpoints_table: String,
    pub create: String,
    pub add_stream_type: String,
    pub filtered_from_checkpoint: String,
    pub stream_type_of: String,
    pub load_checkpoint: String,
    pub lease_holder: String,
    pub take_lease: String,
    pub save_checkpoint: String,
    pub release_lease: String,
    pub backfill_heads: String,
    pub streams_to_snapshot: String,
    pub has_snapshot_from: String,
    pub truncate: String,
    pub purge_heads: String,
    pub delete_stream_head: String,
    pub drop: String,
    pub head: String,
    pub has_commit_id: String,
    pub later_commits: String,
    pub insert_commit: String,
    pub by_revision: String,
    pub replay_by_revision: String,
    pub by_time: String,
    pub tenant_by_time: String,
    pub from_checkpoint: String,
    pub tenant_from_checkpoint: String,
    pub get_snapshot: String,
    pub replay_snapshot: String,
    pub add_snapshot: String,
    pub purge_commits: String,
    pub purge_snapshots: String,
    pub delete_stream_commits: String,
    pub delete_stream_snapshots: String,
    pub insert_deletion_notice: String,
}

impl Statements {
    pub fn new(commits: &str, snapshots: &str) -> Self {
        let c = format!("\"{commits}\"");
        let s = format!("\"{snapshots}\"");
        let heads = format!("{commits}_streams");
        let h = format!("\"{heads}\"");
        let checkpoints = format!("{commits}_checkpoints");
        let p = format!("\"{checkpoints}\"");
        Self {
            commits_table: commits.to_owned(),
            snapshots_table: snapshots.to_owned(),
            heads_table: heads.clone(),
            checkpoints_table: checkpoints,
            add_stream_type: format!("ALTER TABLE {c} ADD COLUMN stream_type TEXT"),
            // Tenants and stream types as JSON arrays (NULL: any); topics are filtered by the
            // reader, as they live inside the events.
            filtered_from_checkpoint: format!(
                "SELECT {COMMIT_COLUMNS} FROM {c}
                 WHERE checkpoint > ?3
                   AND (?1 IS NULL OR tenant_id IN (SELECT value FROM json_each(?1)))
                   AND (?2 IS NULL OR stream_type IN (SELECT value FROM json_each(?2)))
                 ORDER BY checkpoint LIMIT ?4"
            ),
            stream_type_of: format!(
                "SELECT stream_type FROM {c} WHERE tenant_id = ?1 AND stream_id = ?2 AND commit_sequence > 0
                 ORDER BY commit_sequence DESC LIMIT 1"
            ),
            load_checkpoint: format!("SELECT checkpoint, skipped FROM {p} WHERE projection = ?1"),
            lease_holder: format!("SELECT owner, lease_until FROM {p} WHERE projection = ?1"),
            take_lease: format!(
                "INSERT INTO {p} (projection, checkpoint, skipped, owner, lease_until) VALUES (?1, 0, '[]', ?2, ?3)
                 ON CONFLICT (projection) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until"
            ),
            // Fenced: only the lease's holder moves the checkpoint.
            save_checkpoint: format!(
                "UPDATE {p} SET checkpoint = ?3, lease_until = ?4,
                     skipped = CASE WHEN ?5 IS NULL THEN skipped ELSE json_insert(skipped, '$[#]', json(?5)) END
                 WHERE projection = ?1 AND owner = ?2"
            ),
            release_lease: format!(
                "UPDATE {p} SET owner = NULL, lease_until = NULL WHERE projection = ?1 AND owner = ?2"
            ),
            // `checkpoint` is an AUTOINCREMENT rowid: strictly increasing, never reused even
            // after a purge. `items` (events in the commit) lets revision ranges be filtered in
            // SQL: the first revision of a commit is stream_revision - items + 1.
            create: format!(
                "CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (object TEXT PRIMARY KEY, version INTEGER NOT NULL);
                 CREATE TABLE IF NOT EXISTS {c} (
                     checkpoint INTEGER PRIMARY KEY AUTOINCREMENT,
                     tenant_id TEXT NOT NULL,
                     stream_id TEXT NOT NULL,
                     stream_revision INTEGER NOT NULL,
                     items INTEGER NOT NULL,
                     commit_id BLOB NOT NULL,
                     commit_sequence INTEGER NOT NULL,
                     commit_stamp INTEGER NOT NULL,
                     headers BLOB NOT NULL,
                     events BLOB NOT NULL,
                     stream_type TEXT,
                     UNIQUE (tenant_id, stream_id, commit_sequence),
                     UNIQUE (tenant_id, stream_id, commit_id)
                 );
                 CREATE INDEX IF NOT EXISTS \"{commits}_by_revision\" ON {c} (tenant_id, stream_id, stream_revision);
                 CREATE INDEX IF NOT EXISTS \"{commits}_by_tenant\" ON {c} (tenant_id, checkpoint);
                 CREATE TABLE IF NOT EXISTS {s} (
                     tenant_id TEXT NOT NULL,
                     stream_id TEXT NOT NULL,
                     stream_revision INTEGER NOT NULL,
                     commit_sequence INTEGER NOT NULL,
                     payload BLOB NOT NULL,
                     headers BLOB NOT NULL,
                     PRIMARY KEY (tenant_id, stream_id, stream_revision)
                 );
                 -- Each stream's head and newest snapshot, kept by triggers in the same statement
                 -- as the commit or snapshot: the index that finds streams needing a snapshot
                 -- without scanning commits.
                 CREATE TABLE IF NOT EXISTS {h} (
                     tenant_id TEXT NOT NULL,
                     stream_id TEXT NOT NULL,
                     head_revision INTEGER NOT NULL,
                     head_sequence INTEGER NOT NULL,
                     snapshot_revision INTEGER,
                     PRIMARY KEY (tenant_id, stream_id)
                 );
                 CREATE TRIGGER IF NOT EXISTS \"{commits}_keeps_heads\" AFTER INSERT ON {c}
                 WHEN NEW.commit_sequence > 0 BEGIN
                     INSERT INTO {h} (tenant_id, stream_id, head_revision, head_sequence)
                     VALUES (NEW.tenant_id, NEW.stream_id, NEW.stream_revision, NEW.commit_sequence)
                     ON CONFLICT (tenant_id, stream_id) DO UPDATE
                     SET head_revision = excluded.head_revision, head_sequence = excluded.head_sequence;
                 END;
                 -- Each projection's checkpoint, the damaged commits it skipped (a JSON array)
                 -- and its lease: the holder's id and until when (microseconds).
                 CREATE TABLE IF NOT EXISTS {p} (
                     projection TEXT PRIMARY KEY,
                     checkpoint INTEGER NOT NULL,
                     skipped TEXT NOT NULL,
                     owner BLOB,
                     lease_until INTEGER
                 );
                 CREATE TRIGGER IF NOT EXISTS \"{snapshots}_keeps_heads\" AFTER INSERT ON {s} BEGIN
                     UPDATE {h} SET snapshot_revision = MAX(COALESCE(snapshot_revision, 0), NEW.stream_revision)
                     WHERE tenant_id = NEW.tenant_id AND stream_id = NEW.stream_id;
                 END;"
            ),
            backfill_heads: format!(
                "INSERT INTO {h} (tenant_id, stream_id, head_revision, head_sequence, snapshot_revision)
                 SELECT c.tenant_id, c.stream_id, c.stream_revision, c.commit_sequence,
                        (SELECT MAX(stream_revision) FROM {s} s WHERE s.tenant_id = c.tenant_id AND s.stream_id = c.stream_id)
                 FROM {c} c
                 WHERE c.commit_sequence = (SELECT MAX(commit_sequence) FROM {c} l
                                            WHERE l.tenant_id = c.tenant_id AND l.stream_id = c.stream_id)
                   AND c.commit_sequence > 0
                 ON CONFLICT DO NOTHING"
            ),
            drop: format!("DROP TABLE IF EXISTS {c}; DROP TABLE IF EXISTS {s}; DROP TABLE IF EXISTS {h}; DROP TABLE IF EXISTS {p};"),
            streams_to_snapshot: format!(
                "SELECT stream_id, head_revision, snapshot_revision FROM {h}
                 WHERE tenant_id = ?1 AND head_revision - COALESCE(snapshot_revision, 0) >= ?2 AND stream_id > ?3
                 ORDER BY stream_id LIMIT ?4"
            ),
            has_snapshot_from: format!(
                "SELECT 1 FROM {s} WHERE tenant_id = ?1 AND stream_id = ?2 AND stream_revision >= ?3 LIMIT 1"
            ),
            truncate: format!(
                "DELETE FROM {c} WHERE tenant_id = ?1 AND stream_id = ?2 AND commit_sequence > 0
                   AND stream_revision < ?3
                   AND commit_sequence < (SELECT MAX(commit_sequence) FROM {c} WHERE tenant_id = ?1 AND stream_id = ?2)"
            ),
            purge_heads: format!("DELETE FROM {h} WHERE tenant_id = ?1"),
            delete_stream_head: format!("DELETE FROM {h} WHERE tenant_id = ?1 AND stream_id = ?2"),
            head: format!(
                "SELECT commit_sequence, stream_revision FROM {c}
                 WHERE tenant_id = ?1 AND stream_id = ?2 AND commit_sequence > 0
                 ORDER BY commit_sequence DESC LIMIT 1"
            ),
            has_commit_id: format!(
                "SELECT 1 FROM {c} WHERE tenant_id = ?1 AND stream_id = ?2 AND commit_id = ?3"
            ),
            later_commits: format!(
                "SELECT {COMMIT_COLUMNS} FROM {c}
                 WHERE tenant_id = ?1 AND stream_id = ?2 AND commit_sequence >= ?3 ORDER BY commit_sequence"
            ),
            // One statement: the row goes in only if the attempt follows the stream's head. One
            // look at the newest commit checks its sequence and revision; an empty stream takes
            // only a first commit (sequence 1, its events from revision 1).
            insert_commit: format!(
                "INSERT INTO {c} (tenant_id, stream_id, stream_revision, items, commit_id, commit_sequence, commit_stamp, headers, events, stream_type)
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10
                 WHERE COALESCE((SELECT commit_sequence = ?6 - 1 AND stream_revision = ?3 - ?4 FROM {c}
                                 WHERE tenant_id = ?1 AND stream_id = ?2 AND commit_sequence > 0
                                 ORDER BY commit_sequence DESC LIMIT 1),
                                ?6 = 1 AND ?3 = ?4)"
            ),
            by_revision: format!(
                "SELECT {COMMIT_COLUMNS} FROM {c}
                 WHERE tenant_id = ?1 AND stream_id = ?2 AND stream_revision >= ?3
                   AND stream_revision - items + 1 <= ?4 AND commit_sequence > ?5
                 ORDER BY commit_sequence LIMIT ?6"
            ),
            replay_by_revision: format!(
                "SELECT commit_sequence, stream_revision, items, events, stream_type FROM {c}
                 WHERE tenant_id = ?1 AND stream_id = ?2 AND stream_revision >= ?3
                   AND stream_revision - items + 1 <= ?4 AND commit_sequence > ?5
                 ORDER BY commit_sequence LIMIT ?6"
            ),
            by_time: format!(
                "SELECT {COMMIT_COLUMNS} FROM {c}
                 WHERE tenant_id = ?1 AND stream_id = ?2 AND commit_stamp <= ?3 AND commit_sequence > ?4
                 ORDER BY commit_sequence LIMIT ?5"
            ),
            tenant_by_time: format!(
                "SELECT {COMMIT_COLUMNS} FROM {c}
                 WHERE tenant_id = ?1 AND commit_stamp <= ?2 AND checkpoint > ?3 AND commit_sequence > 0
                 ORDER BY checkpoint LIMIT ?4"
            ),
            from_checkpoint: format!(
                "SELECT {COMMIT_COLUMNS} FROM {c} WHERE checkpoint > ?1 ORDER BY checkpoint LIMIT ?2"
            ),
            tenant_from_checkpoint: format!(
                "SELECT {COMMIT_COLUMNS} FROM {c} WHERE tenant_id = ?1 AND checkpoint > ?2
                 ORDER BY checkpoint LIMIT ?3"
            ),
            get_snapshot: format!(
                "SELECT stream_revision, commit_sequence, payload, headers FROM {s}
                 WHERE tenant_id = ?1 AND stream_id = ?2 AND stream_revision <= ?3
                 ORDER BY stream_revision DESC LIMIT 1"
            ),
            replay_snapshot: format!(
                "SELECT stream_revision, commit_sequence, payload, headers FROM {s}
                 WHERE tenant_id = ?1 AND stream_id = ?2 AND stream_revision <= ?3
                 ORDER BY stream_revision DESC LIMIT 1"
            ),
            add_snapshot: format!(
                "INSERT OR REPLACE INTO {s} (tenant_id, stream_id, stream_revision, commit_sequence, payload, headers)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
            ),
            purge_commits: format!("DELETE FROM {c} WHERE tenant_id = ?1"),
            purge_snapshots: format!("DELETE FROM {s} WHERE tenant_id = ?1"),
            // The stream's commits; its earlier deletion notices stay in the log.
            delete_stream_commits: format!(
                "DELETE FROM {c} WHERE tenant_id = ?1 AND stream_id = ?2 AND commit_sequence > 0"
            ),
            delete_stream_snapshots: format!(
                "DELETE FROM {s} WHERE tenant_id = ?1 AND stream_id = ?2"
            ),
            insert_deletion_notice: format!(
                "INSERT INTO {c} (tenant_id, stream_id, stream_revision, items, commit_id, commit_sequence, commit_stamp, headers, events, stream_type)
                 VALUES (?1, ?2, 0, 0, ?3, ?4, ?5, x'7b7d', x'5b5d', ?6)"
            ),
        }
    }
}
