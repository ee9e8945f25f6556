//! The key layout. Every key lies under the store's prefix (`P`, empty or ending in `/`):
//!
//! | key | object |
//! |---|---|
//! | `P aett-store` | the marker that says the prefix is an aett store |
//! | `P log/{checkpoint:020}` | a slot of the log: the commit (or deletion) that claimed it |
//! | `P log/{checkpoint:020}.ok` | the slot's commit is known to have gone in |
//! | `P c/{T}/{S}/{inc:010}/{seq:020}` | a commit of incarnation `inc` of a stream, or its tombstone |
//! | `P i/{T}/{S}/{inc:010}/{commit id}` | a commit id, holding its sequence |
//! | `P s/{T}/{S}/{inc:010}/{inverted revision:020}-{seq:020}` | a snapshot |
//! | `P h/{T}/{S}/{inc:010}/r{revision:020}`, `s{revision:020}`, `d` | the index of stream heads |
//! | `P p/{projection}/{inverted generation:020}` | a projection's checkpoint and lease |
//!
//! `T` and `S` are the tenant and stream ids written as `x` and the hex digits of their UTF-8
//! bytes (so `/`, `%` and any unicode are letters like others, two ids never share a key, and
//! keys sort as the ids do), or, for an id too long for a key, `~` and the SHA-256 of it (the
//! objects hold the id itself, checked on every read). Numbers are zero-padded, so keys sort in
//! commit, checkpoint and revision order; revisions and generations of snapshots and checkpoints
//! are inverted (`u64::MAX - n`) so that the newest comes first in a listing.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The longest id written out in hex (bytes); a longer one is hashed. S3 keys take 1,024 bytes.
const LONGEST_PLAIN_ID: usize = 160;

/// The marker object's name.
pub(super) const MARKER: &str = "aett-store";

/// Where a decided log slot's marker key adds to the slot's key.
pub(super) const DECIDED_SUFFIX: &str = ".ok";

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A tenant, stream or projection id as one segment of a key.
pub(super) fn segment(id: &str) -> String {
    if id.len() <= LONGEST_PLAIN_ID {
        format!("x{}", hex(id.as_bytes()))
    } else {
        format!("~{}", hex(&Sha256::digest(id.as_bytes())))
    }
}

/// The id a plain segment spells (`None` for a hashed one).
pub(super) fn segment_id(segment: &str) -> Option<String> {
    let digits = segment.strip_prefix('x')?;
    if digits.len() % 2 != 0 {
        return None;
    }
    let bytes = (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

/// The keys of one store: its prefix.
#[derive(Debug, Clone)]
pub(super) struct Layout {
    prefix: String,
}

impl Layout {
    /// `prefix` without leading or trailing slashes; empty for the whole bucket.
    pub fn new(prefix: &str) -> Self {
        let prefix = prefix.trim_matches('/');
        Self {
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
        }
    }

    /// Everything of the store: what `drop_all` removes.
    pub fn all(&self) -> &str {
        &self.prefix
    }

    pub fn marker(&self) -> String {
        format!("{}{MARKER}", self.prefix)
    }

    pub fn log_prefix(&self) -> String {
        format!("{}log/", self.prefix)
    }

    pub fn slot(&self, checkpoint: u64) -> String {
        format!("{}log/{checkpoint:020}", self.prefix)
    }

    pub fn decided(&self, checkpoint: u64) -> String {
        format!("{}{DECIDED_SUFFIX}", self.slot(checkpoint))
    }

    /// The checkpoint of a slot's key and whether it is the decided marker.
    pub fn parse_slot(&self, key: &str) -> Option<(u64, bool)> {
        let rest = key.strip_prefix(&self.log_prefix())?;
        let (number, decided) = match rest.strip_suffix(DECIDED_SUFFIX) {
            Some(number) => (number, true),
            None => (rest, false),
        };
        (number.len() == 20)
            .then(|| number.parse().ok())
            .flatten()
            .map(|checkpoint| (checkpoint, decided))
    }

    /// The prefixes under which a tenant's objects lie (the log aside).
    pub fn tenant_prefixes(&self, tenant: &str) -> [String; 4] {
        let t = segment(tenant);
        ["c", "i", "s", "h"].map(|kind| format!("{}{kind}/{t}/", self.prefix))
    }

    /// The index of a tenant's stream heads.
    pub fn heads_prefix(&self, tenant: &str) -> String {
        format!("{}h/{}/", self.prefix, segment(tenant))
    }

    pub fn stream(&self, tenant: &str, stream: &str) -> StreamKeys {
        StreamKeys {
            prefix: self.prefix.clone(),
            path: format!("{}/{}", segment(tenant), segment(stream)),
        }
    }

    pub fn projection_prefix(&self, projection: &str) -> String {
        format!("{}p/{}/", self.prefix, segment(projection))
    }

    pub fn projection(&self, projection: &str, generation: u64) -> String {
        format!(
            "{}{:020}",
            self.projection_prefix(projection),
            u64::MAX - generation
        )
    }

    /// The generation of a projection's key.
    pub fn parse_projection(&self, projection: &str, key: &str) -> Option<u64> {
        let inverted: u64 = key
            .strip_prefix(&self.projection_prefix(projection))?
            .parse()
            .ok()?;
        Some(u64::MAX - inverted)
    }
}

/// The keys of one stream.
#[derive(Debug, Clone)]
pub(super) struct StreamKeys {
    prefix: String,
    /// `{T}/{S}`.
    path: String,
}

impl StreamKeys {
    /// Every incarnation's commits.
    pub fn commits_root(&self) -> String {
        format!("{}c/{}/", self.prefix, self.path)
    }

    pub fn commits(&self, inc: u64) -> String {
        format!("{}{inc:010}/", self.commits_root())
    }

    pub fn commit(&self, inc: u64, sequence: u64) -> String {
        format!("{}{sequence:020}", self.commits(inc))
    }

    /// The incarnation and sequence of a commit key.
    pub fn parse_commit(&self, key: &str) -> Option<(u64, u64)> {
        let rest = key.strip_prefix(&self.commits_root())?;
        let (inc, sequence) = rest.split_once('/')?;
        (inc.len() == 10 && sequence.len() == 20)
            .then(|| Some((inc.parse().ok()?, sequence.parse().ok()?)))
            .flatten()
    }

    pub fn ids(&self, inc: u64) -> String {
        format!("{}i/{}/{inc:010}/", self.prefix, self.path)
    }

    pub fn id(&self, inc: u64, commit_id: Uuid) -> String {
        format!("{}{commit_id}", self.ids(inc))
    }

    pub fn snapshots(&self, inc: u64) -> String {
        format!("{}s/{}/{inc:010}/", self.prefix, self.path)
    }

    pub fn snapshot(&self, inc: u64, revision: u64, sequence: u64) -> String {
        format!(
            "{}{:020}-{sequence:020}",
            self.snapshots(inc),
            u64::MAX - revision
        )
    }

    /// The key a listing of snapshots at or below `revision` starts after (`None`: from the
    /// first).
    pub fn snapshots_after(&self, inc: u64, revision: u64) -> Option<String> {
        (revision < u64::MAX).then(|| {
            // Every key of a revision above `revision` sorts at or before this one.
            format!("{}{:020}-~", self.snapshots(inc), u64::MAX - revision - 1)
        })
    }

    /// The revision and commit sequence of a snapshot key.
    pub fn parse_snapshot(&self, inc: u64, key: &str) -> Option<(u64, u64)> {
        let rest = key.strip_prefix(&self.snapshots(inc))?;
        let (inverted, sequence) = rest.split_once('-')?;
        Some((
            u64::MAX - inverted.parse::<u64>().ok()?,
            sequence.parse().ok()?,
        ))
    }

    pub fn heads_root(&self) -> String {
        format!("{}h/{}/", self.prefix, self.path)
    }

    pub fn heads(&self, inc: u64) -> String {
        format!("{}{inc:010}/", self.heads_root())
    }

    pub fn head(&self, inc: u64, revision: u64) -> String {
        format!("{}r{revision:020}", self.heads(inc))
    }

    pub fn head_snapshot(&self, inc: u64, revision: u64) -> String {
        format!("{}s{revision:020}", self.heads(inc))
    }

    pub fn head_deleted(&self, inc: u64) -> String {
        format!("{}d", self.heads(inc))
    }
}

/// One entry of a listing of a tenant's head index.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum HeadKey {
    Revision(u64),
    Snapshot(u64),
    Deleted,
}

/// The stream segment, incarnation and entry of a key under a tenant's head index.
pub(super) fn parse_head(heads_prefix: &str, key: &str) -> Option<(String, u64, HeadKey)> {
    let rest = key.strip_prefix(heads_prefix)?;
    let mut parts = rest.split('/');
    let (stream, inc, entry) = (parts.next()?, parts.next()?, parts.next()?);
    let inc = inc.parse().ok()?;
    let entry = match entry.split_at_checked(1)? {
        ("r", revision) => HeadKey::Revision(revision.parse().ok()?),
        ("s", revision) => HeadKey::Snapshot(revision.parse().ok()?),
        ("d", "") => HeadKey::Deleted,
        _ => return None,
    };
    Some((stream.to_owned(), inc, entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_keep_ids_apart_and_in_order() {
        let ids = ["", "a", "a/b", "ab", "a%2F", "é", "b"];
        let mut segments: Vec<String> = ids.iter().map(|id| segment(id)).collect();
        assert!(segments
            .iter()
            .all(|s| !s.contains('/') && !s.contains('%')));
        for (id, segment) in ids.iter().zip(&segments) {
            assert_eq!(segment_id(segment).as_deref(), Some(*id));
        }
        let mut sorted_ids = ids.to_vec();
        sorted_ids.sort();
        segments.sort();
        let back: Vec<String> = segments.iter().map(|s| segment_id(s).unwrap()).collect();
        assert_eq!(back, sorted_ids);
        let long = "x".repeat(500);
        assert!(segment(&long).starts_with('~'));
        assert_eq!(segment_id(&segment(&long)), None);
        // A stream key sorts before a longer id's keys: '/' comes before any hex digit.
        let layout = Layout::new("p");
        assert!(layout.stream("t", "a").commit(0, 1) < layout.stream("t", "ab").commit(0, 1));
    }

    #[test]
    fn keys_parse_back() {
        let layout = Layout::new("/events/");
        assert_eq!(layout.parse_slot(&layout.slot(42)), Some((42, false)));
        assert_eq!(layout.parse_slot(&layout.decided(42)), Some((42, true)));
        assert!(layout.slot(5) < layout.decided(5) && layout.decided(5) < layout.slot(6));
        let keys = layout.stream("t", "s");
        assert_eq!(keys.parse_commit(&keys.commit(3, 7)), Some((3, 7)));
        assert_eq!(
            keys.parse_snapshot(2, &keys.snapshot(2, 10, 4)),
            Some((10, 4))
        );
        let after = keys.snapshots_after(2, 10).unwrap();
        assert!(keys.snapshot(2, 11, 5) < after && after < keys.snapshot(2, 10, 4));
        assert_eq!(
            layout.parse_projection("p", &layout.projection("p", 9)),
            Some(9)
        );
        let heads = layout.heads_prefix("t");
        assert_eq!(
            parse_head(&heads, &keys.head(1, 12)),
            Some((segment("s"), 1, HeadKey::Revision(12)))
        );
        assert_eq!(
            parse_head(&heads, &keys.head_deleted(2)),
            Some((segment("s"), 2, HeadKey::Deleted))
        );
    }
}
