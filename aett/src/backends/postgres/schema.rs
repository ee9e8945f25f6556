//! The PostgreSQL schema and statements, built once per store from the validated names.

/// The schema version this release writes and reads.
pub(crate) const SCHEMA_VERSION: i32 = 3;

/// The columns of aett's commits table, in order.
pub(crate) const COMMITS_SHAPE: &[&str] = &[
    "checkpoint",
    "stream_key",
    "tenant_key",
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

/// The columns of the commits table of schema versions 1 and 2, which `initialize` migrates.
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
    "stream_key",
    "tenant_key",
    "tenant_id",
    "stream_id",
    "head_revision",
    "head_sequence",
    "snapshot_revision",
];

/// The columns of aett's snapshots table, in order.
pub(crate) const SNAPSHOTS_SHAPE: &[&str] = &[
    "stream_key",
    "tenant_key",
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
    pub object: String,
    pub channel: String,
    pub add_stream_type: String,
    pub filtered_from_checkpoint: String,
    pub stream_type_of: String,
    pub load_checkpoint: String,
    pub take_lease: String,
    pub save_checkpoint: String,
    pub release_lease: String,
    pub create: String,
    pub backfill_heads: String,
    pub streams_to_snapshot: String,
    pub has_snapshot_from: String,
    pub truncate: String,
    pub purge_heads: String,
    pub delete_stream_head: String,
    pub read_version: String,
    pub write_version: String,
    pub update_version: String,
    pub drop: String,
    pub insert_commit: String,
    pub has_commit_id: String,
    pub head: String,
    pub later_commits: String,
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
    pub fn new(schema: &str, commits: &str, snapshots: &str) -> Self {
        let q = |name: &str| format!("\"{schema}\".\"{name}\"");
        let heads = format!("{commits}_streams");
        let checkpoints = format!("{commits}_checkpoints");
        let (c, s, v, h, p) = (
            q(commits),
            q(snapshots),
            q("aett_schema_version"),
            q(&heads),
            q(&checkpoints),
        );
        Self {
            object: format!("{schema}.{commits}"),
            // NOTIFY channels are identifiers of at most 63 bytes: a digest of the table's name.
            channel: format!("aett_{:016x}", {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(format!("{schema}.{commits}").as_bytes());
                u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
            }),
            add_stream_type: format!("ALTER TABLE {c} ADD COLUMN IF NOT EXISTS stream_type text"),
            // Tenant keys and stream types as arrays (NULL: any); topics are filtered by the
            // reader, as they live inside the events.
            filtered_from_checkpoint: format!(
                "SELECT {COMMIT_COLUMNS}, pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon
                 FROM {c} WHERE checkpoint > $1
                   AND ($2::bytea[] IS NULL OR tenant_key = ANY($2::bytea[]))
                   AND ($3::text[] IS NULL OR stream_type = ANY($3::text[]))
                 ORDER BY checkpoint LIMIT $4"
            ),
            stream_type_of: format!(
                "SELECT stream_type FROM {c} WHERE stream_key = $1 AND commit_sequence > 0
                 ORDER BY commit_sequence DESC LIMIT 1"
            ),
            load_checkpoint: format!("SELECT checkpoint, skipped::text FROM {p} WHERE projection = $1"),
            // Takes the lease when it is free, expired or already ours, in one statement; the
            // server's clock decides expiry.
            take_lease: format!(
                "WITH taken AS (
                 INSERT INTO {p} AS p (projection, checkpoint, skipped, owner, lease_until)
                 VALUES ($1, 0, '[]'::jsonb, $2, clock_timestamp() + $3::bigint * interval '1 microsecond')
                 ON CONFLICT (projection) DO UPDATE
                 SET owner = EXCLUDED.owner, lease_until = EXCLUDED.lease_until
                 WHERE p.owner IS NULL OR p.owner = EXCLUDED.owner OR p.lease_until <= clock_timestamp()
                 RETURNING checkpoint, skipped::text)
                 SELECT checkpoint, skipped, NULL::timestamptz FROM taken
                 UNION ALL
                 SELECT NULL, NULL, lease_until FROM {p} WHERE projection = $1 AND NOT EXISTS (SELECT 1 FROM taken)"
            ),
            save_checkpoint: format!(
                "UPDATE {p} SET checkpoint = $3, lease_until = clock_timestamp() + $4::bigint * interval '1 microsecond',
                     skipped = CASE WHEN $5::text IS NULL THEN skipped ELSE skipped || jsonb_build_array($5::text::jsonb) END
                 WHERE projection = $1 AND owner = $2"
            ),
            release_lease: format!(
                "UPDATE {p} SET owner = NULL, lease_until = NULL WHERE projection = $1 AND owner = $2"
            ),
            // `checkpoint` is the id of the transaction that wrote the commit (one commit per
            // transaction). Reading from a checkpoint hands out only commits whose transaction
            // id is below the oldest transaction still running: those are final, so a reader
            // never passes a commit that becomes visible later. `stream_key` and `tenant_key`
            // are SHA-256 digests of the ids, so any id length fits the unique indexes.
            create: format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\";
                 CREATE TABLE IF NOT EXISTS {v} (object text PRIMARY KEY, version integer NOT NULL);
                 CREATE TABLE IF NOT EXISTS {c} (
                     checkpoint bigint PRIMARY KEY,
                     stream_key bytea NOT NULL,
                     tenant_key bytea NOT NULL,
                     tenant_id text NOT NULL,
                     stream_id text NOT NULL,
                     stream_revision bigint NOT NULL,
                     items integer NOT NULL,
                     commit_id uuid NOT NULL,
                     commit_sequence bigint NOT NULL,
                     commit_stamp timestamptz NOT NULL,
                     headers bytea NOT NULL,
                     events bytea NOT NULL,
                     stream_type text,
                     CONSTRAINT \"{commits}_sequence\" UNIQUE (stream_key, commit_sequence),
                     CONSTRAINT \"{commits}_commit_id\" UNIQUE (stream_key, commit_id)
                 );
                 CREATE INDEX IF NOT EXISTS \"{commits}_by_revision\" ON {c} (stream_key, stream_revision);
                 CREATE INDEX IF NOT EXISTS \"{commits}_by_tenant\" ON {c} (tenant_key, checkpoint);
                 CREATE TABLE IF NOT EXISTS {s} (
                     stream_key bytea NOT NULL,
                     tenant_key bytea NOT NULL,
                     tenant_id text NOT NULL,
                     stream_id text NOT NULL,
                     stream_revision bigint NOT NULL,
                     commit_sequence bigint NOT NULL,
                     payload bytea NOT NULL,
                     headers bytea NOT NULL,
                     PRIMARY KEY (stream_key, stream_revision)
                 );
                 CREATE INDEX IF NOT EXISTS \"{snapshots}_by_tenant\" ON {s} (tenant_key);
                 -- Each stream's head and newest snapshot, written by the statement that writes
                 -- the commit or snapshot: the index that finds streams needing a snapshot
                 -- without scanning commits.
                 CREATE TABLE IF NOT EXISTS {h} (
                     stream_key bytea PRIMARY KEY,
                     tenant_key bytea NOT NULL,
                     tenant_id text NOT NULL,
                     stream_id text NOT NULL,
                     head_revision bigint NOT NULL,
                     head_sequence bigint NOT NULL,
                     snapshot_revision bigint
                 );
                 CREATE INDEX IF NOT EXISTS \"{heads}_by_tenant\" ON {h} (tenant_key, stream_id);
                 -- Each projection's checkpoint, the damaged commits it skipped, and its lease.
                 CREATE TABLE IF NOT EXISTS {p} (
                     projection text PRIMARY KEY,
                     checkpoint bigint NOT NULL,
                     skipped jsonb NOT NULL,
                     owner uuid,
                     lease_until timestamptz
                 );"
            ),
            read_version: format!("SELECT version FROM {v} WHERE object = $1"),
            write_version: format!("INSERT INTO {v} (object, version) VALUES ($1, $2)"),
            update_version: format!("UPDATE {v} SET version = $2 WHERE object = $1"),
            drop: format!("DROP TABLE IF EXISTS {c}; DROP TABLE IF EXISTS {s}; DROP TABLE IF EXISTS {h}; DROP TABLE IF EXISTS {p};"),
            backfill_heads: format!(
                "INSERT INTO {h} (stream_key, tenant_key, tenant_id, stream_id, head_revision, head_sequence, snapshot_revision)
                 SELECT DISTINCT ON (c.stream_key) c.stream_key, c.tenant_key, c.tenant_id, c.stream_id,
                        c.stream_revision, c.commit_sequence,
                        (SELECT max(s.stream_revision) FROM {s} s WHERE s.stream_key = c.stream_key)
                 FROM {c} c WHERE c.commit_sequence > 0
                 ORDER BY c.stream_key, c.commit_sequence DESC
                 ON CONFLICT DO NOTHING"
            ),
            streams_to_snapshot: format!(
                "SELECT stream_id, head_revision, snapshot_revision FROM {h}
                 WHERE tenant_key = $1 AND head_revision - COALESCE(snapshot_revision, 0) >= $2 AND stream_id > $3
                 ORDER BY stream_id LIMIT $4"
            ),
            has_snapshot_from: format!(
                "SELECT 1 FROM {s} WHERE stream_key = $1 AND stream_revision >= $2 LIMIT 1"
            ),
            truncate: format!(
                "DELETE FROM {c} WHERE stream_key = $1 AND commit_sequence > 0 AND stream_revision < $2
                   AND commit_sequence < (SELECT max(commit_sequence) FROM {c} WHERE stream_key = $1)"
            ),
            purge_heads: format!("DELETE FROM {h} WHERE tenant_key = $1"),
            delete_stream_head: format!("DELETE FROM {h} WHERE stream_key = $1"),
            // One round trip: the row goes in only if the attempt follows the stream's head (one
            // look at the newest commit checks its sequence and revision; an empty stream takes
            // only a first commit);
            // a taken sequence that another writer has not committed yet waits on the unique
            // index and then fails with a unique violation.
            // The stream's head row is written by the same statement, only when the commit went in.
            insert_commit: format!(
                "WITH inserted AS (
                 INSERT INTO {c} (checkpoint, stream_key, tenant_key, tenant_id, stream_id, stream_revision, items,
                                  commit_id, commit_sequence, commit_stamp, headers, events, stream_type)
                 SELECT pg_current_xact_id()::text::bigint, $1::bytea, $2::bytea, $3::text, $4::text, $5::bigint,
                        $6::integer, $7::uuid, $8::bigint, $9::timestamptz, $10::bytea, $11::bytea, $12::text
                 WHERE COALESCE((SELECT commit_sequence = $8::bigint - 1 AND stream_revision = $5::bigint - $6::integer
                                 FROM {c} WHERE stream_key = $1::bytea AND commit_sequence > 0
                                 ORDER BY commit_sequence DESC LIMIT 1),
                                $8::bigint = 1 AND $5::bigint = $6::integer)
                 RETURNING checkpoint),
                 head AS (
                 INSERT INTO {h} (stream_key, tenant_key, tenant_id, stream_id, head_revision, head_sequence)
                 SELECT $1::bytea, $2::bytea, $3::text, $4::text, $5::bigint, $8::bigint FROM inserted
                 ON CONFLICT (stream_key) DO UPDATE
                 SET head_revision = EXCLUDED.head_revision, head_sequence = EXCLUDED.head_sequence)
                 SELECT checkpoint FROM inserted"
            ),
            has_commit_id: format!("SELECT 1 FROM {c} WHERE stream_key = $1 AND commit_id = $2"),
            head: format!(
                "SELECT commit_sequence, stream_revision FROM {c} WHERE stream_key = $1 AND commit_sequence > 0
                 ORDER BY commit_sequence DESC LIMIT 1"
            ),
            later_commits: format!(
                "SELECT {COMMIT_COLUMNS} FROM {c} WHERE stream_key = $1 AND commit_sequence >= $2
                 ORDER BY commit_sequence"
            ),
            by_revision: format!(
                "SELECT {COMMIT_COLUMNS} FROM {c}
                 WHERE stream_key = $1 AND stream_revision >= $2 AND stream_revision - items + 1 <= $3
                   AND commit_sequence > $4
                 ORDER BY commit_sequence LIMIT $5"
            ),
            replay_by_revision: format!(
                "SELECT commit_sequence, stream_revision, items, events, stream_type FROM {c}
                 WHERE stream_key = $1 AND stream_revision >= $2 AND stream_revision - items + 1 <= $3
                   AND commit_sequence > $4
                 ORDER BY commit_sequence LIMIT $5"
            ),
            by_time: format!(
                "SELECT {COMMIT_COLUMNS} FROM {c}
                 WHERE stream_key = $1 AND commit_stamp <= $2 AND commit_sequence > $3
                 ORDER BY commit_sequence LIMIT $4"
            ),
            tenant_by_time: format!(
                "SELECT {COMMIT_COLUMNS} FROM {c}
                 WHERE tenant_key = $1 AND commit_stamp <= $2 AND checkpoint > $3 AND commit_sequence > 0
                 ORDER BY checkpoint LIMIT $4"
            ),
            // The horizon comes from the same statement snapshot as the rows.
            from_checkpoint: format!(
                "SELECT {COMMIT_COLUMNS}, pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon
                 FROM {c} WHERE checkpoint > $1 ORDER BY checkpoint LIMIT $2"
            ),
            tenant_from_checkpoint: format!(
                "SELECT {COMMIT_COLUMNS}, pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS horizon
                 FROM {c} WHERE tenant_key = $1 AND checkpoint > $2 ORDER BY checkpoint LIMIT $3"
            ),
            get_snapshot: format!(
                "SELECT stream_revision, commit_sequence, payload, headers FROM {s}
                 WHERE stream_key = $1 AND stream_revision <= $2
                 ORDER BY stream_revision DESC LIMIT 1"
            ),
            replay_snapshot: format!(
                "SELECT stream_revision, commit_sequence, payload, headers FROM {s}
                 WHERE stream_key = $1 AND stream_revision <= $2
                 ORDER BY stream_revision DESC LIMIT 1"
            ),
            add_snapshot: format!(
                "WITH added AS (
                 INSERT INTO {s} (stream_key, tenant_key, tenant_id, stream_id, stream_revision, commit_sequence, payload, headers)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (stream_key, stream_revision)
                 DO UPDATE SET commit_sequence = EXCLUDED.commit_sequence, payload = EXCLUDED.payload, headers = EXCLUDED.headers
                 RETURNING stream_key, stream_revision)
                 UPDATE {h} AS h SET snapshot_revision = GREATEST(COALESCE(h.snapshot_revision, 0), added.stream_revision)
                 FROM added WHERE h.stream_key = added.stream_key"
            ),
            purge_commits: format!("DELETE FROM {c} WHERE tenant_key = $1"),
            purge_snapshots: format!("DELETE FROM {s} WHERE tenant_key = $1"),
            // The stream's commits; its earlier deletion notices stay in the log.
            delete_stream_commits: format!(
                "DELETE FROM {c} WHERE stream_key = $1 AND commit_sequence > 0"
            ),
            delete_stream_snapshots: format!("DELETE FROM {s} WHERE stream_key = $1"),
            insert_deletion_notice: format!(
                "INSERT INTO {c} (checkpoint, stream_key, tenant_key, tenant_id, stream_id, stream_revision, items,
                                  commit_id, commit_sequence, commit_stamp, headers, events, stream_type)
                 VALUES (pg_current_xact_id()::text::bigint, $1, $2, $3, $4, 0, 0, gen_random_uuid(), $5,
                         date_trunc('microseconds', now()), '\\x7b7d'::bytea, '\\x5b5d'::bytea, $6)"
            ),
        }
    }
}
